//! `laneway inspect`: how Laneway reads one request's `baggage` and
//! `tracestate` lines, which routing key it finds, and (given a
//! configuration and an authority) where the request goes and why.
//!
//! A thin view over `laneway_core`: the same parsers and the same
//! [`Router::decide`] the filter runs. Never panics on any input.

use laneway_core::baggage::{self, Entry};
use laneway_core::tracestate::TraceState;
use laneway_core::{Config, Decision, Request, Router};
use serde_json::{Value, json};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The JSON report for one request. `decide` is the router and
/// `:authority` to decide with; without it, the default member names are
/// used to find the key and no decision is made.
pub fn inspect(
    baggage_lines: &[String],
    tracestate_lines: &[String],
    decide: Option<(&Router, &str)>,
) -> Value {
    let bag = || baggage_lines.iter().map(|l| l.as_bytes());
    let ts = || tracestate_lines.iter().map(|l| l.as_bytes());

    let mut members = Vec::new();
    let mut skipped = Vec::new();
    let mut it = baggage::members(bag());
    for entry in it.by_ref() {
        match entry {
            Entry::Member(m) => members.push(json!({
                "key": text(m.key),
                "value": text(&m.value.bytes().collect::<Vec<u8>>()),
                "properties": m.properties().map(text).collect::<Vec<_>>(),
            })),
            Entry::Invalid { raw, why } => {
                skipped.push(json!({"member": text(raw), "reason": why.to_string()}))
            }
        }
    }
    let baggage = json!({
        "members": members,
        "invalid": skipped.len(),
        "skipped": skipped,
        "dropped": it.dropped().map(|l| l.to_string()),
    });

    let tracestate = match TraceState::parse(ts()) {
        Ok(t) => json!({
            "valid": true,
            "members": t.members().iter().map(|m| json!({"key": text(m.key), "value": text(m.value)})).collect::<Vec<_>>(),
        }),
        Err(e) => json!({"valid": false, "members": [], "error": e.to_string()}),
    };

    let default_router;
    let (router, authority) = match decide {
        Some((r, a)) => (r, a),
        None => {
            default_router =
                Router::new(&Config::default()).expect("the default configuration is valid");
            (&default_router, "")
        }
    };
    let verdict = router.decide(Request {
        authority: authority.as_bytes(),
        baggage: bag(),
        tracestate: ts(),
    });
    let routing_key = verdict.key.map(|k| {
        json!({
            "value": text(&k.value.bytes().collect::<Vec<u8>>()),
            "source": k.carrier.as_str(),
            "member": &*router.member_names()[k.member as usize],
        })
    });
    let mut out = json!({
        "baggage": baggage,
        "tracestate": tracestate,
        "routing_key": routing_key,
    });
    if decide.is_some() {
        let mut decision = json!({
            "route": verdict.decision.route().as_str(),
            "reason": verdict.decision.reason().as_str(),
            "explanation": explain(router, &verdict),
        });
        match verdict.decision {
            Decision::Fork(id) => {
                let mut buf = [0u8; laneway_core::authority::MAX_FORK_AUTHORITY];
                let to = router
                    .fork_authority(id, authority.as_bytes(), &mut buf)
                    .unwrap_or_default();
                decision["destination"] = json!(text(to));
            }
            Decision::Rejected => {
                decision["destination"] = Value::Null;
                decision["status"] = json!(router.reject_status());
            }
            _ => decision["destination"] = json!(authority),
        }
        out["decision"] = decision;
    }
    out
}

/// One sentence a person can act on.
pub fn explain(router: &Router, verdict: &laneway_core::Verdict<'_>) -> String {
    let key = verdict
        .key
        .map(|k| {
            format!(
                "{:?}",
                String::from_utf8_lossy(&k.value.bytes().collect::<Vec<u8>>())
            )
        })
        .unwrap_or_default();
    match verdict.decision {
        Decision::Fork(id) => {
            let f = router.fork(id);
            format!("key {key} has a fork of {} at {}", f.service, f.destination)
        }
        Decision::NoKey => "no routing-key member in baggage or tracestate".to_owned(),
        Decision::NoFork => {
            format!("key {key} belongs to a sandbox that does not fork this service")
        }
        Decision::UnknownKey => {
            format!("no sandbox has key {key}; policy sends it to the baseline")
        }
        Decision::Rejected => format!("no sandbox has key {key}; policy rejects it"),
        Decision::Conflict => "the routing-key member appears with two different values".to_owned(),
        Decision::Malformed => {
            let mut why = Vec::new();
            if verdict.baggage_invalid > 0 {
                why.push(format!(
                    "{} invalid baggage member(s) skipped",
                    verdict.baggage_invalid
                ));
            }
            if let Some(l) = verdict.baggage_dropped {
                why.push(format!("baggage {l}: the rest was not read"));
            }
            if let laneway_core::decide::TraceStateStatus::Discarded(e) = verdict.tracestate {
                why.push(format!("tracestate discarded: {e}"));
            }
            format!("no routing key found, and {}", why.join("; "))
        }
        Decision::Stripped => format!(
            "the edge does not trust this request (not from a trusted network, no valid \
             signature): key {key} was removed and it goes to the baseline"
        ),
        Decision::Expired => {
            format!("key {key}'s sandbox, or its fork of this service, has expired")
        }
        Decision::Limited => format!("key {key} is over its rate limit: answered 429"),
        Decision::Looped => {
            format!("key {key} crossed more hops than the loop guard allows: answered 508")
        }
    }
}
