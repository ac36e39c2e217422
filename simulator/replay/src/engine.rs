//! The replay engine: record, then judge.
//!
//! [`replay`] runs every request of a scenario through a primary backend,
//! and, when given one, through a reference backend too; for each request
//! each backend records a [`Trace`], the checks judge the primary's
//! ([`checks::judge`]) and the two traces are compared hop by hop
//! ([`checks::compare`]). Configuration swaps are applied to both
//! backends before the request they happen at. The checks judged on the
//! scenario alone ([`checks::unreachable_forks`]) run once, at the end.
//!
//! Requests are spread over worker threads in chunks, each worker with its
//! own backends (one wasm VM each, as Envoy has one VM per worker).
//! Results are aggregated as they go ([`Summary`]), so memory stays flat
//! however many requests run, and the summary is the same for any thread
//! count.
//!
//! [`Options::on_trace`] hands every request's primary trace to the
//! caller as it is recorded (for an OTLP export, say), on the worker that
//! recorded it, so in no particular order; without it, nothing is done.
//!
//! [`explain`] replays one request and keeps both traces, for the
//! hop-by-hop story.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use laneway_scenario::Scenario;

use crate::backend::{Backend, BackendFactory, Plan, StartError};
use crate::checks::{self, Scratch};
use crate::names;
use crate::summary::Summary;
use crate::trace::Trace;

const CHUNK: u64 = 512;
const PROGRESS_STEP: u64 = 16;

/// Called with the requests done and the total.
pub type ProgressFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// Called once, with the first failed hop's story.
pub type FailureFn = Arc<dyn Fn(&str) + Send + Sync>;

/// Called with each request's primary trace, as it is recorded.
pub type TraceFn = Arc<dyn Fn(&Scenario, &Trace) + Send + Sync>;

/// How to run a replay.
#[derive(Clone)]
pub struct Options {
    /// Worker threads (one backend each).
    pub threads: usize,
    /// Called from the calling thread about every 100 ms with the requests
    /// done and the total.
    pub progress: Option<ProgressFn>,
    /// Called once, as soon as the first hop fails (a trap, a runaway
    /// call), with `request NAME#N: CALLER → SERVICE: why`: a failed hop
    /// can cost a whole call budget, so a person wants to know early.
    pub on_first_failure: Option<FailureFn>,
    /// Stop taking requests after the first failed hop. The summary then
    /// covers the requests that ran, and says so in a note.
    pub fail_fast: bool,
    /// Called by the worker that recorded it with the primary backend's
    /// trace of every request replayed, after the checks judged it. Calls
    /// come from several threads at once and in no particular order:
    /// order by [`Trace::index`] for output that does not depend on the
    /// thread count.
    pub on_trace: Option<TraceFn>,
    /// Replay only the first this many requests of each traffic group (a
    /// slow backend on a large scenario); the summary says so in a note.
    pub sample: Option<u64>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            progress: None,
            on_first_failure: None,
            fail_fast: false,
            on_trace: None,
            sample: None,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("threads", &self.threads)
            .field("progress", &self.progress.is_some())
            .field("on_first_failure", &self.on_first_failure.is_some())
            .field("fail_fast", &self.fail_fast)
            .field("on_trace", &self.on_trace.is_some())
            .field("sample", &self.sample)
            .finish()
    }
}

/// Why a replay could not run at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayError(pub String);

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReplayError {}

impl From<StartError> for ReplayError {
    fn from(e: StartError) -> ReplayError {
        ReplayError(e.0)
    }
}

/// A finished replay: what the checks found, and how it ran.
#[derive(Clone, Debug)]
pub struct Replayed {
    /// The checks' findings.
    pub summary: Summary,
    /// The primary backend's name.
    pub backend: String,
    /// The reference backend's name, if one ran.
    pub reference: Option<String>,
    /// Worker threads used.
    pub threads: usize,
    /// Wall time.
    pub elapsed: Duration,
}

/// Each traffic group's entry header lines, borrowed once.
type Lines<'s> = Vec<(Vec<&'s str>, Vec<&'s str>)>;

fn entry_lines(scenario: &Scenario) -> Lines<'_> {
    scenario
        .traffic
        .iter()
        .map(|t| {
            (
                t.headers.baggage.iter().map(String::as_str).collect(),
                t.headers.tracestate.iter().map(String::as_str).collect(),
            )
        })
        .collect()
}

struct Worker<'s> {
    scenario: &'s Scenario,
    lines: &'s Lines<'s>,
    swaps: &'s [(u64, &'s str)],
    primary: Box<dyn Backend + 's>,
    reference: Option<Box<dyn Backend + 's>>,
    on_trace: Option<&'s TraceFn>,
    epoch: usize,
    trace: Trace,
    reference_trace: Trace,
    scratch: Scratch,
    summary: Summary,
}

impl<'s> Worker<'s> {
    fn new(
        scenario: &'s Scenario,
        lines: &'s Lines<'s>,
        swaps: &'s [(u64, &'s str)],
        primary: &'s dyn BackendFactory,
        reference: Option<&'s dyn BackendFactory>,
        on_trace: Option<&'s TraceFn>,
    ) -> Result<Worker<'s>, ReplayError> {
        Ok(Worker {
            scenario,
            lines,
            swaps,
            primary: primary.start(scenario)?,
            reference: reference.map(|r| r.start(scenario)).transpose()?,
            on_trace,
            epoch: 0,
            trace: Trace::default(),
            reference_trace: Trace::default(),
            scratch: Scratch::default(),
            summary: Summary::new(scenario.traffic.len()),
        })
    }

    /// Runs request `index`; true when one of its hops failed.
    fn request(&mut self, group: usize, index: u64) -> bool {
        self.sync_config(index);
        let (baggage, tracestate) = &self.lines[group];
        let plan = Plan {
            scenario: self.scenario,
            group,
            index,
            baggage,
            tracestate,
        };
        self.primary.run(&plan, &mut self.trace);
        if let Some(reference) = &mut self.reference {
            reference.run(&plan, &mut self.reference_trace);
            checks::compare(
                self.scenario,
                &self.trace,
                &self.reference_trace,
                &mut self.summary,
            );
        }
        checks::judge(
            self.scenario,
            &self.trace,
            &mut self.summary,
            &mut self.scratch,
        );
        if let Some(tell) = self.on_trace {
            tell(self.scenario, &self.trace);
        }
        self.trace.first_failure().is_some()
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
        let primary = self.primary.configure(config);
        let reference = self.reference.as_mut().map(|r| r.configure(config));
        let note = match (&primary, &reference) {
            (Ok(()), None | Some(Ok(()))) => {
                format!("configuration {epoch} active from request {index}")
            }
            (Err(_), Some(Err(_))) => format!(
                "configuration {epoch} refused by the filter and the core from request {index}: both keep the last good one"
            ),
            (Err(_), None) => format!(
                "configuration {epoch} refused by the filter from request {index}: it keeps the last good one"
            ),
            (_, Some(reference)) => {
                self.summary.differential.add(index, || {
                    format!(
                        "configuration {epoch}: the filter says {primary:?}, the core says {reference:?}"
                    )
                });
                String::new()
            }
        };
        self.summary.note(note);
        self.epoch = epoch;
    }
}

/// Replays `scenario` through `primary`, comparing every request with
/// `reference` when given.
pub fn replay(
    scenario: &Scenario,
    primary: &dyn BackendFactory,
    reference: Option<&dyn BackendFactory>,
    options: &Options,
) -> Result<Replayed, ReplayError> {
    let started = Instant::now();
    let lines = entry_lines(scenario);
    let swaps = scenario.config_swaps();
    let total = scenario.requests;
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    // A rate limit makes a verdict depend on the requests before it (its
    // bucket): replay those in order, on one thread, so they repeat.
    let threads = if scenario.order_matters() {
        1
    } else {
        options.threads.clamp(1, 256)
    };
    // The first worker to see a failed hop tells; with fail-fast, every
    // worker stops at its next request.
    let on_failure = |w: &Worker<'_>| {
        if !failed.swap(true, Ordering::Relaxed)
            && let Some(tell) = &options.on_first_failure
            && let Some(story) = names::first_failure(scenario, &w.trace)
        {
            tell(&story);
        }
    };
    let stop = || options.fail_fast && failed.load(Ordering::Relaxed);

    let results: Vec<Result<Summary, ReplayError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<Summary, ReplayError> {
                    let mut w = Worker::new(
                        scenario,
                        &lines,
                        &swaps,
                        primary,
                        reference,
                        options.on_trace.as_ref(),
                    )?;
                    'chunks: loop {
                        let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                        if start >= total || stop() {
                            break;
                        }
                        let end = (start + CHUNK).min(total);
                        let mut group = scenario
                            .traffic
                            .partition_point(|t| t.first + t.count <= start);
                        // Progress in steps of PROGRESS_STEP requests, so a
                        // slow replay (a runaway filter) shows it too.
                        let mut counted = start;
                        for index in start..end {
                            while scenario.traffic[group].first + scenario.traffic[group].count
                                <= index
                            {
                                group += 1;
                            }
                            if let Some(n) = options.sample
                                && index - scenario.traffic[group].first >= n
                            {
                                continue;
                            }
                            let failed = w.request(group, index);
                            if index + 1 - counted == PROGRESS_STEP {
                                done.fetch_add(PROGRESS_STEP, Ordering::Relaxed);
                                counted = index + 1;
                            }
                            if failed {
                                on_failure(&w);
                                if stop() {
                                    done.fetch_add(index + 1 - counted, Ordering::Relaxed);
                                    break 'chunks;
                                }
                            }
                        }
                        done.fetch_add(end - counted, Ordering::Relaxed);
                    }
                    Ok(w.summary)
                })
            })
            .collect();
        if let Some(report) = &options.progress {
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
    let mut summary = Summary::new(scenario.traffic.len());
    for r in results {
        summary.merge(r?);
    }
    // Judged on the scenario, not on a trace: once per replay.
    checks::unreachable_forks(scenario, &mut summary);
    if let Some(n) = options.sample
        && scenario.traffic.iter().any(|t| t.count > n)
    {
        summary.note(format!(
            "sampled: the first {n} requests of each traffic group, {} of {} requests",
            summary.requests, total
        ));
    }
    if stop() {
        summary.note(format!(
            "stopped at the first failed hop (fail fast): {} of {} requests replayed",
            summary.requests, total
        ));
    }
    Ok(Replayed {
        summary,
        backend: primary.name().to_owned(),
        reference: reference.map(|r| r.name().to_owned()),
        threads,
        elapsed: started.elapsed(),
    })
}

/// One request, replayed and kept.
#[derive(Clone, Debug)]
pub struct Explained {
    /// The traffic group.
    pub group: usize,
    /// The request's global index.
    pub index: u64,
    /// The primary backend's trace.
    pub trace: Trace,
    /// The reference backend's trace, if one ran.
    pub reference: Option<Trace>,
    /// What the checks found for this request alone.
    pub summary: Summary,
}

/// Replays one request (`GROUP` or `GROUP#N`) and keeps its traces.
pub fn explain(
    scenario: &Scenario,
    primary: &dyn BackendFactory,
    reference: Option<&dyn BackendFactory>,
    request: &str,
) -> Result<Explained, ReplayError> {
    let (group, index) = scenario.request_by_name(request).ok_or_else(|| {
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
    let lines = entry_lines(scenario);
    let swaps = scenario.config_swaps();
    let mut w = Worker::new(scenario, &lines, &swaps, primary, reference, None)?;
    w.request(group, index);
    let has_reference = w.reference.is_some();
    Ok(Explained {
        group,
        index,
        trace: w.trace,
        reference: has_reference.then_some(w.reference_trace),
        summary: w.summary,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::NativeFactory;

    fn hotrod() -> Scenario {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/scenarios/hotrod.yaml");
        Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `on_trace` sees every request once, with its own index and hops,
    /// whatever the thread count.
    #[test]
    fn on_trace_sees_every_request_once() {
        let sc = hotrod();
        for threads in [1, 2] {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&seen);
            let options = Options {
                threads,
                on_trace: Some(Arc::new(move |_: &Scenario, t: &Trace| {
                    sink.lock().unwrap().push((t.index, t.hops().len()));
                })),
                ..Options::default()
            };
            let replayed = replay(&sc, &NativeFactory, None, &options).unwrap();
            let mut seen = seen.lock().unwrap().clone();
            seen.sort();
            let indices: Vec<u64> = seen.iter().map(|s| s.0).collect();
            assert_eq!(indices, (0..sc.requests).collect::<Vec<_>>(), "{threads}");
            let hops: u64 = seen.iter().map(|s| s.1 as u64).sum();
            assert_eq!(hops, replayed.summary.hops);
        }
    }
}
