//! `laneway-scenario`: scenario files, what a replay runs. Format
//! documented in `testdata/README.md` ("scenarios/") and
//! `testdata/scenario.schema.json`.
//!
//! Two steps, as for the plugin configuration: [`Scenario::load`] parses
//! YAML or JSON into [`spec`] types (syntax, types and unknown fields fail
//! with `file:line:column`), then [`compile`] checks meaning (unknown
//! services and chains, bad keys, impossible faults, unknown names in
//! expectations) and builds the indexed model the replay walks, with every
//! expectation resolved to ids and enums ([`expect`]). Every error names
//! the file and a JSON pointer (`/traffic/2/chain`) with the reason.
//!
//! The model knows nothing of wasm or Envoy: it says what exists (services,
//! chains, sandboxes and their forks), where each call is decided
//! ([`Scenario::decided_at`]: the caller's sidecar, or in an ambient mesh
//! the callee's waypoint, or nowhere), what each workload calls and
//! propagates, which faults hold, and what was expected. Workload names
//! (`location@fork(K)`) are one type, [`WorkloadName`].
//!
//! Never panics on any input.

mod compile;
pub mod expect;
pub mod input;
pub mod spec;
pub mod workload;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use spec::{Kind, Mesh, Propagation};

pub use compile::{
    MAX_CALL_DEPTH, MAX_ERRORS, MAX_HOPS_PER_REQUEST, compile, derive_config, headers_for,
};
pub use expect::{Cause, Expectations, HopReason, HopRoute};
pub use workload::{Place, WorkloadName};

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

/// The clock of a scenario without `clock`: 2026-01-01T00:00:00Z, the
/// wasmtime host's own default.
pub const DEFAULT_CLOCK_NS: u64 = 1_767_225_600_000_000_000;

/// Index of a service.
pub type ServiceId = usize;
/// Index of a sandbox.
pub type SandboxId = usize;
/// Index of a call node in [`Scenario::calls`].
pub type CallId = usize;
/// Index of a waypoint in [`Scenario::waypoints`].
pub type WaypointId = usize;

/// Where a call is decided: which filter instance sees it, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DecidedAt {
    /// The caller's outbound sidecar (sidecar mesh; the ingress gateway
    /// for the entry call).
    Sidecar,
    /// The waypoint of the service called (ambient mesh).
    Waypoint(WaypointId),
    /// No filter: in an ambient mesh, the service called has no waypoint,
    /// so the call reaches its baseline as sent (reason `no_waypoint`).
    Nowhere,
}

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
    /// The waypoint that decides calls to it (ambient mesh only).
    pub waypoint: Option<WaypointId>,
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
    /// Sparse expectations, resolved.
    pub expect: Expectations,
    /// The first request's global index.
    pub first: u64,
    /// The most hops one request of this group can make.
    pub hop_bound: u64,
    /// The client's address at the gateway, when given.
    pub source: Option<String>,
    /// The entry call's `:authority`, when not the service's host.
    pub authority: Option<String>,
    /// The entry call's `:path`, when not `/`.
    pub path: Option<String>,
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
    /// Sidecar or ambient: where calls are decided.
    pub mesh: Mesh,
    /// The waypoints services name (ambient mesh), by id, in the order
    /// services first name them.
    pub waypoints: Vec<String>,
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
    /// The ingress gateway's configuration, when it has its own.
    pub gateway_config: Option<String>,
    /// The filters' clock at request 0, Unix ns.
    pub clock_start_ns: u64,
    /// Nanoseconds between two requests.
    pub clock_step_ns: u64,
    /// Total requests.
    pub requests: u64,
    /// The files it was read from: the scenario, then every plugin
    /// configuration file it names.
    pub inputs: Vec<PathBuf>,
    /// Fork destination hosts (lowercase) and the fork behind each; the
    /// first fork wins when two share a host.
    fork_hosts: HashMap<String, Workload>,
    /// `(service, sandbox)` → index of the fork in the sandbox's forks.
    fork_index: HashMap<(ServiceId, SandboxId), usize>,
    /// Forks a `fork_unavailable` fault takes down.
    down: HashSet<Workload>,
    /// Per service, its `drop_context` faults: `(only this workload, from
    /// request)`.
    drops: HashMap<ServiceId, Vec<(Option<Workload>, u64)>>,
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
        let bytes = input::read_regular_file(path, input::MAX_SCENARIO_BYTES)
            .map_err(|e| err(String::new(), format!("cannot read: {e}")))?;
        Scenario::from_bytes(path, &bytes)
    }

    /// Parses and compiles a scenario's text, as if read from `path`
    /// (which names it in errors and anchors its relative plugin files).
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Scenario, ScenarioErrors> {
        let spec = spec::parse(path, bytes).map_err(|(at, reason)| {
            ScenarioErrors(vec![ScenarioError {
                file: path.to_path_buf(),
                at,
                reason,
            }])
        })?;
        compile(path, &spec)
    }

    /// Builds the model from compiled parts, with its indexes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn assemble(
        file: &Path,
        spec: &spec::ScenarioSpec,
        waypoints: Vec<String>,
        services: Vec<Service>,
        sandboxes: Vec<SandboxModel>,
        calls: Vec<Call>,
        chains: Vec<Chain>,
        traffic: Vec<Traffic>,
        faults: Vec<Fault>,
        config: String,
        requests: u64,
        inputs: Vec<PathBuf>,
    ) -> Scenario {
        let mut fork_hosts = HashMap::new();
        let mut fork_index = HashMap::new();
        for (b, sandbox) in sandboxes.iter().enumerate() {
            for (i, f) in sandbox.forks.iter().enumerate() {
                fork_hosts
                    .entry(f.destination_host.clone())
                    .or_insert(Workload::Fork(f.service, b));
                fork_index.insert((f.service, b), i);
            }
        }
        let mut down = HashSet::new();
        let mut drops: HashMap<ServiceId, Vec<(Option<Workload>, u64)>> = HashMap::new();
        for f in &faults {
            match f {
                Fault::ForkUnavailable { workload } => {
                    down.insert(*workload);
                }
                Fault::DropContext {
                    service,
                    only,
                    from,
                } => drops.entry(*service).or_default().push((*only, *from)),
                Fault::ConfigSwap { .. } => {}
            }
        }
        Scenario {
            file: file.to_path_buf(),
            name: spec.name.clone(),
            description: spec.description.clone(),
            mesh: spec.mesh,
            waypoints,
            services,
            sandboxes,
            calls,
            chains,
            traffic,
            faults,
            config,
            gateway_config: None,
            clock_start_ns: DEFAULT_CLOCK_NS,
            clock_step_ns: 0,
            requests,
            inputs,
            fork_hosts,
            fork_index,
            down,
            drops,
        }
    }

    /// Whether a request's verdict can depend on the ones before it: a
    /// rate limit in a configuration (its token bucket), so the replay must
    /// run them in order.
    pub fn order_matters(&self) -> bool {
        let limited = |text: &str| {
            // Cheap first: a million-sandbox configuration takes seconds
            // to parse.
            text.contains("rate_limit")
                && laneway_core::Config::parse(text).is_ok_and(|c| {
                    c.rate_limit.is_some() || c.sandboxes.iter().any(|s| s.rate_limit.is_some())
                })
        };
        limited(&self.config)
            || self.gateway_config.as_deref().is_some_and(limited)
            || self.faults.iter().any(|f| match f {
                Fault::ConfigSwap { config, .. } => limited(config),
                _ => false,
            })
    }

    /// The filters' clock when request `index` is sent.
    pub fn clock_ns(&self, index: u64) -> u64 {
        self.clock_start_ns
            .saturating_add(index.saturating_mul(self.clock_step_ns))
    }

    /// The most hops a replay of every request can make: each group's
    /// count times the most one of its requests can make (saturating).
    pub fn hop_bound(&self) -> u64 {
        self.traffic.iter().fold(0u64, |n, t| {
            n.saturating_add(t.count.saturating_mul(t.hop_bound))
        })
    }

    /// The name of a workload: `service@baseline` or `service@fork(K)`.
    pub fn workload_name(&self, w: Workload) -> WorkloadName<'_> {
        match w {
            Workload::Baseline(s) => WorkloadName::baseline(&self.services[s].name),
            Workload::Fork(s, b) => {
                WorkloadName::fork(&self.services[s].name, &self.sandboxes[b].key)
            }
        }
    }

    /// Where a call to `service` is decided: in a sidecar mesh the
    /// caller's sidecar; in an ambient mesh the service's waypoint, or
    /// nowhere when it has none.
    pub fn decided_at(&self, service: ServiceId) -> DecidedAt {
        match self.mesh {
            Mesh::Sidecar => DecidedAt::Sidecar,
            Mesh::Ambient => self.services[service]
                .waypoint
                .map_or(DecidedAt::Nowhere, DecidedAt::Waypoint),
        }
    }

    /// The service a workload belongs to.
    pub fn service_of(w: Workload) -> ServiceId {
        match w {
            Workload::Baseline(s) | Workload::Fork(s, _) => s,
        }
    }

    /// The fork of `service` in `sandbox`, if deployed.
    pub fn fork(&self, service: ServiceId, sandbox: SandboxId) -> Option<&ForkModel> {
        let i = *self.fork_index.get(&(service, sandbox))?;
        self.sandboxes[sandbox].forks.get(i)
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
    pub fn served_by(&self, service: ServiceId, fork_host: Option<&[u8]>) -> Option<Workload> {
        let Some(host) = fork_host else {
            return Some(Workload::Baseline(service));
        };
        let host = std::str::from_utf8(host).ok()?;
        match self.fork_hosts.get(host) {
            Some(w) => Some(*w),
            None if host.bytes().any(|b| b.is_ascii_uppercase()) => self
                .fork_hosts
                .get(host.to_ascii_lowercase().as_str())
                .copied(),
            None => None,
        }
    }

    /// What workload `w` propagates for request `index`, faults included:
    /// a `drop_context` fault that covers it propagates nothing.
    pub fn propagation(&self, w: Workload, index: u64) -> Propagation {
        if self.context_dropped(w, index) {
            Propagation::None
        } else {
            self.propagates(w)
        }
    }

    /// Whether a `drop_context` fault covers workload `w` at request `index`.
    pub fn context_dropped(&self, w: Workload, index: u64) -> bool {
        self.drops
            .get(&Scenario::service_of(w))
            .is_some_and(|list| {
                list.iter()
                    .any(|(only, from)| index >= *from && only.is_none_or(|o| o == w))
            })
    }

    /// Whether a `fork_unavailable` fault takes workload `w` down.
    pub fn unavailable(&self, w: Workload) -> bool {
        self.down.contains(&w)
    }

    /// The configuration swaps, in the order of the request they happen
    /// at: `(first request, configuration text)`.
    pub fn config_swaps(&self) -> Vec<(u64, &str)> {
        let mut swaps: Vec<(u64, &str)> = self
            .faults
            .iter()
            .filter_map(|f| match f {
                Fault::ConfigSwap { at, config } => Some((*at, config.as_str())),
                _ => None,
            })
            .collect();
        swaps.sort_by_key(|s| s.0);
        swaps
    }

    /// The traffic group of request `index`.
    pub fn traffic_of(&self, index: u64) -> Option<usize> {
        let g = self.traffic.partition_point(|t| t.first + t.count <= index);
        (g < self.traffic.len()).then_some(g)
    }

    /// Finds a request by name: `GROUP` (its first request) or `GROUP#N`
    /// (the N-th, from 0). Returns the group's index and the request's
    /// global index.
    pub fn request_by_name(&self, name: &str) -> Option<(usize, u64)> {
        let (group, n) = match name.rsplit_once('#') {
            Some((g, n)) => (g, n.parse::<u64>().ok()?),
            None => (name, 0),
        };
        let g = self.traffic.iter().position(|t| t.name == group)?;
        let t = &self.traffic[g];
        (n < t.count).then_some((g, t.first + n))
    }
}
