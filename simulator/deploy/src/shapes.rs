//! The deployment shapes (issue 12) as Envoy configuration fragments, built
//! here once for everything that writes them: the Istio renderer
//! (`envoyfilter-composite.yaml`, `bootstrap-inline-headers.yaml`) and
//! laneway-envoy's bootstraps (tests, the simulator's Envoy backend, the
//! in-Envoy benchmarks).
//!
//! - [`composite`]: the wasm filter behind Envoy's composite filter. An
//!   `ExtensionWithMatcher` around `envoy.filters.http.composite` whose one
//!   matcher asks whether a carrier header (`baggage`, `tracestate`) is
//!   present; only then does its [`COMPOSITE_ACTION`] create the wasm
//!   filter for the request. A request with neither header makes no VM
//!   call at all (not even the context create/log/done/delete that
//!   Envoy's `match_delegate` skip wrapper still makes), so behind the
//!   wrapper `laneway.decision.no_key` never counts it.
//! - [`inline_headers`]: the bootstrap fragment declaring `baggage` and
//!   `tracestate` as inline request headers: Envoy then keeps one entry
//!   per header, joins repeated lines with `,` (what every later hop
//!   receives too) and finds it without a scan.
//! - [`set_joined`]: `routing_key.joined`, which tells the filter that the
//!   proxy joins repeated lines. It is the bootstrap's fact, so the one
//!   rule is: joined exactly where inline headers are declared.
//!
//! The matcher follows the configuration's carriers: a header the
//! configuration never reads a key from creates no filter (some tracing
//! vendors put a `tracestate` on every request).
//!
//! Pure JSON in, JSON out; never panics. Envoy 1.40 accepts every fragment
//! (simulator/envoy/tests/shapes.rs runs them).

use laneway_core::config::{Carriers, Config};
use serde_json::{Value, json};

/// The HTTP filter's name of the composite wrapper.
pub const COMPOSITE_FILTER: &str = "laneway.composite";

/// The matcher action's name: `ExecuteFilterAction` of the composite
/// filter.
pub const COMPOSITE_ACTION: &str = "composite-action";

/// The carriers a plugin configuration reads keys from: both when the
/// text is no valid configuration (the filter then refuses it anyway, and
/// the wrapper must not hide that).
pub fn carriers_of(plugin_config: &str) -> Carriers {
    Config::from_json(plugin_config).map_or(Carriers::BOTH, |c| c.routing_key.carriers)
}

/// One xds `SinglePredicate`: request header `name` is present (any value,
/// the empty one included; an absent header gives the input no data, and
/// the predicate is false).
fn present(name: &str) -> Value {
    json!({"single_predicate": {
        "input": {
            "name": name,
            "typed_config": {
                "@type": "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput",
                "header_name": name,
            },
        },
        // xds StringMatcher has no present_match, and an empty prefix is
        // refused (min_len 1): a regex matching every value, RE2 named as
        // xds requires.
        "value_match": {"safe_regex": {"google_re2": {}, "regex": ".*"}},
    }})
}

/// The `ExecuteFilterAction` of a filter configured inline: `filter` is a
/// `TypedExtensionConfig` (`name`, `typed_config`), as in an HTTP filter
/// chain.
pub fn execute_inline(filter: Value) -> Value {
    json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.composite.v3.ExecuteFilterAction",
        "typed_config": filter,
    })
}

/// The `ExecuteFilterAction` of a filter whose configuration comes by ECDS
/// (the resource `name`, from `config_discovery`, an
/// `ExtensionConfigSource`): configuration swaps then reach the filter
/// behind the wrapper as they reach a plain one.
pub fn execute_discovered(name: &str, config_discovery: Value) -> Value {
    json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.composite.v3.ExecuteFilterAction",
        "dynamic_config": {"name": name, "config_discovery": config_discovery},
    })
}

/// The composite wrapper: an HTTP filter ([`COMPOSITE_FILTER`]) that runs
/// `execute` (from [`execute_inline`] or [`execute_discovered`]) for a
/// request carrying one of the `carriers` headers, and nothing otherwise.
/// No carrier at all (not a valid configuration) matches both.
pub fn composite(carriers: Carriers, execute: Value) -> Value {
    let mut names: Vec<&str> = carriers.names().collect();
    if names.is_empty() {
        names = Carriers::BOTH.names().collect();
    }
    // An or_matcher needs two predicates or more.
    let predicate = match names.as_slice() {
        [one] => present(one),
        _ => {
            json!({"or_matcher": {"predicate": names.iter().map(|n| present(n)).collect::<Vec<_>>()}})
        }
    };
    json!({
        "name": COMPOSITE_FILTER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher",
            "extension_config": {
                "name": "envoy.filters.http.composite",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.composite.v3.Composite"},
            },
            "xds_matcher": {"matcher_list": {"matchers": [{
                "predicate": predicate,
                "on_match": {"action": {"name": COMPOSITE_ACTION, "typed_config": execute}},
            }]}},
        },
    })
}

/// The headers declared inline: both carriers, whatever a configuration
/// reads (the bootstrap is the proxy's, shared by every configuration).
pub const INLINE_HEADERS: [&str; 2] = ["baggage", "tracestate"];

/// The bootstrap's `inline_headers` (`envoy.config.bootstrap.v3.Bootstrap`,
/// a list of `CustomInlineHeader`): [`INLINE_HEADERS`] as request headers.
pub fn inline_headers() -> Value {
    INLINE_HEADERS
        .iter()
        .map(|h| json!({"inline_header_name": h, "inline_header_type": "REQUEST_HEADER"}))
        .collect()
}

/// Sets `routing_key.joined` of a parsed plugin configuration to `joined`.
/// Setting it to false where it is absent changes nothing (false is the
/// default); a configuration that is no object, or whose `routing_key` is
/// no object, is left alone (the filter refuses it with its reason).
pub fn set_joined(config: &mut Value, joined: bool) {
    let Some(doc) = config.as_object_mut() else {
        return;
    };
    let has_joined = doc
        .get("routing_key")
        .is_some_and(|rk| rk.get("joined").is_some());
    if !joined && !has_joined {
        return;
    }
    let rk = doc
        .entry("routing_key")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if let Some(rk) = rk.as_object_mut() {
        rk.insert("joined".into(), Value::Bool(joined));
    }
}

/// [`set_joined`] on a configuration's text: the same text when nothing
/// changes (or it is no JSON), else the edited document, compact.
pub fn joined_text(plugin_config: &str, joined: bool) -> String {
    let Ok(mut doc) = serde_json::from_str::<Value>(plugin_config) else {
        return plugin_config.to_owned();
    };
    let before = doc.clone();
    set_joined(&mut doc, joined);
    if doc == before {
        plugin_config.to_owned()
    } else {
        doc.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_follows_the_flag_and_keeps_text_it_does_not_change() {
        let plain = r#"{"version": 1, "sandboxes": []}"#;
        assert_eq!(joined_text(plain, false), plain);
        assert_eq!(
            joined_text(plain, true),
            r#"{"version":1,"sandboxes":[],"routing_key":{"joined":true}}"#
        );
        let members = r#"{"version":1,"routing_key":{"members":["k"],"joined":true}}"#;
        assert_eq!(
            joined_text(members, false),
            r#"{"version":1,"routing_key":{"members":["k"],"joined":false}}"#
        );
        // Not JSON, or not an object: untouched, for the filter to refuse.
        assert_eq!(joined_text("{", true), "{");
        assert_eq!(joined_text("[1]", true), "[1]");
        assert_eq!(
            joined_text(r#"{"routing_key": 3}"#, true),
            r#"{"routing_key": 3}"#
        );
    }

    #[test]
    fn the_matcher_asks_for_the_configured_carriers_only() {
        let names = |c: Carriers| {
            let v = composite(c, execute_inline(json!({})));
            let m = &v["typed_config"]["xds_matcher"]["matcher_list"]["matchers"][0]["predicate"];
            let preds: Vec<Value> = match m.get("or_matcher") {
                Some(o) => o["predicate"].as_array().cloned().unwrap_or_default(),
                None => vec![m.clone()],
            };
            preds
                .iter()
                .map(|p| p["single_predicate"]["input"]["typed_config"]["header_name"].clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(Carriers::BOTH),
            [json!("baggage"), json!("tracestate")]
        );
        let baggage = Carriers {
            baggage: true,
            tracestate: false,
        };
        assert_eq!(names(baggage), [json!("baggage")]);
        let none = Carriers {
            baggage: false,
            tracestate: false,
        };
        assert_eq!(names(none), [json!("baggage"), json!("tracestate")]);
        let text = r#"{"version":1,"routing_key":{"carriers":["baggage"]},"sandboxes":[]}"#;
        assert_eq!(carriers_of(text), baggage);
        assert_eq!(carriers_of("not json"), Carriers::BOTH);
    }
}
