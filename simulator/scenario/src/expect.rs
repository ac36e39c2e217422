//! The vocabulary of expectations, and expectations resolved to ids.
//!
//! A scenario's traffic group may expect, sparsely: the path of workloads,
//! the status, per hop a route, a reason and who served it, and exactly
//! which forks it misses and why. [`compile`](crate::compile) resolves the
//! names written in the file ([`Cause`], [`HopRoute`], [`HopReason`],
//! workload names) to these types once, and refuses a name it does not
//! know, so the replay compares ids and enums, never strings.
//!
//! A hop's reason is the filter's [`Reason`], or `no_waypoint` for a call
//! that no filter decided (an ambient mesh, a service without a waypoint):
//! [`HopReason`] keeps the two apart, so the core's `Reason` stays the
//! filter's own vocabulary.

use std::fmt;

use laneway_core::Reason;

use crate::{DecidedAt, ServiceId, Workload};

/// Why a request of sandbox K did not reach K's fork of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    /// A workload upstream did not propagate the context.
    ContextDropped,
    /// The key sat in a malformed or over-limit header.
    Malformed,
    /// The key's member had two values.
    Conflict,
    /// The plugin configuration has no such fork (`no_fork`, `unknown_key`).
    NotConfigured,
    /// The filter rejected the key.
    Rejected,
    /// Routed to the fork, but it is down or not deployed.
    Unavailable,
    /// The filter failed.
    Failed,
    /// The request carried no key at all.
    NoKey,
    /// Routed to another fork.
    OtherFork,
    /// No filter saw the call: in an ambient mesh, the service has no
    /// waypoint.
    NoWaypoint,
    /// An edge did not trust the request and removed its key.
    Stripped,
    /// The sandbox or the fork had expired.
    Expired,
    /// The key was over its rate limit (429).
    Limited,
    /// The loop guard stopped the request (508).
    Looped,
}

impl Cause {
    /// Every cause.
    pub const ALL: [Cause; 14] = [
        Cause::ContextDropped,
        Cause::Malformed,
        Cause::Conflict,
        Cause::NotConfigured,
        Cause::Rejected,
        Cause::Unavailable,
        Cause::Failed,
        Cause::NoKey,
        Cause::OtherFork,
        Cause::NoWaypoint,
        Cause::Stripped,
        Cause::Expired,
        Cause::Limited,
        Cause::Looped,
    ];

    /// The snake_case name used in scenario files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::ContextDropped => "context_dropped",
            Cause::Malformed => "malformed",
            Cause::Conflict => "conflict",
            Cause::NotConfigured => "not_configured",
            Cause::Rejected => "rejected",
            Cause::Unavailable => "unavailable",
            Cause::Failed => "failed",
            Cause::NoKey => "no_key",
            Cause::OtherFork => "other_fork",
            Cause::NoWaypoint => "no_waypoint",
            Cause::Stripped => "stripped",
            Cause::Expired => "expired",
            Cause::Limited => "limited",
            Cause::Looped => "looped",
        }
    }

    /// The cause named `name`.
    pub fn from_name(name: &str) -> Option<Cause> {
        Cause::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a hop ended, as expectations and reports name it: the sidecar's
/// route, or `failed` when the filter failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HopRoute {
    /// Sent to a fork (whether or not the fork could answer).
    Fork,
    /// Sent to the baseline.
    Baseline,
    /// Answered locally by the filter.
    Reject,
    /// The filter failed.
    Failed,
}

impl HopRoute {
    /// Every route.
    pub const ALL: [HopRoute; 4] = [
        HopRoute::Fork,
        HopRoute::Baseline,
        HopRoute::Reject,
        HopRoute::Failed,
    ];

    /// `fork`, `baseline`, `reject` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            HopRoute::Fork => "fork",
            HopRoute::Baseline => "baseline",
            HopRoute::Reject => "reject",
            HopRoute::Failed => "failed",
        }
    }

    /// The route named `name`.
    pub fn from_name(name: &str) -> Option<HopRoute> {
        HopRoute::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl fmt::Display for HopRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a hop went where it went, as expectations and reports name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HopReason {
    /// The filter decided, for this reason.
    Filter(Reason),
    /// No filter saw the call (`no_waypoint`): in an ambient mesh, the
    /// service called has no waypoint, so the call reached its baseline
    /// as sent.
    NoWaypoint,
}

impl HopReason {
    /// The reason of a hop decided at `at` whose filter gave `reason`
    /// (`None`: the filter failed or its record could not be read).
    pub fn of(at: DecidedAt, reason: Option<Reason>) -> Option<HopReason> {
        match at {
            DecidedAt::Nowhere => Some(HopReason::NoWaypoint),
            DecidedAt::Sidecar | DecidedAt::Waypoint(_) => reason.map(HopReason::Filter),
        }
    }

    /// The filter's reason (`fork`, `no_key`, ...) or `no_waypoint`.
    pub fn as_str(self) -> &'static str {
        match self {
            HopReason::Filter(r) => r.as_str(),
            HopReason::NoWaypoint => "no_waypoint",
        }
    }

    /// The reason named `name`.
    pub fn from_name(name: &str) -> Option<HopReason> {
        match name {
            "no_waypoint" => Some(HopReason::NoWaypoint),
            _ => Reason::from_name(name.as_bytes()).map(HopReason::Filter),
        }
    }

    /// Every name, the filter's first.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Reason::ALL
            .iter()
            .map(|r| r.as_str())
            .chain(["no_waypoint"])
    }
}

impl fmt::Display for HopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What served a hop, as an expectation names it (a rejected hop's status
/// and an unavailable fork's identity are not part of the name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExpectedServed {
    /// This workload served it.
    By(Workload),
    /// The filter answered locally.
    Rejected,
    /// Routed to a fork that is down or not deployed.
    Unavailable,
    /// The filter failed.
    Failed,
}

/// Which caller a hop expectation is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallerMatch {
    /// `SERVICE`: any caller.
    Any,
    /// `ingress->SERVICE`.
    Ingress,
    /// `CALLER->SERVICE`: any workload of the calling service.
    Service(ServiceId),
}

/// One hop expectation, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HopExpectation {
    /// The key as written (`customer->location`), for messages.
    pub edge: String,
    /// The caller.
    pub caller: CallerMatch,
    /// The callee.
    pub service: ServiceId,
    /// The expected route.
    pub route: Option<HopRoute>,
    /// The expected reason.
    pub reason: Option<HopReason>,
    /// Who should have served it: a service and how.
    pub served_by: Option<(ServiceId, ExpectedServed)>,
}

/// A traffic group's expectations, resolved. Sparse: `None` and empty
/// fields check nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expectations {
    /// Every hop's service and workload, in call order.
    pub path: Option<Vec<(ServiceId, ExpectedServed)>>,
    /// The status the client gets.
    pub status: Option<u16>,
    /// Per hop.
    pub hops: Vec<HopExpectation>,
    /// Exactly the misses this traffic may have, sorted.
    pub misses: Option<Vec<(ServiceId, Cause)>>,
}

impl Expectations {
    /// Whether nothing is expected.
    pub fn is_empty(&self) -> bool {
        *self == Expectations::default()
    }
}
