//! The filter pays only for what it uses (issue 12), in the wasmtime host:
//! - it exports only the callbacks it needs, so Envoy makes one VM call
//!   per request, not six;
//! - several plugin configurations in one VM still route by their own
//!   configuration, told apart by plugin name, and a configuration update
//!   (a new root context of the same plugin) replaces the old root without
//!   growing the table;
//! - with `routing_key.joined` (Envoy's inline headers join repeated lines)
//!   it reads each carrier's value and `:authority` only when the key names
//!   a sandbox, and decides exactly as the core does on the whole routing
//!   corpus;
//! - a header left out of `routing_key.carriers` is never read.
//!
//! "Reads" are counted as the host's copies into guest memory (each
//! value-returning host call is one), which is what Envoy charges 10–13k
//! instructions for.

use laneway_core::config::Config;
use laneway_core::{Decision, Request, Router};
use laneway_testdata::{self as corpus, wasm};
use proxy_wasm_host::{Hop, HostOptions, Plugin, RootOptions, Vm};
use proxy_wasm_host_conformance::{logged, request, text};
use std::sync::OnceLock;

fn laneway() -> &'static Plugin {
    static PLUGIN: OnceLock<Plugin> = OnceLock::new();
    PLUGIN.get_or_init(|| Plugin::load(&wasm::build("laneway-filter")).expect("filter loads"))
}

fn vm(config: &str) -> Vm {
    laneway()
        .vm(&HostOptions {
            plugin_name: "laneway".into(),
            plugin_config: config.as_bytes().to_vec(),
            allocation_counter: Some("laneway_guest_allocations".into()),
            ..HostOptions::default()
        })
        .expect("the filter starts")
}

fn config(routing_key: &str) -> String {
    format!(
        r#"{{"version":1,"routing_key":{{{routing_key}}},"sandboxes":[{{"key":"k1","forks":[{{"service":"location","destination":"location-k1"}}]}}]}}"#
    )
}

/// Sends one request; returns (the authority sent on, the host's copies
/// into guest memory, the decision counter that moved).
fn send(vm: &mut Vm, headers: &[(&str, &str)]) -> (String, u64, String) {
    let before: Vec<(String, u64)> = vm
        .metrics()
        .filter(|m| m.name.starts_with("laneway.decision."))
        .map(|m| (m.name.to_owned(), m.value))
        .collect();
    let mut hop = request("location:8083", "/");
    for (name, value) in headers {
        hop.request_headers.add(name, value);
    }
    let copies = vm.request(&mut hop).unwrap().host_allocations;
    let moved = before
        .iter()
        .filter(|(name, v)| vm.metric(name) != Some(*v))
        .map(|(name, _)| name.trim_start_matches("laneway.decision.").to_owned())
        .collect::<Vec<_>>()
        .join(",");
    let authority = text(hop.request_headers.get(":authority"))
        .unwrap_or_default()
        .to_owned();
    (authority, copies, moved)
}

#[test]
fn the_module_exports_only_what_it_needs() {
    let engine = wasmtime::Engine::default();
    let module = wasmtime::Module::from_file(&engine, wasm::build("laneway-filter")).unwrap();
    let mut functions: Vec<&str> = module
        .exports()
        .filter(|e| matches!(e.ty(), wasmtime::ExternType::Func(_)))
        .map(|e| e.name())
        .collect();
    functions.sort_unstable();
    assert_eq!(
        functions,
        [
            "_initialize",
            "laneway_guest_allocations",
            "proxy_abi_version_0_2_1",
            "proxy_on_configure",
            "proxy_on_memory_allocate",
            "proxy_on_request_headers",
        ],
        "Envoy calls every exported stream callback on every request"
    );
}

/// What each request kind reads, in both modes.
#[test]
fn each_request_reads_only_what_can_change_its_decision() {
    let pairs = &mut vm(&config(""));
    let joined = &mut vm(&config(r#""joined":true"#));
    let fork = "location-k1:8083";
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str, u64, u64);
    let cases: &[Case<'_>] = &[
        // headers, authority sent, decision, copies with pairs, joined
        (&[], "location:8083", "no_key", 0, 0),
        (
            &[("traceparent", "00-1-2-01")],
            "location:8083",
            "no_key",
            0,
            0,
        ),
        // Context without a key: pairs mode must look at every line.
        (&[("baggage", "a=1")], "location:8083", "no_key", 2, 1),
        (&[("tracestate", "v=1")], "location:8083", "no_key", 2, 1),
        (
            &[("baggage", "sd-routing-key=nobody")],
            "location:8083",
            "unknown_key",
            2,
            1,
        ),
        // A known key: the authority decides fork or not.
        (&[("baggage", "sd-routing-key=k1")], fork, "fork", 2, 2),
        (&[("tracestate", "sd-routing-key=k1")], fork, "fork", 2, 2),
        (
            &[("baggage", "a=1,sd-routing-key=k1"), ("tracestate", "v=1")],
            fork,
            "fork",
            2,
            3,
        ),
    ];
    for &(headers, authority, decision, with_pairs, with_joined) in cases {
        for (vm, copies, mode) in [
            (&mut *pairs, with_pairs, "pairs"),
            (&mut *joined, with_joined, "joined"),
        ] {
            let got = send(vm, headers);
            assert_eq!(
                got,
                (authority.to_owned(), copies, decision.to_owned()),
                "{mode}: {headers:?}"
            );
        }
    }
}

/// A known key for a service with no fork still needs the authority, and
/// a key that conflicts across carriers never does.
#[test]
fn joined_mode_reads_the_authority_once_a_sandbox_is_named() {
    let mut vm = vm(&config(r#""joined":true"#));
    let mut hop = request("driver:8080", "/");
    hop.request_headers.add("baggage", "sd-routing-key=k1");
    assert_eq!(vm.request(&mut hop).unwrap().host_allocations, 2);
    assert_eq!(vm.metric("laneway.decision.no_fork"), Some(1));
    let got = send(
        &mut vm,
        &[
            ("baggage", "sd-routing-key=k1"),
            ("tracestate", "sd-routing-key=k2"),
        ],
    );
    assert_eq!(got, ("location:8083".into(), 2, "conflict".into()));
}

/// With `carriers: ["baggage"]` the filter never reads `tracestate`: a
/// tracestate-only request is untouched and costs no copy, in both modes.
#[test]
fn a_header_outside_the_carriers_is_never_read() {
    for extra in ["", r#","joined":true"#] {
        let mut vm = vm(&config(&format!(r#""carriers":["baggage"]{extra}"#)));
        let got = send(&mut vm, &[("tracestate", "sd-routing-key=k1")]);
        assert_eq!(got, ("location:8083".into(), 0, "no_key".into()), "{extra}");
        let got = send(&mut vm, &[("baggage", "sd-routing-key=k1")]);
        assert_eq!(got.0, "location-k1:8083", "{extra}");
        assert_eq!(got.2, "fork", "{extra}");
    }
    let mut vm = vm(&config(r#""carriers":["tracestate"],"joined":true"#));
    let got = send(&mut vm, &[("baggage", "sd-routing-key=k1")]);
    assert_eq!(got, ("location:8083".into(), 0, "no_key".into()));
    let got = send(&mut vm, &[("tracestate", "sd-routing-key=k1")]);
    assert_eq!(got, ("location-k1:8083".into(), 2, "fork".into()));
}

/// In joined mode the filter decides what the core decides, on every
/// routing case of the corpus with its lines joined as Envoy joins them.
#[test]
fn joined_mode_agrees_with_the_core_on_the_routing_corpus() {
    let mut checked = 0;
    for (file, case) in corpus::routing_cases() {
        let at = format!("{file}: {}", case.name);
        let mut config = Config::from_json(&corpus::config_text(case.config.as_deref().unwrap()))
            .unwrap_or_else(|e| panic!("{at}: {e}"));
        config.routing_key.joined = true;
        let router = Router::new(&config).unwrap();
        let mut vm = vm(&config.to_json());
        let join = |lines: &[Vec<u8>]| -> Option<Vec<u8>> {
            (!lines.is_empty()).then(|| lines.join(&b","[..]))
        };
        let baggage = join(&corpus::expand(&case.baggage));
        let tracestate = join(&corpus::expand(&case.tracestate));
        let verdict = router.decide(Request {
            authority: case.authority.as_bytes(),
            baggage: baggage.as_deref(),
            tracestate: tracestate.as_deref(),
        });
        let mut hop = Hop::default();
        hop.request_headers.add(":authority", &case.authority);
        hop.request_headers.add(":path", "/");
        for (name, value) in [("baggage", &baggage), ("tracestate", &tracestate)] {
            if let Some(v) = value {
                hop.request_headers.add(name, v);
            }
        }
        let counter = format!("laneway.decision.{}", verdict.decision.reason());
        let outcome = vm.request(&mut hop).unwrap_or_else(|e| panic!("{at}: {e}"));
        assert_eq!(
            outcome.guest_allocations,
            Some(outcome.host_allocations),
            "{at}: the filter allocated on its own"
        );
        assert_eq!(vm.metric(&counter), Some(1), "{at}: {counter}");
        let sent = hop.request_headers.get(":authority").unwrap_or_default();
        match verdict.decision {
            Decision::Fork(id) => {
                let mut buf = [0u8; laneway_core::authority::MAX_FORK_AUTHORITY];
                let want = router
                    .fork_authority(id, case.authority.as_bytes(), &mut buf)
                    .unwrap();
                assert_eq!(sent, want, "{at}");
            }
            _ => assert_eq!(sent, case.authority.as_bytes(), "{at}"),
        }
        checked += 1;
    }
    assert!(checked >= 50, "{checked} cases");
}

/// Two plugins sharing the VM route by their own configurations although
/// the module keeps no per-request table; an update of one plugin (Envoy
/// creates a new root context for it) replaces its root, 200 times over,
/// and a 65th distinct plugin in one VM is refused with the reason.
#[test]
fn roots_are_told_apart_by_plugin_name_and_replaced_on_update() {
    let mut vm = vm(&config(""));
    let first = vm.roots()[0];
    let other = |dest: &str| {
        format!(
            r#"{{"version":1,"sandboxes":[{{"key":"k1","forks":[{{"service":"location","destination":"{dest}"}}]}}]}}"#
        )
    };
    let route = |vm: &mut Vm, root| {
        let mut hop = request("location:8083", "/");
        hop.request_headers.add("baggage", "sd-routing-key=k1");
        vm.request_on(root, &mut hop).unwrap();
        text(hop.request_headers.get(":authority"))
            .unwrap()
            .to_owned()
    };
    let mut second = None;
    for i in 0..200 {
        let root = vm
            .add_root(&RootOptions {
                plugin_name: "laneway-second".into(),
                root_id: String::new(),
                plugin_config: other(&format!("location-v{i}")).into_bytes(),
            })
            .unwrap();
        second = Some(root);
    }
    let second = second.unwrap();
    assert_eq!(route(&mut vm, first), "location-k1:8083");
    assert_eq!(route(&mut vm, second), "location-v199:8083");
    // The plugins in the table: "laneway" and "laneway-second"; 62 more fit.
    for i in 0..62 {
        vm.add_root(&RootOptions {
            plugin_name: format!("plugin-{i}"),
            root_id: String::new(),
            plugin_config: other("location-x").into_bytes(),
        })
        .unwrap();
    }
    let refused = vm.add_root(&RootOptions {
        plugin_name: "one-too-many".into(),
        root_id: String::new(),
        plugin_config: other("location-y").into_bytes(),
    });
    let why = refused.expect_err("the 65th plugin is refused").to_string();
    let logs = vm.take_logs();
    assert!(
        why.contains("vm_config.vm_id") || logged(&logs, "give them separate vm_config.vm_id"),
        "{why}; {logs:?}"
    );
    assert_eq!(route(&mut vm, first), "location-k1:8083");
    assert_eq!(route(&mut vm, second), "location-v199:8083");
}
