//! Root contexts: each holds one compiled configuration, built by
//! `proxy_on_configure`, and the VM shares one set of metric ids.
//!
//! A rejected configuration is logged with every reason (field path and
//! why), counted, and answered with `false`; the root keeps its last good
//! configuration, the way Envoy keeps the last good xDS resource after a
//! NACK. A root that never had a good configuration routes everything to
//! the baseline.
//!
//! Several plugins may share one VM, each with its own root context. While
//! there is only one root (the common case) requests need no bookkeeping;
//! once there are more, each request context remembers its root.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

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
    router: Option<Router>,
}

#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = u64::from(v);
    }
}

#[derive(Default)]
struct State {
    roots: Vec<Root>,
    /// Request context → root context, kept only while several roots exist.
    parents: HashMap<u32, u32, BuildHasherDefault<IdHasher>>,
    metrics: Option<Metrics>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::default();
}

/// Runs `f` with the router and metrics of `context`'s root. `router` is
/// `None` when that root has no good configuration.
pub fn with_context<R>(context: u32, f: impl FnOnce(Option<&Router>, &Metrics) -> R) -> Option<R> {
    STATE.with(|s| {
        let s = s.try_borrow().ok()?;
        let metrics = s.metrics.as_ref()?;
        let root = match s.roots.as_slice() {
            [only] => only,
            roots => {
                let parent = s.parents.get(&context).copied();
                parent
                    .and_then(|p| roots.iter().find(|r| r.id == p))
                    .or(roots.first())?
            }
        };
        Some(f(root.router.as_ref(), metrics))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_context_create(context_id: u32, parent_id: u32) {
    STATE.with(|s| {
        let Ok(mut s) = s.try_borrow_mut() else {
            return;
        };
        if parent_id == 0 {
            s.roots.push(Root {
                id: context_id,
                router: None,
            });
        } else if s.roots.len() > 1 {
            s.parents.insert(context_id, parent_id);
        }
    });
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_vm_start(_root_id: u32, _vm_configuration_size: usize) -> u32 {
    1
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
        let Some(root) = s.roots.iter_mut().find(|r| r.id == root_id) else {
            abi::log(LogLevel::Error, "on_configure for an unknown root context");
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

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_done(_context_id: u32) -> u32 {
    1
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_log(_context_id: u32) {}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    STATE.with(|s| {
        let Ok(mut s) = s.try_borrow_mut() else {
            return;
        };
        if s.parents.remove(&context_id).is_none() {
            s.roots.retain(|r| r.id != context_id);
        }
    });
}
