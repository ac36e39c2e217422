//! A proxy-wasm ABI 0.2.1 host on wasmtime that runs a filter module the way
//! Envoy runs it, so the simulator can replay requests through the very
//! `.wasm` a mesh would load.
//!
//! ```no_run
//! use laneway_sim::host::{HeaderMap, Hop, HostOptions, Plugin};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plugin = Plugin::load("laneway_filter.wasm".as_ref())?; // compile + link once
//! let options = HostOptions {
//!     plugin_config: br#"{"version":1,"sandboxes":[]}"#.to_vec(),
//!     ..HostOptions::default()
//! };
//! let mut vm = plugin.vm(&options)?; // one per thread: start + configure
//! let mut hop = Hop::default(); // reused for every request
//! hop.request_headers.add(":authority", "location:8083");
//! let outcome = vm.request(&mut hop)?; // the whole per-request lifecycle
//! println!("forwarded: {}, {:?}", outcome.forwarded, hop.request_headers.get(":authority"));
//! # Ok(()) }
//! ```
//!
//! The API:
//! - [`Plugin`] (`load`, `load_with`, `from_bytes`, `vm`, `shared_data`): a
//!   compiled module with its one `Linker`, pre-instantiated; cheap to
//!   clone, `Send + Sync`. Shared data and queues live here, shared by its
//!   VMs.
//! - [`Vm`] (`request`, `reconfigure`, `advance_clock`, `dispatch_queues`,
//!   `metrics`, `metric`, `take_logs`, `take_callouts`, `guest_allocations`,
//!   `host_allocations`, `memory_bytes`, `now_ns`, `poisoned`): one
//!   instance; state in `Store<HostState>`; `Send`, single-threaded.
//! - [`Hop`] in, [`Outcome`] out (lent by the VM, reused per request).
//! - [`HeaderMap`]: Envoy's header-map rules; [`Properties`]: exact paths.
//! - [`HostOptions`], [`LoadOptions`]; [`HostError`], [`HopError`].
//!
//! What is implemented, and how faithfully, is documented where it lives:
//! the lifecycle in [`vm`], every `env.proxy_*` function in [`proxy`] (gRPC
//! answers `Unimplemented`, as does any unknown `proxy_*` import, see
//! [`linker`]), properties in [`properties`], header visibility per
//! callback in [`state`], metrics in [`metrics`], shared data and queues in
//! [`shared`], WASI in [`wasi`].
//!
//! Invariant: no guest input makes the host panic. Guest mistakes are
//! status codes; traps, `proc_exit` and runaway calls are [`HopError`]s
//! that name the callback, after which the VM is poisoned.

mod abi;
mod error;
mod guest;
mod hop;
mod linker;
mod maps;
mod metrics;
mod options;
mod plugin;
mod properties;
mod proxy;
mod shared;
mod state;
mod vm;
mod wasi;

pub use abi::{LogLevel, MetricKind, Status, StreamType};
pub use error::{HopError, HostError};
pub use hop::{
    Action, Callout, Hop, HttpCallReply, LocalResponse, LogLine, Outcome, Protocol, StreamCall,
};
pub use maps::{HeaderMap, Iter, Properties};
pub use metrics::{Histogram, Metric};
pub use options::{EPOCH_TICK, HostOptions, Interruption, LoadOptions};
pub use plugin::Plugin;
pub use vm::Vm;
