use super::*;
use crate::authority::MAX_FORK_AUTHORITY;
use alloc::vec::Vec;
use proptest::prelude::*;

fn router() -> Router {
    Router::from_json(
        r#"{"version": 1, "sandboxes": [
            {"key": "k", "forks": [
                {"service": "location", "destination": "location-k"},
                {"service": "driver", "destination": "driver-k:9090"}
            ]}
        ]}"#,
    )
    .expect("valid")
}

fn decide<'h>(r: &Router, authority: &'h [u8], baggage: &'h [u8]) -> Verdict<'h> {
    r.decide(Request {
        authority,
        baggage: [baggage],
        tracestate: [],
    })
}

#[test]
fn reasons_round_trip_through_their_names() {
    for (i, r) in Reason::ALL.into_iter().enumerate() {
        assert_eq!(r.index(), i);
        assert_eq!(Reason::from_name(r.as_str().as_bytes()), Some(r));
    }
    assert_eq!(Reason::from_name(b"forked"), None);
    for route in [Route::Fork, Route::Baseline, Route::Reject] {
        assert_eq!(Route::from_name(route.as_str().as_bytes()), Some(route));
    }
}

/// Regression (issue 7): the core forked `location:` followed by 400
/// digits, which the filter's 320-byte buffer could not hold, so Envoy
/// sent the request to the baseline while the core said fork.
#[test]
fn an_authority_with_400_digits_of_port_is_not_forked() {
    let r = router();
    let mut authority = b"location:".to_vec();
    authority.extend(core::iter::repeat_n(b'4', 400));
    let v = decide(&r, &authority, b"sd-routing-key=k");
    assert_eq!(v.decision, Decision::NoFork);
    let v = decide(&r, b"location:65535", b"sd-routing-key=k");
    let Decision::Fork(id) = v.decision else {
        panic!("{v:?}")
    };
    let mut buf = [0u8; MAX_FORK_AUTHORITY];
    assert_eq!(
        r.fork_authority(id, b"location:65535", &mut buf),
        Some(&b"location-k:65535"[..])
    );
}

#[test]
fn the_longest_destination_fits_the_one_buffer() {
    let host = [
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(61),
    ]
    .join(".");
    assert_eq!(host.len(), crate::authority::MAX_HOST);
    let config = alloc::format!(
        r#"{{"version": 1, "sandboxes": [{{"key": "k", "forks": [{{"service": "s", "destination": "{host}"}}]}}]}}"#
    );
    let r = Router::from_json(&config).unwrap();
    let v = decide(&r, b"s:12345", b"sd-routing-key=k");
    let Decision::Fork(id) = v.decision else {
        panic!("{v:?}")
    };
    let mut buf = [0u8; MAX_FORK_AUTHORITY];
    let out = r.fork_authority(id, b"s:12345", &mut buf).unwrap();
    assert_eq!(out.len(), MAX_FORK_AUTHORITY);
    // A destination port of more than five digits is refused up front.
    let long_port = config.replace(&host, "d:000080");
    assert!(Router::from_json(&long_port).is_err());
}

fn authority() -> impl Strategy<Value = Vec<u8>> {
    let host = proptest::sample::select(alloc::vec!["location", "LOCATION.", "driver", "x"]);
    let port = proptest::collection::vec(proptest::char::range('0', '9'), 0..12);
    let junk = proptest::collection::vec(any::<u8>(), 0..8);
    (host, proptest::option::of(port), junk, any::<bool>()).prop_map(|(h, p, junk, noisy)| {
        let mut a = h.as_bytes().to_vec();
        if let Some(p) = p {
            a.push(b':');
            a.extend(p.into_iter().map(|c| c as u8));
        }
        if noisy {
            a.extend(junk);
        }
        a
    })
}

proptest! {
    /// The core never decides a fork the filter cannot write: every fork
    /// decision's `:authority` fits in `MAX_FORK_AUTHORITY` bytes.
    #[test]
    fn every_fork_decision_can_be_delivered(a in authority()) {
        let r = router();
        let v = decide(&r, &a, b"sd-routing-key=k");
        if let Decision::Fork(id) = v.decision {
            let mut buf = [0u8; MAX_FORK_AUTHORITY];
            prop_assert!(r.fork_authority(id, &a, &mut buf).is_some());
        }
    }
}

// The decision against its naive oracle (`crate::naive::decide`): one
// configuration with overlapping names, and requests assembled from the
// pieces that matter (member names, keys, escapes, separators, junk).

const MEMBERS: [&str; 3] = ["sd-routing-key", "sd-sandbox", "x"];
const KEYS: [&str; 4] = ["k1", "k2", "K1", "gone"];

fn oracle_config(reject: bool) -> Config {
    let text = alloc::format!(
        r#"{{"version": 1,
            "routing_key": {{"members": ["sd-routing-key", "sd-sandbox", "x"]}},
            "unknown_key": {{"policy": "{}"}},
            "sandboxes": [
              {{"key": "k1", "forks": [
                {{"service": "location", "destination": "location-k1"}},
                {{"service": "Driver", "destination": "driver-k1:9090"}}]}},
              {{"key": "k2", "forks": [{{"service": "route", "destination": "route-k2"}}]}},
              {{"key": "K1", "forks": []}}
            ]}}"#,
        if reject { "reject" } else { "baseline" }
    );
    Config::from_json(&text).expect("valid")
}

fn piece() -> impl Strategy<Value = Vec<u8>> {
    let words: Vec<Vec<u8>> = MEMBERS
        .iter()
        .chain(KEYS.iter())
        .map(|w| w.as_bytes().to_vec())
        .chain(
            [
                "=",
                ",",
                ";",
                " ",
                "\t",
                "%6B1",
                "%6b2",
                "%zz",
                "%",
                "a",
                "p=1",
                "sd-routing-key=k1",
                "x=k2",
                "sd-sandbox=gone",
            ]
            .iter()
            .map(|w| w.as_bytes().to_vec()),
        )
        .collect();
    prop_oneof![
        8 => proptest::sample::select(words),
        1 => any::<u8>().prop_map(|b| alloc::vec![b]),
    ]
}

fn line() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(piece(), 0..10).prop_map(|p| p.concat())
}

fn request_authority() -> impl Strategy<Value = Vec<u8>> {
    let host = proptest::sample::select(alloc::vec![
        "location", "LOCATION", "driver", "route", "route.", "other", ""
    ]);
    let port = proptest::sample::select(alloc::vec!["", ":80", ":8083", ":", ":123456", ":x"]);
    (host, port).prop_map(|(h, p)| [h.as_bytes(), p.as_bytes()].concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// `Router::decide` agrees with the oracle on the reason, the key (its
    /// decoded value, carrier and member) and the fork's `:authority`.
    #[test]
    fn decide_matches_the_naive_oracle(
        reject in any::<bool>(),
        authority in request_authority(),
        bag in proptest::collection::vec(line(), 0..3),
        ts in proptest::collection::vec(line(), 0..2),
    ) {
        let config = oracle_config(reject);
        let router = Router::new(&config).expect("valid");
        let bag: Vec<&[u8]> = bag.iter().map(Vec::as_slice).collect();
        let ts: Vec<&[u8]> = ts.iter().map(Vec::as_slice).collect();
        let v = router.decide(Request {
            authority: &authority,
            baggage: bag.iter().copied(),
            tracestate: ts.iter().copied(),
        });
        let mut buf = [0u8; MAX_FORK_AUTHORITY];
        let fork = match v.decision {
            Decision::Fork(id) => router.fork_authority(id, &authority, &mut buf).map(<[u8]>::to_vec),
            _ => None,
        };
        let fast = crate::naive::Decided {
            reason: v.decision.reason(),
            key: v.key.map(|k| (k.value.bytes().collect::<Vec<u8>>(), k.carrier, k.member)),
            fork,
        };
        prop_assert_eq!(fast, crate::naive::decide(&config, &authority, &bag, &ts));
    }
}

#[test]
fn oracle_sees_every_reason() {
    // The strategies above reach every outcome; pin one request of each.
    let config = oracle_config(false);
    type Case<'a> = (&'a [u8], &'a [&'a [u8]], &'a [&'a [u8]], Reason);
    let cases: [Case<'_>; 6] = [
        (b"location", &[b"sd-routing-key=k1"], &[], Reason::Fork),
        (b"location", &[], &[], Reason::NoKey),
        (b"route", &[b"x=k1"], &[], Reason::NoFork),
        (b"route", &[b"x=gone"], &[], Reason::UnknownKey),
        (b"route", &[b"x=k1", b"x=k2"], &[], Reason::Conflict),
        (b"route", &[b"x=%zz"], &[], Reason::Malformed),
    ];
    for (authority, bag, ts, want) in cases {
        assert_eq!(
            crate::naive::decide(&config, authority, bag, ts).reason,
            want
        );
    }
    let rejecting = oracle_config(true);
    assert_eq!(
        crate::naive::decide(&rejecting, b"route", &[b"x=gone"], &[]).reason,
        Reason::Rejected
    );
}

fn carriers_router(carriers: &str) -> Router {
    Router::from_json(&alloc::format!(
        r#"{{"version": 1, "routing_key": {{"carriers": {carriers}}}, "sandboxes": [
            {{"key": "k", "forks": [{{"service": "location", "destination": "location-k"}}]}}
        ]}}"#
    ))
    .expect("valid")
}

/// A header left out of `carriers` is not read: its key routes nothing
/// and its malformed value is not counted.
#[test]
fn a_header_outside_the_carriers_is_not_read() {
    let both = |r: &Router, baggage: &'static [u8], tracestate: &'static [u8]| {
        r.decide(Request {
            authority: b"location",
            baggage: [baggage],
            tracestate: [tracestate],
        })
    };
    let baggage_only = carriers_router(r#"["baggage"]"#);
    let tracestate_only = carriers_router(r#"["tracestate"]"#);
    let all = carriers_router(r#"["baggage", "tracestate"]"#);
    let in_tracestate = (&b"other=1"[..], &b"sd-routing-key=k"[..]);
    let in_baggage = (&b"sd-routing-key=k"[..], &b"a=1"[..]);
    let fork = |v: &Verdict<'_>| matches!(v.decision, Decision::Fork(_));
    assert!(fork(&both(&all, in_tracestate.0, in_tracestate.1)));
    assert!(fork(&both(&all, in_baggage.0, in_baggage.1)));
    assert_eq!(
        both(&baggage_only, in_tracestate.0, in_tracestate.1).decision,
        Decision::NoKey
    );
    assert_eq!(
        both(&baggage_only, in_tracestate.0, in_tracestate.1).tracestate,
        TraceStateStatus::Absent
    );
    assert!(fork(&both(&baggage_only, in_baggage.0, in_baggage.1)));
    assert_eq!(
        both(&tracestate_only, in_baggage.0, in_baggage.1).decision,
        Decision::NoKey
    );
    assert!(fork(&both(
        &tracestate_only,
        in_tracestate.0,
        in_tracestate.1
    )));
    // A conflict across headers needs both to be carriers.
    let conflict = (&b"sd-routing-key=k"[..], &b"sd-routing-key=other"[..]);
    assert_eq!(
        both(&all, conflict.0, conflict.1).decision,
        Decision::Conflict
    );
    assert!(fork(&both(&baggage_only, conflict.0, conflict.1)));
    // A malformed tracestate outside the carriers is not even parsed.
    let v = both(&baggage_only, b"a=1", b"not a tracestate");
    assert_eq!(v.decision, Decision::NoKey);
}

/// `decide_with` asks for the `:authority` only when the key names a
/// sandbox, and then once.
#[test]
fn the_authority_is_read_only_for_a_known_key() {
    let r = router();
    let cases: &[(&[u8], bool, Option<Decision>)] = &[
        (b"", false, Some(Decision::NoKey)),
        (b"other=1", false, Some(Decision::NoKey)),
        (b"sd-routing-key=nobody", false, Some(Decision::UnknownKey)),
        (
            b"sd-routing-key=a,sd-routing-key=b",
            false,
            Some(Decision::Conflict),
        ),
        (b"sd-routing-key=k", true, None),
    ];
    for &(baggage, read, want) in cases {
        let mut calls = 0;
        let mut authority = Authority::lazy(|| {
            calls += 1;
            &b"location:8080"[..]
        });
        let v = r.decide_with([baggage], core::iter::empty(), &mut authority);
        assert_eq!(authority.if_read().is_some(), read, "{baggage:?}");
        let _ = authority.get();
        let _ = authority.get();
        assert_eq!(calls, 1, "{baggage:?}: read once, whenever first asked");
        match want {
            Some(d) => assert_eq!(v.decision, d, "{baggage:?}"),
            None => assert!(matches!(v.decision, Decision::Fork(_)), "{baggage:?}"),
        }
    }
}
