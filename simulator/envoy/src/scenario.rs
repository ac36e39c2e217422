//! The Envoy configuration of a scenario, shaped like Istio's outbound
//! sidecars: what `laneway render envoy` writes and what the real-Envoy
//! backend runs.
//!
//! - One outbound listener per caller: `outbound|ingress` for the test
//!   client (a gateway) and `outbound|SERVICE` for each service. Every
//!   caller's sidecar has the same routes; the listener says whose sidecar
//!   decided.
//! - One virtual host per service host (domains `host` and `host:*`, as
//!   Istio generates) and one per fork destination host.
//! - One cluster per workload: `outbound|PORT||HOST` for the baseline,
//!   `outbound|PORT|KEY|HOST` for a fork.
//! - The filter before the router, its configuration delivered through
//!   filesystem ECDS: the HTTP filter is a `config_discovery` of the
//!   resource `laneway` in a watched file. Writing a new file (atomically:
//!   write, then rename into the watched directory) makes Envoy build a new
//!   filter instance for new streams on every connection, open or not; no
//!   listener drains.
//! - In the composite [`Shape`], the filter sits behind Envoy's composite
//!   wrapper, whose `ExecuteFilterAction` takes the same ECDS resource
//!   (`dynamic_config`): swaps reach it as they reach the plain filter
//!   (Envoy 1.40 counts them under the same
//!   `extension_config_discovery.http_filter.laneway.` stats). The
//!   wrapper's matcher headers come from the starting configuration's
//!   carriers; a swap that changes carriers needs a new bootstrap.
//! - With [`Layout::inline_headers`], the bootstrap declares `baggage` and
//!   `tracestate` inline, and every plugin configuration written (the
//!   ECDS file) gets `routing_key.joined: true` ([`plugin_config`]).
//! - Each route adds `x-laneway-decision` (the filter's state,
//!   `%FILTER_STATE(wasm.laneway:PLAIN)%`) to the upstream request, and
//!   local replies carry it as a response header, so a workload, or the
//!   caller of a local reply, can tell what the filter decided.

use std::path::Path;

use laneway_deploy::shapes;
use laneway_scenario::{DecidedAt, Scenario, ServiceId, Workload};
use serde_json::{Value, json};

pub use crate::bootstrap::Shape;

/// The ECDS resource's name (also the HTTP filter's).
pub const RESOURCE: &str = "laneway";

/// The header carrying the filter's decision.
pub const DECISION_HEADER: &str = "x-laneway-decision";

/// Where a workload's cluster sends traffic.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// A loopback address (the backend's own workloads).
    Loopback(std::net::SocketAddr),
    /// A host found by DNS (a rendered configuration for a real network).
    Dns(String, u16),
}

/// How to lay the configuration out.
pub struct Layout<'a> {
    /// The wasm module's path, as Envoy will read it.
    pub module: &'a str,
    /// The ECDS file's path; its directory is watched.
    pub ecds: &'a Path,
    /// The admin port on 127.0.0.1 (0: the kernel picks).
    pub admin_port: u16,
    /// The first listener's port; the others follow (0: the kernel picks
    /// each).
    pub first_port: u16,
    /// Where each workload is.
    pub endpoint: &'a dyn Fn(Workload) -> Endpoint,
    /// How the filter sits in the chain.
    pub shape: Shape,
    /// Declare `baggage` and `tracestate` inline; the ECDS file's
    /// configuration must then say `joined` ([`plugin_config`]).
    pub inline_headers: bool,
}

/// The plugin configuration as the ECDS file carries it: `config` with
/// `routing_key.joined` set to `inline_headers` (unchanged text when that
/// changes nothing).
pub fn plugin_config(config: &str, inline_headers: bool) -> String {
    shapes::joined_text(config, inline_headers)
}

/// A listener of the rendered configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// Sidecar mesh: the sidecar of this caller (`None`: the ingress).
    Sidecar(Option<ServiceId>),
    /// Ambient mesh: this waypoint (the filter runs there).
    Waypoint(usize),
    /// Ambient mesh: no waypoint, no filter (ztunnel's direct path).
    Direct,
}

impl Listener {
    /// Whether the filter runs on it.
    pub fn filtered(self) -> bool {
        self != Listener::Direct
    }
}

/// Every listener, in port order.
pub fn listeners(sc: &Scenario) -> Vec<Listener> {
    match sc.mesh {
        laneway_scenario::spec::Mesh::Sidecar => std::iter::once(None)
            .chain((0..sc.services.len()).map(Some))
            .map(Listener::Sidecar)
            .collect(),
        laneway_scenario::spec::Mesh::Ambient => (0..sc.waypoints.len())
            .map(Listener::Waypoint)
            .chain(std::iter::once(Listener::Direct))
            .collect(),
    }
}

/// The listener a call from `caller` (`None`: the ingress) to `callee`
/// goes through: the caller's sidecar, or the callee's waypoint, or the
/// direct path when the callee has none.
pub fn route_of(sc: &Scenario, caller: Option<ServiceId>, callee: ServiceId) -> Listener {
    match sc.decided_at(callee) {
        DecidedAt::Sidecar => Listener::Sidecar(caller),
        DecidedAt::Waypoint(w) => Listener::Waypoint(w),
        DecidedAt::Nowhere => Listener::Direct,
    }
}

/// A listener's name.
pub fn listener_name(sc: &Scenario, l: Listener) -> String {
    match l {
        Listener::Sidecar(None) => "outbound|ingress".to_owned(),
        Listener::Sidecar(Some(s)) => format!("outbound|{}", sc.services[s].name),
        Listener::Waypoint(w) => format!("waypoint|{}", sc.waypoints[w]),
        Listener::Direct => "direct".to_owned(),
    }
}

/// Every workload of the scenario: each baseline, then each fork.
pub fn workloads(sc: &Scenario) -> Vec<Workload> {
    let mut all: Vec<Workload> = (0..sc.services.len()).map(Workload::Baseline).collect();
    for (b, sandbox) in sc.sandboxes.iter().enumerate() {
        for f in &sandbox.forks {
            all.push(Workload::Fork(f.service, b));
        }
    }
    all
}

fn cluster_name(sc: &Scenario, w: Workload) -> String {
    let service = &sc.services[Scenario::service_of(w)];
    match w {
        Workload::Baseline(_) => format!("outbound|{}||{}", service.port, service.host),
        Workload::Fork(s, b) => {
            let host = sc
                .fork(s, b)
                .map_or(service.host.as_str(), |f| f.destination_host.as_str());
            format!("outbound|{}|{}|{host}", service.port, sc.sandboxes[b].key)
        }
    }
}

fn host_of(sc: &Scenario, w: Workload) -> String {
    match w {
        Workload::Baseline(s) => sc.services[s].host.clone(),
        Workload::Fork(s, b) => sc.fork(s, b).map_or_else(
            || sc.services[s].host.clone(),
            |f| f.destination_host.clone(),
        ),
    }
}

/// What Envoy does with the filter when its VM fails at run time (a trap,
/// an abort): the wasm `PluginConfig.failure_policy`. What each one was
/// seen to do in Envoy 1.40 is pinned by `tests/failure.rs`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    /// `FAIL_OPEN`, Laneway's: later requests go on without the filter,
    /// to the baseline.
    #[default]
    Open,
    /// `FAIL_CLOSED`, Envoy's default: later requests get a 503.
    Closed,
    /// `FAIL_RELOAD`: 503 until a backoff has passed, then a new VM.
    Reload,
}

impl FailurePolicy {
    /// The enum value's name in Envoy's API.
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Open => "FAIL_OPEN",
            FailurePolicy::Closed => "FAIL_CLOSED",
            FailurePolicy::Reload => "FAIL_RELOAD",
        }
    }
}

/// The filter's configuration as an ECDS `TypedExtensionConfig`, failing
/// open.
pub fn filter_config(module: &str, plugin_config: &str) -> Value {
    wasm_filter(module, plugin_config, FailurePolicy::Open)
}

/// [`filter_config`] with another failure policy.
pub fn wasm_filter(module: &str, plugin_config: &str, failure_policy: FailurePolicy) -> Value {
    json!({
        "name": RESOURCE,
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
                    "value": plugin_config,
                },
                "failure_policy": failure_policy.as_str(),
            },
        },
    })
}

/// The ECDS file: a discovery response holding the filter's configuration.
pub fn ecds_file(module: &str, plugin_config: &str, version: u64) -> Value {
    let mut resource = filter_config(module, plugin_config);
    resource["@type"] = json!("type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig");
    json!({
        "version_info": version.to_string(),
        "resources": [resource],
    })
}

/// Writes the ECDS file atomically (a temporary file renamed over it), so
/// Envoy never reads half of one.
pub fn write_ecds(
    path: &Path,
    module: &str,
    plugin_config: &str,
    version: u64,
) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(&ecds_file(module, plugin_config, version))
        .map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// The bootstrap.
pub fn bootstrap(sc: &Scenario, layout: &Layout<'_>) -> Value {
    let all = workloads(sc);
    let mut clusters = Vec::new();
    let mut virtual_hosts = Vec::new();
    for &w in &all {
        let name = cluster_name(sc, w);
        let address = match (layout.endpoint)(w) {
            Endpoint::Loopback(a) => {
                json!({"socket_address": {"address": a.ip().to_string(), "port_value": a.port()}})
            }
            Endpoint::Dns(host, port) => {
                json!({"socket_address": {"address": host, "port_value": port}})
            }
        };
        let dns = matches!((layout.endpoint)(w), Endpoint::Dns(..));
        clusters.push(json!({
            "name": name,
            "type": if dns { "STRICT_DNS" } else { "STATIC" },
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": name,
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
            },
        }));
        let host = host_of(sc, w);
        virtual_hosts.push(json!({
            "name": host,
            "domains": [host, format!("{host}:*")],
            "routes": [{
                "match": {"prefix": "/"},
                "route": {"cluster": name, "timeout": "10s"},
                "request_headers_to_add": [{
                    "header": {"key": DECISION_HEADER, "value": "%FILTER_STATE(wasm.laneway:PLAIN)%"},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                }],
            }],
        }));
    }
    let dir = layout.ecds.parent().unwrap_or(Path::new("."));
    let listeners: Vec<Value> = listeners(sc)
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let name = listener_name(sc, l);
            let discovery = json!({
                "config_source": {
                    "path_config_source": {
                        "path": layout.ecds.display().to_string(),
                        "watched_directory": {"path": dir.display().to_string()},
                    },
                    "resource_api_version": "V3",
                },
                "type_urls": ["type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"],
            });
            let filter = match layout.shape {
                Shape::Plain => json!({"name": RESOURCE, "config_discovery": discovery}),
                Shape::Composite => shapes::composite(
                    shapes::carriers_of(&sc.config),
                    shapes::execute_discovered(RESOURCE, discovery),
                ),
            };
            let mut filters = vec![
                filter,
                json!({
                    "name": "envoy.filters.http.router",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
                }),
            ];
            if !l.filtered() {
                filters.remove(0);
            }
            let port = if layout.first_port == 0 {
                0
            } else {
                layout.first_port + i as u16
            };
            json!({
                "name": name,
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": name,
                        "route_config": {"name": "outbound", "virtual_hosts": virtual_hosts},
                        "http_filters": filters,
                        "local_reply_config": {"mappers": [{
                            "filter": {"status_code_filter": {"comparison": {
                                "op": "GE",
                                "value": {"default_value": 100, "runtime_key": "laneway.local_reply_min"},
                            }}},
                            "headers_to_add": [{
                                "header": {"key": DECISION_HEADER, "value": "%FILTER_STATE(wasm.laneway:PLAIN)%"},
                                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                            }],
                        }]},
                    },
                }]}],
            })
        })
        .collect();
    let mut bootstrap = json!({
        // xDS (ECDS here) needs a node.
        "node": {"id": "laneway-sidecar", "cluster": "laneway"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": layout.admin_port}}},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    });
    if layout.inline_headers {
        bootstrap["inline_headers"] = shapes::inline_headers();
    }
    bootstrap
}

/// What `laneway render envoy` writes.
pub struct Render<'a> {
    /// The module's path on the machine that runs Envoy.
    pub module: &'a str,
    /// The ECDS file's path there (its directory is watched).
    pub ecds: &'a Path,
    /// How the filter sits in the chain.
    pub shape: Shape,
    /// Declare `baggage` and `tracestate` inline (and say `joined` in the
    /// ECDS file's configuration).
    pub inline_headers: bool,
}

impl Render<'_> {
    /// The flags after the scenario that render this again.
    pub fn flags(&self) -> String {
        let mut out = String::new();
        if self.shape != Shape::Plain {
            out.push_str(&format!(" --shape {}", self.shape));
        }
        if self.inline_headers {
            out.push_str(" --inline-headers");
        }
        out
    }
}

/// The admin port of a rendered configuration.
pub const RENDER_ADMIN_PORT: u16 = 15000;
/// The first listener's port of a rendered configuration (the ingress's;
/// each service's follows in scenario order).
pub const RENDER_FIRST_PORT: u16 = 15001;

/// A runnable configuration for a real network: `bootstrap.yaml` (each
/// workload found by DNS at its host and port: the service's for the
/// baseline, the fork's destination for a fork) and the ECDS file
/// `laneway-ecds.json` with the scenario's plugin configuration.
pub fn render(sc: &Scenario, r: &Render<'_>) -> Vec<(String, String)> {
    let endpoint = |w: Workload| {
        let service = &sc.services[Scenario::service_of(w)];
        match w {
            Workload::Baseline(_) => Endpoint::Dns(service.host.clone(), service.port),
            Workload::Fork(s, b) => {
                let fork = sc.fork(s, b);
                let dest = fork.map_or(service.host.as_str(), |f| f.destination.as_str());
                let (host, port) = match dest.rsplit_once(':') {
                    Some((h, p)) if p.parse::<u16>().is_ok() => {
                        (h, p.parse().unwrap_or(service.port))
                    }
                    _ => (dest, service.port),
                };
                Endpoint::Dns(host.to_owned(), port)
            }
        }
    };
    let bootstrap = bootstrap(
        sc,
        &Layout {
            module: r.module,
            ecds: r.ecds,
            admin_port: RENDER_ADMIN_PORT,
            first_port: RENDER_FIRST_PORT,
            endpoint: &endpoint,
            shape: r.shape,
            inline_headers: r.inline_headers,
        },
    );
    let mut names = String::new();
    for (i, l) in listeners(sc).into_iter().enumerate() {
        names.push_str(&format!(
            "#   127.0.0.1:{}  {}\n",
            RENDER_FIRST_PORT + i as u16,
            listener_name(sc, l)
        ));
    }
    let mut shape = String::new();
    if r.shape == Shape::Composite {
        shape.push_str(
            "# The filter sits behind Envoy's composite filter: it is created only for\n\
             # requests carrying a header the configuration's carriers name.\n",
        );
    }
    if r.inline_headers {
        shape.push_str(
            "# baggage and tracestate are inline headers (repeated lines are joined\n\
             # with ','), and the configuration says routing_key.joined: true; keep\n\
             # both together.\n",
        );
    }
    let header = format!(
        "# Rendered by `laneway render envoy {}{}`; do not edit by hand.\n\
         # Shaped like Istio's outbound sidecars (one listener per caller) or,\n\
         # in an ambient mesh, its waypoints (one per waypoint, and `direct`\n\
         # without the filter for services with none):\n{names}\
         # The filter's configuration comes by filesystem ECDS from {}:\n\
         # replace that file (write a new one, then rename it over) to add or\n\
         # remove sandboxes; open connections take it for their next request.\n{shape}",
        sc.file.display(),
        r.flags(),
        r.ecds.display()
    );
    let config = plugin_config(&sc.config, r.inline_headers);
    let ecds = serde_json::to_string_pretty(&ecds_file(r.module, &config, 1)).unwrap_or_default();
    vec![
        (
            "bootstrap.yaml".to_owned(),
            crate::bootstrap::yaml(&header, &bootstrap),
        ),
        ("laneway-ecds.json".to_owned(), format!("{ecds}\n")),
    ]
}
