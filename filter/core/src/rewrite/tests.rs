use alloc::boxed::Box;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

fn names() -> Vec<Box<str>> {
    ["sd-routing-key", "sd-sandbox"]
        .iter()
        .map(|s| (*s).into())
        .collect()
}

fn strip(line: &str) -> Option<String> {
    let mut out = [0u8; 256];
    let names = names();
    match edit_line(line.as_bytes(), Some(&names), None, &mut out).edit {
        LineEdit::Unchanged => Some(line.to_string()),
        LineEdit::Rewritten(n) => Some(String::from_utf8(out[..n].to_vec()).unwrap()),
        LineEdit::Empty => None,
        LineEdit::TooLong => Some("<too long>".to_string()),
    }
}

#[test]
fn look_alikes_are_removed_and_everything_else_kept_byte_for_byte() {
    let cases: &[(&str, Option<&str>)] = &[
        ("sd-routing-key=K", None),
        ("a=1, sd-routing-key=K ,b=2;p", Some("a=1,b=2;p")),
        ("a=1 ,  SD-Routing-Key = K", Some("a=1 ")),
        ("%73d-routing-key=K,x=%41", Some("x=%41")),
        ("sd-sandbox=K;laneway-sig=v1.1.x", None),
        (" , ,", Some(" , ,")),
        ("a=1;sd-routing-key=K", Some("a=1;sd-routing-key=K")),
        ("sd-routing-key", None),
        ("sd-routing-keys=K", Some("sd-routing-keys=K")),
        ("sd-routing-key%3DK", None),
        ("sd-routing-key%20%3D K,a=1", Some("a=1")),
        ("sd-routing-keyx=K", Some("sd-routing-keyx=K")),
        ("a=1,,sd-routing-key=K", Some("a=1,")),
    ];
    for (line, want) in cases {
        assert_eq!(strip(line).as_deref(), *want, "{line:?}");
    }
}

#[test]
fn a_line_that_does_not_fit_is_reported() {
    let long = format!("a={},sd-routing-key=K", "x".repeat(300));
    assert_eq!(strip(&long).as_deref(), Some("<too long>"));
}

#[test]
fn the_hop_counter_is_set_once_and_read_as_the_largest_copy() {
    let mut out = [0u8; 128];
    let e = edit_line(
        b"a=1,laneway-hops=3,laneway-hops=9",
        None,
        Some(10),
        &mut out,
    );
    assert!(e.hops_set);
    let LineEdit::Rewritten(n) = e.edit else {
        panic!("{e:?}")
    };
    assert_eq!(&out[..n], b"a=1,laneway-hops=10");
    let lines: [&[u8]; 2] = [b"laneway-hops=3", b"x=1, laneway-hops = 12 ;p"];
    assert_eq!(hop_count(lines.iter().copied()), Some(12));
    let bad: [&[u8]; 1] = [b"laneway-hops=1234567,laneway-hops=-1,laneway-hops="];
    assert_eq!(hop_count(bad.iter().copied()), None);
    // A line too long to rewrite has no counter set (fuzz:
    // loop-guard-hop-count-on-a-line-over-16k).
    let mut tiny = [0u8; 8];
    let e = edit_line(b"laneway-hops=x,a=123456789", None, Some(1), &mut tiny);
    assert_eq!((e.edit, e.hops_set), (LineEdit::TooLong, false));
    let e = edit_line(b"a=1", None, Some(1), &mut out);
    assert_eq!(
        e,
        Edited {
            edit: LineEdit::Unchanged,
            hops_set: false
        }
    );
    let n = new_baggage_line(Some((b"sd-routing-key", b"K")), Some(1), &mut out).unwrap();
    assert_eq!(&out[..n], b"sd-routing-key=K,laneway-hops=1");
}

#[test]
fn preview_parameters_are_read_and_removed() {
    assert_eq!(
        query_param(b"/a?x=1&sd-routing-key=K", b"sd-routing-key"),
        Param::Value(b"K")
    );
    assert_eq!(
        query_param(b"/a?sd-routing-key=K&sd-routing-key=L", b"sd-routing-key"),
        Param::Conflict
    );
    assert_eq!(query_param(b"/a", b"sd-routing-key"), Param::Absent);
    let mut out = [0u8; 64];
    let names: [&[u8]; 2] = [b"sd-routing-key", b"laneway-sig"];
    let n = remove_params(b"/a?x=1&sd-routing-key=K&laneway-sig=s&y", &names, &mut out).unwrap();
    assert_eq!(&out[..n], b"/a?x=1&y");
    let n = remove_params(b"/a?sd-routing-key=K", &names, &mut out).unwrap();
    assert_eq!(&out[..n], b"/a");
    assert_eq!(remove_params(b"/a?x=1", &names, &mut out), None);
    // An empty name names nothing (fuzz: preview-path-keeps-empty-named-params).
    let n = remove_params(b"/x?=x&laneway-sig=s", &[b"", b"laneway-sig"], &mut out).unwrap();
    assert_eq!(&out[..n], b"/x?=x");
    // Too long to clean: the query goes whole, or the path becomes `/`
    // (fuzz: preview-parameter-left-in-a-path-over-16k).
    let mut small = [0u8; 8];
    let n = remove_params(b"/a?x=123456&laneway-sig=s", &names, &mut small).unwrap();
    assert_eq!(&small[..n], b"/a");
    let n = remove_params(b"/abcdefghij?laneway-sig=s", &names, &mut small).unwrap();
    assert_eq!(&small[..n], b"/");
}

/// The naive oracle: split, decide per element, join.
fn naive_strip(line: &[u8], names: &[Box<str>]) -> Option<Vec<u8>> {
    let kept: Vec<&[u8]> = line
        .split(|&b| b == b',')
        .filter(|el| {
            let decoded = naive_decode(el).to_ascii_lowercase();
            let key_end = decoded
                .iter()
                .position(|&b| b == b'=' || b == b';')
                .unwrap_or(decoded.len());
            let key = trim_ows(&decoded[..key_end]);
            !names.iter().any(|n| key == n.as_bytes())
        })
        .collect();
    if kept.iter().all(|el| trim_ows(el).is_empty())
        && kept.len() != line.split(|&b| b == b',').count()
    {
        return None;
    }
    Some(kept.join(&b","[..]))
}

fn naive_decode(el: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < el.len() {
        let pair = el
            .get(i + 1..i + 3)
            .and_then(|h| core::str::from_utf8(h).ok());
        match pair.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b)
                if el[i] == b'%'
                    && pair.is_some_and(|h| h.bytes().all(|c| c.is_ascii_hexdigit())) =>
            {
                out.push(b);
                i += 3;
            }
            _ => {
                out.push(el[i]);
                i += 1;
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn strip_matches_the_oracle(parts in proptest::collection::vec(
        prop_oneof![
            Just("sd-routing-key=K".to_string()),
            Just(" SD-SANDBOX = x ;p".to_string()),
            Just("%73d-routing-key=K".to_string()),
            Just("a=1".to_string()),
            Just(" ".to_string()),
            "[ -~]{0,12}",
        ], 0..8)) {
        let line = parts.join(",");
        let names = names();
        let mut out = [0u8; MAX_LINE];
        let got = match edit_line(line.as_bytes(), Some(&names), None, &mut out).edit {
            LineEdit::Unchanged => Some(line.as_bytes().to_vec()),
            LineEdit::Rewritten(n) => Some(out[..n].to_vec()),
            LineEdit::Empty => None,
            LineEdit::TooLong => unreachable!("short lines fit"),
        };
        prop_assert_eq!(got, naive_strip(line.as_bytes(), &names));
    }

    #[test]
    fn never_panics(line in proptest::collection::vec(any::<u8>(), 0..300), n in any::<u32>()) {
        let names = names();
        let mut out = [0u8; 64];
        let _ = edit_line(&line, Some(&names), Some(n), &mut out);
        let _ = hop_count([&line[..]].into_iter());
        let _ = remove_params(&line, &[b"a"], &mut out);
        let _ = query_param(&line, b"a");
    }
}
