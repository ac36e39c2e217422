//! The filter's allocation and memory budget, counted in the wasmtime host.
//!
//! The filter exports `laneway_guest_allocations` (every heap allocation in
//! the guest); the host counts the allocations it forced by copying header
//! data into guest memory. Over every routing case of `testdata/`:
//! - every guest allocation is one the host forced: the filter's own code
//!   allocates nothing per request;
//! - a request with neither `baggage` nor `tracestate` allocates nothing;
//!   any other request at most twice (the header found by lookup, then the
//!   header map as pairs);
//! - guest memory does not grow over 100,000 requests.

use laneway_testdata::{self as corpus, wasm};
use proxy_wasm_host::{Hop, HostOptions, Plugin, Vm};

fn vm(plugin: &Plugin, config: &str) -> Vm {
    plugin
        .vm(&HostOptions {
            plugin_config: config.as_bytes().to_vec(),
            allocation_counter: Some("laneway_guest_allocations".into()),
            ..HostOptions::default()
        })
        .expect("the filter starts")
}

fn fill(hop: &mut Hop, authority: &str, baggage: &[Vec<u8>], tracestate: &[Vec<u8>]) {
    hop.request_headers.clear();
    hop.request_headers.add(":authority", authority);
    hop.request_headers.add(":path", "/");
    hop.request_headers.add(":method", "GET");
    for b in baggage {
        hop.request_headers.add("baggage", b);
    }
    for t in tracestate {
        hop.request_headers.add("tracestate", t);
    }
    hop.response_headers.clear();
    hop.response_headers.add(":status", "200");
}

#[test]
fn every_guest_allocation_is_forced_by_a_header_copy() {
    let plugin = Plugin::load(&wasm::build("laneway-filter")).unwrap();
    let mut checked = 0;
    // (baggage lines, tracestate lines) present -> allocations seen.
    let mut seen =
        std::collections::BTreeMap::<(bool, bool), std::collections::BTreeSet<u64>>::new();
    for (file, case) in corpus::routing_cases() {
        let at = format!("{file}: {}", case.name);
        let mut vm = vm(
            &plugin,
            &corpus::config_text(case.config.as_deref().unwrap()),
        );
        let (baggage, tracestate) = (
            corpus::expand(&case.baggage),
            corpus::expand(&case.tracestate),
        );
        let mut hop = Hop::default();
        // Warm up once: the first request may grow the guest's heap.
        fill(&mut hop, &case.authority, &baggage, &tracestate);
        vm.request(&mut hop).unwrap();
        fill(&mut hop, &case.authority, &baggage, &tracestate);
        let outcome = vm.request(&mut hop).unwrap_or_else(|e| panic!("{at}: {e}"));
        let guest = outcome
            .guest_allocations
            .expect("the filter counts its allocations");
        let forced = outcome.host_allocations;
        assert_eq!(guest, forced, "{at}: the filter allocated on its own");
        seen.entry((!baggage.is_empty(), !tracestate.is_empty()))
            .or_default()
            .insert(forced);
        if baggage.is_empty() && tracestate.is_empty() {
            assert_eq!(forced, 0, "{at}: untagged requests allocate nothing");
        } else {
            assert!((1..=2).contains(&forced), "{at}: {forced} header copies");
        }
        checked += 1;
    }
    assert!(checked >= 50, "{checked} cases");
    for ((b, t), counts) in &seen {
        eprintln!("baggage: {b:<5} tracestate: {t:<5} guest allocations per request: {counts:?}");
    }
}

#[test]
fn guest_memory_does_not_grow_with_traffic() {
    let plugin = Plugin::load(&wasm::build("laneway-filter")).unwrap();
    let mut vm = vm(&plugin, &corpus::config_text("hotrod-reject.json"));
    let mut hop = Hop::default();
    let requests: [(&str, &[&[u8]]); 4] = [
        ("location:8083", &[]),
        ("location:8083", &[b"sd-routing-key=qwblp48fpmb30"]),
        ("location:8083", &[b"a=1", b"sd-routing-key=gone"]),
        ("driver:8082", &[b"sd-routing-key=r7gq2x9k4mzt1,x=%zz"]),
    ];
    let mut run = |vm: &mut Vm, n: usize| {
        for i in 0..n {
            let (authority, baggage) = requests[i % requests.len()];
            let baggage: Vec<Vec<u8>> = baggage.iter().map(|b| b.to_vec()).collect();
            fill(&mut hop, authority, &baggage, &[]);
            vm.request(&mut hop).unwrap();
        }
    };
    run(&mut vm, 1_000);
    let warm = vm.memory_bytes();
    run(&mut vm, 100_000);
    assert_eq!(vm.memory_bytes(), warm, "linear memory grew with traffic");
    assert_eq!(vm.metric("laneway.decision.fork"), Some(25_250 + 25_250));
}
