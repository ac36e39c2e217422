//! The allocation-free heart of Laneway: W3C `baggage` and `tracestate`
//! parsing, routing-key extraction and the per-request routing decision.
//!
//! This crate knows nothing about proxy-wasm, wasmtime or I/O. The filter
//! (`filter/`), the simulator's native cross-check (`simulator/`) and the
//! benches (`benches/`) all call the same functions.
//!
//! Invariants, each pinned by tests:
//! - **The request path never allocates.** [`Router::decide`] and everything
//!   it calls work on borrowed `&'h [u8]` haystacks (`'h` reads "haystack")
//!   and yield `Copy` items. `tests/no_alloc.rs` runs the whole `testdata/`
//!   corpus under a counting global allocator and expects zero.
//! - **Nothing panics on any input.** Every parser is checked against a naive
//!   oracle and on arbitrary bytes with proptest.
//! - **Lookup cost does not depend on table size.** [`Router`] answers with at
//!   most three hash probes sequences of bounded length ([`index`]).
//!
//! Allocation happens only at configure time: [`Config::parse`] and
//! [`Router::new`] build owned tables once per plugin configuration.
//!
//! Contracts the filter shares with the simulator live here, written once:
//! the [`Reason`] enum, the filter-state codec ([`filter_state`]) and the
//! longest fork `:authority` ([`authority::MAX_FORK_AUTHORITY`]).

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)] // one justified exception: the SSE2 call in `class`
#![deny(missing_docs)]

extern crate alloc;

pub mod authority;
pub mod baggage;
pub mod cidr;
pub mod class;
pub mod config;
pub mod decide;
pub mod filter_state;
pub mod guard;
pub mod hash;
pub mod index;
pub mod lines;
#[cfg(test)]
pub(crate) mod naive;
pub mod percent;
pub mod rewrite;
pub mod rfc3339;
pub mod signature;
pub mod tracestate;

pub use config::{
    Config, ConfigError, ConfigErrors, MAX_CONFIG_BYTES, MAX_FORKS, MAX_SANDBOXES, UnknownKeyPolicy,
};
pub use decide::{
    Carrier, Decision, ForkId, Reason, Request, Route, Router, RoutingKey, SandboxId, Verdict,
};
pub use guard::{Edits, Facts, Outcome, Trust};
