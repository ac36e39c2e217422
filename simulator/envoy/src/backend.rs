//! The real-Envoy backend of the replay engine: the scenario's services as
//! small HTTP workloads on loopback, behind one real Envoy that runs
//! [`crate::scenario::bootstrap`] (an outbound listener per caller, the
//! filter through ECDS).
//!
//! A request enters at the ingress's listener. Each workload that serves a
//! call makes the scenario's next calls itself, through its own service's
//! sidecar listener, with exactly the context the scenario says it
//! propagates (`propagates`, a fork's own calls and propagation, the
//! `drop_context` faults); a fork that a fault takes down has no server,
//! so Envoy answers 503. Each workload answers with what it saw (the
//! `:authority` that reached it, the filter's decision from
//! `x-laneway-decision`, the context it got and sent) and the answers of
//! its own calls; the backend turns the nested answer into the same
//! [`Trace`] the in-process backends record, so the same checks judge it
//! and the differential check compares it hop by hop with the wasm
//! backend's.
//!
//! Bookkeeping travels in headers the filter ignores: `x-laneway-call`
//! (the scenario's call id), `x-laneway-request` (the request index) and
//! `x-laneway-context` (`b` and `t`: which of the entry's `baggage` and
//! `tracestate` lines this call carries).
//!
//! One Envoy per replay, one request at a time: configuration swaps then
//! land between requests exactly as the scenario says.
//!
//! The filter runs in any deployment [`Shape`], with or without inline
//! headers ([`EnvoyFactory::shaped`]); every configuration the backend
//! writes then says `routing_key.joined` exactly when the headers are
//! inline, so a scenario replays unchanged in each.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use laneway_core::filter_state;
use laneway_core::{Reason, Route};
use laneway_replay::backend::{Backend, BackendFactory, Plan, StartError};
use laneway_replay::trace::{Caller, Context, Hop, Served, Trace};
use laneway_scenario::{CallId, DecidedAt, Scenario, ServiceId, Workload};
use serde_json::{Value, json};

use crate::scenario::{self, DECISION_HEADER, Endpoint, Layout, Listener, Shape};
use crate::{Envoy, Options, client};

/// Starts one real Envoy (and its workloads) per replay.
pub struct EnvoyFactory {
    module: PathBuf,
    name: String,
    shape: Shape,
    inline_headers: bool,
}

impl EnvoyFactory {
    /// A factory running `module` (shown as `name` in reports), plain,
    /// without inline headers.
    pub fn new(module: &Path, name: impl Into<String>) -> EnvoyFactory {
        EnvoyFactory {
            module: module.to_path_buf(),
            name: name.into(),
            shape: Shape::Plain,
            inline_headers: false,
        }
    }

    /// The same factory, running the filter in `shape`, with `baggage` and
    /// `tracestate` declared inline or not.
    pub fn shaped(self, shape: Shape, inline_headers: bool) -> EnvoyFactory {
        EnvoyFactory {
            shape,
            inline_headers,
            ..self
        }
    }
}

impl BackendFactory for EnvoyFactory {
    fn name(&self) -> &str {
        &self.name
    }

    fn start<'s>(&'s self, sc: &'s Scenario) -> Result<Box<dyn Backend + 's>, StartError> {
        EnvoyBackend::start_shaped(&self.module, sc, self.shape, self.inline_headers)
            .map(|b| Box::new(b) as Box<dyn Backend + 's>)
    }
}

/// What one workload knows.
struct Workplace {
    scenario: Arc<Scenario>,
    workload: Workload,
    /// The name it answers with.
    name: String,
    /// Each listener's address, once Envoy is up.
    listeners: Arc<OnceLock<Listeners>>,
}

/// The listeners' addresses, and which one a call takes.
struct Listeners {
    all: Vec<(Listener, SocketAddr)>,
}

impl Listeners {
    /// The listener a call from `caller` to `callee` goes through.
    fn of(&self, sc: &Scenario, caller: Option<ServiceId>, callee: ServiceId) -> SocketAddr {
        let l = scenario::route_of(sc, caller, callee);
        self.all
            .iter()
            .find(|(x, _)| *x == l)
            .map_or_else(|| self.all[0].1, |(_, a)| *a)
    }
}

/// The running backend.
pub struct EnvoyBackend<'s> {
    sc: &'s Scenario,
    envoy: Envoy,
    listeners: Arc<OnceLock<Listeners>>,
    ecds: PathBuf,
    module: String,
    version: u64,
    inline_headers: bool,
    by_name: HashMap<String, Workload>,
    stop: Arc<AtomicBool>,
    servers: Vec<SocketAddr>,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// What a scenario asks for that a real Envoy on loopback cannot give:
/// its own clock (Envoy has the real one), client addresses (Envoy sees
/// loopback), preview entry requests, a second configuration for the
/// gateway.
fn unsupported(sc: &Scenario) -> Option<&'static str> {
    if sc.gateway_config.is_some() {
        Some("a gateway_plugin (the backend runs one filter configuration)")
    } else if sc.clock_start_ns != laneway_scenario::DEFAULT_CLOCK_NS || sc.clock_step_ns != 0 {
        Some("a clock (Envoy's is the real one)")
    } else if sc.traffic.iter().any(|t| t.source.is_some()) {
        Some("client source addresses (Envoy sees loopback)")
    } else if sc
        .traffic
        .iter()
        .any(|t| t.authority.is_some() || t.path.is_some())
    {
        Some("entry authorities or paths")
    } else {
        None
    }
}

fn start_error(what: &str, e: impl std::fmt::Display) -> StartError {
    StartError(format!("real Envoy backend: {what}: {e}"))
}

impl<'s> EnvoyBackend<'s> {
    /// Starts the workloads and Envoy for `sc`, configured with its
    /// starting plugin configuration.
    pub fn start(module: &Path, sc: &'s Scenario) -> Result<EnvoyBackend<'s>, StartError> {
        EnvoyBackend::start_shaped(module, sc, Shape::Plain, false)
    }

    /// As [`EnvoyBackend::start`], the filter in `shape`, with `baggage`
    /// and `tracestate` declared inline or not (the configurations then
    /// say `routing_key.joined: true`).
    pub fn start_shaped(
        module: &Path,
        sc: &'s Scenario,
        shape: Shape,
        inline_headers: bool,
    ) -> Result<EnvoyBackend<'s>, StartError> {
        if let Some(why) = unsupported(sc) {
            return Err(StartError(format!(
                "the real Envoy backend cannot replay this scenario: it has {why}; replay it \
                 with --backend wasm (simulator/envoy/tests/guards.rs tests the guards in real Envoy)"
            )));
        }
        let n = STARTED.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("laneway-envoy-backend-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| start_error("work directory", e))?;
        let dir = TempDir(dir);
        let module = std::fs::canonicalize(module)
            .map_err(|e| start_error(&module.display().to_string(), e))?
            .display()
            .to_string();
        let shared = Arc::new(sc.clone());
        let listeners: Arc<OnceLock<Listeners>> = Arc::new(OnceLock::new());
        let stop = Arc::new(AtomicBool::new(false));
        let mut addrs: HashMap<Workload, SocketAddr> = HashMap::new();
        let mut by_name = HashMap::new();
        let mut servers = Vec::new();
        for w in scenario::workloads(sc) {
            let name = sc.workload_name(w).to_string();
            by_name.insert(name.clone(), w);
            let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| start_error("bind", e))?;
            let addr = listener.local_addr().map_err(|e| start_error("bind", e))?;
            addrs.insert(w, addr);
            if sc.unavailable(w) {
                // Down: nothing listens, Envoy gets "connection refused".
                drop(listener);
                continue;
            }
            servers.push(addr);
            let place = Arc::new(Workplace {
                scenario: shared.clone(),
                workload: w,
                name,
                listeners: listeners.clone(),
            });
            let stop = stop.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let place = place.clone();
                    thread::spawn(move || serve(stream, &place));
                }
            });
        }
        let ecds = dir.0.join("laneway-ecds.json");
        let config = scenario::plugin_config(&sc.config, inline_headers);
        scenario::write_ecds(&ecds, &module, &config, 1)
            .map_err(|e| start_error("ECDS file", e))?;
        let endpoint = |w: Workload| Endpoint::Loopback(addrs[&w]);
        let bootstrap = scenario::bootstrap(
            sc,
            &Layout {
                module: &module,
                ecds: &ecds,
                admin_port: 0,
                first_port: 0,
                endpoint: &endpoint,
                shape,
                inline_headers,
            },
        );
        let envoy = Envoy::start_with(&bootstrap, &Options::default())
            .map_err(|e| start_error("starting Envoy", e))?;
        let mut all = Vec::new();
        for l in scenario::listeners(sc) {
            let name = scenario::listener_name(sc, l);
            let addr = envoy
                .listener(&name)
                .ok_or_else(|| start_error("listener", format!("Envoy has no listener {name}")))?;
            all.push((l, addr));
        }
        let _ = listeners.set(Listeners { all });
        let mut backend = EnvoyBackend {
            sc,
            envoy,
            listeners,
            ecds,
            module,
            version: 1,
            inline_headers,
            by_name,
            stop,
            servers,
            _dir: dir,
        };
        backend.wait_configured(0)?;
        Ok(backend)
    }

    /// The running Envoy.
    pub fn envoy(&self) -> &Envoy {
        &self.envoy
    }

    /// The listener a call from `caller` (`None`: the ingress) to
    /// `callee` goes through.
    pub fn listener(&self, caller: Option<ServiceId>, callee: ServiceId) -> Option<SocketAddr> {
        self.listeners.get().map(|l| l.of(self.sc, caller, callee))
    }

    /// Writes `config` into the ECDS file and returns at once, without
    /// waiting for Envoy to take it (for measuring how long that takes).
    pub fn write_config(&mut self, config: &str) -> std::io::Result<()> {
        self.version += 1;
        let config = scenario::plugin_config(config, self.inline_headers);
        scenario::write_ecds(&self.ecds, &self.module, &config, self.version)
    }

    fn ecds_counter(&self, which: &str) -> u64 {
        self.envoy
            .stats()
            .ok()
            .and_then(|s| {
                s.iter()
                    .find(|(k, _)| {
                        k.starts_with("extension_config_discovery.http_filter.laneway.")
                            && k.ends_with(which)
                    })
                    .map(|(_, v)| *v)
            })
            .unwrap_or(0)
    }

    /// Waits until Envoy has taken ECDS update number `after + 1`
    /// (`update_success`) or refused it (`update_rejected`). Not
    /// `config_reload`: Envoy counts a refused update there too.
    fn wait_configured(&mut self, after: u64) -> Result<(), StartError> {
        let rejected_before = self.ecds_counter("update_rejected");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.ecds_counter("update_success") > after {
                return Ok(());
            }
            if self.ecds_counter("update_rejected") > rejected_before {
                return Err(StartError(
                    "real Envoy backend: Envoy refused the plugin configuration".into(),
                ));
            }
            if Instant::now() > deadline {
                return Err(StartError(
                    "real Envoy backend: Envoy did not take the plugin configuration within 60 s"
                        .into(),
                ));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for EnvoyBackend<'_> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for addr in &self.servers {
            let _ = TcpStream::connect(addr);
        }
    }
}

impl Backend for EnvoyBackend<'_> {
    fn configure(&mut self, config: &str) -> Result<(), String> {
        // A refused update bumps `config_reload` as well as
        // `update_rejected`; only `update_success` says it was taken.
        let taken = self.ecds_counter("update_success");
        let refused = self.ecds_counter("update_rejected");
        self.version += 1;
        let config = scenario::plugin_config(config, self.inline_headers);
        scenario::write_ecds(&self.ecds, &self.module, &config, self.version)
            .map_err(|e| format!("writing the ECDS file: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.ecds_counter("update_rejected") > refused {
                return Err("Envoy refused the configuration (ECDS update_rejected); it keeps the last good one".into());
            }
            if self.ecds_counter("update_success") > taken {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("Envoy did not take the configuration within 60 s".into());
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn run(&mut self, plan: &Plan<'_>, trace: &mut Trace) {
        let sc = self.sc;
        trace.clear(plan.group, plan.index);
        let entry = sc.chains[sc.traffic[plan.group].chain].entry;
        let baggage: Vec<&[u8]> = plan.baggage.iter().map(|s| s.as_bytes()).collect();
        let tracestate: Vec<&[u8]> = plan.tracestate.iter().map(|s| s.as_bytes()).collect();
        let Some(ingress) = self.listener(None, sc.calls[entry].service) else {
            return;
        };
        let answer = call(
            ingress,
            sc,
            entry,
            plan.index,
            Context::ENTRY,
            &baggage,
            &tracestate,
        );
        record(sc, &self.by_name, trace, Caller::Ingress, entry, answer);
    }
}

/// What one call came back with.
enum Answer {
    /// A workload served it: its report.
    Served(Value),
    /// Envoy answered itself: the status and the filter's decision.
    Local(u16, String),
    /// The call could not be made.
    Broken(String),
}

impl Answer {
    fn into_json(self) -> Value {
        match self {
            Answer::Served(v) => v,
            Answer::Local(status, decision) => json!({"local": status, "decision": decision}),
            Answer::Broken(why) => json!({"broken": why}),
        }
    }

    fn from_json(v: Value) -> Answer {
        if let Some(s) = v.get("local").and_then(Value::as_u64) {
            let d = v.get("decision").and_then(Value::as_str).unwrap_or("-");
            Answer::Local(s as u16, d.to_owned())
        } else if let Some(b) = v.get("broken").and_then(Value::as_str) {
            Answer::Broken(b.to_owned())
        } else {
            Answer::Served(v)
        }
    }
}

fn flags(c: Context) -> String {
    let mut s = String::new();
    if c.baggage {
        s.push('b');
    }
    if c.tracestate {
        s.push('t');
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}

/// Makes call `id` through the sidecar at `sidecar`.
fn call(
    sidecar: SocketAddr,
    sc: &Scenario,
    id: CallId,
    index: u64,
    context: Context,
    baggage: &[&[u8]],
    tracestate: &[&[u8]],
) -> Answer {
    let service = sc.calls[id].service;
    let authority = sc.services[service].authority.as_bytes();
    let (call_id, request, ctx) = (id.to_string(), index.to_string(), flags(context));
    let mut headers: Vec<(&str, &[u8])> = vec![
        ("Host", authority),
        ("x-laneway-call", call_id.as_bytes()),
        ("x-laneway-request", request.as_bytes()),
        ("x-laneway-context", ctx.as_bytes()),
    ];
    if context.baggage {
        headers.extend(baggage.iter().map(|b| ("baggage", *b)));
    }
    if context.tracestate {
        headers.extend(tracestate.iter().map(|t| ("tracestate", *t)));
    }
    match client::get(sidecar, "/", &headers) {
        Err(e) => Answer::Broken(format!(
            "the call to {} failed: {e}",
            sc.services[service].name
        )),
        Ok(r) if r.header("x-laneway-node").is_some() => match serde_json::from_slice(&r.body) {
            Ok(v) => Answer::Served(v),
            Err(e) => Answer::Broken(format!("a workload's answer is not JSON: {e}")),
        },
        Ok(r) => Answer::Local(
            r.status,
            r.header(DECISION_HEADER).unwrap_or_else(|| "-".into()),
        ),
    }
}

/// Route and reason from the filter's state (`-`: none) and whether the
/// `:authority` changed; as the wasm backend reads them.
fn decision(state: &str) -> Option<Reason> {
    if state.is_empty() || state == "-" {
        return Some(Reason::NoKey);
    }
    filter_state::decode(state.as_bytes())
        .ok()
        .map(|d| d.reason)
}

fn fork_authority(state: &str) -> Option<Vec<u8>> {
    filter_state::decode(state.as_bytes())
        .ok()
        .and_then(|d| d.fork)
        .map(|t| t.bytes().collect())
}

/// Records the entry call's `answer` (and, depth first, its calls) into
/// `trace`.
fn record(
    sc: &Scenario,
    by_name: &HashMap<String, Workload>,
    trace: &mut Trace,
    caller: Caller,
    id: CallId,
    answer: Answer,
) {
    // (parent, caller, call, context, answer), depth first.
    let mut stack: Vec<(Option<u32>, Caller, CallId, Context, Answer)> = Vec::new();
    stack.push((None, caller, id, Context::ENTRY, answer));
    while let Some((parent, caller, id, context_in, answer)) = stack.pop() {
        let service = sc.calls[id].service;
        let decided_at = sc.decided_at(service);
        let mut hop = Hop {
            parent,
            caller,
            call: id,
            service,
            decided_at,
            route: None,
            reason: None,
            authority: None,
            served: Served::Failed,
            context_in,
            context_out: None,
            lines: None,
        };
        match answer {
            Answer::Broken(why) => {
                let h = trace.push(hop);
                trace.fail(h, why);
            }
            Answer::Local(status, state) => {
                hop.reason = decision(&state);
                match fork_authority(&state) {
                    // Routed to a fork that could not answer.
                    Some(a) if matches!(hop.reason, Some(Reason::Fork)) => {
                        hop.route = Some(Route::Fork);
                        let host = laneway_core::authority::host(&a);
                        hop.served = match sc.served_by(service, Some(host)) {
                            Some(w) => Served::Unavailable(Some(w)),
                            None => Served::Unavailable(None),
                        };
                        hop.authority = Some(trace.store(&a));
                    }
                    _ => {
                        hop.route = Some(Route::Reject);
                        hop.served = Served::Rejected(status);
                    }
                }
                trace.push(hop);
            }
            Answer::Served(mut v) => {
                let state = v["decision"].as_str().unwrap_or("-");
                // No filter on the way: no reason, as the in-process walk.
                hop.reason = if decided_at == DecidedAt::Nowhere {
                    None
                } else {
                    decision(state)
                };
                let host = v["host"].as_str().unwrap_or("");
                let w = v["workload"].as_str().and_then(|n| by_name.get(n)).copied();
                if host.as_bytes() == sc.services[service].authority.as_bytes() {
                    hop.route = Some(Route::Baseline);
                } else {
                    hop.route = Some(Route::Fork);
                    hop.authority = Some(trace.store(host.as_bytes()));
                }
                let Some(w) = w else {
                    let h = trace.push(hop);
                    trace.fail(h, format!("an unknown workload answered: {v}"));
                    continue;
                };
                hop.served = Served::By(w);
                let out = v["out"].as_str().unwrap_or("-");
                hop.context_out = Some(Context {
                    baggage: out.contains('b'),
                    tracestate: out.contains('t'),
                });
                let next = hop.context_out.unwrap_or_default();
                let h = trace.push(hop);
                // The calls' answers move down the stack; nothing is copied.
                let calls = match v.get_mut("calls").map(Value::take) {
                    Some(Value::Array(calls)) => calls,
                    _ => Vec::new(),
                };
                let ids = sc.next_calls(id, w);
                for (c, a) in ids.iter().zip(calls).rev() {
                    stack.push((Some(h), Caller::Workload(w), *c, next, Answer::from_json(a)));
                }
            }
        }
    }
}

/// One workload's connection: each request is a call of the scenario.
fn serve(stream: TcpStream, place: &Workplace) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
    let mut reader = BufReader::new(stream);
    loop {
        let Some(request) = crate::upstream::read_request(&mut reader) else {
            return;
        };
        let headers = request.headers;
        let report = answer(place, &headers);
        let text = report.to_string();
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-laneway-node: 1\r\nx-served-by: {}\r\ncontent-length: {}\r\n\r\n{text}",
            place.name,
            text.len()
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// What a workload does with one call: the scenario's next calls, then
/// its report.
fn answer(place: &Workplace, headers: &[(String, Vec<u8>)]) -> Value {
    let sc = &place.scenario;
    let one = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let all = |name: &str| -> Vec<&[u8]> {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    };
    let id: Option<CallId> = one("x-laneway-call").and_then(|v| v.parse().ok());
    let index: u64 = one("x-laneway-request")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let ctx = one("x-laneway-context").unwrap_or_default();
    let context_in = Context {
        baggage: ctx.contains('b'),
        tracestate: ctx.contains('t'),
    };
    let w = place.workload;
    let propagates = sc.propagation(w, index);
    let next = Context {
        baggage: context_in.baggage && propagates.baggage(),
        tracestate: context_in.tracestate && propagates.tracestate(),
    };
    let (baggage, tracestate) = (all("baggage"), all("tracestate"));
    let mut calls = Vec::new();
    if let (Some(id), Some(listeners)) = (id, place.listeners.get())
        && id < sc.calls.len()
    {
        let me = Scenario::service_of(w);
        for &c in sc.next_calls(id, w) {
            let through = listeners.of(sc, Some(me), sc.calls[c].service);
            calls.push(call(through, sc, c, index, next, &baggage, &tracestate).into_json());
        }
    }
    json!({
        "workload": place.name,
        "host": one("host").unwrap_or_default(),
        "decision": one(DECISION_HEADER).unwrap_or_else(|| "-".into()),
        "out": flags(next),
        "calls": calls,
    })
}
