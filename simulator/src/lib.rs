//! The Laneway simulator: a proxy-wasm host on wasmtime ([`host`]), a
//! launcher for real Envoy processes ([`envoy`]), and the pieces of the
//! `laneway` CLI ([`inspect`], [`demo`]).

pub mod demo;
pub mod envoy;
pub mod host;
pub mod inspect;
