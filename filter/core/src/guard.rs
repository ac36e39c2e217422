//! The blast-radius guards around [`Router::decide`]: ingress trust,
//! preview entry points, the loop guard, expiring sandboxes and forks, and
//! per-key rate limits. [`Router::guard`] runs them all, in this order:
//!
//! 1. **Decide** as without guards ([`Router::decide`]).
//! 2. **Ingress trust** (`ingress` configured: this filter is the edge).
//!    A request with a routing key, or with any look-alike of one anywhere
//!    in its `baggage` or `tracestate` ([`rewrite::has_lookalike`], no
//!    length limit), is trusted when its source address is in
//!    `trusted_cidrs`, or when its key member carries a valid signature
//!    ([`signature`]). Otherwise its look-alikes are removed and it goes to
//!    the baseline: [`Decision::Stripped`].
//! 3. **Preview** (`preview` configured, no key in the headers): the key
//!    may come from a `*.SUFFIX` host or a query parameter; the parameter
//!    (and its `laneway-sig`) is removed from `:path` in any case. The key
//!    is trusted by the same rules (a signature comes as the `laneway-sig`
//!    query parameter), then injected into `baggage`.
//! 4. **Loop guard** (a key present): the `laneway-hops` baggage member
//!    counts decided hops; past `max_hops` the answer is 508
//!    ([`Decision::Looped`]), else the counter is set one higher.
//! 5. **Expiry** (the key's sandbox known): an expired sandbox, or an
//!    expired fork of this service, sends the request to the baseline
//!    ([`Decision::Expired`]).
//! 6. **Rate limit** (the key's sandbox known and limited): one token from
//!    the key's bucket, shared by every worker through the host's shared
//!    data with compare-and-swap; none left: 429 ([`Decision::Limited`]).
//!
//! The core does no I/O: the host facts a guard needs (the source address,
//! the clock, shared data) are asked for through [`Facts`], only when a
//! configured guard needs them, so a request no guard concerns costs no
//! host call. A fact the host cannot give fails safe: no trust, an expired
//! fork, a request let through by the rate limit (so a broken shared store
//! never turns test traffic into errors); each is counted by the caller
//! through [`Outcome::host_errors`].
//!
//! Never allocates; never panics.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::cidr::{Cidr, Ip};
use crate::config::{Config, RateLimit};
use crate::decide::{
    Authority, Carrier, Decision, Request, Router, RoutingKey, SandboxId, Verdict,
};
use crate::filter_state::MAX_KEY_TEXT;
use crate::percent::Value;
use crate::rewrite::{self, Param};
use crate::signature::{self, Secret};

/// The shared-data key prefix of a rate-limit bucket: `laneway.rl.<key>`.
pub const BUCKET_PREFIX: &[u8] = b"laneway.rl.";
/// The longest shared-data key of a bucket.
pub const MAX_BUCKET_KEY: usize = 11 + crate::config::MAX_KEY_LEN;
/// A bucket's stored size: tokens (thousandths) and the time, both u64 LE.
pub const BUCKET_BYTES: usize = 16;
/// Compare-and-swap attempts before the rate limit lets a request through.
pub const MAX_CAS_TRIES: usize = 16;
/// The status of a rate-limited request.
pub const LIMITED_STATUS: u16 = 429;
/// The status of a request stopped by the loop guard.
pub const LOOPED_STATUS: u16 = 508;

/// What the guards ask of the host. Each method is called only when a
/// configured guard needs its answer.
pub trait Facts {
    /// The downstream address (`source.address`); `None` if unknown.
    fn source(&mut self) -> Option<Ip>;
    /// The host's clock, in Unix nanoseconds; `None` if unavailable.
    fn now_ns(&mut self) -> Option<u64>;
    /// Reads shared-data `key` into `out`: `Ok(None)` when absent,
    /// `Ok(Some(cas))` when present (its value must be [`BUCKET_BYTES`]
    /// long, else it reads as absent), `Err(())` when the host failed.
    #[allow(clippy::result_unit_err)]
    fn shared_get(&mut self, key: &[u8], out: &mut [u8; BUCKET_BYTES]) -> Result<Option<u32>, ()>;
    /// Writes shared-data `key` if its version is still `cas` (0: always):
    /// `Ok(true)` written, `Ok(false)` a compare-and-swap mismatch.
    #[allow(clippy::result_unit_err)]
    fn shared_set(&mut self, key: &[u8], value: &[u8], cas: u32) -> Result<bool, ()>;
}

/// How an edge filter judged a request's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Not judged: no `ingress`, or nothing that looks like a key.
    NotChecked,
    /// From a trusted network.
    Source,
    /// A valid signature.
    Signature,
    /// Not trusted; the signature's fate, when there was one.
    Untrusted(Option<signature::Check>),
}

/// Header edits the caller must make before forwarding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Edits<'h> {
    /// Remove every routing-key look-alike from `baggage` and `tracestate`
    /// ([`rewrite::edit_line`]).
    pub strip: bool,
    /// Set the `laneway-hops` member of `baggage` to this.
    pub hops: Option<u32>,
    /// Add a `baggage` member `<first member name>=<this key>`.
    pub inject: Option<&'h [u8]>,
    /// Remove the preview query parameters from `:path` ([`Router::preview_params`]).
    pub path: bool,
    /// The request came through preview host pattern `i`: the `:authority`
    /// becomes that pattern's service ([`Router::preview_service`]) unless
    /// it goes to a fork.
    pub preview_host: Option<u8>,
}

/// The guarded decision for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome<'h> {
    /// The decision and its evidence ([`Verdict::decision`] is final).
    pub verdict: Verdict<'h>,
    /// The key's sandbox, when known.
    pub sandbox: Option<SandboxId>,
    /// The edge's judgement.
    pub trust: Trust,
    /// What to change in the request.
    pub edits: Edits<'h>,
    /// The hops counted so far, including this one (loop guard).
    pub hops: Option<u32>,
    /// The limit a [`Decision::Limited`] request ran into.
    pub limit: Option<RateLimit>,
    /// Host facts asked for and not given (each failed safe).
    pub host_errors: u8,
    /// The rate limit let the request through after
    /// [`MAX_CAS_TRIES`] compare-and-swap mismatches.
    pub contended: bool,
}

impl Outcome<'_> {
    /// The status of the local reply, for a request answered locally.
    pub fn status(&self, router: &Router) -> u16 {
        match self.verdict.decision {
            Decision::Limited => LIMITED_STATUS,
            Decision::Looped => LOOPED_STATUS,
            _ => router.reject_status(),
        }
    }
}

/// The guards of one configuration, compiled.
#[derive(Default)]
pub struct Guards {
    ingress: Option<Ingress>,
    preview: Option<Preview>,
    default_limit: Option<RateLimit>,
    max_hops: Option<u32>,
    /// Per sandbox (empty when no sandbox sets one).
    sandbox_limits: Box<[Option<RateLimit>]>,
    /// Per sandbox, Unix ns (empty when none expires).
    sandbox_expiry: Box<[u64]>,
    /// Per fork, Unix ns (empty when none expires).
    fork_expiry: Box<[u64]>,
}

struct Ingress {
    cidrs: Box<[Cidr]>,
    secrets: Box<[Secret]>,
    max_ttl_s: u64,
}

/// A preview host pattern: `(".suffix", service)`, lowercase.
type PreviewPattern = (Box<[u8]>, Box<[u8]>);

struct Preview {
    hosts: Box<[PreviewPattern]>,
    param: Option<Box<[u8]>>,
}

const NEVER: u64 = u64::MAX;

fn time(text: &Option<alloc::string::String>) -> u64 {
    text.as_deref()
        .and_then(|t| crate::rfc3339::parse(t.as_bytes()).ok())
        .unwrap_or(NEVER)
}

impl Guards {
    /// Compiles the guards of a validated configuration.
    pub(crate) fn new(config: &Config) -> Guards {
        let ingress = config.ingress.as_ref().map(|i| Ingress {
            cidrs: i
                .trusted_cidrs
                .iter()
                .filter_map(|c| Cidr::parse(c).ok())
                .collect(),
            secrets: i
                .secrets
                .iter()
                .filter_map(|s| Secret::from_config(s).ok())
                .collect(),
            max_ttl_s: i.max_ttl_seconds,
        });
        let preview = config.preview.as_ref().map(|p| Preview {
            hosts: p
                .hosts
                .iter()
                .map(|h| {
                    let suffix = h.pattern.get(1..).unwrap_or("");
                    (
                        crate::config::lower(suffix),
                        crate::config::lower(&h.service),
                    )
                })
                .collect(),
            param: p.query_param.as_ref().map(|q| q.as_bytes().into()),
        });
        let sandboxes = &config.sandboxes;
        let sandbox_limits: Box<[Option<RateLimit>]> =
            if sandboxes.iter().any(|s| s.rate_limit.is_some()) {
                sandboxes.iter().map(|s| s.rate_limit).collect()
            } else {
                Box::new([])
            };
        let sandbox_expiry: Box<[u64]> = if sandboxes.iter().any(|s| s.expires_at.is_some()) {
            sandboxes.iter().map(|s| time(&s.expires_at)).collect()
        } else {
            Box::new([])
        };
        let fork_expiry: Box<[u64]> = if sandboxes
            .iter()
            .any(|s| s.forks.iter().any(|f| f.expires_at.is_some()))
        {
            sandboxes
                .iter()
                .flat_map(|s| s.forks.iter().map(|f| time(&f.expires_at)))
                .collect::<Vec<u64>>()
                .into_boxed_slice()
        } else {
            Box::new([])
        };
        Guards {
            ingress,
            preview,
            default_limit: config.rate_limit,
            max_hops: config.loop_guard.map(|g| g.max_hops),
            sandbox_limits,
            sandbox_expiry,
            fork_expiry,
        }
    }

    /// Whether any guard is configured.
    pub fn any(&self) -> bool {
        self.ingress.is_some()
            || self.preview.is_some()
            || self.default_limit.is_some()
            || self.max_hops.is_some()
            || !self.sandbox_limits.is_empty()
            || !self.sandbox_expiry.is_empty()
            || !self.fork_expiry.is_empty()
    }
}

/// The clock, asked for at most once per request.
struct Clock {
    now: Option<Option<u64>>,
}

impl Clock {
    fn get<F: Facts>(&mut self, facts: &mut F, errors: &mut u8) -> Option<u64> {
        *self.now.get_or_insert_with(|| {
            let now = facts.now_ns();
            if now.is_none() {
                *errors = errors.saturating_add(1);
            }
            now
        })
    }
}

impl Router {
    /// The compiled guards.
    pub fn guards(&self) -> &Guards {
        &self.guards
    }

    /// Whether every request must be looked at, tagged or not: preview
    /// entry points come without `baggage` or `tracestate`.
    pub fn reads_untagged(&self) -> bool {
        self.guards.preview.is_some()
    }

    /// The `:authority` of preview host pattern `i`'s service.
    pub fn preview_service(&self, i: u8) -> &[u8] {
        self.guards
            .preview
            .as_ref()
            .and_then(|p| p.hosts.get(usize::from(i)))
            .map_or(&[][..], |(_, s)| s)
    }

    /// The query parameters a preview edit removes from `:path`: the key
    /// parameter and its `laneway-sig`.
    pub fn preview_params(&self) -> [&[u8]; 2] {
        let param = self
            .guards
            .preview
            .as_ref()
            .and_then(|p| p.param.as_deref())
            .unwrap_or(b"");
        [param, signature::PROPERTY.as_bytes()]
    }

    /// The key text of sandbox `id`.
    pub fn sandbox_key(&self, id: SandboxId) -> &str {
        self.key_names.get(id.0 as usize).map_or("", |k| k)
    }

    /// Decides one request and runs every configured guard over the
    /// decision. `path` is the request's `:path` (read only by preview).
    /// Never allocates, never panics.
    pub fn guard<'h, B, T, F>(
        &self,
        request: Request<'h, B, T>,
        path: &'h [u8],
        facts: &mut F,
    ) -> Outcome<'h>
    where
        B: IntoIterator<Item = &'h [u8]>,
        B::IntoIter: Clone,
        T: IntoIterator<Item = &'h [u8]>,
        T::IntoIter: Clone,
        F: Facts,
    {
        let mut authority = Authority::known(request.authority);
        self.guard_with(
            request.baggage,
            request.tracestate,
            &mut authority,
            path,
            facts,
        )
    }

    /// [`Router::guard`] with the `:authority` read only when it can change
    /// the outcome (a key that names a sandbox, a preview host); afterwards
    /// [`Authority::if_read`] says whether it was. A header left out of the
    /// configuration's carriers is not read.
    pub fn guard_with<'h, B, T, A, F>(
        &self,
        baggage: B,
        tracestate: T,
        authority: &mut Authority<'h, A>,
        path: &'h [u8],
        facts: &mut F,
    ) -> Outcome<'h>
    where
        B: IntoIterator<Item = &'h [u8]>,
        B::IntoIter: Clone,
        T: IntoIterator<Item = &'h [u8]>,
        T::IntoIter: Clone,
        A: FnOnce() -> &'h [u8],
        F: Facts,
    {
        let (baggage, tracestate) = self.carried(baggage, tracestate);
        let mut verdict = self.decide_carried(baggage.clone(), tracestate.clone(), authority);
        let mut out = Outcome {
            verdict,
            sandbox: None,
            trust: Trust::NotChecked,
            edits: Edits::default(),
            hops: None,
            limit: None,
            host_errors: 0,
            contended: false,
        };
        let mut clock = Clock { now: None };
        let g = &self.guards;

        if let Some(ingress) = &g.ingress {
            // Preview parameters never pass the edge, whatever else the
            // request carries.
            if let Some(preview) = &g.preview {
                out.edits.path = preview.has_params(path);
            }
            let suspect = verdict.key.is_some()
                || rewrite::has_lookalike(baggage.clone(), &self.members)
                || rewrite::has_lookalike(tracestate.clone(), &self.members);
            if suspect {
                let token = verdict
                    .key
                    .filter(|k| k.carrier == Carrier::Baggage)
                    .map(|k| signature::find_token(crate::baggage::properties(k.properties)));
                out.trust = self.trust(
                    ingress,
                    verdict.key,
                    token,
                    facts,
                    &mut clock,
                    &mut out.host_errors,
                );
                // A signature vouches for its key alone: anything else
                // that looks like a key (another value, a look-alike name,
                // in either header, past the limits) makes the request
                // untrusted.
                if out.trust == Trust::Signature
                    && let Some(k) = verdict.key
                {
                    let name = self.members[usize::from(k.member)].as_bytes();
                    let keep = (name, k.value.raw());
                    if rewrite::has_other_lookalike(baggage.clone(), &self.members, keep)
                        || rewrite::has_other_lookalike(tracestate.clone(), &self.members, keep)
                    {
                        out.trust = Trust::Untrusted(None);
                    }
                }
                if let Trust::Untrusted(_) = out.trust {
                    out.edits.strip = true;
                    out.verdict.decision = Decision::Stripped;
                    return out;
                }
            } else if let Some(preview) = &g.preview {
                match self.preview(
                    ingress,
                    preview,
                    authority.get(),
                    path,
                    facts,
                    &mut clock,
                    &mut out,
                ) {
                    Some(v) => verdict = v,
                    None => return out,
                }
            }
        }

        let Some(key) = verdict.key else {
            out.verdict = verdict;
            return out;
        };
        if let Some(max) = g.max_hops {
            let hops = rewrite::hop_count(baggage.clone())
                .unwrap_or(0)
                .saturating_add(1);
            out.hops = Some(hops);
            if hops > max {
                out.verdict = Verdict {
                    decision: Decision::Looped,
                    ..verdict
                };
                return out;
            }
            out.edits.hops = Some(hops);
        }
        let per_sandbox = !g.sandbox_expiry.is_empty()
            || !g.fork_expiry.is_empty()
            || !g.sandbox_limits.is_empty()
            || g.default_limit.is_some();
        if !per_sandbox {
            out.verdict = verdict;
            return out;
        }
        let sandbox = match verdict.decision {
            Decision::Fork(id) => self.sandbox_of(id),
            Decision::NoFork => self.find_sandbox(&key.value),
            _ => None,
        };
        out.sandbox = sandbox;
        out.verdict = verdict;
        let Some(sandbox) = sandbox else {
            return out;
        };
        let s = sandbox.0 as usize;
        let sandbox_expiry = g.sandbox_expiry.get(s).copied().unwrap_or(NEVER);
        let fork_expiry = match verdict.decision {
            Decision::Fork(id) => g.fork_expiry.get(id.0 as usize).copied().unwrap_or(NEVER),
            _ => NEVER,
        };
        let expiry = sandbox_expiry.min(fork_expiry);
        if expiry != NEVER {
            // No clock: fail safe, as if expired.
            let expired = clock
                .get(facts, &mut out.host_errors)
                .is_none_or(|now| now >= expiry);
            if expired {
                out.verdict.decision = Decision::Expired;
                return out;
            }
        }
        let limit = g
            .sandbox_limits
            .get(s)
            .copied()
            .flatten()
            .or(g.default_limit);
        if let Some(limit) = limit
            && let Some(now) = clock.get(facts, &mut out.host_errors)
        {
            match take_token(facts, self.sandbox_key(sandbox).as_bytes(), limit, now) {
                Ok(true) => {}
                Ok(false) => {
                    out.limit = Some(limit);
                    out.verdict.decision = Decision::Limited;
                }
                Err(Taken::Contended) => out.contended = true,
                Err(Taken::HostError) => out.host_errors = out.host_errors.saturating_add(1),
            }
        }
        out
    }

    fn trust<F: Facts>(
        &self,
        ingress: &Ingress,
        key: Option<RoutingKey<'_>>,
        token: Option<signature::Token<'_>>,
        facts: &mut F,
        clock: &mut Clock,
        errors: &mut u8,
    ) -> Trust {
        if !ingress.cidrs.is_empty() {
            match facts.source() {
                Some(ip) if ingress.cidrs.iter().any(|c| c.contains(ip)) => return Trust::Source,
                Some(_) => {}
                None => *errors = errors.saturating_add(1),
            }
        }
        let (Some(key), Some(token)) = (key, token) else {
            return Trust::Untrusted(None);
        };
        let check = match token {
            signature::Token::Absent => return Trust::Untrusted(None),
            signature::Token::Duplicated => signature::Check::Malformed,
            signature::Token::Value(token) => {
                if ingress.secrets.is_empty() {
                    return Trust::Untrusted(None);
                }
                let mut buf = [0u8; MAX_KEY_TEXT];
                let (n, complete) = key.value.write_decoded(&mut buf);
                match clock.get(facts, errors) {
                    Some(now) if complete => signature::verify(
                        &ingress.secrets,
                        &buf[..n],
                        token,
                        now / 1_000_000_000,
                        ingress.max_ttl_s,
                    ),
                    _ => signature::Check::Malformed,
                }
            }
        };
        match check {
            signature::Check::Valid => Trust::Signature,
            other => Trust::Untrusted(Some(other)),
        }
    }

    /// Step 3: a key from the host or the query. `Some(verdict)` goes on
    /// with the injected key; `None` when `out` is final.
    #[allow(clippy::too_many_arguments)]
    fn preview<'h, F: Facts>(
        &self,
        ingress: &Ingress,
        preview: &Preview,
        authority: &'h [u8],
        path: &'h [u8],
        facts: &mut F,
        clock: &mut Clock,
        out: &mut Outcome<'h>,
    ) -> Option<Verdict<'h>> {
        let host = crate::authority::host(authority);
        let from_host = preview
            .hosts
            .iter()
            .enumerate()
            .find_map(|(i, (suffix, _))| {
                let cut = host.len().checked_sub(suffix.len())?;
                let (label, rest) = host.split_at(cut);
                (!label.is_empty() && rest.eq_ignore_ascii_case(suffix) && !label.contains(&b'.'))
                    .then_some((i as u8, label))
            });
        let from_query = match &preview.param {
            Some(p) => rewrite::query_param(path, p),
            None => Param::Absent,
        };
        let sig = rewrite::query_param(path, signature::PROPERTY.as_bytes());
        let key = match (from_host, from_query) {
            (None, Param::Absent) => return Some(out.verdict),
            (Some((_, label)), Param::Absent) => label,
            (None, Param::Value(v)) => v,
            (Some((_, label)), Param::Value(v)) if label.eq_ignore_ascii_case(v) => label,
            _ => {
                out.verdict.decision = Decision::Conflict;
                return None;
            }
        };
        let valid = !key.is_empty()
            && key.len() <= crate::config::MAX_KEY_LEN
            && key
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        if !valid {
            out.verdict.decision = Decision::Malformed;
            return None;
        }
        let routing_key = RoutingKey {
            value: Value::literal(key),
            carrier: Carrier::Baggage,
            member: 0,
            properties: &[],
        };
        let token = Some(match sig {
            Param::Absent => signature::Token::Absent,
            Param::Value(v) => signature::Token::Value(v),
            Param::Conflict => signature::Token::Duplicated,
        });
        out.trust = self.trust(
            ingress,
            Some(routing_key),
            token,
            facts,
            clock,
            &mut out.host_errors,
        );
        out.verdict.key = Some(routing_key);
        if let Trust::Untrusted(_) = out.trust {
            out.verdict.decision = Decision::Stripped;
            return None;
        }
        out.edits.inject = Some(key);
        out.edits.preview_host = from_host.map(|(i, _)| i);
        let to = match from_host {
            Some((i, _)) => self.preview_service(i),
            None => authority,
        };
        let (decision, _) = self.route_key(&routing_key.value, to);
        Some(Verdict {
            decision,
            key: Some(routing_key),
            ..out.verdict
        })
    }
}

/// Where [`Outcome::apply`] makes its edits: the host's request header
/// map (the filter), or a copy of it (the simulator's native sidecar).
pub trait HeaderSink {
    /// Why an edit failed.
    type Error;
    /// Removes every line of header `name`.
    fn remove(&mut self, name: &[u8]) -> Result<(), Self::Error>;
    /// Adds one line of header `name`, after the others.
    fn add(&mut self, name: &[u8], value: &[u8]) -> Result<(), Self::Error>;
    /// Sets header `name` (`:path`, `:authority`) to `value`.
    fn replace(&mut self, name: &[u8], value: &[u8]) -> Result<(), Self::Error>;
}

impl Outcome<'_> {
    /// Makes the header edits the guards asked for, in one order every
    /// host shares: `baggage` lines (strip, hop counter), `tracestate`
    /// lines (strip), a new `baggage` line (preview key, hop counter not
    /// yet set), `:path` (preview parameters). `baggage` and `tracestate`
    /// are the request's lines as decided (`tracestate_name` is the header
    /// read as tracestate). Lines are re-added in order after the header
    /// is removed, and only when one of them changes; a line too long to
    /// rewrite is dropped when keys are stripped (it cannot be vouched
    /// for), kept otherwise. The `:authority` of a fork or a preview host
    /// is the caller's to write. Never allocates.
    pub fn apply<'h, S: HeaderSink>(
        &self,
        router: &Router,
        path: &[u8],
        baggage: impl Iterator<Item = &'h [u8]> + Clone,
        tracestate: impl Iterator<Item = &'h [u8]> + Clone,
        tracestate_name: &[u8],
        sink: &mut S,
    ) -> Result<(), S::Error> {
        let edits = &self.edits;
        if !edits.strip && edits.hops.is_none() && edits.inject.is_none() && !edits.path {
            // Nothing to do, and no 16 KiB buffer to clear: that alone
            // cost every tagged request 16k instructions in Envoy.
            return Ok(());
        }
        let names = router.member_names();
        let strip = edits.strip.then_some(names);
        let mut buf = [0u8; rewrite::MAX_LINE];
        let mut hops_set = false;
        if strip.is_some() || edits.hops.is_some() {
            hops_set = edit_lines(b"baggage", baggage, strip, edits.hops, &mut buf, sink)?;
        }
        if strip.is_some() {
            edit_lines(tracestate_name, tracestate, strip, None, &mut buf, sink)?;
        }
        let hops = edits.hops.filter(|_| !hops_set);
        let inject = edits.inject.map(|k| {
            let first = names.first().map_or(&b""[..], |n| n.as_bytes());
            (first, k)
        });
        if (inject.is_some() || hops.is_some())
            && let Some(n) = rewrite::new_baggage_line(inject, hops, &mut buf)
        {
            sink.add(b"baggage", &buf[..n])?;
        }
        if edits.path
            && let Some(n) = rewrite::remove_params(path, &router.preview_params(), &mut buf)
        {
            sink.replace(b":path", &buf[..n])?;
        }
        Ok(())
    }
}

/// Rewrites every line of header `name`; `Ok(true)` when the hop counter
/// was set in one of them.
fn edit_lines<'h, S: HeaderSink>(
    name: &[u8],
    lines: impl Iterator<Item = &'h [u8]> + Clone,
    strip: Option<&[Box<str>]>,
    hops: Option<u32>,
    buf: &mut [u8; rewrite::MAX_LINE],
    sink: &mut S,
) -> Result<bool, S::Error> {
    let changed = lines
        .clone()
        .any(|l| rewrite::edit_line(l, strip, hops, buf).edit != rewrite::LineEdit::Unchanged);
    if !changed {
        return Ok(false);
    }
    sink.remove(name)?;
    let mut hops_set = false;
    for line in lines {
        let e = rewrite::edit_line(line, strip, hops, buf);
        hops_set |= e.hops_set;
        match e.edit {
            rewrite::LineEdit::Unchanged => sink.add(name, line)?,
            rewrite::LineEdit::Rewritten(n) => sink.add(name, &buf[..n])?,
            rewrite::LineEdit::Empty => {}
            rewrite::LineEdit::TooLong if strip.is_some() => {}
            rewrite::LineEdit::TooLong => sink.add(name, line)?,
        }
    }
    Ok(hops_set)
}

impl Preview {
    /// Whether `path` holds a parameter a preview edit removes.
    fn has_params(&self, path: &[u8]) -> bool {
        let present = |name: &[u8]| rewrite::query_param(path, name) != Param::Absent;
        self.param.as_deref().is_some_and(present) || present(signature::PROPERTY.as_bytes())
    }
}

/// A token bucket as stored in shared data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// Tokens left, in thousandths.
    pub milli: u64,
    /// When `milli` was last refilled, Unix ns.
    pub at_ns: u64,
}

impl Bucket {
    /// A full bucket at `now_ns`.
    pub fn full(limit: RateLimit, now_ns: u64) -> Bucket {
        Bucket {
            milli: u64::from(limit.burst) * 1000,
            at_ns: now_ns,
        }
    }

    /// Reads a stored bucket.
    pub fn decode(bytes: &[u8; BUCKET_BYTES]) -> Bucket {
        let mut milli = [0u8; 8];
        let mut at = [0u8; 8];
        milli.copy_from_slice(&bytes[..8]);
        at.copy_from_slice(&bytes[8..]);
        Bucket {
            milli: u64::from_le_bytes(milli),
            at_ns: u64::from_le_bytes(at),
        }
    }

    /// The stored form.
    pub fn encode(&self) -> [u8; BUCKET_BYTES] {
        let mut out = [0u8; BUCKET_BYTES];
        out[..8].copy_from_slice(&self.milli.to_le_bytes());
        out[8..].copy_from_slice(&self.at_ns.to_le_bytes());
        out
    }

    /// Refills for the time since `at_ns` (capped at the burst; a clock
    /// that went back refills nothing) and takes one token if there is
    /// one: `(taken, the bucket after)`.
    pub fn take(self, limit: RateLimit, now_ns: u64) -> (bool, Bucket) {
        let cap = u64::from(limit.burst) * 1000;
        let elapsed = now_ns.saturating_sub(self.at_ns);
        let refill = (u128::from(elapsed) * u128::from(limit.requests_per_second) / 1_000_000)
            .min(u128::from(cap)) as u64;
        let milli = self.milli.min(cap).saturating_add(refill).min(cap);
        let at_ns = self.at_ns.max(now_ns);
        if milli >= 1000 {
            (
                true,
                Bucket {
                    milli: milli - 1000,
                    at_ns,
                },
            )
        } else {
            (false, Bucket { milli, at_ns })
        }
    }
}

enum Taken {
    Contended,
    HostError,
}

/// Takes one token from `key`'s shared bucket, retrying a lost
/// compare-and-swap up to [`MAX_CAS_TRIES`] times.
fn take_token<F: Facts>(
    facts: &mut F,
    key: &[u8],
    limit: RateLimit,
    now_ns: u64,
) -> Result<bool, Taken> {
    let mut name = [0u8; MAX_BUCKET_KEY];
    let n = BUCKET_PREFIX.len() + key.len();
    let Some(dst) = name.get_mut(..n) else {
        return Err(Taken::HostError);
    };
    dst[..BUCKET_PREFIX.len()].copy_from_slice(BUCKET_PREFIX);
    dst[BUCKET_PREFIX.len()..].copy_from_slice(key);
    let name = &name[..n];
    for _ in 0..MAX_CAS_TRIES {
        let mut stored = [0u8; BUCKET_BYTES];
        let (bucket, cas) = match facts.shared_get(name, &mut stored) {
            Ok(Some(cas)) => (Bucket::decode(&stored), cas),
            Ok(None) => (Bucket::full(limit, now_ns), 0),
            Err(()) => return Err(Taken::HostError),
        };
        let (taken, next) = bucket.take(limit, now_ns);
        if !taken {
            // Nothing taken: nothing to write (the refill is recomputed
            // from the stored time next time).
            return Ok(false);
        }
        match facts.shared_set(name, &next.encode(), cas) {
            Ok(true) => return Ok(true),
            Ok(false) => continue,
            Err(()) => return Err(Taken::HostError),
        }
    }
    Err(Taken::Contended)
}

#[cfg(test)]
mod tests;
