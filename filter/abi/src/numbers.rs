//! The numbers of ABI 0.2.1 (and the WASI preview1 `errno` values a host
//! answers with). Each enum converts to its wire value with `as u32` and
//! back with `from_u32`, which answers `None` for a value the ABI does not
//! define.

use core::fmt;

/// A proxy-wasm `WasmResult`, returned by every `env.proxy_*` function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// The key, map, buffer or value does not exist.
    NotFound = 1,
    /// An argument is invalid (an unknown type, a bad combination).
    BadArgument = 2,
    /// The data could not be serialized.
    SerializationFailure = 3,
    /// The data could not be parsed.
    ParseFailure = 4,
    /// A pointer or length falls outside the guest's memory.
    InvalidMemoryAccess = 6,
    /// A queue is empty.
    Empty = 7,
    /// A compare-and-swap failed.
    CasMismatch = 8,
    /// The host failed.
    InternalFailure = 10,
    /// The connection is gone.
    BrokenConnection = 11,
    /// The host does not implement the call.
    Unimplemented = 12,
}

impl Status {
    /// Every status, in wire order.
    pub const ALL: [Status; 11] = [
        Status::Ok,
        Status::NotFound,
        Status::BadArgument,
        Status::SerializationFailure,
        Status::ParseFailure,
        Status::InvalidMemoryAccess,
        Status::Empty,
        Status::CasMismatch,
        Status::InternalFailure,
        Status::BrokenConnection,
        Status::Unimplemented,
    ];

    /// The status with wire value `v`.
    pub fn from_u32(v: u32) -> Option<Status> {
        Status::ALL.into_iter().find(|s| *s as u32 == v)
    }

    /// The spec's name, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "Ok",
            Status::NotFound => "NotFound",
            Status::BadArgument => "BadArgument",
            Status::SerializationFailure => "SerializationFailure",
            Status::ParseFailure => "ParseFailure",
            Status::InvalidMemoryAccess => "InvalidMemoryAccess",
            Status::Empty => "Empty",
            Status::CasMismatch => "CasMismatch",
            Status::InternalFailure => "InternalFailure",
            Status::BrokenConnection => "BrokenConnection",
            Status::Unimplemented => "Unimplemented",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Log levels of `proxy_log`, ordered from chattiest to most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
#[allow(missing_docs)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    /// The level with wire value `v`.
    pub fn from_u32(v: u32) -> Option<LogLevel> {
        Some(match v {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }

    /// Lowercase name, as Envoy prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `proxy_metric_type_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
#[allow(missing_docs)]
pub enum MetricKind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

impl MetricKind {
    /// The kind with wire value `v`.
    pub fn from_u32(v: u32) -> Option<MetricKind> {
        Some(match v {
            0 => MetricKind::Counter,
            1 => MetricKind::Gauge,
            2 => MetricKind::Histogram,
            _ => return None,
        })
    }
}

/// `proxy_map_type_t`: which header map a call means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
#[allow(missing_docs)]
pub enum MapType {
    RequestHeaders = 0,
    RequestTrailers = 1,
    ResponseHeaders = 2,
    ResponseTrailers = 3,
    GrpcInitialMetadata = 4,
    GrpcTrailingMetadata = 5,
    HttpCallResponseHeaders = 6,
    HttpCallResponseTrailers = 7,
}

impl MapType {
    /// The map type with wire value `v`.
    pub fn from_u32(v: u32) -> Option<MapType> {
        Some(match v {
            0 => MapType::RequestHeaders,
            1 => MapType::RequestTrailers,
            2 => MapType::ResponseHeaders,
            3 => MapType::ResponseTrailers,
            4 => MapType::GrpcInitialMetadata,
            5 => MapType::GrpcTrailingMetadata,
            6 => MapType::HttpCallResponseHeaders,
            7 => MapType::HttpCallResponseTrailers,
            _ => return None,
        })
    }
}

/// `proxy_buffer_type_t`: which buffer a call means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
#[allow(missing_docs)]
pub enum BufferType {
    RequestBody = 0,
    ResponseBody = 1,
    DownstreamData = 2,
    UpstreamData = 3,
    HttpCallResponseBody = 4,
    GrpcMessage = 5,
    VmConfiguration = 6,
    PluginConfiguration = 7,
    CallData = 8,
}

impl BufferType {
    /// The buffer type with wire value `v`.
    pub fn from_u32(v: u32) -> Option<BufferType> {
        Some(match v {
            0 => BufferType::RequestBody,
            1 => BufferType::ResponseBody,
            2 => BufferType::DownstreamData,
            3 => BufferType::UpstreamData,
            4 => BufferType::HttpCallResponseBody,
            5 => BufferType::GrpcMessage,
            6 => BufferType::VmConfiguration,
            7 => BufferType::PluginConfiguration,
            8 => BufferType::CallData,
            _ => return None,
        })
    }
}

/// `proxy_stream_type_t`: which half of a stream a call means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
#[allow(missing_docs)]
pub enum StreamType {
    HttpRequest = 0,
    HttpResponse = 1,
    Downstream = 2,
    Upstream = 3,
}

impl StreamType {
    /// The stream type with wire value `v`.
    pub fn from_u32(v: u32) -> Option<StreamType> {
        Some(match v {
            0 => StreamType::HttpRequest,
            1 => StreamType::HttpResponse,
            2 => StreamType::Downstream,
            3 => StreamType::Upstream,
            _ => return None,
        })
    }
}

/// `proxy_peer_type_t`, passed to the connection-close callbacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
#[allow(missing_docs)]
pub enum PeerType {
    Unknown = 0,
    Local = 1,
    Remote = 2,
}

/// What a headers, body or trailers callback returns (ABI 0.2.x): `0`
/// continues the stream, `1` pauses it. Hosts treat other values as their
/// own documentation says (proxy-wasm-cpp-host maps `3` to "stop all
/// iteration and buffer" and anything else to "stop all iteration and
/// watermark").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Action {
    /// Go on to the next filter.
    Continue = 0,
    /// Stop here until the filter resumes the stream.
    Pause = 1,
}

/// WASI preview1 `errno` values a host returns.
pub mod errno {
    /// No error.
    pub const SUCCESS: i32 = 0;
    /// Bad file descriptor.
    pub const BADF: i32 = 8;
    /// Bad address.
    pub const FAULT: i32 = 21;
    /// Function not supported.
    pub const NOSYS: i32 = 52;
    /// Not supported.
    pub const NOTSUP: i32 = 58;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::from_u32(s as u32), Some(s));
        }
        assert_eq!(Status::from_u32(5), None, "5 is unassigned");
        assert_eq!(Status::from_u32(u32::MAX), None);
        for v in 0..6 {
            assert_eq!(LogLevel::from_u32(v).map(|l| l as u32), Some(v));
        }
        for v in 0..8 {
            assert_eq!(MapType::from_u32(v).map(|m| m as u32), Some(v));
        }
        for v in 0..9 {
            assert_eq!(BufferType::from_u32(v).map(|b| b as u32), Some(v));
        }
        for v in 0..4 {
            assert_eq!(StreamType::from_u32(v).map(|t| t as u32), Some(v));
        }
        for v in 0..3 {
            assert_eq!(MetricKind::from_u32(v).map(|k| k as u32), Some(v));
        }
        assert_eq!(LogLevel::from_u32(6), None);
        assert_eq!(MapType::from_u32(8), None);
        assert_eq!(BufferType::from_u32(9), None);
        assert_eq!(StreamType::from_u32(4), None);
        assert_eq!(MetricKind::from_u32(3), None);
    }
}
