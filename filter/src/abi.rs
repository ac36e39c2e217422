//! The proxy-wasm ABI 0.2.1 host functions Laneway uses, and safe wrappers.
//!
//! Host functions return a `WasmResult`; the wrappers turn anything but
//! `Ok` into a [`Status`] and never panic. Buffers the host fills are
//! allocated by the host through [`proxy_on_memory_allocate`] and owned
//! here by [`HostBytes`], which frees them on drop: the only heap memory
//! the request path touches.

use std::ptr::null_mut;

/// A `WasmResult` other than `Ok`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub u32);

pub const NOT_FOUND: Status = Status(1);

/// `proxy_log` levels.
#[derive(Clone, Copy)]
#[repr(u32)]
#[allow(dead_code)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

/// Header map types.
pub const REQUEST_HEADERS: u32 = 0;
/// Buffer types.
pub const PLUGIN_CONFIGURATION: u32 = 7;
/// Metric types.
pub const COUNTER: u32 = 0;
pub const GAUGE: u32 = 1;
/// `proxy_on_request_headers` actions.
pub const CONTINUE: u32 = 0;
pub const PAUSE: u32 = 1;

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        details_data: *const u8,
        details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
}

/// Native builds (clippy, docs) get stand-ins that report `Unimplemented`;
/// the filter only ever runs as wasm.
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::too_many_arguments)]
mod native {
    const UNIMPLEMENTED: u32 = 12;
    pub unsafe fn proxy_log(_: u32, _: *const u8, _: usize) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_get_buffer_bytes(
        _: u32,
        _: usize,
        _: usize,
        _: *mut *mut u8,
        _: *mut usize,
    ) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_get_header_map_value(
        _: u32,
        _: *const u8,
        _: usize,
        _: *mut *mut u8,
        _: *mut usize,
    ) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_get_header_map_pairs(_: u32, _: *mut *mut u8, _: *mut usize) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_replace_header_map_value(
        _: u32,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
    ) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_send_local_response(
        _: u32,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: i32,
    ) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_define_metric(_: u32, _: *const u8, _: usize, _: *mut u32) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_increment_metric(_: u32, _: i64) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_record_metric(_: u32, _: u64) -> u32 {
        UNIMPLEMENTED
    }
    pub unsafe fn proxy_set_property(_: *const u8, _: usize, _: *const u8, _: usize) -> u32 {
        UNIMPLEMENTED
    }
}
#[cfg(not(target_arch = "wasm32"))]
use native::*;

fn check(result: u32) -> Result<(), Status> {
    if result == 0 {
        Ok(())
    } else {
        Err(Status(result))
    }
}

/// Bytes the host copied into guest memory; freed on drop.
pub struct HostBytes {
    ptr: *mut u8,
    len: usize,
}

impl HostBytes {
    fn empty() -> HostBytes {
        HostBytes {
            ptr: null_mut(),
            len: 0,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        if self.ptr.is_null() || self.len == 0 {
            return &[];
        }
        // SAFETY: the host wrote `len` bytes at `ptr`, a block it obtained
        // from `proxy_on_memory_allocate(len)`, which we own until drop.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for HostBytes {
    fn drop(&mut self) {
        if !self.ptr.is_null() && self.len > 0 {
            // SAFETY: `ptr` came from `proxy_on_memory_allocate(len)`, which
            // leaked a `Vec<u8>` of capacity exactly `len`.
            drop(unsafe { Vec::from_raw_parts(self.ptr, 0, self.len) });
        }
    }
}

/// The allocator the host calls to copy data into guest memory.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buf = Vec::<u8>::with_capacity(size);
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr
}

fn filled(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Result<HostBytes, Status> {
    let mut bytes = HostBytes::empty();
    let result = call(&mut bytes.ptr, &mut bytes.len);
    check(result)?;
    Ok(bytes)
}

pub fn log(level: LogLevel, message: &str) {
    // SAFETY: pointer and length describe `message`.
    unsafe { proxy_log(level as u32, message.as_ptr(), message.len()) };
}

pub fn plugin_configuration(size: usize) -> Result<HostBytes, Status> {
    filled(|data, len| unsafe { proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, size, data, len) })
}

/// The first value of a request header; `Ok(None)` when absent.
pub fn request_header(name: &[u8]) -> Result<Option<HostBytes>, Status> {
    match filled(|data, len| unsafe {
        proxy_get_header_map_value(REQUEST_HEADERS, name.as_ptr(), name.len(), data, len)
    }) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(NOT_FOUND) => Ok(None),
        Err(e) => Err(e),
    }
}

/// All request headers, in the pairs serialization.
pub fn request_header_pairs() -> Result<HostBytes, Status> {
    filled(|data, len| unsafe { proxy_get_header_map_pairs(REQUEST_HEADERS, data, len) })
}

pub fn replace_request_header(name: &[u8], value: &[u8]) -> Result<(), Status> {
    check(unsafe {
        proxy_replace_header_map_value(
            REQUEST_HEADERS,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

pub fn send_local_response(
    status: u32,
    details: &[u8],
    body: &[u8],
    header_pairs: &[u8],
) -> Result<(), Status> {
    check(unsafe {
        proxy_send_local_response(
            status,
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            header_pairs.as_ptr(),
            header_pairs.len(),
            -1,
        )
    })
}

pub fn define_metric(kind: u32, name: &str) -> Result<u32, Status> {
    let mut id = 0;
    check(unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub fn increment_metric(id: u32, by: i64) -> Result<(), Status> {
    check(unsafe { proxy_increment_metric(id, by) })
}

pub fn record_metric(id: u32, value: u64) -> Result<(), Status> {
    check(unsafe { proxy_record_metric(id, value) })
}

pub fn set_property(path: &[u8], value: &[u8]) -> Result<(), Status> {
    check(unsafe { proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) })
}
