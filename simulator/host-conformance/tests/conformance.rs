//! Conformance of `proxy-wasm-host` to Envoy's proxy-wasm behaviour, on
//! modules that are not Laneway's: the SDK-built `stamp` module
//! (`testdata/wasm/stamp`) through the full lifecycle, and small WAT
//! modules for the edges (bad pointers, traps, runaway loops, odd imports,
//! refusals, bodies and trailers, several root contexts, an embedder's own
//! store data and host functions), plus a proptest that arbitrary headers
//! never break the host.
//!
//! Modules are built once per test binary (`laneway_testdata::wasm`).

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use laneway_testdata::wasm;
use proptest::prelude::*;
use proxy_wasm_abi::pairs;
use proxy_wasm_host::{
    Action, Compiled, HalfState, HeaderMap, HopError, HostError, HostOptions, HttpCallReply,
    Interruption, Limits, LoadOptions, LogLevel, MetricKind, Part, Plugin, ProxyState, RootOptions,
    Status, StreamCall, StreamType, Vm,
};
use proxy_wasm_host_conformance::{
    arbitrary_hop, headers, logged, module, request, shared_vm, text, wat_bytes, well_formed,
};

fn stamp() -> &'static Plugin {
    static PLUGIN: OnceLock<Plugin> = OnceLock::new();
    PLUGIN.get_or_init(|| Plugin::load(&wasm::build("proxy-wasm-stamp")).expect("stamp loads"))
}

fn stamp_options(config: &str) -> HostOptions {
    HostOptions {
        plugin_name: "stamp-test".into(),
        plugin_config: config.as_bytes().to_vec(),
        vm_config: b"vm-conf".to_vec(),
        ..HostOptions::default()
    }
}

// The stamp module.

#[test]
fn stamp_runs_the_full_lifecycle() {
    // A plugin of its own: the hit counter is plugin-wide.
    let plugin = Plugin::load(&wasm::build("proxy-wasm-stamp")).unwrap();
    let mut vm = plugin
        .vm(&HostOptions {
            log_level: LogLevel::Debug,
            ..stamp_options("stamp=alpha")
        })
        .unwrap();
    let start_logs = vm.take_logs();
    assert!(
        logged(
            &start_logs,
            "host log level 1, vm configuration \"vm-conf\""
        ),
        "{start_logs:?}"
    );
    assert!(
        logged(&start_logs, "configured stamp \"alpha\""),
        "{start_logs:?}"
    );

    let mut hop = request("location:8083", "/dispatch?customer=123");
    let n_headers = hop.request_headers.len() as u64;
    let outcome = vm.request(&mut hop).unwrap().clone();
    assert!(outcome.forwarded);
    assert_eq!(outcome.request_action, Action::Continue);
    assert_eq!(outcome.response_action, Some(Action::Continue));
    assert_eq!(outcome.local_response, None);
    let req = &hop.request_headers;
    assert_eq!(text(req.get("x-stamp")), Some("alpha"));
    assert_eq!(text(req.get("x-stamp-hit")), Some("1"));
    assert_eq!(
        text(req.get("x-stamp-path")),
        Some("/dispatch?customer=123")
    );
    assert_eq!(text(req.get("x-stamp-plugin")), Some("stamp-test"));
    assert_eq!(
        text(hop.response_headers.get("x-stamped-by")),
        Some("alpha")
    );
    assert_eq!(
        text(outcome.properties.get("stamp.path")),
        Some("/dispatch?customer=123")
    );
    assert!(
        logged(
            &outcome.logs,
            "stamped /dispatch?customer=123 from 10.0.0.1:40000"
        ),
        "{:?}",
        outcome.logs
    );
    assert!(
        logged(&outcome.logs, "done with x-stamp \"alpha\""),
        "on_log reads headers"
    );

    assert_eq!(vm.metric("stamp.requests"), Some(1));
    assert_eq!(vm.metric("stamp.last_status"), Some(200));
    let histogram = vm
        .metrics()
        .find(|m| m.name == "stamp.header_count")
        .unwrap();
    assert_eq!(histogram.kind, MetricKind::Histogram);
    let summary = histogram.histogram.unwrap();
    assert_eq!((summary.count, summary.sum), (1, n_headers));

    // The SDK copies headers into guest memory through the allocator.
    assert!(outcome.host_allocations > 0);
    assert!(vm.host_allocations() >= outcome.host_allocations);
    assert!(vm.memory_bytes() >= 65536);

    vm.request(&mut request("location:8083", "/again")).unwrap();
    assert_eq!(vm.metric("stamp.requests"), Some(2));
}

#[test]
fn stamp_logs_below_the_level_are_dropped() {
    let mut vm = stamp().vm(&stamp_options("stamp=quiet")).unwrap();
    let outcome = vm.request(&mut request("a", "/")).unwrap();
    assert!(
        logged(&outcome.logs, "stamped /"),
        "info is kept: {:?}",
        outcome.logs
    );
    assert!(
        !logged(&outcome.logs, "done with"),
        "debug is dropped at info"
    );
}

#[test]
fn shared_data_is_shared_by_the_vms_of_one_plugin_with_cas() {
    let plugin = Plugin::load(&wasm::build("proxy-wasm-stamp")).unwrap();
    let mut a = plugin.vm(&stamp_options("stamp=a")).unwrap();
    let mut b = plugin.vm(&stamp_options("stamp=b")).unwrap();
    let mut hits = Vec::new();
    for which in [0, 1, 0, 1, 1] {
        let vm = if which == 0 { &mut a } else { &mut b };
        let mut hop = request("x", "/");
        vm.request(&mut hop).unwrap();
        hits.push(
            text(hop.request_headers.get("x-stamp-hit"))
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(hits, ["1", "2", "3", "4", "5"]);
    let (value, cas) = plugin.shared_data(b"stamp.hits").unwrap();
    assert_eq!(value, b"5");
    assert_ne!(cas, 0);

    // Another plugin has its own shared data.
    let other = Plugin::load(&wasm::build("proxy-wasm-stamp")).unwrap();
    let mut hop = request("x", "/");
    other
        .vm(&stamp_options("stamp=c"))
        .unwrap()
        .request(&mut hop)
        .unwrap();
    assert_eq!(text(hop.request_headers.get("x-stamp-hit")), Some("1"));
}

#[test]
fn ticks_fire_as_the_clock_advances() {
    let plugin = Plugin::load(&wasm::build("proxy-wasm-stamp")).unwrap();
    let mut vm = plugin
        .vm(&HostOptions {
            log_level: LogLevel::Debug,
            ..stamp_options("stamp=t\ntick_ms=100")
        })
        .unwrap();
    let start = vm.now_ns();
    let root = vm.roots()[0];
    assert_eq!(vm.tick_period_ms(root), 100);
    vm.advance_clock(99).unwrap();
    assert_eq!(vm.metric("stamp.ticks"), Some(0));
    vm.advance_clock(151).unwrap();
    assert_eq!(vm.metric("stamp.ticks"), Some(2));
    assert_eq!(vm.now_ns(), start + 250_000_000);
    let (last, _) = plugin.shared_data(b"stamp.last_tick").unwrap();
    assert_eq!(
        String::from_utf8(last).unwrap(),
        (start + 200_000_000).to_string(),
        "on_tick sees the tick's own time"
    );
    vm.advance_clock(50).unwrap();
    assert_eq!(vm.metric("stamp.ticks"), Some(3));
    assert!(logged(&vm.take_logs(), "tick at"), "tick logs are VM logs");

    let mut quiet = plugin.vm(&stamp_options("stamp=t")).unwrap();
    quiet.advance_clock(10_000).unwrap();
    assert_eq!(quiet.metric("stamp.ticks"), Some(0), "no period, no ticks");
}

#[test]
fn callout_is_recorded_and_its_reply_resumes_the_request() {
    let mut vm = stamp().vm(&stamp_options("stamp=c")).unwrap();
    let mut hop = request("location:8083", "/");
    hop.request_headers.add("x-stamp-callout", "auth");
    hop.http_call_replies.push(HttpCallReply::Response {
        headers: [(":status", "200")].into_iter().collect(),
        body: b"approved".to_vec(),
        trailers: HeaderMap::new(),
    });
    let outcome = vm.request(&mut hop).unwrap().clone();
    assert_eq!(outcome.request_action, Action::StopAllIterationAndWatermark);
    assert_eq!(outcome.callouts.len(), 1);
    let call = &outcome.callouts[0];
    assert_eq!(call.upstream, "auth");
    assert_eq!(text(call.headers.get(":path")), Some("/stamp"));
    assert_eq!(text(call.headers.get("x-stamp")), Some("c"));
    assert_eq!(call.body, b"ping");
    assert_eq!(call.timeout_ms, 250);
    assert!(call.answered);
    assert!(outcome.forwarded, "resumed by proxy_continue_stream");
    assert_eq!(
        outcome.stream_calls,
        [StreamCall::Continue(StreamType::HttpRequest)]
    );
    assert_eq!(
        text(hop.request_headers.get("x-stamp-callout")),
        Some("approved")
    );
    assert_eq!(vm.metric("stamp.callouts"), Some(1));

    // No reply: the request stays paused and never goes upstream.
    let mut hop = request("location:8083", "/");
    hop.request_headers.add("x-stamp-callout", "auth");
    let outcome = vm.request(&mut hop).unwrap();
    assert!(!outcome.forwarded);
    assert_eq!(outcome.response_action, None);
    assert!(!outcome.callouts[0].answered);

    // A failed call: the guest answers locally.
    let mut hop = request("location:8083", "/");
    hop.request_headers.add("x-stamp-callout", "auth");
    hop.http_call_replies.push(HttpCallReply::Reset);
    let outcome = vm.request(&mut hop).unwrap();
    assert!(!outcome.forwarded);
    let reply = outcome.local_response.as_ref().unwrap();
    assert_eq!(reply.status, 503);
    assert_eq!(text(reply.headers.get("x-stamp-callout")), Some("failed"));
}

#[test]
fn callout_to_an_unknown_cluster_is_refused() {
    let mut vm = stamp()
        .vm(&HostOptions {
            clusters: Some(vec!["auth".into()]),
            ..stamp_options("stamp=c")
        })
        .unwrap();
    let mut hop = request("location:8083", "/");
    hop.request_headers.add("x-stamp-callout", "nowhere");
    let outcome = vm.request(&mut hop).unwrap();
    assert!(outcome.callouts.is_empty());
    assert!(outcome.forwarded);
    assert!(logged(
        &outcome.logs,
        "callout to nowhere refused: BadArgument"
    ));
}

#[test]
fn local_response_is_deferred_then_applied() {
    let mut vm = stamp().vm(&stamp_options("stamp=lr")).unwrap();
    let mut hop = request("location:8083", "/");
    hop.request_headers.add("x-stamp-reply", "418");
    let outcome = vm.request(&mut hop).unwrap().clone();
    assert!(!outcome.forwarded);
    assert_eq!(outcome.request_action, Action::StopAllIterationAndWatermark);
    let reply = outcome.local_response.as_ref().unwrap();
    assert_eq!(reply.status, 418);
    assert_eq!(reply.body, b"stamped locally\n");
    assert_eq!(text(reply.headers.get("x-stamp")), Some("lr"));
    assert_eq!(reply.grpc_status, None);
    // Still inside the callback after sending: the request headers could
    // change, because Envoy sends the reply only after the callback.
    assert_eq!(
        text(hop.request_headers.get("x-stamp-after-reply")),
        Some("1")
    );
    // The reply went through on_response_headers, as Envoy's encoder filters.
    assert_eq!(outcome.response_action, Some(Action::Continue));
    let got: Vec<(&[u8], &[u8])> = hop.response_headers.iter().collect();
    let want: Vec<(&[u8], &[u8])> = vec![
        (b":status", b"418"),
        (b"x-stamp", b"lr"),
        (b"content-length", b"16"),
        (b"content-type", b"text/plain"),
        (b"x-stamped-by", b"lr"),
    ];
    assert_eq!(got, want);
    assert_eq!(vm.metric("stamp.last_status"), Some(418));

    // The next hop starts clean.
    let outcome = vm.request(&mut request("a", "/")).unwrap();
    assert!(outcome.forwarded);
    assert_eq!(outcome.local_response, None);
}

#[test]
fn stamp_refuses_a_bad_configuration_with_its_reason() {
    match stamp().vm(&stamp_options("colour=blue")) {
        Err(HostError::Refused { phase, logs }) => {
            assert_eq!(phase, "proxy_on_configure");
            assert!(
                logs.iter().any(|l| l.level == LogLevel::Error
                    && l.message == "invalid stamp configuration: unknown line \"colour=blue\""),
                "{logs:?}"
            );
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("accepted a bad configuration"),
    }
    let mut vm = stamp().vm(&stamp_options("stamp=ok")).unwrap();
    assert!(matches!(
        vm.reconfigure(b"tick_ms=x"),
        Err(HostError::Refused {
            phase: "proxy_on_configure",
            ..
        })
    ));
    vm.reconfigure(b"stamp=swapped").unwrap();
    let mut hop = request("a", "/");
    vm.request(&mut hop).unwrap();
    assert_eq!(text(hop.request_headers.get("x-stamp")), Some("swapped"));
}

// WAT modules for the edges.

fn load(wat: &str) -> Plugin {
    Plugin::from_bytes(wat.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{wat}"))
}

const BAD: &str = "(i32.const 0xfffffff0)";

/// Every probe stores its status at 512 + 4*i; the list is then published
/// as the property `probe` (little-endian u32s).
#[test]
fn guest_mistakes_become_status_codes() {
    let probes = [
        // InvalidMemoryAccess (6) for pointers outside memory.
        format!("(call $log (i32.const 2) {BAD} (i32.const 10))"),
        format!("(call $get_value (i32.const 0) {BAD} (i32.const 5) (i32.const 600) (i32.const 604))"),
        format!("(call $get_value (i32.const 0) (i32.const 100) (i32.const 5) {BAD} (i32.const 604))"),
        format!("(call $replace (i32.const 0) (i32.const 100) (i32.const 5) {BAD} (i32.const 3))"),
        format!("(call $get_pairs (i32.const 0) (i32.const 600) {BAD})"),
        format!("(call $get_property {BAD} (i32.const 4) (i32.const 600) (i32.const 604))"),
        format!(
            "(call $local_reply (i32.const 200) (i32.const 0) (i32.const 0) {BAD} (i32.const 5) (i32.const 0) (i32.const 0) (i32.const -1))"
        ),
        format!(
            "(call $http_call (i32.const 120) (i32.const 4) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 100) {BAD})"
        ),
        format!("(call $now {BAD})"),
        format!("(call $define (i32.const 0) {BAD} (i32.const 3) (i32.const 600))"),
        format!("(call $set_shared {BAD} (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0))"),
        // BadArgument (2): unknown map type, unknown log level.
        "(call $get_value (i32.const 99) (i32.const 100) (i32.const 5) (i32.const 600) (i32.const 604))".into(),
        "(call $log (i32.const 9) (i32.const 100) (i32.const 5))".into(),
        // BadArgument: response headers do not exist yet.
        "(call $get_value (i32.const 2) (i32.const 100) (i32.const 5) (i32.const 600) (i32.const 604))".into(),
        // NotFound (1): a missing header; Ok (0): a present one.
        "(call $get_value (i32.const 0) (i32.const 110) (i32.const 3) (i32.const 600) (i32.const 604))".into(),
        "(call $get_value (i32.const 0) (i32.const 100) (i32.const 5) (i32.const 600) (i32.const 604))".into(),
        // Unimplemented (12): an unknown proxy_* import and gRPC.
        "(call $foo (i32.const 7))".into(),
        "(call $grpc_cancel (i32.const 1))".into(),
        // NotFound: foreign functions; PluginConfiguration outside on_configure.
        "(call $foreign (i32.const 120) (i32.const 4) (i32.const 0) (i32.const 0) (i32.const 600) (i32.const 604))".into(),
        "(call $get_buffer (i32.const 7) (i32.const 0) (i32.const 10) (i32.const 600) (i32.const 604))".into(),
        // Shared data CAS: set (0), stale cas (8), cas 0 always wins (0).
        "(call $set_shared (i32.const 120) (i32.const 4) (i32.const 100) (i32.const 5) (i32.const 0))".into(),
        "(call $set_shared (i32.const 120) (i32.const 4) (i32.const 100) (i32.const 5) (i32.const 123456))".into(),
        "(call $set_shared (i32.const 120) (i32.const 4) (i32.const 100) (i32.const 5) (i32.const 0))".into(),
        // WASI fd_write to a bad iovec: FAULT (21); to fd 7: BADF (8).
        format!("(call $fd_write (i32.const 1) {BAD} (i32.const 1) (i32.const 600))"),
        "(call $fd_write (i32.const 7) (i32.const 0) (i32.const 0) (i32.const 600))".into(),
    ];
    let expected: [u32; 25] = [
        6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 2, 2, 2, 1, 0, 12, 12, 1, 1, 0, 8, 0, 21, 8,
    ];
    assert_eq!(probes.len(), expected.len());
    let mut body = String::from(
        r#"(data (i32.const 100) ":path")
  (data (i32.const 110) "nope")
  (data (i32.const 120) "auth")
  (data (i32.const 130) "probe")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
"#,
    );
    for (i, p) in probes.iter().enumerate() {
        body.push_str(&format!(
            "    (i32.store (i32.const {}) {p})\n",
            512 + 4 * i
        ));
    }
    body.push_str(&format!(
        "    (drop (call $set_property (i32.const 130) (i32.const 5) (i32.const 512) (i32.const {})))\n    (i32.const 0))",
        4 * probes.len()
    ));
    let imports = r#"
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_value (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value" (func $replace (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_pairs" (func $get_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_property" (func $set_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $local_reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_http_call" (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $set_shared (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_call_foreign_function" (func $foreign (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_foo" (func $foo (param i32) (result i32)))
  (import "env" "proxy_grpc_cancel" (func $grpc_cancel (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))"#;
    let plugin = load(&module(imports, &body));
    let mut vm = plugin.vm(&HostOptions::default()).unwrap();
    let mut hop = request("a", "/x");
    let outcome = vm.request(&mut hop).unwrap();
    let raw = outcome.properties.get("probe").expect("probe property set");
    let got: Vec<u32> = raw
        .chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert_eq!(*g, e, "probe {i}: {}", probes[i]);
    }
    assert!(
        outcome.local_response.is_none(),
        "a refused reply is not sent"
    );
    assert!(outcome.forwarded);
    assert_eq!(vm.poisoned(), None);
    assert_eq!(
        text(hop.request_headers.get(":path")),
        Some("/x"),
        "unchanged"
    );
}

/// Which maps and attributes each callback sees, as Envoy has it. Every
/// callback stores statuses in its own slots; `on_log` publishes them all.
#[test]
fn visibility_follows_envoy() {
    let imports = r#"
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $prop (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_property" (func $set_prop (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))"#;
    let get = |map: u32, key: u32, len: u32| {
        format!(
            "(call $get (i32.const {map}) (i32.const {key}) (i32.const {len}) (i32.const 600) (i32.const 604))"
        )
    };
    let add =
        "(call $add (i32.const 0) (i32.const 140) (i32.const 1) (i32.const 140) (i32.const 1))";
    let prop = |at: u32, len: u32| {
        format!("(call $prop (i32.const {at}) (i32.const {len}) (i32.const 600) (i32.const 604))")
    };
    let path = prop(160, 12); // request\0path
    let stores = |first: usize, calls: &[String]| -> String {
        calls
            .iter()
            .enumerate()
            .map(|(i, c)| format!("(i32.store (i32.const {}) {c})\n", 512 + 4 * (first + i)))
            .collect()
    };
    let configure = stores(
        0,
        &[
            get(0, 100, 5),
            "(call $set_prop (i32.const 130) (i32.const 3) (i32.const 100) (i32.const 1))".into(),
            prop(180, 11), // plugin_name
            path.clone(),
            "(call $buf (i32.const 7) (i32.const 0) (i32.const 3) (i32.const 600) (i32.const 604))"
                .into(),
        ],
    );
    let on_request = stores(
        16,
        &["(call $continue (i32.const 0))".into(), get(0, 100, 5)],
    );
    let response = stores(
        5,
        &[
            get(0, 100, 5),
            add.into(),
            get(2, 120, 7),
            path.clone(),
            prop(200, 13),
        ],
    );
    let log = stores(
        10,
        &[
            get(0, 100, 5),
            add.into(),
            get(2, 120, 7),
            path,
            get(1, 140, 1),
            get(6, 140, 1),
        ],
    );
    let body = format!(
        r#"(data (i32.const 100) ":path")
  (data (i32.const 120) ":status")
  (data (i32.const 130) "vis")
  (data (i32.const 140) "x")
  (data (i32.const 160) "request\00path")
  (data (i32.const 180) "plugin_name")
  (data (i32.const 200) "response\00code")
  (func (export "proxy_on_configure") (param i32 i32) (result i32) {configure} (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) {on_request} (i32.const 1))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) {response} (i32.const 0))
  (func (export "proxy_on_log") (param i32) {log}
    (drop (call $set_prop (i32.const 130) (i32.const 3) (i32.const 512) (i32.const 72))))"#
    );
    let mut vm = load(&module(imports, &body))
        .vm(&HostOptions {
            plugin_config: b"cfg".to_vec(),
            ..HostOptions::default()
        })
        .unwrap();
    let outcome = vm.request(&mut request("a", "/p")).unwrap().clone();
    assert!(outcome.forwarded, "resumed by proxy_continue_stream");
    assert_eq!(outcome.request_action, Action::StopAllIterationAndWatermark);
    let got: Vec<u32> = outcome
        .properties
        .get("vis")
        .expect("published")
        .chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    #[rustfmt::skip]
    let want = [
        2, 1, 0, 1, 0,    // on_configure: no stream maps, no filter state; plugin_name, config
        2, 2, 0, 1, 0,    // on_response_headers: request released; response there
        0, 2, 0, 0, 1, 1, // on_log: both readable, not writable; absent maps NotFound
        0, 2,             // on_request_headers: continue_stream releases the request
    ];
    assert_eq!(got, want);
}

/// A guest replaces the request headers with serialized pairs, removes one
/// and reads the map size; the host's map follows Envoy's rules.
#[test]
fn set_pairs_remove_and_size_reach_the_host_map() {
    let replacement: HeaderMap = [
        (":Path", "/new"),
        ("X-A", "1"),
        (":authority", "b"),
        ("x-a", "2"),
    ]
    .into_iter()
    .collect();
    let mut pairs = vec![0; pairs::encoded_len(replacement.iter())];
    pairs::encode(replacement.iter(), &mut pairs).unwrap();
    let body = format!(
        r#"(data (i32.const 1000) "{}")
  (data (i32.const 100) "x-a")
  (data (i32.const 130) "size")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $set_pairs (i32.const 0) (i32.const 1000) (i32.const {})))
    (drop (call $remove (i32.const 0) (i32.const 100) (i32.const 3)))
    (drop (call $size (i32.const 0) (i32.const 600)))
    (drop (call $set_prop (i32.const 130) (i32.const 4) (i32.const 600) (i32.const 4)))
    (i32.const 0))"#,
        wat_bytes(&pairs),
        pairs.len()
    );
    let imports = r#"
  (import "env" "proxy_set_header_map_pairs" (func $set_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_remove_header_map_value" (func $remove (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_size" (func $size (param i32 i32) (result i32)))
  (import "env" "proxy_set_property" (func $set_prop (param i32 i32 i32 i32) (result i32)))"#;
    let mut vm = load(&module(imports, &body))
        .vm(&HostOptions::default())
        .unwrap();
    let mut hop = request("a", "/old");
    let outcome = vm.request(&mut hop).unwrap();
    let size = u32::from_le_bytes(outcome.properties.get("size").unwrap().try_into().unwrap());
    let got: Vec<(&[u8], &[u8])> = hop.request_headers.iter().collect();
    let want: Vec<(&[u8], &[u8])> = vec![(b":path", b"/new"), (b":authority", b"b")];
    assert_eq!(got, want);
    assert_eq!(size, 5 + 4 + 10 + 1, "Envoy's byteSize: names plus values");
}

/// A queue item enqueued on one VM is announced to the VM that registered
/// the queue, when that VM's event loop runs.
#[test]
fn shared_queues_notify_the_registering_vm() {
    let imports = r#"
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_register_shared_queue" (func $register (param i32 i32 i32) (result i32)))
  (import "env" "proxy_resolve_shared_queue" (func $resolve (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_enqueue_shared_queue" (func $enqueue (param i32 i32 i32) (result i32)))
  (import "env" "proxy_dequeue_shared_queue" (func $dequeue (param i32 i32 i32) (result i32)))"#;
    let body = r#"(data (i32.const 100) "q")
  (data (i32.const 110) "hello")
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $register (i32.const 100) (i32.const 1) (i32.const 300)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $resolve (i32.const 0) (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 304)))
    (drop (call $enqueue (i32.load (i32.const 304)) (i32.const 110) (i32.const 5)))
    (i32.const 0))
  (func (export "proxy_on_queue_ready") (param i32 i32)
    (drop (call $dequeue (local.get 1) (i32.const 600) (i32.const 604)))
    (drop (call $log (i32.const 2) (i32.load (i32.const 600)) (i32.load (i32.const 604)))))"#;
    let plugin = load(&module(imports, body));
    let mut first = plugin.vm(&HostOptions::default()).unwrap();
    // Registering again makes the second VM the queue's owner, as in the
    // C++ host.
    let mut owner = plugin.vm(&HostOptions::default()).unwrap();
    first.request(&mut request("a", "/")).unwrap();
    first.advance_clock(1).unwrap();
    assert!(first.take_logs().is_empty());
    owner.dispatch_queues().unwrap();
    let logs = owner.take_logs();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].message, "hello");
    owner.dispatch_queues().unwrap();
    assert!(owner.take_logs().is_empty(), "delivered once");
}

#[test]
fn a_trap_names_the_callback_and_poisons_the_vm() {
    let plugin = load(&module(
        "",
        r#"(func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) unreachable)"#,
    ));
    let mut vm = plugin.vm(&HostOptions::default()).unwrap();
    let mut hop = request("a", "/");
    match vm.request(&mut hop) {
        Err(HopError::Trap { callback, message }) => {
            assert_eq!(callback, "proxy_on_response_headers");
            assert!(message.contains("unreachable"), "{message}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_eq!(
        text(hop.request_headers.get(":authority")),
        Some("a"),
        "hop handed back"
    );
    assert!(matches!(
        vm.request(&mut hop),
        Err(HopError::Poisoned { .. })
    ));
    assert!(vm.advance_clock(1).is_err());
    assert!(vm.poisoned().unwrap().contains("proxy_on_response_headers"));
}

fn runaway(interruption: Interruption) -> (Result<(), HopError>, Duration) {
    let plugin = Plugin::from_bytes_with(
        module(
            "",
            r#"(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (loop (br 0)) (i32.const 0))"#,
        )
        .as_bytes(),
        &LoadOptions {
            interruption,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let mut vm = plugin
        .vm(&HostOptions {
            call_timeout: Duration::from_millis(100),
            call_fuel: 5_000_000,
            ..HostOptions::default()
        })
        .unwrap();
    let started = Instant::now();
    let result = vm.request(&mut request("a", "/")).map(drop);
    (result, started.elapsed())
}

#[test]
fn a_runaway_loop_times_out_with_epochs() {
    let (result, elapsed) = runaway(Interruption::Epoch);
    assert_eq!(
        result,
        Err(HopError::Timeout {
            callback: "proxy_on_request_headers",
            budget: "100ms".into(),
        })
    );
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

#[test]
fn a_runaway_loop_runs_out_of_fuel() {
    let (result, _) = runaway(Interruption::Fuel);
    assert_eq!(
        result,
        Err(HopError::Timeout {
            callback: "proxy_on_request_headers",
            budget: "5000000 units of fuel".into(),
        })
    );
}

#[test]
fn proc_exit_fails_the_hop() {
    let plugin = load(&module(
        r#"(import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))"#,
        r#"(func (export "proxy_on_log") (param i32) (call $exit (i32.const 3)))"#,
    ));
    let mut vm = plugin.vm(&HostOptions::default()).unwrap();
    assert_eq!(
        vm.request(&mut request("a", "/")).map(drop),
        Err(HopError::Exit {
            callback: "proxy_on_log",
            code: 3
        })
    );
}

#[test]
fn missing_callbacks_are_skipped() {
    let mut vm = load(&module("", "")).vm(&HostOptions::default()).unwrap();
    let mut hop = request("a", "/");
    let outcome = vm.request(&mut hop).unwrap();
    assert!(outcome.forwarded);
    assert_eq!(outcome.response_action, Some(Action::Continue));
    assert_eq!(outcome.guest_allocations, None);
    assert_eq!(outcome.host_allocations, 0);
}

#[test]
fn unknown_imports_are_stubbed_or_refused() {
    // An unknown proxy_* returning a status instantiates (the probe test
    // checks it answers Unimplemented), and so does unknown WASI.
    let ok = module(
        r#"(import "env" "proxy_foo" (func (param i32 i64) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func (param i32 i32 i32) (result i32)))"#,
        "",
    );
    load(&ok).vm(&HostOptions::default()).unwrap();

    let cases = [
        (
            r#"(import "env" "proxy_bar" (func (param i32) (result i64)))"#,
            "unsupported import env.proxy_bar (function (i32) -> (i64))",
        ),
        (
            r#"(import "env" "emscripten_x" (func))"#,
            "unsupported import env.emscripten_x",
        ),
        (
            r#"(import "other" "thing" (func (result i32)))"#,
            "unsupported import other.thing",
        ),
        (
            r#"(import "env" "table" (table 1 funcref))"#,
            "unsupported import env.table (table)",
        ),
        (
            r#"(import "env" "proxy_log" (func (param i32) (result i32)))"#,
            "env::proxy_log",
        ),
    ];
    for (import, message) in cases {
        match Plugin::from_bytes(module(import, "").as_bytes()) {
            Err(HostError::Load(m)) => assert!(m.contains(message), "{import}: {m}"),
            Err(e) => panic!("{import}: {e}"),
            Ok(_) => panic!("{import}: loaded"),
        }
    }
}

#[test]
fn modules_without_the_abi_are_refused() {
    let cases = [
        (
            r#"(module (memory (export "memory") 1))"#,
            "missing proxy-wasm ABI version",
        ),
        (
            r#"(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_1_0")))"#,
            "unsupported proxy-wasm ABI proxy_abi_version_0_1_0",
        ),
        (
            r#"(module (func (export "proxy_abi_version_0_2_1")) (func (export "malloc") (param i32) (result i32) i32.const 0))"#,
            "no memory",
        ),
        (
            r#"(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1")))"#,
            "no allocator",
        ),
    ];
    for (wat, message) in cases {
        match Plugin::from_bytes(wat.as_bytes()) {
            Err(HostError::Load(m)) => assert!(m.contains(message), "{m}"),
            other => panic!("{wat}: {:?}", other.err()),
        }
    }
    let wrong = module(
        "",
        r#"(func (export "proxy_on_request_headers") (param i32 i32) (result i32) i32.const 0)"#,
    );
    match Plugin::from_bytes(wrong.as_bytes()) {
        Err(HostError::Load(m)) => assert!(
            m.contains("export proxy_on_request_headers is function (i32, i32) -> (i32), ABI 0.2.1 expects (i32, i32, i32) -> (i32)"),
            "{m}"
        ),
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn on_configure_false_is_refused_with_the_logs() {
    let plugin = load(&module(
        r#"(import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $buf (param i32 i32 i32 i32 i32) (result i32)))"#,
        r#"(data (i32.const 100) "bad config: sandboxes[0].key: empty")
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    ;; Read the configuration, then log how long it was (as a byte).
    (drop (call $buf (i32.const 7) (i32.const 0) (local.get $size) (i32.const 200) (i32.const 204)))
    (i32.store8 (i32.const 150) (i32.add (i32.const 48) (i32.load (i32.const 204))))
    (drop (call $log (i32.const 2) (i32.const 150) (i32.const 1)))
    (drop (call $log (i32.const 4) (i32.const 100) (i32.const 35)))
    (i32.const 0))"#,
    ));
    let options = HostOptions {
        plugin_config: b"{bad}".to_vec(),
        ..HostOptions::default()
    };
    match plugin.vm(&options) {
        Err(HostError::Refused { phase, logs }) => {
            assert_eq!(phase, "proxy_on_configure");
            let lines: Vec<(LogLevel, &str)> =
                logs.iter().map(|l| (l.level, l.message.as_str())).collect();
            assert_eq!(
                lines,
                [
                    (LogLevel::Info, "5"),
                    (LogLevel::Error, "bad config: sandboxes[0].key: empty")
                ]
            );
        }
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn plugins_and_vms_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Plugin>();
    send::<Vm>();
}

// Arbitrary headers never break the host.

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn stamp_never_breaks_on_arbitrary_headers(list in headers(&["x-stamp-reply", "X-Stamp", "x-stamp-callout"])) {
        static VM: OnceLock<Mutex<Vm>> = OnceLock::new();
        let mut vm = shared_vm(&VM, || stamp().vm(&stamp_options("stamp=p")).unwrap());
        let mut hop = arbitrary_hop(&list);
        let outcome = vm.request(&mut hop);
        // The SDK panics (a trap) on header values that are not UTF-8;
        // the host must report that, not crash, and must stay consistent.
        match outcome {
            Ok(_) => {}
            Err(HopError::Trap { callback, .. }) => {
                prop_assert!(list.iter().any(|(k, v)| std::str::from_utf8(k).is_err() || std::str::from_utf8(v).is_err()),
                    "trap in {} without a non-UTF-8 header", callback);
                *vm = stamp().vm(&stamp_options("stamp=p")).unwrap();
            }
            Err(e) => prop_assert!(false, "{}", e),
        }
        prop_assert!(well_formed(&hop.request_headers).is_ok(), "{:?}", well_formed(&hop.request_headers));
        prop_assert!(well_formed(&hop.response_headers).is_ok());
    }
}

// Streams, one callback at a time.

fn u32s(raw: &[u8]) -> Vec<u32> {
    raw.chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Bodies and trailers reach their callbacks, can be read and changed with
/// Envoy's `Buffer::copyFrom` rules, and each half's state follows.
#[test]
fn a_stream_delivers_bodies_and_trailers_one_callback_at_a_time() {
    let imports = r#"
  (import "env" "proxy_get_buffer_bytes" (func $get_buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_buffer_bytes" (func $set_buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_property" (func $set_prop (param i32 i32 i32 i32) (result i32)))"#;
    let body = r#"(data (i32.const 100) "pre-")
  (data (i32.const 110) "-post")
  (data (i32.const 120) "x-t")
  (data (i32.const 130) "probe")
  (data (i32.const 140) "!")
  (data (i32.const 150) ":path")
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (i32.store (i32.const 512) (local.get 1))
    (i32.store (i32.const 516) (call $get_buf (i32.const 0) (i32.const 0) (local.get 1) (i32.const 600) (i32.const 604)))
    (i32.store (i32.const 520) (i32.load (i32.const 604)))
    (i32.store (i32.const 524) (call $set_buf (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 100) (i32.const 4)))
    (i32.store (i32.const 528) (call $set_buf (i32.const 0) (i32.const 1000) (i32.const 0) (i32.const 110) (i32.const 5)))
    (i32.store (i32.const 532) (call $set_buf (i32.const 0) (i32.const 2) (i32.const 0) (i32.const 110) (i32.const 5)))
    (i32.const 0))
  (func (export "proxy_on_request_trailers") (param i32 i32) (result i32)
    (i32.store (i32.const 536) (local.get 1))
    (i32.store (i32.const 540) (call $add (i32.const 1) (i32.const 120) (i32.const 3) (i32.const 140) (i32.const 1)))
    (i32.store (i32.const 544) (call $get (i32.const 0) (i32.const 150) (i32.const 5) (i32.const 600) (i32.const 604)))
    (i32.const 0))
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32)
    (i32.store (i32.const 548) (call $set_buf (i32.const 1) (local.get 1) (i32.const 0) (i32.const 140) (i32.const 1)))
    (i32.store (i32.const 552) (call $set_buf (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 140) (i32.const 1)))
    (i32.const 0))
  (func (export "proxy_on_response_trailers") (param i32 i32) (result i32)
    (i32.const 1))
  (func (export "proxy_on_log") (param i32)
    (drop (call $set_prop (i32.const 130) (i32.const 5) (i32.const 512) (i32.const 44))))"#;
    let mut vm = load(&module(imports, body))
        .vm(&HostOptions::default())
        .unwrap();
    let root = vm.roots()[0];
    let mut hop = request("a", "/upload");
    hop.request_body = b"body".to_vec();
    hop.request_trailers.add("x-orig", "1");
    hop.response_body = b"answer".to_vec();
    hop.response_trailers.add("x-r", "1");
    let mut s = vm.stream(root, &mut hop).unwrap();
    assert_eq!(s.state().request, HalfState::Pending);
    match s.request_body(true) {
        Err(HopError::OutOfOrder { callback, reason }) => {
            assert_eq!(callback, "proxy_on_request_body");
            assert_eq!(reason, "the headers come first");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.request_headers(false).unwrap(), Action::Continue);
    assert_eq!(s.state().request, HalfState::Flowing);
    assert_eq!(s.request_body(false).unwrap(), Action::Continue);
    assert_eq!(s.request_trailers().unwrap(), Action::Continue);
    assert_eq!(s.state().request, HalfState::Complete);
    assert!(matches!(
        s.request_trailers(),
        Err(HopError::OutOfOrder {
            reason: "this half already ended",
            ..
        })
    ));
    assert_eq!(s.response_headers(false).unwrap(), Action::Continue);
    assert_eq!(s.response_body(false).unwrap(), Action::Continue);
    assert_eq!(
        s.response_trailers().unwrap(),
        Action::StopAllIterationAndWatermark
    );
    assert_eq!(s.state().response, HalfState::Held(Part::Trailers));
    s.done().unwrap();
    assert_eq!(hop.request_body, b"pre-body-post");
    assert_eq!(text(hop.request_trailers.get("x-t")), Some("!"));
    assert_eq!(text(hop.request_trailers.get("x-orig")), Some("1"));
    assert_eq!(hop.response_body, b"answer!");
    let probe = u32s(vm.outcome().properties.get("probe").expect("published"));
    #[rustfmt::skip]
    assert_eq!(probe, [
        4, 0, 4, 0, 0, 2, // request body: its size, read it, prepend, append, middle refused
        1, 0, 2,          // request trailers: one, added one, request headers released
        0, 1,             // response body: appended; the request body is gone (NotFound)
    ]);
    assert_eq!(vm.poisoned(), None, "out-of-order parts do not poison");
}

/// A paused half takes no further parts until the filter resumes it.
#[test]
fn a_paused_half_refuses_the_next_part() {
    let body = r#"(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 1))"#;
    let mut vm = load(&module("", body)).vm(&HostOptions::default()).unwrap();
    let root = vm.roots()[0];
    let mut hop = request("a", "/");
    let mut s = vm.stream(root, &mut hop).unwrap();
    assert_eq!(
        s.request_headers(false).unwrap(),
        Action::StopAllIterationAndWatermark
    );
    assert_eq!(s.state().request, HalfState::Held(Part::Headers));
    assert!(matches!(
        s.request_body(true),
        Err(HopError::OutOfOrder {
            reason: "the filter is holding this half back (paused)",
            ..
        })
    ));
    s.done().unwrap();
}

/// Several plugins share one VM, each with its own root context, as Envoy
/// runs them: each stream follows its own root's configuration, and each
/// root can be reconfigured alone.
#[test]
fn root_contexts_share_a_vm_and_keep_their_own_configuration() {
    let plugin = Plugin::load(&wasm::build("proxy-wasm-stamp")).unwrap();
    let mut vm = plugin.vm(&stamp_options("stamp=first")).unwrap();
    let first = vm.roots()[0];
    let second = vm
        .add_root(&RootOptions {
            plugin_name: "second-plugin".into(),
            root_id: "second".into(),
            plugin_config: b"stamp=second".to_vec(),
        })
        .unwrap();
    assert_eq!(vm.roots(), [first, second]);
    assert_ne!(first.context_id(), second.context_id());
    let stamp_of = |vm: &mut Vm, root| {
        let mut hop = request("a", "/");
        vm.request_on(root, &mut hop).unwrap();
        (
            text(hop.request_headers.get("x-stamp")).unwrap().to_owned(),
            text(hop.request_headers.get("x-stamp-plugin"))
                .unwrap()
                .to_owned(),
        )
    };
    assert_eq!(
        stamp_of(&mut vm, second),
        ("second".into(), "second-plugin".into())
    );
    assert_eq!(
        stamp_of(&mut vm, first),
        ("first".into(), "stamp-test".into())
    );
    vm.reconfigure_root(second, b"stamp=two").unwrap();
    assert_eq!(stamp_of(&mut vm, second).0, "two");
    assert_eq!(
        stamp_of(&mut vm, first).0,
        "first",
        "the other root keeps its own"
    );
    // A root's refusal names it and leaves the VM serving.
    assert!(matches!(
        vm.add_root(&RootOptions {
            plugin_config: b"colour=blue".to_vec(),
            ..RootOptions::default()
        }),
        Err(HostError::Refused {
            phase: "proxy_on_configure",
            ..
        })
    ));
    assert_eq!(stamp_of(&mut vm, first).0, "first");
}

/// An embedder keeps the host's state inside its own store data, adds its
/// own host functions to the same linker, and may replace one of the
/// host's: `add_to_linker(linker, module, |t| &mut t.proxy)`.
#[test]
fn an_embedder_owns_the_store_and_extends_the_linker() {
    struct Mine {
        proxy: ProxyState,
        notes: Vec<u32>,
        logs: u32,
    }
    let wat = module(
        r#"(import "mine" "note" (func $note (param i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_property" (func $set_prop (param i32 i32 i32 i32) (result i32)))"#,
        r#"(data (i32.const 100) "hi")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $note (local.get 0))
    (i32.store (i32.const 200) (call $log (i32.const 2) (i32.const 100) (i32.const 2)))
    (drop (call $set_prop (i32.const 100) (i32.const 2) (i32.const 200) (i32.const 4)))
    (i32.const 0))"#,
    );
    match Plugin::from_bytes(wat.as_bytes()) {
        Err(HostError::Load(m)) => assert!(m.contains("unsupported import mine.note"), "{m}"),
        other => panic!("{:?}", other.err()),
    }
    let compiled = Compiled::new(wat.as_bytes(), &LoadOptions::default()).unwrap();
    let mut linker = wasmtime::Linker::<Mine>::new(compiled.engine());
    proxy_wasm_host::add_to_linker(&mut linker, compiled.module(), |m| &mut m.proxy).unwrap();
    linker
        .func_wrap(
            "mine",
            "note",
            |mut c: wasmtime::Caller<'_, Mine>, ctx: u32| c.data_mut().notes.push(ctx),
        )
        .unwrap();
    // Replaces the host's proxy_log: shadowing is on.
    linker
        .func_wrap(
            "env",
            "proxy_log",
            |mut c: wasmtime::Caller<'_, Mine>, _: u32, _: u32, _: u32| -> u32 {
                c.data_mut().logs += 1;
                7
            },
        )
        .unwrap();
    let plugin = compiled.plugin(&linker, |m| &mut m.proxy).unwrap();
    let mine = Mine {
        proxy: ProxyState::default(),
        notes: Vec::new(),
        logs: 0,
    };
    let mut vm = plugin.vm_with(mine, &HostOptions::default()).unwrap();
    for _ in 0..2 {
        let outcome = vm.request(&mut request("a", "/")).unwrap();
        assert!(outcome.forwarded);
        assert!(outcome.logs.is_empty(), "the embedder took proxy_log");
        assert_eq!(outcome.properties.get("hi"), Some(&7u32.to_le_bytes()[..]));
    }
    assert_eq!(vm.data().notes, [2, 3], "stream contexts after root 1");
    assert_eq!(vm.data().logs, 2);
}

// What a guest can make the host hold (issue 8: a guest took 4 GiB of
// memory per VM, a 10 MB header added in a loop took 2.3 GB, shared data
// grew to 3 GB). Each limit is a status or a failed grow, never a crash.

fn limited(body: &str, imports: &str, limits: Limits) -> Vm {
    load(&module(imports, body))
        .vm(&HostOptions {
            limits,
            ..HostOptions::default()
        })
        .unwrap()
}

fn probe_u32s(vm: &mut Vm) -> Vec<u32> {
    u32s(vm.outcome().properties.get("probe").expect("published"))
}

const SET_PROBE: &str =
    r#"(import "env" "proxy_set_property" (func $set_prop (param i32 i32 i32 i32) (result i32)))"#;

#[test]
fn memory_and_tables_stop_at_their_limits() {
    let body = r#"(data (i32.const 130) "probe")
  (table 1 funcref)
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (i32.store (i32.const 512) (memory.grow (i32.const 100)))
    (i32.store (i32.const 516) (memory.grow (i32.const 1)))
    (i32.store (i32.const 520) (table.grow (ref.null func) (i32.const 1000)))
    (i32.store (i32.const 524) (table.grow (ref.null func) (i32.const 10)))
    (drop (call $set_prop (i32.const 130) (i32.const 5) (i32.const 512) (i32.const 16)))
    (i32.const 0))"#;
    let limits = Limits {
        memory_bytes: 4 << 16,
        table_elements: 100,
        ..Limits::default()
    };
    let mut vm = limited(body, SET_PROBE, limits);
    vm.request(&mut request("a", "/")).unwrap();
    // -1: refused; otherwise the old size (1 page, 1 element).
    assert_eq!(probe_u32s(&mut vm), [u32::MAX, 1, u32::MAX, 1]);
}

#[test]
fn a_trap_after_a_refused_grow_names_the_limit() {
    let body = r#"(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (if (i32.eq (memory.grow (i32.const 60000)) (i32.const -1)) (then unreachable))
    (i32.const 0))"#;
    let mut vm = limited(body, "", Limits::default());
    match vm.request(&mut request("a", "/")) {
        Err(HopError::Trap { message, .. }) => assert!(
            message.contains("memory; the limit is 1024 MiB"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_header_map_stops_growing_at_its_limit() {
    let imports = r#"(import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value" (func $replace (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_property" (func $set_prop (param i32 i32 i32 i32) (result i32)))"#;
    // Adds a 60,000-byte header 1,000 times (60 MB) to an 8 MiB map.
    let body = r#"(data (i32.const 100) "x-big")
  (data (i32.const 130) "probe")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (local $i i32) (local $s i32)
    (loop $l
      (local.set $s (call $add (i32.const 0) (i32.const 100) (i32.const 5) (i32.const 1024) (i32.const 60000)))
      (if (i32.eqz (local.get $s)) (then (i32.store (i32.const 512) (i32.add (i32.load (i32.const 512)) (i32.const 1)))))
      (i32.store (i32.const 516) (local.get $s))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))
    (i32.store (i32.const 520) (call $replace (i32.const 0) (i32.const 100) (i32.const 5) (i32.const 1024) (i32.const 60000)))
    (drop (call $set_prop (i32.const 130) (i32.const 5) (i32.const 512) (i32.const 12)))
    (i32.const 0))"#;
    let mut vm = limited(body, imports, Limits::default());
    let mut hop = request("a", "/");
    vm.request(&mut hop).unwrap();
    let [added, last, replaced] = probe_u32s(&mut vm)[..] else {
        panic!()
    };
    assert_eq!(added, 139, "8 MiB holds 139 headers of 60,005 bytes");
    assert_eq!(last, Status::InternalFailure as u32);
    assert_eq!(
        replaced,
        Status::Ok as u32,
        "a replace frees what it replaces"
    );
    assert!(hop.request_headers.byte_size() <= 8 << 20);
}

#[test]
fn shared_data_queues_and_logs_have_budgets() {
    let imports = r#"(import "env" "proxy_set_shared_data" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_register_shared_queue" (func $register (param i32 i32 i32) (result i32)))
  (import "env" "proxy_enqueue_shared_queue" (func $enqueue (param i32 i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_property" (func $set_prop (param i32 i32 i32 i32) (result i32)))"#;
    // Writes 1,000 keys of 1 KB values, enqueues 1,000 items of 1 KB, and
    // logs 1,000 lines of 1 KB, against budgets of 100 KB each.
    let body = r#"(data (i32.const 100) "q")
  (data (i32.const 130) "probe")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (local $i i32)
    (drop (call $register (i32.const 100) (i32.const 1) (i32.const 300)))
    (loop $l
      (i32.store (i32.const 200) (local.get $i))
      (if (i32.eqz (call $set (i32.const 200) (i32.const 4) (i32.const 1024) (i32.const 1000) (i32.const 0)))
        (then (i32.store (i32.const 512) (i32.add (i32.load (i32.const 512)) (i32.const 1)))))
      (if (i32.eqz (call $enqueue (i32.load (i32.const 300)) (i32.const 1024) (i32.const 1000)))
        (then (i32.store (i32.const 516) (i32.add (i32.load (i32.const 516)) (i32.const 1)))))
      (drop (call $log (i32.const 2) (i32.const 1024) (i32.const 1000)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))
    (drop (call $set_prop (i32.const 130) (i32.const 5) (i32.const 512) (i32.const 8)))
    (i32.const 0))"#;
    let limits = Limits {
        shared_data_bytes: 100_000,
        queue_bytes: 100_000,
        log_bytes: 100_000,
        ..Limits::default()
    };
    let mut vm = limited(body, imports, limits);
    let outcome = vm.request(&mut request("a", "/")).unwrap().clone();
    assert_eq!(
        probe_u32s(&mut vm),
        [99, 100],
        "100 KB holds 99 entries of 1,004 bytes and 100 items of 1,000"
    );
    assert_eq!(outcome.logs.len(), 100);
    assert_eq!(outcome.logs_dropped, 900);
}

/// Regression (issue 8): the one-second call budget applied to
/// `proxy_on_configure` too, so a large configuration was "refused". It
/// has its own budget, and an overrun says what it is.
#[test]
fn on_configure_has_its_own_budget() {
    let body = r#"(func (export "proxy_on_configure") (param i32 i32) (result i32)
    (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 50000000))))
    (i32.const 1))"#;
    let plugin = Plugin::from_bytes_with(
        module("", body).as_bytes(),
        &LoadOptions {
            interruption: Interruption::Fuel,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    // A call budget too small for the loop does not touch on_configure.
    let small_calls = HostOptions {
        call_fuel: 1_000_000,
        ..HostOptions::default()
    };
    plugin
        .vm(&small_calls)
        .expect("on_configure has its own budget");
    let small_configure = HostOptions {
        configure_fuel: 1_000_000,
        ..small_calls
    };
    match plugin.vm(&small_configure) {
        Err(HostError::Guest(HopError::Timeout { callback, budget })) => {
            assert_eq!(callback, "proxy_on_configure");
            assert_eq!(budget, "1000000 units of fuel");
        }
        other => panic!("{:?}", other.err()),
    }
}

/// Regression (issue 8): a directory, a device or a FIFO given as the
/// module said "no such module", `/dev/zero` was read until memory ran out,
/// a FIFO with no writer blocked forever, and a text file showed WAT
/// parser errors.
#[test]
fn only_a_wasm_file_is_a_module() {
    let dir = std::env::temp_dir().join(format!("proxy-wasm-not-modules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("fifo");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let text = dir.join("notes.txt");
    std::fs::write(&text, "a filter, surely\n").unwrap();
    for (path, want) in [
        (dir.as_path(), "is a directory"),
        (std::path::Path::new("/dev/zero"), "is a device"),
        (fifo.as_path(), "is a FIFO"),
        (text.as_path(), "not a wasm module"),
    ] {
        match Plugin::load(path) {
            Err(e) => assert!(e.to_string().contains(want), "{}: {e}", path.display()),
            Ok(_) => panic!("{} loaded", path.display()),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
