//! The facts a backend records for one request: its [`Trace`], the tree of
//! hops it made, in call order (depth first), each with its parent.
//!
//! A hop says who called which service, where the call was decided
//! ([`DecidedAt`]: the caller's sidecar, the callee's waypoint, or nowhere),
//! what the filter decided and why (a [`Reason`] from the core, never a
//! string), the `:authority` it sent upstream, who served it, and the
//! context that came in and went out. A hop decided nowhere has no filter
//! reason; it is `no_waypoint` ([`Hop::why`]) only in what is judged and
//! shown, so the core's `Reason` stays the filter's vocabulary.
//! Checks, comparisons and reports read traces and nothing else, so every
//! backend is judged by the same code.
//!
//! A trace is reused from request to request: [`Trace::clear`] keeps its
//! buffers, so recording allocates nothing in steady state (failure
//! messages aside).

use laneway_core::{Reason, Route};
pub use laneway_scenario::DecidedAt;
use laneway_scenario::{CallId, HopReason, Scenario, ServiceId, Workload};

/// Who made a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Caller {
    /// The ingress (the test client's entry point).
    Ingress,
    /// A workload.
    Workload(Workload),
}

impl Caller {
    /// The calling service, `None` for the ingress.
    pub fn service(self) -> Option<ServiceId> {
        match self {
            Caller::Ingress => None,
            Caller::Workload(w) => Some(Scenario::service_of(w)),
        }
    }
}

/// What a hop reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Served {
    /// This workload served it.
    By(Workload),
    /// The filter answered locally with this status.
    Rejected(u16),
    /// Routed to a fork that is down (the fork) or not deployed (`None`): 503.
    Unavailable(Option<Workload>),
    /// The filter failed (a trap, a runaway call): the hop failed.
    Failed,
}

impl Served {
    /// The sandbox whose fork the hop was routed to, whether or not the
    /// fork could answer.
    pub fn sandbox(self) -> Option<usize> {
        match self {
            Served::By(Workload::Fork(_, b)) | Served::Unavailable(Some(Workload::Fork(_, b))) => {
                Some(b)
            }
            _ => None,
        }
    }

    /// The status this hop gives the client, when it ends the request.
    pub fn status(self) -> Option<u16> {
        match self {
            Served::Rejected(s) => Some(s),
            Served::Unavailable(_) => Some(503),
            Served::Failed => Some(500),
            Served::By(_) => None,
        }
    }
}

/// Which of the request's context headers a call carries: the entry
/// `baggage` and `tracestate` lines pass from workload to workload
/// unchanged, or are dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Context {
    /// The `baggage` lines.
    pub baggage: bool,
    /// The `tracestate` lines.
    pub tracestate: bool,
}

impl Context {
    /// Both headers, as the ingress sends them.
    pub const ENTRY: Context = Context {
        baggage: true,
        tracestate: true,
    };

    /// Whether `self` lacks a header that `before` had.
    pub fn lost_from(self, before: Context) -> bool {
        (before.baggage && !self.baggage) || (before.tracestate && !self.tracestate)
    }
}

/// Index of a hop in its [`Trace`].
pub type HopId = u32;

/// Where a recorded string lives in the trace's text buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    start: u32,
    len: u32,
}

/// One hop of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Hop {
    /// The hop that made this call; `None` for the ingress's call.
    pub parent: Option<HopId>,
    /// Who called.
    pub caller: Caller,
    /// The scenario's call node.
    pub call: CallId,
    /// The callee.
    pub service: ServiceId,
    /// Which filter decided the call: the caller's sidecar, the callee's
    /// waypoint, or none (then `route` is the baseline and `reason` is
    /// `None`).
    pub decided_at: DecidedAt,
    /// What the filter did (`Baseline` when no filter saw the call);
    /// `None` when the filter failed.
    pub route: Option<Route>,
    /// The filter's reason; `None` when the filter failed, its record
    /// could not be read, or no filter saw the call.
    pub reason: Option<Reason>,
    /// The `:authority` sent upstream when the filter rewrote it.
    pub authority: Option<Span>,
    /// Who served it.
    pub served: Served,
    /// The context that came in.
    pub context_in: Context,
    /// The context the serving workload sent on to its own calls; `None`
    /// when no workload served the hop.
    pub context_out: Option<Context>,
    /// The context lines the caller sent, when a filter upstream edited
    /// them (else they are the traffic's entry lines): `NAME: VALUE`
    /// lines, each ending in `\n`.
    pub lines: Option<Span>,
}

impl Hop {
    /// Why the hop went where it went: the filter's reason, or
    /// `no_waypoint` when no filter saw the call; `None` when the filter
    /// failed or its record could not be read.
    pub fn why(&self) -> Option<HopReason> {
        HopReason::of(self.decided_at, self.reason)
    }
}

/// One request's hops, as a backend recorded them.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// The traffic group.
    pub group: usize,
    /// The request's global index.
    pub index: u64,
    hops: Vec<Hop>,
    text: Vec<u8>,
    failures: Vec<(HopId, String)>,
}

impl Trace {
    /// Empties the trace for request `index` of `group`, keeping buffers.
    pub fn clear(&mut self, group: usize, index: u64) {
        self.group = group;
        self.index = index;
        self.hops.clear();
        self.text.clear();
        self.failures.clear();
    }

    /// Records a hop; returns its id.
    pub fn push(&mut self, hop: Hop) -> HopId {
        self.hops.push(hop);
        (self.hops.len() - 1) as HopId
    }

    /// Stores `text` (a rewritten `:authority`) for a hop to point at.
    pub fn store(&mut self, text: &[u8]) -> Span {
        let start = self.text.len() as u32;
        self.text.extend_from_slice(text);
        Span {
            start,
            len: text.len() as u32,
        }
    }

    /// Records why hop `id` failed.
    pub fn fail(&mut self, id: HopId, message: String) {
        self.failures.push((id, message));
    }

    /// Every hop, in call order.
    pub fn hops(&self) -> &[Hop] {
        &self.hops
    }

    /// The hop `id`.
    pub fn hop(&self, id: HopId) -> &Hop {
        &self.hops[id as usize]
    }

    /// The bytes of `span`.
    pub fn text(&self, span: Span) -> &[u8] {
        let start = span.start as usize;
        self.text
            .get(start..start + span.len as usize)
            .unwrap_or_default()
    }

    /// The `:authority` hop `hop` sent upstream: the rewritten one, or the
    /// service's own.
    pub fn authority_out<'a>(&'a self, scenario: &'a Scenario, hop: &Hop) -> &'a [u8] {
        match hop.authority {
            Some(span) => self.text(span),
            None => scenario.services[hop.service].authority.as_bytes(),
        }
    }

    /// Why hop `id` failed, if it did.
    pub fn failure(&self, id: HopId) -> Option<&str> {
        self.failures
            .iter()
            .find(|(h, _)| *h == id)
            .map(|(_, m)| m.as_str())
    }

    /// The first failed hop and why, if any hop failed.
    pub fn first_failure(&self) -> Option<(HopId, &str)> {
        self.failures.first().map(|(h, m)| (*h, m.as_str()))
    }

    /// How deep hop `id` sits: 0 for the ingress's call.
    pub fn depth(&self, id: HopId) -> usize {
        let mut depth = 0;
        let mut at = self.hop(id).parent;
        while let Some(p) = at {
            depth += 1;
            at = self.hop(p).parent;
        }
        depth
    }

    /// The workload that lost context on the way to hop `id`: the nearest
    /// ancestor that sent on less than it received.
    pub fn dropped_at(&self, id: HopId) -> Option<Workload> {
        let mut at = self.hop(id).parent;
        while let Some(p) = at {
            let h = self.hop(p);
            if let (Some(out), Served::By(w)) = (h.context_out, h.served)
                && out.lost_from(h.context_in)
            {
                return Some(w);
            }
            at = h.parent;
        }
        None
    }

    /// The nearest ancestor of hop `id` where an edge removed an untrusted
    /// key (reason `stripped`).
    pub fn stripped_at(&self, id: HopId) -> Option<HopId> {
        let mut at = self.hop(id).parent;
        while let Some(p) = at {
            if self.hop(p).reason == Some(laneway_core::Reason::Stripped) {
                return Some(p);
            }
            at = self.hop(p).parent;
        }
        None
    }

    /// The status the client got: that of the first hop that ended the
    /// request, else 200.
    pub fn status(&self) -> u16 {
        self.hops
            .iter()
            .find_map(|h| h.served.status())
            .unwrap_or(200)
    }
}
