//! The deployment shapes (issue 12) in real Envoy 1.40: the filter plain
//! or behind the composite wrapper, each with or without inline headers.
//!
//! - Routing is unchanged in every shape: every scenario the Envoy backend
//!   replays (testdata/scenarios/, sampled) goes through each of the four
//!   and agrees hop by hop with the in-process wasm backend, as the plain
//!   shape does in simulator/cli/tests/envoy_backend.rs.
//! - The composite wrapper creates the filter only for requests with a
//!   carrier header: an untagged request moves neither Envoy's delegation
//!   counter nor the filter's decision counters, and leaves no filter
//!   state; with carriers [baggage] a tracestate-only request is not
//!   filtered at all (baseline, by design), as the plain shape with the
//!   same configuration ignores its tracestate.
//! - Inline headers make Envoy join repeated `baggage` lines: the upstream
//!   receives one line, and the filter (told `joined`) still finds a key on
//!   the second one.
//!
//! No timing is asserted; each Envoy stops when its test ends.

use std::path::{Path, PathBuf};

use laneway_envoy::backend::EnvoyFactory;
use laneway_envoy::bootstrap::{self, Filter, Shape, Sidecar, Target, VirtualHost};
use laneway_envoy::upstream::Upstreams;
use laneway_envoy::{Envoy, client};
use laneway_replay::WasmFactory;
use laneway_scenario::Scenario;
use laneway_testdata::{corpus, wasm};

/// Requests replayed per traffic group and shape.
const SAMPLE: u64 = 5;

fn describe(shape: Shape, inline: bool) -> String {
    format!("{shape}{}", if inline { "+inline" } else { "" })
}

/// Replays every scenario the Envoy backend takes through the filter in
/// `shape`, and compares each hop with the wasm backend.
fn routing_is_unchanged_in(shape: Shape, inline: bool) {
    let module = wasm::build("laneway-filter");
    let plugin = proxy_wasm_host::Plugin::load(&module).expect("the filter loads");
    let reference = WasmFactory::new(plugin, "laneway_filter.wasm in wasmtime");
    let options = laneway_replay::Options {
        threads: 1,
        sample: Some(SAMPLE),
        ..laneway_replay::Options::default()
    };
    let envoy = EnvoyFactory::new(&module, describe(shape, inline)).shaped(shape, inline);
    let mut replayed = Vec::new();
    for file in corpus::scenario_files() {
        let sc = Scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
        let at = format!("{} ({})", file.display(), describe(shape, inline));
        let r = match laneway_replay::replay(&sc, &envoy, Some(&reference), &options) {
            Ok(r) => r,
            // guards.yaml has a clock, client addresses and a gateway
            // configuration: the backend refuses it in every shape alike.
            Err(e)
                if e.to_string()
                    .contains("the real Envoy backend cannot replay") =>
            {
                continue;
            }
            Err(e) => panic!("{at}: {e}"),
        };
        let s = &r.summary;
        assert!(s.compared > 0, "{at}: nothing compared");
        assert_eq!(
            s.differential.count, 0,
            "{at}: real Envoy and wasmtime route differently: {:#?}",
            s.differential
        );
        eprintln!("{at}: {:?}", r.elapsed);
        replayed.push(at);
    }
    // The check saw the corpus: hotrod, ambient, faults, deep chains…
    assert!(replayed.len() >= 6, "{replayed:#?}");
}

#[test]
fn routing_is_unchanged_plain() {
    routing_is_unchanged_in(Shape::Plain, false);
}

#[test]
fn routing_is_unchanged_composite() {
    routing_is_unchanged_in(Shape::Composite, false);
}

#[test]
fn routing_is_unchanged_plain_inline_headers() {
    routing_is_unchanged_in(Shape::Plain, true);
}

#[test]
fn routing_is_unchanged_composite_inline_headers() {
    routing_is_unchanged_in(Shape::Composite, true);
}

/// A sidecar in front of `location`'s baseline and its fork; all of its
/// requests go to `location`.
struct Edge {
    envoy: Envoy,
    upstreams: Upstreams,
}

const BASELINE: &str = "location@baseline";
const FORK: &str = "location@fork(qwblp48fpmb30)";
const KEY: &[u8] = b"sd-routing-key=qwblp48fpmb30";
/// A tracestate carrying the key (as hotrod.yaml's tracestate-only traffic).
const TRACESTATE: (&str, &[u8]) = (
    "tracestate",
    b"rojo=00f067aa0ba902b7,sd-routing-key=qwblp48fpmb30",
);

/// hotrod's configuration with `routing_key.carriers` set.
fn config(carriers: &str) -> String {
    format!(
        r#"{{"version": 1, "routing_key": {{"members": ["sd-routing-key", "sd-sandbox"], "carriers": {carriers}}}, "sandboxes": [{{"key": "qwblp48fpmb30", "forks": [{{"service": "location", "destination": "location-qwblp48fpmb30"}}]}}]}}"#
    )
}

impl Edge {
    fn start(module: &Path, config: &str, shape: Shape, inline_headers: bool) -> Edge {
        let upstreams = Upstreams::start(&[BASELINE, FORK]).expect("upstreams");
        let to = |w: &str| Target::Upstream(upstreams.addr(w).expect("started"));
        let mut sidecar = Sidecar::new(
            Filter::Wasm {
                module,
                configuration: config,
            },
            vec![
                VirtualHost::to("location", to(BASELINE)),
                VirtualHost::to("location-qwblp48fpmb30", to(FORK)),
            ],
        );
        sidecar.shape = shape;
        sidecar.inline_headers = inline_headers;
        let envoy = Envoy::start(&bootstrap::sidecar(&sidecar))
            .unwrap_or_else(|e| panic!("{}: {e}", describe(shape, inline_headers)));
        Edge { envoy, upstreams }
    }

    /// Sends `GET /` to location with these extra header lines; who served it.
    fn send(&self, lines: &[(&str, &[u8])]) -> String {
        let mut headers: Vec<(&str, &[u8])> = vec![("host", b"location:8083")];
        headers.extend_from_slice(lines);
        let listener = self.envoy.listener(bootstrap::LISTENER).expect("listener");
        let r = client::get(listener, "/", &headers).expect("a response");
        r.header("x-served-by")
            .unwrap_or_else(|| format!("status {}", r.status))
    }

    fn stat(&self, name: &str) -> u64 {
        let stats = self.envoy.stats().expect("stats");
        *stats.get(name).unwrap_or_else(|| panic!("no stat {name}"))
    }

    /// The decision counters' sum: how many requests the filter decided.
    fn decided(&self) -> u64 {
        let stats = self.envoy.stats().expect("stats");
        stats
            .iter()
            .filter(|(k, _)| k.starts_with("wasmcustom.laneway.decision."))
            .map(|(_, v)| v)
            .sum()
    }
}

const DELEGATED: &str = "http.outbound.composite.filter_delegation_success";

fn module() -> PathBuf {
    wasm::build("laneway-filter")
}

#[test]
fn composite_never_creates_the_filter_for_untagged_requests() {
    let edge = Edge::start(
        &module(),
        &config(r#"["baggage", "tracestate"]"#),
        Shape::Composite,
        false,
    );
    for _ in 0..3 {
        assert_eq!(edge.send(&[("x-other", b"1")]), BASELINE);
    }
    let received = edge.upstreams.take();
    assert_eq!(received.len(), 3);
    assert!(
        received
            .iter()
            .all(|r| r.all("x-laneway-decision").is_empty()),
        "no filter, no filter state"
    );
    assert_eq!(edge.stat(DELEGATED), 0, "no filter was created");
    assert_eq!(
        edge.decided(),
        0,
        "the filter decided nothing (no_key included)"
    );
    // The same sidecar does create it, and route, for a tagged request:
    // the check above can fail.
    assert_eq!(edge.send(&[("baggage", KEY)]), FORK);
    // (And this tracestate does carry the key: the carriers test below
    // relies on it.)
    assert_eq!(edge.send(&[TRACESTATE]), FORK);
    assert_eq!(edge.send(&[("baggage", b"other=1")]), BASELINE);
    assert_eq!(edge.stat(DELEGATED), 3);
    assert_eq!(edge.stat("wasmcustom.laneway.decision.fork"), 2);
    assert_eq!(edge.stat("wasmcustom.laneway.decision.no_key"), 1);
}

#[test]
fn with_carriers_baggage_a_tracestate_only_request_is_not_filtered() {
    let module = module();
    let baggage_only = config(r#"["baggage"]"#);
    // Plain: the filter runs and ignores tracestate, by configuration.
    let plain = Edge::start(&module, &baggage_only, Shape::Plain, false);
    assert_eq!(plain.send(&[TRACESTATE]), BASELINE);
    assert_eq!(plain.stat("wasmcustom.laneway.decision.no_key"), 1);
    assert_eq!(plain.send(&[("baggage", KEY)]), FORK);
    // Composite: the matcher asks for baggage alone; the filter never runs.
    let composite = Edge::start(&module, &baggage_only, Shape::Composite, false);
    assert_eq!(composite.send(&[TRACESTATE]), BASELINE);
    assert_eq!(composite.stat(DELEGATED), 0);
    assert_eq!(composite.decided(), 0);
    assert_eq!(composite.send(&[("baggage", KEY)]), FORK);
    assert_eq!(composite.stat(DELEGATED), 1);
}

#[test]
fn inline_headers_deliver_one_joined_baggage_line() {
    let module = module();
    let text = config(r#"["baggage", "tracestate"]"#);
    let lines: [(&str, &[u8]); 2] = [("baggage", b"a=1"), ("baggage", KEY)];
    for shape in Shape::ALL {
        let inline = Edge::start(&module, &text, shape, true);
        // The key is on the second line; joined, the filter reads the one
        // value Envoy holds, and finds it.
        assert_eq!(inline.send(&lines), FORK, "{shape}+inline");
        let got = inline.upstreams.take();
        assert_eq!(
            got[0].all("baggage"),
            [b"a=1,sd-routing-key=qwblp48fpmb30".as_slice()],
            "{shape}+inline: one joined line upstream"
        );
    }
    // Without inline headers the lines stay two (the check can fail).
    let plain = Edge::start(&module, &text, Shape::Plain, false);
    assert_eq!(plain.send(&lines), FORK);
    let got = plain.upstreams.take();
    assert_eq!(got[0].all("baggage").len(), 2);
}

#[test]
fn the_builder_sets_joined_exactly_with_inline_headers() {
    let module = module();
    let text = config(r#"["baggage"]"#);
    let rendered = |inline: bool| {
        let mut s = Sidecar::new(
            Filter::Wasm {
                module: &module,
                configuration: &text,
            },
            vec![VirtualHost::to("location", Target::Direct("x".into()))],
        );
        s.shape = Shape::Composite;
        s.inline_headers = inline;
        bootstrap::sidecar(&s).to_string()
    };
    let on = rendered(true);
    assert!(on.contains(r#"\"joined\":true"#), "{on}");
    assert!(on.contains(r#""inline_header_name":"baggage""#));
    let off = rendered(false);
    assert!(
        !off.contains("joined") && !off.contains("inline_headers"),
        "{off}"
    );
    // Carriers [baggage]: the matcher asks for baggage alone.
    assert!(!off.contains(r#""header_name":"tracestate""#), "{off}");
}
