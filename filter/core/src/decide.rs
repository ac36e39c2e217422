//! The routing decision for one request: fork or baseline, and why.
//!
//! [`Router`] is built once per configuration. [`Router::decide`] reads the
//! request's `baggage` and `tracestate` lines and its `:authority` and
//! returns a [`Verdict`]: a small `Copy` [`Decision`] that says *why*, the
//! routing key it found, and what it had to skip.
//!
//! Precedence, exactly:
//! 1. Baggage is read first, then tracestate.
//! 2. The key is the value of the first configured member name found in
//!    baggage; if none is in baggage, the first found in tracestate.
//!    Members with an empty value carry no key and are passed over.
//! 3. If the chosen member name appears again with a different value, in
//!    baggage or in tracestate, the request is a [`Decision::Conflict`].
//!    Baggage values compare after percent-decoding; tracestate values
//!    literally.
//! 4. No key: [`Decision::Malformed`] if anything was skipped (an invalid
//!    baggage member, a limit, a discarded tracestate), else
//!    [`Decision::NoKey`].
//! 5. A key no sandbox has: [`Decision::UnknownKey`] (baseline) or
//!    [`Decision::Rejected`], by policy.
//! 6. A known key: [`Decision::Fork`] if that sandbox forks the host of
//!    `:authority` (port ignored, case-insensitive), else
//!    [`Decision::NoFork`].
//!
//! Cost: one pass over at most 8192 bytes of baggage, one over at most 32
//! tracestate members, and three bounded hash lookups ([`crate::index`]).
//! Nothing here allocates or panics.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use crate::authority;
use crate::baggage::{self, Entry, Limit};
use crate::config::{self, Carriers, Config, ConfigErrors, MAX_MEMBER_NAMES, UnknownKeyPolicy};
use crate::hash::Hasher;
use crate::index::Index;
use crate::percent::Value;
use crate::tracestate::{self, TraceState};

/// Which header carried the routing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Carrier {
    /// `baggage`.
    Baggage,
    /// `tracestate`.
    TraceState,
}

impl Carrier {
    /// `"baggage"` or `"tracestate"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Carrier::Baggage => "baggage",
            Carrier::TraceState => "tracestate",
        }
    }
}

/// The routing key found in a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoutingKey<'h> {
    /// The value; compare it decoded.
    pub value: Value<'h>,
    /// The header it came from.
    pub carrier: Carrier,
    /// Index of the member name in [`Router::member_names`].
    pub member: u8,
    /// The baggage member's properties (where a signature travels);
    /// empty for tracestate and preview keys.
    pub properties: &'h [u8],
}

/// A fork in the routing table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ForkId(pub(crate) u32);

/// A sandbox in the routing table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SandboxId(pub(crate) u32);

/// Where a request goes and why. Small and `Copy`: the outcome, not the
/// evidence (that is in [`Verdict`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The key's sandbox forks this service: route to the fork.
    Fork(ForkId),
    /// No routing key: baseline, untouched.
    NoKey,
    /// The key's sandbox does not fork this service: baseline.
    NoFork,
    /// No sandbox has this key, and the policy is baseline.
    UnknownKey,
    /// No sandbox has this key, and the policy is reject: a local reply.
    Rejected,
    /// The key's member appears with two different values: baseline.
    Conflict,
    /// No key, and something was malformed or over a limit: baseline.
    Malformed,
    /// An edge filter did not trust the request: its routing-key members
    /// were removed, and it goes to the baseline.
    Stripped,
    /// The key's sandbox, or its fork of this service, has expired.
    Expired,
    /// The key is over its rate limit: answered 429.
    Limited,
    /// The request crossed more hops than the loop guard allows: 508.
    Looped,
}

/// The three things that can happen to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    /// Sent to a fork: `:authority` rewritten.
    Fork,
    /// Sent on unchanged.
    Baseline,
    /// Answered locally.
    Reject,
}

impl Route {
    /// `"fork"`, `"baseline"` or `"reject"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Fork => "fork",
            Route::Baseline => "baseline",
            Route::Reject => "reject",
        }
    }
}

/// Why a request went where it went: the decision without its evidence.
/// A small `Copy` enum that every part of Laneway passes around (metrics,
/// the filter-state entry, traces, reports); it becomes text only at an
/// edge ([`Reason::as_str`]) and is read back only at an edge
/// ([`Reason::from_name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Sent to the key's fork of the service.
    Fork,
    /// No routing key: baseline.
    NoKey,
    /// The key's sandbox does not fork the service: baseline.
    NoFork,
    /// No sandbox has the key (policy baseline).
    UnknownKey,
    /// No sandbox has the key (policy reject): answered locally.
    Rejected,
    /// The key's member has two values: baseline.
    Conflict,
    /// No key, and something was malformed or over a limit: baseline.
    Malformed,
    /// Untrusted at the edge: routing-key members removed, baseline.
    Stripped,
    /// The sandbox or the fork has expired: baseline.
    Expired,
    /// Over the key's rate limit: answered 429.
    Limited,
    /// Stopped by the loop guard: answered 508.
    Looped,
}

impl Reason {
    /// Every reason, in [`Reason::index`] order.
    pub const ALL: [Reason; 11] = [
        Reason::Fork,
        Reason::NoKey,
        Reason::NoFork,
        Reason::UnknownKey,
        Reason::Rejected,
        Reason::Conflict,
        Reason::Malformed,
        Reason::Stripped,
        Reason::Expired,
        Reason::Limited,
        Reason::Looped,
    ];

    /// A dense index `0..11`, for counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The stable snake_case name: the metric suffix
    /// (`laneway.decision.<name>`) and the filter state's `decision=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Fork => "fork",
            Reason::NoKey => "no_key",
            Reason::NoFork => "no_fork",
            Reason::UnknownKey => "unknown_key",
            Reason::Rejected => "rejected",
            Reason::Conflict => "conflict",
            Reason::Malformed => "malformed",
            Reason::Stripped => "stripped",
            Reason::Expired => "expired",
            Reason::Limited => "limited",
            Reason::Looped => "looped",
        }
    }

    /// The reason named `name` ([`Reason::as_str`]'s inverse).
    pub fn from_name(name: &[u8]) -> Option<Reason> {
        Reason::ALL
            .into_iter()
            .find(|r| r.as_str().as_bytes() == name)
    }

    /// Where a request with this reason goes.
    pub fn route(self) -> Route {
        match self {
            Reason::Fork => Route::Fork,
            Reason::Rejected | Reason::Limited | Reason::Looped => Route::Reject,
            _ => Route::Baseline,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Route {
    /// The route named `name` ([`Route::as_str`]'s inverse).
    pub fn from_name(name: &[u8]) -> Option<Route> {
        [Route::Fork, Route::Baseline, Route::Reject]
            .into_iter()
            .find(|r| r.as_str().as_bytes() == name)
    }
}

impl Decision {
    /// Where the request goes.
    pub fn route(self) -> Route {
        self.reason().route()
    }

    /// Why: the decision without the fork it names.
    pub fn reason(self) -> Reason {
        match self {
            Decision::Fork(_) => Reason::Fork,
            Decision::NoKey => Reason::NoKey,
            Decision::NoFork => Reason::NoFork,
            Decision::UnknownKey => Reason::UnknownKey,
            Decision::Rejected => Reason::Rejected,
            Decision::Conflict => Reason::Conflict,
            Decision::Malformed => Reason::Malformed,
            Decision::Stripped => Reason::Stripped,
            Decision::Expired => Reason::Expired,
            Decision::Limited => Reason::Limited,
            Decision::Looped => Reason::Looped,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason().as_str())
    }
}

/// What became of the request's tracestate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceStateStatus {
    /// No tracestate header.
    Absent,
    /// Read.
    Valid,
    /// Discarded as a whole, for this reason.
    Discarded(tracestate::Invalid),
}

/// A decision with its evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict<'h> {
    /// The outcome.
    pub decision: Decision,
    /// The routing key, when one was found.
    pub key: Option<RoutingKey<'h>>,
    /// Invalid baggage members skipped.
    pub baggage_invalid: u16,
    /// The baggage limit that left the rest of the list unread, if any.
    pub baggage_dropped: Option<Limit>,
    /// The fate of the tracestate header.
    pub tracestate: TraceStateStatus,
}

/// One request, as the decision sees it: header lines in order.
#[derive(Clone, Debug)]
pub struct Request<'h, B, T> {
    /// The `:authority` (host, optionally with a port).
    pub authority: &'h [u8],
    /// Every `baggage` line, in order.
    pub baggage: B,
    /// Every `tracestate` line, in order.
    pub tracestate: T,
}

/// A request's `:authority`, known or read on first use (the filter's
/// host call, made only when the decision needs it).
pub struct Authority<'h, A> {
    read: Option<A>,
    value: Option<&'h [u8]>,
}

impl<'h> Authority<'h, fn() -> &'h [u8]> {
    /// An authority already at hand.
    pub fn known(value: &'h [u8]) -> Self {
        Authority {
            read: None,
            value: Some(value),
        }
    }
}

impl<'h, A: FnOnce() -> &'h [u8]> Authority<'h, A> {
    /// An authority that `read` fetches when first asked for.
    pub fn lazy(read: A) -> Self {
        Authority {
            read: Some(read),
            value: None,
        }
    }

    /// The authority, read now if it was not yet.
    pub fn get(&mut self) -> &'h [u8] {
        if let Some(read) = self.read.take() {
            self.value = Some(read());
        }
        self.value.unwrap_or_default()
    }

    /// The authority if it was asked for (or known from the start).
    pub fn if_read(&self) -> Option<&'h [u8]> {
        self.value
    }
}

#[derive(Clone, Copy, Default)]
struct Found<'h> {
    baggage: Option<Value<'h>>,
    properties: &'h [u8],
    tracestate: Option<Value<'h>>,
    conflict: bool,
}

struct ForkRoute {
    sandbox: u32,
    service: u32,
    destination: Box<str>,
    destination_has_port: bool,
}

/// The compiled routing table and policies of one configuration.
pub struct Router {
    pub(crate) members: Box<[Box<str>]>,
    carriers: Carriers,
    joined: bool,
    policy: UnknownKeyPolicy,
    reject_status: u16,
    keys: Index,
    pub(crate) key_names: Box<[Box<str>]>,
    services: Index,
    service_hosts: Box<[Box<[u8]>]>,
    forks: Index,
    routes: Box<[ForkRoute]>,
    pub(crate) guards: crate::guard::Guards,
}

/// A fork, for reports and metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForkInfo<'r> {
    /// The sandbox's routing key.
    pub key: &'r str,
    /// The forked service host (lowercase).
    pub service: &'r str,
    /// Where the fork lives.
    pub destination: &'r str,
}

impl Router {
    /// Parses, validates and compiles a JSON plugin configuration.
    pub fn from_json(text: &str) -> Result<Router, ConfigErrors> {
        Config::from_json(text).and_then(|c| Router::new(&c))
    }

    /// Validates and compiles a configuration.
    pub fn new(config: &Config) -> Result<Router, ConfigErrors> {
        config.validate()?;
        let key_names: Box<[Box<str>]> = config
            .sandboxes
            .iter()
            .map(|s| s.key.as_str().into())
            .collect();
        let mut service_hosts: Vec<Box<[u8]>> = Vec::new();
        // Host -> id, so the build is O(n log n) in the number of forks
        // (a linear search per fork made 100,000 services take 25 s).
        let mut service_ids: BTreeMap<Box<[u8]>, usize> = BTreeMap::new();
        let mut routes = Vec::new();
        for (s, sandbox) in config.sandboxes.iter().enumerate() {
            for fork in &sandbox.forks {
                let host = config::lower(&fork.service);
                let service = match service_ids.get(&host) {
                    Some(&i) => i,
                    None => {
                        service_ids.insert(host.clone(), service_hosts.len());
                        service_hosts.push(host);
                        service_hosts.len() - 1
                    }
                };
                routes.push(ForkRoute {
                    sandbox: s as u32,
                    service: service as u32,
                    destination: fork.destination.as_str().into(),
                    destination_has_port: authority::split(fork.destination.as_bytes()).1.is_some(),
                });
            }
        }
        let keys = Index::build(key_names.len() as u32, |seed, id| {
            let mut h = Hasher::new(seed);
            h.bytes(key_names[id as usize].as_bytes());
            h.finish()
        });
        let services = Index::build(service_hosts.len() as u32, |seed, id| {
            let mut h = Hasher::new(seed);
            h.bytes(&service_hosts[id as usize]);
            h.finish()
        });
        let forks = Index::build(routes.len() as u32, |seed, id| {
            let r = &routes[id as usize];
            pair_hash(seed, r.sandbox, r.service)
        });
        Ok(Router {
            carriers: config.routing_key.carriers,
            joined: config.routing_key.joined,
            members: config
                .routing_key
                .members
                .iter()
                .map(|m| m.as_str().into())
                .collect(),
            policy: config.unknown_key.policy,
            reject_status: config.unknown_key.status,
            keys,
            key_names,
            services,
            service_hosts: service_hosts.into_boxed_slice(),
            forks,
            routes: routes.into_boxed_slice(),
            guards: crate::guard::Guards::new(config),
        })
    }

    /// The routing-key member names, highest precedence first.
    pub fn member_names(&self) -> &[Box<str>] {
        &self.members
    }

    /// The headers a routing key may travel in; the others are not read.
    pub fn carriers(&self) -> Carriers {
        self.carriers
    }

    /// Whether the proxy joins repeated `baggage` and `tracestate` lines
    /// into one value, so that reading each header's value sees them all.
    pub fn joined(&self) -> bool {
        self.joined
    }

    /// The status of a rejected request.
    pub fn reject_status(&self) -> u16 {
        self.reject_status
    }

    /// Number of sandboxes.
    pub fn sandboxes(&self) -> usize {
        self.key_names.len()
    }

    /// Number of forks.
    pub fn forks(&self) -> usize {
        self.routes.len()
    }

    /// The fork behind `id`.
    pub fn fork(&self, id: ForkId) -> ForkInfo<'_> {
        let r = &self.routes[id.0 as usize];
        ForkInfo {
            key: &self.key_names[r.sandbox as usize],
            service: core::str::from_utf8(&self.service_hosts[r.service as usize]).unwrap_or(""),
            destination: &r.destination,
        }
    }

    /// Writes the `:authority` that sends a request for `original` to fork
    /// `id` into `out`: the destination, keeping the original port when the
    /// destination names none. It always fits: a validated destination host
    /// is at most [`authority::MAX_HOST`] bytes and a port at most
    /// [`authority::MAX_PORT_DIGITS`] digits, and [`authority::split`] takes
    /// no longer port from `original`. `None` only for an id of another
    /// router.
    pub fn fork_authority<'o>(
        &self,
        id: ForkId,
        original: &[u8],
        out: &'o mut [u8; authority::MAX_FORK_AUTHORITY],
    ) -> Option<&'o [u8]> {
        let r = self.routes.get(id.0 as usize)?;
        let port = if r.destination_has_port {
            None
        } else {
            authority::split(original).1
        };
        let dest = r.destination.as_bytes();
        let len = dest.len() + port.map_or(0, |p| p.len() + 1);
        let buf = out.get_mut(..len)?;
        buf[..dest.len()].copy_from_slice(dest);
        if let Some(p) = port {
            buf[dest.len()] = b':';
            buf[dest.len() + 1..].copy_from_slice(p);
        }
        Some(buf)
    }

    /// Decides one request. Never allocates, never panics.
    pub fn decide<'h, B, T>(&self, request: Request<'h, B, T>) -> Verdict<'h>
    where
        B: IntoIterator<Item = &'h [u8]>,
        T: IntoIterator<Item = &'h [u8]>,
    {
        let mut authority = Authority::known(request.authority);
        self.decide_with(request.baggage, request.tracestate, &mut authority)
    }

    /// [`Router::decide`] with the `:authority` asked for only when it can
    /// change the decision: when the key names a sandbox. A header left out
    /// of the configuration's carriers is not read.
    pub fn decide_with<'h, B, T, A>(
        &self,
        baggage: B,
        tracestate: T,
        authority: &mut Authority<'h, A>,
    ) -> Verdict<'h>
    where
        B: IntoIterator<Item = &'h [u8]>,
        T: IntoIterator<Item = &'h [u8]>,
        A: FnOnce() -> &'h [u8],
    {
        let (baggage, tracestate) = self.carried(baggage, tracestate);
        self.decide_carried(baggage, tracestate, authority)
    }

    /// The lines of `baggage` and `tracestate` the configuration's carriers
    /// let the router read: all of a carrier, none of another header.
    pub(crate) fn carried<'h, B, T>(
        &self,
        baggage: B,
        tracestate: T,
    ) -> (core::iter::Take<B::IntoIter>, core::iter::Take<T::IntoIter>)
    where
        B: IntoIterator<Item = &'h [u8]>,
        T: IntoIterator<Item = &'h [u8]>,
    {
        let lines = |carrier: bool| if carrier { usize::MAX } else { 0 };
        (
            baggage.into_iter().take(lines(self.carriers.baggage)),
            tracestate.into_iter().take(lines(self.carriers.tracestate)),
        )
    }

    /// [`Router::decide_with`] on lines already cut to the carriers.
    pub(crate) fn decide_carried<'h, B, T, A>(
        &self,
        baggage: B,
        tracestate: T,
        authority: &mut Authority<'h, A>,
    ) -> Verdict<'h>
    where
        B: Iterator<Item = &'h [u8]>,
        T: Iterator<Item = &'h [u8]>,
        A: FnOnce() -> &'h [u8],
    {
        let names = &self.members[..self.members.len().min(MAX_MEMBER_NAMES)];
        let mut found = [Found::default(); MAX_MEMBER_NAMES];

        let mut baggage_invalid = 0u16;
        let mut members = baggage::members(baggage);
        for entry in &mut members {
            match entry {
                Entry::Member(m) => {
                    if let Some(i) = names.iter().position(|n| n.as_bytes() == m.key)
                        && !m.value.is_empty()
                    {
                        let slot = &mut found[i];
                        match slot.baggage {
                            None => {
                                slot.baggage = Some(m.value);
                                slot.properties = m.properties;
                            }
                            Some(first) => slot.conflict |= !first.eq_value(&m.value),
                        }
                    }
                }
                Entry::Invalid { .. } => baggage_invalid = baggage_invalid.saturating_add(1),
            }
        }
        let baggage_dropped = members.dropped();

        let mut lines = tracestate.peekable();
        let tracestate = if lines.peek().is_none() {
            TraceStateStatus::Absent
        } else {
            match TraceState::parse(lines) {
                Ok(ts) => {
                    for (i, name) in names.iter().enumerate() {
                        if let Some(v) = ts.get(name.as_bytes()) {
                            found[i].tracestate = Some(Value::literal(v));
                        }
                    }
                    TraceStateStatus::Valid
                }
                Err(why) => TraceStateStatus::Discarded(why),
            }
        };

        let verdict = |decision, key| Verdict {
            decision,
            key,
            baggage_invalid,
            baggage_dropped,
            tracestate,
        };

        let chosen = (0..names.len())
            .find_map(|i| found[i].baggage.map(|v| (i, v, Carrier::Baggage)))
            .or_else(|| {
                (0..names.len())
                    .find_map(|i| found[i].tracestate.map(|v| (i, v, Carrier::TraceState)))
            });
        let Some((i, value, carrier)) = chosen else {
            let malformed = baggage_invalid > 0
                || baggage_dropped.is_some()
                || matches!(tracestate, TraceStateStatus::Discarded(_));
            let decision = if malformed {
                Decision::Malformed
            } else {
                Decision::NoKey
            };
            return verdict(decision, None);
        };
        let f = found[i];
        let key = Some(RoutingKey {
            value,
            carrier,
            member: i as u8,
            properties: if carrier == Carrier::Baggage {
                f.properties
            } else {
                &[]
            },
        });
        let conflict = f.conflict
            || matches!((f.baggage, f.tracestate), (Some(a), Some(b)) if !a.eq_value(&b));
        if conflict {
            return verdict(Decision::Conflict, key);
        }
        verdict(self.route_key_with(&value, authority).0, key)
    }

    /// The decision for a request that carries the routing key `value`,
    /// sent to `authority`, and the sandbox the key names.
    pub fn route_key(&self, value: &Value<'_>, authority: &[u8]) -> (Decision, Option<SandboxId>) {
        self.route_key_with(value, &mut Authority::known(authority))
    }

    /// [`Router::route_key`], asking for the authority only once the key
    /// names a sandbox.
    pub(crate) fn route_key_with<'h, A: FnOnce() -> &'h [u8]>(
        &self,
        value: &Value<'_>,
        authority: &mut Authority<'h, A>,
    ) -> (Decision, Option<SandboxId>) {
        let Some(sandbox) = self.find_key(value) else {
            let decision = match self.policy {
                UnknownKeyPolicy::Baseline => Decision::UnknownKey,
                UnknownKeyPolicy::Reject => Decision::Rejected,
            };
            return (decision, None);
        };
        let decision = self
            .find_service(authority::host(authority.get()))
            .and_then(|service| self.find_fork(sandbox, service))
            .map_or(Decision::NoFork, Decision::Fork);
        (decision, Some(SandboxId(sandbox)))
    }

    /// The sandbox that owns fork `id`.
    pub fn sandbox_of(&self, id: ForkId) -> Option<SandboxId> {
        self.routes.get(id.0 as usize).map(|r| SandboxId(r.sandbox))
    }

    /// The sandbox whose key is `value`.
    pub fn find_sandbox(&self, value: &Value<'_>) -> Option<SandboxId> {
        self.find_key(value).map(SandboxId)
    }

    fn find_key(&self, value: &Value<'_>) -> Option<u32> {
        let mut h = Hasher::new(self.keys.seed());
        if value.is_plain() {
            h.bytes(value.raw());
        } else {
            value.bytes().for_each(|b| h.byte(b));
        }
        self.keys.find(h.finish(), |id| {
            value.eq_bytes(self.key_names[id as usize].as_bytes())
        })
    }

    fn find_service(&self, host: &[u8]) -> Option<u32> {
        let mut h = Hasher::new(self.services.seed());
        h.bytes_lowercase(host);
        self.services.find(h.finish(), |id| {
            self.service_hosts[id as usize].eq_ignore_ascii_case(host)
        })
    }

    fn find_fork(&self, sandbox: u32, service: u32) -> Option<ForkId> {
        self.forks
            .find(pair_hash(self.forks.seed(), sandbox, service), |id| {
                let r = &self.routes[id as usize];
                r.sandbox == sandbox && r.service == service
            })
            .map(ForkId)
    }
}

fn pair_hash(seed: u64, sandbox: u32, service: u32) -> u64 {
    let mut h = Hasher::new(seed);
    h.u32(sandbox);
    h.u32(service);
    h.finish()
}

#[cfg(test)]
mod tests;
