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

/// The filter in one wasm VM, and in a second one for the ingress
/// gateway when the scenario gives it its own configuration.
pub struct WasmSidecar {
    plugin: Plugin,
    options: HostOptions,
    vm: Vm,
    gateway: Option<(HostOptions, Vm)>,
    hop: Hop,
    source: String,
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
            gateway: None,
            hop: Hop::default(),
            source: String::new(),
        })
    }

    /// Gives the ingress gateway (the entry call) its own VM, configured
    /// with `config`.
    pub fn with_gateway(mut self, config: &str) -> Result<WasmSidecar, StartError> {
        let options = HostOptions {
            plugin_config: config.as_bytes().to_vec(),
            ..self.options.clone()
        };
        let vm = self
            .plugin
            .vm(&options)
            .map_err(|e| StartError(format!("the gateway's configuration: {e}")))?;
        self.gateway = Some((options, vm));
        Ok(self)
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
        if self.source != call.source {
            call.source.clone_into(&mut self.source);
            h.source = socket_addr(call.source);
        }
        h.request_headers.clear();
        h.request_headers.add(":authority", call.authority);
        h.request_headers.add(":path", call.path);
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
        let (options, vm) = match (&mut self.gateway, call.entry) {
            (Some((o, vm)), true) => (&*o, vm),
            _ => (&self.options, &mut self.vm),
        };
        vm.set_clock_ns(call.now_ns);
        let outcome = match vm.request(&mut self.hop) {
            Ok(o) => o,
            Err(e) => {
                let message = e.to_string();
                // A trap poisons the VM; start a fresh one so the replay
                // goes on.
                return Err(match self.plugin.vm(options) {
                    Ok(fresh) => {
                        *vm = fresh;
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
        let headers = &self.hop.request_headers;
        let authority = headers.get(":authority").unwrap_or(b"");
        // A fork is a new host: neither the one sent nor the service's own
        // (which a preview host is rewritten to).
        let host = laneway_core::authority::host;
        let route = if authority == call.authority.as_bytes()
            || host(authority).eq_ignore_ascii_case(host(call.service_authority.as_bytes()))
        {
            Route::Baseline
        } else {
            Route::Fork
        };
        out.set(route, reason, authority, 200);
        out.forward(
            call,
            headers.get_all(b"baggage"),
            headers.get_all(b"tracestate"),
        );
        Ok(())
    }
}

/// `source.address` as the host reports it, from a scenario's address
/// (with or without a port; checked when the scenario was compiled).
fn socket_addr(text: &str) -> std::net::SocketAddr {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    let trimmed = text.trim_start_matches('[');
    text.parse::<SocketAddr>()
        .ok()
        .or_else(|| {
            let ip = trimmed.trim_end_matches(']').parse::<IpAddr>().ok()?;
            Some(SocketAddr::new(ip, 40000))
        })
        .unwrap_or(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            40000,
        ))
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
        let started = |what: &str, e: StartError| {
            StartError(format!(
                "{}: a VM with the scenario's {what} did not start: {e}",
                self.name
            ))
        };
        let mut sidecar = WasmSidecar::with_host(&self.plugin, &self.host, &scenario.config)
            .map_err(|e| started("plugin configuration", e))?;
        if let Some(gateway) = &scenario.gateway_config {
            sidecar = sidecar
                .with_gateway(gateway)
                .map_err(|e| started("gateway configuration", e))?;
        }
        Ok(Box::new(Mesh::new(sidecar)))
    }
}
