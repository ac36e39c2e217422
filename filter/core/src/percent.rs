//! Percent-decoded values, compared and hashed without allocating.
//!
//! W3C Baggage values are percent-encoded UTF-8. A [`Value`] keeps the raw
//! bytes and decodes them lazily, byte by byte, only when a `%` (or a
//! non-ASCII byte) is present. Plain values, the common case, are compared as
//! slices.
//!
//! Decoding rules (W3C Baggage §3.2.1.1, as Laneway applies them):
//! - `%XX` with two hex digits, either case, is one byte. A `%` not followed
//!   by two hex digits is a malformed escape; [`Value::decode`] refuses it.
//! - `+` stays `+`: this is not `application/x-www-form-urlencoded`.
//! - Decoded bytes that are not valid UTF-8 become U+FFFD, with the same
//!   "maximal subpart" rule as `String::from_utf8_lossy`, so the decoded form
//!   is always valid UTF-8.
//!
//! Never allocates; never panics.

/// A header value that may need percent-decoding.
///
/// Equality ([`Value::eq_value`], [`Value::eq_bytes`]) and hashing always
/// compare the *decoded* form. The derived `PartialEq` compares raw bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value<'h> {
    raw: &'h [u8],
    /// The decoded form is the raw form (ASCII, no escapes).
    plain: bool,
    /// `%XX` sequences are escapes (false for literal values).
    escapes: bool,
}

impl<'h> Value<'h> {
    /// A percent-encoded value. `None` if an escape is malformed.
    pub fn decode(raw: &'h [u8]) -> Option<Value<'h>> {
        let mut plain = true;
        let mut i = 0;
        while i < raw.len() {
            let b = raw[i];
            if b == b'%' {
                plain = false;
                match (raw.get(i + 1), raw.get(i + 2)) {
                    (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => i += 3,
                    _ => return None,
                }
            } else {
                plain &= b.is_ascii();
                i += 1;
            }
        }
        Some(Value {
            raw,
            plain,
            escapes: !plain,
        })
    }

    /// A value the baggage parser already checked: baggage-octets only
    /// (so ASCII), with well-formed escapes iff `escaped`.
    pub(crate) fn checked(raw: &'h [u8], escaped: bool) -> Value<'h> {
        Value {
            raw,
            plain: !escaped,
            escapes: escaped,
        }
    }

    /// A value taken literally, with no percent-decoding (tracestate values).
    /// Non-ASCII bytes still read as U+FFFD.
    pub fn literal(raw: &'h [u8]) -> Value<'h> {
        Value {
            raw,
            plain: raw.is_ascii(),
            escapes: false,
        }
    }

    /// The bytes as they appeared in the header.
    pub fn raw(&self) -> &'h [u8] {
        self.raw
    }

    /// True when the decoded form is the raw form.
    pub fn is_plain(&self) -> bool {
        self.plain
    }

    /// True when the decoded value is empty.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The decoded bytes: always valid UTF-8.
    pub fn bytes(&self) -> Bytes<'h> {
        if self.plain {
            Bytes::Plain(self.raw.iter())
        } else {
            Bytes::Decoded(Lossy::new(Unescape {
                rest: self.raw.iter(),
                literal: !self.escapes,
            }))
        }
    }

    /// Decoded equality with `other`, already decoded.
    pub fn eq_bytes(&self, other: &[u8]) -> bool {
        if self.plain {
            self.raw == other
        } else {
            self.bytes().eq(other.iter().copied())
        }
    }

    /// Decoded equality with another value.
    pub fn eq_value(&self, other: &Value<'_>) -> bool {
        match (self.plain, other.plain) {
            (true, true) => self.raw == other.raw,
            (true, false) => other.eq_bytes(self.raw),
            (false, _) => self.bytes().eq(other.bytes()),
        }
    }

    /// Writes as much of the decoded value as fits into `out`, never cutting
    /// a UTF-8 sequence in half. Returns the number of bytes written and
    /// whether the whole value fit.
    pub fn write_decoded(&self, out: &mut [u8]) -> (usize, bool) {
        let mut n = 0;
        let mut bytes = self.bytes();
        while let Some(b) = bytes.next() {
            let width = utf8_width(b);
            if n + width > out.len() {
                return (n, false);
            }
            out[n] = b;
            for slot in &mut out[n + 1..n + width] {
                // A lead byte from the lossy decoder is always followed by its
                // continuation bytes, so these `unwrap_or`s never fire.
                *slot = bytes.next().unwrap_or(b'?');
            }
            n += width;
        }
        (n, true)
    }
}

fn utf8_width(lead: u8) -> usize {
    match lead {
        0xF0..=0xF7 => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Iterator over the decoded bytes of a [`Value`].
#[derive(Clone, Debug)]
pub enum Bytes<'h> {
    /// ASCII bytes with no escapes.
    Plain(core::slice::Iter<'h, u8>),
    /// Escapes decoded, then UTF-8 repaired.
    Decoded(Lossy<Unescape<'h>>),
}

impl Iterator for Bytes<'_> {
    type Item = u8;

    #[inline]
    fn next(&mut self) -> Option<u8> {
        match self {
            Bytes::Plain(it) => it.next().copied(),
            Bytes::Decoded(it) => it.next(),
        }
    }
}

/// Turns `%XX` into bytes. A malformed escape (never produced by
/// [`Value::decode`]) is passed through literally.
#[derive(Clone, Debug)]
pub struct Unescape<'h> {
    rest: core::slice::Iter<'h, u8>,
    literal: bool,
}

impl Iterator for Unescape<'_> {
    type Item = u8;

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let b = *self.rest.next()?;
        if b != b'%' || self.literal {
            return Some(b);
        }
        let s = self.rest.as_slice();
        match (
            s.first().and_then(|&h| hex(h)),
            s.get(1).and_then(|&l| hex(l)),
        ) {
            (Some(h), Some(l)) => {
                self.rest.nth(1);
                Some(h << 4 | l)
            }
            _ => Some(b'%'),
        }
    }
}

/// The value of one hex digit, either case.
pub(crate) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const REPLACEMENT: [u8; 3] = [0xEF, 0xBF, 0xBD];

/// Streams any byte iterator as valid UTF-8, replacing each maximal invalid
/// subpart with U+FFFD exactly as `String::from_utf8_lossy` does.
#[derive(Clone, Debug)]
pub struct Lossy<I> {
    inner: I,
    /// A byte read ahead that did not continue the previous sequence.
    pushed: Option<u8>,
    out: [u8; 4],
    out_pos: u8,
    out_len: u8,
}

impl<I: Iterator<Item = u8>> Lossy<I> {
    /// Wraps `inner`.
    pub fn new(inner: I) -> Self {
        Lossy {
            inner,
            pushed: None,
            out: [0; 4],
            out_pos: 0,
            out_len: 0,
        }
    }

    fn pull(&mut self) -> Option<u8> {
        self.pushed.take().or_else(|| self.inner.next())
    }

    fn emit(&mut self, bytes: &[u8]) -> u8 {
        self.out[..bytes.len()].copy_from_slice(bytes);
        self.out_pos = 1;
        self.out_len = bytes.len() as u8;
        bytes[0]
    }
}

impl<I: Iterator<Item = u8>> Iterator for Lossy<I> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        if self.out_pos < self.out_len {
            let b = self.out[self.out_pos as usize];
            self.out_pos += 1;
            return Some(b);
        }
        let lead = self.pull()?;
        if lead < 0x80 {
            return Some(lead);
        }
        // Unicode 15, table 3-7: well-formed UTF-8 byte sequences.
        let (continuations, first_lo, first_hi) = match lead {
            0xC2..=0xDF => (1, 0x80, 0xBF),
            0xE0 => (2, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
            0xED => (2, 0x80, 0x9F),
            0xF0 => (3, 0x90, 0xBF),
            0xF1..=0xF3 => (3, 0x80, 0xBF),
            0xF4 => (3, 0x80, 0x8F),
            _ => return Some(self.emit(&REPLACEMENT)),
        };
        let mut seq = [lead, 0, 0, 0];
        for (i, slot) in seq.iter_mut().enumerate().take(continuations + 1).skip(1) {
            let (lo, hi) = if i == 1 {
                (first_lo, first_hi)
            } else {
                (0x80, 0xBF)
            };
            match self.pull() {
                Some(b) if (lo..=hi).contains(&b) => *slot = b,
                other => {
                    self.pushed = other;
                    return Some(self.emit(&REPLACEMENT));
                }
            }
        }
        Some(self.emit(&seq[..=continuations]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn naive(raw: &[u8]) -> Option<Vec<u8>> {
        crate::naive::percent(raw)
    }

    fn decoded(raw: &[u8]) -> Option<Vec<u8>> {
        Value::decode(raw).map(|v| v.bytes().collect())
    }

    #[test]
    fn decodes_escapes_in_either_case() {
        assert_eq!(decoded(b"%71wblp").unwrap(), b"qwblp");
        assert_eq!(decoded(b"a%2Cb%2cc").unwrap(), b"a,b,c");
        assert_eq!(decoded(b"%C3%A9").unwrap(), "é".as_bytes());
    }

    #[test]
    fn plus_stays_plus() {
        assert_eq!(decoded(b"a+b").unwrap(), b"a+b");
        assert_eq!(decoded(b"a%2Bb").unwrap(), b"a+b");
    }

    #[test]
    fn malformed_escapes_are_refused() {
        for raw in [&b"%"[..], b"%4", b"%zz", b"ab%4g", b"%%41"] {
            assert_eq!(Value::decode(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn invalid_utf8_becomes_replacement_character() {
        assert_eq!(decoded(b"%FF").unwrap(), "\u{FFFD}".as_bytes());
        assert_eq!(decoded(b"%C3").unwrap(), "\u{FFFD}".as_bytes());
        assert_eq!(decoded(b"%E2%82x").unwrap(), "\u{FFFD}x".as_bytes());
        assert_eq!(
            decoded(b"%ED%A0%80").unwrap(),
            "\u{FFFD}\u{FFFD}\u{FFFD}".as_bytes()
        );
    }

    #[test]
    fn equality_is_on_decoded_form() {
        let a = Value::decode(b"%71wblp48fpmb30").unwrap();
        let b = Value::decode(b"qwblp48fpmb30").unwrap();
        assert!(a.eq_bytes(b"qwblp48fpmb30"));
        assert!(a.eq_value(&b) && b.eq_value(&a));
        assert!(!a.eq_bytes(b"qwblp48fpmb3"));
        assert!(!a.eq_bytes(b"qwblp48fpmb300"));
    }

    #[test]
    fn write_decoded_never_splits_a_character() {
        let v = Value::decode(b"ab%C3%A9").unwrap();
        let mut buf = [0u8; 3];
        assert_eq!(v.write_decoded(&mut buf), (2, false));
        let mut buf = [0u8; 4];
        assert_eq!(v.write_decoded(&mut buf), (4, true));
        assert_eq!(&buf, "abé".as_bytes());
    }

    proptest! {
        #[test]
        fn decode_matches_naive_oracle(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(decoded(&raw), naive(&raw));
        }

        #[test]
        fn decode_matches_oracle_on_escape_heavy_input(
            parts in proptest::collection::vec(
                prop_oneof![
                    any::<u8>().prop_map(|b| alloc::format!("%{b:02X}")),
                    any::<u8>().prop_map(|b| alloc::format!("%{b:02x}")),
                    "[a-z%+]{0,3}",
                ],
                0..24,
            )
        ) {
            let raw: String = parts.concat();
            prop_assert_eq!(decoded(raw.as_bytes()), naive(raw.as_bytes()));
        }

        #[test]
        fn decoded_output_is_always_utf8(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            let v = Value::literal(&raw);
            let out: Vec<u8> = v.bytes().collect();
            prop_assert!(core::str::from_utf8(&out).is_ok());
            prop_assert_eq!(out, String::from_utf8_lossy(&raw).into_owned().into_bytes());
        }

        #[test]
        fn eq_value_agrees_with_decoded_bytes(a in "[a-c%0-9A-F]{0,12}", b in "[a-c%0-9A-F]{0,12}") {
            if let (Some(va), Some(vb)) = (Value::decode(a.as_bytes()), Value::decode(b.as_bytes())) {
                let da: Vec<u8> = va.bytes().collect();
                let db: Vec<u8> = vb.bytes().collect();
                prop_assert_eq!(va.eq_value(&vb), da == db);
                prop_assert_eq!(va.eq_bytes(&db), da == db);
            }
        }

        #[test]
        fn write_decoded_is_a_char_aligned_prefix(raw in "[a-z%0-9A-F]{0,24}", cap in 0usize..16) {
            if let Some(v) = Value::decode(raw.as_bytes()) {
                let full: Vec<u8> = v.bytes().collect();
                let mut buf = [0u8; 16];
                let (n, whole) = v.write_decoded(&mut buf[..cap]);
                prop_assert!(full.starts_with(&buf[..n]));
                prop_assert!(core::str::from_utf8(&buf[..n]).is_ok());
                prop_assert_eq!(whole, n == full.len());
            }
        }
    }
}
