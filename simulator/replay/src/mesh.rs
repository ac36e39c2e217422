//! An in-process mesh: a [`Backend`] that walks the scenario's call graph
//! itself and asks a [`Sidecar`] to decide each call where Istio decides
//! it ([`Scenario::decided_at`](laneway_scenario::Scenario::decided_at)):
//! with sidecars, in the caller's outbound sidecar; in ambient mode, at the
//! waypoint of the service called.
//!
//! For each request, from the ingress:
//! 1. the caller sends the callee's `:authority` and the context it
//!    propagates (the entry headers at the ingress);
//! 2. the filter where the call is decided decides: baseline, a fork (a
//!    rewritten `:authority`), or a local reply; or it fails. A waypoint
//!    sees what a sidecar would: the request as the caller sent it, its
//!    `:authority` the service's host; a fork's rewritten `:authority` is
//!    where the waypoint forwards it. In ambient mode a call to a service
//!    without a waypoint meets no filter at all: it reaches the baseline
//!    as sent, decided nowhere ([`DecidedAt::Nowhere`], reason
//!    `no_waypoint`), and the sidecar is not asked;
//! 3. the decision picks the workload that serves the call (a fork, the
//!    baseline, or none: rejected, unavailable, failed), and that workload
//!    decides, by the scenario, what is called next and which context it
//!    propagates (faults included).
//!
//! One [`Sidecar`] stands for every filter instance (each caller's
//! sidecar, each waypoint): they load the same module with the same
//! configuration, and the filter keeps no state from request to request.
//! [`Call::at`] says which instance a call reaches, for a sidecar that
//! wants to know.
//!
//! The context a workload propagates is the one it *received*: the
//! `baggage` and `tracestate` lines as the filter forwarded them. A filter
//! that edits them (an edge removing an untrusted key, the loop guard's
//! hop counter, a preview key injected) changes what every later hop sees.
//! The entry call is decided by the ingress gateway's configuration when
//! the scenario gives one ([`Call::entry`]).
//!
//! The walk keeps its own stack (no recursion) and records hops depth
//! first, each with its parent, into the [`Trace`]. Nothing allocates per
//! hop once the buffers have grown.

use laneway_core::{Reason, Route};
use laneway_scenario::{CallId, Workload};

use crate::backend::{Backend, Plan};
use crate::trace::{Caller, Context, DecidedAt, Hop, HopId, Served, Trace};

/// One call, as the filter that decides it sees it.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// Where it is decided: the caller's sidecar or the callee's waypoint
    /// (never [`DecidedAt::Nowhere`]: such a call reaches no filter).
    pub at: DecidedAt,
    /// The entry call, decided at the ingress gateway.
    pub entry: bool,
    /// The `:authority` sent: `host:port` of the callee, or the entry's
    /// own (a preview host).
    pub authority: &'a str,
    /// `host:port` of the callee.
    pub service_authority: &'a str,
    /// The `:path`.
    pub path: &'a str,
    /// The caller's address (`source.address`).
    pub source: &'a str,
    /// The filters' clock, Unix ns.
    pub now_ns: u64,
    /// The `baggage` lines the caller sends.
    pub baggage: &'a [Vec<u8>],
    /// The `tracestate` lines the caller sends.
    pub tracestate: &'a [Vec<u8>],
}

/// The address of a workload calling from inside the mesh, and of a
/// client whose traffic gives none.
pub const MESH_SOURCE: &str = "10.0.0.1:40000";

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
    /// The filter changed the context lines: these are what it forwarded.
    pub edited: bool,
    /// Forwarded `baggage` lines (when `edited`).
    pub baggage: Vec<Vec<u8>>,
    /// Forwarded `tracestate` lines (when `edited`).
    pub tracestate: Vec<Vec<u8>>,
}

impl Default for Decided {
    fn default() -> Decided {
        Decided {
            route: Route::Baseline,
            reason: None,
            authority: Vec::new(),
            status: 200,
            edited: false,
            baggage: Vec::new(),
            tracestate: Vec::new(),
        }
    }
}

impl Decided {
    /// Sets every field, reusing the authority buffer; the context lines
    /// are unedited until [`Decided::forward`] says otherwise.
    pub fn set(&mut self, route: Route, reason: Option<Reason>, authority: &[u8], status: u16) {
        self.route = route;
        self.reason = reason;
        self.authority.clear();
        self.authority.extend_from_slice(authority);
        self.status = status;
        self.edited = false;
    }

    /// Records the context lines the filter forwarded, when they differ
    /// from those it was given.
    pub fn forward<'l>(
        &mut self,
        call: &Call<'_>,
        baggage: impl Iterator<Item = &'l [u8]> + Clone,
        tracestate: impl Iterator<Item = &'l [u8]> + Clone,
    ) {
        let same = |given: &[Vec<u8>], sent: &mut dyn Iterator<Item = &'l [u8]>| {
            let mut n = 0;
            for line in sent {
                if given.get(n).map(Vec::as_slice) != Some(line) {
                    return false;
                }
                n += 1;
            }
            n == given.len()
        };
        if same(call.baggage, &mut baggage.clone())
            && same(call.tracestate, &mut tracestate.clone())
        {
            self.edited = false;
            return;
        }
        self.edited = true;
        refill(&mut self.baggage, baggage);
        refill(&mut self.tracestate, tracestate);
    }
}

/// Copies `lines` into `into`, reusing its buffers.
fn refill<'l>(into: &mut Vec<Vec<u8>>, lines: impl Iterator<Item = &'l [u8]>) {
    let mut n = 0;
    for line in lines {
        if n == into.len() {
            into.push(Vec::new());
        }
        into[n].clear();
        into[n].extend_from_slice(line);
        n += 1;
    }
    into.truncate(n);
}

/// Records the lines a caller sent (those its context carries) in the
/// trace, for reports.
fn store_lines(trace: &mut Trace, lines: &Lines, context: Context) -> crate::trace::Span {
    let mut text = Vec::new();
    for (name, on, list) in [
        (&b"baggage"[..], context.baggage, &lines.baggage),
        (b"tracestate", context.tracestate, &lines.tracestate),
    ] {
        for line in list.iter().filter(|_| on) {
            text.extend_from_slice(name);
            text.extend_from_slice(b": ");
            text.extend_from_slice(line);
            text.push(b'\n');
        }
    }
    trace.store(&text)
}

/// The context lines of one point of the walk, reused request to request.
#[derive(Default)]
struct Lines {
    baggage: Vec<Vec<u8>>,
    tracestate: Vec<Vec<u8>>,
}

/// Decides one call at a time: the filter, wherever it runs (a sidecar,
/// a waypoint).
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
    /// Index of the context lines it carries in [`Mesh::lines`].
    lines: usize,
}

/// The scenario's mesh around one sidecar.
pub struct Mesh<S> {
    sidecar: S,
    decided: Decided,
    stack: Vec<Pending>,
    /// Context lines: the entry's at 0, then every edited set.
    lines: Vec<Lines>,
    used: usize,
    empty: Vec<Vec<u8>>,
    /// The configuration says the proxy joins repeated lines
    /// (`routing_key.joined`, Envoy's inline headers); `None` until the
    /// first request reads the scenario's.
    joined: Option<bool>,
}

/// Whether configuration `text` says the proxy joins repeated `baggage`
/// and `tracestate` lines (a configuration that does not parse: no).
fn joined_of(text: &str) -> bool {
    laneway_core::config::Config::from_json(text).is_ok_and(|c| c.routing_key.joined)
}

/// Joins `lines` into one, as Envoy joins an inline header's lines on
/// receipt: with `,` (W3C Trace Context and Baggage both define the lines
/// of one header as one comma-joined list).
fn join(lines: &mut Vec<Vec<u8>>) {
    if lines.len() < 2 {
        return;
    }
    let (first, rest) = lines.split_at_mut(1);
    for line in rest.iter() {
        first[0].push(b',');
        first[0].extend_from_slice(line);
    }
    lines.truncate(1);
}

impl<S: Sidecar> Mesh<S> {
    /// A mesh whose every call goes through `sidecar`.
    pub fn new(sidecar: S) -> Mesh<S> {
        Mesh {
            sidecar,
            decided: Decided::default(),
            stack: Vec::new(),
            lines: Vec::new(),
            used: 0,
            empty: Vec::new(),
            joined: None,
        }
    }

    /// The sidecar.
    pub fn sidecar(&mut self) -> &mut S {
        &mut self.sidecar
    }
}

impl<S: Sidecar> Backend for Mesh<S> {
    fn configure(&mut self, config: &str) -> Result<(), String> {
        self.sidecar.configure(config)?;
        self.joined = Some(joined_of(config));
        Ok(())
    }

    fn run(&mut self, plan: &Plan<'_>, trace: &mut Trace) {
        let sc = plan.scenario;
        trace.clear(plan.group, plan.index);
        let t = &sc.traffic[plan.group];
        if self.lines.is_empty() {
            self.lines.push(Lines::default());
        }
        refill(
            &mut self.lines[0].baggage,
            plan.baggage.iter().map(|s| s.as_bytes()),
        );
        refill(
            &mut self.lines[0].tracestate,
            plan.tracestate.iter().map(|s| s.as_bytes()),
        );
        let joined = *self.joined.get_or_insert_with(|| joined_of(&sc.config));
        if joined {
            join(&mut self.lines[0].baggage);
            join(&mut self.lines[0].tracestate);
        }
        self.used = 1;
        let now_ns = sc.clock_ns(plan.index);
        self.stack.clear();
        self.stack.push(Pending {
            call: sc.chains[t.chain].entry,
            caller: Caller::Ingress,
            parent: None,
            context: Context::ENTRY,
            lines: 0,
        });
        while let Some(p) = self.stack.pop() {
            let service = sc.calls[p.call].service;
            let at = sc.decided_at(service);
            let mut hop = Hop {
                parent: p.parent,
                caller: p.caller,
                call: p.call,
                service,
                decided_at: at,
                route: None,
                reason: None,
                authority: None,
                served: Served::Failed,
                context_in: p.context,
                context_out: None,
                lines: None,
            };
            if p.lines != 0 {
                hop.lines = Some(store_lines(trace, &self.lines[p.lines], p.context));
            }
            if at == DecidedAt::Nowhere {
                // No filter on the way: the call reaches the baseline as
                // it was sent.
                hop.route = Some(Route::Baseline);
                hop.served = Served::By(Workload::Baseline(service));
            } else {
                let entry = p.caller == Caller::Ingress;
                let lines = &self.lines[p.lines];
                let call = Call {
                    at,
                    entry,
                    authority: match (&t.authority, entry) {
                        (Some(a), true) => a,
                        _ => &sc.services[service].authority,
                    },
                    service_authority: &sc.services[service].authority,
                    path: match (&t.path, entry) {
                        (Some(path), true) => path,
                        _ => "/",
                    },
                    source: match (&t.source, entry) {
                        (Some(s), true) => s,
                        _ => MESH_SOURCE,
                    },
                    now_ns,
                    baggage: if p.context.baggage {
                        &lines.baggage
                    } else {
                        &self.empty
                    },
                    tracestate: if p.context.tracestate {
                        &lines.tracestate
                    } else {
                        &self.empty
                    },
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
            }
            let Served::By(w) = hop.served else {
                trace.push(hop);
                continue;
            };
            let propagates = sc.propagation(w, plan.index);
            let mut next = Context {
                baggage: p.context.baggage && propagates.baggage(),
                tracestate: p.context.tracestate && propagates.tracestate(),
            };
            // What the workload received is what the filter forwarded.
            let mut lines = p.lines;
            let d = &self.decided;
            if hop.decided_at != DecidedAt::Nowhere && d.edited {
                if self.used == self.lines.len() {
                    self.lines.push(Lines::default());
                }
                let set = &mut self.lines[self.used];
                refill(&mut set.baggage, d.baggage.iter().map(Vec::as_slice));
                refill(&mut set.tracestate, d.tracestate.iter().map(Vec::as_slice));
                if joined {
                    // The next proxy joins what this one forwarded.
                    join(&mut set.baggage);
                    join(&mut set.tracestate);
                }
                lines = self.used;
                self.used += 1;
                // A filter that adds a line (a preview key, a hop counter)
                // gives the workload context it can propagate.
                next.baggage |= !d.baggage.is_empty() && propagates.baggage();
            }
            hop.context_out = Some(next);
            let id = trace.push(hop);
            for &c in sc.next_calls(p.call, w).iter().rev() {
                self.stack.push(Pending {
                    call: c,
                    caller: Caller::Workload(w),
                    parent: Some(id),
                    context: next,
                    lines,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use laneway_core::Reason;
    use laneway_scenario::{DecidedAt, HopReason, Scenario};

    use super::*;
    use crate::native::NativeSidecar;

    fn load(name: &str) -> Scenario {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/scenarios")
            .join(name);
        Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The core, counting the calls it is asked to decide, by where.
    struct Counting {
        core: NativeSidecar,
        asked: Vec<DecidedAt>,
    }

    impl Sidecar for Counting {
        fn configure(&mut self, config: &str) -> Result<(), String> {
            self.core.configure(config)
        }

        fn decide(&mut self, call: &Call<'_>, out: &mut Decided) -> Result<(), String> {
            self.asked.push(call.at);
            self.core.decide(call, out)
        }
    }

    fn walk(sc: &Scenario, group: usize) -> (Trace, Vec<DecidedAt>) {
        let t = &sc.traffic[group];
        let baggage: Vec<&str> = t.headers.baggage.iter().map(String::as_str).collect();
        let tracestate: Vec<&str> = t.headers.tracestate.iter().map(String::as_str).collect();
        let mut mesh = Mesh::new(Counting {
            core: NativeSidecar::new(&sc.config).unwrap(),
            asked: Vec::new(),
        });
        let mut trace = Trace::default();
        mesh.run(
            &Plan {
                scenario: sc,
                group,
                index: t.first,
                baggage: &baggage,
                tracestate: &tracestate,
            },
            &mut trace,
        );
        (trace, std::mem::take(&mut mesh.sidecar().asked))
    }

    /// In ambient mode each call is decided at its service's waypoint; a
    /// call to a service without one reaches its baseline and the filter
    /// is never asked.
    #[test]
    fn ambient_calls_are_decided_at_the_callees_waypoint() {
        let sc = load("ambient.yaml");
        let g = sc.traffic.iter().position(|t| t.name == "location-sandbox");
        let (trace, asked) = walk(&sc, g.unwrap());
        let got: Vec<(&str, DecidedAt, Option<HopReason>)> = trace
            .hops()
            .iter()
            .map(|h| (sc.services[h.service].name.as_str(), h.decided_at, h.why()))
            .collect();
        let waypoint = DecidedAt::Waypoint(0);
        let own = DecidedAt::Waypoint(1);
        let filter = |r| Some(HopReason::Filter(r));
        assert_eq!(sc.waypoints, ["waypoint", "location-waypoint"]);
        assert_eq!(
            got,
            [
                ("frontend", waypoint, filter(Reason::NoFork)),
                ("customer", waypoint, filter(Reason::NoFork)),
                ("location", own, filter(Reason::Fork)),
                ("driver", waypoint, filter(Reason::NoFork)),
                ("route", DecidedAt::Nowhere, Some(HopReason::NoWaypoint)),
            ]
        );
        assert_eq!(
            asked,
            [waypoint, waypoint, own, waypoint],
            "route: never asked"
        );
        let route = &trace.hops()[4];
        assert_eq!(
            (route.route, route.reason, route.authority),
            (Some(Route::Baseline), None, None)
        );
        assert_eq!(route.served, Served::By(Workload::Baseline(route.service)));
        assert!(
            route.context_out.is_some(),
            "the baseline serves and calls on"
        );
    }

    /// A waypoint sees what the caller's sidecar would (the service's
    /// `:authority`, the same context), so where both decide, they decide
    /// alike: the ambient scenario's hops at waypoints are its sidecar
    /// twin's hops.
    #[test]
    fn a_waypoint_decides_as_the_callers_sidecar_would() {
        let ambient = load("ambient.yaml");
        let text = std::fs::read_to_string(&ambient.file).unwrap();
        // The same scenario with sidecars, and without the expectations
        // only an ambient mesh can have.
        let sidecar_text: String = text
            .lines()
            .filter(|l| !l.contains("no_waypoint"))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .replace("mesh: ambient\n", "")
            .replace(", waypoint: waypoint }", " }")
            .replace(", waypoint: location-waypoint }", " }");
        let sidecar = Scenario::from_bytes(&ambient.file, sidecar_text.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        for g in 0..ambient.traffic.len() {
            let (a, _) = walk(&ambient, g);
            let (s, asked) = walk(&sidecar, g);
            assert!(asked.iter().all(|&at| at == DecidedAt::Sidecar));
            assert_eq!(a.hops().len(), s.hops().len());
            for (x, y) in a.hops().iter().zip(s.hops()) {
                assert_eq!(y.decided_at, DecidedAt::Sidecar);
                if x.decided_at == DecidedAt::Nowhere {
                    continue;
                }
                assert_eq!((x.route, x.reason, x.served), (y.route, y.reason, y.served));
                assert_eq!(a.authority_out(&ambient, x), s.authority_out(&sidecar, y));
            }
        }
    }
}
