//! `laneway replay`: run every request of a scenario through the call
//! chains, deciding each call where Istio decides it, in the caller's
//! outbound sidecar.
//!
//! For each request, from the ingress:
//! 1. the caller sends the callee's `:authority` and the context it
//!    propagates (entry headers at the ingress);
//! 2. the [`decider::WasmDecider`] (the real `.wasm`) decides the hop, and
//!    the [`decider::NativeDecider`] decides it again: any disagreement is a
//!    differential failure;
//! 3. the decision picks the workload that serves the call (a fork, the
//!    baseline, or none: rejected, unavailable, failed), and that workload
//!    decides what is called next and which context it propagates.
//!
//! Global checks run on every hop: **leak** (a request of no sandbox
//! reached a fork), **cross-talk** (a request of sandbox K reached another
//! sandbox's fork) and **miss** (a request of sandbox K did not reach K's
//! fork of a service, with the cause). Traffic groups add sparse
//! expectations.
//!
//! Requests are spread over worker threads, one wasm VM each (as Envoy has
//! one VM per worker). Results are aggregated as they go (identical paths
//! counted, at most [`EXAMPLES`] examples per check), so memory stays flat
//! however many requests run, and the report is the same for any thread
//! count.

pub mod decider;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use laneway_core::{Decision, Route};

use crate::host::Plugin;
use crate::report::{Blast, BlastEdge, Check, GroupReport, HopDetail, PathReport, Report};
use crate::scenario::spec::Expect;
use crate::scenario::{CallId, Fault, SandboxId, Scenario, ServiceId, Traffic, Workload};
use decider::{Decider, HopDecision, HopInput, NativeDecider, WasmDecider};

/// At most this many examples per check.
pub const EXAMPLES: usize = 10;
const CHUNK: u64 = 512;

/// How to run a replay.
#[derive(Clone, Debug)]
pub struct Options {
    /// Worker threads (one wasm VM each).
    pub threads: usize,
    /// Called from the main thread about every 100 ms with requests done.
    pub progress: Option<fn(u64, u64)>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            progress: None,
        }
    }
}

/// Who made a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Caller {
    /// The ingress (the test client's entry point).
    Ingress,
    /// A workload.
    Workload(Workload),
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

/// One hop of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HopKey {
    /// The caller.
    pub caller: Caller,
    /// The callee.
    pub service: ServiceId,
    /// What served it.
    pub served: Served,
    /// Index of the decision reason in [`Decision::REASONS`]; `u8::MAX` when
    /// the filter reported none of them.
    pub reason: u8,
}

/// Why a request of sandbox K missed K's fork.
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
}

impl Cause {
    /// The snake_case name used in scenario expectations.
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
        }
    }
}

/// Why a replay could not run at all.
#[derive(Debug)]
pub struct ReplayError(pub String);

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReplayError {}

/// A check's count and its first examples, by request index.
#[derive(Clone, Debug, Default)]
struct Finding {
    count: u64,
    examples: Vec<(u64, String)>,
}

impl Finding {
    fn add(&mut self, request: u64, example: impl FnOnce() -> String) {
        self.count += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push((request, example()));
        }
    }

    fn merge(&mut self, other: Finding) {
        self.count += other.count;
        self.examples.extend(other.examples);
        self.examples.sort_by_key(|e| e.0);
        self.examples.truncate(EXAMPLES);
    }
}

/// A caller → callee edge of the call graph (`None`: the ingress).
type Edge = (Option<ServiceId>, ServiceId);
/// Hops on an edge, and how many each sandbox's forks captured.
type EdgeCount = (u64, BTreeMap<SandboxId, u64>);

/// Per-worker aggregates, merged at the end.
#[derive(Default)]
struct Agg {
    hops: u64,
    requests: u64,
    /// Per traffic group: distinct paths and their counts.
    paths: Vec<HashMap<Vec<HopKey>, u64>>,
    /// Per traffic group: requests that failed an expectation.
    group_failures: Vec<u64>,
    /// Hops per edge, and per sandbox that captured them.
    edges: HashMap<Edge, EdgeCount>,
    leak: Finding,
    cross_talk: Finding,
    miss: Finding,
    differential: Finding,
    expectations: Finding,
    failed: Finding,
    swaps: Vec<String>,
}

impl Agg {
    fn new(groups: usize) -> Agg {
        Agg {
            paths: vec![HashMap::new(); groups],
            group_failures: vec![0; groups],
            ..Agg::default()
        }
    }

    fn merge(&mut self, other: Agg) {
        self.hops += other.hops;
        self.requests += other.requests;
        for (mine, theirs) in self.paths.iter_mut().zip(other.paths) {
            for (k, v) in theirs {
                *mine.entry(k).or_default() += v;
            }
        }
        for (a, b) in self.group_failures.iter_mut().zip(other.group_failures) {
            *a += b;
        }
        for (edge, (total, by)) in other.edges {
            let e = self.edges.entry(edge).or_default();
            e.0 += total;
            for (sb, n) in by {
                *e.1.entry(sb).or_default() += n;
            }
        }
        self.leak.merge(other.leak);
        self.cross_talk.merge(other.cross_talk);
        self.miss.merge(other.miss);
        self.differential.merge(other.differential);
        self.expectations.merge(other.expectations);
        self.failed.merge(other.failed);
        self.swaps.extend(other.swaps);
    }
}

/// The context a call carries downstream.
#[derive(Clone, Copy)]
struct Ctx {
    baggage: bool,
    tracestate: bool,
    dropped_at: Option<Workload>,
}

/// A traffic group's expectations, resolved to ids once.
struct Resolved {
    path: Option<Vec<(ServiceId, ExpectedServed)>>,
    hops: Vec<(Option<Option<ServiceId>>, ServiceId, ExpectHop)>,
    misses: Option<Vec<(ServiceId, String)>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ExpectedServed {
    By(Workload),
    Rejected,
    Unavailable,
    Failed,
}

#[derive(Clone)]
struct ExpectHop {
    route: Option<String>,
    reason: Option<String>,
    served_by: Option<String>,
    edge: String,
}

fn parse_workload(scenario: &Scenario, name: &str) -> Option<(ServiceId, ExpectedServed)> {
    let (service, rest) = name.split_once('@')?;
    let s = scenario.services.iter().position(|x| x.name == service)?;
    let served = match rest {
        "baseline" => ExpectedServed::By(Workload::Baseline(s)),
        "rejected" => ExpectedServed::Rejected,
        "unavailable" => ExpectedServed::Unavailable,
        "failed" => ExpectedServed::Failed,
        _ => {
            let key = rest.strip_prefix("fork(")?.strip_suffix(')')?;
            ExpectedServed::By(Workload::Fork(
                s,
                scenario.sandboxes.iter().position(|b| b.key == key)?,
            ))
        }
    };
    Some((s, served))
}

fn resolve(scenario: &Scenario, e: &Expect) -> Resolved {
    let service = |n: &str| scenario.services.iter().position(|s| s.name == n);
    Resolved {
        path: e.path.as_ref().map(|p| {
            p.iter()
                .filter_map(|w| parse_workload(scenario, w))
                .collect()
        }),
        hops: e
            .hops
            .iter()
            .flatten()
            .filter_map(|(edge, h)| {
                let (caller, callee) = match edge.rsplit_once("->") {
                    Some(("ingress", s)) => (Some(None), s),
                    Some((c, s)) => (Some(Some(service(c)?)), s),
                    None => (None, edge.as_str()),
                };
                Some((
                    caller,
                    service(callee)?,
                    ExpectHop {
                        route: h.route.clone(),
                        reason: h.reason.clone(),
                        served_by: h.served_by.clone(),
                        edge: edge.clone(),
                    },
                ))
            })
            .collect(),
        misses: e.misses.as_ref().map(|m| {
            let mut v: Vec<(ServiceId, String)> = m
                .iter()
                .filter_map(|x| Some((service(&x.service)?, x.cause.clone())))
                .collect();
            v.sort();
            v
        }),
    }
}

/// What every worker of one scenario reads, computed once: each traffic
/// group's expectations resolved to ids and its entry header lines, and the
/// config swaps in order of the request they happen at.
struct Prepared<'s> {
    resolved: Vec<Resolved>,
    entry_lines: Vec<(Vec<&'s str>, Vec<&'s str>)>,
    swaps: Vec<(u64, &'s str)>,
}

impl<'s> Prepared<'s> {
    fn new(scenario: &'s Scenario) -> Prepared<'s> {
        let mut swaps: Vec<(u64, &str)> = scenario
            .faults
            .iter()
            .filter_map(|f| match f {
                Fault::ConfigSwap { at, config } => Some((*at, config.as_str())),
                _ => None,
            })
            .collect();
        swaps.sort_by_key(|s| s.0);
        Prepared {
            resolved: scenario
                .traffic
                .iter()
                .map(|t| resolve(scenario, &t.expect))
                .collect(),
            entry_lines: scenario
                .traffic
                .iter()
                .map(|t| {
                    (
                        t.headers.baggage.iter().map(String::as_str).collect(),
                        t.headers.tracestate.iter().map(String::as_str).collect(),
                    )
                })
                .collect(),
            swaps,
        }
    }
}

struct Worker<'s> {
    scenario: &'s Scenario,
    resolved: &'s [Resolved],
    entry_lines: &'s [(Vec<&'s str>, Vec<&'s str>)],
    wasm: WasmDecider,
    native: NativeDecider,
    wasm_out: HopDecision,
    native_out: HopDecision,
    epoch: usize,
    swaps: &'s [(u64, &'s str)],
    path: Vec<HopKey>,
    misses: Vec<(ServiceId, Cause, Option<Workload>)>,
    agg: Agg,
    /// `laneway explain` records every hop here.
    trace: Option<Vec<TraceHop>>,
}

/// One hop of an explained request.
#[derive(Clone, Debug)]
pub struct TraceHop {
    /// Call depth (0 for the ingress's call).
    pub depth: usize,
    /// `caller → service`.
    pub edge: String,
    /// The request headers the caller's sidecar saw.
    pub sent: Vec<(String, String)>,
    /// The request headers as the filter forwarded them.
    pub forwarded: Vec<(String, String)>,
    /// The filter's decision.
    pub wasm: HopDecision,
    /// The core's decision.
    pub native: HopDecision,
    /// What served the hop.
    pub served_by: String,
    /// What the serving workload propagates downstream, after faults.
    pub propagates: String,
    /// Where the context was lost upstream, if it was.
    pub dropped_at: Option<String>,
}

fn reason_index(reason: &str) -> u8 {
    Decision::REASONS
        .iter()
        .position(|r| *r == reason)
        .map_or(u8::MAX, |i| i as u8)
}

impl<'s> Worker<'s> {
    fn request(&mut self, group: usize, t: &'s Traffic, index: u64) {
        self.sync_config(index);
        self.path.clear();
        self.misses.clear();
        let ctx = Ctx {
            baggage: true,
            tracestate: true,
            dropped_at: None,
        };
        let chain = &self.scenario.chains[t.chain];
        self.walk(group, t, index, chain.entry, Caller::Ingress, ctx);
        self.agg.requests += 1;
        self.finish(group, t, index);
    }

    fn sync_config(&mut self, index: u64) {
        let epoch = self.swaps.iter().take_while(|(at, _)| *at <= index).count();
        if epoch == self.epoch {
            return;
        }
        let config = if epoch == 0 {
            self.scenario.config.as_str()
        } else {
            self.swaps[epoch - 1].1
        };
        let wasm = self.wasm.reconfigure(config);
        let native = self.native.reconfigure(config);
        let note = match (&wasm, &native) {
            (Ok(()), Ok(())) => format!("configuration {epoch} active from request {index}"),
            (Err(_), Err(_)) => {
                format!(
                    "configuration {epoch} refused by the filter and the core from request {index}: both keep the last good one"
                )
            }
            _ => {
                self.agg.differential.add(index, || {
                    format!(
                        "configuration {epoch}: the filter says {wasm:?}, the core says {native:?}"
                    )
                });
                String::new()
            }
        };
        if !note.is_empty() && !self.agg.swaps.contains(&note) {
            self.agg.swaps.push(note);
        }
        self.epoch = epoch;
    }

    fn propagation_dropped(&self, w: Workload, index: u64) -> bool {
        self.scenario.faults.iter().any(|f| match f {
            Fault::DropContext {
                service,
                only,
                from,
            } => {
                let s = match w {
                    Workload::Baseline(s) | Workload::Fork(s, _) => s,
                };
                *service == s && index >= *from && only.is_none_or(|o| o == w)
            }
            _ => false,
        })
    }

    fn unavailable(&self, w: Workload) -> bool {
        self.scenario
            .faults
            .iter()
            .any(|f| matches!(f, Fault::ForkUnavailable { workload } if *workload == w))
    }

    fn walk(
        &mut self,
        group: usize,
        t: &'s Traffic,
        index: u64,
        call: CallId,
        caller: Caller,
        ctx: Ctx,
    ) {
        let sc = self.scenario;
        let service = sc.calls[call].service;
        let (bag, ts) = &self.entry_lines[group];
        let input = HopInput {
            authority: &sc.services[service].authority,
            baggage: if ctx.baggage { bag } else { &[] },
            tracestate: if ctx.tracestate { ts } else { &[] },
        };
        self.agg.hops += 1;
        let native = self.native.decide(&input, &mut self.native_out);
        if let Err(message) = self.wasm.decide(&input, &mut self.wasm_out) {
            let edge = edge_name(sc, caller, service);
            self.agg.failed.add(index, || {
                format!("{}#{}: {edge}: {message}", t.name, index - t.first)
            });
            self.path.push(HopKey {
                caller,
                service,
                served: Served::Failed,
                reason: u8::MAX,
            });
            self.note_miss(t, service, Served::Failed, "", ctx);
            return;
        }
        if native.is_err() || self.wasm_out != self.native_out {
            let (w, n) = (&self.wasm_out, &self.native_out);
            let edge = edge_name(sc, caller, service);
            self.agg.differential.add(index, || {
                format!(
                    "{}#{}: {edge}: the filter says {} ({}) to {}, the core says {} ({}) to {}",
                    t.name,
                    index - t.first,
                    w.route.map_or("?", Route::as_str),
                    w.reason,
                    w.authority,
                    n.route.map_or("?", Route::as_str),
                    n.reason,
                    n.authority
                )
            });
        }
        let served = match self.wasm_out.route {
            Some(Route::Reject) => Served::Rejected(self.wasm_out.status),
            Some(Route::Fork) => {
                let host = laneway_core::authority::host(self.wasm_out.authority.as_bytes());
                match sc.served_by(service, Some(&String::from_utf8_lossy(host))) {
                    Some(w) if self.unavailable(w) => Served::Unavailable(Some(w)),
                    Some(w) => Served::By(w),
                    None => Served::Unavailable(None),
                }
            }
            _ => Served::By(Workload::Baseline(service)),
        };
        let reason = reason_index(&self.wasm_out.reason);
        if self.trace.is_some() {
            self.record(caller, service, &input, served, ctx, index);
        }
        self.path.push(HopKey {
            caller,
            service,
            served,
            reason,
        });
        let caller_service = match caller {
            Caller::Ingress => None,
            Caller::Workload(Workload::Baseline(s) | Workload::Fork(s, _)) => Some(s),
        };
        // The sandbox whose fork the hop was routed to, up or down.
        let routed = match served {
            Served::By(Workload::Fork(_, b)) | Served::Unavailable(Some(Workload::Fork(_, b))) => {
                Some(b)
            }
            _ => None,
        };
        let edge = self.agg.edges.entry((caller_service, service)).or_default();
        edge.0 += 1;
        if let Some(b) = routed {
            *edge.1.entry(b).or_default() += 1;
        }
        // Global checks: leaving the baseline is what counts, whether or not
        // the fork could answer.
        if self.wasm_out.route == Some(Route::Fork) {
            let reached = served_name(sc, service, served);
            match (t.intent, routed) {
                (None, _) => self.agg.leak.add(index, || {
                    format!(
                        "{}#{} ({}): {} reached {reached}",
                        t.name,
                        index - t.first,
                        t.kind.as_str(),
                        edge_name(sc, caller, service),
                    )
                }),
                (Some(k), Some(b)) if k != b => self.agg.cross_talk.add(index, || {
                    format!(
                        "{}#{} (sandbox {}): {} reached {}",
                        t.name,
                        index - t.first,
                        sc.sandboxes[k].key,
                        edge_name(sc, caller, service),
                        sc.workload_name(Workload::Fork(service, b))
                    )
                }),
                _ => {}
            }
        }
        let reason_text = self.wasm_out.reason.clone();
        self.note_miss(t, service, served, &reason_text, ctx);

        let Served::By(w) = served else { return };
        let dropped = self.propagation_dropped(w, index);
        let p = sc.propagates(w);
        let keep_bag = ctx.baggage && p.baggage() && !dropped;
        let keep_ts = ctx.tracestate && p.tracestate() && !dropped;
        let lost = (ctx.baggage && !keep_bag) || (ctx.tracestate && !keep_ts);
        let next = Ctx {
            baggage: keep_bag,
            tracestate: keep_ts,
            dropped_at: if lost { Some(w) } else { ctx.dropped_at },
        };
        for &c in sc.next_calls(call, w) {
            self.walk(group, t, index, c, Caller::Workload(w), next);
        }
    }

    fn record(
        &mut self,
        caller: Caller,
        service: ServiceId,
        input: &HopInput<'_>,
        served: Served,
        ctx: Ctx,
        index: u64,
    ) {
        let sc = self.scenario;
        let mut sent = vec![(":authority".to_owned(), input.authority.to_owned())];
        sent.extend(
            input
                .baggage
                .iter()
                .map(|b| ("baggage".to_owned(), (*b).to_owned())),
        );
        sent.extend(
            input
                .tracestate
                .iter()
                .map(|t| ("tracestate".to_owned(), (*t).to_owned())),
        );
        let forwarded = self
            .wasm
            .forwarded_headers()
            .iter()
            .filter(|(n, _)| !matches!(*n, b":path" | b":method" | b":scheme"))
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect();
        let propagates = match served {
            Served::By(w) if self.propagation_dropped(w, index) => {
                "nothing (drop_context fault)".to_owned()
            }
            Served::By(w) => match sc.propagates(w) {
                crate::scenario::spec::Propagation::Both => "baggage and tracestate".to_owned(),
                crate::scenario::spec::Propagation::Baggage => "baggage only".to_owned(),
                crate::scenario::spec::Propagation::Tracestate => "tracestate only".to_owned(),
                crate::scenario::spec::Propagation::None => "nothing".to_owned(),
            },
            _ => "-".to_owned(),
        };
        let depth = self.trace.as_ref().map_or(0, |t| {
            t.iter()
                .rev()
                .find(|h| h.served_by == caller_name(sc, caller))
                .map_or(0, |h| h.depth + 1)
        });
        let hop = TraceHop {
            depth,
            edge: edge_name(sc, caller, service),
            sent,
            forwarded,
            wasm: self.wasm_out.clone(),
            native: self.native_out.clone(),
            served_by: served_name(sc, service, served),
            propagates,
            dropped_at: ctx.dropped_at.map(|w| sc.workload_name(w)),
        };
        if let Some(t) = &mut self.trace {
            t.push(hop);
        }
    }

    fn note_miss(
        &mut self,
        t: &Traffic,
        service: ServiceId,
        served: Served,
        reason: &str,
        ctx: Ctx,
    ) {
        let Some(k) = t.intent else { return };
        if self.scenario.fork(service, k).is_none()
            || served == Served::By(Workload::Fork(service, k))
        {
            return;
        }
        let cause = match served {
            Served::Failed => Cause::Failed,
            Served::Unavailable(_) => Cause::Unavailable,
            Served::Rejected(_) => Cause::Rejected,
            Served::By(Workload::Fork(..)) => Cause::OtherFork,
            Served::By(Workload::Baseline(_)) => match reason {
                "malformed" => Cause::Malformed,
                "conflict" => Cause::Conflict,
                "no_fork" | "unknown_key" => Cause::NotConfigured,
                _ if ctx.dropped_at.is_some() => Cause::ContextDropped,
                _ => Cause::NoKey,
            },
        };
        self.misses.push((service, cause, ctx.dropped_at));
    }

    fn finish(&mut self, group: usize, t: &'s Traffic, index: u64) {
        let sc = self.scenario;
        let name = || format!("{}#{}", t.name, index - t.first);
        let r = &self.resolved[group];
        // Misses: accepted when the group expects exactly these.
        let mut failed = false;
        let mut got: Vec<(ServiceId, &str)> = self
            .misses
            .iter()
            .map(|(s, c, _)| (*s, c.as_str()))
            .collect();
        got.sort();
        match &r.misses {
            Some(want) => {
                let want: Vec<(ServiceId, &str)> =
                    want.iter().map(|(s, c)| (*s, c.as_str())).collect();
                if got != want {
                    failed = true;
                    self.agg.expectations.add(index, || {
                        format!(
                            "{}: expected misses {}, got {}",
                            name(),
                            misses_text(sc, &want),
                            misses_text(sc, &got)
                        )
                    });
                }
            }
            None => {
                let k = t.intent.unwrap_or(0);
                for &(s, cause, at) in &self.misses {
                    self.agg.miss.add(index, || {
                        let at = at
                            .map(|w| format!(" at {}", sc.workload_name(w)))
                            .unwrap_or_default();
                        format!(
                            "{}: missed {} ({}{at})",
                            name(),
                            sc.workload_name(Workload::Fork(s, k)),
                            cause.as_str()
                        )
                    });
                }
            }
        }
        // Sparse expectations.
        let status = request_status(&self.path);
        if let Some(want) = t.expect.status
            && want != status
        {
            failed = true;
            self.agg.expectations.add(index, || {
                format!("{}: expected status {want}, got {status}", name())
            });
        }
        if let Some(want) = &r.path {
            let got: Vec<(ServiceId, ExpectedServed)> = self
                .path
                .iter()
                .map(|h| {
                    (
                        h.service,
                        match h.served {
                            Served::By(w) => ExpectedServed::By(w),
                            Served::Rejected(_) => ExpectedServed::Rejected,
                            Served::Unavailable(_) => ExpectedServed::Unavailable,
                            Served::Failed => ExpectedServed::Failed,
                        },
                    )
                })
                .collect();
            if &got != want {
                failed = true;
                let path = path_text(sc, &self.path);
                let want_text = t
                    .expect
                    .path
                    .as_ref()
                    .map(|p| p.join(" → "))
                    .unwrap_or_default();
                self.agg.expectations.add(index, || {
                    format!("{}: expected path {want_text}, got {path}", name())
                });
            }
        }
        for (caller, service, h) in &r.hops {
            let matching: Vec<HopKey> = self
                .path
                .iter()
                .filter(|k| {
                    k.service == *service
                        && caller.is_none_or(|c| match (c, k.caller) {
                            (None, Caller::Ingress) => true,
                            (
                                Some(cs),
                                Caller::Workload(Workload::Baseline(s) | Workload::Fork(s, _)),
                            ) => s == cs,
                            _ => false,
                        })
                })
                .copied()
                .collect();
            if matching.is_empty() {
                failed = true;
                self.agg.expectations.add(index, || {
                    format!("{}: hop {}: the request made no such call", name(), h.edge)
                });
            }
            for k in matching {
                let route = route_of(k.served);
                let reason = reason_name(k.reason);
                let served_by = served_name(sc, k.service, k.served);
                let wrong = h.route.as_deref().is_some_and(|r| r != route)
                    || h.reason.as_deref().is_some_and(|r| r != reason)
                    || h.served_by.as_deref().is_some_and(|w| w != served_by);
                if wrong {
                    failed = true;
                    self.agg.expectations.add(index, || {
                        format!(
                            "{}: hop {}: expected {}, got route {route}, reason {reason}, served by {served_by}",
                            name(),
                            h.edge,
                            [
                                h.route.as_ref().map(|r| format!("route {r}")),
                                h.reason.as_ref().map(|r| format!("reason {r}")),
                                h.served_by.as_ref().map(|w| format!("served by {w}")),
                            ]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join(", "),
                        )
                    });
                }
            }
        }
        if failed {
            self.agg.group_failures[group] += 1;
        }
        let paths = &mut self.agg.paths[group];
        match paths.get_mut(self.path.as_slice()) {
            Some(n) => *n += 1,
            None => {
                paths.insert(self.path.clone(), 1);
            }
        }
    }
}

fn misses_text(sc: &Scenario, m: &[(ServiceId, &str)]) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(s, c)| format!("{} ({c})", sc.services[*s].name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn request_status(path: &[HopKey]) -> u16 {
    path.iter()
        .find_map(|h| match h.served {
            Served::Rejected(s) => Some(s),
            Served::Unavailable(_) => Some(503),
            Served::Failed => Some(500),
            Served::By(_) => None,
        })
        .unwrap_or(200)
}

fn route_of(served: Served) -> &'static str {
    match served {
        Served::By(Workload::Fork(..)) | Served::Unavailable(_) => "fork",
        Served::By(Workload::Baseline(_)) => "baseline",
        Served::Rejected(_) => "reject",
        Served::Failed => "failed",
    }
}

fn reason_name(reason: u8) -> &'static str {
    Decision::REASONS
        .get(reason as usize)
        .copied()
        .unwrap_or("unknown")
}

/// `service@baseline`, `service@fork(K)`, `service@rejected`, ...
pub fn served_name(sc: &Scenario, service: ServiceId, served: Served) -> String {
    match served {
        Served::By(w) => sc.workload_name(w),
        Served::Rejected(_) => format!("{}@rejected", sc.services[service].name),
        Served::Unavailable(_) => format!("{}@unavailable", sc.services[service].name),
        Served::Failed => format!("{}@failed", sc.services[service].name),
    }
}

fn caller_name(sc: &Scenario, caller: Caller) -> String {
    match caller {
        Caller::Ingress => "ingress".into(),
        Caller::Workload(w) => sc.workload_name(w),
    }
}

fn edge_name(sc: &Scenario, caller: Caller, service: ServiceId) -> String {
    format!(
        "{} → {}",
        caller_name(sc, caller),
        sc.services[service].name
    )
}

fn path_text(sc: &Scenario, path: &[HopKey]) -> String {
    path.iter()
        .map(|h| served_name(sc, h.service, h.served))
        .collect::<Vec<_>>()
        .join(" → ")
}

/// Replays `scenario` with the filter in `plugin`.
pub fn replay(
    scenario: &Scenario,
    plugin: &Plugin,
    wasm_name: &str,
    options: &Options,
) -> Result<Report, ReplayError> {
    let started = Instant::now();
    let prepared = Prepared::new(scenario);
    let total = scenario.requests;
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let threads = options.threads.clamp(1, 256);
    let groups = scenario.traffic.len();

    let results: Vec<Result<Agg, ReplayError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<Agg, ReplayError> {
                    let wasm = WasmDecider::new(plugin, &scenario.config).map_err(|e| {
                        ReplayError(format!(
                            "the filter refused the scenario's plugin configuration: {e}"
                        ))
                    })?;
                    let native = NativeDecider::new(&scenario.config)
                        .map_err(|e| ReplayError(format!("invalid plugin configuration: {e}")))?;
                    let mut w = Worker {
                        scenario,
                        resolved: &prepared.resolved,
                        entry_lines: &prepared.entry_lines,
                        wasm,
                        native,
                        wasm_out: HopDecision::default(),
                        native_out: HopDecision::default(),
                        epoch: 0,
                        swaps: &prepared.swaps,
                        path: Vec::new(),
                        misses: Vec::new(),
                        agg: Agg::new(groups),
                        trace: None,
                    };
                    loop {
                        let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                        if start >= total {
                            break;
                        }
                        let end = (start + CHUNK).min(total);
                        let mut group = scenario
                            .traffic
                            .partition_point(|t| t.first + t.count <= start);
                        for index in start..end {
                            while scenario.traffic[group].first + scenario.traffic[group].count
                                <= index
                            {
                                group += 1;
                            }
                            w.request(group, &scenario.traffic[group], index);
                        }
                        done.fetch_add(end - start, Ordering::Relaxed);
                    }
                    Ok(w.agg)
                })
            })
            .collect();
        if let Some(report) = options.progress {
            while !handles.iter().all(|h| h.is_finished()) {
                report(done.load(Ordering::Relaxed), total);
                std::thread::sleep(Duration::from_millis(100));
            }
            report(done.load(Ordering::Relaxed), total);
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(ReplayError("a replay worker panicked".into())))
            })
            .collect()
    });
    let mut agg = Agg::new(groups);
    for r in results {
        agg.merge(r?);
    }
    Ok(build_report(
        scenario,
        wasm_name,
        threads,
        agg,
        started.elapsed(),
    ))
}

fn build_report(sc: &Scenario, wasm: &str, threads: usize, agg: Agg, elapsed: Duration) -> Report {
    let expecting = sc
        .traffic
        .iter()
        .filter(|t| t.expect != Expect::default())
        .count();
    let failing_requests: u64 = agg.group_failures.iter().sum();
    let groups = sc
        .traffic
        .iter()
        .zip(agg.paths)
        .zip(agg.group_failures)
        .map(|((t, paths), failures)| {
            let mut paths: Vec<(Vec<HopKey>, u64)> = paths.into_iter().collect();
            paths.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            GroupReport {
                name: t.name.clone(),
                chain: sc.chains[t.chain].name.clone(),
                kind: t.kind.as_str().into(),
                key: t.key.clone(),
                count: t.count,
                failures,
                paths: paths
                    .into_iter()
                    .map(|(hops, count)| PathReport {
                        count,
                        status: request_status(&hops),
                        path: hops
                            .iter()
                            .map(|h| served_name(sc, h.service, h.served))
                            .collect(),
                        hops: hops
                            .iter()
                            .map(|h| HopDetail {
                                caller: caller_name(sc, h.caller),
                                service: sc.services[h.service].name.clone(),
                                route: route_of(h.served).into(),
                                reason: reason_name(h.reason).into(),
                                served_by: served_name(sc, h.service, h.served),
                            })
                            .collect(),
                    })
                    .collect(),
            }
        })
        .collect();
    let check = |name: &str, f: Finding, what: &str| Check {
        name: name.into(),
        passed: f.count == 0,
        count: f.count,
        summary: what.into(),
        examples: f.examples.into_iter().map(|e| e.1).collect(),
    };
    let checks = vec![
        check(
            "leak",
            agg.leak,
            "hops where a request of no sandbox reached a fork",
        ),
        check(
            "cross-talk",
            agg.cross_talk,
            "hops where a request of one sandbox reached another's fork",
        ),
        check(
            "miss",
            agg.miss,
            "forks a sandbox's requests should have reached but did not",
        ),
        check(
            "differential",
            agg.differential,
            &format!(
                "hops where the filter and laneway-core disagree, of {}",
                crate::report::thousands(agg.hops)
            ),
        ),
        check("failed-hops", agg.failed, "hops where the filter failed"),
        check(
            "expectations",
            agg.expectations,
            &format!(
                "expectations that did not hold, in {} requests ({expecting} of {} traffic groups have expectations)",
                crate::report::thousands(failing_requests),
                sc.traffic.len()
            ),
        ),
    ];
    // Blast radius: for each sandbox, the caller → service edges of the call
    // graph whose callee it forks.
    let mut static_edges: Vec<Edge> = Vec::new();
    for ch in &sc.chains {
        collect_edges(sc, ch.entry, None, &mut static_edges);
    }
    static_edges.sort();
    static_edges.dedup();
    let blast = sc
        .sandboxes
        .iter()
        .enumerate()
        .map(|(b, sandbox)| {
            let edges: Vec<BlastEdge> = static_edges
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
    let mut notes = agg.swaps;
    notes.sort();
    Report {
        scenario: sc.name.clone(),
        file: sc.file.display().to_string(),
        description: sc.description.clone(),
        wasm: wasm.into(),
        requests: agg.requests,
        hops: agg.hops,
        threads,
        elapsed,
        groups,
        checks,
        blast,
        notes,
    }
}

fn collect_edges(
    sc: &Scenario,
    call: CallId,
    caller: Option<ServiceId>,
    out: &mut Vec<(Option<ServiceId>, ServiceId)>,
) {
    let s = sc.calls[call].service;
    out.push((caller, s));
    let mut subtrees = vec![sc.calls[call].then.as_slice()];
    for sandbox in &sc.sandboxes {
        if let Some(calls) = sandbox
            .forks
            .iter()
            .find(|f| f.service == s)
            .and_then(|f| f.calls.as_deref())
        {
            subtrees.push(calls);
        }
    }
    for sub in subtrees {
        for &c in sub {
            collect_edges(sc, c, Some(s), out);
        }
    }
}

/// The story of one request, hop by hop.
#[derive(Clone, Debug)]
pub struct Explanation {
    /// `GROUP#N`.
    pub request: String,
    /// The traffic group's kind and key.
    pub kind: String,
    /// The key, if any.
    pub key: Option<String>,
    /// Every hop, in call order.
    pub hops: Vec<TraceHop>,
    /// The status the client got.
    pub status: u16,
    /// The checks it broke (leak, cross-talk, miss, expectations, ...).
    pub findings: Vec<String>,
}

/// Replays one request (`GROUP` or `GROUP#N`) and records every hop.
pub fn explain(
    scenario: &Scenario,
    plugin: &Plugin,
    request: &str,
) -> Result<Explanation, ReplayError> {
    let (t, index) = scenario.request_by_name(request).ok_or_else(|| {
        let names: Vec<String> = scenario
            .traffic
            .iter()
            .map(|t| format!("{} (#0..#{})", t.name, t.count - 1))
            .collect();
        ReplayError(format!(
            "no request {request:?} in scenario {}; requests: {}",
            scenario.name,
            names.join(", ")
        ))
    })?;
    let group = scenario
        .traffic
        .iter()
        .position(|x| std::ptr::eq(x, t))
        .unwrap_or(0);
    let prepared = Prepared::new(scenario);
    let mut w = Worker {
        scenario,
        resolved: &prepared.resolved,
        entry_lines: &prepared.entry_lines,
        wasm: WasmDecider::new(plugin, &scenario.config).map_err(ReplayError)?,
        native: NativeDecider::new(&scenario.config).map_err(ReplayError)?,
        wasm_out: HopDecision::default(),
        native_out: HopDecision::default(),
        epoch: 0,
        swaps: &prepared.swaps,
        path: Vec::new(),
        misses: Vec::new(),
        agg: Agg::new(scenario.traffic.len()),
        trace: Some(Vec::new()),
    };
    w.request(group, t, index);
    let mut findings = Vec::new();
    for (name, f) in [
        ("leak", &w.agg.leak),
        ("cross-talk", &w.agg.cross_talk),
        ("miss", &w.agg.miss),
        ("differential", &w.agg.differential),
        ("failed-hop", &w.agg.failed),
        ("expectation", &w.agg.expectations),
    ] {
        findings.extend(f.examples.iter().map(|(_, e)| format!("{name}: {e}")));
    }
    Ok(Explanation {
        request: format!("{}#{}", t.name, index - t.first),
        kind: t.kind.as_str().to_owned(),
        key: t.key.clone(),
        status: request_status(&w.path),
        hops: w.trace.take().unwrap_or_default(),
        findings,
    })
}

/// The explanation for people.
pub fn explanation_text(e: &Explanation) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let key = e
        .key
        .as_deref()
        .map(|k| format!(" {k}"))
        .unwrap_or_default();
    let _ = writeln!(s, "request {} ({}{key})", e.request, e.kind);
    for (i, h) in e.hops.iter().enumerate() {
        let pad = "  ".repeat(h.depth + 1);
        let _ = writeln!(s, "{pad}{}. {}", i + 1, h.edge);
        for (n, v) in &h.sent {
            let _ = writeln!(s, "{pad}   sends     {n}: {v}");
        }
        if h.sent.len() == 1 {
            let _ = writeln!(
                s,
                "{pad}   sends     no baggage or tracestate{}",
                h.dropped_at
                    .as_ref()
                    .map(|d| format!(" (context lost at {d})"))
                    .unwrap_or_default()
            );
        }
        let w = &h.wasm;
        let _ = writeln!(
            s,
            "{pad}   decision  {} ({}){}",
            w.route.map_or("failed", laneway_core::Route::as_str),
            w.reason,
            if w.route == Some(laneway_core::Route::Fork) {
                format!(": :authority → {}", w.authority)
            } else {
                String::new()
            }
        );
        if h.native != h.wasm {
            let n = &h.native;
            let _ = writeln!(
                s,
                "{pad}   DIFFERS   laneway-core says {} ({}) to {}",
                n.route.map_or("?", laneway_core::Route::as_str),
                n.reason,
                n.authority
            );
        }
        let _ = writeln!(
            s,
            "{pad}   served by {}, which propagates {}",
            h.served_by, h.propagates
        );
    }
    let _ = writeln!(s, "status {}", e.status);
    if e.findings.is_empty() {
        let _ = writeln!(s, "no check failed for this request");
    } else {
        for f in &e.findings {
            let _ = writeln!(s, "FAIL {f}");
        }
    }
    s
}
