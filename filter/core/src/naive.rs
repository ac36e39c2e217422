//! Naive, obviously-correct oracles for every fast path of the core, built
//! on `Vec`, `split` and linear search, in the spirit of memchr's
//! `tests/naive.rs`. Tests only: proptests check that each fast path and
//! its oracle agree, input for input.

use alloc::string::String;
use alloc::vec::Vec;

use crate::baggage::{Invalid, Limit, MAX_BYTES, MAX_MEMBER_BYTES, MAX_MEMBERS};
use crate::class::{is_baggage_octet, is_tchar};
use crate::config::{Config, UnknownKeyPolicy};
use crate::decide::{Carrier, Reason};
use crate::tracestate;

/// OWS-trimmed.
pub fn trim(b: &[u8]) -> &[u8] {
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

/// Percent-decoding: `%XX` in either case is a byte, anything else stays;
/// `None` for a `%` without two hex digits; then UTF-8 repaired lossily.
pub fn percent(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let h = raw.get(i + 1).and_then(|&b| (b as char).to_digit(16))?;
            let l = raw.get(i + 2).and_then(|&b| (b as char).to_digit(16))?;
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned().into_bytes())
}

/// A baggage list element, as the oracle reads it.
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    /// A valid member.
    Member {
        /// Its key.
        key: Vec<u8>,
        /// Its value, not decoded.
        raw_value: Vec<u8>,
        /// Its properties, trimmed.
        properties: Vec<Vec<u8>>,
    },
    /// An invalid member, as written, and why.
    Invalid(Vec<u8>, Invalid),
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

/// One trimmed baggage element: split at the first `;`, the head at its
/// first `=`.
pub fn baggage_member(m: &[u8]) -> Item {
    let invalid = |why| Item::Invalid(m.to_vec(), why);
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
    Item::Member {
        key: key.to_vec(),
        raw_value: value.to_vec(),
        properties,
    }
}

/// A whole baggage list: join the lines, split on commas, count offsets.
pub fn baggage(lines: &[&[u8]]) -> (Vec<Item>, Option<Limit>) {
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
        out.push(baggage_member(element));
    }
    (out, None)
}

fn key_chars(b: &[u8]) -> bool {
    b.iter()
        .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-*/".contains(&c))
}

/// W3C Trace Context Level 1's key grammar, written out.
pub fn tracestate_key(k: &[u8]) -> bool {
    let parts: Vec<&[u8]> = k.split(|&b| b == b'@').collect();
    match parts.as_slice() {
        [simple] => {
            (1..=256).contains(&simple.len()) && simple[0].is_ascii_lowercase() && key_chars(simple)
        }
        [tenant, system] => {
            (1..=241).contains(&tenant.len())
                && (tenant[0].is_ascii_lowercase() || tenant[0].is_ascii_digit())
                && key_chars(tenant)
                && (1..=14).contains(&system.len())
                && system[0].is_ascii_lowercase()
                && key_chars(system)
        }
        _ => false,
    }
}

/// Tracestate members, `(key, value)`, in order.
pub type Members = Vec<(Vec<u8>, Vec<u8>)>;

/// A whole tracestate: join, split, trim, validate each member, then count
/// and look for duplicates. The first problem in list order wins.
pub fn tracestate(lines: &[&[u8]]) -> Result<Members, tracestate::Invalid> {
    use tracestate::Invalid;
    let joined = lines.join(&b","[..]);
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for raw in joined.split(|&b| b == b',') {
        let m = trim(raw);
        if m.is_empty() {
            continue;
        }
        if out.len() == 32 {
            return Err(Invalid::TooManyMembers);
        }
        let Some(eq) = m.iter().position(|&b| b == b'=') else {
            return Err(Invalid::NoEquals);
        };
        let (k, v) = (&m[..eq], &m[eq + 1..]);
        if !tracestate_key(k) {
            return Err(Invalid::Key);
        }
        let value_ok = !v.is_empty()
            && v.len() <= 256
            && *v.last().unwrap() != b' '
            && v.iter()
                .all(|&b| (0x20..=0x7E).contains(&b) && b != b',' && b != b'=');
        if !value_ok {
            return Err(Invalid::Value);
        }
        if out.iter().any(|(ok, _)| ok == k) {
            return Err(Invalid::DuplicateKey);
        }
        out.push((k.to_vec(), v.to_vec()));
    }
    Ok(out)
}

/// `(host, port)` of an authority: a port is 1 to 5 digits after the last
/// colon (and, for an IPv6 literal, after its `]`); one trailing dot of the
/// host is dropped.
pub fn split_authority(a: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut host = a.to_vec();
    let mut port = None;
    if let Some(i) = a.iter().rposition(|&b| b == b':') {
        let digits = &a[i + 1..];
        let before = &a[..i];
        let separable = if a.first() == Some(&b'[') {
            before.ends_with(b"]")
        } else {
            !before.contains(&b':')
        };
        if separable && digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit) {
            host = before.to_vec();
            port = (!digits.is_empty()).then(|| digits.to_vec());
        }
    }
    if host.len() > 1 && host.last() == Some(&b'.') {
        host.pop();
    }
    (host, port)
}

/// The oracle's decision: reason, the key with its carrier and member
/// index, and the `:authority` a fork rewrites to.
#[derive(Debug, PartialEq, Eq)]
pub struct Decided {
    /// Why.
    pub reason: Reason,
    /// `(decoded key, carrier, member index)`.
    pub key: Option<(Vec<u8>, Carrier, u8)>,
    /// The rewritten `:authority`, for a fork.
    pub fork: Option<Vec<u8>>,
}

/// The routing decision, by linear search over the configuration.
pub fn decide(config: &Config, authority: &[u8], bag: &[&[u8]], ts: &[&[u8]]) -> Decided {
    let names = &config.routing_key.members;
    let (items, dropped) = baggage(bag);
    let invalid = items
        .iter()
        .filter(|i| matches!(i, Item::Invalid(..)))
        .count();
    let trace = if ts.is_empty() {
        None
    } else {
        Some(tracestate(ts))
    };
    // Per name, its non-empty baggage values (decoded) in order, and its
    // tracestate value.
    let bag_values = |name: &str| -> Vec<Vec<u8>> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Member { key, raw_value, .. }
                    if key == name.as_bytes() && !raw_value.is_empty() =>
                {
                    percent(raw_value)
                }
                _ => None,
            })
            .collect()
    };
    let ts_value = |name: &str| -> Option<Vec<u8>> {
        match &trace {
            Some(Ok(list)) => list
                .iter()
                .find(|(k, _)| k == name.as_bytes())
                .map(|(_, v)| v.clone()),
            _ => None,
        }
    };
    let chosen = names
        .iter()
        .enumerate()
        .find_map(|(i, n)| {
            let v = bag_values(n);
            (!v.is_empty()).then(|| (i, v[0].clone(), Carrier::Baggage))
        })
        .or_else(|| {
            names
                .iter()
                .enumerate()
                .find_map(|(i, n)| ts_value(n).map(|v| (i, v, Carrier::TraceState)))
        });
    let Some((i, value, carrier)) = chosen else {
        let malformed = invalid > 0 || dropped.is_some() || matches!(trace, Some(Err(_)));
        return Decided {
            reason: if malformed {
                Reason::Malformed
            } else {
                Reason::NoKey
            },
            key: None,
            fork: None,
        };
    };
    let key = Some((value.clone(), carrier, i as u8));
    let decided = |reason, fork| Decided {
        reason,
        key: key.clone(),
        fork,
    };
    let name = &names[i];
    let bags = bag_values(name);
    let conflict = bags
        .iter()
        .any(|v| *v != bags.first().cloned().unwrap_or_default())
        || matches!((bags.first(), ts_value(name)), (Some(a), Some(b)) if *a != b);
    if conflict {
        return decided(Reason::Conflict, None);
    }
    let Some(sandbox) = config
        .sandboxes
        .iter()
        .find(|s| s.key.as_bytes() == value.as_slice())
    else {
        return decided(
            match config.unknown_key.policy {
                UnknownKeyPolicy::Baseline => Reason::UnknownKey,
                UnknownKeyPolicy::Reject => Reason::Rejected,
            },
            None,
        );
    };
    let (host, port) = split_authority(authority);
    let Some(fork) = sandbox
        .forks
        .iter()
        .find(|f| f.service.as_bytes().eq_ignore_ascii_case(&host))
    else {
        return decided(Reason::NoFork, None);
    };
    let (_, own_port) = split_authority(fork.destination.as_bytes());
    let mut to = fork.destination.as_bytes().to_vec();
    if let (None, Some(p)) = (own_port, port) {
        to.push(b':');
        to.extend(p);
    }
    decided(Reason::Fork, Some(to))
}
