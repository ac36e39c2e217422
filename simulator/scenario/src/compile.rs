//! [`compile`]: from the spec as written to the model the replay walks,
//! checking meaning and resolving every name once. Every error names the
//! file and a JSON pointer with the reason; all errors are reported at
//! once, in document order.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use laneway_core::config::{Fork, Sandbox, UnknownKeyPolicy};
use laneway_core::{Config, Reason};

use crate::expect::{CallerMatch, Cause, Expectations, ExpectedServed, HopExpectation, HopRoute};
use crate::spec::{self, CallSpec, Kind, PluginSpec, ScenarioSpec};
use crate::workload::{Place, WorkloadName};
use crate::{
    Call, CallId, Chain, Fault, ForkModel, Headers, SandboxModel, Scenario, ScenarioError,
    ScenarioErrors, Service, ServiceId, Traffic, Workload,
};

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
        let expect = resolve_expect(
            &mut c,
            &format!("{at}/expect"),
            &t.expect.clone().unwrap_or_default(),
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
    let mut fork_hosts = HashMap::new();
    for (b, sandbox) in sandboxes.iter().enumerate() {
        for f in &sandbox.forks {
            fork_hosts
                .entry(f.destination_host.clone())
                .or_insert(Workload::Fork(f.service, b));
        }
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
        fork_hosts,
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

/// Resolves a workload name written in an expectation.
fn resolve_workload(
    name: &str,
    services: &[Service],
    sandboxes: &[SandboxModel],
) -> Option<(ServiceId, ExpectedServed)> {
    let w = WorkloadName::parse(name)?;
    let s = services.iter().position(|x| x.name == w.service)?;
    let served = match w.place {
        Place::Baseline => ExpectedServed::By(Workload::Baseline(s)),
        Place::Rejected => ExpectedServed::Rejected,
        Place::Unavailable => ExpectedServed::Unavailable,
        Place::Failed => ExpectedServed::Failed,
        Place::Fork(key) => ExpectedServed::By(Workload::Fork(
            s,
            sandboxes.iter().position(|b| b.key == key)?,
        )),
    };
    Some((s, served))
}

fn names(values: impl Iterator<Item = &'static str>) -> String {
    values.collect::<Vec<_>>().join(", ")
}

/// Checks a traffic group's expectations and resolves every name in them;
/// a name it does not know is an error at its JSON pointer.
fn resolve_expect(
    c: &mut Compiler,
    at: &str,
    e: &spec::Expect,
    services: &[Service],
    sandboxes: &[SandboxModel],
) -> Expectations {
    let service = |n: &str| services.iter().position(|s| s.name == n);
    let mut out = Expectations {
        status: e.status,
        ..Expectations::default()
    };
    if let Some(path) = &e.path {
        let mut resolved = Vec::new();
        for (i, w) in path.iter().enumerate() {
            match resolve_workload(w, services, sandboxes) {
                Some(r) => resolved.push(r),
                None => c.error(
                    format!("{at}/path/{i}"),
                    format!(
                        "{w:?} is not SERVICE@baseline, SERVICE@fork(KEY), SERVICE@rejected, SERVICE@unavailable or SERVICE@failed for a declared service and sandbox"
                    ),
                ),
            }
        }
        out.path = Some(resolved);
    }
    for (edge, h) in e.hops.iter().flatten() {
        let here = format!("{at}/hops/{edge}");
        let (caller, callee) = match edge.rsplit_once("->") {
            Some(("ingress", s)) => (Some(CallerMatch::Ingress), s),
            Some((name, s)) => match service(name) {
                Some(id) => (Some(CallerMatch::Service(id)), s),
                None => {
                    c.error(
                        &here,
                        format!("unknown caller {name:?}; write ingress or a declared service"),
                    );
                    (None, s)
                }
            },
            None => (Some(CallerMatch::Any), edge.as_str()),
        };
        let callee_id = service(callee);
        if callee_id.is_none() {
            c.error(
                &here,
                format!("unknown service {callee:?} (write SERVICE or CALLER->SERVICE)"),
            );
        }
        let route = h.route.as_deref().and_then(|r| {
            let found = HopRoute::from_name(r);
            if found.is_none() {
                c.error(
                    format!("{here}/route"),
                    format!(
                        "unknown route {r:?}; expected one of {}",
                        names(HopRoute::ALL.iter().map(|r| r.as_str()))
                    ),
                );
            }
            found
        });
        let reason = h.reason.as_deref().and_then(|r| {
            let found = Reason::from_name(r.as_bytes());
            if found.is_none() {
                c.error(
                    format!("{here}/reason"),
                    format!(
                        "unknown reason {r:?}; expected one of {}",
                        names(Reason::ALL.iter().map(|r| r.as_str()))
                    ),
                );
            }
            found
        });
        let served_by = h.served_by.as_deref().and_then(|w| {
            let found = resolve_workload(w, services, sandboxes);
            if found.is_none() {
                c.error(
                    format!("{here}/served_by"),
                    format!("{w:?} is not a declared workload"),
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
            let s = service(&m.service);
            if s.is_none() {
                c.error(
                    format!("{at}/misses/{i}/service"),
                    format!("unknown service {:?}", m.service),
                );
            }
            let cause = Cause::from_name(&m.cause);
            if cause.is_none() {
                c.error(
                    format!("{at}/misses/{i}/cause"),
                    format!(
                        "unknown cause {:?}; expected one of {}",
                        m.cause,
                        names(Cause::ALL.iter().map(|c| c.as_str()))
                    ),
                );
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
