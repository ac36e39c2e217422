//! Ratios from one criterion run: reads the medians criterion wrote under
//! `target/criterion/` and prints the tables BENCHMARKS.md quotes, so every
//! ratio compares numbers measured in the same run on the same machine.
//!
//! Missing measurements are reported as such, never invented.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::corpus;

/// The median time of one benchmark, in nanoseconds.
pub fn median_ns(root: &Path, id: &[&str]) -> Option<f64> {
    let mut path: PathBuf = root.to_path_buf();
    for part in id {
        path.push(part);
    }
    let text = std::fs::read_to_string(path.join("new/estimates.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn cell(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "not measured".to_owned(), f)
}

/// The Markdown summary.
pub fn markdown(root: &Path) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### Core parse + decide against the seed regex and the memchr floor\n"
    );
    let _ = writeln!(
        s,
        "| input | bytes | Laneway | regex DFA, 1 key | regex DFAs, 100 keys | memchr floor | 1 regex / Laneway | 100 regexes / Laneway | Laneway / floor |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for case in corpus::cases() {
        let t = |f: &str| median_ns(root, &["core", f, case.name]);
        let (l, r1, r100, m) = (
            t("laneway"),
            t("regex-1"),
            t("regex-100"),
            t("memchr-floor"),
        );
        let bytes = case.bytes();
        let rate = |ns: f64| {
            if bytes == 0 {
                format!("{ns:.0} ns")
            } else {
                let gbs = bytes as f64 / ns;
                if gbs < 0.1 {
                    format!("{ns:.0} ns ({:.1} MB/s)", gbs * 1000.0)
                } else {
                    format!("{ns:.0} ns ({gbs:.2} GB/s)")
                }
            }
        };
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.1}×", a / b),
            _ => "-".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {bytes} | {} | {} | {} | {} | {} | {} | {} |",
            case.name,
            cell(l, rate),
            cell(r1, rate),
            cell(r100, rate),
            cell(m, rate),
            ratio(r1, l),
            ratio(r100, l),
            ratio(l, m),
        );
    }
    let _ = writeln!(s, "\n### Decide against table size (same request)\n");
    let _ = writeln!(
        s,
        "| request | 10 forks | 1,000 forks | 100,000 forks | 100,000 vs 10 |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    for req in ["fork", "no-fork", "unknown-key"] {
        let t = |n: &str| median_ns(root, &["table", req, n]);
        let (a, b, c) = (t("10"), t("1000"), t("100000"));
        let ns = |v: f64| format!("{v:.1} ns");
        let change = match (a, c) {
            (Some(a), Some(c)) => format!("{:+.1}%", (c / a - 1.0) * 100.0),
            _ => "-".into(),
        };
        let _ = writeln!(
            s,
            "| {req} | {} | {} | {} | {change} |",
            cell(a, ns),
            cell(b, ns),
            cell(c, ns)
        );
    }
    let _ = writeln!(
        s,
        "\n### One request through the wasmtime host (full ABI lifecycle)\n"
    );
    let _ = writeln!(
        s,
        "| request | laneway_filter.wasm | empty filter | the filter's own work |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|");
    for req in ["untagged", "baggage-no-key", "tagged-fork"] {
        let l = median_ns(root, &["wasm", "laneway_filter", req]);
        let e = median_ns(root, &["wasm", "laneway_empty_filter", req]);
        let own = match (l, e) {
            (Some(l), Some(e)) => format!("{:.0} ns", l - e),
            _ => "-".into(),
        };
        let ns = |v: f64| format!("{v:.0} ns");
        let _ = writeln!(s, "| {req} | {} | {} | {own} |", cell(l, ns), cell(e, ns));
    }
    let _ = writeln!(s, "\n### Replay\n");
    let replay = std::fs::read_dir(root.join("replay"))
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("hotrod"));
    match replay.as_deref().and_then(|n| {
        let ns = median_ns(root, &["replay", n])?;
        let bench =
            std::fs::read_to_string(root.join("replay").join(n).join("new/benchmark.json")).ok()?;
        let json: serde_json::Value = serde_json::from_str(&bench).ok()?;
        let hops = json["throughput"]["Elements"].as_f64()?;
        Some((n.to_owned(), hops, ns))
    }) {
        Some((name, hops, ns)) => {
            let _ = writeln!(
                s,
                "`{name}`: {hops:.0} hops per replay in {:.2} ms: **{:.0} hops/s**",
                ns / 1e6,
                hops / (ns / 1e9)
            );
        }
        None => {
            let _ = writeln!(s, "not measured");
        }
    }
    s
}
