//! W3C Baggage list members, read from one or more `baggage` header lines.
//!
//! Grammar (W3C Baggage, §3.2.1), with OWS = *( SP / HTAB ):
//!
//! ```text
//! baggage-string = list-member 0*179( OWS "," OWS list-member )
//! list-member    = key OWS "=" OWS value *( OWS ";" OWS property )
//! property       = key OWS "=" OWS value / key OWS
//! key            = token                       ; RFC 9110 tchar+
//! value          = *baggage-octet              ; percent-encoded UTF-8
//! baggage-octet  = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
//! ```
//!
//! Decisions made here:
//! - The value runs from after the first `=` to the first OWS or `;`, so a
//!   value may contain `=`; an empty value is valid.
//! - Properties belong to their member; they are never members themselves.
//! - An element that breaks the grammar is yielded as [`Entry::Invalid`]
//!   with the reason, and iteration goes on: the valid members still count.
//! - Limits: the first [`MAX_MEMBERS`] elements, within the first
//!   [`MAX_BYTES`] of the comma-joined list, each at most
//!   [`MAX_MEMBER_BYTES`] long. A member beyond a limit is ignored whole,
//!   never partially read; [`Members::dropped`] says which limit stopped
//!   iteration.
//!
//! Never allocates; never panics.

use core::fmt;

use crate::class;
use crate::lines::{Elements, elements, is_ows, trim_ows};
use crate::percent::Value;

/// At most this many list members are read.
pub const MAX_MEMBERS: usize = 180;
/// Only members that end within this many bytes of the comma-joined list are read.
pub const MAX_BYTES: usize = 8192;
/// A longer member is invalid.
pub const MAX_MEMBER_BYTES: usize = 4096;

/// A valid list member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member<'h> {
    /// The key, exactly as sent (keys are not percent-decoded).
    pub key: &'h [u8],
    /// The value, decoded on demand.
    pub value: Value<'h>,
    /// Everything after the first `;`, OWS-trimmed; empty when there are no
    /// properties. Iterate with [`Member::properties`].
    pub properties: &'h [u8],
}

impl<'h> Member<'h> {
    /// The member's properties, each OWS-trimmed, as sent.
    pub fn properties(&self) -> impl Iterator<Item = &'h [u8]> + Clone + 'h {
        properties(self.properties)
    }
}

/// The properties in `all` (a [`Member::properties`] slice), each
/// OWS-trimmed, as sent.
pub fn properties(all: &[u8]) -> impl Iterator<Item = &[u8]> + Clone {
    all.split(|&b| b == b';')
        .map(trim_ows)
        .filter(move |_| !all.is_empty())
}

/// Why an element of the list is not a valid member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Invalid {
    /// The key is missing or is not an RFC 9110 token.
    Key,
    /// No `=` follows the key.
    NoEquals,
    /// The value holds a byte that is not a baggage-octet.
    Value,
    /// The value holds a `%` not followed by two hex digits.
    Escape,
    /// A property is empty, has a bad key, or a bad value.
    Property,
    /// The member is longer than [`MAX_MEMBER_BYTES`].
    TooLong,
}

impl Invalid {
    /// A stable snake_case name, for counters and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Invalid::Key => "bad_key",
            Invalid::NoEquals => "no_equals",
            Invalid::Value => "bad_value",
            Invalid::Escape => "bad_escape",
            Invalid::Property => "bad_property",
            Invalid::TooLong => "too_long",
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Invalid::Key => "the key is missing or not a token",
            Invalid::NoEquals => "no '=' after the key",
            Invalid::Value => "the value holds a byte that is not a baggage-octet",
            Invalid::Escape => "the value holds a malformed percent escape",
            Invalid::Property => "a property is malformed",
            Invalid::TooLong => "the member is longer than 4096 bytes",
        })
    }
}

/// Which limit stopped iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// More than [`MAX_MEMBERS`] elements.
    Members,
    /// An element did not end within [`MAX_BYTES`].
    Bytes,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Members => "more than 180 list members",
            Limit::Bytes => "longer than 8192 bytes",
        })
    }
}

/// One element of the baggage list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry<'h> {
    /// A valid member.
    Member(Member<'h>),
    /// An element that breaks the grammar, skipped.
    Invalid {
        /// The element, OWS-trimmed.
        raw: &'h [u8],
        /// Why it is invalid.
        why: Invalid,
    },
}

/// Iterator over the elements of a baggage list. Create it with [`members`].
#[derive(Clone, Debug)]
pub struct Members<'h, L> {
    elements: Elements<'h, L>,
    count: usize,
    dropped: Option<Limit>,
}

/// Reads the baggage list formed by `lines`, in order.
///
/// ```
/// use laneway_core::baggage::{members, Entry};
/// let lines: [&[u8]; 1] = [b"user=alice;sd-routing-key=K, sd-routing-key = %4B"];
/// let keys: Vec<_> = members(lines.iter().copied())
///     .filter_map(|e| match e { Entry::Member(m) => Some(m.key), _ => None })
///     .collect();
/// assert_eq!(keys, [&b"user"[..], b"sd-routing-key"]);
/// ```
pub fn members<'h, L>(lines: L) -> Members<'h, L>
where
    L: Iterator<Item = &'h [u8]>,
{
    Members {
        elements: elements(lines, MAX_BYTES),
        count: 0,
        dropped: None,
    }
}

impl<L> Members<'_, L> {
    /// After iteration: the limit that made the rest of the list unread.
    pub fn dropped(&self) -> Option<Limit> {
        self.dropped
    }
}

impl<'h, L> Iterator for Members<'h, L>
where
    L: Iterator<Item = &'h [u8]>,
{
    type Item = Entry<'h>;

    fn next(&mut self) -> Option<Entry<'h>> {
        if self.dropped.is_some() {
            return None;
        }
        let Some(element) = self.elements.next() else {
            if self.elements.overflowed() {
                self.dropped = Some(Limit::Bytes);
            }
            return None;
        };
        if self.count == MAX_MEMBERS {
            self.dropped = Some(Limit::Members);
            return None;
        }
        self.count += 1;
        let raw = element.bytes;
        Some(match parse_member(raw) {
            Ok(member) => Entry::Member(member),
            Err(why) => Entry::Invalid { raw, why },
        })
    }
}

/// Parses one list member, already OWS-trimmed.
pub fn parse_member(m: &[u8]) -> Result<Member<'_>, Invalid> {
    if m.len() > MAX_MEMBER_BYTES {
        return Err(Invalid::TooLong);
    }
    let key_end = class::tchars(m);
    if key_end == 0 {
        return Err(Invalid::Key);
    }
    let mut i = skip_ows(m, key_end);
    match m.get(i) {
        Some(b'=') => {}
        None | Some(b';') => return Err(Invalid::NoEquals),
        Some(_) => return Err(Invalid::Key),
    }
    // One pass over the value: plain octets eight at a time, escapes
    // checked where they stand. A bad escape is reported only if the
    // member's structure is otherwise sound.
    let value_start = skip_ows(m, i + 1);
    i = value_start;
    let (mut escaped, mut bad_escape) = (false, false);
    loop {
        i += class::plain_octets(&m[i..]);
        if m.get(i) != Some(&b'%') {
            break;
        }
        escaped = true;
        let hex = |j: usize| m.get(j).is_some_and(u8::is_ascii_hexdigit);
        bad_escape |= !(hex(i + 1) && hex(i + 2));
        i += 1;
    }
    let value_raw = &m[value_start..i];
    i = skip_ows(m, i);
    let properties = match m.get(i) {
        None => &m[m.len()..],
        Some(b';') => trim_ows(&m[i + 1..]),
        Some(_) => return Err(Invalid::Value),
    };
    if bad_escape {
        return Err(Invalid::Escape);
    }
    if i < m.len() && !properties.split(|&b| b == b';').all(is_property) {
        return Err(Invalid::Property);
    }
    Ok(Member {
        key: &m[..key_end],
        value: Value::checked(value_raw, escaped),
        properties,
    })
}

/// `property = key OWS "=" OWS value / key OWS`, with OWS around it.
fn is_property(p: &[u8]) -> bool {
    let p = trim_ows(p);
    let key_end = class::tchars(p);
    if key_end == 0 {
        return false;
    }
    let i = skip_ows(p, key_end);
    match p.get(i) {
        None => true,
        Some(b'=') => {
            let value = &p[skip_ows(p, i + 1)..];
            value.iter().all(|&b| is_baggage_octet(b)) && Value::decode(value).is_some()
        }
        Some(_) => false,
    }
}

fn skip_ows(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && is_ows(bytes[i]) {
        i += 1;
    }
    i
}

pub use crate::class::{is_baggage_octet, is_tchar};

#[cfg(test)]
mod tests;
