//! The page's invariants: what a scenario writes cannot add markup, each
//! hop is drawn under its recorded parent, every bound says what it left
//! out, and the Content-Security-Policy's hashes match the inline code.

use sha2::{Digest, Sha256};

use super::*;
use crate::{Blast, BlastEdge};

fn hop(caller: &str, service: &str, parent: Option<u32>, class: HopClass) -> HopDetail {
    HopDetail {
        caller: caller.into(),
        service: service.into(),
        route: if class == HopClass::Fork {
            "fork"
        } else {
            "baseline"
        }
        .into(),
        reason: "no_fork".into(),
        waypoint: None,
        served_by: format!("{service}@baseline"),
        parent,
        class,
        violation: (class == HopClass::Violation).then_some("miss"),
    }
}

fn path(count: u64, hops: Vec<HopDetail>) -> PathReport {
    PathReport {
        count,
        failures: 0,
        status: 200,
        path: hops.iter().map(|h| h.served_by.clone()).collect(),
        hops,
    }
}

fn group(name: &str, paths: Vec<PathReport>) -> GroupReport {
    GroupReport {
        name: name.into(),
        chain: "chain".into(),
        kind: "tagged".into(),
        key: Some("k1".into()),
        count: paths.iter().map(|p| p.count).sum(),
        failures: 0,
        paths,
    }
}

fn report(name: &str, groups: Vec<GroupReport>) -> Report {
    Report {
        scenario: name.into(),
        file: "s.yaml".into(),
        description: String::new(),
        wasm: "laneway_filter.wasm".into(),
        mesh: "sidecar",
        requests: 1,
        hops: 1,
        threads: 1,
        elapsed: std::time::Duration::ZERO,
        groups,
        checks: vec![Check {
            name: "leak".into(),
            passed: true,
            count: 0,
            summary: "hops where a request of no sandbox reached a fork".into(),
            examples: vec![],
        }],
        blast: vec![],
        notes: vec![],
    }
}

/// The chain a → [b → [a], c]: c is called by the first a.
fn nested() -> Vec<HopDetail> {
    vec![
        hop("ingress", "a", None, HopClass::Baseline),
        hop("a@baseline", "b", Some(0), HopClass::Baseline),
        hop("b@baseline", "a", Some(1), HopClass::Baseline),
        hop("a@baseline", "c", Some(0), HopClass::Violation),
    ]
}

#[test]
fn a_hop_is_drawn_under_its_recorded_parent() {
    let hops = nested();
    assert_eq!(depths(&hops), [0, 1, 2, 1]);
    let mut svg = String::new();
    tree(&mut svg, &hops).unwrap();
    // c's elbow leaves the first a (row 0, depth 0) and ends at depth 1,
    // beside b, not under the inner a (row 2, depth 2).
    let from_first_a = format!(
        "M{} {}V{}H{}",
        PAD + INDENT / 2,
        PAD + BOX_H,
        PAD + 3 * ROW + BOX_H / 2,
        PAD + INDENT
    );
    assert!(svg.contains(&from_first_a), "{svg}");
    let from_inner_a = format!(
        "M{} {}V",
        PAD + 2 * INDENT + INDENT / 2,
        PAD + 2 * ROW + BOX_H
    );
    assert!(!svg.contains(&from_inner_a), "{svg}");
    assert_eq!(svg.matches("class=\"edge-line\"").count(), 3);
    assert!(svg.contains(&format!(
        "<rect x=\"{}\" y=\"{}\"",
        PAD + INDENT,
        PAD + 3 * ROW
    )));
    assert!(svg.contains("<g class=\"hop violation\"><title>a@baseline → c\n"));
}

#[test]
fn a_parent_that_is_not_an_earlier_hop_makes_a_root() {
    let mut hops = nested();
    hops[1].parent = Some(7);
    hops[2].parent = Some(2);
    assert_eq!(depths(&hops), [0, 0, 0, 1]);
    let mut svg = String::new();
    tree(&mut svg, &hops).unwrap();
    assert_eq!(svg.matches("class=\"edge-line\"").count(), 1);
}

#[test]
fn a_hostile_name_cannot_add_markup() {
    let evil =
        "</title><script>alert(1)</script><img src=x onerror=alert(2)>\"'&\x1b[2J\r\n\u{202e}\0";
    let mut g = group(evil, vec![path(1, nested())]);
    g.key = Some(evil.into());
    g.chain = evil.into();
    g.paths[0].hops[3].caller = evil.into();
    g.paths[0].hops[3].served_by = evil.into();
    g.paths[0].path[3] = evil.into();
    let mut r = report(evil, vec![g]);
    r.description = format!("{evil}\nsecond line");
    r.file = evil.into();
    r.notes = vec![evil.into()];
    r.checks[0].examples = vec![evil.into()];
    r.blast = vec![Blast {
        key: evil.into(),
        captured: 1,
        edge_hops: 2,
        edges: vec![BlastEdge {
            caller: evil.into(),
            service: evil.into(),
            captured: 1,
            hops: 2,
        }],
    }];
    let page = html(&[r]);
    // Only the page's own two scripts, and no element of the name's.
    assert_eq!(page.matches("<script").count(), 2);
    assert_eq!(page.matches("</title>").count(), 1 + 4);
    assert!(!page.contains("<img"));
    assert!(!page.contains("alert(1)</script>"));
    assert!(page.contains("&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot;&apos;&amp;\\x1b[2J\\r\\n\\u{202e}\\x00"));
    for raw in ['\x1b', '\r', '\u{202e}', '\0'] {
        assert!(!page.contains(raw), "{raw:?} reached the page");
    }
    // The name is in the title, the heading, the path, the tree, the
    // tooltip, the checks, the blast radius and the notes.
    assert!(page.matches("&lt;script&gt;").count() >= 10);
}

#[test]
fn a_cut_label_stays_escaped() {
    let long = format!("{}<b>", "x".repeat(LABEL_CHARS - 2));
    assert_eq!(
        cut(&long, LABEL_CHARS),
        format!("{}<b…", "x".repeat(LABEL_CHARS - 2))
    );
    assert_eq!(
        Esc(&cut(&long, LABEL_CHARS)).to_string(),
        format!("{}&lt;b…", "x".repeat(LABEL_CHARS - 2))
    );
    assert_eq!(cut("a\nb", 2), "a\\…");
}

#[test]
fn the_switch_hides_what_has_no_violation() {
    let ok = path(5, vec![hop("ingress", "a", None, HopClass::Fork)]);
    let mut failed = path(2, vec![hop("ingress", "a", None, HopClass::Baseline)]);
    failed.failures = 2;
    let page = html(&[report(
        "s",
        vec![
            group("fine", vec![ok.clone()]),
            group("broken", vec![ok, failed]),
        ],
    )]);
    assert!(page.contains("<section class=\"group ok\">\n<h4>fine "));
    assert!(page.contains("<section class=\"group bad\">\n<h4>broken "));
    assert_eq!(page.matches("<div class=\"path ok\">").count(), 2);
    assert_eq!(page.matches("<div class=\"path bad\">").count(), 1);
    assert!(page.contains("2 × a@baseline (2 broke expectations)"));
    assert!(page.contains("#only:checked ~ main .ok { display: none; }"));
    assert!(!page.contains("class=\"all-ok\""));
    let fine = html(&[report(
        "s",
        vec![group("fine", vec![path(1, nested()[..1].to_vec())])],
    )]);
    assert!(fine.contains("<p class=\"all-ok\">"));
}

#[test]
fn paths_over_the_bound_are_counted_not_dropped() {
    let paths: Vec<PathReport> = (0..PATHS_PER_GROUP as u64 + 10)
        .map(|i| {
            let class = if i == PATHS_PER_GROUP as u64 + 9 {
                HopClass::Violation
            } else {
                HopClass::Baseline
            };
            path(100 - i, vec![hop("ingress", &format!("s{i}"), None, class)])
        })
        .collect();
    let page = html(&[report("s", vec![group("g", paths)])]);
    assert_eq!(page.matches("<svg class=\"tree\"").count(), PATHS_PER_GROUP);
    // The rare path with a violation is drawn; ten of the others are not.
    assert!(page.contains(&format!("s{}@baseline", PATHS_PER_GROUP + 9)));
    assert!(!page.contains(&format!("s{}@baseline", PATHS_PER_GROUP - 1)));
    assert!(page.contains("10 more paths (465 requests, 0 with violations) not drawn"));
}

#[test]
fn hops_over_the_bounds_are_counted_not_dropped() {
    let chain = |n: usize| -> Vec<HopDetail> {
        (0..n)
            .map(|i| {
                hop(
                    "x",
                    "s",
                    i.checked_sub(1).map(|p| p as u32),
                    HopClass::Baseline,
                )
            })
            .collect()
    };
    let page = html(&[report(
        "s",
        vec![group("g", vec![path(1, chain(HOPS_PER_TREE + 5))])],
    )]);
    assert_eq!(page.matches("<g class=\"hop ").count(), HOPS_PER_TREE);
    assert!(page.contains("5 more hops of this path not drawn"));
    // The page's bound: trees that do not fit are counted too.
    let groups: Vec<GroupReport> = (0..PAGE_HOPS / HOPS_PER_TREE + 3)
        .map(|i| group(&format!("g{i}"), vec![path(1, chain(HOPS_PER_TREE))]))
        .collect();
    let page = html(&[report("s", groups)]);
    assert_eq!(page.matches("<g class=\"hop ").count(), PAGE_HOPS);
    assert_eq!(
        page.matches("1 more path (1 request, 0 with violations) not drawn")
            .count(),
        3
    );
}

#[test]
fn the_blast_radius_lists_those_that_captured_first() {
    let blast = |key: String, captured: u64| Blast {
        key,
        captured,
        edge_hops: 10,
        edges: vec![],
    };
    let mut r = report("s", vec![]);
    r.blast = (0..FEW - 1)
        .map(|i| blast(format!("sbx-{i:04}"), 0))
        .collect();
    r.blast.push(blast("busy".into(), 7));
    let few = html(&[r.clone()]);
    assert!(few.contains("<tr><td><code>busy</code></td><td class=\"n\">7</td>"));
    assert!(few.find("<code>busy</code>") < few.find("<code>sbx-0000</code>"));
    assert_eq!(few.matches("<tr><td><code>").count(), FEW);
    // Beyond a few, the idle ones are counted; beyond ROWS, busy ones too.
    r.blast
        .extend((0..ROWS + 4).map(|i| blast(format!("busy-{i}"), 1)));
    let page = html(&[r]);
    assert!(!page.contains("<code>sbx-0000</code>"));
    assert_eq!(page.matches("<tr><td><code>").count(), ROWS);
    assert!(page.contains("24 more sandboxes not shown (19 of all 124 captured no traffic)"));
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ABC[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

#[test]
fn the_policy_allows_exactly_the_inline_code() {
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"abcd"), "YWJjZA==");
    let stale: Vec<String> = [
        ("GUARD", GUARD, GUARD_SHA256),
        ("SCRIPT", SCRIPT, SCRIPT_SHA256),
        ("STYLE", STYLE, STYLE_SHA256),
    ]
    .into_iter()
    .map(|(what, source, pinned)| (what, base64(&Sha256::digest(source.as_bytes())), pinned))
    .filter(|(_, hash, pinned)| hash != pinned)
    .map(|(what, hash, _)| format!("const {what}_SHA256: &str = \"{hash}\";"))
    .collect();
    assert!(
        stale.is_empty(),
        "the inline code changed; pin its hashes:\n{}",
        stale.join("\n")
    );
    let page = html(&[]);
    assert!(page.contains(&format!("<script>{GUARD}</script>")));
    assert!(page.contains(&format!("<script>{SCRIPT}</script>")));
    assert!(page.contains(&format!("<style>{STYLE}</style>")));
    assert!(page.contains("default-src 'none'"));
    // Nothing to fetch: no address at all.
    for fetch in ["://", "url(", "src=", "href=", "@import"] {
        assert!(!page.contains(fetch), "{fetch}");
    }
}
