//! [`class`] on the scenarios of `testdata/scenarios/`, replayed with the
//! core as every sidecar: each hop's class agrees with the checks.

use std::path::PathBuf;

use laneway_replay::{NativeFactory, Options};
use laneway_scenario::Scenario;

use crate::{HopClass, Report};

fn report(file: &str) -> Report {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/scenarios")
        .join(file);
    let sc = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let replayed = laneway_replay::replay(&sc, &NativeFactory, None, &Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    Report::new(&sc, &replayed)
}

/// The classes of the hops of `group`'s most frequent path:
/// `service class` or `service violation(why)`.
fn classes(r: &Report, group: &str) -> Vec<String> {
    let g = r
        .groups
        .iter()
        .find(|g| g.name == group)
        .expect("the group");
    g.paths[0]
        .hops
        .iter()
        .map(|h| match h.violation {
            Some(why) => {
                assert_eq!(h.class, HopClass::Violation);
                format!("{} violation({why})", h.service)
            }
            None => format!("{} {}", h.service, h.class.as_str()),
        })
        .collect()
}

#[test]
fn hotrod_has_forks_fallbacks_and_baselines_and_no_violation() {
    let r = report("hotrod.yaml");
    assert!(r.passed());
    assert_eq!(
        classes(&r, "tagged"),
        [
            "frontend fallback",
            "customer fallback",
            "location fork",
            "driver fallback",
            "route fallback"
        ]
    );
    assert!(
        classes(&r, "untagged")
            .iter()
            .all(|c| c.ends_with(" baseline"))
    );
    let hops = &r.groups[1].paths[0].hops;
    let parents: Vec<Option<u32>> = hops.iter().map(|h| h.parent).collect();
    assert_eq!(parents, [None, Some(0), Some(1), Some(0), Some(0)]);
}

#[test]
fn leaks_cross_talk_and_misses_are_violations() {
    let r = report("failing/spoofed.yaml");
    assert_eq!(
        classes(&r, "spoofed"),
        ["frontend fallback", "location violation(leak)"]
    );
    assert_eq!(
        classes(&r, "untagged"),
        ["frontend baseline", "location baseline"]
    );
    let r = report("failing/cross-talk.yaml");
    assert_eq!(
        classes(&r, "alpha"),
        ["frontend fallback", "location violation(cross-talk)"]
    );
    assert_eq!(classes(&r, "beta"), ["frontend fallback", "location fork"]);
    // The context is lost at svc-c, so svc-d misses its fork.
    let r = report("failing/dropped-context.yaml");
    assert_eq!(
        classes(&r, "tagged"),
        [
            "svc-a fallback",
            "svc-b fork",
            "svc-c fallback",
            "svc-d violation(miss)"
        ]
    );
}

#[test]
fn every_hop_of_a_path_that_broke_an_expectation_is_a_violation() {
    let r = report("failing/wrong-expectations.yaml");
    assert_eq!(r.groups[0].paths[0].failures, 3);
    assert_eq!(
        classes(&r, "tagged"),
        [
            "frontend violation(expectations)",
            "location violation(expectations)"
        ]
    );
}

#[test]
fn expected_misses_and_an_unavailable_fork_are_fallbacks() {
    let r = report("faults.yaml");
    assert!(r.passed());
    assert_eq!(
        classes(&r, "to-the-down-fork"),
        [
            "frontend fallback",
            "driver fallback",
            "route fallback",
            "location fallback"
        ]
    );
    assert_eq!(classes(&r, "before-swap")[3], "location fallback");
    assert_eq!(classes(&r, "after-swap")[3], "location fork");
    // Context dropped at route: location's hop carries no key.
    assert_eq!(
        classes(&r, "after-route-drops-context")[3],
        "location fallback"
    );
}
