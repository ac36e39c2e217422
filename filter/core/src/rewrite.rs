//! Header edits the guards make: removing routing-key members from
//! `baggage` and `tracestate` lines, setting the loop guard's hop counter,
//! and removing preview parameters from `:path`.
//!
//! These work on raw list elements (the bytes between commas), not on the
//! parsed members, for two reasons:
//! - an edge filter must remove a key wherever it hides, including past
//!   the parser's limits ([`crate::baggage::MAX_BYTES`]), where a less
//!   careful parser downstream might still find it;
//! - every element that is not removed is kept byte for byte, OWS
//!   included, so the edit changes nothing else.
//!
//! A *look-alike* is an element that, percent-decoded and
//! ASCII-lowercased, reads as a member named like a routing-key member
//! ([`looks_like`]): `SD-Routing-Key=K`, `%73d-routing-key=K` and
//! `sd-routing-key%3DK` all are. Properties are never keys (W3C Baggage
//! §3.2.1), so `a=1;sd-routing-key=K` is kept.
//!
//! Every function writes into a buffer the caller owns and reports when
//! the result would not fit. Never allocates; never panics.

use alloc::boxed::Box;

use crate::lines::trim_ows;

/// The baggage member that carries the loop guard's hop counter.
pub const HOPS_MEMBER: &[u8] = b"laneway-hops";
/// The longest hop counter read (six digits).
pub const MAX_HOP_DIGITS: usize = 6;
/// The longest line an edit writes; a longer line that must be edited is
/// removed whole (an edge filter cannot vouch for what it cannot rewrite).
pub const MAX_LINE: usize = 16 * 1024;

/// The key of a raw list element: up to the first `=` or `;`, OWS-trimmed.
pub fn element_key(element: &[u8]) -> &[u8] {
    let end = element
        .iter()
        .position(|&b| b == b'=' || b == b';')
        .unwrap_or(element.len());
    trim_ows(&element[..end])
}

use crate::percent::hex;

/// Whether the raw list element `element` reads as a member named
/// `name` once percent-decoded and ASCII-lowercased: OWS, then `name`,
/// then OWS and a decoded `=` or `;` or the end. So `SD-Routing-Key=K`,
/// `%73d-routing-key=K` and `sd-routing-key%3DK` (an encoded `=`, which a
/// careless decoder downstream would split on) all read as
/// `sd-routing-key`. `name` is a configured member name (lowercase).
pub fn looks_like(element: &[u8], name: &[u8]) -> bool {
    let mut bytes = Decoded { raw: element, i: 0 }.skip_while(|&b| crate::lines::is_ows(b));
    for &want in name {
        match bytes.next() {
            Some(b) if b.to_ascii_lowercase() == want => {}
            _ => return false,
        }
    }
    match bytes.find(|&b| !crate::lines::is_ows(b)) {
        None | Some(b'=') | Some(b';') => true,
        Some(_) => false,
    }
}

/// Bytes of a raw element, `%XX` decoded (a malformed escape is literal).
struct Decoded<'h> {
    raw: &'h [u8],
    i: usize,
}

impl Iterator for Decoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let b = *self.raw.get(self.i)?;
        if b == b'%'
            && let (Some(h), Some(l)) = (
                self.raw.get(self.i + 1).copied().and_then(hex),
                self.raw.get(self.i + 2).copied().and_then(hex),
            )
        {
            self.i += 3;
            return Some(h * 16 + l);
        }
        self.i += 1;
        Some(b)
    }
}

/// Whether the raw element `element` is a look-alike of any of `names`.
pub fn is_lookalike(element: &[u8], names: &[Box<str>]) -> bool {
    names.iter().any(|n| looks_like(element, n.as_bytes()))
}

/// Whether any element of `lines` is a look-alike of `names`. Reads every
/// byte of every line, with no limit but the lines' own length.
pub fn has_lookalike<'h>(lines: impl Iterator<Item = &'h [u8]>, names: &[Box<str>]) -> bool {
    lines
        .into_iter()
        .any(|line| line.split(|&b| b == b',').any(|el| is_lookalike(el, names)))
}

/// Whether any element of `lines` is a look-alike of `names` other than
/// exactly `keep.0 = keep.1` (the signed member: its own name, OWS around
/// the `=`, its own value, any properties). Reads every byte.
pub fn has_other_lookalike<'h>(
    lines: impl Iterator<Item = &'h [u8]>,
    names: &[Box<str>],
    keep: (&[u8], &[u8]),
) -> bool {
    lines.into_iter().any(|line| {
        line.split(|&b| b == b',')
            .any(|el| is_lookalike(el, names) && !is_member(el, keep))
    })
}

/// Whether the raw element is exactly member `keep.0` with value `keep.1`.
fn is_member(element: &[u8], (name, value): (&[u8], &[u8])) -> bool {
    let el = trim_ows(element);
    let Some(eq) = el.iter().position(|&b| b == b'=') else {
        return false;
    };
    let rest = trim_ows(&el[eq + 1..]);
    let end = rest.iter().position(|&b| b == b';').unwrap_or(rest.len());
    trim_ows(&el[..eq]) == name && trim_ows(&rest[..end]) == value
}

/// The loop guard's counter: the largest `laneway-hops` value in the
/// baggage lines (so a stale copy cannot hide a newer one). `None` when no
/// valid counter is present.
pub fn hop_count<'h>(lines: impl Iterator<Item = &'h [u8]>) -> Option<u32> {
    let mut best: Option<u32> = None;
    for line in lines {
        for el in line.split(|&b| b == b',') {
            if element_key(el) != HOPS_MEMBER {
                continue;
            }
            let Some(eq) = el.iter().position(|&b| b == b'=') else {
                continue;
            };
            let rest = &el[eq + 1..];
            let end = rest.iter().position(|&b| b == b';').unwrap_or(rest.len());
            let digits = trim_ows(&rest[..end]);
            if digits.is_empty()
                || digits.len() > MAX_HOP_DIGITS
                || !digits.iter().all(u8::is_ascii_digit)
            {
                continue;
            }
            let n = digits
                .iter()
                .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
            best = Some(best.map_or(n, |b| b.max(n)));
        }
    }
    best
}

/// What [`edit_line`] did with one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineEdit {
    /// Nothing to change: keep the line as it is.
    Unchanged,
    /// The edited line is the first `n` bytes of the buffer.
    Rewritten(usize),
    /// Nothing is left but OWS and commas: remove the line.
    Empty,
    /// The edited line would be longer than the buffer.
    TooLong,
}

/// The edit of one line: what to do, and whether the hop counter was set
/// in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edited {
    /// The line's fate.
    pub edit: LineEdit,
    /// The hop counter was found and set in this line.
    pub hops_set: bool,
}

/// Bytes written into a buffer the caller owns; a part that does not fit
/// is dropped, with everything after it, and remembered.
pub struct Writer<'o> {
    out: &'o mut [u8],
    n: usize,
    overflow: bool,
}

impl<'o> Writer<'o> {
    /// An empty text in `out`.
    pub fn new(out: &'o mut [u8]) -> Writer<'o> {
        Writer {
            out,
            n: 0,
            overflow: false,
        }
    }

    /// Appends `bytes`, if they fit.
    pub fn put(&mut self, bytes: &[u8]) -> &mut Self {
        match self.out.get_mut(self.n..self.n + bytes.len()) {
            Some(dst) if !self.overflow => {
                dst.copy_from_slice(bytes);
                self.n += bytes.len();
            }
            _ => self.overflow = true,
        }
        self
    }

    /// Appends `n` in decimal.
    pub fn num(&mut self, n: u32) -> &mut Self {
        let mut digits = [0u8; 10];
        self.put(decimal(n, &mut digits))
    }

    /// What was written.
    pub fn written(&self) -> &[u8] {
        &self.out[..self.n]
    }
}

/// Writes `n` in decimal into `buf`, returning the digits.
pub fn decimal(n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Edits one `baggage` or `tracestate` line into `out`: drops every
/// look-alike of `strip` (when given) and sets the first `laneway-hops`
/// element to `hops` (when given; later copies are dropped). Every other
/// element is copied byte for byte, commas between.
pub fn edit_line(
    line: &[u8],
    strip: Option<&[Box<str>]>,
    hops: Option<u32>,
    out: &mut [u8],
) -> Edited {
    let mut w = Writer::new(out);
    let mut changed = false;
    let mut hops_set = false;
    let mut first = true;
    let mut only_ows = true;
    for el in line.split(|&b| b == b',') {
        let key = element_key(el);
        if let Some(names) = strip
            && is_lookalike(el, names)
        {
            changed = true;
            continue;
        }
        let replacement = match hops {
            Some(n) if key == HOPS_MEMBER => {
                changed = true;
                if hops_set {
                    continue;
                }
                hops_set = true;
                Some(n)
            }
            _ => None,
        };
        if !first {
            w.put(b",");
        }
        first = false;
        match replacement {
            Some(n) => {
                w.put(HOPS_MEMBER);
                w.put(b"=");
                w.num(n);
                only_ows = false;
            }
            None => {
                w.put(el);
                only_ows &= trim_ows(el).is_empty();
            }
        }
    }
    let edit = if !changed {
        LineEdit::Unchanged
    } else if only_ows {
        LineEdit::Empty
    } else if w.overflow {
        LineEdit::TooLong
    } else {
        LineEdit::Rewritten(w.n)
    };
    // A line too long to rewrite keeps (or loses) its old counter, so the
    // counter must go on a line of its own.
    let hops_set = hops_set && matches!(edit, LineEdit::Rewritten(_));
    Edited { edit, hops_set }
}

/// Writes a new baggage line into `out`: `name=key` when a key is given,
/// then `laneway-hops=N` when a count is given. `None` if it does not fit.
pub fn new_baggage_line(
    member: Option<(&[u8], &[u8])>,
    hops: Option<u32>,
    out: &mut [u8],
) -> Option<usize> {
    let mut w = Writer::new(out);
    if let Some((name, key)) = member {
        w.put(name);
        w.put(b"=");
        w.put(key);
    }
    if let Some(n) = hops {
        if w.n > 0 {
            w.put(b",");
        }
        w.put(HOPS_MEMBER);
        w.put(b"=");
        w.num(n);
    }
    (!w.overflow).then_some(w.n)
}

/// One query parameter's value in `path`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param<'h> {
    /// Not present.
    Absent,
    /// Present, with this (raw) value; every copy has the same value.
    Value(&'h [u8]),
    /// Present more than once with different values.
    Conflict,
}

fn query_pairs(path: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let query = match path.iter().position(|&b| b == b'?') {
        Some(q) => &path[q + 1..],
        None => &path[path.len()..],
    };
    query
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(eq) => (&p[..eq], &p[eq + 1..]),
            None => (p, &p[p.len()..]),
        })
}

/// The value of query parameter `name` in `path`.
pub fn query_param<'h>(path: &'h [u8], name: &[u8]) -> Param<'h> {
    let mut found = Param::Absent;
    for (k, v) in query_pairs(path) {
        if k != name {
            continue;
        }
        found = match found {
            Param::Absent => Param::Value(v),
            Param::Value(first) if first == v => Param::Value(first),
            _ => Param::Conflict,
        };
    }
    found
}

/// Writes `path` without the query parameters named in `names` (empty
/// names name nothing) into `out`; the `?` goes too when nothing is left.
/// `None` when `path` has none of them. A result that does not fit loses
/// its whole query, and a path whose part before the `?` does not fit
/// becomes `/`: a parameter that must not pass never does.
pub fn remove_params(path: &[u8], names: &[&[u8]], out: &mut [u8]) -> Option<usize> {
    let q = path.iter().position(|&b| b == b'?')?;
    let removed = |p: &[u8]| {
        let k = p.split(|&b| b == b'=').next().unwrap_or(p);
        names.iter().any(|n| !n.is_empty() && *n == k)
    };
    if !path[q + 1..].split(|&b| b == b'&').any(removed) {
        return None;
    }
    let mut w = Writer::new(out);
    w.put(&path[..q]);
    let mut first = true;
    for p in path[q + 1..].split(|&b| b == b'&') {
        if p.is_empty() || removed(p) {
            continue;
        }
        w.put(if first { b"?" } else { b"&" });
        first = false;
        w.put(p);
    }
    if !w.overflow {
        return Some(w.n);
    }
    let fallback: &[u8] = if q <= w.out.len() { &path[..q] } else { b"/" };
    let dst = w.out.get_mut(..fallback.len())?;
    dst.copy_from_slice(fallback);
    Some(fallback.len())
}

#[cfg(test)]
mod tests;
