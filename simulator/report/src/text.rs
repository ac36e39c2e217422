//! The text report, for people: the traffic and its distinct paths, the
//! checks with their first examples, each sandbox's blast radius, notes.
//! An ambient mesh says so under the filter line, and each hop decided at
//! a waypoint names it (`at waypoint W`); a sidecar mesh's report has
//! neither.

use laneway_scenario::spec::Mesh;

use crate::printable::line;

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
    line(&mut s, format_args!("scenario {} ({})", r.scenario, r.file));
    if !r.description.is_empty() {
        for text in r.description.trim().lines() {
            line(&mut s, format_args!("  {text}"));
        }
    }
    line(
        &mut s,
        format_args!(
            "  filter {}: {} requests, {} hops",
            r.wasm,
            thousands(r.requests),
            thousands(r.hops)
        ),
    );
    if r.mesh == Mesh::Ambient.as_str() {
        line(
            &mut s,
            format_args!(
                "  mesh {}: each call is decided at the waypoint of the service it calls; \
                 a service without one gets no decision (no_waypoint)",
                r.mesh
            ),
        );
    }
    s.push('\n');
    line(&mut s, format_args!("traffic"));
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
        line(
            &mut s,
            format_args!(
                "  {} (chain {}, {}{key}): {} requests{failures}",
                g.name,
                g.chain,
                g.kind,
                thousands(g.count)
            ),
        );
        for p in &g.paths {
            let status = if p.status == 200 {
                String::new()
            } else {
                format!(" [{}]", p.status)
            };
            line(
                &mut s,
                format_args!(
                    "    {:>8} × {}{status}",
                    thousands(p.count),
                    p.path.join(" → ")
                ),
            );
            if o.details {
                for h in &p.hops {
                    let at = h
                        .waypoint
                        .as_deref()
                        .map(|w| format!(" at waypoint {w}"))
                        .unwrap_or_default();
                    line(
                        &mut s,
                        format_args!(
                            "               {} → {}: {} ({}){at} → {}",
                            h.caller, h.service, h.route, h.reason, h.served_by
                        ),
                    );
                }
            }
        }
    }
    s.push('\n');
    line(&mut s, format_args!("checks"));
    // Names padded to 13, or to the longest name when one is longer.
    let width = r.checks.iter().map(|c| c.name.len()).fold(13, usize::max);
    for c in &r.checks {
        if o.only_failures && c.passed {
            continue;
        }
        line(
            &mut s,
            format_args!(
                "  {}  {:<width$} {:>8}  {}",
                if c.passed { "PASS" } else { "FAIL" },
                c.name,
                thousands(c.count),
                c.summary
            ),
        );
        for e in &c.examples {
            line(&mut s, format_args!("        - {e}"));
        }
        if c.count > c.examples.len() as u64 {
            line(
                &mut s,
                format_args!(
                    "        ... and {} more",
                    thousands(c.count - c.examples.len() as u64)
                ),
            );
        }
    }
    if !o.only_failures && !r.blast.is_empty() {
        s.push('\n');
        line(&mut s, format_args!("blast radius"));
        // Beyond 20 sandboxes, list those that captured traffic; JSON has all.
        let many = r.blast.len() > 20;
        let idle = r.blast.iter().filter(|b| b.captured == 0).count();
        for b in r.blast.iter().filter(|b| !many || b.captured > 0) {
            line(
                &mut s,
                format_args!(
                    "  {}: captured {} of {} hops on its edges ({}), {} of all {} hops",
                    b.key,
                    thousands(b.captured),
                    thousands(b.edge_hops),
                    pct(b.captured, b.edge_hops),
                    pct(b.captured, r.hops),
                    thousands(r.hops)
                ),
            );
            for e in &b.edges {
                line(
                    &mut s,
                    format_args!(
                        "    {} → {}: {} of {} hops ({})",
                        e.caller,
                        e.service,
                        thousands(e.captured),
                        thousands(e.hops),
                        pct(e.captured, e.hops)
                    ),
                );
            }
        }
        if many && idle > 0 {
            line(
                &mut s,
                format_args!(
                    "  {} other sandboxes captured no traffic (the JSON report lists every sandbox)",
                    thousands(idle as u64)
                ),
            );
        }
    }
    if !r.notes.is_empty() {
        s.push('\n');
        line(&mut s, format_args!("notes"));
        for n in &r.notes {
            line(&mut s, format_args!("  {n}"));
        }
    }
    let failed = r.checks.iter().filter(|c| !c.passed).count();
    s.push('\n');
    line(
        &mut s,
        format_args!(
            "result: {}",
            if failed == 0 {
                format!("PASS ({} checks hold)", r.checks.len())
            } else {
                format!("FAIL ({failed} of {} checks failed)", r.checks.len())
            }
        ),
    );
    s
}
