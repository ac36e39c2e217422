//! Options: [`LoadOptions`] fix how a module is compiled (once per
//! [`Plugin`](super::Plugin)); [`HostOptions`] configure each VM, the way an
//! Envoy `WasmService`/`PluginConfig` does: names, configurations,
//! environment, and the simulator's fixed clock, random seed and per-call
//! budget.
//!
//! Invariant: plain data with documented defaults; nothing here panics.

use std::time::Duration;

use super::abi::LogLevel;
use super::maps::Properties;

/// How a runaway guest call is stopped.
///
/// Measured on the Laneway filter's full per-request lifecycle (release,
/// see `laneway_filter_per_hop_cost` in `tests/host.rs`): epoch
/// interruption costs a load and compare at function entries and loop
/// heads, fuel a counter update per basic block; epoch is the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Interruption {
    /// A background thread per plugin bumps the engine's epoch every
    /// [`EPOCH_TICK`]; each call gets a deadline of
    /// [`HostOptions::call_timeout`].
    #[default]
    Epoch,
    /// Each call gets [`HostOptions::call_fuel`] units of fuel.
    Fuel,
}

/// The epoch ticker's period: the granularity of [`HostOptions::call_timeout`].
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// How a [`Plugin`](super::Plugin) compiles its module.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    pub interruption: Interruption,
    /// Write `/tmp/perf-<pid>.map` so `perf report` names the module's
    /// functions.
    pub perf_map: bool,
}

/// One VM's configuration. See the field docs for defaults.
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// `plugin_name` property (default `"laneway"`).
    pub plugin_name: String,
    /// `plugin_root_id` property (default empty, as in Envoy).
    pub root_id: String,
    /// `plugin_vm_id` property; also names this VM's shared queues.
    pub vm_id: String,
    /// Read with `proxy_get_buffer_bytes(PLUGIN_CONFIGURATION)` in
    /// `proxy_on_configure`.
    pub plugin_config: Vec<u8>,
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
    /// (default 1 s).
    pub call_timeout: Duration,
    /// Fuel for a single guest call under [`Interruption::Fuel`].
    pub call_fuel: u64,
    /// Whether each hop calls the module's `laneway_guest_allocations`
    /// export (if any) before and after, to report
    /// [`Outcome::guest_allocations`](super::Outcome::guest_allocations);
    /// two extra guest calls per hop.
    pub count_guest_allocations: bool,
    /// Clusters `proxy_http_call` may target; `None` accepts any name.
    pub clusters: Option<Vec<String>>,
    /// Static attributes by exact `\0`-separated path (for example
    /// `node\0metadata\0NAME`), answered in every context.
    pub properties: Properties,
}

impl Default for HostOptions {
    fn default() -> HostOptions {
        HostOptions {
            plugin_name: "laneway".into(),
            root_id: String::new(),
            vm_id: String::new(),
            plugin_config: Vec::new(),
            vm_config: Vec::new(),
            env: Vec::new(),
            // 2026-01-01T00:00:00Z.
            clock_ns: 1_767_225_600_000_000_000,
            random_seed: 0x1a2e_3a7f,
            log_level: LogLevel::Info,
            call_timeout: Duration::from_secs(1),
            call_fuel: 100_000_000,
            count_guest_allocations: true,
            clusters: None,
            properties: Properties::new(),
        }
    }
}
