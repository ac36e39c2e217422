//! A pull tokenizer for JSON that streams: it reads through a buffer it
//! refills, hands out strings it was asked for as borrowed slices, and
//! skips the values nobody asked for byte by byte without building them.
//!
//! One input may hold several documents one after another (the
//! OpenTelemetry Collector's file exporter writes one per line).
//!
//! Limits: nesting deeper than [`MAX_DEPTH`] and a string or number that is
//! read (not skipped) and longer than [`MAX_TOKEN`] are errors. The buffer
//! never holds more than one such token beyond its [`CHUNK`].

use std::io::{self, Read};

/// Nesting deeper than this is an error.
pub const MAX_DEPTH: usize = 128;
/// A string or number that is read and longer than this is an error.
pub const MAX_TOKEN: usize = 1 << 20;
/// Bytes read from the source at a time.
pub const CHUNK: usize = 1 << 20;

/// A token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tok<'a> {
    /// `{`.
    Object,
    /// `[`.
    Array,
    /// `}` or `]`: the container ends.
    End,
    /// An object's key.
    Key(&'a str),
    /// A string value.
    Str(&'a str),
    /// A number, as written.
    Num(&'a str),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
}

impl Tok<'_> {
    /// What the token is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Object => "an object".into(),
            Tok::Array => "an array".into(),
            Tok::End => "the end of a container".into(),
            Tok::Key(k) => format!("the key {:?}", cut(k)),
            Tok::Str(s) => format!("the string {:?}", cut(s)),
            Tok::Num(n) => format!("the number {}", cut(n)),
            Tok::Bool(b) => format!("{b}"),
            Tok::Null => "null".into(),
        }
    }
}

/// At most 40 characters of `s`, for messages.
pub fn cut(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// A syntax or read error, at a byte offset.
#[derive(Debug)]
pub struct LexError {
    /// The offset of the byte where it was found.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// A value (at the top, after `:`, after `,` in an array).
    Value,
    /// A value or `]` (just after `[`).
    ValueOrEnd,
    /// A key or `}` (just after `{`).
    KeyOrEnd,
    /// A key (after `,` in an object).
    Key,
    /// `,` or the container's end.
    CommaOrEnd,
    /// The document is complete.
    Done,
}

/// The tokenizer.
pub struct Lexer<R> {
    src: R,
    /// What is read and not yet passed.
    buf: Vec<u8>,
    /// Where reads land, reused.
    chunk: Vec<u8>,
    pos: usize,
    /// Offset of `buf[0]` in the input.
    base: u64,
    eof: bool,
    scratch: Vec<u8>,
    /// `true` for an object, `false` for an array.
    stack: Vec<bool>,
    expect: Expect,
    documents: u64,
    /// A key's start, kept in the buffer while the ':' after it is read.
    pin: Option<usize>,
}

impl<R: Read> Lexer<R> {
    /// A tokenizer over `src`.
    pub fn new(src: R) -> Lexer<R> {
        Lexer {
            src,
            buf: Vec::with_capacity(CHUNK),
            chunk: vec![0; CHUNK],
            pos: 0,
            base: 0,
            eof: false,
            scratch: Vec::new(),
            stack: Vec::new(),
            expect: Expect::Done,
            documents: 0,
            pin: None,
        }
    }

    /// The offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Documents started so far.
    pub fn documents(&self) -> u64 {
        self.documents
    }

    /// Nesting depth: 0 between documents.
    pub fn depth(&self) -> usize {
        self.stack.len()
    }

    fn error<T>(&self, at: usize, reason: impl Into<String>) -> Result<T, LexError> {
        Err(LexError {
            offset: self.base + at as u64,
            reason: reason.into(),
        })
    }

    /// Reads more input, keeping `buf[keep..]`; returns false at the end.
    fn refill(&mut self, keep: usize) -> Result<bool, LexError> {
        if self.eof {
            return Ok(false);
        }
        let keep = self.pin.map_or(keep, |p| keep.min(p));
        if keep > 0 {
            self.buf.drain(..keep);
            self.base += keep as u64;
            self.pos -= keep;
            if let Some(p) = &mut self.pin {
                *p -= keep;
            }
        }
        loop {
            match self.src.read(&mut self.chunk) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&self.chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let at = self.buf.len();
                    return self.error(at, format!("cannot read: {e}"));
                }
            }
        }
    }

    /// The next byte that is not white space, without taking it; `None` at
    /// the end of input.
    fn peek(&mut self) -> Result<Option<u8>, LexError> {
        loop {
            while let Some(&b) = self.buf.get(self.pos) {
                match b {
                    b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                    _ => return Ok(Some(b)),
                }
            }
            let keep = self.pos;
            if !self.refill(keep)? {
                return Ok(None);
            }
        }
    }

    fn unexpected_end<T>(&self) -> Result<T, LexError> {
        self.error(
            self.buf.len(),
            if self.stack.is_empty() {
                "the input ends inside a value".to_owned()
            } else {
                format!(
                    "the input ends inside {} (truncated?)",
                    if self.stack.last() == Some(&true) {
                        "an object"
                    } else {
                        "an array"
                    }
                )
            },
        )
    }

    fn after_value(&mut self) {
        self.expect = if self.stack.is_empty() {
            Expect::Done
        } else {
            Expect::CommaOrEnd
        };
    }

    fn open(&mut self, object: bool) -> Result<(), LexError> {
        if self.stack.len() >= MAX_DEPTH {
            return self.error(self.pos, format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        self.stack.push(object);
        self.pos += 1;
        self.expect = if object {
            Expect::KeyOrEnd
        } else {
            Expect::ValueOrEnd
        };
        Ok(())
    }

    /// The next token; `None` at the end of input between documents.
    pub fn token(&mut self) -> Result<Option<Tok<'_>>, LexError> {
        loop {
            let Some(b) = self.peek()? else {
                if self.expect == Expect::Done {
                    return Ok(None);
                }
                return self.unexpected_end();
            };
            match self.expect {
                Expect::Done => {
                    self.documents += 1;
                    self.expect = Expect::Value;
                }
                Expect::CommaOrEnd => match (b, self.stack.last()) {
                    (b',', Some(&object)) => {
                        self.pos += 1;
                        self.expect = if object { Expect::Key } else { Expect::Value };
                    }
                    (b'}', Some(true)) | (b']', Some(false)) => {
                        self.pos += 1;
                        self.stack.pop();
                        self.after_value();
                        return Ok(Some(Tok::End));
                    }
                    _ => {
                        let want = if self.stack.last() == Some(&true) {
                            "',' or '}'"
                        } else {
                            "',' or ']'"
                        };
                        return self
                            .error(self.pos, format!("expected {want}, found {}", shown(b)));
                    }
                },
                Expect::KeyOrEnd | Expect::Key => {
                    if b == b'}' && self.expect == Expect::KeyOrEnd {
                        self.pos += 1;
                        self.stack.pop();
                        self.after_value();
                        return Ok(Some(Tok::End));
                    }
                    if b != b'"' {
                        return self.error(
                            self.pos,
                            format!("expected a key in quotes, found {}", shown(b)),
                        );
                    }
                    let (start, len, escaped) = self.string()?;
                    // The ':' after the key; reading it must not drop the
                    // key from the buffer.
                    self.pin = Some(start);
                    let colon = self.peek();
                    let start = self.pin.take().unwrap_or(start);
                    match colon? {
                        Some(b':') => self.pos += 1,
                        Some(c) => {
                            return self.error(
                                self.pos,
                                format!("expected ':' after a key, found {}", shown(c)),
                            );
                        }
                        None => return self.unexpected_end(),
                    }
                    self.expect = Expect::Value;
                    return Ok(Some(Tok::Key(self.text(start, len, escaped)?)));
                }
                Expect::Value | Expect::ValueOrEnd => {
                    if b == b']' && self.expect == Expect::ValueOrEnd {
                        self.pos += 1;
                        self.stack.pop();
                        self.after_value();
                        return Ok(Some(Tok::End));
                    }
                    return self.value(b);
                }
            }
        }
    }

    fn value(&mut self, b: u8) -> Result<Option<Tok<'_>>, LexError> {
        match b {
            b'{' => {
                self.open(true)?;
                Ok(Some(Tok::Object))
            }
            b'[' => {
                self.open(false)?;
                Ok(Some(Tok::Array))
            }
            b'"' => {
                let (start, len, escaped) = self.string()?;
                self.after_value();
                Ok(Some(Tok::Str(self.text(start, len, escaped)?)))
            }
            b'-' | b'0'..=b'9' => {
                let (start, len) = self.number()?;
                self.after_value();
                let s = std::str::from_utf8(&self.buf[start..start + len]).unwrap_or("0");
                Ok(Some(Tok::Num(s)))
            }
            b't' | b'f' | b'n' => {
                let (word, tok): (&[u8], Tok<'static>) = match b {
                    b't' => (b"true", Tok::Bool(true)),
                    b'f' => (b"false", Tok::Bool(false)),
                    _ => (b"null", Tok::Null),
                };
                self.literal(word)?;
                self.after_value();
                Ok(Some(tok))
            }
            _ => self.error(self.pos, format!("expected a value, found {}", shown(b))),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), LexError> {
        while self.buf.len() < self.pos + word.len() {
            let keep = self.pos;
            if !self.refill(keep)? {
                return self.unexpected_end();
            }
        }
        if &self.buf[self.pos..self.pos + word.len()] != word {
            return self.error(self.pos, "expected true, false or null");
        }
        self.pos += word.len();
        Ok(())
    }

    fn number(&mut self) -> Result<(usize, usize), LexError> {
        let mut end = self.pos;
        loop {
            while let Some(&c) = self.buf.get(end) {
                if matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                    end += 1;
                    if end - self.pos > MAX_TOKEN {
                        return self.error(self.pos, "a number longer than 1 MiB");
                    }
                } else {
                    let start = self.pos;
                    self.pos = end;
                    return Ok((start, end - start));
                }
            }
            let keep = self.pos;
            end -= keep;
            if !self.refill(keep)? {
                let start = self.pos;
                self.pos = end;
                return Ok((start, end - start));
            }
        }
    }

    /// Scans the string at `pos` (its opening quote); returns where its
    /// content starts, its raw length and whether it has escapes.
    fn string(&mut self) -> Result<(usize, usize, bool), LexError> {
        let mut at = self.pos + 1;
        let mut escaped = false;
        loop {
            match memchr::memchr2(b'"', b'\\', &self.buf[at..]) {
                Some(i) if self.buf[at + i] == b'"' => {
                    let start = self.pos + 1;
                    let len = at + i - start;
                    if len > MAX_TOKEN {
                        return self.error(self.pos, "a string longer than 1 MiB");
                    }
                    self.pos = at + i + 1;
                    return Ok((start, len, escaped));
                }
                Some(i) => {
                    escaped = true;
                    // Skip the backslash and the escaped byte.
                    if at + i + 1 < self.buf.len() {
                        at += i + 2;
                        continue;
                    }
                    at += i;
                }
                None => at = self.buf.len(),
            }
            if at - self.pos > MAX_TOKEN + 2 {
                return self.error(self.pos, "a string longer than 1 MiB");
            }
            let keep = self.pos;
            at -= keep;
            if !self.refill(keep)? {
                return self.error(self.pos, "the input ends inside a string (truncated?)");
            }
        }
    }

    fn text(&mut self, start: usize, len: usize, escaped: bool) -> Result<&str, LexError> {
        let raw = &self.buf[start..start + len];
        if !escaped {
            // One pass: is it printable ASCII (the usual case)?
            let mut low = false;
            let mut high = false;
            for &c in raw {
                low |= c < 0x20;
                high |= c >= 0x80;
            }
            if low {
                return self.error(start, "a control character inside a string");
            }
            if !high {
                // ASCII is UTF-8; from_utf8 cannot fail here.
                return Ok(std::str::from_utf8(raw).unwrap_or_default());
            }
            return match std::str::from_utf8(raw) {
                Ok(s) => Ok(s),
                Err(e) => self.error(start + e.valid_up_to(), "a string that is not UTF-8"),
            };
        }
        let mut quoted = Vec::with_capacity(len + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(raw);
        quoted.push(b'"');
        match serde_json::from_slice::<String>(&quoted) {
            Ok(s) => {
                self.scratch = s.into_bytes();
                // From a String: UTF-8.
                Ok(std::str::from_utf8(&self.scratch).unwrap_or_default())
            }
            Err(e) => self.error(start, format!("a bad string: {e}")),
        }
    }

    /// Skips the value that comes next, without building it; for a key,
    /// skips the key's value.
    pub fn skip(&mut self) -> Result<(), LexError> {
        let depth = self.stack.len();
        match self.token()? {
            Some(Tok::Object | Tok::Array) => self.skip_to(depth),
            Some(Tok::Key(_)) => self.skip(),
            Some(_) => Ok(()),
            None => self.unexpected_end(),
        }
    }

    /// Skips until the nesting is back to `depth`. A raw scan: brackets
    /// must match and strings must close, nothing else is built or
    /// checked, so an ignored value costs little more than reading it.
    pub fn skip_to(&mut self, depth: usize) -> Result<(), LexError> {
        while self.stack.len() > depth {
            let next = self.buf[self.pos..]
                .iter()
                .position(|&c| matches!(c, b'"' | b'{' | b'}' | b'[' | b']'));
            let Some(i) = next else {
                self.pos = self.buf.len();
                let keep = self.pos;
                if !self.refill(keep)? {
                    return self.unexpected_end();
                }
                continue;
            };
            self.pos += i;
            match self.buf[self.pos] {
                b'"' => self.skip_string()?,
                b @ (b'{' | b'[') => {
                    if self.stack.len() >= MAX_DEPTH {
                        return self
                            .error(self.pos, format!("nesting deeper than {MAX_DEPTH} levels"));
                    }
                    self.stack.push(b == b'{');
                    self.pos += 1;
                }
                b => {
                    let object = b == b'}';
                    if self.stack.last() != Some(&object) {
                        let open = if object { "an array" } else { "an object" };
                        return self.error(self.pos, format!("{} cannot close {open}", shown(b)));
                    }
                    self.stack.pop();
                    self.pos += 1;
                }
            }
        }
        self.after_value();
        Ok(())
    }

    /// Passes the string at `pos`: no limit on its length, and the buffer
    /// does not grow for it.
    fn skip_string(&mut self) -> Result<(), LexError> {
        self.pos += 1;
        loop {
            match memchr::memchr2(b'"', b'\\', &self.buf[self.pos..]) {
                Some(i) if self.buf[self.pos + i] == b'"' => {
                    self.pos += i + 1;
                    return Ok(());
                }
                Some(i) if self.pos + i + 1 < self.buf.len() => self.pos += i + 2,
                Some(i) => self.pos += i,
                None => self.pos = self.buf.len(),
            }
            let keep = self.pos;
            if !self.refill(keep)? {
                return self.error(self.pos, "the input ends inside a string (truncated?)");
            }
        }
    }
}

fn shown(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}
