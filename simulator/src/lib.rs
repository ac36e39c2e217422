//! The Laneway simulator and the `laneway` CLI's pieces.
//!
//! - [`host`]: a proxy-wasm ABI 0.2.1 host on wasmtime that runs the same
//!   `laneway_filter.wasm` Envoy loads.
//! - [`scenario`], [`replay`], [`report`]: scenario files, their replay
//!   through the filter, and the report (text, JSON, JUnit).
//! - [`envoy`]: real Envoy processes on loopback (tests, demos, benchmarks).
//! - [`inspect`], [`demo`]: `laneway inspect` and `laneway demo-envoy`.

pub mod demo;
pub mod envoy;
pub mod host;
pub mod inspect;
pub mod replay;
pub mod report;
pub mod scenario;
