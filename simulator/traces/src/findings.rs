//! What the traces say really happened to tagged requests: where the
//! routing key was lost, and which calls reached the wrong workload.
//!
//! A workload belongs to a sandbox when its name holds the sandbox's key
//! as a whole word (`location-qwblp48fpmb30`, a `service.version` of
//! `qwblp48fpmb30`); otherwise it is the baseline. A sandbox forks a
//! service when `--fork` says so, or when a workload of the sandbox was
//! seen serving it.

use std::collections::{BTreeMap, BTreeSet};

use crate::assemble::Chains;
use crate::model::{NONE, Strings};

/// A sandbox declared on the command line: its key and forked services.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fork {
    /// The routing key.
    pub key: String,
    /// The services it forks.
    pub services: Vec<String>,
}

/// Where the key was lost, and how often.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lost {
    /// The service that did not pass the key on.
    pub at: String,
    /// The call it made without it.
    pub to: String,
    /// Traces where this happened.
    pub traces: u64,
}

/// A call that reached the wrong workload.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Misrouted {
    /// `baseline` (the key's sandbox forks the service, the baseline
    /// served it), `other-fork` (another sandbox's fork served it) or
    /// `untagged-fork` (a call without a key reached a fork).
    pub kind: &'static str,
    /// The callee.
    pub service: String,
    /// The key the call carried (empty: none).
    pub key: String,
    /// The workload that served it.
    pub workload: String,
    /// Whether the key was lost on the way (the call carried none, the
    /// trace did): the miss is the lost context's doing.
    pub lost: bool,
    /// Calls.
    pub calls: u64,
}

/// Everything found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Traces that recorded a routing key.
    pub keyed_traces: u64,
    /// Calls that named the workload that served them.
    pub attributed_calls: u64,
    /// Losses of the key, most frequent first.
    pub lost: Vec<Lost>,
    /// Misrouted calls, most frequent first.
    pub misrouted: Vec<Misrouted>,
}

/// The sandbox key that `workload` holds as a whole word, if any.
pub fn sandbox_of<'k>(workload: &str, keys: &'k BTreeSet<String>) -> Option<&'k str> {
    keys.iter()
        .filter(|k| !k.is_empty())
        .find(|k| {
            workload.match_indices(k.as_str()).any(|(i, m)| {
                let before = workload[..i].chars().next_back();
                let after = workload[i + m.len()..].chars().next();
                !before.is_some_and(|c| c.is_ascii_alphanumeric())
                    && !after.is_some_and(|c| c.is_ascii_alphanumeric())
            })
        })
        .map(String::as_str)
}

/// Judges the observations of `chains`.
pub fn findings(chains: &Chains, strings: &Strings, forks: &[Fork]) -> Findings {
    let name = |i: usize| chains.services[i].name.clone();
    let mut keys: BTreeSet<String> = forks.iter().map(|f| f.key.clone()).collect();
    for o in chains.observed.keys() {
        if o.key != NONE {
            keys.insert(strings.get(o.key).to_owned());
        }
    }
    // (key, service) pairs that are forked.
    let mut forked: BTreeSet<(String, String)> = BTreeSet::new();
    for f in forks {
        for s in &f.services {
            forked.insert((f.key.clone(), s.clone()));
        }
    }
    for o in chains.observed.keys() {
        if let Some(k) = sandbox_of(strings.get(o.workload), &keys) {
            forked.insert((k.to_owned(), name(o.service)));
        }
    }
    // The baseline's workloads: the service's own name, and any workload
    // that served a call without a key and holds no sandbox's key.
    let mut baseline: BTreeSet<(usize, &str)> = BTreeSet::new();
    for o in chains.observed.keys() {
        let w = strings.get(o.workload);
        if o.workload != NONE
            && sandbox_of(w, &keys).is_none()
            && (o.key == NONE || w == chains.services[o.service].name)
        {
            baseline.insert((o.service, w));
        }
    }
    let mut attributed = 0;
    let mut mis: BTreeMap<(&'static str, String, String, String, bool), u64> = BTreeMap::new();
    for (o, &calls) in &chains.observed {
        if o.workload == NONE {
            continue;
        }
        attributed += calls;
        let workload = strings.get(o.workload);
        let service = name(o.service);
        let own = sandbox_of(workload, &keys);
        let is_baseline = own.is_none() && baseline.contains(&(o.service, workload));
        let (key, lost) = if o.key != NONE {
            (strings.get(o.key), false)
        } else {
            (strings.get(o.trace_key), o.trace_key != NONE)
        };
        let kind = if key.is_empty() {
            if is_baseline {
                continue;
            }
            "untagged-fork"
        } else if is_baseline {
            if !forked.contains(&(key.to_owned(), service.clone())) {
                continue;
            }
            "baseline"
        } else if own == Some(key) {
            continue;
        } else {
            "other-fork"
        };
        *mis.entry((kind, service, key.to_owned(), workload.to_owned(), lost))
            .or_default() += calls;
    }
    let mut misrouted: Vec<Misrouted> = mis
        .into_iter()
        .map(|((kind, service, key, workload, lost), calls)| Misrouted {
            kind,
            service,
            key,
            workload,
            lost,
            calls,
        })
        .collect();
    misrouted.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.cmp(b)));
    let mut lost_by: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (d, &n) in &chains.dropped {
        *lost_by.entry((name(d.at), name(d.to))).or_default() += n;
    }
    let mut lost: Vec<Lost> = lost_by
        .into_iter()
        .map(|((at, to), traces)| Lost { at, to, traces })
        .collect();
    lost.sort_by(|a, b| b.traces.cmp(&a.traces).then_with(|| a.cmp(b)));
    Findings {
        keyed_traces: chains.keyed_traces,
        attributed_calls: attributed,
        lost,
        misrouted,
    }
}
