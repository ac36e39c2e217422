//! [`compile`]: from the spec as written to the model the replay walks,
//! checking meaning and resolving every name once. Every error names the
//! file and a JSON pointer with the reason; all errors are reported at
//! once, in document order (the first [`MAX_ERRORS`] of them).
//!
//! Bounded work, whatever the file: every lookup by name is a map, never
//! a scan, so compiling is `O(n log n)` in the file's size; calls may not
//! form a cycle (a fork calling, through other forks, back into itself:
//! the walk would never end), nest deeper than [`MAX_CALL_DEPTH`], or make
//! one request cost more than [`MAX_HOPS_PER_REQUEST`] hops; request
//! counts may not add up past `u64::MAX`. Each traffic group's hop bound is
//! computed here ([`Scenario::hop_bound`](crate::Scenario::hop_bound)), so
//! the replay can refuse or announce a long run before it starts.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use laneway_core::Config;
use laneway_core::config::{Fork, Sandbox, UnknownKeyPolicy, cut};

use crate::expect::{
    CallerMatch, Cause, Expectations, ExpectedServed, HopExpectation, HopReason, HopRoute,
};
use crate::input::{MAX_CONFIG_BYTES, read_regular_file};
use crate::spec::{self, CallSpec, Kind, Mesh, PluginSpec, ScenarioSpec, UnknownKeySpec};
use crate::workload::{Place, WorkloadName};
use crate::{
    Call, CallId, Chain, Fault, ForkModel, Headers, SandboxId, SandboxModel, Scenario,
    ScenarioError, ScenarioErrors, Service, ServiceId, Traffic, WaypointId, Workload,
};

/// Calls may nest at most this deep (a chain's entry is depth 1). Deeper
/// YAML or JSON stops at the parser's own limit
/// ([`spec::MAX_NESTING`](crate::spec::MAX_NESTING), about twice as deep).
pub const MAX_CALL_DEPTH: usize = 32;

/// One request may make at most this many calls, counting every fork's
/// calls as if each hop took the costliest workload.
pub const MAX_HOPS_PER_REQUEST: u64 = 100_000;

/// At most this many errors are listed; the rest are counted.
pub const MAX_ERRORS: usize = 100;

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
    if let Some(carriers) = &derive.carriers {
        // An empty list stays empty, and the configuration's validation
        // refuses it with its path.
        config.routing_key.carriers = laneway_core::config::Carriers {
            baggage: carriers.contains(&spec::CarrierSpec::Baggage),
            tracestate: carriers.contains(&spec::CarrierSpec::Tracestate),
        };
    }
    if derive.unknown_key == Some(UnknownKeySpec::Reject) {
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
                    expires_at: None,
                })
                .collect(),
            expires_at: None,
            rate_limit: None,
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
    more: usize,
    /// Plugin configuration files read.
    read: Vec<std::path::PathBuf>,
}

impl Compiler<'_> {
    fn error(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        if self.errors.len() == MAX_ERRORS {
            self.more += 1;
            return;
        }
        self.errors.push(ScenarioError {
            file: self.file.to_path_buf(),
            at: at.into(),
            reason: reason.into(),
        });
    }

    fn finish(mut self) -> Result<(), ScenarioErrors> {
        if self.more > 0 {
            let more = self.more;
            self.more = 0;
            self.errors.push(ScenarioError {
                file: self.file.to_path_buf(),
                at: String::new(),
                reason: format!("and {more} more errors (only the first {MAX_ERRORS} are listed)"),
            });
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ScenarioErrors(self.errors))
        }
    }
}

/// Why `name` cannot name a waypoint, if it cannot. A waypoint is a
/// Kubernetes Gateway, deployed as a Service of that name: an RFC 1035
/// label.
fn waypoint_problem(name: &str) -> Option<String> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (!ok).then(|| {
        format!(
            "{} cannot name a waypoint: a waypoint is a Kubernetes Gateway, deployed as a \
             Service of its name, so 1 to 63 lowercase letters, digits or '-', starting with a \
             letter and not ending with '-'",
            cut(name)
        )
    })
}

/// Why a scenario with sidecars cannot say `no_waypoint`.
const NO_WAYPOINT_IN_SIDECAR: &str = "no_waypoint happens only with mesh: ambient, to a call \
     whose service has no waypoint; with sidecars every call is decided in the caller's sidecar";

/// A JSON pointer segment for a name (RFC 6901: `~` is `~0`, `/` is `~1`).
fn segment(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// Up to ten names, then how many more.
fn known<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut shown: Vec<String> = Vec::new();
    let mut more = 0;
    for n in names {
        if shown.len() < 10 {
            shown.push(cut(n));
        } else {
            more += 1;
        }
    }
    match (shown.is_empty(), more) {
        (true, _) => "none".into(),
        (false, 0) => shown.join(", "),
        (false, n) => format!("{} and {n} more", shown.join(", ")),
    }
}

/// Names already resolved, for lookups in constant time.
struct Names<'s> {
    services: HashMap<&'s str, ServiceId>,
    sandboxes: HashMap<&'s str, SandboxId>,
}

impl Names<'_> {
    fn service(&self, name: &str) -> Option<ServiceId> {
        self.services.get(name).copied()
    }

    fn sandbox(&self, key: &str) -> Option<SandboxId> {
        self.sandboxes.get(key).copied()
    }
}

/// Checks meaning and builds the model, or reports every error.
pub fn compile(file: &Path, spec: &ScenarioSpec) -> Result<Scenario, ScenarioErrors> {
    let mut c = Compiler {
        file,
        errors: Vec::new(),
        more: 0,
        read: Vec::new(),
    };
    if spec.name.trim().is_empty() {
        c.error("/name", "the scenario needs a name");
    }

    // Services, and the waypoints they name.
    let mut services = Vec::new();
    let mut waypoints: Vec<String> = Vec::new();
    let mut waypoint_ids: HashMap<&str, WaypointId> = HashMap::new();
    // Where each waypoint is first named.
    let mut waypoint_at: Vec<String> = Vec::new();
    for (name, s) in &spec.services {
        let at = format!("/services/{}", segment(name));
        if name.is_empty()
            || name.contains('@')
            || name.contains("->")
            || name.chars().any(|ch| ch.is_control() || ch.is_whitespace())
        {
            c.error(
                &at,
                format!(
                    "{} cannot name a service: a name is non-empty, without white space, \
                     control characters, '@' or '->' (they separate names in SERVICE@fork(KEY) \
                     and CALLER->SERVICE)",
                    cut(name)
                ),
            );
        }
        let host = s.host.clone().unwrap_or_else(|| name.clone());
        if let Some(reason) = laneway_core::config::host_problem(&host, false) {
            c.error(format!("{at}/host"), reason);
        }
        if s.port == 0 {
            c.error(format!("{at}/port"), "the port must be 1 to 65535, found 0");
        }
        let waypoint = match (s.waypoint.as_deref(), spec.mesh) {
            (None, _) => None,
            (Some(_), Mesh::Sidecar) => {
                c.error(
                    format!("{at}/waypoint"),
                    "a waypoint needs mesh: ambient; with sidecars (the default mesh) every \
                     call is decided in the caller's outbound sidecar, and no waypoint is on its \
                     path",
                );
                None
            }
            (Some(w), Mesh::Ambient) => {
                if let Some(reason) = waypoint_problem(w) {
                    c.error(format!("{at}/waypoint"), reason);
                }
                let id = *waypoint_ids.entry(w).or_insert_with(|| {
                    waypoints.push(w.to_owned());
                    waypoint_at.push(format!("{at}/waypoint"));
                    waypoints.len() - 1
                });
                Some(id)
            }
        };
        services.push(Service {
            name: name.clone(),
            authority: format!("{host}:{}", s.port),
            host,
            port: s.port,
            propagates: s.propagates,
            waypoint,
        });
    }
    if services.is_empty() {
        c.error("/services", "declare at least one service");
    }
    // A waypoint is a Service of its namespace: it cannot share a name
    // with one of the scenario's services.
    for (w, at) in waypoints.iter().zip(&waypoint_at) {
        if spec.services.contains_key(w) {
            c.error(
                at.clone(),
                format!(
                    "waypoint {} has the name of service {0}: both would be Kubernetes Services \
                     of one namespace; name the waypoint otherwise",
                    cut(w)
                ),
            );
        }
    }
    let mut names = Names {
        services: services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect(),
        sandboxes: HashMap::new(),
    };
    let service_id = |c: &mut Compiler, names: &Names, at: &str, name: &str| {
        let id = names.service(name);
        if id.is_none() {
            c.error(
                at,
                format!(
                    "unknown service {}; declared: {}",
                    cut(name),
                    known(spec.services.keys().map(String::as_str))
                ),
            );
        }
        id
    };

    // Calls and chains. `pointers[id]` is where call `id` is written.
    let mut calls: Vec<Call> = Vec::new();
    let mut pointers: Vec<String> = Vec::new();
    #[allow(clippy::too_many_arguments)]
    fn add_calls(
        c: &mut Compiler,
        names: &Names,
        calls: &mut Vec<Call>,
        pointers: &mut Vec<String>,
        specs: &[CallSpec],
        at: &str,
        depth: usize,
        id: &dyn Fn(&mut Compiler, &Names, &str, &str) -> Option<ServiceId>,
    ) -> Vec<CallId> {
        if depth > MAX_CALL_DEPTH {
            c.error(at, format!("calls nest deeper than {MAX_CALL_DEPTH}"));
            return Vec::new();
        }
        specs
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let here = format!("{at}/{i}");
                let service = id(c, names, &format!("{here}/call"), &s.call)?;
                let then = add_calls(
                    c,
                    names,
                    calls,
                    pointers,
                    &s.then,
                    &format!("{here}/then"),
                    depth + 1,
                    id,
                );
                calls.push(Call { service, then });
                pointers.push(format!("{here}/call"));
                Some(calls.len() - 1)
            })
            .collect()
    }
    let mut chains: Vec<Chain> = Vec::new();
    let mut chain_ids: HashMap<&str, usize> = HashMap::new();
    for (i, ch) in spec.chains.iter().enumerate() {
        let at = format!("/chains/{i}");
        if chain_ids.contains_key(ch.name.as_str()) {
            c.error(
                format!("{at}/name"),
                format!("duplicate chain name {}", cut(&ch.name)),
            );
        }
        let then = add_calls(
            &mut c,
            &names,
            &mut calls,
            &mut pointers,
            &ch.then,
            &format!("{at}/then"),
            2,
            &service_id,
        );
        if let Some(service) = service_id(&mut c, &names, &format!("{at}/call"), &ch.call) {
            calls.push(Call { service, then });
            pointers.push(format!("{at}/call"));
            chain_ids.entry(ch.name.as_str()).or_insert(chains.len());
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
        let key_ok = laneway_core::config::key_problem(&sb.key).is_none();
        if let Some(reason) = laneway_core::config::key_problem(&sb.key) {
            c.error(format!("{at}/key"), reason);
        }
        if names.sandbox(&sb.key).is_some() {
            c.error(
                format!("{at}/key"),
                format!("duplicate sandbox key {}", cut(&sb.key)),
            );
        } else {
            names.sandboxes.insert(sb.key.as_str(), i);
        }
        let mut forks: Vec<ForkModel> = Vec::new();
        let mut forked: HashSet<ServiceId> = HashSet::new();
        for (j, f) in sb.forks.iter().enumerate() {
            let at = format!("{at}/forks/{j}");
            let Some(service) = service_id(&mut c, &names, &format!("{at}/service"), &f.service)
            else {
                continue;
            };
            if !forked.insert(service) {
                c.error(
                    format!("{at}/service"),
                    format!("sandbox {} forks {} twice", cut(&sb.key), cut(&f.service)),
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
            let fork_calls = f.then.as_ref().map(|t| {
                add_calls(
                    &mut c,
                    &names,
                    &mut calls,
                    &mut pointers,
                    t,
                    &format!("{at}/then"),
                    2,
                    &service_id,
                )
            });
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

    // Cycles and the cost of one request, before anything walks the calls.
    let cycle_free = match find_cycle(&calls, &sandboxes) {
        Some(cycle) => {
            let path: Vec<&str> = cycle
                .iter()
                .map(|&id| services[calls[id].service].name.as_str())
                .collect();
            let closing = *cycle.last().unwrap_or(&0);
            c.error(
                pointers.get(closing).cloned().unwrap_or_default(),
                format!("call cycle {}", path.join(" → ")),
            );
            false
        }
        None => true,
    };
    let bounds = if cycle_free {
        hop_bounds(&calls, &sandboxes)
    } else {
        vec![0; calls.len()]
    };

    // The plugin configuration.
    let config = match &spec.plugin {
        None => plugin_config(
            &mut c,
            &PluginSpec {
                derive: Some(spec::DeriveSpec::default()),
                ..PluginSpec::default()
            },
            "/plugin",
            &sandboxes,
            &services,
            true,
        ),
        Some(p) => plugin_config(&mut c, p, "/plugin", &sandboxes, &services, true),
    };

    // Traffic.
    let mut traffic: Vec<Traffic> = Vec::new();
    let mut traffic_names: HashSet<&str> = HashSet::new();
    let mut first = 0u64;
    let mut overflowed = false;
    for (i, t) in spec.traffic.iter().enumerate() {
        let at = format!("/traffic/{i}");
        if !traffic_names.insert(t.name.as_str()) {
            c.error(
                format!("{at}/name"),
                format!("duplicate traffic name {}", cut(&t.name)),
            );
        }
        if t.name.contains('#') || t.name.is_empty() {
            c.error(
                format!("{at}/name"),
                "a traffic name is non-empty and has no '#'",
            );
        }
        let Some(&chain) = chain_ids.get(t.chain.as_str()) else {
            c.error(
                format!("{at}/chain"),
                format!(
                    "unknown chain {}; declared: {}",
                    cut(&t.chain),
                    known(chains.iter().map(|c| c.name.as_str()))
                ),
            );
            continue;
        };
        if t.count == 0 {
            c.error(format!("{at}/count"), "count must be at least 1, found 0");
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
            _ => t.key.as_deref().and_then(|k| names.sandbox(k)),
        };
        let headers = match &t.headers {
            Some(h) => Headers {
                baggage: h.baggage.clone(),
                tracestate: h.tracestate.clone(),
            },
            None => headers_for(t.kind, t.key.as_deref()),
        };
        let entry = t.headers.as_ref();
        let source = entry.and_then(|h| h.source.clone());
        if let Some(s) = &source
            && laneway_core::cidr::Ip::parse(s.as_bytes()).is_none()
        {
            c.error(
                format!("{at}/headers/source"),
                format!("{} is not an IPv4 or IPv6 address", cut(s)),
            );
        }
        let authority = entry.and_then(|h| h.authority.clone());
        if let Some(a) = &authority
            && let Some(reason) = laneway_core::config::host_problem(a, true)
        {
            c.error(format!("{at}/headers/authority"), reason);
        }
        let path = entry.and_then(|h| h.path.clone());
        if let Some(p) = &path
            && (!p.starts_with('/')
                || p.len() > 4096
                || p.bytes().any(|b| !(0x21..0x7f).contains(&b)))
        {
            c.error(
                format!("{at}/headers/path"),
                format!(
                    "{} is not a request path: '/' then at most 4096 visible ASCII bytes",
                    cut(p)
                ),
            );
        }
        let expect = resolve_expect(
            &mut c,
            &names,
            &format!("{at}/expect"),
            &t.expect.clone().unwrap_or_default(),
            spec.mesh,
        );
        let per_request = bounds.get(chains[chain].entry).copied().unwrap_or(0);
        if per_request > MAX_HOPS_PER_REQUEST {
            c.error(
                format!("{at}/chain"),
                format!(
                    "one request of chain {} can make {per_request} calls; the limit is {MAX_HOPS_PER_REQUEST}",
                    cut(&t.chain)
                ),
            );
        }
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
            hop_bound: per_request,
            source,
            authority,
            path,
        });
        match first.checked_add(t.count) {
            Some(next) => first = next,
            None if !overflowed => {
                overflowed = true;
                c.error(
                    format!("{at}/count"),
                    format!("the traffic adds up to more than {} requests", u64::MAX),
                );
            }
            None => {}
        }
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
            let sb = names.sandbox(&u.key);
            let sv = service_id(
                &mut c,
                &names,
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
                    format!("no sandbox has key {}", cut(&u.key)),
                ),
                (Some(_), Some(_)) => c.error(
                    format!("{at}/fork_unavailable/service"),
                    format!("sandbox {} has no fork of {}", cut(&u.key), cut(&u.service)),
                ),
                _ => {}
            }
        }
        if let Some(d) = &f.drop_context {
            let Some(s) = service_id(
                &mut c,
                &names,
                &format!("{at}/drop_context/service"),
                &d.service,
            ) else {
                continue;
            };
            let only = match d.workload.as_deref() {
                None | Some("any") => None,
                Some("baseline") => Some(Workload::Baseline(s)),
                Some(k) => match names.sandbox(k) {
                    Some(b) if sandboxes[b].forks.iter().any(|f| f.service == s) => {
                        Some(Workload::Fork(s, b))
                    }
                    _ => {
                        c.error(
                            format!("{at}/drop_context/workload"),
                            format!(
                                "expected \"any\", \"baseline\" or the key of a sandbox forking {}; got {}",
                                cut(&d.service),
                                cut(k)
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
                    format!(
                        "must fall inside the run: 1 to {}, found {}",
                        first.saturating_sub(1),
                        w.at_request
                    ),
                );
            }
            faults.push(Fault::ConfigSwap {
                at: w.at_request,
                config,
            });
        }
    }

    let gateway_config = spec
        .gateway_plugin
        .as_ref()
        .map(|p| plugin_config(&mut c, p, "/gateway_plugin", &sandboxes, &services, true));
    let mut clock = (crate::DEFAULT_CLOCK_NS, 0);
    if let Some(spec_clock) = &spec.clock {
        if let Some(start) = &spec_clock.start {
            match laneway_core::rfc3339::parse(start.as_bytes()) {
                Ok(ns) => clock.0 = ns,
                Err(e) => c.error("/clock/start", format!("{}: {e}", cut(start))),
            }
        }
        match spec_clock.step_ms.checked_mul(1_000_000) {
            Some(ns) if spec_clock.step_ms <= 86_400_000 => clock.1 = ns,
            _ => c.error(
                "/clock/step_ms",
                format!("{} ms is more than a day", spec_clock.step_ms),
            ),
        }
    }

    let mut inputs = vec![file.to_path_buf()];
    inputs.append(&mut c.read);
    c.finish()?;
    let mut scenario = Scenario::assemble(
        file, spec, waypoints, services, sandboxes, calls, chains, traffic, faults, config, first,
        inputs,
    );
    scenario.gateway_config = gateway_config;
    (scenario.clock_start_ns, scenario.clock_step_ns) = clock;
    Ok(scenario)
}

/// A call cycle: call ids in order, starting and ending with the call that
/// closes it.
///
/// The graph: each call node calls the nodes of its own `then`, and, when
/// a sandbox forks its service with calls of its own, those. A request
/// walks one path of it; a cycle here is a request that could call
/// forever. Depth-first with an explicit stack (no recursion).
fn find_cycle(calls: &[Call], sandboxes: &[SandboxModel]) -> Option<Vec<CallId>> {
    let overrides = overrides(sandboxes);
    let children = |n: CallId| -> Vec<CallId> {
        let mut out = calls[n].then.clone();
        for list in overrides.get(&calls[n].service).into_iter().flatten() {
            out.extend_from_slice(list);
        }
        out
    };
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; calls.len()];
    for root in 0..calls.len() {
        if mark[root] != Mark::New {
            continue;
        }
        // (node, its children, the next child to visit)
        let mut stack: Vec<(CallId, Vec<CallId>, usize)> = vec![(root, children(root), 0)];
        mark[root] = Mark::Open;
        while let Some((node, kids, next)) = stack.last_mut() {
            let Some(&kid) = kids.get(*next) else {
                mark[*node] = Mark::Done;
                stack.pop();
                continue;
            };
            *next += 1;
            match mark[kid] {
                Mark::Done => {}
                Mark::Open => {
                    // `node` calls `kid`, already open above it: the cycle
                    // is node → kid → ... → node, closed by node's call.
                    let from = stack.iter().position(|(n, _, _)| *n == kid).unwrap_or(0);
                    let closing = stack.last().map_or(kid, |(n, _, _)| *n);
                    let mut cycle = vec![closing];
                    cycle.extend(stack[from..].iter().map(|(n, _, _)| *n));
                    return Some(cycle);
                }
                Mark::New => {
                    mark[kid] = Mark::Open;
                    let grandkids = children(kid);
                    stack.push((kid, grandkids, 0));
                }
            }
        }
    }
    None
}

/// Per service, the call lists of every fork of it that calls its own.
fn overrides(sandboxes: &[SandboxModel]) -> HashMap<ServiceId, Vec<&[CallId]>> {
    let mut out: HashMap<ServiceId, Vec<&[CallId]>> = HashMap::new();
    for sandbox in sandboxes {
        for f in &sandbox.forks {
            if let Some(list) = &f.calls {
                out.entry(f.service).or_default().push(list);
            }
        }
    }
    out
}

/// For each call node, the most hops a request entering it can make: one
/// for the call, plus the costliest of its workloads' calls (the
/// baseline's `then`, or any fork's own). The call graph has no cycle;
/// counts saturate.
fn hop_bounds(calls: &[Call], sandboxes: &[SandboxModel]) -> Vec<u64> {
    let overrides = overrides(sandboxes);
    // Children before parents: a post-order of the graph, iteratively.
    let mut bound: Vec<Option<u64>> = vec![None; calls.len()];
    for root in 0..calls.len() {
        let mut stack = vec![(root, false)];
        while let Some((node, expanded)) = stack.pop() {
            if bound[node].is_some() {
                continue;
            }
            let lists: Vec<&[CallId]> = std::iter::once(calls[node].then.as_slice())
                .chain(
                    overrides
                        .get(&calls[node].service)
                        .into_iter()
                        .flatten()
                        .copied(),
                )
                .collect();
            if !expanded {
                stack.push((node, true));
                for list in &lists {
                    stack.extend(
                        list.iter()
                            .filter(|&&k| bound[k].is_none())
                            .map(|&k| (k, false)),
                    );
                }
                continue;
            }
            let costliest = lists
                .iter()
                .map(|list| {
                    list.iter()
                        .fold(0u64, |n, &k| n.saturating_add(bound[k].unwrap_or(0)))
                })
                .max()
                .unwrap_or(0);
            bound[node] = Some(costliest.saturating_add(1));
        }
    }
    bound.into_iter().map(|b| b.unwrap_or(1)).collect()
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
        (Some(d), None, None) => derive_config(sandboxes, services, d).to_json(),
        (None, None, Some(Some(v))) => v.to_string(),
        (None, None, Some(None)) => {
            c.error(
                format!("{at}/inline"),
                "inline is null; give the configuration, or write derive: {} to derive it",
            );
            return String::new();
        }
        (None, Some(f), None) => {
            let path = c.file.parent().unwrap_or(Path::new(".")).join(f);
            c.read.push(path.clone());
            match read_regular_file(&path, MAX_CONFIG_BYTES).and_then(|bytes| {
                String::from_utf8(bytes).map_err(|e| {
                    format!(
                        "not UTF-8: invalid byte at offset {}",
                        e.utf8_error().valid_up_to()
                    )
                })
            }) {
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

/// Resolves a workload name written in an expectation.
fn resolve_workload(name: &str, names: &Names) -> Option<(ServiceId, ExpectedServed)> {
    let w = WorkloadName::parse(name)?;
    let s = names.service(w.service)?;
    let served = match w.place {
        Place::Baseline => ExpectedServed::By(Workload::Baseline(s)),
        Place::Rejected => ExpectedServed::Rejected,
        Place::Unavailable => ExpectedServed::Unavailable,
        Place::Failed => ExpectedServed::Failed,
        Place::Fork(key) => ExpectedServed::By(Workload::Fork(s, names.sandbox(key)?)),
    };
    Some((s, served))
}

fn vocabulary(values: impl Iterator<Item = &'static str>) -> String {
    values.collect::<Vec<_>>().join(", ")
}

/// Checks a traffic group's expectations and resolves every name in them;
/// a name it does not know is an error at its JSON pointer.
fn resolve_expect(
    c: &mut Compiler,
    names: &Names,
    at: &str,
    e: &spec::Expect,
    mesh: Mesh,
) -> Expectations {
    let mut out = Expectations {
        status: e.status,
        ..Expectations::default()
    };
    if let Some(path) = &e.path {
        let mut resolved = Vec::new();
        for (i, w) in path.iter().enumerate() {
            match resolve_workload(w, names) {
                Some(r) => resolved.push(r),
                None => c.error(
                    format!("{at}/path/{i}"),
                    format!(
                        "{} is not SERVICE@baseline, SERVICE@fork(KEY), SERVICE@rejected, SERVICE@unavailable or SERVICE@failed for a declared service and sandbox",
                        cut(w)
                    ),
                ),
            }
        }
        out.path = Some(resolved);
    }
    for (edge, h) in e.hops.iter().flatten() {
        let here = format!("{at}/hops/{}", segment(edge));
        let (caller, callee) = match edge.rsplit_once("->") {
            Some(("ingress", s)) => (Some(CallerMatch::Ingress), s),
            Some((name, s)) => match names.service(name) {
                Some(id) => (Some(CallerMatch::Service(id)), s),
                None => {
                    c.error(
                        &here,
                        format!(
                            "unknown caller {}; write ingress or a declared service",
                            cut(name)
                        ),
                    );
                    (None, s)
                }
            },
            None => (Some(CallerMatch::Any), edge.as_str()),
        };
        let callee_id = names.service(callee);
        if callee_id.is_none() {
            c.error(
                &here,
                format!(
                    "unknown service {} (write SERVICE or CALLER->SERVICE)",
                    cut(callee)
                ),
            );
        }
        let route = h.route.as_deref().and_then(|r| {
            let found = HopRoute::from_name(r);
            if found.is_none() {
                c.error(
                    format!("{here}/route"),
                    format!(
                        "unknown route {}; expected one of {}",
                        cut(r),
                        vocabulary(HopRoute::ALL.iter().map(|r| r.as_str()))
                    ),
                );
            }
            found
        });
        let reason = h.reason.as_deref().and_then(|r| {
            let found = HopReason::from_name(r);
            match found {
                None => c.error(
                    format!("{here}/reason"),
                    format!(
                        "unknown reason {}; expected one of {}",
                        cut(r),
                        vocabulary(HopReason::names())
                    ),
                ),
                Some(HopReason::NoWaypoint) if mesh == Mesh::Sidecar => {
                    c.error(format!("{here}/reason"), NO_WAYPOINT_IN_SIDECAR);
                }
                Some(_) => {}
            }
            found
        });
        let served_by = h.served_by.as_deref().and_then(|w| {
            let found = resolve_workload(w, names);
            if found.is_none() {
                c.error(
                    format!("{here}/served_by"),
                    format!("{} is not a declared workload", cut(w)),
                );
            }
            found
        });
        if let (Some(caller), Some(service)) = (caller, callee_id) {
            out.hops.push(HopExpectation {
                edge: edge.clone(),
                caller,
                service,
                route,
                reason,
                served_by,
            });
        }
    }
    if let Some(misses) = &e.misses {
        let mut resolved = Vec::new();
        for (i, m) in misses.iter().enumerate() {
            let s = names.service(&m.service);
            if s.is_none() {
                c.error(
                    format!("{at}/misses/{i}/service"),
                    format!("unknown service {}", cut(&m.service)),
                );
            }
            let cause = Cause::from_name(&m.cause);
            match cause {
                None => c.error(
                    format!("{at}/misses/{i}/cause"),
                    format!(
                        "unknown cause {}; expected one of {}",
                        cut(&m.cause),
                        vocabulary(Cause::ALL.iter().map(|c| c.as_str()))
                    ),
                ),
                Some(Cause::NoWaypoint) if mesh == Mesh::Sidecar => {
                    c.error(format!("{at}/misses/{i}/cause"), NO_WAYPOINT_IN_SIDECAR);
                }
                Some(_) => {}
            }
            if let (Some(s), Some(cause)) = (s, cause) {
                resolved.push((s, cause));
            }
        }
        resolved.sort_by(|a, b| (a.0, a.1.as_str()).cmp(&(b.0, b.1.as_str())));
        out.misses = Some(resolved);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DecidedAt;

    const SMALL: &str = "name: c\nservices: {a: {}}\nchains: [{name: x, call: a}]\ntraffic: [{name: t, chain: x}]\n";

    fn compiled(yaml: &str) -> Result<Scenario, ScenarioErrors> {
        let spec = spec::parse(Path::new("t.yaml"), yaml.as_bytes()).expect("parses");
        compile(Path::new("t.yaml"), &spec)
    }

    fn only_error(yaml: &str) -> String {
        let errors = compiled(yaml).expect_err("refused").0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors[0].to_string()
    }

    /// Regression (issue 8): a fork that calls, through another fork, back
    /// into itself overflowed the stack (SIGABRT), even for untagged
    /// traffic. Now the cycle is a scenario error that names it.
    #[test]
    fn a_call_cycle_is_named_where_it_closes() {
        let two = "name: c\nservices: {a: {}, b: {}}\nchains: [{name: x, call: a}]
sandboxes:
  - key: k
    forks:
      - {service: a, then: [{call: b}]}
      - {service: b, then: [{call: a}]}
traffic: [{name: t, chain: x}]\n";
        assert_eq!(
            only_error(two),
            "t.yaml#/sandboxes/0/forks/1/then/0/call: call cycle a → b → a"
        );
        let one = "name: c\nservices: {a: {}}\nchains: [{name: x, call: a}]
sandboxes: [{key: k, forks: [{service: a, then: [{call: a}]}]}]
traffic: [{name: t, chain: x}]\n";
        assert_eq!(
            only_error(one),
            "t.yaml#/sandboxes/0/forks/0/then/0/call: call cycle a → a"
        );
        // Across sandboxes too: a misconfigured plugin could route one
        // request through both.
        let across = "name: c\nservices: {a: {}, b: {}}\nchains: [{name: x, call: a}]
sandboxes:
  - {key: k1, forks: [{service: a, then: [{call: b}]}]}
  - {key: k2, forks: [{service: b, then: [{call: a}]}]}
traffic: [{name: t, chain: x}]\n";
        assert!(only_error(across).ends_with("call cycle a → b → a"));
    }

    /// Regression (issue 8): counts that add up past u64::MAX panicked a
    /// replay worker.
    #[test]
    fn counts_that_overflow_are_refused() {
        let yaml = "name: c\nservices: {a: {}}\nchains: [{name: x, call: a}]
traffic:
  - {name: t1, chain: x, count: 18446744073709551615}
  - {name: t2, chain: x, count: 1}\n";
        assert_eq!(
            only_error(yaml),
            "t.yaml#/traffic/1/count: the traffic adds up to more than 18446744073709551615 requests"
        );
    }

    /// Regression (issue 8): S sandboxes overriding calls along a chain of
    /// L services made S^L paths; the bound is computed without them.
    #[test]
    fn hop_bounds_take_the_costliest_workload_without_enumerating_paths() {
        let mut yaml = String::from("name: c\nservices: {");
        let l = 30;
        yaml.push_str(
            &(0..l)
                .map(|i| format!("s{i}: {{}}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        yaml.push_str("}\nchains: [{name: x, call: s0}]\nsandboxes:\n");
        for k in 0..20 {
            yaml.push_str(&format!("  - key: k{k}\n    forks:\n"));
            for i in 0..l - 1 {
                yaml.push_str(&format!(
                    "      - {{service: s{i}, then: [{{call: s{}}}]}}\n",
                    i + 1
                ));
            }
        }
        yaml.push_str("traffic: [{name: t, chain: x, count: 3}]\n");
        let s = compiled(&yaml).unwrap();
        assert_eq!(s.traffic[0].hop_bound, l as u64, "one call per service");
        assert_eq!(s.hop_bound(), 3 * l as u64);
    }

    #[test]
    fn a_request_of_too_many_calls_is_refused() {
        // Each fork of s_i calls s_i+1 ten times: 1 + 10 + ... + 10^6
        // calls for one request, from a file of 60 calls.
        let mut yaml = String::from(
            "name: c\nservices: {s0: {}, s1: {}, s2: {}, s3: {}, s4: {}, s5: {}, s6: {}}\nchains: [{name: x, call: s0}]\nsandboxes:\n  - key: k\n    forks:\n",
        );
        for i in 0..6 {
            let calls = vec![format!("{{call: s{}}}", i + 1); 10].join(", ");
            yaml.push_str(&format!("      - {{service: s{i}, then: [{calls}]}}\n"));
        }
        yaml.push_str("traffic: [{name: t, chain: x}]\n");
        let e = only_error(&yaml);
        assert!(
            e.contains("can make 1111111 calls; the limit is 100000"),
            "{e}"
        );
    }

    fn errors(yaml: &str) -> Vec<String> {
        compiled(yaml)
            .expect_err("refused")
            .0
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Ambient mode: services name waypoints, several may share one, and
    /// each call is decided at its service's waypoint, or nowhere.
    #[test]
    fn ambient_services_are_decided_at_their_waypoint_or_nowhere() {
        let s = compiled(
            "name: c\nmesh: ambient\nservices: {a: {waypoint: w1}, b: {waypoint: w2}, c: {waypoint: w1}, d: {}}
chains: [{name: x, call: a, then: [{call: b}, {call: c}, {call: d}]}]
traffic:
  - name: t
    chain: x
    expect:
      hops: {d: {route: baseline, reason: no_waypoint}, a: {reason: no_key}}
      misses: [{service: d, cause: no_waypoint}]\n",
        )
        .unwrap();
        assert_eq!(s.mesh, Mesh::Ambient);
        assert_eq!(s.waypoints, ["w1", "w2"]);
        let at: Vec<DecidedAt> = (0..4).map(|i| s.decided_at(i)).collect();
        assert_eq!(
            at,
            [
                DecidedAt::Waypoint(0),
                DecidedAt::Waypoint(1),
                DecidedAt::Waypoint(0),
                DecidedAt::Nowhere
            ]
        );
        let reasons: Vec<Option<HopReason>> =
            s.traffic[0].expect.hops.iter().map(|h| h.reason).collect();
        assert_eq!(
            reasons,
            [
                Some(HopReason::Filter(laneway_core::Reason::NoKey)),
                Some(HopReason::NoWaypoint)
            ]
        );
        assert_eq!(
            s.traffic[0].expect.misses,
            Some(vec![(3, Cause::NoWaypoint)])
        );
        // Sidecar, the default: every call in the caller's sidecar.
        let s = compiled(SMALL).unwrap();
        assert_eq!(
            (s.mesh, s.decided_at(0)),
            (Mesh::Sidecar, DecidedAt::Sidecar)
        );
    }

    #[test]
    fn a_waypoint_needs_an_ambient_mesh() {
        let yaml = "name: c\nservices: {a: {waypoint: w}}\nchains: [{name: x, call: a}]\ntraffic: [{name: t, chain: x}]\n";
        let e = only_error(yaml);
        assert!(
            e.starts_with(
                "t.yaml#/services/a/waypoint: a waypoint needs mesh: ambient; with sidecars"
            ),
            "{e}"
        );
        let explicit = yaml.replace("name: c\n", "name: c\nmesh: sidecar\n");
        assert_eq!(only_error(&explicit), e);
    }

    #[test]
    fn no_waypoint_is_refused_in_a_sidecar_mesh() {
        let yaml = "name: c\nservices: {a: {}}\nchains: [{name: x, call: a}]
traffic:
  - name: t
    chain: x
    kind: tagged
    key: k
    expect:
      hops: {a: {reason: no_waypoint}}
      misses: [{service: a, cause: no_waypoint}]\n";
        let e = errors(yaml);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("t.yaml#/traffic/0/expect/hops/a/reason: no_waypoint happens only with mesh: ambient"),
            "{}",
            e[0]
        );
        assert!(
            e[1].starts_with("t.yaml#/traffic/0/expect/misses/0/cause: no_waypoint happens only"),
            "{}",
            e[1]
        );
        assert!(compiled(&yaml.replace("name: c\n", "name: c\nmesh: ambient\n")).is_ok());
    }

    #[test]
    fn waypoint_names_are_kubernetes_names_of_their_own() {
        for bad in ["Waypoint", "-w", "w-", "1w", "w.x", "w@x", "\"\""] {
            let yaml = format!(
                "name: c\nmesh: ambient\nservices: {{a: {{waypoint: {bad}}}}}\nchains: [{{name: x, call: a}}]\ntraffic: [{{name: t, chain: x}}]\n"
            );
            let e = only_error(&yaml);
            assert!(
                e.starts_with("t.yaml#/services/a/waypoint: ")
                    && e.contains("cannot name a waypoint"),
                "{bad}: {e}"
            );
        }
        let long = "w".repeat(64);
        let yaml = format!(
            "name: c\nmesh: ambient\nservices: {{a: {{waypoint: {long}}}}}\nchains: [{{name: x, call: a}}]\ntraffic: [{{name: t, chain: x}}]\n"
        );
        assert!(only_error(&yaml).contains("cannot name a waypoint"));
        // A waypoint is a Service of the namespace: not one of the
        // scenario's services, named once, where it is first named.
        let clash = "name: c\nmesh: ambient\nservices: {a: {waypoint: b}, b: {waypoint: b}, c: {waypoint: w9}}
chains: [{name: x, call: a}]\ntraffic: [{name: t, chain: x}]\n";
        assert_eq!(
            only_error(clash),
            "t.yaml#/services/a/waypoint: waypoint \"b\" has the name of service \"b\": both would \
             be Kubernetes Services of one namespace; name the waypoint otherwise"
        );
    }

    #[test]
    fn many_errors_are_listed_to_a_limit() {
        let mut yaml =
            String::from("name: c\nservices: {a: {}}\nchains: [{name: x, call: a}]\ntraffic:\n");
        for i in 0..300 {
            yaml.push_str(&format!("  - {{name: t{i}, chain: nope}}\n"));
        }
        let errors = compiled(&yaml).expect_err("refused").0;
        assert_eq!(errors.len(), MAX_ERRORS + 1);
        assert!(errors[MAX_ERRORS].reason.contains("and 200 more errors"));
        assert!(
            errors[0].reason.contains("declared: \"x\""),
            "{}",
            errors[0]
        );
    }
}
