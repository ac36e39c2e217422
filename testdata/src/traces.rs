//! Big trace files, generated: too large to keep, and shaped like what
//! the real tools export (the small hand-written ones live in
//! `testdata/traces/`, described in its README). Every trace is a
//! HotROD-like request in one of four variants ([`CHAINS`]): the
//! frontend's root SERVER span, an in-process INTERNAL span, and a
//! CLIENT + SERVER pair for each call; mysql and redis are uninstrumented
//! (a CLIENT span with `peer.service` only). Spans take 600 bytes
//! (Zipkin) to 1.3 KB (Jaeger), with the attributes the OpenTelemetry Go
//! instrumentation writes.
//!
//! Invariants: each generator streams to any [`Write`], holding at most
//! one batch of traces (about 256 KiB) in reused buffers; it is
//! deterministic for a seed; it writes only JSON-safe text, so nothing is
//! escaped; and it stops at the first trace that reaches the target, so a
//! file overshoots by less than one trace (at most about 22 KB). It returns what it
//! wrote ([`Written`]) for a test to compare with what a reader finds.
//!
//! Speed is the point (a bench writes 1 GB): no serde and no `fmt` on the
//! hot path, a SplitMix64 generator, hex and decimal written by hand.

use std::io::{self, Write};

/// The distinct chains, in the notation of `testdata/traces/README.md`,
/// and the share of traces (in percent) that have each.
pub const CHAINS: [(&str, u8); 4] = [
    (
        "frontend → [customer → [mysql], driver → [redis], route ×3]",
        50,
    ),
    (
        "frontend → [customer → [mysql], driver → [redis ×2], route]",
        25,
    ),
    ("frontend → [customer → [mysql]]", 15),
    ("frontend → [driver → [redis], route ×2]", 10),
];

/// The shape of each variant of [`CHAINS`]: does the frontend call
/// customer, how many redis calls driver makes (0: no driver call), and
/// how many route calls.
const SHAPES: [(bool, u8, u8); 4] = [(true, 1, 3), (true, 2, 1), (true, 0, 0), (false, 1, 2)];

/// What a generator wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Bytes written, exactly.
    pub bytes: u64,
    pub spans: u64,
    pub traces: u64,
    /// Each chain that occurs and its number of traces, in [`CHAINS`] order.
    pub chains: Vec<(&'static str, u64)>,
}

/// The formats the generators write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One OTLP/JSON `ExportTraceServiceRequest`: a single `resourceSpans`
    /// array; each batch of traces gives one entry per service.
    Otlp,
    /// The OpenTelemetry Collector's file exporter: one request per line; a
    /// trace's callee spans are on one line, its frontend spans (with the
    /// root) on the next.
    OtlpJsonl,
    /// The Jaeger query API's answer: `{"data": [trace, ...]}`.
    Jaeger,
    /// A Zipkin v2 list of spans; the customer and driver calls are shared
    /// spans (B3: client and server report one id), the route calls are
    /// parent and child.
    Zipkin,
}

impl Format {
    pub const NAMES: [&str; 4] = ["otlp", "otlp-jsonl", "jaeger", "zipkin"];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "otlp" => Some(Format::Otlp),
            "otlp-jsonl" => Some(Format::OtlpJsonl),
            "jaeger" => Some(Format::Jaeger),
            "zipkin" => Some(Format::Zipkin),
            _ => None,
        }
    }
}

/// One OTLP/JSON document of about `target_bytes`.
pub fn otlp_file(w: impl Write, target_bytes: u64, seed: u64) -> io::Result<Written> {
    generate(Format::Otlp, w, target_bytes, seed)
}

/// A Collector file-exporter file (JSON lines) of about `target_bytes`.
pub fn otlp_jsonl(w: impl Write, target_bytes: u64, seed: u64) -> io::Result<Written> {
    generate(Format::OtlpJsonl, w, target_bytes, seed)
}

/// A Jaeger query API answer of about `target_bytes`.
pub fn jaeger_file(w: impl Write, target_bytes: u64, seed: u64) -> io::Result<Written> {
    generate(Format::Jaeger, w, target_bytes, seed)
}

/// A Zipkin v2 span list of about `target_bytes`.
pub fn zipkin_file(w: impl Write, target_bytes: u64, seed: u64) -> io::Result<Written> {
    generate(Format::Zipkin, w, target_bytes, seed)
}

/// A file of `format` of about `target_bytes` (at least one trace).
pub fn generate(
    format: Format,
    mut w: impl Write,
    target_bytes: u64,
    seed: u64,
) -> io::Result<Written> {
    let mut g = Gen::new(format, seed);
    g.open();
    loop {
        g.trace();
        let pending = g.pending();
        if g.written + pending + g.closing() as u64 >= target_bytes {
            break;
        }
        if pending >= BATCH_BYTES {
            g.flush_batch(false);
            g.drain(&mut w)?;
        }
    }
    g.flush_batch(true);
    g.close();
    g.drain(&mut w)?;
    w.flush()?;
    let chains = CHAINS
        .iter()
        .zip(g.counts)
        .filter(|(_, n)| *n > 0)
        .map(|((c, _), n)| (*c, n))
        .collect();
    Ok(Written {
        bytes: g.written,
        spans: g.spans,
        traces: g.traces,
        chains,
    })
}

/// A batch is written out once its spans take this much.
const BATCH_BYTES: u64 = 256 << 10;

/// 2024-06-10T06:13:20Z, in nanoseconds.
const EPOCH_NS: u64 = 1_718_000_000_000_000_000;
const MS: u64 = 1_000_000;

// ---------------------------------------------------------------------------
// The topology

#[derive(Clone, Copy, PartialEq, Eq)]
enum Svc {
    Frontend = 0,
    Customer = 1,
    Driver = 2,
    Route = 3,
}

const SERVICES: [&str; 4] = ["frontend", "customer", "driver", "route"];
const PORTS: [u64; 4] = [8080, 8081, 8082, 8083];
const PODS: [&str; 4] = [
    "hotrod-frontend-6c8d9f7b5-x2kqp",
    "hotrod-customer-58b4f6d9c7-7lm4w",
    "hotrod-driver-7f9c8d6b44-qz8tn",
    "hotrod-route-5d7b9c8f66-hp2vd",
];
const IPS: [&str; 4] = ["10.42.0.17", "10.42.0.21", "10.42.0.23", "10.42.0.24"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

/// What a span is: its service, kind, name and attributes follow.
#[derive(Clone, Copy, PartialEq, Eq)]
enum What {
    Dispatch,
    BestEta,
    CallCustomer,
    Customer,
    Mysql,
    CallDriver,
    Driver,
    FindDrivers,
    GetDriver,
    CallRoute,
    Route,
    ComputeRoute,
}

impl What {
    fn svc(self) -> Svc {
        use What::*;
        match self {
            Dispatch | BestEta | CallCustomer | CallDriver | CallRoute => Svc::Frontend,
            Customer | Mysql => Svc::Customer,
            Driver | FindDrivers | GetDriver => Svc::Driver,
            Route | ComputeRoute => Svc::Route,
        }
    }

    fn kind(self) -> Kind {
        use What::*;
        match self {
            Dispatch | Customer | Driver | Route => Kind::Server,
            BestEta | ComputeRoute => Kind::Internal,
            _ => Kind::Client,
        }
    }

    /// The name, and the lowercase one Zipkin stores.
    fn names(self) -> (&'static str, &'static str) {
        use What::*;
        match self {
            Dispatch => ("HTTP GET /dispatch", "http get /dispatch"),
            BestEta => ("FindBestETA", "findbesteta"),
            CallCustomer | CallRoute => ("HTTP GET", "http get"),
            Customer => ("HTTP GET /customer", "http get /customer"),
            Mysql => ("SQL SELECT", "sql select"),
            CallDriver | Driver => (
                "driver.DriverService/FindNearest",
                "driver.driverservice/findnearest",
            ),
            FindDrivers => ("FindDriverIDs", "finddriverids"),
            GetDriver => ("GetDriver", "getdriver"),
            Route => ("HTTP GET /route", "http get /route"),
            ComputeRoute => ("computeRoute", "computeroute"),
        }
    }

    /// The uninstrumented peer a CLIENT span calls.
    fn peer(self) -> Option<(&'static str, &'static str, u64)> {
        match self {
            What::Mysql => Some(("mysql", "10.42.0.31", 3306)),
            What::FindDrivers | What::GetDriver => Some(("redis", "10.42.0.32", 6379)),
            _ => None,
        }
    }

    /// The service a CLIENT span calls (instrumented), for Zipkin's
    /// remote endpoint.
    fn callee(self) -> Option<Svc> {
        match self {
            What::CallCustomer => Some(Svc::Customer),
            What::CallDriver => Some(Svc::Driver),
            What::CallRoute => Some(Svc::Route),
            _ => None,
        }
    }
}

struct Span {
    what: What,
    id: u64,
    parent: Option<usize>,
    start: u64,
    end: u64,
    /// Per-span numbers for attribute values (coordinates, ports, sizes).
    n: u64,
}

/// One trace, rebuilt in place for each request.
struct Trace {
    hi: u64,
    lo: u64,
    customer: u64,
    spans: Vec<Span>,
}

/// SplitMix64: tiny, fast, and good enough for ids.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A non-zero id (zero means "none" in every format).
    fn id(&mut self) -> u64 {
        self.next() | 1 << 63
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

impl Trace {
    /// The trace id, 32 hex digits.
    fn push_id(&self, out: &mut Vec<u8>) {
        push_hex(out, self.hi);
        push_hex(out, self.lo);
    }

    fn push(
        &mut self,
        rng: &mut Rng,
        what: What,
        parent: Option<usize>,
        start: u64,
        dur: u64,
    ) -> usize {
        self.spans.push(Span {
            what,
            id: rng.id(),
            parent,
            start,
            end: start + dur,
            n: rng.next(),
        });
        self.spans.len() - 1
    }

    /// Rebuilds the trace as variant `v`, starting at `t0`.
    fn build(&mut self, rng: &mut Rng, v: usize, t0: u64) {
        let (customer, redis, routes) = SHAPES[v];
        self.spans.clear();
        self.hi = rng.next();
        self.lo = rng.id();
        self.customer = 100 + rng.below(900);
        let jitter = rng.below(MS);
        let root = self.push(rng, What::Dispatch, None, t0, 730 * MS + jitter);
        let eta = self.push(rng, What::BestEta, Some(root), t0 + MS, 728 * MS);
        let mut t = t0 + 2 * MS;
        if customer {
            let c = self.push(rng, What::CallCustomer, Some(eta), t, 301 * MS);
            let s = self.push(rng, What::Customer, Some(c), t + MS, 299 * MS);
            self.push(rng, What::Mysql, Some(s), t + 2 * MS, 297 * MS);
            t += 304 * MS;
        }
        if redis > 0 {
            let c = self.push(rng, What::CallDriver, Some(eta), t, 210 * MS);
            let s = self.push(rng, What::Driver, Some(c), t + MS, 208 * MS);
            let mut r = t + 2 * MS;
            for i in 0..redis {
                let what = if i == 0 {
                    What::FindDrivers
                } else {
                    What::GetDriver
                };
                self.push(rng, what, Some(s), r, 60 * MS);
                r += 61 * MS;
            }
            t += 214 * MS;
        }
        for _ in 0..routes {
            let c = self.push(rng, What::CallRoute, Some(eta), t, 60 * MS);
            let s = self.push(rng, What::Route, Some(c), t + MS, 58 * MS);
            self.push(rng, What::ComputeRoute, Some(s), t + 2 * MS, 55 * MS);
            t += 65 * MS;
        }
    }
}

// ---------------------------------------------------------------------------
// Text

/// A piece of an attribute value: text, a number in decimal, or a pair
/// of coordinates (`115,277`).
#[derive(Clone, Copy)]
enum Part<'a> {
    S(&'a str),
    N(u64),
    Xy(u64, u64),
}

fn push_dec(out: &mut Vec<u8>, mut v: u64) {
    let mut b = [0u8; 20];
    let mut i = b.len();
    loop {
        i -= 1;
        b[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&b[i..]);
}

fn push_hex(out: &mut Vec<u8>, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b = [0u8; 16];
    for (i, c) in b.iter_mut().enumerate() {
        *c = HEX[(v >> (60 - 4 * i) & 0xf) as usize];
    }
    out.extend_from_slice(&b);
}

fn push_parts(out: &mut Vec<u8>, parts: &[Part]) {
    for p in parts {
        match *p {
            Part::S(s) => out.extend_from_slice(s.as_bytes()),
            Part::N(n) => push_dec(out, n),
            Part::Xy(x, y) => {
                push_dec(out, x);
                out.push(b',');
                push_dec(out, y);
            }
        }
    }
}

/// How a format lists attributes, comma-separated: OTLP
/// `{"key":K,"value":{"stringValue":V}}`, Jaeger
/// `{"key":K,"type":"string","value":V}`, Zipkin `"K":"V"` (a member of
/// its `tags` object; every value a string).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Otlp,
    Jaeger,
    Zipkin,
}

/// Attributes being written into `out` in a format's [`Style`].
struct Attrs<'a> {
    out: &'a mut Vec<u8>,
    style: Style,
    first: bool,
}

impl<'a> Attrs<'a> {
    fn new(out: &'a mut Vec<u8>, style: Style) -> Self {
        Attrs {
            out,
            style,
            first: true,
        }
    }

    fn open(&mut self, key: &str, int: bool) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        let (before, after): (&[u8], &[u8]) = match (self.style, int) {
            (Style::Otlp, false) => (b"{\"key\":\"", b"\",\"value\":{\"stringValue\":\""),
            (Style::Otlp, true) => (b"{\"key\":\"", b"\",\"value\":{\"intValue\":\""),
            (Style::Jaeger, false) => (b"{\"key\":\"", b"\",\"type\":\"string\",\"value\":\""),
            (Style::Jaeger, true) => (b"{\"key\":\"", b"\",\"type\":\"int64\",\"value\":"),
            (Style::Zipkin, _) => (b"\"", b"\":\""),
        };
        self.out.extend_from_slice(before);
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(after);
    }

    fn close(&mut self, int: bool) {
        self.out.extend_from_slice(match (self.style, int) {
            (Style::Otlp, _) => b"\"}}",
            (Style::Jaeger, false) => b"\"}",
            (Style::Jaeger, true) => b"}",
            (Style::Zipkin, _) => b"\"",
        });
    }

    fn text(&mut self, key: &str, value: &[Part]) {
        self.open(key, false);
        push_parts(self.out, value);
        self.close(false);
    }

    fn int(&mut self, key: &str, value: u64) {
        self.open(key, true);
        push_dec(self.out, value);
        self.close(true);
    }
}

/// The attributes of `s`, as the OpenTelemetry Go instrumentation of
/// HotROD writes them.
fn attributes(tr: &Trace, s: &Span, out: &mut Attrs) {
    use Part::{N, S, Xy};
    let n = s.n;
    let svc = s.what.svc() as usize;
    let cust = tr.customer;
    // Coordinates of a route request, from the span's own number.
    let (a, b, c, d) = (
        n % 1000,
        n / 1000 % 1000,
        n / 1_000_000 % 1000,
        n / 1_000_000_000 % 1000,
    );
    match s.what {
        What::Dispatch | What::Customer | What::Route => {
            out.text("http.method", &[S("GET")]);
            out.text("http.scheme", &[S("http")]);
            out.text("net.host.name", &[S(SERVICES[svc])]);
            out.int("net.host.port", PORTS[svc]);
            out.text("net.sock.peer.addr", &[S(IPS[0])]);
            out.int("net.sock.peer.port", 32768 + n % 28000);
            out.text(
                "user_agent.original",
                &[S(if s.what == What::Dispatch {
                    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
                } else {
                    "Go-http-client/1.1"
                })],
            );
            match s.what {
                What::Dispatch => {
                    out.text(
                        "http.target",
                        &[
                            S("/dispatch?customer="),
                            N(cust),
                            S("&nonse=0."),
                            N(n >> 12),
                        ],
                    );
                    out.text("http.route", &[S("/dispatch")]);
                }
                What::Customer => {
                    out.text("http.target", &[S("/customer?customer="), N(cust)]);
                    out.text("http.route", &[S("/customer")]);
                }
                _ => {
                    out.text(
                        "http.target",
                        &[S("/route?dropoff="), Xy(a, b), S("&pickup="), Xy(c, d)],
                    );
                    out.text("http.route", &[S("/route")]);
                }
            }
            out.text("net.protocol.version", &[S("1.1")]);
            out.int("http.status_code", 200);
            out.int("http.response_content_length", 100 + n % 4000);
        }
        What::CallCustomer | What::CallRoute => {
            let to = if s.what == What::CallCustomer { 1 } else { 3 };
            out.text("http.method", &[S("GET")]);
            if to == 1 {
                out.text(
                    "http.url",
                    &[S("http://customer:8081/customer?customer="), N(cust)],
                );
            } else {
                out.text(
                    "http.url",
                    &[
                        S("http://route:8083/route?dropoff="),
                        Xy(a, b),
                        S("&pickup="),
                        Xy(c, d),
                    ],
                );
            }
            out.text("net.peer.name", &[S(SERVICES[to])]);
            out.int("net.peer.port", PORTS[to]);
            out.text("net.protocol.version", &[S("1.1")]);
            out.int("http.status_code", 200);
            out.int("http.response_content_length", 100 + n % 4000);
        }
        What::BestEta => {
            out.text("customer_id", &[N(cust)]);
            out.text("location", &[Xy(a, b)]);
            code(out, "frontend", "(*bestETA).Get", "best_eta.go", 71);
        }
        What::ComputeRoute => {
            out.text("pickup", &[Xy(c, d)]);
            out.text("dropoff", &[Xy(a, b)]);
            out.int("route.eta_seconds", 60 + n % 1800);
            code(out, "route", "computeRoute", "server.go", 96);
        }
        What::Mysql => {
            out.text("db.system", &[S("mysql")]);
            out.text("db.name", &[S("hotrod")]);
            out.text("db.user", &[S("hotrod")]);
            out.text(
                "db.statement",
                &[S("SELECT * FROM customer WHERE customer_id="), N(cust)],
            );
            out.text("db.operation", &[S("SELECT")]);
            out.text("db.sql.table", &[S("customer")]);
            out.text("peer.service", &[S("mysql")]);
            out.text("server.address", &[S("mysql")]);
            out.int("server.port", 3306);
            code(out, "customer", "(*database).Get", "database.go", 68);
        }
        What::CallDriver | What::Driver => {
            out.text("rpc.system", &[S("grpc")]);
            out.text("rpc.service", &[S("driver.DriverService")]);
            out.text("rpc.method", &[S("FindNearest")]);
            if s.what == What::CallDriver {
                out.text("net.peer.name", &[S("driver")]);
                out.int("net.peer.port", 8082);
            } else {
                out.text("net.sock.peer.addr", &[S(IPS[0])]);
                out.int("net.sock.peer.port", 32768 + n % 28000);
            }
            out.int("rpc.grpc.status_code", 0);
            out.text("location", &[Xy(a, b)]);
        }
        What::FindDrivers | What::GetDriver => {
            out.text("db.system", &[S("redis")]);
            if s.what == What::FindDrivers {
                out.text(
                    "db.statement",
                    &[S(
                        "GEOSEARCH drivers FROMLONLAT -122.41 37.77 BYRADIUS 5 km ASC COUNT 10",
                    )],
                );
            } else {
                out.text(
                    "db.statement",
                    &[S("HGETALL driver:T7"), N(10000 + n % 90000), S("C")],
                );
            }
            out.int("db.redis.database_index", 0);
            out.text("peer.service", &[S("redis")]);
            out.text("server.address", &[S("redis")]);
            out.int("server.port", 6379);
            if s.what == What::FindDrivers {
                code(out, "driver", "(*Redis).FindDriverIDs", "redis.go", 64);
            } else {
                code(out, "driver", "(*Redis).GetDriver", "redis.go", 85);
            }
        }
    }
}

/// The `code.*` attributes of a span made by hand in HotROD's `pkg`.
fn code(out: &mut Attrs, pkg: &str, function: &str, file: &str, line: u64) {
    use Part::S;
    out.text("code.function", &[S(function)]);
    out.text(
        "code.namespace",
        &[
            S("github.com/jaegertracing/jaeger/examples/hotrod/services/"),
            S(pkg),
        ],
    );
    out.text(
        "code.filepath",
        &[
            S("/go/src/github.com/jaegertracing/jaeger/examples/hotrod/services/"),
            S(pkg),
            S("/"),
            S(file),
        ],
    );
    out.int("code.lineno", line);
}

/// The resource attributes (OTLP) or process tags (Jaeger) of a service.
fn resource(svc: usize, with_name: bool, out: &mut Attrs) {
    use Part::S;
    if with_name {
        out.text("service.name", &[S(SERVICES[svc])]);
    }
    out.text("service.version", &[S("1.57.0")]);
    out.text("telemetry.sdk.language", &[S("go")]);
    out.text("telemetry.sdk.name", &[S("opentelemetry")]);
    out.text("telemetry.sdk.version", &[S("1.21.0")]);
    out.text("host.name", &[S(PODS[svc])]);
    out.text("k8s.namespace.name", &[S("hotrod")]);
    out.text("k8s.deployment.name", &[S(SERVICES[svc])]);
}

// ---------------------------------------------------------------------------
// The writer

struct Gen {
    format: Format,
    rng: Rng,
    trace: Trace,
    /// Text ready to be written out.
    out: Vec<u8>,
    /// OTLP: this batch's spans of each service, comma-separated.
    svc: [Vec<u8>; 4],
    /// OTLP JSON lines: the previous batch's frontend spans.
    held: Vec<u8>,
    /// Whether an item (resource entry, trace, span) was written yet.
    any: bool,
    /// What [`otlp_entry`] adds around each service's spans.
    overhead: [usize; 4],
    written: u64,
    spans: u64,
    traces: u64,
    counts: [u64; 4],
    clock: u64,
}

impl Gen {
    fn new(format: Format, seed: u64) -> Self {
        Gen {
            format,
            rng: Rng(seed),
            trace: Trace {
                hi: 0,
                lo: 0,
                customer: 0,
                spans: Vec::with_capacity(32),
            },
            out: Vec::with_capacity(BATCH_BYTES as usize + (64 << 10)),
            svc: Default::default(),
            held: Vec::new(),
            any: false,
            overhead: std::array::from_fn(|svc| {
                let mut v = Vec::new();
                otlp_entry(&mut v, svc, b"");
                v.len() + 1
            }),
            written: 0,
            spans: 0,
            traces: 0,
            counts: [0; 4],
            clock: EPOCH_NS,
        }
    }

    fn open(&mut self) {
        match self.format {
            Format::Otlp => self.out.extend_from_slice(b"{\"resourceSpans\":["),
            Format::OtlpJsonl => {}
            Format::Jaeger => self.out.extend_from_slice(b"{\"data\":["),
            Format::Zipkin => self.out.push(b'['),
        }
    }

    fn closing(&self) -> usize {
        match self.format {
            Format::Otlp => 3,
            // The last line (the held frontend spans) is counted in pending.
            Format::OtlpJsonl => 0,
            Format::Jaeger => JAEGER_CLOSE.len(),
            Format::Zipkin => 2,
        }
    }

    fn close(&mut self) {
        match self.format {
            Format::Otlp => self.out.extend_from_slice(b"]}\n"),
            Format::OtlpJsonl => {}
            Format::Jaeger => self.out.extend_from_slice(JAEGER_CLOSE),
            Format::Zipkin => self.out.extend_from_slice(b"]\n"),
        }
    }

    fn drain(&mut self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&self.out)?;
        self.written += self.out.len() as u64;
        self.out.clear();
        Ok(())
    }

    /// Bytes not yet written out: `out`, and the batch still to wrap.
    fn pending(&self) -> u64 {
        let mut n = self.out.len();
        if matches!(self.format, Format::Otlp | Format::OtlpJsonl) {
            for (i, b) in self.svc.iter().enumerate() {
                if !b.is_empty() {
                    n += b.len() + self.overhead[i];
                }
            }
            if !self.held.is_empty() {
                n += self.held.len() + self.overhead[0];
            }
            if self.format == Format::OtlpJsonl {
                // `{"resourceSpans":[` ... `]}\n`, twice at the end.
                n += 2 * 21;
            }
        }
        n as u64
    }

    /// One more trace, of a variant drawn by [`CHAINS`]' shares.
    fn trace(&mut self) {
        let mut pick = self.rng.below(100) as u8;
        let mut v = 0;
        while pick >= CHAINS[v].1 {
            pick -= CHAINS[v].1;
            v += 1;
        }
        self.clock += 37 * MS + self.rng.below(20 * MS);
        let t0 = self.clock;
        self.trace.build(&mut self.rng, v, t0);
        self.counts[v] += 1;
        self.traces += 1;
        self.spans += self.trace.spans.len() as u64;
        match self.format {
            Format::Otlp | Format::OtlpJsonl => self.otlp_trace(),
            Format::Jaeger => self.jaeger_trace(),
            Format::Zipkin => self.zipkin_trace(),
        }
    }

    fn otlp_trace(&mut self) {
        let tr = &self.trace;
        for s in &tr.spans {
            let out = &mut self.svc[s.what.svc() as usize];
            if !out.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"traceId\":\"");
            tr.push_id(out);
            out.extend_from_slice(b"\",\"spanId\":\"");
            push_hex(out, s.id);
            out.extend_from_slice(b"\",\"parentSpanId\":\"");
            if let Some(p) = s.parent {
                push_hex(out, tr.spans[p].id);
            }
            // The parent's context is remote for a SERVER span (0x300),
            // local otherwise (0x100): what the Go SDK writes.
            let remote = s.what.kind() == Kind::Server && s.parent.is_some();
            out.extend_from_slice(if remote {
                b"\",\"flags\":768,\"name\":\""
            } else {
                b"\",\"flags\":256,\"name\":\""
            });
            out.extend_from_slice(s.what.names().0.as_bytes());
            out.extend_from_slice(b"\",\"kind\":");
            push_dec(out, s.what.kind() as u64);
            out.extend_from_slice(b",\"startTimeUnixNano\":\"");
            push_dec(out, s.start);
            out.extend_from_slice(b"\",\"endTimeUnixNano\":\"");
            push_dec(out, s.end);
            out.extend_from_slice(b"\",\"attributes\":[");
            attributes(tr, s, &mut Attrs::new(out, Style::Otlp));
            out.extend_from_slice(b"],\"status\":{}}");
        }
    }

    /// Wraps the batch's spans into resource entries. JSON lines: the
    /// callees' spans and the previous batch's frontend spans make a line;
    /// at the end, the last frontend spans make the last line.
    fn flush_batch(&mut self, last: bool) {
        match self.format {
            Format::Otlp => {
                for svc in 0..4 {
                    if self.svc[svc].is_empty() {
                        continue;
                    }
                    if self.any {
                        self.out.push(b',');
                    }
                    self.any = true;
                    otlp_entry(&mut self.out, svc, &self.svc[svc]);
                    self.svc[svc].clear();
                }
            }
            Format::OtlpJsonl => {
                self.out.extend_from_slice(b"{\"resourceSpans\":[");
                let mut first = true;
                for svc in 1..4 {
                    if !self.svc[svc].is_empty() {
                        if !first {
                            self.out.push(b',');
                        }
                        first = false;
                        otlp_entry(&mut self.out, svc, &self.svc[svc]);
                        self.svc[svc].clear();
                    }
                }
                if !self.held.is_empty() {
                    if !first {
                        self.out.push(b',');
                    }
                    otlp_entry(&mut self.out, 0, &self.held);
                }
                self.out.extend_from_slice(b"]}\n");
                self.held.clear();
                std::mem::swap(&mut self.held, &mut self.svc[0]);
                if last && !self.held.is_empty() {
                    self.out.extend_from_slice(b"{\"resourceSpans\":[");
                    otlp_entry(&mut self.out, 0, &self.held);
                    self.out.extend_from_slice(b"]}\n");
                    self.held.clear();
                }
            }
            Format::Jaeger | Format::Zipkin => {}
        }
    }

    fn jaeger_trace(&mut self) {
        let tr = &self.trace;
        let out = &mut self.out;
        if self.any {
            out.push(b',');
        }
        self.any = true;
        // Process ids p1, p2, ... in the order services first appear.
        let mut pid = [0u8; 4];
        let mut next = 0;
        for s in &tr.spans {
            let svc = s.what.svc() as usize;
            if pid[svc] == 0 {
                next += 1;
                pid[svc] = next;
            }
        }
        out.extend_from_slice(b"{\"traceID\":\"");
        tr.push_id(out);
        out.extend_from_slice(b"\",\"spans\":[");
        for (i, s) in tr.spans.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"traceID\":\"");
            tr.push_id(out);
            out.extend_from_slice(b"\",\"spanID\":\"");
            push_hex(out, s.id);
            out.extend_from_slice(b"\",\"flags\":1,\"operationName\":\"");
            out.extend_from_slice(s.what.names().0.as_bytes());
            out.extend_from_slice(b"\",\"references\":[");
            if let Some(p) = s.parent {
                out.extend_from_slice(b"{\"refType\":\"CHILD_OF\",\"traceID\":\"");
                tr.push_id(out);
                out.extend_from_slice(b"\",\"spanID\":\"");
                push_hex(out, tr.spans[p].id);
                out.extend_from_slice(b"\"}");
            }
            out.extend_from_slice(b"],\"startTime\":");
            push_dec(out, s.start / 1000);
            out.extend_from_slice(b",\"duration\":");
            push_dec(out, (s.end - s.start) / 1000);
            out.extend_from_slice(b",\"tags\":[");
            let mut tags = Attrs::new(out, Style::Jaeger);
            attributes(tr, s, &mut tags);
            let kind = match s.what.kind() {
                Kind::Internal => "internal",
                Kind::Server => "server",
                Kind::Client => "client",
            };
            tags.text(
                "otel.library.name",
                &[Part::S(SCOPES[s.what.svc() as usize])],
            );
            tags.text("span.kind", &[Part::S(kind)]);
            tags.text("internal.span.format", &[Part::S("otlp")]);
            out.extend_from_slice(b"],\"logs\":[],\"processID\":\"p");
            push_dec(out, pid[s.what.svc() as usize] as u64);
            out.extend_from_slice(b"\",\"warnings\":null}");
        }
        out.extend_from_slice(b"],\"processes\":{");
        for p in 1..=next {
            let svc = pid.iter().position(|&x| x == p).unwrap_or(0);
            if p > 1 {
                out.push(b',');
            }
            out.extend_from_slice(b"\"p");
            push_dec(out, p as u64);
            out.extend_from_slice(b"\":{\"serviceName\":\"");
            out.extend_from_slice(SERVICES[svc].as_bytes());
            out.extend_from_slice(b"\",\"tags\":[");
            resource(svc, false, &mut Attrs::new(out, Style::Jaeger));
            out.extend_from_slice(b"]}");
        }
        out.extend_from_slice(b"},\"warnings\":null}");
    }

    fn zipkin_trace(&mut self) {
        let tr = &self.trace;
        let out = &mut self.out;
        // A shared call: its SERVER span reports the CLIENT span's id.
        let shared = |s: &Span| {
            s.what.kind() == Kind::Server
                && s.parent.is_some()
                && matches!(s.what, What::Customer | What::Driver)
        };
        let zid = |i: usize| {
            let s = &tr.spans[i];
            match s.parent {
                Some(p) if shared(s) => tr.spans[p].id,
                _ => s.id,
            }
        };
        for (i, s) in tr.spans.iter().enumerate() {
            if self.any {
                out.push(b',');
            }
            self.any = true;
            out.extend_from_slice(b"{\"traceId\":\"");
            tr.push_id(out);
            let parent = match s.parent {
                Some(p) if shared(s) => tr.spans[p].parent,
                p => p,
            };
            if let Some(p) = parent {
                out.extend_from_slice(b"\",\"parentId\":\"");
                push_hex(out, zid(p));
            }
            out.extend_from_slice(b"\",\"id\":\"");
            push_hex(out, zid(i));
            out.extend_from_slice(match s.what.kind() {
                Kind::Internal => b"\",\"name\":\"".as_slice(),
                Kind::Server => b"\",\"kind\":\"SERVER\",\"name\":\"",
                Kind::Client => b"\",\"kind\":\"CLIENT\",\"name\":\"",
            });
            out.extend_from_slice(s.what.names().1.as_bytes());
            out.extend_from_slice(b"\",\"timestamp\":");
            push_dec(out, s.start / 1000);
            out.extend_from_slice(b",\"duration\":");
            push_dec(out, (s.end - s.start) / 1000);
            let svc = s.what.svc() as usize;
            out.extend_from_slice(b",\"localEndpoint\":{\"serviceName\":\"");
            out.extend_from_slice(SERVICES[svc].as_bytes());
            out.extend_from_slice(b"\",\"ipv4\":\"");
            out.extend_from_slice(IPS[svc].as_bytes());
            out.extend_from_slice(b"\"}");
            if let Some((name, ip, port)) = s.what.peer() {
                out.extend_from_slice(b",\"remoteEndpoint\":{\"serviceName\":\"");
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"\",\"ipv4\":\"");
                out.extend_from_slice(ip.as_bytes());
                out.extend_from_slice(b"\",\"port\":");
                push_dec(out, port);
                out.push(b'}');
            } else if let Some(to) = s.what.callee() {
                out.extend_from_slice(b",\"remoteEndpoint\":{\"ipv4\":\"");
                out.extend_from_slice(IPS[to as usize].as_bytes());
                out.extend_from_slice(b"\",\"port\":");
                push_dec(out, PORTS[to as usize]);
                out.push(b'}');
            }
            out.extend_from_slice(b",\"tags\":{");
            attributes(tr, s, &mut Attrs::new(out, Style::Zipkin));
            out.extend_from_slice(if shared(s) {
                b"},\"shared\":true}".as_slice()
            } else {
                b"}}"
            });
        }
    }
}

const JAEGER_CLOSE: &[u8] = b"],\"total\":0,\"limit\":0,\"offset\":0,\"errors\":null}\n";

/// The instrumentation scope of each service's spans.
const SCOPES: [&str; 4] = [
    "github.com/jaegertracing/jaeger/examples/hotrod/services/frontend",
    "github.com/jaegertracing/jaeger/examples/hotrod/services/customer",
    "github.com/jaegertracing/jaeger/examples/hotrod/services/driver",
    "github.com/jaegertracing/jaeger/examples/hotrod/services/route",
];

/// One `resourceSpans` entry of `svc` around `spans`.
fn otlp_entry(out: &mut Vec<u8>, svc: usize, spans: &[u8]) {
    out.extend_from_slice(b"{\"resource\":{\"attributes\":[");
    resource(svc, true, &mut Attrs::new(out, Style::Otlp));
    out.extend_from_slice(b"]},\"scopeSpans\":[{\"scope\":{\"name\":\"");
    out.extend_from_slice(SCOPES[svc].as_bytes());
    out.extend_from_slice(b"\",\"version\":\"1.57.0\"},\"spans\":[");
    out.extend_from_slice(spans);
    out.extend_from_slice(
        b"],\"schemaUrl\":\"https://opentelemetry.io/schemas/1.21.0\"}],\"schemaUrl\":\"https://opentelemetry.io/schemas/1.21.0\"}",
    );
}

#[cfg(test)]
mod tests;
