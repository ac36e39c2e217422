use super::*;

#[test]
fn parses_wrk_output() {
    let text = "Running 3s test @ http://127.0.0.1:1/\n  1 threads and 16 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   330.12us  100.00us   5.00ms   90.00%\n  Latency Distribution\n     50%  310.00us\n     75%  350.00us\n     90%  400.00us\n     99%    1.20ms\n  145000 requests in 3.00s, 20.00MB read\nRequests/sec:  48333.33\nTransfer/sec:      6.67MB\n";
    let plain = Setup::Plain { inline: false };
    let m = parse_wrk(&plain, BENCH_MIX, text).unwrap();
    assert_eq!(m.requests, 145000);
    assert!((m.rps - 48333.33).abs() < 0.01);
    assert_eq!((m.p50_us, m.p99_us), (310.0, 1200.0));
    let bad = format!("{text}  Non-2xx or 3xx responses: 12\n");
    assert!(
        parse_wrk(&plain, BENCH_MIX, &bad).is_err(),
        "errors must fail the harness"
    );
}

#[test]
fn regex_setup_has_two_routes_per_sandbox() {
    let b = bootstrap_for(&Setup::Regex(10), Path::new("l.wasm"), Path::new("e.wasm"));
    let vhosts = &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["route_config"]["virtual_hosts"];
    assert_eq!(vhosts[0]["routes"].as_array().unwrap().len(), 2 * 10 + 1);
    assert_eq!(vhosts.as_array().unwrap().len(), 1 + 10);
}

#[test]
fn the_tagged_sandbox_sits_in_the_middle_of_every_list() {
    for n in [6, 10, 1000, 10_000] {
        let keys: Vec<_> = (0..n).map(|i| sandbox_key(n, i)).collect();
        assert_eq!(keys[n / 2], HIT_KEY, "n = {n}");
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, (0..n).map(key).collect::<Vec<_>>(), "a permutation");
    }
    let b = bootstrap_for(&Setup::Regex(1000), Path::new("l"), Path::new("e"));
    let routes = &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["route_config"]["virtual_hosts"][0]["routes"];
    let first_hit = routes
        .as_array()
        .unwrap()
        .iter()
        .position(|r| r.to_string().contains(HIT_KEY))
        .unwrap();
    assert_eq!(first_hit, 2 * 500, "two routes per sandbox before it");
}

#[test]
fn laneway_config_is_valid() {
    for joined in [false, true] {
        let text = laneway_config_joined(100, joined);
        let r = laneway_core::Router::from_json(&text).unwrap();
        assert_eq!(r.forks(), 100);
        assert_eq!(text.contains("\"joined\":true"), joined);
    }
}

fn count(requests: &[Request], f: impl Fn(&Request) -> bool) -> usize {
    requests.iter().filter(|r| f(r)).count()
}

#[test]
fn production_mix_has_the_issues_proportions() {
    let m = production_mix();
    assert_eq!(m.len(), 100);
    let untagged = |r: &Request| r.kind == UNTAGGED;
    assert_eq!(count(&m, untagged), 90, "90% untagged");
    assert_eq!(
        count(&m, |r| untagged(r) && !r.headers.is_empty()),
        45,
        "half of them with traceparent"
    );
    assert_eq!(count(&m, |r| !untagged(r)), 10, "10% with context");
    assert_eq!(count(&m, |r| r.to_fork), 2, "a fifth of those forks");
    assert!(
        m.iter().filter(|r| !untagged(r)).all(|r| r
            .headers
            .iter()
            .any(|(n, _)| *n == "baggage" || *n == "tracestate")),
        "context means a baggage or tracestate header"
    );
}

#[test]
fn bench_mix_is_the_earlier_cycle() {
    let m = bench_mix();
    assert_eq!(m.len(), 8);
    assert_eq!(count(&m, |r| r.kind == UNTAGGED), 4, "half without context");
    assert_eq!(count(&m, |r| r.to_fork), 2);
}

#[test]
fn shapes_set_inline_headers_and_joined() {
    let l = Path::new("l.wasm");
    let e = Path::new("e.wasm");
    for (wrapper, inline) in SHAPES {
        let s = Setup::laneway(10, (wrapper, inline));
        let text = bootstrap_for(&s, l, e).to_string();
        assert_eq!(text.contains("inline_headers"), inline, "{}", s.label());
        assert_eq!(text.contains(r#"\"joined\":true"#), inline, "{}", s.label());
        assert_eq!(
            text.contains("filters.http.composite.v3"),
            wrapper == Wrapper::Composite,
            "{}",
            s.label()
        );
    }
    let text = bootstrap_for(&Setup::Empty { inline: true }, l, e).to_string();
    assert!(text.contains("inline_headers"));
}

#[test]
fn labels_are_unique() {
    let mut labels: Vec<String> = instructions::setups(false)
        .iter()
        .map(Setup::label)
        .collect();
    let n = labels.len();
    labels.sort();
    labels.dedup();
    assert_eq!(labels.len(), n);
    assert_eq!(thousands(10_000), "10,000");
    assert_eq!(thousands(10), "10");
}

/// Synthetic counts: every setup, every kind and mix, `base` instructions
/// scaled by `f(setup)`.
fn synthetic(f: impl Fn(&Setup) -> f64) -> Vec<Counted> {
    instructions::setups(false)
        .into_iter()
        .map(|setup| Counted {
            setup,
            counts: KINDS
                .iter()
                .chain(MIXES.iter())
                .map(|&what| Count {
                    what,
                    per_request: 100_000.0 * f(&setup),
                    requests: 500,
                })
                .collect(),
        })
        .collect()
}

#[test]
fn targets_judge_the_measured_ratios() {
    let counted = synthetic(|s| match *s {
        Setup::Plain { .. } => 0.8,
        Setup::Empty { .. } => 1.0,
        Setup::Laneway {
            wrapper: Wrapper::Composite,
            ..
        } => 0.83,
        Setup::Laneway { .. } => 1.2,
        Setup::Regex(n) => n as f64 / 50.0,
    });
    let t = instructions::targets(&counted);
    let line = |prefix: &str| {
        t.iter()
            .find(|t| t.target.starts_with(prefix))
            .unwrap_or_else(|| panic!("no target {prefix:?} in {t:#?}"))
    };
    // 0.83 / 0.8 = 1.0375 ≤ 1.05.
    assert_eq!(line("untagged, composite ≤").pass, Some(true));
    // Best shape (composite): 1.0 / 0.83 = 1.205 ≥ 1.10.
    assert_eq!(line("production mix").pass, Some(true));
    // The WasmPlugin shape: 1.0 / 1.2 = 0.83 < 0.90.
    assert_eq!(line("bench mix, WasmPlugin").pass, Some(false));
    // Regex at 1,000: 20.0 / 1.2 = 16.7× ≥ 10.
    assert_eq!(line("every request kind at 1,000").pass, Some(true));
    assert_eq!(line("every request kind at 10,000").pass, None);
    assert_eq!(line("flat in table size").pass, Some(true));
    let report = instructions::report(&counted);
    assert!(report.contains("MISS bench mix, WasmPlugin"), "{report}");
    assert!(report.contains("| plain Envoy + inline |"));
}

#[test]
fn a_partial_run_judges_only_what_it_measured() {
    let counted: Vec<Counted> = synthetic(|_| 1.0)
        .into_iter()
        .filter(|c| matches!(c.setup, Setup::Plain { .. }))
        .collect();
    assert!(instructions::targets(&counted).is_empty());
    assert!(!instructions::report(&counted).contains("Targets"));
}
