//! The `env.proxy_*` host functions of ABI 0.2.1, one Rust function per
//! import, named as the import, in the order of the ABI crate's list
//! (`proxy_wasm_abi::for_each_host_function!`): the linker is generated
//! from that list, so a function missing here, or with other arguments,
//! does not compile. Each takes the caller and the embedder's projection
//! to its [`ProxyState`].
//!
//! Semantics follow proxy-wasm-cpp-host's `src/exports.cc` (argument
//! checks, memory checks, copy-out) and Envoy's `Context` (what each call
//! does), including the order of checks: an unknown map/buffer type is
//! `BadArgument` before memory is touched, bad memory is
//! `InvalidMemoryAccess` before the map's availability is considered.
//! Actions Envoy defers until the callback returns (local replies,
//! continue/close) are recorded here and carried out by the VM.
//!
//! gRPC calls answer `Unimplemented`: this host runs no gRPC upstreams.
//!
//! Invariant: guest mistakes become status codes; a host function fails
//! (ending the callback) only when the guest allocator traps.

use proxy_wasm_abi::pairs;
use proxy_wasm_abi::{BufferType, LogLevel, MapType, MetricKind, Status, StreamType};

use super::guest::{Ctx, bytes, reply, with_memory, write_u32, write_u64};
use super::hop::{Callout, StreamCall};
use super::maps::HeaderMap;
use super::options::Limits;
use super::properties;
use super::state::{HalfState, Phase, ProxyState};

type Answer = wasmtime::Result<u32>;

fn done(status: Status) -> Answer {
    Ok(status as u32)
}

/// Runs `f` on guest memory and host state; no memory is `InvalidMemoryAccess`.
fn on_memory<T: 'static>(
    c: &mut Ctx<'_, T>,
    f: impl FnOnce(&mut [u8], &mut ProxyState) -> Status,
) -> Answer {
    done(with_memory(c, Status::InvalidMemoryAccess, f))
}

/// Stages with `f`, then copies the staged bytes out if `f` said `Ok`.
fn stage_and_reply<T: 'static>(
    c: &mut Ctx<'_, T>,
    ptr_ptr: u32,
    size_ptr: u32,
    f: impl FnOnce(&mut [u8], &mut ProxyState) -> Status,
) -> Answer {
    match with_memory(c, Status::InvalidMemoryAccess, f) {
        Status::Ok => reply(c, ptr_ptr, size_ptr),
        status => done(status),
    }
}

/// Reads serialized pairs the way the C++ host's `toPairs` does: fewer
/// than four bytes is an empty map; a layout that does not check out is
/// refused (the C++ host would read past it).
fn parse_pairs(data: &[u8]) -> Option<pairs::Pairs<'_>> {
    if data.len() < 4 {
        return pairs::pairs(&[0, 0, 0, 0]);
    }
    pairs::pairs(data)
}

fn map_from(data: &[u8]) -> Option<HeaderMap> {
    let mut map = HeaderMap::new();
    map.set_pairs(parse_pairs(data)?);
    Some(map)
}

// Logging and time.

pub(crate) fn proxy_log<T: 'static>(mut c: Ctx<'_, T>, level: u32, ptr: u32, len: u32) -> Answer {
    let Some(level) = LogLevel::from_u32(level) else {
        return done(Status::BadArgument);
    };
    on_memory(&mut c, |mem, s| match bytes(mem, ptr, len) {
        Some(message) => {
            s.log(level, message);
            Status::Ok
        }
        None => Status::InvalidMemoryAccess,
    })
}

pub(crate) fn proxy_get_log_level<T: 'static>(mut c: Ctx<'_, T>, ptr: u32) -> Answer {
    on_memory(&mut c, |mem, s| {
        ok_if(write_u32(mem, ptr, s.options.log_level as u32))
    })
}

pub(crate) fn proxy_get_current_time_nanoseconds<T: 'static>(
    mut c: Ctx<'_, T>,
    ptr: u32,
) -> Answer {
    on_memory(&mut c, |mem, s| ok_if(write_u64(mem, ptr, s.clock_ns)))
}

pub(crate) fn proxy_set_tick_period_milliseconds<T: 'static>(
    mut c: Ctx<'_, T>,
    period: u32,
) -> Answer {
    let s = c.state();
    let due = (period > 0).then(|| s.clock_ns.saturating_add(u64::from(period) * 1_000_000));
    // Ticks belong to a root context: the effective one, or the stream's.
    match s.root_mut() {
        Some(root) => {
            root.tick_period_ms = period;
            root.tick_due_ns = due;
            done(Status::Ok)
        }
        None => done(Status::BadArgument),
    }
}

fn ok_if(written: bool) -> Status {
    if written {
        Status::Ok
    } else {
        Status::InvalidMemoryAccess
    }
}

// Buffers.

/// The bytes of buffer `t` as the running callback sees them: a body
/// while its callback holds it (empty otherwise), the configurations, the
/// HTTP call response body inside `on_http_call_response`. Connection data
/// is always empty (this host runs HTTP streams only).
fn buffer(s: &ProxyState, t: BufferType) -> Result<&[u8], Status> {
    match t {
        BufferType::VmConfiguration => Ok(&s.options.vm_config),
        BufferType::PluginConfiguration if s.phase == Phase::Configure => s
            .root()
            .map(|r| &r.options.plugin_config[..])
            .ok_or(Status::NotFound),
        BufferType::PluginConfiguration => Err(Status::NotFound),
        BufferType::HttpCallResponseBody => s.call_reply_body().ok_or(Status::NotFound),
        BufferType::RequestBody => Ok(s.body(true).unwrap_or_default()),
        BufferType::ResponseBody => Ok(s.body(false).unwrap_or_default()),
        _ => Ok(&[]),
    }
}

pub(crate) fn proxy_get_buffer_bytes<T: 'static>(
    mut c: Ctx<'_, T>,
    t: u32,
    start: u32,
    max: u32,
    ptr_ptr: u32,
    size_ptr: u32,
) -> Answer {
    let Some(t) = BufferType::from_u32(t) else {
        return done(Status::BadArgument);
    };
    let s = c.state();
    let mut out = std::mem::take(&mut s.out);
    out.clear();
    let status = match buffer(s, t) {
        Ok(data) if start as usize > data.len() => Status::BadArgument,
        Ok(data) => {
            let end = data
                .len()
                .min((start as usize).saturating_add(max as usize));
            out.extend_from_slice(&data[start as usize..end]);
            Status::Ok
        }
        Err(status) => status,
    };
    s.out = out;
    match status {
        // Envoy writes nothing for an empty read.
        Status::Ok if s.out.is_empty() => done(Status::Ok),
        Status::Ok => reply(&mut c, ptr_ptr, size_ptr),
        status => done(status),
    }
}

pub(crate) fn proxy_get_buffer_status<T: 'static>(
    mut c: Ctx<'_, T>,
    t: u32,
    len_ptr: u32,
    flags_ptr: u32,
) -> Answer {
    let Some(t) = BufferType::from_u32(t) else {
        return done(Status::BadArgument);
    };
    on_memory(&mut c, |mem, s| match buffer(s, t) {
        Ok(data) => {
            ok_if(write_u32(mem, len_ptr, data.len() as u32) && write_u32(mem, flags_ptr, 0))
        }
        Err(status) => status,
    })
}

pub(crate) fn proxy_set_buffer_bytes<T: 'static>(
    mut c: Ctx<'_, T>,
    t: u32,
    start: u32,
    size: u32,
    ptr: u32,
    len: u32,
) -> Answer {
    let Some(t) = BufferType::from_u32(t) else {
        return done(Status::BadArgument);
    };
    on_memory(&mut c, |mem, s| {
        if let Err(status) = buffer(s, t) {
            return status;
        }
        let Some(data) = bytes(mem, ptr, len) else {
            return Status::InvalidMemoryAccess;
        };
        let request = match t {
            BufferType::RequestBody => true,
            BufferType::ResponseBody => false,
            // No connection data in an HTTP stream.
            BufferType::DownstreamData | BufferType::UpstreamData => return Status::NotFound,
            // Configurations and call responses are read-only in Envoy.
            _ => return Status::BadArgument,
        };
        // Envoy's `Buffer::copyFrom`: `start == 0` drains `size` bytes and
        // prepends the data; `start` at or past the end appends; anything
        // else is refused. Outside its callback there is no body to change.
        let Some(body) = s.body_mut(request) else {
            return Status::NotFound;
        };
        let (start, size) = (start as usize, size as usize);
        if start == 0 {
            body.splice(..size.min(body.len()), data.iter().copied());
        } else if start >= body.len() {
            body.extend_from_slice(data);
        } else {
            return Status::BadArgument;
        }
        Status::Ok
    })
}

// Header maps.

pub(crate) fn proxy_get_header_map_pairs<T: 'static>(
    mut c: Ctx<'_, T>,
    t: u32,
    ptr_ptr: u32,
    size_ptr: u32,
) -> Answer {
    let Some(t) = MapType::from_u32(t) else {
        return done(Status::BadArgument);
    };
    stage_and_reply(&mut c, ptr_ptr, size_ptr, |_, s| {
        let mut out = std::mem::take(&mut s.out);
        out.clear();
        let mut status = Status::Ok;
        if let Some(map) = s.readable(t).filter(|m| !m.is_empty()) {
            out.resize(pairs::encoded_len(map.iter()), 0);
            if pairs::encode(map.iter(), &mut out).is_none() {
                status = Status::SerializationFailure;
            }
        }
        s.out = out;
        status
    })
}

pub(crate) fn proxy_set_header_map_pairs<T: 'static>(
    mut c: Ctx<'_, T>,
    t: u32,
    ptr: u32,
    len: u32,
) -> Answer {
    let Some(t) = MapType::from_u32(t) else {
        return done(Status::BadArgument);
    };
    on_memory(&mut c, |mem, s| {
        let Some(data) = bytes(mem, ptr, len) else {
            return Status::InvalidMemoryAccess;
        };
        let limits = s.options.limits;
        let Some(map) = s.writable(t) else {
            return Status::BadArgument;
        };
        match parse_pairs(data) {
            Some(pairs) => {
                let (n, bytes) = pairs.clone().fold((0usize, 0usize), |(n, b), (k, v)| {
                    (n + 1, b + k.len() + v.len())
                });
                if n > limits.header_map_entries || bytes > limits.header_map_bytes {
                    return Status::InternalFailure;
                }
                map.set_pairs(pairs);
                Status::Ok
            }
            None => Status::BadArgument,
        }
    })
}

pub(crate) fn proxy_get_header_map_value<T: 'static>(
    mut c: Ctx<'_, T>,
    t: u32,
    key_ptr: u32,
    key_len: u32,
    ptr_ptr: u32,
    size_ptr: u32,
) -> Answer {
    let Some(t) = MapType::from_u32(t) else {
        return done(Status::BadArgument);
    };
    stage_and_reply(&mut c, ptr_ptr, size_ptr, |mem, s| {
        let Some(key) = bytes(mem, key_ptr, key_len) else {
            return Status::InvalidMemoryAccess;
        };
        let mut out = std::mem::take(&mut s.out);
        out.clear();
        let status = match s.readable(t).map(|map| map.get(key)) {
            Some(Some(value)) => {
                out.extend_from_slice(value);
                Status::Ok
            }
            Some(None) => Status::NotFound,
            // Envoy: a map missing in the access-log phase is NotFound.
            None if s.phase == Phase::Log => Status::NotFound,
            None => Status::BadArgument,
        };
        s.out = out;
        status
    })
}

/// A change to a header map.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Edit {
    Add,
    Replace,
    Remove,
}

/// Whether `edit` of `key: value` would take the map past the host's
/// limits. A removal never does.
fn grows_past(map: &HeaderMap, key: &[u8], value: &[u8], edit: Edit, limits: Limits) -> bool {
    if edit == Edit::Remove {
        return false;
    }
    let (gone, gone_bytes) = if edit == Edit::Replace {
        map.iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .fold((0, 0), |(n, b), (k, v)| (n + 1, b + k.len() + v.len()))
    } else {
        (0, 0)
    };
    map.len() - gone + 1 > limits.header_map_entries
        || map.byte_size() - gone_bytes + key.len() + value.len() > limits.header_map_bytes
}

fn edit_map<T: 'static>(
    c: &mut Ctx<'_, T>,
    t: u32,
    key: (u32, u32),
    value: Option<(u32, u32)>,
    edit: Edit,
) -> Answer {
    let Some(t) = MapType::from_u32(t) else {
        return done(Status::BadArgument);
    };
    on_memory(c, |mem, s| {
        let key = bytes(mem, key.0, key.1);
        let value = match value {
            Some((ptr, len)) => bytes(mem, ptr, len),
            None => Some(&[][..]),
        };
        let (Some(key), Some(value)) = (key, value) else {
            return Status::InvalidMemoryAccess;
        };
        let limits = s.options.limits;
        match s.writable(t) {
            Some(map) if grows_past(map, key, value, edit, limits) => Status::InternalFailure,
            Some(map) => {
                match edit {
                    Edit::Add => map.add(key, value),
                    Edit::Replace => map.replace(key, value),
                    Edit::Remove => {
                        map.remove(key);
                    }
                }
                Status::Ok
            }
            None => Status::BadArgument,
        }
    })
}

pub(crate) fn proxy_add_header_map_value<T: 'static>(
    mut c: Ctx<'_, T>,
    t: u32,
    key_ptr: u32,
    key_len: u32,
    value_ptr: u32,
    value_len: u32,
) -> Answer {
    edit_map(
        &mut c,
        t,
        (key_ptr, key_len),
        Some((value_ptr, value_len)),
        Edit::Add,
    )
}

pub(crate) fn proxy_replace_header_map_value<T: 'static>(
    mut c: Ctx<'_, T>,
    t: u32,
    key_ptr: u32,
    key_len: u32,
    value_ptr: u32,
    value_len: u32,
) -> Answer {
    edit_map(
        &mut c,
        t,
        (key_ptr, key_len),
        Some((value_ptr, value_len)),
        Edit::Replace,
    )
}

pub(crate) fn proxy_remove_header_map_value<T: 'static>(
    mut c: Ctx<'_, T>,
    t: u32,
    key_ptr: u32,
    key_len: u32,
) -> Answer {
    edit_map(&mut c, t, (key_ptr, key_len), None, Edit::Remove)
}

pub(crate) fn proxy_get_header_map_size<T: 'static>(mut c: Ctx<'_, T>, t: u32, ptr: u32) -> Answer {
    let Some(t) = MapType::from_u32(t) else {
        return done(Status::BadArgument);
    };
    on_memory(&mut c, |mem, s| match s.writable(t) {
        Some(map) => {
            let size = map.byte_size() as u32;
            ok_if(write_u32(mem, ptr, size))
        }
        None => Status::BadArgument,
    })
}

// Properties.

pub(crate) fn proxy_get_property<T: 'static>(
    mut c: Ctx<'_, T>,
    path_ptr: u32,
    path_len: u32,
    ptr_ptr: u32,
    size_ptr: u32,
) -> Answer {
    stage_and_reply(&mut c, ptr_ptr, size_ptr, |mem, s| {
        match bytes(mem, path_ptr, path_len) {
            Some(path) => properties::get(s, path),
            None => Status::InvalidMemoryAccess,
        }
    })
}

pub(crate) fn proxy_set_property<T: 'static>(
    mut c: Ctx<'_, T>,
    path_ptr: u32,
    path_len: u32,
    value_ptr: u32,
    value_len: u32,
) -> Answer {
    on_memory(&mut c, |mem, s| {
        let (Some(path), Some(value)) = (
            bytes(mem, path_ptr, path_len),
            bytes(mem, value_ptr, value_len),
        ) else {
            return Status::InvalidMemoryAccess;
        };
        // Envoy keeps it as filter state `wasm.<path>` of the stream; a root
        // context has no stream info.
        if s.in_stream().is_none() {
            return Status::NotFound;
        }
        let held = s.outcome.properties.byte_size();
        if held + path.len() + value.len() > s.options.limits.property_bytes {
            return Status::InternalFailure;
        }
        s.outcome.properties.set(path, value);
        Status::Ok
    })
}

// Stream control.

#[allow(clippy::too_many_arguments)]
pub(crate) fn proxy_send_local_response<T: 'static>(
    mut c: Ctx<'_, T>,
    status: u32,
    details_ptr: u32,
    details_len: u32,
    body_ptr: u32,
    body_len: u32,
    headers_ptr: u32,
    headers_len: u32,
    grpc_status: i32,
) -> Answer {
    on_memory(&mut c, |mem, s| {
        let (Some(details), Some(body), Some(headers)) = (
            bytes(mem, details_ptr, details_len),
            bytes(mem, body_ptr, body_len),
            bytes(mem, headers_ptr, headers_len),
        ) else {
            return Status::InvalidMemoryAccess;
        };
        let Some(headers) = parse_pairs(headers) else {
            return Status::BadArgument;
        };
        s.local_reply_sent = true;
        // Only a stream has a reply to send; the first one wins.
        if s.in_stream().is_none() || s.outcome.local_response.is_some() {
            return Status::Ok;
        }
        let mut reply = s.spare_reply.take().unwrap_or_default();
        reply.status = status;
        reply.details.clear();
        reply.details.extend(details.iter().map(|&b| match b {
            b if b.is_ascii_whitespace() => b'_',
            b => b,
        }));
        reply.body.clear();
        reply.body.extend_from_slice(body);
        reply.headers.set_pairs(headers);
        reply.grpc_status = u32::try_from(grpc_status).ok().filter(|&g| g <= 16);
        s.outcome.local_response = Some(reply);
        Status::Ok
    })
}

fn stream_call<T: 'static>(c: &mut Ctx<'_, T>, t: u32, close: bool) -> Answer {
    let Some(t) = StreamType::from_u32(t) else {
        return done(Status::BadArgument);
    };
    let s = c.state();
    if s.in_hop() {
        let call = if close {
            StreamCall::Close(t)
        } else {
            StreamCall::Continue(t)
        };
        s.outcome.stream_calls.push(call);
    }
    let effective = s.effective;
    let Some(stream) = s.stream.as_mut().filter(|st| st.id == effective) else {
        // A root context has no stream to act on; Envoy ignores the call.
        return done(match t {
            StreamType::Upstream if !close => Status::Unimplemented,
            _ => Status::Ok,
        });
    };
    let half = match t {
        StreamType::HttpRequest => &mut stream.request,
        StreamType::HttpResponse => &mut stream.response,
        StreamType::Upstream if !close => return done(Status::Unimplemented),
        _ => return done(Status::Ok),
    };
    *half = match (*half, close) {
        (_, true) => HalfState::Closed,
        // Envoy lets go of the held part at once; the stream resumes when
        // the callback returns.
        (HalfState::Held(_), false) => HalfState::Flowing,
        (other, false) => other,
    };
    done(Status::Ok)
}

pub(crate) fn proxy_continue_stream<T: 'static>(mut c: Ctx<'_, T>, t: u32) -> Answer {
    stream_call(&mut c, t, false)
}

pub(crate) fn proxy_close_stream<T: 'static>(mut c: Ctx<'_, T>, t: u32) -> Answer {
    stream_call(&mut c, t, true)
}

pub(crate) fn proxy_get_status<T: 'static>(
    mut c: Ctx<'_, T>,
    code_ptr: u32,
    ptr_ptr: u32,
    size_ptr: u32,
) -> Answer {
    stage_and_reply(&mut c, ptr_ptr, size_ptr, |mem, s| {
        let (code, message) = s.status;
        if !write_u32(mem, code_ptr, code) {
            return Status::InvalidMemoryAccess;
        }
        s.out.clear();
        s.out.extend_from_slice(message.as_bytes());
        Status::Ok
    })
}

// HTTP callouts.

#[allow(clippy::too_many_arguments)]
pub(crate) fn proxy_http_call<T: 'static>(
    mut c: Ctx<'_, T>,
    upstream_ptr: u32,
    upstream_len: u32,
    headers_ptr: u32,
    headers_len: u32,
    body_ptr: u32,
    body_len: u32,
    trailers_ptr: u32,
    trailers_len: u32,
    timeout_ms: u32,
    token_ptr: u32,
) -> Answer {
    on_memory(&mut c, |mem, s| {
        let (Some(upstream), Some(headers), Some(body), Some(trailers)) = (
            bytes(mem, upstream_ptr, upstream_len),
            bytes(mem, headers_ptr, headers_len),
            bytes(mem, body_ptr, body_len),
            bytes(mem, trailers_ptr, trailers_len),
        ) else {
            return Status::InvalidMemoryAccess;
        };
        let (upstream, body) = (
            String::from_utf8_lossy(upstream).into_owned(),
            body.to_vec(),
        );
        let (Some(headers), Some(trailers)) = (map_from(headers), map_from(trailers)) else {
            return Status::BadArgument;
        };
        // The C++ host writes the token slot first to check it.
        if !write_u32(mem, token_ptr, 0) {
            return Status::InvalidMemoryAccess;
        }
        let known = match &s.options.clusters {
            Some(clusters) => clusters.contains(&upstream),
            None => !upstream.is_empty(),
        };
        let complete = [":path", ":method", ":authority"]
            .iter()
            .all(|h| headers.get(h).is_some());
        if !known || !complete || i32::try_from(timeout_ms).is_err() {
            return Status::BadArgument;
        }
        let made = if s.in_hop() {
            s.outcome.callouts.len()
        } else {
            s.vm_callouts.len()
        };
        if made >= s.options.limits.callouts {
            return Status::InternalFailure;
        }
        let token = s.next_callout;
        s.next_callout = s.next_callout.wrapping_add(1).max(1);
        let callout = Callout {
            token,
            upstream,
            headers,
            body,
            trailers,
            timeout_ms,
            answered: false,
        };
        if s.in_hop() {
            s.outcome.callouts.push(callout);
        } else {
            s.vm_callouts.push(callout);
        }
        ok_if(write_u32(mem, token_ptr, token))
    })
}

// Contexts.

pub(crate) fn proxy_set_effective_context<T: 'static>(mut c: Ctx<'_, T>, context: u32) -> Answer {
    let s = c.state();
    let live = s.stream.is_some_and(|st| st.id == context);
    if context != 0 && (live || s.roots.iter().any(|r| r.id == context)) {
        s.effective = context;
        done(Status::Ok)
    } else {
        done(Status::BadArgument)
    }
}

/// Only a root context pending shutdown can be finished; the simulator
/// never shuts roots down.
pub(crate) fn proxy_done<T: 'static>(_c: Ctx<'_, T>) -> Answer {
    done(Status::NotFound)
}

/// Envoy registers a few foreign functions (`compress`, `declare_property`,
/// ...); none is simulated, so every name is unknown: `NotFound`.
pub(crate) fn proxy_call_foreign_function<T: 'static>(
    mut c: Ctx<'_, T>,
    name_ptr: u32,
    name_len: u32,
    args_ptr: u32,
    args_len: u32,
    _results_ptr: u32,
    _results_size_ptr: u32,
) -> Answer {
    on_memory(&mut c, |mem, _| {
        match (
            bytes(mem, name_ptr, name_len),
            bytes(mem, args_ptr, args_len),
        ) {
            (Some(_), Some(_)) => Status::NotFound,
            _ => Status::InvalidMemoryAccess,
        }
    })
}

// Shared data and queues.

pub(crate) fn proxy_get_shared_data<T: 'static>(
    mut c: Ctx<'_, T>,
    key_ptr: u32,
    key_len: u32,
    ptr_ptr: u32,
    size_ptr: u32,
    cas_ptr: u32,
) -> Answer {
    let mut cas = 0;
    let status = with_memory(&mut c, Status::InvalidMemoryAccess, |mem, s| {
        let Some(key) = bytes(mem, key_ptr, key_len) else {
            return Status::InvalidMemoryAccess;
        };
        match s.shared.get(key, &mut s.out) {
            Ok(found) => {
                cas = found;
                Status::Ok
            }
            Err(status) => status,
        }
    });
    if status != Status::Ok {
        return done(status);
    }
    match reply(&mut c, ptr_ptr, size_ptr)? {
        0 => on_memory(&mut c, |mem, _| ok_if(write_u32(mem, cas_ptr, cas))),
        status => Ok(status),
    }
}

pub(crate) fn proxy_set_shared_data<T: 'static>(
    mut c: Ctx<'_, T>,
    key_ptr: u32,
    key_len: u32,
    value_ptr: u32,
    value_len: u32,
    cas: u32,
) -> Answer {
    on_memory(&mut c, |mem, s| {
        match (
            bytes(mem, key_ptr, key_len),
            bytes(mem, value_ptr, value_len),
        ) {
            (Some(key), Some(value)) => {
                s.shared
                    .set(key, value, cas, s.options.limits.shared_data_bytes)
            }
            _ => Status::InvalidMemoryAccess,
        }
    })
}

pub(crate) fn proxy_register_shared_queue<T: 'static>(
    mut c: Ctx<'_, T>,
    name_ptr: u32,
    name_len: u32,
    token_ptr: u32,
) -> Answer {
    on_memory(&mut c, |mem, s| {
        let Some(name) = bytes(mem, name_ptr, name_len) else {
            return Status::InvalidMemoryAccess;
        };
        // Readiness is reported to the root context, as the C++ host does.
        let Some(root) = s.root().map(|r| r.id) else {
            return Status::BadArgument;
        };
        let Some(token) = s.shared.register_queue(
            s.options.vm_id.as_bytes(),
            name,
            s.serial,
            root,
            s.options.limits.queues,
        ) else {
            return Status::InternalFailure;
        };
        ok_if(write_u32(mem, token_ptr, token))
    })
}

pub(crate) fn proxy_resolve_shared_queue<T: 'static>(
    mut c: Ctx<'_, T>,
    vm_id_ptr: u32,
    vm_id_len: u32,
    name_ptr: u32,
    name_len: u32,
    token_ptr: u32,
) -> Answer {
    on_memory(&mut c, |mem, s| {
        let (Some(vm_id), Some(name)) = (
            bytes(mem, vm_id_ptr, vm_id_len),
            bytes(mem, name_ptr, name_len),
        ) else {
            return Status::InvalidMemoryAccess;
        };
        let vm_id = if vm_id.is_empty() {
            s.options.vm_id.as_bytes()
        } else {
            vm_id
        };
        match s.shared.resolve_queue(vm_id, name) {
            Some(token) => ok_if(write_u32(mem, token_ptr, token)),
            None => Status::NotFound,
        }
    })
}

pub(crate) fn proxy_dequeue_shared_queue<T: 'static>(
    mut c: Ctx<'_, T>,
    token: u32,
    ptr_ptr: u32,
    size_ptr: u32,
) -> Answer {
    stage_and_reply(&mut c, ptr_ptr, size_ptr, |_, s| {
        s.shared.dequeue(token, &mut s.out)
    })
}

pub(crate) fn proxy_enqueue_shared_queue<T: 'static>(
    mut c: Ctx<'_, T>,
    token: u32,
    value_ptr: u32,
    value_len: u32,
) -> Answer {
    on_memory(&mut c, |mem, s| match bytes(mem, value_ptr, value_len) {
        Some(value) => s.shared.enqueue(token, value, s.options.limits.queue_bytes),
        None => Status::InvalidMemoryAccess,
    })
}

// Metrics.

pub(crate) fn proxy_define_metric<T: 'static>(
    mut c: Ctx<'_, T>,
    kind: u32,
    name_ptr: u32,
    name_len: u32,
    id_ptr: u32,
) -> Answer {
    on_memory(&mut c, |mem, s| {
        let Some(name) = bytes(mem, name_ptr, name_len) else {
            return Status::InvalidMemoryAccess;
        };
        let Some(kind) = MetricKind::from_u32(kind) else {
            return Status::BadArgument;
        };
        match s.metrics.define(kind, name, s.options.limits.metrics) {
            Some(id) => ok_if(write_u32(mem, id_ptr, id)),
            None => Status::InternalFailure,
        }
    })
}

pub(crate) fn proxy_increment_metric<T: 'static>(mut c: Ctx<'_, T>, id: u32, delta: i64) -> Answer {
    done(c.state().metrics.increment(id, delta))
}

pub(crate) fn proxy_record_metric<T: 'static>(mut c: Ctx<'_, T>, id: u32, value: u64) -> Answer {
    done(c.state().metrics.record(id, value))
}

pub(crate) fn proxy_get_metric<T: 'static>(mut c: Ctx<'_, T>, id: u32, ptr: u32) -> Answer {
    on_memory(&mut c, |mem, s| match s.metrics.get(id) {
        Ok(value) => ok_if(write_u64(mem, ptr, value)),
        Err(status) => status,
    })
}

// gRPC: not simulated. Each call answers `Unimplemented`, the status the
// ABI gives a host that declines a call, so a guest's error path runs.

#[allow(clippy::too_many_arguments)]
pub(crate) fn proxy_grpc_call<T: 'static>(
    _c: Ctx<'_, T>,
    _upstream: u32,
    _upstream_len: u32,
    _service: u32,
    _service_len: u32,
    _method: u32,
    _method_len: u32,
    _metadata: u32,
    _metadata_len: u32,
    _message: u32,
    _message_len: u32,
    _timeout_ms: u32,
    _token_ptr: u32,
) -> Answer {
    done(Status::Unimplemented)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn proxy_grpc_stream<T: 'static>(
    _c: Ctx<'_, T>,
    _upstream: u32,
    _upstream_len: u32,
    _service: u32,
    _service_len: u32,
    _method: u32,
    _method_len: u32,
    _metadata: u32,
    _metadata_len: u32,
    _token_ptr: u32,
) -> Answer {
    done(Status::Unimplemented)
}

pub(crate) fn proxy_grpc_send<T: 'static>(
    _c: Ctx<'_, T>,
    _token: u32,
    _message: u32,
    _message_len: u32,
    _end_stream: u32,
) -> Answer {
    done(Status::Unimplemented)
}

pub(crate) fn proxy_grpc_cancel<T: 'static>(_c: Ctx<'_, T>, _token: u32) -> Answer {
    done(Status::Unimplemented)
}

pub(crate) fn proxy_grpc_close<T: 'static>(_c: Ctx<'_, T>, _token: u32) -> Answer {
    done(Status::Unimplemented)
}
