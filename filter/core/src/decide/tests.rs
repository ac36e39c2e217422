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
