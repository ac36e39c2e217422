//! JUnit XML for CI: a test suite per scenario, a test case per check and
//! per traffic group.

use std::fmt::Write as _;

use crate::Report;

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
