//! `proxy_get_property`: attribute paths (`\0`-separated segments) answered
//! the way Envoy's `Context::getProperty` answers them.
//!
//! Lookup order: the hop's overrides ([`Hop::properties`](super::Hop)), the
//! VM's static ones ([`HostOptions::properties`](super::HostOptions)), the
//! built-in attributes below, then filter state the guest set this hop with
//! `proxy_set_property` (Envoy stores it as `wasm.<path>` and finds it by
//! the path's *first* segment).
//!
//! Built-ins (strings as bytes; integers as 8-byte little-endian, as
//! Envoy serializes CEL values):
//! - any context: `plugin_name`, `plugin_root_id` (of the context's root),
//!   `plugin_vm_id`;
//! - stream contexts: `request.{path, url_path, query, host, scheme,
//!   method, id, useragent, referer, headers[.<name>]}` while the request
//!   headers are visible (see [`state`](super::state)), `request.protocol`,
//!   `response.{code, code_details, headers[.<name>]}` once a response
//!   exists, `source.{address, port}`, `destination.{address, port}`.
//!
//! A missing attribute is `NotFound`; a `headers` map is serialized as
//! pairs, a repeated header's values joined with `,`.
//!
//! Invariant: answers into `ProxyState::out`; never panics on any path.

use std::io::Write;

use proxy_wasm_abi::{Status, pairs};

use super::maps::HeaderMap;
use super::state::ProxyState;

/// Looks `path` up and stages its value in `state.out`.
pub(crate) fn get(state: &mut ProxyState, path: &[u8]) -> Status {
    let mut out = std::mem::take(&mut state.out);
    out.clear();
    let status = lookup(state, path, &mut out);
    state.out = out;
    status
}

fn lookup(s: &ProxyState, path: &[u8], out: &mut Vec<u8>) -> Status {
    let stream = s.in_stream().is_some();
    let found = (if stream {
        s.hop.properties.get(path)
    } else {
        None
    })
    .or_else(|| s.options.properties.get(path));
    if let Some(value) = found {
        out.extend_from_slice(value);
        return Status::Ok;
    }
    let mut segments = path.split(|&b| b == 0);
    let top = segments.next().unwrap_or_default();
    let field = segments.next();
    let sub = segments.next();
    if segments.next().is_some() {
        return Status::NotFound;
    }
    let root = s.root().map(|r| &r.options);
    let plugin = match top {
        b"plugin_name" => root.map(|r| &r.plugin_name),
        b"plugin_root_id" => root.map(|r| &r.root_id),
        b"plugin_vm_id" => Some(&s.options.vm_id),
        _ => None,
    };
    if let Some(text) = plugin {
        if field.is_some() {
            return Status::NotFound;
        }
        out.extend_from_slice(text.as_bytes());
        return Status::Ok;
    }
    if !stream {
        return Status::NotFound;
    }
    let answered = match (top, field) {
        (b"request", Some(field)) => request(s, field, sub, out),
        (b"response", Some(field)) => response(s, field, sub, out),
        (b"source", Some(field)) if sub.is_none() => address(s.hop.source, field, out),
        (b"destination", Some(field)) if sub.is_none() => address(s.hop.destination, field, out),
        (_, None) => match s.outcome.properties.get(top) {
            Some(value) => {
                out.extend_from_slice(value);
                Some(())
            }
            None => None,
        },
        _ => None,
    };
    match answered {
        Some(()) => Status::Ok,
        None => Status::NotFound,
    }
}

fn request(s: &ProxyState, field: &[u8], sub: Option<&[u8]>, out: &mut Vec<u8>) -> Option<()> {
    if field == b"protocol" && sub.is_none() {
        out.extend_from_slice(s.hop.protocol.as_str().as_bytes());
        return Some(());
    }
    if !s.request_readable() {
        return None;
    }
    let headers = &s.hop.request_headers;
    if field == b"headers" {
        return map(headers, sub, out);
    }
    sub.is_none().then_some(())?;
    let path = || headers.get(":path");
    let value = match field {
        b"path" => path()?,
        b"url_path" => {
            let p = path()?;
            p.split(|&b| b == b'?').next().unwrap_or(p)
        }
        b"query" => {
            let p = path()?;
            p.iter()
                .position(|&b| b == b'?')
                .map_or(&[][..], |i| &p[i + 1..])
        }
        b"host" => headers.get(":authority")?,
        b"scheme" => headers.get(":scheme")?,
        b"method" => headers.get(":method")?,
        b"id" => headers.get("x-request-id")?,
        b"useragent" => headers.get("user-agent")?,
        b"referer" => headers.get("referer")?,
        _ => return None,
    };
    out.extend_from_slice(value);
    Some(())
}

fn response(s: &ProxyState, field: &[u8], sub: Option<&[u8]>, out: &mut Vec<u8>) -> Option<()> {
    if !s.response_started() {
        return None;
    }
    match (field, sub) {
        (b"code", None) => {
            let status = s.hop.response_headers.get(":status")?;
            let code: i64 = std::str::from_utf8(status).ok()?.parse().ok()?;
            out.extend_from_slice(&code.to_le_bytes());
            Some(())
        }
        (b"code_details", None) => {
            out.extend_from_slice(&s.outcome.local_response.as_ref()?.details);
            Some(())
        }
        (b"headers", _) if s.response_readable() => map(&s.hop.response_headers, sub, out),
        _ => None,
    }
}

fn map(headers: &HeaderMap, name: Option<&[u8]>, out: &mut Vec<u8>) -> Option<()> {
    match name {
        Some(name) => {
            let mut values = headers.get_all(name);
            out.extend_from_slice(values.next()?);
            for more in values {
                out.push(b',');
                out.extend_from_slice(more);
            }
        }
        None if headers.is_empty() => {}
        None => {
            out.resize(pairs::encoded_len(headers.iter()), 0);
            pairs::encode(headers.iter(), out)?;
        }
    }
    Some(())
}

fn address(addr: std::net::SocketAddr, field: &[u8], out: &mut Vec<u8>) -> Option<()> {
    match field {
        // Envoy's `Address::asString`: `ip:port`, IPv6 in brackets.
        b"address" => write!(out, "{addr}").ok(),
        b"port" => {
            out.extend_from_slice(&i64::from(addr.port()).to_le_bytes());
            Some(())
        }
        _ => None,
    }
}
