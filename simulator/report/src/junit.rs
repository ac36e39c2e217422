//! JUnit XML for CI: a test suite per scenario, a test case per check and
//! per traffic group.

use std::fmt::Write as _;

use crate::Report;
use crate::printable::{needs_escape, printable};

/// `t` as XML 1.0 character data (`attribute`: inside an attribute
/// value). Markup characters become entity references; TAB, LF and CR
/// become character references in attributes (where a parser would
/// normalise them to spaces) and CR in text. Characters XML 1.0 cannot
/// carry at all (the other C0 controls, U+FFFE, U+FFFF) and the ones
/// [`printable`] escapes for terminals are written as visible escapes
/// (`\x1b`), so the document always parses and shows what was there.
pub(crate) fn xml(t: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(t.len());
    for ch in t.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(ch),
            '\u{fffe}' | '\u{ffff}' => {
                let _ = write!(out, "\\u{{{:x}}}", ch as u32);
            }
            c if needs_escape(c) => out.push_str(&printable(&c.to_string())),
            c => out.push(c),
        }
    }
    out
}

fn attr(t: &str) -> String {
    xml(t, true)
}

fn text(t: &str) -> String {
    xml(t, false)
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
                attr(&r.scenario),
                attr(&c.name)
            );
            if c.passed {
                cases.push_str("/>\n");
            } else {
                failed += 1;
                let _ = writeln!(
                    cases,
                    ">\n      <failure message=\"{} {}\">{}</failure>\n    </testcase>",
                    c.count,
                    attr(&c.summary),
                    text(&c.examples.join("\n"))
                );
            }
        }
        for g in &r.groups {
            n += 1;
            let _ = write!(
                cases,
                "    <testcase classname=\"{}.traffic\" name=\"{}\"",
                attr(&r.scenario),
                attr(&g.name)
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
            attr(&r.scenario),
            r.elapsed.as_secs_f64()
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"laneway replay\" tests=\"{cases_total}\" failures=\"{failures_total}\">\n{suites}</testsuites>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Check, GroupReport};

    fn report(name: &str) -> Report {
        Report {
            scenario: name.into(),
            file: "f.yaml".into(),
            description: String::new(),
            wasm: "m.wasm".into(),
            mesh: "sidecar",
            requests: 1,
            hops: 1,
            threads: 1,
            elapsed: std::time::Duration::ZERO,
            groups: vec![GroupReport {
                name: format!("group {name}"),
                chain: "c".into(),
                kind: "tagged".into(),
                key: None,
                count: 1,
                failures: 1,
                paths: Vec::new(),
            }],
            checks: vec![Check {
                name: "leak".into(),
                passed: false,
                count: 1,
                summary: format!("summary {name}"),
                examples: vec![format!("example {name}"), "second\tline".into()],
            }],
            blast: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Every character XML 1.0 cannot carry, markup, quotes, whitespace
    /// that attribute normalisation would eat: the document parses, and
    /// each name reads back as its visible escape.
    #[test]
    fn hostile_names_stay_well_formed_xml() {
        let nasty = "a\u{0}b\u{1b}[31m\u{7}<x>&\"'\r\n\t\u{fffe}\u{ffff}\u{85}\u{202e}z";
        let xml = junit(&[report(nasty)]);
        let doc = roxmltree::Document::parse(&xml).expect("JUnit output is XML 1.0");
        let suite = doc
            .descendants()
            .find(|n| n.has_tag_name("testsuite"))
            .unwrap();
        let name = suite.attribute("name").unwrap();
        assert_eq!(
            name,
            "a\\x00b\\x1b[31m\\x07<x>&\"'\r\n\t\\u{fffe}\\u{ffff}\\u{85}\\u{202e}z"
        );
        let failure = doc
            .descendants()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert!(failure.attribute("message").unwrap().ends_with("z"));
        assert_eq!(
            failure.text().unwrap(),
            format!("example {name}\nsecond\tline")
        );
    }

    #[test]
    fn plain_names_are_unchanged() {
        let xml = junit(&[report("route-group")]);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        assert!(
            doc.descendants()
                .any(|n| n.attribute("name") == Some("group route-group"))
        );
    }
}
