//! The one Envoy bootstrap builder: every bootstrap Laneway runs or ships
//! (the end-to-end tests, `laneway demo-envoy`, the in-Envoy benchmarks and
//! `deploy/envoy/bootstrap.yaml`) comes from [`sidecar`].
//!
//! The shape is Istio's outbound sidecar: one HTTP listener, one route
//! configuration, one virtual host per service host (with `host` and
//! `host:*` domains, as Istio generates), and an HTTP filter chain of an
//! optional wasm filter followed by the router; one access-log format by
//! default, [`ACCESS_LOG_FORMAT`], which ends with Laneway's filter state.
//!
//! The wasm filter comes in either deployment [`Shape`]: plain, or behind
//! the composite wrapper that creates it only for requests carrying a
//! carrier header; and [`Sidecar::inline_headers`] declares `baggage` and
//! `tracestate` inline (the fragments are `laneway_deploy::shapes`'s). The
//! plugin configuration's `routing_key.joined` is set to
//! `inline_headers`, whatever the caller's text says: joined is the
//! bootstrap's fact, true exactly where the headers are inline.
//!
//! Everything binds to 127.0.0.1. Port 0 (the tests' choice) lets the
//! kernel pick; [`super::Envoy`] reads the real ports back from the admin
//! API. [`yaml`] renders a bootstrap as the YAML file `deploy/` holds, and a
//! drift test keeps that file equal to what [`deploy_example`] builds.

use std::net::SocketAddr;
use std::path::Path;

use laneway_deploy::shapes;
use serde_json::{Value, json};

pub use crate::scenario::FailurePolicy;

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

/// How the wasm filter sits in the chain (issue 12).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Shape {
    /// Before the router, for every request.
    #[default]
    Plain,
    /// Behind Envoy's composite filter, created only for a request with a
    /// header the configuration's carriers name (`baggage`, `tracestate`).
    Composite,
}

impl Shape {
    /// Both shapes.
    pub const ALL: [Shape; 2] = [Shape::Plain, Shape::Composite];

    /// Its name on a command line and in reports: `plain`, `composite`.
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Plain => "plain",
            Shape::Composite => "composite",
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a route sends a request.
#[derive(Clone, Debug)]
pub enum Target {
    /// A cluster with one static loopback endpoint.
    Upstream(SocketAddr),
    /// A cluster `cluster` that resolves `host:port` by DNS (`STRICT_DNS`),
    /// as a standalone Envoy in front of real services has.
    Dns {
        /// The cluster's name.
        cluster: String,
        /// The host to resolve.
        host: String,
        /// Its port.
        port: u16,
    },
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

/// Where the access log goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessLog<'a> {
    /// No access log.
    None,
    /// A file.
    File(&'a Path),
    /// Envoy's standard output.
    Stdout,
}

/// An outbound sidecar.
pub struct Sidecar<'a> {
    /// The HTTP filter before the router.
    pub filter: Filter<'a>,
    /// The virtual hosts.
    pub virtual_hosts: Vec<VirtualHost>,
    /// Where the access log goes.
    pub access_log: AccessLog<'a>,
    /// The access log line ([`ACCESS_LOG_FORMAT`] unless a test needs more
    /// fields; keep the filter state last, after `laneway: `).
    pub log_format: &'a str,
    /// The HTTP connection manager's `use_remote_address`: `true` makes the
    /// connection's peer the downstream address (as Istio's gateways do);
    /// `false` (Envoy's default, rendered by leaving the field out) lets
    /// Envoy take it from `x-forwarded-for`.
    pub use_remote_address: bool,
    /// The admin port on 127.0.0.1 (0: the kernel picks).
    pub admin_port: u16,
    /// The outbound listener's port on 127.0.0.1 (0: the kernel picks).
    pub listener_port: u16,
    /// What Envoy does when the wasm filter's VM fails (`FAIL_OPEN`).
    pub failure_policy: FailurePolicy,
    /// How the wasm filter sits in the chain ([`Shape::Plain`]).
    pub shape: Shape,
    /// Declare `baggage` and `tracestate` as inline request headers (Envoy
    /// joins repeated lines), and set the plugin configuration's
    /// `routing_key.joined` to match (false: Envoy's default map, joined
    /// false).
    pub inline_headers: bool,
}

impl<'a> Sidecar<'a> {
    /// A sidecar on kernel-chosen loopback ports with no access log.
    pub fn new(filter: Filter<'a>, virtual_hosts: Vec<VirtualHost>) -> Sidecar<'a> {
        Sidecar {
            filter,
            virtual_hosts,
            access_log: AccessLog::None,
            log_format: ACCESS_LOG_FORMAT,
            use_remote_address: false,
            admin_port: 0,
            listener_port: 0,
            failure_policy: FailurePolicy::Open,
            shape: Shape::Plain,
            inline_headers: false,
        }
    }
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
                    let mut route = json!({"match": {"prefix": "/"}});
                    if !headers.is_empty() {
                        route["match"]["headers"] = Value::Array(headers);
                    }
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
                        Target::Dns {
                            cluster,
                            host,
                            port,
                        } => {
                            if !clusters.iter().any(|c| c["name"] == cluster.as_str()) {
                                clusters.push(dns_cluster(cluster, host, *port));
                            }
                            route["route"] = json!({"cluster": cluster});
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
        let configuration = shapes::joined_text(configuration, s.inline_headers);
        let wasm = crate::scenario::wasm_filter(
            &module.to_string_lossy(),
            &configuration,
            s.failure_policy,
        );
        filters.push(match s.shape {
            Shape::Plain => wasm,
            Shape::Composite => shapes::composite(
                shapes::carriers_of(&configuration),
                shapes::execute_inline(wasm),
            ),
        });
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
    if s.use_remote_address {
        hcm["use_remote_address"] = json!(true);
    }
    let log_format = json!({"text_format_source": {"inline_string": s.log_format}});
    match s.access_log {
        AccessLog::None => {}
        AccessLog::File(path) => {
            hcm["access_log"] = json!([{
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": path,
                    "log_format": log_format,
                },
            }]);
        }
        AccessLog::Stdout => {
            hcm["access_log"] = json!([{
                "name": "envoy.access_loggers.stdout",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                    "log_format": log_format,
                },
            }]);
        }
    }
    let mut bootstrap = json!({
        "admin": {"address": loopback(s.admin_port)},
        "static_resources": {
            "listeners": [{
                "name": LISTENER,
                "address": loopback(s.listener_port),
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": hcm,
                }]}],
            }],
            "clusters": clusters,
        },
    });
    if s.inline_headers {
        bootstrap["inline_headers"] = shapes::inline_headers();
    }
    bootstrap
}

fn loopback(port: u16) -> Value {
    json!({"socket_address": {"address": "127.0.0.1", "port_value": port}})
}

fn dns_cluster(name: &str, host: &str, port: u16) -> Value {
    json!({
        "name": name,
        "type": "STRICT_DNS",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address":
                {"socket_address": {"address": host, "port_value": port}}}}]}],
        },
    })
}

/// The placeholder for the module's path in `deploy/envoy/bootstrap.yaml`.
pub const WASM_PLACEHOLDER: &str = "LANEWAY_WASM";

/// The plugin configuration of the deploy example: key `qwblp48fpmb30`
/// forks `location`.
pub const DEPLOY_CONFIG: &str = r#"{"version": 1, "sandboxes": [{"key": "qwblp48fpmb30", "forks": [{"service": "location", "destination": "location-qwblp48fpmb30"}]}]}"#;

/// `deploy/envoy/bootstrap.yaml`: a standalone Envoy running Laneway in
/// front of `frontend`, `location` and location's fork, found by DNS, on
/// the fixed ports 9901 (admin) and 15001 (outbound), logging to stdout.
pub fn deploy_example() -> Value {
    let dns = |host: &str, port: u16| {
        VirtualHost::to(
            host,
            Target::Dns {
                cluster: host.to_owned(),
                host: host.to_owned(),
                port,
            },
        )
    };
    sidecar(&Sidecar {
        filter: Filter::Wasm {
            module: Path::new(WASM_PLACEHOLDER),
            configuration: DEPLOY_CONFIG,
        },
        virtual_hosts: vec![
            dns("frontend", 8080),
            dns("location", 8083),
            dns("location-qwblp48fpmb30", 8083),
        ],
        access_log: AccessLog::Stdout,
        log_format: ACCESS_LOG_FORMAT,
        use_remote_address: false,
        admin_port: 9901,
        listener_port: 15001,
        failure_policy: FailurePolicy::Open,
        shape: Shape::Plain,
        inline_headers: false,
    })
}

/// The header of `deploy/envoy/bootstrap.yaml`.
pub const DEPLOY_HEADER: &str = "\
# A standalone Envoy (1.40, V8 runtime) running Laneway in front of two
# services and a fork, the way an outbound sidecar or an egress gateway would.
# One virtual host per service host, as Istio generates them; Laneway rewrites
# :authority to the fork's host and the router picks the fork's virtual host.
#
#   envoy -c deploy/envoy/bootstrap.yaml
#
# LANEWAY_WASM below stands for the path of laneway_filter.wasm.
# Generated by laneway_envoy::bootstrap::deploy_example(); do not edit by
# hand: the drift test in simulator/envoy/tests/deploy.rs keeps this file
# equal to what the builder writes (LANEWAY_BLESS=1 rewrites it).
";

/// `bootstrap` as YAML, after `header` (comment lines).
pub fn yaml(header: &str, bootstrap: &Value) -> String {
    let body = serde_norway::to_string(bootstrap).unwrap_or_default();
    format!("{header}{body}")
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
