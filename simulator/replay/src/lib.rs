//! `laneway-replay`: replay a scenario's requests through a backend and
//! judge what happened. Record, then judge:
//!
//! - a [`Backend`] runs one request and records its [`Trace`]: the tree of
//!   hops, each with its parent, caller, service, the decision's
//!   [`Reason`](laneway_core::Reason), the route, the `:authority` sent,
//!   who served it, and the context that came in and went out;
//! - the [`checks`] judge any trace and know nothing about backends: leak,
//!   cross-talk, miss (with its cause), failed hops, expectations, and the
//!   counts behind paths and blast radius, into a [`Summary`];
//! - the differential check is a hop-by-hop comparison of two traces of the
//!   same request, one per backend ([`checks::compare`]).
//!
//! Backends here: [`wasm`] (the filter's `.wasm` in `proxy-wasm-host`) and
//! [`native`] (`laneway-core`), both walks of the scenario's call graph by
//! the in-process [`mesh`]. The [`engine`] spreads requests over threads.
//! Reports (text, JSON, JUnit, explain, OTLP) are `laneway-report`'s.
//!
//! Invariant: memory stays flat however many requests run; no input makes
//! the engine panic.

pub mod backend;
pub mod checks;
pub mod engine;
pub mod mesh;
pub mod names;
pub mod native;
pub mod summary;
pub mod trace;
pub mod wasm;

pub use backend::{Backend, BackendFactory, Plan, StartError};
pub use engine::{
    Explained, FailureFn, Options, ProgressFn, ReplayError, Replayed, TraceFn, explain, replay,
};
pub use native::NativeFactory;
pub use summary::{EXAMPLES, Finding, PathHop, Summary};
pub use trace::{Caller, Context, Hop, HopId, Served, Trace};
pub use wasm::WasmFactory;
