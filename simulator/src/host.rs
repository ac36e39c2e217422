//! Placeholder: the wasmtime proxy-wasm host is being written.
