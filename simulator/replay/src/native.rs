//! The native backend: `laneway-core`'s [`Router::guard`] itself, in the
//! same in-process [`Mesh`]. It is the reference the wasm backend's traces
//! are compared with (the differential check): the same scenario, the same
//! walk, only the sidecar differs.
//!
//! The host facts come from the call (the caller's address, the scenario's
//! clock) and from a shared-data store of this sidecar's own, as one
//! Envoy's workers share one; the header edits are made on copies of the
//! call's lines through the core's one [`Outcome::apply`].

use std::collections::HashMap;

use laneway_core::authority::MAX_FORK_AUTHORITY;
use laneway_core::cidr::{self, Ip};
use laneway_core::guard::{BUCKET_BYTES, Facts, HeaderSink, Outcome};
use laneway_core::{Decision, Request, Route, Router};
use laneway_scenario::Scenario;

use crate::backend::{Backend, BackendFactory, StartError};
use crate::mesh::{Call, Decided, Mesh, Sidecar};

/// The core as a sidecar: the mesh's router, and the gateway's when the
/// scenario gives it its own configuration.
pub struct NativeSidecar {
    router: Router,
    gateway: Option<Router>,
    shared: HashMap<Vec<u8>, (Vec<u8>, u32)>,
    last_cas: u32,
    buf: [u8; MAX_FORK_AUTHORITY],
    headers: Lines,
}

#[derive(Default)]
struct Lines {
    baggage: Vec<Vec<u8>>,
    tracestate: Vec<Vec<u8>>,
    path: Vec<u8>,
    authority: Vec<u8>,
}

impl HeaderSink for Lines {
    type Error = ();

    fn remove(&mut self, name: &[u8]) -> Result<(), ()> {
        match name {
            b"baggage" => self.baggage.clear(),
            b"tracestate" => self.tracestate.clear(),
            _ => {}
        }
        Ok(())
    }

    fn add(&mut self, name: &[u8], value: &[u8]) -> Result<(), ()> {
        match name {
            b"baggage" => self.baggage.push(value.to_vec()),
            b"tracestate" => self.tracestate.push(value.to_vec()),
            _ => {}
        }
        Ok(())
    }

    fn replace(&mut self, name: &[u8], value: &[u8]) -> Result<(), ()> {
        match name {
            b":path" => value.clone_into(&mut self.path),
            b":authority" => value.clone_into(&mut self.authority),
            _ => {}
        }
        Ok(())
    }
}

struct CallFacts<'a> {
    source: &'a str,
    now_ns: u64,
    shared: &'a mut HashMap<Vec<u8>, (Vec<u8>, u32)>,
    last_cas: &'a mut u32,
}

impl Facts for CallFacts<'_> {
    fn source(&mut self) -> Option<Ip> {
        cidr::parse_source(self.source.as_bytes())
    }

    fn now_ns(&mut self) -> Option<u64> {
        Some(self.now_ns)
    }

    fn shared_get(&mut self, key: &[u8], out: &mut [u8; BUCKET_BYTES]) -> Result<Option<u32>, ()> {
        Ok(self.shared.get(key).and_then(|(v, cas)| {
            let v: &[u8; BUCKET_BYTES] = v.as_slice().try_into().ok()?;
            *out = *v;
            Some(*cas)
        }))
    }

    fn shared_set(&mut self, key: &[u8], value: &[u8], cas: u32) -> Result<bool, ()> {
        // proxy-wasm-cpp-host's semantics, as the wasmtime host has them.
        if let Some((_, current)) = self.shared.get(key)
            && cas != 0
            && cas != *current
        {
            return Ok(false);
        }
        *self.last_cas = self.last_cas.wrapping_add(1).max(1);
        self.shared
            .insert(key.to_vec(), (value.to_vec(), *self.last_cas));
        Ok(true)
    }
}

fn router(config: &str) -> Result<Router, StartError> {
    Router::from_json(config).map_err(|e| StartError(format!("invalid plugin configuration: {e}")))
}

impl NativeSidecar {
    /// A router for `config` (every filter).
    pub fn new(config: &str) -> Result<NativeSidecar, StartError> {
        Ok(NativeSidecar {
            router: router(config)?,
            gateway: None,
            shared: HashMap::new(),
            last_cas: 0,
            buf: [0; MAX_FORK_AUTHORITY],
            headers: Lines::default(),
        })
    }

    /// The routers of `scenario`: the mesh's, and its gateway's.
    pub fn for_scenario(scenario: &Scenario) -> Result<NativeSidecar, StartError> {
        let mut s = NativeSidecar::new(&scenario.config)?;
        s.gateway = scenario.gateway_config.as_deref().map(router).transpose()?;
        Ok(s)
    }
}

impl Sidecar for NativeSidecar {
    fn configure(&mut self, config: &str) -> Result<(), String> {
        self.router = Router::from_json(config).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn decide(&mut self, call: &Call<'_>, out: &mut Decided) -> Result<(), String> {
        let router = match (&self.gateway, call.entry) {
            (Some(g), true) => g,
            _ => &self.router,
        };
        let authority = call.authority.as_bytes();
        let baggage = call.baggage.iter().map(Vec::as_slice);
        let tracestate = call.tracestate.iter().map(Vec::as_slice);
        let mut facts = CallFacts {
            source: call.source,
            now_ns: call.now_ns,
            shared: &mut self.shared,
            last_cas: &mut self.last_cas,
        };
        let outcome: Outcome<'_> = router.guard(
            Request {
                authority,
                baggage: baggage.clone(),
                tracestate: tracestate.clone(),
            },
            call.path.as_bytes(),
            &mut facts,
        );
        let h = &mut self.headers;
        h.baggage.clear();
        h.baggage.extend(call.baggage.iter().cloned());
        h.tracestate.clear();
        h.tracestate.extend(call.tracestate.iter().cloned());
        let _ = outcome.apply(
            router,
            call.path.as_bytes(),
            baggage,
            tracestate,
            b"tracestate",
            h,
        );
        let reason = Some(outcome.verdict.decision.reason());
        let decided_for = match outcome.edits.preview_host {
            Some(i) => router.preview_service(i),
            None => authority,
        };
        match outcome.verdict.decision {
            Decision::Fork(id) => {
                let to = router
                    .fork_authority(id, decided_for, &mut self.buf)
                    .unwrap_or_default();
                out.set(Route::Fork, reason, to, 200);
            }
            d if d.route() == Route::Reject => {
                out.set(Route::Reject, reason, authority, outcome.status(router));
            }
            _ => out.set(Route::Baseline, reason, decided_for, 200),
        }
        if out.route != Route::Reject {
            out.forward(
                call,
                self.headers.baggage.iter().map(Vec::as_slice),
                self.headers.tracestate.iter().map(Vec::as_slice),
            );
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
        Ok(Box::new(Mesh::new(NativeSidecar::for_scenario(scenario)?)))
    }
}
