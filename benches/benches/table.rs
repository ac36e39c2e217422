//! Decide against table size: the same tagged request on tables of 10,
//! 1,000 and 100,000 forks. Flat is the goal: the lookups read a bounded
//! number of slots whatever the size.
//!
//! Criterion times each size in its own few seconds, so on a shared
//! virtual machine a drift between those seconds (seen: ±15% from run to
//! run) can be larger than the effect measured. After the criterion
//! groups, an interleaved run times the three sizes in alternating short
//! batches within the same second, many times over, and prints each
//! size's median batch and its ratio to 10 forks: drift hits every size
//! alike. It prints numbers; it asserts none.

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, criterion_group};
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

/// Nanoseconds per decide, median over interleaved batches, per table size.
fn interleaved() {
    const BATCH: u32 = 20_000;
    const ROUNDS: usize = 101;
    let sizes = [10usize, 1_000, 100_000];
    let routers: Vec<Router> = sizes
        .iter()
        .map(|&n| Router::from_json(&corpus::config(n)).expect("valid"))
        .collect();
    let baggage = format!("user=alice,sd-routing-key={KEY}");
    let cases = [
        ("fork", "location:8083", baggage.as_str()),
        ("no-fork", "frontend:8080", baggage.as_str()),
        (
            "unknown-key",
            "location:8083",
            "user=alice,sd-routing-key=nosuchkey0",
        ),
    ];
    println!("\ntable/interleaved: {ROUNDS} rounds of {BATCH} decides per size, sizes alternating");
    println!("| request | 10 forks | 1,000 forks | 100,000 forks | 100,000 vs 10 |");
    println!("|---|---:|---:|---:|---:|");
    for (name, authority, baggage) in cases {
        let mut samples = vec![Vec::with_capacity(ROUNDS); routers.len()];
        for round in 0..ROUNDS {
            // Rotate the order too, so no size always runs first.
            for k in 0..routers.len() {
                let i = (round + k) % routers.len();
                let router = &routers[i];
                let started = Instant::now();
                for _ in 0..BATCH {
                    black_box(router.decide(Request {
                        authority: black_box(authority.as_bytes()),
                        baggage: [black_box(baggage.as_bytes())],
                        tracestate: std::iter::empty(),
                    }));
                }
                samples[i].push(started.elapsed().as_secs_f64() * 1e9 / f64::from(BATCH));
            }
        }
        let median: Vec<f64> = samples
            .iter_mut()
            .map(|v| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            })
            .collect();
        println!(
            "| {name} | {:.1} ns | {:.1} ns | {:.1} ns | {:+.1}% |",
            median[0],
            median[1],
            median[2],
            (median[2] / median[0] - 1.0) * 100.0
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo bench -- --list` only lists.
    if !std::env::args().any(|a| a == "--list") {
        interleaved();
    }
}
