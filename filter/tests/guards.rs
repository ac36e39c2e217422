//! Every guard of `laneway_filter.wasm` through the wasmtime host, judged
//! on what the filter really does to the request: the `baggage` and
//! `tracestate` lines it forwards, the `:authority` and `:path`, its local
//! replies, its counters and its filter-state entry.
//!
//! - Ingress: every spoofing shape from an untrusted source is stripped
//!   (no look-alike left, every other member kept byte for byte, an
//!   emptied line removed); a valid signature (either secret) or a trusted
//!   source (IPv4, IPv6, IPv4-mapped) forks; the host clock decides
//!   whether a signature has expired.
//! - Preview: a host pattern or a signed query parameter injects the key;
//!   an untrusted one is stripped and `:path` is cleaned in every case.
//! - Loop guard, expiry, rate limit (shared by two VMs of one plugin, as
//!   Envoy's workers share it), and untagged requests at an edge.
//!
//! Every request also goes through the core's `Router::guard` with the
//! facts the host gives (the hop's source address, the VM's clock, the
//! plugin's shared data), and the filter must have done what the core
//! decided: same counter, same filter-state reason, same local reply, same
//! fork.

use std::net::SocketAddr;
use std::sync::OnceLock;

use laneway_core::cidr::{self, Ip};
use laneway_core::filter_state;
use laneway_core::guard::{BUCKET_BYTES, Bucket};
use laneway_core::rewrite::has_lookalike;
use laneway_core::signature::{self, Secret};
use laneway_core::{Decision, Facts, Reason, Request, Route, Router};
use laneway_testdata::wasm;
use proxy_wasm_host::{
    Compiled, Hop, HostOptions, LoadOptions, Outcome, Plugin, ProxyState, Status, Vm,
};
use proxy_wasm_host_conformance::{request, text};

/// base64 of 38 bytes; the second secret is the one being rotated in.
const SECRET: &str = "bGFuZXdheS10ZXN0LXNlY3JldC0wMDAwMDAwMDAwMDAwMDAwMDA=";
const SECRET2: &str = "c2Vjb25kLWxhbmV3YXktdGVzdC1zZWNyZXQtMTExMTExMTExMTE=";
/// A well-formed secret the edge does not have.
const FOREIGN: &str = "b3RoZXItc2VjcmV0LW5vdC1jb25maWd1cmVkLTAwMDAwMDAwMDA=";

const OUTSIDE_V4: &str = "203.0.113.9:40000";
const OUTSIDE_V6: &str = "[2001:db8::9]:40000";

fn edge_config(extra: &str) -> String {
    format!(
        r#"{{"version":1,
            "ingress":{{"trusted_cidrs":["10.0.0.0/8","fd00::/8"],"secrets":["{SECRET}","{SECRET2}"]}},
            {extra}
            "sandboxes":[{{"key":"k1","forks":[{{"service":"frontend","destination":"frontend-k1"}}]}},
                         {{"key":"k2","forks":[{{"service":"cart","destination":"cart-k2"}}]}}]}}"#
    )
}

const PREVIEW: &str = r#""preview":{"hosts":[{"pattern":"*.preview.example.com","service":"frontend"}],"query_param":"sd-routing-key"},"#;

/// The filter compiled once per test binary.
fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        Compiled::load(&wasm::build("laneway-filter"), &LoadOptions::default())
            .expect("filter compiles")
    })
}

/// A plugin of its own (its own shared data), from the compiled filter.
fn plugin() -> Plugin {
    fn itself(s: &mut ProxyState) -> &mut ProxyState {
        s
    }
    let c = compiled();
    let mut linker = wasmtime::Linker::new(c.engine());
    proxy_wasm_host::add_to_linker(&mut linker, c.module(), itself).unwrap();
    c.plugin(&linker, itself).unwrap()
}

/// What the host tells the filter, told the same way to the core.
struct Mirror<'p> {
    source: SocketAddr,
    now_ns: u64,
    plugin: &'p Plugin,
}

impl Facts for Mirror<'_> {
    fn source(&mut self) -> Option<Ip> {
        // The host's `source.address` is `SocketAddr`'s text.
        cidr::parse_source(self.source.to_string().as_bytes())
    }

    fn now_ns(&mut self) -> Option<u64> {
        Some(self.now_ns)
    }

    fn shared_get(&mut self, key: &[u8], out: &mut [u8; BUCKET_BYTES]) -> Result<Option<u32>, ()> {
        Ok(self
            .plugin
            .shared_data(key)
            .and_then(|(v, cas)| Some((<[u8; BUCKET_BYTES]>::try_from(v.as_slice()).ok()?, cas)))
            .map(|(v, cas)| {
                *out = v;
                cas
            }))
    }

    fn shared_set(&mut self, key: &[u8], _value: &[u8], cas: u32) -> Result<bool, ()> {
        // The filter makes the write; the core needs the host's answer.
        Ok(match self.plugin.shared_data(key) {
            Some((_, current)) => cas == 0 || cas == current,
            None => true,
        })
    }
}

/// One VM of a plugin, and the core compiled from the same configuration.
struct Filter {
    plugin: Plugin,
    vm: Vm,
    router: Router,
}

/// A request after the filter: the hop as forwarded (or answered), the
/// host's outcome, and what the core decided.
struct Sent {
    hop: Hop,
    outcome: Outcome,
    core: Reason,
}

impl Sent {
    fn lines(&self, name: &str) -> Vec<String> {
        self.hop
            .request_headers
            .get_all(name.as_bytes())
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        text(self.hop.request_headers.get(name))
    }

    fn state(&self) -> Option<&str> {
        text(self.outcome.properties.get("laneway"))
    }

    fn reply(&self) -> Option<(u32, &str, &str)> {
        self.outcome.local_response.as_ref().map(|r| {
            (
                r.status,
                text(r.headers.get("x-laneway-decision")).unwrap_or(""),
                std::str::from_utf8(&r.body).unwrap(),
            )
        })
    }
}

fn options(config: &str) -> HostOptions {
    HostOptions {
        plugin_name: "laneway".into(),
        plugin_config: config.as_bytes().to_vec(),
        allocation_counter: Some("laneway_guest_allocations".into()),
        ..HostOptions::default()
    }
}

impl Filter {
    fn new(config: &str) -> Filter {
        Filter::on(&plugin(), config)
    }

    /// Another VM of `plugin`, as Envoy starts one per worker thread.
    fn on(plugin: &Plugin, config: &str) -> Filter {
        let router = Router::from_json(config).unwrap_or_else(|e| panic!("{e}\n{config}"));
        let vm = plugin
            .vm(&options(config))
            .unwrap_or_else(|e| panic!("{e}"));
        Filter {
            plugin: plugin.clone(),
            vm,
            router,
        }
    }

    fn now_s(&mut self) -> u64 {
        self.vm.now_ns() / 1_000_000_000
    }

    fn counter(&mut self, name: &str) -> u64 {
        self.vm.metric(name).unwrap_or(0)
    }

    /// Sends `hop` through the core and the filter, and checks that the
    /// filter did what the core decided.
    fn send(&mut self, mut hop: Hop) -> Sent {
        let source = hop.source;
        let headers = hop.request_headers.clone();
        let first = |name: &'static str| headers.get(name).unwrap_or_default();
        let mut facts = Mirror {
            source,
            now_ns: self.vm.now_ns(),
            plugin: &self.plugin,
        };
        let core = self.router.guard(
            Request {
                authority: first(":authority"),
                baggage: headers.get_all(b"baggage"),
                tracestate: headers.get_all(b"tracestate"),
            },
            if self.router.reads_untagged() {
                first(":path")
            } else {
                b""
            },
            &mut facts,
        );
        let reason = core.verdict.decision.reason();
        let status = core.status(&self.router);
        let decided_for = match core.edits.preview_host {
            Some(i) => self.router.preview_service(i),
            None => first(":authority"),
        };
        let mut buf = [0u8; laneway_core::authority::MAX_FORK_AUTHORITY];
        let fork = match core.verdict.decision {
            Decision::Fork(id) => self
                .router
                .fork_authority(id, decided_for, &mut buf)
                .map(<[u8]>::to_vec),
            _ => None,
        };
        let counter = format!("laneway.decision.{reason}");
        let before = self.counter(&counter);
        let outcome = self
            .vm
            .request(&mut hop)
            .unwrap_or_else(|e| panic!("{e}"))
            .clone();
        let sent = Sent {
            hop,
            outcome,
            core: reason,
        };
        assert_eq!(self.counter(&counter), before + 1, "{counter}");
        match sent.state() {
            None => assert_eq!(reason, Reason::NoKey, "no filter state"),
            Some(state) => {
                let decoded = filter_state::decode(state.as_bytes()).unwrap();
                assert_eq!(decoded.reason, reason, "{state}");
            }
        }
        match reason.route() {
            Route::Reject => {
                let reply = sent.outcome.local_response.as_ref().expect("a local reply");
                assert_eq!(reply.status, u32::from(status));
                assert!(!sent.outcome.forwarded);
            }
            _ => {
                assert!(sent.outcome.forwarded && sent.outcome.local_response.is_none());
            }
        }
        if let Some(fork) = fork {
            assert_eq!(sent.hop.request_headers.get(":authority"), Some(&fork[..]));
        }
        sent
    }
}

/// A request for `frontend:8080` from `source`, with these header lines.
fn hop(source: &str, baggage: &[String], tracestate: &[String]) -> Hop {
    let mut hop = request("frontend:8080", "/x");
    hop.source = source.parse().unwrap();
    for line in baggage {
        hop.request_headers.add("baggage", line);
    }
    for line in tracestate {
        hop.request_headers.add("tracestate", line);
    }
    hop
}

/// The baggage member `name=key;laneway-sig=v1.EXP.SIG`, signed with
/// `secret`, expiring at `exp_s`.
fn signed(secret: &str, key: &str, exp_s: u64) -> String {
    format!(
        "sd-routing-key={key};laneway-sig={}",
        token(secret, key, exp_s)
    )
}

fn token(secret: &str, key: &str, exp_s: u64) -> String {
    let secret = Secret::from_config(secret).unwrap();
    let mut buf = [0u8; signature::TOKEN_LEN_MAX];
    let n = signature::sign(&secret, key.as_bytes(), exp_s, &mut buf).unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

/// The headers other than `baggage` and `tracestate`, in order.
fn others(hop: &Hop) -> Vec<(Vec<u8>, Vec<u8>)> {
    hop.request_headers
        .iter()
        .filter(|(k, _)| *k != b"baggage" && *k != b"tracestate")
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Members `m0=v0000,m1=v0001,...` of at least `bytes` bytes.
fn padding(bytes: usize) -> String {
    let mut out = String::new();
    let mut i = 0;
    while out.len() < bytes {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("m{i}=v{i:04}"));
        i += 1;
    }
    out
}

/// One spoofing shape: the lines sent, the lines that must be forwarded,
/// and whether a signature was refused.
struct Spoof {
    name: &'static str,
    baggage: Vec<String>,
    tracestate: Vec<String>,
    want_baggage: Vec<String>,
    want_tracestate: Vec<String>,
    refused_signature: bool,
}

fn spoof(name: &'static str, baggage: Vec<String>, want_baggage: Vec<String>) -> Spoof {
    Spoof {
        name,
        baggage,
        tracestate: Vec::new(),
        want_baggage,
        want_tracestate: Vec::new(),
        refused_signature: false,
    }
}

fn spoofs(now_s: u64) -> Vec<Spoof> {
    let wrong_sig = {
        let mut s = signed(SECRET, "k1", now_s + 3600);
        let last = s.pop().unwrap();
        s.push(if last == 'A' { 'B' } else { 'A' });
        s
    };
    let expired = signed(SECRET, "k1", now_s);
    let other_key = signed(SECRET, "k2", now_s + 3600).replace("=k2;", "=k1;");
    let too_far = signed(SECRET, "k1", now_s + 8 * 24 * 3600);
    let foreign = signed(FOREIGN, "k1", now_s + 3600);
    let upper_signed =
        signed(SECRET, "k1", now_s + 3600).replace("sd-routing-key", "SD-ROUTING-KEY");
    let pad = padding(9000);
    let huge = format!("big={}", "x".repeat(17 * 1024));
    let signature = |mut s: Spoof| {
        s.refused_signature = true;
        s
    };
    let tracestate = |mut s: Spoof, lines: &[&str], want: &[&str]| {
        s.tracestate = strings(lines);
        s.want_tracestate = strings(want);
        s
    };
    vec![
        spoof(
            "forged key",
            strings(&["user=alice,sd-routing-key=k1,team=a"]),
            strings(&["user=alice,team=a"]),
        ),
        signature(spoof(
            "wrong signature",
            vec![format!("user=alice,{wrong_sig}")],
            strings(&["user=alice"]),
        )),
        signature(spoof(
            "expired signature",
            vec![format!("{expired},x=1")],
            strings(&["x=1"]),
        )),
        signature(spoof("signature for another key", vec![other_key], vec![])),
        signature(spoof(
            "signature valid for longer than max_ttl",
            vec![too_far, "x=1".into()],
            strings(&["x=1"]),
        )),
        signature(spoof(
            "signature by a secret the edge does not have",
            vec![foreign],
            vec![],
        )),
        spoof(
            "duplicated members",
            strings(&["sd-routing-key=k1,x=1,sd-routing-key=k1"]),
            strings(&["x=1"]),
        ),
        spoof(
            "the key on a second baggage line",
            strings(&["user=alice", "sd-routing-key=k1"]),
            strings(&["user=alice"]),
        ),
        tracestate(
            spoof("key in tracestate only", vec![], vec![]),
            &["rojo=00f067aa0ba902b7,sd-routing-key=k1,congo=t61rcWkgMzE"],
            &["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"],
        ),
        tracestate(
            spoof(
                "key in baggage and tracestate",
                strings(&["sd-routing-key=k1"]),
                vec![],
            ),
            &["sd-routing-key=k1,rojo=1"],
            &["rojo=1"],
        ),
        tracestate(
            spoof(
                "second member name, mixed case, in tracestate",
                vec![],
                vec![],
            ),
            &["rojo=1,Sd-Sandbox=k1"],
            &["rojo=1"],
        ),
        spoof(
            "upper-case member name",
            strings(&["SD-ROUTING-KEY=k1,user=alice"]),
            strings(&["user=alice"]),
        ),
        spoof(
            "percent-encoded member name",
            strings(&["%73d-routing-key=k1,user=alice"]),
            strings(&["user=alice"]),
        ),
        spoof(
            "encoded equals sign",
            strings(&["user=alice,sd-routing-key%3Dk1"]),
            strings(&["user=alice"]),
        ),
        spoof(
            "a valid signature on a look-alike",
            vec![upper_signed],
            vec![],
        ),
        spoof(
            "the key after 9000 bytes of other members",
            vec![format!("{pad},sd-routing-key=k1")],
            vec![pad.clone()],
        ),
        spoof(
            "the key in one 9000-byte member's line",
            vec![format!("pad={},sd-routing-key=k1,z=1", "p".repeat(9000))],
            vec![format!("pad={},z=1", "p".repeat(9000))],
        ),
        spoof(
            "the key on a line over 16 KiB (removed whole)",
            vec![format!("{huge},sd-routing-key=k1"), "user=alice".into()],
            strings(&["user=alice"]),
        ),
        spoof(
            "OWS and empty elements",
            strings(&[" ,\t, sd-routing-key \t= k1 ,,"]),
            vec![],
        ),
        spoof(
            "OWS and empty elements among members",
            strings(&["a=1 ,\t, sd-routing-key \t= k1 ,,b=2"]),
            strings(&["a=1 ,\t,,b=2"]),
        ),
    ]
}

#[test]
fn an_edge_strips_every_spoofed_key_and_keeps_the_rest() {
    let mut edge = Filter::new(&edge_config(""));
    let now_s = edge.now_s();
    for case in spoofs(now_s) {
        for source in [OUTSIDE_V4, OUTSIDE_V6] {
            let at = format!("{} from {source}", case.name);
            let hop = hop(source, &case.baggage, &case.tracestate);
            let before = others(&hop);
            let refused = edge.counter("laneway.ingress.signature_refused");
            let sent = edge.send(hop);
            assert_eq!(sent.core, Reason::Stripped, "{at}: the core");
            assert_eq!(sent.lines("baggage"), case.want_baggage, "{at}: baggage");
            assert_eq!(
                sent.lines("tracestate"),
                case.want_tracestate,
                "{at}: tracestate"
            );
            let names = edge.router.member_names();
            for name in ["baggage", "tracestate"] {
                let forwarded = sent.hop.request_headers.get_all(name.as_bytes());
                assert!(!has_lookalike(forwarded, names), "{at}: a look-alike left");
            }
            assert_eq!(others(&sent.hop), before, "{at}: other headers");
            assert_eq!(sent.header(":authority"), Some("frontend:8080"), "{at}");
            let state = sent.state().unwrap_or_default();
            assert!(state.starts_with("decision=stripped"), "{at}: {state}");
            assert_eq!(
                edge.counter("laneway.ingress.signature_refused"),
                refused + u64::from(case.refused_signature),
                "{at}: signature_refused"
            );
        }
    }
    let n = 2 * spoofs(now_s).len() as u64;
    assert_eq!(edge.counter("laneway.decision.stripped"), n);
    assert_eq!(edge.counter("laneway.decision.fork"), 0);
    assert_eq!(edge.counter("laneway.host_errors"), 0);
}

/// W3C Baggage: a property is no member, so a key there is no key. The
/// edge neither routes nor edits it.
#[test]
fn a_key_in_a_baggage_property_is_no_key_and_is_left_alone() {
    let mut edge = Filter::new(&edge_config(""));
    let lines = strings(&["user=alice;sd-routing-key=k1"]);
    let hop = hop(OUTSIDE_V4, &lines, &[]);
    let before = hop.request_headers.clone();
    let sent = edge.send(hop);
    assert_eq!(sent.core, Reason::NoKey);
    assert_eq!(sent.hop.request_headers, before);
    assert_eq!(sent.state(), None);
}

#[test]
fn a_valid_signature_by_either_secret_forks_from_anywhere() {
    let mut edge = Filter::new(&edge_config(""));
    let now_s = edge.now_s();
    for (i, secret) in [SECRET, SECRET2].into_iter().enumerate() {
        let member = signed(secret, "k1", now_s + 3600);
        let lines = vec![format!("user=alice,{member}")];
        let sent = edge.send(hop(OUTSIDE_V4, &lines, &[]));
        assert_eq!(sent.core, Reason::Fork);
        assert_eq!(sent.header(":authority"), Some("frontend-k1:8080"));
        assert_eq!(
            sent.lines("baggage"),
            lines,
            "a trusted key is kept as sent"
        );
        assert_eq!(
            sent.state(),
            Some("decision=fork key=k1 fork=frontend-k1:8080")
        );
        assert_eq!(
            edge.counter("laneway.ingress.trusted_signature"),
            i as u64 + 1
        );
    }
}

#[test]
fn a_trusted_source_forks_without_a_signature() {
    let mut edge = Filter::new(&edge_config(""));
    let lines = strings(&["sd-routing-key=k1"]);
    for source in ["10.1.2.3:5000", "[fd00::7]:443", "[::ffff:10.9.9.9]:1"] {
        let sent = edge.send(hop(source, &lines, &[]));
        assert_eq!(sent.core, Reason::Fork, "{source}");
        assert_eq!(sent.header(":authority"), Some("frontend-k1:8080"));
        assert_eq!(sent.lines("baggage"), lines);
    }
    assert_eq!(edge.counter("laneway.ingress.trusted_source"), 3);
    // A neighbour of the trusted networks is outside them.
    for source in ["11.0.0.1:5000", "[fe00::1]:443"] {
        let sent = edge.send(hop(source, &lines, &[]));
        assert_eq!(sent.core, Reason::Stripped, "{source}");
        assert_eq!(sent.lines("baggage"), Vec::<String>::new());
    }
}

/// The signature's expiry is judged by the host's clock, to the second.
#[test]
fn a_signature_expires_by_the_host_clock() {
    let mut edge = Filter::new(&edge_config(""));
    let now_s = edge.now_s();
    let lines = vec![signed(SECRET, "k1", now_s + 60)];
    assert_eq!(edge.send(hop(OUTSIDE_V4, &lines, &[])).core, Reason::Fork);
    edge.vm.advance_clock(59_999).unwrap();
    assert_eq!(edge.send(hop(OUTSIDE_V4, &lines, &[])).core, Reason::Fork);
    edge.vm.advance_clock(1).unwrap();
    let sent = edge.send(hop(OUTSIDE_V4, &lines, &[]));
    assert_eq!(sent.core, Reason::Stripped);
    assert_eq!(sent.lines("baggage"), Vec::<String>::new());
    assert_eq!(edge.counter("laneway.ingress.signature_refused"), 1);
}

fn preview_hop(source: &str, authority: &str, path: &str) -> Hop {
    let mut hop = request(authority, path);
    hop.source = source.parse().unwrap();
    hop
}

#[test]
fn a_preview_host_from_a_trusted_source_goes_to_the_fork() {
    let mut edge = Filter::new(&edge_config(PREVIEW));
    let sent = edge.send(preview_hop(
        "10.0.0.5:1000",
        "k1.preview.example.com",
        "/app",
    ));
    assert_eq!(sent.core, Reason::Fork);
    assert_eq!(sent.header(":authority"), Some("frontend-k1"));
    assert_eq!(sent.lines("baggage"), strings(&["sd-routing-key=k1"]));
    assert_eq!(sent.header(":path"), Some("/app"));
    assert_eq!(edge.counter("laneway.preview.injected"), 1);
    // A key whose sandbox does not fork the pattern's service: the
    // pattern's service, with the key.
    let sent = edge.send(preview_hop("10.0.0.5:1000", "k2.preview.example.com", "/"));
    assert_eq!(sent.core, Reason::NoFork);
    assert_eq!(sent.header(":authority"), Some("frontend"));
    assert_eq!(sent.lines("baggage"), strings(&["sd-routing-key=k2"]));
}

#[test]
fn a_signed_preview_query_from_outside_is_injected_and_removed_from_the_path() {
    let mut edge = Filter::new(&edge_config(PREVIEW));
    let sig = token(SECRET2, "k1", edge.now_s() + 600);
    let path = format!("/a?x=1&sd-routing-key=k1&laneway-sig={sig}&y=2");
    let sent = edge.send(preview_hop(OUTSIDE_V4, "frontend:8080", &path));
    assert_eq!(sent.core, Reason::Fork);
    assert_eq!(sent.header(":path"), Some("/a?x=1&y=2"));
    assert_eq!(sent.header(":authority"), Some("frontend-k1:8080"));
    assert_eq!(sent.lines("baggage"), strings(&["sd-routing-key=k1"]));
    assert_eq!(edge.counter("laneway.ingress.trusted_signature"), 1);
}

#[test]
fn an_untrusted_preview_key_is_stripped_and_the_path_still_cleaned() {
    let mut edge = Filter::new(&edge_config(PREVIEW));
    for (authority, path, want_path) in [
        ("frontend:8080", "/a?sd-routing-key=k1&y=2", "/a?y=2"),
        ("frontend:8080", "/a?sd-routing-key=k1", "/a"),
        ("k1.preview.example.com", "/a?q=1", "/a?q=1"),
    ] {
        let at = format!("{authority}{path}");
        let sent = edge.send(preview_hop(OUTSIDE_V4, authority, path));
        assert_eq!(sent.core, Reason::Stripped, "{at}");
        assert_eq!(sent.header(":path"), Some(want_path), "{at}");
        assert_eq!(sent.header(":authority"), Some(authority), "{at}");
        assert_eq!(sent.lines("baggage"), Vec::<String>::new(), "{at}");
    }
    assert_eq!(edge.counter("laneway.preview.injected"), 0);
}

const LOOP: &str = r#"{"version":1,"loop_guard":{"max_hops":3},
    "sandboxes":[{"key":"k1","forks":[{"service":"frontend","destination":"frontend-k1"}]}]}"#;

#[test]
fn the_loop_guard_counts_hops_and_stops_the_one_past_the_limit() {
    let mut f = Filter::new(LOOP);
    let sent = f.send(hop(
        OUTSIDE_V4,
        &strings(&["sd-routing-key=k1,laneway-hops=2"]),
        &[],
    ));
    assert_eq!(sent.core, Reason::Fork);
    assert_eq!(
        sent.lines("baggage"),
        strings(&["sd-routing-key=k1,laneway-hops=3"])
    );
    assert_eq!(sent.header(":authority"), Some("frontend-k1:8080"));
    // No counter yet: one is added on a line of its own.
    let sent = f.send(hop(OUTSIDE_V4, &strings(&["sd-routing-key=k1"]), &[]));
    assert_eq!(
        sent.lines("baggage"),
        strings(&["sd-routing-key=k1", "laneway-hops=1"])
    );
    let sent = f.send(hop(
        OUTSIDE_V4,
        &strings(&["sd-routing-key=k1,laneway-hops=3"]),
        &[],
    ));
    assert_eq!(sent.core, Reason::Looped);
    assert_eq!(
        sent.reply(),
        Some((
            508,
            "looped",
            "routing key k1 has crossed 4 hops, more than the loop guard allows; is there a call cycle?\n"
        ))
    );
    assert_eq!(sent.state(), Some("decision=looped key=k1"));
    assert_eq!(f.counter("laneway.decision.looped"), 1);
}

/// Regression (`testdata/fuzz/loop-guard-hop-count-on-a-line-over-16k.json`): a
/// `laneway-hops` member on a baggage line too long to rewrite (over
/// 16 KiB) must still leave the request with the new count.
#[test]
fn the_hop_count_advances_on_a_line_too_long_to_rewrite() {
    let mut f = Filter::new(LOOP);
    let line = format!(
        "sd-routing-key=k1,laneway-hops=1,pad={}",
        "x".repeat(17 * 1024)
    );
    let sent = f.send(hop(OUTSIDE_V4, &[line], &[]));
    assert_eq!(sent.core, Reason::Fork);
    let forwarded = sent.hop.request_headers.get_all(b"baggage");
    assert_eq!(
        laneway_core::rewrite::hop_count(forwarded),
        Some(2),
        "the next hop must see 2 hops, or a call cycle never ends"
    );
}

/// Regression (`testdata/fuzz/preview-parameter-left-in-a-path-over-16k.json`):
/// a preview parameter must leave `:path` however long the path is. Past
/// 16 KiB the cleaned path did not fit its buffer and the path went on as
/// it came, key and signature included, with nothing counted; now a path
/// whose cleaned form does not fit loses its whole query.
#[test]
fn a_preview_parameter_is_removed_from_a_path_over_16k() {
    let mut edge = Filter::new(&edge_config(PREVIEW));
    // A key from outside is stripped; a signature alone is no key. Either
    // way the parameters go.
    let mut path_after = |path: String| {
        let sent = edge.send(preview_hop(OUTSIDE_V4, "frontend:8080", &path));
        let want = match path.contains("sd-routing-key=") {
            true => Reason::Stripped,
            false => Reason::NoKey,
        };
        assert_eq!(sent.core, want);
        sent.header(":path").unwrap_or_default().to_owned()
    };
    // 16,381 bytes before the `?`: it fits, `?y=2` after it does not.
    let fits = format!("/{}", "p".repeat(16 * 1024 - 4));
    for query in ["?sd-routing-key=k1&y=2", "?y=2&laneway-sig=v1.1.x"] {
        assert_eq!(path_after(format!("{fits}{query}")), fits, "the query goes");
    }
    let longer = format!("/{}", "p".repeat(16 * 1024));
    assert_eq!(path_after(format!("{longer}?sd-routing-key=k1")), "/");
    // Short enough to rewrite: only the preview parameters go.
    let short = format!("/{}", "p".repeat(1000));
    let cleaned = path_after(format!("{short}?sd-routing-key=k1&y=2"));
    assert_eq!(cleaned, format!("{short}?y=2"));
}

/// Regression (`testdata/fuzz/preview-path-keeps-empty-named-params.json`):
/// with preview hosts and no `query_param`, cleaning `laneway-sig` out of
/// `:path` also removed every parameter with an empty name (`=x`): the
/// absent parameter name was matched as "".
#[test]
fn cleaning_the_path_removes_only_the_preview_parameters() {
    let hosts_only =
        r#""preview":{"hosts":[{"pattern":"*.preview.example.com","service":"frontend"}]},"#;
    let mut edge = Filter::new(&edge_config(hosts_only));
    let sent = edge.send(preview_hop(
        OUTSIDE_V4,
        "frontend:8080",
        "/a?=x&laneway-sig=v1.1.x&b=2",
    ));
    assert_eq!(sent.header(":path"), Some("/a?=x&b=2"));
}

/// A signature vouches for its own key alone: a signed request that also
/// carries anything else that looks like a key (another value, a
/// look-alike name, in either header) is not trusted, and every
/// look-alike goes, the signed member too. The same key again, in
/// tracestate, is no other key.
#[test]
fn a_signature_vouches_for_its_own_key_alone() {
    let mut edge = Filter::new(&edge_config(""));
    let member = signed(SECRET, "k1", edge.now_s() + 3600);
    for (baggage, tracestate) in [
        (format!("{member},SD-ROUTING-KEY=k2"), "rojo=1"),
        (format!("{member},sd-routing-key=k2"), "rojo=1"),
        (member.clone(), "sd-routing-key=k2,rojo=1"),
        (member.clone(), "sd-sandbox=k1,rojo=1"),
    ] {
        let sent = edge.send(hop(
            OUTSIDE_V4,
            std::slice::from_ref(&baggage),
            &strings(&[tracestate]),
        ));
        assert_eq!(sent.core, Reason::Stripped, "{baggage} / {tracestate}");
        assert_eq!(sent.lines("baggage"), Vec::<String>::new());
        assert_eq!(sent.lines("tracestate"), strings(&["rojo=1"]));
        assert_eq!(sent.header(":authority"), Some("frontend:8080"));
    }
    let same = strings(&["sd-routing-key=k1,rojo=1"]);
    let sent = edge.send(hop(OUTSIDE_V4, std::slice::from_ref(&member), &same));
    assert_eq!(sent.core, Reason::Fork);
    assert_eq!(sent.lines("tracestate"), same);
}

fn rfc3339(ns: u64) -> String {
    let mut buf = [0u8; laneway_core::rfc3339::FORMAT_LEN_MAX];
    laneway_core::rfc3339::format(ns, &mut buf).to_owned()
}

#[test]
fn expired_sandboxes_and_forks_go_to_the_baseline_by_the_host_clock() {
    let now = HostOptions::default().clock_ns;
    let s = 1_000_000_000;
    let config = format!(
        r#"{{"version":1,"sandboxes":[{{"key":"k1","expires_at":"{}","forks":[
            {{"service":"frontend","destination":"frontend-k1"}},
            {{"service":"cart","destination":"cart-k1","expires_at":"{}"}}]}}]}}"#,
        rfc3339(now + 60 * s),
        rfc3339(now + 30 * s),
    );
    let mut f = Filter::new(&config);
    let lines = strings(&["sd-routing-key=k1"]);
    let to = |authority: &str| {
        let mut hop = hop(OUTSIDE_V4, &lines, &[]);
        hop.request_headers.replace(":authority", authority);
        hop
    };
    assert_eq!(
        f.send(to("cart:80")).header(":authority"),
        Some("cart-k1:80")
    );
    assert_eq!(f.send(to("frontend")).core, Reason::Fork);
    f.vm.advance_clock(30_000).unwrap();
    let sent = f.send(to("cart:80"));
    assert_eq!(sent.core, Reason::Expired, "the fork expired");
    assert_eq!(sent.header(":authority"), Some("cart:80"));
    assert_eq!(sent.state(), Some("decision=expired key=k1"));
    assert_eq!(sent.lines("baggage"), lines);
    assert_eq!(f.send(to("frontend")).core, Reason::Fork);
    f.vm.advance_clock(29_999).unwrap();
    assert_eq!(f.send(to("frontend")).core, Reason::Fork);
    f.vm.advance_clock(1).unwrap();
    let sent = f.send(to("frontend"));
    assert_eq!(sent.core, Reason::Expired, "the sandbox expired");
    assert_eq!(sent.header(":authority"), Some("frontend"));
    assert_eq!(f.counter("laneway.decision.expired"), 2);
}

const LIMITED: &str = r#"{"version":1,"rate_limit":{"requests_per_second":1,"burst":3},
    "sandboxes":[{"key":"k1","forks":[{"service":"frontend","destination":"frontend-k1"}]}]}"#;

fn tagged() -> Hop {
    hop(OUTSIDE_V4, &strings(&["sd-routing-key=k1"]), &[])
}

const LIMITED_BODY: &str =
    "routing key k1 is over its rate limit of 1 requests per second (burst 3)\n";

#[test]
fn the_rate_limit_lets_the_burst_through_then_answers_429() {
    let mut f = Filter::new(LIMITED);
    for i in 0..3 {
        let sent = f.send(tagged());
        assert_eq!(sent.core, Reason::Fork, "request {i}");
        assert_eq!(sent.header(":authority"), Some("frontend-k1:8080"));
    }
    let sent = f.send(tagged());
    assert_eq!(sent.core, Reason::Limited);
    assert_eq!(sent.reply(), Some((429, "limited", LIMITED_BODY)));
    assert_eq!(sent.state(), Some("decision=limited key=k1"));
    // Untagged traffic and unknown keys are never limited.
    for _ in 0..10 {
        assert_eq!(f.send(hop(OUTSIDE_V4, &[], &[])).core, Reason::NoKey);
        let unknown = strings(&["sd-routing-key=nope"]);
        assert_eq!(
            f.send(hop(OUTSIDE_V4, &unknown, &[])).core,
            Reason::UnknownKey
        );
    }
    // One second: one token.
    f.vm.advance_clock(1000).unwrap();
    assert_eq!(f.send(tagged()).core, Reason::Fork);
    assert_eq!(f.send(tagged()).core, Reason::Limited);
    assert_eq!(f.counter("laneway.decision.limited"), 2);
}

/// Envoy runs one VM per worker thread, all of one plugin: the bucket is
/// in the plugin's shared data, so the limit holds across them.
#[test]
fn two_vms_of_one_plugin_share_the_bucket() {
    let plugin = plugin();
    let a = Filter::on(&plugin, LIMITED);
    let b = Filter::on(&plugin, LIMITED);
    let mut vms = [a, b];
    let got: Vec<Reason> = [0, 1, 0, 1, 0]
        .into_iter()
        .map(|i| vms[i].send(tagged()).core)
        .collect();
    let [mut a, mut b] = vms;
    use Reason::{Fork, Limited};
    assert_eq!(got, [Fork, Fork, Fork, Limited, Limited]);
    let (bytes, _) = plugin.shared_data(b"laneway.rl.k1").expect("a bucket");
    let bucket = Bucket::decode(&bytes.try_into().unwrap());
    assert_eq!(bucket.milli, 0, "{bucket:?}");
    // Each worker's clock moves on; one token comes back, for one of them.
    a.vm.advance_clock(1000).unwrap();
    b.vm.advance_clock(1000).unwrap();
    assert_eq!(b.send(tagged()).core, Fork);
    assert_eq!(a.send(tagged()).core, Limited);
    assert_eq!(b.send(tagged()).reply().map(|r| r.0), Some(429));
}

/// A shared-data value that is not a bucket (another writer, a different
/// build) is replaced by a full bucket, not trusted and not fatal.
#[test]
fn a_value_that_is_not_a_bucket_is_replaced() {
    let mut f = Filter::new(LIMITED);
    assert_eq!(
        f.plugin.set_shared_data(b"laneway.rl.k1", b"bad", 0),
        Status::Ok
    );
    assert_eq!(f.send(tagged()).core, Reason::Fork);
    let (bytes, _) = f.plugin.shared_data(b"laneway.rl.k1").unwrap();
    let bucket = Bucket::decode(&bytes.try_into().unwrap());
    assert_eq!(bucket.milli, 2000, "a full bucket of 3, less one");
    assert_eq!(f.counter("laneway.host_errors"), 0);
}

/// The edge's common case: no baggage, no tracestate. Nothing is read
/// past the two header lookups, nothing is allocated, nothing touched.
#[test]
fn untagged_requests_at_an_edge_cost_nothing() {
    let mut edge = Filter::new(&edge_config(""));
    let mut hop = request("frontend:8080", "/x?sd-routing-key=k1");
    hop.source = OUTSIDE_V4.parse().unwrap();
    let before = hop.request_headers.clone();
    let sent = edge.send(hop);
    assert_eq!(sent.core, Reason::NoKey);
    assert_eq!(sent.hop.request_headers, before, "not even the query");
    assert_eq!(sent.outcome.guest_allocations, Some(0));
    assert_eq!(sent.state(), None);
}

/// With preview configured every request must be looked at (a preview
/// request has no baggage): the header pairs are read, one allocation,
/// and still nothing is touched.
#[test]
fn untagged_requests_at_a_preview_edge_are_read_not_touched() {
    let mut edge = Filter::new(&edge_config(PREVIEW));
    let mut hop = request("frontend:8080", "/x?y=1");
    hop.source = OUTSIDE_V4.parse().unwrap();
    let before = hop.request_headers.clone();
    let sent = edge.send(hop);
    assert_eq!(sent.core, Reason::NoKey);
    assert_eq!(sent.hop.request_headers, before);
    assert_eq!(
        sent.outcome.guest_allocations,
        Some(1),
        "the header pairs, and nothing else"
    );
    assert_eq!(sent.state(), None);
}
