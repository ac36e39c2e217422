//! An empty proxy-wasm filter (ABI 0.2.1): every callback continues at once.
//!
//! It is the floor the in-Envoy benchmarks compare Laneway against: the
//! cost of having *a* wasm filter in the chain at all. It imports nothing
//! and allocates only when the host asks it to.

#![allow(clippy::missing_safety_doc)]

#[unsafe(no_mangle)]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buf = Vec::<u8>::with_capacity(size);
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_context_create(_context_id: u32, _parent_context_id: u32) {}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_vm_start(_root_context_id: u32, _vm_configuration_size: usize) -> u32 {
    1
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_configure(
    _root_context_id: u32,
    _plugin_configuration_size: usize,
) -> u32 {
    1
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_headers(
    _context_id: u32,
    _headers: usize,
    _end_of_stream: u32,
) -> u32 {
    0
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_response_headers(
    _context_id: u32,
    _headers: usize,
    _end_of_stream: u32,
) -> u32 {
    0
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_done(_context_id: u32) -> u32 {
    1
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_log(_context_id: u32) {}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_delete(_context_id: u32) {}

/// The WASI reactor entry point: runs static constructors once, when the
/// VM starts (Envoy and the simulator's host call it before anything
/// else). Exporting it also stops the linker from wrapping every other
/// export in constructor and destructor calls, which would cost each
/// callback of every request.
#[cfg(target_arch = "wasm32")]
#[unsafe(export_name = "_initialize")]
pub extern "C" fn initialize() {
    unsafe extern "C" {
        fn __wasm_call_ctors();
    }
    // SAFETY: the reactor ABI calls `_initialize` once, before any other
    // export, which is exactly when constructors must run.
    unsafe { __wasm_call_ctors() }
}
