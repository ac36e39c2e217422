//! The Laneway simulator: a proxy-wasm host on wasmtime ([`host`]) and a
//! launcher for real Envoy processes ([`envoy`]).

pub mod envoy;
pub mod host;
