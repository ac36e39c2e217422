//! `bootstrap-inline-headers.yaml`: the inline-headers bootstrap override
//! as Istio takes it. A ConfigMap [`CONFIG_MAP`] whose key
//! `custom_bootstrap.json` holds a bootstrap fragment declaring `baggage`
//! and `tracestate` inline (`crate::shapes::inline_headers`); a pod
//! annotated [`ANNOTATION`]`: laneway-inline-headers` gets it mounted, and
//! pilot-agent merges it into its proxy's bootstrap (repeated fields are
//! appended). One per namespace that holds annotated pods: the
//! workloads' namespace and each fork's.
//!
//! The ConfigMap alone changes nothing; the annotation restarts nothing by
//! itself either (a pod reads its bootstrap when it starts). Rendered
//! whatever the options, so `deploy/istio/` shows it; `--inline-headers`
//! renders the plugins that rely on it (`joined: true`) and annotates the
//! forks.

use serde_json::json;

use super::Render;

/// The ConfigMap's name.
pub const CONFIG_MAP: &str = "laneway-inline-headers";

/// The pod annotation that names a bootstrap override ConfigMap.
pub const ANNOTATION: &str = "sidecar.istio.io/bootstrapOverride";

/// The key Istio's injector reads the fragment from.
pub const KEY: &str = "custom_bootstrap.json";

const ABOUT: &str = "\
# Inline headers for the sidecars (README.md, \"Deployment shapes\"): a bootstrap
# fragment declaring baggage and tracestate as inline request headers. Envoy
# then keeps each as one entry, joins repeated lines with ',' (every later hop
# receives the joined line) and finds it without scanning the header map; the
# filter reads one value instead of every header (routing_key.joined: true).
#
# Order matters, because joined: true with a proxy that does not join makes
# the lines after the first invisible to the filter:
#   1. kubectl apply -f bootstrap-inline-headers.yaml
#   2. annotate the pod template of every workload whose sidecar runs the
#      plugin, and let the pods restart:
#      kubectl patch deployment NAME -n NAMESPACE --type merge -p \\
#        '{\"spec\":{\"template\":{\"metadata\":{\"annotations\":
#          {\"sidecar.istio.io/bootstrapOverride\":\"laneway-inline-headers\"}}}}}'
#      (forks.yaml carries the annotation when rendered with --inline-headers)
#   3. apply the sidecar plugin rendered with --inline-headers (joined: true).
# To back out, reverse the order. The ingress gateway's and the waypoints'
# plugins never say joined: this override is the sidecars'.
";

/// `bootstrap-inline-headers.yaml`.
pub(super) fn file(r: &Render) -> (String, String) {
    let mut namespaces = super::forks::namespaces(r);
    namespaces.insert(r.options.namespace.clone());
    let fragment = json!({"inline_headers": crate::shapes::inline_headers()});
    let text = serde_json::to_string_pretty(&fragment).unwrap_or_default();
    let docs: Vec<serde_json::Value> = namespaces
        .iter()
        .map(|ns| {
            json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": r.metadata(CONFIG_MAP, ns),
                "data": {KEY: format!("{text}\n")},
            })
        })
        .collect();
    r.file("bootstrap-inline-headers.yaml", ABOUT, &docs)
}
