//! Laneway's benchmarks.
//!
//! - [`envoy_load`]: the in-Envoy harness behind `make bench-envoy` (wrk)
//!   and `make bench-envoy-instructions` (callgrind): the same requests
//!   through Envoy with no filter, an empty proxy-wasm filter, Laneway in
//!   each deployment shape (plain, composite-wrapped, with or without
//!   inline headers) at several table sizes, and Istio-style regex routes,
//!   back to back in one run, with ratios and the issue-12 target lines.
//! - [`callgrind`]: instructions per request in Envoy under valgrind's
//!   callgrind, shared by `bench-envoy --instructions` and `bench-guards`.
//! - [`guards`]: the setups behind `bench-guards`: Laneway with each guard
//!   alone against Laneway with none, in instructions per request.
//! - [`plot`]: the SVG plots: throughput against the number of sandboxes,
//!   and instructions per request of each setup as grouped bars.
//! - [`corpus`]: the headers the criterion benches (`benches/benches/`)
//!   feed to Laneway's core, the seed's regex and the memchr floor.
//! - [`summary`]: ratios from one criterion run, for BENCHMARKS.md.

pub mod callgrind;
pub mod corpus;
pub mod envoy_load;
pub mod guards;
pub mod plot;
pub mod summary;
