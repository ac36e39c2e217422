//! The host functions of ABI 0.2.1, listed once.
//!
//! [`for_each_host_function!`] hands the whole list to a macro of the
//! caller's, one entry per function: `name(arg: kind, ...);`, every
//! function returning a [`Status`](crate::Status) as `u32`. The kinds say
//! what an argument is on each side of the boundary:
//!
//! | kind | meaning | guest type | host type |
//! |---|---|---|---|
//! | `u32`, `i32`, `i64`, `u64` | a number | itself | itself |
//! | `ptr` | guest bytes the host reads | `*const u8` | `u32` |
//! | `len` | a length or offset | `usize` | `u32` |
//! | `out_ptr` | where the host writes a pointer it allocated | `*mut *mut u8` | `u32` |
//! | `out_len` | where the host writes a length | `*mut usize` | `u32` |
//! | `out_u32`, `out_u64` | where the host writes a number | `*mut u32`, `*mut u64` | `u32` |
//!
//! A guest declares its imports with [`declare_host_functions!`]; a host
//! builds its linker from [`for_each_host_function!`] and maps kinds to its
//! own types (a Rust host on wasm32: [`host_type!`]).

/// Calls `$callback! { name(arg: kind, ...); ... }` (`$callback` a macro
/// name or path) with every host function
/// of ABI 0.2.1. See the module documentation for the kinds.
#[macro_export]
macro_rules! for_each_host_function {
    ($($callback:tt)+) => {
        $($callback)+! {
            proxy_log(level: u32, message: ptr, message_len: len);
            proxy_get_log_level(return_level: out_u32);
            proxy_get_current_time_nanoseconds(return_time: out_u64);
            proxy_set_tick_period_milliseconds(period: u32);
            proxy_get_buffer_bytes(buffer_type: u32, start: len, max_size: len, return_data: out_ptr, return_size: out_len);
            proxy_get_buffer_status(buffer_type: u32, return_size: out_len, return_flags: out_u32);
            proxy_set_buffer_bytes(buffer_type: u32, start: len, size: len, data: ptr, data_len: len);
            proxy_get_header_map_pairs(map_type: u32, return_data: out_ptr, return_size: out_len);
            proxy_set_header_map_pairs(map_type: u32, data: ptr, data_len: len);
            proxy_get_header_map_value(map_type: u32, key: ptr, key_len: len, return_data: out_ptr, return_size: out_len);
            proxy_add_header_map_value(map_type: u32, key: ptr, key_len: len, value: ptr, value_len: len);
            proxy_replace_header_map_value(map_type: u32, key: ptr, key_len: len, value: ptr, value_len: len);
            proxy_remove_header_map_value(map_type: u32, key: ptr, key_len: len);
            proxy_get_header_map_size(map_type: u32, return_size: out_len);
            proxy_get_property(path: ptr, path_len: len, return_data: out_ptr, return_size: out_len);
            proxy_set_property(path: ptr, path_len: len, value: ptr, value_len: len);
            proxy_send_local_response(status_code: u32, details: ptr, details_len: len, body: ptr, body_len: len, headers: ptr, headers_len: len, grpc_status: i32);
            proxy_continue_stream(stream_type: u32);
            proxy_close_stream(stream_type: u32);
            proxy_get_status(return_code: out_u32, return_message: out_ptr, return_message_len: out_len);
            proxy_http_call(upstream: ptr, upstream_len: len, headers: ptr, headers_len: len, body: ptr, body_len: len, trailers: ptr, trailers_len: len, timeout_ms: u32, return_token: out_u32);
            proxy_grpc_call(upstream: ptr, upstream_len: len, service: ptr, service_len: len, method: ptr, method_len: len, metadata: ptr, metadata_len: len, message: ptr, message_len: len, timeout_ms: u32, return_token: out_u32);
            proxy_grpc_stream(upstream: ptr, upstream_len: len, service: ptr, service_len: len, method: ptr, method_len: len, metadata: ptr, metadata_len: len, return_token: out_u32);
            proxy_grpc_send(token: u32, message: ptr, message_len: len, end_stream: u32);
            proxy_grpc_cancel(token: u32);
            proxy_grpc_close(token: u32);
            proxy_set_effective_context(context_id: u32);
            proxy_done();
            proxy_call_foreign_function(name: ptr, name_len: len, args: ptr, args_len: len, return_results: out_ptr, return_results_len: out_len);
            proxy_get_shared_data(key: ptr, key_len: len, return_value: out_ptr, return_value_len: out_len, return_cas: out_u32);
            proxy_set_shared_data(key: ptr, key_len: len, value: ptr, value_len: len, cas: u32);
            proxy_register_shared_queue(name: ptr, name_len: len, return_token: out_u32);
            proxy_resolve_shared_queue(vm_id: ptr, vm_id_len: len, name: ptr, name_len: len, return_token: out_u32);
            proxy_dequeue_shared_queue(token: u32, return_data: out_ptr, return_size: out_len);
            proxy_enqueue_shared_queue(token: u32, value: ptr, value_len: len);
            proxy_define_metric(metric_type: u32, name: ptr, name_len: len, return_id: out_u32);
            proxy_increment_metric(metric_id: u32, offset: i64);
            proxy_record_metric(metric_id: u32, value: u64);
            proxy_get_metric(metric_id: u32, return_value: out_u64);
        }
    };
}

/// The guest-side Rust type of an argument kind.
#[doc(hidden)]
#[macro_export]
macro_rules! __guest_type {
    (u32) => { u32 };
    (i32) => { i32 };
    (i64) => { i64 };
    (u64) => { u64 };
    (ptr) => { *const u8 };
    (len) => { usize };
    (out_ptr) => { *mut *mut u8 };
    (out_len) => { *mut usize };
    (out_u32) => { *mut u32 };
    (out_u64) => { *mut u64 };
}

/// The host-side Rust type of an argument kind, for a host of wasm32
/// modules: pointers and lengths are `u32`.
#[macro_export]
macro_rules! host_type {
    (u32) => {
        u32
    };
    (i32) => {
        i32
    };
    (i64) => {
        i64
    };
    (u64) => {
        u64
    };
    (ptr) => {
        u32
    };
    (len) => {
        u32
    };
    (out_ptr) => {
        u32
    };
    (out_len) => {
        u32
    };
    (out_u32) => {
        u32
    };
    (out_u64) => {
        u32
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __declare_guest {
    ($($name:ident($($arg:ident: $kind:ident),*);)*) => {
        #[cfg(target_arch = "wasm32")]
        #[link(wasm_import_module = "env")]
        unsafe extern "C" {
            $(
                #[doc = concat!("`env.", stringify!($name), "`.")]
                pub fn $name($($arg: $crate::__guest_type!($kind)),*) -> u32;
            )*
        }
        $(
            #[doc = concat!("`env.", stringify!($name), "` outside wasm32: answers `Unimplemented`.")]
            ///
            /// # Safety
            /// Touches nothing; `unsafe` only to match the wasm32 import.
            #[cfg(not(target_arch = "wasm32"))]
            #[allow(unused_variables, clippy::too_many_arguments)]
            pub unsafe fn $name($($arg: $crate::__guest_type!($kind)),*) -> u32 {
                $crate::Status::Unimplemented as u32
            }
        )*
    };
}

/// Declares every host function of ABI 0.2.1 as an `unsafe` function in
/// the calling module: the `env` imports on wasm32, and stand-ins that
/// answer `Unimplemented` elsewhere (so the guest also builds natively for
/// clippy and docs). The linker imports only the functions a module calls.
#[macro_export]
macro_rules! declare_host_functions {
    () => {
        $crate::for_each_host_function!($crate::__declare_guest);
    };
}

#[cfg(test)]
mod tests {
    /// Counts the list, and checks that every name is distinct and a
    /// `proxy_*` name.
    macro_rules! names {
        ($($name:ident($($arg:ident: $kind:ident),*);)*) => {
            [$(stringify!($name)),*]
        };
    }

    #[test]
    fn the_list_names_each_host_function_once() {
        let names = crate::for_each_host_function!(names);
        assert_eq!(names.len(), 39, "ABI 0.2.1 has 39 env.proxy_* functions");
        for (i, n) in names.iter().enumerate() {
            assert!(n.starts_with("proxy_"), "{n}");
            assert!(!names[..i].contains(n), "{n} twice");
        }
    }
}
