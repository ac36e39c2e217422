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

fn check_names(r: &Report) -> Vec<&str> {
    r.checks.iter().map(|c| c.name.as_str()).collect()
}

/// In ambient mode the hop no filter saw has reason `no_waypoint` and no
/// waypoint; a hop a waypoint decided names it; unreachable-forks is a
/// check of ambient scenarios only.
#[test]
fn ambient_hops_say_where_they_were_decided() {
    let r = report("ambient.yaml");
    assert!(r.passed());
    assert_eq!(r.mesh, "ambient");
    assert_eq!(
        check_names(&r),
        [
            "leak",
            "cross-talk",
            "miss",
            "unreachable-forks",
            "failed-hops",
            "expectations"
        ]
    );
    let g = r
        .groups
        .iter()
        .find(|g| g.name == "location-sandbox")
        .unwrap();
    let at: Vec<(&str, &str, Option<&str>)> = g.paths[0]
        .hops
        .iter()
        .map(|h| (h.service.as_str(), h.reason.as_str(), h.waypoint.as_deref()))
        .collect();
    assert_eq!(
        at,
        [
            ("frontend", "no_fork", Some("waypoint")),
            ("customer", "no_fork", Some("waypoint")),
            ("location", "fork", Some("location-waypoint")),
            ("driver", "no_fork", Some("waypoint")),
            ("route", "no_waypoint", None),
        ]
    );
    let json = serde_json::to_value(&g.paths[0].hops[4]).unwrap();
    assert_eq!(json["reason"], "no_waypoint");
    assert!(json.get("waypoint").is_none());
    assert_eq!(
        serde_json::to_value(&g.paths[0].hops[2]).unwrap()["waypoint"],
        "location-waypoint"
    );
    let sidecar = report("hotrod.yaml");
    assert_eq!(sidecar.mesh, "sidecar");
    assert!(!check_names(&sidecar).contains(&"unreachable-forks"));
    assert!(
        sidecar.groups[0].paths[0]
            .hops
            .iter()
            .all(|h| h.waypoint.is_none())
    );
}

#[test]
fn a_fork_behind_no_waypoint_is_missed_unless_expected() {
    let r = report("failing/ambient-no-waypoint.yaml");
    let unreachable = r.checks.iter().find(|c| c.name == "unreachable-forks");
    assert_eq!(unreachable.map(|c| (c.passed, c.count)), Some((false, 1)));
    assert_eq!(
        classes(&r, "tagged"),
        [
            "frontend fallback",
            "customer fallback",
            "location violation(miss)",
            "driver fork",
            "route fallback"
        ]
    );
    assert_eq!(classes(&r, "acknowledged")[2], "location fallback");
    let junit = crate::junit(std::slice::from_ref(&r));
    assert!(
        junit.contains(
            r#"<testcase classname="ambient-no-waypoint.checks" name="unreachable-forks">"#
        ),
        "{junit}"
    );
}
