//! Scenario files: what a replay runs. Format documented in
//! `testdata/README.md` ("scenarios/") and `testdata/scenario.schema.json`.
//!
//! Two steps, as for the plugin configuration: [`Scenario::load`] parses
//! YAML or JSON into [`spec`] types (syntax, types and unknown fields fail
//! with `file:line:column`), then [`compile`] checks meaning (unknown
//! services and chains, bad keys, impossible faults) and builds the indexed
//! model the replay walks. Every error names the file and a JSON pointer
//! (`/traffic/2/chain`) with the reason.
//!
//! The model knows nothing of wasm or Envoy: a replay backend decides each
//! hop, the scenario says what exists and what was expected.
//!
//! Never panics on any input.

pub mod spec;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use laneway_core::Config;
use laneway_core::config::{Fork, Sandbox, UnknownKeyPolicy};

use spec::{CallSpec, Kind, PluginSpec, Propagation, ScenarioSpec};

/// A scenario error: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file.
    pub file: PathBuf,
    /// `line:column` from the parser, or a JSON pointer (shown as
    /// `file#/pointer`), or empty.
    pub at: String,
    /// Why.
    pub reason: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at.chars().next() {
            None => write!(f, "{}: {}", self.file.display(), self.reason),
            // A JSON pointer, written as a URI fragment.
            Some('/') => write!(f, "{}#{}: {}", self.file.display(), self.at, self.reason),
            Some(_) => write!(f, "{}:{}: {}", self.file.display(), self.at, self.reason),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// Every error found in one scenario file, in document order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioErrors(pub Vec<ScenarioError>);

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioErrors {}

/// Index of a service.
pub type ServiceId = usize;
/// Index of a sandbox.
pub type SandboxId = usize;
/// Index of a call node in [`Scenario::calls`].
pub type CallId = usize;

/// Which workload serves a service: its baseline, or a sandbox's fork.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// The shared baseline.
    Baseline(ServiceId),
    /// The fork of a service in a sandbox.
    Fork(ServiceId, SandboxId),
}

/// A service.
#[derive(Clone, Debug)]
pub struct Service {
    /// The name used in the scenario.
    pub name: String,
    /// The host callers put in `:authority`.
    pub host: String,
    /// The port callers put in `:authority`.
    pub port: u16,
    /// What the baseline propagates downstream.
    pub propagates: Propagation,
    /// `host:port`, precomputed.
    pub authority: String,
}

/// A deployed fork.
#[derive(Clone, Debug)]
pub struct ForkModel {
    /// The service it forks.
    pub service: ServiceId,
    /// Its host (and optional port), as in the plugin configuration.
    pub destination: String,
    /// Its host alone, lowercase, for matching a rewritten `:authority`.
    pub destination_host: String,
    /// What it calls instead of the baseline's calls, if different.
    pub calls: Option<Vec<CallId>>,
    /// What it propagates.
    pub propagates: Propagation,
}

/// A sandbox: a key and its deployed forks.
#[derive(Clone, Debug)]
pub struct SandboxModel {
    /// The routing key.
    pub key: String,
    /// The forks.
    pub forks: Vec<ForkModel>,
}

/// One call: a service and what it calls next.
#[derive(Clone, Debug)]
pub struct Call {
    /// The callee.
    pub service: ServiceId,
    /// Its downstream calls, in order (for the baseline; forks may override).
    pub then: Vec<CallId>,
}

/// A named call chain: the entry call.
#[derive(Clone, Debug)]
pub struct Chain {
    /// The name.
    pub name: String,
    /// The entry call (made by the ingress).
    pub entry: CallId,
}

/// Entry headers of a traffic group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    /// `baggage` lines.
    pub baggage: Vec<String>,
    /// `tracestate` lines.
    pub tracestate: Vec<String>,
}

/// One traffic group.
#[derive(Clone, Debug)]
pub struct Traffic {
    /// The name.
    pub name: String,
    /// The chain.
    pub chain: usize,
    /// How many requests.
    pub count: u64,
    /// The kind.
    pub kind: Kind,
    /// The sandbox the requests belong to (the client's intent), if any.
    /// Spoofed and untagged traffic belongs to none.
    pub intent: Option<SandboxId>,
    /// The key the requests carry (for spoofed traffic, a key they should not have).
    pub key: Option<String>,
    /// The entry headers.
    pub headers: Headers,
    /// Sparse expectations.
    pub expect: spec::Expect,
    /// The first request's global index.
    pub first: u64,
}

/// A fault, compiled.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Requests routed to this fork fail with 503.
    ForkUnavailable {
        /// The fork.
        workload: Workload,
    },
    /// This workload stops propagating context from request `from` on.
    DropContext {
        /// The workloads affected: a service's baseline, a fork, or both.
        service: ServiceId,
        /// `None`: every workload of the service.
        only: Option<Workload>,
        /// The first request affected.
        from: u64,
    },
    /// From request `at` on, the plugin configuration is this.
    ConfigSwap {
        /// The first request that sees the new configuration.
        at: u64,
        /// The configuration text.
        config: String,
    },
}

/// A compiled scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The file it came from.
    pub file: PathBuf,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Services, by id.
    pub services: Vec<Service>,
    /// Sandboxes, by id.
    pub sandboxes: Vec<SandboxModel>,
    /// Call nodes.
    pub calls: Vec<Call>,
    /// Chains.
    pub chains: Vec<Chain>,
    /// Traffic groups, in replay order.
    pub traffic: Vec<Traffic>,
    /// Faults.
    pub faults: Vec<Fault>,
    /// The plugin configuration at the start.
    pub config: String,
    /// Total requests.
    pub requests: u64,
}

impl Scenario {
    /// Reads, parses and compiles a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioErrors> {
        let err = |at: String, reason: String| {
            ScenarioErrors(vec![ScenarioError {
                file: path.to_path_buf(),
                at,
                reason,
            }])
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(String::new(), format!("cannot read: {e}")))?;
        let spec = spec::parse(path, &text).map_err(|(at, reason)| err(at, reason))?;
        compile(path, &spec)
    }

    /// The display name of a workload: `service@baseline` or `service@fork(K)`.
    pub fn workload_name(&self, w: Workload) -> String {
        match w {
            Workload::Baseline(s) => format!("{}@baseline", self.services[s].name),
            Workload::Fork(s, b) => {
                format!("{}@fork({})", self.services[s].name, self.sandboxes[b].key)
            }
        }
    }

    /// The fork of `service` in `sandbox`, if deployed.
    pub fn fork(&self, service: ServiceId, sandbox: SandboxId) -> Option<&ForkModel> {
        self.sandboxes[sandbox]
            .forks
            .iter()
            .find(|f| f.service == service)
    }

    /// What a workload calls after `call`.
    pub fn next_calls(&self, call: CallId, w: Workload) -> &[CallId] {
        match w {
            Workload::Fork(s, b) => match self.fork(s, b).and_then(|f| f.calls.as_deref()) {
                Some(calls) => calls,
                None => &self.calls[call].then,
            },
            Workload::Baseline(_) => &self.calls[call].then,
        }
    }

    /// What a workload propagates, before faults.
    pub fn propagates(&self, w: Workload) -> Propagation {
        match w {
            Workload::Baseline(s) => self.services[s].propagates,
            Workload::Fork(s, b) => self
                .fork(s, b)
                .map_or(self.services[s].propagates, |f| f.propagates),
        }
    }

    /// The workload a hop reaches for `service`, given where the decision
    /// sent it: `None` for the baseline; `Some(host)` for a rewritten
    /// authority's host. `None` when no deployed fork has that host.
    pub fn served_by(&self, service: ServiceId, fork_host: Option<&str>) -> Option<Workload> {
        let Some(host) = fork_host else {
            return Some(Workload::Baseline(service));
        };
        for (b, sandbox) in self.sandboxes.iter().enumerate() {
            for f in &sandbox.forks {
                if f.destination_host.eq_ignore_ascii_case(host) {
                    return Some(Workload::Fork(f.service, b));
                }
            }
        }
        None
    }

    /// The traffic group of request `index`.
    pub fn traffic_of(&self, index: u64) -> Option<&Traffic> {
        self.traffic
            .iter()
            .find(|t| (t.first..t.first + t.count).contains(&index))
    }

    /// Finds a request by name: `GROUP` (its first request) or `GROUP#N`
    /// (the N-th, from 0).
    pub fn request_by_name(&self, name: &str) -> Option<(&Traffic, u64)> {
        let (group, n) = match name.rsplit_once('#') {
            Some((g, n)) => (g, n.parse::<u64>().ok()?),
            None => (name, 0),
        };
        let t = self.traffic.iter().find(|t| t.name == group)?;
        (n < t.count).then_some((t, t.first + n))
    }
}

/// The derived plugin configuration: every deployed fork of every sandbox.
pub fn derive_config(
    sandboxes: &[SandboxModel],
    services: &[Service],
    derive: &spec::DeriveSpec,
) -> Config {
    let mut config = Config::default();
    if let Some(members) = &derive.members {
        config.routing_key.members = members.clone();
    }
    if derive.unknown_key.as_deref() == Some("reject") {
        config.unknown_key.policy = UnknownKeyPolicy::Reject;
    }
    config.sandboxes = sandboxes
        .iter()
        .map(|s| Sandbox {
            key: s.key.clone(),
            forks: s
                .forks
                .iter()
                .map(|f| Fork {
                    service: services[f.service].host.clone(),
                    destination: f.destination.clone(),
                })
                .collect(),
        })
        .collect();
    config
}

/// Generated entry headers for a traffic kind.
pub fn headers_for(kind: Kind, key: Option<&str>) -> Headers {
    let key = key.unwrap_or("");
    let baggage = |v: String| Headers {
        baggage: vec![v],
        tracestate: Vec::new(),
    };
    match kind {
        Kind::Untagged => Headers::default(),
        Kind::Tagged | Kind::Spoofed => baggage(format!("sd-routing-key={key}")),
        Kind::Malformed => baggage(format!("sd-routing-key={key}%ZZ")),
        Kind::Oversized => baggage(format!(
            "padding={},sd-routing-key={key}",
            "x".repeat(laneway_core::baggage::MAX_BYTES)
        )),
    }
}

struct Compiler<'a> {
    file: &'a Path,
    errors: Vec<ScenarioError>,
}

impl Compiler<'_> {
    fn error(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(ScenarioError {
            file: self.file.to_path_buf(),
            at: at.into(),
            reason: reason.into(),
        });
    }
}

fn known(names: impl Iterator<Item = String>) -> String {
    let v: Vec<String> = names.collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Checks meaning and builds the model, or reports every error.
pub fn compile(file: &Path, spec: &ScenarioSpec) -> Result<Scenario, ScenarioErrors> {
    let mut c = Compiler {
        file,
        errors: Vec::new(),
    };
    if spec.name.trim().is_empty() {
        c.error("/name", "the scenario needs a name");
    }

    // Services.
    let mut services = Vec::new();
    let mut service_ids = BTreeMap::new();
    for (name, s) in &spec.services {
        let at = format!("/services/{name}");
        let host = s.host.clone().unwrap_or_else(|| name.clone());
        if let Some(reason) = laneway_core::config::host_problem(&host, false) {
            c.error(format!("{at}/host"), reason);
        }
        if s.port == 0 {
            c.error(format!("{at}/port"), "the port must be 1 to 65535");
        }
        service_ids.insert(name.clone(), services.len());
        services.push(Service {
            name: name.clone(),
            authority: format!("{host}:{}", s.port),
            host,
            port: s.port,
            propagates: s.propagates,
        });
    }
    if services.is_empty() {
        c.error("/services", "declare at least one service");
    }
    let service_id = |c: &mut Compiler, at: &str, name: &str| -> Option<ServiceId> {
        let id = service_ids.get(name).copied();
        if id.is_none() {
            c.error(
                at,
                format!(
                    "unknown service {name:?}; declared: {}",
                    known(service_ids.keys().cloned())
                ),
            );
        }
        id
    };

    // Calls and chains.
    let mut calls: Vec<Call> = Vec::new();
    fn add_calls(
        c: &mut Compiler,
        calls: &mut Vec<Call>,
        specs: &[CallSpec],
        at: &str,
        depth: usize,
        id: &dyn Fn(&mut Compiler, &str, &str) -> Option<ServiceId>,
    ) -> Vec<CallId> {
        if depth > 64 {
            c.error(at, "calls nest deeper than 64");
            return Vec::new();
        }
        specs
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let here = format!("{at}/{i}");
                let service = id(c, &format!("{here}/call"), &s.call)?;
                let then = add_calls(c, calls, &s.then, &format!("{here}/then"), depth + 1, id);
                calls.push(Call { service, then });
                Some(calls.len() - 1)
            })
            .collect()
    }
    let mut chains = Vec::new();
    for (i, ch) in spec.chains.iter().enumerate() {
        let at = format!("/chains/{i}");
        if chains.iter().any(|x: &Chain| x.name == ch.name) {
            c.error(
                format!("{at}/name"),
                format!("duplicate chain name {:?}", ch.name),
            );
        }
        let then = add_calls(
            &mut c,
            &mut calls,
            &ch.then,
            &format!("{at}/then"),
            1,
            &service_id,
        );
        if let Some(service) = service_id(&mut c, &format!("{at}/call"), &ch.call) {
            calls.push(Call { service, then });
            chains.push(Chain {
                name: ch.name.clone(),
                entry: calls.len() - 1,
            });
        }
    }
    if spec.chains.is_empty() {
        c.error("/chains", "declare at least one chain");
    }

    // Sandboxes and forks.
    let mut sandboxes: Vec<SandboxModel> = Vec::new();
    for (i, sb) in spec.sandboxes.iter().enumerate() {
        let at = format!("/sandboxes/{i}");
        if let Some(reason) = laneway_core::config::key_problem(&sb.key) {
            c.error(format!("{at}/key"), reason);
        }
        if sandboxes.iter().any(|s| s.key == sb.key) {
            c.error(
                format!("{at}/key"),
                format!("duplicate sandbox key {:?}", sb.key),
            );
        }
        let mut forks: Vec<ForkModel> = Vec::new();
        for (j, f) in sb.forks.iter().enumerate() {
            let at = format!("{at}/forks/{j}");
            let Some(service) = service_id(&mut c, &format!("{at}/service"), &f.service) else {
                continue;
            };
            let key_ok = laneway_core::config::key_problem(&sb.key).is_none();
            if forks.iter().any(|x| x.service == service) {
                c.error(
                    format!("{at}/service"),
                    format!("sandbox {:?} forks {:?} twice", sb.key, f.service),
                );
            }
            let destination = f.destination.clone().unwrap_or_else(|| {
                format!("{}-{}", services[service].host, sb.key.to_ascii_lowercase())
            });
            if let Some(reason) = laneway_core::config::host_problem(&destination, true)
                && (key_ok || f.destination.is_some())
            {
                c.error(format!("{at}/destination"), reason);
            }
            let fork_calls = f
                .then
                .as_ref()
                .map(|t| add_calls(&mut c, &mut calls, t, &format!("{at}/then"), 1, &service_id));
            let destination_host =
                String::from_utf8_lossy(laneway_core::authority::host(destination.as_bytes()))
                    .to_ascii_lowercase();
            forks.push(ForkModel {
                service,
                destination,
                destination_host,
                calls: fork_calls,
                propagates: f.propagates.unwrap_or(services[service].propagates),
            });
        }
        sandboxes.push(SandboxModel {
            key: sb.key.clone(),
            forks,
        });
    }

    // The plugin configuration.
    let config = plugin_config(&mut c, &spec.plugin, "/plugin", &sandboxes, &services, true);

    // Traffic.
    let mut traffic = Vec::new();
    let mut first = 0u64;
    for (i, t) in spec.traffic.iter().enumerate() {
        let at = format!("/traffic/{i}");
        if traffic.iter().any(|x: &Traffic| x.name == t.name) {
            c.error(
                format!("{at}/name"),
                format!("duplicate traffic name {:?}", t.name),
            );
        }
        if t.name.contains('#') || t.name.is_empty() {
            c.error(
                format!("{at}/name"),
                "a traffic name is non-empty and has no '#'",
            );
        }
        let Some(chain) = chains.iter().position(|ch| ch.name == t.chain) else {
            c.error(
                format!("{at}/chain"),
                format!(
                    "unknown chain {:?}; declared: {}",
                    t.chain,
                    known(chains.iter().map(|c| c.name.clone()))
                ),
            );
            continue;
        };
        if t.count == 0 {
            c.error(format!("{at}/count"), "count must be at least 1");
        }
        let needs_key = t.kind != Kind::Untagged;
        if needs_key && t.key.is_none() {
            c.error(
                format!("{at}/key"),
                format!("{} traffic needs a key", t.kind.as_str()),
            );
        }
        if !needs_key && t.key.is_some() {
            c.error(
                format!("{at}/key"),
                "untagged traffic carries no key; use kind: spoofed for an unexpected key",
            );
        }
        let intent = match t.kind {
            Kind::Untagged | Kind::Spoofed => None,
            // Tagged traffic for a key no sandbox has (a deleted sandbox)
            // belongs to no sandbox.
            _ => t
                .key
                .as_ref()
                .and_then(|k| sandboxes.iter().position(|s| &s.key == k)),
        };
        let headers = match &t.headers {
            Some(h) => Headers {
                baggage: h.baggage.clone(),
                tracestate: h.tracestate.clone(),
            },
            None => headers_for(t.kind, t.key.as_deref()),
        };
        let expect = t.expect.clone().unwrap_or_default();
        check_expect(
            &mut c,
            &format!("{at}/expect"),
            &expect,
            &services,
            &sandboxes,
        );
        traffic.push(Traffic {
            name: t.name.clone(),
            chain,
            count: t.count,
            kind: t.kind,
            intent,
            key: t.key.clone(),
            headers,
            expect,
            first,
        });
        first = first.saturating_add(t.count);
    }
    if spec.traffic.is_empty() {
        c.error("/traffic", "declare at least one traffic group");
    }

    // Faults.
    let mut faults = Vec::new();
    for (i, f) in spec.faults.iter().enumerate() {
        let at = format!("/faults/{i}");
        let set = [
            f.fork_unavailable.is_some(),
            f.drop_context.is_some(),
            f.config_swap.is_some(),
        ];
        if set.iter().filter(|x| **x).count() != 1 {
            c.error(
                at,
                "a fault is exactly one of fork_unavailable, drop_context or config_swap",
            );
            continue;
        }
        if let Some(u) = &f.fork_unavailable {
            let sb = sandboxes.iter().position(|s| s.key == u.key);
            let sv = service_id(
                &mut c,
                &format!("{at}/fork_unavailable/service"),
                &u.service,
            );
            match (sb, sv) {
                (Some(b), Some(s)) if sandboxes[b].forks.iter().any(|f| f.service == s) => faults
                    .push(Fault::ForkUnavailable {
                        workload: Workload::Fork(s, b),
                    }),
                (None, _) => c.error(
                    format!("{at}/fork_unavailable/key"),
                    format!("no sandbox has key {:?}", u.key),
                ),
                (Some(_), Some(_)) => c.error(
                    format!("{at}/fork_unavailable/service"),
                    format!("sandbox {:?} has no fork of {:?}", u.key, u.service),
                ),
                _ => {}
            }
        }
        if let Some(d) = &f.drop_context {
            let Some(s) = service_id(&mut c, &format!("{at}/drop_context/service"), &d.service)
            else {
                continue;
            };
            let only = match d.workload.as_deref() {
                None | Some("any") => None,
                Some("baseline") => Some(Workload::Baseline(s)),
                Some(k) => match sandboxes.iter().position(|sb| sb.key == k) {
                    Some(b) if sandboxes[b].forks.iter().any(|f| f.service == s) => {
                        Some(Workload::Fork(s, b))
                    }
                    _ => {
                        c.error(
                            format!("{at}/drop_context/workload"),
                            format!(
                                "expected \"any\", \"baseline\" or the key of a sandbox forking {:?}; got {k:?}",
                                d.service
                            ),
                        );
                        None
                    }
                },
            };
            faults.push(Fault::DropContext {
                service: s,
                only,
                from: d.from_request.unwrap_or(0),
            });
        }
        if let Some(w) = &f.config_swap {
            // May be invalid: the filter must then keep the last good one.
            let config = plugin_config(
                &mut c,
                &w.plugin,
                &format!("{at}/config_swap/plugin"),
                &sandboxes,
                &services,
                false,
            );
            if w.at_request == 0 || w.at_request >= first {
                c.error(
                    format!("{at}/config_swap/at_request"),
                    format!("must fall inside the run: 1 to {}", first.saturating_sub(1)),
                );
            }
            faults.push(Fault::ConfigSwap {
                at: w.at_request,
                config,
            });
        }
    }

    if !c.errors.is_empty() {
        return Err(ScenarioErrors(c.errors));
    }
    Ok(Scenario {
        file: file.to_path_buf(),
        name: spec.name.clone(),
        description: spec.description.clone(),
        services,
        sandboxes,
        calls,
        chains,
        traffic,
        faults,
        config,
        requests: first,
    })
}

fn plugin_config(
    c: &mut Compiler,
    plugin: &PluginSpec,
    at: &str,
    sandboxes: &[SandboxModel],
    services: &[Service],
    must_be_valid: bool,
) -> String {
    let text = match (&plugin.derive, &plugin.file, &plugin.inline) {
        (None, None, None) => {
            derive_config(sandboxes, services, &spec::DeriveSpec::default()).to_json()
        }
        (Some(d), None, None) => derive_config(sandboxes, services, d).to_json(),
        (None, None, Some(v)) => v.to_string(),
        (None, Some(f), None) => {
            let path = c.file.parent().unwrap_or(Path::new(".")).join(f);
            match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    c.error(
                        format!("{at}/file"),
                        format!("cannot read {}: {e}", path.display()),
                    );
                    return String::new();
                }
            }
        }
        _ => {
            c.error(at, "plugin takes exactly one of derive, file or inline");
            return String::new();
        }
    };
    // A derived configuration inherits the scenario's own errors; report
    // those once, where they are.
    let derived = plugin.file.is_none() && plugin.inline.is_none();
    if must_be_valid
        && (!derived || c.errors.is_empty())
        && let Err(errors) = Config::from_json(&text)
    {
        for e in errors.0 {
            c.error(at, format!("invalid plugin configuration: {e}"));
        }
    }
    text
}

fn check_expect(
    c: &mut Compiler,
    at: &str,
    e: &spec::Expect,
    services: &[Service],
    sandboxes: &[SandboxModel],
) {
    let workload_ok = |name: &str| -> bool {
        let Some((service, rest)) = name.split_once('@') else {
            return false;
        };
        services.iter().any(|s| s.name == service)
            && (matches!(rest, "baseline" | "rejected" | "unavailable" | "failed")
                || rest
                    .strip_prefix("fork(")
                    .and_then(|r| r.strip_suffix(')'))
                    .is_some_and(|k| sandboxes.iter().any(|s| s.key == k)))
    };
    for (i, w) in e.path.iter().flatten().enumerate() {
        if !workload_ok(w) {
            c.error(
                format!("{at}/path/{i}"),
                format!(
                    "{w:?} is not SERVICE@baseline, SERVICE@fork(KEY), SERVICE@rejected, SERVICE@unavailable or SERVICE@failed for a declared service and sandbox"
                ),
            );
        }
    }
    for (edge, h) in e.hops.iter().flatten() {
        let callee = edge.rsplit_once("->").map_or(edge.as_str(), |(_, s)| s);
        if !services.iter().any(|s| s.name == callee) {
            c.error(
                format!("{at}/hops/{edge}"),
                format!("unknown service {callee:?} (write SERVICE or CALLER->SERVICE)"),
            );
        }
        if let Some(w) = &h.served_by
            && !workload_ok(w)
        {
            c.error(
                format!("{at}/hops/{edge}/served_by"),
                format!("{w:?} is not a declared workload"),
            );
        }
    }
    for (i, m) in e.misses.iter().flatten().enumerate() {
        if !services.iter().any(|s| s.name == m.service) {
            c.error(
                format!("{at}/misses/{i}/service"),
                format!("unknown service {:?}", m.service),
            );
        }
    }
}
