//! What a caller hands the host for one HTTP exchange ([`Hop`]) and what
//! it gets back ([`Outcome`]).
//!
//! Both are built to be reused: a replay loop keeps one `Hop`, clears and
//! refills its maps for each request, and reads the `Outcome` the VM lends
//! it; neither allocates in steady state (callouts, logs and local replies
//! aside).
//!
//! Invariant: plain data; nothing here panics.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use proxy_wasm_abi::{LogLevel, StreamType};

use super::maps::{HeaderMap, Properties};

/// The downstream protocol, reported as `request.protocol`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    Http10,
    #[default]
    Http11,
    Http2,
    Http3,
}

impl Protocol {
    /// Envoy's spelling (`Http::Utility::getProtocolString`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http10 => "HTTP/1.0",
            Protocol::Http11 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
            Protocol::Http3 => "HTTP/3",
        }
    }
}

/// One HTTP exchange through the filter: what the downstream sent, what the
/// upstream answers, and the connection it came on.
///
/// A [`Stream`](super::Stream) runs the filter's callbacks over these
/// fields, one part at a time; [`Vm::request`](super::Vm::request) runs a
/// headers-only exchange (`end_of_stream` on the headers, no body or
/// trailers) in one call. Afterwards `request_*` hold the request as
/// forwarded upstream and `response_*` the response as sent downstream
/// (the local reply's headers and body when the filter answered itself).
#[derive(Clone, Debug)]
pub struct Hop {
    /// Request headers.
    pub request_headers: HeaderMap,
    /// Request body (read by `proxy_on_request_body`).
    pub request_body: Vec<u8>,
    /// Request trailers (read by `proxy_on_request_trailers`).
    pub request_trailers: HeaderMap,
    /// Response headers.
    pub response_headers: HeaderMap,
    /// Response body.
    pub response_body: Vec<u8>,
    /// Response trailers.
    pub response_trailers: HeaderMap,
    /// Peer address (`source.address`, `source.port`).
    pub source: SocketAddr,
    /// Local address the request arrived on (`destination.*`).
    pub destination: SocketAddr,
    /// The downstream protocol.
    pub protocol: Protocol,
    /// Attributes by exact `\0`-separated path, answered before the built-in
    /// ones (for example `xds\0cluster_name`).
    pub properties: Properties,
    /// Replies to this hop's HTTP callouts, in dispatch order: the `i`-th
    /// callout the guest makes gets `http_call_replies[i]`, delivered by
    /// `proxy_on_http_call_response` while the stream waits. A callout with
    /// no reply here stays pending and is dropped with the stream.
    pub http_call_replies: Vec<HttpCallReply>,
}

impl Hop {
    /// Empties every map and body, keeping their buffers; the connection
    /// fields and properties stay.
    pub fn clear_messages(&mut self) {
        self.request_headers.clear();
        self.request_body.clear();
        self.request_trailers.clear();
        self.response_headers.clear();
        self.response_body.clear();
        self.response_trailers.clear();
    }
}

impl Default for Hop {
    fn default() -> Hop {
        Hop {
            request_headers: HeaderMap::new(),
            request_body: Vec::new(),
            request_trailers: HeaderMap::new(),
            response_headers: HeaderMap::new(),
            response_body: Vec::new(),
            response_trailers: HeaderMap::new(),
            source: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000),
            destination: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 8080),
            protocol: Protocol::Http11,
            properties: Properties::new(),
            http_call_replies: Vec::new(),
        }
    }
}

/// The upstream's answer to a `proxy_http_call`.
#[derive(Clone, Debug)]
pub enum HttpCallReply {
    Response {
        headers: HeaderMap,
        body: Vec<u8>,
        trailers: HeaderMap,
    },
    /// The call failed (Envoy's reset): the guest sees zero headers and
    /// `proxy_get_status` answers `BrokenConnection`, "reset".
    Reset,
}

/// What Envoy does with the stream after a headers, body or trailers
/// callback, from the guest's return value as proxy-wasm-cpp-host converts
/// it (ABI 0.2.x):
/// `0` continues; `1` (`Pause`) becomes `StopAllIterationAndWatermark`
/// because Envoy does not allow `StopIteration` from headers callbacks by
/// default; `2` is treated as `Continue`; `3` is `StopAllIterationAndBuffer`;
/// anything larger, or any value after `proxy_send_local_response`, is
/// `StopAllIterationAndWatermark`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Action {
    #[default]
    Continue,
    StopAllIterationAndBuffer,
    StopAllIterationAndWatermark,
}

impl Action {
    pub(crate) fn from_headers_result(result: u32, local_reply_sent: bool) -> Action {
        match result {
            _ if local_reply_sent => Action::StopAllIterationAndWatermark,
            0 | 2 => Action::Continue,
            3 => Action::StopAllIterationAndBuffer,
            _ => Action::StopAllIterationAndWatermark,
        }
    }

    pub fn is_continue(self) -> bool {
        self == Action::Continue
    }
}

/// A reply the guest sent with `proxy_send_local_response`. Envoy applies it
/// after the callback returns; the request is then not forwarded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u32,
    /// Envoy's response code details (spaces become `_`, as Envoy does).
    pub details: Vec<u8>,
    pub body: Vec<u8>,
    /// The headers the guest asked for (lowercased), before Envoy adds
    /// `:status`, `content-length` and `content-type`.
    pub headers: HeaderMap,
    /// `None` for the SDKs' "not gRPC" (-1 or any value outside 0..=16).
    pub grpc_status: Option<u32>,
}

/// A `proxy_http_call` the guest made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Callout {
    pub token: u32,
    pub upstream: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
    pub timeout_ms: u32,
    /// Whether a reply from [`Hop::http_call_replies`] was delivered.
    pub answered: bool,
}

/// A `proxy_continue_stream` or `proxy_close_stream` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamCall {
    Continue(StreamType),
    Close(StreamType),
}

/// One line the guest logged (`proxy_log`, or stdout/stderr via WASI).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

/// What happened to one request. Lent by [`Vm::request`](super::Vm::request)
/// and overwritten by the next request on the same VM.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// What `proxy_on_request_headers` decided (see [`Action`]).
    pub request_action: Action,
    /// What `proxy_on_response_headers` decided, when it ran.
    pub response_action: Option<Action>,
    /// Whether the request went upstream: it continued (or was resumed)
    /// with no local reply and no reset.
    pub forwarded: bool,
    pub local_response: Option<LocalResponse>,
    /// The guest closed (reset) the stream.
    pub reset: bool,
    /// Filter state the guest set with `proxy_set_property` during this hop
    /// (Envoy keeps it as `wasm.<path>`), by path.
    pub properties: Properties,
    pub callouts: Vec<Callout>,
    pub stream_calls: Vec<StreamCall>,
    pub logs: Vec<LogLine>,
    /// Log lines not kept because the log budget
    /// ([`Limits::log_bytes`](super::Limits::log_bytes)) was spent.
    pub logs_dropped: u64,
    /// Bytes of the kept log lines.
    pub(crate) log_bytes: usize,
    /// Guest heap allocations during this hop, from the module's
    /// allocation-counter export
    /// ([`HostOptions::allocation_counter`](super::HostOptions::allocation_counter)),
    /// when it has one.
    pub guest_allocations: Option<u64>,
    /// Times the host called the guest allocator during this hop.
    pub host_allocations: u64,
}

impl Outcome {
    /// Empties the outcome for the next hop, keeping buffers; returns the
    /// previous local reply so its buffers can be reused.
    pub(crate) fn reset(&mut self) -> Option<LocalResponse> {
        self.request_action = Action::Continue;
        self.response_action = None;
        self.forwarded = false;
        self.reset = false;
        self.properties.clear();
        self.callouts.clear();
        self.stream_calls.clear();
        self.logs.clear();
        self.logs_dropped = 0;
        self.log_bytes = 0;
        self.guest_allocations = None;
        self.host_allocations = 0;
        self.local_response.take()
    }
}
