//! Guest linear memory as host functions see it: bounds-checked reads and
//! writes of guest pointers, and copying bytes into memory the guest
//! allocated (proxy-wasm-cpp-host's `copyToPointerSize`).
//!
//! Copy-in goes through the guest's allocator, chosen as
//! proxy-wasm-cpp-host chooses it: the `malloc` export if there is one,
//! else `proxy_on_memory_allocate`. Every call is counted. Empty values are
//! returned as `(0, 0)` without allocating, as the C++ host does.
//!
//! Invariant: a bad guest pointer or length yields `None` (the caller
//! answers `InvalidMemoryAccess` or WASI `FAULT`), never a panic. Only a
//! trap inside the guest allocator is passed up, as an error that fails the
//! running callback.

use proxy_wasm_abi::Status;
use wasmtime::Caller;

use super::state::ProxyState;

/// How host functions find their [`ProxyState`] in the embedder's store
/// data `T`: `|t| &mut t.proxy`.
pub type Get<T> = fn(&mut T) -> &mut ProxyState;

/// A host function's view of the store: the caller and the projection.
pub(crate) struct Ctx<'a, T: 'static> {
    pub caller: Caller<'a, T>,
    pub get: Get<T>,
}

impl<T: 'static> Ctx<'_, T> {
    /// This VM's host state.
    pub fn state(&mut self) -> &mut ProxyState {
        (self.get)(self.caller.data_mut())
    }
}

/// `len` bytes of `mem` at `ptr`.
pub(crate) fn bytes(mem: &[u8], ptr: u32, len: u32) -> Option<&[u8]> {
    let start = ptr as usize;
    mem.get(start..start.checked_add(len as usize)?)
}

fn bytes_mut(mem: &mut [u8], ptr: u32, len: usize) -> Option<&mut [u8]> {
    let start = ptr as usize;
    mem.get_mut(start..start.checked_add(len)?)
}

pub(crate) fn write_u32(mem: &mut [u8], ptr: u32, value: u32) -> bool {
    write(mem, ptr, &value.to_le_bytes())
}

pub(crate) fn write_u64(mem: &mut [u8], ptr: u32, value: u64) -> bool {
    write(mem, ptr, &value.to_le_bytes())
}

pub(crate) fn write(mem: &mut [u8], ptr: u32, data: &[u8]) -> bool {
    match bytes_mut(mem, ptr, data.len()) {
        Some(dst) => {
            dst.copy_from_slice(data);
            true
        }
        None => false,
    }
}

pub(crate) fn read_u32(mem: &[u8], ptr: u32) -> Option<u32> {
    let b = bytes(mem, ptr, 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Runs `f` with guest memory and host state borrowed together.
pub(crate) fn with_memory<T: 'static, R>(
    c: &mut Ctx<'_, T>,
    missing: R,
    f: impl FnOnce(&mut [u8], &mut ProxyState) -> R,
) -> R {
    match c.state().memory {
        Some(memory) => {
            let get = c.get;
            let (mem, data) = memory.data_and_store_mut(&mut c.caller);
            f(mem, get(data))
        }
        None => missing,
    }
}

/// Asks the guest for `len` bytes; `None` if it has no allocator, answers
/// 0, or answers a block outside its memory.
fn allocate<T: 'static>(c: &mut Ctx<'_, T>, len: usize) -> wasmtime::Result<Option<u32>> {
    let Ok(size) = u32::try_from(len) else {
        return Ok(None);
    };
    // Moved out rather than cloned: a clone bumps the function type's
    // reference count on every copy-in. A re-entrant copy-in made from
    // inside the allocator finds no allocator and fails cleanly.
    let Some(alloc) = c.state().alloc.take() else {
        return Ok(None);
    };
    c.state().count_allocation();
    let result = alloc.call(&mut c.caller, size);
    c.state().alloc = Some(alloc);
    let ptr = result?;
    let fits = with_memory(c, false, |mem, _| bytes(mem, ptr, size).is_some());
    Ok((ptr != 0 && fits).then_some(ptr))
}

/// Copies the staged bytes (`HostState::out`) into a fresh guest block and
/// writes its address and length to `ptr_ptr` and `size_ptr`.
pub(crate) fn reply<T: 'static>(
    c: &mut Ctx<'_, T>,
    ptr_ptr: u32,
    size_ptr: u32,
) -> wasmtime::Result<u32> {
    let len = c.state().out.len();
    let ptr = if len == 0 {
        0
    } else {
        match allocate(c, len)? {
            Some(ptr) => ptr,
            None => return Ok(Status::InvalidMemoryAccess as u32),
        }
    };
    let status = with_memory(c, Status::InvalidMemoryAccess, |mem, state| {
        // `allocate` checked the block, but a re-entrant host call made by
        // the allocator could have changed the staged bytes: check again.
        if state.out.len() != len
            || !write(mem, ptr, &state.out)
            || !write_u32(mem, ptr_ptr, ptr)
            || !write_u32(mem, size_ptr, len as u32)
        {
            return Status::InvalidMemoryAccess;
        }
        Status::Ok
    });
    Ok(status as u32)
}
