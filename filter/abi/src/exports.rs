//! The callbacks a proxy-wasm module may export, with the types ABI 0.2.1
//! gives them, so a host can check a module's exports before it calls one.
//! `_initialize`, `main` and `_start` are WASI's entry points;
//! `proxy_on_memory_allocate` and `malloc` are the allocators a host copies
//! data in through.

/// A wasm value type, as the ABI uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValKind {
    /// `i32` (also pointers, lengths and booleans on wasm32).
    I32,
    /// `i64`.
    I64,
}

/// One export: its name, parameter types and result types.
#[derive(Clone, Copy, Debug)]
pub struct Callback {
    /// The export name.
    pub name: &'static str,
    /// Parameter types.
    pub params: &'static [ValKind],
    /// Result types.
    pub results: &'static [ValKind],
}

const fn cb(
    name: &'static str,
    params: &'static [ValKind],
    results: &'static [ValKind],
) -> Callback {
    Callback {
        name,
        params,
        results,
    }
}

use ValKind::I32;

/// Every export a host may call, with its type.
pub const CALLBACKS: &[Callback] = &[
    cb("_initialize", &[], &[]),
    cb("main", &[I32, I32], &[I32]),
    cb("_start", &[], &[]),
    cb("malloc", &[I32], &[I32]),
    cb("proxy_on_memory_allocate", &[I32], &[I32]),
    cb("proxy_on_context_create", &[I32, I32], &[]),
    cb("proxy_on_vm_start", &[I32, I32], &[I32]),
    cb("proxy_on_configure", &[I32, I32], &[I32]),
    cb("proxy_on_tick", &[I32], &[]),
    cb("proxy_on_queue_ready", &[I32, I32], &[]),
    cb("proxy_on_new_connection", &[I32], &[I32]),
    cb("proxy_on_downstream_data", &[I32, I32, I32], &[I32]),
    cb("proxy_on_upstream_data", &[I32, I32, I32], &[I32]),
    cb("proxy_on_downstream_connection_close", &[I32, I32], &[]),
    cb("proxy_on_upstream_connection_close", &[I32, I32], &[]),
    cb("proxy_on_request_headers", &[I32, I32, I32], &[I32]),
    cb("proxy_on_request_body", &[I32, I32, I32], &[I32]),
    cb("proxy_on_request_trailers", &[I32, I32], &[I32]),
    cb("proxy_on_response_headers", &[I32, I32, I32], &[I32]),
    cb("proxy_on_response_body", &[I32, I32, I32], &[I32]),
    cb("proxy_on_response_trailers", &[I32, I32], &[I32]),
    cb(
        "proxy_on_http_call_response",
        &[I32, I32, I32, I32, I32],
        &[],
    ),
    cb(
        "proxy_on_grpc_receive_initial_metadata",
        &[I32, I32, I32],
        &[],
    ),
    cb("proxy_on_grpc_receive", &[I32, I32, I32], &[]),
    cb(
        "proxy_on_grpc_receive_trailing_metadata",
        &[I32, I32, I32],
        &[],
    ),
    cb("proxy_on_grpc_close", &[I32, I32, I32], &[]),
    cb("proxy_on_foreign_function", &[I32, I32, I32], &[]),
    cb("proxy_on_done", &[I32], &[I32]),
    cb("proxy_on_log", &[I32], &[]),
    cb("proxy_on_delete", &[I32], &[]),
];

/// The type of export `name`, if the ABI defines it.
pub fn callback(name: &str) -> Option<&'static Callback> {
    CALLBACKS.iter().find(|c| c.name == name)
}

/// The exports that declare a module's ABI version; a 0.2.x host accepts
/// either.
pub const ABI_VERSIONS: [&str; 2] = ["proxy_abi_version_0_2_1", "proxy_abi_version_0_2_0"];
