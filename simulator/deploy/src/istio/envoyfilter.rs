//! EnvoyFilters, for meshes that cannot use WasmPlugin: Laneway's HTTP
//! filter inserted just before `envoy.filters.http.router`, in outbound
//! sidecars (`SIDECAR_OUTBOUND`, the workloads' namespace) and in the
//! ingress gateway (`GATEWAY`, the gateway's namespace, by selector).
//!
//! The filter's `configuration` is a `google.protobuf.StringValue` holding
//! the plugin configuration verbatim, and `failure_policy: FAIL_OPEN`
//! skips a VM that fails. The module is read from the proxy's filesystem
//! (`vm_config.code.local`): with an EnvoyFilter, Envoy itself loads the
//! code, and nothing fetches `oci://` URLs for it.
//!
//! `envoyfilter-composite.yaml` is the sidecars' EnvoyFilter with the same
//! filter behind Envoy's composite wrapper (`crate::shapes::composite`):
//! created only for requests carrying a header the configuration's
//! carriers name. It has the same name as `envoyfilter.yaml`, so applying
//! one replaces the other.

use serde_json::{Map, Value, json};

use super::{PLUGIN_NAME, Render};
use crate::shapes;

const SIDECAR: &str = "\
# Laneway on outbound sidecars with an EnvoyFilter, for meshes that cannot
# use WasmPlugin or TrafficExtension. Apply one of wasmplugin.yaml,
# trafficextension.yaml and this file, not several.
#
# - HTTP_FILTER INSERT_BEFORE envoy.filters.http.router, context
#   SIDECAR_OUTBOUND: every workload of the namespace, outbound only.
# - vm_config.code.local: Envoy reads the module from the proxy's
#   filesystem; mount laneway_filter.wasm there (for example with the
#   sidecar.istio.io/userVolume and userVolumeMount annotations).
# - configuration: the plugin configuration as a StringValue, exactly the
#   JSON the filter gets. Changing it changes the listener, and Envoy drains
#   the connections of the old one (a WasmPlugin change does not: ECDS).
# - failure_policy FAIL_OPEN: a VM that fails is skipped.
# - These patches never apply to a waypoint (contexts SIDECAR_OUTBOUND and
#   GATEWAY only); for an ambient mesh use wasmplugin-waypoint.yaml.
";

const COMPOSITE: &str = "\
# envoyfilter.yaml with the filter behind Envoy's composite filter, for
# sidecars whose traffic is mostly untagged (README.md, \"Deployment
# shapes\"). The composite filter creates Laneway's filter only for a request
# that carries a header the plugin configuration's carriers name (see the
# matcher below); any other request makes no VM call at all, so
# laneway.decision.no_key does not count it. A tagged request pays the
# matcher and the delegation (measured: see BENCHMARKS.md, Deployment
# shapes).
#
# - Named as envoyfilter.yaml: applying one replaces the other.
# - Needs envoy.filters.http.composite and envoy.matching.inputs.request_headers
#   in the proxy (pilot-agent request GET server_info lists them).
# - Everything else (module, configuration, FAIL_OPEN): as in envoyfilter.yaml.
";

const INGRESS: &str = "\
# envoyfilter.yaml for the ingress gateway: context GATEWAY, selected by
# istio: ingressgateway in the gateway's namespace (an EnvoyFilter with a
# selector reaches only its own namespace). As for wasmplugin-ingress.yaml,
# :authority at the gateway is the external host.
";

/// `envoyfilter.yaml` and `envoyfilter-ingress.yaml`.
pub(super) fn files(r: &Render) -> Vec<(String, String)> {
    let o = r.options;
    let sidecar_text = r.sidecar_config_text.as_str();
    let sidecar = envoy_filter(r, &o.namespace, None, "SIDECAR_OUTBOUND", |r| {
        wasm_filter(r, sidecar_text)
    });
    let composite = envoy_filter(r, &o.namespace, None, "SIDECAR_OUTBOUND", |r| {
        shapes::composite(
            shapes::carriers_of(sidecar_text),
            shapes::execute_inline(wasm_filter(r, sidecar_text)),
        )
    });
    let gateway = json!({"labels": {"istio": "ingressgateway"}});
    let ingress = envoy_filter(r, &o.gateway_namespace, Some(gateway), "GATEWAY", |r| {
        wasm_filter(r, &r.scenario.config)
    });
    vec![
        r.file("envoyfilter.yaml", SIDECAR, &[sidecar]),
        r.file("envoyfilter-composite.yaml", COMPOSITE, &[composite]),
        r.file("envoyfilter-ingress.yaml", INGRESS, &[ingress]),
    ]
}

fn envoy_filter(
    r: &Render,
    namespace: &str,
    selector: Option<Value>,
    context: &str,
    filter: impl Fn(&Render) -> Value,
) -> Value {
    let mut spec = Map::new();
    if let Some(selector) = selector {
        spec.insert("workloadSelector".into(), selector);
    }
    spec.insert("configPatches".into(), json!([patch(context, filter(r))]));
    json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": r.metadata(PLUGIN_NAME, namespace),
        "spec": spec,
    })
}

/// The one patch: `filter` (Laneway's, or its composite wrapper), just
/// before the router.
fn patch(context: &str, filter: Value) -> Value {
    json!({
                "applyTo": "HTTP_FILTER",
                "match": {
                    "context": context,
                    "listener": {"filterChain": {"filter": {
                        "name": "envoy.filters.network.http_connection_manager",
                        "subFilter": {"name": "envoy.filters.http.router"},
                    }}},
                },
                "patch": {
                    "operation": "INSERT_BEFORE",
                    "value": filter,
                },
    })
}

/// Laneway's HTTP filter with the plugin configuration `config`.
fn wasm_filter(r: &Render, config: &str) -> Value {
    json!({
        "name": PLUGIN_NAME,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": wasm_config(r, config),
        },
    })
}

/// Envoy's `envoy.extensions.wasm.v3.PluginConfig` for Laneway.
fn wasm_config(r: &Render, config: &str) -> Value {
    json!({
        "name": PLUGIN_NAME,
        "root_id": PLUGIN_NAME,
        "vm_config": {
            "vm_id": PLUGIN_NAME,
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": r.options.module_path()}},
        },
        "configuration": {
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": config,
        },
        "failure_policy": "FAIL_OPEN",
    })
}
