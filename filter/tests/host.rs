//! Laneway's filter, `laneway_filter.wasm`, in the wasmtime host: it forks
//! a tagged request and leaves an untagged one alone, refuses a bad
//! configuration with the reason, matches the native core on the whole
//! routing corpus, routes by each root context's own configuration when
//! several share a VM, never breaks on arbitrary headers, and writes a
//! filter state no key can forge.

use std::sync::{Mutex, OnceLock};

use proxy_wasm_host_conformance::{
    arbitrary_hop, headers, logged, request, shared_vm, text, well_formed,
};

use laneway_core::filter_state;
use laneway_core::{Decision, Request, Router};
use laneway_testdata::{self as corpus, wasm};
use proptest::prelude::*;
use proxy_wasm_host::{Hop, HostError, HostOptions, LogLevel, Plugin, RootOptions, Vm};

fn laneway() -> &'static Plugin {
    static PLUGIN: OnceLock<Plugin> = OnceLock::new();
    PLUGIN.get_or_init(|| Plugin::load(&wasm::build("laneway-filter")).expect("filter loads"))
}

fn laneway_vm(config: &str) -> Result<Vm, HostError> {
    laneway().vm(&HostOptions {
        plugin_name: "laneway".into(),
        plugin_config: config.as_bytes().to_vec(),
        allocation_counter: Some("laneway_guest_allocations".into()),
        ..HostOptions::default()
    })
}

const FORK_CONFIG: &str = r#"{"version":1,"sandboxes":[{"key":"qwblp48fpmb30","forks":[{"service":"location","destination":"location-qwblp48fpmb30"}]}]}"#;

#[test]
fn laneway_forks_a_tagged_request() {
    let mut vm = laneway_vm(FORK_CONFIG).unwrap();
    assert!(logged(&vm.take_logs(), "configured 1 sandboxes, 1 forks"));
    let mut hop = request("location:8083", "/config");
    hop.request_headers
        .add("baggage", "sd-routing-key=qwblp48fpmb30");
    let outcome = vm.request(&mut hop).unwrap();
    assert!(outcome.forwarded);
    assert_eq!(
        text(hop.request_headers.get(":authority")),
        Some("location-qwblp48fpmb30:8083")
    );
    assert_eq!(
        text(outcome.properties.get("laneway")),
        Some("decision=fork key=qwblp48fpmb30 fork=location-qwblp48fpmb30:8083")
    );
    assert!(outcome.guest_allocations.is_some());
    assert!(outcome.host_allocations >= 1);
    assert_eq!(vm.metric("laneway.decision.fork"), Some(1));
    assert_eq!(vm.metric("laneway.config.forks"), Some(1));
}

#[test]
fn laneway_leaves_an_untagged_request_alone() {
    let mut vm = laneway_vm(FORK_CONFIG).unwrap();
    let mut hop = request("location:8083", "/config");
    let before = hop.request_headers.clone();
    let outcome = vm.request(&mut hop).unwrap();
    assert!(outcome.forwarded);
    assert_eq!(hop.request_headers, before);
    assert_eq!(
        outcome.guest_allocations,
        Some(0),
        "the no-key path allocates nothing"
    );
    assert_eq!(vm.metric("laneway.decision.no_key"), Some(1));
    assert_eq!(vm.metric("laneway.decision.fork"), Some(0));
}

#[test]
fn laneway_refuses_a_bad_configuration_with_the_reason() {
    let bad = r#"{"version":1,"sandboxes":[{"key":"","forks":[]}]}"#;
    match laneway_vm(bad) {
        Err(HostError::Refused { phase, logs }) => {
            assert_eq!(phase, "proxy_on_configure");
            let line = logs
                .iter()
                .find(|l| l.level == LogLevel::Error)
                .unwrap_or_else(|| panic!("{logs:?}"));
            assert!(
                line.message.starts_with("rejected plugin configuration: ")
                    && line.message.contains("sandboxes[0]"),
                "{}",
                line.message
            );
        }
        other => panic!("{:?}", other.err()),
    }
}

/// Every routing case through the filter in the host, against the native
/// core: same decision (by counter and filter state), same `:authority`,
/// and a local reply exactly when the core rejects.
#[test]
fn laneway_matches_the_native_core_on_the_routing_corpus() {
    let mut vms: Vec<(String, Vm, Router)> = Vec::new();
    let mut checked = 0;
    for (file, case) in corpus::routing_cases() {
        let config = case.config.clone().unwrap();
        if !vms.iter().any(|(c, _, _)| *c == config) {
            let text = corpus::config_text(&config);
            let router = Router::from_json(&text).unwrap();
            vms.push((config.clone(), laneway_vm(&text).unwrap(), router));
        }
        let (_, vm, router) = vms.iter_mut().find(|(c, _, _)| *c == config).unwrap();
        let at = format!("{file}: {}", case.name);
        let baggage = corpus::expand(&case.baggage);
        let tracestate = corpus::expand(&case.tracestate);
        let verdict = router.decide(Request {
            authority: case.authority.as_bytes(),
            baggage: baggage.iter().map(Vec::as_slice),
            tracestate: tracestate.iter().map(Vec::as_slice),
        });
        let mut hop = Hop::default();
        hop.request_headers.add(":authority", &case.authority);
        hop.request_headers.add(":path", "/");
        for v in &baggage {
            hop.request_headers.add("baggage", v);
        }
        for v in &tracestate {
            hop.request_headers.add("tracestate", v);
        }
        hop.response_headers.add(":status", "200");
        let reason = verdict.decision.reason();
        let counter = format!("laneway.decision.{reason}");
        let before = vm.metric(&counter).unwrap_or(0);
        let outcome = vm
            .request(&mut hop)
            .unwrap_or_else(|e| panic!("{at}: {e}"))
            .clone();
        assert_eq!(
            vm.metric(&counter),
            Some(before + 1),
            "{at}: counted {counter}"
        );
        if verdict.decision == Decision::NoKey {
            assert_eq!(
                outcome.properties.get("laneway"),
                None,
                "{at}: no state for no_key"
            );
        } else {
            let state = outcome.properties.get("laneway").unwrap_or_default();
            let decoded = filter_state::decode(state)
                .unwrap_or_else(|e| panic!("{at}: {e}: {:?}", String::from_utf8_lossy(state)));
            assert_eq!(decoded.reason, reason, "{at}");
        }
        let authority = text(hop.request_headers.get(":authority"))
            .unwrap()
            .to_owned();
        match verdict.decision {
            Decision::Fork(id) => {
                let mut buf = [0u8; laneway_core::authority::MAX_FORK_AUTHORITY];
                let want = router
                    .fork_authority(id, case.authority.as_bytes(), &mut buf)
                    .unwrap();
                assert_eq!(authority.as_bytes(), want, "{at}");
                assert!(outcome.forwarded, "{at}");
            }
            d if d.route() == laneway_core::Route::Reject => {
                let reply = outcome.local_response.as_ref().expect(&at);
                assert_eq!(reply.status, u32::from(router.reject_status()), "{at}");
                assert!(!outcome.forwarded, "{at}");
            }
            _ => {
                assert_eq!(authority, case.authority, "{at}");
                assert!(
                    outcome.forwarded && outcome.local_response.is_none(),
                    "{at}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked > 20, "only {checked} cases");
}

/// Two plugin configurations in one VM, as Envoy runs two Laneway
/// WasmPlugins that share the module: each stream routes by its own root
/// context's configuration (the filter's multi-root path).
#[test]
fn each_root_context_routes_by_its_own_configuration() {
    let mut vm = laneway_vm(FORK_CONFIG).unwrap();
    let first = vm.roots()[0];
    let other = r#"{"version":1,"sandboxes":[{"key":"qwblp48fpmb30","forks":[{"service":"location","destination":"location-other"}]}]}"#;
    let second = vm
        .add_root(&RootOptions {
            plugin_name: "laneway-second".into(),
            root_id: String::new(),
            plugin_config: other.as_bytes().to_vec(),
        })
        .unwrap();
    let route = |vm: &mut Vm, root| {
        let mut hop = request("location:8083", "/");
        hop.request_headers
            .add("baggage", "sd-routing-key=qwblp48fpmb30");
        vm.request_on(root, &mut hop).unwrap();
        text(hop.request_headers.get(":authority"))
            .unwrap()
            .to_owned()
    };
    for _ in 0..3 {
        assert_eq!(route(&mut vm, first), "location-qwblp48fpmb30:8083");
        assert_eq!(route(&mut vm, second), "location-other:8083");
    }
    // A bad update to one root leaves both routing as before.
    assert!(vm.reconfigure_root(second, b"{").is_err());
    assert_eq!(route(&mut vm, second), "location-other:8083");
    assert_eq!(route(&mut vm, first), "location-qwblp48fpmb30:8083");
    assert_eq!(vm.metric("laneway.decision.fork"), Some(8));
}

// Arbitrary headers never break the host.

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn laneway_never_breaks_on_arbitrary_headers(list in headers(&["baggage", "tracestate", "Baggage"])) {
        static VM: OnceLock<Mutex<Vm>> = OnceLock::new();
        let mut vm = shared_vm(&VM, || laneway_vm(FORK_CONFIG).unwrap());
        let mut hop = arbitrary_hop(&list);
        let outcome = vm.request(&mut hop).map_err(|e| e.to_string());
        prop_assert!(outcome.is_ok(), "{:?}", outcome.err());
        prop_assert!(well_formed(&hop.request_headers).is_ok());
        prop_assert!(hop.request_headers.get(":authority").is_some());
    }
}

#[test]
fn a_crafted_key_cannot_forge_a_filter_state_field() {
    let mut vm = laneway_vm(FORK_CONFIG).unwrap();
    let mut hop = request("location:8083", "/");
    // Decodes to: x" fork=evil\
    hop.request_headers
        .add("baggage", "sd-routing-key=x%22%20fork=evil%5C");
    let outcome = vm.request(&mut hop).unwrap();
    assert_eq!(
        text(outcome.properties.get("laneway")),
        Some(r#"decision=unknown_key key="x\" fork=evil\\""#)
    );
    assert_eq!(
        text(hop.request_headers.get(":authority")),
        Some("location:8083")
    );
}

#[test]
fn a_crafted_key_cannot_forge_an_access_log_line() {
    let mut vm = laneway_vm(FORK_CONFIG).unwrap();
    let mut hop = request("location:8083", "/");
    // Decodes to: k<LF>decision=fork<CR><DEL><TAB>
    hop.request_headers
        .add("baggage", "sd-routing-key=k%0Adecision=fork%0D%7F%09");
    let outcome = vm.request(&mut hop).unwrap();
    assert_eq!(
        text(outcome.properties.get("laneway")),
        Some(r#"decision=unknown_key key="k\x0adecision=fork\x0d\x7f\x09""#)
    );
}

/// A store whose host refuses one call: the embedder replaces a host
/// function on the linker.
struct Refusing {
    proxy: proxy_wasm_host::ProxyState,
}

fn refusing_vm(config: &str, refuse: &str) -> Vm<Refusing> {
    use proxy_wasm_host::{Compiled, LoadOptions, Status};
    use wasmtime::Caller;
    let compiled = Compiled::load(&wasm::build("laneway-filter"), &LoadOptions::default()).unwrap();
    let mut linker = wasmtime::Linker::<Refusing>::new(compiled.engine());
    proxy_wasm_host::add_to_linker(&mut linker, compiled.module(), |r| &mut r.proxy).unwrap();
    let fail = Status::InternalFailure as u32;
    match refuse {
        "proxy_replace_header_map_value" => linker
            .func_wrap(
                "env",
                refuse,
                move |_: Caller<'_, Refusing>, _: u32, _: u32, _: u32, _: u32, _: u32| fail,
            )
            .map(drop),
        "proxy_set_property" => linker
            .func_wrap(
                "env",
                refuse,
                move |_: Caller<'_, Refusing>, _: u32, _: u32, _: u32, _: u32| fail,
            )
            .map(drop),
        "proxy_send_local_response" => linker
            .func_wrap(
                "env",
                refuse,
                move |_: Caller<'_, Refusing>,
                      _: u32,
                      _: u32,
                      _: u32,
                      _: u32,
                      _: u32,
                      _: u32,
                      _: u32,
                      _: i32| fail,
            )
            .map(drop),
        other => panic!("{other}"),
    }
    .unwrap();
    let plugin = compiled.plugin(&linker, |r| &mut r.proxy).unwrap();
    plugin
        .vm_with(
            Refusing {
                proxy: proxy_wasm_host::ProxyState::default(),
            },
            &HostOptions {
                plugin_config: config.as_bytes().to_vec(),
                ..HostOptions::default()
            },
        )
        .unwrap()
}

fn tagged(key: &str) -> Hop {
    let mut hop = request("location:8083", "/");
    hop.request_headers
        .add("baggage", format!("sd-routing-key={key}"));
    hop
}

/// Regression (issue 8): the filter counted `decision.fork` and wrote
/// `decision=fork` before it knew the rewrite had worked; when the host
/// refused it, the baseline served a request logged as forked.
#[test]
fn a_refused_rewrite_is_a_host_error_not_a_fork() {
    let mut vm = refusing_vm(FORK_CONFIG, "proxy_replace_header_map_value");
    let mut hop = tagged("qwblp48fpmb30");
    let outcome = vm.request(&mut hop).unwrap();
    assert!(outcome.forwarded);
    assert_eq!(outcome.properties.get("laneway"), None, "nothing logged");
    assert_eq!(
        text(hop.request_headers.get(":authority")),
        Some("location:8083")
    );
    assert_eq!(vm.metric("laneway.decision.fork"), Some(0));
    assert_eq!(vm.metric("laneway.host_errors"), Some(1));
}

#[test]
fn a_refused_filter_state_entry_counts_as_a_host_error() {
    let mut vm = refusing_vm(FORK_CONFIG, "proxy_set_property");
    let mut hop = tagged("qwblp48fpmb30");
    vm.request(&mut hop).unwrap();
    assert_eq!(
        text(hop.request_headers.get(":authority")),
        Some("location-qwblp48fpmb30:8083"),
        "the fork still happened"
    );
    assert_eq!(vm.metric("laneway.decision.fork"), Some(1));
    assert_eq!(vm.metric("laneway.host_errors"), Some(1));
}

#[test]
fn a_refused_local_reply_sends_the_request_to_the_baseline() {
    let config = FORK_CONFIG.replace(
        r#""sandboxes""#,
        r#""unknown_key":{"policy":"reject"},"sandboxes""#,
    );
    let mut vm = refusing_vm(&config, "proxy_send_local_response");
    let mut hop = tagged("gone");
    let outcome = vm.request(&mut hop).unwrap();
    assert!(outcome.forwarded && outcome.local_response.is_none());
    assert_eq!(outcome.properties.get("laneway"), None);
    assert_eq!(vm.metric("laneway.decision.rejected"), Some(0));
    assert_eq!(vm.metric("laneway.host_errors"), Some(1));
}
