//! Replayed requests as OpenTelemetry traces: one request is one OTLP/JSON
//! `ExportTraceServiceRequest` on one line ([`export_line`]), the format of
//! the OpenTelemetry Collector's file exporter, so a file of them streams
//! and its writer holds one request at a time.
//!
//! The conventions, which `laneway`'s importer reads back exactly:
//!
//! - **One trace per request.** `traceId` is [`trace_id`]: FNV-1a 128 of
//!   the scenario's name, a `0xff` byte and the request's global index
//!   (8 bytes, little endian), as 32 lowercase hex digits.
//! - **One SERVER span (`kind` 2) per hop**, in the `resourceSpans` of the
//!   callee service (resource attribute `service.name` = the scenario's
//!   service name), one `resourceSpans` per service that the request
//!   reached, in the scenario's service order, each with one `scopeSpans`
//!   of scope `laneway` holding that service's spans in call order.
//!   `spanId` is [`span_id`] of (request index, hop id), 16 lowercase hex
//!   digits, distinct within a trace; `parentSpanId` is the span of the hop
//!   that made the call, absent for the ingress's call. The span's name is
//!   the hop's edge as failure lines write it: `CALLER → SERVICE`, the
//!   caller being `ingress` or a workload (`frontend@baseline → customer`).
//! - **Attributes**, strings unless said otherwise: `laneway.request`
//!   (`GROUP#N`), `laneway.traffic` (the traffic group), `laneway.caller`
//!   (the calling service, or `ingress`), `laneway.route` (`fork`,
//!   `baseline`, `reject`, `failed`), `laneway.reason` (the core's reason,
//!   `no_fork`, `no_waypoint` when no filter saw the call, or `unknown`),
//!   `laneway.waypoint` when a waypoint decided the hop (ambient mesh),
//!   `laneway.served_by` (`location@baseline`,
//!   `location@fork(K)`, `location@rejected`, `location@unavailable`,
//!   `location@failed`); `k8s.deployment.name` when a workload served the
//!   hop (`location` for the baseline, `location-K` for K's fork);
//!   `http.response.status_code` (`intValue`) when the hop answered the
//!   request itself (rejected, fork unavailable: 503, filter failed: 500);
//!   and `sd-routing-key` = the traffic group's key when the context that
//!   came into the hop carried it: the group has a key and the hop received
//!   a header the group sends (its `baggage` or its `tracestate` lines).
//!   That is the attribute OpenTelemetry's `BaggageSpanProcessor` copies
//!   from baggage.
//! - **Status** `{"code": 2}` (ERROR), with a message, exactly on hops that
//!   carry `http.response.status_code`; no status (UNSET) on the others.
//! - **Times** are synthetic: request N starts N seconds after
//!   2026-01-01T00:00:00Z ([`EPOCH_UNIX_NANO`], [`REQUEST_NANOS`]); its hops
//!   enter and leave on the 1 µs ticks ([`TICK_NANOS`]) of a depth-first
//!   walk of its tree, so a child starts after its parent, ends before it,
//!   and siblings follow each other in call order. Decimal strings, as
//!   OTLP/JSON encodes 64-bit integers.
//!
//! The same trace gives the same bytes, whatever thread recorded it.
//! Never panics on a trace of the scenario it is given.

use std::borrow::Cow;

use laneway_replay::names;
use laneway_replay::trace::{Context, Hop, HopId, Served, Trace};
use laneway_scenario::{HopReason, Scenario, Traffic};
use serde::Serialize;

/// 2026-01-01T00:00:00Z, in nanoseconds since the Unix epoch: request 0
/// starts here.
pub const EPOCH_UNIX_NANO: u64 = 1_767_225_600_000_000_000;
/// How far apart requests start: one second.
pub const REQUEST_NANOS: u64 = 1_000_000_000;
/// One step of the depth-first walk that times a request's hops: 1 µs. A
/// request of at most [`laneway_scenario::MAX_HOPS_PER_REQUEST`] hops
/// walks in 2 × 100,000 steps, within its second.
pub const TICK_NANOS: u64 = 1_000;
/// The instrumentation scope of every span.
pub const SCOPE: &str = "laneway";
/// The span attribute that holds the routing key a hop received.
pub const ROUTING_KEY: &str = "sd-routing-key";

/// OTLP `SPAN_KIND_SERVER`.
const KIND_SERVER: u8 = 2;
/// OTLP `STATUS_CODE_ERROR`.
const STATUS_ERROR: u8 = 2;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExportRequest<'a> {
    resource_spans: Vec<ResourceSpans<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans<'a> {
    resource: Resource<'a>,
    scope_spans: [ScopeSpans<'a>; 1],
}

#[derive(Serialize)]
struct Resource<'a> {
    attributes: [KeyValue<'a>; 1],
}

#[derive(Serialize)]
struct ScopeSpans<'a> {
    scope: Scope,
    spans: Vec<OtlpSpan<'a>>,
}

#[derive(Serialize)]
struct Scope {
    name: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OtlpSpan<'a> {
    trace_id: &'a str,
    span_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_span_id: Option<String>,
    name: String,
    kind: u8,
    start_time_unix_nano: String,
    end_time_unix_nano: String,
    attributes: Vec<KeyValue<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
}

#[derive(Serialize)]
struct KeyValue<'a> {
    key: &'static str,
    value: AnyValue<'a>,
}

/// OTLP's `AnyValue`: `{"stringValue": "…"}` or `{"intValue": "…"}` (a
/// 64-bit integer is a decimal string in OTLP/JSON).
#[derive(Serialize)]
enum AnyValue<'a> {
    #[serde(rename = "stringValue")]
    String(Cow<'a, str>),
    #[serde(rename = "intValue")]
    Int(String),
}

#[derive(Serialize)]
struct Status {
    code: u8,
    message: String,
}

fn text<'a>(key: &'static str, value: impl Into<Cow<'a, str>>) -> KeyValue<'a> {
    KeyValue {
        key,
        value: AnyValue::String(value.into()),
    }
}

/// The 128-bit FNV-1a hash of `bytes`.
fn fnv1a_128(bytes: impl IntoIterator<Item = u8>) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    bytes
        .into_iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(b)).wrapping_mul(PRIME))
}

/// The trace of request `index` of scenario `scenario`: 32 lowercase hex
/// digits, never all zeros (which OTLP reserves for "no trace").
pub fn trace_id(scenario: &str, index: u64) -> String {
    let bytes = scenario.bytes().chain([0xff]).chain(index.to_le_bytes());
    format!("{:032x}", fnv1a_128(bytes).max(1))
}

/// The span of hop `hop` of request `index`: 16 lowercase hex digits,
/// never all zeros. Distinct hops of one request get distinct spans: the
/// pair is packed into 64 bits (the index's low 32 bits, the hop + 1) and
/// mixed by SplitMix64's finalizer, a bijection that keeps 0 only for 0.
pub fn span_id(index: u64, hop: HopId) -> String {
    let mut z = (index << 32) ^ (u64::from(hop) + 1);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    format!("{:016x}", z.max(1))
}

/// Whether context `c` carries the routing key of traffic group `t`.
fn carries_key(t: &Traffic, c: Context) -> bool {
    t.key.is_some()
        && ((c.baggage && !t.headers.baggage.is_empty())
            || (c.tracestate && !t.headers.tracestate.is_empty()))
}

/// Each hop's `(enter, leave)` tick in a depth-first walk of the trace's
/// tree. Hops are recorded depth first, each subtree contiguous, so hop
/// `i` at depth `d` is entered after `i` enters and `i - d` leaves, and
/// left `2 × (its subtree's size) - 1` ticks after it is entered.
fn ticks(trace: &Trace) -> Vec<(u64, u64)> {
    let hops = trace.hops();
    let mut size = vec![1u64; hops.len()];
    for (i, h) in hops.iter().enumerate().rev() {
        if let Some(p) = h.parent.map(|p| p as usize).filter(|&p| p < i) {
            size[p] += size[i];
        }
    }
    (0..hops.len())
        .map(|i| {
            let depth = trace.depth(i as HopId) as u64;
            let enter = (2 * i as u64).saturating_sub(depth);
            (enter, enter + 2 * size[i] - 1)
        })
        .collect()
}

/// Why the hop answered the request itself, for the span's status.
fn status_message(trace: &Trace, id: HopId, served: Served) -> String {
    match served {
        Served::Rejected(status) => format!("rejected by the filter with {status}"),
        Served::Unavailable(Some(_)) => "routed to a fork that is down: 503".into(),
        Served::Unavailable(None) => "routed to a fork that is not deployed: 503".into(),
        Served::Failed => trace.failure(id).map_or_else(
            || "the filter failed".into(),
            |why| format!("the filter failed: {why}"),
        ),
        Served::By(_) => String::new(),
    }
}

fn span<'a>(
    sc: &'a Scenario,
    trace: &Trace,
    trace_id: &'a str,
    request: &'a str,
    id: HopId,
    hop: &Hop,
    (enter, leave): (u64, u64),
) -> OtlpSpan<'a> {
    let t = &sc.traffic[trace.group];
    let caller = hop
        .caller
        .service()
        .map_or("ingress", |s| sc.services[s].name.as_str());
    let mut attributes = vec![
        text("laneway.request", request),
        text("laneway.traffic", t.name.as_str()),
        text("laneway.caller", caller),
        text("laneway.route", names::route(hop.served).as_str()),
        text(
            "laneway.reason",
            hop.why().map_or("unknown", HopReason::as_str),
        ),
        text(
            "laneway.served_by",
            names::served(sc, hop.service, hop.served),
        ),
    ];
    if let Some(w) = names::waypoint(sc, hop.decided_at) {
        attributes.push(text("laneway.waypoint", w));
    }
    if let Served::By(w) = hop.served {
        attributes.push(text("k8s.deployment.name", names::deployment(sc, w)));
    }
    let status = hop.served.status();
    if let Some(code) = status {
        attributes.push(KeyValue {
            key: "http.response.status_code",
            value: AnyValue::Int(code.to_string()),
        });
    }
    if let Some(key) = t.key.as_deref().filter(|_| carries_key(t, hop.context_in)) {
        attributes.push(text(ROUTING_KEY, key));
    }
    let start = EPOCH_UNIX_NANO.saturating_add(trace.index.saturating_mul(REQUEST_NANOS));
    let at = |tick: u64| {
        start
            .saturating_add(tick.saturating_mul(TICK_NANOS))
            .to_string()
    };
    OtlpSpan {
        trace_id,
        span_id: span_id(trace.index, id),
        parent_span_id: hop.parent.map(|p| span_id(trace.index, p)),
        name: names::edge(sc, hop.caller, hop.service),
        kind: KIND_SERVER,
        start_time_unix_nano: at(enter),
        end_time_unix_nano: at(leave),
        attributes,
        status: status.map(|_| Status {
            code: STATUS_ERROR,
            message: status_message(trace, id, hop.served),
        }),
    }
}

/// Request `trace` of `sc` as one OTLP/JSON `ExportTraceServiceRequest`,
/// on one line without its newline; see the module documentation for the
/// conventions. An error only if serde_json fails, which would be a bug.
pub fn export_line(sc: &Scenario, trace: &Trace) -> serde_json::Result<String> {
    let id = trace_id(&sc.name, trace.index);
    let request = names::request(sc, trace);
    let ticks = ticks(trace);
    // Hop ids by callee service, each service's in call order.
    let mut order: Vec<HopId> = (0..trace.hops().len() as HopId).collect();
    order.sort_by_key(|&h| trace.hop(h).service);
    let mut resource_spans: Vec<ResourceSpans<'_>> = Vec::new();
    let mut last = None;
    for h in order {
        let hop = trace.hop(h);
        if last != Some(hop.service) {
            last = Some(hop.service);
            resource_spans.push(ResourceSpans {
                resource: Resource {
                    attributes: [text("service.name", sc.services[hop.service].name.as_str())],
                },
                scope_spans: [ScopeSpans {
                    scope: Scope { name: SCOPE },
                    spans: Vec::new(),
                }],
            });
        }
        let s = span(sc, trace, &id, &request, h, hop, ticks[h as usize]);
        if let Some(r) = resource_spans.last_mut() {
            r.scope_spans[0].spans.push(s);
        }
    }
    serde_json::to_string(&ExportRequest { resource_spans })
}

#[cfg(test)]
mod tests;
