//! The `laneway` binary as users and CI see it: `inspect` JSON, `validate`
//! exit codes and messages (over the whole `testdata/config-errors/`
//! corpus), and bad input that must exit 2 without a panic.

use laneway_testdata as corpus;

use std::process::{Command, Output};

use serde_json::Value;

fn laneway(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_laneway"))
        .args(args)
        .output()
        .expect("the laneway binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("stdout is one JSON object")
}

fn config(name: &str) -> String {
    corpus::testdata()
        .join("configs")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn inspect_reports_members_in_header_order_with_decoded_values() {
    let out = json(&laneway(&[
        "inspect",
        "--baggage",
        "user=alice;p=1,k=v",
        "--baggage",
        "sd-routing-key=%71wblp48fpmb30, k=v",
        "--tracestate",
        "rojo=00f067aa0ba902b7",
    ]));
    let keys: Vec<&str> = out
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["baggage", "tracestate", "routing_key"],
        "no decision without --config"
    );
    let members = out["baggage"]["members"].as_array().unwrap();
    let got: Vec<(&str, &str)> = members
        .iter()
        .map(|m| (m["key"].as_str().unwrap(), m["value"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("user", "alice"),
            ("k", "v"),
            ("sd-routing-key", "qwblp48fpmb30"),
            ("k", "v")
        ]
    );
    assert_eq!(members[0]["properties"], serde_json::json!(["p=1"]));
    assert_eq!(out["baggage"]["invalid"], 0);
    assert_eq!(out["tracestate"]["valid"], true);
    assert_eq!(out["tracestate"]["members"][0]["key"], "rojo");
    assert_eq!(
        out["routing_key"],
        serde_json::json!({"value": "qwblp48fpmb30", "source": "baggage", "member": "sd-routing-key"})
    );
}

#[test]
fn inspect_decides_with_a_configuration() {
    let hotrod = config("hotrod.json");
    let out = json(&laneway(&[
        "inspect",
        "--baggage",
        "sd-routing-key=qwblp48fpmb30",
        "--config",
        &hotrod,
        "--authority",
        "location:8083",
    ]));
    assert_eq!(out["decision"]["route"], "fork");
    assert_eq!(out["decision"]["reason"], "fork");
    assert_eq!(
        out["decision"]["destination"],
        "location-qwblp48fpmb30:8083"
    );

    let out = json(&laneway(&[
        "inspect",
        "--baggage",
        "not-sd-routing-key=qwblp48fpmb30",
        "--config",
        &hotrod,
        "--authority",
        "location:8083",
    ]));
    assert_eq!(out["routing_key"], Value::Null);
    assert_eq!(out["decision"]["route"], "baseline");
    assert_eq!(out["decision"]["reason"], "no_key");
    assert_eq!(out["decision"]["destination"], "location:8083");

    let out = json(&laneway(&[
        "inspect",
        "--tracestate",
        "sd-routing-key=gone",
        "--config",
        &config("hotrod-reject.json"),
        "--authority",
        "location",
    ]));
    assert_eq!(out["decision"]["route"], "reject");
    assert_eq!(out["decision"]["status"], 421);
    assert_eq!(out["routing_key"]["source"], "tracestate");
}

#[test]
fn inspect_explains_skipped_members_and_discarded_tracestate() {
    let out = json(&laneway(&[
        "inspect",
        "--baggage",
        "sd-routing-key=qwblp48fpmb30 x",
        "--tracestate",
        "Bad=1",
        "--config",
        &config("hotrod.json"),
        "--authority",
        "location:8083",
    ]));
    assert_eq!(out["baggage"]["invalid"], 1);
    assert_eq!(
        out["baggage"]["skipped"][0]["member"],
        "sd-routing-key=qwblp48fpmb30 x"
    );
    assert_eq!(out["tracestate"]["valid"], false);
    assert_eq!(out["decision"]["reason"], "malformed");
    let why = out["decision"]["explanation"].as_str().unwrap();
    assert!(
        why.contains("1 invalid baggage member") && why.contains("tracestate discarded"),
        "{why}"
    );
}

#[test]
fn validate_accepts_shipped_configs() {
    for name in ["hotrod.json", "hotrod-reject.json", "custom-members.json"] {
        let out = laneway(&["validate", &config(name)]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(": ok ("),
            "{name}"
        );
    }
}

#[test]
fn validate_reports_every_corpus_error_with_file_path_and_reason() {
    let dir = std::env::temp_dir().join(format!("laneway-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (file, case) in corpus::config_cases() {
        let at = format!("{file}: {}", case.name);
        let path = dir.join(format!("{}.json", case.name));
        std::fs::write(&path, &case.config).unwrap();
        let p = path.display().to_string();
        let out = laneway(&["validate", &p]);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{at}: {err}");
        if case.errors.is_empty() {
            assert_eq!(out.status.code(), Some(0), "{at}: {err}");
            continue;
        }
        assert_eq!(out.status.code(), Some(2), "{at}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), case.errors.len(), "{at}: {err}");
        for (line, want) in lines.iter().zip(&case.errors) {
            let prefix = if want.path.is_empty() {
                format!("{p}: ")
            } else {
                format!("{p}: {}: ", want.path)
            };
            assert!(
                line.starts_with(&prefix),
                "{at}: {line:?} should start with {prefix:?}"
            );
            assert!(
                line.contains(&want.reason),
                "{at}: {line:?} lacks {:?}",
                want.reason
            );
        }
        let out = laneway(&["validate", "--json", &p]);
        assert_eq!(out.status.code(), Some(2), "{at}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["valid"], false);
        assert_eq!(
            v["errors"].as_array().unwrap().len(),
            case.errors.len(),
            "{at}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_and_usage_exit_2_without_panicking() {
    for args in [
        vec!["validate", "/nonexistent/plugin.json"],
        vec![
            "inspect",
            "--config",
            "/nonexistent.json",
            "--authority",
            "a",
        ],
        vec!["inspect", "--config", "x.json"],
        vec!["nonsense"],
        vec![
            "demo-envoy",
            "--wasm",
            "/nonexistent.wasm",
            "--config",
            "/nonexistent.json",
        ],
    ] {
        let out = laneway(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{args:?}");
    }
    let out = laneway(&["validate", "/nonexistent/plugin.json"]);
    assert!(
        stderr(&out).contains("/nonexistent/plugin.json: cannot read"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_lists_every_subcommand() {
    let out = laneway(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in ["inspect", "validate", "demo-envoy"] {
        assert!(text.contains(sub), "--help lacks {sub}");
    }
}
