//! What the engine runs requests through: a [`Backend`]. A backend takes
//! one request of a scenario and records its [`Trace`]; it decides nothing
//! about checks. Backends are started per worker thread by a
//! [`BackendFactory`], as Envoy runs one VM per worker.
//!
//! Two backends live in this crate, both in-process walks of the
//! scenario's call graph ([`crate::mesh`]) around a per-hop sidecar:
//! - [`wasm`](crate::wasm): the filter's `.wasm` in the wasmtime host;
//! - [`native`](crate::native): `laneway-core` itself, the reference the
//!   differential check compares against.
//!
//! A backend that forwards calls through real workloads (a real Envoy)
//! implements [`Backend`] directly: it need only record the same facts.

use laneway_scenario::Scenario;

use crate::trace::Trace;

/// One request to run.
#[derive(Clone, Copy, Debug)]
pub struct Plan<'s> {
    /// The scenario.
    pub scenario: &'s Scenario,
    /// The traffic group.
    pub group: usize,
    /// The request's global index.
    pub index: u64,
    /// The entry `baggage` lines.
    pub baggage: &'s [&'s str],
    /// The entry `tracestate` lines.
    pub tracestate: &'s [&'s str],
}

/// Runs requests and records what happened.
pub trait Backend {
    /// Makes `config` the plugin configuration from the next request on.
    /// `Err` (the reason) when the filter refuses it; it then keeps the
    /// last good one, as Envoy does.
    fn configure(&mut self, config: &str) -> Result<(), String>;

    /// Runs one request and records it into `trace` (cleared first).
    fn run(&mut self, plan: &Plan<'_>, trace: &mut Trace);
}

/// Why a backend could not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// Starts one backend per worker thread.
pub trait BackendFactory: Sync {
    /// What the reports call this backend (`laneway_filter.wasm`,
    /// `laneway-core`).
    fn name(&self) -> &str;

    /// A backend for `scenario`, configured with its starting plugin
    /// configuration.
    fn start<'s>(&'s self, scenario: &'s Scenario) -> Result<Box<dyn Backend + 's>, StartError>;
}
