//! Root contexts: each holds one compiled configuration, built by
//! `proxy_on_configure`, and the VM shares one set of metric ids.
//!
//! A rejected configuration is logged with every reason (field path and
//! why), counted, and answered with `false`; the root keeps its last good
//! configuration, the way Envoy keeps the last good xDS resource after a
//! NACK. A root that never had a good configuration routes everything to
//! the baseline.
//!
//! Several plugins may share one VM, each with its own root context, told
//! apart by plugin name (see [`with_context`]). The module exports only
//! the callbacks it needs (`proxy_on_configure`,
//! `proxy_on_request_headers`, the allocator): Envoy calls every callback
//! a module exports on every request, 8–9k instructions for the five that
//! did nothing but return or keep the table of roots.

use std::cell::RefCell;

use laneway_core::{Reason, Router};

use crate::abi::{self, LogLevel};

/// Metric ids, defined once per VM.
pub struct Metrics {
    pub decisions: [Option<u32>; Reason::ALL.len()],
    pub baggage_invalid_members: Option<u32>,
    pub baggage_over_limit: Option<u32>,
    pub tracestate_discarded: Option<u32>,
    pub host_errors: Option<u32>,
    pub config_rejected: Option<u32>,
    pub sandboxes: Option<u32>,
    pub forks: Option<u32>,
    pub trusted_source: Option<u32>,
    pub trusted_signature: Option<u32>,
    pub signature_refused: Option<u32>,
    pub preview_injected: Option<u32>,
    pub rate_limit_contended: Option<u32>,
}

impl Metrics {
    fn define() -> Metrics {
        let counter = |name: &str| abi::define_metric(abi::MetricKind::Counter, name).ok();
        let gauge = |name: &str| abi::define_metric(abi::MetricKind::Gauge, name).ok();
        let mut decisions = [None; Reason::ALL.len()];
        for (slot, reason) in decisions.iter_mut().zip(Reason::ALL) {
            *slot = counter(&format!("laneway.decision.{reason}"));
        }
        Metrics {
            decisions,
            baggage_invalid_members: counter("laneway.baggage.invalid_members"),
            baggage_over_limit: counter("laneway.baggage.over_limit"),
            tracestate_discarded: counter("laneway.tracestate.discarded"),
            host_errors: counter("laneway.host_errors"),
            config_rejected: counter("laneway.config.rejected"),
            sandboxes: gauge("laneway.config.sandboxes"),
            forks: gauge("laneway.config.forks"),
            trusted_source: counter("laneway.ingress.trusted_source"),
            trusted_signature: counter("laneway.ingress.trusted_signature"),
            signature_refused: counter("laneway.ingress.signature_refused"),
            preview_injected: counter("laneway.preview.injected"),
            rate_limit_contended: counter("laneway.rate_limit.contended"),
        }
    }

    pub fn bump(id: Option<u32>, by: i64) {
        if let Some(id) = id {
            // A failed increment has nowhere better to be reported.
            let _ = abi::increment_metric(id, by);
        }
    }
}

struct Root {
    id: u32,
    /// The plugin's name (the `plugin_name` property), which tells the
    /// roots of one VM apart.
    name: Box<[u8]>,
    router: Option<Router>,
}

/// At most this many plugin configurations share one VM; a configuration
/// past it is refused.
const MAX_ROOTS: usize = 64;

#[derive(Default)]
struct State {
    roots: Vec<Root>,
    metrics: Option<Metrics>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::default();
}

/// Runs `f` with the router and metrics of the request's root. `router`
/// is `None` when that root has no good configuration.
///
/// The module exports no `proxy_on_context_create`, so that Envoy makes
/// no call for it on every request: a request context does not say its
/// root. With one root (the common case) there is nothing to ask; with
/// several, the request's `plugin_name` property names it, at the cost of
/// one host call. A request whose root cannot be found goes to the
/// baseline and counts `laneway.host_errors`.
pub fn with_context<R>(f: impl FnOnce(Option<&Router>, &Metrics) -> R) -> Option<R> {
    STATE.with(|s| {
        let s = s.try_borrow().ok()?;
        let metrics = s.metrics.as_ref()?;
        let root = match s.roots.as_slice() {
            [only] => Some(only),
            roots => abi::property(b"plugin_name")
                .ok()
                .flatten()
                .and_then(|name| roots.iter().find(|r| *r.name == *name.as_slice())),
        };
        let Some(root) = root else {
            Metrics::bump(metrics.host_errors, 1);
            return None;
        };
        Some(f(root.router.as_ref(), metrics))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_configure(root_id: u32, size: usize) -> u32 {
    let text = abi::plugin_configuration(size);
    let compiled = match &text {
        Ok(bytes) => match std::str::from_utf8(bytes.as_slice()) {
            Ok("") => Err("the plugin configuration is empty".to_owned()),
            Ok(json) => Router::from_json(json).map_err(|e| e.to_string()),
            Err(e) => Err(format!("the plugin configuration is not UTF-8: {e}")),
        },
        Err(status) => Err(format!(
            "could not read the plugin configuration ({status})"
        )),
    };
    STATE.with(|s| {
        let Ok(mut s) = s.try_borrow_mut() else {
            return 0;
        };
        let s = &mut *s;
        let metrics = s.metrics.get_or_insert_with(Metrics::define);
        let Some(root) = root_for(&mut s.roots, root_id) else {
            abi::log(
                LogLevel::Error,
                &format!(
                    "rejected plugin configuration: more than {MAX_ROOTS} plugin \
                     configurations share this VM; give them separate vm_config.vm_id values"
                ),
            );
            Metrics::bump(metrics.config_rejected, 1);
            return 0;
        };
        match compiled {
            Ok(router) => {
                abi::log(
                    LogLevel::Info,
                    &format!(
                        "configured {} sandboxes, {} forks",
                        router.sandboxes(),
                        router.forks()
                    ),
                );
                for (id, n) in [
                    (metrics.sandboxes, router.sandboxes()),
                    (metrics.forks, router.forks()),
                ] {
                    if let Some(id) = id {
                        let _ = abi::record_metric(id, n as u64);
                    }
                }
                root.router = Some(router);
                1
            }
            Err(reason) => {
                let kept = if root.router.is_some() {
                    "keeping the last good configuration"
                } else {
                    "every request goes to the baseline"
                };
                abi::log(
                    LogLevel::Error,
                    &format!("rejected plugin configuration: {reason} ({kept})"),
                );
                Metrics::bump(metrics.config_rejected, 1);
                0
            }
        }
    })
}

/// The root that `on_configure` for `root_id` configures: the one with
/// that id; else the one with the same plugin name, which this root
/// replaces (Envoy creates a new root context for a plugin whose
/// configuration changed, and without `proxy_on_delete` the module is not
/// told that the old one is gone); else a new one. `None` past
/// [`MAX_ROOTS`].
fn root_for(roots: &mut Vec<Root>, root_id: u32) -> Option<&mut Root> {
    if let Some(i) = roots.iter().position(|r| r.id == root_id) {
        return roots.get_mut(i);
    }
    let name: Box<[u8]> = abi::property(b"plugin_name")
        .ok()
        .flatten()
        .map_or_else(Box::default, |n| n.as_slice().into());
    if let Some(i) = roots.iter().position(|r| r.name == name) {
        let root = roots.get_mut(i)?;
        root.id = root_id;
        return Some(root);
    }
    if roots.len() >= MAX_ROOTS {
        return None;
    }
    roots.push(Root {
        id: root_id,
        name,
        router: None,
    });
    roots.last_mut()
}
