//! The manifests in `deploy/` are what a platform engineer applies, so they
//! are checked like code:
//! - the Istio WasmPlugin and EnvoyFilter validate against Istio's CRD
//!   schemas (`deploy/istio/crds/`), plus the CEL rules the schemas cannot
//!   express that these manifests rely on;
//! - every Laneway configuration they carry passes `Config::from_json`;
//! - the Envoy bootstrap is what the one bootstrap builder writes (a drift
//!   test; `LANEWAY_BLESS=1` rewrites the file), and passes `envoy --mode
//!   validate`, which loads the module and runs `on_configure` (and the same
//!   bootstrap with a broken configuration fails, so the check is live);
//! - the composite EnvoyFilter's patch (the filter behind the composite
//!   wrapper) and the inline-headers ConfigMap's bootstrap fragment pass
//!   `envoy --mode validate` inside a sidecar bootstrap, and broken copies
//!   of each fail.

use std::path::PathBuf;

use laneway_core::Config;
use laneway_envoy::bootstrap;
use laneway_testdata::wasm;
use serde_json::Value;

fn deploy() -> PathBuf {
    wasm::workspace().join("deploy")
}

fn yaml(path: &str) -> Value {
    let p = deploy().join(path);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Validates `manifest.spec` against the CRD's schema for its version.
fn check_against_crd(manifest: &Value, crd: &str) {
    let crd = yaml(&format!("istio/crds/{crd}"));
    let version = manifest["apiVersion"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let schema = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == version)
        .unwrap_or_else(|| panic!("the CRD has no version {version}"))["schema"]["openAPIV3Schema"]
        ["properties"]["spec"]
        .clone();
    let validator = jsonschema::validator_for(&schema).expect("the CRD schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&manifest["spec"])
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}: {errors:#?}", manifest["kind"]);
}

#[test]
fn wasmplugin_matches_its_crd_and_carries_a_valid_config() {
    let m = yaml("istio/wasmplugin.yaml");
    assert_eq!(m["kind"], "WasmPlugin");
    check_against_crd(&m, "wasmplugin.yaml");
    let spec = &m["spec"];
    // CEL rules of the CRD that the schema check skips, and Laneway's needs.
    assert!(
        spec.get("selector").is_none() || spec.get("targetRefs").is_none(),
        "only one of selector or targetRefs"
    );
    assert_eq!(
        spec["match"],
        serde_json::json!([{"mode": "CLIENT"}]),
        "outbound only"
    );
    assert_eq!(spec["failStrategy"], "FAIL_OPEN");
    assert_eq!(spec["phase"], "UNSPECIFIED_PHASE", "just before the router");
    let config = serde_json::to_string(&spec["pluginConfig"]).unwrap();
    Config::from_json(&config).unwrap_or_else(|e| panic!("pluginConfig: {e}"));
}

#[test]
fn wasmplugin_schema_check_is_live() {
    let mut m = yaml("istio/wasmplugin.yaml");
    m["spec"]["failStrategy"] = "FAIL_SOMETIMES".into();
    let crd = yaml("istio/crds/wasmplugin.yaml");
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let validator = jsonschema::validator_for(schema).unwrap();
    assert!(
        !validator.is_valid(&m["spec"]),
        "a bad enum value must fail the schema"
    );
}

#[test]
fn envoyfilter_matches_its_crd_and_carries_a_valid_config() {
    let m = yaml("istio/envoyfilter.yaml");
    assert_eq!(m["kind"], "EnvoyFilter");
    check_against_crd(&m, "envoyfilter.yaml");
    let patch = &m["spec"]["configPatches"][0];
    assert_eq!(patch["match"]["context"], "SIDECAR_OUTBOUND");
    assert_eq!(patch["patch"]["operation"], "INSERT_BEFORE");
    let config = &patch["patch"]["value"]["typed_config"]["config"];
    assert_eq!(config["failure_policy"], "FAIL_OPEN");
    let text = config["configuration"]["value"].as_str().unwrap();
    Config::from_json(text).unwrap_or_else(|e| panic!("configuration: {e}"));
}

fn bootstrap_with(module: &std::path::Path, edit: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(deploy().join("envoy/bootstrap.yaml")).unwrap();
    let text = edit(text.replace("LANEWAY_WASM", &module.display().to_string()));
    let path = std::env::temp_dir().join(format!(
        "laneway-deploy-{}-{}.yaml",
        std::process::id(),
        text.len()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn envoy_bootstrap_validates_in_real_envoy() {
    let module = wasm::build("laneway-filter");
    let good = bootstrap_with(&module, |t| t);
    laneway_envoy::validate(&good).unwrap_or_else(|e| panic!("deploy/envoy/bootstrap.yaml: {e}"));
    let bad = bootstrap_with(&module, |t| {
        t.replace(r#"{"version": 1,"#, r#"{"version": 7,"#)
    });
    let err =
        laneway_envoy::validate(&bad).expect_err("a bad plugin configuration must fail validation");
    assert!(
        err.contains("Unable to create Wasm plugin laneway"),
        "{err}"
    );
    let _ = std::fs::remove_file(good);
    let _ = std::fs::remove_file(bad);
}

#[test]
fn envoy_bootstrap_is_what_the_builder_writes() {
    let path = deploy().join("envoy/bootstrap.yaml");
    let rendered = bootstrap::yaml(bootstrap::DEPLOY_HEADER, &bootstrap::deploy_example());
    if std::env::var_os("LANEWAY_BLESS").is_some() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap();
    assert!(
        on_disk == rendered,
        "{} differs from laneway_envoy::bootstrap::deploy_example(); run with LANEWAY_BLESS=1 to rewrite it",
        path.display()
    );
    // And the file is live: the builder's access-log format is the one
    // every bootstrap uses.
    assert!(on_disk.contains("FILTER_STATE(wasm.laneway:PLAIN)"));
}

/// `deploy/istio/envoyfilter-composite.yaml`'s patch value (the filter
/// behind its composite wrapper) in a sidecar bootstrap, before the
/// router, reading `module`; written to a file for `envoy --mode validate`.
fn composite_patch_in_a_bootstrap(module: &std::path::Path, edit: impl Fn(&mut Value)) -> PathBuf {
    let m = yaml("istio/envoyfilter-composite.yaml");
    let mut value = m["spec"]["configPatches"][0]["patch"]["value"].clone();
    let wasm = &mut value["typed_config"]["xds_matcher"]["matcher_list"]["matchers"][0]["on_match"]
        ["action"]["typed_config"]["typed_config"]["typed_config"]["config"];
    wasm["vm_config"]["code"]["local"]["filename"] = module.display().to_string().into();
    edit(wasm);
    let mut b = bootstrap::sidecar(&bootstrap::Sidecar::new(
        bootstrap::Filter::None,
        vec![bootstrap::VirtualHost::to(
            "location",
            bootstrap::Target::Direct("location@baseline".into()),
        )],
    ));
    let filters = b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["http_filters"]
        .as_array_mut()
        .unwrap();
    filters.insert(0, value);
    let path = std::env::temp_dir().join(format!(
        "laneway-deploy-composite-{}-{}.json",
        std::process::id(),
        b.to_string().len()
    ));
    std::fs::write(&path, b.to_string()).unwrap();
    path
}

#[test]
fn composite_envoyfilter_matches_its_crd_and_validates_in_real_envoy() {
    let m = yaml("istio/envoyfilter-composite.yaml");
    assert_eq!(m["kind"], "EnvoyFilter");
    check_against_crd(&m, "envoyfilter.yaml");
    let module = wasm::build("laneway-filter");
    let good = composite_patch_in_a_bootstrap(&module, |_| {});
    laneway_envoy::validate(&good)
        .unwrap_or_else(|e| panic!("deploy/istio/envoyfilter-composite.yaml in Envoy: {e}"));
    // Envoy loads the wrapped filter at configuration time: a broken
    // plugin configuration behind the wrapper fails too (the check is live).
    let bad = composite_patch_in_a_bootstrap(&module, |w| {
        w["configuration"]["value"] = r#"{"version": 7}"#.into();
    });
    let err = laneway_envoy::validate(&bad).expect_err("a bad configuration must fail");
    assert!(
        err.contains("Unable to create Wasm plugin laneway"),
        "{err}"
    );
    let _ = std::fs::remove_file(good);
    let _ = std::fs::remove_file(bad);
}

#[test]
fn inline_headers_configmap_holds_a_bootstrap_fragment_envoy_accepts() {
    let text =
        std::fs::read_to_string(deploy().join("istio/bootstrap-inline-headers.yaml")).unwrap();
    let m: Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(m["kind"], "ConfigMap");
    let fragment: Value =
        serde_json::from_str(m["data"]["custom_bootstrap.json"].as_str().unwrap()).unwrap();
    // Merged into a bootstrap, as pilot-agent merges an override.
    let mut b = bootstrap::sidecar(&bootstrap::Sidecar::new(
        bootstrap::Filter::None,
        vec![bootstrap::VirtualHost::to(
            "location",
            bootstrap::Target::Direct("x".into()),
        )],
    ));
    b["inline_headers"] = fragment["inline_headers"].clone();
    let path =
        std::env::temp_dir().join(format!("laneway-deploy-inline-{}.json", std::process::id()));
    std::fs::write(&path, b.to_string()).unwrap();
    laneway_envoy::validate(&path).unwrap_or_else(|e| panic!("the inline-headers fragment: {e}"));
    // A misspelt header type is refused (the check is live).
    b["inline_headers"][0]["inline_header_type"] = "REQUEST_HEADERS".into();
    std::fs::write(&path, b.to_string()).unwrap();
    assert!(laneway_envoy::validate(&path).is_err());
    let _ = std::fs::remove_file(path);
}
