//! [`Report::new`]: from the engine's summary to the report model. Paths
//! are listed most frequent first; blast radius is computed per sandbox
//! over the scenario's static call graph. Each hop is classified here
//! ([`class`]), once, by the same rules as the checks.

use std::collections::HashSet;

use laneway_core::Reason;
use laneway_replay::summary::{Edge, Finding, PathHop};
use laneway_replay::trace::Served;
use laneway_replay::{Replayed, names};
use laneway_scenario::spec::Mesh;
use laneway_scenario::{CallId, HopReason, HopRoute, Scenario, ServiceId, Traffic, Workload};

use crate::{
    Blast, BlastEdge, Check, GroupReport, HopClass, HopDetail, PathReport, Report, thousands,
};

/// Every caller → callee edge the scenario's workloads can make: the
/// chains' calls and every fork's override calls. Each (call, caller) is
/// visited once, so the work is bounded by calls × services however the
/// forks nest (no enumeration of paths).
pub fn static_edges(sc: &Scenario) -> Vec<Edge> {
    let mut edges: Vec<Edge> = Vec::new();
    let mut seen: HashSet<(CallId, Option<ServiceId>)> = HashSet::new();
    let mut stack: Vec<(CallId, Option<ServiceId>)> =
        sc.chains.iter().map(|ch| (ch.entry, None)).collect();
    while let Some((call, caller)) = stack.pop() {
        if !seen.insert((call, caller)) {
            continue;
        }
        let s = sc.calls[call].service;
        edges.push((caller, s));
        stack.extend(sc.calls[call].then.iter().map(|&c| (c, Some(s))));
        for sandbox in &sc.sandboxes {
            if let Some(calls) = sandbox
                .forks
                .iter()
                .find(|f| f.service == s)
                .and_then(|f| f.calls.as_deref())
            {
                stack.extend(calls.iter().map(|&c| (c, Some(s))));
            }
        }
    }
    edges.sort();
    edges.dedup();
    edges
}

/// What hop `h` of a request of traffic group `t` was, and for a
/// violation what it broke. The rules are the checks': a fork reached by a
/// request of no sandbox is a leak, another sandbox's fork is cross-talk,
/// and anything but its sandbox's fork of a service the sandbox forks is a
/// miss, unless the group lists its expected misses (then the expectations
/// judge them, and an expected miss is a fallback). A failed or rejected
/// hop is a violation, and so is every hop of a path that broke an
/// expectation (`path_failed`). Otherwise the sandbox's own fork is a
/// fork; the baseline or an unavailable fork serving a request with a key
/// is a fallback, unless the key did not reach the hop (`no_key`,
/// `malformed`): that, and every hop of a request without a key, is a
/// baseline. The differential check counts hops, not paths: it colours
/// nothing.
fn class(
    sc: &Scenario,
    t: &Traffic,
    h: &PathHop,
    path_failed: bool,
) -> (HopClass, Option<&'static str>) {
    let violation = |why| (HopClass::Violation, Some(why));
    let forked = h.reason == Some(Reason::Fork) || names::route(h.served) == HopRoute::Fork;
    let missed = t.intent.is_some_and(|k| {
        sc.fork(h.service, k).is_some() && h.served != Served::By(Workload::Fork(h.service, k))
    });
    match (h.served, t.intent, h.served.sandbox()) {
        (Served::Failed, ..) => violation("failed"),
        (Served::Rejected(_), ..) => violation("rejected"),
        (_, None, _) if forked => violation("leak"),
        (_, Some(k), Some(b)) if k != b => violation("cross-talk"),
        _ if missed && t.expect.misses.is_none() => violation("miss"),
        _ if path_failed => violation("expectations"),
        (Served::By(Workload::Fork(..)), ..) => (HopClass::Fork, None),
        _ if missed => (HopClass::Fallback, None),
        (Served::Unavailable(_), ..) => (HopClass::Fallback, None),
        _ if t.key.is_some() && !matches!(h.reason, Some(Reason::NoKey | Reason::Malformed)) => {
            (HopClass::Fallback, None)
        }
        _ => (HopClass::Baseline, None),
    }
}

fn check(name: &str, f: &Finding, what: &str) -> Check {
    Check {
        name: name.into(),
        passed: f.count == 0,
        count: f.count,
        summary: what.into(),
        examples: f.examples.iter().map(|e| e.1.clone()).collect(),
    }
}

impl Report {
    /// The report of `replayed`, a replay of `sc`.
    pub fn new(sc: &Scenario, replayed: &Replayed) -> Report {
        let agg = &replayed.summary;
        let expecting = sc.traffic.iter().filter(|t| !t.expect.is_empty()).count();
        let failing_requests: u64 = agg.group_failures.iter().sum();
        let groups = sc
            .traffic
            .iter()
            .zip(&agg.paths)
            .zip(&agg.group_failures)
            .map(|((t, paths), failures)| {
                let mut paths: Vec<_> = paths.iter().collect();
                paths.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then_with(|| a.0.cmp(b.0)));
                GroupReport {
                    name: t.name.clone(),
                    chain: sc.chains[t.chain].name.clone(),
                    kind: t.kind.as_str().into(),
                    key: t.key.clone(),
                    count: t.count,
                    failures: *failures,
                    paths: paths
                        .into_iter()
                        .map(|(hops, count)| PathReport {
                            count: count.requests,
                            failures: count.failed,
                            status: hops.iter().find_map(|h| h.served.status()).unwrap_or(200),
                            path: hops
                                .iter()
                                .map(|h| names::served(sc, h.service, h.served))
                                .collect(),
                            hops: hops
                                .iter()
                                .map(|h| {
                                    let (class, violation) = class(sc, t, h, count.failed > 0);
                                    HopDetail {
                                        caller: names::caller(sc, h.caller),
                                        service: sc.services[h.service].name.clone(),
                                        route: names::route(h.served).as_str().into(),
                                        reason: h.why().map_or("unknown", HopReason::as_str).into(),
                                        waypoint: names::waypoint(sc, h.decided_at)
                                            .map(str::to_owned),
                                        served_by: names::served(sc, h.service, h.served),
                                        parent: h.parent,
                                        class,
                                        violation,
                                    }
                                })
                                .collect(),
                        })
                        .collect(),
                }
            })
            .collect();
        let mut checks = vec![
            check(
                "leak",
                &agg.leak,
                "hops where a request of no sandbox reached a fork",
            ),
            check(
                "cross-talk",
                &agg.cross_talk,
                "hops where a request of one sandbox reached another's fork",
            ),
            check(
                "miss",
                &agg.miss,
                "forks a sandbox's requests should have reached but did not",
            ),
        ];
        if sc.mesh == Mesh::Ambient {
            checks.push(check(
                "unreachable-forks",
                &agg.unreachable_forks,
                "forks no request can reach: their service has no waypoint",
            ));
        }
        if let Some(reference) = &replayed.reference {
            checks.push(check(
                "differential",
                &agg.differential,
                &format!(
                    "hops where the filter and {reference} disagree, of {}",
                    thousands(agg.hops)
                ),
            ));
        }
        checks.push(check(
            "failed-hops",
            &agg.failed,
            "hops where the filter failed",
        ));
        checks.push(check(
            "expectations",
            &agg.expectations,
            &format!(
                "expectations that did not hold, in {} requests ({expecting} of {} traffic groups have expectations)",
                thousands(failing_requests),
                sc.traffic.len()
            ),
        ));
        // Blast radius: for each sandbox, the caller → service edges of the
        // call graph whose callee it forks.
        let edges = static_edges(sc);
        let blast = sc
            .sandboxes
            .iter()
            .enumerate()
            .map(|(b, sandbox)| {
                let edges: Vec<BlastEdge> = edges
                    .iter()
                    .filter(|(_, s)| sandbox.forks.iter().any(|f| f.service == *s))
                    .map(|e| {
                        let (total, by) = agg.edges.get(e).cloned().unwrap_or_default();
                        BlastEdge {
                            caller: e
                                .0
                                .map_or("ingress".into(), |c| sc.services[c].name.clone()),
                            service: sc.services[e.1].name.clone(),
                            captured: by.get(&b).copied().unwrap_or(0),
                            hops: total,
                        }
                    })
                    .collect();
                Blast {
                    key: sandbox.key.clone(),
                    captured: edges.iter().map(|e| e.captured).sum(),
                    edge_hops: edges.iter().map(|e| e.hops).sum(),
                    edges,
                }
            })
            .collect();
        let mut notes = agg.notes.clone();
        notes.sort();
        Report {
            scenario: sc.name.clone(),
            file: sc.file.display().to_string(),
            description: sc.description.clone(),
            wasm: replayed.backend.clone(),
            mesh: sc.mesh.as_str(),
            requests: agg.requests,
            hops: agg.hops,
            threads: replayed.threads,
            elapsed: replayed.elapsed,
            groups,
            checks,
            blast,
            notes,
        }
    }
}

#[cfg(test)]
mod tests;
