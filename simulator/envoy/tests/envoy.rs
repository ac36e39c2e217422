//! End-to-end: the built `laneway_filter.wasm` in a real Envoy 1.40 (V8),
//! on loopback, in front of upstreams that say who served each request.
//!
//! Every case of `testdata/routing/` is sent through Envoy. The native core
//! decides the same request; the test then checks, for each case:
//! - fork: the fork's workload served it, with `:authority` rewritten;
//! - baseline: the same workload as an untagged request to the same
//!   authority served it (Envoy's own answer), with every header untouched;
//! - reject: a local 421 naming the key, no upstream reached;
//!
//! and, at the end, that Envoy's `/stats` counters equal the number of
//! requests of each decision, and that the access log holds the decision,
//! key and fork from filter state. Every Envoy and upstream is stopped when
//! its test ends, pass or fail.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use laneway_core::filter_state;
use laneway_core::{Decision, Reason, Request, Router};
use laneway_envoy::Envoy;
use laneway_envoy::bootstrap::{self, Filter, Sidecar, Target, VirtualHost};
use laneway_envoy::client;
use laneway_envoy::mesh::Mesh;
use laneway_scenario::WorkloadName;
use laneway_testdata::{self as corpus, wasm};

/// Baseline services of the HotROD-like mesh, beside those the config forks.
const BASELINE: [&str; 5] = ["frontend", "customer", "driver", "route", "location"];

struct Run {
    mesh: Mesh,
    router: Router,
}

impl Run {
    fn start(config_text: &str, access_log: &Path) -> Run {
        let module = wasm::build("laneway-filter");
        let mesh = Mesh::start(&module, config_text, &BASELINE, Some(access_log))
            .unwrap_or_else(|e| panic!("{e}"));
        Run {
            mesh,
            router: Router::from_json(config_text).expect("a valid test configuration"),
        }
    }

    fn send(&self, headers: &[(&str, &[u8])]) -> client::Response {
        self.mesh
            .send(headers)
            .unwrap_or_else(|e| panic!("request through envoy: {e}"))
    }
}

/// Bytes Envoy's HTTP/1 codec refuses in a header value (it answers 400
/// before any filter runs), so no test can deliver them to the filter.
fn http1_deliverable(value: &[u8]) -> bool {
    !value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

/// Runs every routing case of `config` through Envoy; returns how many ran.
fn run_corpus(config: &str) -> usize {
    let config_text = corpus::config_text(config);
    let dir = std::env::temp_dir().join(format!("laneway-e2e-{}-{config}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let access_log = dir.join("access.log");
    let run = Run::start(&config_text, &access_log);
    let mesh = &run.mesh;
    let mut expected_counts = BTreeMap::<Reason, u64>::new();
    let mut ran = Vec::new();
    let mut not_deliverable = Vec::new();

    let cases: Vec<_> = corpus::routing_cases()
        .into_iter()
        .filter(|(_, c)| c.config.as_deref() == Some(config))
        .collect();
    assert!(!cases.is_empty(), "no routing cases use configs/{config}");
    for (file, case) in &cases {
        let at = format!("{file}: {}", case.name);
        let baggage = corpus::expand(&case.baggage);
        let tracestate = corpus::expand(&case.tracestate);
        if case.authority.is_empty()
            || !baggage
                .iter()
                .chain(&tracestate)
                .all(|v| http1_deliverable(v))
        {
            not_deliverable.push(case.name.clone());
            continue;
        }
        let verdict = run.router.decide(Request {
            authority: case.authority.as_bytes(),
            baggage: baggage.iter().map(Vec::as_slice),
            tracestate: tracestate.iter().map(Vec::as_slice),
        });

        // Envoy's own answer for this authority: an untagged request.
        let probe = run.send(&[("host", case.authority.as_bytes()), ("x-case", b"probe")]);
        *expected_counts.entry(Reason::NoKey).or_default() += 1;
        let baseline_workload = probe.header("x-served-by");
        mesh.upstreams.take();

        let mut headers: Vec<(&str, &[u8])> = vec![
            ("host", case.authority.as_bytes()),
            ("x-case", case.name.as_bytes()),
        ];
        headers.extend(baggage.iter().map(|v| ("baggage", v.as_slice())));
        headers.extend(tracestate.iter().map(|v| ("tracestate", v.as_slice())));
        let response = run.send(&headers);
        *expected_counts
            .entry(verdict.decision.reason())
            .or_default() += 1;
        let received = mesh.upstreams.take();

        match verdict.decision {
            Decision::Fork(id) => {
                let fork = run.router.fork(id);
                let mut buf = [0u8; laneway_core::authority::MAX_FORK_AUTHORITY];
                let authority = run
                    .router
                    .fork_authority(id, case.authority.as_bytes(), &mut buf)
                    .unwrap();
                assert_eq!(response.status, 200, "{at}: {}", response.text());
                assert_eq!(
                    response.header("x-served-by").as_deref(),
                    Some(
                        WorkloadName::fork(fork.service, fork.key)
                            .to_string()
                            .as_str()
                    ),
                    "{at}: a fork must serve it"
                );
                assert_eq!(received.len(), 1, "{at}");
                assert_eq!(
                    received[0].all("host"),
                    [authority],
                    "{at}: the rewritten authority"
                );
                assert_eq!(
                    received[0].all("baggage"),
                    baggage,
                    "{at}: baggage propagates untouched"
                );
            }
            Decision::Rejected => {
                assert_eq!(response.status, 421, "{at}");
                let key = verdict
                    .key
                    .map(|k| String::from_utf8(k.value.bytes().collect()).unwrap())
                    .unwrap();
                assert_eq!(
                    response.text(),
                    format!("routing key {key} has no sandbox\n"),
                    "{at}"
                );
                assert_eq!(
                    response.header("x-laneway-decision").as_deref(),
                    Some("rejected"),
                    "{at}"
                );
                assert!(
                    received.is_empty(),
                    "{at}: a rejected request reaches no upstream"
                );
            }
            _ => {
                assert_eq!(
                    response.status, probe.status,
                    "{at}: baseline like an untagged request"
                );
                assert_eq!(
                    response.header("x-served-by"),
                    baseline_workload,
                    "{at}: the baseline must serve it"
                );
                assert_eq!(received.len(), 1, "{at}");
                assert_eq!(
                    received[0].all("host"),
                    [case.authority.as_bytes()],
                    "{at}: authority untouched"
                );
                assert_eq!(
                    received[0].all("baggage"),
                    baggage,
                    "{at}: baggage untouched"
                );
                assert_eq!(
                    received[0].all("tracestate"),
                    tracestate,
                    "{at}: tracestate untouched"
                );
            }
        }
        ran.push((case.name.clone(), verdict.decision));
    }

    // Envoy's counters equal the number of requests of each decision.
    let stats = mesh.envoy.stats().expect("stats");
    for reason in Reason::ALL {
        let got = stats
            .get(&format!("wasmcustom.laneway.decision.{reason}"))
            .copied();
        let want = expected_counts.get(&reason).copied().unwrap_or(0);
        assert_eq!(
            got,
            Some(want),
            "{config}: laneway.decision.{reason} in /stats"
        );
    }
    assert_eq!(stats.get("wasmcustom.laneway.host_errors"), Some(&0));

    // The access log records Laneway's filter state for each tagged
    // request, read back with the one codec.
    std::thread::sleep(Duration::from_millis(400));
    let log = std::fs::read_to_string(&access_log).unwrap_or_default();
    let states: Vec<filter_state::Decoded<'_>> = log
        .lines()
        .filter_map(|l| l.split_once("laneway: ").map(|(_, s)| s.trim()))
        .filter(|s| *s != "-")
        .map(|s| {
            filter_state::decode(s.as_bytes())
                .unwrap_or_else(|e| panic!("{config}: unreadable filter state {s:?}: {e}"))
        })
        .collect();
    for (name, decision) in &ran {
        if *decision == Decision::NoKey {
            continue;
        }
        assert!(
            states.iter().any(|d| d.reason == decision.reason()),
            "{config}: {name}: the access log has decision={}\n{log}",
            decision.reason()
        );
    }
    if let Some((name, Decision::Fork(id))) =
        ran.iter().find(|(_, d)| matches!(d, Decision::Fork(_)))
    {
        let fork = run.router.fork(*id);
        assert!(
            states.iter().any(|d| d.reason == Reason::Fork
                && d.key.is_some_and(|k| k.eq_bytes(fork.key.as_bytes()))
                && d.fork.is_some_and(|f| f
                    .bytes()
                    .take(fork.destination.len())
                    .eq(fork.destination.bytes()))),
            "{config}: {name}: the access log has key={} fork={}\n{log}",
            fork.key,
            fork.destination
        );
    }
    let _ = std::fs::remove_dir_all(&dir);

    // Only cases HTTP/1.1 cannot carry were left out, and they are named.
    let known_undeliverable = ["binary-garbage", "empty-authority"];
    for name in &not_deliverable {
        assert!(
            known_undeliverable.contains(&name.as_str()),
            "{config}: {name} was not sent"
        );
    }
    eprintln!(
        "{config}: {} cases through Envoy; not deliverable over HTTP/1.1: {not_deliverable:?}",
        ran.len()
    );
    ran.len()
}

#[test]
fn hotrod_corpus_through_envoy() {
    assert!(run_corpus("hotrod.json") >= 40);
}

#[test]
fn reject_policy_through_envoy() {
    assert!(run_corpus("hotrod-reject.json") >= 4);
}

#[test]
fn custom_member_names_through_envoy() {
    assert!(run_corpus("custom-members.json") >= 2);
}

#[test]
fn bad_plugin_config_is_refused_with_the_reason_in_the_log() {
    let module = wasm::build("laneway-filter");
    let bootstrap = bootstrap::sidecar(&Sidecar::new(
        Filter::Wasm {
            module: &module,
            configuration: r#"{"version": 2, "sandboxes": [{"key": "a,b", "forks": []}]}"#,
        },
        vec![VirtualHost::to(
            "location",
            Target::Direct("location@baseline".into()),
        )],
    ));
    let err = match Envoy::start(&bootstrap) {
        Ok(_) => panic!("envoy started with a bad plugin configuration"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("rejected plugin configuration: version: unsupported version 2; this build reads version 1"),
        "{err}"
    );
    assert!(
        err.contains(r#"sandboxes[0].key: "a,b" holds ','"#),
        "{err}"
    );
}

#[test]
fn repeated_baggage_lines_are_all_read() {
    // Envoy hands a filter only the first value of a repeated header; the
    // filter reads the pairs, so a key on the second line still routes and
    // a conflicting second line is caught.
    let config = corpus::config_text("hotrod.json");
    let dir = std::env::temp_dir().join(format!("laneway-e2e-{}-lines", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = Run::start(&config, &dir.join("access.log"));
    let host: (&str, &[u8]) = ("host", b"location:8083");
    let r = run.send(&[
        host,
        ("baggage", b"a=1"),
        ("baggage", b"sd-routing-key=qwblp48fpmb30"),
    ]);
    assert_eq!(
        r.header("x-served-by").as_deref(),
        Some("location@fork(qwblp48fpmb30)")
    );
    let r = run.send(&[
        host,
        ("baggage", b"sd-routing-key=qwblp48fpmb30"),
        ("baggage", b"sd-routing-key=r7gq2x9k4mzt1"),
    ]);
    assert_eq!(
        r.header("x-served-by").as_deref(),
        Some("location@baseline")
    );
    let stats = run.mesh.envoy.stats().unwrap();
    assert_eq!(stats.get("wasmcustom.laneway.decision.fork"), Some(&1));
    assert_eq!(stats.get("wasmcustom.laneway.decision.conflict"), Some(&1));
    let _ = std::fs::remove_dir_all(&dir);
}
