//! [`ProxyState`]: everything one VM's host functions read and write. It
//! lives in the embedder's `Store<T>`, reached through a projection
//! `fn(&mut T) -> &mut ProxyState` (wasmtime's `add_to_linker(linker, |t|
//! &mut t.proxy)` style); a standalone host uses `Store<ProxyState>`.
//!
//! The state of the live stream is one [`StreamState`]: a [`HalfState`] per
//! direction, an enum, never a set of flags. From it follow the rules for
//! what a callback may see, taken from Envoy's `Context::getMap`,
//! `getBuffer` and friends:
//! - a half's headers, body or trailers are readable and writable while
//!   that part is [`HalfState::Held`]: its callback runs, or it paused
//!   there; continuing (returning `Continue` or `proxy_continue_stream`)
//!   lets go of it;
//! - `on_log` may read the request headers, and the response headers once
//!   a response exists;
//! - HTTP call response headers, body and trailers are readable only inside
//!   `on_http_call_response`;
//! - a root context (`on_configure`, `on_tick`, ...) sees no stream maps.
//!
//! Invariant: every accessor answers `None` or a status for an unavailable
//! map; nothing here panics.

use std::sync::Arc;

use proxy_wasm_abi::{LogLevel, MapType};
use wasmtime::{Memory, TypedFunc};

use super::hop::{Callout, Hop, HttpCallReply, LocalResponse, LogLine, Outcome};
use super::maps::HeaderMap;
use super::metrics::Metrics;
use super::options::{HostOptions, Limits, RootOptions};
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
    RequestBody,
    RequestTrailers,
    ResponseHeaders,
    ResponseBody,
    ResponseTrailers,
    HttpCallResponse,
    Log,
    Done,
    Delete,
    Tick,
    QueueReady,
}

/// A part of one direction of an HTTP stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The headers.
    Headers,
    /// A body chunk (the whole body, in this host).
    Body,
    /// The trailers.
    Trailers,
}

/// Where one direction (request or response) of a stream stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HalfState {
    /// Nothing of it has reached the filter.
    Pending,
    /// The filter holds this part: its callback runs, or it paused there.
    /// The part may be read and changed.
    Held(Part),
    /// The filter let the last part it saw go on; more may follow.
    Flowing,
    /// Its final part went on (end of stream).
    Complete,
    /// The filter closed (reset) it with `proxy_close_stream`.
    Closed,
}

impl HalfState {
    /// Whether `part` may be read and changed now.
    pub fn holds(self, part: Part) -> bool {
        self == HalfState::Held(part)
    }

    /// Whether the filter is holding this half back (paused at a part).
    pub fn is_held(self) -> bool {
        matches!(self, HalfState::Held(_))
    }
}

/// The live stream context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamState {
    /// Its context id.
    pub id: u32,
    /// Its root context's id.
    pub root: u32,
    /// The request's progress.
    pub request: HalfState,
    /// The response's progress.
    pub response: HalfState,
    /// Whether the part being delivered is the last of its half.
    pub(crate) end_of_stream: bool,
}

/// Enforces [`Limits::memory_bytes`] and [`Limits::table_elements`] on the
/// guest's memories and tables, and remembers which one it refused, so the
/// trap that usually follows a refused `grow` can say why.
pub(crate) struct Guard {
    pub limits: Limits,
    pub hit: Option<String>,
}

impl wasmtime::ResourceLimiter for Guard {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.memory_bytes {
            self.hit = Some(format!(
                "the guest asked for {} MiB of memory; the limit is {} MiB",
                desired >> 20,
                self.limits.memory_bytes >> 20
            ));
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.table_elements {
            self.hit = Some(format!(
                "the guest asked for a table of {desired} elements; the limit is {}",
                self.limits.table_elements
            ));
            return Ok(false);
        }
        Ok(true)
    }
}

/// One root context of the VM.
pub(crate) struct Root {
    pub id: u32,
    pub options: RootOptions,
    pub tick_period_ms: u32,
    pub tick_due_ns: Option<u64>,
}

/// The host state of one VM: put it in your `Store<T>`.
pub struct ProxyState {
    pub(crate) memory: Option<Memory>,
    pub(crate) alloc: Option<TypedFunc<u32, u32>>,

    pub(crate) options: HostOptions,
    pub(crate) shared: Arc<Shared>,
    /// This VM's number within its plugin (owner of shared queues).
    pub(crate) serial: u64,

    pub(crate) clock_ns: u64,
    pub(crate) rng: u64,

    pub(crate) roots: Vec<Root>,
    /// The live stream, if any.
    pub(crate) stream: Option<StreamState>,
    /// The context host calls act on (`proxy_set_effective_context`).
    pub(crate) effective: u32,
    pub(crate) phase: Phase,
    /// Index into `hop.http_call_replies` while `on_http_call_response` runs.
    pub(crate) call_reply: Option<usize>,
    /// Envoy's "stop next iteration": a local reply was sent this callback.
    pub(crate) local_reply_sent: bool,
    /// `proxy_get_status`: code and message.
    pub(crate) status: (u32, &'static str),

    pub(crate) hop: Hop,
    pub(crate) outcome: Outcome,
    pub(crate) spare_reply: Option<LocalResponse>,
    /// Callouts made outside a stream (from a root context).
    pub(crate) vm_callouts: Vec<Callout>,
    pub(crate) next_callout: u32,
    /// Log lines emitted outside a stream.
    pub(crate) logs: Vec<LogLine>,
    pub(crate) metrics: Metrics,
    pub(crate) host_allocations: u64,
    /// Bytes of log lines kept outside streams since the last take.
    pub(crate) log_bytes: usize,
    pub(crate) guard: Guard,
    /// Staging for bytes on their way into guest memory.
    pub(crate) out: Vec<u8>,
}

impl Default for ProxyState {
    /// A placeholder for an embedder's `T`: [`Plugin::vm_with`](super::Plugin::vm_with)
    /// replaces it with the VM's real state.
    fn default() -> ProxyState {
        ProxyState::new(HostOptions::default(), Arc::default(), 0)
    }
}

impl ProxyState {
    pub(crate) fn new(options: HostOptions, shared: Arc<Shared>, serial: u64) -> ProxyState {
        let limits = options.limits;
        ProxyState {
            memory: None,
            alloc: None,
            clock_ns: options.clock_ns,
            rng: options.random_seed,
            options,
            shared,
            serial,
            roots: Vec::new(),
            stream: None,
            effective: 0,
            phase: Phase::Idle,
            call_reply: None,
            local_reply_sent: false,
            status: (0, ""),
            hop: Hop::default(),
            outcome: Outcome::default(),
            spare_reply: None,
            vm_callouts: Vec::new(),
            next_callout: 1,
            logs: Vec::new(),
            metrics: Metrics::default(),
            host_allocations: 0,
            log_bytes: 0,
            guard: Guard { limits, hit: None },
            out: Vec::new(),
        }
    }

    /// The live stream, when host calls act on it.
    pub(crate) fn in_stream(&self) -> Option<&StreamState> {
        self.stream.as_ref().filter(|s| s.id == self.effective)
    }

    /// The root context host calls act on: the effective context's root.
    pub(crate) fn root(&self) -> Option<&Root> {
        let id = match self.stream {
            Some(s) if s.id == self.effective => s.root,
            _ => self.effective,
        };
        self.roots.iter().find(|r| r.id == id)
    }

    pub(crate) fn root_mut(&mut self) -> Option<&mut Root> {
        let id = match self.stream {
            Some(s) if s.id == self.effective => s.root,
            _ => self.effective,
        };
        self.roots.iter_mut().find(|r| r.id == id)
    }

    /// Whether a stream is live at all (whatever the effective context).
    pub(crate) fn in_hop(&self) -> bool {
        self.stream.is_some()
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

    pub(crate) fn request_readable(&self) -> bool {
        self.in_stream()
            .is_some_and(|s| s.request.holds(Part::Headers) || (self.phase == Phase::Log))
    }

    pub(crate) fn response_readable(&self) -> bool {
        self.in_stream().is_some_and(|s| {
            s.response.holds(Part::Headers)
                || (self.phase == Phase::Log && s.response != HalfState::Pending)
        })
    }

    /// Whether a response has reached the filter.
    pub(crate) fn response_started(&self) -> bool {
        self.stream
            .is_some_and(|s| s.response != HalfState::Pending)
    }

    fn holds(&self, request: bool, part: Part) -> bool {
        self.in_stream().is_some_and(|s| {
            if request {
                s.request.holds(part)
            } else {
                s.response.holds(part)
            }
        })
    }

    /// The map `map` when the running callback may read it.
    pub(crate) fn readable(&self, map: MapType) -> Option<&HeaderMap> {
        match map {
            MapType::RequestHeaders if self.request_readable() => Some(&self.hop.request_headers),
            MapType::RequestTrailers if self.holds(true, Part::Trailers) => {
                Some(&self.hop.request_trailers)
            }
            MapType::ResponseHeaders if self.response_readable() => {
                Some(&self.hop.response_headers)
            }
            MapType::ResponseTrailers if self.holds(false, Part::Trailers) => {
                Some(&self.hop.response_trailers)
            }
            MapType::HttpCallResponseHeaders => self.call_reply().map(|r| r.0),
            MapType::HttpCallResponseTrailers => self.call_reply().map(|r| r.2),
            _ => None,
        }
    }

    /// The map `map` when the running callback may change it.
    pub(crate) fn writable(&mut self, map: MapType) -> Option<&mut HeaderMap> {
        let (request, part) = match map {
            MapType::RequestHeaders => (true, Part::Headers),
            MapType::RequestTrailers => (true, Part::Trailers),
            MapType::ResponseHeaders => (false, Part::Headers),
            MapType::ResponseTrailers => (false, Part::Trailers),
            _ => return None,
        };
        if !self.holds(request, part) {
            return None;
        }
        Some(match map {
            MapType::RequestHeaders => &mut self.hop.request_headers,
            MapType::RequestTrailers => &mut self.hop.request_trailers,
            MapType::ResponseHeaders => &mut self.hop.response_headers,
            _ => &mut self.hop.response_trailers,
        })
    }

    /// The request or response body, when its callback holds it.
    pub(crate) fn body(&self, request: bool) -> Option<&[u8]> {
        self.holds(request, Part::Body).then(|| {
            if request {
                &self.hop.request_body[..]
            } else {
                &self.hop.response_body[..]
            }
        })
    }

    pub(crate) fn body_mut(&mut self, request: bool) -> Option<&mut Vec<u8>> {
        if !self.holds(request, Part::Body) {
            return None;
        }
        Some(if request {
            &mut self.hop.request_body
        } else {
            &mut self.hop.response_body
        })
    }

    pub(crate) fn call_reply_body(&self) -> Option<&[u8]> {
        self.call_reply().map(|r| r.1)
    }

    /// Keeps a log line, unless the stream's (or the VM's) log budget is
    /// spent; then it is only counted.
    pub(crate) fn log(&mut self, level: LogLevel, message: &[u8]) {
        if level < self.options.log_level {
            return;
        }
        let budget = self.options.limits.log_bytes;
        let kept = if self.in_hop() {
            &mut self.outcome.log_bytes
        } else {
            &mut self.log_bytes
        };
        if kept.saturating_add(message.len()) > budget {
            self.outcome.logs_dropped += 1;
            return;
        }
        *kept += message.len();
        let line = LogLine {
            level,
            message: String::from_utf8_lossy(message).into_owned(),
        };
        if self.in_hop() {
            self.outcome.logs.push(line);
        } else {
            self.logs.push(line);
        }
    }

    /// SplitMix64: deterministic bytes from the configured seed.
    pub(crate) fn random(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }

    pub(crate) fn count_allocation(&mut self) {
        self.host_allocations += 1;
        if self.in_hop() {
            self.outcome.host_allocations += 1;
        }
    }
}
