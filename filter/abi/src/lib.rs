//! proxy-wasm ABI 0.2.1, written once for both sides of the boundary: the
//! guest (Laneway's filter) and the host (the simulator's wasmtime host).
//!
//! - The numbers: [`Status`] (`WasmResult`), [`LogLevel`], [`MapType`],
//!   [`BufferType`], [`StreamType`], [`MetricKind`], [`PeerType`], and the
//!   values a headers or data callback returns ([`Action`]). Names and
//!   values follow the spec (`proxy-wasm/spec`, `abi-versions/v0.2.1`) and
//!   proxy-wasm-cpp-host.
//! - The host functions a module imports from `env`: one list,
//!   [`for_each_host_function!`], from which a guest declares its imports
//!   ([`declare_host_functions!`]) and a host builds its linker, so the two
//!   cannot disagree on a name or a signature.
//! - The callbacks a module exports ([`CALLBACKS`]), with their types.
//! - The header-pairs serialization ([`pairs`]).
//!
//! Invariants: `no_std`, no allocation, no `unsafe`; decoding a number from
//! the other side never panics: an unknown value decodes to `None`.

#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod exports;
mod imports;
mod numbers;
pub mod pairs;

pub use exports::{ABI_VERSIONS, CALLBACKS, Callback, ValKind, callback};
pub use numbers::{
    Action, BufferType, LogLevel, MapType, MetricKind, PeerType, Status, StreamType, errno,
};
