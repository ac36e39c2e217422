//! [`Vm`]: one instance of a plugin's module, and the proxy-wasm lifecycle
//! run on it the way Envoy runs it.
//!
//! Start (once): `_initialize` then `main(0, 0)` if exported, else `_start`;
//! root context 1: `proxy_on_context_create(1, 0)`, `proxy_on_vm_start`,
//! `proxy_on_configure`.
//!
//! One request ([`Vm::request`]), context ids 2, 3, ...:
//! 1. `proxy_on_context_create(ctx, root)`;
//! 2. `proxy_on_request_headers(ctx, n, end_of_stream = 1)`; then, while the
//!    request is paused, each HTTP callout that has a reply in the hop gets
//!    `proxy_on_http_call_response(root, token, ..)` (the SDKs switch to the
//!    stream with `proxy_set_effective_context`);
//! 3. if the request continued (or was resumed with
//!    `proxy_continue_stream`): `proxy_on_response_headers(ctx, n, 1)` with
//!    the hop's response. If the guest sent a local reply instead, Envoy
//!    applies it after the callback returns, does not forward the request,
//!    and runs the encoder filters, this one included, over the reply: so
//!    `proxy_on_response_headers` runs with the reply's headers. A local
//!    reply sent from `proxy_on_response_headers` replaces the response
//!    directly, without a second `proxy_on_response_headers`. A request
//!    still paused, or reset with `proxy_close_stream`, gets no response;
//! 4. `proxy_on_log(ctx)`, then `proxy_on_done(ctx)` (its answer is ignored,
//!    as Envoy ignores it for HTTP streams) and `proxy_on_delete(ctx)`. This
//!    is Envoy 1.2x+'s order: the access log runs before the filters are
//!    destroyed.
//!
//! Missing callbacks are skipped, as Envoy skips them. Ticks and shared
//! queue notifications run from [`Vm::advance_clock`], the simulator's event
//! loop.
//!
//! A trap, `proc_exit` or a call that outruns its budget is a [`HopError`]
//! naming the callback; the VM is then poisoned and every later call says
//! so.
//!
//! Invariant: no guest behaviour makes the host panic; per request the host
//! itself allocates nothing once its buffers have grown (callouts, logs and
//! new filter-state paths aside).

use wasmtime::{Instance, Store, TypedFunc, WasmParams, WasmResults};

use super::abi::Status;
use super::error::{HopError, HostError};
use super::hop::{Action, HttpCallReply, Outcome};
use super::metrics::Metric;
use super::options::{EPOCH_TICK, HostOptions, Interruption};
use super::plugin::Plugin;
use super::state::{HostState, Phase};
use super::wasi::ProcExit;
use super::{Callout, Hop, LogLine};

const ROOT: u32 = 1;

/// `proxy_on_http_call_response(root, token, headers, body, trailers)`.
type CallResponse = TypedFunc<(u32, u32, u32, u32, u32), ()>;

/// The guest exports the host calls, looked up once.
struct Callbacks {
    initialize: Option<TypedFunc<(), ()>>,
    main: Option<TypedFunc<(u32, u32), u32>>,
    start: Option<TypedFunc<(), ()>>,
    context_create: Option<TypedFunc<(u32, u32), ()>>,
    vm_start: Option<TypedFunc<(u32, u32), u32>>,
    configure: Option<TypedFunc<(u32, u32), u32>>,
    request_headers: Option<TypedFunc<(u32, u32, u32), u32>>,
    response_headers: Option<TypedFunc<(u32, u32, u32), u32>>,
    done: Option<TypedFunc<u32, u32>>,
    log: Option<TypedFunc<u32, ()>>,
    delete: Option<TypedFunc<u32, ()>>,
    tick: Option<TypedFunc<u32, ()>>,
    http_call_response: Option<CallResponse>,
    queue_ready: Option<TypedFunc<(u32, u32), ()>>,
    guest_allocations: Option<TypedFunc<(), i64>>,
}

fn typed<P: WasmParams, R: WasmResults>(
    instance: &Instance,
    store: &mut Store<HostState>,
    name: &str,
) -> Result<Option<TypedFunc<P, R>>, HostError> {
    match instance.get_func(&mut *store, name) {
        None => Ok(None),
        Some(f) => f
            .typed(&*store)
            .map(Some)
            .map_err(|e| HostError::Load(format!("export {name}: {e:#}"))),
    }
}

impl Callbacks {
    fn lookup(i: &Instance, s: &mut Store<HostState>) -> Result<Callbacks, HostError> {
        Ok(Callbacks {
            initialize: typed(i, s, "_initialize")?,
            main: typed(i, s, "main")?,
            start: typed(i, s, "_start")?,
            context_create: typed(i, s, "proxy_on_context_create")?,
            vm_start: typed(i, s, "proxy_on_vm_start")?,
            configure: typed(i, s, "proxy_on_configure")?,
            request_headers: typed(i, s, "proxy_on_request_headers")?,
            response_headers: typed(i, s, "proxy_on_response_headers")?,
            done: typed(i, s, "proxy_on_done")?,
            log: typed(i, s, "proxy_on_log")?,
            delete: typed(i, s, "proxy_on_delete")?,
            tick: typed(i, s, "proxy_on_tick")?,
            http_call_response: typed(i, s, "proxy_on_http_call_response")?,
            queue_ready: typed(i, s, "proxy_on_queue_ready")?,
            guest_allocations: typed(i, s, "laneway_guest_allocations")?,
        })
    }
}

/// The per-call budget, re-armed before every guest call.
#[derive(Clone, Copy)]
enum Budget {
    EpochTicks(u64),
    Fuel(u64),
}

/// The store and what guards calls into it.
struct Runner {
    store: Store<HostState>,
    budget: Budget,
    poisoned: Option<String>,
}

fn classify(callback: &'static str, err: wasmtime::Error) -> HopError {
    if let Some(exit) = err.downcast_ref::<ProcExit>() {
        return HopError::Exit {
            callback,
            code: exit.0,
        };
    }
    match err.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt | wasmtime::Trap::OutOfFuel) => {
            HopError::Timeout { callback }
        }
        _ => {
            let mut message = err.root_cause().to_string();
            if let Some(trace) = err.downcast_ref::<wasmtime::WasmBacktrace>() {
                let frames: Vec<String> = trace
                    .frames()
                    .iter()
                    .take(4)
                    .map(|f| match f.func_name() {
                        Some(name) => name.to_string(),
                        None => format!("func[{}]", f.func_index()),
                    })
                    .collect();
                if !frames.is_empty() {
                    message.push_str(" (in ");
                    message.push_str(&frames.join(" <- "));
                    message.push(')');
                }
            }
            HopError::Trap { callback, message }
        }
    }
}

impl Runner {
    fn check(&self) -> Result<(), HopError> {
        match &self.poisoned {
            Some(cause) => Err(HopError::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Calls `f` as `callback` in `phase`, acting on `context`.
    fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        callback: &'static str,
        phase: Phase,
        context: u32,
        f: &TypedFunc<P, R>,
        params: P,
    ) -> Result<R, HopError> {
        self.check()?;
        let s = self.store.data_mut();
        s.phase = phase;
        s.effective = context;
        s.local_reply_sent = false;
        match self.budget {
            Budget::EpochTicks(ticks) => self.store.set_epoch_deadline(ticks),
            Budget::Fuel(fuel) => {
                // Fails only when fuel is off, which `Budget::Fuel` rules out.
                let _ = self.store.set_fuel(fuel);
            }
        }
        let result = f.call(&mut self.store, params);
        let s = self.store.data_mut();
        s.effective = if s.stream_id != 0 { s.stream_id } else { ROOT };
        result.map_err(|e| {
            let error = classify(callback, e);
            self.poisoned = Some(error.to_string());
            error
        })
    }
}

/// Which way a stream went.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Forward,
    Paused,
    LocalReply,
    Reset,
}

/// One VM: a module instance and its host state. Single-threaded; `Send`.
pub struct Vm {
    run: Runner,
    cb: Callbacks,
    plugin: Plugin,
    next_context: u32,
    /// `laneway_guest_allocations` when last read (outside a hop, after
    /// the previous hop).
    guest_allocations_seen: Option<u64>,
}

impl Vm {
    pub(crate) fn start(
        plugin: Plugin,
        options: HostOptions,
        serial: u64,
    ) -> Result<Vm, HostError> {
        let inner = &plugin.inner;
        let budget = match inner.interruption {
            Interruption::Epoch => {
                let tick = EPOCH_TICK.as_nanos().max(1);
                let ticks = options.call_timeout.as_nanos() / tick + 2;
                Budget::EpochTicks(u64::try_from(ticks).unwrap_or(u64::MAX).min(u64::MAX / 2))
            }
            Interruption::Fuel => Budget::Fuel(options.call_fuel),
        };
        let state = HostState::new(options, inner.shared.clone(), serial);
        let mut store = Store::new(&inner.engine, state);
        match budget {
            Budget::EpochTicks(ticks) => {
                store.epoch_deadline_trap();
                store.set_epoch_deadline(ticks);
            }
            Budget::Fuel(fuel) => {
                let _ = store.set_fuel(fuel);
            }
        }
        let instance = inner
            .pre
            .instantiate(&mut store)
            .map_err(|e| HostError::Guest(classify("instantiation", e)))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| HostError::Load("the module exports no memory named `memory`".into()))?;
        let alloc = match typed(&instance, &mut store, "malloc")? {
            Some(malloc) => Some(malloc),
            None => typed(&instance, &mut store, "proxy_on_memory_allocate")?,
        };
        let cb = Callbacks::lookup(&instance, &mut store)?;
        let s = store.data_mut();
        s.memory = Some(memory);
        s.alloc = alloc;
        s.root_id = ROOT;
        s.effective = ROOT;
        let mut vm = Vm {
            run: Runner {
                store,
                budget,
                poisoned: None,
            },
            cb,
            plugin: plugin.clone(),
            next_context: ROOT + 1,
            guest_allocations_seen: None,
        };
        vm.boot()?;
        Ok(vm)
    }

    fn boot(&mut self) -> Result<(), HostError> {
        let (run, cb) = (&mut self.run, &self.cb);
        if let Some(f) = &cb.initialize {
            run.call("_initialize", Phase::Start, 0, f, ())?;
            if let Some(f) = &cb.main {
                run.call("main", Phase::Start, 0, f, (0, 0))?;
            }
        } else if let Some(f) = &cb.start {
            run.call("_start", Phase::Start, 0, f, ())?;
        }
        if let Some(f) = &cb.context_create {
            run.call(
                "proxy_on_context_create",
                Phase::ContextCreate,
                ROOT,
                f,
                (ROOT, 0),
            )?;
        }
        if let Some(f) = &cb.vm_start {
            let size = run.store.data().options.vm_config.len() as u32;
            if run.call("proxy_on_vm_start", Phase::VmStart, ROOT, f, (ROOT, size))? == 0 {
                return Err(self.refused("proxy_on_vm_start"));
            }
        }
        self.configure()?;
        self.settle();
        Ok(())
    }

    fn configure(&mut self) -> Result<(), HostError> {
        if let Some(f) = &self.cb.configure {
            let size = self.run.store.data().options.plugin_config.len() as u32;
            let ok = self.run.call(
                "proxy_on_configure",
                Phase::Configure,
                ROOT,
                f,
                (ROOT, size),
            )?;
            self.run.store.data_mut().phase = Phase::Idle;
            if ok == 0 {
                return Err(self.refused("proxy_on_configure"));
            }
        }
        Ok(())
    }

    fn refused(&mut self, phase: &'static str) -> HostError {
        HostError::Refused {
            phase,
            logs: std::mem::take(&mut self.run.store.data_mut().logs),
        }
    }

    /// Back to idle after a call made outside a hop; remembers the guest's
    /// allocation count so the next hop reports only its own.
    fn settle(&mut self) {
        self.run.store.data_mut().phase = Phase::Idle;
        self.guest_allocations_seen = self.read_guest_allocations();
    }

    fn read_guest_allocations(&mut self) -> Option<u64> {
        if !self.run.store.data().options.count_guest_allocations {
            return None;
        }
        let f = self.cb.guest_allocations.as_ref()?;
        let n = self
            .run
            .call("laneway_guest_allocations", Phase::Idle, ROOT, f, ())
            .ok()?;
        Some(n as u64)
    }

    /// Runs one request through the filter; see the module doc for the
    /// callbacks. `hop` is updated in place (headers as forwarded and as
    /// answered); the outcome is lent until the next call.
    pub fn request(&mut self, hop: &mut Hop) -> Result<&Outcome, HopError> {
        self.run.check()?;
        let s = self.run.store.data_mut();
        std::mem::swap(&mut s.hop, hop);
        if let Some(spare) = s.outcome.reset() {
            s.spare_reply = Some(spare);
        }
        s.in_hop = true;
        let result = self.stream();
        let s = self.run.store.data_mut();
        s.in_hop = false;
        s.stream_id = 0;
        s.effective = ROOT;
        s.phase = Phase::Idle;
        s.call_reply = None;
        std::mem::swap(&mut s.hop, hop);
        result?;
        Ok(&self.run.store.data().outcome)
    }

    fn next_context_id(&mut self) -> u32 {
        let id = self.next_context;
        self.next_context = match self.next_context.wrapping_add(1) {
            n if n <= ROOT => ROOT + 1,
            n => n,
        };
        id
    }

    fn stream(&mut self) -> Result<(), HopError> {
        let ctx = self.next_context_id();
        let s = self.run.store.data_mut();
        s.stream_id = ctx;
        s.request_held = false;
        s.response_held = false;
        s.response_started = false;
        s.continue_request = false;
        s.continue_response = false;
        s.close_request = false;
        s.close_response = false;
        s.status = (0, "");
        let (run, cb) = (&mut self.run, &self.cb);
        if let Some(f) = &cb.context_create {
            run.call(
                "proxy_on_context_create",
                Phase::ContextCreate,
                ctx,
                f,
                (ctx, ROOT),
            )?;
        }

        let s = run.store.data_mut();
        s.request_held = true;
        let n = s.hop.request_headers.len() as u32;
        let action = match &cb.request_headers {
            Some(f) => {
                let r = run.call(
                    "proxy_on_request_headers",
                    Phase::RequestHeaders,
                    ctx,
                    f,
                    (ctx, n, 1),
                )?;
                Action::from_headers_result(r, run.store.data().local_reply_sent)
            }
            None => Action::Continue,
        };
        let s = run.store.data_mut();
        s.outcome.request_action = action;
        if action.is_continue() {
            s.request_held = false;
        }
        let mut flow = request_flow(s);
        while flow == Flow::Paused && self.deliver_call_reply()? {
            flow = request_flow(self.run.store.data());
        }
        match flow {
            Flow::Forward => {
                let s = self.run.store.data_mut();
                s.outcome.forwarded = true;
                s.request_held = false;
                self.respond(ctx, false)?;
            }
            Flow::LocalReply => {
                local_reply_headers(self.run.store.data_mut());
                self.respond(ctx, true)?;
            }
            Flow::Paused | Flow::Reset => {}
        }

        let (run, cb) = (&mut self.run, &self.cb);
        let s = run.store.data_mut();
        s.outcome.reset = s.close_request || s.close_response;
        if let Some(f) = &cb.log {
            run.call("proxy_on_log", Phase::Log, ctx, f, ctx)?;
        }
        if let Some(f) = &cb.done {
            run.call("proxy_on_done", Phase::Done, ctx, f, ctx)?;
        }
        if let Some(f) = &cb.delete {
            run.call("proxy_on_delete", Phase::Delete, ctx, f, ctx)?;
        }
        if self.guest_allocations_seen.is_some() {
            let now = self.read_guest_allocations();
            let s = self.run.store.data_mut();
            s.outcome.guest_allocations = now
                .zip(self.guest_allocations_seen)
                .map(|(now, before)| now.wrapping_sub(before));
            self.guest_allocations_seen = now;
        }
        Ok(())
    }

    /// The response half: `proxy_on_response_headers` over the upstream's
    /// response, or over the local reply (`local`).
    fn respond(&mut self, ctx: u32, local: bool) -> Result<(), HopError> {
        let (run, cb) = (&mut self.run, &self.cb);
        let s = run.store.data_mut();
        s.response_started = true;
        s.response_held = true;
        let n = s.hop.response_headers.len() as u32;
        let action = match &cb.response_headers {
            Some(f) => {
                let r = run.call(
                    "proxy_on_response_headers",
                    Phase::ResponseHeaders,
                    ctx,
                    f,
                    (ctx, n, 1),
                )?;
                Action::from_headers_result(r, run.store.data().local_reply_sent)
            }
            None => Action::Continue,
        };
        let s = run.store.data_mut();
        s.outcome.response_action = Some(action);
        if action.is_continue() {
            s.response_held = false;
        }
        if local {
            return Ok(());
        }
        loop {
            let s = self.run.store.data_mut();
            if s.outcome.local_response.is_some() {
                // Sent while encoding: Envoy replies directly, no filters.
                local_reply_headers(s);
                s.response_held = false;
                return Ok(());
            }
            let paused = s.response_held && !s.continue_response && !s.close_response;
            if !paused || !self.deliver_call_reply()? {
                return Ok(());
            }
        }
    }

    /// Delivers the next undelivered callout reply of this hop, if any.
    fn deliver_call_reply(&mut self) -> Result<bool, HopError> {
        let s = self.run.store.data_mut();
        let next = s.outcome.callouts.iter().position(|c| !c.answered);
        let Some(i) = next.filter(|&i| i < s.hop.http_call_replies.len()) else {
            return Ok(false);
        };
        s.outcome.callouts[i].answered = true;
        let token = s.outcome.callouts[i].token;
        let (headers, body, trailers) = match &s.hop.http_call_replies[i] {
            HttpCallReply::Response {
                headers,
                body,
                trailers,
            } => {
                s.status = (0, "");
                (headers.len(), body.len(), trailers.len())
            }
            HttpCallReply::Reset => {
                s.status = (Status::BrokenConnection as u32, "reset");
                (0, 0, 0)
            }
        };
        s.call_reply = Some(i);
        let (run, cb) = (&mut self.run, &self.cb);
        if let Some(f) = &cb.http_call_response {
            let params = (ROOT, token, headers as u32, body as u32, trailers as u32);
            run.call(
                "proxy_on_http_call_response",
                Phase::HttpCallResponse,
                ROOT,
                f,
                params,
            )?;
        }
        let s = run.store.data_mut();
        s.call_reply = None;
        s.phase = Phase::Idle;
        Ok(true)
    }

    /// Runs `proxy_on_configure` again with a new plugin configuration (a
    /// configuration swap mid-run).
    pub fn reconfigure(&mut self, plugin_config: &[u8]) -> Result<(), HostError> {
        self.run.check()?;
        let s = self.run.store.data_mut();
        s.options.plugin_config.clear();
        s.options.plugin_config.extend_from_slice(plugin_config);
        let result = self.configure();
        self.settle();
        result
    }

    /// Moves the fixed clock forward by `ms` milliseconds, firing
    /// `proxy_on_tick` for every tick that falls due (with the clock at the
    /// tick's time), then delivers pending shared-queue notifications.
    pub fn advance_clock(&mut self, ms: u64) -> Result<(), HopError> {
        self.run.check()?;
        let target = {
            let s = self.run.store.data();
            s.clock_ns.saturating_add(ms.saturating_mul(1_000_000))
        };
        loop {
            let s = self.run.store.data_mut();
            let due = match s.tick_due_ns {
                Some(due) if due <= target => due,
                _ => break,
            };
            let period = u64::from(s.tick_period_ms) * 1_000_000;
            s.clock_ns = s.clock_ns.max(due);
            let Some(f) = &self.cb.tick else {
                // Nothing to call: skip straight past `target`.
                let missed = (target - due) / period.max(1) + 1;
                s.tick_due_ns = Some(due.saturating_add(missed.saturating_mul(period)));
                break;
            };
            self.run.call("proxy_on_tick", Phase::Tick, ROOT, f, ROOT)?;
            let s = self.run.store.data_mut();
            if s.tick_due_ns == Some(due) {
                s.tick_due_ns = Some(due.saturating_add(period.max(1)));
            }
        }
        let s = self.run.store.data_mut();
        s.clock_ns = s.clock_ns.max(target);
        self.dispatch_queues()
    }

    /// Delivers `proxy_on_queue_ready` for items enqueued (by any VM of the
    /// plugin) on queues this VM registered.
    pub fn dispatch_queues(&mut self) -> Result<(), HopError> {
        self.run.check()?;
        let s = self.run.store.data();
        let ready = s.shared.take_ready(s.serial);
        if let Some(f) = &self.cb.queue_ready {
            for (context, token) in ready {
                self.run.call(
                    "proxy_on_queue_ready",
                    Phase::QueueReady,
                    context,
                    f,
                    (context, token),
                )?;
            }
        }
        self.settle();
        Ok(())
    }

    /// Every metric the guest defined, in definition order.
    pub fn metrics(&self) -> impl Iterator<Item = Metric<'_>> {
        self.run.store.data().metrics.iter()
    }

    /// The value of the metric `name` (any kind), if defined.
    pub fn metric(&self, name: &str) -> Option<u64> {
        self.metrics().find(|m| m.name == name).map(|m| m.value)
    }

    /// Lines logged outside requests (start, configure, ticks), oldest
    /// first; lines logged during a request are in its [`Outcome`].
    pub fn take_logs(&mut self) -> Vec<LogLine> {
        std::mem::take(&mut self.run.store.data_mut().logs)
    }

    /// HTTP callouts made outside requests (from the root context).
    pub fn take_callouts(&mut self) -> Vec<Callout> {
        std::mem::take(&mut self.run.store.data_mut().vm_callouts)
    }

    /// The module's own count of heap allocations, from its
    /// `laneway_guest_allocations` export; `None` without one.
    pub fn guest_allocations(&mut self) -> Option<u64> {
        let f = self.cb.guest_allocations.as_ref()?;
        let n = self
            .run
            .call("laneway_guest_allocations", Phase::Idle, ROOT, f, ())
            .ok()?;
        Some(n as u64)
    }

    /// Times the host has called the guest allocator.
    pub fn host_allocations(&self) -> u64 {
        self.run.store.data().host_allocations
    }

    /// Size of the guest's linear memory in bytes.
    pub fn memory_bytes(&self) -> usize {
        let s = self.run.store.data();
        s.memory.map_or(0, |m| m.data_size(&self.run.store))
    }

    /// The fixed clock, nanoseconds since the Unix epoch.
    pub fn now_ns(&self) -> u64 {
        self.run.store.data().clock_ns
    }

    /// The tick period the guest set, in milliseconds (0: no ticks).
    pub fn tick_period_ms(&self) -> u32 {
        self.run.store.data().tick_period_ms
    }

    /// Why the VM is poisoned, if it is.
    pub fn poisoned(&self) -> Option<&str> {
        self.run.poisoned.as_deref()
    }

    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }
}

fn request_flow(s: &HostState) -> Flow {
    if s.outcome.local_response.is_some() {
        Flow::LocalReply
    } else if s.close_request {
        Flow::Reset
    } else if s.outcome.request_action.is_continue() || s.continue_request {
        Flow::Forward
    } else {
        Flow::Paused
    }
}

/// Makes the hop's response the local reply's, as Envoy's `sendLocalReply`
/// builds it: `:status`, the guest's headers, then `content-length` and a
/// `text/plain` content type for a non-empty body.
fn local_reply_headers(s: &mut HostState) {
    let Some(reply) = &s.outcome.local_response else {
        return;
    };
    let headers = &mut s.hop.response_headers;
    headers.clear();
    let mut digits = itoa(reply.status as u64);
    headers.add(":status", digits.as_bytes());
    for (k, v) in reply.headers.iter() {
        headers.add(k, v);
    }
    if !reply.body.is_empty() {
        digits = itoa(reply.body.len() as u64);
        headers.replace("content-length", digits.as_bytes());
        if headers.get("content-type").is_none() {
            headers.add("content-type", "text/plain");
        }
    }
}

/// Decimal digits of `n` without allocating.
fn itoa(mut n: u64) -> Digits {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    Digits { buf, at }
}

struct Digits {
    buf: [u8; 20],
    at: usize,
}

impl Digits {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.at..]
    }
}
