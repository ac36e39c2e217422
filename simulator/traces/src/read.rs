//! Reads OTLP, Jaeger and Zipkin JSON into [`Span`]s, as a stream.
//!
//! - **OTLP JSON**: `resourceSpans` / `scopeSpans` / `spans` (also Tempo's
//!   `batches` and the older `instrumentationLibrarySpans`), wrapped or not
//!   in Jaeger API v3's `{"result": …}`; one document or one per line (the
//!   Collector's file exporter). IDs in hex or base64, kinds as integers or
//!   names, times as strings or numbers.
//! - **Jaeger JSON**: `{"data": [trace…]}` as the UI downloads it and the
//!   query API answers, or one bare trace object (`traceID`, `spans`,
//!   `processes`).
//! - **Zipkin v2 JSON**: a list of spans, or a list of traces (lists).
//!
//! With [`Format::Auto`] each document says what it is by its shape.

use std::io::Read;

use crate::lex::{LexError, Lexer, Tok, cut};
use crate::model::{Kind, NONE, Proxy, Span, SpanSink, Strings, Sym, Warning};

/// An input format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Each document's shape decides.
    Auto,
    /// OpenTelemetry's OTLP JSON.
    Otlp,
    /// Jaeger's JSON.
    Jaeger,
    /// Zipkin's v2 JSON.
    Zipkin,
}

impl Format {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Otlp => "otlp",
            Format::Jaeger => "jaeger",
            Format::Zipkin => "zipkin",
        }
    }
}

/// Where a file is broken, and why.
#[derive(Debug)]
pub struct ReadError {
    /// Byte offset.
    pub offset: u64,
    /// The field being read, as a path (`resourceSpans[2].scopeSpans[0]…`).
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "byte {}: {}", self.offset, self.reason)
        } else {
            write!(f, "byte {} ({}): {}", self.offset, self.path, self.reason)
        }
    }
}

/// What one file held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    /// Bytes read.
    pub bytes: u64,
    /// JSON documents.
    pub documents: u64,
    /// Spans handed on.
    pub spans: u64,
    /// Documents of each format: OTLP, Jaeger, Zipkin.
    pub formats: [u64; 3],
}

/// The attribute names that carry what the model keeps.
#[derive(Clone, Debug)]
pub struct Names {
    /// Routing-key member names (`sd-routing-key`): an attribute of this
    /// name, or with a `baggage.` prefix, holds the key.
    pub members: Vec<String>,
}

impl Default for Names {
    fn default() -> Names {
        Names {
            members: laneway_core::config::DEFAULT_MEMBERS
                .iter()
                .map(|m| (*m).to_owned())
                .collect(),
        }
    }
}

/// A known attribute, and how strongly it names its field (higher wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attr {
    Service,
    Peer(u8),
    Key,
    Workload(u8),
    Messaging,
    Kind,
    Proxy,
    Component,
    Other,
}

fn attr(names: &Names, key: &str) -> Attr {
    match key {
        "service.name" => Attr::Service,
        "peer.service" => Attr::Peer(4),
        "server.address" => Attr::Peer(3),
        "net.peer.name" => Attr::Peer(2),
        "db.system" | "db.system.name" => Attr::Peer(1),
        "k8s.deployment.name" => Attr::Workload(3),
        "service.version" => Attr::Workload(2),
        "host.name" | "hostname" => Attr::Workload(1),
        "messaging.system" => Attr::Messaging,
        "span.kind" => Attr::Kind,
        "node_id"
        | "upstream_cluster"
        | "istio.canonical_service"
        | "istio.mesh_id"
        | "istio.namespace" => Attr::Proxy,
        "component" => Attr::Component,
        _ => {
            let bare = key.strip_prefix("baggage.").unwrap_or(key);
            if names.members.iter().any(|m| m == bare) {
                Attr::Key
            } else {
                Attr::Other
            }
        }
    }
}

/// Attribute values collected for a span or a resource.
#[derive(Clone, Copy, Debug, Default)]
struct Attrs {
    service: Sym,
    peer: (u8, Sym),
    key: Sym,
    workload: (u8, Sym),
    messaging: Sym,
    kind: Option<Kind>,
    proxy: Proxy,
}

impl Attrs {
    fn set(&mut self, a: Attr, value: &str, strings: &mut Strings) {
        match a {
            Attr::Service => self.service = strings.intern(value),
            Attr::Peer(p) if p > self.peer.0 => self.peer = (p, strings.intern(value)),
            Attr::Key => self.key = strings.intern(value),
            Attr::Workload(p) if p > self.workload.0 => self.workload = (p, strings.intern(value)),
            Attr::Messaging => self.messaging = strings.intern(value),
            Attr::Kind => self.kind = Kind::from_name(value),
            Attr::Proxy => {
                let p = if value.starts_with("router~") {
                    Proxy::Gateway
                } else {
                    Proxy::Sidecar
                };
                self.proxy = self.proxy.max(p);
            }
            Attr::Component if value == "proxy" => self.proxy = self.proxy.max(Proxy::Sidecar),
            _ => {}
        }
    }

    /// Fills `span`'s empty fields from these attributes.
    fn apply(&self, span: &mut Span) {
        if span.service == NONE {
            span.service = self.service;
        }
        if span.peer == NONE {
            span.peer = self.peer.1;
        }
        if span.key == NONE {
            span.key = self.key;
        }
        if span.workload == NONE {
            span.workload = self.workload.1;
        }
        if span.messaging == NONE {
            span.messaging = self.messaging;
        }
        span.proxy = span.proxy.max(self.proxy);
        if span.kind == Kind::Unspecified
            && let Some(k) = self.kind
        {
            span.kind = k;
        }
    }
}

/// Reads every document of `src` into `sink`.
pub fn read<R: Read, S: SpanSink>(
    src: R,
    format: Format,
    names: &Names,
    strings: &mut Strings,
    sink: &mut S,
) -> Result<FileStats, ReadError> {
    let mut p = Parser {
        lx: Lexer::new(src),
        names,
        strings,
        sink,
        path: Vec::new(),
        stats: FileStats::default(),
        pending: Vec::new(),
        processes: Vec::new(),
    };
    p.documents(format)?;
    p.stats.bytes = p.lx.offset();
    p.stats.documents = p.lx.documents();
    Ok(p.stats)
}

#[derive(Clone, Copy, Debug)]
enum Crumb {
    Field(&'static str),
    Index(u64),
}

struct Parser<'a, R, S> {
    lx: Lexer<R>,
    names: &'a Names,
    strings: &'a mut Strings,
    sink: &'a mut S,
    path: Vec<Crumb>,
    stats: FileStats,
    /// Spans of a resource or a Jaeger trace, waiting for what names their
    /// service.
    pending: Vec<(u128, Span, Sym)>,
    /// A Jaeger trace's processes: id, service, workload.
    processes: Vec<(Sym, Sym, Sym)>,
}

type Result_<T> = Result<T, ReadError>;

impl<R: Read, S: SpanSink> Parser<'_, R, S> {
    fn path(&self) -> String {
        path_of(&self.path)
    }

    fn fail<T>(&self, reason: impl Into<String>) -> Result_<T> {
        Err(ReadError {
            offset: self.lx.offset(),
            path: self.path(),
            reason: reason.into(),
        })
    }

    fn lex(&self, e: LexError) -> ReadError {
        ReadError {
            offset: e.offset,
            path: self.path(),
            reason: e.reason,
        }
    }

    /// The next token; the input's end is an error here.
    fn tok(&mut self) -> Result_<Tok<'_>> {
        let offset = self.lx.offset();
        let crumbs = &self.path;
        match self.lx.token() {
            Ok(Some(t)) => Ok(t),
            Ok(None) => Err(ReadError {
                offset,
                path: path_of(crumbs),
                reason: "the input ends early".into(),
            }),
            Err(e) => Err(ReadError {
                offset: e.offset,
                path: path_of(crumbs),
                reason: e.reason,
            }),
        }
    }

    fn skip(&mut self) -> Result_<()> {
        self.lx.skip().map_err(|e| self.lex(e))
    }

    /// The next key of the open object, classified; `None` at its end.
    fn key<F>(&mut self, classify: impl Fn(&str) -> F) -> Result_<Option<F>> {
        match self.lx.token() {
            Ok(Some(Tok::Key(k))) => Ok(Some(classify(k))),
            Ok(Some(Tok::End)) => Ok(None),
            Ok(Some(t)) => {
                let d = t.describe();
                self.fail(format!("expected a key, found {d}"))
            }
            Ok(None) => self.fail("the input ends inside an object"),
            Err(e) => Err(self.lex(e)),
        }
    }

    /// Opens the value that comes next as an object (`false` for null).
    fn object(&mut self, what: &str) -> Result_<bool> {
        self.open(what, true)
    }

    /// Opens the value that comes next as an array (`false` for null).
    fn array(&mut self, what: &str) -> Result_<bool> {
        self.open(what, false)
    }

    fn open(&mut self, what: &str, object: bool) -> Result_<bool> {
        match self.tok()? {
            Tok::Object if object => Ok(true),
            Tok::Array if !object => Ok(true),
            Tok::Null => Ok(false),
            t => {
                let d = t.describe();
                let want = if object { "an object" } else { "an array" };
                self.fail(format!("{what} must be {want}, found {d}"))
            }
        }
    }

    /// The next element of the open array: `true` when it is an object
    /// (opened), `false` at the array's end; nulls are passed over.
    fn element(&mut self, what: &str) -> Result_<bool> {
        loop {
            match self.lx.token() {
                Ok(Some(Tok::Object)) => return Ok(true),
                Ok(Some(Tok::End)) => return Ok(false),
                Ok(Some(Tok::Null)) => continue,
                Ok(Some(t)) => {
                    let d = t.describe();
                    return self.fail(format!("each of {what} must be an object, found {d}"));
                }
                Ok(None) => return self.fail("the input ends inside an array"),
                Err(e) => return Err(self.lex(e)),
            }
        }
    }

    /// The next value, which must be a string (or null: `None`), handed to
    /// `f` while it is borrowed.
    fn string<T>(&mut self, what: &str, f: impl FnOnce(&str) -> T) -> Result_<Option<T>> {
        match self.tok()? {
            Tok::Str(s) => Ok(Some(f(s))),
            Tok::Null => Ok(None),
            t => {
                let d = t.describe();
                self.fail(format!("{what} must be a string, found {d}"))
            }
        }
    }

    /// A string or a number, handed to `f` as text.
    fn scalar<T>(&mut self, what: &str, f: impl FnOnce(&str) -> T) -> Result_<Option<T>> {
        match self.tok()? {
            Tok::Str(s) | Tok::Num(s) => Ok(Some(f(s))),
            Tok::Null => Ok(None),
            t => {
                let d = t.describe();
                self.fail(format!("{what} must be a string or a number, found {d}"))
            }
        }
    }

    /// The next value, a string (or null: [`NONE`]), interned.
    fn intern(&mut self, what: &str) -> Result_<Sym> {
        match self.lx.token() {
            Ok(Some(Tok::Str(s))) => Ok(self.strings.intern(s)),
            Ok(Some(Tok::Null)) => Ok(NONE),
            Ok(Some(t)) => {
                let d = t.describe();
                self.fail(format!("{what} must be a string, found {d}"))
            }
            Ok(None) => self.fail("the input ends early"),
            Err(e) => Err(self.lex(e)),
        }
    }

    /// The next key of the open object, interned; `None` at its end.
    fn key_sym(&mut self) -> Result_<Option<Sym>> {
        match self.lx.token() {
            Ok(Some(Tok::Key(k))) => Ok(Some(self.strings.intern(k))),
            Ok(Some(Tok::End)) => Ok(None),
            Ok(Some(t)) => {
                let d = t.describe();
                self.fail(format!("expected a key, found {d}"))
            }
            Ok(None) => self.fail("the input ends inside an object"),
            Err(e) => Err(self.lex(e)),
        }
    }

    /// An id field: hex or base64, of `bytes` bytes (a trace id may also
    /// be 8 bytes, as Zipkin and Jaeger allow).
    fn id(&mut self, what: &'static str, bytes: usize) -> Result_<u128> {
        let parsed = self.string(what, |s| parse_id(s, bytes).ok_or_else(|| cut(s)))?;
        match parsed {
            None => Ok(0),
            Some(Ok(v)) => Ok(v),
            Some(Err(shown)) => self.fail(format!(
                "{what} {shown:?} is neither {} hex digits nor base64 of {bytes} bytes",
                bytes * 2
            )),
        }
    }

    /// A time in nanoseconds: `scale` nanoseconds per unit written.
    fn time(&mut self, what: &'static str, scale: i64) -> Result_<i64> {
        let parsed = self.scalar(what, |s| parse_time(s, scale).ok_or_else(|| cut(s)))?;
        match parsed {
            None => Ok(0),
            Some(Ok(v)) => Ok(v),
            Some(Err(shown)) => self.fail(format!("{what} {shown:?} is not a time")),
        }
    }

    fn documents(&mut self, format: Format) -> Result_<()> {
        loop {
            let t = match self.lx.token() {
                Ok(None) => return Ok(()),
                Ok(Some(t)) => t,
                Err(e) => return Err(self.lex(e)),
            };
            match t {
                Tok::Object => self.top_object(format)?,
                Tok::Array if matches!(format, Format::Auto | Format::Zipkin) => {
                    self.stats.formats[2] += 1;
                    self.zipkin_list()?;
                }
                t => {
                    let d = t.describe();
                    let want = match format {
                        Format::Zipkin => "a list of Zipkin spans",
                        Format::Otlp | Format::Jaeger => "an object",
                        Format::Auto => "an object (OTLP or Jaeger) or a list (Zipkin)",
                    };
                    return self.fail(format!("a document must be {want}, found {d}"));
                }
            }
        }
    }

    /// A top-level object: OTLP, Jaeger's envelope or a bare Jaeger trace.
    fn top_object(&mut self, format: Format) -> Result_<()> {
        #[derive(Clone, Copy)]
        enum K {
            Otlp,
            Result,
            Data,
            BareTrace,
            Other,
        }
        let mut seen = None;
        while let Some(k) = self.key(|k| match k {
            "resourceSpans" | "batches" => K::Otlp,
            "result" => K::Result,
            "data" => K::Data,
            "spans" | "processes" | "traceID" => K::BareTrace,
            _ => K::Other,
        })? {
            let is = match k {
                K::Otlp | K::Result => Format::Otlp,
                K::Data | K::BareTrace => Format::Jaeger,
                K::Other => {
                    self.skip()?;
                    continue;
                }
            };
            if format != Format::Auto && format != is {
                return self.fail(format!(
                    "this is {} JSON, not {} (pass --format {} or auto)",
                    is.name(),
                    format.name(),
                    is.name()
                ));
            }
            seen = Some(is);
            match k {
                K::Otlp => self.otlp_resources()?,
                K::Result => {
                    self.path.push(Crumb::Field("result"));
                    if self.object("result")? {
                        self.top_object(Format::Otlp)?;
                        // top_object counted the inner document.
                        self.stats.formats[0] -= 1;
                    }
                    self.path.pop();
                }
                K::Data => self.jaeger_data()?,
                K::BareTrace => {
                    // A bare trace: its fields are this object's; read the
                    // rest of it as one trace.
                    self.jaeger_trace(true)?;
                    break;
                }
                K::Other => {}
            }
        }
        match seen {
            Some(Format::Otlp) => self.stats.formats[0] += 1,
            Some(_) => self.stats.formats[1] += 1,
            None => {
                return self.fail(
                    "an object with none of resourceSpans, batches, result (OTLP), data or \
                     spans (Jaeger): not a trace export",
                );
            }
        }
        Ok(())
    }

    // ---- OTLP ----

    /// The array in `field` (the key was read): `body` for each of its
    /// objects, opened, with the field and index in the path.
    fn each(
        &mut self,
        field: &'static str,
        mut body: impl FnMut(&mut Self) -> Result_<()>,
    ) -> Result_<()> {
        self.path.push(Crumb::Field(field));
        if self.array(field)? {
            let mut i = 0;
            loop {
                self.path.push(Crumb::Index(i));
                if !self.element(field)? {
                    self.path.pop();
                    break;
                }
                body(self)?;
                self.path.pop();
                i += 1;
            }
        }
        self.path.pop();
        Ok(())
    }

    fn otlp_resources(&mut self) -> Result_<()> {
        self.each("resourceSpans", Self::otlp_resource)
    }

    fn otlp_resource(&mut self) -> Result_<()> {
        let mut resource: Option<Attrs> = None;
        self.pending.clear();
        while let Some(k) = self.key(|k| match k {
            "resource" => 0,
            "scopeSpans" | "instrumentationLibrarySpans" => 1,
            _ => 2,
        })? {
            match k {
                0 => {
                    self.path.push(Crumb::Field("resource"));
                    let mut a = Attrs::default();
                    if self.object("resource")? {
                        while let Some(k) = self.key(|k| k == "attributes")? {
                            if k {
                                self.otlp_attributes(&mut a)?;
                            } else {
                                self.skip()?;
                            }
                        }
                    }
                    self.path.pop();
                    // Spans read before the resource waited for it.
                    for (trace, mut span, _) in std::mem::take(&mut self.pending) {
                        a.apply(&mut span);
                        self.emit(trace, span);
                    }
                    resource = Some(a);
                }
                1 => self.each("scopeSpans", |p| p.otlp_scope(resource.as_ref()))?,
                _ => self.skip()?,
            }
        }
        // No resource at all: the spans keep what they have.
        for (trace, span, _) in std::mem::take(&mut self.pending) {
            self.emit(trace, span);
        }
        Ok(())
    }

    fn otlp_scope(&mut self, resource: Option<&Attrs>) -> Result_<()> {
        while let Some(spans) = self.key(|k| k == "spans")? {
            if !spans {
                self.skip()?;
                continue;
            }
            self.each("spans", |p| {
                let (trace, mut span) = p.otlp_span()?;
                match resource {
                    Some(a) => {
                        a.apply(&mut span);
                        p.emit(trace, span);
                    }
                    None => p.pending.push((trace, span, NONE)),
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    fn otlp_span(&mut self) -> Result_<(u128, Span)> {
        #[derive(Clone, Copy)]
        enum K {
            Trace,
            Id,
            Parent,
            Kind,
            Start,
            End,
            Attributes,
            Links,
            Other,
        }
        let mut trace = 0;
        let mut span = Span::default();
        let mut a = Attrs::default();
        while let Some(k) = self.key(|k| match k {
            "traceId" => K::Trace,
            "spanId" => K::Id,
            "parentSpanId" => K::Parent,
            "kind" => K::Kind,
            "startTimeUnixNano" => K::Start,
            "endTimeUnixNano" => K::End,
            "attributes" => K::Attributes,
            "links" => K::Links,
            _ => K::Other,
        })? {
            match k {
                K::Trace => trace = self.id("traceId", 16)?,
                K::Id => span.id = self.id("spanId", 8)? as u64,
                K::Parent => span.parent = self.id("parentSpanId", 8)? as u64,
                K::Kind => {
                    let kind = self.scalar("kind", |s| {
                        s.parse::<i64>()
                            .ok()
                            .and_then(Kind::from_number)
                            .or_else(|| Kind::from_name(s))
                    })?;
                    match kind {
                        Some(Some(kind)) => span.kind = kind,
                        Some(None) => self.sink.warn(Warning::BadKind),
                        None => {}
                    }
                }
                K::Start => span.start = self.time("startTimeUnixNano", 1)?,
                K::End => span.end = self.time("endTimeUnixNano", 1)?,
                K::Attributes => self.otlp_attributes(&mut a)?,
                K::Links => {
                    // A consumer without a parent continues its first link.
                    let link = self.otlp_first_link()?;
                    if let Some((t, s)) = link
                        && span.parent == 0
                    {
                        span.parent = s;
                        if trace == 0 {
                            trace = t;
                        }
                    }
                }
                K::Other => self.skip()?,
            }
        }
        a.apply(&mut span);
        Ok((trace, span))
    }

    fn otlp_first_link(&mut self) -> Result_<Option<(u128, u64)>> {
        let mut first = None;
        if self.array("links")? {
            while self.element("links")? {
                let (mut t, mut s) = (0, 0);
                while let Some(k) = self.key(|k| match k {
                    "traceId" => 0,
                    "spanId" => 1,
                    _ => 2,
                })? {
                    match k {
                        0 => t = self.id("links.traceId", 16)?,
                        1 => s = self.id("links.spanId", 8)? as u64,
                        _ => self.skip()?,
                    }
                }
                if first.is_none() && s != 0 {
                    first = Some((t, s));
                }
            }
        }
        Ok(first)
    }

    fn otlp_attributes(&mut self, a: &mut Attrs) -> Result_<()> {
        self.pairs("attributes", a, true)
    }

    /// A list of `{"key": …, "value": …}` objects: OTLP's attributes
    /// (`otlp`: values are `AnyValue` objects) or Jaeger's tags (values
    /// are plain).
    fn pairs(&mut self, field: &'static str, a: &mut Attrs, otlp: bool) -> Result_<()> {
        self.path.push(Crumb::Field(field));
        if self.array(field)? {
            while self.element(field)? {
                let mut which = None;
                let mut early: Option<String> = None;
                while let Some(k) = self.key(|k| match k {
                    "key" => 0,
                    "value" => 1,
                    _ => 2,
                })? {
                    match k {
                        0 => {
                            let names = self.names;
                            which = self.string("key", |s| attr(names, s))?;
                        }
                        1 if which == Some(Attr::Other) => self.skip()?,
                        1 => {
                            let v = if otlp {
                                self.otlp_value()?
                            } else {
                                self.tag_value()?
                            };
                            match (which, v) {
                                (Some(w), Some(v)) => a.set(w, &v, self.strings),
                                // The value came before its key: keep it.
                                (None, v) => early = v,
                                _ => {}
                            }
                        }
                        _ => self.skip()?,
                    }
                }
                if let (Some(w), Some(v)) = (which, early) {
                    a.set(w, &v, self.strings);
                }
            }
        }
        self.path.pop();
        Ok(())
    }

    /// An `AnyValue`'s string (a `stringValue`, or an `intValue` as text).
    fn otlp_value(&mut self) -> Result_<Option<String>> {
        let mut out = None;
        if self.object("value")? {
            while let Some(k) = self.key(|k| matches!(k, "stringValue" | "intValue"))? {
                if k {
                    out = self.scalar("value", str::to_owned)?;
                } else {
                    self.skip()?;
                }
            }
        }
        Ok(out)
    }

    fn emit(&mut self, trace: u128, span: Span) {
        if trace == 0 || span.id == 0 {
            self.sink.warn(Warning::NoId);
            return;
        }
        let mut span = span;
        if span.service == NONE {
            self.sink.warn(Warning::NoService);
            span.service = self.strings.intern("unknown");
        }
        self.stats.spans += 1;
        self.sink.span(trace, span, self.strings);
    }

    // ---- Jaeger ----

    fn jaeger_data(&mut self) -> Result_<()> {
        self.each("data", |p| p.jaeger_trace(false))
    }

    /// A Jaeger trace object, opened; `bare` when its first key (one of
    /// `spans`, `processes`, `traceID`) was already read by the caller:
    /// then that key's value comes next.
    fn jaeger_trace(&mut self, bare: bool) -> Result_<()> {
        self.pending.clear();
        self.processes.clear();
        let mut first = bare;
        loop {
            let k = if first {
                first = false;
                // The caller read a key of this object; which one is told
                // by what comes next: an array (spans), an object
                // (processes) or a string (traceID).
                None
            } else {
                match self.key(|k| match k {
                    "spans" => 0,
                    "processes" => 1,
                    _ => 2,
                })? {
                    Some(k) => Some(k),
                    None => break,
                }
            };
            match k {
                Some(0) => self.jaeger_spans()?,
                Some(1) => self.jaeger_processes()?,
                Some(_) => self.skip()?,
                None => self.jaeger_bare_first()?,
            }
        }
        let pending = std::mem::take(&mut self.pending);
        for (trace, mut span, process) in pending {
            match self.processes.iter().find(|p| p.0 == process) {
                Some(&(_, service, workload)) => {
                    if span.service == NONE {
                        span.service = service;
                    }
                    if span.workload == NONE {
                        span.workload = workload;
                    }
                }
                None if span.service == NONE => {
                    self.sink.warn(Warning::UnknownProcess);
                    let name = format!("unknown-process-{}", self.strings.get(process));
                    span.service = self.strings.intern(&name);
                }
                None => {}
            }
            self.emit(trace, span);
        }
        Ok(())
    }

    /// The value of the bare trace's first key, told by its shape.
    fn jaeger_bare_first(&mut self) -> Result_<()> {
        match self.tok()? {
            Tok::Array => self.jaeger_span_list(),
            Tok::Object => self.jaeger_process_map(),
            Tok::Str(_) | Tok::Null => Ok(()),
            t => {
                let d = t.describe();
                self.fail(format!("unexpected {d} in a Jaeger trace"))
            }
        }
    }

    fn jaeger_spans(&mut self) -> Result_<()> {
        self.path.push(Crumb::Field("spans"));
        if self.array("spans")? {
            self.jaeger_span_list()?;
        }
        self.path.pop();
        Ok(())
    }

    fn jaeger_span_list(&mut self) -> Result_<()> {
        let mut i = 0;
        while {
            self.path.push(Crumb::Index(i));
            self.element("spans")?
        } {
            let s = self.jaeger_span()?;
            self.pending.push(s);
            self.path.pop();
            i += 1;
        }
        Ok(())
    }

    fn jaeger_span(&mut self) -> Result_<(u128, Span, Sym)> {
        let mut trace = 0;
        let mut span = Span::default();
        let mut process = NONE;
        let mut a = Attrs::default();
        let mut duration = 0;
        while let Some(k) = self.key(|k| match k {
            "traceID" => 0,
            "spanID" => 1,
            "parentSpanID" => 2,
            "references" => 3,
            "startTime" => 4,
            "duration" => 5,
            "tags" => 6,
            "processID" => 7,
            _ => 8,
        })? {
            match k {
                0 => trace = self.id("traceID", 16)?,
                1 => span.id = self.id("spanID", 8)? as u64,
                2 => span.parent = self.id("parentSpanID", 8)? as u64,
                3 => {
                    let parent = self.jaeger_references()?;
                    if span.parent == 0 {
                        span.parent = parent;
                    }
                }
                4 => span.start = self.time("startTime", 1000)?,
                5 => duration = self.time("duration", 1000)?,
                6 => self.jaeger_tags(&mut a)?,
                7 => process = self.intern("processID")?,
                _ => self.skip()?,
            }
        }
        span.end = span.start.saturating_add(duration);
        a.apply(&mut span);
        Ok((trace, span, process))
    }

    /// The parent from `references`: the first `CHILD_OF`, else the first.
    fn jaeger_references(&mut self) -> Result_<u64> {
        let (mut child_of, mut any) = (0, 0);
        self.path.push(Crumb::Field("references"));
        if self.array("references")? {
            while self.element("references")? {
                let (mut id, mut child) = (0, false);
                while let Some(k) = self.key(|k| match k {
                    "spanID" => 0,
                    "refType" => 1,
                    _ => 2,
                })? {
                    match k {
                        0 => id = self.id("spanID", 8)? as u64,
                        1 => {
                            child = self
                                .string("refType", |s| s == "CHILD_OF")?
                                .unwrap_or(false)
                        }
                        _ => self.skip()?,
                    }
                }
                if child && child_of == 0 {
                    child_of = id;
                }
                if any == 0 {
                    any = id;
                }
            }
        }
        self.path.pop();
        Ok(if child_of != 0 { child_of } else { any })
    }

    fn jaeger_tags(&mut self, a: &mut Attrs) -> Result_<()> {
        self.pairs("tags", a, false)
    }

    /// A tag's value as text; booleans and containers are not kept.
    fn tag_value(&mut self) -> Result_<Option<String>> {
        match self.tok()? {
            Tok::Str(s) | Tok::Num(s) => Ok(Some(s.to_owned())),
            Tok::Object | Tok::Array => {
                let depth = self.lx.depth() - 1;
                self.lx.skip_to(depth).map_err(|e| self.lex(e))?;
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn jaeger_processes(&mut self) -> Result_<()> {
        self.path.push(Crumb::Field("processes"));
        if self.object("processes")? {
            self.jaeger_process_map()?;
        }
        self.path.pop();
        Ok(())
    }

    fn jaeger_process_map(&mut self) -> Result_<()> {
        loop {
            let Some(id) = self.key_sym()? else {
                return Ok(());
            };
            let mut a = Attrs::default();
            if self.object("a process")? {
                while let Some(k) = self.key(|k| match k {
                    "serviceName" => 0,
                    "tags" => 1,
                    _ => 2,
                })? {
                    match k {
                        0 => a.service = self.intern("serviceName")?,
                        1 => self.jaeger_tags(&mut a)?,
                        _ => self.skip()?,
                    }
                }
            }
            self.processes.push((id, a.service, a.workload.1));
        }
    }

    // ---- Zipkin ----

    /// A Zipkin list, opened: spans, or lists of spans (`/api/v2/traces`).
    fn zipkin_list(&mut self) -> Result_<()> {
        let mut i = 0;
        loop {
            self.path.push(Crumb::Index(i));
            match self.lx.token() {
                Ok(Some(Tok::Object)) => {
                    let (trace, span) = self.zipkin_span()?;
                    self.emit(trace, span);
                }
                Ok(Some(Tok::Array)) => self.zipkin_list()?,
                Ok(Some(Tok::End)) => {
                    self.path.pop();
                    return Ok(());
                }
                Ok(Some(Tok::Null)) => {}
                Ok(Some(t)) => {
                    let d = t.describe();
                    return self.fail(format!("a Zipkin span must be an object, found {d}"));
                }
                Ok(None) => return self.fail("the input ends inside a list"),
                Err(e) => return Err(self.lex(e)),
            }
            self.path.pop();
            i += 1;
        }
    }

    fn zipkin_span(&mut self) -> Result_<(u128, Span)> {
        let mut trace = 0;
        let mut span = Span::default();
        let mut a = Attrs::default();
        let mut duration = 0;
        while let Some(k) = self.key(|k| match k {
            "traceId" => 0,
            "id" => 1,
            "parentId" => 2,
            "kind" => 3,
            "timestamp" => 4,
            "duration" => 5,
            "localEndpoint" => 6,
            "remoteEndpoint" => 7,
            "tags" => 8,
            _ => 9,
        })? {
            match k {
                0 => trace = self.id("traceId", 16)?,
                1 => span.id = self.id("id", 8)? as u64,
                2 => span.parent = self.id("parentId", 8)? as u64,
                3 => match self.string("kind", Kind::from_name)? {
                    Some(Some(kind)) => span.kind = kind,
                    Some(None) => self.sink.warn(Warning::BadKind),
                    None => {}
                },
                4 => span.start = self.time("timestamp", 1000)?,
                5 => duration = self.time("duration", 1000)?,
                6 | 7 => {
                    let name = self.zipkin_endpoint()?;
                    if k == 6 {
                        span.service = name;
                    } else if a.peer.0 < 5 {
                        a.peer = (5, name);
                    }
                }
                8 => self.zipkin_tags(&mut a)?,
                _ => self.skip()?,
            }
        }
        span.end = span.start.saturating_add(duration);
        a.apply(&mut span);
        Ok((trace, span))
    }

    fn zipkin_endpoint(&mut self) -> Result_<Sym> {
        let mut name = NONE;
        if self.object("an endpoint")? {
            while let Some(k) = self.key(|k| k == "serviceName")? {
                if k {
                    name = self.intern("serviceName")?;
                } else {
                    self.skip()?;
                }
            }
        }
        Ok(name)
    }

    fn zipkin_tags(&mut self, a: &mut Attrs) -> Result_<()> {
        if self.object("tags")? {
            loop {
                let names = self.names;
                let Some(w) = self.key(|k| attr(names, k))? else {
                    break;
                };
                if w == Attr::Other {
                    self.skip()?;
                } else if let Some(v) = self.tag_value()? {
                    a.set(w, &v, self.strings);
                }
            }
        }
        Ok(())
    }
}

/// A field path for messages: `resourceSpans[2].scopeSpans[0].spans[5]`.
fn path_of(crumbs: &[Crumb]) -> String {
    let mut s = String::new();
    for c in crumbs {
        match c {
            Crumb::Field(f) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(f);
            }
            Crumb::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// An id of `bytes` bytes (8 or 16) written as hex or base64; a 16-byte
/// field also takes an 8-byte hex id. 0 for an empty string.
pub fn parse_id(s: &str, bytes: usize) -> Option<u128> {
    if s.is_empty() {
        return Some(0);
    }
    let hex = |s: &str| {
        if s.len() <= 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            u128::from_str_radix(s, 16).ok()
        } else {
            None
        }
    };
    match s.len() {
        n if n == bytes * 2 => hex(s),
        16 if bytes == 16 => hex(s),
        _ => base64(s)
            .filter(|v| v.len() == bytes)
            .map(|v| v.iter().fold(0u128, |acc, &b| (acc << 8) | u128::from(b))),
    }
}

/// Standard or URL-safe base64, padded or not; at most 16 bytes.
fn base64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    if s.len() > 24 {
        return None;
    }
    let mut out = Vec::with_capacity(16);
    let (mut acc, mut bits) = (0u32, 0);
    for b in s.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A time: an integer count of units, or a decimal one, times `scale`.
fn parse_time(s: &str, scale: i64) -> Option<i64> {
    if let Ok(v) = s.parse::<i64>() {
        return Some(v.saturating_mul(scale));
    }
    if let Ok(v) = s.parse::<u64>() {
        return Some(i64::try_from(v).unwrap_or(i64::MAX).saturating_mul(scale));
    }
    let f = s.parse::<f64>().ok().filter(|f| f.is_finite())?;
    Some((f * scale as f64) as i64)
}
