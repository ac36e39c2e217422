//! The wasm backend: `laneway_filter.wasm` (or any module that speaks the
//! same filter state) in the wasmtime host, one VM per worker, deciding
//! every call of the in-process [`Mesh`].
//!
//! The sidecar reads the filter's own outputs: a local reply is a reject,
//! a changed `:authority` is a fork, and the reason is the `decision` of
//! the filter-state entry `laneway`, read with the core's one codec
//! ([`laneway_core::filter_state`]); no entry means `no_key`, an entry the
//! codec cannot read means no reason at all (which the differential check
//! reports).
//!
//! A trap poisons a VM; the sidecar starts a fresh one so the replay goes
//! on, and the hop is recorded as failed.

use laneway_core::filter_state;
use laneway_core::{Reason, Route};
use laneway_scenario::Scenario;
use proxy_wasm_host::{Hop, HostOptions, Plugin, Vm};

use crate::backend::{Backend, BackendFactory, StartError};
use crate::mesh::{Call, Decided, Mesh, Sidecar};

/// The filter-state path the filter writes (Envoy: `wasm.laneway`).
pub const FILTER_STATE: &str = "laneway";

/// The filter in one wasm VM.
pub struct WasmSidecar {
    plugin: Plugin,
    options: HostOptions,
    vm: Vm,
    hop: Hop,
}

impl WasmSidecar {
    /// A VM of `plugin` configured with `config`, under the host's
    /// default budgets and limits.
    pub fn new(plugin: &Plugin, config: &str) -> Result<WasmSidecar, StartError> {
        WasmSidecar::with_host(plugin, &HostOptions::default(), config)
    }

    /// A VM of `plugin` configured with `config`, under `host`'s call
    /// budgets and limits (its plugin name and configuration are
    /// replaced).
    pub fn with_host(
        plugin: &Plugin,
        host: &HostOptions,
        config: &str,
    ) -> Result<WasmSidecar, StartError> {
        let options = HostOptions {
            plugin_name: "laneway".into(),
            plugin_config: config.as_bytes().to_vec(),
            ..host.clone()
        };
        let vm = plugin.vm(&options).map_err(|e| StartError(e.to_string()))?;
        Ok(WasmSidecar {
            plugin: plugin.clone(),
            options,
            vm,
            hop: Hop::default(),
        })
    }

    /// The VM, for metrics.
    pub fn vm(&mut self) -> &mut Vm {
        &mut self.vm
    }
}

impl Sidecar for WasmSidecar {
    fn configure(&mut self, config: &str) -> Result<(), String> {
        self.options.plugin_config = config.as_bytes().to_vec();
        self.vm
            .reconfigure(config.as_bytes())
            .map_err(|e| e.to_string())
    }

    fn decide(&mut self, call: &Call<'_>, out: &mut Decided) -> Result<(), String> {
        let h = &mut self.hop;
        h.request_headers.clear();
        h.request_headers.add(":authority", call.authority);
        h.request_headers.add(":path", "/");
        h.request_headers.add(":method", "GET");
        h.request_headers.add(":scheme", "http");
        for b in call.baggage {
            h.request_headers.add("baggage", b);
        }
        for t in call.tracestate {
            h.request_headers.add("tracestate", t);
        }
        h.response_headers.clear();
        h.response_headers.add(":status", "200");
        let outcome = match self.vm.request(&mut self.hop) {
            Ok(o) => o,
            Err(e) => {
                let message = e.to_string();
                // A trap poisons the VM; start a fresh one so the replay
                // goes on.
                return Err(match self.plugin.vm(&self.options) {
                    Ok(vm) => {
                        self.vm = vm;
                        message
                    }
                    Err(restart) => format!("{message}; restarting the VM failed: {restart}"),
                });
            }
        };
        let reason = match outcome.properties.get(FILTER_STATE) {
            None => Some(Reason::NoKey),
            Some(state) => filter_state::decode(state).ok().map(|d| d.reason),
        };
        if let Some(reply) = &outcome.local_response {
            let status = u16::try_from(reply.status).unwrap_or(0);
            out.set(Route::Reject, reason, call.authority.as_bytes(), status);
            return Ok(());
        }
        let authority = self.hop.request_headers.get(":authority").unwrap_or(b"");
        let route = if authority == call.authority.as_bytes() {
            Route::Baseline
        } else {
            Route::Fork
        };
        out.set(route, reason, authority, 200);
        Ok(())
    }
}

/// Starts a [`WasmSidecar`] mesh per worker.
pub struct WasmFactory {
    plugin: Plugin,
    name: String,
    host: HostOptions,
}

impl WasmFactory {
    /// Backends that run `plugin`; `name` is the module's, for reports.
    pub fn new(plugin: Plugin, name: impl Into<String>) -> WasmFactory {
        WasmFactory {
            plugin,
            name: name.into(),
            host: HostOptions::default(),
        }
    }

    /// The same, with `host`'s call budgets and limits for every VM.
    pub fn with_host(mut self, host: HostOptions) -> WasmFactory {
        self.host = host;
        self
    }
}

impl BackendFactory for WasmFactory {
    fn name(&self) -> &str {
        &self.name
    }

    fn start<'s>(&'s self, scenario: &'s Scenario) -> Result<Box<dyn Backend + 's>, StartError> {
        let sidecar =
            WasmSidecar::with_host(&self.plugin, &self.host, &scenario.config).map_err(|e| {
                StartError(format!(
                    "{}: a VM with the scenario's plugin configuration did not start: {e}",
                    self.name
                ))
            })?;
        Ok(Box::new(Mesh::new(sidecar)))
    }
}
