//! What decides a hop. The replay and its report are independent of the
//! backend: a [`Decider`] sees one outbound request (the caller's sidecar's
//! view) and says where it goes.
//!
//! - [`WasmDecider`] runs `laneway_filter.wasm` in the wasmtime host and
//!   reads the filter's own outputs: a local reply is a reject, a changed
//!   `:authority` is a fork, and the `decision=` field of the filter's
//!   `laneway` property is the reason (absent: `no_key`).
//! - [`NativeDecider`] asks `laneway_core` directly: the differential check.
//!
//! Neither allocates per hop in steady state: buffers are reused.

use laneway_core::{Decision, Request, Route, Router};

use crate::host::{Hop, HopError, HostOptions, Plugin, Vm};

/// One outbound request, as the caller's sidecar sees it.
pub struct HopInput<'a> {
    /// `host:port` of the callee.
    pub authority: &'a str,
    /// The `baggage` lines the caller sends.
    pub baggage: &'a [&'a str],
    /// The `tracestate` lines the caller sends.
    pub tracestate: &'a [&'a str],
}

/// Where a hop goes and why. Reused between hops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HopDecision {
    /// Fork, baseline or reject.
    pub route: Option<Route>,
    /// The decision reason (`fork`, `no_key`, ...).
    pub reason: String,
    /// The `:authority` sent upstream (rewritten for a fork).
    pub authority: String,
    /// The status of a local reply.
    pub status: u16,
}

impl HopDecision {
    fn set(&mut self, route: Route, reason: &str, authority: &str, status: u16) {
        self.route = Some(route);
        self.reason.clear();
        self.reason.push_str(reason);
        self.authority.clear();
        self.authority.push_str(authority);
        self.status = status;
    }
}

/// Decides hops.
pub trait Decider {
    /// Decides one hop into `out`. `Err` is a failed hop (a trap, a
    /// runaway call), described for the report.
    fn decide(&mut self, hop: &HopInput<'_>, out: &mut HopDecision) -> Result<(), String>;
    /// Switches to another plugin configuration.
    fn reconfigure(&mut self, config: &str) -> Result<(), String>;
}

/// The filter, in wasmtime.
pub struct WasmDecider {
    plugin: Plugin,
    options: HostOptions,
    vm: Vm,
    hop: Hop,
}

impl WasmDecider {
    /// A VM of `plugin` configured with `config`.
    pub fn new(plugin: &Plugin, config: &str) -> Result<WasmDecider, String> {
        let options = HostOptions {
            plugin_config: config.as_bytes().to_vec(),
            ..HostOptions::default()
        };
        let vm = plugin.vm(&options).map_err(|e| e.to_string())?;
        Ok(WasmDecider {
            plugin: plugin.clone(),
            options,
            vm,
            hop: Hop::default(),
        })
    }

    /// The VM, for metrics and allocation counts.
    pub fn vm(&mut self) -> &mut Vm {
        &mut self.vm
    }

    /// The request headers as the filter forwarded them (after `decide`).
    pub fn forwarded_headers(&self) -> &crate::host::HeaderMap {
        &self.hop.request_headers
    }

    fn failed(&mut self, e: HopError) -> String {
        let message = e.to_string();
        // A trap poisons the VM; start a fresh one so the replay goes on.
        match self.plugin.vm(&self.options) {
            Ok(vm) => self.vm = vm,
            Err(restart) => return format!("{message}; restarting the VM failed: {restart}"),
        }
        message
    }
}

impl Decider for WasmDecider {
    fn decide(&mut self, input: &HopInput<'_>, out: &mut HopDecision) -> Result<(), String> {
        let h = &mut self.hop;
        h.request_headers.clear();
        h.request_headers.add(":authority", input.authority);
        h.request_headers.add(":path", "/");
        h.request_headers.add(":method", "GET");
        h.request_headers.add(":scheme", "http");
        for b in input.baggage {
            h.request_headers.add("baggage", b);
        }
        for t in input.tracestate {
            h.request_headers.add("tracestate", t);
        }
        h.response_headers.clear();
        h.response_headers.add(":status", "200");
        let outcome = match self.vm.request(&mut self.hop) {
            Ok(o) => o,
            Err(e) => return Err(self.failed(e)),
        };
        let reason = outcome
            .properties
            .get("laneway")
            .map_or(Decision::NoKey.reason(), decision_of);
        if let Some(reply) = &outcome.local_response {
            let status = u16::try_from(reply.status).unwrap_or(0);
            out.set(Route::Reject, reason, input.authority, status);
            return Ok(());
        }
        let authority = self
            .hop
            .request_headers
            .get(":authority")
            .and_then(|a| std::str::from_utf8(a).ok())
            .unwrap_or("");
        let route = if authority == input.authority {
            Route::Baseline
        } else {
            Route::Fork
        };
        out.set(route, reason, authority, 200);
        Ok(())
    }

    fn reconfigure(&mut self, config: &str) -> Result<(), String> {
        self.options.plugin_config = config.as_bytes().to_vec();
        self.vm
            .reconfigure(config.as_bytes())
            .map_err(|e| e.to_string())
    }
}

/// The `decision=` field of the filter's logfmt filter state.
pub fn decision_of(state: &[u8]) -> &str {
    let text = std::str::from_utf8(state).unwrap_or("");
    text.split(' ')
        .find_map(|f| f.strip_prefix("decision="))
        .unwrap_or("missing-decision")
}

/// `laneway_core` itself.
pub struct NativeDecider {
    router: Router,
    buf: [u8; 512],
}

impl NativeDecider {
    /// A router for `config`.
    pub fn new(config: &str) -> Result<NativeDecider, String> {
        Ok(NativeDecider {
            router: Router::from_json(config).map_err(|e| e.to_string())?,
            buf: [0; 512],
        })
    }

    /// The router.
    pub fn router(&self) -> &Router {
        &self.router
    }
}

impl Decider for NativeDecider {
    fn decide(&mut self, input: &HopInput<'_>, out: &mut HopDecision) -> Result<(), String> {
        let verdict = self.router.decide(Request {
            authority: input.authority.as_bytes(),
            baggage: input.baggage.iter().map(|s| s.as_bytes()),
            tracestate: input.tracestate.iter().map(|s| s.as_bytes()),
        });
        let reason = verdict.decision.reason();
        match verdict.decision {
            Decision::Fork(id) => {
                let authority = self
                    .router
                    .fork_authority(id, input.authority.as_bytes(), &mut self.buf)
                    .and_then(|a| std::str::from_utf8(a).ok())
                    .unwrap_or("");
                out.set(Route::Fork, reason, authority, 200);
            }
            Decision::Rejected => out.set(
                Route::Reject,
                reason,
                input.authority,
                self.router.reject_status(),
            ),
            _ => out.set(Route::Baseline, reason, input.authority, 200),
        }
        Ok(())
    }

    fn reconfigure(&mut self, config: &str) -> Result<(), String> {
        self.router = Router::from_json(config).map_err(|e| e.to_string())?;
        Ok(())
    }
}
