//! `trap`: a proxy-wasm filter that traps on request, so the tests can
//! watch what Envoy does when a VM dies at run time (its `failure_policy`).
//! Laneway's own filter never traps; this module stands in for one that
//! does.
//!
//! A request with the header `x-trap` makes `proxy_on_request_headers`
//! execute `unreachable`, which kills the VM. Any other request gets
//! `x-trap-vm-requests: N`, the number of requests this VM instance has
//! seen, so a test can tell a reloaded VM (the count starts again at 1)
//! from the old one, and a request the filter never saw (no header).
//!
//! Invariant: it traps only when asked to, and only in
//! `proxy_on_request_headers`.

use std::sync::atomic::{AtomicU64, Ordering};

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

/// Requests this VM instance has seen; a new VM starts again at 0.
static SEEN: AtomicU64 = AtomicU64::new(0);

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Trap))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Trap;

impl Context for Trap {}

impl HttpContext for Trap {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let seen = SEEN.fetch_add(1, Ordering::Relaxed) + 1;
        if self.get_http_request_header("x-trap").is_some() {
            log::warn!("x-trap: trapping after {seen} requests");
            // The wasm `unreachable` instruction: a trap, not a panic
            // (native builds, for clippy, only abort).
            #[cfg(target_arch = "wasm32")]
            core::arch::wasm32::unreachable();
            #[cfg(not(target_arch = "wasm32"))]
            std::process::abort();
        }
        self.set_http_request_header("x-trap-vm-requests", Some(&seen.to_string()));
        Action::Continue
    }
}
