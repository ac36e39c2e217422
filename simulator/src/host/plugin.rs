//! [`Plugin`]: one compiled module, ready to make VMs.
//!
//! Loading compiles the module once, checks it declares proxy-wasm ABI
//! 0.2.x (an `proxy_abi_version_0_2_1` or `_0_2_0` export), exports a memory
//! and an allocator, and that every ABI callback it exports has the ABI's
//! type; then it builds the one `Linker` for the module's imports and keeps
//! the resulting `InstancePre`. [`Plugin::vm`] instantiates that as often as
//! needed: one VM per worker thread, as Envoy runs one per worker.
//!
//! With [`Interruption::Epoch`] the plugin owns a ticker thread that bumps
//! the engine's epoch every [`EPOCH_TICK`]; it holds only a weak reference
//! and stops once the last clone of the plugin is gone.
//!
//! Invariant: loading never panics; every refusal is a [`HostError::Load`]
//! that names the problem.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::{Config, Engine, ExternType, InstancePre, Module, ProfilingStrategy, ValType};

use super::error::HostError;
use super::linker;
use super::options::{EPOCH_TICK, HostOptions, Interruption, LoadOptions};
use super::shared::Shared;
use super::state::HostState;
use super::vm::Vm;

/// A loaded module. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub engine: Engine,
    pub pre: InstancePre<HostState>,
    pub interruption: Interruption,
    /// Shared data and queues of every VM of this plugin.
    pub shared: Arc<Shared>,
    next_vm: AtomicU64,
}

#[derive(Clone, Copy)]
enum W {
    I32,
    I64,
}

/// The exports the host calls, and the type ABI 0.2.1 gives each.
const EXPORTS: &[(&str, &[W], &[W])] = {
    use W::*;
    &[
        ("_initialize", &[], &[]),
        ("main", &[I32, I32], &[I32]),
        ("_start", &[], &[]),
        ("malloc", &[I32], &[I32]),
        ("proxy_on_memory_allocate", &[I32], &[I32]),
        ("proxy_on_context_create", &[I32, I32], &[]),
        ("proxy_on_vm_start", &[I32, I32], &[I32]),
        ("proxy_on_configure", &[I32, I32], &[I32]),
        ("proxy_on_request_headers", &[I32, I32, I32], &[I32]),
        ("proxy_on_response_headers", &[I32, I32, I32], &[I32]),
        ("proxy_on_done", &[I32], &[I32]),
        ("proxy_on_log", &[I32], &[]),
        ("proxy_on_delete", &[I32], &[]),
        ("proxy_on_tick", &[I32], &[]),
        (
            "proxy_on_http_call_response",
            &[I32, I32, I32, I32, I32],
            &[],
        ),
        ("proxy_on_queue_ready", &[I32, I32], &[]),
        ("laneway_guest_allocations", &[], &[I64]),
    ]
};

fn same(actual: impl ExactSizeIterator<Item = ValType>, expected: &[W]) -> bool {
    actual.len() == expected.len()
        && actual
            .zip(expected)
            .all(|(a, e)| matches!((a, e), (ValType::I32, W::I32) | (ValType::I64, W::I64)))
}

fn signature(list: &[W]) -> String {
    let names: Vec<&str> = list
        .iter()
        .map(|w| match w {
            W::I32 => "i32",
            W::I64 => "i64",
        })
        .collect();
    format!("({})", names.join(", "))
}

fn check_exports(module: &Module) -> Result<(), HostError> {
    let abi = ["proxy_abi_version_0_2_1", "proxy_abi_version_0_2_0"]
        .iter()
        .any(|name| module.get_export(name).is_some());
    if !abi {
        let found: Vec<&str> = module
            .exports()
            .map(|e| e.name())
            .filter(|n| n.starts_with("proxy_abi_version_"))
            .collect();
        return Err(HostError::Load(match found.as_slice() {
            [] => "missing proxy-wasm ABI version: export proxy_abi_version_0_2_1".into(),
            found => format!(
                "unsupported proxy-wasm ABI {}; this host speaks 0.2.1",
                found.join(", ")
            ),
        }));
    }
    if !matches!(module.get_export("memory"), Some(ExternType::Memory(_))) {
        return Err(HostError::Load(
            "the module exports no memory named `memory`".into(),
        ));
    }
    if module.get_export("malloc").is_none()
        && module.get_export("proxy_on_memory_allocate").is_none()
    {
        return Err(HostError::Load(
            "the module exports no allocator (malloc or proxy_on_memory_allocate)".into(),
        ));
    }
    for (name, params, results) in EXPORTS {
        match module.get_export(name) {
            None => {}
            Some(ExternType::Func(ty))
                if same(ty.params(), params) && same(ty.results(), results) => {}
            Some(other) => {
                return Err(HostError::Load(format!(
                    "export {name} is {}, ABI 0.2.1 expects {} -> {}",
                    match other {
                        ExternType::Func(ty) => format!("function {}", linker::signature(&ty)),
                        _ => "not a function".into(),
                    },
                    signature(params),
                    signature(results),
                )));
            }
        }
    }
    Ok(())
}

impl Plugin {
    /// Loads a `.wasm` (or `.wat`) file with default [`LoadOptions`].
    pub fn load(path: &Path) -> Result<Plugin, HostError> {
        Plugin::load_with(path, &LoadOptions::default())
    }

    pub fn load_with(path: &Path, options: &LoadOptions) -> Result<Plugin, HostError> {
        let bytes = std::fs::read(path).map_err(|e| HostError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Plugin::from_bytes_with(&bytes, options)
    }

    /// Loads a module from wasm bytes or WAT text.
    pub fn from_bytes(bytes: &[u8]) -> Result<Plugin, HostError> {
        Plugin::from_bytes_with(bytes, &LoadOptions::default())
    }

    pub fn from_bytes_with(bytes: &[u8], options: &LoadOptions) -> Result<Plugin, HostError> {
        let mut config = Config::new();
        match options.interruption {
            Interruption::Epoch => config.epoch_interruption(true),
            Interruption::Fuel => config.consume_fuel(true),
        };
        if options.perf_map {
            config.profiler(ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)
            .map_err(|e| HostError::Load(format!("configuring wasmtime: {e:#}")))?;
        let module = Module::new(&engine, bytes)
            .map_err(|e| HostError::Load(format!("compiling: {e:#}")))?;
        check_exports(&module)?;
        let pre = linker::link(&engine, &module)?;
        if options.interruption == Interruption::Epoch {
            spawn_ticker(&engine)?;
        }
        Ok(Plugin {
            inner: Arc::new(Inner {
                engine,
                pre,
                interruption: options.interruption,
                shared: Arc::default(),
                next_vm: AtomicU64::new(0),
            }),
        })
    }

    /// Instantiates, starts and configures a VM: `_initialize` (and `main`)
    /// or `_start`, then the root context's `proxy_on_context_create`,
    /// `proxy_on_vm_start` and `proxy_on_configure`.
    pub fn vm(&self, options: &HostOptions) -> Result<Vm, HostError> {
        let serial = self.inner.next_vm.fetch_add(1, Ordering::Relaxed);
        Vm::start(self.clone(), options.clone(), serial)
    }

    /// The shared-data value and cas of `key`, as every VM of this plugin
    /// sees it.
    pub fn shared_data(&self, key: &[u8]) -> Option<(Vec<u8>, u32)> {
        self.inner.shared.snapshot(key)
    }
}

fn spawn_ticker(engine: &Engine) -> Result<(), HostError> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("laneway-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .map(drop)
        .map_err(|e| HostError::Load(format!("starting the epoch ticker: {e}")))
}
