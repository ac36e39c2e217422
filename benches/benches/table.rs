//! Decide against table size: the same tagged request on tables of 10,
//! 1,000 and 100,000 forks. Flat is the goal: the lookups read a bounded
//! number of slots whatever the size.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use laneway_benches::corpus::{self, KEY};
use laneway_core::{Request, Router};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("table");
    let baggage = format!("user=alice,sd-routing-key={KEY}");
    for n in [10usize, 1_000, 100_000] {
        let router = Router::from_json(&corpus::config(n)).expect("valid");
        for (name, authority) in [("fork", "location:8083"), ("no-fork", "frontend:8080")] {
            group.bench_with_input(BenchmarkId::new(name, n), &router, |b, router| {
                b.iter(|| {
                    router.decide(Request {
                        authority: black_box(authority.as_bytes()),
                        baggage: [black_box(baggage.as_bytes())],
                        tracestate: std::iter::empty(),
                    })
                })
            });
        }
        // A key no sandbox has: the miss path of the key lookup.
        group.bench_with_input(BenchmarkId::new("unknown-key", n), &router, |b, router| {
            b.iter(|| {
                router.decide(Request {
                    authority: black_box(&b"location:8083"[..]),
                    baggage: [black_box(&b"user=alice,sd-routing-key=nosuchkey0"[..])],
                    tracestate: std::iter::empty(),
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
