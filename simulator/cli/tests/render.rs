//! `laneway render istio` as users and CI see it:
//! - `deploy/istio/` holds exactly what `make deploy` renders from
//!   `testdata/scenarios/hotrod.yaml` (a drift test; `LANEWAY_BLESS=1`
//!   rewrites the files, as `make deploy` does);
//! - without `-o`, every file goes to stdout, `---` between them;
//! - a bad scenario or option exits 2, says where and why, and writes
//!   nothing; `-o` never writes over an input of the run.
//!
//! That the files are what Istio accepts is checked against the CRDs in
//! `simulator/deploy/tests/manifests.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use laneway_deploy::istio::RENDERED_MARK;
use serde::Deserialize;

/// The worked example.
const HOTROD: &str = "testdata/scenarios/hotrod.yaml";

/// What `make deploy` runs (from the workspace root), `-o` aside.
const MAKE_DEPLOY: &[&str] = &["render", "istio", HOTROD, "--namespace", "hotrod"];

/// The workspace root, as this test was built from it.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn laneway(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_laneway"))
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("the laneway binary runs")
}

/// `laneway render istio SCENARIO -o DIR`.
fn render_into(scenario: &Path, dir: &Path) -> Output {
    let (scenario, dir) = (scenario.to_str().unwrap(), dir.to_str().unwrap());
    laneway(&["render", "istio", scenario, "-o", dir])
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("laneway-render-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `.yaml` files of `dir` that `laneway render` wrote: `(name, text)`.
fn rendered_in(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .filter(|(_, text)| text.starts_with(RENDERED_MARK))
        .collect();
    files.sort();
    files
}

#[test]
fn deploy_istio_is_what_make_deploy_renders() {
    let deploy = workspace().join("deploy/istio");
    if std::env::var_os("LANEWAY_BLESS").is_some() {
        let out = laneway(&[MAKE_DEPLOY, &["-o", "deploy/istio"]].concat());
        assert!(out.status.success(), "{}", stderr(&out));
        return;
    }
    let dir = scratch("drift");
    let out = laneway(&[MAKE_DEPLOY, &["-o", dir.to_str().unwrap()]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let fresh = rendered_in(&dir);
    let on_disk = rendered_in(&deploy);
    let mut drift = Vec::new();
    for (name, text) in &fresh {
        match on_disk.iter().find(|(n, _)| n == name) {
            None => drift.push(format!("{name}: missing from deploy/istio/")),
            Some((_, old)) if old != text => {
                let line = old
                    .lines()
                    .zip(text.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or_else(|| old.lines().count().min(text.lines().count()));
                drift.push(format!("{name}: differs from line {}", line + 1));
            }
            Some(_) => {}
        }
    }
    for (name, _) in &on_disk {
        if !fresh.iter().any(|(n, _)| n == name) {
            drift.push(format!(
                "{name}: rendered once, rendered no more: delete it"
            ));
        }
    }
    assert!(
        drift.is_empty(),
        "deploy/istio/ differs from `laneway {}`:\n  {}\nRegenerate it with `make deploy` \
         (or LANEWAY_BLESS=1 cargo test -p laneway-cli --test render).",
        MAKE_DEPLOY.join(" "),
        drift.join("\n  ")
    );
    assert!(fresh.len() >= 8, "{} files rendered", fresh.len());
    // The deployment shapes (issue 12) are among them.
    for shape in [
        "envoyfilter-composite.yaml",
        "bootstrap-inline-headers.yaml",
    ] {
        assert!(fresh.iter().any(|(n, _)| n == shape), "no {shape}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_o_every_file_goes_to_stdout() {
    let out = laneway(MAKE_DEPLOY);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let dir = scratch("stdout");
    let written = laneway(&[MAKE_DEPLOY, &["-o", dir.to_str().unwrap()]].concat());
    assert!(written.status.success());
    let files = rendered_in(&dir);
    let joined: Vec<&str> = files.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        text,
        joined.join("---\n"),
        "stdout is the files, in name order, `---` between"
    );
    // One YAML stream: every document of every file, each a named object.
    let docs: Vec<serde_json::Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| serde_json::Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect();
    assert!(
        docs.len() > files.len(),
        "{} documents in {} files",
        docs.len(),
        files.len()
    );
    assert!(docs.iter().all(|d| d["metadata"]["name"].is_string()));
    // -o lists what it wrote.
    let listed = String::from_utf8(written.stdout).unwrap();
    assert_eq!(listed.lines().count(), files.len(), "{listed}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_scenario_exits_2_with_where_and_why_and_writes_nothing() {
    let dir = scratch("bad-scenario");
    let scenario = dir.join("bad.yaml");
    std::fs::write(
        &scenario,
        "name: bad\nservices:\n  a: { port: 80 }\nchains: []\nsandboxes:\n  - key: k\n    forks:\n      - service: nosuch\ntraffic: []\n",
    )
    .unwrap();
    let out_dir = dir.join("out");
    let out = render_into(&scenario, &out_dir);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}#/sandboxes/0/forks/0/service: ",
            scenario.display()
        )),
        "{err}"
    );
    assert!(!out_dir.exists(), "nothing is written for a bad scenario");
    let missing = laneway(&["render", "istio", "no/such/scenario.yaml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("no/such/scenario.yaml: cannot read"),
        "{}",
        stderr(&missing)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_option_exits_2_naming_it() {
    for (flag, value, says) in [
        (
            "--sha256",
            "ABC",
            "--sha256: ABC: not 64 lowercase hex digits",
        ),
        (
            "--url",
            "ftp://example.com/m.wasm",
            "--url: ftp://example.com/m.wasm: scheme ftp",
        ),
        ("--url", "registry.example.com/laneway:1", "give a scheme"),
        (
            "--namespace",
            "Hot_Rod",
            "--namespace: Hot_Rod: must be lowercase",
        ),
    ] {
        let out = laneway(&["render", "istio", HOTROD, flag, value]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{flag} {value}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(says),
            "{flag} {value}: {}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty(), "nothing rendered with a bad {flag}");
    }
    let sha = "ab".repeat(32);
    let url = format!("oci://ghcr.io/acme/laneway@sha256:{sha}");
    let out = laneway(&[MAKE_DEPLOY, &["--url", &url, "--sha256", &sha]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!("sha256: {sha}")));
    assert!(
        text.contains(&format!("--url {url} --sha256 {sha}`")),
        "the header renders it again"
    );
}

#[test]
fn o_refuses_to_write_over_an_input() {
    let dir = scratch("input");
    let scenario = dir.join("forks.yaml");
    let original = std::fs::read(workspace().join(HOTROD)).unwrap();
    std::fs::write(&scenario, &original).unwrap();
    let out = render_into(&scenario, &dir);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("refusing to overwrite"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(&scenario).unwrap(),
        original,
        "the scenario is untouched"
    );
    assert!(
        !dir.join("wasmplugin.yaml").exists(),
        "nothing is written when one file is refused"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_shows_render_istio_and_its_flags() {
    let out = laneway(&["render", "istio", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--output <DIR>",
        "--url <URL>",
        "--sha256 <HEX>",
        "--namespace <NS>",
        "--fork-image <IMAGE>",
    ] {
        assert!(help.contains(flag), "{flag} in\n{help}");
    }
    let top = String::from_utf8(laneway(&["--help"]).stdout).unwrap();
    assert!(top.contains("render") && top.contains("oci"), "{top}");
}
