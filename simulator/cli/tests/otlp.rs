//! `laneway replay --otlp`: the replayed requests as OTLP/JSON traces.
//!
//! - Every line of the file is one `ExportTraceServiceRequest`, one per
//!   request in request order, with one span per hop replayed.
//! - The file is the same bytes for one thread and for two.
//! - `--otlp-limit` keeps the first N requests of the run, across
//!   scenarios, and a warning says how many were left out.
//! - A bad output path is exit 2 before any work; `-` is refused.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use laneway_testdata::wasm;
use serde_json::Value;

const HOTROD: &str = "testdata/scenarios/hotrod.yaml";
const FAULTS: &str = "testdata/scenarios/faults.yaml";

fn dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("laneway-otlp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn replay(scenarios: &[&str], args: &[&str], otlp: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_laneway"))
        .current_dir(wasm::workspace())
        .arg("replay")
        .args(scenarios)
        .arg("--wasm")
        .arg(wasm::build("laneway-filter"))
        .arg("--otlp")
        .arg(otlp)
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every span of a line, with the names of its attributes.
fn spans(line: &Value) -> Vec<(&Value, Vec<&str>)> {
    line["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rs| rs["scopeSpans"][0]["spans"].as_array().unwrap())
        .map(|s| {
            let keys = s["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|kv| kv["key"].as_str().unwrap())
                .collect();
            (s, keys)
        })
        .collect()
}

#[test]
fn otlp_has_a_line_per_request_and_a_span_per_hop_whatever_the_threads() {
    let dir = dir();
    let (one, two, json) = (dir.join("1.otlp"), dir.join("2.otlp"), dir.join("r.json"));
    let out = replay(
        &[HOTROD],
        &["--threads", "1", "--json", json.to_str().unwrap()],
        &one,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let text = std::fs::read_to_string(&one).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON document"))
        .collect();
    assert_eq!(lines.len() as u64, report["scenarios"][0]["requests"]);
    let all: Vec<_> = lines.iter().flat_map(spans).collect();
    assert_eq!(all.len() as u64, report["scenarios"][0]["hops"]);
    let traces: HashSet<&str> = all
        .iter()
        .map(|(s, _)| s["traceId"].as_str().unwrap())
        .collect();
    assert_eq!(traces.len(), lines.len(), "one trace per request");
    for (s, keys) in &all {
        assert_eq!(s["traceId"].as_str().unwrap().len(), 32);
        assert_eq!(s["spanId"].as_str().unwrap().len(), 16);
        assert_eq!(s["kind"], 2);
        let tagged =
            s["attributes"].as_array().unwrap().iter().any(|kv| {
                kv["key"] == "laneway.traffic" && kv["value"]["stringValue"] != "untagged"
            });
        // In hotrod every workload propagates: the key is on every hop of a
        // tagged request, and on none of an untagged one.
        assert_eq!(keys.contains(&"sd-routing-key"), tagged, "{s}");
    }
    let forks = all
        .iter()
        .filter(|(s, _)| {
            s["attributes"].as_array().unwrap().iter().any(|kv| {
                kv["key"] == "k8s.deployment.name"
                    && kv["value"]["stringValue"] == "location-qwblp48fpmb30"
            })
        })
        .count();
    assert_eq!(forks, 120, "every tagged request reaches the location fork");

    let out = replay(&[HOTROD], &["--threads", "2"], &two);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        std::fs::read(&two).unwrap() == text.as_bytes(),
        "--threads 1 and --threads 2 wrote different files"
    );
}

#[test]
fn otlp_limit_keeps_the_first_requests_of_the_run_and_says_so() {
    let dir = dir();
    let (full, limited) = (dir.join("full.otlp"), dir.join("limited.otlp"));
    let out = replay(&[HOTROD], &[], &full);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // hotrod has 1,120 requests and faults 500: 30 of faults fit.
    let out = replay(&[HOTROD, FAULTS], &["--otlp-limit", "1150"], &limited);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("wrote the traces of 1,150 requests, left out 470 (--otlp-limit 1,150"),
        "{err}"
    );
    let limited = std::fs::read_to_string(&limited).unwrap();
    let full = std::fs::read_to_string(&full).unwrap();
    assert_eq!(limited.lines().count(), 1150);
    assert!(
        limited.starts_with(&full),
        "hotrod's lines come first, whole"
    );
    for line in limited.lines().skip(1120) {
        let v: Value = serde_json::from_str(line).unwrap();
        let (span, _) = &spans(&v)[0];
        let request = span["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|kv| kv["key"] == "laneway.request")
            .unwrap();
        assert!(
            request["value"]["stringValue"]
                .as_str()
                .unwrap()
                .starts_with("before-swap#"),
            "{request}"
        );
    }
}

#[test]
fn a_bad_otlp_path_is_exit_2_before_the_replay() {
    let dir = dir();
    let out = replay(&[HOTROD], &[], &dir.join("no-such-dir/t.otlp"));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("--otlp: cannot write"), "{err}");
    assert!(!err.contains("hops in"), "refused before the replay: {err}");

    let out = replay(&[HOTROD], &[], Path::new("-"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--otlp -"), "{}", stderr(&out));

    let out = replay(&[HOTROD], &[], Path::new(HOTROD));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("refusing to overwrite"),
        "{}",
        stderr(&out)
    );

    let out = replay(&[HOTROD], &["--otlp-limit", "0"], &dir.join("zero.otlp"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
