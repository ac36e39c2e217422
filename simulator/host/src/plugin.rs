//! Loading a module: [`Compiled`] (an engine and a checked module) and
//! [`Plugin`] (the module linked once and pre-instantiated), from which
//! [`Vm`]s start, as many as wanted, typically one per worker thread, as
//! Envoy runs one per worker.
//!
//! Two ways in, following wasmtime's embedding steps (engine, module,
//! linker with host functions, pre-instantiation, store with state):
//!
//! ```no_run
//! use proxy_wasm_host::{Compiled, HostOptions, LoadOptions, Plugin, ProxyState};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Standalone: the store holds only the host's state.
//! let plugin = Plugin::load("filter.wasm".as_ref())?;
//! let vm = plugin.vm(&HostOptions::default())?;
//!
//! // Embedded: the host's state is one field of the embedder's.
//! struct Mine { proxy: ProxyState, calls: u32 }
//! let compiled = Compiled::load("filter.wasm".as_ref(), &LoadOptions::default())?;
//! let mut linker = wasmtime::Linker::<Mine>::new(compiled.engine());
//! proxy_wasm_host::add_to_linker(&mut linker, compiled.module(), |m| &mut m.proxy)?;
//! linker.func_wrap("mine", "count", |mut c: wasmtime::Caller<'_, Mine>| c.data_mut().calls += 1)?;
//! let plugin = compiled.plugin(&linker, |m| &mut m.proxy)?;
//! let vm = plugin.vm_with(Mine { proxy: ProxyState::default(), calls: 0 }, &HostOptions::default())?;
//! # Ok(()) }
//! ```
//!
//! With [`Interruption::Epoch`] the engine has a ticker thread that bumps
//! its epoch every [`EPOCH_TICK`]; it holds only a weak reference and stops
//! once the engine is gone.
//!
//! Invariant: loading never panics; every refusal is a [`HostError::Load`]
//! that names the problem.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use proxy_wasm_abi::{ABI_VERSIONS, Status, ValKind};
use wasmtime::{
    Config, Engine, ExternType, InstancePre, Linker, Module, ProfilingStrategy, ValType,
};

use super::error::HostError;
use super::guest::Get;
use super::linker;
use super::options::{EPOCH_TICK, HostOptions, Interruption, LoadOptions};
use super::shared::Shared;
use super::state::ProxyState;
use super::vm::Vm;

/// A module compiled for this host, its exports checked against ABI 0.2.x.
#[derive(Clone)]
pub struct Compiled {
    engine: Engine,
    module: Module,
    interruption: Interruption,
}

fn same(actual: impl ExactSizeIterator<Item = ValType>, expected: &[ValKind]) -> bool {
    actual.len() == expected.len()
        && actual.zip(expected).all(|(a, e)| {
            matches!(
                (a, e),
                (ValType::I32, ValKind::I32) | (ValType::I64, ValKind::I64)
            )
        })
}

fn signature(list: &[ValKind]) -> String {
    let names: Vec<&str> = list
        .iter()
        .map(|w| match w {
            ValKind::I32 => "i32",
            ValKind::I64 => "i64",
        })
        .collect();
    format!("({})", names.join(", "))
}

fn check_exports(module: &Module) -> Result<(), HostError> {
    if !ABI_VERSIONS
        .iter()
        .any(|name| module.get_export(name).is_some())
    {
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
    for cb in proxy_wasm_abi::CALLBACKS {
        match module.get_export(cb.name) {
            None => {}
            Some(ExternType::Func(ty))
                if same(ty.params(), cb.params) && same(ty.results(), cb.results) => {}
            Some(other) => {
                return Err(HostError::Load(format!(
                    "export {} is {}, ABI 0.2.1 expects {} -> {}",
                    cb.name,
                    match other {
                        ExternType::Func(ty) => format!("function {}", linker::signature(&ty)),
                        _ => "not a function".into(),
                    },
                    signature(cb.params),
                    signature(cb.results),
                )));
            }
        }
    }
    Ok(())
}

/// The largest module file [`Compiled::load`] reads (64 MiB; Laneway's is
/// 150 KB).
pub const MAX_MODULE_BYTES: u64 = 64 << 20;

/// Reads a module file: a regular file of at most [`MAX_MODULE_BYTES`].
/// A directory, device, socket or FIFO is named as such, not read (a FIFO
/// with no writer would block forever, `/dev/zero` never ends).
fn read_module(path: &Path) -> Result<Vec<u8>, HostError> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let io = |message: String| HostError::Io {
        path: path.display().to_string(),
        message,
    };
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| io(e.to_string()))?;
    let meta = file.metadata().map_err(|e| io(e.to_string()))?;
    let kind = meta.file_type();
    let what = if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_char_device() || kind.is_block_device() {
        Some("a device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        None
    };
    if let Some(what) = what {
        return Err(io(format!("is {what}, not a wasm module file")));
    }
    if meta.len() > MAX_MODULE_BYTES {
        return Err(io(format!(
            "is {} bytes; a module may be at most {MAX_MODULE_BYTES} bytes",
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_MODULE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io(e.to_string()))?;
    Ok(bytes)
}

/// Whether `bytes` look like WAT text: UTF-8 whose first token (after
/// white space and comments) opens a list.
fn looks_like_wat(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let mut rest = text.trim_start();
    loop {
        if let Some(line) = rest.strip_prefix(";;") {
            rest = line.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if rest.starts_with("(;") {
            rest = rest.split_once(";)").map_or("", |(_, r)| r).trim_start();
        } else {
            return rest.starts_with('(');
        }
    }
}

impl Compiled {
    /// Reads and compiles a `.wasm` (or `.wat`) file.
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Compiled, HostError> {
        Compiled::new(&read_module(path)?, options)
    }

    /// Compiles wasm bytes or WAT text and checks the exports. Bytes that
    /// are neither (no `\0asm` header, not WAT text) are refused as such,
    /// not handed to the WAT parser.
    pub fn new(bytes: &[u8], options: &LoadOptions) -> Result<Compiled, HostError> {
        if !bytes.starts_with(b"\0asm") && !looks_like_wat(bytes) {
            return Err(HostError::Load(format!(
                "not a wasm module: it does not start with the \\0asm header (it starts with {:?}) and is not WAT text",
                String::from_utf8_lossy(&bytes[..bytes.len().min(8)])
            )));
        }
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
        if options.interruption == Interruption::Epoch {
            spawn_ticker(&engine)?;
        }
        Ok(Compiled {
            engine,
            module,
            interruption: options.interruption,
        })
    }

    /// The engine, for the embedder's `Linker`.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The module, for [`add_to_linker`](crate::add_to_linker).
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Pre-instantiates the module with `linker`, which must define every
    /// import (the host's through [`add_to_linker`](crate::add_to_linker),
    /// the embedder's own). `get` finds the host state in the store data.
    pub fn plugin<T: 'static>(
        &self,
        linker: &Linker<T>,
        get: Get<T>,
    ) -> Result<Plugin<T>, HostError> {
        let pre = linker
            .instantiate_pre(&self.module)
            .map_err(|e| HostError::Load(format!("linking the module: {e:#}")))?;
        Ok(Plugin {
            inner: Arc::new(Inner {
                engine: self.engine.clone(),
                pre,
                get,
                interruption: self.interruption,
                shared: Arc::default(),
                next_vm: AtomicU64::new(0),
            }),
        })
    }
}

/// A linked module, ready to start VMs. Cheap to clone; `Send + Sync`
/// when `T` is `Send`.
pub struct Plugin<T: 'static = ProxyState> {
    pub(crate) inner: Arc<Inner<T>>,
}

impl<T: 'static> Clone for Plugin<T> {
    fn clone(&self) -> Plugin<T> {
        Plugin {
            inner: self.inner.clone(),
        }
    }
}

pub(crate) struct Inner<T: 'static> {
    pub engine: Engine,
    pub pre: InstancePre<T>,
    pub get: Get<T>,
    pub interruption: Interruption,
    /// Shared data and queues of every VM of this plugin.
    pub shared: Arc<Shared>,
    next_vm: AtomicU64,
}

fn itself(state: &mut ProxyState) -> &mut ProxyState {
    state
}

impl Plugin<ProxyState> {
    /// Loads a `.wasm` (or `.wat`) file with default [`LoadOptions`].
    pub fn load(path: &Path) -> Result<Plugin, HostError> {
        Plugin::load_with(path, &LoadOptions::default())
    }

    /// Loads a file with `options`.
    pub fn load_with(path: &Path, options: &LoadOptions) -> Result<Plugin, HostError> {
        Plugin::standalone(Compiled::load(path, options)?)
    }

    /// Loads a module from wasm bytes or WAT text.
    pub fn from_bytes(bytes: &[u8]) -> Result<Plugin, HostError> {
        Plugin::from_bytes_with(bytes, &LoadOptions::default())
    }

    /// Loads a module from bytes with `options`.
    pub fn from_bytes_with(bytes: &[u8], options: &LoadOptions) -> Result<Plugin, HostError> {
        Plugin::standalone(Compiled::new(bytes, options)?)
    }

    fn standalone(compiled: Compiled) -> Result<Plugin, HostError> {
        linker::only_proxy_imports(compiled.module())?;
        let mut linker = Linker::new(compiled.engine());
        linker::add_to_linker(&mut linker, compiled.module(), itself)?;
        compiled.plugin(&linker, itself)
    }

    /// Instantiates, starts and configures a VM whose store holds only the
    /// host's state; see [`Plugin::vm_with`].
    pub fn vm(&self, options: &HostOptions) -> Result<Vm, HostError> {
        self.vm_with(ProxyState::default(), options)
    }
}

impl<T: 'static> Plugin<T> {
    /// Instantiates, starts and configures a VM with store data `data`
    /// (its [`ProxyState`] is replaced by the VM's): `_initialize` (and
    /// `main`) or `_start`, then the first root context's
    /// `proxy_on_context_create`, `proxy_on_vm_start` and
    /// `proxy_on_configure`.
    pub fn vm_with(&self, data: T, options: &HostOptions) -> Result<Vm<T>, HostError> {
        let serial = self.inner.next_vm.fetch_add(1, Ordering::Relaxed);
        Vm::start(self.clone(), data, options.clone(), serial)
    }

    /// The shared-data value and cas of `key`, as every VM of this plugin
    /// sees it.
    pub fn shared_data(&self, key: &[u8]) -> Option<(Vec<u8>, u32)> {
        self.inner.shared.snapshot(key)
    }

    /// Sets shared-data `key` as a VM's `proxy_set_shared_data` would
    /// (`cas` 0 always writes), within the default
    /// [`Limits::shared_data_bytes`](super::Limits::shared_data_bytes):
    /// for callers preparing a plugin's state before its VMs run.
    pub fn set_shared_data(&self, key: &[u8], value: &[u8], cas: u32) -> Status {
        let cap = super::Limits::default().shared_data_bytes;
        self.inner.shared.set(key, value, cas, cap)
    }
}

fn spawn_ticker(engine: &Engine) -> Result<(), HostError> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("proxy-wasm-epoch".into())
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
