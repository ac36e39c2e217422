//! Comma-separated lists spread over several header lines.
//!
//! RFC 9110 §5.3: several field lines with the same name form one list, as if
//! joined with commas. [`elements`] walks such a list *without* joining it. It
//! yields each non-empty element, OWS-trimmed, together with its byte offsets
//! in the comma-joined list, so a caller can apply a limit to the list as a
//! whole ("the first 8192 bytes").
//!
//! Design decision: an element that does not end within the limit is never
//! partially read. The iterator stops before it and records that it
//! [overflowed](Elements::overflowed). The search for the next comma never
//! looks past the limit, so the work per list is bounded by the limit and not
//! by the header size.
//!
//! Never allocates; never panics.

/// One non-empty element of a comma-separated list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Element<'h> {
    /// The element with optional white space (SP / HTAB) trimmed on both
    /// sides. Never empty.
    pub bytes: &'h [u8],
    /// Offset of the element's first byte, before trimming, in the list as if
    /// its lines were joined with a single `,`.
    pub start: usize,
    /// Offset one past the element's last byte, before trimming.
    pub end: usize,
}

/// Iterator over the non-empty elements of a list given as header lines.
///
/// Create it with [`elements`]. Empty and white-space-only elements are
/// skipped: RFC 9110 §5.6.1 asks recipients to ignore them.
#[derive(Clone, Debug)]
pub struct Elements<'h, L> {
    lines: L,
    /// Unread rest of the current line.
    rest: &'h [u8],
    /// Offset of `rest[0]` in the joined list.
    pos: usize,
    /// Offset of the next line's first byte in the joined list.
    next_line: usize,
    in_line: bool,
    limit: usize,
    overflowed: bool,
}

/// Walks the elements of the list formed by `lines`, reading only elements
/// that end within the first `limit` bytes of the comma-joined list.
///
/// Pass `usize::MAX` for no limit.
pub fn elements<'h, L>(lines: L, limit: usize) -> Elements<'h, L>
where
    L: Iterator<Item = &'h [u8]>,
{
    Elements {
        lines,
        rest: &[],
        pos: 0,
        next_line: 0,
        in_line: false,
        limit,
        overflowed: false,
    }
}

impl<L> Elements<'_, L> {
    /// True when iteration stopped because an element did not end within the
    /// limit. That element and every element after it were not read.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }
}

impl<'h, L> Iterator for Elements<'h, L>
where
    L: Iterator<Item = &'h [u8]>,
{
    type Item = Element<'h>;

    fn next(&mut self) -> Option<Element<'h>> {
        if self.overflowed {
            return None;
        }
        loop {
            if !self.in_line {
                let line = self.lines.next()?;
                self.rest = line;
                self.pos = self.next_line;
                self.next_line = self.pos.saturating_add(line.len()).saturating_add(1);
                self.in_line = true;
            }
            let line = self.rest;
            // Bytes left before the limit; a comma may sit right at the limit.
            let room = self.limit.saturating_sub(self.pos);
            let window = room.saturating_add(1).min(line.len());
            let (raw, more) = match memchr::memchr(b',', &line[..window]) {
                Some(i) => (&line[..i], Some(i + 1)),
                None if line.len() <= room => (line, None),
                None => {
                    // The element straddles the limit: read none of it.
                    self.overflowed = true;
                    return None;
                }
            };
            let start = self.pos;
            let end = start + raw.len();
            match more {
                Some(next) => {
                    self.rest = &line[next..];
                    self.pos = start + next;
                }
                None => self.in_line = false,
            }
            let bytes = trim_ows(raw);
            if !bytes.is_empty() {
                return Some(Element { bytes, start, end });
            }
        }
    }
}

/// True for optional white space: SP or HTAB (RFC 9110 §5.6.3).
#[inline]
pub fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `bytes` without leading and trailing SP / HTAB.
pub fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_ows(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect<'h>(lines: &[&'h [u8]], limit: usize) -> (alloc::vec::Vec<Element<'h>>, bool) {
        let mut it = elements(lines.iter().copied(), limit);
        let v = it.by_ref().collect();
        (v, it.overflowed())
    }

    #[test]
    fn offsets_span_lines_as_if_joined_with_commas() {
        let (els, over) = collect(&[b"a=1, b=2", b" c=3 ,,"], usize::MAX);
        assert!(!over);
        let got: alloc::vec::Vec<_> = els.iter().map(|e| (e.bytes, e.start, e.end)).collect();
        // Joined: "a=1, b=2, c=3 ,,"
        assert_eq!(
            got,
            [
                (&b"a=1"[..], 0, 3),
                (&b"b=2"[..], 4, 8),
                (&b"c=3"[..], 9, 14)
            ]
        );
    }

    #[test]
    fn empty_and_blank_elements_are_skipped() {
        let (els, over) = collect(&[b"", b" , \t,", b","], usize::MAX);
        assert!(els.is_empty());
        assert!(!over);
    }

    #[test]
    fn an_element_straddling_the_limit_is_not_read() {
        let (els, over) = collect(&[b"ab,cd,ef"], 5);
        assert_eq!(els.len(), 2, "cd ends at 5, exactly the limit");
        assert_eq!(els[1].bytes, b"cd");
        assert!(over, "ef ends at 8");
        let (els, over) = collect(&[b"ab,cd"], 5);
        assert_eq!(els.len(), 2);
        assert!(!over);
        let (els, over) = collect(&[b"ab,cd,ef"], 4);
        assert_eq!(els.len(), 1);
        assert!(over);
    }

    #[test]
    fn limit_counts_line_joints() {
        // "ab" + "," + "cd" : cd ends at offset 5.
        let (els, over) = collect(&[b"ab", b"cd"], 5);
        assert_eq!(els.len(), 2);
        assert!(!over);
        let (els, over) = collect(&[b"ab", b"cd"], 4);
        assert_eq!(els.len(), 1);
        assert!(over);
    }

    #[test]
    fn trim_ows_only_trims_space_and_tab() {
        assert_eq!(trim_ows(b" \t x \t"), b"x");
        assert_eq!(trim_ows(b"\r x\n"), b"\r x\n");
        assert_eq!(trim_ows(b"   "), b"");
    }
}
