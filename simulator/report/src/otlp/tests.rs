//! The OTLP lines of real replayed requests (the core as every sidecar)
//! and of hand-made traces: valid JSON, ids of the right shape, parent
//! links that rebuild the recorded tree, nested times, `sd-routing-key`
//! exactly where the key came in, and the same bytes every time.

use std::collections::HashMap;
use std::path::Path;

use laneway_core::{Reason, Route};
use laneway_replay::trace::{Caller, Context, DecidedAt, Hop, Served, Trace};
use laneway_replay::{NativeFactory, explain};
use laneway_scenario::{Scenario, Workload};
use serde_json::Value;

use super::*;

fn scenario(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/scenarios")
        .join(name);
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn traced(sc: &Scenario, request: &str) -> Trace {
    explain(sc, &NativeFactory, None, request)
        .unwrap_or_else(|e| panic!("{e}"))
        .trace
}

/// A span, flattened: its resource's service and its attributes as text.
struct Flat {
    service: String,
    span: Value,
    attributes: HashMap<String, String>,
}

fn flat(line: &str) -> Vec<Flat> {
    let doc: Value = serde_json::from_str(line).expect("a line is one JSON document");
    let mut out = Vec::new();
    for rs in doc["resourceSpans"].as_array().unwrap() {
        let resource = rs["resource"]["attributes"].as_array().unwrap();
        assert_eq!(resource.len(), 1);
        assert_eq!(resource[0]["key"], "service.name");
        let service = resource[0]["value"]["stringValue"].as_str().unwrap();
        let scopes = rs["scopeSpans"].as_array().unwrap();
        assert_eq!(scopes.len(), 1);
        assert_eq!(scopes[0]["scope"]["name"], SCOPE);
        for span in scopes[0]["spans"].as_array().unwrap() {
            let attributes = span["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|kv| {
                    let v = &kv["value"];
                    let v = v["stringValue"].as_str().or(v["intValue"].as_str());
                    (
                        kv["key"].as_str().unwrap().to_owned(),
                        v.unwrap().to_owned(),
                    )
                })
                .collect();
            out.push(Flat {
                service: service.to_owned(),
                span: span.clone(),
                attributes,
            });
        }
    }
    out
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}

fn nanos(v: &Value) -> u64 {
    v.as_str().expect("times are strings").parse().unwrap()
}

/// Every span of `trace`'s line, in hop order, checked for shape.
fn spans_of(sc: &Scenario, trace: &Trace) -> Vec<Flat> {
    let line = export_line(sc, trace).unwrap();
    assert!(!line.contains('\n'));
    let spans = flat(&line);
    assert_eq!(spans.len(), trace.hops().len());
    let id = trace_id(&sc.name, trace.index);
    let by_id: HashMap<&str, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, f)| (f.span["spanId"].as_str().unwrap(), i))
        .collect();
    assert_eq!(by_id.len(), spans.len(), "span ids are distinct");
    let mut ordered: Vec<Option<Flat>> = (0..spans.len()).map(|_| None).collect();
    for f in spans {
        assert_eq!(f.span["traceId"], id.as_str());
        assert!(is_hex(&id, 32), "{id}");
        assert!(is_hex(f.span["spanId"].as_str().unwrap(), 16));
        assert_eq!(f.span["kind"], 2);
        let hop = (0..trace.hops().len() as HopId)
            .find(|&h| span_id(trace.index, h) == f.span["spanId"].as_str().unwrap())
            .expect("every span is a hop");
        ordered[hop as usize] = Some(f);
    }
    ordered.into_iter().map(Option::unwrap).collect()
}

#[test]
fn parent_links_and_times_rebuild_the_recorded_tree() {
    let sc = scenario("hotrod.yaml");
    for request in ["untagged#3", "tagged#0", "tracestate-only#9"] {
        let trace = traced(&sc, request);
        let spans = spans_of(&sc, &trace);
        for (i, (hop, f)) in trace.hops().iter().zip(&spans).enumerate() {
            assert_eq!(f.service, sc.services[hop.service].name);
            let start = nanos(&f.span["startTimeUnixNano"]);
            let end = nanos(&f.span["endTimeUnixNano"]);
            assert!(start < end, "{request}: hop {i}");
            assert!(start >= EPOCH_UNIX_NANO + trace.index * REQUEST_NANOS);
            assert!(end < EPOCH_UNIX_NANO + (trace.index + 1) * REQUEST_NANOS);
            match hop.parent {
                None => {
                    assert!(f.span.get("parentSpanId").is_none());
                    assert_eq!(f.attributes["laneway.caller"], "ingress");
                }
                Some(p) => {
                    let parent = &spans[p as usize].span;
                    assert_eq!(f.span["parentSpanId"], parent["spanId"]);
                    assert!(start > nanos(&parent["startTimeUnixNano"]));
                    assert!(end < nanos(&parent["endTimeUnixNano"]));
                    assert_eq!(f.attributes["laneway.caller"], spans[p as usize].service);
                }
            }
            // Siblings follow each other.
            if let Some(prev) = (0..i).rev().find(|&j| trace.hops()[j].parent == hop.parent) {
                assert!(start > nanos(&spans[prev].span["endTimeUnixNano"]));
            }
            assert_eq!(f.attributes["laneway.request"], request);
        }
        assert_eq!(
            spans
                .iter()
                .filter(|f| f.span.get("parentSpanId").is_none())
                .count(),
            1
        );
    }
}

#[test]
fn attributes_name_the_route_reason_and_workload() {
    let sc = scenario("hotrod.yaml");
    let trace = traced(&sc, "tagged#0");
    let spans = spans_of(&sc, &trace);
    let location = spans.iter().find(|f| f.service == "location").unwrap();
    let a = &location.attributes;
    assert_eq!(location.span["name"], "customer@baseline → location");
    assert_eq!(a["laneway.caller"], "customer");
    assert_eq!(a["laneway.route"], "fork");
    assert_eq!(a["laneway.reason"], "fork");
    assert_eq!(a["laneway.served_by"], "location@fork(qwblp48fpmb30)");
    assert_eq!(a["k8s.deployment.name"], "location-qwblp48fpmb30");
    assert_eq!(a["laneway.traffic"], "tagged");
    assert!(!a.contains_key("http.response.status_code"));
    assert!(location.span.get("status").is_none());
    let frontend = spans.iter().find(|f| f.service == "frontend").unwrap();
    assert_eq!(frontend.span["name"], "ingress → frontend");
    assert_eq!(frontend.attributes["laneway.reason"], "no_fork");
    assert_eq!(
        frontend.attributes["laneway.served_by"],
        "frontend@baseline"
    );
    assert_eq!(frontend.attributes["k8s.deployment.name"], "frontend");
}

/// The key is on a hop exactly when the context that came in carried it:
/// every hop of a tagged request until a workload drops the context, none
/// after it, and none of an untagged request (no false positive).
#[test]
fn the_routing_key_is_on_exactly_the_hops_that_received_it() {
    let hotrod = scenario("hotrod.yaml");
    let faults = scenario("faults.yaml");
    type Case<'a> = (&'a Scenario, &'a str, &'a [(&'a str, bool)]);
    let cases: [Case<'_>; 5] = [
        (
            &hotrod,
            "untagged#0",
            &[("frontend", false), ("location", false)],
        ),
        (
            &hotrod,
            "tagged#1",
            &[("frontend", true), ("location", true)],
        ),
        (
            &hotrod,
            "percent-encoded#0",
            &[("frontend", true), ("location", true)],
        ),
        (
            &hotrod,
            "tracestate-only#0",
            &[("frontend", true), ("location", true)],
        ),
        (
            &faults,
            "after-route-drops-context#0",
            &[
                ("frontend", true),
                ("driver", true),
                ("route", true),
                ("location", false),
            ],
        ),
    ];
    for (sc, request, expected) in cases {
        let trace = traced(sc, request);
        let spans = spans_of(sc, &trace);
        for (hop, f) in trace.hops().iter().zip(&spans) {
            let t = &sc.traffic[trace.group];
            let carried = t.key.is_some()
                && ((hop.context_in.baggage && !t.headers.baggage.is_empty())
                    || (hop.context_in.tracestate && !t.headers.tracestate.is_empty()));
            assert_eq!(
                f.attributes.get(ROUTING_KEY).map(String::as_str),
                carried.then_some(t.key.as_deref()).flatten(),
                "{request}: {}",
                f.service
            );
        }
        for (service, has) in expected {
            let f = spans.iter().find(|f| f.service == *service).unwrap();
            assert_eq!(
                f.attributes.contains_key(ROUTING_KEY),
                *has,
                "{request}: {service}"
            );
        }
    }
}

#[test]
fn a_hop_that_answers_itself_is_an_error_with_its_status() {
    let sc = scenario("faults.yaml");
    let trace = traced(&sc, "to-the-down-fork#0");
    let spans = spans_of(&sc, &trace);
    let driver = spans.iter().find(|f| f.service == "driver").unwrap();
    assert_eq!(driver.attributes["laneway.served_by"], "driver@unavailable");
    assert_eq!(driver.attributes["http.response.status_code"], "503");
    assert_eq!(driver.span["status"]["code"], 2);
    assert!(!driver.attributes.contains_key("k8s.deployment.name"));

    // Rejected and failed hops, by hand.
    let hotrod = scenario("hotrod.yaml");
    let frontend = hotrod
        .services
        .iter()
        .position(|s| s.name == "frontend")
        .unwrap();
    let customer = hotrod
        .services
        .iter()
        .position(|s| s.name == "customer")
        .unwrap();
    let mut trace = Trace::default();
    trace.clear(1, hotrod.traffic[1].first);
    let root = trace.push(Hop {
        parent: None,
        caller: Caller::Ingress,
        call: 0,
        service: frontend,
        decided_at: DecidedAt::Sidecar,
        route: Some(Route::Reject),
        reason: Some(Reason::Rejected),
        authority: None,
        served: Served::Rejected(403),
        context_in: Context::ENTRY,
        context_out: None,
        lines: None,
    });
    let failed = trace.push(Hop {
        parent: Some(root),
        caller: Caller::Workload(Workload::Baseline(frontend)),
        call: 1,
        service: customer,
        decided_at: DecidedAt::Sidecar,
        route: None,
        reason: None,
        authority: None,
        served: Served::Failed,
        context_in: Context::default(),
        context_out: None,
        lines: None,
    });
    trace.fail(failed, "wasm trap: unreachable".into());
    let spans = spans_of(&hotrod, &trace);
    assert_eq!(spans[0].attributes["laneway.route"], "reject");
    assert_eq!(spans[0].attributes["http.response.status_code"], "403");
    assert_eq!(spans[0].span["status"]["code"], 2);
    assert_eq!(spans[0].attributes[ROUTING_KEY], "qwblp48fpmb30");
    assert_eq!(spans[1].attributes["laneway.route"], "failed");
    assert_eq!(spans[1].attributes["laneway.reason"], "unknown");
    assert_eq!(spans[1].attributes["laneway.served_by"], "customer@failed");
    assert_eq!(spans[1].attributes["http.response.status_code"], "500");
    assert_eq!(
        spans[1].span["status"]["message"],
        "the filter failed: wasm trap: unreachable"
    );
    assert!(!spans[1].attributes.contains_key(ROUTING_KEY));
}

#[test]
fn the_same_request_gives_the_same_bytes_and_others_differ() {
    let sc = scenario("hotrod.yaml");
    let a = export_line(&sc, &traced(&sc, "tagged#7")).unwrap();
    let b = export_line(&sc, &traced(&sc, "tagged#7")).unwrap();
    assert_eq!(a, b);
    let ids: std::collections::HashSet<String> = (0..1000)
        .map(|i| trace_id("hotrod", i))
        .chain((0..1000).map(|i| trace_id("hotrod2", i)))
        .collect();
    assert_eq!(ids.len(), 2000);
    // Pinned (computed apart, in Python): ids written today must be the
    // ids of tomorrow.
    assert_eq!(trace_id("hotrod", 0), "0bfc368a6b9b8e9b0740b850f3d72bf2");
    assert_eq!(span_id(0, 0), "5692161d100b05e5");
    assert_eq!(span_id(7, 3), "87b5b556ccb89855");
}

#[test]
fn an_empty_trace_is_an_empty_request() {
    let sc = scenario("hotrod.yaml");
    let line = export_line(&sc, &Trace::default()).unwrap();
    assert_eq!(line, r#"{"resourceSpans":[]}"#);
}

/// Ambient mode: a hop a waypoint decided names it; a hop no filter saw
/// says `no_waypoint` and names none.
#[test]
fn ambient_spans_name_the_waypoint() {
    let sc = scenario("ambient.yaml");
    let spans = spans_of(&sc, &traced(&sc, "location-sandbox"));
    let at: Vec<(&str, &str, Option<&str>)> = spans
        .iter()
        .map(|f| {
            (
                f.service.as_str(),
                f.attributes["laneway.reason"].as_str(),
                f.attributes.get("laneway.waypoint").map(String::as_str),
            )
        })
        .collect();
    assert!(
        at.contains(&("location", "fork", Some("location-waypoint"))),
        "{at:?}"
    );
    assert!(at.contains(&("route", "no_waypoint", None)), "{at:?}");
    let hotrod = scenario("hotrod.yaml");
    let sidecar = spans_of(&hotrod, &traced(&hotrod, "tagged"));
    assert!(
        sidecar
            .iter()
            .all(|f| !f.attributes.contains_key("laneway.waypoint"))
    );
}
