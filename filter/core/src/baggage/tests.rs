//! Baggage unit tests: a naive, obviously-correct oracle built on `Vec` and
//! `split`, checked against the allocation-free parser with proptest.

use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

/// What the oracle and the parser both produce, owned.
#[derive(Debug, PartialEq, Eq)]
enum Owned {
    Member {
        key: Vec<u8>,
        raw_value: Vec<u8>,
        properties: Vec<Vec<u8>>,
    },
    Invalid(Vec<u8>, Invalid),
}

fn fast(lines: &[&[u8]]) -> (Vec<Owned>, Option<Limit>) {
    let mut it = members(lines.iter().copied());
    let out = it
        .by_ref()
        .map(|e| match e {
            Entry::Member(m) => Owned::Member {
                key: m.key.to_vec(),
                raw_value: m.value.raw().to_vec(),
                properties: m.properties().map(<[u8]>::to_vec).collect(),
            },
            Entry::Invalid { raw, why } => Owned::Invalid(raw.to_vec(), why),
        })
        .collect();
    (out, it.dropped())
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t'))
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\t'))
        .map_or(s, |i| i + 1);
    &b[s..e]
}

fn is_token(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(|&c| is_tchar(c))
}

fn octets_ok(b: &[u8]) -> bool {
    b.iter().all(|&c| is_baggage_octet(c))
}

fn escapes_ok(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// Oracle: split the element at its first `;`, the head at its first `=`.
fn naive_member(m: &[u8]) -> Owned {
    let invalid = |why| Owned::Invalid(m.to_vec(), why);
    if m.len() > MAX_MEMBER_BYTES {
        return invalid(Invalid::TooLong);
    }
    let (head, props) = match m.iter().position(|&b| b == b';') {
        Some(i) => (&m[..i], Some(&m[i + 1..])),
        None => (m, None),
    };
    let Some(eq) = head.iter().position(|&b| b == b'=') else {
        return invalid(if is_token(trim(head)) {
            Invalid::NoEquals
        } else {
            Invalid::Key
        });
    };
    // Elements and properties arrive trimmed, so only trailing OWS can
    // separate a key from its `=`.
    let key = trim(&head[..eq]);
    if !is_token(key) {
        return invalid(Invalid::Key);
    }
    let value = trim(&head[eq + 1..]);
    if !octets_ok(value) {
        return invalid(Invalid::Value);
    }
    if !escapes_ok(value) {
        return invalid(Invalid::Escape);
    }
    let mut properties = Vec::new();
    if let Some(props) = props {
        for p in props.split(|&b| b == b';') {
            let p = trim(p);
            let ok = match p.iter().position(|&b| b == b'=') {
                None => is_token(trim(p)),
                Some(e) => {
                    let k = &p[..e];
                    let v = trim(&p[e + 1..]);
                    is_token(trim(k)) && octets_ok(v) && escapes_ok(v)
                }
            };
            if !ok {
                return invalid(Invalid::Property);
            }
            properties.push(p.to_vec());
        }
    }
    Owned::Member {
        key: key.to_vec(),
        raw_value: value.to_vec(),
        properties,
    }
}

/// Oracle for a whole list: join the lines, split on commas, count offsets.
fn naive(lines: &[&[u8]]) -> (Vec<Owned>, Option<Limit>) {
    let joined: Vec<u8> = lines.join(&b","[..]);
    let mut out = Vec::new();
    let mut offset = 0;
    for element in joined.split(|&b| b == b',') {
        let end = offset + element.len();
        offset = end + 1;
        if end > MAX_BYTES {
            return (out, Some(Limit::Bytes));
        }
        let element = trim(element);
        if element.is_empty() {
            continue;
        }
        if out.len() == MAX_MEMBERS {
            return (out, Some(Limit::Members));
        }
        out.push(naive_member(element));
    }
    (out, None)
}

fn check(lines: &[&[u8]]) {
    assert_eq!(fast(lines), naive(lines), "lines: {lines:?}");
}

#[test]
fn values_may_contain_equals_and_be_empty() {
    check(&[b"a=b=c, e=, f = "]);
    let (got, _) = fast(&[b"a=b=c, e="]);
    assert!(matches!(&got[0], Owned::Member { raw_value, .. } if raw_value == b"b=c"));
    assert!(matches!(&got[1], Owned::Member { raw_value, .. } if raw_value.is_empty()));
}

#[test]
fn properties_are_never_members() {
    let (got, _) = fast(&[b"user=alice;sd-routing-key=K;flag"]);
    assert_eq!(got.len(), 1);
    let Owned::Member {
        key, properties, ..
    } = &got[0]
    else {
        panic!("{got:?}")
    };
    assert_eq!(key, b"user");
    assert_eq!(
        properties,
        &[b"sd-routing-key=K".to_vec(), b"flag".to_vec()]
    );
}

#[test]
fn invalid_members_are_skipped_and_the_rest_still_count() {
    let (got, dropped) = fast(&[b"a=1, b c=2, =3, d, e=\"x\", f=%zz, g=1;, h=4"]);
    assert_eq!(dropped, None);
    let why: Vec<_> = got
        .iter()
        .map(|o| match o {
            Owned::Member { key, .. } => Err(key.clone()),
            Owned::Invalid(_, why) => Ok(*why),
        })
        .collect();
    assert_eq!(
        why,
        [
            Err(b"a".to_vec()),
            Ok(Invalid::Key),
            Ok(Invalid::Key),
            Ok(Invalid::NoEquals),
            Ok(Invalid::Value),
            Ok(Invalid::Escape),
            Ok(Invalid::Property),
            Err(b"h".to_vec()),
        ]
    );
}

#[test]
fn limits_drop_whole_members() {
    let many: Vec<u8> = (0..200)
        .map(|i| alloc::format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",")
        .into_bytes();
    let (got, dropped) = fast(&[&many]);
    assert_eq!(got.len(), MAX_MEMBERS);
    assert_eq!(dropped, Some(Limit::Members));

    let mut long = alloc::vec![b'a'; 8190];
    long[0] = b'x';
    long[1] = b'=';
    long.extend_from_slice(b",y=1");
    let (got, dropped) = fast(&[&long]);
    assert_eq!(got.len(), 1, "the member ending at 8190 is read");
    assert_eq!(dropped, Some(Limit::Bytes), "y=1 would end at 8194");
    check(&[&many]);
    check(&[&long]);
}

#[test]
fn a_member_longer_than_4096_is_invalid() {
    let mut m = b"k=".to_vec();
    m.extend(core::iter::repeat_n(b'v', 4095));
    let (got, _) = fast(&[&m, b"ok=1"]);
    assert!(matches!(got[0], Owned::Invalid(_, Invalid::TooLong)));
    assert!(matches!(&got[1], Owned::Member { key, .. } if key == b"ok"));
}

#[test]
fn several_lines_form_one_list() {
    check(&[b"a=1", b"", b" b=2 , ", b"c=3"]);
    let (got, _) = fast(&[b"a=1", b"b=2"]);
    assert_eq!(got.len(), 2);
}

fn element() -> impl Strategy<Value = Vec<u8>> {
    // Near-misses of the grammar, so the oracle and the parser disagree if
    // either mishandles one of them.
    let piece = prop_oneof![
        Just(b"k".to_vec()),
        Just(b"sd-routing-key".to_vec()),
        Just(b"=".to_vec()),
        Just(b";".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\t".to_vec()),
        Just(b",".to_vec()),
        Just(b"%4B".to_vec()),
        Just(b"%".to_vec()),
        Just(b"%zz".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"v".to_vec()),
        Just(b"+/".to_vec()),
        any::<u8>().prop_map(|b| alloc::vec![b]),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parser_matches_naive_oracle(lines in proptest::collection::vec(element(), 0..4)) {
        let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(fast(&lines), naive(&lines));
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..256), 0..4)) {
        let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(fast(&lines), naive(&lines));
    }

    #[test]
    fn limits_match_oracle_on_large_lists(n in 150usize..220, width in 1usize..80) {
        let list: Vec<u8> = (0..n)
            .map(|i| alloc::format!("k{i}={}", "v".repeat(width)))
            .collect::<Vec<_>>()
            .join(" , ")
            .into_bytes();
        prop_assert_eq!(fast(&[&list]), naive(&[&list]));
    }
}
