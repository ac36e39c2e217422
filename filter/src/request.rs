//! The request path: `proxy_on_request_headers`.
//!
//! 1. Read `baggage`, then `tracestate`, by value. If neither exists, count
//!    `no_key` and continue at once: no allocation, nothing touched.
//! 2. Otherwise read the whole header map as pairs: Envoy returns only the
//!    first value of a repeated header, and every `baggage` and
//!    `tracestate` line must be read to find conflicts. `:authority` comes
//!    from the same buffer.
//! 3. Decide with [`laneway_core::Router::decide`], then act: rewrite
//!    `:authority` for a fork
//!    (ABI 0.2.1 makes Envoy clear the route cache, so the router picks the
//!    fork's virtual host), answer locally for a rejected key, or leave the
//!    request alone. Only then count the decision and record it as one
//!    filter-state entry (`wasm.laneway`, written by
//!    [`laneway_core::filter_state`]: `decision=fork key=K fork=HOST:PORT`),
//!    so the counters and the log say what was done, not what was meant.
//!
//! Budget: at most two host-filled buffers per request (the header found in
//! step 1, freed at once, and the pairs), each one allocation forced by the
//! ABI; nothing else allocates. Any surprise (a host call failing, a broken
//! pairs buffer) sends the request to the baseline unchanged and bumps
//! `laneway.host_errors` (and no decision counter); a filter-state entry
//! the host refuses bumps it too. Never panics.

use laneway_core::authority::MAX_FORK_AUTHORITY;
use laneway_core::decide::TraceStateStatus;
use laneway_core::filter_state::{self, MAX_ENTRY, MAX_KEY_TEXT};
use laneway_core::{Decision, Reason, Request, Route, Router, Verdict};
use proxy_wasm_abi::pairs;

use crate::abi;
use crate::plugin::{Metrics, with_context};

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_headers(
    context_id: u32,
    _headers: usize,
    _end_of_stream: u32,
) -> u32 {
    with_context(context_id, |router, metrics| {
        on_request_headers(router, metrics)
    })
    .unwrap_or(CONTINUE)
}

const CONTINUE: u32 = abi::Action::Continue as u32;
const PAUSE: u32 = abi::Action::Pause as u32;

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_response_headers(
    _context_id: u32,
    _headers: usize,
    _end_of_stream: u32,
) -> u32 {
    CONTINUE
}

/// The header the router reads as `tracestate`. The feature
/// `ignore-tracestate` is a deliberately wrong build for tests: it reads
/// a header nobody sends, so tracestate-only requests miss their forks,
/// and every backend must report the same misses.
const TRACESTATE: &[u8] = if cfg!(feature = "ignore-tracestate") {
    b"x-laneway-ignored-tracestate"
} else {
    b"tracestate"
};

fn on_request_headers(router: Option<&Router>, metrics: &Metrics) -> u32 {
    let tagged = match has_header(b"baggage") {
        Ok(true) => Ok(true),
        Ok(false) => has_header(TRACESTATE),
        Err(e) => Err(e),
    };
    match tagged {
        Ok(true) => {}
        Ok(false) => {
            Metrics::bump(metrics.decisions[Reason::NoKey.index()], 1);
            return CONTINUE;
        }
        Err(_) => return host_error(metrics),
    }
    let Some(router) = router else {
        // No good configuration: everything goes to the baseline.
        return CONTINUE;
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
        tracestate: named(TRACESTATE),
    });
    let mut key_buf = [0u8; MAX_KEY_TEXT];
    let key = verdict.key.map(|k| {
        let (n, _) = k.value.write_decoded(&mut key_buf);
        &key_buf[..n]
    });
    let mut fork_buf = [0u8; MAX_FORK_AUTHORITY];
    let fork = match verdict.decision {
        Decision::Fork(id) => match router.fork_authority(id, authority, &mut fork_buf) {
            Some(f) => Some(f),
            None => return host_error(metrics),
        },
        _ => None,
    };
    // Act first; count and record only what actually happened. A rewrite
    // or a reply the host refused leaves the request on its way to the
    // baseline, counted as a host error and nothing else.
    let Ok(action) = act(router, &verdict, key, fork) else {
        return host_error(metrics);
    };
    count(metrics, &verdict);
    // One filter-state entry (one host call) per request that had a key or
    // a reason worth logging; `no_key` leaves it absent, as on the fast path.
    if verdict.decision != Decision::NoKey {
        let mut state = [0u8; MAX_ENTRY];
        let entry = filter_state::Entry {
            reason: verdict.decision.reason(),
            key,
            fork,
        };
        let n = filter_state::encode(&entry, &mut state);
        if abi::set_property(b"laneway", &state[..n]).is_err() {
            Metrics::bump(metrics.host_errors, 1);
        }
    }
    action
}

fn has_header(name: &[u8]) -> Result<bool, abi::Status> {
    // The value is dropped (freed) at once; the pairs buffer has it too.
    abi::request_header(name).map(|v| v.is_some())
}

fn host_error(metrics: &Metrics) -> u32 {
    Metrics::bump(metrics.host_errors, 1);
    CONTINUE
}

fn count(metrics: &Metrics, verdict: &Verdict<'_>) {
    Metrics::bump(metrics.decisions[verdict.decision.reason().index()], 1);
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

/// Carries out the decision: rewrites `:authority` for a fork, answers
/// locally for a rejected key, leaves the request alone otherwise. `Err`
/// when the host refused the rewrite or the reply.
fn act(
    router: &Router,
    verdict: &Verdict<'_>,
    key: Option<&[u8]>,
    fork: Option<&[u8]>,
) -> Result<u32, abi::Status> {
    match (verdict.decision.route(), fork) {
        (Route::Fork, Some(fork)) => {
            abi::replace_request_header(b":authority", fork)?;
            Ok(CONTINUE)
        }
        (Route::Reject, _) => reject(router, key.unwrap_or_default()),
        _ => Ok(CONTINUE),
    }
}

fn reject(router: &Router, key: &[u8]) -> Result<u32, abi::Status> {
    let mut body = [0u8; MAX_KEY_TEXT + 64];
    let mut n = 0;
    for part in [&b"routing key "[..], key, b" has no sandbox\n"] {
        body[n..n + part.len()].copy_from_slice(part);
        n += part.len();
    }
    let mut headers = [0u8; 128];
    let h = pairs::encode(
        [
            (&b"content-type"[..], &b"text/plain"[..]),
            (b"x-laneway-decision", b"rejected"),
        ],
        &mut headers,
    )
    .ok_or(abi::Status::SerializationFailure)?;
    let status = u32::from(router.reject_status());
    abi::send_local_response(
        status,
        b"laneway_unknown_routing_key",
        &body[..n],
        &headers[..h],
    )?;
    Ok(PAUSE)
}
