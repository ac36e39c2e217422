//! Envoy bootstraps shaped like Istio's outbound sidecar: one HTTP
//! listener, one route configuration, one virtual host per service host
//! (with `host` and `host:*` domains, as Istio generates), and an HTTP
//! filter chain of an optional wasm filter followed by the router.
//!
//! Everything binds to 127.0.0.1 with port 0; [`super::Envoy`] reads the
//! real ports back from the admin API.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::{Value, json};

/// The wasm filter in the chain, if any.
pub enum Filter<'a> {
    /// Only the router.
    None,
    /// A proxy-wasm module, with its plugin configuration (a
    /// `google.protobuf.StringValue`, as Istio's WasmPlugin passes it).
    Wasm {
        /// The `.wasm` file.
        module: &'a Path,
        /// The plugin configuration text.
        configuration: &'a str,
    },
}

/// Where a route sends a request.
#[derive(Clone, Debug)]
pub enum Target {
    /// A cluster with one static loopback endpoint.
    Upstream(SocketAddr),
    /// A `direct_response` with this body (no upstream at all).
    Direct(String),
}

/// One route: header regexes that must all match, and a target.
#[derive(Clone, Debug)]
pub struct Route {
    /// `(header name, RE2 regex)` pairs, as Istio renders a VirtualService
    /// `headers: {name: {regex: ...}}` match.
    pub header_regexes: Vec<(String, String)>,
    /// Where it goes.
    pub target: Target,
}

/// One virtual host: a service host and its routes, first match wins.
#[derive(Clone, Debug)]
pub struct VirtualHost {
    /// The host, used as the virtual host name.
    pub host: String,
    /// The routes; the last one is usually the catch-all.
    pub routes: Vec<Route>,
}

impl VirtualHost {
    /// A virtual host with one catch-all route.
    pub fn to(host: &str, target: Target) -> VirtualHost {
        VirtualHost {
            host: host.to_owned(),
            routes: vec![Route {
                header_regexes: Vec::new(),
                target,
            }],
        }
    }
}

/// An outbound sidecar.
pub struct Sidecar<'a> {
    /// The HTTP filter before the router.
    pub filter: Filter<'a>,
    /// The virtual hosts.
    pub virtual_hosts: Vec<VirtualHost>,
    /// Write an access log with Laneway's filter state here.
    pub access_log: Option<&'a Path>,
}

/// The access log line: authority as routed, status, the serving workload,
/// and Laneway's filter state last (`-` when the request had no key):
/// `laneway: decision=fork key=K fork=HOST:PORT`.
pub const ACCESS_LOG_FORMAT: &str = "authority=%REQ(:AUTHORITY)% status=%RESPONSE_CODE% \
served_by=%RESP(X-SERVED-BY)% laneway: %FILTER_STATE(wasm.laneway:PLAIN)%\n";

/// The listener's name in every sidecar bootstrap.
pub const LISTENER: &str = "outbound";

/// Renders the bootstrap.
pub fn sidecar(s: &Sidecar<'_>) -> Value {
    let mut clusters = Vec::new();
    let virtual_hosts: Vec<Value> = s
        .virtual_hosts
        .iter()
        .map(|vh| {
            let routes: Vec<Value> = vh
                .routes
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let headers: Vec<Value> = r
                        .header_regexes
                        .iter()
                        .map(|(name, regex)| {
                            json!({"name": name, "string_match": {"safe_regex": {"regex": regex}}})
                        })
                        .collect();
                    let mut route = json!({"match": {"prefix": "/", "headers": headers}});
                    match &r.target {
                        Target::Direct(body) => {
                            route["direct_response"] =
                                json!({"status": 200, "body": {"inline_string": body}});
                        }
                        Target::Upstream(addr) => {
                            let name = format!("outbound|{i}||{}", vh.host);
                            clusters.push(cluster(&name, *addr));
                            route["route"] = json!({"cluster": name});
                        }
                    }
                    route
                })
                .collect();
            let domains = if vh.host == "*" {
                json!(["*"])
            } else {
                json!([vh.host, format!("{}:*", vh.host)])
            };
            json!({
                "name": vh.host,
                "domains": domains,
                "routes": routes,
            })
        })
        .collect();
    let mut filters = Vec::new();
    if let Filter::Wasm {
        module,
        configuration,
    } = &s.filter
    {
        filters.push(json!({
            "name": "laneway",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": "laneway",
                    "root_id": "laneway",
                    "vm_config": {
                        "vm_id": "laneway",
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": {"local": {"filename": module}},
                    },
                    "configuration": {
                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                        "value": configuration,
                    },
                    "failure_policy": "FAIL_OPEN",
                },
            },
        }));
    }
    filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }));
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": LISTENER,
        "route_config": {"name": "outbound", "virtual_hosts": virtual_hosts},
        "http_filters": filters,
    });
    if let Some(path) = s.access_log {
        hcm["access_log"] = json!([{
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": path,
                "log_format": {"text_format_source": {"inline_string": ACCESS_LOG_FORMAT}},
            },
        }]);
    }
    json!({
        "admin": {"address": loopback(0)},
        "static_resources": {
            "listeners": [{
                "name": LISTENER,
                "address": loopback(0),
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": hcm,
                }]}],
            }],
            "clusters": clusters,
        },
    })
}

fn loopback(port: u16) -> Value {
    json!({"socket_address": {"address": "127.0.0.1", "port_value": port}})
}

fn cluster(name: &str, addr: SocketAddr) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": loopback(addr.port())}}]}],
        },
    })
}
