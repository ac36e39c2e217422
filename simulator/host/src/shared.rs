//! Shared data (key/value with compare-and-swap) and shared queues: state
//! every VM of one loaded [`Plugin`](super::Plugin) sees, owned by that
//! plugin behind an `Arc` (never a global), with proxy-wasm-cpp-host's
//! semantics (`src/shared_data.cc`, `src/shared_queue.cc`).
//!
//! - `set` with `cas == 0` always writes; with a non-zero `cas` it writes
//!   only if the key exists with that cas, else `CasMismatch`. Setting a
//!   key that does not exist ignores `cas`. Every write gets a fresh cas
//!   (never 0).
//! - Queues are named per VM id; registering an existing name reopens it
//!   (keeping its items) and makes the caller its owner. `enqueue` notes a
//!   `proxy_on_queue_ready` for the owner, which the owning VM delivers the
//!   next time its event loop runs ([`Vm::advance_clock`](super::Vm::advance_clock)
//!   or [`Vm::dispatch_queues`](super::Vm::dispatch_queues)), as Envoy posts
//!   it to the owner's worker thread.
//!
//! Invariant: a poisoned lock is recovered, never unwrapped; no panics.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use proxy_wasm_abi::Status;

#[derive(Default)]
pub(crate) struct Shared {
    data: Mutex<Data>,
    queues: Mutex<Queues>,
}

#[derive(Default)]
struct Data {
    entries: HashMap<Vec<u8>, (Vec<u8>, u32)>,
    last_cas: u32,
    /// Bytes of keys and values held.
    bytes: usize,
}

struct Queue {
    owner: u64,
    context: u32,
    items: VecDeque<Vec<u8>>,
}

#[derive(Default)]
struct Queues {
    list: Vec<Queue>,
    /// `(vm id, name)` → index in `list`.
    by_name: HashMap<(Vec<u8>, Vec<u8>), usize>,
    /// Bytes waiting in every queue.
    bytes: usize,
    /// `(owner VM, context, token)` notifications not yet delivered.
    ready: Vec<(u64, u32, u32)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Copies the value of `key` into `out`; returns its cas.
    pub fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Result<u32, Status> {
        let data = lock(&self.data);
        let (value, cas) = data.entries.get(key).ok_or(Status::NotFound)?;
        out.clear();
        out.extend_from_slice(value);
        Ok(*cas)
    }

    /// Sets `key`, refusing (`InternalFailure`) a value that would take
    /// the plugin's shared data past `cap` bytes.
    pub fn set(&self, key: &[u8], value: &[u8], cas: u32, cap: usize) -> Status {
        let mut data = lock(&self.data);
        let next = match data.last_cas.wrapping_add(1) {
            0 => 1,
            n => n,
        };
        let held = data.bytes;
        match data.entries.get_mut(key) {
            Some((_, current)) if cas != 0 && cas != *current => return Status::CasMismatch,
            Some((stored, current)) => {
                let after = held - stored.len() + value.len();
                if after > cap {
                    return Status::InternalFailure;
                }
                stored.clear();
                stored.extend_from_slice(value);
                *current = next;
                data.bytes = after;
            }
            None => {
                let after = held + key.len() + value.len();
                if after > cap {
                    return Status::InternalFailure;
                }
                data.entries.insert(key.to_vec(), (value.to_vec(), next));
                data.bytes = after;
            }
        }
        data.last_cas = next;
        Status::Ok
    }

    /// The current value and cas of `key`, for callers inspecting a plugin.
    pub fn snapshot(&self, key: &[u8]) -> Option<(Vec<u8>, u32)> {
        lock(&self.data).entries.get(key).cloned()
    }

    /// Registers (or reopens) a queue; `None` when the plugin already has
    /// `cap` queues.
    pub fn register_queue(
        &self,
        vm_id: &[u8],
        name: &[u8],
        owner: u64,
        context: u32,
        cap: usize,
    ) -> Option<u32> {
        let mut queues = lock(&self.queues);
        let id = (vm_id.to_vec(), name.to_vec());
        let index = match queues.by_name.get(&id).copied() {
            Some(i) => {
                queues.list[i].owner = owner;
                queues.list[i].context = context;
                i
            }
            None => {
                if queues.list.len() >= cap {
                    return None;
                }
                queues.list.push(Queue {
                    owner,
                    context,
                    items: VecDeque::new(),
                });
                let i = queues.list.len() - 1;
                queues.by_name.insert(id, i);
                i
            }
        };
        Some(token(index))
    }

    pub fn resolve_queue(&self, vm_id: &[u8], name: &[u8]) -> Option<u32> {
        let queues = lock(&self.queues);
        let index = *queues.by_name.get(&(vm_id.to_vec(), name.to_vec()))?;
        Some(token(index))
    }

    /// Enqueues `value`, refusing (`InternalFailure`) an item that would
    /// take the plugin's queues past `cap` bytes.
    pub fn enqueue(&self, token: u32, value: &[u8], cap: usize) -> Status {
        let mut queues = lock(&self.queues);
        if queues.bytes + value.len() > cap {
            return Status::InternalFailure;
        }
        let Some(queue) = queue_mut(&mut queues.list, token) else {
            return Status::NotFound;
        };
        queue.items.push_back(value.to_vec());
        let note = (queue.owner, queue.context, token);
        queues.bytes += value.len();
        queues.ready.push(note);
        Status::Ok
    }

    /// Moves the front item of `token` into `out`.
    pub fn dequeue(&self, token: u32, out: &mut Vec<u8>) -> Status {
        let mut queues = lock(&self.queues);
        let Some(queue) = queue_mut(&mut queues.list, token) else {
            return Status::NotFound;
        };
        match queue.items.pop_front() {
            Some(item) => {
                queues.bytes -= item.len();
                *out = item;
                Status::Ok
            }
            None => Status::Empty,
        }
    }

    /// Takes the `(context, token)` notifications owed to VM `owner`.
    pub fn take_ready(&self, owner: u64) -> Vec<(u32, u32)> {
        let mut queues = lock(&self.queues);
        if queues.ready.is_empty() {
            return Vec::new();
        }
        let mut mine = Vec::new();
        queues.ready.retain(|&(o, context, token)| {
            let is_mine = o == owner;
            if is_mine {
                mine.push((context, token));
            }
            !is_mine
        });
        mine
    }
}

fn token(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

fn queue_mut(list: &mut [Queue], token: u32) -> Option<&mut Queue> {
    list.get_mut((token as usize).checked_sub(1)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_and_swap() {
        let s = Shared::default();
        let mut out = Vec::new();
        assert_eq!(s.get(b"k", &mut out), Err(Status::NotFound));
        let cap = usize::MAX;
        assert_eq!(
            s.set(b"k", b"1", 77, cap),
            Status::Ok,
            "new keys ignore cas"
        );
        let cas = s.get(b"k", &mut out).unwrap();
        assert_eq!(out, b"1");
        assert_ne!(cas, 0);
        assert_eq!(
            s.set(b"k", b"2", cas.wrapping_add(1), cap),
            Status::CasMismatch
        );
        assert_eq!(s.set(b"k", b"2", cas, cap), Status::Ok);
        assert_eq!(
            s.set(b"k", b"3", cas, cap),
            Status::CasMismatch,
            "cas moved on"
        );
        assert_eq!(s.set(b"k", b"4", 0, cap), Status::Ok, "cas 0 always writes");
        assert_eq!(s.snapshot(b"k").unwrap().0, b"4");
        // The cap counts keys and values; an overwrite counts its new size.
        assert_eq!(s.set(b"k", b"12", 0, 3), Status::Ok);
        assert_eq!(s.set(b"k", b"123", 0, 3), Status::InternalFailure);
        assert_eq!(s.set(b"j", b"", 0, 3), Status::InternalFailure);
    }

    #[test]
    fn queues() {
        let s = Shared::default();
        let mut out = Vec::new();
        let cap = usize::MAX;
        let t = s.register_queue(b"vm", b"q", 1, 7, cap).unwrap();
        assert_eq!(s.resolve_queue(b"vm", b"q"), Some(t));
        assert_eq!(s.resolve_queue(b"other", b"q"), None);
        assert_eq!(s.dequeue(t, &mut out), Status::Empty);
        assert_eq!(s.enqueue(t, b"a", cap), Status::Ok);
        assert_eq!(s.enqueue(t + 1, b"a", cap), Status::NotFound);
        assert_eq!(s.take_ready(2), vec![]);
        assert_eq!(s.take_ready(1), vec![(7, t)]);
        assert_eq!(
            s.register_queue(b"vm", b"q", 2, 9, cap),
            Some(t),
            "reopened"
        );
        assert_eq!(s.dequeue(t, &mut out), Status::Ok);
        assert_eq!(out, b"a");
        assert_eq!(s.dequeue(0, &mut out), Status::NotFound);
        // Bytes in queues are capped; a dequeue frees its item's.
        assert_eq!(s.enqueue(t, b"xy", 2), Status::Ok);
        assert_eq!(s.enqueue(t, b"z", 2), Status::InternalFailure);
        assert_eq!(s.dequeue(t, &mut out), Status::Ok);
        assert_eq!(s.enqueue(t, b"z", 2), Status::Ok);
        assert_eq!(
            s.register_queue(b"vm", b"other", 1, 1, 1),
            None,
            "one queue at most"
        );
    }
}
