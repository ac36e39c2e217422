//! The one span model every format is read into: a few fixed-size fields
//! per span, with strings interned, so that open traces cost about 64
//! bytes a span whatever the input's attributes.

use std::collections::HashMap;

/// An interned string; [`NONE`] is no string.
pub type Sym = u32;

/// No string.
pub const NONE: Sym = 0;

/// Distinct strings kept; past it, new strings are dropped with a warning.
pub const MAX_STRINGS: usize = 1_000_000;

/// Interned strings.
#[derive(Debug)]
pub struct Strings {
    index: HashMap<Box<str>, Sym>,
    all: Vec<Box<str>>,
    /// Strings dropped because the table was full.
    pub dropped: u64,
}

impl Default for Strings {
    fn default() -> Strings {
        Strings {
            index: HashMap::new(),
            all: vec!["".into()],
            dropped: 0,
        }
    }
}

impl Strings {
    /// The symbol of `s`, interning it; [`NONE`] for an empty string or a
    /// full table.
    pub fn intern(&mut self, s: &str) -> Sym {
        if s.is_empty() {
            return NONE;
        }
        if let Some(&sym) = self.index.get(s) {
            return sym;
        }
        if self.all.len() > MAX_STRINGS {
            self.dropped += 1;
            return NONE;
        }
        let sym = self.all.len() as Sym;
        self.all.push(s.into());
        self.index.insert(s.into(), sym);
        sym
    }

    /// The symbol of `s` if it is interned.
    pub fn find(&self, s: &str) -> Option<Sym> {
        self.index.get(s).copied()
    }

    /// The string of `sym` (empty for [`NONE`]).
    pub fn get(&self, sym: Sym) -> &str {
        self.all.get(sym as usize).map_or("", |s| s)
    }
}

/// A span's kind, as OpenTelemetry names them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Not given.
    #[default]
    Unspecified,
    /// In-process work.
    Internal,
    /// The callee's side of a call.
    Server,
    /// The caller's side of a call.
    Client,
    /// A message sent to a queue.
    Producer,
    /// A message taken from a queue.
    Consumer,
}

impl Kind {
    /// From OTLP's integer.
    pub fn from_number(n: i64) -> Option<Kind> {
        Some(match n {
            0 => Kind::Unspecified,
            1 => Kind::Internal,
            2 => Kind::Server,
            3 => Kind::Client,
            4 => Kind::Producer,
            5 => Kind::Consumer,
            _ => return None,
        })
    }

    /// From a name: OTLP's `SPAN_KIND_SERVER`, Jaeger's `server`, Zipkin's
    /// `SERVER`.
    pub fn from_name(s: &str) -> Option<Kind> {
        let s = s.strip_prefix("SPAN_KIND_").unwrap_or(s);
        Some(match s.to_ascii_lowercase().as_str() {
            "unspecified" | "" => Kind::Unspecified,
            "internal" => Kind::Internal,
            "server" => Kind::Server,
            "client" => Kind::Client,
            "producer" => Kind::Producer,
            "consumer" => Kind::Consumer,
            _ => return None,
        })
    }

    /// Whether the span is the receiving side of a call or a message.
    pub fn entry(self) -> bool {
        matches!(self, Kind::Server | Kind::Consumer)
    }

    /// Whether the span is the sending side of a call or a message.
    pub fn exit(self) -> bool {
        matches!(self, Kind::Client | Kind::Producer)
    }

    /// Whether the span is one side of a message rather than a call.
    pub fn messaging(self) -> bool {
        matches!(self, Kind::Producer | Kind::Consumer)
    }
}

/// One span, as every format is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// Its id (0: none given).
    pub id: u64,
    /// Its parent's id (0: a root).
    pub parent: u64,
    /// Start, in nanoseconds since the epoch.
    pub start: i64,
    /// End, in nanoseconds since the epoch.
    pub end: i64,
    /// The service that recorded it.
    pub service: Sym,
    /// For a client or producer span: the service it called, when the span
    /// names it (`peer.service`, `server.address`, `net.peer.name`,
    /// `db.system`, Zipkin's `remoteEndpoint.serviceName`).
    pub peer: Sym,
    /// The routing key the span recorded (a baggage member copied into an
    /// attribute).
    pub key: Sym,
    /// The workload that recorded it (`k8s.deployment.name`,
    /// `service.version` or the host name).
    pub workload: Sym,
    /// The messaging system (`messaging.system`).
    pub messaging: Sym,
    /// Its kind.
    pub kind: Kind,
    /// What recorded it, when an Istio proxy did: see [`Proxy`].
    pub proxy: Proxy,
}

/// Which Istio proxy recorded a span (from `node_id`, `upstream_cluster`,
/// `istio.*` or `component: proxy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proxy {
    /// An application, or nothing says otherwise.
    #[default]
    None,
    /// A sidecar (or a waypoint): it names services `name.namespace`.
    Sidecar,
    /// A gateway (`node_id` `router~…`): the mesh's ingress.
    Gateway,
}

/// What a format reader hands on: a span of a trace, in input order.
pub trait SpanSink {
    /// Takes one span.
    fn span(&mut self, trace: u128, span: Span, strings: &mut Strings);
    /// Reports something the reader did about the input.
    fn warn(&mut self, what: Warning);
}

/// Things a reader tells about the input; each becomes one counted warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Warning {
    /// A Jaeger span named a process the trace does not list.
    UnknownProcess,
    /// A span without a trace or span id was left out.
    NoId,
    /// A span without a service name got `unknown`.
    NoService,
    /// A span's kind could not be read; taken as unspecified.
    BadKind,
    /// Strings past the table's limit were dropped.
    TooManyStrings,
}
