//! The text report, for people: the traffic and its distinct paths, the
//! checks with their first examples, each sandbox's blast radius, notes.

use std::fmt::Write as _;

use crate::{Report, pct, thousands};

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
