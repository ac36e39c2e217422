//! Laneway's benchmarks.
//!
//! - [`envoy_load`]: the in-Envoy load harness behind `make bench-envoy`:
//!   the same request mix through Envoy with no filter, an empty proxy-wasm
//!   filter, Laneway at several table sizes, and Istio-style regex routes,
//!   back to back in one run, with throughput and latency ratios.
//! - [`callgrind`]: instructions per request in Envoy under valgrind's
//!   callgrind, shared by `bench-envoy --instructions` and `bench-guards`.
//! - [`guards`]: the setups behind `bench-guards`: Laneway with each guard
//!   alone against Laneway with none, in instructions per request.
//! - [`plot`]: the SVG plot of throughput against the number of sandboxes.
//! - [`corpus`]: the headers the criterion benches (`benches/benches/`)
//!   feed to Laneway's core, the seed's regex and the memchr floor.
//! - [`summary`]: ratios from one criterion run, for BENCHMARKS.md.

pub mod callgrind;
pub mod corpus;
pub mod envoy_load;
pub mod guards;
pub mod plot;
pub mod summary;
