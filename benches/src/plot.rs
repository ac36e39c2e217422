//! Two small SVG plots: [`svg`], a line plot of throughput against the
//! number of sandboxes (logarithmic x axis, reference lines), and [`bars`],
//! grouped bars (instructions per request of each setup, per kind of
//! request). No plotting dependency; the output is plain SVG 1.1 that
//! browsers and GitHub render, and a missing value is left out, never drawn
//! as zero.

use std::fmt::Write as _;

/// One line of points.
pub struct Series<'a> {
    /// Legend text.
    pub name: &'a str,
    /// CSS colour.
    pub color: &'a str,
    /// `(sandboxes, requests per second)`.
    pub points: Vec<(f64, f64)>,
}

/// A horizontal reference line.
pub struct Level<'a> {
    /// Legend text.
    pub name: &'a str,
    /// CSS colour.
    pub color: &'a str,
    /// Requests per second.
    pub value: f64,
}

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

/// Renders the plot.
pub fn svg(title: &str, series: &[Series<'_>], levels: &[Level<'_>]) -> String {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (x_min, x_max) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let (lx_min, lx_max) = (
        x_min.max(1.0).log10().floor(),
        x_max.max(10.0).log10().ceil(),
    );
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(levels.iter().map(|l| l.value))
        .fold(1.0, f64::max)
        * 1.1;
    let px = |x: f64| {
        LEFT + (x.max(1.0).log10() - lx_min) / (lx_max - lx_min).max(1.0) * (W - LEFT - RIGHT)
    };
    let py = |y: f64| TOP + (1.0 - y / y_max) * (H - TOP - BOTTOM);
    let mut s = svg_start(W, H, title);
    // Axes, grid and ticks.
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#,
        H - BOTTOM,
        W - RIGHT,
        H - BOTTOM
    );
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="black"/>"#,
        H - BOTTOM
    );
    let mut e = lx_min;
    while e <= lx_max {
        let x = px(10f64.powf(e));
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{}" stroke="#ddd"/>"##,
            H - BOTTOM
        );
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
            H - BOTTOM + 18.0,
            10f64.powf(e) as u64
        );
        e += 1.0;
    }
    for i in 0..=5 {
        let v = y_max / 1.1 * f64::from(i) / 5.0;
        let y = py(v);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/>"##,
            W - RIGHT
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{:.0}k</text>"#,
            LEFT - 6.0,
            y + 4.0,
            v / 1000.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">sandboxes (log scale)</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        H - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">requests per second</text>"#,
        (TOP + H - BOTTOM) / 2.0,
        (TOP + H - BOTTOM) / 2.0
    );
    let mut legend = TOP + 8.0;
    for l in levels {
        let y = py(l.value);
        let _ = writeln!(
            s,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="{}" stroke-dasharray="6 4"/>"#,
            W - RIGHT,
            l.color
        );
        legend = legend_entry(&mut s, legend, l.name, l.color, true);
    }
    for series in series {
        let path: Vec<String> = series
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2.5"/>"#,
            path.join(" "),
            series.color
        );
        for &(x, y) in &series.points {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{}"><title>{} sandboxes: {:.0} req/s</title></circle>"#,
                px(x),
                py(y),
                series.color,
                x,
                y
            );
        }
        legend = legend_entry(&mut s, legend, series.name, series.color, false);
    }
    s.push_str("</svg>\n");
    s
}

/// One setup's bars, one value per group (`None`: not measured).
pub struct Bars<'a> {
    /// Legend text.
    pub name: &'a str,
    /// CSS colour.
    pub color: &'a str,
    /// One value per group, in the groups' order.
    pub values: Vec<Option<f64>>,
}

const BAR_W: f64 = 900.0;
const BAR_LEGEND: f64 = 200.0;

/// Renders grouped bars: one group per entry of `groups`, one bar per
/// entry of `bars` in each group, the y axis from 0, labelled `unit`.
pub fn bars(title: &str, unit: &str, groups: &[&str], bars: &[Bars<'_>]) -> String {
    let y_max = bars
        .iter()
        .flat_map(|b| b.values.iter().flatten())
        .fold(1.0, |a: f64, &b| a.max(b))
        * 1.1;
    let plot_right = BAR_W - RIGHT - BAR_LEGEND;
    let py = |y: f64| TOP + (1.0 - y / y_max) * (H - TOP - BOTTOM);
    let group_w = (plot_right - LEFT) / groups.len().max(1) as f64;
    let bar_w = group_w * 0.8 / bars.len().max(1) as f64;
    let mut s = svg_start(BAR_W, H, title);
    for i in 0..=5 {
        let v = y_max / 1.1 * f64::from(i) / 5.0;
        let y = py(v);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{plot_right}" y2="{y:.1}" stroke="#eee"/>"##
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{:.0}k</text>"#,
            LEFT - 6.0,
            y + 4.0,
            v / 1000.0
        );
    }
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="{}" x2="{plot_right}" y2="{}" stroke="black"/>"#,
        H - BOTTOM,
        H - BOTTOM
    );
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="black"/>"#,
        H - BOTTOM
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{}</text>"#,
        (TOP + H - BOTTOM) / 2.0,
        (TOP + H - BOTTOM) / 2.0,
        escape(unit)
    );
    for (g, group) in groups.iter().enumerate() {
        let x0 = LEFT + g as f64 * group_w + group_w * 0.1;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            LEFT + (g as f64 + 0.5) * group_w,
            H - BOTTOM + 18.0,
            escape(group)
        );
        for (b, bar) in bars.iter().enumerate() {
            let Some(v) = bar.values.get(g).copied().flatten() else {
                continue;
            };
            let y = py(v);
            let _ = writeln!(
                s,
                r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}, {}: {:.1}k</title></rect>"#,
                x0 + b as f64 * bar_w,
                bar_w * 0.9,
                H - BOTTOM - y,
                bar.color,
                escape(bar.name),
                escape(group),
                v / 1000.0
            );
        }
    }
    let mut legend = TOP + 8.0;
    for bar in bars {
        let x = BAR_W - RIGHT - BAR_LEGEND + 14.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{}" width="14" height="10" fill="{}"/>"#,
            legend - 5.0,
            bar.color
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}">{}</text>"#,
            x + 20.0,
            legend + 4.0,
            escape(bar.name)
        );
        legend += 18.0;
    }
    s.push_str("</svg>\n");
    s
}

fn legend_entry(s: &mut String, y: f64, name: &str, color: &str, dashed: bool) -> f64 {
    let x = W - RIGHT - 230.0;
    let dash = if dashed {
        r#" stroke-dasharray="6 4""#
    } else {
        ""
    };
    let _ = writeln!(
        s,
        r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{color}" stroke-width="2.5"{dash}/>"#,
        x + 24.0
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}">{}</text>"#,
        x + 30.0,
        y + 4.0,
        escape(name)
    );
    y + 18.0
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An SVG document's opening: the element, a white background, a title.
fn svg_start(width: f64, height: f64, title: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        width / 2.0,
        escape(title)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_points_and_levels() {
        let out = svg(
            "t",
            &[Series {
                name: "a",
                color: "red",
                points: vec![(10.0, 100.0), (1000.0, 50.0)],
            }],
            &[Level {
                name: "floor",
                color: "gray",
                value: 120.0,
            }],
        );
        assert!(out.starts_with("<svg") && out.ends_with("</svg>\n"));
        assert_eq!(out.matches("<circle").count(), 2);
        assert!(out.contains("stroke-dasharray"));
    }

    #[test]
    fn renders_bars_and_skips_missing_values() {
        let out = bars(
            "t",
            "instructions",
            &["a", "b"],
            &[
                Bars {
                    name: "x",
                    color: "red",
                    values: vec![Some(10.0), None],
                },
                Bars {
                    name: "y",
                    color: "blue",
                    values: vec![Some(20.0), Some(5.0)],
                },
            ],
        );
        assert!(out.starts_with("<svg") && out.ends_with("</svg>\n"));
        assert_eq!(out.matches("<title>").count(), 3, "one bar per value");
    }
}
