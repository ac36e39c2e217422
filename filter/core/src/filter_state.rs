//! The filter-state entry the filter writes for access logs
//! (`%FILTER_STATE(wasm.laneway:PLAIN)%`), written and read by this one
//! codec: the filter encodes with [`encode`], the simulator and the demos
//! decode with [`decode`].
//!
//! The entry is logfmt, its fields always in this order:
//!
//! ```text
//! decision=<reason> [key=<value>] [fork=<value>]
//! ```
//!
//! - `decision` is a [`Reason`] name.
//! - `key` is the routing key the request carried, decoded, cut to at most
//!   [`MAX_KEY_TEXT`] bytes; present whenever the request had a key.
//! - `fork` is the `:authority` a fork decision wrote.
//!
//! A value is written bare when it is non-empty and only ASCII letters,
//! digits and `-._~:`; otherwise it is quoted, with `"` and `\` escaped by a
//! backslash and every control byte (below 0x20, and 0x7f) written `\xHH`.
//! So no value, whatever a client put in its baggage, can end a field, start
//! another, or break an access-log line: the property tests below prove
//! that [`decode`] gives back exactly what [`encode`] was given.
//!
//! Never allocates; never panics on any bytes.

use core::fmt;

use crate::authority::MAX_FORK_AUTHORITY;
use crate::decide::Reason;

/// Longest key text an entry (or a local reply) carries, in bytes.
pub const MAX_KEY_TEXT: usize = 256;

/// The longest entry [`encode`] writes: every key byte escaped (four bytes
/// each), the longest fork quoted and escaped, and the field names.
pub const MAX_ENTRY: usize = 64 + 4 * MAX_KEY_TEXT + 4 * MAX_FORK_AUTHORITY;

/// One entry, as the filter writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Why the request went where it went.
    pub reason: Reason,
    /// The routing key, decoded (the encoder cuts it at [`MAX_KEY_TEXT`]).
    pub key: Option<&'a [u8]>,
    /// The rewritten `:authority` of a fork decision.
    pub fork: Option<&'a [u8]>,
}

fn is_bare(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:".contains(&b)
}

/// Writes bytes into a fixed buffer, dropping what does not fit (which
/// [`MAX_ENTRY`] rules out for any entry).
struct Out<'o> {
    buf: &'o mut [u8],
    n: usize,
}

impl Out<'_> {
    fn put(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if let Some(slot) = self.buf.get_mut(self.n) {
                *slot = b;
                self.n += 1;
            }
        }
    }

    fn value(&mut self, value: &[u8]) {
        if !value.is_empty() && value.iter().all(|&b| is_bare(b)) {
            self.put(value);
            return;
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.put(b"\"");
        for &c in value {
            match c {
                b'"' | b'\\' => self.put(&[b'\\', c]),
                c if c < 0x20 || c == 0x7f => self.put(&[
                    b'\\',
                    b'x',
                    HEX[usize::from(c >> 4)],
                    HEX[usize::from(c & 15)],
                ]),
                c => self.put(&[c]),
            }
        }
        self.put(b"\"");
    }
}

/// Encodes `entry` into `out`; returns the length written.
pub fn encode(entry: &Entry<'_>, out: &mut [u8; MAX_ENTRY]) -> usize {
    let mut o = Out { buf: out, n: 0 };
    o.put(b"decision=");
    o.put(entry.reason.as_str().as_bytes());
    if let Some(key) = entry.key {
        o.put(b" key=");
        o.value(&key[..key.len().min(MAX_KEY_TEXT)]);
    }
    if let Some(fork) = entry.fork {
        o.put(b" fork=");
        o.value(&fork[..fork.len().min(MAX_FORK_AUTHORITY)]);
    }
    o.n
}

/// Why an entry could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The entry does not start with `decision=`.
    NoDecision,
    /// `decision=` names no [`Reason`].
    UnknownReason,
    /// A field other than `key` and `fork` (after `decision`, in that
    /// order), or a separator other than one space.
    UnexpectedField,
    /// A quoted value is not closed, or holds a bad escape.
    BadQuoting,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::NoDecision => "the entry does not start with decision=",
            DecodeError::UnknownReason => "decision= names no known reason",
            DecodeError::UnexpectedField => {
                "a field other than key= and fork=, in that order, one space apart"
            }
            DecodeError::BadQuoting => "a quoted value is unclosed or has a bad escape",
        })
    }
}

/// A value as it stands in an entry: bare, or quoted with escapes. Read it
/// with [`Text::bytes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Text<'a> {
    raw: &'a [u8],
    quoted: bool,
}

impl<'a> Text<'a> {
    /// The value's bytes, escapes undone.
    pub fn bytes(&self) -> Unescaped<'a> {
        Unescaped {
            raw: self.raw,
            quoted: self.quoted,
        }
    }

    /// Whether the value is exactly `other`.
    pub fn eq_bytes(&self, other: &[u8]) -> bool {
        self.bytes().eq(other.iter().copied())
    }
}

/// The bytes of a [`Text`], escapes undone.
#[derive(Clone, Debug)]
pub struct Unescaped<'a> {
    raw: &'a [u8],
    quoted: bool,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

impl Iterator for Unescaped<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let (&first, rest) = self.raw.split_first()?;
        if !self.quoted || first != b'\\' {
            self.raw = rest;
            return Some(first);
        }
        // `decode` checked every escape, so these fall through only for a
        // `Text` it did not make (there are none).
        match rest {
            [b'x', h, l, tail @ ..] => {
                self.raw = tail;
                Some(hex(*h)? << 4 | hex(*l)?)
            }
            [c, tail @ ..] => {
                self.raw = tail;
                Some(*c)
            }
            [] => None,
        }
    }
}

/// One entry, as read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The reason.
    pub reason: Reason,
    /// The key, if the entry has one.
    pub key: Option<Text<'a>>,
    /// The fork's `:authority`, if the entry has one.
    pub fork: Option<Text<'a>>,
}

/// Reads a value at the start of `text`; returns it and the rest. Only the
/// encoder's own spelling is accepted (bare when it can be; escapes only
/// for `"`, `\` and control bytes), so every accepted entry has one
/// decoding and re-encodes to itself.
fn value(text: &[u8]) -> Result<(Text<'_>, &[u8]), DecodeError> {
    if text.first() != Some(&b'"') {
        let end = text.iter().position(|&b| b == b' ').unwrap_or(text.len());
        let raw = &text[..end];
        if raw.is_empty() || !raw.iter().all(|&b| is_bare(b)) {
            return Err(DecodeError::BadQuoting);
        }
        return Ok((Text { raw, quoted: false }, &text[end..]));
    }
    let body = &text[1..];
    let mut i = 0;
    let mut needs_quotes = false;
    loop {
        match body.get(i) {
            None => return Err(DecodeError::BadQuoting),
            Some(b'"') => break,
            Some(b'\\') => match body.get(i + 1..) {
                Some([b'x', h, l, ..]) => match (hex(*h), hex(*l)) {
                    (Some(h), Some(l)) if (h << 4 | l) < 0x20 || (h << 4 | l) == 0x7f => i += 4,
                    _ => return Err(DecodeError::BadQuoting),
                },
                Some([b'"' | b'\\', ..]) => i += 2,
                _ => return Err(DecodeError::BadQuoting),
            },
            Some(&c) if c < 0x20 || c == 0x7f => return Err(DecodeError::BadQuoting),
            Some(&c) => {
                needs_quotes |= !is_bare(c);
                i += 1;
                continue;
            }
        }
        needs_quotes = true;
    }
    if i > 0 && !needs_quotes {
        // The encoder writes this value bare.
        return Err(DecodeError::BadQuoting);
    }
    Ok((
        Text {
            raw: &body[..i],
            quoted: true,
        },
        &body[i + 1..],
    ))
}

/// Reads ` NAME=value` at the start of `rest`, if it is there.
fn field<'a>(name: &[u8], rest: &mut &'a [u8]) -> Result<Option<Text<'a>>, DecodeError> {
    let Some(after) = rest.strip_prefix(b" ").and_then(|r| r.strip_prefix(name)) else {
        return Ok(None);
    };
    let (v, tail) = value(after)?;
    *rest = tail;
    Ok(Some(v))
}

/// Reads an entry. Strict: fields in the documented order, one space
/// apart, values spelled as [`encode`] spells them; anything else is an
/// error, so a forged field cannot pass for a real one.
pub fn decode(text: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    let rest = text
        .strip_prefix(b"decision=")
        .ok_or(DecodeError::NoDecision)?;
    let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let reason = Reason::from_name(&rest[..end]).ok_or(DecodeError::UnknownReason)?;
    let mut rest = &rest[end..];
    let key = field(b"key=", &mut rest)?;
    let fork = field(b"fork=", &mut rest)?;
    if !rest.is_empty() {
        return Err(DecodeError::UnexpectedField);
    }
    Ok(Decoded { reason, key, fork })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn roundtrip(reason: Reason, key: Option<&[u8]>, fork: Option<&[u8]>) -> Vec<u8> {
        let mut buf = [0u8; MAX_ENTRY];
        let n = encode(&Entry { reason, key, fork }, &mut buf);
        buf[..n].to_vec()
    }

    #[test]
    fn writes_the_documented_shape() {
        assert_eq!(
            roundtrip(
                Reason::Fork,
                Some(b"qwblp48fpmb30"),
                Some(b"location-qwblp48fpmb30:8083")
            ),
            b"decision=fork key=qwblp48fpmb30 fork=location-qwblp48fpmb30:8083"
        );
        assert_eq!(
            roundtrip(Reason::Malformed, None, None),
            b"decision=malformed"
        );
        assert_eq!(
            roundtrip(Reason::UnknownKey, Some(b"x\" fork=evil\\"), None),
            br#"decision=unknown_key key="x\" fork=evil\\""#
        );
        assert_eq!(
            roundtrip(Reason::UnknownKey, Some(b"k\ndecision=fork\r\x7f\t"), None),
            br#"decision=unknown_key key="k\x0adecision=fork\x0d\x7f\x09""#
        );
        assert_eq!(
            roundtrip(Reason::NoFork, Some(b""), None),
            br#"decision=no_fork key="""#
        );
    }

    #[test]
    fn refuses_what_the_encoder_never_writes() {
        for bad in [
            &b""[..],
            b"fork",
            b"decision=",
            b"decision=forked",
            b"decision=fork  key=a",
            b"decision=fork fork=a key=b",
            b"decision=fork key=a key=b",
            b"decision=fork key=\"a",
            b"decision=fork key=\"a\\q\"",
            b"decision=fork key=\"a\\x0\"",
            b"decision=fork key=a\"b",
            b"decision=fork key=",
            b"decision=fork other=1",
            b"decision=fork key=\"a\nb\"",
            b"decision=fork key=\"a\"b",
            b"decision=fork key=\"abc\"",
            b"decision=fork key=\"\\x41\"",
            b"decision=fork key=\"a\\x0A\"",
        ] {
            assert!(decode(bad).is_err(), "{:?}", core::str::from_utf8(bad));
        }
    }

    #[test]
    fn the_longest_key_and_fork_fit() {
        let key = [b'\n'; MAX_KEY_TEXT];
        let fork = [b'"'; MAX_FORK_AUTHORITY];
        let entry = roundtrip(Reason::Fork, Some(&key), Some(&fork));
        assert!(entry.len() <= MAX_ENTRY);
        let d = decode(&entry).unwrap();
        assert!(d.key.unwrap().eq_bytes(&key));
        assert!(d.fork.unwrap().eq_bytes(&fork));
    }

    fn reason() -> impl Strategy<Value = Reason> {
        proptest::sample::select(Reason::ALL.to_vec())
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    proptest! {
        /// What the filter writes, the simulator reads back exactly.
        #[test]
        fn decode_inverts_encode(
            reason in reason(),
            key in proptest::option::of(bytes(MAX_KEY_TEXT)),
            fork in proptest::option::of(bytes(64)),
        ) {
            let entry = roundtrip(reason, key.as_deref(), fork.as_deref());
            let d = decode(&entry).map_err(|e| TestCaseError::fail(alloc::format!("{e}")))?;
            prop_assert_eq!(d.reason, reason);
            prop_assert_eq!(d.key.map(|t| t.bytes().collect::<Vec<u8>>()), key);
            prop_assert_eq!(d.fork.map(|t| t.bytes().collect::<Vec<u8>>()), fork);
        }

        /// No key can start a line or a field: the entry has no control
        /// byte, and decoding it finds only the fields that were written.
        #[test]
        fn no_key_forges_a_field_or_a_line(reason in reason(), key in bytes(300)) {
            let entry = roundtrip(reason, Some(&key), None);
            prop_assert!(!entry.iter().any(|&b| b < 0x20 || b == 0x7f));
            let d = decode(&entry).map_err(|e| TestCaseError::fail(alloc::format!("{e}")))?;
            prop_assert_eq!(d.reason, reason);
            prop_assert!(d.fork.is_none());
            let cut = &key[..key.len().min(MAX_KEY_TEXT)];
            prop_assert!(d.key.is_some_and(|k| k.eq_bytes(cut)));
        }

        #[test]
        fn decode_never_panics(text in bytes(200)) {
            if let Ok(d) = decode(&text) {
                // Anything accepted re-encodes to itself.
                let key: Option<Vec<u8>> = d.key.map(|t| t.bytes().collect());
                let fork: Option<Vec<u8>> = d.fork.map(|t| t.bytes().collect());
                prop_assert_eq!(roundtrip(d.reason, key.as_deref(), fork.as_deref()), text);
            }
        }
    }
}
