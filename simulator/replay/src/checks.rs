//! The checks: they judge a [`Trace`] and know nothing about the backend
//! that recorded it.
//!
//! Global checks, on every hop:
//! - **leak**: a request of no sandbox reached a fork;
//! - **cross-talk**: a request of sandbox K reached another sandbox's fork;
//! - **miss**: a request of sandbox K did not reach K's fork of a service
//!   K forks, with the [`Cause`] (for example `context_dropped at
//!   customer@baseline`); a traffic group that lists its expected misses
//!   accepts exactly those instead;
//! - **failed-hops**: the filter trapped or ran away.
//!
//! In an ambient mesh, one more, judged on the scenario rather than on
//! traces ([`unreachable_forks`]): **unreachable-forks**, every deployed
//! fork whose service has no waypoint. No filter decides the calls to such
//! a service, so no request, whatever it carries and whichever way it
//! comes, can reach the fork; the misses this causes are counted by the
//! miss check (cause `no_waypoint`) only for the traffic that called it.
//!
//! Per traffic group, its sparse expectations (path, status, hops,
//! misses). Leaving the baseline is what counts for leak and cross-talk,
//! whether or not the fork could answer.
//!
//! The **differential** check ([`compare`]) takes two traces of the same
//! request, from two backends, and compares them hop by hop.
//!
//! Each check also counts what the report shows: distinct paths per group
//! (and how many of their requests broke an expectation) and hops per
//! caller → service edge (the blast radius).

use laneway_core::Reason;
use laneway_scenario::expect::CallerMatch;
use laneway_scenario::{Cause, HopReason, Scenario, ServiceId, Workload};

use crate::names;
use crate::summary::{PathCount, PathHop, Summary};
use crate::trace::{Caller, DecidedAt, Hop, HopId, Served, Trace};

/// Buffers the checks reuse from request to request.
#[derive(Default)]
pub struct Scratch {
    path: Vec<PathHop>,
    misses: Vec<(ServiceId, Cause, Option<Workload>)>,
}

/// Why hop `hop` missed the intended sandbox's fork, if it did.
fn miss_cause(sc: &Scenario, trace: &Trace, id: HopId, hop: &Hop) -> Option<Cause> {
    let k = sc.traffic[trace.group].intent?;
    if sc.fork(hop.service, k).is_none() || hop.served == Served::By(Workload::Fork(hop.service, k))
    {
        return None;
    }
    Some(match hop.served {
        Served::Failed => Cause::Failed,
        Served::Unavailable(_) => Cause::Unavailable,
        Served::Rejected(_) => match hop.reason {
            Some(Reason::Limited) => Cause::Limited,
            Some(Reason::Looped) => Cause::Looped,
            _ => Cause::Rejected,
        },
        Served::By(Workload::Fork(..)) => Cause::OtherFork,
        // Whatever the context, no filter could have sent it to the fork.
        Served::By(Workload::Baseline(_)) if hop.decided_at == DecidedAt::Nowhere => {
            Cause::NoWaypoint
        }
        Served::By(Workload::Baseline(_)) => match hop.reason {
            Some(Reason::Malformed) => Cause::Malformed,
            Some(Reason::Conflict) => Cause::Conflict,
            Some(Reason::NoFork | Reason::UnknownKey) => Cause::NotConfigured,
            Some(Reason::Stripped) => Cause::Stripped,
            Some(Reason::Expired) => Cause::Expired,
            _ if trace.stripped_at(id).is_some() => Cause::Stripped,
            _ if trace.dropped_at(id).is_some() => Cause::ContextDropped,
            _ => Cause::NoKey,
        },
    })
}

/// Judges one request's trace into `summary`.
pub fn judge(sc: &Scenario, trace: &Trace, summary: &mut Summary, scratch: &mut Scratch) {
    let t = &sc.traffic[trace.group];
    let index = trace.index;
    let name = || names::request(sc, trace);
    scratch.path.clear();
    scratch.misses.clear();
    for (i, hop) in trace.hops().iter().enumerate() {
        let id = i as HopId;
        summary.hops += 1;
        scratch.path.push(PathHop {
            caller: hop.caller,
            service: hop.service,
            served: hop.served,
            decided_at: hop.decided_at,
            reason: hop.reason,
            parent: hop.parent,
        });
        if let Some(cause) = miss_cause(sc, trace, id, hop) {
            scratch
                .misses
                .push((hop.service, cause, trace.dropped_at(id)));
        }
        if hop.served == Served::Failed {
            let message = trace.failure(id).unwrap_or("failed");
            summary.failed.add(index, || {
                format!(
                    "{}: {}: {message}",
                    name(),
                    names::edge(sc, hop.caller, hop.service)
                )
            });
            continue;
        }
        let routed = hop.served.sandbox();
        let edge = summary
            .edges
            .entry((hop.caller.service(), hop.service))
            .or_default();
        edge.0 += 1;
        if let Some(b) = routed {
            *edge.1.entry(b).or_default() += 1;
        }
        if hop.route == Some(laneway_core::Route::Fork) {
            let reached = names::served(sc, hop.service, hop.served);
            match (t.intent, routed) {
                (None, _) => summary.leak.add(index, || {
                    format!(
                        "{} ({}): {} reached {reached}",
                        name(),
                        t.kind.as_str(),
                        names::edge(sc, hop.caller, hop.service),
                    )
                }),
                (Some(k), Some(b)) if k != b => summary.cross_talk.add(index, || {
                    format!(
                        "{} (sandbox {}): {} reached {}",
                        name(),
                        sc.sandboxes[k].key,
                        names::edge(sc, hop.caller, hop.service),
                        names::fork(sc, hop.service, b)
                    )
                }),
                _ => {}
            }
        }
    }
    summary.requests += 1;
    let failed = expectations(sc, trace, summary, scratch);
    if failed {
        summary.group_failures[trace.group] += 1;
    }
    let count = PathCount {
        requests: 1,
        failed: u64::from(failed),
    };
    let paths = &mut summary.paths[trace.group];
    match paths.get_mut(scratch.path.as_slice()) {
        Some(n) => n.add(count),
        None => {
            paths.insert(scratch.path.clone(), count);
        }
    }
}

/// The misses and a traffic group's sparse expectations; `true` when one
/// did not hold.
fn expectations(sc: &Scenario, trace: &Trace, summary: &mut Summary, scratch: &Scratch) -> bool {
    let t = &sc.traffic[trace.group];
    let e = &t.expect;
    let index = trace.index;
    let name = || names::request(sc, trace);
    let mut failed = false;
    let by_name = |a: &(ServiceId, &str), b: &(ServiceId, &str)| a.cmp(b);
    match &e.misses {
        Some(want) => {
            let mut got: Vec<(ServiceId, &str)> = scratch
                .misses
                .iter()
                .map(|(s, c, _)| (*s, c.as_str()))
                .collect();
            got.sort_by(by_name);
            let mut want: Vec<(ServiceId, &str)> =
                want.iter().map(|(s, c)| (*s, c.as_str())).collect();
            want.sort_by(by_name);
            if got != want {
                failed = true;
                summary.expectations.add(index, || {
                    format!(
                        "{}: expected misses {}, got {}",
                        name(),
                        names::misses(sc, &want),
                        names::misses(sc, &got)
                    )
                });
            }
        }
        None => {
            let k = t.intent.unwrap_or(0);
            for &(s, cause, at) in &scratch.misses {
                summary.miss.add(index, || {
                    let at = at
                        .map(|w| format!(" at {}", sc.workload_name(w)))
                        .unwrap_or_default();
                    format!(
                        "{}: missed {} ({}{at})",
                        name(),
                        names::fork(sc, s, k),
                        cause.as_str()
                    )
                });
            }
        }
    }
    let status = trace.status();
    if let Some(want) = e.status
        && want != status
    {
        failed = true;
        summary.expectations.add(index, || {
            format!("{}: expected status {want}, got {status}", name())
        });
    }
    let hops = trace.hops();
    if let Some(want) = &e.path {
        let same = want.len() == hops.len()
            && want
                .iter()
                .zip(hops)
                .all(|(w, h)| *w == (h.service, names::as_expected(h.served)));
        if !same {
            failed = true;
            summary.expectations.add(index, || {
                let want: Vec<String> = want
                    .iter()
                    .map(|(s, w)| names::expected(sc, *s, *w))
                    .collect();
                let got: Vec<String> = hops
                    .iter()
                    .map(|h| names::served(sc, h.service, h.served))
                    .collect();
                format!(
                    "{}: expected path {}, got {}",
                    name(),
                    want.join(" → "),
                    got.join(" → ")
                )
            });
        }
    }
    for h in &e.hops {
        let matches = |k: &&Hop| {
            k.service == h.service
                && match (h.caller, k.caller) {
                    (CallerMatch::Any, _) => true,
                    (CallerMatch::Ingress, Caller::Ingress) => true,
                    (CallerMatch::Service(cs), Caller::Workload(w)) => {
                        Scenario::service_of(w) == cs
                    }
                    _ => false,
                }
        };
        let mut any = false;
        for k in hops.iter().filter(matches) {
            any = true;
            let route = names::route(k.served);
            let reason = k.why();
            let served = (k.service, names::as_expected(k.served));
            let wrong = h.route.is_some_and(|r| r != route)
                || h.reason.is_some_and(|r| Some(r) != reason)
                || h.served_by.is_some_and(|w| w != served);
            if wrong {
                failed = true;
                summary.expectations.add(index, || {
                    let wanted: Vec<String> = [
                        h.route.map(|r| format!("route {r}")),
                        h.reason.map(|r| format!("reason {r}")),
                        h.served_by
                            .map(|(s, w)| format!("served by {}", names::expected(sc, s, w))),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    format!(
                        "{}: hop {}: expected {}, got route {route}, reason {}, served by {}",
                        name(),
                        h.edge,
                        wanted.join(", "),
                        reason.map_or("unknown", HopReason::as_str),
                        names::served(sc, k.service, k.served)
                    )
                });
            }
        }
        if !any {
            failed = true;
            summary.expectations.add(index, || {
                format!("{}: hop {}: the request made no such call", name(), h.edge)
            });
        }
    }
    failed
}

/// What a hop's decision was, and where, for comparing two backends.
fn decision<'t>(sc: &'t Scenario, trace: &'t Trace, hop: &Hop) -> (String, &'t [u8]) {
    let route = hop.route.map_or("?", |r| r.as_str());
    let reason = hop.why().map_or("unreadable", HopReason::as_str);
    let at = names::waypoint(sc, hop.decided_at)
        .map(|w| format!(" at waypoint {w}"))
        .unwrap_or_default();
    (
        format!("{route} ({reason}){at}"),
        trace.authority_out(sc, hop),
    )
}

/// The differential check: `primary` and `reference` are one request as
/// two backends recorded it. Compares them hop by hop (where it was
/// decided, route, reason, the `:authority` sent, who served it) and
/// counts each hop that differs, or that only one of them made. Hops where
/// the primary's filter failed are the failed-hops check's, not this
/// one's.
pub fn compare(sc: &Scenario, primary: &Trace, reference: &Trace, summary: &mut Summary) {
    let (a, b) = (primary.hops(), reference.hops());
    let name = || names::request(sc, primary);
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i), b.get(i));
        if x.is_some_and(|x| x.served == Served::Failed) {
            continue;
        }
        summary.compared += 1;
        let same = match (x, y) {
            (Some(x), Some(y)) => {
                x.decided_at == y.decided_at
                    && x.route == y.route
                    && x.reason == y.reason
                    && x.served == y.served
                    && x.service == y.service
                    && x.parent == y.parent
                    && primary.authority_out(sc, x) == reference.authority_out(sc, y)
            }
            _ => false,
        };
        if same {
            continue;
        }
        summary.differential.add(primary.index, || match (x, y) {
            (Some(x), Some(y)) => {
                let (wd, wa) = decision(sc, primary, x);
                let (nd, na) = decision(sc, reference, y);
                format!(
                    "{}: {}: the filter says {wd} to {}, the core says {nd} to {}",
                    name(),
                    names::edge(sc, x.caller, x.service),
                    String::from_utf8_lossy(wa),
                    String::from_utf8_lossy(na),
                )
            }
            (Some(x), None) => format!(
                "{}: {}: only the filter made this call",
                name(),
                names::edge(sc, x.caller, x.service)
            ),
            (None, Some(y)) => format!(
                "{}: {}: only the core made this call",
                name(),
                names::edge(sc, y.caller, y.service)
            ),
            (None, None) => String::new(),
        });
    }
}

/// The **unreachable-forks** check, on the scenario alone (an ambient
/// mesh; nothing in a sidecar mesh): each deployed fork whose service has
/// no waypoint, in sandbox then fork order, into
/// `summary.unreachable_forks`.
pub fn unreachable_forks(sc: &Scenario, summary: &mut Summary) {
    for (b, sandbox) in sc.sandboxes.iter().enumerate() {
        for f in &sandbox.forks {
            if sc.decided_at(f.service) != DecidedAt::Nowhere {
                continue;
            }
            let service = &sc.services[f.service].name;
            summary.unreachable_forks.add(0, || {
                format!(
                    "{}: {service} has no waypoint, so no filter decides its calls and \
                     tagged requests reach {service}@baseline (give it one: \
                     services.{service}.waypoint; in the cluster, the istio.io/use-waypoint label)",
                    names::fork(sc, f.service, b)
                )
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::Finding;
    use crate::{NativeFactory, Options};

    fn replayed(name: &str) -> (Scenario, Summary) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/scenarios")
            .join(name);
        let sc = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let options = Options {
            threads: 1,
            ..Options::default()
        };
        let summary = crate::replay(&sc, &NativeFactory, None, &options)
            .unwrap_or_else(|e| panic!("{e}"))
            .summary;
        (sc, summary)
    }

    /// A fork behind no waypoint: unreachable, once per fork however many
    /// requests ran, and every tagged request misses it with cause
    /// `no_waypoint`; the group that expects that miss accepts it.
    #[test]
    fn a_fork_without_a_waypoint_is_unreachable_and_missed() {
        let (_, s) = replayed("failing/ambient-no-waypoint.yaml");
        assert_eq!(s.unreachable_forks.count, 1);
        assert!(
            s.unreachable_forks.examples[0]
                .1
                .starts_with("location@fork(qwblp48fpmb30): location has no waypoint"),
            "{:?}",
            s.unreachable_forks.examples
        );
        assert_eq!(
            s.miss.count, 20,
            "the tagged group, not the acknowledged one"
        );
        assert_eq!(
            s.miss.examples[0].1,
            "tagged#0: missed location@fork(qwblp48fpmb30) (no_waypoint)"
        );
        assert_eq!(s.expectations.count, 0);
        assert_eq!((s.leak.count, s.cross_talk.count), (0, 0));
    }

    /// No false positive: every fork behind a waypoint, and in a sidecar
    /// mesh waypoints do not exist.
    #[test]
    fn forks_behind_waypoints_and_sidecar_meshes_have_no_unreachable_fork() {
        for name in ["ambient.yaml", "hotrod.yaml", "route-group.yaml"] {
            let (_, s) = replayed(name);
            assert_eq!(s.unreachable_forks, Finding::default(), "{name}");
            assert_eq!(s.miss.count, 0, "{name}");
        }
    }
}
