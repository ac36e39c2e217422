//! `bench-envoy --instructions`: instructions per request of every kind and
//! of both mixes, for every setup, counted under callgrind
//! ([`crate::callgrind`]); then the tables, the issue-12 target lines
//! (PASS/MISS, with the measured figures), the JSON and the bar plot.
//!
//! Both mixes are counted as real request sequences (whole cycles of
//! [`super::bench_mix`] and [`super::production_mix`] on one keep-alive
//! connection), never as weighted averages of the per-kind counts. Every
//! count covers a whole number of its cycle, so the proportions are exact.
//!
//! Every setup's routing is checked first ([`super::check_routing`]), and
//! for Laneway each count is checked against the filter's own decision
//! counters: the plain shape decides every request, the composite shape
//! only those with a `baggage` or `tracestate` header. A shape that does
//! not run the filter where the table says it does fails the harness.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::{
    AUTHORITY, BENCH_MIX, KINDS, MIXES, PRODUCTION_MIX, Request, SHAPES, Setup, UNTAGGED, Wrapper,
    bootstrap_for, check_routing, kind_requests, mix, mixes_json, shape_label, thousands,
};
use crate::callgrind::{Counting, keepalive_request, send_all};
use crate::plot::{self, Bars};

/// Laneway's table sizes.
pub const FORKS: [usize; 3] = [10, 1000, 10_000];
/// The regex routes' table sizes.
pub const REGEX_SANDBOXES: [usize; 4] = [10, 100, 1000, 10_000];
/// The table size the ratios and targets are read at.
pub const AT: usize = 1000;
/// From this many regex sandboxes on, a count sends a tenth of the
/// requests (at least one cycle of each mix): one request costs ~10M
/// instructions there.
const FEWER_FROM: usize = 10_000;

/// The setups of one run: plain Envoy and the empty filter, each with and
/// without inline headers; Laneway in every shape at every table size; the
/// regex routes. `floor_only`: plain Envoy, the empty filter, and Laneway
/// plain and composite + inline at 1,000 forks (for CI).
pub fn setups(floor_only: bool) -> Vec<Setup> {
    if floor_only {
        return vec![
            Setup::Plain { inline: false },
            Setup::Empty { inline: false },
            Setup::laneway(AT, SHAPES[0]),
            Setup::laneway(AT, SHAPES[3]),
        ];
    }
    let mut out = vec![
        Setup::Plain { inline: false },
        Setup::Plain { inline: true },
        Setup::Empty { inline: false },
        Setup::Empty { inline: true },
    ];
    for forks in FORKS {
        out.extend(SHAPES.iter().map(|&s| Setup::laneway(forks, s)));
    }
    out.extend(REGEX_SANDBOXES.iter().map(|&n| Setup::Regex(n)));
    out
}

/// One count: instructions per request over `requests` requests.
#[derive(Clone, Debug)]
pub struct Count {
    /// A request kind ([`KINDS`]) or a mix ([`MIXES`]).
    pub what: &'static str,
    /// Envoy's instructions (every thread) per request.
    pub per_request: f64,
    /// Requests counted.
    pub requests: usize,
}

/// Every count of one setup.
#[derive(Clone, Debug)]
pub struct Counted {
    /// The setup.
    pub setup: Setup,
    /// [`KINDS`] then [`MIXES`].
    pub counts: Vec<Count>,
}

impl Counted {
    /// The count of `what`, if measured.
    pub fn get(&self, what: &str) -> Option<f64> {
        self.counts
            .iter()
            .find(|c| c.what == what)
            .map(|c| c.per_request)
    }
}

/// `n` rounded up to a whole number of cycles of `len`.
fn whole_cycles(n: usize, len: usize) -> usize {
    n.div_ceil(len).max(1) * len
}

/// Requests per count for `setup`.
fn per_count(setup: &Setup, per_kind: usize) -> usize {
    match setup {
        Setup::Regex(n) if *n >= FEWER_FROM => (per_kind / 10).max(1),
        _ => per_kind,
    }
}

fn decisions(cg: &Counting) -> Result<u64> {
    let stats = cg.envoy().context("Envoy is gone")?.stats()?;
    Ok(stats
        .iter()
        .filter(|(k, _)| k.starts_with("wasmcustom.laneway.decision."))
        .map(|(_, v)| *v)
        .sum())
}

fn host_errors(cg: &Counting) -> Result<u64> {
    let stats = cg.envoy().context("Envoy is gone")?.stats()?;
    Ok(stats
        .get("wasmcustom.laneway.host_errors")
        .copied()
        .unwrap_or(0))
}

/// How many of `count` requests cycled from `requests` the Laneway filter
/// sees in `setup`: all of them plain, those with context composite.
fn filter_runs(setup: &Setup, requests: &[Request], count: usize) -> u64 {
    let runs = |r: &Request| match setup {
        Setup::Laneway {
            wrapper: Wrapper::Composite,
            ..
        } => r
            .headers
            .iter()
            .any(|(n, _)| *n == "baggage" || *n == "tracestate"),
        _ => true,
    };
    (0..count)
        .filter(|i| runs(&requests[i % requests.len()]))
        .count() as u64
}

/// Counts every kind and both mixes for every setup, one Envoy after
/// another (never two at once: the machine has two cores). `per_kind`
/// requests per count (rounded up to whole cycles; a tenth from
/// 10,000 regex sandboxes on), after an uncounted warm-up that lets V8 tier
/// the module up.
pub fn instructions(
    setups: &[Setup],
    laneway: &Path,
    empty: &Path,
    per_kind: usize,
    dir: &Path,
    progress: impl Fn(&str),
) -> Result<Vec<Counted>> {
    let mut out = Vec::new();
    for setup in setups {
        let started = std::time::Instant::now();
        let bootstrap = bootstrap_for(setup, laneway, empty);
        let mut cg = Counting::start(
            &bootstrap,
            &dir.join(format!("callgrind-{}", setup.slug())),
            &setup.label(),
        )?;
        check_routing(setup, cg.listener())?;
        let mut groups: Vec<(&'static str, Vec<Request>)> =
            KINDS.iter().map(|&k| (k, kind_requests(k))).collect();
        groups.extend(MIXES.iter().map(|&m| (m, mix(m))));
        let bytes = |rs: &[Request]| -> Vec<Vec<u8>> {
            rs.iter()
                .map(|r| keepalive_request(AUTHORITY, &r.headers))
                .collect()
        };
        let per = per_count(setup, per_kind);
        let warm = if per < per_kind { 1 } else { 4 };
        for (_, requests) in groups.iter().skip(KINDS.len()) {
            send_all(
                cg.listener(),
                &bytes(requests),
                whole_cycles(per * warm / 4, requests.len()),
            )?;
        }
        let mut counts = Vec::new();
        let laneway_setup = matches!(setup, Setup::Laneway { .. });
        for (what, requests) in &groups {
            let n = whole_cycles(per, requests.len());
            let before = if laneway_setup { decisions(&cg)? } else { 0 };
            let per_request = cg.count(&bytes(requests), n)?;
            if laneway_setup {
                let grew = decisions(&cg)? - before;
                let want = filter_runs(setup, requests, n);
                if grew != want {
                    bail!(
                        "{}: {what}: the filter decided {grew} of {n} requests, want {want}",
                        setup.label()
                    );
                }
                if host_errors(&cg)? != 0 {
                    bail!("{}: laneway.host_errors is not 0", setup.label());
                }
            }
            progress(&format!(
                "{:<42} {what:<24} {per_request:>11.0} instructions per request ({n} requests)",
                setup.label()
            ));
            counts.push(Count {
                what,
                per_request,
                requests: n,
            });
        }
        drop(cg);
        progress(&format!(
            "{:<42} {:.0} s",
            setup.label(),
            started.elapsed().as_secs_f64()
        ));
        out.push(Counted {
            setup: *setup,
            counts,
        });
    }
    Ok(out)
}

/// Counts the same setup twice, in two Envoys, and returns the largest
/// relative difference over every kind and mix (callgrind's run-to-run
/// noise: V8's tier-up and Envoy's timers are not quite deterministic).
pub fn noise(
    setup: &Setup,
    laneway: &Path,
    empty: &Path,
    per_kind: usize,
    dir: &Path,
    progress: impl Fn(&str),
) -> Result<(f64, &'static str)> {
    let a = instructions(&[*setup], laneway, empty, per_kind, dir, &progress)?;
    let b = instructions(&[*setup], laneway, empty, per_kind, dir, &progress)?;
    let mut worst = (0.0, "");
    for (x, y) in a[0].counts.iter().zip(&b[0].counts) {
        let d = (y.per_request / x.per_request - 1.0).abs();
        if d >= worst.0 {
            worst = (d, x.what);
        }
    }
    Ok(worst)
}

/// One target of issue 12, judged.
#[derive(Clone, Debug)]
pub struct Target {
    /// What the issue asks, in words.
    pub target: String,
    /// What was measured, in words, with the figures.
    pub measured: String,
    /// The measured ratio.
    pub value: f64,
    /// Whether the target holds; `None` for a figure reported beside a
    /// target but not judged (the regex routes at 10,000).
    pub pass: Option<bool>,
}

impl Target {
    /// `PASS target: measured`, `MISS ...`, or `INFO ...` when not judged.
    pub fn line(&self) -> String {
        format!(
            "{} {}: {}",
            match self.pass {
                Some(true) => "PASS",
                Some(false) => "MISS",
                None => "INFO",
            },
            self.target,
            self.measured
        )
    }
}

/// Looks up counts by setup.
struct Find<'a>(&'a [Counted]);

impl Find<'_> {
    fn get(&self, setup: Setup, what: &str) -> Option<f64> {
        self.0.iter().find(|c| c.setup == setup)?.get(what)
    }
}

fn k(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else {
        format!("{:.1}k", v / 1000.0)
    }
}

/// The judged targets (those whose setups were measured).
pub fn targets(counted: &[Counted]) -> Vec<Target> {
    let f = Find(counted);
    let mut out = Vec::new();
    let at = |shape: (Wrapper, bool)| Setup::laneway(AT, shape);
    // Untagged, composite shape, against plain Envoy with the same bootstrap.
    for shape in [SHAPES[1], SHAPES[3]] {
        let s = at(shape);
        let r = s.like_plain();
        if let (Some(v), Some(base)) = (f.get(s, UNTAGGED), f.get(r, UNTAGGED)) {
            let ratio = v / base;
            out.push(Target {
                target: format!(
                    "untagged, {} ≤ 1.05 × {}",
                    shape_label(shape.0, shape.1),
                    r.label()
                ),
                measured: format!(
                    "{ratio:.3} × ({} vs {} instructions, {} forks)",
                    k(v),
                    k(base),
                    thousands(AT)
                ),
                value: ratio,
                pass: Some(ratio <= 1.05),
            });
        }
    }
    // Mixes, best shape, against the empty filter with the same bootstrap.
    for (what, limit) in [(BENCH_MIX, 0.95), (PRODUCTION_MIX, 1.10)] {
        let best = SHAPES
            .iter()
            .filter_map(|&shape| {
                let s = at(shape);
                let e = s.like_empty();
                let (v, base) = (f.get(s, what)?, f.get(e, what)?);
                Some((shape, e, v, base, base / v))
            })
            .max_by(|a, b| a.4.total_cmp(&b.4));
        if let Some((shape, e, v, base, ratio)) = best {
            let default_empty = f.get(Setup::Empty { inline: false }, what);
            let also = match default_empty {
                Some(d) if e != (Setup::Empty { inline: false }) => {
                    format!(
                        "; against the empty filter without inline headers {:.3}",
                        d / v
                    )
                }
                _ => String::new(),
            };
            out.push(Target {
                target: format!("{what}, best shape ≥ {limit:.2} × the empty filter's throughput"),
                measured: format!(
                    "{} {ratio:.3} × {} ({} vs {} instructions, {} forks){also}",
                    shape_label(shape.0, shape.1),
                    e.label(),
                    k(base),
                    k(v),
                    thousands(AT)
                ),
                value: ratio,
                pass: Some(ratio >= limit),
            });
        }
    }
    // The WasmPlugin shape, no wrapper, no inline headers.
    let s = at(SHAPES[0]);
    let e = s.like_empty();
    if let (Some(v), Some(base)) = (f.get(s, BENCH_MIX), f.get(e, BENCH_MIX)) {
        let ratio = base / v;
        out.push(Target {
            target:
                "bench mix, WasmPlugin shape (plain, no inline headers) ≥ 0.90 × the empty filter"
                    .into(),
            measured: format!(
                "{ratio:.3} × ({} vs {} instructions, {} forks)",
                k(base),
                k(v),
                thousands(AT)
            ),
            value: ratio,
            pass: Some(ratio >= 0.90),
        });
    }
    // Against the regex routes, every kind, every shape.
    for n in [AT, 10_000] {
        let worst = SHAPES
            .iter()
            .flat_map(|&shape| KINDS.iter().map(move |&kind| (shape, kind)))
            .filter_map(|(shape, kind)| {
                let l = f.get(Setup::laneway(n, shape), kind)?;
                let r = f.get(Setup::Regex(n), kind)?;
                Some((shape, kind, l, r, r / l))
            })
            .min_by(|a, b| a.4.total_cmp(&b.4));
        if let Some((shape, kind, l, r, ratio)) = worst {
            let (target, pass) = if n == AT {
                (
                    format!(
                        "every request kind at {} sandboxes ≥ 10× cheaper than the regex routes",
                        thousands(n)
                    ),
                    Some(ratio >= 10.0),
                )
            } else {
                (
                    format!(
                        "every request kind at {} sandboxes against the regex routes (reported; the target is at 1,000)",
                        thousands(n)
                    ),
                    None,
                )
            };
            out.push(Target {
                target,
                measured: format!(
                    "worst: {kind}, {} {ratio:.1}× ({} vs {} instructions)",
                    shape_label(shape.0, shape.1),
                    k(r),
                    k(l)
                ),
                value: ratio,
                pass,
            });
        }
    }
    // Flat in table size.
    let worst = SHAPES
        .iter()
        .flat_map(|&shape| {
            KINDS
                .iter()
                .chain(MIXES.iter())
                .map(move |&what| (shape, what))
        })
        .filter_map(|(shape, what)| {
            let a = f.get(Setup::laneway(10, shape), what)?;
            let b = f.get(Setup::laneway(10_000, shape), what)?;
            Some((shape, what, a, b, b / a - 1.0))
        })
        .max_by(|x, y| x.4.abs().total_cmp(&y.4.abs()));
    if let Some((shape, what, a, b, d)) = worst {
        out.push(Target {
            target: "flat in table size: 10 and 10,000 forks within 1%, every shape, kind and mix"
                .into(),
            measured: format!(
                "worst: {} {what}, {:+.2}% ({} at 10, {} at 10,000)",
                shape_label(shape.0, shape.1),
                d * 100.0,
                k(a),
                k(b)
            ),
            value: d,
            pass: Some(d.abs() <= 0.01),
        });
    }
    out
}

/// A Markdown table of `rows` (a label, then cells) under `header`,
/// leaving out rows with no measured cell; empty when no row is left.
fn table(header: &[String], rows: Vec<(String, Vec<String>)>) -> String {
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|(_, cells)| cells.iter().any(|c| c != "-"))
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut s = format!("| {} |\n|---|", header.join(" | "));
    for _ in 1..header.len() {
        s.push_str("---:|");
    }
    s.push('\n');
    for (label, cells) in rows {
        let _ = writeln!(s, "| {label} | {} |", cells.join(" | "));
    }
    s
}

/// The whole report as Markdown: every count, the ratios at 1,000 forks,
/// Laneway against the regex routes, flatness, then the target lines.
pub fn report(counted: &[Counted]) -> String {
    let f = Find(counted);
    let mut s = String::new();
    let whats: Vec<&str> = KINDS.iter().chain(MIXES.iter()).copied().collect();
    let header = |first: &str| -> Vec<String> {
        std::iter::once(first.to_owned())
            .chain(whats.iter().map(|w| (*w).to_owned()))
            .collect()
    };
    let _ = writeln!(
        s,
        "#### Instructions per request (callgrind, every Envoy thread)\n"
    );
    s.push_str(&table(
        &header("setup"),
        counted
            .iter()
            .map(|c| {
                let cells = whats.iter().map(|w| c.get(w).map_or("-".into(), k));
                (c.setup.label(), cells.collect())
            })
            .collect(),
    ));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.3}", a / b),
        _ => "-".into(),
    };
    let e0 = Setup::Empty { inline: false };
    let rows: Vec<(String, Vec<String>)> = SHAPES
        .iter()
        .map(|&shape| {
            let l = Setup::laneway(AT, shape);
            let (p, e) = (l.like_plain(), l.like_empty());
            let cells = vec![
                ratio(f.get(l, UNTAGGED), f.get(p, UNTAGGED)),
                ratio(f.get(e, BENCH_MIX), f.get(l, BENCH_MIX)),
                ratio(f.get(e, PRODUCTION_MIX), f.get(l, PRODUCTION_MIX)),
                ratio(f.get(e0, BENCH_MIX), f.get(l, BENCH_MIX)),
                ratio(f.get(e0, PRODUCTION_MIX), f.get(l, PRODUCTION_MIX)),
            ];
            let label = format!(
                "{} (against {} / {})",
                shape_label(shape.0, shape.1),
                p.label(),
                e.label()
            );
            (label, cells)
        })
        .collect();
    let t = table(
        &[
            "shape (references)",
            "untagged: instructions / plain Envoy's",
            "bench mix: throughput / empty filter's",
            "production mix: throughput / empty filter's",
            "bench mix / empty filter without inline",
            "production mix / empty filter without inline",
        ]
        .map(String::from),
        rows,
    );
    if !t.is_empty() {
        let _ = writeln!(
            s,
            "\n#### Laneway at {} forks against its references\n",
            thousands(AT)
        );
        let _ = writeln!(
            s,
            "Untagged: the setup's instructions over plain Envoy's (1.000: the filter is free). Mixes: \
             the empty filter's instructions over the setup's, i.e. throughput relative to the empty \
             filter (above 1: cheaper than the empty filter). Each shape is compared with the \
             references that have the same bootstrap (a `+ inline` shape with `plain Envoy + inline` \
             and `empty filter + inline`); the last two columns compare every shape with the empty \
             filter as a WasmPlugin runs it, with the default bootstrap.\n"
        );
        s.push_str(&t);
    }
    let cols: Vec<(usize, (Wrapper, bool))> = [AT, 10_000]
        .iter()
        .flat_map(|&n| SHAPES.iter().map(move |&sh| (n, sh)))
        .collect();
    let mut h = vec!["request".to_owned()];
    h.extend(
        cols.iter()
            .map(|(n, sh)| format!("{}, {}", shape_label(sh.0, sh.1), thousands(*n))),
    );
    let t = table(
        &h,
        whats
            .iter()
            .map(|w| {
                let cells = cols.iter().map(|&(n, sh)| {
                    match (f.get(Setup::Regex(n), w), f.get(Setup::laneway(n, sh), w)) {
                        (Some(r), Some(l)) => format!("{:.1}×", r / l),
                        _ => "-".into(),
                    }
                });
                ((*w).to_owned(), cells.collect())
            })
            .collect(),
    );
    if !t.is_empty() {
        let _ = writeln!(
            s,
            "\n#### Regex routes / Laneway, instructions per request, same number of sandboxes\n"
        );
        s.push_str(&t);
    }
    let t = table(
        &header("shape"),
        SHAPES
            .iter()
            .map(|&shape| {
                let cells = whats.iter().map(|w| {
                    match (
                        f.get(Setup::laneway(10, shape), w),
                        f.get(Setup::laneway(10_000, shape), w),
                    ) {
                        (Some(a), Some(b)) => format!("{:+.2}%", (b / a - 1.0) * 100.0),
                        _ => "-".into(),
                    }
                });
                (shape_label(shape.0, shape.1).to_owned(), cells.collect())
            })
            .collect(),
    );
    if !t.is_empty() {
        let _ = writeln!(s, "\n#### Table size: 10,000 forks against 10\n");
        s.push_str(&t);
    }
    let targets = targets(counted);
    if !targets.is_empty() {
        let _ = writeln!(s, "\n#### Targets (issue 12)\n\n```");
        for t in targets {
            let _ = writeln!(s, "{}", t.line());
        }
        s.push_str("```\n");
    }
    s
}

/// Every count, the mixes and the judged targets, as JSON.
pub fn to_json(counted: &[Counted], per_kind: usize) -> Value {
    let setups: Vec<Value> = counted
        .iter()
        .map(|c| {
            let mut counts = serde_json::Map::new();
            for x in &c.counts {
                counts.insert(
                    x.what.to_owned(),
                    json!({"per_request": x.per_request.round(), "requests": x.requests}),
                );
            }
            let (shape, forks) = match c.setup {
                Setup::Plain { .. } => ("none".to_owned(), 0),
                Setup::Empty { .. } => ("empty filter".to_owned(), 0),
                Setup::Laneway {
                    forks,
                    wrapper,
                    inline,
                } => (shape_label(wrapper, inline).to_owned(), forks),
                Setup::Regex(n) => ("regex routes".to_owned(), n),
            };
            json!({
                "setup": c.setup.label(),
                "shape": shape,
                "inline_headers": c.setup.inline(),
                "sandboxes": forks,
                "instructions": counts,
            })
        })
        .collect();
    json!({
        "harness": {"envoy_concurrency": 1, "tool": "callgrind", "per_kind": per_kind, "regex_10000_per_kind": (per_kind / 10).max(1)},
        "mixes": mixes_json(),
        "setups": setups,
        "targets": targets(counted).iter().map(|t| json!({
            "target": t.target, "measured": t.measured, "value": t.value, "pass": t.pass,
        })).collect::<Vec<_>>(),
    })
}

/// The bar plot: instructions per request of untagged requests and both
/// mixes, for plain Envoy, the empty filter and every Laneway shape at
/// 1,000 forks (the regex routes are off this scale; see the tables).
pub fn svg(counted: &[Counted]) -> String {
    let f = Find(counted);
    let groups = [UNTAGGED, BENCH_MIX, PRODUCTION_MIX];
    let mut setups: Vec<(String, &str, Setup)> = vec![
        ("plain Envoy".into(), "#555", Setup::Plain { inline: false }),
        (
            "plain Envoy + inline".into(),
            "#888",
            Setup::Plain { inline: true },
        ),
        (
            "empty filter".into(),
            "#aaa",
            Setup::Empty { inline: false },
        ),
        (
            "empty filter + inline".into(),
            "#ccc",
            Setup::Empty { inline: true },
        ),
    ];
    let colors = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e"];
    for (shape, color) in SHAPES.iter().zip(colors) {
        setups.push((
            format!("Laneway {}", shape_label(shape.0, shape.1)),
            color,
            Setup::laneway(AT, *shape),
        ));
    }
    let mut by_name: BTreeMap<usize, Bars<'_>> = BTreeMap::new();
    for (i, (name, color, setup)) in setups.iter().enumerate() {
        let values: Vec<Option<f64>> = groups.iter().map(|g| f.get(*setup, g)).collect();
        if values.iter().any(Option::is_some) {
            by_name.insert(
                i,
                Bars {
                    name,
                    color,
                    values,
                },
            );
        }
    }
    let bars: Vec<Bars<'_>> = by_name.into_values().collect();
    plot::bars(
        &format!(
            "Envoy 1.40, one worker: instructions per request, Laneway at {} forks",
            thousands(AT)
        ),
        "instructions per request",
        &groups,
        &bars,
    )
}
