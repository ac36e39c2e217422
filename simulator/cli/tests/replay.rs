//! `laneway replay` and `laneway explain` over `testdata/scenarios/`.
//!
//! - Every scenario's text report (with `--details`) matches its golden
//!   file in `testdata/scenarios/golden/`. Set `LANEWAY_BLESS=1` to rewrite
//!   the golden files after an intended change, then review the diff.
//! - Scenarios in `scenarios/` pass; those in `scenarios/failing/` fail
//!   for the reason their comment names.
//! - Reports are the same for any thread count.
//! - Every broken file in `scenarios/broken/` exits 2 with the location and
//!   reason listed in `broken/expected.toml`, never a panic.
//! - The differential and failed-hop checks can fail: a module that routes
//!   nothing, and one that traps.

use std::path::{Path, PathBuf};
use std::process::Command;

use laneway_replay::{NativeFactory, Options, WasmFactory};
use laneway_report::{self as report, Report, TextOptions};
use laneway_scenario::Scenario;
use laneway_testdata::wasm;
use proxy_wasm_host::Plugin;
use serde::Deserialize;

fn scenarios_dir() -> PathBuf {
    wasm::workspace().join("testdata/scenarios")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "json"))
        .collect();
    v.sort();
    v
}

/// Loads a scenario with its path relative to the workspace, as the CLI
/// shows it when run from the repository root.
fn load(path: &Path) -> Scenario {
    let mut s = Scenario::load(path).unwrap_or_else(|e| panic!("{e}"));
    s.file = path
        .strip_prefix(wasm::workspace())
        .unwrap_or(path)
        .to_path_buf();
    s
}

fn plugin() -> WasmFactory {
    WasmFactory::new(
        Plugin::load(&wasm::build("laneway-filter")).expect("the filter loads"),
        "laneway_filter.wasm",
    )
}

fn run(plugin: &WasmFactory, s: &Scenario, threads: usize) -> Report {
    let replayed = laneway_replay::replay(
        s,
        plugin,
        Some(&NativeFactory),
        &Options {
            threads,
            ..Options::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    Report::new(s, &replayed)
}

fn check_golden(name: &str, actual: &str) {
    let path = scenarios_dir().join("golden").join(format!("{name}.txt"));
    if std::env::var_os("LANEWAY_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with LANEWAY_BLESS=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(5)
            .map(|(i, (e, a))| format!("line {}:\n  golden: {e}\n  actual: {a}", i + 1))
            .collect();
        panic!(
            "{} differs from the replay (LANEWAY_BLESS=1 rewrites it):\n{}\n(golden {} lines, actual {} lines)",
            path.display(),
            diff.join("\n"),
            expected.lines().count(),
            actual.lines().count()
        );
    }
}

#[test]
fn passing_scenarios_pass_and_match_their_golden_reports() {
    let plugin = plugin();
    let files = yaml_files(&scenarios_dir());
    assert!(files.len() >= 6, "the scenario corpus shrank");
    for path in files {
        let s = load(&path);
        let r = run(&plugin, &s, 2);
        let text = report::text(
            &r,
            TextOptions {
                details: true,
                only_failures: false,
            },
        );
        assert!(r.passed(), "{}:\n{text}", path.display());
        assert_eq!(r.requests, s.requests);
        check_golden(&s.name, &text);
    }
}

#[test]
fn failing_scenarios_fail_for_their_reason() {
    let plugin = plugin();
    let want = [
        ("ambient-no-waypoint", vec!["miss", "unreachable-forks"]),
        ("cross-talk", vec!["cross-talk", "miss"]),
        ("dropped-context", vec!["miss"]),
        ("spoofed", vec!["leak"]),
        ("wrong-expectations", vec!["expectations"]),
    ];
    let files = yaml_files(&scenarios_dir().join("failing"));
    assert_eq!(files.len(), want.len());
    for path in files {
        let s = load(&path);
        let r = run(&plugin, &s, 2);
        let failed: Vec<&str> = r
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect();
        let expected = &want
            .iter()
            .find(|(n, _)| *n == s.name)
            .unwrap_or_else(|| panic!("{}", s.name))
            .1;
        assert_eq!(&failed, expected, "{}", path.display());
        check_golden(
            &format!("failing-{}", s.name),
            &report::text(
                &r,
                TextOptions {
                    details: true,
                    only_failures: false,
                },
            ),
        );
    }
}

#[test]
fn the_miss_check_names_where_the_context_was_dropped() {
    let s = load(&scenarios_dir().join("failing/dropped-context.yaml"));
    let r = run(&plugin(), &s, 1);
    let miss = r.checks.iter().find(|c| c.name == "miss").unwrap();
    assert_eq!(miss.count, 20, "one miss per request: svc-d");
    assert_eq!(
        miss.examples[0],
        "tagged#0: missed svc-d@fork(k1) (context_dropped at svc-c@baseline)"
    );
}

#[test]
fn reports_do_not_depend_on_the_thread_count() {
    let plugin = plugin();
    for name in ["hotrod.yaml", "faults.yaml", "thousand-sandboxes.yaml"] {
        let s = load(&scenarios_dir().join(name));
        let texts: Vec<String> = [1, 3]
            .iter()
            .map(|&t| {
                report::text(
                    &run(&plugin, &s, t),
                    TextOptions {
                        details: true,
                        only_failures: false,
                    },
                )
            })
            .collect();
        assert_eq!(texts[0], texts[1], "{name}");
    }
}

#[test]
fn the_differential_check_catches_a_filter_that_disagrees_with_the_core() {
    // The empty filter continues everything: it never forks, while the core
    // would. Every hop to a forked service must disagree.
    let empty = WasmFactory::new(
        Plugin::load(&wasm::build("laneway-empty-filter")).unwrap(),
        "empty.wasm",
    );
    let s = load(&scenarios_dir().join("hotrod.yaml"));
    let r = run(&empty, &s, 2);
    let diff = r.checks.iter().find(|c| c.name == "differential").unwrap();
    assert!(!diff.passed);
    // tagged (100), percent-encoded (10), tracestate-only (10) requests each
    // have one hop to location that the core forks, and the frontend hop
    // where the core says no_fork while the empty filter reports no_key.
    assert!(diff.count >= 120, "{}", diff.count);
    assert!(
        diff.examples[0].contains("the filter says baseline (no_key)"),
        "{}",
        diff.examples[0]
    );
}

#[test]
fn a_trapping_filter_is_a_failed_hop_never_a_crash() {
    let wat = r#"(module
      (memory (export "memory") 1)
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
      (func (export "proxy_on_context_create") (param i32 i32))
      (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
      (func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const 1)
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) unreachable))"#;
    let trapping = WasmFactory::new(Plugin::from_bytes(wat.as_bytes()).unwrap(), "trap.wat");
    let s = load(&scenarios_dir().join("deep-chain.yaml"));
    let r = run(&trapping, &s, 2);
    let failed = r.checks.iter().find(|c| c.name == "failed-hops").unwrap();
    assert_eq!(
        failed.count, s.requests,
        "each request fails at its first hop, and stops there"
    );
    assert!(
        failed.examples[0].contains("proxy_on_request_headers"),
        "{}",
        failed.examples[0]
    );
    assert_eq!(r.hops, s.requests);
}

fn explain(s: &Scenario, request: &str) -> Result<report::explain::Explanation, String> {
    let explained = laneway_replay::explain(s, &plugin(), Some(&NativeFactory), request)
        .map_err(|e| e.to_string())?;
    Ok(report::explain::explanation(s, &explained))
}

#[test]
fn explain_tells_the_story_of_one_request() {
    let s = load(&scenarios_dir().join("deep-chain.yaml"));
    let e = explain(&s, "tagged#7").unwrap();
    assert_eq!(e.request, "tagged#7");
    assert_eq!(e.steps.len(), 9);
    assert_eq!(e.steps[1].served_by, "svc-b@fork(k8deep)");
    assert_eq!(e.steps[1].authority, "svc-b-k8deep:80");
    assert_eq!(e.steps[3].propagates, "nothing");
    assert_eq!(e.steps[4].dropped_at.as_deref(), Some("svc-d@baseline"));
    assert!(
        e.steps[4].sent.iter().all(|(n, _)| n == ":authority"),
        "no context after svc-d"
    );
    let text = report::explain::text(&e);
    assert!(text.contains("context lost at svc-d@baseline"), "{text}");
    assert!(explain(&s, "tagged#50").is_err(), "only 50 tagged requests");
    assert!(explain(&s, "nope").is_err());
}

/// Regression (issue 7): `explain` guessed each hop's depth by looking back
/// for the caller's name, so in `a → [b → [a], c]` it put `a → c` under
/// the inner `a`. The story is now drawn from the recorded tree.
#[test]
fn explain_nests_hops_exactly_as_they_were_called() {
    let dir = std::env::temp_dir().join(format!("laneway-nesting-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nesting.yaml");
    std::fs::write(
        &path,
        "name: nesting
services: { a: {}, b: {}, c: {} }
chains:
  - name: tree
    call: a
    then:
      - call: b
        then: [{ call: a }]
      - call: c
traffic:
  - { name: one, chain: tree }
",
    )
    .unwrap();
    let s = Scenario::load(&path).unwrap();
    let e = explain(&s, "one").unwrap();
    let shape: Vec<(usize, &str)> = e.steps.iter().map(|h| (h.depth, h.edge.as_str())).collect();
    assert_eq!(
        shape,
        [
            (0, "ingress → a"),
            (1, "a@baseline → b"),
            (2, "b@baseline → a"),
            (1, "a@baseline → c"),
        ]
    );
    let text = report::explain::text(&e);
    assert!(text.contains("\n    4. a@baseline → c\n"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ambient mode through the filter itself: `explain` says which waypoint
/// made each decision and that the call to a service without one met no
/// filter; the module and the core agree on every hop, there too.
#[test]
fn explain_in_ambient_mode_tells_the_decision_at_the_waypoint() {
    let s = load(&scenarios_dir().join("ambient.yaml"));
    let e = explain(&s, "location-sandbox#1").unwrap();
    assert!(e.findings.is_empty(), "{:?}", e.findings);
    assert!(e.steps.iter().all(|h| h.differs.is_none()));
    let location = &e.steps[2];
    assert_eq!(
        location.decided_at,
        report::explain::Decider::Waypoint("location-waypoint".into())
    );
    assert_eq!(location.served_by, "location@fork(qwblp48fpmb30)");
    assert_eq!(e.steps[4].decided_at, report::explain::Decider::Nowhere);
    assert_eq!(e.steps[4].reason, "no_waypoint");
    let text = report::explain::text(&e);
    assert!(
        text.contains("decision  baseline (no_fork) at waypoint waypoint\n"),
        "{text}"
    );
    assert!(
        text.contains("decision  fork (fork) at waypoint location-waypoint: :authority → location-qwblp48fpmb30:8084"),
        "{text}"
    );
    assert!(
        text.contains("no filter saw the call; baseline (no_waypoint)"),
        "{text}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_laneway"))
        .current_dir(wasm::workspace())
        .args([
            "explain",
            "testdata/scenarios/failing/ambient-no-waypoint.yaml",
            "--request",
            "tagged",
            "--wasm",
        ])
        .arg(wasm::build("laneway-filter"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the request misses its fork: {stdout}"
    );
    assert!(
        stdout.contains("FAIL miss: tagged#0: missed location@fork(qwblp48fpmb30) (no_waypoint)"),
        "{stdout}"
    );
}

#[derive(Deserialize)]
struct BrokenFile {
    case: Vec<BrokenCase>,
}

#[derive(Deserialize)]
struct BrokenCase {
    file: String,
    at: String,
    error: String,
}

#[test]
fn broken_scenarios_exit_2_with_location_and_reason() {
    let dir = scenarios_dir().join("broken");
    let expected: BrokenFile =
        toml::from_str(&std::fs::read_to_string(dir.join("expected.toml")).unwrap()).unwrap();
    let files = yaml_files(&dir);
    assert_eq!(
        files.len(),
        expected.case.len(),
        "every broken file has an expected error"
    );
    let module = wasm::build("laneway-filter");
    for case in &expected.case {
        let path = format!("testdata/scenarios/broken/{}", case.file);
        let out = Command::new(env!("CARGO_BIN_EXE_laneway"))
            .current_dir(wasm::workspace())
            .args(["replay", &path, "--wasm"])
            .arg(&module)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", case.file);
        assert!(!err.contains("panicked"), "{}: {err}", case.file);
        let prefix = format!("{path}{}", case.at);
        let line = err
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("{}: no line starts with {prefix:?}:\n{err}", case.file));
        assert!(
            line.contains(&case.error),
            "{}: {line:?} lacks {:?}",
            case.file,
            case.error
        );
    }
}

#[test]
fn scenarios_validate_against_the_json_schema() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(wasm::workspace().join("testdata/scenario.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let dir = scenarios_dir();
    for path in yaml_files(&dir)
        .into_iter()
        .chain(yaml_files(&dir.join("failing")))
    {
        let doc: serde_json::Value =
            serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    }
    // Shapes the parser refuses, the schema refuses too.
    for name in [
        "unknown-field.yaml",
        "wrong-type.yaml",
        "two-plugin-sources.yaml",
        "tagged-without-key.yaml",
    ] {
        let text = std::fs::read_to_string(dir.join("broken").join(name)).unwrap();
        let doc: serde_json::Value = serde_norway::from_str(&text).unwrap();
        let shape_only = name == "tagged-without-key.yaml";
        assert_eq!(
            validator.is_valid(&doc),
            shape_only,
            "{name}: the schema checks shape, not meaning"
        );
    }
}

#[test]
fn cli_replay_exit_codes_json_and_junit() {
    let dir = std::env::temp_dir().join(format!("laneway-replay-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, junit) = (dir.join("r.json"), dir.join("r.xml"));
    let module = wasm::build("laneway-filter");
    let out = Command::new(env!("CARGO_BIN_EXE_laneway"))
        .current_dir(wasm::workspace())
        .args([
            "replay",
            "testdata/scenarios/hotrod.yaml",
            "testdata/scenarios/failing/spoofed.yaml",
            "--only-failures",
            "--wasm",
        ])
        .arg(&module)
        .arg("--json")
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL  leak") && !stdout.contains("PASS  leak"),
        "--only-failures: {stdout}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["passed"], false);
    assert_eq!(v["scenarios"][0]["scenario"], "hotrod");
    assert_eq!(v["scenarios"][1]["checks"][0]["name"], "leak");
    assert_eq!(
        v["scenarios"][1]["checks"][0]["count"], 5,
        "5 spoofed requests reach the location fork"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml"));
    assert!(
        xml.contains(r#"<testsuite name="hotrod" tests="10" failures="0""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testsuite name="spoofed" tests="8" failures="1""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testcase classname="spoofed.checks" name="leak">"#),
        "{xml}"
    );

    let ok = Command::new(env!("CARGO_BIN_EXE_laneway"))
        .current_dir(wasm::workspace())
        .args([
            "replay",
            "testdata/scenarios/route-group.yaml",
            "--threads",
            "1",
            "--wasm",
        ])
        .arg(&module)
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
    let missing = Command::new(env!("CARGO_BIN_EXE_laneway"))
        .args([
            "replay",
            "testdata/scenarios/hotrod.yaml",
            "--wasm",
            "/nonexistent.wasm",
        ])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Routing, as a report states it: every path of every group, hop by hop,
/// and every check's verdict.
fn routing(r: &Report) -> Vec<String> {
    let mut out: Vec<String> = r
        .groups
        .iter()
        .flat_map(|g| {
            g.paths.iter().map(move |p| {
                let hops: Vec<String> = p
                    .hops
                    .iter()
                    .map(|h| {
                        format!(
                            "{}>{} {} {} {}",
                            h.caller, h.service, h.route, h.reason, h.served_by
                        )
                    })
                    .collect();
                format!("{} x{} {} {}", g.name, p.count, p.status, hops.join(" | "))
            })
        })
        .collect();
    out.extend(r.checks.iter().map(|c| format!("{} {}", c.name, c.passed)));
    out
}

/// `routing_key.joined` (Envoy's inline headers) changes how the lines
/// reach the filter, never where a request goes: every passing scenario
/// replays, with the wasm filter in joined mode checked against the core,
/// to the same routing as without it.
#[test]
fn joined_lines_route_every_scenario_the_same() {
    let mut joined_any = 0;
    for path in yaml_files(&scenarios_dir()) {
        let s = load(&path);
        let Ok(mut config) = laneway_core::config::Config::from_json(&s.config) else {
            continue;
        };
        config.routing_key.joined = true;
        let mut joined = s.clone();
        joined.config = config.to_json();
        // A fresh module each time: shared data (the rate limit's
        // buckets) lives as long as the module, as in Envoy.
        let (plain, with) = (run(&plugin(), &s, 2), run(&plugin(), &joined, 2));
        assert_eq!(
            routing(&plain),
            routing(&with),
            "{}: joined lines routed differently",
            path.display()
        );
        joined_any += 1;
    }
    assert!(joined_any >= 6, "{joined_any} scenarios");
}
