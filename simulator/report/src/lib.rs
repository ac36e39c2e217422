//! `laneway-report`: what a replay found, for people and machines,
//! whichever backend recorded the traces.
//!
//! - The model: [`Report`], plain data built once from the engine's
//!   summary ([`Report::new`], in `build`), including each sandbox's blast
//!   radius.
//! - Renderings: [`text`] for people, [`json`] for machines, [`junit`] for
//!   CI, [`html`] for a browser (one self-contained page: each path's call
//!   tree drawn in SVG), and [`explain`] for one request's hop-by-hop story,
//!   drawn from the recorded tree.
//! - Traces: [`otlp`] writes each replayed request as an OpenTelemetry
//!   trace (OTLP/JSON, one request per line), one span per hop.
//!
//! The text and JSON carry no timings, so they are stable for golden files;
//! [`Report::elapsed`] is printed separately by the CLI. Enums become text
//! here and nowhere earlier.

mod build;
pub mod explain;
mod html;
mod junit;
pub mod otlp;
pub mod printable;
mod text;

use std::time::Duration;

use serde::Serialize;

pub use html::html;
pub use junit::junit;
pub use printable::printable;
pub use text::{TextOptions, text};

/// A scenario's replay.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// Its file.
    pub file: String,
    /// Its description.
    pub description: String,
    /// The filter module.
    pub wasm: String,
    /// `sidecar` or `ambient`: where calls are decided.
    pub mesh: &'static str,
    /// Requests replayed.
    pub requests: u64,
    /// Hops decided.
    pub hops: u64,
    /// Worker threads used.
    #[serde(skip)]
    pub threads: usize,
    /// Wall time.
    #[serde(skip)]
    pub elapsed: Duration,
    /// Traffic groups.
    pub groups: Vec<GroupReport>,
    /// Global checks and expectations.
    pub checks: Vec<Check>,
    /// Blast radius per sandbox.
    pub blast: Vec<Blast>,
    /// Events of the run (configuration swaps).
    pub notes: Vec<String>,
}

/// One traffic group.
#[derive(Clone, Debug, Serialize)]
pub struct GroupReport {
    /// Its name.
    pub name: String,
    /// Its chain.
    pub chain: String,
    /// Its kind.
    pub kind: String,
    /// Its key.
    pub key: Option<String>,
    /// Requests.
    pub count: u64,
    /// Requests that broke an expectation.
    pub failures: u64,
    /// Distinct paths, most frequent first.
    pub paths: Vec<PathReport>,
}

/// A distinct path and how many requests took it.
#[derive(Clone, Debug, Serialize)]
pub struct PathReport {
    /// Requests.
    pub count: u64,
    /// Those that broke an expectation of the traffic group.
    pub failures: u64,
    /// The status the client got.
    pub status: u16,
    /// Workloads in call order.
    pub path: Vec<String>,
    /// Each hop's decision.
    pub hops: Vec<HopDetail>,
}

/// One hop's decision.
#[derive(Clone, Debug, Serialize)]
pub struct HopDetail {
    /// The caller.
    pub caller: String,
    /// The callee service.
    pub service: String,
    /// `fork`, `baseline`, `reject` or `failed`.
    pub route: String,
    /// The filter's reason, `no_waypoint` when no filter saw the call, or
    /// `unknown`.
    pub reason: String,
    /// The waypoint that decided the hop (ambient mesh); absent when the
    /// caller's sidecar did, or no filter did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waypoint: Option<String>,
    /// What served it.
    pub served_by: String,
    /// The hop that made this call (its position in `hops`); `None` for
    /// the ingress's call.
    pub parent: Option<u32>,
    /// What the hop was for the request: see [`HopClass`].
    pub class: HopClass,
    /// For a violation, what it broke: `leak`, `cross-talk`, `miss`,
    /// `failed`, `rejected` or `expectations`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violation: Option<&'static str>,
}

/// What a hop was for its request, as the HTML report colours it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HopClass {
    /// Served by the baseline, the request carrying no key (untagged, or
    /// the key was lost before this hop).
    Baseline,
    /// Served by the request's own sandbox's fork.
    Fork,
    /// A request with a key that the baseline served because its sandbox
    /// does not fork the service (or no sandbox has the key), or a fork
    /// that is unavailable; expected misses too.
    Fallback,
    /// A leak, cross-talk, an unexpected miss, a failed or rejected hop, or
    /// a hop of a path that broke an expectation.
    Violation,
}

impl HopClass {
    /// The class's name, as JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            HopClass::Baseline => "baseline",
            HopClass::Fork => "fork",
            HopClass::Fallback => "fallback",
            HopClass::Violation => "violation",
        }
    }
}

/// A check.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// `leak`, `cross-talk`, `miss`, `unreachable-forks` (ambient mesh
    /// only), `differential`, `failed-hops`, `expectations`.
    pub name: String,
    /// Whether it holds.
    pub passed: bool,
    /// How many findings.
    pub count: u64,
    /// What it counts.
    pub summary: String,
    /// The first findings.
    pub examples: Vec<String>,
}

/// A sandbox's blast radius.
#[derive(Clone, Debug, Serialize)]
pub struct Blast {
    /// The key.
    pub key: String,
    /// Hops its forks captured.
    pub captured: u64,
    /// Hops on its edges.
    pub edge_hops: u64,
    /// The caller → service edges it can capture.
    pub edges: Vec<BlastEdge>,
}

/// One edge of a blast radius.
#[derive(Clone, Debug, Serialize)]
pub struct BlastEdge {
    /// The calling service (or `ingress`).
    pub caller: String,
    /// The forked service.
    pub service: String,
    /// Hops the sandbox's fork captured.
    pub captured: u64,
    /// Hops on the edge.
    pub hops: u64,
}

impl Report {
    /// Whether every check holds.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

pub(crate) fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// Thousands separators, for people.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Every report as one JSON document.
pub fn json(reports: &[Report]) -> serde_json::Value {
    serde_json::json!({
        "passed": reports.iter().all(Report::passed),
        "scenarios": reports,
    })
}
