//! The manifests in `deploy/` are what a platform engineer applies, so they
//! are checked like code:
//! - the Istio WasmPlugin and EnvoyFilter validate against Istio's CRD
//!   schemas (`deploy/istio/crds/`), plus the CEL rules the schemas cannot
//!   express that these manifests rely on;
//! - every Laneway configuration they carry passes `Config::from_json`;
//! - the Envoy bootstrap is what the one bootstrap builder writes (a drift
//!   test; `LANEWAY_BLESS=1` rewrites the file), and passes `envoy --mode
//!   validate`, which loads the module and runs `on_configure` (and the same
//!   bootstrap with a broken configuration fails, so the check is live).

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
