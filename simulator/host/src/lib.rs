//! `proxy-wasm-host`: a proxy-wasm ABI 0.2.x host on wasmtime that runs a
//! filter module the way Envoy runs it, so any proxy-wasm filter can be
//! tested, replayed and measured without a proxy.
//!
//! The steps, as in wasmtime's embedding examples:
//!
//! ```no_run
//! use proxy_wasm_host::{Hop, HostOptions, Plugin};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Engine, module, linker with the host functions, pre-instantiation:
//! let plugin = Plugin::load("filter.wasm".as_ref())?;
//! // A store with the host's state; start and configure the first root:
//! let options = HostOptions {
//!     plugin_config: br#"{"version":1,"sandboxes":[]}"#.to_vec(),
//!     ..HostOptions::default()
//! };
//! let mut vm = plugin.vm(&options)?; // one per thread
//! // One exchange through the filter, every callback in Envoy's order:
//! let mut hop = Hop::default(); // reused for every request
//! hop.request_headers.add(":authority", "location:8083");
//! let outcome = vm.request(&mut hop)?;
//! println!("forwarded: {}, {:?}", outcome.forwarded, hop.request_headers.get(":authority"));
//! // Or one callback at a time:
//! let root = vm.roots()[0];
//! let mut stream = vm.stream(root, &mut hop)?;
//! stream.request_headers(false)?;
//! stream.request_body(true)?;
//! stream.response_headers(true)?;
//! stream.done()?;
//! # Ok(()) }
//! ```
//!
//! The API:
//! - [`Compiled`] (`load`, `new`, `engine`, `module`, `plugin`) and
//!   [`add_to_linker`]: for embedders whose store data holds the host's
//!   [`ProxyState`] beside their own (`|t| &mut t.proxy`), and who add host
//!   functions of their own to the same `Linker`.
//! - [`Plugin`] (`load`, `load_with`, `from_bytes`, `vm`, `vm_with`,
//!   `shared_data`, `set_shared_data`): a linked module, pre-instantiated;
//!   cheap to clone. Shared data and queues live here, shared by its VMs.
//! - [`Vm`] (`request`, `request_on`, `stream`, `add_root`, `roots`,
//!   `reconfigure`, `advance_clock`, `dispatch_queues`, `metrics`,
//!   `metric`, `take_logs`, `take_callouts`, `guest_allocations`,
//!   `host_allocations`, `memory_bytes`, `now_ns`, `poisoned`, `data`):
//!   one instance, any number of root contexts; state in the store.
//! - [`Stream`]: one HTTP stream, its parts delivered one at a time; its
//!   progress is a [`StreamState`] of two [`HalfState`]s.
//! - [`Hop`] in, [`Outcome`] out (lent by the VM, reused per request).
//! - [`HeaderMap`]: Envoy's header-map rules; [`Properties`]: exact paths.
//! - [`HostOptions`], [`RootOptions`], [`LoadOptions`]; [`HostError`],
//!   [`HopError`].
//!
//! What is implemented, and how faithfully, is documented where it lives:
//! the lifecycle in [`vm`], every `env.proxy_*` function in `proxy` (gRPC
//! answers `Unimplemented`, as does any unknown `proxy_*` import, see
//! [`linker`]), properties in `properties`, visibility per callback in
//! [`state`], metrics in `metrics`, shared data and queues in `shared`,
//! WASI in `wasi`.
//!
//! Invariant: no guest input makes the host panic. Guest mistakes are
//! status codes; traps, `proc_exit` and runaway calls are [`HopError`]s
//! that name the callback, after which the VM is poisoned.

mod error;
mod guest;
mod hop;
pub mod linker;
mod maps;
mod metrics;
mod options;
mod plugin;
mod properties;
mod proxy;
mod shared;
pub mod state;
pub mod vm;
mod wasi;

pub use error::{HopError, HostError};
pub use guest::Get;
pub use hop::{
    Action, Callout, Hop, HttpCallReply, LocalResponse, LogLine, Outcome, Protocol, StreamCall,
};
pub use linker::add_to_linker;
pub use maps::{HeaderMap, Iter, Properties};
pub use metrics::{Histogram, Metric};
pub use options::{EPOCH_TICK, HostOptions, Interruption, Limits, LoadOptions, RootOptions};
pub use plugin::{Compiled, Plugin};
pub use proxy_wasm_abi::{LogLevel, MetricKind, Status, StreamType};
pub use state::{HalfState, Part, ProxyState, StreamState};
pub use vm::{RootId, Stream, Vm};
