//! Safe wrappers over the proxy-wasm ABI 0.2.1 host functions the filter
//! calls. The functions themselves, their names and signatures, are
//! declared once in `proxy-wasm-abi` (shared with the simulator's host);
//! on native builds (clippy, docs) they answer `Unimplemented`.
//!
//! Every wrapper turns a status other than `Ok` into an `Err` and never
//! panics. Buffers the host fills are allocated by the host through
//! [`proxy_on_memory_allocate`] and owned here by [`HostBytes`], which frees
//! them on drop: the only heap memory the request path touches.

use std::ptr::null_mut;

pub use proxy_wasm_abi::{Action, LogLevel, MetricKind, Status};
use proxy_wasm_abi::{BufferType, MapType};

/// Every ABI host function; the linker keeps only those called.
#[allow(dead_code)]
mod host {
    proxy_wasm_abi::declare_host_functions!();
}

fn check(result: u32) -> Result<(), Status> {
    match Status::from_u32(result) {
        Some(Status::Ok) => Ok(()),
        Some(status) => Err(status),
        None => Err(Status::InternalFailure),
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
    // SAFETY: pointer and length describe `message`, alive for the call.
    unsafe { host::proxy_log(level as u32, message.as_ptr(), message.len()) };
}

pub fn plugin_configuration(size: usize) -> Result<HostBytes, Status> {
    filled(|data, len| {
        // SAFETY: `data` and `len` point at the fields of a live
        // `HostBytes`, which the host fills with a block it allocated.
        unsafe {
            host::proxy_get_buffer_bytes(BufferType::PluginConfiguration as u32, 0, size, data, len)
        }
    })
}

/// The first value of a request header; `Ok(None)` when absent.
pub fn request_header(name: &[u8]) -> Result<Option<HostBytes>, Status> {
    let found = filled(|data, len| {
        // SAFETY: `name` is alive for the call; `data` and `len` as above.
        unsafe {
            host::proxy_get_header_map_value(
                MapType::RequestHeaders as u32,
                name.as_ptr(),
                name.len(),
                data,
                len,
            )
        }
    });
    match found {
        Ok(bytes) => Ok(Some(bytes)),
        Err(Status::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// All request headers, in the pairs serialization.
pub fn request_header_pairs() -> Result<HostBytes, Status> {
    filled(|data, len| {
        // SAFETY: `data` and `len` point at the fields of a live `HostBytes`.
        unsafe { host::proxy_get_header_map_pairs(MapType::RequestHeaders as u32, data, len) }
    })
}

pub fn replace_request_header(name: &[u8], value: &[u8]) -> Result<(), Status> {
    // SAFETY: both slices are alive for the call; the host only reads them.
    check(unsafe {
        host::proxy_replace_header_map_value(
            MapType::RequestHeaders as u32,
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
    // SAFETY: every slice is alive for the call; the host only reads them.
    check(unsafe {
        host::proxy_send_local_response(
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

pub fn define_metric(kind: MetricKind, name: &str) -> Result<u32, Status> {
    let mut id = 0;
    // SAFETY: `name` is alive for the call; `id` is a live local the host
    // writes one u32 into.
    check(unsafe { host::proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub fn increment_metric(id: u32, by: i64) -> Result<(), Status> {
    // SAFETY: no pointers.
    check(unsafe { host::proxy_increment_metric(id, by) })
}

pub fn record_metric(id: u32, value: u64) -> Result<(), Status> {
    // SAFETY: no pointers.
    check(unsafe { host::proxy_record_metric(id, value) })
}

pub fn set_property(path: &[u8], value: &[u8]) -> Result<(), Status> {
    // SAFETY: both slices are alive for the call; the host only reads them.
    check(unsafe {
        host::proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len())
    })
}

/// A property (`source\0address`); `Ok(None)` when absent.
pub fn property(path: &[u8]) -> Result<Option<HostBytes>, Status> {
    let found = filled(|data, len| {
        // SAFETY: `path` is alive for the call; `data` and `len` point at
        // the fields of a live `HostBytes`.
        unsafe { host::proxy_get_property(path.as_ptr(), path.len(), data, len) }
    });
    match found {
        Ok(bytes) => Ok(Some(bytes)),
        Err(Status::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The host's clock, in Unix nanoseconds.
pub fn current_time_ns() -> Result<u64, Status> {
    let mut ns = 0u64;
    // SAFETY: `ns` is a live local the host writes one u64 into.
    check(unsafe { host::proxy_get_current_time_nanoseconds(&mut ns) })?;
    Ok(ns)
}

/// Shared data `key` and its compare-and-swap version; `Ok(None)` when
/// absent.
pub fn shared_data(key: &[u8]) -> Result<Option<(HostBytes, u32)>, Status> {
    let mut bytes = HostBytes::empty();
    let mut cas = 0u32;
    // SAFETY: `key` is alive for the call; the out-pointers are the
    // fields of a live `HostBytes` and a live local.
    let result = unsafe {
        host::proxy_get_shared_data(
            key.as_ptr(),
            key.len(),
            &mut bytes.ptr,
            &mut bytes.len,
            &mut cas,
        )
    };
    match check(result) {
        Ok(()) => Ok(Some((bytes, cas))),
        Err(Status::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sets shared data `key` if its version is still `cas` (0: always):
/// `Ok(false)` on a compare-and-swap mismatch.
pub fn set_shared_data(key: &[u8], value: &[u8], cas: u32) -> Result<bool, Status> {
    // SAFETY: both slices are alive for the call; the host only reads them.
    match check(unsafe {
        host::proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    }) {
        Ok(()) => Ok(true),
        Err(Status::CasMismatch) => Ok(false),
        Err(e) => Err(e),
    }
}

pub fn add_request_header(name: &[u8], value: &[u8]) -> Result<(), Status> {
    // SAFETY: both slices are alive for the call; the host only reads them.
    check(unsafe {
        host::proxy_add_header_map_value(
            MapType::RequestHeaders as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

pub fn remove_request_header(name: &[u8]) -> Result<(), Status> {
    // SAFETY: `name` is alive for the call; the host only reads it.
    check(unsafe {
        host::proxy_remove_header_map_value(
            MapType::RequestHeaders as u32,
            name.as_ptr(),
            name.len(),
        )
    })
}
