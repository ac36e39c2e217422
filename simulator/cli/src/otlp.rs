//! `replay --otlp FILE`: the replayed requests as OpenTelemetry traces,
//! one OTLP/JSON line per request (conventions in `laneway_report::otlp`).
//!
//! Workers record requests in parallel and in no particular order, so each
//! scenario's lines are collected by request index and written in index
//! order, scenario after scenario: the file is the same bytes for any
//! thread count. Memory is bounded by `--otlp-limit`: only the first N
//! requests of the run (in scenario order, then request order) are kept,
//! the others cost one comparison each, and a warning on stderr says how
//! many were written and how many left out, never silently.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use laneway_replay::{Trace, TraceFn};
use laneway_report::thousands;
use laneway_scenario::Scenario;

use crate::io::{self, Exit, Sink};

type Lines = Arc<Mutex<BTreeMap<u64, serde_json::Result<String>>>>;

/// The traces of a run, on their way to the `--otlp` file.
pub struct Collector {
    sink: Sink,
    path: String,
    limit: u64,
    /// The current scenario's lines, by request index.
    lines: Lines,
    /// Every line kept so far, in order.
    text: String,
    written: u64,
    left_out: u64,
}

impl Collector {
    /// Collects at most `limit` requests' traces for `sink`, the file at
    /// `path`.
    pub fn new(sink: Sink, path: &Path, limit: u64) -> Collector {
        Collector {
            sink,
            path: path.display().to_string(),
            limit,
            lines: Lines::default(),
            text: String::new(),
            written: 0,
            left_out: 0,
        }
    }

    /// The engine hook for the next scenario: it keeps the requests whose
    /// index is below what is left of the limit.
    pub fn hook(&self) -> TraceFn {
        let keep = self.limit - self.written;
        let lines = Arc::clone(&self.lines);
        Arc::new(move |sc: &Scenario, trace: &Trace| {
            if trace.index >= keep {
                return;
            }
            let line = laneway_report::otlp::export_line(sc, trace);
            lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(trace.index, line);
        })
    }

    /// Takes the lines of the scenario just replayed, of which `replayed`
    /// requests ran.
    pub fn scenario_done(&mut self, replayed: u64) -> Result<(), Exit> {
        let lines = std::mem::take(&mut *self.lines.lock().unwrap_or_else(PoisonError::into_inner));
        let kept = lines.len() as u64;
        for line in lines.into_values() {
            self.text.push_str(&line.map_err(Exit::bug)?);
            self.text.push('\n');
        }
        self.written += kept;
        self.left_out += replayed.saturating_sub(kept);
        Ok(())
    }

    /// Writes the file, then warns when requests were left out.
    pub fn write(self) -> Result<(), Exit> {
        self.sink.write(&self.text)?;
        if self.left_out > 0 {
            io::stderr(&format!(
                "laneway: warning: --otlp {}: wrote the traces of {} requests, left out {} \
                 (--otlp-limit {}; raise it to write more)\n",
                self.path,
                thousands(self.written),
                thousands(self.left_out),
                thousands(self.limit)
            ))?;
        }
        Ok(())
    }
}
