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
                expires_at: None,
            })
        },
    );
    let fork =
        (fork, proptest::option::of(time())).prop_map(|(f, expires_at)| Fork { expires_at, ..f });
    let sandbox = (
        key(),
        proptest::collection::vec(fork, 0..4),
        proptest::option::of(time()),
        proptest::option::of(rate_limit()),
    )
        .prop_map(|(key, forks, expires_at, rate_limit)| {
            // One fork per service in a sandbox.
            let mut seen = BTreeMap::new();
            let forks = forks
                .into_iter()
                .filter(|f| seen.insert(f.service.to_ascii_lowercase(), ()).is_none())
                .collect();
            Sandbox {
                key,
                forks,
                expires_at,
                rate_limit,
            }
        });
    let policy = prop_oneof![
        Just((UnknownKeyPolicy::Baseline, DEFAULT_REJECT_STATUS)),
        (400u16..=599).prop_map(|s| (UnknownKeyPolicy::Reject, s)),
    ];
    let carriers = prop_oneof![
        Just(Carriers::BOTH),
        Just(Carriers {
            baggage: true,
            tracestate: false
        }),
        Just(Carriers {
            baggage: false,
            tracestate: true
        }),
    ];
    (
        (members, carriers, any::<bool>()),
        policy,
        proptest::collection::vec(sandbox, 0..6),
        guards(),
    )
        .prop_map(
            |(
                (members, carriers, joined),
                (policy, status),
                sandboxes,
                (ingress, preview, rate_limit, loop_guard),
            )| {
                let mut seen = BTreeMap::new();
                // Guards that read or write baggage need it as a carrier.
                let carriers = if ingress.is_some() || loop_guard.is_some() {
                    Carriers::BOTH
                } else {
                    carriers
                };
                Config {
                    version: VERSION,
                    routing_key: RoutingKey {
                        members,
                        carriers,
                        joined,
                    },
                    unknown_key: UnknownKey { policy, status },
                    sandboxes: sandboxes
                        .into_iter()
                        .filter(|s| seen.insert(s.key.clone(), ()).is_none())
                        .collect(),
                    preview: preview.filter(|_| ingress.is_some()),
                    ingress,
                    rate_limit,
                    loop_guard,
                }
            },
        )
}

fn time() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("2026-12-31T23:59:59Z".to_string()),
        Just("2027-02-28T12:00:00.5+01:00".to_string()),
        Just("1999-01-01T00:00:00z".to_string()),
    ]
}

fn rate_limit() -> impl Strategy<Value = RateLimit> {
    (1u32..=MAX_RATE, 1u32..=MAX_RATE).prop_map(|(requests_per_second, burst)| RateLimit {
        requests_per_second,
        burst,
    })
}

type GuardFields = (
    Option<Ingress>,
    Option<Preview>,
    Option<RateLimit>,
    Option<LoopGuard>,
);

fn guards() -> impl Strategy<Value = GuardFields> {
    let cidrs = proptest::sample::subsequence(
        vec!["10.0.0.0/8", "192.168.1.7/32", "fd00::/8", "::1/128"],
        0..=4,
    );
    let secrets = proptest::sample::subsequence(
        vec![
            "bGFuZXdheS10ZXN0LXNlY3JldC0wMDAwMDAwMDAwMDAwMDAwMDA=",
            "c2Vjb25kLWxhbmV3YXktdGVzdC1zZWNyZXQtMTExMTExMTExMTE=",
        ],
        0..=2,
    );
    let ingress = (cidrs, secrets, 1..=MAX_TTL_SECONDS).prop_map(|(c, s, ttl)| Ingress {
        trusted_cidrs: c.into_iter().map(String::from).collect(),
        secrets: s.into_iter().map(String::from).collect(),
        max_ttl_seconds: ttl,
    });
    let preview = (
        proptest::collection::vec(host(), 0..3),
        proptest::option::of("[a-z][a-z0-9_.-]{0,10}"),
    )
        .prop_filter_map("a preview needs hosts or a parameter", |(hosts, q)| {
            let mut seen = BTreeMap::new();
            let hosts: Vec<PreviewHost> = hosts
                .into_iter()
                .filter(|h| seen.insert(h.clone(), ()).is_none())
                .map(|h| PreviewHost {
                    pattern: format!("*.{h}"),
                    service: h,
                })
                .collect();
            (!hosts.is_empty() || q.is_some()).then_some(Preview {
                hosts,
                query_param: q,
            })
        });
    (
        proptest::option::of(ingress),
        proptest::option::of(preview),
        proptest::option::of(rate_limit()),
        proptest::option::of((1..=MAX_LOOP_HOPS).prop_map(|max_hops| LoopGuard { max_hops })),
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
                expires_at: None,
            })
            .collect(),
        expires_at: None,
        rate_limit: None,
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

/// Every guard field refused with its path (issue 11: "validated with
/// errors that name the field path").
#[test]
fn guard_fields_are_validated_with_their_paths() {
    let secret = "bGFuZXdheS10ZXN0LXNlY3JldC0wMDAwMDAwMDAwMDAwMDAwMDA=";
    let cases: &[(&str, &str, &str)] = &[
        (
            r#""ingress":{"trusted_cidrs":["10.1.0.0/8"]}"#,
            "ingress.trusted_cidrs[0]",
            "10.0.0.0/8",
        ),
        (
            r#""ingress":{"trusted_cidrs":["10.0.0.0/33"]}"#,
            "ingress.trusted_cidrs[0]",
            "",
        ),
        (
            r#""ingress":{"trusted_cidrs":[7]}"#,
            "ingress.trusted_cidrs[0]",
            "expected a string",
        ),
        (
            r#""ingress":{"secrets":["c2hvcnQ="]}"#,
            "ingress.secrets[0]",
            "",
        ),
        (r#""ingress":{"secrets":["!!!"]}"#, "ingress.secrets[0]", ""),
        (
            &format!(r#""ingress":{{"secrets":["{secret}","{secret}"]}}"#),
            "ingress.secrets[1]",
            "same secret",
        ),
        (
            &format!(r#""ingress":{{"secrets":["{secret}","{secret}","{secret}"]}}"#),
            "ingress.secrets",
            "at most 2",
        ),
        (
            r#""ingress":{"max_ttl_seconds":0}"#,
            "ingress.max_ttl_seconds",
            "outside",
        ),
        (r#""ingress":{"trusted":[]}"#, "ingress", "unknown field"),
        (
            r#""preview":{"query_param":"k"}"#,
            "preview",
            "needs \"ingress\"",
        ),
        (r#""ingress":{},"preview":{}"#, "preview", "hosts"),
        (
            r#""ingress":{},"preview":{"hosts":[{"pattern":"preview.example.com","service":"s"}]}"#,
            "preview.hosts[0].pattern",
            "*.",
        ),
        (
            r#""ingress":{},"preview":{"hosts":[{"pattern":"*.a..b","service":"s"}]}"#,
            "preview.hosts[0].pattern",
            "not a valid host",
        ),
        (
            r#""ingress":{},"preview":{"hosts":[{"pattern":"*.a.b"}]}"#,
            "preview.hosts[0].service",
            "missing",
        ),
        (
            r#""ingress":{},"preview":{"query_param":"a b"}"#,
            "preview.query_param",
            "parameter name",
        ),
        (
            r#""rate_limit":{"requests_per_second":0}"#,
            "rate_limit.requests_per_second",
            "outside",
        ),
        (
            r#""rate_limit":{"requests_per_second":5,"burst":2000000}"#,
            "rate_limit.burst",
            "outside",
        ),
        (
            r#""rate_limit":{"burst":5}"#,
            "rate_limit.requests_per_second",
            "missing",
        ),
        (
            r#""rate_limit":{"requests_per_second":99999999999}"#,
            "rate_limit.requests_per_second",
            "too large",
        ),
        (
            r#""loop_guard":{"max_hops":0}"#,
            "loop_guard.max_hops",
            "outside",
        ),
        (r#""loop_guard":{}"#, "loop_guard.max_hops", "missing"),
        (
            r#""routing_key":{"carriers":[]}"#,
            "routing_key.carriers",
            "is empty",
        ),
        (
            r#""routing_key":{"carriers":"baggage"}"#,
            "routing_key.carriers",
            "expected an array",
        ),
        (
            r#""routing_key":{"carriers":["traceparent"]}"#,
            "routing_key.carriers[0]",
            "unknown carrier",
        ),
        (
            r#""routing_key":{"carriers":["baggage","baggage"]}"#,
            "routing_key.carriers[1]",
            "duplicate carrier",
        ),
        (
            r#""routing_key":{"carriers":["baggage","tracestate","baggage"]}"#,
            "routing_key.carriers",
            "only two",
        ),
        (
            r#""routing_key":{"joined":1}"#,
            "routing_key.joined",
            "true or false",
        ),
        (
            r#""routing_key":{"carriers":["tracestate"]},"loop_guard":{"max_hops":3}"#,
            "routing_key.carriers",
            "loop_guard",
        ),
        (
            r#""routing_key":{"carriers":["tracestate"]},"ingress":{}"#,
            "routing_key.carriers",
            "ingress",
        ),
    ];
    for (extra, path, reason) in cases {
        let text = format!(r#"{{"version":1,{extra},"sandboxes":[]}}"#);
        let e = Config::from_json(&text).expect_err(extra);
        assert!(
            e.0.iter()
                .any(|e| e.path == *path && e.reason.contains(reason)),
            "{extra}: want {path}: …{reason}…, got {e}"
        );
        assert!(
            !e.to_string().contains(secret),
            "a secret in a message: {e}"
        );
    }
    let sandbox_cases: &[(&str, &str)] = &[
        (
            r#"{"key":"k","expires_at":"2026-13-01T00:00:00Z","forks":[]}"#,
            "sandboxes[0].expires_at",
        ),
        (
            r#"{"key":"k","expires_at":"tomorrow","forks":[]}"#,
            "sandboxes[0].expires_at",
        ),
        (
            r#"{"key":"k","rate_limit":{"requests_per_second":0},"forks":[]}"#,
            "sandboxes[0].rate_limit.requests_per_second",
        ),
        (
            r#"{"key":"k","forks":[{"service":"a","destination":"b","expires_at":"2026-02-30T00:00:00Z"}]}"#,
            "sandboxes[0].forks[0].expires_at",
        ),
    ];
    for (sandbox, path) in sandbox_cases {
        let text = format!(r#"{{"version":1,"sandboxes":[{sandbox}]}}"#);
        let e = Config::from_json(&text).expect_err(sandbox);
        assert!(
            e.0.iter().any(|e| e.path == *path),
            "{sandbox}: want {path}, got {e}"
        );
    }
    // Every guard at once, valid; a version-1 file without them keeps its
    // meaning (every guard off).
    let all = format!(
        r#"{{"version":1,"ingress":{{"trusted_cidrs":["10.0.0.0/8","fd00::/8"],"secrets":["{secret}"]}},
            "preview":{{"hosts":[{{"pattern":"*.preview.example.com","service":"frontend"}}],"query_param":"sd-routing-key"}},
            "rate_limit":{{"requests_per_second":5}},"loop_guard":{{"max_hops":16}},
            "sandboxes":[{{"key":"k","expires_at":"2027-01-01T00:00:00Z","forks":[]}}]}}"#
    );
    let c = Config::from_json(&all).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.rate_limit.map(|l| l.burst),
        Some(5),
        "the burst defaults to one second"
    );
    assert!(!format!("{c:?}").contains(secret), "Debug redacts secrets");
    let plain = Config::from_json(r#"{"version":1,"sandboxes":[]}"#).unwrap();
    assert_eq!(
        (
            plain.ingress,
            plain.preview,
            plain.rate_limit,
            plain.loop_guard
        ),
        (None, None, None, None)
    );
}
