//! How hops are named in findings and reports: the one place where a
//! trace's ids become text.

use laneway_scenario::expect::ExpectedServed;
use laneway_scenario::{HopRoute, Place, Scenario, ServiceId, Workload, WorkloadName};

use crate::trace::{Caller, DecidedAt, Served, Trace};

/// `service@baseline`, `service@fork(K)`, `service@rejected`, ...
pub fn served(sc: &Scenario, service: ServiceId, served: Served) -> String {
    expected(sc, service, as_expected(served))
}

/// An expectation's workload, as the scenario file wrote it.
pub fn expected(sc: &Scenario, service: ServiceId, served: ExpectedServed) -> String {
    let at = |place| WorkloadName {
        service: &sc.services[service].name,
        place,
    };
    match served {
        ExpectedServed::By(w) => sc.workload_name(w),
        ExpectedServed::Rejected => at(Place::Rejected),
        ExpectedServed::Unavailable => at(Place::Unavailable),
        ExpectedServed::Failed => at(Place::Failed),
    }
    .to_string()
}

/// How an expectation sees what served a hop.
pub fn as_expected(served: Served) -> ExpectedServed {
    match served {
        Served::By(w) => ExpectedServed::By(w),
        Served::Rejected(_) => ExpectedServed::Rejected,
        Served::Unavailable(_) => ExpectedServed::Unavailable,
        Served::Failed => ExpectedServed::Failed,
    }
}

/// The route a hop took, as expectations and reports name it.
pub fn route(served: Served) -> HopRoute {
    match served {
        Served::By(laneway_scenario::Workload::Fork(..)) | Served::Unavailable(_) => HopRoute::Fork,
        Served::By(laneway_scenario::Workload::Baseline(_)) => HopRoute::Baseline,
        Served::Rejected(_) => HopRoute::Reject,
        Served::Failed => HopRoute::Failed,
    }
}

/// `ingress` or the calling workload.
pub fn caller(sc: &Scenario, caller: Caller) -> String {
    match caller {
        Caller::Ingress => "ingress".into(),
        Caller::Workload(w) => sc.workload_name(w).to_string(),
    }
}

/// The waypoint that decided a hop; `None` when the caller's sidecar did
/// (reports leave that unsaid) or no filter did (its reason,
/// `no_waypoint`, says so).
pub fn waypoint(sc: &Scenario, at: DecidedAt) -> Option<&str> {
    match at {
        DecidedAt::Waypoint(w) => sc.waypoints.get(w).map(String::as_str),
        DecidedAt::Sidecar | DecidedAt::Nowhere => None,
    }
}

/// `caller → service`.
pub fn edge(sc: &Scenario, from: Caller, service: ServiceId) -> String {
    format!("{} → {}", caller(sc, from), sc.services[service].name)
}

/// A miss list: `svc (cause), ...`, or `none`.
pub fn misses(sc: &Scenario, m: &[(ServiceId, &str)]) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(s, c)| format!("{} ({c})", sc.services[*s].name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `WorkloadName` of a fork, as text.
pub fn fork(sc: &Scenario, service: ServiceId, sandbox: usize) -> String {
    WorkloadName::fork(&sc.services[service].name, &sc.sandboxes[sandbox].key).to_string()
}

/// The deployment that runs workload `w`: the service's name for its
/// baseline (`location`), `SERVICE-KEY` for a sandbox's fork
/// (`location-qwblp48fpmb30`), the key as the scenario writes it.
pub fn deployment(sc: &Scenario, w: Workload) -> String {
    match w {
        Workload::Baseline(s) => sc.services[s].name.clone(),
        Workload::Fork(s, b) => format!("{}-{}", sc.services[s].name, sc.sandboxes[b].key),
    }
}

/// A trace's request, `GROUP#N`.
pub fn request(sc: &Scenario, trace: &Trace) -> String {
    let t = &sc.traffic[trace.group];
    format!("{}#{}", t.name, trace.index - t.first)
}

/// The first failed hop of `trace`, as `request GROUP#N: CALLER → SERVICE: why`.
pub fn first_failure(sc: &Scenario, trace: &Trace) -> Option<String> {
    let (id, why) = trace.first_failure()?;
    let hop = trace.hop(id);
    Some(format!(
        "request {}: {}: {why}",
        request(sc, trace),
        edge(sc, hop.caller, hop.service)
    ))
}
