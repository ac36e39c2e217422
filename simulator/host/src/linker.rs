//! Adds the proxy-wasm host to an embedder's `Linker<T>`, the way
//! wasmtime's WASI crates do: [`add_to_linker`] takes the linker and a
//! projection `fn(&mut T) -> &mut ProxyState`, so the host's state lives
//! inside the embedder's own store data beside anything else.
//!
//! For each import of the module:
//! - a known `env.proxy_*` function gets its host function, generated from
//!   the ABI crate's one list (`proxy_wasm_abi::for_each_host_function!`);
//!   a known `wasi_snapshot_preview1` function gets its host function;
//! - an unknown `env.proxy_*` function returning one `i32` (legacy 0.1.0
//!   names, future additions) gets a stub answering `Unimplemented` (12),
//!   the way the ABI lets a host decline; an unknown WASI function
//!   returning one `i32` gets a stub answering `NOSYS` (52);
//! - any other `env` or WASI import is a load error that names it;
//! - imports from other modules are left to the embedder, who defines them
//!   on the same linker (before or after). An embedder may also replace a
//!   host function: shadowing is allowed on the linker, so a later
//!   definition wins.
//!
//! A signature that does not match is reported by `instantiate_pre`, which
//! names the import.
//!
//! Invariant: every import is either defined or reported; no panics.

use proxy_wasm_abi::{Status, errno};
use wasmtime::{Caller, ExternType, FuncType, Linker, Module, Val, ValType};

use super::error::HostError;
use super::guest::{Ctx, Get};
use super::proxy;
use super::wasi;

macro_rules! proxy_table {
    ($($name:ident($($arg:ident: $kind:ident),*);)*) => {
        /// Defines host function `name`, if the ABI has it.
        fn define_proxy<T: 'static>(
            linker: &mut Linker<T>,
            get: Get<T>,
            name: &str,
        ) -> Option<wasmtime::Result<()>> {
            Some(match name {
                $(stringify!($name) => linker
                    .func_wrap(
                        "env",
                        stringify!($name),
                        move |caller: Caller<'_, T>, $($arg: proxy_wasm_abi::host_type!($kind)),*| {
                            proxy::$name(Ctx { caller, get }, $($arg),*)
                        },
                    )
                    .map(drop),)*
                _ => return None,
            })
        }
    };
}

proxy_wasm_abi::for_each_host_function!(proxy_table);

macro_rules! wasi_table {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        /// Defines WASI function `name`, if this host implements it.
        fn define_wasi<T: 'static>(
            linker: &mut Linker<T>,
            get: Get<T>,
            name: &str,
        ) -> Option<wasmtime::Result<()>> {
            Some(match name {
                $(stringify!($name) => linker
                    .func_wrap(
                        "wasi_snapshot_preview1",
                        stringify!($name),
                        move |caller: Caller<'_, T>, $($arg: $ty),*| {
                            wasi::$name(Ctx { caller, get }, $($arg),*)
                        },
                    )
                    .map(drop),)*
                _ => return None,
            })
        }
    };
}

wasi_table! {
    fd_write(fd: u32, iovs: u32, iovs_len: u32, written: u32);
    fd_fdstat_get(fd: u32, stat: u32);
    fd_prestat_get(fd: u32, stat: u32);
    clock_time_get(clock: u32, precision: u64, time: u32);
    random_get(buf: u32, len: u32);
    environ_sizes_get(count: u32, size: u32);
    environ_get(array: u32, buf: u32);
    args_sizes_get(argc: u32, size: u32);
    args_get(argv: u32, buf: u32);
    proc_exit(code: u32);
}

fn returns_status(ty: &FuncType) -> bool {
    let mut results = ty.results();
    matches!((results.next(), results.next()), (Some(ValType::I32), None))
}

fn stub<T: 'static>(
    linker: &mut Linker<T>,
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

/// Defines, on `linker`, every `env` and `wasi_snapshot_preview1` import of
/// `module`; see the module documentation. `get` finds the host state in
/// the store data.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    module: &Module,
    get: Get<T>,
) -> Result<(), HostError> {
    linker.allow_shadowing(true);
    for import in module.imports() {
        let (from, name) = (import.module(), import.name());
        let defined = match (from, import.ty()) {
            ("env", ExternType::Func(ty)) => match define_proxy(linker, get, name) {
                Some(defined) => defined,
                None if name.starts_with("proxy_") && returns_status(&ty) => {
                    stub(linker, from, name, ty, Status::Unimplemented as i32)
                }
                None => return Err(unsupported(from, name, &import.ty())),
            },
            ("wasi_snapshot_preview1", ExternType::Func(ty)) => {
                match define_wasi(linker, get, name) {
                    Some(defined) => defined,
                    None if returns_status(&ty) => stub(linker, from, name, ty, errno::NOSYS),
                    None => return Err(unsupported(from, name, &import.ty())),
                }
            }
            ("env" | "wasi_snapshot_preview1", ty) => return Err(unsupported(from, name, &ty)),
            _ => continue,
        };
        defined.map_err(|e| HostError::Load(format!("defining import {from}.{name}: {e:#}")))?;
    }
    Ok(())
}

/// Refuses imports from modules other than `env` and
/// `wasi_snapshot_preview1`, for a host with no embedder to define them.
pub(crate) fn only_proxy_imports(module: &Module) -> Result<(), HostError> {
    match module
        .imports()
        .find(|i| !matches!(i.module(), "env" | "wasi_snapshot_preview1"))
    {
        Some(i) => Err(unsupported(i.module(), i.name(), &i.ty())),
        None => Ok(()),
    }
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
