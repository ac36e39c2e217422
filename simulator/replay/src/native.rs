//! The native backend: `laneway-core`'s [`Router::decide`] itself, in the
//! same in-process [`Mesh`]. It is the reference the wasm backend's traces
//! are compared with (the differential check): the same scenario, the same
//! walk, only the sidecar differs.

use laneway_core::authority::MAX_FORK_AUTHORITY;
use laneway_core::{Decision, Request, Route, Router};
use laneway_scenario::Scenario;

use crate::backend::{Backend, BackendFactory, StartError};
use crate::mesh::{Call, Decided, Mesh, Sidecar};

/// The core as a sidecar.
pub struct NativeSidecar {
    router: Router,
    buf: [u8; MAX_FORK_AUTHORITY],
}

impl NativeSidecar {
    /// A router for `config`.
    pub fn new(config: &str) -> Result<NativeSidecar, StartError> {
        Ok(NativeSidecar {
            router: Router::from_json(config)
                .map_err(|e| StartError(format!("invalid plugin configuration: {e}")))?,
            buf: [0; MAX_FORK_AUTHORITY],
        })
    }
}

impl Sidecar for NativeSidecar {
    fn configure(&mut self, config: &str) -> Result<(), String> {
        self.router = Router::from_json(config).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn decide(&mut self, call: &Call<'_>, out: &mut Decided) -> Result<(), String> {
        let authority = call.authority.as_bytes();
        let verdict = self.router.decide(Request {
            authority,
            baggage: call.baggage.iter().map(|s| s.as_bytes()),
            tracestate: call.tracestate.iter().map(|s| s.as_bytes()),
        });
        let reason = Some(verdict.decision.reason());
        match verdict.decision {
            Decision::Fork(id) => {
                let to = self
                    .router
                    .fork_authority(id, authority, &mut self.buf)
                    .unwrap_or_default();
                out.set(Route::Fork, reason, to, 200);
            }
            Decision::Rejected => out.set(
                Route::Reject,
                reason,
                authority,
                self.router.reject_status(),
            ),
            _ => out.set(Route::Baseline, reason, authority, 200),
        }
        Ok(())
    }
}

/// Starts a [`NativeSidecar`] mesh per worker.
pub struct NativeFactory;

impl BackendFactory for NativeFactory {
    fn name(&self) -> &str {
        "laneway-core"
    }

    fn start<'s>(&'s self, scenario: &'s Scenario) -> Result<Box<dyn Backend + 's>, StartError> {
        Ok(Box::new(Mesh::new(NativeSidecar::new(&scenario.config)?)))
    }
}
