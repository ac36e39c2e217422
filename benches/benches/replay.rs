//! `laneway replay` throughput in hops per second: the HotROD scenario of
//! `testdata/scenarios/hotrod.yaml`, every core, one wasm VM per thread,
//! every hop also decided by laneway-core (the differential check).
//!
//! Needs the filter built (`make wasm`).

use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use laneway_sim::host::Plugin;
use laneway_sim::replay::{self, Options};
use laneway_sim::scenario::Scenario;

fn bench(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let wasm = root.join("target/wasm32-wasip1/release/laneway_filter.wasm");
    assert!(wasm.is_file(), "{}: run `make wasm` first", wasm.display());
    let plugin = Plugin::load(&wasm).expect("loads");
    let scenario =
        Scenario::load(&root.join("testdata/scenarios/hotrod.yaml")).expect("valid scenario");
    let options = Options::default();
    let hops = replay::replay(&scenario, &plugin, "laneway_filter.wasm", &options)
        .expect("replays")
        .hops;
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(hops));
    group.bench_function(format!("hotrod-{}-threads", options.threads), |b| {
        b.iter(|| {
            let r = replay::replay(&scenario, &plugin, "laneway_filter.wasm", &options)
                .expect("replays");
            assert!(r.passed());
            r.hops
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
