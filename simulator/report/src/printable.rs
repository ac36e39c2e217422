//! Text from a scenario, shown safely on a terminal.
//!
//! Scenario names, traffic names, descriptions and header values are
//! written by whoever wrote the scenario. A CR, LF or terminal escape in
//! one would forge lines of the report (`PASS` where a check failed) or
//! drive the terminal. [`printable`] writes every control character
//! (C0, DEL, C1) and every bidirectional-override character as a visible
//! escape, so one line of input stays one line of output and looks like
//! what it is.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `ch` must be escaped on a terminal: a control character, or a
/// bidirectional embedding, override or isolate (which reorder what the
/// reader sees).
pub fn needs_escape(ch: char) -> bool {
    ch.is_control() || matches!(ch, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with control and bidi characters escaped: `\n`, `\r`, `\t`,
/// `\x1b` below U+0080, `\u{9b}` above. Borrowed when nothing needs it.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for ch in text.chars() {
        match ch {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) && (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Appends one line to `out`: `args` formatted, escaped with
/// [`printable`], and a newline. Every line of a report is written this
/// way, so nothing interpolated into it can start another.
pub(crate) fn line(out: &mut String, args: std::fmt::Arguments<'_>) {
    match args.as_str() {
        Some(fixed) => out.push_str(&printable(fixed)),
        None => {
            let formatted = args.to_string();
            out.push_str(&printable(&formatted));
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(printable("route-group → eta"), Cow::Borrowed(_)));
    }

    #[test]
    fn controls_and_bidi_become_visible() {
        assert_eq!(
            printable("a\r\nPASS\x1b[2J\u{9b}\u{202e}z\t"),
            "a\\r\\nPASS\\x1b[2J\\u{9b}\\u{202e}z\\t"
        );
        assert_eq!(printable("\x7f"), "\\x7f");
    }

    #[test]
    fn a_line_stays_one_line() {
        let mut out = String::new();
        line(&mut out, format_args!("name {}", "x\nresult: PASS"));
        assert_eq!(out, "name x\\nresult: PASS\n");
        assert_eq!(out.lines().count(), 1);
    }
}
