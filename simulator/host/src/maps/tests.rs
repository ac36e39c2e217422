//! Header-map semantics against a naive oracle: a `Vec` of owned pairs that
//! follows the same rules written the obvious way.

use super::*;
use proptest::prelude::*;
use proxy_wasm_abi::pairs;

fn pairs_of(map: &HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn lowercases_names_and_matches_case_insensitively() {
    let mut map = HeaderMap::new();
    map.add("X-Request-ID", "abc");
    assert_eq!(pairs_of(&map), owned(&[("x-request-id", "abc")]));
    assert_eq!(map.get("x-REQUEST-id"), Some(&b"abc"[..]));
    assert_eq!(map.get("x-request"), None);
}

#[test]
fn keeps_order_and_puts_pseudo_headers_first() {
    let mut map = HeaderMap::new();
    map.add(":method", "GET");
    map.add("b", "1");
    map.add("a", "2");
    map.add(":authority", "location:8083");
    assert_eq!(
        pairs_of(&map),
        owned(&[
            (":method", "GET"),
            (":authority", "location:8083"),
            ("b", "1"),
            ("a", "2")
        ])
    );
}

#[test]
fn keeps_duplicates_and_get_returns_the_first() {
    let map: HeaderMap = [("baggage", "a=1"), ("x", "y"), ("Baggage", "b=2")]
        .into_iter()
        .collect();
    assert_eq!(map.len(), 3);
    assert_eq!(map.get("baggage"), Some(&b"a=1"[..]));
    let all: Vec<&[u8]> = map.get_all(b"baggage").collect();
    assert_eq!(all, [&b"a=1"[..], &b"b=2"[..]]);
}

#[test]
fn replace_is_remove_then_add() {
    let mut map: HeaderMap = [
        (":authority", "a"),
        (":path", "/"),
        ("k", "1"),
        ("z", "2"),
        ("k", "3"),
    ]
    .into_iter()
    .collect();
    map.replace("K", "4");
    map.replace(":authority", "b");
    assert_eq!(
        pairs_of(&map),
        owned(&[(":path", "/"), (":authority", "b"), ("z", "2"), ("k", "4")])
    );
    assert_eq!(map.remove("missing"), 0);
    assert_eq!(map.remove(":PATH"), 1);
    map.add(":scheme", "http");
    assert_eq!(
        pairs_of(&map),
        owned(&[
            (":authority", "b"),
            (":scheme", "http"),
            ("z", "2"),
            ("k", "4")
        ])
    );
}

#[test]
fn byte_size_is_envoys_sum_of_lengths() {
    let map: HeaderMap = [("ab", "cde"), ("f", "")].into_iter().collect();
    assert_eq!(map.byte_size(), 6);
}

#[test]
fn clear_keeps_capacity() {
    let mut map: HeaderMap = [("a", "1")].into_iter().collect();
    map.clear();
    assert!(map.is_empty());
    map.add("b", "2");
    assert_eq!(pairs_of(&map), owned(&[("b", "2")]));
}

#[test]
fn pairs_serialization_round_trips() {
    let map: HeaderMap = [(":authority", "x:1"), ("baggage", "k=v"), ("e", "")]
        .into_iter()
        .collect();
    let mut buf = vec![0; pairs::encoded_len(map.iter())];
    let n = pairs::encode(map.iter(), &mut buf).unwrap();
    assert_eq!(n, buf.len());
    let mut back = HeaderMap::new();
    back.set_pairs(pairs::pairs(&buf).unwrap());
    assert_eq!(back, map);
}

#[test]
fn properties_replace_in_place() {
    let mut p = Properties::new();
    p.set("a", "1");
    p.set("b", "2");
    p.set("a", "3");
    let got: Vec<_> = p.iter().collect();
    assert_eq!(got, [(&b"a"[..], &b"3"[..]), (&b"b"[..], &b"2"[..])]);
    assert_eq!(p.get("A"), None, "property paths are exact");
}

/// The oracle: the same rules on a plain vector.
#[derive(Default)]
struct Naive(Vec<(Vec<u8>, Vec<u8>)>);

impl Naive {
    fn add(&mut self, k: &[u8], v: &[u8]) {
        let k = k.to_ascii_lowercase();
        let at = if k.first() == Some(&b':') {
            self.0
                .iter()
                .take_while(|(n, _)| n.first() == Some(&b':'))
                .count()
        } else {
            self.0.len()
        };
        self.0.insert(at, (k, v.to_vec()));
    }
    fn remove(&mut self, k: &[u8]) {
        let k = k.to_ascii_lowercase();
        self.0.retain(|(n, _)| *n != k);
    }
    fn get(&self, k: &[u8]) -> Option<&[u8]> {
        let k = k.to_ascii_lowercase();
        self.0.iter().find(|(n, _)| *n == k).map(|(_, v)| &v[..])
    }
}

#[derive(Debug, Clone)]
enum Op {
    Add(Vec<u8>, Vec<u8>),
    Replace(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    Clear,
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b":authority".to_vec()),
        Just(b":Path".to_vec()),
        Just(b"baggage".to_vec()),
        Just(b"X-A".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..6),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let value = proptest::collection::vec(any::<u8>(), 0..2000);
    prop_oneof![
        4 => (name(), value.clone()).prop_map(|(k, v)| Op::Add(k, v)),
        2 => (name(), value).prop_map(|(k, v)| Op::Replace(k, v)),
        2 => name().prop_map(Op::Remove),
        1 => Just(Op::Clear),
    ]
}

proptest! {
    #[test]
    fn matches_the_naive_map(ops in proptest::collection::vec(op(), 0..40)) {
        let mut map = HeaderMap::new();
        let mut naive = Naive::default();
        for op in ops {
            match op {
                Op::Add(k, v) => { map.add(&k, &v); naive.add(&k, &v); }
                Op::Replace(k, v) => { map.replace(&k, &v); naive.remove(&k); naive.add(&k, &v); }
                Op::Remove(k) => { map.remove(&k); naive.remove(&k); }
                Op::Clear => { map.clear(); naive.0.clear(); }
            }
            let got: Vec<(Vec<u8>, Vec<u8>)> = map.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
            prop_assert_eq!(&got, &naive.0);
            for (k, _) in &naive.0 {
                prop_assert_eq!(map.get(k), naive.get(k));
            }
        }
    }
}
