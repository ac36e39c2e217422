//! Laneway's filter, `laneway_filter.wasm`, in the wasmtime host: it forks
//! a tagged request and leaves an untagged one alone, refuses a bad
//! configuration with the reason, matches the native core on the whole
//! routing corpus and on 10,000 generated requests (both unknown-key
//! policies), routes by each root context's own configuration when
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
/// Runs one request through the filter in `vm` and through `router`, and
/// checks that they agree on everything the filter shows: the counter,
/// the filter-state reason, the `:authority`, the reject reply.
fn agree(
    vm: &mut Vm,
    router: &Router,
    authority: &str,
    baggage: &[Vec<u8>],
    tracestate: &[Vec<u8>],
    at: &str,
) -> Result<(), String> {
    let verdict = router.decide(Request {
        authority: authority.as_bytes(),
        baggage: baggage.iter().map(Vec::as_slice),
        tracestate: tracestate.iter().map(Vec::as_slice),
    });
    let mut hop = Hop::default();
    hop.request_headers.add(":authority", authority);
    hop.request_headers.add(":path", "/");
    for v in baggage {
        hop.request_headers.add("baggage", v);
    }
    for v in tracestate {
        hop.request_headers.add("tracestate", v);
    }
    hop.response_headers.add(":status", "200");
    let reason = verdict.decision.reason();
    let counter = format!("laneway.decision.{reason}");
    let before = vm.metric(&counter).unwrap_or(0);
    let outcome = vm
        .request(&mut hop)
        .map_err(|e| format!("{at}: {e}"))?
        .clone();
    let fail = |what: String| Err(format!("{at}: {what}"));
    if vm.metric(&counter) != Some(before + 1) {
        return fail(format!("the filter did not count {counter}"));
    }
    if verdict.decision == Decision::NoKey {
        if outcome.properties.get("laneway").is_some() {
            return fail("a filter state for no_key".into());
        }
    } else {
        let state = outcome.properties.get("laneway").unwrap_or_default();
        match filter_state::decode(state) {
            Ok(d) if d.reason == reason => {}
            other => return fail(format!("state {other:?}, the core says {reason}")),
        }
    }
    let sent = hop
        .request_headers
        .get(":authority")
        .unwrap_or_default()
        .to_vec();
    match verdict.decision {
        Decision::Fork(id) => {
            let mut buf = [0u8; laneway_core::authority::MAX_FORK_AUTHORITY];
            let want = router
                .fork_authority(id, authority.as_bytes(), &mut buf)
                .ok_or_else(|| format!("{at}: the core cannot write the fork's authority"))?;
            if sent != want || !outcome.forwarded {
                return fail(format!(
                    "forked to {:?}, the core says {:?}",
                    String::from_utf8_lossy(&sent),
                    String::from_utf8_lossy(want)
                ));
            }
        }
        d if d.route() == laneway_core::Route::Reject => match &outcome.local_response {
            Some(reply)
                if reply.status == u32::from(router.reject_status()) && !outcome.forwarded => {}
            other => return fail(format!("the core rejects; the filter replied {other:?}")),
        },
        _ => {
            if sent != authority.as_bytes()
                || !outcome.forwarded
                || outcome.local_response.is_some()
            {
                return fail(format!(
                    "the core says {reason}; the filter sent {:?}",
                    String::from_utf8_lossy(&sent)
                ));
            }
        }
    }
    Ok(())
}

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
        agree(vm, router, &case.authority, &baggage, &tracestate, &at)
            .unwrap_or_else(|e| panic!("{e}"));
        checked += 1;
    }
    assert!(checked > 20, "only {checked} cases");
}

/// Header lines built from the pieces routing turns on: the configured
/// keys and members (exact, percent-encoded, cased wrong, with
/// properties and whitespace), other members, separators and junk.
fn line(pieces: &'static [&'static str], junk: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => proptest::sample::select(pieces).prop_map(str::to_owned),
        1 => junk.prop_map(|s: String| s),
    ];
    let sep = proptest::sample::select(&[",", ", ", " ,", ",,", ""][..]);
    proptest::collection::vec((piece, sep), 0..6).prop_map(|parts| {
        let mut out = String::new();
        for (p, s) in parts {
            out.push_str(&p);
            out.push_str(s);
        }
        out.into_bytes()
    })
}

const BAGGAGE_PIECES: &[&str] = &[
    "sd-routing-key=qwblp48fpmb30",
    "sd-routing-key=r7gq2x9k4mzt1",
    "sd-sandbox=qwblp48fpmb30",
    "sd-sandbox=r7gq2x9k4mzt1",
    "sd-routing-key=%71wblp48fpmb30",
    "sd-routing-key=qwblp48fpmb30;p=1",
    "sd-routing-key = qwblp48fpmb30 ",
    "sd-routing-key=unknownkey",
    "sd-routing-key=",
    "sd-routing-key=%zz",
    "SD-ROUTING-KEY=qwblp48fpmb30",
    "sd-routing-keyx=qwblp48fpmb30",
    "user=alice;p=1",
    "k=v",
    "=v",
    "k",
    ";",
];

const TRACESTATE_PIECES: &[&str] = &[
    "sd-routing-key=qwblp48fpmb30",
    "sd-routing-key=r7gq2x9k4mzt1",
    "sd-sandbox=qwblp48fpmb30",
    "sd-routing-key=unknownkey",
    "rojo=00f067aa0ba902b7",
    "congo=t61rcWkgMzE",
    "tenant@system=v",
    "Sd-routing-key=qwblp48fpmb30",
    "sd-routing-key=qwblp48fpmb30 ",
    "sd-routing-key= x",
    "a=b=c",
    "",
];

const AUTHORITIES: &[&str] = &[
    "location",
    "location:8083",
    "LOCATION:8083",
    "location.:8083",
    "driver:8082",
    "route",
    "customer.hotrod.svc.cluster.local:8081",
    "customer:8081",
    "frontend:8080",
    "location:99999",
    "location:",
    "[::1]:8083",
    "",
];

fn authority() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => proptest::sample::select(AUTHORITIES).prop_map(str::to_owned),
        1 => "[ -~]{0,20}",
    ]
}

// Wasm versus core on ten thousand generated requests: every decision the
// filter makes in the host is the core's, for both unknown-key policies.

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn laneway_decides_as_the_core_on_generated_requests(
        reject in any::<bool>(),
        authority in authority(),
        baggage in proptest::collection::vec(line(BAGGAGE_PIECES, "[ -~]{0,12}"), 0..3),
        tracestate in proptest::collection::vec(line(TRACESTATE_PIECES, "[ -~]{0,12}"), 0..3),
    ) {
        static VMS: OnceLock<Mutex<(Vm, Router, Vm, Router)>> = OnceLock::new();
        let mut vms = VMS
            .get_or_init(|| {
                let load = |name: &str| {
                    let text = corpus::config_text(name);
                    (laneway_vm(&text).unwrap(), Router::from_json(&text).unwrap())
                };
                let (a, b) = load("hotrod.json");
                let (c, d) = load("hotrod-reject.json");
                Mutex::new((a, b, c, d))
            })
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (baseline_vm, baseline, reject_vm, rejecting) = &mut *vms;
        let (vm, router) = if reject { (reject_vm, &*rejecting) } else { (baseline_vm, &*baseline) };
        let at = format!("{authority:?} baggage {baggage:?} tracestate {tracestate:?}");
        let result = agree(vm, router, &authority, &baggage, &tracestate, &at);
        prop_assert!(result.is_ok(), "{}", result.err().unwrap_or_default());
    }
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
