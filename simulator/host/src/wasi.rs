//! The slice of WASI preview1 (`wasi_snapshot_preview1`) a proxy-wasm module
//! gets, deterministic throughout:
//! - `fd_write` to fd 1/2 is a log line at info/error (one trailing newline
//!   removed), as proxy-wasm-cpp-host does; other fds are `BADF`;
//! - `fd_fdstat_get` describes fds 1/2 as writable; `fd_prestat_get` is
//!   `BADF` (no preopened directories, which ends wasi-libc's scan);
//! - `clock_time_get` reads the VM's fixed clock (realtime and monotonic);
//! - `random_get` is a seeded generator;
//! - `environ_*` serve [`HostOptions::env`](super::HostOptions::env);
//!   `args_*` are empty;
//! - `proc_exit` fails the running callback ([`ProcExit`]).
//!
//! Every other function the module imports from WASI is answered `NOSYS`
//! by the linker.
//!
//! Invariant: bad pointers are `FAULT`, never a panic.

use std::fmt;

use proxy_wasm_abi::{LogLevel, errno};

use super::guest::{Ctx, bytes, read_u32, with_memory, write, write_u32, write_u64};

type Answer = wasmtime::Result<i32>;

/// The error a `proc_exit` call ends its callback with.
#[derive(Debug)]
pub struct ProcExit(pub u32);

impl fmt::Display for ProcExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the module called proc_exit({})", self.0)
    }
}

impl std::error::Error for ProcExit {}

fn fault_unless(ok: bool) -> i32 {
    if ok { errno::SUCCESS } else { errno::FAULT }
}

pub(crate) fn fd_write<T: 'static>(
    mut c: Ctx<'_, T>,
    fd: u32,
    iovs: u32,
    iovs_len: u32,
    written_ptr: u32,
) -> Answer {
    let level = match fd {
        1 => LogLevel::Info,
        2 => LogLevel::Error,
        _ => return Ok(errno::BADF),
    };
    Ok(with_memory(&mut c, errno::FAULT, |mem, s| {
        let mut out = std::mem::take(&mut s.out);
        out.clear();
        let mut ok = true;
        for i in 0..iovs_len {
            let at = iovs.wrapping_add(i.wrapping_mul(8));
            let piece = read_u32(mem, at)
                .zip(read_u32(mem, at.wrapping_add(4)))
                .and_then(|(ptr, len)| bytes(mem, ptr, len));
            match piece {
                Some(piece) => out.extend_from_slice(piece),
                None => {
                    ok = false;
                    break;
                }
            }
        }
        let written = out.len() as u32;
        if ok && !out.is_empty() {
            let line = out.strip_suffix(b"\n").unwrap_or(&out);
            s.log(level, line);
        }
        s.out = out;
        match ok {
            true => fault_unless(write_u32(mem, written_ptr, written)),
            false => errno::FAULT,
        }
    }))
}

pub(crate) fn fd_fdstat_get<T: 'static>(mut c: Ctx<'_, T>, fd: u32, stat_ptr: u32) -> Answer {
    if fd != 1 && fd != 2 {
        return Ok(errno::BADF);
    }
    // filetype unknown, no flags, rights FD_WRITE (64), as the C++ host.
    let mut stat = [0u8; 24];
    stat[8..16].copy_from_slice(&64u64.to_le_bytes());
    Ok(with_memory(&mut c, errno::FAULT, |mem, _| {
        fault_unless(write(mem, stat_ptr, &stat))
    }))
}

pub(crate) fn fd_prestat_get<T: 'static>(_c: Ctx<'_, T>, _fd: u32, _ptr: u32) -> Answer {
    Ok(errno::BADF)
}

pub(crate) fn clock_time_get<T: 'static>(
    mut c: Ctx<'_, T>,
    clock: u32,
    _precision: u64,
    ptr: u32,
) -> Answer {
    if clock > 1 {
        return Ok(errno::NOTSUP);
    }
    Ok(with_memory(&mut c, errno::FAULT, |mem, s| {
        fault_unless(write_u64(mem, ptr, s.clock_ns))
    }))
}

pub(crate) fn random_get<T: 'static>(mut c: Ctx<'_, T>, ptr: u32, len: u32) -> Answer {
    Ok(with_memory(&mut c, errno::FAULT, |mem, s| {
        let start = ptr as usize;
        match mem.get_mut(start..start.saturating_add(len as usize)) {
            Some(buf) => {
                s.random(buf);
                errno::SUCCESS
            }
            None => errno::FAULT,
        }
    }))
}

pub(crate) fn environ_sizes_get<T: 'static>(
    mut c: Ctx<'_, T>,
    count_ptr: u32,
    size_ptr: u32,
) -> Answer {
    Ok(with_memory(&mut c, errno::FAULT, |mem, s| {
        let size: usize = s
            .options
            .env
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum();
        let count = s.options.env.len() as u32;
        fault_unless(write_u32(mem, count_ptr, count) && write_u32(mem, size_ptr, size as u32))
    }))
}

pub(crate) fn environ_get<T: 'static>(mut c: Ctx<'_, T>, array_ptr: u32, buf_ptr: u32) -> Answer {
    Ok(with_memory(&mut c, errno::FAULT, |mem, s| {
        let (mut slot, mut at) = (array_ptr, buf_ptr);
        for (k, v) in &s.options.env {
            let ok = write_u32(mem, slot, at)
                && write(mem, at, k.as_bytes())
                && write(mem, at.wrapping_add(k.len() as u32), b"=")
                && write(mem, at.wrapping_add(k.len() as u32 + 1), v.as_bytes())
                && write(mem, at.wrapping_add((k.len() + 1 + v.len()) as u32), b"\0");
            if !ok {
                return errno::FAULT;
            }
            slot = slot.wrapping_add(4);
            at = at.wrapping_add((k.len() + v.len() + 2) as u32);
        }
        errno::SUCCESS
    }))
}

pub(crate) fn args_sizes_get<T: 'static>(
    mut c: Ctx<'_, T>,
    argc_ptr: u32,
    size_ptr: u32,
) -> Answer {
    Ok(with_memory(&mut c, errno::FAULT, |mem, _| {
        fault_unless(write_u32(mem, argc_ptr, 0) && write_u32(mem, size_ptr, 0))
    }))
}

pub(crate) fn args_get<T: 'static>(_c: Ctx<'_, T>, _argv: u32, _buf: u32) -> Answer {
    Ok(errno::SUCCESS)
}

pub(crate) fn proc_exit<T: 'static>(_c: Ctx<'_, T>, code: u32) -> wasmtime::Result<()> {
    Err(wasmtime::Error::new(ProcExit(code)))
}
