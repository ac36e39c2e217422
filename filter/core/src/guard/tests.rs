//! The guards in the core, one case per threat: every spoofing shape the
//! ingress must stop, preview entry points, the loop guard, expiry and
//! the shared token bucket.

use std::collections::HashMap;
use std::string::String;
use std::vec::Vec;

use super::*;
use crate::cidr;
use crate::decide::Decision;

const SECRET: &str = "bGFuZXdheS10ZXN0LXNlY3JldC0wMDAwMDAwMDAwMDAwMDAwMDA="; // 38 bytes
const SECRET2: &str = "c2Vjb25kLWxhbmV3YXktdGVzdC1zZWNyZXQtMTExMTExMTExMTE=";
const NOW_S: u64 = 1_800_000_000;

fn config(extra: &str) -> Router {
    let text = format!(
        r#"{{"version":1,{extra}
            "sandboxes":[
              {{"key":"k1","forks":[{{"service":"frontend","destination":"frontend-k1"}},
                                    {{"service":"cart","destination":"cart-k1","expires_at":"2027-01-15T00:00:00Z"}}]}},
              {{"key":"k2","expires_at":"2027-01-10T00:00:00Z","rate_limit":{{"requests_per_second":1,"burst":2}},
                "forks":[{{"service":"cart","destination":"cart-k2"}}]}}]}}"#
    );
    Router::from_json(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn edge() -> Router {
    config(&format!(
        r#""ingress":{{"trusted_cidrs":["10.0.0.0/8","fd00::/8"],"secrets":["{SECRET}","{SECRET2}"]}},
           "preview":{{"hosts":[{{"pattern":"*.preview.example.com","service":"frontend"}}],"query_param":"sd-routing-key"}},"#
    ))
}

#[derive(Default)]
struct Fake {
    source: Option<&'static str>,
    now_ns: Option<u64>,
    shared: HashMap<Vec<u8>, (Vec<u8>, u32)>,
    /// Every set loses its compare-and-swap.
    always_mismatch: bool,
    asked_source: usize,
    asked_clock: usize,
}

impl Fake {
    fn from(source: &'static str) -> Fake {
        Fake {
            source: Some(source),
            now_ns: Some(NOW_S * 1_000_000_000),
            ..Fake::default()
        }
    }
}

impl Facts for Fake {
    fn source(&mut self) -> Option<cidr::Ip> {
        self.asked_source += 1;
        self.source.and_then(|s| cidr::parse_source(s.as_bytes()))
    }
    fn now_ns(&mut self) -> Option<u64> {
        self.asked_clock += 1;
        self.now_ns
    }
    fn shared_get(&mut self, key: &[u8], out: &mut [u8; BUCKET_BYTES]) -> Result<Option<u32>, ()> {
        Ok(self.shared.get(key).map(|(v, cas)| {
            out.copy_from_slice(v);
            *cas
        }))
    }
    fn shared_set(&mut self, key: &[u8], value: &[u8], cas: u32) -> Result<bool, ()> {
        if self.always_mismatch {
            return Ok(false);
        }
        let current = self.shared.get(key).map_or(0, |(_, c)| *c);
        if cas != 0 && cas != current {
            return Ok(false);
        }
        self.shared
            .insert(key.to_vec(), (value.to_vec(), current + 1));
        Ok(true)
    }
}

fn run<'h>(
    router: &Router,
    authority: &'h str,
    path: &'h str,
    baggage: &'h [&'h str],
    tracestate: &'h [&'h str],
    facts: &mut Fake,
) -> Outcome<'h> {
    router.guard(
        Request {
            authority: authority.as_bytes(),
            baggage: baggage.iter().map(|s| s.as_bytes()),
            tracestate: tracestate.iter().map(|s| s.as_bytes()),
        },
        path.as_bytes(),
        facts,
    )
}

fn signed(secret: &str, key: &str, exp: u64) -> String {
    let secret = signature::Secret::from_config(secret).unwrap();
    let mut buf = [0u8; signature::TOKEN_LEN_MAX];
    let n = signature::sign(&secret, key.as_bytes(), exp, &mut buf).unwrap();
    format!(
        "sd-routing-key={key};laneway-sig={}",
        std::str::from_utf8(&buf[..n]).unwrap()
    )
}

const OUTSIDE: &str = "203.0.113.9:40000";

/// Every spoofing shape from an untrusted source: the request goes to the
/// baseline with its look-alikes removed, or (where the parser finds no
/// key and nothing looks like one) untouched and unrouted.
#[test]
fn spoofed_keys_from_outside_are_stripped() {
    let r = edge();
    let valid = signed(SECRET, "k1", NOW_S + 3600);
    let wrong_sig = {
        let mut s = signed(SECRET, "k1", NOW_S + 3600);
        let last = s.pop().unwrap();
        s.push(if last == 'A' { 'B' } else { 'A' });
        s
    };
    let expired = signed(SECRET, "k1", NOW_S - 1);
    let other_key = signed(SECRET, "k2", NOW_S + 3600).replace("=k2;", "=k1;");
    let too_far = signed(SECRET, "k1", NOW_S + 8 * 24 * 3600);
    let foreign_secret = signed(
        "b3RoZXItc2VjcmV0LW5vdC1jb25maWd1cmVkLTAwMDAwMDAwMDA=",
        "k1",
        NOW_S + 3600,
    );
    let padding = "x".repeat(9000);
    let oversized = format!("pad={padding},sd-routing-key=k1");
    let upper_signed = valid.replace("sd-routing-key", "SD-ROUTING-KEY");
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<&'a str>, Decision, Trust);
    let cases: Vec<Case<'_>> = vec![
        (
            "forged key",
            vec!["sd-routing-key=k1"],
            vec![],
            Decision::Stripped,
            Trust::Untrusted(None),
        ),
        (
            "wrong signature",
            vec![&wrong_sig],
            vec![],
            Decision::Stripped,
            Trust::Untrusted(Some(signature::Check::BadSignature)),
        ),
        (
            "expired signature",
            vec![&expired],
            vec![],
            Decision::Stripped,
            Trust::Untrusted(Some(signature::Check::Expired)),
        ),
        (
            "signature for another key",
            vec![&other_key],
            vec![],
            Decision::Stripped,
            Trust::Untrusted(Some(signature::Check::BadSignature)),
        ),
        (
            "signature valid too long",
            vec![&too_far],
            vec![],
            Decision::Stripped,
            Trust::Untrusted(Some(signature::Check::TooFar)),
        ),
        (
            "a secret not configured",
            vec![&foreign_secret],
            vec![],
            Decision::Stripped,
            Trust::Untrusted(Some(signature::Check::BadSignature)),
        ),
        (
            "duplicated members",
            vec!["sd-routing-key=k1,sd-routing-key=k1"],
            vec![],
            Decision::Stripped,
            Trust::Untrusted(None),
        ),
        (
            "second baggage line",
            vec!["a=1", "sd-routing-key=k1"],
            vec![],
            Decision::Stripped,
            Trust::Untrusted(None),
        ),
        (
            "tracestate only",
            vec![],
            vec!["sd-routing-key=k1"],
            Decision::Stripped,
            Trust::Untrusted(None),
        ),
        (
            "upper case",
            vec!["SD-ROUTING-KEY=k1"],
            vec![],
            Decision::Stripped,
            Trust::Untrusted(None),
        ),
        (
            "mixed case in tracestate",
            vec![],
            vec!["Sd-Sandbox=k1"],
            Decision::Stripped,
            Trust::Untrusted(None),
        ),
        (
            "percent-encoded name",
            vec!["%73d-routing-key=k1"],
            vec![],
            Decision::Stripped,
            Trust::Untrusted(None),
        ),
        (
            "encoded equals",
            vec!["sd-routing-key%3Dk1"],
            vec![],
            Decision::Stripped,
            Trust::Untrusted(None),
        ),
        (
            "past the limits",
            vec![&oversized],
            vec![],
            Decision::Stripped,
            Trust::Untrusted(None),
        ),
        (
            "OWS and empty elements",
            vec![" ,\t, sd-routing-key \t= k1 ,,"],
            vec![],
            Decision::Stripped,
            Trust::Untrusted(None),
        ),
        (
            "the signature of a valid key on a look-alike",
            vec![&upper_signed],
            vec![],
            Decision::Stripped,
            Trust::Untrusted(None),
        ),
    ];
    for (name, baggage, tracestate, want, trust) in &cases {
        let mut facts = Fake::from(OUTSIDE);
        let out = run(&r, "frontend", "/", baggage, tracestate, &mut facts);
        assert_eq!((out.verdict.decision, out.trust), (*want, *trust), "{name}");
        assert!(out.edits.strip, "{name}: strip");
        assert_eq!(out.host_errors, 0, "{name}");
        // What the edit leaves carries no key, for the core or any
        // look-alike reader.
        let names = r.member_names();
        let mut buf = [0u8; rewrite::MAX_LINE];
        let mut changed = 0;
        for line in baggage.iter().chain(tracestate) {
            let e = rewrite::edit_line(line.as_bytes(), Some(names), None, &mut buf);
            let left = match e.edit {
                rewrite::LineEdit::Rewritten(n) => &buf[..n],
                rewrite::LineEdit::Unchanged => line.as_bytes(),
                _ => &[][..],
            };
            changed += usize::from(e.edit != rewrite::LineEdit::Unchanged);
            assert!(
                !rewrite::has_lookalike([left].into_iter(), names),
                "{name}: {left:?}"
            );
            let decided = r.decide(Request {
                authority: b"frontend",
                baggage: [left].into_iter(),
                tracestate: core::iter::empty(),
            });
            assert_eq!(decided.key, None, "{name}");
        }
        assert!(changed > 0, "{name}: some line is edited");
    }
}

/// A signature vouches for its key alone: a second key, a look-alike, a
/// key past the limits or in tracestate beside it makes the request
/// untrusted, and everything is stripped. Preview parameters leave the
/// path whatever the headers carry.
#[test]
fn a_signed_key_brings_nothing_else_through() {
    let r = edge();
    let valid = signed(SECRET, "k1", NOW_S + 600);
    let hidden = format!("pad={},sd-routing-key=k2", "x".repeat(9000));
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec![&valid, "sd-routing-key=k2"], vec![]),
        (vec![&valid, "SD-Routing-Key=k2"], vec![]),
        (vec![&valid, &hidden], vec![]),
        (vec![&valid], vec!["sd-routing-key=k2"]),
        (vec![&valid], vec!["sd-sandbox=k2"]),
    ];
    for (baggage, tracestate) in &cases {
        let mut facts = Fake::from(OUTSIDE);
        let out = run(&r, "frontend", "/", baggage, tracestate, &mut facts);
        assert_eq!(
            (out.verdict.decision, out.trust, out.edits.strip),
            (Decision::Stripped, Trust::Untrusted(None), true),
            "{baggage:?} {tracestate:?}"
        );
    }
    // The same key again, or with OWS, is the signed key.
    let again = [valid.as_str(), " sd-routing-key = k1 "];
    let mut facts = Fake::from(OUTSIDE);
    let out = run(
        &r,
        "frontend",
        "/",
        &again,
        &["sd-routing-key=k1"],
        &mut facts,
    );
    assert_eq!(out.trust, Trust::Signature);
    assert!(matches!(out.verdict.decision, Decision::Fork(_)));

    let path = "/x?sd-routing-key=k1&laneway-sig=v1.1.x";
    let mut facts = Fake::from(OUTSIDE);
    let out = run(
        &r,
        "frontend",
        path,
        &["sd-routing-key=k1"],
        &[],
        &mut facts,
    );
    assert_eq!(out.verdict.decision, Decision::Stripped);
    assert!(
        out.edits.path,
        "the parameters go even when the headers carry a key"
    );
}

/// A key in a property is no key (W3C Baggage): nothing is routed, and
/// nothing is edited.
#[test]
fn a_key_in_a_property_is_no_key_and_is_left_alone() {
    let r = edge();
    let mut facts = Fake::from(OUTSIDE);
    let out = run(
        &r,
        "frontend",
        "/",
        &["user=a;sd-routing-key=k1"],
        &[],
        &mut facts,
    );
    assert_eq!(out.verdict.decision, Decision::NoKey);
    assert_eq!(out.trust, Trust::NotChecked);
    assert_eq!(out.edits, Edits::default());
    assert_eq!(facts.asked_source, 0, "nothing to judge: no host call");
}

#[test]
fn trusted_sources_and_valid_signatures_route() {
    let r = edge();
    for source in ["10.1.2.3:5000", "[fd00::7]:443", "[::ffff:10.9.9.9]:1"] {
        let mut facts = Fake::from(source);
        let out = run(&r, "frontend", "/", &["sd-routing-key=k1"], &[], &mut facts);
        assert_eq!(out.trust, Trust::Source, "{source}");
        assert!(
            matches!(out.verdict.decision, Decision::Fork(_)),
            "{source}"
        );
        assert!(!out.edits.strip);
        assert_eq!(facts.asked_clock, 0, "no signature to check: no clock");
    }
    for secret in [SECRET, SECRET2] {
        let line = signed(secret, "k1", NOW_S + 60);
        let lines = [line.as_str()];
        let mut facts = Fake::from(OUTSIDE);
        let out = run(&r, "frontend", "/", &lines, &[], &mut facts);
        assert_eq!(out.trust, Trust::Signature);
        assert!(matches!(out.verdict.decision, Decision::Fork(_)));
    }
    // An unknown source address is no trust, and a host error.
    let mut facts = Fake {
        source: None,
        ..Fake::from(OUTSIDE)
    };
    let out = run(&r, "frontend", "/", &["sd-routing-key=k1"], &[], &mut facts);
    assert_eq!(
        (out.verdict.decision, out.host_errors),
        (Decision::Stripped, 1)
    );
}

/// Untagged traffic through an edge: no host call at all.
#[test]
fn untagged_requests_cost_the_edge_nothing() {
    let r = edge();
    let mut facts = Fake::from(OUTSIDE);
    let out = run(&r, "frontend", "/x?y=1", &["user=alice"], &[], &mut facts);
    assert_eq!(out.verdict.decision, Decision::NoKey);
    assert_eq!((facts.asked_source, facts.asked_clock), (0, 0));
    assert_eq!(out.edits, Edits::default());
}

#[test]
fn preview_hosts_and_query_parameters_inject_a_trusted_key() {
    let r = edge();
    let mut facts = Fake::from("10.0.0.5:1");
    let out = run(&r, "k1.preview.example.com", "/", &[], &[], &mut facts);
    assert!(matches!(out.verdict.decision, Decision::Fork(_)), "{out:?}");
    assert_eq!(out.edits.inject, Some(&b"k1"[..]));
    assert_eq!(out.edits.preview_host, Some(0));
    assert_eq!(r.preview_service(0), b"frontend");

    // From outside: only with a signature, given in the query.
    let token = signed(SECRET, "k1", NOW_S + 60);
    let sig = token.split("laneway-sig=").nth(1).unwrap();
    let path = format!("/a?sd-routing-key=k1&laneway-sig={sig}");
    let mut facts = Fake::from(OUTSIDE);
    let out = run(&r, "frontend:80", &path, &[], &[], &mut facts);
    assert_eq!(out.trust, Trust::Signature);
    assert!(matches!(out.verdict.decision, Decision::Fork(_)));
    assert!(out.edits.path && out.edits.inject.is_some());

    let mut facts = Fake::from(OUTSIDE);
    let out = run(&r, "k1.preview.example.com", "/?q=1", &[], &[], &mut facts);
    assert_eq!(out.verdict.decision, Decision::Stripped);
    assert_eq!(out.edits.inject, None);

    // The parameter goes even when it is not trusted.
    let mut facts = Fake::from(OUTSIDE);
    let out = run(&r, "frontend", "/a?sd-routing-key=k1", &[], &[], &mut facts);
    assert_eq!(out.verdict.decision, Decision::Stripped);
    assert!(out.edits.path);

    // Only configured patterns; a nested label is no key.
    for host in [
        "k1.preview.example.org",
        "a.k1.preview.example.com",
        ".preview.example.com",
    ] {
        let mut facts = Fake::from("10.0.0.5:1");
        let out = run(&r, host, "/", &[], &[], &mut facts);
        assert_eq!(out.verdict.decision, Decision::NoKey, "{host}");
        assert_eq!(out.edits, Edits::default(), "{host}");
    }
    // Host and query disagree: neither is used.
    let mut facts = Fake::from("10.0.0.5:1");
    let out = run(
        &r,
        "k1.preview.example.com",
        "/?sd-routing-key=k2",
        &[],
        &[],
        &mut facts,
    );
    assert_eq!(out.verdict.decision, Decision::Conflict);
    assert_eq!(out.edits.inject, None);
}

#[test]
fn the_loop_guard_stops_the_hop_past_the_limit() {
    let r = config(r#""loop_guard":{"max_hops":3},"#);
    let mut facts = Fake::from(OUTSIDE);
    let out = run(
        &r,
        "frontend",
        "/",
        &["sd-routing-key=k1,laneway-hops=2"],
        &[],
        &mut facts,
    );
    assert!(matches!(out.verdict.decision, Decision::Fork(_)));
    assert_eq!(out.edits.hops, Some(3));
    let out = run(
        &r,
        "frontend",
        "/",
        &["sd-routing-key=k1,laneway-hops=3"],
        &[],
        &mut facts,
    );
    assert_eq!(out.verdict.decision, Decision::Looped);
    assert_eq!((out.hops, out.status(&r)), (Some(4), LOOPED_STATUS));
    // Untagged traffic is not counted, nor touched.
    let out = run(&r, "frontend", "/", &["laneway-hops=99"], &[], &mut facts);
    assert_eq!(
        (out.verdict.decision, out.edits.hops),
        (Decision::NoKey, None)
    );
}

#[test]
fn expired_sandboxes_and_forks_go_to_the_baseline() {
    let r = config("");
    let at = |rfc: &str| crate::rfc3339::parse(rfc.as_bytes()).unwrap();
    let mut facts = Fake::from(OUTSIDE);
    facts.now_ns = Some(at("2027-01-12T00:00:00Z"));
    // k2 expired on the 10th; k1's cart fork on the 15th.
    let out = run(&r, "cart", "/", &["sd-routing-key=k2"], &[], &mut facts);
    assert_eq!(out.verdict.decision, Decision::Expired);
    let out = run(&r, "cart", "/", &["sd-routing-key=k1"], &[], &mut facts);
    assert!(matches!(out.verdict.decision, Decision::Fork(_)));
    facts.now_ns = Some(at("2027-01-15T00:00:00Z"));
    let out = run(&r, "cart", "/", &["sd-routing-key=k1"], &[], &mut facts);
    assert_eq!(out.verdict.decision, Decision::Expired);
    let out = run(&r, "frontend", "/", &["sd-routing-key=k1"], &[], &mut facts);
    assert!(
        matches!(out.verdict.decision, Decision::Fork(_)),
        "frontend's fork never expires"
    );
    // No clock: fail safe, counted.
    facts.now_ns = None;
    let out = run(&r, "cart", "/", &["sd-routing-key=k1"], &[], &mut facts);
    assert_eq!(
        (out.verdict.decision, out.host_errors),
        (Decision::Expired, 1)
    );
    // A sandbox without an expiry never asks for the clock.
    let r = config("");
    let mut facts = Fake::from(OUTSIDE);
    run(&r, "frontend", "/", &["sd-routing-key=k1"], &[], &mut facts);
    assert_eq!(facts.asked_clock, 0);
}

#[test]
fn the_token_bucket_limits_a_key_and_never_the_baseline() {
    let r = config(r#""rate_limit":{"requests_per_second":10,"burst":3},"#);
    let mut facts = Fake::from(OUTSIDE);
    let t0 = at_s(NOW_S);
    facts.now_ns = Some(t0);
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(
            run(&r, "frontend", "/", &["sd-routing-key=k1"], &[], &mut facts)
                .verdict
                .decision,
        );
    }
    assert!(matches!(got[2], Decision::Fork(_)));
    assert_eq!(&got[3..], [Decision::Limited, Decision::Limited]);
    let out = run(&r, "frontend", "/", &["sd-routing-key=k1"], &[], &mut facts);
    assert_eq!(
        (out.limit, out.status(&r)),
        (r_limit(10, 3), LIMITED_STATUS)
    );
    // 100 ms later: one token back (10 per second).
    facts.now_ns = Some(t0 + 100_000_000);
    assert!(matches!(
        run(&r, "frontend", "/", &["sd-routing-key=k1"], &[], &mut facts)
            .verdict
            .decision,
        Decision::Fork(_)
    ));
    assert_eq!(
        run(&r, "frontend", "/", &["sd-routing-key=k1"], &[], &mut facts)
            .verdict
            .decision,
        Decision::Limited
    );
    // The baseline, and keys of no sandbox, are never limited.
    for _ in 0..100 {
        assert_eq!(
            run(&r, "frontend", "/", &[], &[], &mut facts)
                .verdict
                .decision,
            Decision::NoKey
        );
        assert_eq!(
            run(
                &r,
                "frontend",
                "/",
                &["sd-routing-key=nope"],
                &[],
                &mut facts
            )
            .verdict
            .decision,
            Decision::UnknownKey
        );
    }
    // k2's own limit (1/s, burst 2) replaces the default (before k2
    // expires on 2027-01-10).
    let mut facts = Fake::from(OUTSIDE);
    facts.now_ns = Some(crate::rfc3339::parse(b"2027-01-01T00:00:00Z").unwrap());
    let got: Vec<Decision> = (0..3)
        .map(|_| {
            run(&r, "cart", "/", &["sd-routing-key=k2"], &[], &mut facts)
                .verdict
                .decision
        })
        .collect();
    assert_eq!(got[2], Decision::Limited, "{got:?}");
    // A store that never lets a compare-and-swap through: let through.
    let mut facts = Fake {
        always_mismatch: true,
        ..Fake::from(OUTSIDE)
    };
    let out = run(&r, "frontend", "/", &["sd-routing-key=k1"], &[], &mut facts);
    assert!(out.contended && matches!(out.verdict.decision, Decision::Fork(_)));
}

fn at_s(s: u64) -> u64 {
    s * 1_000_000_000
}

fn r_limit(rps: u32, burst: u32) -> Option<RateLimit> {
    Some(RateLimit {
        requests_per_second: rps,
        burst,
    })
}

#[test]
fn a_bucket_refills_at_its_rate_and_caps_at_its_burst() {
    let limit = RateLimit {
        requests_per_second: 2,
        burst: 4,
    };
    let mut b = Bucket::full(limit, 0);
    for _ in 0..4 {
        let (ok, next) = b.take(limit, 0);
        assert!(ok);
        b = next;
    }
    assert!(!b.take(limit, 0).0);
    assert!(
        b.take(limit, 500_000_000).0,
        "half a second: one token at 2/s"
    );
    assert_eq!(
        b.take(limit, 3600 * 1_000_000_000).1.milli,
        3000,
        "capped at the burst"
    );
    assert_eq!(Bucket::decode(&b.encode()), b);
    // A clock that goes back refills nothing.
    let (_, later) = b.take(limit, 10);
    assert_eq!(later.take(limit, 5).1.at_ns, 10);
}
