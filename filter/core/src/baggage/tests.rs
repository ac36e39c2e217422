//! Baggage unit tests: the naive oracle ([`crate::naive::baggage`]), built
//! on `Vec` and `split`, checked against the allocation-free parser with
//! proptest.

use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

use crate::naive::{self, Item as Owned};

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

fn naive(lines: &[&[u8]]) -> (Vec<Owned>, Option<Limit>) {
    naive::baggage(lines)
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
