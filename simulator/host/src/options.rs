//! Options: [`LoadOptions`] fix how a module is compiled (once per
//! [`Compiled`](super::Compiled)); [`HostOptions`] configure each VM, the
//! way an Envoy `WasmService`/`PluginConfig` does: names, configurations,
//! environment, and the host's fixed clock, random seed and per-call
//! budget; [`RootOptions`] configure each further root context of a VM
//! (another plugin sharing it).
//!
//! Invariant: plain data with documented defaults; nothing here panics.

use std::time::Duration;

use proxy_wasm_abi::LogLevel;

use super::maps::Properties;

/// How a runaway guest call is stopped.
///
/// Epoch interruption costs a load and compare at function entries and
/// loop heads, fuel a counter update per basic block; epoch is the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Interruption {
    /// A background thread per engine bumps the epoch every
    /// [`EPOCH_TICK`]; each call gets a deadline of
    /// [`HostOptions::call_timeout`].
    #[default]
    Epoch,
    /// Each call gets [`HostOptions::call_fuel`] units of fuel.
    Fuel,
}

/// The epoch ticker's period: the granularity of [`HostOptions::call_timeout`].
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// How a module is compiled.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// How runaway calls are stopped.
    pub interruption: Interruption,
    /// Write `/tmp/perf-<pid>.map` so `perf report` names the module's
    /// functions.
    pub perf_map: bool,
}

/// One root context: one plugin configuration in a VM, as Envoy creates
/// one per `PluginConfig` that shares the VM.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RootOptions {
    /// `plugin_name` property (default empty, as in Envoy).
    pub plugin_name: String,
    /// `plugin_root_id` property (default empty, as in Envoy).
    pub root_id: String,
    /// Read with `proxy_get_buffer_bytes(PLUGIN_CONFIGURATION)` in
    /// `proxy_on_configure`.
    pub plugin_config: Vec<u8>,
}

/// What a guest can make the host hold, per VM (and, for shared data and
/// queues, per plugin). Where Envoy has a limit of its own the default
/// follows it; elsewhere the default is generous for a filter and small
/// for a machine. A guest that reaches one gets a status (or, for memory
/// and tables, a failed `grow`), and a trap that follows names the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory per instance (default 1 GiB, as Envoy's: the
    /// `PROXY_WASM_HOST_MAX_WASM_MEMORY_SIZE_BYTES` of proxy-wasm-cpp-host,
    /// which its V8, Wasmtime and WAMR runtimes all enforce).
    pub memory_bytes: usize,
    /// Elements per table (default 1,000,000).
    pub table_elements: usize,
    /// Bytes of names and values in one header map (default 8 MiB, the
    /// largest `max_request_headers_kb` Envoy accepts).
    pub header_map_bytes: usize,
    /// Entries in one header map (default 10,000).
    pub header_map_entries: usize,
    /// Bytes of keys and values in shared data, per plugin (default 64 MiB).
    pub shared_data_bytes: usize,
    /// Bytes waiting in shared queues, per plugin (default 64 MiB).
    pub queue_bytes: usize,
    /// Shared queues, per plugin (default 10,000).
    pub queues: usize,
    /// Metrics defined, per VM (default 100,000).
    pub metrics: usize,
    /// Bytes of log lines kept per stream, and outside streams until taken
    /// (default 1 MiB); later lines are counted, not kept.
    pub log_bytes: usize,
    /// Bytes of filter state set per stream (default 1 MiB).
    pub property_bytes: usize,
    /// HTTP callouts per stream, and outside streams until taken
    /// (default 1,000).
    pub callouts: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory_bytes: 1 << 30,
            table_elements: 1_000_000,
            header_map_bytes: 8 << 20,
            header_map_entries: 10_000,
            shared_data_bytes: 64 << 20,
            queue_bytes: 64 << 20,
            queues: 10_000,
            metrics: 100_000,
            log_bytes: 1 << 20,
            property_bytes: 1 << 20,
            callouts: 1_000,
        }
    }
}

/// One VM's configuration, and its first root context's. See the field
/// docs for defaults.
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// `plugin_name` of the first root context.
    pub plugin_name: String,
    /// `plugin_root_id` of the first root context.
    pub root_id: String,
    /// The first root context's plugin configuration.
    pub plugin_config: Vec<u8>,
    /// `plugin_vm_id` property; also names this VM's shared queues.
    pub vm_id: String,
    /// Read with `proxy_get_buffer_bytes(VM_CONFIGURATION)`.
    pub vm_config: Vec<u8>,
    /// WASI `environ_get`.
    pub env: Vec<(String, String)>,
    /// Start of the fixed clock, nanoseconds since the Unix epoch; moved
    /// only by [`Vm::advance_clock`](super::Vm::advance_clock).
    pub clock_ns: u64,
    /// Seed of WASI `random_get`.
    pub random_seed: u64,
    /// Lines below this level are dropped (Envoy's default is info), and
    /// `proxy_get_log_level` reports it.
    pub log_level: LogLevel,
    /// Longest a single guest call may run under [`Interruption::Epoch`]
    /// (default 1 s). `proxy_on_configure` has its own budget.
    pub call_timeout: Duration,
    /// Fuel for a single guest call under [`Interruption::Fuel`].
    pub call_fuel: u64,
    /// Longest `proxy_on_configure` may run (default 120 s): a large
    /// configuration takes longer to build than a request to decide, and
    /// its size must never decide whether a replay passes. Sized by
    /// measurement: Laneway's filter at all its configuration limits took
    /// 12 to 22 s on a 2-core VM (BENCHMARKS.md).
    pub configure_timeout: Duration,
    /// Fuel for `proxy_on_configure` under [`Interruption::Fuel`].
    pub configure_fuel: u64,
    /// What a guest can make the host hold.
    pub limits: Limits,
    /// An export of the module, `() -> i64`, that counts the guest's heap
    /// allocations. When set (and exported), each stream reads it before
    /// and after, to report
    /// [`Outcome::guest_allocations`](super::Outcome::guest_allocations):
    /// two extra guest calls per stream. Default `None`.
    pub allocation_counter: Option<String>,
    /// Clusters `proxy_http_call` may target; `None` accepts any name.
    pub clusters: Option<Vec<String>>,
    /// Static attributes by exact `\0`-separated path (for example
    /// `node\0metadata\0NAME`), answered in every context.
    pub properties: Properties,
}

impl Default for HostOptions {
    fn default() -> HostOptions {
        HostOptions {
            plugin_name: String::new(),
            root_id: String::new(),
            plugin_config: Vec::new(),
            vm_id: String::new(),
            vm_config: Vec::new(),
            env: Vec::new(),
            // 2026-01-01T00:00:00Z.
            clock_ns: 1_767_225_600_000_000_000,
            random_seed: 0x1a2e_3a7f,
            log_level: LogLevel::Info,
            call_timeout: Duration::from_secs(1),
            call_fuel: 100_000_000,
            configure_timeout: Duration::from_secs(120),
            configure_fuel: 100_000_000_000,
            limits: Limits::default(),
            allocation_counter: None,
            clusters: None,
            properties: Properties::new(),
        }
    }
}

impl HostOptions {
    /// The first root context's options.
    pub fn first_root(&self) -> RootOptions {
        RootOptions {
            plugin_name: self.plugin_name.clone(),
            root_id: self.root_id.clone(),
            plugin_config: self.plugin_config.clone(),
        }
    }
}
