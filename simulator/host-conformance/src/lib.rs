//! The conformance suite of `proxy-wasm-host` lives in `tests/`: it runs
//! the host against modules it did not write, the SDK-built `stamp` module
//! and hand-written WAT, and checks each behaviour against Envoy's
//! (`Context` in `source/extensions/common/wasm/context.cc`) and
//! proxy-wasm-cpp-host's (`src/exports.cc`).
//!
//! This library is the kit those tests share, and that any filter's own
//! tests can use (Laneway's do): WAT scaffolding, and proptest strategies
//! for arbitrary header maps with a check that the host kept a map
//! well-formed.

use std::sync::{Mutex, MutexGuard, OnceLock};

use proptest::prelude::*;
use proxy_wasm_host::{HeaderMap, Hop, LogLine, Vm};

/// A module with a memory, the ABI marker and a bump allocator, plus
/// `imports` and `body`.
pub fn module(imports: &str, body: &str) -> String {
    format!(
        r#"(module
  {imports}
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get $n)))
    (local.get $p))
  {body})"#
    )
}

/// `bytes` as a WAT string literal.
pub fn wat_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// Header names a filter cares about, mixed with arbitrary bytes;
/// `interesting` are added to the usual ones.
pub fn header_name(interesting: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let named: Vec<Vec<u8>> = [":authority", ":path", "content-type"]
        .iter()
        .chain(interesting)
        .map(|n| n.as_bytes().to_vec())
        .collect();
    prop_oneof![
        proptest::sample::select(named),
        proptest::collection::vec(any::<u8>(), 0..12),
    ]
}

/// Up to 12 header lines with names from [`header_name`] and arbitrary
/// values.
pub fn headers(
    interesting: &'static [&'static str],
) -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    proptest::collection::vec(
        (
            header_name(interesting),
            proptest::collection::vec(any::<u8>(), 0..64),
        ),
        0..12,
    )
}

/// A request to `location:8083` with `list` added, and a 200 response.
pub fn arbitrary_hop(list: &[(Vec<u8>, Vec<u8>)]) -> Hop {
    let mut hop = Hop::default();
    hop.request_headers.add(":authority", "location:8083");
    for (k, v) in list {
        hop.request_headers.add(k, v);
    }
    hop.response_headers.add(":status", "200");
    hop
}

/// Envoy's invariants of a header map: names lowercase, pseudo-headers
/// before regular ones.
pub fn well_formed(map: &HeaderMap) -> Result<(), String> {
    let mut seen_regular = false;
    for (k, _) in map.iter() {
        if k.iter().any(u8::is_ascii_uppercase) {
            return Err(format!(
                "name not lowercase: {:?}",
                String::from_utf8_lossy(k)
            ));
        }
        let pseudo = k.first() == Some(&b':');
        if pseudo && seen_regular {
            return Err("pseudo-header after a regular header".into());
        }
        seen_regular |= !pseudo;
    }
    Ok(())
}

/// One VM per proptest, started on first use and shared by its cases.
pub fn shared_vm(slot: &'static OnceLock<Mutex<Vm>>, make: fn() -> Vm) -> MutexGuard<'static, Vm> {
    slot.get_or_init(|| Mutex::new(make()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// A GET of `path` from `authority` (with `x-request-id`), answered 200
/// with a JSON content type.
pub fn request(authority: &str, path: &str) -> Hop {
    let mut hop = Hop::default();
    let h = &mut hop.request_headers;
    h.add(":authority", authority);
    h.add(":path", path);
    h.add(":method", "GET");
    h.add(":scheme", "http");
    h.add("x-request-id", "req-1");
    hop.response_headers.add(":status", "200");
    hop.response_headers.add("content-type", "application/json");
    hop
}

/// A header value as text (panics on non-UTF-8: for tests).
pub fn text(v: Option<&[u8]>) -> Option<&str> {
    v.map(|v| std::str::from_utf8(v).expect("utf-8"))
}

/// Whether any line contains `needle`.
pub fn logged(lines: &[LogLine], needle: &str) -> bool {
    lines.iter().any(|l| l.message.contains(needle))
}
