//! The replay report, independent of the backend that decided the hops:
//! plain data ([`Report`]), rendered as text for people, JSON for machines
//! and JUnit XML for CI.
//!
//! The text and JSON carry no timings, so they are stable for golden files;
//! [`Report::elapsed`] is printed separately by the CLI.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

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
    /// The filter's reason.
    pub reason: String,
    /// What served it.
    pub served_by: String,
}

/// A check.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// `leak`, `cross-talk`, `miss`, `differential`, `failed-hops`, `expectations`.
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

fn pct(part: u64, whole: u64) -> String {
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

/// What the text shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextOptions {
    /// Each hop's decision and reason under each path.
    pub details: bool,
    /// Only failing checks and traffic groups with failures.
    pub only_failures: bool,
}

/// The report for people.
pub fn text(r: &Report, o: TextOptions) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "scenario {} ({})", r.scenario, r.file);
    if !r.description.is_empty() {
        for line in r.description.trim().lines() {
            let _ = writeln!(s, "  {line}");
        }
    }
    let _ = writeln!(
        s,
        "  filter {}: {} requests, {} hops",
        r.wasm,
        thousands(r.requests),
        thousands(r.hops)
    );
    let _ = writeln!(s, "\ntraffic");
    for g in &r.groups {
        if o.only_failures && g.failures == 0 {
            continue;
        }
        let key = g
            .key
            .as_deref()
            .map(|k| format!(" {k}"))
            .unwrap_or_default();
        let failures = if g.failures > 0 {
            format!(", {} broke expectations", thousands(g.failures))
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  {} (chain {}, {}{key}): {} requests{failures}",
            g.name,
            g.chain,
            g.kind,
            thousands(g.count)
        );
        for p in &g.paths {
            let status = if p.status == 200 {
                String::new()
            } else {
                format!(" [{}]", p.status)
            };
            let _ = writeln!(
                s,
                "    {:>8} × {}{status}",
                thousands(p.count),
                p.path.join(" → ")
            );
            if o.details {
                for h in &p.hops {
                    let _ = writeln!(
                        s,
                        "               {} → {}: {} ({}) → {}",
                        h.caller, h.service, h.route, h.reason, h.served_by
                    );
                }
            }
        }
    }
    let _ = writeln!(s, "\nchecks");
    for c in &r.checks {
        if o.only_failures && c.passed {
            continue;
        }
        let _ = writeln!(
            s,
            "  {}  {:<13} {:>8}  {}",
            if c.passed { "PASS" } else { "FAIL" },
            c.name,
            thousands(c.count),
            c.summary
        );
        for e in &c.examples {
            let _ = writeln!(s, "        - {e}");
        }
        if c.count > c.examples.len() as u64 {
            let _ = writeln!(
                s,
                "        ... and {} more",
                thousands(c.count - c.examples.len() as u64)
            );
        }
    }
    if !o.only_failures && !r.blast.is_empty() {
        let _ = writeln!(s, "\nblast radius");
        // Beyond 20 sandboxes, list those that captured traffic; JSON has all.
        let many = r.blast.len() > 20;
        let idle = r.blast.iter().filter(|b| b.captured == 0).count();
        for b in r.blast.iter().filter(|b| !many || b.captured > 0) {
            let _ = writeln!(
                s,
                "  {}: captured {} of {} hops on its edges ({}), {} of all {} hops",
                b.key,
                thousands(b.captured),
                thousands(b.edge_hops),
                pct(b.captured, b.edge_hops),
                pct(b.captured, r.hops),
                thousands(r.hops)
            );
            for e in &b.edges {
                let _ = writeln!(
                    s,
                    "    {} → {}: {} of {} hops ({})",
                    e.caller,
                    e.service,
                    thousands(e.captured),
                    thousands(e.hops),
                    pct(e.captured, e.hops)
                );
            }
        }
        if many && idle > 0 {
            let _ = writeln!(
                s,
                "  {} other sandboxes captured no traffic (the JSON report lists every sandbox)",
                thousands(idle as u64)
            );
        }
    }
    if !r.notes.is_empty() {
        let _ = writeln!(s, "\nnotes");
        for n in &r.notes {
            let _ = writeln!(s, "  {n}");
        }
    }
    let failed = r.checks.iter().filter(|c| !c.passed).count();
    let _ = writeln!(
        s,
        "\nresult: {}",
        if failed == 0 {
            format!("PASS ({} checks hold)", r.checks.len())
        } else {
            format!("FAIL ({failed} of {} checks failed)", r.checks.len())
        }
    );
    s
}

/// Every report as one JSON document.
pub fn json(reports: &[Report]) -> serde_json::Value {
    serde_json::json!({
        "passed": reports.iter().all(Report::passed),
        "scenarios": reports,
    })
}

fn xml(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML: a test suite per scenario, a test case per check and per
/// traffic group.
pub fn junit(reports: &[Report]) -> String {
    let mut cases_total = 0;
    let mut failures_total = 0;
    let mut suites = String::new();
    for r in reports {
        let mut cases = String::new();
        let mut n = 0;
        let mut failed = 0;
        for c in &r.checks {
            n += 1;
            let _ = write!(
                cases,
                "    <testcase classname=\"{}.checks\" name=\"{}\"",
                xml(&r.scenario),
                xml(&c.name)
            );
            if c.passed {
                cases.push_str("/>\n");
            } else {
                failed += 1;
                let _ = writeln!(
                    cases,
                    ">\n      <failure message=\"{} {}\">{}</failure>\n    </testcase>",
                    c.count,
                    xml(&c.summary),
                    xml(&c.examples.join("\n"))
                );
            }
        }
        for g in &r.groups {
            n += 1;
            let _ = write!(
                cases,
                "    <testcase classname=\"{}.traffic\" name=\"{}\"",
                xml(&r.scenario),
                xml(&g.name)
            );
            if g.failures == 0 {
                cases.push_str("/>\n");
            } else {
                failed += 1;
                let _ = writeln!(
                    cases,
                    ">\n      <failure message=\"{} of {} requests broke expectations (see the expectations check)\"/>\n    </testcase>",
                    g.failures, g.count
                );
            }
        }
        cases_total += n;
        failures_total += failed;
        let _ = write!(
            suites,
            "  <testsuite name=\"{}\" tests=\"{n}\" failures=\"{failed}\" errors=\"0\" time=\"{:.3}\">\n{cases}  </testsuite>\n",
            xml(&r.scenario),
            r.elapsed.as_secs_f64()
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"laneway replay\" tests=\"{cases_total}\" failures=\"{failures_total}\">\n{suites}</testsuites>\n"
    )
}
