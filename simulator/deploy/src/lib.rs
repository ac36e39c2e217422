//! `laneway-deploy`: what a cluster applies, rendered from a compiled
//! scenario, and the filter packaged the way Istio pulls it.
//!
//! - [`istio()`](istio::istio): the Istio manifests for a scenario's plugin
//!   configuration: a WasmPlugin and a TrafficExtension for outbound
//!   sidecars, the same two attached to waypoints (ambient mesh), a
//!   WasmPlugin for the ingress gateway, EnvoyFilters for meshes without
//!   WasmPlugin, and each fork's Deployment and Service.
//! - [`shapes`]: the deployment shapes' Envoy fragments (the composite
//!   wrapper, the inline-headers bootstrap, `routing_key.joined`), one
//!   builder for the renderer and for laneway-envoy's bootstraps.
//! - [`oci`]: an OCI image layout of `laneway_filter.wasm` in the Wasm
//!   image format Istio's agent pulls (`oci://` URLs).
//!
//! Rendering is pure and deterministic: the same scenario and options give
//! the same bytes (lists sorted, keys in a fixed order, no timestamps), and
//! it never panics. The only I/O is [`oci::write_layout`].

pub mod istio;
pub mod oci;
pub mod shapes;

pub use istio::{IstioOptions, OptionError, istio};
