//! Laneway's proxy-wasm HTTP filter: a thin adapter from proxy-wasm ABI
//! 0.2.1 to [`laneway_core::Router::decide`].
//!
//! - [`abi`] wraps the host functions, declared once in `proxy-wasm-abi`
//!   (the crate the simulator's host shares), in safe calls that turn every
//!   failure into a `Status`.
//! - [`plugin`] holds each root context's compiled configuration and metric
//!   ids; `on_configure` builds it, refusing a bad configuration with the
//!   reason in the proxy's log and keeping the last good one.
//! - [`request`] is the request path: read the headers, decide, act.
//! - [`counting`] counts guest heap allocations, exported for the host's
//!   allocation-budget tests (`filter/tests/budget.rs`).
//!
//! Why the raw ABI and not the proxy-wasm SDK: the SDK boxes a context and
//! inserts it into a map on every request, and copies every header it
//! reads into a `String`; the raw ABI lets the request path allocate only
//! the buffers the host itself must fill (BENCHMARKS.md measures both).
//!
//! Invariant: nothing here panics or traps on any input. Any surprise sends
//! the request to the baseline, unchanged, and bumps a counter.

mod abi;
mod counting;
mod plugin;
mod request;

/// Declares proxy-wasm ABI 0.2.1. Envoy reads the version from this export;
/// under 0.2.1 it clears the route cache when a filter changes request
/// headers, so a rewritten `:authority` selects the fork's virtual host.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_abi_version_0_2_1() {}

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
