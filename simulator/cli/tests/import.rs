//! `laneway import` end to end, on the corpus in `testdata/traces/`:
//!
//! - every file of every format and variant imports to the chains that
//!   `testdata/traces/expected.toml` lists, with its trace and span counts;
//! - every broken file exits 2 with `FILE: byte N (field): reason` and
//!   writes nothing;
//! - lost keys and misrouted calls are found from the data (`--check`
//!   exits 1);
//! - `--fork` makes a scenario that `laneway replay` judges unedited;
//! - a replay exported with `--otlp` imports back to the same chains;
//! - a 100 MB file streams in bounded memory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use laneway_testdata::{corpus, wasm};

fn laneway() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_laneway"));
    c.current_dir(wasm::workspace());
    c.stdin(Stdio::null());
    c
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("laneway-import-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[&str]) -> Output {
    laneway().args(args).output().expect("laneway runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Imports `files`, returning the JSON report.
fn import(dir: &Path, files: &[&str], extra: &[&str]) -> serde_json::Value {
    let out = dir.join("out.yaml");
    let json = dir.join("report.json");
    let mut args = vec!["import"];
    args.extend_from_slice(files);
    args.extend_from_slice(&[
        "-o",
        out.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    args.extend_from_slice(extra);
    let r = run(&args);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{files:?}: {}{}",
        text(&r.stdout),
        text(&r.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

fn chains(report: &serde_json::Value) -> Vec<(String, u64)> {
    let mut c: Vec<(String, u64)> = report["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["tree"].as_str().unwrap().to_owned(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    c.sort();
    c
}

#[test]
fn every_trace_file_imports_to_its_chains() {
    let dir = scratch("corpus");
    let mut checked = 0;
    for f in corpus::trace_files() {
        if f.error.is_some() {
            continue;
        }
        let path = format!("testdata/traces/{}", f.path);
        let report = import(&dir, &[&path], &[]);
        let want = if f.imported.is_empty() {
            &f.chains
        } else {
            &f.imported
        };
        let mut want: Vec<(String, u64)> =
            want.iter().map(|c| (c.chain.clone(), c.count)).collect();
        want.sort();
        assert_eq!(chains(&report), want, "{path}");
        if let Some(t) = f.traces {
            assert_eq!(report["traces"], t, "{path}: traces");
        }
        if let Some(s) = f.spans {
            assert_eq!(report["spans"], s, "{path}: spans");
        }
        // The written scenario replays as it stands.
        let r = run(&[
            "replay",
            dir.join("out.yaml").to_str().unwrap(),
            "--wasm",
            wasm::build("laneway-filter").to_str().unwrap(),
        ]);
        assert_eq!(r.status.code(), Some(0), "{path}: {}", text(&r.stdout));
        checked += 1;
    }
    assert!(checked >= 18, "only {checked} files checked");
}

#[test]
fn messy_input_is_warned_about_with_what_was_done() {
    let dir = scratch("messy");
    let warnings = |file: &str| -> String {
        let r = import(&dir, &[file], &[]);
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (file, want) in [
        (
            "messy/duplicates.json",
            "2 duplicate span(s) (same id and kind): the later copies left out",
        ),
        (
            "messy/orphans.json",
            "orphan span(s) (parent not in the trace): attached to the trace's root",
        ),
        ("messy/clock-skew.json", "had clock skew"),
        (
            "messy/missing-process.json",
            "named a process their trace does not list",
        ),
    ] {
        let w = warnings(&format!("testdata/traces/{file}"));
        assert!(w.contains(want), "{file}: {w}");
    }
    // Clean files warn about nothing.
    assert_eq!(warnings("testdata/traces/otlp/hotrod.json"), "");
    // Several files are one input: the same traces twice are duplicates.
    let r = import(
        &dir,
        &[
            "testdata/traces/otlp/hotrod.json",
            "testdata/traces/jaeger/query-api.json",
        ],
        &[],
    );
    assert_eq!(r["files"].as_array().unwrap().len(), 2);
    assert_eq!(r["traces"], 5);
}

#[test]
fn broken_files_exit_2_with_file_place_and_reason_and_write_nothing() {
    let dir = scratch("broken");
    let out = dir.join("out.yaml");
    let mut checked = 0;
    for f in corpus::trace_files() {
        if f.error.is_none() {
            continue;
        }
        let path = format!("testdata/traces/{}", f.path);
        let r = run(&["import", &path, "-o", out.to_str().unwrap()]);
        let err = text(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{path}: {err}");
        assert!(
            err.starts_with(&format!("laneway: {path}: byte ")),
            "{path}: {err}"
        );
        assert!(!err.contains("panicked"), "{path}: {err}");
        assert_eq!(err.lines().count(), 1, "{path}: {err}");
        assert!(!out.exists(), "{path}: a scenario was written");
        let want = match f.path.as_str() {
            "broken/truncated.json" => "truncated",
            "broken/number.json" => "must be an object (OTLP or Jaeger) or a list (Zipkin)",
            "broken/spans-string.json" => "spans must be an array",
            "broken/bad-hex.json" => "is neither 16 hex digits nor base64 of 8 bytes",
            "broken/not-json.json" => "expected a value, found '<'",
            "broken/empty.json" => "no JSON document",
            "broken/nul.json" => "byte 0x00",
            other => panic!("{other}: add what its error must say"),
        };
        assert!(err.contains(want), "{path}: {err}");
        checked += 1;
    }
    assert_eq!(checked, 7);
    // Not a trace file at all.
    for (file, want) in [
        ("testdata", "is a directory"),
        ("/dev/null", "no JSON document"),
        ("no-such-file.json", "cannot open"),
        ("testdata/configs/hotrod.json", "not a trace export"),
    ] {
        let r = run(&["import", file, "-o", out.to_str().unwrap()]);
        let err = text(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{file}: {err}");
        assert!(err.contains(want), "{file}: {err}");
    }
    // The wrong --format says which it is.
    let r = run(&[
        "import",
        "testdata/traces/jaeger/ui-download.json",
        "--format",
        "otlp",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        text(&r.stderr).contains("this is jaeger JSON, not otlp"),
        "{}",
        text(&r.stderr)
    );
    // Deep nesting and a key over the length limit.
    let deep = dir.join("deep.json");
    std::fs::write(
        &deep,
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
    )
    .unwrap();
    let r = run(&[
        "import",
        deep.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("nesting deeper than 128 levels"));
    let long = dir.join("long.json");
    std::fs::write(&long, format!("{{\"{}\": 1}}", "k".repeat(2 << 20))).unwrap();
    let r = run(&[
        "import",
        long.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("longer than 1 MiB"));
    // Bad flags.
    for (args, want) in [
        (vec!["--fork", "k1"], "expected KEY=SERVICE"),
        (
            vec!["--fork", "k1=nosuch"],
            "no service \"nosuch\" in the traces",
        ),
        (vec!["--fork", "bad key=frontend"], "--fork"),
        (
            vec!["--fork", "k1=frontend", "--fork", "k1=customer"],
            "declared twice",
        ),
    ] {
        let mut a = vec![
            "import",
            "testdata/traces/otlp/hotrod.json",
            "-o",
            out.to_str().unwrap(),
        ];
        a.extend(args);
        let r = run(&a);
        assert_eq!(r.status.code(), Some(2), "{a:?}");
        assert!(text(&r.stderr).contains(want), "{a:?}: {}", text(&r.stderr));
    }
    // An input as the output.
    let r = run(&[
        "import",
        "testdata/traces/otlp/hotrod.json",
        "-o",
        "testdata/traces/otlp/hotrod.json",
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("refusing to overwrite"));
}

#[test]
fn lost_keys_and_misrouted_calls_are_found_from_the_data() {
    let dir = scratch("baggage");
    let file = "testdata/traces/otlp/baggage.json";
    let r = import(&dir, &[file], &[]);
    assert_eq!(r["keyed_traces"], 2);
    assert_eq!(
        r["context_dropped"],
        serde_json::json!([{ "at": "customer", "to": "location", "traces": 1 }])
    );
    let mis: Vec<(String, String, String)> = r["misrouted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap().to_owned(),
                m["service"].as_str().unwrap().to_owned(),
                m["workload"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        mis.contains(&("baseline".into(), "location".into(), "location".into())),
        "{mis:?}"
    );
    assert!(
        mis.contains(&(
            "other-fork".into(),
            "driver".into(),
            "driver-zzother000001".into()
        )),
        "{mis:?}"
    );
    assert_eq!(mis.len(), 2, "{mis:?}");
    // The text report says it, and --check fails on it.
    let out = dir.join("s.yaml");
    let r = run(&["import", file, "-o", out.to_str().unwrap(), "--check"]);
    assert_eq!(r.status.code(), Some(1));
    let t = text(&r.stdout);
    assert!(
        t.contains("context_dropped at customer: 1 trace(s) called location"),
        "{t}"
    );
    assert!(
        t.contains("reached another sandbox's fork (driver-zzother000001)"),
        "{t}"
    );
    // A clean file passes --check.
    let r = run(&[
        "import",
        "testdata/traces/otlp/hotrod.json",
        "-o",
        out.to_str().unwrap(),
        "--check",
    ]);
    assert_eq!(r.status.code(), Some(0));
}

#[test]
fn fork_declares_sandboxes_and_replay_judges_the_scenario_unedited() {
    let dir = scratch("fork");
    let out = dir.join("hotrod.yaml");
    let r = run(&[
        "import",
        "testdata/traces/otlp/hotrod.json",
        "--fork",
        "qwblp48fpmb30=customer,mysql",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    let yaml = std::fs::read_to_string(&out).unwrap();
    assert!(yaml.contains("kind: tagged, key: qwblp48fpmb30"), "{yaml}");
    let json = dir.join("r.json");
    let r = run(&[
        "replay",
        out.to_str().unwrap(),
        "--wasm",
        wasm::build("laneway-filter").to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stdout));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let blast = &v["scenarios"][0]["blast"][0];
    assert_eq!(blast["key"], "qwblp48fpmb30");
    // Every tagged request reaches both forks: 2 traces, 2 forks each.
    assert_eq!(blast["captured"], 4, "{blast}");
    // The scenario goes to stdout with -o -, the report to stderr.
    let r = run(&["import", "testdata/traces/otlp/hotrod.json", "-o", "-"]);
    assert!(text(&r.stdout).starts_with("# Imported by `laneway import`"));
    assert!(text(&r.stderr).contains("distinct chains"));
}

#[test]
fn an_exported_replay_imports_back_to_the_same_chains() {
    let dir = scratch("roundtrip");
    let otlp = dir.join("hotrod.otlp.jsonl");
    let m = wasm::build("laneway-filter");
    let r = run(&[
        "replay",
        "testdata/scenarios/hotrod.yaml",
        "--wasm",
        m.to_str().unwrap(),
        "--otlp",
        otlp.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    let report = import(
        &dir,
        &[otlp.to_str().unwrap()],
        &["--fork", "qwblp48fpmb30=location"],
    );
    // hotrod.yaml: one chain, 1,120 requests.
    assert_eq!(
        chains(&report),
        [(
            "frontend → [customer → [location], driver, route]".to_owned(),
            1120
        )]
    );
    assert_eq!(report["keyed_traces"], 120);
    assert_eq!(report["context_dropped"], serde_json::json!([]));
    assert_eq!(report["misrouted"], serde_json::json!([]));
    // faults.yaml drops the context at route from request 400 on, and
    // takes a fork down: the data shows it.
    let r = run(&[
        "replay",
        "testdata/scenarios/faults.yaml",
        "--wasm",
        m.to_str().unwrap(),
        "--otlp",
        otlp.to_str().unwrap(),
    ]);
    assert!(
        r.status.code().is_some_and(|c| c <= 1),
        "{}",
        text(&r.stderr)
    );
    let report = import(&dir, &[otlp.to_str().unwrap()], &[]);
    let dropped = report["context_dropped"].as_array().unwrap();
    assert!(dropped.iter().any(|d| d["at"] == "route"), "{report:#}");
}

/// (exit code, peak RSS in MiB) of `cmd`.
fn measured(cmd: &mut Command) -> (i32, i64) {
    let child = cmd.stdout(Stdio::null()).spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our unwaited child; the pointers are valid.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    std::mem::forget(child);
    (libc::WEXITSTATUS(status), usage.ru_maxrss / 1024)
}

#[test]
fn a_100_mb_file_streams_in_bounded_memory() {
    let dir = scratch("big");
    let file = dir.join("big.json");
    let written = {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let written = laneway_testdata::traces::generate(
            laneway_testdata::traces::Format::Otlp,
            &mut w,
            100_000_000,
            3,
        )
        .unwrap();
        std::io::Write::flush(&mut w).unwrap();
        written
    };
    let json = dir.join("r.json");
    let (code, rss) = measured(laneway().args([
        "import",
        file.to_str().unwrap(),
        "-o",
        dir.join("s.yaml").to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]));
    assert_eq!(code, 0);
    // The file is 100 MB; the import holds a window of open spans.
    assert!(rss < 150, "peak RSS {rss} MiB");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let mut want: Vec<(String, u64)> = written
        .chains
        .iter()
        .map(|(c, n)| ((*c).to_owned(), *n))
        .collect();
    want.sort();
    assert_eq!(chains(&report), want);
    assert_eq!(report["spans"], written.spans);
    std::fs::remove_dir_all(&dir).unwrap();
}
