//! The host's errors: [`HostError`] for loading a module and starting or
//! reconfiguring a VM, [`HopError`] for a guest call that failed. wasmtime's
//! errors are turned into text here, so callers never see wasmtime types.
//!
//! Invariant: every variant says which phase or callback failed and why, in
//! a line a person can act on; nothing here panics.

use std::fmt;

use super::hop::LogLine;

/// A guest callback that did not return normally, or a stream part the
/// host would not deliver. The VM is poisoned after a trap, a timeout or an
/// exit: later calls answer [`HopError::Poisoned`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HopError {
    /// The guest trapped (`unreachable`, out-of-bounds access, a Rust panic,
    /// ...). `message` is wasmtime's trap text and the innermost frames.
    Trap {
        callback: &'static str,
        message: String,
    },
    /// The call outran its budget (epoch deadline or fuel), `budget`.
    Timeout {
        callback: &'static str,
        budget: String,
    },
    /// The guest called WASI `proc_exit`.
    Exit { callback: &'static str, code: u32 },
    /// An earlier call failed; the VM is unusable.
    Poisoned { cause: String },
    /// The embedder delivered a stream part out of order (a body before
    /// the headers, a part while the filter holds the half paused); the
    /// guest was not called and the VM is not poisoned.
    OutOfOrder {
        callback: &'static str,
        reason: &'static str,
    },
}

impl fmt::Display for HopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HopError::Trap { callback, message } => write!(f, "{callback} trapped: {message}"),
            HopError::Timeout { callback, budget } => {
                write!(
                    f,
                    "{callback} ran past its budget of {budget} and was stopped"
                )
            }
            HopError::Exit { callback, code } => {
                write!(f, "{callback} called proc_exit({code})")
            }
            HopError::Poisoned { cause } => {
                write!(f, "the VM is poisoned by an earlier failure: {cause}")
            }
            HopError::OutOfOrder { callback, reason } => {
                write!(f, "{callback} not called: {reason}")
            }
        }
    }
}

impl std::error::Error for HopError {}

/// Loading a module, or starting or reconfiguring a VM, failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostError {
    /// The module file could not be read.
    Io { path: String, message: String },
    /// The module is not one this host can run: invalid wasm, a missing or
    /// unknown ABI version, an unsupported import, an export with the wrong
    /// type, no memory.
    Load(String),
    /// The guest answered `false` from `proxy_on_vm_start` or
    /// `proxy_on_configure`; `logs` are the lines it logged meanwhile
    /// (typically the reason).
    Refused {
        phase: &'static str,
        logs: Vec<LogLine>,
    },
    /// A start-up or configure callback failed.
    Guest(HopError),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Io { path, message } => write!(f, "{path}: {message}"),
            HostError::Load(message) => write!(f, "cannot load the module: {message}"),
            HostError::Refused { phase, logs } => {
                write!(
                    f,
                    "the plugin refused its configuration ({phase} returned false)"
                )?;
                for line in logs {
                    write!(f, "\n  [{}] {}", line.level, line.message)?;
                }
                Ok(())
            }
            HostError::Guest(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for HostError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HostError::Guest(e) => Some(e),
            _ => None,
        }
    }
}

impl From<HopError> for HostError {
    fn from(e: HopError) -> HostError {
        HostError::Guest(e)
    }
}
