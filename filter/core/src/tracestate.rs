//! W3C Trace Context `tracestate`, read from one or more header lines.
//!
//! Grammar (W3C Trace Context Level 1, §3.3.1), OWS = *( SP / HTAB ):
//!
//! ```text
//! list             = list-member 0*31( OWS "," OWS list-member )
//! list-member      = key "=" value / OWS
//! key              = simple-key / multi-tenant-key
//! simple-key       = lcalpha 0*255( lcalpha / DIGIT / "_" / "-" / "*" / "/" )
//! multi-tenant-key = tenant-id "@" system-id
//! tenant-id        = ( lcalpha / DIGIT ) 0*240( lcalpha / DIGIT / "_" / "-" / "*" / "/" )
//! system-id        = lcalpha 0*13( lcalpha / DIGIT / "_" / "-" / "*" / "/" )
//! value            = 0*255( chr ) nblk-chr
//! chr         = %x20 / nblk-chr
//! nblk-chr    = %x21-2B / %x2D-3C / %x3E-7E
//! ```
//!
//! Decisions made here:
//! - The key grammar is Level 1's, which the Go, Java, Python and
//!   JavaScript OpenTelemetry propagators use: a tracestate they would
//!   discard is discarded here too, so routing never relies on a key the
//!   next service's SDK drops.
//! - Empty and white-space-only members are allowed and do not count.
//! - At most [`MAX_MEMBERS`] members, and no key twice.
//! - The header is valid or it is not: one bad member, a 33rd member or a
//!   duplicate key discards the whole tracestate, as the spec and most
//!   implementations do. Values are compared literally (no percent-decoding).
//! - Parsing stops at the 33rd member, so the work is bounded, and
//!   duplicate keys are found in one pass (hashed, not compared pairwise).
//!
//! Never allocates (members live in a fixed array); never panics.

use core::fmt;

use crate::class;
use crate::hash::Hasher;
use crate::lines::elements;

/// At most this many members.
pub const MAX_MEMBERS: usize = 32;
const MAX_KEY: usize = 256;
const MAX_TENANT: usize = 241;
const MAX_SYSTEM: usize = 14;
const MAX_VALUE: usize = 256;

/// A tracestate list member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Member<'h> {
    /// The key.
    pub key: &'h [u8],
    /// The opaque value.
    pub value: &'h [u8],
}

/// Why a tracestate was discarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Invalid {
    /// A key breaks the key grammar.
    Key,
    /// A member has no `=`.
    NoEquals,
    /// A value is empty, too long, or holds a byte outside `chr`.
    Value,
    /// More than [`MAX_MEMBERS`] members.
    TooManyMembers,
    /// The same key twice.
    DuplicateKey,
}

impl Invalid {
    /// A stable snake_case name, for counters and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Invalid::Key => "bad_key",
            Invalid::NoEquals => "no_equals",
            Invalid::Value => "bad_value",
            Invalid::TooManyMembers => "too_many_members",
            Invalid::DuplicateKey => "duplicate_key",
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Invalid::Key => "a key breaks the tracestate key grammar",
            Invalid::NoEquals => "a member has no '='",
            Invalid::Value => "a value is empty, too long or holds a forbidden byte",
            Invalid::TooManyMembers => "more than 32 members",
            Invalid::DuplicateKey => "the same key appears twice",
        })
    }
}

/// A valid tracestate: up to 32 members, in header order.
#[derive(Clone, Copy, Debug)]
pub struct TraceState<'h> {
    members: [Member<'h>; MAX_MEMBERS],
    len: u8,
}

impl<'h> TraceState<'h> {
    /// Parses the list formed by `lines`. Returns the reason when the
    /// tracestate must be discarded.
    pub fn parse<L>(lines: L) -> Result<TraceState<'h>, Invalid>
    where
        L: Iterator<Item = &'h [u8]>,
    {
        let mut state = TraceState {
            members: [Member::default(); MAX_MEMBERS],
            len: 0,
        };
        // Duplicate keys in one pass: a 64-slot open-addressed set of key
        // hashes (member index + 1; 0 is empty) on the stack; keys are
        // compared only when their hashes collide.
        let mut seen = [0u8; 2 * MAX_MEMBERS];
        for element in elements(lines, usize::MAX) {
            let len = state.len as usize;
            if len == MAX_MEMBERS {
                return Err(Invalid::TooManyMembers);
            }
            let member = parse_member(element.bytes)?;
            let mut h = Hasher::new(0);
            h.bytes(member.key);
            let mut slot = h.finish() as usize % seen.len();
            while seen[slot] != 0 {
                if state.members[seen[slot] as usize - 1].key == member.key {
                    return Err(Invalid::DuplicateKey);
                }
                slot = (slot + 1) % seen.len();
            }
            seen[slot] = (len + 1) as u8;
            state.members[len] = member;
            state.len += 1;
        }
        Ok(state)
    }

    /// The members, in header order.
    pub fn members(&self) -> &[Member<'h>] {
        &self.members[..self.len as usize]
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &[u8]) -> Option<&'h [u8]> {
        self.members()
            .iter()
            .find(|m| m.key == key)
            .map(|m| m.value)
    }
}

/// Parses one OWS-trimmed member.
pub fn parse_member(m: &[u8]) -> Result<Member<'_>, Invalid> {
    let eq = m.iter().position(|&b| b == b'=').ok_or(Invalid::NoEquals)?;
    let (key, value) = (&m[..eq], &m[eq + 1..]);
    if !is_key(key) {
        return Err(Invalid::Key);
    }
    if !is_value(value) {
        return Err(Invalid::Value);
    }
    Ok(Member { key, value })
}

/// Whether `key` is a tracestate key: a simple key, or `tenant@system`
/// (see the grammar above).
pub fn is_key(key: &[u8]) -> bool {
    match key.iter().position(|&b| b == b'@') {
        None => key.len() <= MAX_KEY && starts(key, false),
        Some(at) => {
            let (tenant, system) = (&key[..at], &key[at + 1..]);
            tenant.len() <= MAX_TENANT
                && starts(tenant, true)
                && system.len() <= MAX_SYSTEM
                && starts(system, false)
        }
    }
}

/// A non-empty run of key characters whose first is `lcalpha` (or a digit,
/// when `digit_first`). The class has no `@`, so a second `@` fails here.
fn starts(part: &[u8], digit_first: bool) -> bool {
    match part.split_first() {
        Some((&first, rest)) => {
            (first.is_ascii_lowercase() || (digit_first && first.is_ascii_digit()))
                && class::all_tracestate_key(rest)
        }
        None => false,
    }
}

fn is_value(value: &[u8]) -> bool {
    match value.last() {
        Some(&last) => {
            value.len() <= MAX_VALUE && last != b' ' && class::all_tracestate_value(value)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    type Owned = Result<Vec<(Vec<u8>, Vec<u8>)>, Invalid>;

    fn parse(lines: &[&[u8]]) -> Owned {
        TraceState::parse(lines.iter().copied()).map(|t| {
            t.members()
                .iter()
                .map(|m| (m.key.to_vec(), m.value.to_vec()))
                .collect()
        })
    }

    fn naive(lines: &[&[u8]]) -> Owned {
        crate::naive::tracestate(lines)
    }

    #[test]
    fn reads_members_across_lines() {
        let got = parse(&[b"a=1, b@vendor=x y", b" , c=3 "]).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[1], (b"b@vendor".to_vec(), b"x y".to_vec()));
    }

    #[test]
    fn discards_the_whole_header_on_any_error() {
        assert_eq!(parse(&[b"a=1,B=2"]), Err(Invalid::Key));
        assert_eq!(parse(&[b"a=1,b"]), Err(Invalid::NoEquals));
        assert_eq!(parse(&[b"a=1,b="]), Err(Invalid::Value));
        assert_eq!(parse(&[b"a=1,b=x=y"]), Err(Invalid::Value));
        assert_eq!(parse(&[b"a=1", b"a=2"]), Err(Invalid::DuplicateKey));
        let many: Vec<u8> = (0..33)
            .map(|i| alloc::format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",")
            .into_bytes();
        assert_eq!(parse(&[&many]), Err(Invalid::TooManyMembers));
        assert_eq!(parse(&[&many[..many.len() - 5]]).unwrap().len(), 32);
    }

    #[test]
    fn value_may_start_with_space_but_trailing_space_is_ows() {
        assert_eq!(
            parse(&[b"a= v "]).unwrap(),
            [(b"a".to_vec(), b" v".to_vec())]
        );
    }

    /// Regression (issue 8): keys of the old, simplified grammar that
    /// OpenTelemetry's propagators reject (a digit first, two `@`, a long
    /// or digit-first system id) now discard the tracestate.
    #[test]
    fn keys_follow_trace_context_level_1() {
        for ok in [
            &b"a"[..],
            b"a0_-*/",
            b"0tenant@vendor",
            b"t@v",
            b"t@abcdefghijklmn",
        ] {
            assert!(is_key(ok), "{:?}", core::str::from_utf8(ok));
        }
        let long_simple = [b'a'; 257];
        let long_tenant = [&[b'a'; 242][..], b"@v"].concat();
        for bad in [
            &b"0a"[..],
            b"9",
            b"a@b@c",
            b"t@0vendor",
            b"t@abcdefghijklmno",
            b"@v",
            b"t@",
            &long_simple,
            &long_tenant,
        ] {
            assert!(!is_key(bad), "{:?}", core::str::from_utf8(bad));
        }
        assert!(is_key(&long_simple[..256]));
    }

    #[test]
    fn empty_header_is_valid_and_empty() {
        assert_eq!(parse(&[b""]).unwrap(), []);
        assert_eq!(parse(&[]).unwrap(), []);
    }

    fn piece() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"k".to_vec()),
            Just(b"sd-routing-key".to_vec()),
            Just(b"v@x".to_vec()),
            Just(b"=".to_vec()),
            Just(b",".to_vec()),
            Just(b" ".to_vec()),
            Just(b"\t".to_vec()),
            Just(b"K".to_vec()),
            Just(b"1".to_vec()),
            Just(b"@".to_vec()),
            Just(b"0t@".to_vec()),
            Just(b"abcdefghijklmn".to_vec()),
            any::<u8>().prop_map(|b| alloc::vec![b]),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn parser_matches_naive_oracle(
            lines in proptest::collection::vec(
                proptest::collection::vec(piece(), 0..16).prop_map(|p| p.concat()),
                0..4,
            )
        ) {
            let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(parse(&lines), naive(&lines));
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..3)) {
            let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(parse(&lines), naive(&lines));
        }

        #[test]
        fn member_count_limit_matches_oracle(n in 28usize..36) {
            let list: Vec<u8> = (0..n).map(|i| alloc::format!("k{i}=v")).collect::<Vec<_>>().join(",").into_bytes();
            prop_assert_eq!(parse(&[&list]), naive(&[&list]));
        }
    }
}
