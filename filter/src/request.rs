//! The request path: `proxy_on_request_headers`.
//!
//! 1. Read `baggage`, then `tracestate`, by value. If neither exists, count
//!    `no_key` and continue at once: no allocation, nothing touched.
//! 2. Otherwise read the whole header map as pairs: Envoy returns only the
//!    first value of a repeated header, and every `baggage` and
//!    `tracestate` line must be read to find conflicts. `:authority` comes
//!    from the same buffer.
//! 3. Decide with [`laneway_core::Router::decide`], count the decision,
//!    record it as one filter-state entry (`wasm.laneway`, logfmt:
//!    `decision=fork key=K fork=HOST:PORT`), and act: rewrite `:authority` for a fork
//!    (ABI 0.2.1 makes Envoy clear the route cache, so the router picks the
//!    fork's virtual host), answer locally for a rejected key, or leave the
//!    request alone.
//!
//! Budget: at most two host-filled buffers per request (the header found in
//! step 1, freed at once, and the pairs), each one allocation forced by the
//! ABI; nothing else allocates. Any surprise (a host call failing, a broken
//! pairs buffer) sends the request to the baseline unchanged and bumps
//! `laneway.host_errors`. Never panics.

use laneway_core::decide::TraceStateStatus;
use laneway_core::pairs;
use laneway_core::{Decision, Request, Route, Router, Verdict};

use crate::abi;
use crate::plugin::{Metrics, with_context};

/// Longest key text written to filter state or a local reply.
const KEY_TEXT: usize = 256;

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_headers(
    context_id: u32,
    _headers: usize,
    _end_of_stream: u32,
) -> u32 {
    with_context(context_id, |router, metrics| {
        on_request_headers(router, metrics)
    })
    .unwrap_or(abi::CONTINUE)
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_response_headers(
    _context_id: u32,
    _headers: usize,
    _end_of_stream: u32,
) -> u32 {
    abi::CONTINUE
}

fn on_request_headers(router: Option<&Router>, metrics: &Metrics) -> u32 {
    let tagged = match has_header(b"baggage") {
        Ok(true) => Ok(true),
        Ok(false) => has_header(b"tracestate"),
        Err(e) => Err(e),
    };
    match tagged {
        Ok(true) => {}
        Ok(false) => {
            Metrics::bump(metrics.decisions[Decision::NoKey.index()], 1);
            return abi::CONTINUE;
        }
        Err(_) => return host_error(metrics),
    }
    let Some(router) = router else {
        // No good configuration: everything goes to the baseline.
        return abi::CONTINUE;
    };
    let Ok(buffer) = abi::request_header_pairs() else {
        return host_error(metrics);
    };
    let Some(headers) = pairs::pairs(buffer.as_slice()) else {
        return host_error(metrics);
    };
    let named = |name: &'static [u8]| {
        headers
            .clone()
            .filter(move |(k, _)| *k == name)
            .map(|(_, v)| v)
    };
    let authority = named(b":authority").next().unwrap_or_default();
    let verdict = router.decide(Request {
        authority,
        baggage: named(b"baggage"),
        tracestate: named(b"tracestate"),
    });
    count(metrics, &verdict);
    act(router, metrics, authority, &verdict)
}

fn has_header(name: &[u8]) -> Result<bool, abi::Status> {
    // The value is dropped (freed) at once; the pairs buffer has it too.
    abi::request_header(name).map(|v| v.is_some())
}

fn host_error(metrics: &Metrics) -> u32 {
    Metrics::bump(metrics.host_errors, 1);
    abi::CONTINUE
}

fn count(metrics: &Metrics, verdict: &Verdict<'_>) {
    Metrics::bump(metrics.decisions[verdict.decision.index()], 1);
    if verdict.baggage_invalid > 0 {
        Metrics::bump(
            metrics.baggage_invalid_members,
            i64::from(verdict.baggage_invalid),
        );
    }
    if verdict.baggage_dropped.is_some() {
        Metrics::bump(metrics.baggage_over_limit, 1);
    }
    if let TraceStateStatus::Discarded(_) = verdict.tracestate {
        Metrics::bump(metrics.tracestate_discarded, 1);
    }
}

fn act(router: &Router, metrics: &Metrics, authority: &[u8], verdict: &Verdict<'_>) -> u32 {
    let mut key_buf = [0u8; KEY_TEXT];
    let key = match verdict.key {
        Some(k) => {
            let (n, _) = k.value.write_decoded(&mut key_buf);
            &key_buf[..n]
        }
        None => &[][..],
    };
    let mut fork_buf = [0u8; 320];
    let fork = match verdict.decision {
        Decision::Fork(id) => match router.fork_authority(id, authority, &mut fork_buf) {
            Some(f) => Some(f),
            None => return host_error(metrics),
        },
        _ => None,
    };
    // One filter-state entry (one host call) per request that had a key or
    // a reason worth logging; `no_key` leaves it absent, as on the fast path.
    if verdict.decision != Decision::NoKey {
        let mut state = [0u8; STATE_BYTES];
        let n = filter_state(&mut state, verdict, key, fork);
        let _ = abi::set_property(b"laneway", &state[..n]);
    }
    match (verdict.decision.route(), fork) {
        (Route::Fork, Some(fork)) => {
            if abi::replace_request_header(b":authority", fork).is_err() {
                return host_error(metrics);
            }
            abi::CONTINUE
        }
        (Route::Reject, _) => reject(router, metrics, key),
        _ => abi::CONTINUE,
    }
}

/// Room for `decision=... key="..." fork=...` with every key byte escaped
/// (at most four bytes each, `\xHH`).
const STATE_BYTES: usize = 64 + 4 * KEY_TEXT + 320;

/// Writes the filter state as logfmt: `decision=fork key=K fork=HOST:PORT`.
/// The key is quoted (with `\"` and `\\` escaped, and control characters
/// written `\xHH`) unless it is only letters, digits and `-._~`, so a
/// crafted key (`%0A`, `%22`) can forge neither a field nor an access-log
/// line.
fn filter_state(out: &mut [u8], verdict: &Verdict<'_>, key: &[u8], fork: Option<&[u8]>) -> usize {
    let mut n = 0;
    let mut put = |b: &[u8]| {
        for &c in b {
            if n < out.len() {
                out[n] = c;
                n += 1;
            }
        }
    };
    put(b"decision=");
    put(verdict.decision.reason().as_bytes());
    if verdict.key.is_some() {
        put(b" key=");
        if !key.is_empty()
            && key
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(c))
        {
            put(key);
        } else {
            put(b"\"");
            for &c in key {
                if c == b'"' || c == b'\\' {
                    put(b"\\");
                    put(&[c]);
                } else if c < 0x20 || c == 0x7f {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    put(&[
                        b'\\',
                        b'x',
                        HEX[usize::from(c >> 4)],
                        HEX[usize::from(c & 15)],
                    ]);
                } else {
                    put(&[c]);
                }
            }
            put(b"\"");
        }
    }
    if let Some(f) = fork {
        put(b" fork=");
        put(f);
    }
    n
}

fn reject(router: &Router, metrics: &Metrics, key: &[u8]) -> u32 {
    let mut body = [0u8; KEY_TEXT + 64];
    let mut n = 0;
    for part in [&b"routing key "[..], key, b" has no sandbox\n"] {
        body[n..n + part.len()].copy_from_slice(part);
        n += part.len();
    }
    let mut headers = [0u8; 128];
    let Some(h) = pairs::encode(
        [
            (&b"content-type"[..], &b"text/plain"[..]),
            (b"x-laneway-decision", b"rejected"),
        ],
        &mut headers,
    ) else {
        return host_error(metrics);
    };
    let status = u32::from(router.reject_status());
    match abi::send_local_response(
        status,
        b"laneway_unknown_routing_key",
        &body[..n],
        &headers[..h],
    ) {
        Ok(()) => abi::PAUSE,
        Err(_) => host_error(metrics),
    }
}
