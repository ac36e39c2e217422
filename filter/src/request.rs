//! The request path: `proxy_on_request_headers`, the one callback Envoy
//! makes per request (see [`crate::plugin`]).
//!
//! Every value-returning host call costs Envoy 10–13k instructions (it
//! calls back into the module to allocate the copy), so the path reads
//! only what can change the decision, and only the carriers the
//! configuration names (`routing_key.carriers`).
//!
//! 1. Read `baggage`, then `tracestate`, by value. If neither exists (and
//!    no preview entry point is configured, which must look at every
//!    request), count `no_key` and continue at once: no allocation,
//!    nothing touched.
//! 2. Where Envoy joins repeated lines into one value (inline headers;
//!    `routing_key.joined`), those values are the whole story: decide on
//!    them, and read `:authority` only when the key names a sandbox (or a
//!    preview host must be matched). Otherwise Envoy returns only the first
//!    line of a repeated header, and every `baggage` and `tracestate` line
//!    must be read to find conflicts: read the whole header map as pairs,
//!    which hold `:authority` and `:path` too.
//! 3. Decide and guard with [`laneway_core::Router::guard`]: the host
//!    facts a configured guard needs (`source.address`, the clock, shared
//!    data for the rate limit) are asked for through [`HostFacts`] only
//!    when that guard runs.
//! 4. Act: make the header edits the guards ask for (strip untrusted
//!    routing keys, set the hop counter, inject a preview key, clean
//!    `:path`), rewrite `:authority` for a fork (ABI 0.2.1 makes Envoy
//!    clear the route cache, so the router picks the fork's virtual host),
//!    or answer locally (421 unknown key, 429 rate limit, 508 loop). Only
//!    then count the decision and record it as one filter-state entry
//!    (`wasm.laneway`, written by [`laneway_core::filter_state`]:
//!    `decision=fork key=K fork=HOST:PORT`), so the counters and the
//!    access log say what was done, not what was meant.
//!
//! Budget: the header found in step 1 (freed at once) and the pairs, or
//! in joined mode each carrier's value and `:authority`, and the buffers
//! of the host facts a guard asked for, each one allocation forced by the
//! ABI; edits are built in stack buffers. Any surprise (a
//! host call failing, a broken pairs buffer) sends the request on
//! unchanged and bumps `laneway.host_errors` (and no decision counter); a
//! filter-state entry the host refuses bumps it too. (Envoy refuses a
//! header write only for a stream that is already gone; an edge whose
//! strip was refused would forward what it could not remove, counted as a
//! host error, which SECURITY.md says to alert on.) Never panics.

use laneway_core::authority::MAX_FORK_AUTHORITY;
use laneway_core::cidr::{self, Ip};
use laneway_core::config::Carriers;
use laneway_core::decide::Authority;
use laneway_core::decide::TraceStateStatus;
use laneway_core::filter_state::{self, MAX_ENTRY, MAX_KEY_TEXT};
use laneway_core::guard::{BUCKET_BYTES, Facts, HeaderSink, Outcome, Trust};
use laneway_core::rewrite;
use laneway_core::{Decision, Reason, Request, Route, Router};
use proxy_wasm_abi::pairs;

use std::cell::OnceCell;

use crate::abi::{self, HostBytes};
use crate::plugin::{Metrics, with_context};

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_headers(
    _context_id: u32,
    _headers: usize,
    _end_of_stream: u32,
) -> u32 {
    with_context(on_request_headers).unwrap_or(CONTINUE)
}

const CONTINUE: u32 = abi::Action::Continue as u32;
const PAUSE: u32 = abi::Action::Pause as u32;

/// The header the router reads as `tracestate`. The feature
/// `ignore-tracestate` is a deliberately wrong build for tests: it reads
/// a header nobody sends, so tracestate-only requests miss their forks,
/// and every backend must report the same misses.
const TRACESTATE: &[u8] = if cfg!(feature = "ignore-tracestate") {
    b"x-laneway-ignored-tracestate"
} else {
    b"tracestate"
};

/// The host facts the guards ask for, each read when first asked.
struct HostFacts;

impl Facts for HostFacts {
    fn source(&mut self) -> Option<Ip> {
        let bytes = abi::property(b"source\0address").ok()??;
        cidr::parse_source(bytes.as_slice())
    }

    fn now_ns(&mut self) -> Option<u64> {
        abi::current_time_ns().ok()
    }

    fn shared_get(&mut self, key: &[u8], out: &mut [u8; BUCKET_BYTES]) -> Result<Option<u32>, ()> {
        match abi::shared_data(key) {
            Ok(None) => Ok(None),
            Ok(Some((bytes, cas))) => match <&[u8; BUCKET_BYTES]>::try_from(bytes.as_slice()) {
                Ok(b) => {
                    *out = *b;
                    Ok(Some(cas))
                }
                // Not a bucket: overwrite it (as if absent, unconditionally).
                Err(_) => Ok(None),
            },
            Err(_) => Err(()),
        }
    }

    fn shared_set(&mut self, key: &[u8], value: &[u8], cas: u32) -> Result<bool, ()> {
        abi::set_shared_data(key, value, cas).map_err(|_| ())
    }
}

fn on_request_headers(router: Option<&Router>, metrics: &Metrics) -> u32 {
    let carriers = router.map_or(Carriers::BOTH, Router::carriers);
    if let Some(router) = router
        && router.joined()
    {
        return joined(router, metrics);
    }
    let tagged = match has_header(carriers.baggage, b"baggage") {
        Ok(true) => Ok(true),
        Ok(false) => has_header(carriers.tracestate, TRACESTATE),
        Err(e) => Err(e),
    };
    match tagged {
        Ok(true) => {}
        Ok(false) if router.is_some_and(Router::reads_untagged) => {}
        Ok(false) => return no_key(metrics),
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
    let path = if router.reads_untagged() {
        named(b":path").next().unwrap_or_default()
    } else {
        &[]
    };
    let outcome = router.guard(
        Request {
            authority,
            baggage: named(b"baggage"),
            tracestate: named(TRACESTATE),
        },
        path,
        &mut HostFacts,
    );
    finish(
        router,
        metrics,
        &outcome,
        authority,
        path,
        named(b"baggage"),
        named(TRACESTATE),
    )
}

/// The request path where Envoy joins repeated `baggage` and `tracestate`
/// lines into one value (`routing_key.joined`): read each carrier's value,
/// and `:authority` only once the key names a sandbox (or a preview host
/// must be matched), never the whole header map.
fn joined(router: &Router, metrics: &Metrics) -> u32 {
    let carriers = router.carriers();
    let (Ok(baggage), Ok(tracestate)) = (
        header_if(carriers.baggage, b"baggage"),
        header_if(carriers.tracestate, TRACESTATE),
    ) else {
        return host_error(metrics);
    };
    let untagged = router.reads_untagged();
    if baggage.is_none() && tracestate.is_none() && !untagged {
        return no_key(metrics);
    }
    let Ok(path) = header_if(untagged, b":path") else {
        return host_error(metrics);
    };
    let path = path.as_ref().map_or(&[][..], HostBytes::as_slice);
    let read_authority = OnceCell::new();
    let mut authority = Authority::lazy(|| {
        match read_authority.get_or_init(|| abi::request_header(b":authority")) {
            Ok(Some(value)) => value.as_slice(),
            _ => &[],
        }
    });
    let outcome = router.guard_with(
        lines(&baggage),
        lines(&tracestate),
        &mut authority,
        path,
        &mut HostFacts,
    );
    if let Some(Err(_)) = read_authority.get() {
        return host_error(metrics);
    }
    let authority = authority.if_read().unwrap_or_default();
    finish(
        router,
        metrics,
        &outcome,
        authority,
        path,
        lines(&baggage),
        lines(&tracestate),
    )
}

/// A joined header's one line, if present.
fn lines(header: &Option<HostBytes>) -> std::option::IntoIter<&[u8]> {
    header.as_ref().map(HostBytes::as_slice).into_iter()
}

/// Acts on a guarded decision, then counts and records it.
fn finish<'h>(
    router: &Router,
    metrics: &Metrics,
    outcome: &Outcome<'h>,
    authority: &[u8],
    path: &[u8],
    baggage: impl Iterator<Item = &'h [u8]> + Clone,
    tracestate: impl Iterator<Item = &'h [u8]> + Clone,
) -> u32 {
    let verdict = &outcome.verdict;
    let mut key_buf = [0u8; MAX_KEY_TEXT];
    let key = verdict.key.map(|k| {
        let (n, _) = k.value.write_decoded(&mut key_buf);
        &key_buf[..n]
    });
    // A preview request is decided for its pattern's service.
    let decided_for = match outcome.edits.preview_host {
        Some(i) => router.preview_service(i),
        None => authority,
    };
    let mut fork_buf = [0u8; MAX_FORK_AUTHORITY];
    let fork = match verdict.decision {
        Decision::Fork(id) => match router.fork_authority(id, decided_for, &mut fork_buf) {
            Some(f) => Some(f),
            None => return host_error(metrics),
        },
        _ => None,
    };
    // Act first; count and record only what actually happened. An edit,
    // a rewrite or a reply the host refused is counted as a host error
    // and nothing else.
    let acted = outcome
        .apply(
            router,
            path,
            baggage,
            tracestate,
            TRACESTATE,
            &mut RequestHeaders,
        )
        .and_then(|()| act(router, outcome, key, fork, decided_for));
    let Ok(action) = acted else {
        return host_error(metrics);
    };
    count(metrics, outcome);
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

fn no_key(metrics: &Metrics) -> u32 {
    Metrics::bump(metrics.decisions[Reason::NoKey.index()], 1);
    CONTINUE
}

/// Request header `name` when `wanted` (a carrier, or `:path` for
/// preview); `Ok(None)` without asking otherwise.
fn header_if(wanted: bool, name: &[u8]) -> Result<Option<HostBytes>, abi::Status> {
    if wanted {
        abi::request_header(name)
    } else {
        Ok(None)
    }
}

/// Whether request header `name` is present, asked only when `carried`.
fn has_header(carried: bool, name: &[u8]) -> Result<bool, abi::Status> {
    // The value is dropped (freed) at once; the pairs buffer has it too.
    header_if(carried, name).map(|v| v.is_some())
}

fn host_error(metrics: &Metrics) -> u32 {
    Metrics::bump(metrics.host_errors, 1);
    CONTINUE
}

fn count(metrics: &Metrics, outcome: &Outcome<'_>) {
    let verdict = &outcome.verdict;
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
    match outcome.trust {
        Trust::Source => Metrics::bump(metrics.trusted_source, 1),
        Trust::Signature => Metrics::bump(metrics.trusted_signature, 1),
        Trust::Untrusted(Some(_)) => Metrics::bump(metrics.signature_refused, 1),
        _ => {}
    }
    if outcome.edits.inject.is_some() {
        Metrics::bump(metrics.preview_injected, 1);
    }
    if outcome.contended {
        Metrics::bump(metrics.rate_limit_contended, 1);
    }
    if outcome.host_errors > 0 {
        Metrics::bump(metrics.host_errors, i64::from(outcome.host_errors));
    }
}

/// The request header map, as [`Outcome::apply`] edits it.
struct RequestHeaders;

impl HeaderSink for RequestHeaders {
    type Error = abi::Status;

    fn remove(&mut self, name: &[u8]) -> Result<(), abi::Status> {
        abi::remove_request_header(name)
    }

    fn add(&mut self, name: &[u8], value: &[u8]) -> Result<(), abi::Status> {
        abi::add_request_header(name, value)
    }

    fn replace(&mut self, name: &[u8], value: &[u8]) -> Result<(), abi::Status> {
        abi::replace_request_header(name, value)
    }
}

/// Carries out the decision: rewrites `:authority` for a fork (or to a
/// preview pattern's service), answers locally for a rejected, limited or
/// looping request, leaves the request alone otherwise. `Err` when the
/// host refused the rewrite or the reply.
fn act(
    router: &Router,
    outcome: &Outcome<'_>,
    key: Option<&[u8]>,
    fork: Option<&[u8]>,
    decided_for: &[u8],
) -> Result<u32, abi::Status> {
    match (outcome.verdict.decision.route(), fork) {
        (Route::Fork, Some(fork)) => {
            abi::replace_request_header(b":authority", fork)?;
            Ok(CONTINUE)
        }
        (Route::Reject, _) => reply(router, outcome, key.unwrap_or_default()),
        _ => {
            if outcome.edits.preview_host.is_some() {
                abi::replace_request_header(b":authority", decided_for)?;
            }
            Ok(CONTINUE)
        }
    }
}

fn reply(router: &Router, outcome: &Outcome<'_>, key: &[u8]) -> Result<u32, abi::Status> {
    let decision = outcome.verdict.decision;
    // Always fits: the key is at most MAX_KEY_TEXT bytes.
    let mut body = [0u8; MAX_KEY_TEXT + 160];
    let mut text = rewrite::Writer::new(&mut body);
    let (details, reason): (&[u8], &[u8]) = match decision {
        Decision::Limited => {
            let (rps, burst) = outcome
                .limit
                .map_or((0, 0), |l| (l.requests_per_second, l.burst));
            text.put(b"routing key ")
                .put(key)
                .put(b" is over its rate limit of ")
                .num(rps)
                .put(b" requests per second (burst ")
                .num(burst)
                .put(b")\n");
            (b"laneway_rate_limited", b"limited")
        }
        Decision::Looped => {
            let hops = outcome.hops.unwrap_or(0);
            text.put(b"routing key ")
                .put(key)
                .put(b" has crossed ")
                .num(hops)
                .put(b" hops, more than the loop guard allows; is there a call cycle?\n");
            (b"laneway_loop_detected", b"looped")
        }
        _ => {
            text.put(b"routing key ").put(key).put(b" has no sandbox\n");
            (b"laneway_unknown_routing_key", b"rejected")
        }
    };
    let body = text.written();
    let mut headers = [0u8; 160];
    let h = pairs::encode(
        [
            (&b"content-type"[..], &b"text/plain"[..]),
            (b"x-laneway-decision", reason),
        ],
        &mut headers,
    )
    .ok_or(abi::Status::SerializationFailure)?;
    let status = u32::from(outcome.status(router));
    abi::send_local_response(status, details, body, &headers[..h])?;
    Ok(PAUSE)
}
