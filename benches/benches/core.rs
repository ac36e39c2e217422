//! Core parse + decide against the seed's regex and the memchr floor, on
//! the same header bytes (throughput in bytes).
//!
//! Contenders, per corpus case:
//! - `laneway`: `Router::decide` (parse every baggage/tracestate member,
//!   find the key, three bounded lookups) on a 1,000-sandbox table;
//! - `regex-1`: a regex-automata dense DFA of the seed's Istio regex (ASCII
//!   word boundaries), one key, scanning to the end as RE2's full match does;
//! - `regex-100`: 100 such DFAs, one per sandbox, against the same header,
//!   as Envoy evaluates one route per sandbox;
//! - `memchr-floor`: `memchr::memmem` counting `sd-`, the least any scan
//!   can do.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use laneway_benches::corpus::{self, KEY};
use laneway_core::{Request, Router};
use regex_automata::dfa::{Automaton, dense};
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input};

fn dfa(key: &str) -> dense::DFA<Vec<u32>> {
    dense::Builder::new()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .build(&corpus::seed_regex(key))
        .expect("the seed regex compiles to a dense DFA")
}

fn full_match(dfa: &dense::DFA<Vec<u32>>, hay: &[u8]) -> bool {
    let input = Input::new(hay).anchored(Anchored::Yes);
    matches!(dfa.try_search_fwd(&input), Ok(Some(m)) if m.offset() == hay.len())
}

fn bench(c: &mut Criterion) {
    let router = Router::from_json(&corpus::config(1000)).expect("valid");
    let one = dfa(KEY);
    let hundred: Vec<_> = (0..99)
        .map(|i| dfa(&format!("sbx{i:06}")))
        .chain([dfa(KEY)])
        .collect();
    let floor = memchr::memmem::Finder::new("sd-");
    let mut group = c.benchmark_group("core");
    for case in corpus::cases() {
        let bytes = case.bytes().max(1);
        group.throughput(Throughput::Bytes(bytes as u64));
        let line = case.line();
        group.bench_with_input(BenchmarkId::new("laneway", case.name), &case, |b, case| {
            b.iter(|| {
                router.decide(Request {
                    authority: black_box(b"location:8083"),
                    baggage: case.baggage.iter().map(|l| black_box(l.as_bytes())),
                    tracestate: case.tracestate.iter().map(|l| black_box(l.as_bytes())),
                })
            })
        });
        group.bench_with_input(BenchmarkId::new("regex-1", case.name), &line, |b, line| {
            b.iter(|| full_match(&one, black_box(line)))
        });
        group.bench_with_input(
            BenchmarkId::new("regex-100", case.name),
            &line,
            |b, line| {
                b.iter(|| {
                    hundred
                        .iter()
                        .filter(|d| full_match(d, black_box(line)))
                        .count()
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("memchr-floor", case.name),
            &line,
            |b, line| b.iter(|| floor.find_iter(black_box(line)).count()),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
