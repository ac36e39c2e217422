//! `laneway replay` throughput in hops per second: the HotROD scenario of
//! `testdata/scenarios/hotrod.yaml`, every core, one wasm VM per thread,
//! every hop also decided by laneway-core (the differential check).
//!
//! Needs the filter built (`make wasm`).

use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use laneway_replay::{NativeFactory, Options, WasmFactory};
use laneway_scenario::Scenario;
use proxy_wasm_host::Plugin;

fn bench(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let wasm = root.join("target/wasm32-wasip1/release/laneway_filter.wasm");
    assert!(wasm.is_file(), "{}: run `make wasm` first", wasm.display());
    let plugin = Plugin::load(&wasm).expect("loads");
    let primary = WasmFactory::new(plugin, "laneway_filter.wasm");
    let scenario =
        Scenario::load(&root.join("testdata/scenarios/hotrod.yaml")).expect("valid scenario");
    let options = Options::default();
    let replay = || {
        laneway_replay::replay(&scenario, &primary, Some(&NativeFactory), &options)
            .expect("replays")
            .summary
    };
    let hops = replay().hops;
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(hops));
    group.bench_function(format!("hotrod-{}-threads", options.threads), |b| {
        b.iter(|| {
            let s = replay();
            assert!(s.checks().iter().all(|(_, f)| f.count == 0));
            s.hops
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
