//! `laneway render envoy`: every scenario of `testdata/scenarios/` renders
//! to a configuration that `envoy --mode validate` accepts, and
//! `deploy/envoy/hotrod/` is what the renderer writes for HotROD (set
//! `LANEWAY_BLESS=1` to rewrite it after an intended change).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use laneway_testdata::wasm;

fn laneway() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_laneway"));
    c.current_dir(wasm::workspace());
    c.stdin(Stdio::null());
    c
}

fn render(scenario: &Path, dir: &Path, extra: &[&str]) {
    let out = laneway()
        .args(["render", "envoy"])
        .arg(scenario)
        .arg("-o")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}: {}",
        scenario.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn scenarios() -> Vec<PathBuf> {
    laneway_testdata::corpus::scenario_files()
}

#[test]
fn every_rendered_envoy_configuration_validates() {
    let module = wasm::build("laneway-filter");
    let base = std::env::temp_dir().join(format!("laneway-render-envoy-{}", std::process::id()));
    for s in scenarios() {
        let dir = base.join(s.file_stem().unwrap());
        let ecds = dir.join("laneway-ecds.json");
        render(
            &s,
            &dir,
            &[
                "--module",
                module.to_str().unwrap(),
                "--ecds",
                ecds.to_str().unwrap(),
            ],
        );
        laneway_envoy::validate(&dir.join("bootstrap.yaml"))
            .unwrap_or_else(|e| panic!("{}: envoy --mode validate: {e}", s.display()));
        let e: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&ecds).unwrap()).unwrap();
        assert_eq!(e["resources"][0]["name"], "laneway", "{}", s.display());
    }
    // The checked-in renderings validate too; deploy/envoy/hotrod/ names
    // /etc/laneway/, mapped here to a directory that holds its files.
    let etc = base.join("etc-laneway");
    std::fs::create_dir_all(&etc).unwrap();
    let deploy = wasm::workspace().join("deploy/envoy/hotrod");
    std::fs::copy(
        deploy.join("laneway-ecds.json"),
        etc.join("laneway-ecds.json"),
    )
    .unwrap();
    std::fs::copy(&module, etc.join("laneway_filter.wasm")).unwrap();
    let text = std::fs::read_to_string(deploy.join("bootstrap.yaml"))
        .unwrap()
        .replace("/etc/laneway", &etc.display().to_string());
    std::fs::write(etc.join("bootstrap.yaml"), text).unwrap();
    // (deploy/envoy/bootstrap.yaml, hand-written, is validated with its
    // module placeholder filled in by simulator/envoy/tests/deploy.rs.)
    laneway_envoy::validate(&etc.join("bootstrap.yaml")).unwrap_or_else(|e| {
        panic!("deploy/envoy/hotrod/bootstrap.yaml: envoy --mode validate: {e}")
    });
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn deploy_envoy_hotrod_is_what_render_writes() {
    let dir =
        std::env::temp_dir().join(format!("laneway-render-envoy-drift-{}", std::process::id()));
    // Relative, as `make deploy` passes it: the header names it.
    let hotrod = PathBuf::from("testdata/scenarios/hotrod.yaml");
    render(&hotrod, &dir, &[]);
    let deploy = wasm::workspace().join("deploy/envoy/hotrod");
    for f in ["bootstrap.yaml", "laneway-ecds.json"] {
        let want = std::fs::read_to_string(dir.join(f)).unwrap();
        if std::env::var_os("LANEWAY_BLESS").is_some() {
            std::fs::create_dir_all(&deploy).unwrap();
            std::fs::write(deploy.join(f), &want).unwrap();
            continue;
        }
        let have = std::fs::read_to_string(deploy.join(f)).unwrap_or_default();
        assert!(
            have == want,
            "deploy/envoy/hotrod/{f} differs from `laneway render envoy testdata/scenarios/hotrod.yaml`; \
             rerun with LANEWAY_BLESS=1 (or `make deploy`) and review the diff"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_shaped_rendering_validates_and_says_joined_with_inline_headers() {
    let module = wasm::build("laneway-filter");
    let hotrod = wasm::workspace().join("testdata/scenarios/hotrod.yaml");
    let dir = std::env::temp_dir().join(format!("laneway-render-shaped-{}", std::process::id()));
    let ecds = dir.join("laneway-ecds.json");
    let paths = [
        "--module",
        module.to_str().unwrap(),
        "--ecds",
        ecds.to_str().unwrap(),
    ];
    render(
        &hotrod,
        &dir,
        &[&paths[..], &["--shape", "composite", "--inline-headers"]].concat(),
    );
    laneway_envoy::validate(&dir.join("bootstrap.yaml"))
        .unwrap_or_else(|e| panic!("composite + inline headers: envoy --mode validate: {e}"));
    let bootstrap = std::fs::read_to_string(dir.join("bootstrap.yaml")).unwrap();
    assert!(bootstrap.starts_with(&format!(
        "# Rendered by `laneway render envoy {} --shape composite --inline-headers`",
        hotrod.display()
    )));
    assert!(bootstrap.contains("envoy.filters.http.composite"));
    assert!(bootstrap.contains("inline_header_name: baggage"));
    let e: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&ecds).unwrap()).unwrap();
    let config = e["resources"][0]["typed_config"]["config"]["configuration"]["value"]
        .as_str()
        .unwrap();
    assert!(config.contains(r#""joined":true"#), "{config}");
    // Without --inline-headers, never joined.
    render(
        &hotrod,
        &dir,
        &[&paths[..], &["--shape", "composite"]].concat(),
    );
    let text = std::fs::read_to_string(&ecds).unwrap();
    assert!(!text.contains("joined"), "{text}");
    let bootstrap = std::fs::read_to_string(dir.join("bootstrap.yaml")).unwrap();
    assert!(!bootstrap.contains("inline_headers"));
    let _ = std::fs::remove_dir_all(&dir);
}
