//! One request through `laneway_filter.wasm` in the wasmtime host, over the
//! full ABI lifecycle (context create, request headers, response headers,
//! done, log, delete), beside the empty filter: the cost of the filter's
//! own work per request.
//!
//! Needs the modules built (`make wasm`).

use std::path::PathBuf;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use laneway_benches::corpus;
use proxy_wasm_host::{Hop, HostOptions, Plugin};

fn module(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm32-wasip1/release")
        .join(name);
    assert!(path.is_file(), "{}: run `make wasm` first", path.display());
    path
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("wasm");
    let config = corpus::config(1000);
    let requests: [(&str, &[(&str, String)]); 3] = [
        ("untagged", &[]),
        (
            "baggage-no-key",
            &[("baggage", "user=alice,session=8c1d2f".to_owned())],
        ),
        (
            "tagged-fork",
            &[(
                "baggage",
                format!("user=alice,sd-routing-key={}", corpus::KEY),
            )],
        ),
    ];
    for filter in ["laneway_filter.wasm", "laneway_empty_filter.wasm"] {
        let plugin = Plugin::load(&module(filter)).expect("loads");
        let mut vm = plugin
            .vm(&HostOptions {
                plugin_config: config.as_bytes().to_vec(),
                ..HostOptions::default()
            })
            .expect("starts");
        for (name, headers) in &requests {
            let mut hop = Hop::default();
            group.bench_function(
                BenchmarkId::new(filter.trim_end_matches(".wasm"), name),
                |b| {
                    b.iter(|| {
                        hop.request_headers.clear();
                        hop.request_headers.add(":authority", "location:8083");
                        hop.request_headers.add(":path", "/");
                        hop.request_headers.add(":method", "GET");
                        for (n, v) in headers.iter() {
                            hop.request_headers.add(n, v);
                        }
                        hop.response_headers.clear();
                        hop.response_headers.add(":status", "200");
                        vm.request(&mut hop).expect("no trap").forwarded
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
