//! An in-process mesh: a [`Backend`] that walks the scenario's call graph
//! itself and asks a [`Sidecar`] to decide each call where Istio decides
//! it, in the caller's outbound sidecar.
//!
//! For each request, from the ingress:
//! 1. the caller sends the callee's `:authority` and the context it
//!    propagates (the entry headers at the ingress);
//! 2. the sidecar decides: baseline, a fork (a rewritten `:authority`), or
//!    a local reply; or it fails;
//! 3. the decision picks the workload that serves the call (a fork, the
//!    baseline, or none: rejected, unavailable, failed), and that workload
//!    decides, by the scenario, what is called next and which context it
//!    propagates (faults included).
//!
//! The walk keeps its own stack (no recursion) and records hops depth
//! first, each with its parent, into the [`Trace`]. Nothing allocates per
//! hop once the buffers have grown.

use laneway_core::{Reason, Route};
use laneway_scenario::{CallId, Workload};

use crate::backend::{Backend, Plan};
use crate::trace::{Caller, Context, Hop, HopId, Served, Trace};

/// One outbound call, as the caller's sidecar sees it.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// `host:port` of the callee.
    pub authority: &'a str,
    /// The `baggage` lines the caller sends.
    pub baggage: &'a [&'a str],
    /// The `tracestate` lines the caller sends.
    pub tracestate: &'a [&'a str],
}

/// A sidecar's decision for one call. Reused from call to call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decided {
    /// Fork, baseline or a local reply.
    pub route: Route,
    /// Why; `None` when the sidecar's record of it could not be read.
    pub reason: Option<Reason>,
    /// The `:authority` sent upstream (rewritten for a fork).
    pub authority: Vec<u8>,
    /// The status of a local reply.
    pub status: u16,
}

impl Default for Decided {
    fn default() -> Decided {
        Decided {
            route: Route::Baseline,
            reason: None,
            authority: Vec::new(),
            status: 200,
        }
    }
}

impl Decided {
    /// Sets every field, reusing the authority buffer.
    pub fn set(&mut self, route: Route, reason: Option<Reason>, authority: &[u8], status: u16) {
        self.route = route;
        self.reason = reason;
        self.authority.clear();
        self.authority.extend_from_slice(authority);
        self.status = status;
    }
}

/// Decides one call at a time.
pub trait Sidecar {
    /// Switches to another plugin configuration; `Err` when refused.
    fn configure(&mut self, config: &str) -> Result<(), String>;

    /// Decides `call` into `out`. `Err` is a failed hop (a trap, a runaway
    /// call), described for the report.
    fn decide(&mut self, call: &Call<'_>, out: &mut Decided) -> Result<(), String>;
}

struct Pending {
    call: CallId,
    caller: Caller,
    parent: Option<HopId>,
    context: Context,
}

/// The scenario's mesh around one sidecar.
pub struct Mesh<S> {
    sidecar: S,
    decided: Decided,
    stack: Vec<Pending>,
}

impl<S: Sidecar> Mesh<S> {
    /// A mesh whose every call goes through `sidecar`.
    pub fn new(sidecar: S) -> Mesh<S> {
        Mesh {
            sidecar,
            decided: Decided::default(),
            stack: Vec::new(),
        }
    }

    /// The sidecar.
    pub fn sidecar(&mut self) -> &mut S {
        &mut self.sidecar
    }
}

impl<S: Sidecar> Backend for Mesh<S> {
    fn configure(&mut self, config: &str) -> Result<(), String> {
        self.sidecar.configure(config)
    }

    fn run(&mut self, plan: &Plan<'_>, trace: &mut Trace) {
        let sc = plan.scenario;
        trace.clear(plan.group, plan.index);
        let t = &sc.traffic[plan.group];
        self.stack.clear();
        self.stack.push(Pending {
            call: sc.chains[t.chain].entry,
            caller: Caller::Ingress,
            parent: None,
            context: Context::ENTRY,
        });
        while let Some(p) = self.stack.pop() {
            let service = sc.calls[p.call].service;
            let call = Call {
                authority: &sc.services[service].authority,
                baggage: if p.context.baggage { plan.baggage } else { &[] },
                tracestate: if p.context.tracestate {
                    plan.tracestate
                } else {
                    &[]
                },
            };
            let mut hop = Hop {
                parent: p.parent,
                caller: p.caller,
                call: p.call,
                service,
                route: None,
                reason: None,
                authority: None,
                served: Served::Failed,
                context_in: p.context,
                context_out: None,
            };
            if let Err(message) = self.sidecar.decide(&call, &mut self.decided) {
                let id = trace.push(hop);
                trace.fail(id, message);
                continue;
            }
            let d = &self.decided;
            hop.route = Some(d.route);
            hop.reason = d.reason;
            hop.served = match d.route {
                Route::Reject => Served::Rejected(d.status),
                Route::Fork => {
                    hop.authority = Some(trace.store(&d.authority));
                    let host = laneway_core::authority::host(&d.authority);
                    match sc.served_by(service, Some(host)) {
                        Some(w) if sc.unavailable(w) => Served::Unavailable(Some(w)),
                        Some(w) => Served::By(w),
                        None => Served::Unavailable(None),
                    }
                }
                Route::Baseline => Served::By(Workload::Baseline(service)),
            };
            let Served::By(w) = hop.served else {
                trace.push(hop);
                continue;
            };
            let propagates = sc.propagation(w, plan.index);
            let next = Context {
                baggage: p.context.baggage && propagates.baggage(),
                tracestate: p.context.tracestate && propagates.tracestate(),
            };
            hop.context_out = Some(next);
            let id = trace.push(hop);
            for &c in sc.next_calls(p.call, w).iter().rev() {
                self.stack.push(Pending {
                    call: c,
                    caller: Caller::Workload(w),
                    parent: Some(id),
                    context: next,
                });
            }
        }
    }
}
