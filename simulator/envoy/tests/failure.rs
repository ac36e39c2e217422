//! Never fail traffic: what real Envoy 1.40 (V8) does, on loopback, when
//! Laneway's configuration or a wasm VM fails. Each test pins what was
//! observed, so a new Envoy that behaves otherwise fails here first; the
//! README's "When the filter or its configuration fails" says the same.
//!
//! - A configuration the filter refuses, delivered through ECDS as Istio
//!   delivers a WasmPlugin change: Envoy rejects the update
//!   (`extension_config_discovery.http_filter.laneway.update_rejected`)
//!   and the last good configuration keeps serving, forks included; the
//!   next valid update takes effect.
//! - A VM that dies at run time, under each `failure_policy`, shown with
//!   `testdata/wasm/trap` (a module that traps in
//!   `proxy_on_request_headers` when asked to; Laneway's filter never
//!   traps). Whatever the policy, the request during which the VM traps
//!   gets a 503 (`wasm_fail_stream`). After it: `FAIL_CLOSED` answers 503
//!   to every request, for good; `FAIL_OPEN` skips the filter and every
//!   request reaches the upstream untouched, for good; `FAIL_RELOAD`
//!   answers 503 until its backoff (1 s by default) has passed, then the
//!   next request starts a new VM and is served. Under `FAIL_OPEN` the
//!   next configuration update (ECDS) builds the plugin on a new VM, and
//!   the filter runs again.
//!
//! Every Envoy and upstream stops when its test ends, pass or fail.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use laneway_envoy::backend::EnvoyBackend;
use laneway_envoy::bootstrap::{self, FailurePolicy, Filter, Sidecar, Target, VirtualHost};
use laneway_envoy::upstream::{Received, Upstreams};
use laneway_envoy::{Envoy, client};
use laneway_replay::backend::Backend;
use laneway_scenario::Scenario;
use laneway_testdata::wasm;
use serde_json::{Value, json};

const KEY: &str = "qwblp48fpmb30";
const FORK: &str = "location@fork(qwblp48fpmb30)";
const BASELINE: &str = "location@baseline";

/// Sends `GET /` with `baggage` (if any) from customer's sidecar to
/// location; returns the workload's answer (`workload`, `host`,
/// `decision`).
fn ask(listener: SocketAddr, authority: &str, baggage: Option<&str>) -> Value {
    let mut headers: Vec<(&str, &[u8])> = vec![("host", authority.as_bytes())];
    if let Some(b) = baggage {
        headers.push(("baggage", b.as_bytes()));
    }
    let r = client::get(listener, "/", &headers).unwrap_or_else(|e| panic!("request: {e}"));
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn ecds_stat(envoy: &Envoy, name: &str) -> u64 {
    stat(
        envoy,
        &format!("extension_config_discovery.http_filter.laneway.{name}"),
    )
}

fn stat(envoy: &Envoy, name: &str) -> u64 {
    let stats = envoy.stats().expect("stats");
    *stats
        .get(name)
        .unwrap_or_else(|| panic!("no stat {name} in /stats"))
}

/// Waits (Envoy flushes its log every 100 ms) until Envoy's log holds
/// `line`.
fn logged(envoy: &Envoy, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = envoy.log();
        if log.contains(line) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Envoy's log lacks {line:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn refused_ecds_update_keeps_the_last_good_configuration() {
    let module = wasm::build("laneway-filter");
    let sc = Scenario::load(&wasm::workspace().join("testdata/scenarios/hotrod.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut backend = EnvoyBackend::start(&module, &sc).unwrap_or_else(|e| panic!("{e}"));
    let service = |name: &str| sc.services.iter().position(|s| s.name == name).unwrap();
    let (customer, location) = (service("customer"), service("location"));
    let listener = backend.listener(Some(customer), location).unwrap();
    let authority = sc.services[location].authority.clone();
    let tagged = format!("sd-routing-key={KEY}");
    let check = |what: &str, baggage: Option<&str>, workload: &str, decision: &str| {
        let answer = ask(listener, &authority, baggage);
        assert_eq!(answer["workload"], workload, "{what}: {answer}");
        let d = answer["decision"].as_str().unwrap_or_default();
        assert!(d.starts_with(decision), "{what}: decision {d:?}");
    };

    // 1. The starting configuration forks location for KEY.
    check("start, tagged", Some(&tagged), FORK, "decision=fork");
    check("start, untagged", None, BASELINE, "-");
    let envoy = backend.envoy();
    assert_eq!(ecds_stat(envoy, "update_success"), 1);
    assert_eq!(ecds_stat(envoy, "update_rejected"), 0);
    let vms = stat(envoy, "wasm.envoy.wasm.runtime.v8.active");

    // 2. An update the filter refuses: Envoy rejects it.
    let refused =
        backend.configure(r#"{"version": 2, "sandboxes": [{"key": "a,b", "forks": []}]}"#);
    let why = refused.expect_err("Envoy must refuse a configuration the filter rejects");
    assert!(why.contains("update_rejected"), "{why}");
    let envoy = backend.envoy();
    assert_eq!(ecds_stat(envoy, "update_rejected"), 1);
    assert_eq!(ecds_stat(envoy, "config_fail"), 1);
    assert_eq!(ecds_stat(envoy, "update_success"), 1, "nothing was taken");
    // Envoy counts the refused attempt as a reload all the same.
    assert_eq!(ecds_stat(envoy, "config_reload"), 2);
    assert_eq!(stat(envoy, "wasmcustom.laneway.config.rejected"), 1);
    for line in [
        "rejected plugin configuration: version: unsupported version 2; this build reads version 1",
        r#"sandboxes[0].key: "a,b" holds ','"#,
        "Wasm VM failed Failed to configure base Wasm plugin",
        "Filesystem config update rejected: Unable to create Wasm plugin laneway",
    ] {
        logged(envoy, line);
    }

    // 3. The last good configuration keeps serving (the client opens a
    //    connection per request).
    for _ in 0..3 {
        check(
            "after the refusal, tagged",
            Some(&tagged),
            FORK,
            "decision=fork",
        );
        check("after the refusal, untagged", None, BASELINE, "-");
    }
    assert_eq!(
        stat(backend.envoy(), "wasm.envoy.wasm.runtime.v8.active"),
        vms,
        "the refused configuration's VM is gone"
    );

    // 4. A valid update takes effect: KEY is gone, a new key forks location.
    let next = r#"{"version": 1, "sandboxes": [{"key": "z9newkey00001", "forks": [{"service": "location", "destination": "location-qwblp48fpmb30"}]}]}"#;
    backend
        .configure(next)
        .unwrap_or_else(|e| panic!("a valid update: {e}"));
    check(
        "new configuration, old key",
        Some(&tagged),
        BASELINE,
        "decision=unknown_key",
    );
    check(
        "new configuration, new key",
        Some("sd-routing-key=z9newkey00001"),
        FORK,
        "decision=fork key=z9newkey00001",
    );
    check("new configuration, untagged", None, BASELINE, "-");
    assert_eq!(ecds_stat(backend.envoy(), "update_success"), 2);
}

/// A sidecar running the trap module in front of one upstream, logging
/// each request's status and response details.
struct Trapped {
    envoy: Envoy,
    upstreams: Upstreams,
    listener: SocketAddr,
    access_log: PathBuf,
}

/// What one request got.
struct Got {
    status: u16,
    /// `%RESPONSE_CODE_DETAILS%`.
    details: String,
    /// The requests that reached the upstream (at most one).
    received: Vec<Received>,
}

impl Got {
    /// `x-trap-vm-requests` as the upstream received it: the count of the
    /// VM that handled the request, or `None` when no filter ran.
    fn vm_requests(&self) -> Option<u64> {
        let r = self.received.first()?;
        let v = r.all("x-trap-vm-requests");
        std::str::from_utf8(v.first()?).ok()?.parse().ok()
    }
}

impl Trapped {
    fn start(policy: FailurePolicy) -> Trapped {
        let module = wasm::build("proxy-wasm-trap");
        let upstreams = Upstreams::start(&[BASELINE]).expect("upstream");
        let mut sidecar = Sidecar::new(
            Filter::Wasm {
                module: &module,
                configuration: "",
            },
            vec![VirtualHost::to(
                "location",
                Target::Upstream(upstreams.addr(BASELINE).unwrap()),
            )],
        );
        sidecar.failure_policy = policy;
        let mut config = bootstrap::sidecar(&sidecar);
        let access_log = std::env::temp_dir().join(format!(
            "laneway-failure-{}-{}.log",
            std::process::id(),
            policy.as_str()
        ));
        let _ = std::fs::remove_file(&access_log);
        // Status and response details, one line per request, at once.
        config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
            ["access_log"] = json!([{
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": access_log,
                "log_format": {"text_format_source": {"inline_string": "%RESPONSE_CODE% %RESPONSE_CODE_DETAILS%\n"}},
            },
        }]);
        let envoy = Envoy::start(&config).unwrap_or_else(|e| panic!("{e}"));
        let listener = envoy.listener(bootstrap::LISTENER).unwrap();
        Trapped {
            envoy,
            upstreams,
            listener,
            access_log,
        }
    }

    /// Sends one request (with `x-trap: 1` when `trap`) and waits for its
    /// access-log line.
    fn send(&self, trap: bool) -> Got {
        let logged = self.log_lines().len();
        let mut headers: Vec<(&str, &[u8])> = vec![
            ("host", b"location:8083"),
            ("baggage", b"sd-routing-key=qwblp48fpmb30"),
        ];
        if trap {
            headers.push(("x-trap", b"1"));
        }
        let r = client::get(self.listener, "/", &headers)
            .unwrap_or_else(|e| panic!("request through envoy: {e}"));
        let deadline = Instant::now() + Duration::from_secs(5);
        let details = loop {
            let lines = self.log_lines();
            if lines.len() > logged {
                let line = &lines[logged];
                let (status, details) = line.split_once(' ').unwrap_or((line, ""));
                assert_eq!(status, r.status.to_string(), "{line}");
                break details.to_owned();
            }
            assert!(Instant::now() < deadline, "no access-log line");
            std::thread::sleep(Duration::from_millis(10));
        };
        Got {
            status: r.status,
            details,
            received: self.upstreams.take(),
        }
    }

    fn log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The request during which the VM dies: whatever the policy, 503,
    /// no body, no upstream; Envoy logs the trap.
    fn kill_the_vm(&self) {
        let got = self.send(true);
        assert_eq!(
            (got.status, got.details.as_str()),
            (503, "wasm_fail_stream")
        );
        assert!(got.received.is_empty(), "the dying request goes nowhere");
        logged(
            &self.envoy,
            "Function: proxy_on_request_headers failed: Uncaught RuntimeError: unreachable",
        );
    }

    fn reload_stats(&self) -> [u64; 3] {
        [
            "vm_reload_backoff",
            "vm_reload_success",
            "vm_reload_failure",
        ]
        .map(|s| stat(&self.envoy, &format!("wasm.laneway.{s}")))
    }
}

impl Drop for Trapped {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.access_log);
    }
}

/// The same checks before the VM dies, under every policy: the filter
/// runs (it stamps its count) and the request reaches the upstream.
fn alive(t: &Trapped) {
    for n in 1..=2 {
        let got = t.send(false);
        assert_eq!((got.status, got.details.as_str()), (200, "via_upstream"));
        assert_eq!(got.vm_requests(), Some(n));
    }
}

#[test]
fn fail_closed_vm_failure_answers_503_to_every_later_request() {
    let t = Trapped::start(FailurePolicy::Closed);
    alive(&t);
    t.kill_the_vm();
    // Longer than FAIL_RELOAD's backoff: nothing comes back.
    let until = Instant::now() + Duration::from_millis(1500);
    let mut sent = 0;
    while Instant::now() < until || sent < 3 {
        let got = t.send(false);
        assert_eq!(
            (got.status, got.details.as_str()),
            (503, "wasm_fail_stream")
        );
        assert!(got.received.is_empty(), "no request reaches the upstream");
        sent += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(t.reload_stats(), [0, 0, 0], "no reload is tried");
}

#[test]
fn fail_open_vm_failure_skips_the_filter_for_every_later_request() {
    let t = Trapped::start(FailurePolicy::Open);
    alive(&t);
    t.kill_the_vm();
    // From the next request on, the filter is skipped: the request reaches
    // the upstream exactly as sent, with no header of the filter's, even
    // one that would make the filter trap again.
    for trap in [false, false, true, false] {
        let got = t.send(trap);
        assert_eq!((got.status, got.details.as_str()), (200, "via_upstream"));
        assert_eq!(got.received.len(), 1);
        let r = &got.received[0];
        assert_eq!(r.all("host"), [b"location:8083"]);
        assert_eq!(r.all("baggage"), [b"sd-routing-key=qwblp48fpmb30"]);
        assert_eq!(got.vm_requests(), None, "no filter ran");
    }
    std::thread::sleep(Duration::from_millis(1500));
    let got = t.send(false);
    assert_eq!(
        (got.status, got.vm_requests()),
        (200, None),
        "still skipped"
    );
    assert_eq!(t.reload_stats(), [0, 0, 0], "no reload is tried");
}

#[test]
fn fail_reload_vm_failure_answers_503_until_a_new_vm_serves() {
    let t = Trapped::start(FailurePolicy::Reload);
    alive(&t);
    let died = Instant::now();
    t.kill_the_vm();
    // Until the reload backoff has passed, 503 as under FAIL_CLOSED; then
    // the next request starts a new VM (its count starts again at 1).
    let mut refused = 0;
    let back = loop {
        let got = t.send(false);
        if got.status == 200 {
            break got;
        }
        assert_eq!(
            (got.status, got.details.as_str()),
            (503, "wasm_fail_stream")
        );
        assert!(got.received.is_empty());
        refused += 1;
        assert!(
            died.elapsed() < Duration::from_secs(10),
            "no new VM after 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let waited = died.elapsed();
    assert_eq!(back.details, "via_upstream");
    assert_eq!(back.vm_requests(), Some(1), "a new VM served it");
    eprintln!(
        "FAIL_RELOAD: served by a new VM {waited:?} after the trap, {refused} requests refused meanwhile"
    );
    let [backoff, success, failure] = t.reload_stats();
    assert_eq!((backoff, success, failure), (refused, 1, 0));
    // The new VM goes on serving.
    let got = t.send(false);
    assert_eq!((got.status, got.vm_requests()), (200, Some(2)));
}

#[test]
fn fail_open_dead_vm_is_replaced_by_the_next_configuration_update() {
    // The trap module behind ECDS, as the harness (and Istio) delivers a
    // plugin, failing open; it takes any configuration text.
    let module = wasm::build("proxy-wasm-trap");
    let sc = Scenario::load(&wasm::workspace().join("testdata/scenarios/hotrod.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut backend = EnvoyBackend::start(&module, &sc).unwrap_or_else(|e| panic!("{e}"));
    let service = |name: &str| sc.services.iter().position(|s| s.name == name).unwrap();
    let listener = backend
        .listener(Some(service("customer")), service("location"))
        .unwrap();
    let authority = sc.services[service("location")].authority.clone();
    let status = |trap: bool| {
        let mut headers: Vec<(&str, &[u8])> = vec![("host", authority.as_bytes())];
        if trap {
            headers.push(("x-trap", b"1"));
        }
        client::get(listener, "/", &headers)
            .unwrap_or_else(|e| panic!("request: {e}"))
            .status
    };
    assert_eq!(status(false), 200);
    assert_eq!(status(true), 503, "the request that kills the VM");
    assert_eq!(status(false), 200);
    assert_eq!(status(true), 200, "the dead filter is skipped");
    // A configuration update builds the plugin anew, on a new VM: the
    // filter runs again (and can be made to trap again).
    backend
        .configure("any configuration")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status(false), 200);
    assert_eq!(status(true), 503, "the filter runs again");
    assert_eq!(status(false), 200);
}
