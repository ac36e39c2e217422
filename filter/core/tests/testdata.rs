//! Runs every table test in `testdata/` against the core.
//!
//! Expectations are sparse, in the spirit of Envoy's `router_check_tool`:
//! only the fields a case gives are checked. Each failure names the file
//! and the case.

use laneway_testdata as corpus;

use laneway_core::baggage::{self, Entry};
use laneway_core::decide::TraceStateStatus;
use laneway_core::tracestate::TraceState;
use laneway_core::{Config, Request, Router};
use regex_automata::meta::Regex;
use regex_automata::util::syntax;

use corpus::{ExpectedMember, expand};

fn decoded(v: &laneway_core::percent::Value<'_>) -> String {
    String::from_utf8(v.bytes().collect()).expect("decoded values are UTF-8")
}

fn check_members(at: &str, got: &[(String, String, Vec<String>)], want: &[ExpectedMember]) {
    assert_eq!(got.len(), want.len(), "{at}: members {got:?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!((&g.0, &g.1), (&w.key, &w.value), "{at}");
        if let Some(props) = &w.properties {
            assert_eq!(&g.2, props, "{at}: properties of {}", w.key);
        }
    }
}

#[test]
fn baggage_cases() {
    let cases = corpus::parse_cases("baggage");
    for (file, case) in &cases {
        let at = format!("{file}: {}", case.name);
        assert!(
            case.tracestate.is_empty() && case.valid.is_none() && case.error.is_none(),
            "{at}: tracestate fields in a baggage case"
        );
        let lines = expand(&case.baggage);
        let mut it = baggage::members(lines.iter().map(Vec::as_slice));
        let mut members = Vec::new();
        let mut reasons = Vec::new();
        for entry in it.by_ref() {
            match entry {
                Entry::Member(m) => members.push((
                    String::from_utf8_lossy(m.key).into_owned(),
                    decoded(&m.value),
                    m.properties()
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .collect(),
                )),
                Entry::Invalid { why, .. } => reasons.push(why.as_str().to_owned()),
            }
        }
        if let Some(want) = &case.members {
            check_members(&at, &members, want);
        }
        if let Some(n) = case.member_count {
            assert_eq!(members.len(), n, "{at}: member count");
        }
        if let Some(n) = case.invalid {
            assert_eq!(reasons.len(), n, "{at}: invalid count ({reasons:?})");
        }
        if let Some(want) = &case.invalid_reasons {
            assert_eq!(&reasons, want, "{at}: invalid reasons");
        }
        if let Some(d) = &case.dropped {
            let got = match it.dropped() {
                None => "none",
                Some(baggage::Limit::Members) => "members",
                Some(baggage::Limit::Bytes) => "bytes",
            };
            assert_eq!(got, d, "{at}: dropped");
        }
    }
    assert!(
        cases.len() >= 30,
        "the baggage corpus shrank to {}",
        cases.len()
    );
}

#[test]
fn tracestate_cases() {
    let cases = corpus::parse_cases("tracestate");
    for (file, case) in &cases {
        let at = format!("{file}: {}", case.name);
        assert!(
            case.baggage.is_empty() && case.invalid.is_none() && case.dropped.is_none(),
            "{at}: baggage fields in a tracestate case"
        );
        let lines = expand(&case.tracestate);
        let parsed = TraceState::parse(lines.iter().map(Vec::as_slice));
        if let Some(v) = case.valid {
            assert_eq!(parsed.is_ok(), v, "{at}: valid ({parsed:?})");
        }
        if let Some(e) = &case.error {
            assert_eq!(
                parsed.err().map(|e| e.as_str()),
                Some(e.as_str()),
                "{at}: error"
            );
        }
        if let Ok(ts) = &parsed {
            let members: Vec<_> = ts
                .members()
                .iter()
                .map(|m| {
                    (
                        String::from_utf8_lossy(m.key).into_owned(),
                        String::from_utf8_lossy(m.value).into_owned(),
                        Vec::new(),
                    )
                })
                .collect();
            if let Some(want) = &case.members {
                check_members(&at, &members, want);
            }
            if let Some(n) = case.member_count {
                assert_eq!(members.len(), n, "{at}: member count");
            }
        }
    }
    assert!(
        cases.len() >= 15,
        "the tracestate corpus shrank to {}",
        cases.len()
    );
}

fn seed_regex(key: &str) -> Regex {
    let pattern = format!(r"^.*\b(sd-routing-key|sd-sandbox)\s*=[^,]*\b{key}\b.*$");
    Regex::builder()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .build(&pattern)
        .expect("the seed regex compiles")
}

#[test]
fn routing_cases() {
    let cases = corpus::routing_cases();
    let mut regex_cases = 0;
    for (file, case) in &cases {
        let at = format!("{file}: {}", case.name);
        let config = case.config.as_deref().expect("filled by the loader");
        let router = Router::from_json(&corpus::config_text(config))
            .unwrap_or_else(|e| panic!("{at}: configs/{config}: {e}"));
        let baggage = expand(&case.baggage);
        let tracestate = expand(&case.tracestate);
        let verdict = router.decide(Request {
            authority: case.authority.as_bytes(),
            baggage: baggage.iter().map(Vec::as_slice),
            tracestate: tracestate.iter().map(Vec::as_slice),
        });
        let d = verdict.decision;
        if let Some(r) = &case.route {
            assert_eq!(d.route().as_str(), r, "{at}: route ({verdict:?})");
        }
        if let Some(r) = &case.reason {
            assert_eq!(d.reason().as_str(), r, "{at}: reason ({verdict:?})");
        }
        if let Some(k) = &case.key {
            assert_eq!(
                verdict.key.map(|k| decoded(&k.value)).as_deref(),
                Some(k.as_str()),
                "{at}: key"
            );
        }
        if let Some(c) = &case.carrier {
            assert_eq!(
                verdict.key.map(|k| k.carrier.as_str()),
                Some(c.as_str()),
                "{at}: carrier"
            );
        }
        if let Some(m) = &case.member {
            let name = verdict
                .key
                .map(|k| &*router.member_names()[k.member as usize]);
            assert_eq!(name, Some(m.as_str()), "{at}: member");
        }
        if let Some(a) = &case.authority_out {
            let laneway_core::Decision::Fork(id) = d else {
                panic!("{at}: authority_out given but the decision is {d:?}");
            };
            let mut buf = [0u8; laneway_core::authority::MAX_FORK_AUTHORITY];
            let out = router
                .fork_authority(id, case.authority.as_bytes(), &mut buf)
                .expect("fits");
            assert_eq!(std::str::from_utf8(out).unwrap(), a, "{at}: authority_out");
        }
        if let Some(s) = &case.seed_regex {
            regex_cases += 1;
            let first = baggage.first().expect("seed_regex needs a baggage line");
            assert_eq!(
                seed_regex(&s.key).is_match(first.as_slice()),
                s.matches,
                "{at}: the seed regex on {:?}",
                String::from_utf8_lossy(first)
            );
        }
        // Untagged traffic is never touched, whatever the table says.
        if baggage.is_empty() && tracestate.is_empty() {
            assert_eq!(d, laneway_core::Decision::NoKey, "{at}");
            assert_eq!(verdict.tracestate, TraceStateStatus::Absent, "{at}");
        }
    }
    assert!(
        regex_cases >= 7,
        "every regex false positive and the false negative are pinned"
    );
    assert!(
        cases.len() >= 40,
        "the routing corpus shrank to {}",
        cases.len()
    );
}

#[test]
fn config_error_cases() {
    for (file, case) in corpus::config_cases() {
        let at = format!("{file}: {}", case.name);
        let got = match Config::from_json(&case.config) {
            Ok(_) => Vec::new(),
            Err(e) => e.0,
        };
        assert_eq!(got.len(), case.errors.len(), "{at}: got {got:#?}");
        for (g, w) in got.iter().zip(&case.errors) {
            assert_eq!(g.path, w.path, "{at}: path of {g}");
            assert!(
                g.reason.contains(&w.reason),
                "{at}: reason {:?} lacks {:?}",
                g.reason,
                w.reason
            );
        }
    }
}

#[test]
fn shipped_configs_are_valid_and_roundtrip() {
    for entry in std::fs::read_dir(corpus::testdata().join("configs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let config =
                Config::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let again = Config::from_json(&config.to_json()).expect("to_json output is valid");
            assert_eq!(config, again, "{}", path.display());
        }
    }
}
