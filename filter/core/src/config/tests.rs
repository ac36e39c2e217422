//! `Config::parse` and `validate` against an oracle, on arbitrary input,
//! and at sizes that once took quadratic time.
//!
//! The oracle is the configuration itself: a random valid [`Config`],
//! written out by [`Config::to_json`], parses back to itself; each field
//! broken on purpose yields an error at that field's path.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

fn member_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_*-]{0,12}"
}

fn key() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~-]{1,20}"
}

fn host() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,8}(\\.[a-z][a-z0-9]{0,8}){0,2}"
}

fn config() -> impl Strategy<Value = Config> {
    let members = proptest::collection::btree_set(member_name(), 1..=MAX_MEMBER_NAMES)
        .prop_map(|s| s.into_iter().collect::<Vec<_>>());
    let fork = (host(), host(), proptest::option::of(1u16..=65535)).prop_filter_map(
        "the destination is the service itself",
        |(service, dest, port)| {
            (service != dest).then(|| Fork {
                destination: match port {
                    Some(p) => format!("{dest}:{p}"),
                    None => dest,
                },
                service,
            })
        },
    );
    let sandbox = (key(), proptest::collection::vec(fork, 0..4)).prop_map(|(key, forks)| {
        // One fork per service in a sandbox.
        let mut seen = BTreeMap::new();
        let forks = forks
            .into_iter()
            .filter(|f| seen.insert(f.service.to_ascii_lowercase(), ()).is_none())
            .collect();
        Sandbox { key, forks }
    });
    let policy = prop_oneof![
        Just((UnknownKeyPolicy::Baseline, DEFAULT_REJECT_STATUS)),
        (400u16..=599).prop_map(|s| (UnknownKeyPolicy::Reject, s)),
    ];
    (members, policy, proptest::collection::vec(sandbox, 0..6)).prop_map(
        |(members, (policy, status), sandboxes)| {
            let mut seen = BTreeMap::new();
            Config {
                version: VERSION,
                routing_key: RoutingKey { members },
                unknown_key: UnknownKey { policy, status },
                sandboxes: sandboxes
                    .into_iter()
                    .filter(|s| seen.insert(s.key.clone(), ()).is_none())
                    .collect(),
            }
        },
    )
}

/// JSON-ish text: the configuration's own words and punctuation.
fn jsonish() -> impl Strategy<Value = String> {
    let words = [
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\"",
        "\"version\"",
        "1",
        "-1",
        "1.5",
        "1e309",
        "null",
        "true",
        "\"sandboxes\"",
        "\"key\"",
        "\"forks\"",
        "\"service\"",
        "\"destination\"",
        "\"routing_key\"",
        "\"members\"",
        "\"unknown_key\"",
        "\"policy\"",
        "\"reject\"",
        "\"status\"",
        "\"k\"",
        "\"a.b\"",
        "\\u0000",
        " ",
    ];
    proptest::collection::vec(proptest::sample::select(words.to_vec()), 0..60)
        .prop_map(|w| w.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// What `to_json` writes, `from_json` reads back, unchanged.
    #[test]
    fn valid_configurations_round_trip(c in config()) {
        let text = c.to_json();
        let back = Config::from_json(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(back, c);
    }

    /// A field broken on purpose is reported at its path, and only there.
    #[test]
    fn a_broken_field_is_reported_at_its_path(c in config(), which in 0usize..4) {
        let mut json: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
        let (path, bad) = match which {
            0 => ("version", serde_json::json!("one")),
            1 => ("routing_key.members", serde_json::json!([])),
            2 => ("unknown_key.policy", serde_json::json!("drop")),
            _ => ("sandboxes", serde_json::json!({})),
        };
        let mut at = &mut json;
        for part in path.split('.') {
            at = &mut at[part];
        }
        *at = bad;
        let errors = Config::from_json(&json.to_string()).expect_err("broken on purpose").0;
        prop_assert_eq!(errors.len(), 1, "{:?}", errors);
        prop_assert_eq!(errors[0].path.as_str(), path);
    }

    /// Never panics, whatever the text.
    #[test]
    fn parse_never_panics(text in jsonish()) {
        let _ = Config::from_json(&text);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_strings(text in ".{0,200}") {
        let _ = Config::from_json(&text);
    }
}

fn sandboxes_json(n: usize, forks_per: impl Fn(usize) -> String) -> String {
    let sandboxes: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"key":"k{i}","forks":[{}]}}"#, forks_per(i)))
        .collect();
    format!(r#"{{"version":1,"sandboxes":[{}]}}"#, sandboxes.join(","))
}

/// Regression (issue 8): `Router::new` searched its list of service hosts
/// linearly for every fork: 100,000 distinct services took 25 s.
#[test]
fn a_router_of_100000_distinct_services_builds_in_linear_time() {
    let text = sandboxes_json(100_000, |i| {
        format!(r#"{{"service":"svc{i}","destination":"svc{i}-fork"}}"#)
    });
    let router = crate::Router::from_json(&text).expect("valid");
    assert_eq!(router.forks(), 100_000);
}

/// Regression (issue 8): the duplicate-key check compared every field with
/// every earlier one (27 s for 100,000 keys); a duplicate in a large
/// object is still found.
#[test]
fn duplicate_keys_in_a_large_object_are_found_in_n_log_n() {
    let mut fields: Vec<String> = (0..100_000).map(|i| format!(r#""f{i}":1"#)).collect();
    let unique = format!("{{{}}}", fields.join(","));
    let errors = Config::from_json(&unique).expect_err("unknown fields").0;
    assert_eq!(errors.len(), MAX_ERRORS + 1, "capped, with a count");
    assert!(
        errors[MAX_ERRORS].reason.contains("more errors"),
        "{:?}",
        errors.last()
    );
    fields.push(r#""f99999":2"#.to_string());
    let duplicated = format!("{{{}}}", fields.join(","));
    let errors = Config::from_json(&duplicated).expect_err("duplicate").0;
    assert!(
        errors[0].reason.contains(r#"duplicate field "f99999""#),
        "{:?}",
        errors[0]
    );
}

/// Regression (issue 8): 100,000 member names were each compared with all
/// earlier ones (22 s) although more than eight is refused outright.
#[test]
fn a_list_of_100000_member_names_is_one_error_and_quick() {
    let names: Vec<String> = (0..100_000).map(|i| format!(r#""m{i}""#)).collect();
    let text = format!(
        r#"{{"version":1,"routing_key":{{"members":[{}]}},"sandboxes":[]}}"#,
        names.join(",")
    );
    let errors = Config::from_json(&text).expect_err("too many").0;
    assert_eq!(errors.len(), 1, "{:?}", &errors[..errors.len().min(3)]);
    assert!(errors[0].reason.contains("found 100000"));
}

/// The size limits hold on every way in: the text, the sandboxes array
/// and a configuration built in code (as the scenario compiler builds
/// one).
#[test]
fn configurations_past_the_size_limits_are_refused() {
    let huge = " ".repeat(MAX_CONFIG_BYTES + 1);
    let e = Config::from_json(&huge).unwrap_err();
    assert!(
        e.0[0].reason.contains("the limit is 134217728 bytes"),
        "{e}"
    );

    let mut text = String::from(r#"{"version":1,"sandboxes":["#);
    for i in 0..=MAX_SANDBOXES {
        if i > 0 {
            text.push(',');
        }
        text.push_str("{}");
    }
    text.push_str("]}");
    let e = Config::from_json(&text).unwrap_err();
    assert_eq!(e.0.len(), 1, "one error, not a million: {}", e.0[0]);
    assert_eq!(e.0[0].path, "sandboxes");
    assert_eq!(e.0[0].reason, "1000001 sandboxes; the limit is 1000000");

    let sandbox = |i: usize, forks: usize| Sandbox {
        key: format!("k{i}"),
        forks: (0..forks)
            .map(|f| Fork {
                service: format!("s{f}"),
                destination: format!("d{f}"),
            })
            .collect(),
    };
    let mut config = Config {
        sandboxes: (0..=MAX_SANDBOXES).map(|i| sandbox(i, 0)).collect(),
        ..Config::default()
    };
    let e = config.validate().unwrap_err();
    assert!(
        e.0[0].reason.starts_with("1000001 sandboxes with 0 forks"),
        "{e}"
    );
    config.sandboxes = alloc::vec![sandbox(0, MAX_FORKS / 2), sandbox(1, MAX_FORKS / 2 + 1)];
    let e = config.validate().unwrap_err();
    assert!(
        e.0[0].reason.starts_with("2 sandboxes with 1000001 forks"),
        "{e}"
    );
}
