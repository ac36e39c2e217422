//! `HostState`: everything one VM's host functions read and write, kept in
//! `Store<HostState>` (no globals), and the rules for which header map a
//! callback may see, taken from Envoy's `Context::getMap`/`getConstMap`.
//!
//! Visibility, as Envoy has it:
//! - request headers are readable and writable in `on_request_headers` and
//!   for as long as the request stays paused; `proxy_continue_stream`
//!   (or returning `Continue`) lets go of them; `on_log` may read them;
//! - response headers likewise from `on_response_headers`;
//! - trailers never exist (hops are headers-only);
//! - HTTP call response headers and trailers are readable only inside
//!   `on_http_call_response`;
//! - a root context (`on_configure`, `on_tick`, ...) sees no stream maps.
//!
//! Invariant: every accessor answers `None`/a status for an unavailable
//! map; nothing here panics.

use std::sync::Arc;

use wasmtime::{Memory, TypedFunc};

use super::abi::{LogLevel, MapType};
use super::hop::{Callout, Hop, HttpCallReply, LocalResponse, LogLine, Outcome};
use super::maps::HeaderMap;
use super::metrics::Metrics;
use super::options::HostOptions;
use super::shared::Shared;

/// Which guest callback is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Idle,
    Start,
    ContextCreate,
    VmStart,
    Configure,
    RequestHeaders,
    ResponseHeaders,
    HttpCallResponse,
    Log,
    Done,
    Delete,
    Tick,
    QueueReady,
}

pub(crate) struct HostState {
    pub memory: Option<Memory>,
    pub alloc: Option<TypedFunc<u32, u32>>,

    pub options: HostOptions,
    pub shared: Arc<Shared>,
    /// This VM's number within its plugin (owner of shared queues).
    pub serial: u64,

    pub clock_ns: u64,
    pub rng: u64,
    pub tick_period_ms: u32,
    pub tick_due_ns: Option<u64>,

    pub root_id: u32,
    /// The live stream context, or 0.
    pub stream_id: u32,
    /// The context host calls act on (`proxy_set_effective_context`).
    pub effective: u32,
    pub phase: Phase,
    pub request_held: bool,
    pub response_held: bool,
    pub response_started: bool,
    /// Index into `hop.http_call_replies` while `on_http_call_response` runs.
    pub call_reply: Option<usize>,
    /// Envoy's "stop next iteration": a local reply was sent this callback.
    pub local_reply_sent: bool,
    pub continue_request: bool,
    pub continue_response: bool,
    pub close_request: bool,
    pub close_response: bool,
    /// `proxy_get_status`: code and message.
    pub status: (u32, &'static str),

    pub in_hop: bool,
    pub hop: Hop,
    pub outcome: Outcome,
    pub spare_reply: Option<LocalResponse>,
    /// Callouts made outside a hop (from a root context).
    pub vm_callouts: Vec<Callout>,
    pub next_callout: u32,
    /// Log lines emitted outside a hop.
    pub logs: Vec<LogLine>,
    pub metrics: Metrics,
    pub host_allocations: u64,
    /// Staging for bytes on their way into guest memory.
    pub out: Vec<u8>,
}

impl HostState {
    pub fn new(options: HostOptions, shared: Arc<Shared>, serial: u64) -> HostState {
        HostState {
            memory: None,
            alloc: None,
            clock_ns: options.clock_ns,
            rng: options.random_seed,
            options,
            shared,
            serial,
            tick_period_ms: 0,
            tick_due_ns: None,
            root_id: 0,
            stream_id: 0,
            effective: 0,
            phase: Phase::Idle,
            request_held: false,
            response_held: false,
            response_started: false,
            call_reply: None,
            local_reply_sent: false,
            continue_request: false,
            continue_response: false,
            close_request: false,
            close_response: false,
            status: (0, ""),
            in_hop: false,
            hop: Hop::default(),
            outcome: Outcome::default(),
            spare_reply: None,
            vm_callouts: Vec::new(),
            next_callout: 1,
            logs: Vec::new(),
            metrics: Metrics::default(),
            host_allocations: 0,
            out: Vec::new(),
        }
    }

    /// Whether host calls act on the live stream context.
    pub fn in_stream(&self) -> bool {
        self.stream_id != 0 && self.effective == self.stream_id
    }

    fn call_reply(&self) -> Option<(&HeaderMap, &[u8], &HeaderMap)> {
        if self.phase != Phase::HttpCallResponse {
            return None;
        }
        match self.hop.http_call_replies.get(self.call_reply?)? {
            HttpCallReply::Response {
                headers,
                body,
                trailers,
            } => Some((headers, body, trailers)),
            HttpCallReply::Reset => None,
        }
    }

    pub fn request_readable(&self) -> bool {
        self.in_stream() && (self.request_held || self.phase == Phase::Log)
    }

    pub fn response_readable(&self) -> bool {
        self.in_stream()
            && (self.response_held || (self.phase == Phase::Log && self.response_started))
    }

    /// The map `map` when the running callback may read it.
    pub fn readable(&self, map: MapType) -> Option<&HeaderMap> {
        match map {
            MapType::RequestHeaders if self.request_readable() => Some(&self.hop.request_headers),
            MapType::ResponseHeaders if self.response_readable() => {
                Some(&self.hop.response_headers)
            }
            MapType::HttpCallResponseHeaders => self.call_reply().map(|r| r.0),
            MapType::HttpCallResponseTrailers => self.call_reply().map(|r| r.2),
            _ => None,
        }
    }

    /// The map `map` when the running callback may change it.
    pub fn writable(&mut self, map: MapType) -> Option<&mut HeaderMap> {
        let stream = self.in_stream();
        match map {
            MapType::RequestHeaders if stream && self.request_held => {
                Some(&mut self.hop.request_headers)
            }
            MapType::ResponseHeaders if stream && self.response_held => {
                Some(&mut self.hop.response_headers)
            }
            _ => None,
        }
    }

    pub fn call_reply_body(&self) -> Option<&[u8]> {
        self.call_reply().map(|r| r.1)
    }

    pub fn log(&mut self, level: LogLevel, message: &[u8]) {
        if level < self.options.log_level {
            return;
        }
        let line = LogLine {
            level,
            message: String::from_utf8_lossy(message).into_owned(),
        };
        if self.in_hop {
            self.outcome.logs.push(line);
        } else {
            self.logs.push(line);
        }
    }

    /// SplitMix64: deterministic bytes from the configured seed.
    pub fn random(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }

    pub fn count_allocation(&mut self) {
        self.host_allocations += 1;
        if self.in_hop {
            self.outcome.host_allocations += 1;
        }
    }
}
