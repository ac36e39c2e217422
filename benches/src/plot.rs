//! A small SVG line plot: throughput against the number of sandboxes, with
//! a logarithmic x axis and reference lines. No plotting dependency; the
//! output is plain SVG 1.1 that browsers and GitHub render.

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
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        W / 2.0,
        escape(title)
    );
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
}
