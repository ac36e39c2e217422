//! `laneway explain`: the story of one request, hop by hop, drawn from the
//! recorded tree, so each hop sits exactly under the hop that made it.
//!
//! For each hop: the headers the caller sent, where the call was decided
//! (the caller's sidecar; in an ambient mesh the callee's waypoint, named,
//! or no filter at all), the filter's decision and reason (and the
//! reference's, when they differ), who served it and what it propagated;
//! a failed hop says why it failed. Then the status and the checks the
//! request broke.

use crate::printable::line;

use laneway_replay::trace::{DecidedAt, Hop, HopId, Served, Trace};
use laneway_replay::{Explained, names};
use laneway_scenario::spec::{Mesh, Propagation};
use laneway_scenario::{HopReason, Scenario};

/// One hop of the story.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Call depth: 0 for the ingress's call.
    pub depth: usize,
    /// `caller → service`.
    pub edge: String,
    /// The request headers the caller sent, which the filter saw.
    pub sent: Vec<(String, String)>,
    /// Where the call was decided.
    pub decided_at: Decider,
    /// `fork`, `baseline`, `reject`, or `failed`.
    pub route: String,
    /// The reason (`fork`, `no_key`, ..., `no_waypoint`), or `unknown`.
    pub reason: String,
    /// The `:authority` sent upstream.
    pub authority: String,
    /// The reference backend's decision, when it differs:
    /// `(route, reason, authority)`.
    pub differs: Option<(String, String, String)>,
    /// What served the hop.
    pub served_by: String,
    /// What the serving workload propagated downstream, after faults.
    pub propagates: String,
    /// Where the context was lost upstream, if it was.
    pub dropped_at: Option<String>,
    /// Why the hop failed, if it did.
    pub failure: Option<String>,
}

/// Which filter decided a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decider {
    /// The caller's outbound sidecar.
    Sidecar,
    /// This waypoint, the callee's (ambient mesh).
    Waypoint(String),
    /// None: the callee has no waypoint (ambient mesh).
    Nowhere,
}

/// One request's story.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// `GROUP#N`.
    pub request: String,
    /// The traffic group's kind.
    pub kind: String,
    /// Sidecar or ambient.
    pub mesh: Mesh,
    /// The key, if any.
    pub key: Option<String>,
    /// Every hop, in call order.
    pub steps: Vec<Step>,
    /// The status the client got.
    pub status: u16,
    /// The checks it broke, `check: example`.
    pub findings: Vec<String>,
}

fn propagation_text(p: Propagation) -> &'static str {
    match p {
        Propagation::Both => "baggage and tracestate",
        Propagation::Baggage => "baggage only",
        Propagation::Tracestate => "tracestate only",
        Propagation::None => "nothing",
    }
}

fn step(sc: &Scenario, e: &Explained, trace: &Trace, id: HopId, hop: &Hop) -> Step {
    let t = &sc.traffic[e.group];
    let entry = hop.parent.is_none();
    let mut sent = vec![(
        ":authority".to_owned(),
        match (&t.authority, entry) {
            (Some(a), true) => a.clone(),
            _ => sc.services[hop.service].authority.clone(),
        },
    )];
    if let (Some(path), true) = (&t.path, entry) {
        sent.push((":path".to_owned(), path.clone()));
    }
    if let Some(span) = hop.lines {
        // A filter upstream edited the context: what was really sent.
        let text = String::from_utf8_lossy(trace.text(span)).into_owned();
        sent.extend(text.lines().filter_map(|l| {
            let (name, value) = l.split_once(": ")?;
            Some((name.to_owned(), value.to_owned()))
        }));
    } else if hop.context_in.baggage {
        sent.extend(
            t.headers
                .baggage
                .iter()
                .map(|b| ("baggage".to_owned(), b.clone())),
        );
    }
    if hop.lines.is_none() && hop.context_in.tracestate {
        sent.extend(
            t.headers
                .tracestate
                .iter()
                .map(|v| ("tracestate".to_owned(), v.clone())),
        );
    }
    let propagates = match hop.served {
        Served::By(w) if sc.context_dropped(w, e.index) => "nothing (drop_context fault)".into(),
        Served::By(w) => propagation_text(sc.propagates(w)).into(),
        _ => "-".into(),
    };
    let decision = |trace: &Trace, hop: &Hop| {
        (
            names::route(hop.served).as_str().to_owned(),
            hop.why().map_or("unknown", HopReason::as_str).to_owned(),
            String::from_utf8_lossy(trace.authority_out(sc, hop)).into_owned(),
        )
    };
    let (route, reason, authority) = decision(trace, hop);
    let differs = e.reference.as_ref().and_then(|r| {
        let theirs = match r.hops().get(id as usize) {
            Some(other) => decision(r, other),
            None => ("-".into(), "no such call".into(), "-".into()),
        };
        (theirs != (route.clone(), reason.clone(), authority.clone())).then_some(theirs)
    });
    let decided_at = match (hop.decided_at, names::waypoint(sc, hop.decided_at)) {
        (DecidedAt::Nowhere, _) => Decider::Nowhere,
        (_, Some(w)) => Decider::Waypoint(w.to_owned()),
        (_, None) => Decider::Sidecar,
    };
    Step {
        depth: trace.depth(id),
        edge: names::edge(sc, hop.caller, hop.service),
        sent,
        decided_at,
        route,
        reason,
        authority,
        differs,
        served_by: names::served(sc, hop.service, hop.served),
        propagates,
        dropped_at: trace
            .dropped_at(id)
            .map(|w| sc.workload_name(w).to_string()),
        failure: trace.failure(id).map(str::to_owned),
    }
}

/// The story of `e`, a request of `sc`.
pub fn explanation(sc: &Scenario, e: &Explained) -> Explanation {
    let t = &sc.traffic[e.group];
    let trace = &e.trace;
    let steps = trace
        .hops()
        .iter()
        .enumerate()
        .map(|(i, hop)| step(sc, e, trace, i as HopId, hop))
        .collect();
    let mut findings = Vec::new();
    for (name, f) in e.summary.checks() {
        let name = match name {
            "failed-hops" => "failed-hop",
            "expectations" => "expectation",
            other => other,
        };
        findings.extend(f.examples.iter().map(|(_, ex)| format!("{name}: {ex}")));
    }
    Explanation {
        request: format!("{}#{}", t.name, e.index - t.first),
        kind: t.kind.as_str().to_owned(),
        mesh: sc.mesh,
        key: t.key.clone(),
        steps,
        status: trace.status(),
        findings,
    }
}

/// The story as text.
pub fn text(e: &Explanation) -> String {
    let mut s = String::new();
    let key = e
        .key
        .as_deref()
        .map(|k| format!(" {k}"))
        .unwrap_or_default();
    line(
        &mut s,
        format_args!("request {} ({}{key})", e.request, e.kind),
    );
    if e.mesh == Mesh::Ambient {
        line(
            &mut s,
            format_args!(
                "  mesh ambient: each call is decided at the waypoint of the service it calls"
            ),
        );
    }
    for (i, h) in e.steps.iter().enumerate() {
        let pad = "  ".repeat(h.depth + 1);
        line(&mut s, format_args!("{pad}{}. {}", i + 1, h.edge));
        for (n, v) in &h.sent {
            line(&mut s, format_args!("{pad}   sends     {n}: {v}"));
        }
        if h.sent.len() == 1 {
            line(
                &mut s,
                format_args!(
                    "{pad}   sends     no baggage or tracestate{}",
                    h.dropped_at
                        .as_ref()
                        .map(|d| format!(" (context lost at {d})"))
                        .unwrap_or_default()
                ),
            );
        }
        match &h.failure {
            Some(why) => {
                line(&mut s, format_args!("{pad}   decision  failed: {why}"));
            }
            None if h.decided_at == Decider::Nowhere => {
                line(
                    &mut s,
                    format_args!(
                        "{pad}   decision  none: the service has no waypoint, so no filter saw \
                         the call; {} ({})",
                        h.route, h.reason
                    ),
                );
            }
            None => {
                line(
                    &mut s,
                    format_args!(
                        "{pad}   decision  {} ({}){}{}",
                        h.route,
                        h.reason,
                        match &h.decided_at {
                            Decider::Waypoint(w) => format!(" at waypoint {w}"),
                            Decider::Sidecar | Decider::Nowhere => String::new(),
                        },
                        if h.route == "fork" {
                            format!(": :authority → {}", h.authority)
                        } else {
                            String::new()
                        }
                    ),
                );
            }
        }
        if let Some((route, reason, authority)) = &h.differs {
            line(
                &mut s,
                format_args!(
                    "{pad}   DIFFERS   laneway-core says {route} ({reason}) to {authority}"
                ),
            );
        }
        line(
            &mut s,
            format_args!(
                "{pad}   served by {}, which propagates {}",
                h.served_by, h.propagates
            ),
        );
    }
    line(&mut s, format_args!("status {}", e.status));
    if e.findings.is_empty() {
        line(&mut s, format_args!("no check failed for this request"));
    } else {
        for f in &e.findings {
            line(&mut s, format_args!("FAIL {f}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use laneway_replay::NativeFactory;

    use super::*;

    fn story(file: &str, request: &str) -> Explanation {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/scenarios")
            .join(file);
        let sc = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let e = laneway_replay::explain(&sc, &NativeFactory, None, request)
            .unwrap_or_else(|e| panic!("{e}"));
        explanation(&sc, &e)
    }

    /// Ambient mode: the story says the mesh, the waypoint of each hop
    /// decided at one, and that the hop to a service without a waypoint
    /// met no filter.
    #[test]
    fn ambient_decisions_are_told_at_the_waypoint() {
        let e = story("ambient.yaml", "location-sandbox#3");
        let at: Vec<&Decider> = e.steps.iter().map(|s| &s.decided_at).collect();
        let shared = Decider::Waypoint("waypoint".into());
        assert_eq!(
            at,
            [
                &shared,
                &shared,
                &Decider::Waypoint("location-waypoint".into()),
                &shared,
                &Decider::Nowhere
            ]
        );
        let t = text(&e);
        assert!(
            t.contains(
                "\n  mesh ambient: each call is decided at the waypoint of the service it calls\n"
            ),
            "{t}"
        );
        assert!(
            t.contains(
                "decision  fork (fork) at waypoint location-waypoint: :authority → location-qwblp48fpmb30:8084\n"
            ),
            "{t}"
        );
        assert!(
            t.contains(
                "decision  none: the service has no waypoint, so no filter saw the call; baseline (no_waypoint)\n"
            ),
            "{t}"
        );
        // A sidecar mesh's story is as it was: no mesh line, no waypoint.
        let t = text(&story("hotrod.yaml", "tagged"));
        assert!(!t.contains("mesh") && !t.contains("waypoint"), "{t}");
        assert!(t.contains("decision  fork (fork): :authority → "), "{t}");
    }
}
