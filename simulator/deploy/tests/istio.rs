//! What `laneway_deploy::istio` renders means what the README says: every
//! plugin carries the scenario's plugin configuration (parsed as
//! `pluginConfig`, verbatim in an EnvoyFilter), sits where it decides
//! (outbound sidecars, waypoints, the ingress gateway), runs just before
//! the router and fails open; each fork gets its Deployment and Service.
//! Schema validity is `manifests.rs`'s; this checks the values.

use std::collections::BTreeMap;
use std::path::Path;

use laneway_deploy::istio::{DEFAULT_MODULE_FILE, RENDERED_MARK};
use laneway_deploy::{IstioOptions, istio};
use laneway_scenario::Scenario;
use serde::Deserialize;
use serde_json::{Value, json};

fn hotrod() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/scenarios/hotrod.yaml");
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn scenario(text: &str) -> Scenario {
    Scenario::from_bytes(Path::new("test.yaml"), text.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

/// The documents of one rendered file.
fn docs(files: &[(String, String)], name: &str) -> Vec<Value> {
    let text = &files
        .iter()
        .find(|f| f.0 == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1;
    serde_norway::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn header(files: &[(String, String)], name: &str) -> String {
    let text = &files.iter().find(|f| f.0 == name).unwrap().1;
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_plugin_carries_the_scenarios_configuration() {
    let s = hotrod();
    let files = istio(&s, &IstioOptions::default());
    let config: Value = serde_json::from_str(&s.config).unwrap();
    for name in [
        "wasmplugin.yaml",
        "wasmplugin-waypoint.yaml",
        "wasmplugin-ingress.yaml",
    ] {
        for d in docs(&files, name) {
            assert_eq!(d["spec"]["pluginConfig"], config, "{name}");
        }
    }
    for name in ["trafficextension.yaml", "trafficextension-waypoint.yaml"] {
        for d in docs(&files, name) {
            assert_eq!(d["spec"]["wasm"]["pluginConfig"], config, "{name}");
        }
    }
    for name in ["envoyfilter.yaml", "envoyfilter-ingress.yaml"] {
        let d = &docs(&files, name)[0];
        let c = &d["spec"]["configPatches"][0]["patch"]["value"]["typed_config"]["config"];
        assert_eq!(
            c["configuration"]["@type"],
            "type.googleapis.com/google.protobuf.StringValue"
        );
        assert_eq!(
            c["configuration"]["value"],
            s.config.as_str(),
            "{name}: the exact text"
        );
    }
}

#[test]
fn sidecar_plugins_decide_outbound_just_before_the_router_and_fail_open() {
    let files = istio(
        &hotrod(),
        &IstioOptions {
            namespace: "hotrod".into(),
            ..IstioOptions::default()
        },
    );
    let wp = &docs(&files, "wasmplugin.yaml")[0];
    assert_eq!(wp["apiVersion"], "extensions.istio.io/v1alpha1");
    assert_eq!(wp["metadata"]["namespace"], "hotrod");
    let spec = &wp["spec"];
    assert!(
        spec.get("selector").is_none() && spec.get("targetRefs").is_none(),
        "the whole namespace"
    );
    assert_eq!(spec["match"], json!([{"mode": "CLIENT"}]));
    assert_eq!(spec["phase"], "UNSPECIFIED_PHASE");
    assert_eq!(spec["priority"], -1000);
    assert_eq!(spec["failStrategy"], "FAIL_OPEN");
    assert_eq!(spec["pluginName"], "laneway");
    assert_eq!(spec["type"], "HTTP");
    assert_eq!(
        spec["url"],
        format!(
            "oci://registry.example.com/laneway:{}",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(spec["imagePullPolicy"], "IfNotPresent");
    assert!(
        spec.get("sha256").is_none(),
        "no checksum unless one is known"
    );

    let te = &docs(&files, "trafficextension.yaml")[0];
    assert_eq!(te["kind"], "TrafficExtension");
    assert!(
        te["spec"].get("phase").is_none(),
        "the default phase, just before the router"
    );
    assert_eq!(te["spec"]["match"], spec["match"]);
    assert_eq!(te["spec"]["priority"], spec["priority"]);
    for field in [
        "url",
        "imagePullPolicy",
        "pluginName",
        "failStrategy",
        "type",
        "pluginConfig",
    ] {
        assert_eq!(te["spec"]["wasm"][field], spec[field], "{field}");
    }

    let ef = &docs(&files, "envoyfilter.yaml")[0];
    let patch = &ef["spec"]["configPatches"][0];
    assert_eq!(patch["applyTo"], "HTTP_FILTER");
    assert_eq!(patch["match"]["context"], "SIDECAR_OUTBOUND");
    assert_eq!(
        patch["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"],
        "envoy.filters.http.router"
    );
    assert_eq!(patch["patch"]["operation"], "INSERT_BEFORE");
    let config = &patch["patch"]["value"]["typed_config"]["config"];
    assert_eq!(config["failure_policy"], "FAIL_OPEN");
    assert_eq!(
        config["vm_config"]["code"]["local"]["filename"],
        DEFAULT_MODULE_FILE
    );
    assert_eq!(config["vm_config"]["runtime"], "envoy.wasm.runtime.v8");
}

#[test]
fn the_ingress_gateway_is_selected_in_its_namespace_as_client() {
    let files = istio(&hotrod(), &IstioOptions::default());
    let wp = &docs(&files, "wasmplugin-ingress.yaml")[0];
    assert_eq!(wp["metadata"]["namespace"], "istio-system");
    assert_eq!(
        wp["spec"]["selector"],
        json!({"matchLabels": {"istio": "ingressgateway"}})
    );
    assert_eq!(
        wp["spec"]["match"],
        json!([{"mode": "CLIENT"}]),
        "Istio asks for CLIENT at gateways"
    );
    let ef = &docs(&files, "envoyfilter-ingress.yaml")[0];
    assert_eq!(ef["metadata"]["namespace"], "istio-system");
    assert_eq!(
        ef["spec"]["workloadSelector"],
        json!({"labels": {"istio": "ingressgateway"}})
    );
    assert_eq!(
        ef["spec"]["configPatches"][0]["match"]["context"],
        "GATEWAY"
    );
}

#[test]
fn waypoints_are_attached_by_target_refs_one_plugin_each() {
    let s = hotrod();
    let files = istio(&s, &IstioOptions::default());
    let wps = docs(&files, "wasmplugin-waypoint.yaml");
    assert_eq!(wps.len(), 1, "every service behind the default waypoint");
    assert_eq!(wps[0]["metadata"]["name"], "laneway-waypoint");
    assert_eq!(
        wps[0]["spec"]["targetRefs"],
        json!([{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "waypoint"}])
    );
    assert_eq!(
        wps[0]["spec"]["match"],
        json!([{"mode": "SERVER"}]),
        "waypoint traffic is inbound to istiod"
    );

    let mut waypoints = BTreeMap::new();
    waypoints.insert("location".to_owned(), Some("location-wp".to_owned()));
    waypoints.insert("frontend".to_owned(), None);
    let options = IstioOptions {
        waypoints,
        ..IstioOptions::default()
    };
    assert_eq!(options.validate(&s), vec![]);
    let files = istio(&s, &options);
    let names: Vec<Value> = docs(&files, "trafficextension-waypoint.yaml")
        .iter()
        .map(|d| d["spec"]["targetRefs"][0]["name"].clone())
        .collect();
    assert_eq!(
        names,
        [json!("location-wp"), json!("waypoint")],
        "sorted, each once"
    );
    let h = header(&files, "wasmplugin-waypoint.yaml");
    assert!(
        h.contains("# waypoint location-wp decides calls to: location"),
        "{h}"
    );
    assert!(
        h.contains("# waypoint waypoint decides calls to: customer, driver, route"),
        "{h}"
    );
    assert!(
        h.contains("# no waypoint, no decision for calls to: frontend"),
        "{h}"
    );

    let mut unknown = BTreeMap::new();
    unknown.insert("nosuch".to_owned(), Some("Bad_Name".to_owned()));
    let errors = IstioOptions {
        waypoints: unknown,
        ..IstioOptions::default()
    }
    .validate(&s);
    assert_eq!(errors.len(), 2, "{errors:?}");
}

#[test]
fn the_module_source_follows_the_url() {
    let s = hotrod();
    let sha = "0123456789abcdef".repeat(4);
    let options = IstioOptions {
        url: Some("https://example.com/laneway_filter.wasm".into()),
        sha256: Some(sha.clone()),
        ..IstioOptions::default()
    };
    let files = istio(&s, &options);
    let wp = &docs(&files, "wasmplugin.yaml")[0];
    assert_eq!(wp["spec"]["url"], "https://example.com/laneway_filter.wasm");
    assert_eq!(wp["spec"]["sha256"], sha.as_str());
    assert_eq!(
        docs(&files, "trafficextension.yaml")[0]["spec"]["wasm"]["sha256"],
        sha.as_str()
    );
    let h = header(&files, "wasmplugin.yaml");
    assert!(
        h.contains(&format!(
            "hotrod.yaml --url https://example.com/laneway_filter.wasm --sha256 {sha}`"
        )),
        "the header renders it again: {h}"
    );
    let file = IstioOptions {
        url: Some("file:///opt/f/laneway.wasm".into()),
        ..IstioOptions::default()
    };
    let files = istio(&s, &file);
    let ef = &docs(&files, "envoyfilter.yaml")[0];
    assert_eq!(
        ef["spec"]["configPatches"][0]["patch"]["value"]["typed_config"]["config"]["vm_config"]["code"]
            ["local"]["filename"],
        "/opt/f/laneway.wasm"
    );
    let bad = IstioOptions {
        url: Some(format!("oci://r/l@sha256:{}", "f".repeat(64))),
        sha256: Some(sha),
        ..IstioOptions::default()
    };
    let errors = bad.validate(&s);
    assert!(
        errors.iter().any(|e| e
            .to_string()
            .contains("differs from the digest the URL pins")),
        "{errors:?}"
    );
}

const FORKS: &str = "\
name: forks
services:
  frontend: { port: 8080 }
  cart: { port: 7000, host: cart.shop.svc.cluster.local }
chains:
  - name: c
    call: frontend
    then:
      - call: cart
sandboxes:
  - key: pr-2
    forks:
      - service: cart
        destination: cart-pr-2.shop.svc.cluster.local
      - service: frontend
        destination: frontend-pr-2.example.com
  - key: pr-1
    forks:
      - service: frontend
        destination: frontend-pr-1:9090
traffic:
  - { name: t, chain: c, count: 1 }
";

#[test]
fn each_fork_gets_a_deployment_and_a_service_named_as_its_host() {
    let files = istio(
        &hotrod(),
        &IstioOptions {
            namespace: "hotrod".into(),
            ..IstioOptions::default()
        },
    );
    let d = docs(&files, "forks.yaml");
    assert_eq!(d.len(), 2);
    let labels = json!({"app": "location", "laneway.io/sandbox": "qwblp48fpmb30"});
    assert_eq!(d[0]["kind"], "Deployment");
    assert_eq!(d[0]["metadata"]["name"], "location-qwblp48fpmb30");
    assert_eq!(d[0]["metadata"]["namespace"], "hotrod");
    assert_eq!(d[0]["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(d[0]["spec"]["template"]["metadata"]["labels"], labels);
    let container = &d[0]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        "registry.example.com/location:qwblp48fpmb30"
    );
    assert_eq!(container["ports"][0]["containerPort"], 8084);
    assert_eq!(d[1]["kind"], "Service");
    assert_eq!(d[1]["metadata"]["name"], "location-qwblp48fpmb30");
    assert_eq!(d[1]["spec"]["selector"], labels);
    assert_eq!(
        d[1]["spec"]["ports"],
        json!([{"name": "http", "port": 8084, "targetPort": 8084}])
    );

    // Sorted by key, then host; namespaces from the host; what cannot be
    // a Service is left out and said so.
    let files = istio(&scenario(FORKS), &IstioOptions::default());
    let d = docs(&files, "forks.yaml");
    let names: Vec<(String, String, String)> = d
        .iter()
        .map(|d| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (
                s(&d["kind"]),
                s(&d["metadata"]["namespace"]),
                s(&d["metadata"]["name"]),
            )
        })
        .collect();
    let want = |k: &str, ns: &str, n: &str| (k.to_owned(), ns.to_owned(), n.to_owned());
    assert_eq!(
        names,
        [
            want("Deployment", "default", "frontend-pr-1"),
            want("Service", "default", "frontend-pr-1"),
            want("Deployment", "shop", "cart-pr-2"),
            want("Service", "shop", "cart-pr-2"),
        ]
    );
    let h = header(&files, "forks.yaml");
    assert!(
        h.contains("# left out: the fork of frontend for pr-2: host frontend-pr-2.example.com"),
        "{h}"
    );
    assert!(
        h.contains("# note: frontend-pr-1:9090 names port 9090"),
        "{h}"
    );
    assert_eq!(d[1]["spec"]["ports"][0]["port"], 8080, "the service's port");
}

#[test]
fn rendering_is_deterministic_and_sorted_and_text_from_the_scenario_stays_in_comments() {
    let s = scenario(&FORKS.replace("name: forks", "name: \"evil\\nkind: Secret\""));
    let a = istio(&s, &IstioOptions::default());
    assert_eq!(a, istio(&s, &IstioOptions::default()));
    let names: Vec<&str> = a.iter().map(|f| f.0.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names.len(), 10);
    for (name, text) in &a {
        assert!(text.starts_with(RENDERED_MARK), "{name}");
        assert!(
            header(&a, name).contains("from scenario \"evil\\x0akind: Secret\""),
            "{name}"
        );
        for d in docs(&a, name) {
            assert_ne!(d["kind"], "Secret", "{name}: the name forged a document");
        }
    }
}

/// The plugin configuration an EnvoyFilter's filter carries, through the
/// composite wrapper when there is one.
fn envoy_filter_config(d: &Value) -> (Value, String) {
    let value = &d["spec"]["configPatches"][0]["patch"]["value"];
    let wasm = match value["name"].as_str() {
        Some("laneway.composite") => {
            &value["typed_config"]["xds_matcher"]["matcher_list"]["matchers"][0]["on_match"]["action"]
                ["typed_config"]["typed_config"]
        }
        _ => value,
    };
    let text = wasm["typed_config"]["config"]["configuration"]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("no configuration in {value:#}"))
        .to_owned();
    (value.clone(), text)
}

#[test]
fn the_composite_envoyfilter_wraps_the_same_filter_and_matches_the_carriers() {
    let s = hotrod();
    let files = istio(&s, &IstioOptions::default());
    let plain = &docs(&files, "envoyfilter.yaml")[0];
    let composite = &docs(&files, "envoyfilter-composite.yaml")[0];
    // One name: applying one shape replaces the other.
    assert_eq!(composite["metadata"], plain["metadata"]);
    let (p, c) = (
        &plain["spec"]["configPatches"][0],
        &composite["spec"]["configPatches"][0],
    );
    assert_eq!(
        c["match"], p["match"],
        "sidecars, outbound, before the router"
    );
    assert_eq!(c["patch"]["operation"], "INSERT_BEFORE");
    let (wrapper, text) = envoy_filter_config(composite);
    assert_eq!(text, s.config, "the exact configuration text");
    let execute = &wrapper["typed_config"]["xds_matcher"]["matcher_list"]["matchers"][0]["on_match"]
        ["action"];
    assert_eq!(execute["name"], "composite-action");
    assert_eq!(execute["typed_config"]["typed_config"], p["patch"]["value"]);
    assert_eq!(
        wrapper["typed_config"]["extension_config"]["name"],
        "envoy.filters.http.composite"
    );
    let headers = |w: &Value| -> Vec<String> {
        let pred = &w["typed_config"]["xds_matcher"]["matcher_list"]["matchers"][0]["predicate"];
        let list = match pred.get("or_matcher") {
            Some(o) => o["predicate"].as_array().unwrap().clone(),
            None => vec![pred.clone()],
        };
        list.iter()
            .map(|p| {
                p["single_predicate"]["input"]["typed_config"]["header_name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(headers(&wrapper), ["baggage", "tracestate"]);
    // Keys never in tracestate: the matcher asks for baggage alone.
    let baggage_only = scenario(&format!(
        "{FORKS}plugin:\n  inline:\n    version: 1\n    routing_key: {{ carriers: [baggage] }}\n    \
         sandboxes: [{{ key: pr-1, forks: [{{ service: frontend, destination: frontend-pr-1 }}] }}]\n"
    ));
    let files = istio(&baggage_only, &IstioOptions::default());
    let (wrapper, _) = envoy_filter_config(&docs(&files, "envoyfilter-composite.yaml")[0]);
    assert_eq!(headers(&wrapper), ["baggage"]);
}

#[test]
fn inline_headers_set_joined_exactly_where_the_bootstrap_override_reaches() {
    let s = scenario(FORKS);
    let joined = |v: &Value| v["routing_key"]["joined"].clone();
    for inline in [false, true] {
        let options = IstioOptions {
            inline_headers: inline,
            ..IstioOptions::default()
        };
        let files = istio(&s, &options);
        let want = if inline { json!(true) } else { Value::Null };
        let sidecar = &docs(&files, "wasmplugin.yaml")[0];
        assert_eq!(joined(&sidecar["spec"]["pluginConfig"]), want, "{inline}");
        let te = &docs(&files, "trafficextension.yaml")[0];
        assert_eq!(joined(&te["spec"]["wasm"]["pluginConfig"]), want);
        for name in ["envoyfilter.yaml", "envoyfilter-composite.yaml"] {
            let (_, text) = envoy_filter_config(&docs(&files, name)[0]);
            let config: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(joined(&config), want, "{name}");
        }
        // The gateway's and the waypoints' proxies get no override.
        let (_, text) = envoy_filter_config(&docs(&files, "envoyfilter-ingress.yaml")[0]);
        assert_eq!(text, s.config);
        for name in ["wasmplugin-ingress.yaml", "wasmplugin-waypoint.yaml"] {
            for d in docs(&files, name) {
                assert_eq!(joined(&d["spec"]["pluginConfig"]), Value::Null, "{name}");
            }
        }
        // The forks' pods name the ConfigMap of their namespace.
        for d in docs(&files, "forks.yaml") {
            if d["kind"] != "Deployment" {
                continue;
            }
            let a = &d["spec"]["template"]["metadata"]["annotations"];
            let want = if inline {
                json!({"sidecar.istio.io/bootstrapOverride": "laneway-inline-headers"})
            } else {
                Value::Null
            };
            assert_eq!(*a, want, "{}", d["metadata"]["name"]);
        }
        // One ConfigMap per namespace with annotated pods, whatever the flag.
        let maps = docs(&files, "bootstrap-inline-headers.yaml");
        let namespaces: Vec<&str> = maps
            .iter()
            .map(|m| m["metadata"]["namespace"].as_str().unwrap())
            .collect();
        assert_eq!(namespaces, ["default", "shop"]);
        for m in &maps {
            assert_eq!(m["metadata"]["name"], "laneway-inline-headers");
            let fragment: Value =
                serde_json::from_str(m["data"]["custom_bootstrap.json"].as_str().unwrap()).unwrap();
            assert_eq!(
                fragment,
                json!({"inline_headers": [
                    {"inline_header_name": "baggage", "inline_header_type": "REQUEST_HEADER"},
                    {"inline_header_name": "tracestate", "inline_header_type": "REQUEST_HEADER"},
                ]})
            );
        }
        let mark = header(&files, "wasmplugin.yaml");
        assert_eq!(mark.contains("--inline-headers"), inline, "{mark}");
    }
}
