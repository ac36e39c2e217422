//! Builds the one `Linker` of a loaded module from the module's own import
//! list, and returns it pre-instantiated (`InstancePre`).
//!
//! For each import:
//! - a known `env.proxy_*` or WASI name gets its real host function (a
//!   signature that does not match is a load error naming the import);
//! - an unknown `env.proxy_*` function returning one `i32` (the gRPC calls,
//!   legacy 0.1.0 names, future additions) gets a stub answering
//!   `Unimplemented` (12), the way the ABI lets a host decline;
//! - an unknown `wasi_snapshot_preview1` function returning one `i32` gets
//!   a stub answering `NOSYS` (52);
//! - anything else (other modules, non-function imports, stubs that could
//!   not return a status) is a load error that names the import and its
//!   type.
//!
//! Invariant: every import is either defined or reported; no panics.

use wasmtime::{Engine, ExternType, FuncType, InstancePre, Linker, Module, Val, ValType};

use super::abi::{Status, errno};
use super::error::HostError;
use super::proxy;
use super::state::HostState;
use super::wasi;

type Define = fn(&mut Linker<HostState>) -> wasmtime::Result<()>;

/// `(import name, definer)` pairs for one import module.
macro_rules! table {
    ($module:literal, $path:ident: $($name:ident),* $(,)?) => {
        &[$((stringify!($name), |linker: &mut Linker<HostState>| {
            linker.func_wrap($module, stringify!($name), $path::$name)?;
            Ok(())
        })),*]
    };
}

const PROXY: &[(&str, Define)] = table!("env", proxy:
    proxy_log,
    proxy_get_log_level,
    proxy_get_current_time_nanoseconds,
    proxy_set_tick_period_milliseconds,
    proxy_get_buffer_bytes,
    proxy_get_buffer_status,
    proxy_set_buffer_bytes,
    proxy_get_header_map_pairs,
    proxy_set_header_map_pairs,
    proxy_get_header_map_value,
    proxy_add_header_map_value,
    proxy_replace_header_map_value,
    proxy_remove_header_map_value,
    proxy_get_header_map_size,
    proxy_get_property,
    proxy_set_property,
    proxy_send_local_response,
    proxy_continue_stream,
    proxy_close_stream,
    proxy_get_status,
    proxy_http_call,
    proxy_set_effective_context,
    proxy_done,
    proxy_call_foreign_function,
    proxy_get_shared_data,
    proxy_set_shared_data,
    proxy_register_shared_queue,
    proxy_resolve_shared_queue,
    proxy_dequeue_shared_queue,
    proxy_enqueue_shared_queue,
    proxy_define_metric,
    proxy_increment_metric,
    proxy_record_metric,
    proxy_get_metric,
);

const WASI: &[(&str, Define)] = table!("wasi_snapshot_preview1", wasi:
    fd_write,
    fd_fdstat_get,
    fd_prestat_get,
    clock_time_get,
    random_get,
    environ_sizes_get,
    environ_get,
    args_sizes_get,
    args_get,
    proc_exit,
);

fn returns_status(ty: &FuncType) -> bool {
    let mut results = ty.results();
    matches!((results.next(), results.next()), (Some(ValType::I32), None))
}

fn stub(
    linker: &mut Linker<HostState>,
    module: &str,
    name: &str,
    ty: FuncType,
    code: i32,
) -> wasmtime::Result<()> {
    linker.func_new(module, name, ty, move |_, _, results| {
        if let Some(slot) = results.first_mut() {
            *slot = Val::I32(code);
        }
        Ok(())
    })?;
    Ok(())
}

fn find(table: &[(&str, Define)], name: &str) -> Option<Define> {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, define)| define)
}

/// Defines exactly the module's imports and pre-instantiates it.
pub(crate) fn link(engine: &Engine, module: &Module) -> Result<InstancePre<HostState>, HostError> {
    let mut linker = Linker::new(engine);
    linker.allow_shadowing(true);
    for import in module.imports() {
        let (from, name) = (import.module(), import.name());
        let defined = match (from, import.ty()) {
            ("env", ExternType::Func(ty)) => match find(PROXY, name) {
                Some(define) => define(&mut linker),
                None if name.starts_with("proxy_") && returns_status(&ty) => {
                    stub(&mut linker, from, name, ty, Status::Unimplemented as i32)
                }
                None => return Err(unsupported(from, name, &import.ty())),
            },
            ("wasi_snapshot_preview1", ExternType::Func(ty)) => match find(WASI, name) {
                Some(define) => define(&mut linker),
                None if returns_status(&ty) => stub(&mut linker, from, name, ty, errno::NOSYS),
                None => return Err(unsupported(from, name, &import.ty())),
            },
            (_, ty) => return Err(unsupported(from, name, &ty)),
        };
        defined.map_err(|e| HostError::Load(format!("defining import {from}.{name}: {e:#}")))?;
    }
    linker
        .instantiate_pre(module)
        .map_err(|e| HostError::Load(format!("linking the module: {e:#}")))
}

fn unsupported(from: &str, name: &str, ty: &ExternType) -> HostError {
    let what = match ty {
        ExternType::Func(f) => format!("function {}", signature(f)),
        ExternType::Memory(_) => "memory".into(),
        ExternType::Table(_) => "table".into(),
        ExternType::Global(_) => "global".into(),
        _ => "item".into(),
    };
    HostError::Load(format!(
        "unsupported import {from}.{name} ({what}): the host provides env.proxy_* functions \
         returning a status and wasi_snapshot_preview1 functions returning an errno"
    ))
}

/// `(i32, i64) -> (i32)`.
pub(crate) fn signature(ty: &FuncType) -> String {
    let list = |types: &mut dyn Iterator<Item = ValType>| {
        types.map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
    };
    format!(
        "({}) -> ({})",
        list(&mut ty.params()),
        list(&mut ty.results())
    )
}
