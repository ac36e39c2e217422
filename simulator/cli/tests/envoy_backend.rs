//! `laneway replay --backend envoy`: every scenario of `testdata/scenarios/`
//! replayed through real Envoy and compared hop by hop with the in-process
//! wasm backend (the differential check), sampled per traffic group; and a
//! deliberately wrong filter build (the `ignore-tracestate` feature) makes
//! both backends report the same misses.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use laneway_testdata::wasm;

fn laneway() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_laneway"));
    c.current_dir(wasm::workspace());
    c.stdin(Stdio::null());
    c
}

fn scenarios() -> Vec<PathBuf> {
    laneway_testdata::corpus::scenario_files()
}

/// Replays `scenario` on `backend` with `module`; the JSON report.
fn replay(scenario: &Path, backend: &str, module: &Path, sample: u64) -> serde_json::Value {
    let dir =
        std::env::temp_dir().join(format!("laneway-envoy-backend-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join(format!(
        "{}-{backend}.json",
        scenario.file_stem().unwrap().to_string_lossy()
    ));
    let out = laneway()
        .args([
            "replay",
            "--backend",
            backend,
            "--sample",
            &sample.to_string(),
            "--wasm",
        ])
        .arg(module)
        .arg("--json")
        .arg(&json)
        .arg(scenario)
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}: exit {:?}\n{}",
        scenario.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

fn check<'v>(report: &'v serde_json::Value, name: &str) -> &'v serde_json::Value {
    report["scenarios"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}"))
}

/// (compared, identical) from the report's agreement note.
fn agreement(report: &serde_json::Value) -> (u64, u64) {
    let notes = report["scenarios"][0]["notes"].as_array().unwrap();
    let note = notes
        .iter()
        .filter_map(|n| n.as_str())
        .find(|n| n.starts_with("agreement of real Envoy"))
        .expect("an agreement note");
    let number = |after: &str| -> u64 {
        let rest = &note[note.find(after).unwrap() + after.len()..];
        rest.chars()
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .filter(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    };
    (number("hops compared: "), number("identical: "))
}

#[test]
fn every_scenario_agrees_hop_by_hop_on_real_envoy_and_wasmtime() {
    let module = wasm::build("laneway-filter");
    let mut total = 0;
    for s in scenarios() {
        if s.ends_with("guards.yaml") {
            // Its clock, client addresses and gateway configuration are
            // the simulator's; the backend says so instead of diverging.
            let out = laneway()
                .args(["replay", "--backend", "envoy", "--wasm"])
                .arg(&module)
                .arg(&s)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            assert!(
                stderr.contains(
                    "the real Envoy backend cannot replay this scenario: it has a gateway_plugin"
                ),
                "{stderr}"
            );
            continue;
        }
        let report = replay(&s, "envoy", &module, 20);
        let diff = check(&report, "differential");
        assert_eq!(diff["count"], 0, "{}: {diff:#}", s.display());
        let (compared, identical) = agreement(&report);
        assert!(compared > 0, "{}", s.display());
        assert_eq!(compared, identical, "{}", s.display());
        total += compared;
    }
    eprintln!("real Envoy and wasmtime agree on {total} hops");
}

#[test]
fn a_wrong_filter_build_makes_both_backends_report_the_same_misses() {
    let wrong = wasm::build_with("laneway-filter", Some("ignore-tracestate"));
    let hotrod = wasm::workspace().join("testdata/scenarios/hotrod.yaml");
    let wasm_report = replay(&hotrod, "wasm", &wrong, 20);
    let envoy_report = replay(&hotrod, "envoy", &wrong, 20);
    let misses = |r: &serde_json::Value| check(r, "miss")["count"].as_u64().unwrap();
    // hotrod's tracestate-only traffic: 10 requests, each missing location.
    assert_eq!(misses(&wasm_report), 10);
    assert_eq!(misses(&envoy_report), misses(&wasm_report));
    assert_eq!(check(&envoy_report, "differential")["count"], 0);
    assert_eq!(
        check(&wasm_report, "miss")["examples"],
        check(&envoy_report, "miss")["examples"]
    );
}

/// One request on an open connection: the workload that answered.
fn ask(stream: &mut std::net::TcpStream, host: &str) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let request =
        format!("GET / HTTP/1.1\r\nHost: {host}\r\nbaggage: sd-routing-key=qwblp48fpmb30\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["workload"].as_str().unwrap().to_owned()
}

#[test]
fn an_open_connection_takes_a_new_configuration_through_ecds() {
    let module = wasm::build("laneway-filter");
    let sc =
        laneway_scenario::Scenario::load(&wasm::workspace().join("testdata/scenarios/hotrod.yaml"))
            .unwrap();
    let empty = r#"{"version": 1, "sandboxes": []}"#;
    let mut backend = laneway_envoy::backend::EnvoyBackend::start(&module, &sc).unwrap();
    laneway_replay::Backend::configure(&mut backend, empty).unwrap();
    let customer = sc
        .services
        .iter()
        .position(|s| s.name == "customer")
        .unwrap();
    let at = sc
        .services
        .iter()
        .position(|s| s.name == "location")
        .unwrap();
    let location = &sc.services[at].authority;
    // The connection is opened before the sandbox exists, and kept.
    let mut stream =
        std::net::TcpStream::connect(backend.listener(Some(customer), at).unwrap()).unwrap();
    assert_eq!(ask(&mut stream, location), "location@baseline");
    let written = std::time::Instant::now();
    backend.write_config(&sc.config).unwrap();
    // A liveness bound, not a measurement (bench-ecds measures it).
    loop {
        if ask(&mut stream, location) == "location@fork(qwblp48fpmb30)" {
            break;
        }
        assert!(
            written.elapsed() < std::time::Duration::from_secs(30),
            "the open connection still has the old configuration after 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    eprintln!(
        "a new sandbox reached the open connection {:?} after the ECDS file was written",
        written.elapsed()
    );
}
