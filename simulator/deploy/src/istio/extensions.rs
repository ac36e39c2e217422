//! WasmPlugin and TrafficExtension: the same Wasm fields, placed three
//! ways ([`Place`]): on the outbound sidecars of a namespace, on waypoints
//! (ambient mesh) and on the ingress gateway.
//!
//! Why these values (Istio's `extensions/v1alpha1/wasm.proto` and
//! `traffic_extension.proto`, and how istiod places plugins):
//! - phase `UNSPECIFIED_PHASE`: istiod appends such plugins after every
//!   other plugin phase and Istio filter that acts on the request
//!   (metadata exchange, authn, authz, stats-phase plugins) and before
//!   gRPC stats, ALPN, fault, CORS, Istio stats and the router. Laneway
//!   clears the route cache when it rewrites `:authority`, so everything
//!   after it, router included, sees the fork's route. A TrafficExtension
//!   leaves `phase` out: the same default, under a name that differs
//!   between API revisions (`UNSPECIFIED`, `EXECUTION_PHASE_UNSPECIFIED`).
//! - priority [`PRIORITY`]: plugins of one phase run in descending
//!   priority (default 0), so Laneway runs last of its phase: a plugin that
//!   adds or translates the routing key runs before Laneway decides.
//! - `failStrategy: FAIL_OPEN`: a module that cannot be fetched, or a VM
//!   that fails, is skipped; the request reaches the baseline.
//! - `match.mode`: `CLIENT` on sidecars (outbound only) and on gateways
//!   (Istio asks for `CLIENT` or `CLIENT_AND_SERVER` there); `SERVER` on
//!   waypoints, whose HTTP chains istiod matches as inbound traffic.

use serde_json::{Map, Value, json};

use super::{PLUGIN_NAME, Render};

/// Laneway's priority within its phase: after plugins at the default 0.
pub const PRIORITY: i32 = -1000;

/// Which proxies a plugin reaches.
enum Attach<'a> {
    /// Every workload of the namespace (no selector).
    Namespace,
    /// Workloads with these labels.
    Selector(&'a str, &'a str),
    /// A waypoint, by its Gateway's name.
    Waypoint(String),
}

/// One plugin object: where it goes and which traffic it sees.
struct Place<'a> {
    name: String,
    namespace: &'a str,
    attach: Attach<'a>,
    mode: &'static str,
}

const SIDECAR: &str = "\
# Laneway on the outbound sidecar of every workload in the namespace: each
# call is decided where it leaves its caller, by the caller's sidecar.
#
# - no selector: every workload of the namespace; match mode CLIENT: only
#   its outbound traffic. Callers in other namespaces need their own copy.
# - phase UNSPECIFIED_PHASE: after every other Istio filter and plugin phase
#   that acts on the request, just before fault, CORS, stats and the router;
#   Laneway clears the route cache when it rewrites :authority, so they all
#   see the fork's route.
# - priority -1000: last of its phase (higher runs first), so a plugin that
#   adds or translates the routing key runs before Laneway decides.
# - failStrategy FAIL_OPEN: a module that cannot be fetched, or a VM that
#   fails, is skipped: every request reaches the baseline.
# - url, sha256, imagePullPolicy: README.md, \"Operations\".
# - pluginConfig: the scenario's plugin configuration (README.md, \"Plugin
#   configuration\"); Istio hands it to the filter as JSON.
";

const SIDECAR_TE: &str = "\
# wasmplugin.yaml as an Istio 1.30 TrafficExtension, the API that supersedes
# WasmPlugin (its Wasm fields sit under `wasm`). Apply one of the two, not
# both: each adds a filter of its own.
#
# - phase left out: the default, just before the router, as
#   UNSPECIFIED_PHASE in wasmplugin.yaml (the enum names that value
#   differently in different API revisions).
# - everything else: as in wasmplugin.yaml.
";

const WAYPOINT: &str = "\
# Laneway in an ambient mesh, on waypoints: a call is decided by the
# waypoint of the service called, not by its caller. Waypoints take only
# policies attached with targetRefs (a selector is ignored); match mode
# SERVER, because istiod matches a waypoint's HTTP traffic as inbound.
#
# A service with no waypoint gets no decision: its tagged requests reach
# the baseline. A waypoint routes a call by the Service it was sent to: the
# rewritten :authority reaches the fork only if the waypoint's route for
# that Service matches it (README.md, \"Operations\").
";

const WAYPOINT_TE: &str = "\
# wasmplugin-waypoint.yaml as Istio 1.30 TrafficExtensions (Wasm fields under
# `wasm`, phase left out: the same default). Apply one of the two files.
";

const INGRESS: &str = "\
# Laneway on the ingress gateway (selector istio: ingressgateway, in the
# gateway's namespace: a selector reaches only its own namespace). It
# decides the entry call, from the gateway to the first service. Match mode
# CLIENT, as Istio asks for gateways.
#
# At the gateway, :authority is the external host (hotrod.example.com), not
# a service's host: a sandbox that forks the entry service needs a fork
# entry for that host, and the gateway a route for the fork's host.
";

/// The WasmPlugin and TrafficExtension files.
pub(super) fn files(r: &Render) -> Vec<(String, String)> {
    let o = r.options;
    let sidecar = Place {
        name: PLUGIN_NAME.into(),
        namespace: &o.namespace,
        attach: Attach::Namespace,
        mode: "CLIENT",
    };
    let ingress = Place {
        name: PLUGIN_NAME.into(),
        namespace: &o.gateway_namespace,
        attach: Attach::Selector("istio", "ingressgateway"),
        mode: "CLIENT",
    };
    let at_waypoints: Vec<Place> = waypoints(r)
        .into_iter()
        .map(|w| Place {
            name: format!("{PLUGIN_NAME}-{w}"),
            namespace: &o.namespace,
            attach: Attach::Waypoint(w),
            mode: "SERVER",
        })
        .collect();
    let plugins = |ps: &[Place]| -> Vec<Value> { ps.iter().map(|p| wasm_plugin(r, p)).collect() };
    let extensions =
        |ps: &[Place]| -> Vec<Value> { ps.iter().map(|p| traffic_extension(r, p)).collect() };
    let sidecar = [sidecar];
    vec![
        r.file("wasmplugin.yaml", SIDECAR, &plugins(&sidecar)),
        r.file("trafficextension.yaml", SIDECAR_TE, &extensions(&sidecar)),
        r.file(
            "wasmplugin-waypoint.yaml",
            &with_waypoints(WAYPOINT, r),
            &plugins(&at_waypoints),
        ),
        r.file(
            "trafficextension-waypoint.yaml",
            WAYPOINT_TE,
            &extensions(&at_waypoints),
        ),
        r.file("wasmplugin-ingress.yaml", INGRESS, &plugins(&[ingress])),
    ]
}

/// The waypoints of the scenario's services, sorted, each once.
fn waypoints(r: &Render) -> Vec<String> {
    let mut list: Vec<String> = r
        .scenario
        .services
        .iter()
        .filter_map(|s| r.options.waypoint_of(&s.name).map(str::to_owned))
        .collect();
    list.sort();
    list.dedup();
    list
}

/// `about`, then which services each waypoint decides for, and which
/// services have none.
fn with_waypoints(about: &str, r: &Render) -> String {
    let mut services: Vec<(&str, Option<&str>)> = r
        .scenario
        .services
        .iter()
        .map(|s| (s.name.as_str(), r.options.waypoint_of(&s.name)))
        .collect();
    services.sort();
    let mut text = format!("{about}#\n");
    for w in waypoints(r) {
        let names: Vec<&str> = services
            .iter()
            .filter(|(_, sw)| *sw == Some(w.as_str()))
            .map(|(n, _)| *n)
            .collect();
        text.push_str(&comment_list(
            &format!("waypoint {w} decides calls to"),
            &names,
        ));
    }
    let none: Vec<&str> = services
        .iter()
        .filter(|(_, w)| w.is_none())
        .map(|(n, _)| *n)
        .collect();
    if !none.is_empty() {
        text.push_str(&comment_list(
            "no waypoint, no decision for calls to",
            &none,
        ));
    }
    text
}

/// `# what: a, b, c`, wrapped at 76 columns.
fn comment_list(what: &str, names: &[&str]) -> String {
    let mut out = String::new();
    let mut line = format!("# {what}:");
    for (i, n) in names.iter().enumerate() {
        let item = format!(
            " {}{}",
            super::escape(n),
            if i + 1 < names.len() { "," } else { "" }
        );
        if line.len() + item.len() > 76 {
            out.push_str(&line);
            out.push('\n');
            line = "#  ".into();
        }
        line.push_str(&item);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// The Wasm fields both APIs share, `pluginConfig` last: `joined` only on
/// the namespace's sidecars, the proxies the inline-headers bootstrap
/// reaches.
fn wasm_fields(r: &Render, p: &Place) -> Map<String, Value> {
    let o = r.options;
    let mut m = Map::new();
    m.insert("url".into(), o.url().into());
    if let Some(sha) = &o.sha256 {
        m.insert("sha256".into(), sha.as_str().into());
    }
    m.insert(
        "imagePullPolicy".into(),
        o.image_pull_policy.as_str().into(),
    );
    m.insert("pluginName".into(), PLUGIN_NAME.into());
    m.insert("failStrategy".into(), "FAIL_OPEN".into());
    m.insert("type".into(), "HTTP".into());
    let config = match p.attach {
        Attach::Namespace => &r.sidecar_config,
        _ => &r.config,
    };
    m.insert("pluginConfig".into(), config.clone());
    m
}

/// `kind` with its metadata, where `p` attaches it, then `fields`.
fn object(r: &Render, kind: &str, p: &Place, fields: Map<String, Value>) -> Value {
    let mut spec = Map::new();
    match p.attach {
        Attach::Namespace => {}
        Attach::Selector(k, v) => {
            spec.insert("selector".into(), json!({"matchLabels": {k: v}}));
        }
        Attach::Waypoint(ref name) => {
            spec.insert(
                "targetRefs".into(),
                json!([{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": name}]),
            );
        }
    }
    spec.extend(fields);
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": kind,
        "metadata": r.metadata(&p.name, p.namespace),
        "spec": spec,
    })
}

fn wasm_plugin(r: &Render, p: &Place) -> Value {
    let mut fields = Map::new();
    fields.insert("phase".into(), "UNSPECIFIED_PHASE".into());
    fields.insert("priority".into(), PRIORITY.into());
    fields.insert("match".into(), json!([{"mode": p.mode}]));
    fields.extend(wasm_fields(r, p));
    object(r, "WasmPlugin", p, fields)
}

fn traffic_extension(r: &Render, p: &Place) -> Value {
    let mut fields = Map::new();
    fields.insert("priority".into(), PRIORITY.into());
    fields.insert("match".into(), json!([{"mode": p.mode}]));
    fields.insert("wasm".into(), Value::Object(wasm_fields(r, p)));
    object(r, "TrafficExtension", p, fields)
}
