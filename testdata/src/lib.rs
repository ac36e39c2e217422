//! `laneway-testdata`: the one loader of the table tests in `testdata/`
//! (schema: `testdata/README.md`), in the spirit of rust-lang/regex's
//! `regex-test` crate. Every consumer reads the same cases the same way:
//! the core's table and zero-allocation tests, the filter's tests in the
//! wasm host, the CLI tests and the real-Envoy tests.
//!
//! - [`corpus`]: the cases. Unknown fields are refused, so a typo in an
//!   expectation fails loudly instead of checking nothing; names must be
//!   unique within each kind.
//! - [`hostile`]: the big hostile inputs, generated.
//! - [`traces`]: big trace files (OTLP, Jaeger, Zipkin), generated; the
//!   small hand-written ones are in `traces/`, listed with what an importer
//!   must find in them by [`trace_files`].
//! - [`wasm`]: builds a workspace wasm package (the filter, the test
//!   modules) so `cargo test` needs no separate build step.
//!
//! For tests only: a malformed file panics with its path and the reason.

pub mod corpus;
pub mod hostile;
pub mod traces;
pub mod wasm;

pub use corpus::{
    ChainCount, ConfigCase, ExpectedError, ExpectedMember, Line, ParseCase, Part, RoutingCase,
    SeedRegex, TraceFile, TraceHop, config_cases, config_text, expand, parse_cases, routing_cases,
    testdata, trace_files,
};
