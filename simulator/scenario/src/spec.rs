//! The scenario file as written: serde types with unknown fields refused,
//! and [`parse`], which reads YAML (`.yaml`, `.yml`) or JSON (`.json`) and
//! reports syntax and type errors at `line:column`.
//!
//! Strict where a typo would otherwise change the meaning: a mapping key
//! given twice, a null or a number where a name is expected (`name: ~` is
//! not the name "~"), an unknown value of a fixed vocabulary. A UTF-8
//! byte-order mark is accepted. Before the parser runs, [`parse`] refuses
//! nesting deeper than [`MAX_NESTING`] (the YAML parser's time grows faster
//! than linearly with flow nesting) and, for a document with aliases, an
//! expansion larger than [`MAX_EXPANSION`] times the file (one anchor
//! aliased thousands of times turned 204 KB into 4.2 GB).
//!
//! The JSON Schema `testdata/scenario.schema.json` describes the same
//! format; a test keeps the two in step.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The deepest a scenario's YAML or JSON may nest (the parsers' own
/// recursion limit).
pub const MAX_NESTING: usize = 128;

/// A document with aliases may expand to at most this many times its own
/// size (counting 8 bytes per node beside its text), plus 1 MiB.
pub const MAX_EXPANSION: usize = 8;

/// A whole scenario file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// The scenario's name.
    #[serde(deserialize_with = "text")]
    pub name: String,
    /// What it shows.
    #[serde(default, deserialize_with = "text")]
    pub description: String,
    /// Where calls are decided: the caller's sidecar, or the callee's
    /// waypoint.
    #[serde(default)]
    pub mesh: Mesh,
    /// Services by name.
    #[serde(deserialize_with = "unique_map")]
    pub services: BTreeMap<String, ServiceSpec>,
    /// Call chains: trees of calls, entered from the ingress.
    pub chains: Vec<ChainSpec>,
    /// Sandboxes: keys and their deployed forks.
    #[serde(default)]
    pub sandboxes: Vec<SandboxSpec>,
    /// The plugin configuration: derived when absent, a file, or inline.
    #[serde(default)]
    pub plugin: Option<PluginSpec>,
    /// The ingress gateway's own plugin configuration (Istio: a
    /// WasmPlugin selecting the gateway), for the entry call only; the
    /// place for `ingress` and `preview`. Default: `plugin`.
    #[serde(default)]
    pub gateway_plugin: Option<PluginSpec>,
    /// The filters' clock, so expiry and rate limits replay the same.
    #[serde(default)]
    pub clock: Option<ClockSpec>,
    /// Traffic groups, replayed in order.
    pub traffic: Vec<TrafficSpec>,
    /// Faults.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
}

/// A service.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// The host callers use (default: the service's name).
    #[serde(default, deserialize_with = "opt_text")]
    pub host: Option<String>,
    /// The port callers use.
    #[serde(default = "default_port")]
    pub port: u16,
    /// What the baseline propagates downstream.
    #[serde(default)]
    pub propagates: Propagation,
    /// The waypoint proxy that decides the calls to this service (ambient
    /// mesh only); none: its calls are decided nowhere.
    #[serde(default, deserialize_with = "opt_text")]
    pub waypoint: Option<String>,
}

fn default_port() -> u16 {
    80
}

/// How the mesh is built, which says where a call is decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mesh {
    /// Istio with sidecars: in the caller's outbound sidecar (the ingress
    /// gateway for the entry call).
    #[default]
    Sidecar,
    /// Istio ambient mode: at the waypoint of the service called; a
    /// service without one gets no decision.
    Ambient,
}

impl Mesh {
    /// `sidecar` or `ambient`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mesh::Sidecar => "sidecar",
            Mesh::Ambient => "ambient",
        }
    }
}

/// Which context headers a workload copies onto the calls it makes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Propagation {
    /// `baggage` and `tracestate`.
    #[default]
    Both,
    /// Only `baggage`.
    Baggage,
    /// Only `tracestate`.
    Tracestate,
    /// Nothing: the context is dropped here.
    None,
}

impl Propagation {
    /// Whether `baggage` is copied.
    pub fn baggage(self) -> bool {
        matches!(self, Propagation::Both | Propagation::Baggage)
    }

    /// Whether `tracestate` is copied.
    pub fn tracestate(self) -> bool {
        matches!(self, Propagation::Both | Propagation::Tracestate)
    }
}

/// A chain: the service the ingress calls, and what it calls next.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSpec {
    /// The chain's name.
    #[serde(deserialize_with = "text")]
    pub name: String,
    /// The entry service.
    #[serde(deserialize_with = "text")]
    pub call: String,
    /// The messaging system, when the entry is a message taken from a
    /// queue (see [`CallSpec::messaging`]).
    #[serde(default, deserialize_with = "opt_text")]
    pub messaging: Option<String>,
    /// Its calls.
    #[serde(default)]
    pub then: Vec<CallSpec>,
}

/// One call in a chain.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    /// The callee.
    #[serde(deserialize_with = "text")]
    pub call: String,
    /// The messaging system (`kafka`), when this is a message through a
    /// queue rather than a request, as `laneway import` marks it. A mesh
    /// routes no message: the replay treats it as a request, so the
    /// verdict there holds only if the consumer is reached the same way
    /// and the client library carries the baggage across the queue.
    #[serde(default, deserialize_with = "opt_text")]
    pub messaging: Option<String>,
    /// What the callee calls next.
    #[serde(default)]
    pub then: Vec<CallSpec>,
}

/// A sandbox.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSpec {
    /// The routing key.
    #[serde(deserialize_with = "text")]
    pub key: String,
    /// Deployed forks.
    pub forks: Vec<ForkSpec>,
}

/// A deployed fork.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForkSpec {
    /// The service it forks.
    #[serde(deserialize_with = "text")]
    pub service: String,
    /// Its host (default `<service host>-<key>`), optionally with a port.
    #[serde(default, deserialize_with = "opt_text")]
    pub destination: Option<String>,
    /// What the fork calls, when it differs from the baseline.
    pub then: Option<Vec<CallSpec>>,
    /// What the fork propagates (default: as the baseline).
    pub propagates: Option<Propagation>,
}

/// Where the plugin configuration comes from: exactly one of `derive`,
/// `file` or `inline` (checked by [`super::compile`], which reports a JSON
/// pointer).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    /// Derived from the sandboxes: every deployed fork.
    pub derive: Option<DeriveSpec>,
    /// A JSON file, relative to the scenario.
    #[serde(default, deserialize_with = "opt_text")]
    pub file: Option<String>,
    /// Inline. `Some(None)` when written as `null`, which is refused.
    #[serde(default, deserialize_with = "present")]
    pub inline: Option<Option<serde_json::Value>>,
}

/// `clock`: when request 0 is sent, and how far apart requests are.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSpec {
    /// RFC 3339 (default `2026-01-01T00:00:00Z`).
    #[serde(default, deserialize_with = "opt_text")]
    pub start: Option<String>,
    /// Milliseconds between two requests (default 0: all at once).
    #[serde(default)]
    pub step_ms: u64,
}

/// Options of a derived configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeriveSpec {
    /// What a key no sandbox has does.
    pub unknown_key: Option<UnknownKeySpec>,
    /// Routing-key member names.
    #[serde(default, deserialize_with = "opt_texts")]
    pub members: Option<Vec<String>>,
    /// The headers a key may travel in (default both).
    #[serde(default)]
    pub carriers: Option<Vec<CarrierSpec>>,
}

/// `plugin.derive.carriers[]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CarrierSpec {
    /// The `baggage` header.
    Baggage,
    /// The `tracestate` header.
    Tracestate,
}

/// `plugin.derive.unknown_key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownKeySpec {
    /// Send it to the baseline.
    Baseline,
    /// Answer locally (421).
    Reject,
}

/// The kind of a traffic group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// No routing key.
    #[default]
    Untagged,
    /// Tagged with `key` by a test client.
    Tagged,
    /// Meant for `key`, but the header is malformed.
    Malformed,
    /// Meant for `key`, but the key sits beyond the 8192-byte baggage limit.
    Oversized,
    /// Not a test request, yet it carries `key`.
    Spoofed,
}

impl Kind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Untagged => "untagged",
            Kind::Tagged => "tagged",
            Kind::Malformed => "malformed",
            Kind::Oversized => "oversized",
            Kind::Spoofed => "spoofed",
        }
    }
}

/// A traffic group.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficSpec {
    /// Unique name; requests are `NAME#0`, `NAME#1`, ...
    #[serde(deserialize_with = "text")]
    pub name: String,
    /// The chain.
    #[serde(deserialize_with = "text")]
    pub chain: String,
    /// How many requests.
    #[serde(default = "default_count")]
    pub count: u64,
    /// The kind.
    #[serde(default)]
    pub kind: Kind,
    /// The routing key.
    #[serde(default, deserialize_with = "opt_text")]
    pub key: Option<String>,
    /// Entry headers, replacing the ones the kind generates.
    pub headers: Option<HeadersSpec>,
    /// Sparse expectations for every request of the group.
    pub expect: Option<Expect>,
}

fn default_count() -> u64 {
    1
}

/// Entry header lines.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadersSpec {
    /// `baggage` lines.
    #[serde(default, deserialize_with = "texts")]
    pub baggage: Vec<String>,
    /// `tracestate` lines.
    #[serde(default, deserialize_with = "texts")]
    pub tracestate: Vec<String>,
    /// The client's address as the gateway sees it (`source.address`;
    /// default `10.0.0.1`).
    #[serde(default, deserialize_with = "opt_text")]
    pub source: Option<String>,
    /// The entry call's `:authority` (default: the entry service's host),
    /// for preview hosts.
    #[serde(default, deserialize_with = "opt_text")]
    pub authority: Option<String>,
    /// The entry call's `:path` (default `/`).
    #[serde(default, deserialize_with = "opt_text")]
    pub path: Option<String>,
}

/// Sparse expectations: only what is given is checked.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Every hop's workload, in call order.
    #[serde(default, deserialize_with = "opt_texts")]
    pub path: Option<Vec<String>>,
    /// The status the client gets.
    pub status: Option<u16>,
    /// Per hop, by `SERVICE` or `CALLER->SERVICE`.
    #[serde(default, deserialize_with = "opt_unique_map")]
    pub hops: Option<BTreeMap<String, HopExpect>>,
    /// Misses this traffic is expected to have; the global miss check
    /// accepts exactly these.
    pub misses: Option<Vec<MissExpect>>,
}

/// Expectations for one hop.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HopExpect {
    /// `fork`, `baseline`, `reject` or `failed`.
    #[serde(default, deserialize_with = "opt_text")]
    pub route: Option<String>,
    /// The decision reason: the filter's, or (ambient mesh) `no_waypoint`.
    #[serde(default, deserialize_with = "opt_text")]
    pub reason: Option<String>,
    /// The workload that served the hop.
    #[serde(default, deserialize_with = "opt_text")]
    pub served_by: Option<String>,
}

/// An expected miss.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissExpect {
    /// The service whose fork was missed.
    #[serde(deserialize_with = "text")]
    pub service: String,
    /// The cause: `context_dropped`, `malformed`, `conflict`,
    /// `not_configured`, `rejected`, `unavailable`, `failed`, `no_key`,
    /// `other_fork`, `stripped`, `expired`, `limited`, `looped` or
    /// (ambient mesh) `no_waypoint`.
    #[serde(deserialize_with = "text")]
    pub cause: String,
}

/// A fault: exactly one of its fields (checked by [`super::compile`]).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// The fork of `service` in sandbox `key` is down: requests routed to
    /// it fail with 503.
    pub fork_unavailable: Option<ForkUnavailable>,
    /// A service stops propagating context.
    pub drop_context: Option<DropContext>,
    /// The plugin configuration changes before request `at_request`.
    pub config_swap: Option<ConfigSwap>,
}

/// `fork_unavailable`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForkUnavailable {
    /// The sandbox.
    #[serde(deserialize_with = "text")]
    pub key: String,
    /// The service.
    #[serde(deserialize_with = "text")]
    pub service: String,
}

/// `drop_context`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropContext {
    /// The service.
    #[serde(deserialize_with = "text")]
    pub service: String,
    /// `any` (default), `baseline`, or a sandbox key (its fork).
    #[serde(default, deserialize_with = "opt_text")]
    pub workload: Option<String>,
    /// The first request affected (default 0).
    pub from_request: Option<u64>,
}

/// `config_swap`. An invalid configuration is allowed: the filter must
/// refuse it and keep the last good one.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSwap {
    /// The first request that sees the new configuration.
    pub at_request: u64,
    /// The new configuration.
    pub plugin: PluginSpec,
}

/// Parses YAML or JSON by extension. Errors are `(line:column, reason)`
/// (or `(String::new(), reason)` when there is no position).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<ScenarioSpec, (String, String)> {
    let (bom, bytes) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (3, rest),
        None => (0, bytes),
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        (
            String::new(),
            format!(
                "not UTF-8: invalid byte at offset {}",
                e.valid_up_to() + bom
            ),
        )
    })?;
    let scan = scan(text)?;
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if json {
        serde_json::from_str(text).map_err(|e| {
            (
                format!("{}:{}", e.line(), e.column()),
                strip_position(&e.to_string()),
            )
        })
    } else {
        let yaml_error = |e: serde_norway::Error| {
            let reason = strip_position(&e.to_string());
            match e.location() {
                Some(l) => {
                    let (line, column) =
                        duplicate_at(text, &reason, l.line()).unwrap_or((l.line(), l.column()));
                    (format!("{line}:{column}"), reason)
                }
                None => (String::new(), e.to_string()),
            }
        };
        if scan.aliases {
            let budget = MAX_EXPANSION
                .saturating_mul(text.len())
                .saturating_add(1 << 20);
            let used = Cell::new(0);
            Count {
                used: &used,
                budget,
            }
            .deserialize(serde_norway::Deserializer::from_str(text))
            .map_err(yaml_error)?;
        }
        serde_norway::from_str(text).map_err(yaml_error)
    }
}

/// What the scan before the parser found.
struct Scan {
    /// Whether the text has an anchor or an alias.
    aliases: bool,
}

/// A quick pass over the text, before any parser: finds the flow nesting
/// (`[` and `{`) past [`MAX_NESTING`] and whether anchors or aliases are
/// used. Conservative: brackets and quotes count only where a YAML token
/// can start, never inside quoted scalars or comments.
fn scan(text: &str) -> Result<Scan, (String, String)> {
    let mut depth = 0usize;
    let (mut line, mut col) = (1usize, 0usize);
    // The last significant byte, and whether white space followed it.
    let mut prev = b'\n';
    let mut spaced = true;
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    let mut comment = false;
    let mut aliases = false;
    for &b in text.as_bytes() {
        col += 1;
        if b == b'\n' {
            line += 1;
            col = 0;
            comment = false;
            if quote.is_none() {
                prev = b'\n';
            }
            spaced = true;
            continue;
        }
        if comment {
            continue;
        }
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if q == b'"' && b == b'\\' {
                escaped = true;
            } else if b == q {
                quote = None;
                prev = b;
                spaced = false;
            }
            continue;
        }
        if b == b' ' || b == b'\t' {
            spaced = true;
            continue;
        }
        let starts = depth > 0 || matches!(prev, b'\n' | b':' | b'-' | b',' | b'[' | b'{' | b'?');
        let token = starts || spaced;
        match b {
            b'#' if spaced => {
                comment = true;
                continue;
            }
            b'"' | b'\'' if token => quote = Some(b),
            b'[' | b'{' if starts => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err((
                        format!("{line}:{col}"),
                        format!("nesting deeper than {MAX_NESTING} levels"),
                    ));
                }
            }
            b']' | b'}' if depth > 0 => depth -= 1,
            b'&' | b'*' if token => aliases = true,
            // Inside a plain scalar a bracket is text, and so is what
            // follows it.
            b'[' | b'{' => {
                prev = b'a';
                spaced = false;
                continue;
            }
            _ => {}
        }
        prev = b;
        spaced = false;
    }
    Ok(Scan { aliases })
}

/// Walks a document as the deserializer expands it (aliases replayed),
/// charging 8 bytes per node plus each scalar's text, and stops with an
/// error once `budget` is spent. Allocates nothing of its own.
struct Count<'a> {
    used: &'a Cell<usize>,
    budget: usize,
}

impl Count<'_> {
    fn charge<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        let used = self.used.get().saturating_add(8).saturating_add(bytes);
        self.used.set(used);
        if used > self.budget {
            return Err(E::custom(format_args!(
                "the document expands to more than {} bytes through its aliases \
                 ({MAX_EXPANSION} times the file, plus 1 MiB)",
                self.budget
            )));
        }
        Ok(())
    }

    fn again(&self) -> Count<'_> {
        Count {
            used: self.used,
            budget: self.budget,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.charge(0)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.charge(0)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.charge(0)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.charge(0)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.charge(v.len())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.charge(0)
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.charge(0)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.charge::<D::Error>(0)?;
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.charge::<A::Error>(0)?;
        while seq.next_element_seed(self.again())?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.charge::<A::Error>(0)?;
        while map.next_key_seed(self.again())?.is_some() {
            map.next_value_seed(self.again())?;
        }
        Ok(())
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use de::VariantAccess;
        let ((), variant) = data.variant_seed(self.again())?;
        variant.newtype_variant_seed(self)
    }
}

/// A string, and only a string: a null, a number or a boolean where a
/// name is expected is an error (YAML would otherwise read `name: ~` as
/// "~" and `key: 007` as 7).
struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Err(E::custom(
            "null where a string is expected (quote it, \"~\", if you mean the text)",
        ))
    }
    fn visit_none<E: de::Error>(self) -> Result<String, E> {
        self.visit_unit()
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Err(E::custom(format_args!(
            "found the boolean {v} where a string is expected; quote it"
        )))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Err(E::custom(format_args!(
            "found the number {v} where a string is expected; quote it"
        )))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Err(E::custom(format_args!(
            "found the number {v} where a string is expected; quote it"
        )))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Err(E::custom(format_args!(
            "found the number {v} where a string is expected; quote it"
        )))
    }
}

struct TextSeed;

impl<'de> DeserializeSeed<'de> for TextSeed {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(TextVisitor)
}

/// An optional string: null means not given.
fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or null")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<String>, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Option<String>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
            d.deserialize_any(TextVisitor).map(Some)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<String>, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Option<String>, E> {
            Ok(Some(v))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<String>, E> {
            TextVisitor.visit_bool(v).map(Some)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<String>, E> {
            TextVisitor.visit_u64(v).map(Some)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<String>, E> {
            TextVisitor.visit_i64(v).map(Some)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<String>, E> {
            TextVisitor.visit_f64(v).map(Some)
        }
    }
    d.deserialize_any(V)
}

struct TextsVisitor;

impl<'de> Visitor<'de> for TextsVisitor {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of strings")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut out = Vec::new();
        while let Some(s) = seq.next_element_seed(TextSeed)? {
            out.push(s);
        }
        Ok(out)
    }
}

fn texts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_seq(TextsVisitor)
}

fn opt_texts<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    d.deserialize_seq(TextsVisitor).map(Some)
}

/// A mapping whose keys are strings, each given once: a second `services:`
/// entry or `hops:` entry with the same key is an error, not a silent
/// overwrite.
struct UniqueMap<V>(PhantomData<V>);

impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueMap<V> {
    type Value = BTreeMap<String, V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key_seed(TextSeed)? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key {}",
                    laneway_core::config::cut(&key)
                )));
            }
            let value = map.next_value()?;
            out.insert(key, value);
        }
        Ok(out)
    }
}

fn unique_map<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
    d: D,
) -> Result<BTreeMap<String, V>, D::Error> {
    d.deserialize_map(UniqueMap(PhantomData))
}

fn opt_unique_map<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, V>>, D::Error> {
    d.deserialize_map(UniqueMap(PhantomData)).map(Some)
}

/// Whether the field was given at all: `Some(None)` for an explicit null.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<serde_json::Value>>, D::Error> {
    Option::<serde_json::Value>::deserialize(d).map(Some)
}

/// Where a duplicate key stands. The YAML parser reports the position of
/// the mapping that holds it; this finds, from that line on, the second
/// line that opens with the same key at the same indentation.
fn duplicate_at(text: &str, reason: &str, from: usize) -> Option<(usize, usize)> {
    let quoted = reason.split("duplicate key ").nth(1)?;
    let key = quoted.strip_prefix('"')?.strip_suffix('"')?;
    if key.contains('\\') || key.contains('"') {
        return None;
    }
    let mut indent = None;
    for (i, line) in text.lines().enumerate().skip(from.saturating_sub(1)) {
        let body = line.trim_start_matches(' ');
        let at = line.len() - body.len();
        let body = body.strip_prefix("- ").unwrap_or(body);
        let opens = [
            format!("{key}:"),
            format!("\"{key}\":"),
            format!("'{key}':"),
        ]
        .iter()
        .any(|k| body.starts_with(k.as_str()));
        if !opens {
            continue;
        }
        match indent {
            None => indent = Some(at),
            Some(first) if first == at => return Some((i + 1, at + 1)),
            Some(_) => {}
        }
    }
    None
}

/// The parsers append " at line L column C"; the position is reported
/// separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = "name: n\nservices: {a: {}}\nchains: [{name: c, call: a}]\ntraffic: [{name: t, chain: c}]\n";

    /// Regression (issue 8): a UTF-8 byte-order mark broke a valid YAML
    /// scenario (`missing field name`) and gave JSON a misleading message.
    #[test]
    fn a_byte_order_mark_is_accepted() {
        let yaml = [&b"\xEF\xBB\xBF"[..], SMALL.as_bytes()].concat();
        assert_eq!(parse(Path::new("s.yaml"), &yaml).unwrap().name, "n");
        let json = br#"{"name":"n","services":{"a":{}},"chains":[{"name":"c","call":"a"}],"traffic":[{"name":"t","chain":"c"}]}"#;
        let json = [&b"\xEF\xBB\xBF"[..], &json[..]].concat();
        assert_eq!(parse(Path::new("s.json"), &json).unwrap().name, "n");
    }

    #[test]
    fn invalid_utf8_names_its_offset() {
        let err = parse(Path::new("s.yaml"), b"\xEF\xBB\xBFname: \xC3(").unwrap_err();
        assert_eq!(err.1, "not UTF-8: invalid byte at offset 9");
    }

    /// Anchors and aliases a person writes stay well inside the budget.
    #[test]
    fn ordinary_aliases_are_fine() {
        let yaml = "name: n\nservices: {a: {}}\nchains: [{name: c, call: a}]
traffic:
  - {name: t1, chain: c, kind: spoofed, key: k, headers: &h {baggage: [x=1]}}
  - {name: t2, chain: c, kind: spoofed, key: k, headers: *h}\n";
        let spec = parse(Path::new("s.yaml"), yaml.as_bytes()).unwrap();
        assert_eq!(spec.traffic[1].headers.as_ref().unwrap().baggage, ["x=1"]);
    }

    #[test]
    fn the_scan_ignores_brackets_in_quotes_comments_and_scalars() {
        let deep = "[".repeat(200);
        let yaml = format!(
            "name: \"{deep}\"\n# {deep}\ndescription: a{deep}\nservices: {{a: {{}}}}\nchains: [{{name: c, call: a}}]\ntraffic: [{{name: t, chain: c}}]\n"
        );
        assert!(parse(Path::new("s.yaml"), yaml.as_bytes()).is_ok());
        let nested = format!("name: {deep}");
        let err = parse(Path::new("s.yaml"), nested.as_bytes()).unwrap_err();
        assert_eq!(
            err,
            ("1:135".into(), "nesting deeper than 128 levels".into())
        );
    }
}
