//! What the checks keep of a replay: counts and a few examples, never
//! anything per request, so memory stays flat however many requests run.
//! Workers each fill a [`Summary`]; [`Summary::merge`] combines them, and
//! the result is the same for any number of workers.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use laneway_core::Reason;
use laneway_scenario::{HopReason, SandboxId, ServiceId};

use crate::trace::{Caller, DecidedAt, Served};

/// At most this many examples per check.
pub const EXAMPLES: usize = 10;

/// A check's count and its first examples, by request index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Finding {
    /// How many times the check failed.
    pub count: u64,
    /// The first failures, `(request index, description)`.
    pub examples: Vec<(u64, String)>,
}

impl Finding {
    /// Counts one failure of request `request`; `example` describes it
    /// (called only while examples are still kept).
    pub fn add(&mut self, request: u64, example: impl FnOnce() -> String) {
        self.count += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push((request, example()));
        }
    }

    fn merge(&mut self, other: Finding) {
        self.count += other.count;
        self.examples.extend(other.examples);
        self.examples.sort_by_key(|e| e.0);
        self.examples.truncate(EXAMPLES);
    }
}

/// One hop of a distinct path: what identifies it among the paths of a
/// traffic group. Paths with equal counts are listed in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PathHop {
    /// Who called.
    pub caller: Caller,
    /// The callee.
    pub service: ServiceId,
    /// What served it.
    pub served: Served,
    /// Where it was decided.
    pub decided_at: DecidedAt,
    /// The filter's reason, `None` when there was none.
    pub reason: Option<Reason>,
    /// The parent hop's position in the path.
    pub parent: Option<u32>,
}

impl PathHop {
    fn key(&self) -> (Caller, ServiceId, Served, usize, Option<u32>, DecidedAt) {
        // A missing reason sorts after every reason.
        let reason = self.reason.map_or(usize::MAX, Reason::index);
        (
            self.caller,
            self.service,
            self.served,
            reason,
            self.parent,
            self.decided_at,
        )
    }

    /// Why the hop went where it went, as [`Hop::why`](crate::Hop::why).
    pub fn why(&self) -> Option<HopReason> {
        HopReason::of(self.decided_at, self.reason)
    }
}

impl PartialOrd for PathHop {
    fn partial_cmp(&self, other: &PathHop) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathHop {
    fn cmp(&self, other: &PathHop) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// How many requests took a distinct path, and how many of them broke
/// an expectation of their traffic group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathCount {
    /// Requests.
    pub requests: u64,
    /// Those that broke an expectation.
    pub failed: u64,
}

impl PathCount {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: PathCount) {
        self.requests += other.requests;
        self.failed += other.failed;
    }
}

/// A caller → callee edge of the call graph (`None`: the ingress).
pub type Edge = (Option<ServiceId>, ServiceId);

/// Hops on an edge, and how many each sandbox's forks captured.
pub type EdgeCount = (u64, BTreeMap<SandboxId, u64>);

/// Everything the checks found, merged over workers.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Hops the primary backend recorded.
    pub hops: u64,
    /// Requests replayed.
    pub requests: u64,
    /// Per traffic group: distinct paths and their counts.
    pub paths: Vec<HashMap<Vec<PathHop>, PathCount>>,
    /// Per traffic group: requests that failed an expectation.
    pub group_failures: Vec<u64>,
    /// Hops per edge, and per sandbox that captured them.
    pub edges: HashMap<Edge, EdgeCount>,
    /// A request of no sandbox reached a fork.
    pub leak: Finding,
    /// A request of one sandbox reached another's fork.
    pub cross_talk: Finding,
    /// A sandbox's request missed its fork.
    pub miss: Finding,
    /// Forks no request can reach: their service has no waypoint (ambient
    /// mesh). Judged on the scenario, once per replay.
    pub unreachable_forks: Finding,
    /// The primary and the reference backend recorded different hops.
    pub differential: Finding,
    /// Hop pairs the differential check compared.
    pub compared: u64,
    /// Expectations that did not hold.
    pub expectations: Finding,
    /// The filter failed.
    pub failed: Finding,
    /// Events of the run (configuration swaps), once each.
    pub notes: Vec<String>,
}

impl Summary {
    /// An empty summary for `groups` traffic groups.
    pub fn new(groups: usize) -> Summary {
        Summary {
            paths: vec![HashMap::new(); groups],
            group_failures: vec![0; groups],
            ..Summary::default()
        }
    }

    /// Adds `other`'s counts and examples to these.
    pub fn merge(&mut self, other: Summary) {
        self.hops += other.hops;
        self.requests += other.requests;
        self.compared += other.compared;
        for (mine, theirs) in self.paths.iter_mut().zip(other.paths) {
            for (k, v) in theirs {
                mine.entry(k).or_default().add(v);
            }
        }
        for (a, b) in self.group_failures.iter_mut().zip(other.group_failures) {
            *a += b;
        }
        for (edge, (total, by)) in other.edges {
            let e = self.edges.entry(edge).or_default();
            e.0 += total;
            for (sb, n) in by {
                *e.1.entry(sb).or_default() += n;
            }
        }
        self.leak.merge(other.leak);
        self.cross_talk.merge(other.cross_talk);
        self.miss.merge(other.miss);
        self.unreachable_forks.merge(other.unreachable_forks);
        self.differential.merge(other.differential);
        self.expectations.merge(other.expectations);
        self.failed.merge(other.failed);
        for note in other.notes {
            self.note(note);
        }
    }

    /// Records an event once.
    pub fn note(&mut self, note: String) {
        if !note.is_empty() && !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    /// Every check, `(name, finding)`, in report order.
    pub fn checks(&self) -> [(&'static str, &Finding); 7] {
        [
            ("leak", &self.leak),
            ("cross-talk", &self.cross_talk),
            ("miss", &self.miss),
            ("unreachable-forks", &self.unreachable_forks),
            ("differential", &self.differential),
            ("failed-hops", &self.failed),
            ("expectations", &self.expectations),
        ]
    }
}
