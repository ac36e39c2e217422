//! [`Vm`]: one instance of a plugin's module, and the proxy-wasm lifecycle
//! run on it the way Envoy runs it; [`Stream`]: one HTTP stream through it,
//! driven one callback at a time.
//!
//! Start (once): `_initialize` then `main(0, 0)` if exported, else `_start`;
//! then the first root context (id 1): `proxy_on_context_create(1, 0)`,
//! `proxy_on_vm_start`, `proxy_on_configure`. [`Vm::add_root`] starts
//! another root context the same way, as Envoy does for each plugin that
//! shares the VM. Context ids, roots and streams alike, come from one
//! counter.
//!
//! A stream ([`Vm::stream`]) begins with `proxy_on_context_create(ctx,
//! root)`; the embedder then delivers the parts in order:
//! [`Stream::request_headers`], [`Stream::request_body`],
//! [`Stream::request_trailers`], [`Stream::response_headers`],
//! [`Stream::response_body`], [`Stream::response_trailers`], and ends it
//! with [`Stream::done`]: `proxy_on_log(ctx)`, `proxy_on_done(ctx)` (its
//! answer is ignored, as Envoy ignores it for HTTP streams) and
//! `proxy_on_delete(ctx)`, Envoy 1.2x+'s order. Each half's progress is a
//! [`HalfState`]; a part delivered out of order is refused without calling
//! the guest ([`HopError::OutOfOrder`]).
//!
//! [`Vm::request`] runs a whole headers-only exchange in one call:
//! 1. `proxy_on_request_headers(ctx, n, end_of_stream = 1)`; then, while the
//!    request is paused, each HTTP callout that has a reply in the hop gets
//!    `proxy_on_http_call_response(root, token, ..)`;
//! 2. if the request continued (or was resumed with
//!    `proxy_continue_stream`): `proxy_on_response_headers(ctx, n, 1)` with
//!    the hop's response. If the guest sent a local reply instead, Envoy
//!    applies it after the callback returns, does not forward the request,
//!    and runs the encoder filters, this one included, over the reply: so
//!    `proxy_on_response_headers` runs with the reply's headers. A local
//!    reply sent from `proxy_on_response_headers` replaces the response
//!    directly, without a second `proxy_on_response_headers`. A request
//!    still paused, or reset with `proxy_close_stream`, gets no response;
//! 3. the end callbacks, as [`Stream::done`].
//!
//! Missing callbacks are skipped, as Envoy skips them. Ticks and shared
//! queue notifications run from [`Vm::advance_clock`], the host's event
//! loop.
//!
//! A trap, `proc_exit` or a call that outruns its budget is a [`HopError`]
//! naming the callback; the VM is then poisoned and every later call says
//! so.
//!
//! Invariant: no guest behaviour makes the host panic; per request the host
//! itself allocates nothing once its buffers have grown (callouts, logs and
//! new filter-state paths aside).

use proxy_wasm_abi::Status;
use wasmtime::{Instance, Store, TypedFunc, WasmParams, WasmResults};

use super::error::{HopError, HostError};
use super::guest::Get;
use super::hop::{Action, HttpCallReply, Outcome};
use super::metrics::Metric;
use std::time::Duration;

use super::options::{EPOCH_TICK, HostOptions, Interruption, RootOptions};
use super::plugin::Plugin;
use super::state::{HalfState, Part, Phase, ProxyState, Root, StreamState};
use super::wasi::ProcExit;
use super::{Callout, Hop, LogLine};

/// A root context of a [`Vm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RootId(u32);

impl RootId {
    /// The context id the guest sees.
    pub fn context_id(self) -> u32 {
        self.0
    }
}

/// `proxy_on_http_call_response(root, token, headers, body, trailers)`.
type CallResponse = TypedFunc<(u32, u32, u32, u32, u32), ()>;
type HeadersCb = TypedFunc<(u32, u32, u32), u32>;
type TrailersCb = TypedFunc<(u32, u32), u32>;

/// The guest exports the host calls, looked up once.
struct Callbacks {
    initialize: Option<TypedFunc<(), ()>>,
    main: Option<TypedFunc<(u32, u32), u32>>,
    start: Option<TypedFunc<(), ()>>,
    context_create: Option<TypedFunc<(u32, u32), ()>>,
    vm_start: Option<TypedFunc<(u32, u32), u32>>,
    configure: Option<TypedFunc<(u32, u32), u32>>,
    request_headers: Option<HeadersCb>,
    request_body: Option<HeadersCb>,
    request_trailers: Option<TrailersCb>,
    response_headers: Option<HeadersCb>,
    response_body: Option<HeadersCb>,
    response_trailers: Option<TrailersCb>,
    done: Option<TypedFunc<u32, u32>>,
    log: Option<TypedFunc<u32, ()>>,
    delete: Option<TypedFunc<u32, ()>>,
    tick: Option<TypedFunc<u32, ()>>,
    http_call_response: Option<CallResponse>,
    queue_ready: Option<TypedFunc<(u32, u32), ()>>,
    allocation_counter: Option<TypedFunc<(), i64>>,
}

fn typed<T: 'static, P: WasmParams, R: WasmResults>(
    instance: &Instance,
    store: &mut Store<T>,
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
    fn lookup<T: 'static>(
        i: &Instance,
        s: &mut Store<T>,
        counter: Option<&str>,
    ) -> Result<Callbacks, HostError> {
        Ok(Callbacks {
            initialize: typed(i, s, "_initialize")?,
            main: typed(i, s, "main")?,
            start: typed(i, s, "_start")?,
            context_create: typed(i, s, "proxy_on_context_create")?,
            vm_start: typed(i, s, "proxy_on_vm_start")?,
            configure: typed(i, s, "proxy_on_configure")?,
            request_headers: typed(i, s, "proxy_on_request_headers")?,
            request_body: typed(i, s, "proxy_on_request_body")?,
            request_trailers: typed(i, s, "proxy_on_request_trailers")?,
            response_headers: typed(i, s, "proxy_on_response_headers")?,
            response_body: typed(i, s, "proxy_on_response_body")?,
            response_trailers: typed(i, s, "proxy_on_response_trailers")?,
            done: typed(i, s, "proxy_on_done")?,
            log: typed(i, s, "proxy_on_log")?,
            delete: typed(i, s, "proxy_on_delete")?,
            tick: typed(i, s, "proxy_on_tick")?,
            http_call_response: typed(i, s, "proxy_on_http_call_response")?,
            queue_ready: typed(i, s, "proxy_on_queue_ready")?,
            allocation_counter: match counter {
                Some(name) => typed(i, s, name)?,
                None => None,
            },
        })
    }
}

/// The per-call budget, re-armed before every guest call.
#[derive(Clone, Copy)]
enum Budget {
    /// Epoch ticks, and the time they stand for.
    EpochTicks(u64, Duration),
    Fuel(u64),
}

impl Budget {
    fn new(interruption: Interruption, timeout: Duration, fuel: u64) -> Budget {
        match interruption {
            Interruption::Epoch => {
                let tick = EPOCH_TICK.as_nanos().max(1);
                let ticks = timeout.as_nanos() / tick + 2;
                Budget::EpochTicks(
                    u64::try_from(ticks).unwrap_or(u64::MAX).min(u64::MAX / 2),
                    timeout,
                )
            }
            Interruption::Fuel => Budget::Fuel(fuel),
        }
    }

    fn describe(self) -> String {
        match self {
            Budget::EpochTicks(_, d) => format!("{d:?}"),
            Budget::Fuel(f) => format!("{f} units of fuel"),
        }
    }
}

/// The store and what guards calls into it.
struct Runner<T: 'static> {
    store: Store<T>,
    get: Get<T>,
    budget: Budget,
    /// `proxy_on_configure`'s own budget.
    configure_budget: Budget,
    poisoned: Option<String>,
}

/// What a failed call becomes. `budget` describes the call's budget;
/// `limit` is the resource limit the guest hit just before, if any.
fn classify(
    callback: &'static str,
    err: wasmtime::Error,
    budget: Budget,
    limit: Option<String>,
) -> HopError {
    if let Some(exit) = err.downcast_ref::<ProcExit>() {
        return HopError::Exit {
            callback,
            code: exit.0,
        };
    }
    match err.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt | wasmtime::Trap::OutOfFuel) => HopError::Timeout {
            callback,
            budget: budget.describe(),
        },
        _ => {
            let mut message = err.root_cause().to_string();
            if let Some(limit) = limit {
                message.push_str(" (");
                message.push_str(&limit);
                message.push(')');
            }
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

impl<T: 'static> Runner<T> {
    fn state(&mut self) -> &mut ProxyState {
        (self.get)(self.store.data_mut())
    }

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
        let s = self.state();
        s.phase = phase;
        s.effective = context;
        s.local_reply_sent = false;
        s.guard.hit = None;
        let budget = if phase == Phase::Configure {
            self.configure_budget
        } else {
            self.budget
        };
        match budget {
            Budget::EpochTicks(ticks, _) => self.store.set_epoch_deadline(ticks),
            Budget::Fuel(fuel) => {
                // Fails only when fuel is off, which `Budget::Fuel` rules out.
                let _ = self.store.set_fuel(fuel);
            }
        }
        let result = f.call(&mut self.store, params);
        let s = self.state();
        s.effective = match s.stream {
            Some(st) => st.id,
            None => s.roots.first().map_or(0, |r| r.id),
        };
        let limit = s.guard.hit.take();
        result.map_err(|e| {
            let error = classify(callback, e, budget, limit);
            self.poisoned = Some(error.to_string());
            error
        })
    }
}

/// One VM: a module instance and its host state. Single-threaded; `Send`
/// when `T` is.
pub struct Vm<T: 'static = ProxyState> {
    run: Runner<T>,
    cb: Callbacks,
    plugin: Plugin<T>,
    next_context: u32,
    /// The allocation counter when last read (outside a stream, after the
    /// previous one).
    allocations_seen: Option<u64>,
}

impl<T: 'static> Vm<T> {
    pub(crate) fn start(
        plugin: Plugin<T>,
        mut data: T,
        options: HostOptions,
        serial: u64,
    ) -> Result<Vm<T>, HostError> {
        let inner = &plugin.inner;
        let get = inner.get;
        let budget = Budget::new(inner.interruption, options.call_timeout, options.call_fuel);
        let configure_budget = Budget::new(
            inner.interruption,
            options.configure_timeout,
            options.configure_fuel,
        );
        let first_root = options.first_root();
        let counter = options.allocation_counter.clone();
        *get(&mut data) = ProxyState::new(options, inner.shared.clone(), serial);
        let mut store = Store::new(&inner.engine, data);
        store.limiter(move |t| &mut get(t).guard);
        match budget {
            Budget::EpochTicks(ticks, _) => {
                store.epoch_deadline_trap();
                store.set_epoch_deadline(ticks);
            }
            Budget::Fuel(fuel) => {
                let _ = store.set_fuel(fuel);
            }
        }
        let instance = inner.pre.instantiate(&mut store).map_err(|e| {
            let limit = get(store.data_mut()).guard.hit.take();
            HostError::Guest(classify("instantiation", e, budget, limit))
        })?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| HostError::Load("the module exports no memory named `memory`".into()))?;
        let alloc = match typed(&instance, &mut store, "malloc")? {
            Some(malloc) => Some(malloc),
            None => typed(&instance, &mut store, "proxy_on_memory_allocate")?,
        };
        let cb = Callbacks::lookup(&instance, &mut store, counter.as_deref())?;
        let s = get(store.data_mut());
        s.memory = Some(memory);
        s.alloc = alloc;
        let mut vm = Vm {
            run: Runner {
                store,
                get,
                budget,
                configure_budget,
                poisoned: None,
            },
            cb,
            plugin: plugin.clone(),
            next_context: 1,
            allocations_seen: None,
        };
        vm.boot()?;
        vm.add_root(&first_root)?;
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
        Ok(())
    }

    fn next_context_id(&mut self) -> u32 {
        let id = self.next_context;
        self.next_context = match self.next_context.wrapping_add(1) {
            0 => 1,
            n => n,
        };
        id
    }

    /// Starts another root context, as Envoy does for another plugin that
    /// shares this VM: `proxy_on_context_create(id, 0)`,
    /// `proxy_on_vm_start` and `proxy_on_configure` with `options`.
    pub fn add_root(&mut self, options: &RootOptions) -> Result<RootId, HostError> {
        self.run.check()?;
        let id = self.next_context_id();
        self.run.state().roots.push(Root {
            id,
            options: options.clone(),
            tick_period_ms: 0,
            tick_due_ns: None,
        });
        let (run, cb) = (&mut self.run, &self.cb);
        if let Some(f) = &cb.context_create {
            run.call(
                "proxy_on_context_create",
                Phase::ContextCreate,
                id,
                f,
                (id, 0),
            )?;
        }
        if let Some(f) = &cb.vm_start {
            let size = run.state().options.vm_config.len() as u32;
            if run.call("proxy_on_vm_start", Phase::VmStart, id, f, (id, size))? == 0 {
                return Err(self.refused("proxy_on_vm_start"));
            }
        }
        self.configure(RootId(id))?;
        self.settle();
        Ok(RootId(id))
    }

    /// The root contexts, oldest first.
    pub fn roots(&mut self) -> Vec<RootId> {
        self.run
            .state()
            .roots
            .iter()
            .map(|r| RootId(r.id))
            .collect()
    }

    fn first_root(&mut self) -> RootId {
        RootId(self.run.state().roots.first().map_or(0, |r| r.id))
    }

    fn configure(&mut self, root: RootId) -> Result<(), HostError> {
        if let Some(f) = &self.cb.configure {
            let size = self
                .run
                .state()
                .roots
                .iter()
                .find(|r| r.id == root.0)
                .map_or(0, |r| r.options.plugin_config.len() as u32);
            let ok = self.run.call(
                "proxy_on_configure",
                Phase::Configure,
                root.0,
                f,
                (root.0, size),
            )?;
            self.run.state().phase = Phase::Idle;
            if ok == 0 {
                return Err(self.refused("proxy_on_configure"));
            }
        }
        Ok(())
    }

    fn refused(&mut self, phase: &'static str) -> HostError {
        HostError::Refused {
            phase,
            logs: std::mem::take(&mut self.run.state().logs),
        }
    }

    /// Back to idle after a call made outside a stream; remembers the
    /// guest's allocation count so the next stream reports only its own.
    fn settle(&mut self) {
        self.run.state().phase = Phase::Idle;
        self.allocations_seen = self.read_allocation_counter();
    }

    fn read_allocation_counter(&mut self) -> Option<u64> {
        let f = self.cb.allocation_counter.as_ref()?;
        let n = self
            .run
            .call("allocation counter", Phase::Idle, 0, f, ())
            .ok()?;
        Some(n as u64)
    }

    /// Runs one headers-only exchange through the first root context; see
    /// the module doc. `hop` is updated in place (headers as forwarded and
    /// as answered); the outcome is lent until the next call.
    pub fn request(&mut self, hop: &mut Hop) -> Result<&Outcome, HopError> {
        let root = self.first_root();
        self.request_on(root, hop)
    }

    /// [`Vm::request`] through root context `root`.
    pub fn request_on(&mut self, root: RootId, hop: &mut Hop) -> Result<&Outcome, HopError> {
        let mut s = self.stream(root, hop)?;
        s.request_headers(true)?;
        let mut flow = s.request_flow();
        while flow == Flow::Paused && s.deliver_call_reply()? {
            flow = s.request_flow();
        }
        match flow {
            Flow::Forward => {
                s.vm.run.state().outcome.forwarded = true;
                s.respond(false)?;
            }
            Flow::LocalReply => {
                local_reply_headers(s.vm.run.state());
                s.respond(true)?;
            }
            Flow::Paused | Flow::Reset => {}
        }
        s.done()?;
        Ok(&self.run.state().outcome)
    }

    /// Opens a stream on root context `root` over `hop`:
    /// `proxy_on_context_create(ctx, root)`. The hop is the stream's
    /// exchange until the stream is dropped; deliver its parts with the
    /// stream's methods, then call [`Stream::done`].
    pub fn stream<'v>(
        &'v mut self,
        root: RootId,
        hop: &'v mut Hop,
    ) -> Result<Stream<'v, T>, HopError> {
        self.run.check()?;
        if !self.run.state().roots.iter().any(|r| r.id == root.0) {
            return Err(HopError::OutOfOrder {
                callback: "proxy_on_context_create",
                reason: "no such root context in this VM",
            });
        }
        let ctx = self.next_context_id();
        let s = self.run.state();
        std::mem::swap(&mut s.hop, hop);
        if let Some(spare) = s.outcome.reset() {
            s.spare_reply = Some(spare);
        }
        s.stream = Some(StreamState {
            id: ctx,
            root: root.0,
            request: HalfState::Pending,
            response: HalfState::Pending,
            end_of_stream: false,
        });
        s.status = (0, "");
        let stream = Stream {
            vm: self,
            hop,
            id: ctx,
        };
        let (run, cb) = (&mut stream.vm.run, &stream.vm.cb);
        if let Some(f) = &cb.context_create {
            run.call(
                "proxy_on_context_create",
                Phase::ContextCreate,
                ctx,
                f,
                (ctx, root.0),
            )?;
        }
        Ok(stream)
    }

    /// The outcome of the last stream (lent until the next one starts).
    pub fn outcome(&mut self) -> &Outcome {
        &self.run.state().outcome
    }

    /// Runs `proxy_on_configure` of the first root context again with a
    /// new plugin configuration (a configuration update).
    pub fn reconfigure(&mut self, plugin_config: &[u8]) -> Result<(), HostError> {
        let root = self.first_root();
        self.reconfigure_root(root, plugin_config)
    }

    /// [`Vm::reconfigure`] for root context `root`.
    pub fn reconfigure_root(
        &mut self,
        root: RootId,
        plugin_config: &[u8],
    ) -> Result<(), HostError> {
        self.run.check()?;
        if let Some(r) = self.run.state().roots.iter_mut().find(|r| r.id == root.0) {
            r.options.plugin_config.clear();
            r.options.plugin_config.extend_from_slice(plugin_config);
        }
        let result = self.configure(root);
        self.settle();
        result
    }

    /// Sets the fixed clock to `ns` (Unix nanoseconds), forwards or back,
    /// without firing ticks: for a replay whose clock is part of the
    /// scenario, each request at its own time.
    pub fn set_clock_ns(&mut self, ns: u64) {
        self.run.state().clock_ns = ns;
    }

    /// Moves the fixed clock forward by `ms` milliseconds, firing
    /// `proxy_on_tick` for every tick of every root context that falls due
    /// (in time order, with the clock at the tick's time), then delivers
    /// pending shared-queue notifications.
    pub fn advance_clock(&mut self, ms: u64) -> Result<(), HopError> {
        self.run.check()?;
        let target = {
            let s = self.run.state();
            s.clock_ns.saturating_add(ms.saturating_mul(1_000_000))
        };
        loop {
            let s = self.run.state();
            let next = s
                .roots
                .iter()
                .filter_map(|r| r.tick_due_ns.map(|due| (due, r.id)))
                .filter(|(due, _)| *due <= target)
                .min();
            let Some((due, root)) = next else { break };
            s.clock_ns = s.clock_ns.max(due);
            let Some(f) = &self.cb.tick else {
                // Nothing to call: skip every tick up to `target`.
                for r in &mut s.roots {
                    if let Some(d) = r.tick_due_ns.filter(|d| *d <= target) {
                        let period = u64::from(r.tick_period_ms).max(1) * 1_000_000;
                        let missed = (target - d) / period + 1;
                        r.tick_due_ns = Some(d.saturating_add(missed.saturating_mul(period)));
                    }
                }
                break;
            };
            self.run.call("proxy_on_tick", Phase::Tick, root, f, root)?;
            let s = self.run.state();
            if let Some(r) = s.roots.iter_mut().find(|r| r.id == root)
                && r.tick_due_ns == Some(due)
            {
                let period = u64::from(r.tick_period_ms).max(1) * 1_000_000;
                r.tick_due_ns = Some(due.saturating_add(period));
            }
        }
        let s = self.run.state();
        s.clock_ns = s.clock_ns.max(target);
        self.dispatch_queues()
    }

    /// Delivers `proxy_on_queue_ready` for items enqueued (by any VM of the
    /// plugin) on queues this VM registered.
    pub fn dispatch_queues(&mut self) -> Result<(), HopError> {
        self.run.check()?;
        let s = self.run.state();
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
    pub fn metrics(&mut self) -> impl Iterator<Item = Metric<'_>> {
        self.run.state().metrics.iter()
    }

    /// The value of the metric `name` (any kind), if defined.
    pub fn metric(&mut self, name: &str) -> Option<u64> {
        self.metrics().find(|m| m.name == name).map(|m| m.value)
    }

    /// Lines logged outside streams (start, configure, ticks), oldest
    /// first; lines logged during a stream are in its [`Outcome`].
    pub fn take_logs(&mut self) -> Vec<LogLine> {
        let s = self.run.state();
        s.log_bytes = 0;
        std::mem::take(&mut s.logs)
    }

    /// HTTP callouts made outside streams (from a root context).
    pub fn take_callouts(&mut self) -> Vec<Callout> {
        std::mem::take(&mut self.run.state().vm_callouts)
    }

    /// The module's own count of heap allocations, from the
    /// [`HostOptions::allocation_counter`] export; `None` without one.
    pub fn guest_allocations(&mut self) -> Option<u64> {
        self.read_allocation_counter()
    }

    /// Times the host has called the guest allocator.
    pub fn host_allocations(&mut self) -> u64 {
        self.run.state().host_allocations
    }

    /// Size of the guest's linear memory in bytes.
    pub fn memory_bytes(&mut self) -> usize {
        let memory = self.run.state().memory;
        memory.map_or(0, |m| m.data_size(&self.run.store))
    }

    /// The fixed clock, nanoseconds since the Unix epoch.
    pub fn now_ns(&mut self) -> u64 {
        self.run.state().clock_ns
    }

    /// The tick period root context `root` set, in milliseconds (0: none).
    pub fn tick_period_ms(&mut self, root: RootId) -> u32 {
        self.run
            .state()
            .roots
            .iter()
            .find(|r| r.id == root.0)
            .map_or(0, |r| r.tick_period_ms)
    }

    /// Why the VM is poisoned, if it is.
    pub fn poisoned(&self) -> Option<&str> {
        self.run.poisoned.as_deref()
    }

    /// The plugin this VM runs.
    pub fn plugin(&self) -> &Plugin<T> {
        &self.plugin
    }

    /// The store's data: the embedder's `T`.
    pub fn data(&self) -> &T {
        self.run.store.data()
    }

    /// The store's data, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        self.run.store.data_mut()
    }
}

/// Which way a stream's request went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Forward,
    Paused,
    LocalReply,
    Reset,
}

/// One HTTP stream through a [`Vm`]; see the module doc. Dropping it
/// without [`Stream::done`] gives the hop back but skips the guest's end
/// callbacks (a poisoned VM's streams end that way).
pub struct Stream<'v, T: 'static> {
    vm: &'v mut Vm<T>,
    hop: &'v mut Hop,
    id: u32,
}

impl<T: 'static> Drop for Stream<'_, T> {
    fn drop(&mut self) {
        let s = self.vm.run.state();
        s.stream = None;
        s.effective = s.roots.first().map_or(0, |r| r.id);
        s.phase = Phase::Idle;
        s.call_reply = None;
        std::mem::swap(&mut s.hop, self.hop);
    }
}

impl<T: 'static> Stream<'_, T> {
    /// The stream context's id.
    pub fn context_id(&self) -> u32 {
        self.id
    }

    /// Where the request and the response stand.
    pub fn state(&mut self) -> StreamState {
        self.vm.run.state().stream.unwrap_or(StreamState {
            id: self.id,
            root: 0,
            request: HalfState::Pending,
            response: HalfState::Pending,
            end_of_stream: false,
        })
    }

    /// What happened so far: local reply, filter state, callouts, logs.
    pub fn outcome(&mut self) -> &Outcome {
        &self.vm.run.state().outcome
    }

    /// The exchange, as the filter has left it so far.
    pub fn hop(&mut self) -> &mut Hop {
        &mut self.vm.run.state().hop
    }

    fn stream_mut(&mut self) -> &mut StreamState {
        let id = self.id;
        let s = self.vm.run.state();
        s.stream.get_or_insert(StreamState {
            id,
            root: 0,
            request: HalfState::Pending,
            response: HalfState::Pending,
            end_of_stream: false,
        })
    }

    /// Delivers one part of a half: checks the order, holds the part, runs
    /// the callback, and lets go of the part when the guest continues.
    fn deliver(&mut self, request: bool, part: Part, end: bool) -> Result<Action, HopError> {
        let (callback, phase) = match (request, part) {
            (true, Part::Headers) => ("proxy_on_request_headers", Phase::RequestHeaders),
            (true, Part::Body) => ("proxy_on_request_body", Phase::RequestBody),
            (true, Part::Trailers) => ("proxy_on_request_trailers", Phase::RequestTrailers),
            (false, Part::Headers) => ("proxy_on_response_headers", Phase::ResponseHeaders),
            (false, Part::Body) => ("proxy_on_response_body", Phase::ResponseBody),
            (false, Part::Trailers) => ("proxy_on_response_trailers", Phase::ResponseTrailers),
        };
        let stream = *self.stream_mut();
        let half = if request {
            stream.request
        } else {
            stream.response
        };
        let ready = match part {
            Part::Headers => half == HalfState::Pending,
            Part::Body | Part::Trailers => half == HalfState::Flowing,
        };
        if !ready {
            return Err(HopError::OutOfOrder {
                callback,
                reason: match half {
                    HalfState::Held(_) => "the filter is holding this half back (paused)",
                    HalfState::Complete => "this half already ended",
                    HalfState::Closed => "the filter closed this half",
                    HalfState::Pending => "the headers come first",
                    HalfState::Flowing => "the headers were already delivered",
                },
            });
        }
        let end = end || part == Part::Trailers;
        {
            let st = self.stream_mut();
            st.end_of_stream = end;
            *if request {
                &mut st.request
            } else {
                &mut st.response
            } = HalfState::Held(part);
        }
        let id = self.id;
        let s = self.vm.run.state();
        let size = match (request, part) {
            (true, Part::Headers) => s.hop.request_headers.len(),
            (true, Part::Body) => s.hop.request_body.len(),
            (true, Part::Trailers) => s.hop.request_trailers.len(),
            (false, Part::Headers) => s.hop.response_headers.len(),
            (false, Part::Body) => s.hop.response_body.len(),
            (false, Part::Trailers) => s.hop.response_trailers.len(),
        } as u32;
        let (run, cb) = (&mut self.vm.run, &self.vm.cb);
        let result = match (part, request) {
            (Part::Trailers, true) => cb
                .request_trailers
                .as_ref()
                .map(|f| run.call(callback, phase, id, f, (id, size))),
            (Part::Trailers, false) => cb
                .response_trailers
                .as_ref()
                .map(|f| run.call(callback, phase, id, f, (id, size))),
            (Part::Headers, true) => cb
                .request_headers
                .as_ref()
                .map(|f| run.call(callback, phase, id, f, (id, size, u32::from(end)))),
            (Part::Headers, false) => cb
                .response_headers
                .as_ref()
                .map(|f| run.call(callback, phase, id, f, (id, size, u32::from(end)))),
            (Part::Body, true) => cb
                .request_body
                .as_ref()
                .map(|f| run.call(callback, phase, id, f, (id, size, u32::from(end)))),
            (Part::Body, false) => cb
                .response_body
                .as_ref()
                .map(|f| run.call(callback, phase, id, f, (id, size, u32::from(end)))),
        };
        let action = match result {
            Some(r) => Action::from_headers_result(r?, run.state().local_reply_sent),
            None => Action::Continue,
        };
        let s = run.state();
        s.phase = Phase::Idle;
        match (part, request) {
            (Part::Headers, true) => s.outcome.request_action = action,
            (Part::Headers, false) => s.outcome.response_action = Some(action),
            _ => {}
        }
        if let Some(st) = s.stream.as_mut() {
            let half = if request {
                &mut st.request
            } else {
                &mut st.response
            };
            // Returning Continue lets go of the part; so did
            // proxy_continue_stream during the callback (already Flowing).
            if action.is_continue() && *half == HalfState::Held(part) {
                *half = HalfState::Flowing;
            }
            if end && *half == HalfState::Flowing {
                *half = HalfState::Complete;
            }
        }
        Ok(action)
    }

    /// `proxy_on_request_headers` over the hop's request headers.
    pub fn request_headers(&mut self, end_of_stream: bool) -> Result<Action, HopError> {
        self.deliver(true, Part::Headers, end_of_stream)
    }

    /// `proxy_on_request_body` over the hop's request body.
    pub fn request_body(&mut self, end_of_stream: bool) -> Result<Action, HopError> {
        self.deliver(true, Part::Body, end_of_stream)
    }

    /// `proxy_on_request_trailers` over the hop's request trailers (the
    /// request's end).
    pub fn request_trailers(&mut self) -> Result<Action, HopError> {
        self.deliver(true, Part::Trailers, true)
    }

    /// `proxy_on_response_headers` over the hop's response headers.
    pub fn response_headers(&mut self, end_of_stream: bool) -> Result<Action, HopError> {
        self.deliver(false, Part::Headers, end_of_stream)
    }

    /// `proxy_on_response_body` over the hop's response body.
    pub fn response_body(&mut self, end_of_stream: bool) -> Result<Action, HopError> {
        self.deliver(false, Part::Body, end_of_stream)
    }

    /// `proxy_on_response_trailers` over the hop's response trailers.
    pub fn response_trailers(&mut self) -> Result<Action, HopError> {
        self.deliver(false, Part::Trailers, true)
    }

    fn request_flow(&mut self) -> Flow {
        let s = self.vm.run.state();
        let request = s.stream.map_or(HalfState::Pending, |st| st.request);
        if s.outcome.local_response.is_some() {
            Flow::LocalReply
        } else if request == HalfState::Closed {
            Flow::Reset
        } else if request.is_held() {
            Flow::Paused
        } else {
            Flow::Forward
        }
    }

    /// The response half of [`Vm::request`]: `proxy_on_response_headers`
    /// over the upstream's response, or over the local reply (`local`).
    fn respond(&mut self, local: bool) -> Result<(), HopError> {
        self.response_headers(true)?;
        if local {
            return Ok(());
        }
        loop {
            let s = self.vm.run.state();
            if s.outcome.local_response.is_some() {
                // Sent while encoding: Envoy replies directly, no filters.
                local_reply_headers(s);
                if let Some(st) = s.stream.as_mut()
                    && st.response.is_held()
                {
                    st.response = HalfState::Complete;
                }
                return Ok(());
            }
            let paused = s.stream.is_some_and(|st| st.response.is_held());
            if !paused || !self.deliver_call_reply()? {
                return Ok(());
            }
        }
    }

    /// Delivers the next undelivered reply to this stream's HTTP callouts
    /// (from [`Hop::http_call_replies`], in dispatch order):
    /// `proxy_on_http_call_response` on the root context. `false` when
    /// there is none to deliver.
    pub fn deliver_call_reply(&mut self) -> Result<bool, HopError> {
        let s = self.vm.run.state();
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
        let root = s.stream.map_or(0, |st| st.root);
        let (run, cb) = (&mut self.vm.run, &self.vm.cb);
        if let Some(f) = &cb.http_call_response {
            let params = (root, token, headers as u32, body as u32, trailers as u32);
            run.call(
                "proxy_on_http_call_response",
                Phase::HttpCallResponse,
                root,
                f,
                params,
            )?;
        }
        let s = run.state();
        s.call_reply = None;
        s.phase = Phase::Idle;
        Ok(true)
    }

    /// Ends the stream: `proxy_on_log`, `proxy_on_done`, `proxy_on_delete`;
    /// the outcome is then [`Vm::outcome`].
    pub fn done(self) -> Result<(), HopError> {
        let id = self.id;
        let s = self.vm.run.state();
        s.outcome.reset = s
            .stream
            .is_some_and(|st| st.request == HalfState::Closed || st.response == HalfState::Closed);
        let (run, cb) = (&mut self.vm.run, &self.vm.cb);
        if let Some(f) = &cb.log {
            run.call("proxy_on_log", Phase::Log, id, f, id)?;
        }
        if let Some(f) = &cb.done {
            run.call("proxy_on_done", Phase::Done, id, f, id)?;
        }
        if let Some(f) = &cb.delete {
            run.call("proxy_on_delete", Phase::Delete, id, f, id)?;
        }
        if self.vm.allocations_seen.is_some() {
            let now = self.vm.read_allocation_counter();
            let before = self.vm.allocations_seen;
            self.vm.run.state().outcome.guest_allocations = now
                .zip(before)
                .map(|(now, before)| now.wrapping_sub(before));
            self.vm.allocations_seen = now;
        }
        Ok(())
    }
}

/// Makes the hop's response the local reply's, as Envoy's `sendLocalReply`
/// builds it: `:status`, the guest's headers, then `content-length` and a
/// `text/plain` content type for a non-empty body; the body is the reply's.
fn local_reply_headers(s: &mut ProxyState) {
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
    s.hop.response_body.clear();
    s.hop.response_body.extend_from_slice(&reply.body);
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
