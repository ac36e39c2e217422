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
use laneway_core::guard::{Facts, HeaderSink};
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

/// Host facts with no heap: a source, a clock, and a one-entry store.
struct FixedFacts {
    source: &'static [u8],
    key: [u8; 160],
    key_len: usize,
    value: [u8; 16],
    cas: u32,
}

impl FixedFacts {
    fn new(source: &'static [u8]) -> FixedFacts {
        FixedFacts {
            source,
            key: [0; 160],
            key_len: 0,
            value: [0; 16],
            cas: 0,
        }
    }
}

impl Facts for FixedFacts {
    fn source(&mut self) -> Option<laneway_core::cidr::Ip> {
        laneway_core::cidr::parse_source(self.source)
    }
    fn now_ns(&mut self) -> Option<u64> {
        Some(1_799_990_000_000_000_000)
    }
    fn shared_get(&mut self, key: &[u8], out: &mut [u8; 16]) -> Result<Option<u32>, ()> {
        if self.cas == 0 || &self.key[..self.key_len] != key {
            return Ok(None);
        }
        *out = self.value;
        Ok(Some(self.cas))
    }
    fn shared_set(&mut self, key: &[u8], value: &[u8], cas: u32) -> Result<bool, ()> {
        if cas != 0 && cas != self.cas {
            return Ok(false);
        }
        self.key_len = key.len().min(160);
        self.key[..self.key_len].copy_from_slice(&key[..self.key_len]);
        self.value.copy_from_slice(value);
        self.cas += 1;
        Ok(true)
    }
}

/// Counts the bytes an edit writes, keeping none.
struct CountingSink(usize);

impl HeaderSink for CountingSink {
    type Error = ();
    fn remove(&mut self, name: &[u8]) -> Result<(), ()> {
        self.0 += name.len();
        Ok(())
    }
    fn add(&mut self, name: &[u8], value: &[u8]) -> Result<(), ()> {
        self.0 += name.len() + value.len();
        Ok(())
    }
    fn replace(&mut self, name: &[u8], value: &[u8]) -> Result<(), ()> {
        self.0 += name.len() + value.len();
        Ok(())
    }
}

/// The guarded request path, edits included; returns work done.
fn guard(
    router: &Router,
    facts: &mut FixedFacts,
    authority: &[u8],
    path: &[u8],
    bag: &[Vec<u8>],
    ts: &[Vec<u8>],
) -> usize {
    let outcome = router.guard(
        Request {
            authority,
            baggage: bag.iter().map(Vec::as_slice),
            tracestate: ts.iter().map(Vec::as_slice),
        },
        path,
        facts,
    );
    let mut sink = CountingSink(0);
    let _ = outcome.apply(
        router,
        path,
        bag.iter().map(Vec::as_slice),
        ts.iter().map(Vec::as_slice),
        b"tracestate",
        &mut sink,
    );
    sink.0 + outcome.verdict.decision.reason().as_str().len()
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
    // Every guard at once, over the same requests, from outside and from
    // a trusted network, with a signed key among them.
    let guarded = Router::from_json(
        r#"{"version":1,
            "ingress":{"trusted_cidrs":["10.0.0.0/8"],"secrets":["bGFuZXdheS10ZXN0LXNlY3JldC0wMDAwMDAwMDAwMDAwMDAwMDA="]},
            "preview":{"hosts":[{"pattern":"*.preview.example.com","service":"location"}],"query_param":"sd-routing-key"},
            "rate_limit":{"requests_per_second":1000,"burst":5},
            "loop_guard":{"max_hops":8},
            "sandboxes":[{"key":"qwblp48fpmb30","expires_at":"2030-01-01T00:00:00Z",
                          "forks":[{"service":"location","destination":"location-q","expires_at":"2029-01-01T00:00:00Z"}]}]}"#,
    )
    .expect("valid guarded config");
    let signed = {
        let secret = laneway_core::signature::Secret::from_config(
            "bGFuZXdheS10ZXN0LXNlY3JldC0wMDAwMDAwMDAwMDAwMDAwMDA=",
        )
        .unwrap();
        let mut t = [0u8; laneway_core::signature::TOKEN_LEN_MAX];
        let n = laneway_core::signature::sign(&secret, b"qwblp48fpmb30", 1_800_000_000, &mut t)
            .unwrap();
        let mut line = b"sd-routing-key=qwblp48fpmb30;laneway-sig=".to_vec();
        line.extend_from_slice(&t[..n]);
        vec![line, b"laneway-hops=3".to_vec()]
    };
    // (authority, path, baggage lines)
    type Extra = (Vec<u8>, Vec<u8>, Vec<Vec<u8>>);
    let extra: Vec<Extra> = vec![
        (b"location".to_vec(), b"/".to_vec(), signed),
        (
            b"qwblp48fpmb30.preview.example.com".to_vec(),
            b"/".to_vec(),
            vec![],
        ),
        (
            b"location".to_vec(),
            b"/a?x=1&sd-routing-key=qwblp48fpmb30".to_vec(),
            vec![],
        ),
    ];
    let mut facts = [
        FixedFacts::new(b"203.0.113.7:1000"),
        FixedFacts::new(b"10.1.2.3:1000"),
    ];

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
        for f in &mut facts {
            work += guard(&guarded, f, authority, b"/", bag, ts);
        }
    }
    for (authority, path, bag) in &extra {
        for f in &mut facts {
            work += guard(&guarded, f, authority, path, bag, &[]);
        }
    }
    let after = allocations();
    black_box(work);

    let cases = parse.len() + routing.len();
    println!(
        "no_alloc: {cases} corpus inputs parsed and decided (and guarded twice), {} allocations",
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
