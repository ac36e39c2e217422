//! Proves the request path allocates nothing: a counting global allocator
//! watches every parse and decision over the whole `testdata/` corpus.
//!
//! A custom harness (`harness = false`) keeps libtest's own threads and
//! output buffers out of the count: the corpus and routers are built first,
//! then the counter is read around the request-path work only.

use laneway_testdata as corpus;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use laneway_core::baggage::{self, Entry};
use laneway_core::tracestate::TraceState;
use laneway_core::{Request, Router};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to `System`; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the caller upholds `alloc`'s contract, which is `System`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, which is `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: `ptr` came from this allocator, which is `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.load(Ordering::SeqCst)
}

fn main() {
    // Everything that may allocate happens here, before counting.
    let parse: Vec<Vec<Vec<u8>>> = ["baggage", "tracestate"]
        .iter()
        .flat_map(|g| corpus::parse_cases(g))
        .flat_map(|(_, c)| [corpus::expand(&c.baggage), corpus::expand(&c.tracestate)])
        .collect();
    let mut routers: BTreeMap<String, Router> = BTreeMap::new();
    let routing: Vec<_> = corpus::routing_cases()
        .into_iter()
        .map(|(_, c)| {
            let name = c.config.clone().expect("filled by the loader");
            routers.entry(name.clone()).or_insert_with(|| {
                Router::from_json(&corpus::config_text(&name)).expect("valid config")
            });
            (
                name,
                c.authority.clone().into_bytes(),
                corpus::expand(&c.baggage),
                corpus::expand(&c.tracestate),
            )
        })
        .collect();
    let mut buf = [0u8; laneway_core::authority::MAX_FORK_AUTHORITY];
    let mut key_buf = [0u8; 256];

    let before = allocations();
    let mut work = 0usize;
    for lines in &parse {
        for entry in baggage::members(lines.iter().map(Vec::as_slice)) {
            if let Entry::Member(m) = entry {
                work += m.value.bytes().count() + m.properties().count();
            }
        }
        if let Ok(ts) = TraceState::parse(lines.iter().map(Vec::as_slice)) {
            work += ts.members().len();
        }
    }
    for (config, authority, bag, ts) in &routing {
        let router = &routers[config];
        let verdict = router.decide(Request {
            authority,
            baggage: bag.iter().map(Vec::as_slice),
            tracestate: ts.iter().map(Vec::as_slice),
        });
        if let laneway_core::Decision::Fork(id) = verdict.decision {
            work += router
                .fork_authority(id, authority, &mut buf)
                .map_or(0, <[u8]>::len);
            work += router.fork(id).destination.len();
        }
        if let Some(key) = verdict.key {
            work += key.value.write_decoded(&mut key_buf).0;
        }
        work += verdict.decision.reason().as_str().len();
    }
    let after = allocations();
    black_box(work);

    let cases = parse.len() + routing.len();
    println!(
        "no_alloc: {cases} corpus inputs parsed and decided, {} allocations",
        after - before
    );
    if after != before {
        eprintln!("FAIL: the request path allocated {} times", after - before);
        std::process::exit(1);
    }
    assert!(
        cases > 100,
        "the corpus is too small to prove anything: {cases}"
    );
    // The counter works: an allocation here must be seen.
    let probe = black_box(vec![1u8; 16]);
    assert!(
        allocations() > after,
        "the counting allocator sees allocations"
    );
    drop(probe);
}
