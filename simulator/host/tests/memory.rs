//! A filter's linear memory stays flat under load: one VM, configured with
//! `testdata/configs/hotrod.json`, runs a rotating mix of request kinds
//! (untagged, tagged with a fork, tagged with none for the service, an
//! unknown key, a conflict, a key in tracestate, malformed baggage,
//! oversized baggage), and its memory size after request 10,000 must equal
//! its size after the last one. Wasm memory never shrinks, so any
//! per-request leak would show as growth.
//!
//! The module is `laneway_filter.wasm`, the one Envoy loads. Requests:
//! `LANEWAY_MEMORY_REQUESTS` (default 100,000, about 5 s in a debug build;
//! `make bench-wasm-memory` runs 1,000,000 in release).

use std::time::Instant;

use laneway_testdata::{self as corpus, wasm};
use proxy_wasm_host::{Hop, HostOptions, Plugin};

/// When the memory size is taken as the baseline.
const WARM: u64 = 10_000;
const PAGE: usize = 65536;

/// One kind of request: a name, its `:authority`, its header lines, and
/// the decision counter it bumps.
struct Kind {
    name: &'static str,
    authority: &'static str,
    headers: Vec<(&'static str, String)>,
    counter: &'static str,
}

fn kinds() -> Vec<Kind> {
    let key = "sd-routing-key=qwblp48fpmb30";
    // 10 KiB of members before the key: past the 8192-byte limit.
    let padding: String = (0..200)
        .map(|i| format!("m{i:03}=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,"))
        .collect();
    let kind = |name, authority, headers: &[(&'static str, &str)], counter| Kind {
        name,
        authority,
        headers: headers.iter().map(|(n, v)| (*n, (*v).to_owned())).collect(),
        counter,
    };
    vec![
        kind("untagged", "location:8083", &[], "no_key"),
        kind(
            "tagged, fork",
            "location:8083",
            &[("baggage", &format!("user=alice,{key}"))],
            "fork",
        ),
        kind(
            "tagged, no fork",
            "frontend:8080",
            &[("baggage", key)],
            "no_fork",
        ),
        kind(
            "unknown key",
            "location:8083",
            &[("baggage", "sd-routing-key=deleted0sandbox")],
            "unknown_key",
        ),
        kind(
            "conflict",
            "location:8083",
            &[
                ("baggage", key),
                ("baggage", "sd-routing-key=r7gq2x9k4mzt1"),
            ],
            "conflict",
        ),
        kind(
            "tracestate, fork",
            "driver:8082",
            &[(
                "tracestate",
                "rojo=00f067aa0ba902b7,sd-routing-key=r7gq2x9k4mzt1",
            )],
            "fork",
        ),
        kind(
            "malformed",
            "location:8083",
            &[("baggage", "sd-routing-key=%zz;p,=v,\"bad\"")],
            "malformed",
        ),
        kind(
            "oversized",
            "location:8083",
            &[("baggage", &format!("{padding}{key}"))],
            "malformed",
        ),
    ]
}

fn requests() -> u64 {
    std::env::var("LANEWAY_MEMORY_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
        .max(WARM)
}

#[test]
fn linear_memory_is_flat_across_many_requests() {
    let plugin = Plugin::load(&wasm::build("laneway-filter")).expect("the filter loads");
    let mut vm = plugin
        .vm(&HostOptions {
            plugin_name: "laneway".into(),
            plugin_config: corpus::config_text("hotrod.json").into_bytes(),
            ..HostOptions::default()
        })
        .expect("the filter starts");
    let kinds = kinds();
    let total = requests();
    let start_pages = vm.memory_bytes() / PAGE;
    let mut warm_pages = 0;
    let mut hop = Hop::default();
    let started = Instant::now();
    for i in 0..total {
        let kind = &kinds[(i % kinds.len() as u64) as usize];
        hop.request_headers.clear();
        hop.request_headers.add(":authority", kind.authority);
        hop.request_headers.add(":path", "/");
        hop.request_headers.add(":method", "GET");
        for (n, v) in &kind.headers {
            hop.request_headers.add(n, v);
        }
        hop.response_headers.clear();
        hop.response_headers.add(":status", "200");
        let outcome = vm
            .request(&mut hop)
            .unwrap_or_else(|e| panic!("request {i} ({}): {e}", kind.name));
        assert!(outcome.forwarded, "request {i} ({})", kind.name);
        if i + 1 == WARM {
            warm_pages = vm.memory_bytes() / PAGE;
        }
        if i % 10_000 == 0 {
            // Log lines live in the host; keep them from piling up.
            vm.take_logs();
        }
    }
    let elapsed = started.elapsed();
    let end_pages = vm.memory_bytes() / PAGE;
    eprintln!(
        "{total} requests in {elapsed:.1?} ({:.1} µs each): linear memory {start_pages} pages at start, {warm_pages} after {WARM}, {end_pages} after {total}",
        elapsed.as_secs_f64() * 1e6 / total as f64
    );
    assert_eq!(
        end_pages, warm_pages,
        "linear memory grew from {warm_pages} pages after {WARM} requests to {end_pages} after {total}"
    );

    // Every kind ran as meant: the decision counters add up.
    let rounds = total / kinds.len() as u64;
    let extra = total % kinds.len() as u64;
    for counter in [
        "no_key",
        "fork",
        "no_fork",
        "unknown_key",
        "conflict",
        "malformed",
    ] {
        let want: u64 = kinds
            .iter()
            .enumerate()
            .filter(|(_, k)| k.counter == counter)
            .map(|(j, _)| rounds + u64::from((j as u64) < extra))
            .sum();
        assert_eq!(
            vm.metric(&format!("laneway.decision.{counter}")),
            Some(want),
            "laneway.decision.{counter}"
        );
    }
    assert_eq!(vm.metric("laneway.host_errors"), Some(0));
    assert_eq!(
        vm.metric("laneway.baggage.over_limit"),
        Some(rounds + u64::from(7 < extra))
    );
}
