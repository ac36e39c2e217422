//! The scenario file as written: serde types with unknown fields refused,
//! and [`parse`], which reads YAML (`.yaml`, `.yml`) or JSON (`.json`) and
//! reports syntax and type errors at `line:column`.
//!
//! The JSON Schema `testdata/scenario.schema.json` describes the same
//! format; a test keeps the two in step.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// A whole scenario file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// The scenario's name.
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: String,
    /// Services by name.
    pub services: BTreeMap<String, ServiceSpec>,
    /// Call chains: trees of calls, entered from the ingress.
    pub chains: Vec<ChainSpec>,
    /// Sandboxes: keys and their deployed forks.
    #[serde(default)]
    pub sandboxes: Vec<SandboxSpec>,
    /// The plugin configuration: derived (default), a file, or inline.
    #[serde(default)]
    pub plugin: PluginSpec,
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
    pub host: Option<String>,
    /// The port callers use.
    #[serde(default = "default_port")]
    pub port: u16,
    /// What the baseline propagates downstream.
    #[serde(default)]
    pub propagates: Propagation,
}

fn default_port() -> u16 {
    80
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
    pub name: String,
    /// The entry service.
    pub call: String,
    /// Its calls.
    #[serde(default)]
    pub then: Vec<CallSpec>,
}

/// One call in a chain.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    /// The callee.
    pub call: String,
    /// What the callee calls next.
    #[serde(default)]
    pub then: Vec<CallSpec>,
}

/// A sandbox.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSpec {
    /// The routing key.
    pub key: String,
    /// Deployed forks.
    pub forks: Vec<ForkSpec>,
}

/// A deployed fork.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForkSpec {
    /// The service it forks.
    pub service: String,
    /// Its host (default `<service host>-<key>`), optionally with a port.
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
    pub file: Option<String>,
    /// Inline.
    pub inline: Option<serde_json::Value>,
}

/// Options of a derived configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeriveSpec {
    /// `"baseline"` or `"reject"`.
    pub unknown_key: Option<String>,
    /// Routing-key member names.
    pub members: Option<Vec<String>>,
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
    pub name: String,
    /// The chain.
    pub chain: String,
    /// How many requests.
    #[serde(default = "default_count")]
    pub count: u64,
    /// The kind.
    #[serde(default)]
    pub kind: Kind,
    /// The routing key.
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
    #[serde(default)]
    pub baggage: Vec<String>,
    /// `tracestate` lines.
    #[serde(default)]
    pub tracestate: Vec<String>,
}

/// Sparse expectations: only what is given is checked.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Every hop's workload, in call order.
    pub path: Option<Vec<String>>,
    /// The status the client gets.
    pub status: Option<u16>,
    /// Per hop, by `SERVICE` or `CALLER->SERVICE`.
    pub hops: Option<BTreeMap<String, HopExpect>>,
    /// Misses this traffic is expected to have; the global miss check
    /// accepts exactly these.
    pub misses: Option<Vec<MissExpect>>,
}

/// Expectations for one hop.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HopExpect {
    /// `fork`, `baseline` or `reject`.
    pub route: Option<String>,
    /// The decision reason.
    pub reason: Option<String>,
    /// The workload that served the hop.
    pub served_by: Option<String>,
}

/// An expected miss.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissExpect {
    /// The service whose fork was missed.
    pub service: String,
    /// The cause: `context_dropped`, `malformed`, `conflict`,
    /// `not_configured`, `rejected` or `unavailable`.
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
    pub key: String,
    /// The service.
    pub service: String,
}

/// `drop_context`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropContext {
    /// The service.
    pub service: String,
    /// `any` (default), `baseline`, or a sandbox key (its fork).
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

/// Parses YAML or JSON by extension. Errors are `(line:column, reason)`.
pub fn parse(path: &Path, text: &str) -> Result<ScenarioSpec, (String, String)> {
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
        serde_norway::from_str(text).map_err(|e| match e.location() {
            Some(l) => (
                format!("{}:{}", l.line(), l.column()),
                strip_position(&e.to_string()),
            ),
            None => (String::new(), e.to_string()),
        })
    }
}

/// The parsers append " at line L column C"; the position is reported
/// separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}
