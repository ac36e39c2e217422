//! Every manifest under `deploy/istio/`, rendered or hand-written, and
//! what `laneway render istio` renders with other options, is what a
//! Kubernetes API server with Istio's CRDs would accept:
//! - `apiVersion` is a served version of the CRD of its `kind` (group and
//!   kind as the CRD names them), and `spec` validates against that
//!   version's `openAPIV3Schema.properties.spec`, strictly: an unknown
//!   field is an error, as `kubectl apply`'s strict field validation makes
//!   it (the server would otherwise drop it without a word);
//! - the CEL rules of the CRDs (`x-kubernetes-validations`), which a JSON
//!   Schema validator skips, hold: each is checked here, and
//!   [`the_cel_rules_checked_are_the_crds_rules`] keeps the list equal to
//!   what the CRDs declare;
//! - the forks' Deployments and Services pass the checks the API server
//!   makes on the fields they use.
//!
//! The CRDs are the vendored copies in `deploy/istio/crds/`, so a clean
//! clone needs nothing else; a kind not vendored there is read from
//! `<workspace>/../shared/istio-crds/`, and the test fails, naming both
//! places, when neither has it. Manifests broken on purpose must fail, each
//! for its reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use laneway_deploy::istio::{RENDERED_MARK, dns_label_problem, is_sha256};
use laneway_deploy::{IstioOptions, istio};
use laneway_scenario::Scenario;
use serde::Deserialize;
use serde_json::{Value, json};

// ---------------------------------------------------------------- inputs

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace exists")
}

/// The YAML documents of `text` (empty documents left out).
fn documents(text: &str, what: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{what}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// The CRD of `kind`: the vendored copy, else the shared one; `None` if
/// neither has one. Panics if neither directory exists: then nothing can
/// be checked.
fn crd(kind: &str) -> Option<Value> {
    let file = format!("{}.yaml", kind.to_ascii_lowercase());
    let vendored = workspace().join("deploy/istio/crds");
    let shared = workspace().join("../shared/istio-crds");
    assert!(
        vendored.is_dir() || shared.is_dir(),
        "no Istio CRDs: neither {} (vendored) nor {} exists; vendor them (deploy/istio/crds/README.md)",
        vendored.display(),
        shared.display()
    );
    let path = [vendored.join(&file), shared.join(&file)]
        .into_iter()
        .find(|p| p.is_file())?;
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    documents(&text, &path.display().to_string()).pop()
}

fn hotrod() -> Scenario {
    let path = workspace().join("testdata/scenarios/hotrod.yaml");
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

// ------------------------------------------------------------- the check

/// Everything wrong with one manifest, each as `where: reason`.
fn problems(doc: &Value) -> Vec<String> {
    let mut p = Problems::default();
    let api = doc["apiVersion"].as_str().unwrap_or_default();
    let kind = doc["kind"].as_str().unwrap_or_default();
    let (group, version) = api.rsplit_once('/').unwrap_or(("", api));
    // A ConfigMap holds `data`, not a `spec`.
    let body = if kind == "ConfigMap" { "data" } else { "spec" };
    for key in doc.as_object().into_iter().flat_map(|o| o.keys()) {
        if !["apiVersion", "kind", "metadata", body].contains(&key.as_str()) {
            p.add(key, "unknown top-level field");
        }
    }
    metadata(&doc["metadata"], kind, &mut p);
    let spec = &doc["spec"];
    match (group, version, kind) {
        (g, _, _) if g.ends_with(".istio.io") => {
            against_crd(group, version, kind, spec, &mut p);
            cel(kind, spec, &mut p);
        }
        ("apps", "v1", "Deployment") => deployment(spec, &mut p),
        ("", "v1", "Service") => service(spec, &mut p),
        ("", "v1", "ConfigMap") => config_map(&doc["data"], &mut p),
        _ => p.add("apiVersion", format!("no schema for {api} {kind}")),
    }
    p.0
}

#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, at: &str, reason: impl std::fmt::Display) {
        self.0.push(format!("{at}: {reason}"));
    }
}

fn metadata(m: &Value, kind: &str, p: &mut Problems) {
    let Some(map) = m.as_object() else {
        return p.add("metadata", "missing");
    };
    for key in map.keys() {
        if !["name", "namespace", "labels", "annotations"].contains(&key.as_str()) {
            p.add(&format!("metadata.{key}"), "unknown field");
        }
    }
    // Services are DNS-1035 labels; other objects DNS-1123 subdomains.
    let name = m["name"].as_str().unwrap_or_default();
    let max = if kind == "Service" { 63 } else { 253 };
    if let Some(why) = dns_label_problem(name, max) {
        p.add("metadata.name", format!("{name:?} {why}"));
    }
    if kind == "Service" && !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        p.add("metadata.name", "a Service name must start with a letter");
    }
    let ns = m["namespace"].as_str().unwrap_or_default();
    if let Some(why) = dns_label_problem(ns, 63) {
        p.add("metadata.namespace", format!("{ns:?} {why}"));
    }
    labels(&m["labels"], "metadata.labels", p);
}

/// Label keys (`[prefix/]name`) and values, as Kubernetes has them.
fn labels(l: &Value, at: &str, p: &mut Problems) {
    let Some(map) = l.as_object() else {
        if !l.is_null() {
            p.add(at, "not a map");
        }
        return;
    };
    let name_ok = |s: &str| {
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
    };
    for (k, v) in map {
        let (prefix, name) = k
            .rsplit_once('/')
            .map_or((None, k.as_str()), |(a, b)| (Some(a), b));
        if !name_ok(name) || prefix.is_some_and(|pre| dns_label_problem(pre, 253).is_some()) {
            p.add(&format!("{at}.{k}"), "not a label key");
        }
        let v = v.as_str().unwrap_or("\u{0}");
        if !(v.is_empty() || name_ok(v)) {
            p.add(&format!("{at}.{k}"), format!("{v:?} is not a label value"));
        }
    }
}

/// `spec` against the CRD's schema for `version`, strictly.
fn against_crd(group: &str, version: &str, kind: &str, spec: &Value, p: &mut Problems) {
    let Some(crd) = crd(kind) else {
        return p.add("kind", format!("no CRD for {kind}, vendored or shared"));
    };
    if crd["spec"]["group"] != group || crd["spec"]["names"]["kind"] != kind {
        return p.add(
            "apiVersion",
            format!(
                "{kind}'s CRD is {}/{}",
                crd["spec"]["group"], crd["spec"]["names"]["kind"]
            ),
        );
    }
    let Some(v) = crd["spec"]["versions"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == version))
    else {
        return p.add("apiVersion", format!("{kind} has no version {version}"));
    };
    if v["served"] != true {
        return p.add("apiVersion", format!("{kind} {version} is not served"));
    }
    let schema = strict(&v["schema"]["openAPIV3Schema"]["properties"]["spec"]);
    let validator = jsonschema::validator_for(&schema).expect("the CRD's schema compiles");
    for e in validator.iter_errors(spec) {
        p.add(&format!("spec{}", e.instance_path()), e);
    }
}

/// `schema` with `additionalProperties: false` on every object that lists
/// its properties and does not preserve unknown fields: what the API
/// server's strict field validation does.
fn strict(schema: &Value) -> Value {
    let mut s = schema.clone();
    tighten(&mut s);
    s
}

fn tighten(s: &mut Value) {
    let Some(map) = s.as_object_mut() else {
        return;
    };
    let preserve = map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if map.contains_key("properties") && !map.contains_key("additionalProperties") && !preserve {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    for (key, value) in map.iter_mut() {
        match key.as_str() {
            "properties" => value
                .as_object_mut()
                .into_iter()
                .flatten()
                .for_each(|(_, v)| tighten(v)),
            "items" | "additionalProperties" | "not" => tighten(value),
            "oneOf" | "anyOf" | "allOf" => {
                value.as_array_mut().into_iter().flatten().for_each(tighten)
            }
            _ => {}
        }
    }
}

// ------------------------------------------------------------- CEL rules

/// The CEL rules checked by [`cel`]: `(kind, where, message)`, as the CRDs
/// declare them (`[]` a list item, `{}` a map value).
const RULES: &[(&str, &str, &str)] = &[
    (
        "EnvoyFilter",
        "spec",
        "only one of targetRefs or workloadSelector can be set",
    ),
    (
        "EnvoyFilter",
        "spec.configPatches[].match",
        "only support waypointMatch when context is WAYPOINT",
    ),
    (
        "EnvoyFilter",
        "spec.configPatches[].match.waypoint.portNumber",
        "port must be between 1-65535",
    ),
    (
        "EnvoyFilter",
        "spec.targetRefs[].namespace",
        "cross namespace referencing is not currently supported",
    ),
    (
        "EnvoyFilter",
        "spec.workloadSelector.labels{}",
        "wildcard is not supported in selector",
    ),
    (
        "TrafficExtension",
        "spec",
        "only one of targetRefs or selector can be set",
    ),
    (
        "TrafficExtension",
        "spec",
        "exactly one of wasm or lua must be set",
    ),
    (
        "TrafficExtension",
        "spec.selector.matchLabels",
        "wildcard not allowed in label key match",
    ),
    (
        "TrafficExtension",
        "spec.selector.matchLabels",
        "key must not be empty",
    ),
    (
        "TrafficExtension",
        "spec.selector.matchLabels{}",
        "wildcard not allowed in label value match",
    ),
    (
        "TrafficExtension",
        "spec.targetRefs[].namespace",
        "cross namespace referencing is not currently supported",
    ),
    (
        "TrafficExtension",
        "spec.wasm.url",
        "url must have schema one of [http, https, file, oci]",
    ),
    (
        "TrafficExtension",
        "spec.wasm.vmConfig.env[]",
        "value may only be set when valueFrom is INLINE",
    ),
    ("VirtualService", "spec.http[].corsPolicy.maxAge", DURATION),
    (
        "VirtualService",
        "spec.http[].fault.delay.exponentialDelay",
        DURATION,
    ),
    (
        "VirtualService",
        "spec.http[].fault.delay.fixedDelay",
        DURATION,
    ),
    ("VirtualService", "spec.http[].retries.backoff", DURATION),
    (
        "VirtualService",
        "spec.http[].retries.perTryTimeout",
        DURATION,
    ),
    ("VirtualService", "spec.http[].timeout", DURATION),
    (
        "WasmPlugin",
        "spec",
        "only one of targetRefs or selector can be set",
    ),
    (
        "WasmPlugin",
        "spec.selector.matchLabels",
        "wildcard not allowed in label key match",
    ),
    (
        "WasmPlugin",
        "spec.selector.matchLabels",
        "key must not be empty",
    ),
    (
        "WasmPlugin",
        "spec.selector.matchLabels{}",
        "wildcard not allowed in label value match",
    ),
    (
        "WasmPlugin",
        "spec.targetRef.namespace",
        "cross namespace referencing is not currently supported",
    ),
    (
        "WasmPlugin",
        "spec.targetRefs[].namespace",
        "cross namespace referencing is not currently supported",
    ),
    (
        "WasmPlugin",
        "spec.url",
        "url must have schema one of [http, https, file, oci]",
    ),
    (
        "WasmPlugin",
        "spec.vmConfig.env[]",
        "value may only be set when valueFrom is INLINE",
    ),
];

const DURATION: &str = "must be a valid duration greater than 1ms";
const CROSS_NAMESPACE: &str = "cross namespace referencing is not currently supported";

/// The CEL rules of `kind`'s CRD (and, for the Wasm APIs, Istio's own rule
/// that a digest in the URL must equal `sha256`).
fn cel(kind: &str, spec: &Value, p: &mut Problems) {
    match kind {
        "WasmPlugin" => {
            at_most_one(
                spec,
                &["selector", "targetRef", "targetRefs"],
                "only one of targetRefs or selector can be set",
                p,
            );
            match_labels(
                &spec["selector"]["matchLabels"],
                "spec.selector.matchLabels",
                p,
            );
            no_namespace(&spec["targetRef"], "spec.targetRef", p);
            each(&spec["targetRefs"], "spec.targetRefs", p, |r, at, p| {
                no_namespace(r, at, p)
            });
            wasm(spec, "spec", p);
        }
        "TrafficExtension" => {
            at_most_one(
                spec,
                &["selector", "targetRefs"],
                "only one of targetRefs or selector can be set",
                p,
            );
            if spec.get("wasm").is_some() == spec.get("lua").is_some() {
                p.add("spec", "exactly one of wasm or lua must be set");
            }
            match_labels(
                &spec["selector"]["matchLabels"],
                "spec.selector.matchLabels",
                p,
            );
            each(&spec["targetRefs"], "spec.targetRefs", p, |r, at, p| {
                no_namespace(r, at, p)
            });
            if spec.get("wasm").is_some() {
                wasm(&spec["wasm"], "spec.wasm", p);
            }
        }
        "EnvoyFilter" => {
            at_most_one(
                spec,
                &["workloadSelector", "targetRefs"],
                "only one of targetRefs or workloadSelector can be set",
                p,
            );
            each(&spec["targetRefs"], "spec.targetRefs", p, |r, at, p| {
                no_namespace(r, at, p)
            });
            for (k, v) in spec["workloadSelector"]["labels"]
                .as_object()
                .into_iter()
                .flatten()
            {
                if v.as_str().is_some_and(|v| v.contains('*')) {
                    p.add(
                        &format!("spec.workloadSelector.labels.{k}"),
                        "wildcard is not supported in selector",
                    );
                }
            }
            each(
                &spec["configPatches"],
                "spec.configPatches",
                p,
                |patch, at, p| {
                    let m = &patch["match"];
                    let waypoint_context = m["context"] == "WAYPOINT";
                    if m.get("waypoint").is_some() != waypoint_context {
                        p.add(
                            &format!("{at}.match"),
                            "only support waypointMatch when context is WAYPOINT",
                        );
                    }
                    if let Some(port) = m["waypoint"].get("portNumber")
                        && !port.as_u64().is_some_and(|n| (1..=65535).contains(&n))
                    {
                        p.add(
                            &format!("{at}.match.waypoint.portNumber"),
                            "port must be between 1-65535",
                        );
                    }
                },
            );
        }
        "VirtualService" => each(&spec["http"], "spec.http", p, |route, at, p| {
            for path in [
                "corsPolicy.maxAge",
                "fault.delay.exponentialDelay",
                "fault.delay.fixedDelay",
                "retries.backoff",
                "retries.perTryTimeout",
                "timeout",
            ] {
                let v = path.split('.').fold(route, |v, k| &v[k]);
                if let Some(d) = v.as_str()
                    && !duration_ms(d).is_some_and(|ms| ms >= 1.0)
                {
                    p.add(&format!("{at}.{path}"), DURATION);
                }
            }
        }),
        _ => {}
    }
}

/// The rules on the Wasm fields (at the spec of a WasmPlugin, under
/// `wasm` in a TrafficExtension).
fn wasm(w: &Value, at: &str, p: &mut Problems) {
    if let Some(url) = w["url"].as_str()
        && !cel_url_scheme_ok(url)
    {
        p.add(
            &format!("{at}.url"),
            "url must have schema one of [http, https, file, oci]",
        );
    }
    each(
        &w["vmConfig"]["env"],
        &format!("{at}.vmConfig.env"),
        p,
        |e, at, p| {
            if e["valueFrom"] == "HOST" && e.get("value").is_some() {
                p.add(at, "value may only be set when valueFrom is INLINE");
            }
        },
    );
    // Not CEL, but Istio's rule (wasm.proto): a digest in the URL must be
    // the one `sha256` gives.
    if let (Some(url), Some(sha)) = (w["url"].as_str(), w["sha256"].as_str())
        && let Some((_, pinned)) = url.split_once("@sha256:")
        && pinned != sha
    {
        p.add(&format!("{at}.sha256"), "differs from the digest in url");
    }
}

fn at_most_one(spec: &Value, fields: &[&str], message: &str, p: &mut Problems) {
    if fields.iter().filter(|f| spec.get(**f).is_some()).count() > 1 {
        p.add("spec", message);
    }
}

fn match_labels(m: &Value, at: &str, p: &mut Problems) {
    for (k, v) in m.as_object().into_iter().flatten() {
        if k.contains('*') {
            p.add(at, "wildcard not allowed in label key match");
        }
        if k.is_empty() {
            p.add(at, "key must not be empty");
        }
        if v.as_str().is_some_and(|v| v.contains('*')) {
            p.add(
                &format!("{at}.{k}"),
                "wildcard not allowed in label value match",
            );
        }
    }
}

fn no_namespace(r: &Value, at: &str, p: &mut Problems) {
    if r["namespace"].as_str().is_some_and(|ns| !ns.is_empty()) {
        p.add(&format!("{at}.namespace"), CROSS_NAMESPACE);
    }
}

fn each(list: &Value, at: &str, p: &mut Problems, mut f: impl FnMut(&Value, &str, &mut Problems)) {
    for (i, item) in list.as_array().into_iter().flatten().enumerate() {
        f(item, &format!("{at}[{i}]"), p);
    }
}

/// The CRDs' URL rule: `isURL(self) ? url(self).getScheme() in ['',
/// 'http', 'https', 'oci', 'file'] : (isURL('http://' + self) && …)`.
/// Kubernetes' `isURL` is Go's `url.ParseRequestURI`: an absolute URI
/// (`scheme:/…`) or an absolute path; anything else is read as a host
/// and path after `http://`, valid unless it has spaces or control
/// characters, or a port that is not a number.
fn cel_url_scheme_ok(url: &str) -> bool {
    let scheme_end = url.find(':').filter(|&i| {
        let s = &url.as_bytes()[..i];
        !s.is_empty()
            && s[0].is_ascii_alphabetic()
            && s.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
    });
    if let Some(i) = scheme_end
        && url[i + 1..].starts_with('/')
    {
        return ["http", "https", "oci", "file"].contains(&url[..i].to_ascii_lowercase().as_str());
    }
    if url.starts_with('/') {
        return true;
    }
    let host = url.split('/').next().unwrap_or_default();
    let port_ok = host
        .rsplit_once(':')
        .is_none_or(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()));
    port_ok && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A Go duration (`300ms`, `1.5s`, `1h2m`) in milliseconds.
fn duration_ms(d: &str) -> Option<f64> {
    if d == "0" {
        return Some(0.0);
    }
    let mut rest = d;
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-6,
            "us" | "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 6e4,
            "h" => 3.6e6,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    Some(total)
}

// ------------------------------------------------------ Kubernetes kinds

fn deployment(spec: &Value, p: &mut Problems) {
    known_keys(spec, "spec", &["replicas", "selector", "template"], p);
    let selector = &spec["selector"]["matchLabels"];
    labels(selector, "spec.selector.matchLabels", p);
    let pod_labels = &spec["template"]["metadata"]["labels"];
    labels(pod_labels, "spec.template.metadata.labels", p);
    known_keys(
        &spec["template"]["metadata"],
        "spec.template.metadata",
        &["labels", "annotations"],
        p,
    );
    // Annotation keys are label keys; values are any strings.
    let annotations = &spec["template"]["metadata"]["annotations"];
    for (k, v) in annotations.as_object().into_iter().flatten() {
        labels(
            &json!({k.as_str(): "x"}),
            "spec.template.metadata.annotations",
            p,
        );
        if !v.is_string() {
            p.add(
                &format!("spec.template.metadata.annotations.{k}"),
                "must be a string",
            );
        }
    }
    match selector.as_object() {
        Some(m) if !m.is_empty() => {
            for (k, v) in m {
                if &pod_labels[k] != v {
                    p.add(
                        "spec.selector",
                        format!("the pods are not labelled {k}={v}"),
                    );
                }
            }
        }
        _ => p.add("spec.selector.matchLabels", "required"),
    }
    let containers = spec["template"]["spec"]["containers"].as_array();
    if containers.is_none_or(|c| c.is_empty()) {
        p.add("spec.template.spec.containers", "at least one is required");
    }
    for (i, c) in containers.into_iter().flatten().enumerate() {
        let at = format!("spec.template.spec.containers[{i}]");
        known_keys(c, &at, &["name", "image", "ports"], p);
        if dns_label_problem(c["name"].as_str().unwrap_or_default(), 63).is_some() {
            p.add(&format!("{at}.name"), "not a DNS label");
        }
        if c["image"].as_str().is_none_or(str::is_empty) {
            p.add(&format!("{at}.image"), "required");
        }
        each(&c["ports"], &format!("{at}.ports"), p, |port, at, p| {
            known_keys(port, at, &["name", "containerPort"], p);
            if !is_port(&port["containerPort"]) {
                p.add(&format!("{at}.containerPort"), "must be 1 to 65535");
            }
        });
    }
}

fn service(spec: &Value, p: &mut Problems) {
    known_keys(spec, "spec", &["selector", "ports"], p);
    labels(&spec["selector"], "spec.selector", p);
    let ports = spec["ports"].as_array();
    if ports.is_none_or(|ps| ps.is_empty()) {
        p.add("spec.ports", "at least one is required");
    }
    each(&spec["ports"], "spec.ports", p, |port, at, p| {
        known_keys(port, at, &["name", "port", "targetPort"], p);
        if !is_port(&port["port"]) {
            p.add(&format!("{at}.port"), "must be 1 to 65535");
        }
        if port.get("targetPort").is_some() && !is_port(&port["targetPort"]) {
            p.add(&format!("{at}.targetPort"), "must be 1 to 65535");
        }
        if port["name"]
            .as_str()
            .is_some_and(|n| dns_label_problem(n, 63).is_some())
        {
            p.add(&format!("{at}.name"), "not a DNS label");
        }
    });
}

/// A ConfigMap's `data`: keys of `[-._a-zA-Z0-9]+` (at most 253), string
/// values; and Laneway's one use of it, the bootstrap override, is JSON
/// an Envoy bootstrap fragment can be.
fn config_map(data: &Value, p: &mut Problems) {
    let Some(map) = data.as_object() else {
        return p.add("data", "missing");
    };
    for (k, v) in map {
        let at = format!("data.{k}");
        let ok_key = !k.is_empty()
            && k.len() <= 253
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok_key {
            p.add(&at, "not a valid ConfigMap key");
        }
        let Some(text) = v.as_str() else {
            p.add(&at, "must be a string");
            continue;
        };
        if k.ends_with(".json") && serde_json::from_str::<Value>(text).is_err() {
            p.add(&at, "not JSON");
        }
    }
}

fn known_keys(v: &Value, at: &str, known: &[&str], p: &mut Problems) {
    for key in v.as_object().into_iter().flat_map(|o| o.keys()) {
        if !known.contains(&key.as_str()) {
            p.add(&format!("{at}.{key}"), "unknown field");
        }
    }
}

fn is_port(v: &Value) -> bool {
    v.as_u64().is_some_and(|n| (1..=65535).contains(&n))
}

// ----------------------------------------------------------------- tests

/// Every YAML file under `deploy/istio/` but the CRDs: `(path, text)`.
fn deploy_istio() -> Vec<(PathBuf, String)> {
    let dir = workspace().join("deploy/istio");
    let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, text)
        })
        .collect();
    files.sort();
    files
}

fn assert_valid(file: &str, text: &str) -> usize {
    let docs = documents(text, file);
    let found: Vec<String> = docs
        .iter()
        .flat_map(|d| {
            let name = format!(
                "{file}: {} {}",
                d["kind"].as_str().unwrap_or("?"),
                d["metadata"]["name"].as_str().unwrap_or("?")
            );
            problems(d).into_iter().map(move |p| format!("{name}: {p}"))
        })
        .collect();
    assert!(found.is_empty(), "{}", found.join("\n"));
    docs.len()
}

#[test]
fn every_manifest_in_deploy_istio_validates() {
    let files = deploy_istio();
    let mut kinds = BTreeSet::new();
    let (mut rendered, mut by_hand) = (0, 0);
    for (path, text) in &files {
        let name = path.display().to_string();
        assert_valid(&name, text);
        for d in documents(text, &name) {
            kinds.insert(d["kind"].as_str().unwrap_or_default().to_owned());
        }
        if text.starts_with(RENDERED_MARK) {
            rendered += 1;
        } else {
            by_hand += 1;
        }
    }
    // The check saw what deploy/istio/ is for.
    for kind in [
        "WasmPlugin",
        "TrafficExtension",
        "EnvoyFilter",
        "Deployment",
        "Service",
        "VirtualService",
        "ConfigMap",
    ] {
        assert!(kinds.contains(kind), "no {kind} in deploy/istio/");
    }
    assert!(
        rendered >= 8 && by_hand >= 1,
        "{rendered} rendered, {by_hand} by hand"
    );
}

#[test]
fn what_render_writes_validates_whatever_the_options() {
    let scenario = hotrod();
    let sha = "a".repeat(64);
    let mut waypoints = BTreeMap::new();
    waypoints.insert("location".to_owned(), Some("location-waypoint".to_owned()));
    waypoints.insert("frontend".to_owned(), None);
    let variants = [
        IstioOptions::default(),
        IstioOptions {
            namespace: "hotrod".into(),
            url: Some(format!("oci://ghcr.io/acme/laneway@sha256:{sha}")),
            sha256: Some(sha.clone()),
            ..IstioOptions::default()
        },
        IstioOptions {
            url: Some("https://example.com/laneway_filter.wasm".into()),
            sha256: Some(sha.clone()),
            image_pull_policy: "Always".into(),
            waypoints,
            ..IstioOptions::default()
        },
        IstioOptions {
            url: Some("file:///opt/filters/laneway_filter.wasm".into()),
            fork_image: "ghcr.io/acme/{service}:pr-{key}".into(),
            ..IstioOptions::default()
        },
        IstioOptions {
            namespace: "hotrod".into(),
            inline_headers: true,
            ..IstioOptions::default()
        },
    ];
    for options in &variants {
        assert_eq!(options.validate(&scenario), vec![], "{options:?}");
        let mut docs = 0;
        for (name, text) in istio(&scenario, options) {
            assert!(text.starts_with(RENDERED_MARK), "{name}");
            docs += assert_valid(&name, &text);
        }
        assert!(docs >= 9, "{docs} documents for {options:?}");
    }
}

#[test]
fn the_cel_rules_checked_are_the_crds_rules() {
    fn walk(s: &Value, at: &str, out: &mut BTreeSet<(String, String)>) {
        for rule in s["x-kubernetes-validations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            out.insert((
                at.to_owned(),
                rule["message"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        for (k, v) in s["properties"].as_object().into_iter().flatten() {
            walk(v, &format!("{at}.{k}"), out);
        }
        if s.get("items").is_some() {
            walk(&s["items"], &format!("{at}[]"), out);
        }
        if s["additionalProperties"].is_object() {
            walk(&s["additionalProperties"], &format!("{at}{{}}"), out);
        }
    }
    for kind in [
        "WasmPlugin",
        "TrafficExtension",
        "EnvoyFilter",
        "VirtualService",
    ] {
        let crd = crd(kind).unwrap_or_else(|| panic!("no CRD for {kind}"));
        let mut declared = BTreeSet::new();
        for v in crd["spec"]["versions"].as_array().unwrap() {
            walk(
                &v["schema"]["openAPIV3Schema"]["properties"]["spec"],
                "spec",
                &mut declared,
            );
        }
        let checked: BTreeSet<(String, String)> = RULES
            .iter()
            .filter(|r| r.0 == kind)
            .map(|r| (r.1.to_owned(), r.2.to_owned()))
            .collect();
        assert_eq!(
            declared, checked,
            "{kind}: the CRD's CEL rules differ from those this test checks: implement the new ones in cel()"
        );
    }
}

/// A manifest broken on purpose: its name, the rendered file it starts
/// from (its first document), the edit, and what the check must say.
type Broken = (&'static str, &'static str, fn(&mut Value), &'static str);

/// Each must fail, for its reason; none is valid to begin with.
const BROKEN: &[Broken] = &[
    (
        "both targetRefs and selector",
        "wasmplugin-ingress.yaml",
        |d| {
            d["spec"]["targetRefs"] = json!([{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "waypoint"}])
        },
        "only one of targetRefs or selector can be set",
    ),
    (
        "a TrafficExtension with both",
        "trafficextension-waypoint.yaml",
        |d| d["spec"]["selector"] = json!({"matchLabels": {"app": "x"}}),
        "only one of targetRefs or selector can be set",
    ),
    (
        "an EnvoyFilter with both",
        "envoyfilter-ingress.yaml",
        |d| d["spec"]["targetRefs"] = json!([{"kind": "Gateway", "name": "waypoint"}]),
        "only one of targetRefs or workloadSelector can be set",
    ),
    (
        "a bad failStrategy",
        "wasmplugin.yaml",
        |d| d["spec"]["failStrategy"] = "FAIL_SOMETIMES".into(),
        "spec/failStrategy",
    ),
    (
        "a bad failStrategy under wasm",
        "trafficextension.yaml",
        |d| d["spec"]["wasm"]["failStrategy"] = "OPEN".into(),
        "spec/wasm/failStrategy",
    ),
    (
        "a bad patch context",
        "envoyfilter.yaml",
        |d| d["spec"]["configPatches"][0]["match"]["context"] = "SIDECAR".into(),
        "spec/configPatches/0/match/context",
    ),
    (
        "an unknown field",
        "wasmplugin.yaml",
        |d| d["spec"]["urll"] = "oci://x/y:1".into(),
        "urll",
    ),
    (
        "an unknown field under wasm",
        "trafficextension.yaml",
        |d| d["spec"]["wasm"]["failOpen"] = true.into(),
        "failOpen",
    ),
    (
        "an unknown field deep in a patch match",
        "envoyfilter.yaml",
        |d| d["spec"]["configPatches"][0]["match"]["listener"]["port"] = 80.into(),
        "port",
    ),
    (
        "an unknown Deployment field",
        "forks.yaml",
        |d| d["spec"]["replica"] = 2.into(),
        "spec.replica: unknown field",
    ),
    (
        "a status in a manifest",
        "wasmplugin.yaml",
        |d| d["status"] = json!({}),
        "status: unknown top-level field",
    ),
    (
        "an ftp:// url",
        "wasmplugin.yaml",
        |d| d["spec"]["url"] = "ftp://example.com/m.wasm".into(),
        "url must have schema one of [http, https, file, oci]",
    ),
    (
        "an s3: url",
        "trafficextension.yaml",
        |d| d["spec"]["wasm"]["url"] = "s3:/bucket/m.wasm".into(),
        "url must have schema one of [http, https, file, oci]",
    ),
    (
        "an uppercase sha256",
        "wasmplugin.yaml",
        |d| d["spec"]["sha256"] = "A".repeat(64).into(),
        "spec/sha256",
    ),
    (
        "a short sha256",
        "wasmplugin.yaml",
        |d| d["spec"]["sha256"] = "abc".into(),
        "spec/sha256",
    ),
    (
        "a sha256 that is not the URL's digest",
        "trafficextension.yaml",
        |d| {
            d["spec"]["wasm"]["url"] = format!("oci://r/l@sha256:{}", "c".repeat(64)).into();
            d["spec"]["wasm"]["sha256"] = "b".repeat(64).into();
        },
        "differs from the digest in url",
    ),
    (
        "both wasm and lua",
        "trafficextension.yaml",
        |d| d["spec"]["lua"] = json!({"inlineCode": "x"}),
        "exactly one of wasm or lua must be set",
    ),
    (
        "a cross-namespace targetRef",
        "trafficextension-waypoint.yaml",
        |d| d["spec"]["targetRefs"][0]["namespace"] = "other".into(),
        CROSS_NAMESPACE,
    ),
    (
        "a wildcard selector",
        "wasmplugin-ingress.yaml",
        |d| d["spec"]["selector"]["matchLabels"]["istio"] = "*".into(),
        "wildcard not allowed in label value match",
    ),
    (
        "a waypoint match out of WAYPOINT",
        "envoyfilter.yaml",
        |d| d["spec"]["configPatches"][0]["match"]["waypoint"] = json!({"portNumber": 80}),
        "only support waypointMatch when context is WAYPOINT",
    ),
    (
        "an env value from HOST",
        "wasmplugin.yaml",
        |d| {
            d["spec"]["vmConfig"] =
                json!({"env": [{"name": "A", "valueFrom": "HOST", "value": "x"}]})
        },
        "value may only be set when valueFrom is INLINE",
    ),
    (
        "a version the CRD lacks",
        "wasmplugin.yaml",
        |d| d["apiVersion"] = "extensions.istio.io/v1".into(),
        "WasmPlugin has no version v1",
    ),
    (
        "another group",
        "wasmplugin.yaml",
        |d| d["apiVersion"] = "networking.istio.io/v1alpha1".into(),
        "WasmPlugin's CRD is",
    ),
    (
        "a kind with no CRD",
        "wasmplugin.yaml",
        |d| d["kind"] = "WasmPlugins".into(),
        "no CRD for WasmPlugins",
    ),
    (
        "pods the selector misses",
        "forks.yaml",
        |d| d["spec"]["template"]["metadata"]["labels"]["app"] = "other".into(),
        "the pods are not labelled app=",
    ),
    (
        "a bad label value",
        "forks.yaml",
        |d| d["metadata"]["labels"]["laneway.io/sandbox"] = "a~b".into(),
        "is not a label value",
    ),
];

#[test]
fn manifests_broken_on_purpose_fail_each_for_its_reason() {
    let files = istio(&hotrod(), &IstioOptions::default());
    let mut wrong = Vec::new();
    for (name, file, edit, reason) in BROKEN {
        let text = &files
            .iter()
            .find(|f| f.0 == *file)
            .unwrap_or_else(|| panic!("no {file}"))
            .1;
        let mut doc = documents(text, file).remove(0);
        assert_eq!(
            problems(&doc),
            Vec::<String>::new(),
            "{name}: {file} is valid before the edit"
        );
        edit(&mut doc);
        let found = problems(&doc);
        if !found.iter().any(|p| p.contains(reason)) {
            wrong.push(format!("{name}: expected {reason:?}, got {found:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn what_the_schema_preserves_may_hold_anything() {
    let files = istio(&hotrod(), &IstioOptions::default());
    let text = &files.iter().find(|f| f.0 == "wasmplugin.yaml").unwrap().1;
    let mut doc = documents(text, "wasmplugin.yaml").remove(0);
    doc["spec"]["pluginConfig"]["anything"] = json!({"at": ["all"]});
    assert_eq!(
        problems(&doc),
        Vec::<String>::new(),
        "pluginConfig preserves unknown fields"
    );
}

#[test]
fn the_url_rule_reads_urls_as_kubernetes_does() {
    for ok in [
        "registry.example.com/laneway:0.1.0",
        "oci://r/l:1",
        "file:///m.wasm",
        "localhost:5000/l",
        "/abs/path.wasm",
    ] {
        assert!(cel_url_scheme_ok(ok), "{ok}");
    }
    for bad in [
        "ftp://x/m.wasm",
        "s3:/b/m",
        "mailto:someone",
        "with space/m",
    ] {
        assert!(!cel_url_scheme_ok(bad), "{bad}");
    }
    assert!(is_sha256(&"b".repeat(64)));
}

#[test]
fn a_virtual_service_duration_below_1ms_fails() {
    let path = workspace().join("deploy/istio/virtualservice-regex.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut doc = documents(&text, "virtualservice-regex.yaml").remove(0);
    assert_eq!(problems(&doc), Vec::<String>::new());
    doc["spec"]["http"][0]["timeout"] = "500us".into();
    assert!(
        problems(&doc).iter().any(|p| p.contains(DURATION)),
        "500us is below 1ms"
    );
    doc["spec"]["http"][0]["timeout"] = "1.5s".into();
    assert_eq!(problems(&doc), Vec::<String>::new());
    assert_eq!(duration_ms("1h2m3.5s"), Some(3_723_500.0));
    assert_eq!(duration_ms("10"), None);
}

#[test]
fn the_vendored_crds_are_the_shared_ones() {
    let shared = workspace().join("../shared/istio-crds");
    if !shared.is_dir() {
        eprintln!(
            "{} is missing: only the vendored CRDs are checked",
            shared.display()
        );
        return;
    }
    for entry in std::fs::read_dir(workspace().join("deploy/istio/crds")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "yaml") {
            let theirs = shared.join(path.file_name().unwrap());
            assert_eq!(
                std::fs::read(&path).unwrap(),
                std::fs::read(&theirs).unwrap_or_default(),
                "{} differs from {}",
                path.display(),
                theirs.display()
            );
        }
    }
}
