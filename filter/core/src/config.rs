//! The plugin configuration: JSON, exactly as Istio's WasmPlugin
//! `pluginConfig` reaches the plugin (a `google.protobuf.StringValue`).
//!
//! Two steps, as in pingora's configuration module: [`Config::parse`] reads
//! the text into typed fields, rejecting bad JSON, duplicate object keys,
//! unknown fields and wrong types; [`Config::validate`] checks meaning:
//! versions, names, hosts, duplicates. Every error names the field path
//! (`sandboxes[2].forks[0].service`) and the reason. The filter's
//! `on_configure` and the CLI's `laneway validate` share this code.
//!
//! Shape (version 1; every later addition is a new optional field, so a
//! version 1 file keeps its meaning):
//!
//! ```json
//! {
//!   "version": 1,
//!   "routing_key": { "members": ["sd-routing-key", "sd-sandbox"] },
//!   "unknown_key": { "policy": "baseline" },
//!   "sandboxes": [
//!     { "key": "qwblp48fpmb30",
//!       "forks": [ { "service": "location", "destination": "location-qwblp48fpmb30" } ] }
//!   ]
//! }
//! ```
//!
//! `routing_key` may also say which headers carry a key, and whether the
//! proxy joins their repeated lines (see [`RoutingKey`]):
//! `{ "members": [...], "carriers": ["baggage"], "joined": true }`; the
//! defaults are both carriers, not joined.
//!
//! Guards (all optional; each absent field means "off"):
//!
//! ```json
//! {
//!   "ingress": { "trusted_cidrs": ["10.0.0.0/8"], "secrets": ["<base64, 32-64 bytes>"],
//!                "max_ttl_seconds": 604800 },
//!   "preview": { "hosts": [ { "pattern": "*.preview.example.com",
//!                             "service": "frontend.hotrod.svc.cluster.local" } ],
//!                "query_param": "sd-routing-key" },
//!   "rate_limit": { "requests_per_second": 50, "burst": 100 },
//!   "loop_guard": { "max_hops": 32 },
//!   "sandboxes": [ { "key": "k", "expires_at": "2026-12-31T00:00:00Z",
//!                    "rate_limit": { "requests_per_second": 5, "burst": 10 },
//!                    "forks": [ { "service": "s", "destination": "d",
//!                                 "expires_at": "2026-12-24T00:00:00Z" } ] } ]
//! }
//! ```
//!
//! `ingress` makes this filter the edge (a gateway): routing keys of
//! requests it does not trust are removed. `preview` needs `ingress`.
//!
//! Allocates (configure time only); never panics on any input.

use alloc::borrow::{Cow, ToOwned};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::authority;
use crate::tracestate;

/// The configuration version this build reads.
pub const VERSION: u64 = 1;
/// Default routing-key member names, in precedence order.
pub const DEFAULT_MEMBERS: [&str; 2] = ["sd-routing-key", "sd-sandbox"];
/// At most this many routing-key member names.
pub const MAX_MEMBER_NAMES: usize = 8;
/// Default status of a rejected request.
pub const DEFAULT_REJECT_STATUS: u16 = 421;
/// Longest routing key.
pub const MAX_KEY_LEN: usize = 128;
/// The largest configuration text (128 MiB: a million sandboxes of one
/// fork each take about 80 MB). With [`MAX_SANDBOXES`] and [`MAX_FORKS`]
/// it bounds what loading one costs: about 11 bytes of heap per byte of
/// text natively, and under Envoy's 1 GiB of wasm memory per VM at all
/// three limits at once (BENCHMARKS.md, `make bench-config`).
pub const MAX_CONFIG_BYTES: usize = 128 << 20;
/// At most this many sandboxes in one configuration.
pub const MAX_SANDBOXES: usize = 1_000_000;
/// At most this many forks, over all sandboxes.
pub const MAX_FORKS: usize = 1_000_000;

/// A parsed plugin configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Always [`VERSION`] once validated.
    pub version: u64,
    /// Where the routing key is read from.
    pub routing_key: RoutingKey,
    /// What happens to a key that no sandbox has.
    pub unknown_key: UnknownKey,
    /// The sandboxes, each a key and its forks (a route group).
    pub sandboxes: Vec<Sandbox>,
    /// Edge trust: which requests may carry a routing key.
    pub ingress: Option<Ingress>,
    /// Preview entry points: a key from the host or the query.
    pub preview: Option<Preview>,
    /// The per-key rate limit of every sandbox without its own.
    pub rate_limit: Option<RateLimit>,
    /// The loop guard: at most this many decided hops per tagged request.
    pub loop_guard: Option<LoopGuard>,
}

/// `ingress`: who may send a routing key through this (edge) filter.
#[derive(Clone, PartialEq, Eq)]
pub struct Ingress {
    /// Sources trusted by address (IPv4 and IPv6 CIDRs).
    pub trusted_cidrs: Vec<String>,
    /// HMAC-SHA256 secrets (base64), at most two: the current one and the
    /// one being rotated in or out.
    pub secrets: Vec<String>,
    /// The longest a signature may still be valid for, in seconds.
    pub max_ttl_seconds: u64,
}

impl fmt::Debug for Ingress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a secret: a Debug line ends up in logs.
        f.debug_struct("Ingress")
            .field("trusted_cidrs", &self.trusted_cidrs)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("max_ttl_seconds", &self.max_ttl_seconds)
            .finish()
    }
}

/// The default of `ingress.max_ttl_seconds`: seven days.
pub const DEFAULT_MAX_TTL_SECONDS: u64 = 7 * 24 * 3600;
/// The largest `ingress.max_ttl_seconds`: thirty days.
pub const MAX_TTL_SECONDS: u64 = 30 * 24 * 3600;
/// At most this many trusted CIDRs.
pub const MAX_CIDRS: usize = 64;
/// At most this many secrets at once (rotation needs two).
pub const MAX_SECRETS: usize = 2;
/// At most this many preview host patterns.
pub const MAX_PREVIEW_HOSTS: usize = 16;
/// The largest `loop_guard.max_hops`.
pub const MAX_LOOP_HOPS: u32 = 1000;
/// The largest rate (and burst) a limit may name.
pub const MAX_RATE: u32 = 1_000_000;

/// `preview`: entry points a browser or a webhook can use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preview {
    /// Host patterns `*.SUFFIX`: the label in place of `*` is the key.
    pub hosts: Vec<PreviewHost>,
    /// The query parameter that carries a key (removed before forwarding).
    pub query_param: Option<String>,
}

/// One preview host pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviewHost {
    /// `*.preview.example.com`.
    pub pattern: String,
    /// The service such a request is for: `:authority` becomes its fork
    /// (or the service itself when the sandbox does not fork it).
    pub service: String,
}

/// A token bucket: `requests_per_second` refill, `burst` capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub requests_per_second: u32,
    /// The bucket's size: requests allowed at once.
    pub burst: u32,
}

/// `loop_guard`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopGuard {
    /// A tagged request may be decided at most this many times along its
    /// call chain; the next hop is answered 508.
    pub max_hops: u32,
}

/// `routing_key`: the member names that carry the key, the headers that
/// may carry them, and how the proxy hands those headers over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingKey {
    /// Member names, highest precedence first.
    pub members: Vec<String>,
    /// The headers a key may travel in (`carriers`, default both).
    pub carriers: Carriers,
    /// `joined`: the proxy joins repeated `baggage` and `tracestate` lines
    /// into one value (Envoy with both declared as `inline_headers` in its
    /// bootstrap), so the filter reads each header's value and never the
    /// whole header map. Set it only where that bootstrap is in place:
    /// otherwise a line after the first is invisible to the filter.
    pub joined: bool,
}

/// `routing_key.carriers`: which headers may carry a routing key. A header
/// left out is not read at all: its keys route nothing, and a malformed
/// value counts nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Carriers {
    /// `baggage` may carry a key.
    pub baggage: bool,
    /// `tracestate` may carry a key.
    pub tracestate: bool,
}

impl Carriers {
    /// Both headers (the default).
    pub const BOTH: Carriers = Carriers {
        baggage: true,
        tracestate: true,
    };

    /// The carried header names, in the order the configuration lists them.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        [(self.baggage, "baggage"), (self.tracestate, "tracestate")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
    }
}

/// `unknown_key`: the policy for a key that no sandbox has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownKey {
    /// Baseline or reject.
    pub policy: UnknownKeyPolicy,
    /// The status of the local reply under [`UnknownKeyPolicy::Reject`].
    pub status: u16,
}

/// What to do with a request whose key belongs to no sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownKeyPolicy {
    /// Send it to the baseline, unchanged (the default).
    Baseline,
    /// Answer with a local reply, so a test against a deleted sandbox fails loudly.
    Reject,
}

/// One sandbox: a routing key and the services it forks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sandbox {
    /// The routing key.
    pub key: String,
    /// The forked services.
    pub forks: Vec<Fork>,
    /// When the sandbox expires (RFC 3339); afterwards its key routes to
    /// the baseline, reason `expired`.
    pub expires_at: Option<String>,
    /// This sandbox's rate limit, replacing the top-level one.
    pub rate_limit: Option<RateLimit>,
}

/// One forked service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fork {
    /// The baseline service host, as it appears in `:authority` (port ignored).
    pub service: String,
    /// The fork's host, optionally with a port, written into `:authority`.
    pub destination: String,
    /// When this fork expires (RFC 3339).
    pub expires_at: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: VERSION,
            routing_key: RoutingKey {
                members: DEFAULT_MEMBERS.iter().map(|s| (*s).to_owned()).collect(),
                carriers: Carriers::BOTH,
                joined: false,
            },
            unknown_key: UnknownKey {
                policy: UnknownKeyPolicy::Baseline,
                status: DEFAULT_REJECT_STATUS,
            },
            sandboxes: Vec::new(),
            ingress: None,
            preview: None,
            rate_limit: None,
            loop_guard: None,
        }
    }
}

/// One configuration error: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The field path, like `sandboxes[0].forks[1].service`; empty for the
    /// document itself.
    pub path: String,
    /// Why the value is refused.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

/// All the errors found in one configuration, in document order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Parses and validates. The one call the filter and the CLI make.
    pub fn from_json(text: &str) -> Result<Config, ConfigErrors> {
        let config = Config::parse(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads the JSON text into typed fields. Refuses bad JSON (with line and
    /// column), duplicate object keys, unknown fields and wrong types.
    pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
        if text.len() > MAX_CONFIG_BYTES {
            return Err(ConfigErrors(alloc::vec![ConfigError {
                path: String::new(),
                reason: format!(
                    "the configuration is {} bytes; the limit is {MAX_CONFIG_BYTES} bytes (128 MiB)",
                    text.len()
                ),
            }]));
        }
        let json: Json<'_> = serde_json::from_str(text).map_err(|e| {
            ConfigErrors(alloc::vec![ConfigError {
                path: String::new(),
                reason: format!("invalid JSON: {e}"),
            }])
        })?;
        let mut errors = Errors::default();
        let config = read_config(&json, &mut errors);
        errors.finish()?;
        Ok(config)
    }

    /// Checks meaning: version, member names, keys, hosts, duplicates and
    /// the size limits.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = Errors::default();
        let forks: usize = self.sandboxes.iter().map(|s| s.forks.len()).sum();
        if self.sandboxes.len() > MAX_SANDBOXES || forks > MAX_FORKS {
            errors.push(
                "sandboxes",
                format!(
                    "{} sandboxes with {forks} forks; the limits are {MAX_SANDBOXES} and {MAX_FORKS}",
                    self.sandboxes.len()
                ),
            );
            return errors.finish();
        }
        if self.version != VERSION {
            errors.push(
                "version",
                format!(
                    "unsupported version {}; this build reads version {VERSION}",
                    self.version
                ),
            );
        }
        let members = &self.routing_key.members;
        if members.is_empty() || members.len() > MAX_MEMBER_NAMES {
            errors.push(
                "routing_key.members",
                format!(
                    "must list 1 to {MAX_MEMBER_NAMES} member names, found {}",
                    members.len()
                ),
            );
        }
        // Beyond the limit the list is refused already: check no more, so
        // a list of 100,000 names costs one error, not 10^10 comparisons.
        for (i, name) in members.iter().enumerate().take(MAX_MEMBER_NAMES) {
            let path = || format!("routing_key.members[{i}]");
            if !is_member_name(name) {
                errors.push(
                    path(),
                    format!(
                        "{} is not a valid member name: use lowercase letters, digits \
                         and _-*, starting with a lowercase letter, so it is both a baggage \
                         key and a tracestate key",
                        cut(name)
                    ),
                );
            } else if let Some(first) = members[..i].iter().position(|m| m == name) {
                errors.push(
                    path(),
                    format!(
                        "duplicate member name {} (also routing_key.members[{first}])",
                        cut(name)
                    ),
                );
            }
        }
        if !self.routing_key.carriers.baggage {
            let needs = [
                (
                    self.ingress.is_some(),
                    "ingress (a signature travels in baggage)",
                ),
                (
                    self.preview.is_some(),
                    "preview (the key is injected into baggage)",
                ),
                (
                    self.loop_guard.is_some(),
                    "loop_guard (the hop counter travels in baggage)",
                ),
            ];
            for (_, why) in needs.iter().filter(|(on, _)| *on) {
                errors.push(
                    "routing_key.carriers",
                    format!("must include \"baggage\" when {why} is configured"),
                );
            }
        }
        if self.unknown_key.policy == UnknownKeyPolicy::Reject
            && let Some(reason) = status_problem(u64::from(self.unknown_key.status))
        {
            errors.push("unknown_key.status", reason);
        }
        self.validate_guards(&mut errors);
        let mut keys: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, sandbox) in self.sandboxes.iter().enumerate() {
            if let Some(reason) = key_problem(&sandbox.key) {
                errors.push(format!("sandboxes[{i}].key"), reason);
            } else if let Some(&first) = keys.get(sandbox.key.as_str()) {
                errors.push(
                    format!("sandboxes[{i}].key"),
                    format!(
                        "duplicate sandbox key {} (also sandboxes[{first}].key)",
                        cut(&sandbox.key)
                    ),
                );
            } else {
                keys.insert(&sandbox.key, i);
            }
            if let Some(t) = &sandbox.expires_at
                && let Err(e) = crate::rfc3339::parse(t.as_bytes())
            {
                errors.push(
                    format!("sandboxes[{i}].expires_at"),
                    format!("{}: {e}", cut(t)),
                );
            }
            if let Some(limit) = &sandbox.rate_limit {
                limit.validate(&format!("sandboxes[{i}].rate_limit"), &mut errors);
            }
            let mut services: BTreeMap<String, usize> = BTreeMap::new();
            for (j, fork) in sandbox.forks.iter().enumerate() {
                let at = |field: &str| format!("sandboxes[{i}].forks[{j}].{field}");
                match host_problem(&fork.service, false) {
                    Some(reason) => errors.push(at("service"), reason),
                    None => {
                        let service = fork.service.to_ascii_lowercase();
                        if let Some(&first) = services.get(&service) {
                            errors.push(
                                at("service"),
                                format!(
                                    "duplicate fork for service {} and key {} (also sandboxes[{i}].forks[{first}].service)",
                                    cut(&fork.service),
                                    cut(&sandbox.key)
                                ),
                            );
                        } else {
                            services.insert(service, j);
                        }
                    }
                }
                if let Some(t) = &fork.expires_at
                    && let Err(e) = crate::rfc3339::parse(t.as_bytes())
                {
                    errors.push(at("expires_at"), format!("{}: {e}", cut(t)));
                }
                match host_problem(&fork.destination, true) {
                    Some(reason) => errors.push(at("destination"), reason),
                    None => {
                        let (dest_host, _) = authority::split(fork.destination.as_bytes());
                        if dest_host.eq_ignore_ascii_case(fork.service.as_bytes()) {
                            errors.push(
                                at("destination"),
                                "the destination is the service itself; a fork must be another host"
                                    .to_string(),
                            );
                        }
                    }
                }
            }
        }
        errors.finish()
    }
}

impl Config {
    fn validate_guards(&self, errors: &mut Errors) {
        if let Some(ingress) = &self.ingress {
            if ingress.trusted_cidrs.len() > MAX_CIDRS {
                errors.push(
                    "ingress.trusted_cidrs",
                    format!(
                        "{} networks; the limit is {MAX_CIDRS}",
                        ingress.trusted_cidrs.len()
                    ),
                );
            }
            for (i, text) in ingress.trusted_cidrs.iter().enumerate().take(MAX_CIDRS) {
                if let Some(reason) = crate::cidr::problem(text) {
                    errors.push(format!("ingress.trusted_cidrs[{i}]"), reason);
                }
            }
            if ingress.secrets.len() > MAX_SECRETS {
                errors.push(
                    "ingress.secrets",
                    format!(
                        "{} secrets; at most {MAX_SECRETS} may be active at once (the current one \
                         and the one being rotated in or out)",
                        ingress.secrets.len()
                    ),
                );
            }
            for (i, text) in ingress.secrets.iter().enumerate().take(MAX_SECRETS) {
                // The reason never quotes the secret.
                if let Err(e) = crate::signature::Secret::from_config(text) {
                    errors.push(format!("ingress.secrets[{i}]"), e);
                } else if ingress.secrets[..i].contains(text) {
                    errors.push(
                        format!("ingress.secrets[{i}]"),
                        format!("the same secret as ingress.secrets[{}]", i - 1),
                    );
                }
            }
            if !(1..=MAX_TTL_SECONDS).contains(&ingress.max_ttl_seconds) {
                errors.push(
                    "ingress.max_ttl_seconds",
                    format!(
                        "{} is outside 1..={MAX_TTL_SECONDS} (30 days)",
                        ingress.max_ttl_seconds
                    ),
                );
            }
        }
        if let Some(preview) = &self.preview {
            if self.ingress.is_none() {
                errors.push(
                    "preview",
                    "a preview entry point needs \"ingress\": its keys are trusted by the same \
                     rules (a trusted source or a signature)",
                );
            }
            if preview.hosts.is_empty() && preview.query_param.is_none() {
                errors.push("preview", "give \"hosts\", \"query_param\" or both");
            }
            if preview.hosts.len() > MAX_PREVIEW_HOSTS {
                errors.push(
                    "preview.hosts",
                    format!(
                        "{} patterns; the limit is {MAX_PREVIEW_HOSTS}",
                        preview.hosts.len()
                    ),
                );
            }
            for (i, host) in preview.hosts.iter().enumerate().take(MAX_PREVIEW_HOSTS) {
                let path = |f: &str| format!("preview.hosts[{i}].{f}");
                match host.pattern.strip_prefix("*.") {
                    None => errors.push(
                        path("pattern"),
                        format!(
                            "{} must be \"*.\" and a host, like \"*.preview.example.com\": the \
                             label in place of * is the routing key",
                            cut(&host.pattern)
                        ),
                    ),
                    Some(suffix) => {
                        if let Some(reason) = host_problem(suffix, false) {
                            errors.push(path("pattern"), reason);
                        } else if let Some(first) = preview.hosts[..i]
                            .iter()
                            .position(|h| h.pattern.eq_ignore_ascii_case(&host.pattern))
                        {
                            errors.push(
                                path("pattern"),
                                format!("duplicate pattern (also preview.hosts[{first}].pattern)"),
                            );
                        }
                    }
                }
                if let Some(reason) = host_problem(&host.service, false) {
                    errors.push(path("service"), reason);
                }
            }
            if let Some(q) = &preview.query_param {
                let ok = !q.is_empty()
                    && q.len() <= 64
                    && q.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                if !ok {
                    errors.push(
                        "preview.query_param",
                        format!(
                            "{} is not a parameter name: 1 to 64 ASCII letters, digits and -_.",
                            cut(q)
                        ),
                    );
                }
            }
        }
        if let Some(limit) = &self.rate_limit {
            limit.validate("rate_limit", errors);
        }
        if let Some(guard) = &self.loop_guard
            && !(1..=MAX_LOOP_HOPS).contains(&guard.max_hops)
        {
            errors.push(
                "loop_guard.max_hops",
                format!("{} is outside 1..={MAX_LOOP_HOPS}", guard.max_hops),
            );
        }
    }
}

impl RateLimit {
    fn validate(&self, path: &str, errors: &mut Errors) {
        for (field, n) in [
            ("requests_per_second", self.requests_per_second),
            ("burst", self.burst),
        ] {
            if !(1..=MAX_RATE).contains(&n) {
                errors.push(
                    format!("{path}.{field}"),
                    format!("{n} is outside 1..={MAX_RATE}"),
                );
            }
        }
    }
}

/// Whether `name` can carry the routing key in both headers: a baggage key
/// (an RFC 9110 token) and a W3C Trace Context Level 1 tracestate key.
/// Together: a lowercase letter, then lowercase letters, digits and `_-*`
/// (`/` and `@` are not token characters).
pub fn is_member_name(name: &str) -> bool {
    let b = name.as_bytes();
    tracestate::is_key(b) && b.iter().all(|&c| crate::class::is_tchar(c))
}

/// The longest value an error message quotes in full.
pub const QUOTE_LIMIT: usize = 64;

/// `value` quoted for a message, cut to [`QUOTE_LIMIT`] characters (with
/// its length) so a huge value cannot make a huge message.
pub fn cut(value: &str) -> String {
    match value.char_indices().nth(QUOTE_LIMIT) {
        None => format!("{value:?}"),
        Some((end, _)) => format!("{:?}… ({} bytes)", &value[..end], value.len()),
    }
}

/// Why `key` cannot be a routing key, if it cannot.
pub fn key_problem(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some("the key is empty".to_string());
    }
    if key.len() > MAX_KEY_LEN {
        return Some(format!(
            "the key is longer than {MAX_KEY_LEN} bytes ({} bytes: {})",
            key.len(),
            cut(key)
        ));
    }
    if let Some(c) = key
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "-._~".contains(c)))
    {
        return Some(format!(
            "{} holds {c:?}; a key is ASCII letters, digits and -._~ so that it reads the same encoded or not, in baggage and in tracestate",
            cut(key)
        ));
    }
    None
}

/// Why `status` cannot answer a rejected request, if it cannot.
pub fn status_problem(status: u64) -> Option<String> {
    (!(400..=599).contains(&status)).then(|| format!("{status} is not a 4xx or 5xx status"))
}

/// Why `host` is not a valid host (with an optional port when `port_ok`).
pub fn host_problem(host: &str, port_ok: bool) -> Option<String> {
    if host.is_empty() {
        return Some("the host is empty".to_string());
    }
    let quoted = cut(host);
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    if let Some(port) = port {
        if !port_ok {
            return Some(format!(
                "{quoted} has a port; write the host alone: the port of :authority is ignored when matching"
            ));
        }
        let digits = !port.is_empty()
            && port.len() <= authority::MAX_PORT_DIGITS
            && port.bytes().all(|b| b.is_ascii_digit());
        match port.parse::<u32>() {
            Ok(p) if digits && (1..=65535).contains(&p) => {}
            _ => return Some(format!("{quoted} has an invalid port {}", cut(port))),
        }
    }
    if name.len() > authority::MAX_HOST {
        return Some(format!(
            "{quoted} is longer than {} bytes ({} bytes)",
            authority::MAX_HOST,
            name.len()
        ));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Some(format!(
                "{quoted} is not a valid host: labels of 1 to 63 letters, digits or '-', separated by '.'"
            ));
        }
    }
    None
}

/// The most errors one configuration reports; the rest are counted.
pub const MAX_ERRORS: usize = 100;

/// Errors found so far: the first [`MAX_ERRORS`], and how many more.
#[derive(Default)]
struct Errors {
    list: Vec<ConfigError>,
    more: usize,
}

impl Errors {
    fn push(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        if self.list.len() == MAX_ERRORS {
            self.more += 1;
            return;
        }
        self.list.push(ConfigError {
            path: path.into(),
            reason: reason.into(),
        });
    }

    fn finish(mut self) -> Result<(), ConfigErrors> {
        if self.more > 0 {
            self.list.push(ConfigError {
                path: String::new(),
                reason: format!(
                    "and {} more errors (only the first {MAX_ERRORS} are listed)",
                    self.more
                ),
            });
        }
        if self.list.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(self.list))
        }
    }
}

/// A JSON document, kept in order, refusing duplicate object keys. Its
/// strings borrow from the text unless they hold escapes: a configuration
/// of a million sandboxes is mostly strings, and copying each of them
/// roughly doubled the parse's time and peak memory.
#[derive(Debug)]
enum Json<'t> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'t, str>),
    Array(Vec<Json<'t>>),
    Object(Vec<(Cow<'t, str>, Json<'t>)>),
}

/// An object key or string, borrowed from the text when it can be.
struct Text<'t>(Cow<'t, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text<'de>, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

#[derive(Debug, Clone, Copy)]
enum Number {
    Unsigned(u64),
    Negative(i64),
    Float(f64),
}

impl Json<'_> {
    /// What was found, for a message: the value itself for scalars (cut
    /// when long), the kind for containers.
    fn kind(&self) -> String {
        match self {
            Json::Null => "null".into(),
            Json::Bool(b) => format!("the boolean {b}"),
            Json::Number(Number::Unsigned(n)) => format!("the number {n}"),
            Json::Number(Number::Negative(n)) => format!("the number {n}"),
            Json::Number(Number::Float(f)) => format!("the number {f}"),
            Json::String(s) => format!("the string {}", cut(s)),
            Json::Array(items) => format!("an array of {}", items.len()),
            Json::Object(fields) => format!("an object of {} fields", fields.len()),
        }
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json<'de>, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(Number::Unsigned(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(match u64::try_from(v) {
            Ok(u) => Number::Unsigned(u),
            Err(_) => Number::Negative(v),
        }))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json<'de>, E> {
        Ok(Json::Number(Number::Float(v)))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut fields: Vec<(Cow<'de, str>, Json<'de>)> = Vec::new();
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            // Small objects (every object of a valid configuration) check
            // as they go; a large one is checked once, sorted, below.
            if fields.len() < 16 && fields.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate field {}",
                    cut(&key)
                )));
            }
            let value = map.next_value()?;
            fields.push((key, value));
        }
        if fields.len() > 16 {
            let mut order: Vec<usize> = (0..fields.len()).collect();
            order.sort_unstable_by(|&a, &b| fields[a].0.cmp(&fields[b].0));
            if let Some(w) = order.windows(2).find(|w| fields[w[0]].0 == fields[w[1]].0) {
                return Err(de::Error::custom(format_args!(
                    "duplicate field {}",
                    cut(&fields[w[0]].0)
                )));
            }
        }
        Ok(Json::Object(fields))
    }
}

/// A field path, built on the stack while walking.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Field(Path::Root, name) => f.write_str(name),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// An object being read: fields are taken by name; leftovers are unknown.
struct Object<'a> {
    path: Path<'a>,
    fields: &'a [(Cow<'a, str>, Json<'a>)],
    allowed: &'static [&'static str],
}

impl<'a> Object<'a> {
    fn open(
        json: &'a Json<'a>,
        path: Path<'a>,
        allowed: &'static [&'static str],
        errors: &mut Errors,
    ) -> Option<Object<'a>> {
        match json {
            Json::Object(fields) => {
                for (name, _) in fields {
                    if !allowed.contains(&name.as_ref()) {
                        errors.push(
                            path.to_string(),
                            format!(
                                "unknown field {}; expected one of: {}",
                                cut(name),
                                allowed.join(", ")
                            ),
                        );
                    }
                }
                Some(Object {
                    path,
                    fields,
                    allowed,
                })
            }
            other => {
                errors.push(
                    path.to_string(),
                    format!("expected an object, found {}", other.kind()),
                );
                None
            }
        }
    }

    fn get(&self, name: &str) -> Option<&'a Json<'a>> {
        debug_assert!(self.allowed.contains(&name));
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

fn expected(errors: &mut Errors, path: &Path<'_>, what: &str, found: &Json<'_>) {
    errors.push(
        path.to_string(),
        format!("expected {what}, found {}", found.kind()),
    );
}

fn read_string(json: &Json<'_>, path: &Path<'_>, errors: &mut Errors) -> Option<String> {
    match json {
        Json::String(s) => Some(s.as_ref().to_owned()),
        other => {
            expected(errors, path, "a string", other);
            None
        }
    }
}

fn read_bool(json: &Json<'_>, path: &Path<'_>, errors: &mut Errors) -> Option<bool> {
    match json {
        Json::Bool(b) => Some(*b),
        other => {
            expected(errors, path, "true or false", other);
            None
        }
    }
}

/// `routing_key.carriers`: a non-empty list of `baggage` and `tracestate`,
/// each at most once.
fn read_carriers(json: &Json<'_>, path: &Path<'_>, errors: &mut Errors) -> Option<Carriers> {
    let items = read_array(json, path, errors)?;
    if items.is_empty() || items.len() > 2 {
        let why = if items.is_empty() {
            "is empty: list \"baggage\", \"tracestate\" or both".to_owned()
        } else {
            format!(
                "lists {} carriers; there are only two, baggage and tracestate",
                items.len()
            )
        };
        errors.push(path.to_string(), why);
        return None;
    }
    let mut carriers = Carriers {
        baggage: false,
        tracestate: false,
    };
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let path = Path::Index(path, i);
        let slot = match read_string(item, &path, errors).as_deref() {
            Some("baggage") => &mut carriers.baggage,
            Some("tracestate") => &mut carriers.tracestate,
            Some(other) => {
                errors.push(
                    path.to_string(),
                    format!(
                        "unknown carrier {}: a routing key travels in \"baggage\" or \"tracestate\"",
                        cut(other)
                    ),
                );
                ok = false;
                continue;
            }
            None => {
                ok = false;
                continue;
            }
        };
        if *slot {
            errors.push(path.to_string(), "duplicate carrier".to_owned());
            ok = false;
        }
        *slot = true;
    }
    ok.then_some(carriers)
}

fn read_uint(json: &Json<'_>, path: &Path<'_>, errors: &mut Errors) -> Option<u64> {
    match json {
        Json::Number(Number::Unsigned(n)) => Some(*n),
        // protobuf Struct numbers are doubles: accept 1.0 as 1.
        Json::Number(Number::Float(f)) if *f >= 0.0 && *f <= 9.0e15 && *f as u64 as f64 == *f => {
            Some(*f as u64)
        }
        other => {
            expected(errors, path, "a non-negative integer", other);
            None
        }
    }
}

fn read_array<'a>(
    json: &'a Json<'a>,
    path: &Path<'_>,
    errors: &mut Errors,
) -> Option<&'a [Json<'a>]> {
    match json {
        Json::Array(items) => Some(items),
        other => {
            expected(errors, path, "an array", other);
            None
        }
    }
}

fn required<'a>(obj: &Object<'a>, name: &'a str, errors: &mut Errors) -> Option<&'a Json<'a>> {
    let found = obj.get(name);
    if found.is_none() {
        errors.push(
            Path::Field(&obj.path, name).to_string(),
            "missing required field",
        );
    }
    found
}

fn read_config<'a>(json: &'a Json<'a>, errors: &mut Errors) -> Config {
    let mut config = Config::default();
    let Some(root) = Object::open(
        json,
        Path::Root,
        &[
            "version",
            "routing_key",
            "unknown_key",
            "sandboxes",
            "ingress",
            "preview",
            "rate_limit",
            "loop_guard",
        ],
        errors,
    ) else {
        return config;
    };
    read_guards(&root, &mut config, errors);
    if let Some(v) = required(&root, "version", errors)
        && let Some(n) = read_uint(v, &Path::Field(&root.path, "version"), errors)
    {
        config.version = n;
    }
    if let Some(rk) = root.get("routing_key") {
        let path = Path::Field(&root.path, "routing_key");
        if let Some(obj) = Object::open(rk, path, &["members", "carriers", "joined"], errors) {
            if let Some(m) = obj.get("members") {
                let path = Path::Field(&obj.path, "members");
                if let Some(items) = read_array(m, &path, errors) {
                    config.routing_key.members = items
                        .iter()
                        .enumerate()
                        .filter_map(|(i, item)| read_string(item, &Path::Index(&path, i), errors))
                        .collect();
                }
            }
            if let Some(c) = obj.get("carriers") {
                let path = Path::Field(&obj.path, "carriers");
                if let Some(carriers) = read_carriers(c, &path, errors) {
                    config.routing_key.carriers = carriers;
                }
            }
            if let Some(j) = obj.get("joined")
                && let Some(b) = read_bool(j, &Path::Field(&obj.path, "joined"), errors)
            {
                config.routing_key.joined = b;
            }
        }
    }
    if let Some(uk) = root.get("unknown_key") {
        let path = Path::Field(&root.path, "unknown_key");
        if let Some(obj) = Object::open(uk, path, &["policy", "status"], errors) {
            // A policy that cannot be read says nothing about whether a
            // status belongs: do not pile a second error on the first.
            let mut policy_known = true;
            if let Some(p) = obj.get("policy") {
                let path = Path::Field(&obj.path, "policy");
                policy_known = false;
                match read_string(p, &path, errors).as_deref() {
                    Some("baseline") => {
                        config.unknown_key.policy = UnknownKeyPolicy::Baseline;
                        policy_known = true;
                    }
                    Some("reject") => {
                        config.unknown_key.policy = UnknownKeyPolicy::Reject;
                        policy_known = true;
                    }
                    Some(other) => errors.push(
                        path.to_string(),
                        format!(
                            "unknown policy {}; expected \"baseline\" or \"reject\"",
                            cut(other)
                        ),
                    ),
                    None => {}
                }
            }
            if let Some(s) = obj.get("status") {
                let path = Path::Field(&obj.path, "status");
                if let Some(n) = read_uint(s, &path, errors) {
                    if !policy_known {
                        if let Some(reason) = status_problem(n) {
                            errors.push(path.to_string(), reason);
                        }
                    } else if config.unknown_key.policy != UnknownKeyPolicy::Reject {
                        errors.push(
                            path.to_string(),
                            "status is only used with policy \"reject\"",
                        );
                    } else if let Some(reason) = status_problem(n) {
                        errors.push(path.to_string(), reason);
                    } else {
                        config.unknown_key.status = n as u16;
                    }
                }
            }
        }
    }
    if let Some(sb) = required(&root, "sandboxes", errors) {
        let path = Path::Field(&root.path, "sandboxes");
        if let Some(items) = read_array(sb, &path, errors) {
            if items.len() > MAX_SANDBOXES {
                errors.push(
                    path.to_string(),
                    format!("{} sandboxes; the limit is {MAX_SANDBOXES}", items.len()),
                );
                return config;
            }
            // The forks are counted by `validate`: 128 MiB of text holds
            // at most about four million.
            for (i, item) in items.iter().enumerate() {
                if let Some(sandbox) = read_sandbox(item, Path::Index(&path, i), errors) {
                    config.sandboxes.push(sandbox);
                }
            }
        }
    }
    config
}

fn read_sandbox<'a>(json: &'a Json<'a>, path: Path<'a>, errors: &mut Errors) -> Option<Sandbox> {
    let obj = Object::open(
        json,
        path,
        &["key", "forks", "expires_at", "rate_limit"],
        errors,
    )?;
    let expires_at = obj
        .get("expires_at")
        .and_then(|t| read_string(t, &Path::Field(&obj.path, "expires_at"), errors));
    let rate_limit = obj
        .get("rate_limit")
        .and_then(|r| read_rate_limit(r, Path::Field(&obj.path, "rate_limit"), errors));
    let key = required(&obj, "key", errors)
        .and_then(|k| read_string(k, &Path::Field(&obj.path, "key"), errors));
    let forks_path = Path::Field(&obj.path, "forks");
    let mut forks = Vec::new();
    let mut forks_ok = true;
    if let Some(items) =
        required(&obj, "forks", errors).and_then(|f| read_array(f, &forks_path, errors))
    {
        for (j, item) in items.iter().enumerate() {
            match read_fork(item, Path::Index(&forks_path, j), errors) {
                Some(fork) => forks.push(fork),
                None => forks_ok = false,
            }
        }
    }
    match (key, forks_ok) {
        (Some(key), true) => Some(Sandbox {
            key,
            forks,
            expires_at,
            rate_limit,
        }),
        _ => None,
    }
}

fn read_fork<'a>(json: &'a Json<'a>, path: Path<'a>, errors: &mut Errors) -> Option<Fork> {
    let obj = Object::open(
        json,
        path,
        &["service", "destination", "expires_at"],
        errors,
    )?;
    let expires_at = obj
        .get("expires_at")
        .and_then(|t| read_string(t, &Path::Field(&obj.path, "expires_at"), errors));
    let service = required(&obj, "service", errors)
        .and_then(|s| read_string(s, &Path::Field(&obj.path, "service"), errors));
    let destination = required(&obj, "destination", errors)
        .and_then(|d| read_string(d, &Path::Field(&obj.path, "destination"), errors));
    Some(Fork {
        service: service?,
        destination: destination?,
        expires_at,
    })
}

fn read_strings(json: &Json<'_>, path: &Path<'_>, errors: &mut Errors) -> Vec<String> {
    read_array(json, path, errors)
        .map(|items| {
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| read_string(item, &Path::Index(path, i), errors))
                .collect()
        })
        .unwrap_or_default()
}

fn read_u32(json: &Json<'_>, path: &Path<'_>, errors: &mut Errors) -> Option<u32> {
    let n = read_uint(json, path, errors)?;
    match u32::try_from(n) {
        Ok(n) => Some(n),
        Err(_) => {
            errors.push(path.to_string(), format!("{n} is too large"));
            None
        }
    }
}

fn read_rate_limit<'a>(
    json: &'a Json<'a>,
    path: Path<'a>,
    errors: &mut Errors,
) -> Option<RateLimit> {
    let obj = Object::open(json, path, &["requests_per_second", "burst"], errors)?;
    let rps = required(&obj, "requests_per_second", errors)
        .and_then(|v| read_u32(v, &Path::Field(&obj.path, "requests_per_second"), errors));
    // The burst defaults to one second's worth.
    let burst = match obj.get("burst") {
        Some(v) => read_u32(v, &Path::Field(&obj.path, "burst"), errors),
        None => rps,
    };
    Some(RateLimit {
        requests_per_second: rps?,
        burst: burst?,
    })
}

fn read_guards<'a>(root: &Object<'a>, config: &mut Config, errors: &mut Errors) {
    if let Some(json) = root.get("ingress") {
        let path = Path::Field(&root.path, "ingress");
        if let Some(obj) = Object::open(
            json,
            path,
            &["trusted_cidrs", "secrets", "max_ttl_seconds"],
            errors,
        ) {
            let mut ingress = Ingress {
                trusted_cidrs: Vec::new(),
                secrets: Vec::new(),
                max_ttl_seconds: DEFAULT_MAX_TTL_SECONDS,
            };
            if let Some(v) = obj.get("trusted_cidrs") {
                ingress.trusted_cidrs =
                    read_strings(v, &Path::Field(&obj.path, "trusted_cidrs"), errors);
            }
            if let Some(v) = obj.get("secrets") {
                ingress.secrets = read_strings(v, &Path::Field(&obj.path, "secrets"), errors);
            }
            if let Some(v) = obj.get("max_ttl_seconds")
                && let Some(n) = read_uint(v, &Path::Field(&obj.path, "max_ttl_seconds"), errors)
            {
                ingress.max_ttl_seconds = n;
            }
            config.ingress = Some(ingress);
        }
    }
    if let Some(json) = root.get("preview") {
        let path = Path::Field(&root.path, "preview");
        if let Some(obj) = Object::open(json, path, &["hosts", "query_param"], errors) {
            let mut preview = Preview {
                hosts: Vec::new(),
                query_param: None,
            };
            if let Some(v) = obj.get("hosts") {
                let path = Path::Field(&obj.path, "hosts");
                if let Some(items) = read_array(v, &path, errors) {
                    for (i, item) in items.iter().enumerate() {
                        let Some(h) = Object::open(
                            item,
                            Path::Index(&path, i),
                            &["pattern", "service"],
                            errors,
                        ) else {
                            continue;
                        };
                        let pattern = required(&h, "pattern", errors)
                            .and_then(|p| read_string(p, &Path::Field(&h.path, "pattern"), errors));
                        let service = required(&h, "service", errors)
                            .and_then(|p| read_string(p, &Path::Field(&h.path, "service"), errors));
                        if let (Some(pattern), Some(service)) = (pattern, service) {
                            preview.hosts.push(PreviewHost { pattern, service });
                        }
                    }
                }
            }
            if let Some(v) = obj.get("query_param") {
                preview.query_param =
                    read_string(v, &Path::Field(&obj.path, "query_param"), errors);
            }
            config.preview = Some(preview);
        }
    }
    if let Some(json) = root.get("rate_limit") {
        config.rate_limit = read_rate_limit(json, Path::Field(&root.path, "rate_limit"), errors);
    }
    if let Some(json) = root.get("loop_guard") {
        let path = Path::Field(&root.path, "loop_guard");
        if let Some(obj) = Object::open(json, path, &["max_hops"], errors)
            && let Some(v) = required(&obj, "max_hops", errors)
            && let Some(n) = read_u32(v, &Path::Field(&obj.path, "max_hops"), errors)
        {
            config.loop_guard = Some(LoopGuard { max_hops: n });
        }
    }
}

impl Config {
    /// Serializes back to canonical JSON (stable field order), for tools
    /// that derive a configuration and hand it to the filter.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
        let list = |items: &[String]| items.iter().map(|m| q(m)).collect::<Vec<_>>().join(",");
        let limit = |l: &RateLimit| {
            format!(
                "{{\"requests_per_second\":{},\"burst\":{}}}",
                l.requests_per_second, l.burst
            )
        };
        out.push_str(&format!("{{\"version\":{}", self.version));
        out.push_str(",\"routing_key\":{\"members\":[");
        out.push_str(&list(&self.routing_key.members));
        out.push(']');
        if self.routing_key.carriers != Carriers::BOTH {
            let names: Vec<String> = self.routing_key.carriers.names().map(q).collect();
            out.push_str(&format!(",\"carriers\":[{}]", names.join(",")));
        }
        if self.routing_key.joined {
            out.push_str(",\"joined\":true");
        }
        out.push_str("},\"unknown_key\":{");
        match self.unknown_key.policy {
            UnknownKeyPolicy::Baseline => out.push_str("\"policy\":\"baseline\""),
            UnknownKeyPolicy::Reject => out.push_str(&format!(
                "\"policy\":\"reject\",\"status\":{}",
                self.unknown_key.status
            )),
        }
        out.push('}');
        if let Some(i) = &self.ingress {
            out.push_str(&format!(
                ",\"ingress\":{{\"trusted_cidrs\":[{}],\"secrets\":[{}],\"max_ttl_seconds\":{}}}",
                list(&i.trusted_cidrs),
                list(&i.secrets),
                i.max_ttl_seconds
            ));
        }
        if let Some(p) = &self.preview {
            let hosts: Vec<String> = p
                .hosts
                .iter()
                .map(|h| {
                    format!(
                        "{{\"pattern\":{},\"service\":{}}}",
                        q(&h.pattern),
                        q(&h.service)
                    )
                })
                .collect();
            out.push_str(&format!(",\"preview\":{{\"hosts\":[{}]", hosts.join(",")));
            if let Some(param) = &p.query_param {
                out.push_str(&format!(",\"query_param\":{}", q(param)));
            }
            out.push('}');
        }
        if let Some(l) = &self.rate_limit {
            out.push_str(&format!(",\"rate_limit\":{}", limit(l)));
        }
        if let Some(g) = &self.loop_guard {
            out.push_str(&format!(",\"loop_guard\":{{\"max_hops\":{}}}", g.max_hops));
        }
        out.push_str(",\"sandboxes\":[");
        let sandboxes: Vec<String> = self
            .sandboxes
            .iter()
            .map(|s| {
                let forks: Vec<String> = s
                    .forks
                    .iter()
                    .map(|f| {
                        let mut fork = format!(
                            "{{\"service\":{},\"destination\":{}",
                            q(&f.service),
                            q(&f.destination)
                        );
                        if let Some(t) = &f.expires_at {
                            fork.push_str(&format!(",\"expires_at\":{}", q(t)));
                        }
                        fork.push('}');
                        fork
                    })
                    .collect();
                let mut sandbox = format!("{{\"key\":{}", q(&s.key));
                if let Some(t) = &s.expires_at {
                    sandbox.push_str(&format!(",\"expires_at\":{}", q(t)));
                }
                if let Some(l) = &s.rate_limit {
                    sandbox.push_str(&format!(",\"rate_limit\":{}", limit(l)));
                }
                sandbox.push_str(&format!(",\"forks\":[{}]}}", forks.join(",")));
                sandbox
            })
            .collect();
        out.push_str(&sandboxes.join(","));
        out.push_str("]}");
        out
    }
}

/// Makes a boxed, lowercase copy of a host for the routing tables.
pub(crate) fn lower(host: &str) -> Box<[u8]> {
    host.as_bytes().to_ascii_lowercase().into_boxed_slice()
}

#[cfg(test)]
mod tests;
