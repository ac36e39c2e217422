//! The HTML report: one self-contained page for a browser. A summary per
//! scenario (requests, hops, each check with its count and first
//! findings), each traffic group's distinct paths with the call tree of
//! each drawn as inline SVG from the recorded tree (a hop sits under the
//! hop that made its call), each sandbox's blast radius, and a switch that
//! shows failures only.
//!
//! Invariants:
//! - Nothing is fetched. The CSS, the SVG and the two small scripts are
//!   inline, and the page's Content-Security-Policy allows nothing else:
//!   no network, and no script or style but these, by hash (a test pins
//!   the hashes; change [`SCRIPT`], [`GUARD`] or [`STYLE`] and update them).
//! - Every string from a scenario goes through [`Esc`]: markup characters
//!   become entity references, control and bidi characters visible
//!   escapes, so a name can neither add markup nor hide text. Data is
//!   written only as element text, never into an attribute or a script.
//! - The size is bounded: at most [`PATHS_PER_GROUP`] trees per traffic
//!   group, [`HOPS_PER_TREE`] hops per tree, [`PAGE_HOPS`] hops in all,
//!   [`ROWS`] sandboxes and [`ROWS`] edges per sandbox in the blast radius.
//!   Whatever is left out is counted on the page, never dropped silently;
//!   the JSON report has everything.
//! - The colours come from [`HopDetail::class`], classified once where the
//!   report is built; the page only draws them.

use std::fmt::{self, Write as _};

use crate::printable::printable;
use crate::{Blast, Check, GroupReport, HopClass, HopDetail, PathReport, Report, pct, thousands};

/// At most this many paths drawn per traffic group (those with violations
/// first).
pub const PATHS_PER_GROUP: usize = 50;
/// At most this many hops drawn per tree (the first, in call order, which
/// form a tree since a parent comes before its calls).
pub const HOPS_PER_TREE: usize = 200;
/// At most this many hops drawn on the whole page.
pub const PAGE_HOPS: usize = 20_000;
/// At most this many sandboxes in a blast-radius table (those that
/// captured traffic first; beyond 20 sandboxes, only those), and edges per
/// sandbox.
pub const ROWS: usize = 100;
/// Beyond this many sandboxes, the blast radius lists only those that
/// captured traffic.
const FEW: usize = 20;
/// Labels in a tree are cut to this many characters (the tooltip has all).
const LABEL_CHARS: usize = 48;

/// Tree geometry, in pixels: the indent per call level, the row height,
/// the box height, the margin.
const INDENT: usize = 22;
const ROW: usize = 30;
const BOX_H: usize = 22;
const PAD: usize = 6;

/// Records script errors on the root element (`data-errors`), so a test
/// can read them from the DOM. Runs first, in the head.
const GUARD: &str = "window.onerror=function(m,s,l){var d=document.documentElement;\
d.setAttribute('data-errors',(d.getAttribute('data-errors')||'')+m+' (line '+l+')\\n');};";

/// Counts the paths the switch shows; `#failures` in the address turns
/// the switch on. The switch itself is CSS and works without the script.
const SCRIPT: &str = r"(function () {
  'use strict';
  var only = document.getElementById('only');
  var shown = document.getElementById('shown');
  var all = document.querySelectorAll('.path').length;
  var bad = document.querySelectorAll('.path.bad').length;
  function update() {
    var n = only.checked ? bad : all;
    shown.textContent = 'showing ' + n + ' of ' + all + ' drawn paths, ' + bad + ' with violations';
  }
  if (location.hash === '#failures') {
    only.checked = true;
  }
  only.addEventListener('change', update);
  update();
})();";

const STYLE: &str = r#"
:root { color-scheme: light; --baseline: #64748b; --fork: #2563eb; --fallback: #d97706; --violation: #dc2626; --pass: #15803d; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #0f172a; background: #f8fafc; }
header { position: sticky; top: 0; z-index: 1; background: #fff; border-bottom: 1px solid #e2e8f0; padding: 10px 24px; display: flex; flex-wrap: wrap; gap: 6px 24px; align-items: center; }
header h1 { font-size: 18px; margin: 0; }
main { padding: 4px 24px 48px; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; vertical-align: 2px; }
.badge.pass { background: var(--pass); }
.badge.fail { background: var(--violation); }
.scenario { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 14px 20px; margin: 16px 0; }
h2 { font-size: 18px; margin: 0 0 4px; overflow-wrap: anywhere; }
h3 { font-size: 15px; margin: 18px 0 6px; }
h4 { font-size: 14px; margin: 0 0 2px; overflow-wrap: anywhere; }
.meta { color: #475569; margin: 2px 0; overflow-wrap: anywhere; }
.desc { white-space: pre-wrap; margin: 4px 0; }
table { border-collapse: collapse; margin: 4px 0; }
th, td { text-align: left; padding: 3px 10px; border-bottom: 1px solid #e2e8f0; vertical-align: top; }
th { font-weight: 600; color: #334155; background: #f8fafc; }
.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.edge td:first-child { padding-left: 28px; color: #475569; }
.ex { margin: 2px 0 0; padding-left: 18px; color: #334155; overflow-wrap: anywhere; }
details summary { cursor: pointer; color: #475569; }
.group { border-left: 3px solid #cbd5e1; padding: 2px 0 2px 12px; margin: 12px 0; }
.group.bad { border-left-color: var(--violation); }
.path { margin: 6px 0 10px; }
.path .line { color: #334155; overflow-wrap: anywhere; }
.path.bad .line { color: #991b1b; }
.left-out { color: #92400e; background: #fffbeb; border: 1px solid #fde68a; padding: 3px 8px; border-radius: 4px; display: inline-block; }
svg.tree { display: block; margin: 2px 0; font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.hop rect { stroke-width: 1.5; }
.hop.baseline rect { fill: #f1f5f9; stroke: var(--baseline); }
.hop.fork rect { fill: #dbeafe; stroke: var(--fork); }
.hop.fallback rect { fill: #fef3c7; stroke: var(--fallback); }
.hop.violation rect { fill: #fee2e2; stroke: var(--violation); stroke-width: 2; }
.hop text { fill: #0f172a; }
.hop text.note { fill: #64748b; }
.hop.violation text.note { fill: #b91c1c; font-weight: 600; }
.edge-line { fill: none; stroke: #94a3b8; stroke-width: 1.2; }
.legend { display: flex; gap: 12px; flex-wrap: wrap; color: #334155; font-size: 13px; }
.legend span::before { content: ""; display: inline-block; width: 12px; height: 12px; border-radius: 3px; margin-right: 4px; vertical-align: -1px; border: 1.5px solid; }
.legend .baseline::before { background: #f1f5f9; border-color: var(--baseline); }
.legend .fork::before { background: #dbeafe; border-color: var(--fork); }
.legend .fallback::before { background: #fef3c7; border-color: var(--fallback); }
.legend .violation::before { background: #fee2e2; border-color: var(--violation); }
#shown { color: #475569; font-size: 13px; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.switch { cursor: pointer; user-select: none; display: inline-flex; align-items: center; gap: 8px; }
.track { width: 34px; height: 20px; border-radius: 10px; background: #cbd5e1; position: relative; transition: background .15s; }
.track::after { content: ""; position: absolute; top: 3px; left: 3px; width: 14px; height: 14px; border-radius: 50%; background: #fff; transition: left .15s; }
#only:checked ~ header .track { background: var(--violation); }
#only:checked ~ header .track::after { left: 17px; }
#only:focus-visible ~ header .track { outline: 2px solid var(--fork); outline-offset: 2px; }
#only:checked ~ main .ok { display: none; }
.all-ok { display: none; color: var(--pass); }
#only:checked ~ main .all-ok { display: block; }
"#;

/// Text from a scenario, for HTML text or an attribute value: [`printable`]
/// (control and bidi characters as visible escapes), then XML's entity
/// references, which HTML shares (`&amp;`, `&lt;`, `&gt;`, `&quot;`,
/// `&apos;`).
struct Esc<'a>(&'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::junit::xml(&printable(self.0), true))
    }
}

/// `text` made printable and cut to `max` characters (`…` marks a cut).
fn cut(text: &str, max: usize) -> String {
    let text = printable(text);
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.into_owned(),
    }
}

/// About how wide `chars` characters of 12 px monospace are.
fn text_width(chars: usize) -> usize {
    chars * 22 / 3
}

/// The page for `reports`.
pub fn html(reports: &[Report]) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = page(&mut out, reports);
    out
}

/// Base64 SHA-256 of [`GUARD`], [`SCRIPT`] and [`STYLE`], for the
/// Content-Security-Policy (pinned by a test).
const GUARD_SHA256: &str = "AYeTi27uqM5+f0ewAfoXEFa5wA8PiNk3f4P1Ue2lPyc=";
const SCRIPT_SHA256: &str = "CTwH29t/EvzEZ7szQoPBCZp6fYw1eogA5OhhjE0fh5g=";
const STYLE_SHA256: &str = "3U9a+Q3K51Z8YCCDTSF0aidojS9QRG8UCdALoFhCi5c=";

fn page(out: &mut String, reports: &[Report]) -> fmt::Result {
    let passed = reports.iter().all(Report::passed);
    let names: Vec<String> = reports.iter().map(|r| cut(&r.scenario, 60)).collect();
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
    )?;
    writeln!(
        out,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         script-src 'sha256-{GUARD_SHA256}' 'sha256-{SCRIPT_SHA256}'; style-src 'sha256-{STYLE_SHA256}'\">"
    )?;
    writeln!(
        out,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    )?;
    writeln!(
        out,
        "<title>laneway replay: {} ({})</title>",
        Esc(&names.join(", ")),
        if passed { "PASS" } else { "FAIL" }
    )?;
    writeln!(
        out,
        "<script>{GUARD}</script>\n<style>{STYLE}</style>\n</head>\n<body>"
    )?;
    writeln!(
        out,
        "<input type=\"checkbox\" id=\"only\" class=\"sr\">\n<header>\n<h1>laneway replay {}</h1>",
        badge(passed)
    )?;
    writeln!(
        out,
        "<label class=\"switch\" for=\"only\"><span class=\"track\"></span>show failures only</label>"
    )?;
    writeln!(
        out,
        "<div class=\"legend\"><span class=\"baseline\">baseline</span><span class=\"fork\">fork</span>\
         <span class=\"fallback\">fallback to baseline</span><span class=\"violation\">violation</span></div>"
    )?;
    let bad: usize = reports
        .iter()
        .flat_map(|r| &r.groups)
        .flat_map(|g| &g.paths)
        .filter(|p| has_violation(p))
        .count();
    writeln!(
        out,
        "<span id=\"shown\">{}, {} with violations</span>\n</header>\n<main>",
        counted(reports.len() as u64, "scenario"),
        counted(bad as u64, "path")
    )?;
    let mut budget = PAGE_HOPS;
    for r in reports {
        scenario(out, r, &mut budget)?;
    }
    writeln!(out, "</main>\n<script>{SCRIPT}</script>\n</body>\n</html>")
}

/// `word` for one, `words` for more.
fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        word.into()
    } else {
        format!("{word}s")
    }
}

/// `1 request`, `1,000 requests`.
fn counted(n: u64, word: &str) -> String {
    format!("{} {}", thousands(n), plural(n, word))
}

fn badge(passed: bool) -> &'static str {
    if passed {
        "<span class=\"badge pass\">PASS</span>"
    } else {
        "<span class=\"badge fail\">FAIL</span>"
    }
}

/// Whether a path has a hop the page draws as a violation.
fn has_violation(p: &PathReport) -> bool {
    p.failures > 0 || p.hops.iter().any(|h| h.class == HopClass::Violation)
}

fn group_failed(g: &GroupReport) -> bool {
    g.failures > 0 || g.paths.iter().any(has_violation)
}

/// `ok` or `bad`, what the switch hides or keeps.
fn state(bad: bool) -> &'static str {
    if bad { "bad" } else { "ok" }
}

fn scenario(out: &mut String, r: &Report, budget: &mut usize) -> fmt::Result {
    writeln!(
        out,
        "<article class=\"scenario\">\n<h2>{} {}</h2>",
        Esc(&r.scenario),
        badge(r.passed())
    )?;
    writeln!(
        out,
        "<p class=\"meta\"><code>{}</code> · filter <code>{}</code> · {} requests · {} hops</p>",
        Esc(&r.file),
        Esc(&r.wasm),
        thousands(r.requests),
        thousands(r.hops)
    )?;
    if !r.description.trim().is_empty() {
        let lines: Vec<String> = r
            .description
            .trim()
            .lines()
            .map(|l| Esc(l).to_string())
            .collect();
        writeln!(out, "<p class=\"desc\">{}</p>", lines.join("\n"))?;
    }
    checks(out, &r.checks)?;
    writeln!(out, "<h3>traffic</h3>")?;
    if !r.groups.iter().any(group_failed) {
        writeln!(
            out,
            "<p class=\"all-ok\">No traffic group has a violation.</p>"
        )?;
    }
    for g in &r.groups {
        group(out, g, budget)?;
    }
    blast(out, r)?;
    if !r.notes.is_empty() {
        writeln!(out, "<h3>notes</h3>\n<ul>")?;
        for n in &r.notes {
            writeln!(out, "<li>{}</li>", Esc(n))?;
        }
        writeln!(out, "</ul>")?;
    }
    writeln!(out, "</article>")
}

fn checks(out: &mut String, checks: &[Check]) -> fmt::Result {
    writeln!(
        out,
        "<h3>checks</h3>\n<table class=\"checks\">\n<tr><th>result</th><th>check</th>\
         <th class=\"n\">count</th><th>what it counts</th></tr>"
    )?;
    for c in checks {
        write!(
            out,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}",
            state(!c.passed),
            badge(c.passed),
            Esc(&c.name),
            thousands(c.count),
            Esc(&c.summary)
        )?;
        if !c.examples.is_empty() {
            write!(
                out,
                "<details{}><summary>first {}</summary><ul class=\"ex\">",
                if c.passed { "" } else { " open" },
                c.examples.len()
            )?;
            for e in &c.examples {
                write!(out, "<li class=\"mono\">{}</li>", Esc(e))?;
            }
            let more = c.count.saturating_sub(c.examples.len() as u64);
            if more > 0 {
                write!(out, "<li>… and {} more</li>", thousands(more))?;
            }
            write!(out, "</ul></details>")?;
        }
        writeln!(out, "</td></tr>")?;
    }
    writeln!(out, "</table>")
}

fn group(out: &mut String, g: &GroupReport, budget: &mut usize) -> fmt::Result {
    let key = g
        .key
        .as_deref()
        .map(|k| format!(" <code>{}</code>", Esc(k)))
        .unwrap_or_default();
    let failures = if g.failures > 0 {
        format!(", {} broke expectations", thousands(g.failures))
    } else {
        String::new()
    };
    writeln!(
        out,
        "<section class=\"group {}\">\n<h4>{} <span class=\"meta\">(chain {}, {}{key}): {}{failures}, {}</span></h4>",
        state(group_failed(g)),
        Esc(&g.name),
        Esc(&g.chain),
        Esc(&g.kind),
        counted(g.count, "request"),
        counted(g.paths.len() as u64, "distinct path")
    )?;
    // Which paths to draw: those with violations first, then the most
    // frequent, within the group's and the page's bounds; drawn in the
    // report's order.
    let mut chosen: Vec<usize> = (0..g.paths.len())
        .filter(|&i| has_violation(&g.paths[i]))
        .chain((0..g.paths.len()).filter(|&i| !has_violation(&g.paths[i])))
        .take(PATHS_PER_GROUP)
        .collect();
    let mut spent = 0;
    chosen.retain(|&i| {
        let hops = g.paths[i].hops.len().min(HOPS_PER_TREE);
        let fits = spent + hops <= *budget;
        if fits {
            spent += hops;
        }
        fits
    });
    *budget -= spent;
    chosen.sort_unstable();
    for &i in &chosen {
        path(out, &g.paths[i])?;
    }
    let left: Vec<&PathReport> = (0..g.paths.len())
        .filter(|i| chosen.binary_search(i).is_err())
        .map(|i| &g.paths[i])
        .collect();
    if !left.is_empty() {
        let bad = left.iter().filter(|p| has_violation(p)).count();
        writeln!(
            out,
            "<p class=\"left-out {}\">{} more {} ({}, {bad} with violations) not drawn: \
             a group draws at most {PATHS_PER_GROUP} and the page {} hops; \
             the JSON report (<code>--json</code>) lists every path.</p>",
            state(bad > 0),
            thousands(left.len() as u64),
            plural(left.len() as u64, "path"),
            counted(left.iter().map(|p| p.count).sum(), "request"),
            thousands(PAGE_HOPS as u64)
        )?;
    }
    writeln!(out, "</section>")
}

fn path(out: &mut String, p: &PathReport) -> fmt::Result {
    let bad = has_violation(p);
    let status = if p.status == 200 {
        String::new()
    } else {
        format!(" [{}]", p.status)
    };
    let failures = if p.failures > 0 {
        format!(" ({} broke expectations)", thousands(p.failures))
    } else {
        String::new()
    };
    let names: Vec<String> = p.path.iter().map(|w| Esc(w).to_string()).collect();
    writeln!(
        out,
        "<div class=\"path {}\">\n<div class=\"line mono\">{} × {}{status}{failures}</div>",
        state(bad),
        thousands(p.count),
        names.join(" → ")
    )?;
    tree(out, &p.hops)?;
    writeln!(out, "</div>")
}

/// Each hop's depth in its path's call tree: one more than its parent's.
/// Hops are in call order, so a parent comes first; a parent that does not
/// (never recorded so) makes the hop a root.
fn depths(hops: &[HopDetail]) -> Vec<usize> {
    let mut depth: Vec<usize> = Vec::with_capacity(hops.len());
    for h in hops {
        let d = h
            .parent
            .and_then(|p| depth.get(p as usize))
            .map_or(0, |p| p + 1);
        depth.push(d);
    }
    depth
}

/// The call tree of one path as inline SVG: a row per hop in call order,
/// indented under the hop that made the call, joined to it by an elbow.
/// Each hop's box is coloured by its class and names what served it; its
/// tooltip (`<title>`) has the edge, route, reason and class.
fn tree(out: &mut String, all: &[HopDetail]) -> fmt::Result {
    let hops = &all[..all.len().min(HOPS_PER_TREE)];
    let depth = depths(hops);
    let x = |i: usize| PAD + depth[i] * INDENT;
    let y = |i: usize| PAD + i * ROW;
    let mut body = String::new();
    let mut width = 0;
    for (i, h) in hops.iter().enumerate() {
        if let Some(p) = h.parent.map(|p| p as usize).filter(|&p| p < i) {
            writeln!(
                body,
                "<path class=\"edge-line\" d=\"M{} {}V{}H{}\"/>",
                x(p) + INDENT / 2,
                y(p) + BOX_H,
                y(i) + BOX_H / 2,
                x(i)
            )?;
        }
    }
    for (i, h) in hops.iter().enumerate() {
        let label = cut(&h.served_by, LABEL_CHARS);
        let box_w = text_width(label.chars().count()) + 16;
        let note = match h.violation {
            Some(v) => format!("{} ({}) · {v}", h.route, h.reason),
            None => format!("{} ({})", h.route, h.reason),
        };
        let note = cut(&note, LABEL_CHARS);
        width = width.max(x(i) + box_w + 10 + text_width(note.chars().count()));
        let violation = h.violation.map(|v| format!(": {v}")).unwrap_or_default();
        let at = h
            .waypoint
            .as_deref()
            .map(|w| format!(", at waypoint {}", Esc(w)))
            .unwrap_or_default();
        writeln!(
            body,
            "<g class=\"hop {}\"><title>{} → {}\nroute {}, reason {}{at}\nserved by {}\n{}{violation}</title>\
             <rect x=\"{}\" y=\"{}\" width=\"{box_w}\" height=\"{BOX_H}\" rx=\"4\"/>\
             <text x=\"{}\" y=\"{}\">{}</text><text class=\"note\" x=\"{}\" y=\"{}\">{}</text></g>",
            h.class.as_str(),
            Esc(&h.caller),
            Esc(&h.service),
            Esc(&h.route),
            Esc(&h.reason),
            Esc(&h.served_by),
            h.class.as_str(),
            x(i),
            y(i),
            x(i) + 8,
            y(i) + 15,
            Esc(&label),
            x(i) + box_w + 8,
            y(i) + 15,
            Esc(&note)
        )?;
    }
    writeln!(
        out,
        "<svg class=\"tree\" role=\"img\" width=\"{}\" height=\"{}\">\n{body}</svg>",
        width + PAD,
        hops.len() * ROW + PAD
    )?;
    if all.len() > hops.len() {
        writeln!(
            out,
            "<p class=\"left-out\">{} more hops of this path not drawn: a tree draws at most {HOPS_PER_TREE}.</p>",
            thousands((all.len() - hops.len()) as u64)
        )?;
    }
    Ok(())
}

fn blast(out: &mut String, r: &Report) -> fmt::Result {
    if r.blast.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "<h3>blast radius</h3>\n<table class=\"blast\">\n<tr><th>sandbox / edge</th>\
         <th class=\"n\">captured</th><th class=\"n\">hops on its edges</th><th class=\"n\">share</th>\
         <th class=\"n\">of all hops</th></tr>"
    )?;
    // Those that captured traffic first, in the report's order; beyond
    // [`FEW`] sandboxes, only those (as the text report does).
    let many = r.blast.len() > FEW;
    let shown: Vec<&Blast> = r
        .blast
        .iter()
        .filter(|b| b.captured > 0)
        .chain(r.blast.iter().filter(|b| !many && b.captured == 0))
        .take(ROWS)
        .collect();
    for b in &shown {
        writeln!(
            out,
            "<tr><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            Esc(&b.key),
            thousands(b.captured),
            thousands(b.edge_hops),
            pct(b.captured, b.edge_hops),
            pct(b.captured, r.hops)
        )?;
        for e in b.edges.iter().take(ROWS) {
            writeln!(
                out,
                "<tr class=\"edge\"><td>{} → {}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td></td></tr>",
                Esc(&e.caller),
                Esc(&e.service),
                thousands(e.captured),
                thousands(e.hops),
                pct(e.captured, e.hops)
            )?;
        }
        if b.edges.len() > ROWS {
            writeln!(
                out,
                "<tr class=\"edge\"><td colspan=\"5\" class=\"left-out\">{} more edges not shown</td></tr>",
                thousands((b.edges.len() - ROWS) as u64)
            )?;
        }
    }
    writeln!(out, "</table>")?;
    let left = r.blast.len() - shown.len();
    if left > 0 {
        let idle = r.blast.iter().filter(|b| b.captured == 0).count();
        writeln!(
            out,
            "<p class=\"left-out\">{} more sandboxes not shown ({} of all {} captured no traffic); \
             the JSON report lists every sandbox.</p>",
            thousands(left as u64),
            thousands(idle as u64),
            thousands(r.blast.len() as u64)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
