//! The guards (issue 11) in a real Envoy 1.40 (V8): the built
//! `laneway_filter.wasm` on loopback, in front of upstreams that say who
//! served each request and record what they received.
//!
//! One Envoy per configuration, one test per Envoy:
//! - `untrusted_edge_strips_every_spoofing_shape`: an edge that trusts
//!   only 10.0.0.0/8 (and `use_remote_address: true`, as Istio's gateways
//!   run), reached from 127.0.0.1: every way of smuggling a routing key
//!   goes to the baseline with every look-alike removed and every other
//!   member kept byte for byte; valid signatures (both secrets) fork; a
//!   spoofed `x-forwarded-for` does not make the client trusted; preview
//!   queries fork only when signed, and lose their parameters either way.
//! - `without_use_remote_address_x_forwarded_for_is_the_source`: the
//!   same edge with Envoy's default `use_remote_address: false`, where
//!   the client's own `x-forwarded-for` becomes `source.address`.
//! - `trusted_edge_previews_loops_expiry_and_rejects`: an edge that
//!   trusts 127.0.0.0/8: unsigned keys fork, preview hosts and queries
//!   inject the key, the loop guard answers 508 (also on a real call
//!   cycle through Envoy), expired sandboxes and forks go to the
//!   baseline, unknown keys are rejected.
//! - `rate_limit_is_shared_by_both_workers`: `--concurrency 2`, many
//!   connections, one bucket: what both workers accept stays within the
//!   burst plus the refill, and untagged requests are never limited.
//! - `preview_parameters_leave_the_path_even_when_headers_carry_a_key`
//!   (ignored): pins a filter bug this file found.
//!
//! Every test ends with an audit: each request's access-log line (found
//! by its `x-case` header) carries exactly the filter-state entry
//! expected, and every `wasmcustom.laneway.decision.<reason>` counter in
//! `/stats` equals the number of requests expected with that reason.
//! Each Envoy and its upstreams stop when their test ends, pass or fail
//! (the relay's accept thread lives on, idle, until the binary exits).

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use laneway_core::rewrite::{self, has_lookalike};
use laneway_core::signature::{self, Secret};
use laneway_core::{Config, Reason, filter_state};
use laneway_envoy::bootstrap::{self, AccessLog, Filter, Sidecar, Target, VirtualHost};
use laneway_envoy::client::{self, Response};
use laneway_envoy::mesh::UNKNOWN_HOST;
use laneway_envoy::upstream::{self, Received, Upstreams};
use laneway_envoy::{Envoy, Options};
use laneway_scenario::WorkloadName;
use laneway_testdata::wasm;

/// The edge's current secret (base64 of the bytes 0 to 31).
const SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// The secret being rotated in (bytes 32 to 63).
const ROTATED: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
/// A secret the edge does not hold (bytes 64 to 95).
const STRANGER: &str = "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=";

/// The routing-key member names (the defaults).
fn names() -> Vec<Box<str>> {
    laneway_core::config::DEFAULT_MEMBERS
        .iter()
        .map(|&n| n.into())
        .collect()
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_secs()
}

/// A `laneway-sig` token for `key`, made with `secret`, expiring at `expires`.
fn token(secret: &str, key: &str, expires: u64) -> String {
    let secret = Secret::from_config(secret).expect("a valid test secret");
    let mut out = [0u8; signature::TOKEN_LEN_MAX];
    let n = signature::sign(&secret, key.as_bytes(), expires, &mut out).expect("a nameable expiry");
    String::from_utf8(out[..n].to_vec()).expect("tokens are ASCII")
}

/// The access-log line of these tests: the request's `x-case`, Envoy's
/// downstream address (`%DOWNSTREAM_REMOTE_ADDRESS%`, the address
/// `source.address` reads) and the connection's real peer, then the
/// standard line with Laneway's filter state last.
fn log_format() -> String {
    format!(
        "case=%REQ(X-CASE)% remote=%DOWNSTREAM_REMOTE_ADDRESS% peer=%DOWNSTREAM_DIRECT_REMOTE_ADDRESS% {}",
        bootstrap::ACCESS_LOG_FORMAT
    )
}

/// One access-log line, split into its fields.
#[derive(Clone, Debug)]
struct Line {
    fields: BTreeMap<String, String>,
    /// The filter state (`-` when the request had no entry).
    state: String,
}

impl Line {
    fn parse(text: &str) -> Option<Line> {
        let (head, state) = text.split_once(" laneway: ")?;
        let fields = head
            .split(' ')
            .filter_map(|f| f.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Some(Line {
            fields,
            state: state.trim().to_owned(),
        })
    }

    fn get(&self, field: &str) -> &str {
        self.fields.get(field).map_or("", String::as_str)
    }
}

/// The host part of a logged `ip:port`.
fn ip(address: &str) -> &str {
    address.rsplit_once(':').map_or(address, |(ip, _)| ip)
}

/// How to run an edge.
struct Setup<'a> {
    name: &'a str,
    config: &'a str,
    use_remote_address: bool,
    concurrency: u32,
    /// Add the `relay` workload, which calls back through Envoy.
    relay: bool,
}

/// One Envoy running the filter in front of its workloads, with what the
/// test expects it to log and count.
struct Edge {
    envoy: Envoy,
    upstreams: Upstreams,
    listener: SocketAddr,
    dir: PathBuf,
    /// `(x-case, the filter-state entry expected, "-" for none)`.
    expected: Vec<(String, String)>,
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Edge {
    fn start(setup: &Setup<'_>) -> Edge {
        let module = wasm::build("laneway-filter");
        let config = Config::from_json(setup.config).expect("a valid test configuration");
        // Workloads as the mesh names them: each forked service has a
        // baseline, each fork its own workload.
        let mut hosts: Vec<(String, String)> = Vec::new();
        let mut add = |host: &str, workload: String| {
            if !hosts.iter().any(|(h, _)| h == host) {
                hosts.push((host.to_owned(), workload));
            }
        };
        for sandbox in &config.sandboxes {
            for fork in &sandbox.forks {
                add(
                    &fork.service,
                    WorkloadName::baseline(&fork.service).to_string(),
                );
                add(
                    &fork.destination,
                    WorkloadName::fork(&fork.service, &sandbox.key).to_string(),
                );
            }
        }
        let workloads: Vec<&str> = hosts
            .iter()
            .map(|(_, w)| w.as_str())
            .chain([UNKNOWN_HOST])
            .collect();
        let upstreams = Upstreams::start(&workloads).expect("upstreams start");
        let target = |w: &str| Target::Upstream(upstreams.addr(w).expect("started above"));
        let mut virtual_hosts: Vec<VirtualHost> = hosts
            .iter()
            .map(|(h, w)| VirtualHost::to(h, target(w)))
            .collect();
        let envoy_slot = Arc::new(OnceLock::new());
        if setup.relay {
            let relay = start_relay(envoy_slot.clone());
            virtual_hosts.push(VirtualHost::to("relay", Target::Upstream(relay)));
        }
        virtual_hosts.push(VirtualHost::to("*", target(UNKNOWN_HOST)));

        let dir = std::env::temp_dir().join(format!(
            "laneway-guards-{}-{}",
            std::process::id(),
            setup.name
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a work directory");
        let log = dir.join("access.log");
        let format = log_format();
        let mut sidecar = Sidecar::new(
            Filter::Wasm {
                module: &module,
                configuration: setup.config,
            },
            virtual_hosts,
        );
        sidecar.access_log = AccessLog::File(&log);
        sidecar.log_format = &format;
        sidecar.use_remote_address = setup.use_remote_address;
        let options = Options {
            concurrency: setup.concurrency,
            ..Options::default()
        };
        let envoy = Envoy::start_with(&bootstrap::sidecar(&sidecar), &options)
            .unwrap_or_else(|e| panic!("{}: {e}", setup.name));
        let listener = envoy
            .listener(bootstrap::LISTENER)
            .expect("the outbound listener");
        let _ = envoy_slot.set(listener);
        Edge {
            envoy,
            upstreams,
            listener,
            dir,
            expected: Vec::new(),
        }
    }

    /// Records that case `case` must log the filter-state entry `state`
    /// (`None`: no entry, a `no_key` request).
    fn expect(&mut self, case: &str, state: Option<&str>) {
        self.expected
            .push((case.to_owned(), state.unwrap_or("-").to_owned()));
    }

    /// Sends `GET path` to `host` with `headers` (and `x-case: case`),
    /// expecting the entry `state`; returns the response and what the
    /// upstreams received.
    fn send(
        &mut self,
        case: &str,
        state: Option<&str>,
        host: &str,
        path: &str,
        headers: &[(&str, &[u8])],
    ) -> (Response, Vec<Received>) {
        self.expect(case, state);
        let mut all: Vec<(&str, &[u8])> =
            vec![("host", host.as_bytes()), ("x-case", case.as_bytes())];
        all.extend_from_slice(headers);
        let response = client::get(self.listener, path, &all)
            .unwrap_or_else(|e| panic!("{case}: request through envoy: {e}"));
        (response, self.upstreams.take())
    }

    /// Every access-log line so far, waiting (up to 5 s) until there are
    /// at least `want` of them: Envoy flushes the file every 100 ms.
    fn log_lines(&self, want: usize) -> Vec<Line> {
        let path = self.dir.join("access.log");
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<Line> = text.lines().filter_map(Line::parse).collect();
            if lines.len() >= want || start.elapsed() > Duration::from_secs(5) {
                return lines;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The audit: each expected case logged exactly its entry (written by
    /// the one codec), and the decision counters equal the expected
    /// counts. Returns the log lines by case and the stats.
    fn audit(&self) -> (BTreeMap<String, Vec<Line>>, BTreeMap<String, u64>) {
        let lines = self.log_lines(self.expected.len());
        let mut by_case: BTreeMap<String, Vec<Line>> = BTreeMap::new();
        for line in lines {
            by_case
                .entry(line.get("case").to_owned())
                .or_default()
                .push(line);
        }
        let mut counts = BTreeMap::<Reason, u64>::new();
        for (case, state) in &self.expected {
            let logged: Vec<&str> = by_case
                .get(case)
                .map(|ls| ls.iter().map(|l| l.state.as_str()).collect())
                .unwrap_or_default();
            assert_eq!(
                logged,
                [state.as_str()],
                "{case}: the access log's filter state"
            );
            let reason = if state == "-" {
                Reason::NoKey
            } else {
                filter_state::decode(state.as_bytes())
                    .unwrap_or_else(|e| panic!("{case}: {state:?} is not an entry: {e}"))
                    .reason
            };
            *counts.entry(reason).or_default() += 1;
        }
        let stats = self.envoy.stats().expect("stats");
        for reason in Reason::ALL {
            assert_eq!(
                stats
                    .get(&format!("wasmcustom.laneway.decision.{reason}"))
                    .copied(),
                Some(counts.get(&reason).copied().unwrap_or(0)),
                "laneway.decision.{reason} in /stats"
            );
        }
        assert_eq!(stats.get("wasmcustom.laneway.host_errors"), Some(&0));
        (by_case, stats)
    }
}

/// The `relay` workload: it calls `relay` again through Envoy with the
/// `baggage` and `tracestate` lines it received (as a service propagating
/// context does), and answers with that call's status, its own line
/// (`relay got laneway-hops=N`) and that call's body: a call cycle. It
/// gives up after 8 levels, so a loop guard that fails ends the test
/// instead of the machine.
fn start_relay(envoy: Arc<OnceLock<SocketAddr>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
    let addr = listener.local_addr().expect("the relay's address");
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let envoy = envoy.clone();
            thread::spawn(move || relay(stream, &envoy));
        }
    });
    addr
}

fn relay(stream: TcpStream, envoy: &OnceLock<SocketAddr>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(request) = upstream::read_request(&mut reader) {
        let all = |name: &str| {
            request
                .headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_slice())
                .collect::<Vec<_>>()
        };
        let case =
            String::from_utf8_lossy(all("x-case").first().copied().unwrap_or(b"")).into_owned();
        let hops = rewrite::hop_count(all("baggage").into_iter())
            .map_or_else(|| "-".to_owned(), |n| n.to_string());
        let seen = format!("relay got laneway-hops={hops}\n");
        let (status, body) = match envoy.get() {
            _ if case.matches('+').count() >= 8 => (599, "the cycle was not stopped\n".to_owned()),
            None => (503, "no envoy yet\n".to_owned()),
            Some(addr) => {
                let next = format!("{case}+");
                let mut headers: Vec<(&str, &[u8])> =
                    vec![("host", b"relay"), ("x-case", next.as_bytes())];
                headers.extend(all("baggage").into_iter().map(|v| ("baggage", v)));
                headers.extend(all("tracestate").into_iter().map(|v| ("tracestate", v)));
                match client::get(*addr, "/", &headers) {
                    Ok(r) => (r.status, r.text()),
                    Err(e) => (502, format!("the onward call failed: {e}\n")),
                }
            }
        };
        let body = format!("{seen}{body}");
        let reply = format!(
            "HTTP/1.1 {status} Relayed\r\ncontent-type: text/plain\r\nx-served-by: relay\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(reply.as_bytes()).is_err() || request.close {
            return;
        }
    }
}

fn served_by(r: &Response) -> String {
    r.header("x-served-by").unwrap_or_default()
}

fn text(lines: &[&[u8]]) -> Vec<String> {
    lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect()
}

/// One way of smuggling a key past an edge that does not trust the sender.
struct Spoof {
    name: &'static str,
    baggage: Vec<String>,
    tracestate: Vec<String>,
    /// The lines the upstream must receive.
    want_baggage: Vec<String>,
    want_tracestate: Vec<String>,
    /// The filter-state entry (`None`: no entry).
    state: Option<&'static str>,
}

fn spoof(
    name: &'static str,
    baggage: &[&str],
    want_baggage: &[&str],
    state: Option<&'static str>,
) -> Spoof {
    Spoof {
        name,
        baggage: baggage.iter().map(|s| (*s).to_owned()).collect(),
        tracestate: Vec::new(),
        want_baggage: want_baggage.iter().map(|s| (*s).to_owned()).collect(),
        want_tracestate: Vec::new(),
        state,
    }
}

const EDGE_CONFIG: &str = r#"{
  "version": 1,
  "ingress": {"trusted_cidrs": ["10.0.0.0/8"], "secrets": ["SECRET", "ROTATED"]},
  "preview": {"hosts": [{"pattern": "*.preview.example.com", "service": "frontend"}],
              "query_param": "sd-routing-key"},
  "sandboxes": [
    {"key": "k1", "forks": [{"service": "location", "destination": "location-k1"},
                            {"service": "frontend", "destination": "frontend-k1"}]},
    {"key": "k2", "forks": [{"service": "driver", "destination": "driver-k2"}]}
  ]
}"#;

fn edge_config() -> String {
    EDGE_CONFIG
        .replace("\"SECRET\"", &format!("\"{SECRET}\""))
        .replace("\"ROTATED\"", &format!("\"{ROTATED}\""))
}

const STRIPPED_K1: Option<&str> = Some("decision=stripped key=k1");
const STRIPPED: Option<&str> = Some("decision=stripped");

#[test]
fn untrusted_edge_strips_every_spoofing_shape() {
    let config = edge_config();
    let mut edge = Edge::start(&Setup {
        name: "untrusted",
        config: &config,
        use_remote_address: true,
        concurrency: 1,
        relay: false,
    });
    let names = names();
    let now = now_s();
    let hour = now + 3600;
    let good = token(SECRET, "k1", hour);
    let mut bad_sig = good.clone().into_bytes();
    let at = bad_sig.len() - signature::SIG_LEN;
    bad_sig[at] = if bad_sig[at] == b'A' { b'B' } else { b'A' };
    let bad_sig = String::from_utf8(bad_sig).unwrap();
    let signed = |t: &str| format!("sd-routing-key=k1;laneway-sig={t},user=alice");

    // Padding members: enough to push a key past the parser's 8192 bytes,
    // or (twice as many) past the 16 KiB an edit may write.
    let filler = |bytes: usize| {
        (0..)
            .map(|i| format!("pad{i:05}=vvvvvvvvvvvvvvvvvvvvvvvv"))
            .scan(0, |len, m| {
                *len += m.len() + 1;
                (*len <= bytes).then_some(m)
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let past_limit = format!("user=alice,{}", filler(9000));
    let too_long = format!("user=bob,{}", filler(17000));
    assert!(past_limit.len() > laneway_core::baggage::MAX_BYTES);
    assert!(too_long.len() > rewrite::MAX_LINE);

    let mut spoofs = vec![
        spoof(
            "forged-key",
            &["sd-routing-key=k1,user=alice"],
            &["user=alice"],
            STRIPPED_K1,
        ),
        spoof("forged-key-alone", &["sd-routing-key=k1"], &[], STRIPPED_K1),
        spoof(
            "legacy-member",
            &["user=alice,sd-sandbox=k1"],
            &["user=alice"],
            STRIPPED_K1,
        ),
        spoof(
            "wrong-signature",
            &[&signed(&bad_sig)],
            &["user=alice"],
            STRIPPED_K1,
        ),
        spoof(
            "expired-signature",
            &[&signed(&token(SECRET, "k1", now - 60))],
            &["user=alice"],
            STRIPPED_K1,
        ),
        spoof(
            "signature-too-far-ahead",
            &[&signed(&token(SECRET, "k1", now + 8 * 24 * 3600))],
            &["user=alice"],
            STRIPPED_K1,
        ),
        spoof(
            "signature-for-another-key",
            &[&signed(&token(SECRET, "k2", hour))],
            &["user=alice"],
            STRIPPED_K1,
        ),
        spoof(
            "signature-by-another-secret",
            &[&signed(&token(STRANGER, "k1", hour))],
            &["user=alice"],
            STRIPPED_K1,
        ),
        spoof(
            "malformed-signature",
            &[&signed("v1.123.abc")],
            &["user=alice"],
            STRIPPED_K1,
        ),
        spoof(
            "signature-given-twice",
            &[&format!(
                "sd-routing-key=k1;laneway-sig={good};laneway-sig={good},user=alice"
            )],
            &["user=alice"],
            STRIPPED_K1,
        ),
        spoof(
            "signature-on-another-member",
            &[&format!("sd-routing-key=k1,user=alice;laneway-sig={good}")],
            &[&format!("user=alice;laneway-sig={good}")],
            STRIPPED_K1,
        ),
        // A property is no member: untouched, not routed, no entry.
        spoof(
            "key-in-a-property",
            &["user=alice;sd-routing-key=k1"],
            &["user=alice;sd-routing-key=k1"],
            None,
        ),
        spoof(
            "duplicated-members",
            &["sd-routing-key=k1,user=alice,sd-routing-key=k1"],
            &["user=alice"],
            STRIPPED_K1,
        ),
        spoof(
            "key-on-a-second-line",
            &["user=alice", "sd-routing-key=k1"],
            &["user=alice"],
            STRIPPED_K1,
        ),
        spoof(
            "upper-case-name",
            &["SD-Routing-Key=k1,user=alice"],
            &["user=alice"],
            STRIPPED,
        ),
        spoof(
            "percent-encoded-name",
            &["%73d-routing-key=k1,user=alice"],
            &["user=alice"],
            STRIPPED,
        ),
        spoof(
            "encoded-equals",
            &["user=alice,sd-routing-key%3Dk1"],
            &["user=alice"],
            STRIPPED,
        ),
        spoof(
            "ows-and-empty-elements",
            &[",  ,\tsd-routing-key = k1 ,user=alice,"],
            &[",  ,user=alice,"],
            STRIPPED_K1,
        ),
    ];
    spoofs.push(Spoof {
        name: "key-past-the-parse-limit",
        baggage: vec![format!("{past_limit},sd-routing-key=k1")],
        want_baggage: vec![past_limit.clone()],
        ..spoof("", &[], &[], STRIPPED)
    });
    spoofs.push(Spoof {
        name: "key-in-a-line-too-long-to-edit",
        baggage: vec!["user=alice".into(), format!("{too_long},sd-routing-key=k1")],
        want_baggage: vec!["user=alice".into()],
        ..spoof("", &[], &[], STRIPPED)
    });
    spoofs.push(Spoof {
        name: "key-in-tracestate-only",
        tracestate: vec!["rojo=00f067aa0ba902b7,sd-routing-key=k1".into()],
        want_tracestate: vec!["rojo=00f067aa0ba902b7".into()],
        ..spoof("", &[], &[], STRIPPED_K1)
    });
    spoofs.push(Spoof {
        name: "look-alike-in-tracestate",
        baggage: vec!["user=alice".into()],
        tracestate: vec!["rojo=00f067aa0ba902b7,SD-ROUTING-KEY=k1".into()],
        want_baggage: vec!["user=alice".into()],
        want_tracestate: vec!["rojo=00f067aa0ba902b7".into()],
        ..spoof("", &[], &[], STRIPPED)
    });

    for s in &spoofs {
        let mut headers: Vec<(&str, &[u8])> = Vec::new();
        headers.extend(s.baggage.iter().map(|v| ("baggage", v.as_bytes())));
        headers.extend(s.tracestate.iter().map(|v| ("tracestate", v.as_bytes())));
        let (r, received) = edge.send(s.name, s.state, "location", "/", &headers);
        let at = s.name;
        assert_eq!(r.status, 200, "{at}: {}", r.text());
        assert_eq!(
            served_by(&r),
            "location@baseline",
            "{at}: the baseline serves it"
        );
        assert_eq!(received.len(), 1, "{at}");
        let got = &received[0];
        assert_eq!(got.all("host"), [b"location"], "{at}: authority untouched");
        let baggage = got.all("baggage");
        let tracestate = got.all("tracestate");
        assert!(
            !has_lookalike(baggage.iter().copied(), &names)
                && !has_lookalike(tracestate.iter().copied(), &names),
            "{at}: a routing-key look-alike reached the upstream: {:?} {:?}",
            text(&baggage),
            text(&tracestate)
        );
        assert_eq!(
            text(&baggage),
            s.want_baggage,
            "{at}: the baggage the upstream got"
        );
        assert_eq!(
            text(&tracestate),
            s.want_tracestate,
            "{at}: the tracestate the upstream got"
        );
    }

    // Valid signatures, made with either secret, fork; the signed member
    // travels on untouched.
    for (case, secret) in [
        ("valid-signature", SECRET),
        ("valid-signature-rotated-secret", ROTATED),
    ] {
        let line = signed(&token(secret, "k1", hour));
        let (r, received) = edge.send(
            case,
            Some("decision=fork key=k1 fork=location-k1"),
            "location",
            "/",
            &[("baggage", line.as_bytes())],
        );
        assert_eq!(served_by(&r), "location@fork(k1)", "{case}: {}", r.text());
        assert_eq!(received[0].all("host"), [b"location-k1"], "{case}");
        assert_eq!(received[0].all("baggage"), [line.as_bytes()], "{case}");
    }

    // x-forwarded-for naming a trusted network does not make the client
    // trusted: with use_remote_address the source is the connection's peer.
    let (r, received) = edge.send(
        "xff-spoof",
        STRIPPED_K1,
        "location",
        "/",
        &[
            ("x-forwarded-for", b"10.1.2.3"),
            ("baggage", b"sd-routing-key=k1,user=alice"),
        ],
    );
    assert_eq!(served_by(&r), "location@baseline", "xff-spoof");
    assert_eq!(received[0].all("baggage"), [b"user=alice"], "xff-spoof");
    // Envoy appends the peer, or for a loopback peer its own node address.
    let forwarded = text(&received[0].all("x-forwarded-for"));
    let appended = forwarded
        .first()
        .and_then(|f| f.strip_prefix("10.1.2.3,"))
        .unwrap_or_else(|| panic!("xff-spoof: x-forwarded-for {forwarded:?}"));
    assert!(
        !appended.starts_with("10."),
        "xff-spoof: appended {appended}"
    );
    eprintln!("use_remote_address: true: x-forwarded-for 10.1.2.3 arrived as {forwarded:?}");

    // Preview from outside: a signed query forks (the parameters leave the
    // path); unsigned or badly signed, it goes to the baseline, and the
    // parameters leave the path all the same.
    let signed_query = format!("/search?q=1&sd-routing-key=k1&laneway-sig={good}&page=2");
    let (r, received) = edge.send(
        "preview-query-signed",
        Some("decision=fork key=k1 fork=frontend-k1"),
        "frontend",
        &signed_query,
        &[],
    );
    assert_eq!(
        served_by(&r),
        "frontend@fork(k1)",
        "preview-query-signed: {}",
        r.text()
    );
    assert_eq!(received[0].path, "/search?q=1&page=2");
    assert_eq!(received[0].all("baggage"), [b"sd-routing-key=k1"]);
    assert_eq!(received[0].all("host"), [b"frontend-k1"]);
    let (r, received) = edge.send(
        "preview-host-signed",
        Some("decision=fork key=k1 fork=frontend-k1"),
        "k1.preview.example.com",
        &format!("/?laneway-sig={good}"),
        &[],
    );
    assert_eq!(
        served_by(&r),
        "frontend@fork(k1)",
        "preview-host-signed: {}",
        r.text()
    );
    assert_eq!(received[0].path, "/");
    assert_eq!(received[0].all("baggage"), [b"sd-routing-key=k1"]);
    for (case, path) in [
        ("preview-query-unsigned", "/?sd-routing-key=k1".to_owned()),
        (
            "preview-query-bad-signature",
            format!("/?sd-routing-key=k1&laneway-sig={bad_sig}"),
        ),
    ] {
        let (r, received) = edge.send(case, STRIPPED_K1, "frontend", &path, &[]);
        assert_eq!(served_by(&r), "frontend@baseline", "{case}: {}", r.text());
        assert_eq!(received[0].path, "/", "{case}: the parameters are removed");
        assert!(
            received[0].all("baggage").is_empty(),
            "{case}: nothing injected"
        );
        assert_eq!(received[0].all("host"), [b"frontend"], "{case}");
    }
    // An unsigned preview host: no key is injected and the authority stays
    // as sent (Envoy's answer for that host: the catch-all).
    let (r, received) = edge.send(
        "preview-host-unsigned",
        STRIPPED_K1,
        "k1.preview.example.com",
        "/",
        &[],
    );
    assert_eq!(served_by(&r), UNKNOWN_HOST, "preview-host-unsigned");
    assert!(received[0].all("baggage").is_empty());
    assert_eq!(received[0].all("host"), [b"k1.preview.example.com"]);

    let (log, stats) = edge.audit();
    // What source.address read: the real peer, never the forwarded address.
    for line in log.values().flatten() {
        assert_eq!(ip(line.get("remote")), "127.0.0.1", "{line:?}");
        assert_eq!(ip(line.get("peer")), "127.0.0.1", "{line:?}");
    }
    let stat = |name: &str| stats.get(&format!("wasmcustom.laneway.{name}")).copied();
    // Eight tokens were refused (seven on the key member, one in a
    // query); four were honoured (two members, two preview requests).
    assert_eq!(stat("ingress.signature_refused"), Some(8));
    assert_eq!(stat("ingress.trusted_signature"), Some(4));
    assert_eq!(stat("ingress.trusted_source"), Some(0));
    assert_eq!(stat("preview.injected"), Some(2));
}

#[test]
fn without_use_remote_address_x_forwarded_for_is_the_source() {
    // Envoy's default, use_remote_address: false: Envoy takes the
    // downstream address from the last x-forwarded-for entry, and that is
    // what source.address reads. A client that names a trusted network
    // becomes trusted: an edge must run with use_remote_address: true.
    let config = edge_config();
    let mut edge = Edge::start(&Setup {
        name: "xff",
        config: &config,
        use_remote_address: false,
        concurrency: 1,
        relay: false,
    });
    let fork = Some("decision=fork key=k1 fork=location-k1");
    // (case, x-forwarded-for, the entry, the downstream address Envoy takes)
    type Case<'a> = (&'a str, Option<&'a [u8]>, Option<&'a str>, &'a str);
    let cases: [Case<'_>; 5] = [
        ("no-xff", None, STRIPPED_K1, "127.0.0.1"),
        ("xff-trusted", Some(b"10.1.2.3"), fork, "10.1.2.3"),
        (
            "xff-trusted-last",
            Some(b"192.0.2.77, 10.1.2.3"),
            fork,
            "10.1.2.3",
        ),
        (
            "xff-trusted-first",
            Some(b"10.1.2.3, 192.0.2.77"),
            STRIPPED_K1,
            "192.0.2.77",
        ),
        (
            "xff-not-an-address",
            Some(b"not-an-ip"),
            STRIPPED_K1,
            "127.0.0.1",
        ),
    ];
    let mut served = BTreeMap::new();
    for (case, xff, state, _) in cases {
        let mut headers: Vec<(&str, &[u8])> = vec![("baggage", b"sd-routing-key=k1,user=alice")];
        if let Some(xff) = xff {
            headers.push(("x-forwarded-for", xff));
        }
        let (r, received) = edge.send(case, state, "location", "/", &headers);
        served.insert(
            case,
            (served_by(&r), text(&received[0].all("x-forwarded-for"))),
        );
    }
    let (log, _) = edge.audit();
    for (case, _, state, remote) in cases {
        let line = &log[case][0];
        eprintln!(
            "use_remote_address: false: {case}: source {} (peer {}), served by {}, x-forwarded-for upstream {:?}",
            line.get("remote"),
            line.get("peer"),
            served[case].0,
            served[case].1
        );
        assert_eq!(
            ip(line.get("remote")),
            remote,
            "{case}: the downstream address"
        );
        assert_eq!(ip(line.get("peer")), "127.0.0.1", "{case}: the real peer");
        let want = if state == fork {
            "location@fork(k1)"
        } else {
            "location@baseline"
        };
        assert_eq!(served[case].0, want, "{case}");
    }
}

const TRUSTED_CONFIG: &str = r#"{
  "version": 1,
  "unknown_key": {"policy": "reject"},
  "ingress": {"trusted_cidrs": ["127.0.0.0/8"]},
  "preview": {"hosts": [{"pattern": "*.preview.example.com", "service": "frontend"}],
              "query_param": "sd-routing-key"},
  "loop_guard": {"max_hops": 3},
  "sandboxes": [
    {"key": "k1", "forks": [{"service": "location", "destination": "location-k1"},
                            {"service": "frontend", "destination": "frontend-k1"}]},
    {"key": "gone", "expires_at": "2020-01-01T00:00:00Z",
     "forks": [{"service": "location", "destination": "location-gone"}]},
    {"key": "fresh", "expires_at": "2099-01-01T00:00:00Z",
     "forks": [{"service": "location", "destination": "location-fresh"}]},
    {"key": "mixed", "forks": [
      {"service": "location", "destination": "location-mixed", "expires_at": "2020-01-01T00:00:00Z"},
      {"service": "driver", "destination": "driver-mixed", "expires_at": "2099-01-01T00:00:00Z"}]}
  ]
}"#;

#[test]
fn trusted_edge_previews_loops_expiry_and_rejects() {
    let mut edge = Edge::start(&Setup {
        name: "trusted",
        config: TRUSTED_CONFIG,
        use_remote_address: true,
        concurrency: 1,
        relay: true,
    });
    let fork_k1 = Some("decision=fork key=k1 fork=location-k1");

    // From a trusted network a key needs no signature. The loop guard
    // adds its counter as a line of its own.
    let (r, got) = edge.send(
        "unsigned-key",
        fork_k1,
        "location",
        "/",
        &[("baggage", b"sd-routing-key=k1,user=alice")],
    );
    assert_eq!(
        served_by(&r),
        "location@fork(k1)",
        "unsigned-key: {}",
        r.text()
    );
    assert_eq!(got[0].all("host"), [b"location-k1"]);
    assert_eq!(
        text(&got[0].all("baggage")),
        ["sd-routing-key=k1,user=alice", "laneway-hops=1"]
    );
    let (r, got) = edge.send(
        "tracestate-key",
        fork_k1,
        "location",
        "/",
        &[("tracestate", b"rojo=00f067aa0ba902b7,sd-routing-key=k1")],
    );
    assert_eq!(served_by(&r), "location@fork(k1)", "tracestate-key");
    assert_eq!(
        got[0].all("tracestate"),
        [b"rojo=00f067aa0ba902b7,sd-routing-key=k1"]
    );
    assert_eq!(text(&got[0].all("baggage")), ["laneway-hops=1"]);

    // Preview entry points: the key is injected for the next hops.
    let fork_frontend = Some("decision=fork key=k1 fork=frontend-k1");
    let (r, got) = edge.send(
        "preview-host",
        fork_frontend,
        "k1.preview.example.com",
        "/",
        &[],
    );
    assert_eq!(
        served_by(&r),
        "frontend@fork(k1)",
        "preview-host: {}",
        r.text()
    );
    assert_eq!(got[0].all("host"), [b"frontend-k1"]);
    assert_eq!(
        text(&got[0].all("baggage")),
        ["sd-routing-key=k1,laneway-hops=1"]
    );
    let (r, got) = edge.send(
        "preview-query",
        fork_frontend,
        "frontend",
        "/cart?sd-routing-key=k1",
        &[],
    );
    assert_eq!(
        served_by(&r),
        "frontend@fork(k1)",
        "preview-query: {}",
        r.text()
    );
    assert_eq!(
        got[0].path, "/cart",
        "preview-query: the parameter is removed"
    );
    assert_eq!(
        text(&got[0].all("baggage")),
        ["sd-routing-key=k1,laneway-hops=1"]
    );
    let (r, got) = edge.send("untagged", None, "location", "/", &[]);
    assert_eq!(served_by(&r), "location@baseline");
    assert!(got[0].all("baggage").is_empty());

    // The loop guard: a request that has crossed max_hops is answered
    // 508; one below has its counter raised.
    let (r, got) = edge.send(
        "hops-3",
        Some("decision=looped key=k1"),
        "location",
        "/",
        &[("baggage", b"sd-routing-key=k1,laneway-hops=3")],
    );
    assert_eq!(r.status, 508, "hops-3: {}", r.text());
    assert_eq!(r.header("x-laneway-decision").as_deref(), Some("looped"));
    assert_eq!(
        r.text(),
        "routing key k1 has crossed 4 hops, more than the loop guard allows; is there a call cycle?\n"
    );
    assert!(
        got.is_empty(),
        "hops-3: a looped request reaches no upstream"
    );
    let (r, got) = edge.send(
        "hops-1",
        fork_k1,
        "location",
        "/",
        &[("baggage", b"sd-routing-key=k1,laneway-hops=1")],
    );
    assert_eq!(served_by(&r), "location@fork(k1)", "hops-1");
    assert_eq!(
        text(&got[0].all("baggage")),
        ["sd-routing-key=k1,laneway-hops=2"]
    );

    // A real cycle: relay calls relay through Envoy with the context it
    // got; the fourth decision is stopped, and the 508 travels back.
    let relayed = Some("decision=no_fork key=k1");
    edge.expect("cycle+", relayed);
    edge.expect("cycle++", relayed);
    edge.expect("cycle+++", Some("decision=looped key=k1"));
    let (r, _) = edge.send(
        "cycle",
        relayed,
        "relay",
        "/",
        &[("baggage", b"sd-routing-key=k1")],
    );
    assert_eq!(r.status, 508, "cycle: {}", r.text());
    assert_eq!(
        r.text(),
        "relay got laneway-hops=1\nrelay got laneway-hops=2\nrelay got laneway-hops=3\n\
         routing key k1 has crossed 4 hops, more than the loop guard allows; is there a call cycle?\n"
    );

    // Expiry, of a sandbox and of one fork.
    let cases = [
        (
            "expired-sandbox",
            "gone",
            "location",
            "decision=expired key=gone",
            "location@baseline",
        ),
        (
            "live-sandbox",
            "fresh",
            "location",
            "decision=fork key=fresh fork=location-fresh",
            "location@fork(fresh)",
        ),
        (
            "expired-fork",
            "mixed",
            "location",
            "decision=expired key=mixed",
            "location@baseline",
        ),
        (
            "live-fork",
            "mixed",
            "driver",
            "decision=fork key=mixed fork=driver-mixed",
            "driver@fork(mixed)",
        ),
    ];
    for (case, key, host, state, want) in cases {
        let baggage = format!("sd-routing-key={key}");
        let (r, _) = edge.send(
            case,
            Some(state),
            host,
            "/",
            &[("baggage", baggage.as_bytes())],
        );
        assert_eq!(served_by(&r), want, "{case}: {}", r.text());
    }

    // An unknown key under the reject policy.
    let (r, got) = edge.send(
        "unknown-key",
        Some("decision=rejected key=nosuch"),
        "location",
        "/",
        &[("baggage", b"sd-routing-key=nosuch")],
    );
    assert_eq!(r.status, 421, "unknown-key: {}", r.text());
    assert_eq!(r.header("x-laneway-decision").as_deref(), Some("rejected"));
    assert_eq!(r.text(), "routing key nosuch has no sandbox\n");
    assert!(got.is_empty());

    let (_, stats) = edge.audit();
    let keyed = edge.expected.iter().filter(|(_, s)| s != "-").count() as u64;
    let stat = |name: &str| stats.get(&format!("wasmcustom.laneway.{name}")).copied();
    assert_eq!(
        stat("ingress.trusted_source"),
        Some(keyed),
        "every keyed request"
    );
    assert_eq!(stat("ingress.trusted_signature"), Some(0));
    assert_eq!(stat("preview.injected"), Some(2));
}

/// The rate-limited sandbox's limit.
const BURST: u64 = 20;
const RATE: u64 = 2;
const RATE_CONFIG: &str = r#"{
  "version": 1,
  "sandboxes": [
    {"key": "rl", "rate_limit": {"requests_per_second": 2, "burst": 20},
     "forks": [{"service": "location", "destination": "location-rl"}]}
  ]
}"#;

#[test]
fn rate_limit_is_shared_by_both_workers() {
    const WORKERS: u32 = 2;
    const CONNECTIONS: usize = 8;
    const RUN: Duration = Duration::from_secs(3);
    let edge = Edge::start(&Setup {
        name: "rate",
        config: RATE_CONFIG,
        use_remote_address: true,
        concurrency: WORKERS,
        relay: false,
    });
    // Every connection sends three tagged requests, then an untagged one,
    // each on a connection of its own, until the run is over.
    let listener = edge.listener;
    let start = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let sent = sent.clone();
            thread::spawn(move || {
                let mut out = Vec::new();
                let mut i = 0u64;
                while start.elapsed() < RUN {
                    let tagged = i % 4 != 3;
                    i += 1;
                    let mut headers: Vec<(&str, &[u8])> = vec![("host", b"location")];
                    if tagged {
                        headers.push(("baggage", b"sd-routing-key=rl"));
                    }
                    let r = client::get(listener, "/", &headers).expect("a request through envoy");
                    sent.fetch_add(1, Ordering::Relaxed);
                    out.push((tagged, r));
                }
                out
            })
        })
        .collect();
    let results: Vec<(bool, Response)> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("a client thread"))
        .collect();
    let elapsed = start.elapsed();

    let mut accepted = 0u64;
    let mut limited = 0u64;
    let mut untagged = 0u64;
    for (tagged, r) in &results {
        match (tagged, r.status) {
            (false, status) => {
                assert_eq!(status, 200, "an untagged request is never limited");
                assert_eq!(served_by(r), "location@baseline");
                untagged += 1;
            }
            (true, 200) => {
                assert_eq!(served_by(r), "location@fork(rl)");
                accepted += 1;
            }
            (true, 429) => {
                assert_eq!(r.header("x-laneway-decision").as_deref(), Some("limited"));
                assert_eq!(
                    r.text(),
                    "routing key rl is over its rate limit of 2 requests per second (burst 20)\n"
                );
                limited += 1;
            }
            (true, status) => panic!("unexpected status {status}: {}", r.text()),
        }
    }
    let stats = edge.envoy.stats().expect("stats");
    let mut per_worker: Vec<(String, u64)> = stats
        .iter()
        .filter(|(k, _)| {
            // Named after the configured address, port 0.
            k.starts_with("listener.127.0.0.1_0.worker_") && k.ends_with(".downstream_cx_total")
        })
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    per_worker.sort();
    let contended = stats
        .get("wasmcustom.laneway.rate_limit.contended")
        .copied();
    eprintln!(
        "rate limit {RATE}/s burst {BURST}, {WORKERS} workers, {CONNECTIONS} clients, {:.3} s: \
         {} requests ({untagged} untagged, all 200): {accepted} tagged accepted, {limited} limited (429); \
         contended {contended:?}; connections per worker {per_worker:?}",
        elapsed.as_secs_f64(),
        results.len()
    );
    assert_eq!(per_worker.len(), WORKERS as usize, "{per_worker:?}");
    assert!(
        per_worker.iter().all(|(_, n)| *n > 0),
        "both workers served connections: {per_worker:?}"
    );
    // The bucket starts full and refills at RATE per second. Tolerance:
    // two workers that both find no bucket yet both write a full one (a
    // first write is unconditional), so at most one extra token per worker.
    let tolerance = u64::from(WORKERS);
    let refill = (RATE as f64 * elapsed.as_secs_f64()).floor() as u64;
    let upper = BURST + refill + tolerance;
    // At least the burst and the refill over all but the last second
    // (requests keep coming until the end, so every refilled token is taken).
    let lower = BURST + (RATE as f64 * (elapsed.as_secs_f64() - 1.0)).floor() as u64;
    assert!(
        (lower..=upper).contains(&accepted),
        "accepted {accepted}, want {lower}..={upper}"
    );
    assert!(limited > 0, "the limit was never reached");

    // The audit: counters and one access-log line per request.
    let count = |r: Reason| {
        stats
            .get(&format!("wasmcustom.laneway.decision.{r}"))
            .copied()
    };
    assert_eq!(count(Reason::Fork), Some(accepted));
    assert_eq!(count(Reason::Limited), Some(limited));
    assert_eq!(count(Reason::NoKey), Some(untagged));
    assert_eq!(stats.get("wasmcustom.laneway.host_errors"), Some(&0));
    let lines = edge.log_lines(results.len());
    let mut states = BTreeMap::<&str, u64>::new();
    for l in &lines {
        *states.entry(l.state.as_str()).or_default() += 1;
    }
    assert_eq!(
        states,
        BTreeMap::from([
            ("-", untagged),
            ("decision=fork key=rl fork=location-rl", accepted),
            ("decision=limited key=rl", limited),
        ]),
        "the access log"
    );
    assert_eq!(sent.load(Ordering::Relaxed), results.len() as u64);
}

/// Filter bug, found by this file: the preview step, which removes the
/// key parameter and `laneway-sig` from `:path`, runs only when the
/// headers carry no key or look-alike (`Router::guard`'s ingress branch),
/// so adding any baggage look-alike makes the edge forward a valid token
/// in the URL to the upstream (and its logs). The design says the
/// parameters are removed always. Ignored until the filter is fixed.
#[test]
fn preview_parameters_leave_the_path_even_when_headers_carry_a_key() {
    let config = edge_config();
    let mut edge = Edge::start(&Setup {
        name: "preview-bug",
        config: &config,
        use_remote_address: true,
        concurrency: 1,
        relay: false,
    });
    let good = token(SECRET, "k1", now_s() + 3600);
    let path = format!("/x?sd-routing-key=k1&laneway-sig={good}");
    let (r, got) = edge.send(
        "forged-header-and-signed-query",
        STRIPPED_K1,
        "frontend",
        &path,
        &[("baggage", b"sd-routing-key=k1")],
    );
    assert_eq!(served_by(&r), "frontend@baseline");
    assert_eq!(got[0].path, "/x", "the token must not reach the upstream");
}
