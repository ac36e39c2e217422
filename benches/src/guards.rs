//! What each guard costs in Envoy, in instructions per request: the setups,
//! requests and table behind `bench-guards` (`make
//! bench-guards-instructions`), counted by [`crate::callgrind`].
//!
//! Every setup is the same Laneway configuration (ten sandboxes forking
//! `location`, and one, [`NO_FORK_KEY`], forking only another service)
//! with at most one guard added, each in its own Envoy, one after another.
//! Three kinds of request go through each: untagged, tagged with a key
//! whose sandbox forks `location` ([`HIT_KEY`]), and tagged with
//! [`NO_FORK_KEY`]. The tagged requests are the guard's usual case: the
//! signed setup's carry a valid `laneway-sig`, the preview setup's come as
//! `<key>.preview.example.com` with no context header at all.
//!
//! Before a setup is counted, each of its requests is sent once and must
//! get the answer (fork or baseline), the decision counter and the guard's
//! own counter ([`expect`]) the guard is meant to produce, with no host
//! error; after each counted kind, its decision counter must have grown by
//! exactly the requests sent. A guard that does not do what the table says
//! it measured fails the harness.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use laneway_core::{rfc3339, signature};
use laneway_envoy::bootstrap::{self, Filter, Route, Sidecar, Target, VirtualHost};
use laneway_envoy::client;
use serde_json::{Value, json};

use crate::callgrind::{Counting, keepalive_request, send_all};
use crate::envoy_load::{
    AUTHORITY, HIT_KEY, SERVICE, baseline_body, fork_body, fork_host, sandbox_key,
};

/// The sandboxes forking `location`; [`HIT_KEY`] is in the middle.
pub const SANDBOXES: usize = 10;
/// A sandbox that exists but forks another service, not `location`.
pub const NO_FORK_KEY: &str = "sbx-nofork";
/// The service [`NO_FORK_KEY`] forks.
const OTHER_SERVICE: &str = "billing";
/// The ingress secret: base64 of the bytes 0 to 31. A benchmark fixture,
/// public on purpose.
pub const SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// The preview host pattern's suffix.
const PREVIEW_SUFFIX: &str = "preview.example.com";
/// Requests sent to every setup before counting, uninstrumented, so that
/// V8 has tiered the module up.
pub const WARMUP: usize = 400;

/// One setup: Laneway with at most one guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// No guard: the reference.
    None,
    /// `ingress` trusting loopback: every tagged request is trusted by its
    /// source address.
    IngressTrusted,
    /// `ingress` trusting only 10.0.0.0/8: every tagged request is
    /// stripped.
    IngressUntrusted,
    /// `ingress` trusting only 10.0.0.0/8, every tagged request signed.
    IngressSigned,
    /// `ingress` trusting loopback and a preview host pattern; tagged
    /// requests come by preview host.
    Preview,
    /// A rate limit no request reaches.
    RateLimit,
    /// The loop guard.
    LoopGuard,
    /// Every sandbox expires in a year.
    Expiry,
}

impl Guard {
    /// The reference, each guard alone, then the reference again (its two
    /// counts show how far apart two runs of the same setup are).
    pub const RUN: [Guard; 9] = [
        Guard::None,
        Guard::IngressTrusted,
        Guard::IngressUntrusted,
        Guard::IngressSigned,
        Guard::Preview,
        Guard::RateLimit,
        Guard::LoopGuard,
        Guard::Expiry,
        Guard::None,
    ];

    /// A short label.
    pub fn label(self) -> &'static str {
        match self {
            Guard::None => "no guards",
            Guard::IngressTrusted => "ingress, trusted source",
            Guard::IngressUntrusted => "ingress, untrusted (strip)",
            Guard::IngressSigned => "ingress, signed key",
            Guard::Preview => "preview host",
            Guard::RateLimit => "rate_limit",
            Guard::LoopGuard => "loop_guard",
            Guard::Expiry => "expiry",
        }
    }

    /// What the setup configures and sends, for the table's notes.
    pub fn note(self) -> &'static str {
        match self {
            Guard::None => "the ten sandboxes and `sbx-nofork`, no guard field",
            Guard::IngressTrusted => {
                "`ingress`: `trusted_cidrs` 10.0.0.0/8 and 127.0.0.0/8, one secret; every tagged request comes from loopback, trusted by source"
            }
            Guard::IngressUntrusted => {
                "`ingress`: `trusted_cidrs` 10.0.0.0/8 only, one secret; every tagged request is untrusted, its key stripped, sent to the baseline"
            }
            Guard::IngressSigned => {
                "`ingress` as the untrusted setup; the tagged requests' key member carries `;laneway-sig=v1.EXP.SIG`, valid for an hour (a source check, then the clock, then HMAC-SHA256)"
            }
            Guard::Preview => {
                "`ingress` as the trusted setup, `preview.hosts` `*.preview.example.com` for `location`; the tagged requests have no context header and `Host: <key>.preview.example.com` (the key is injected as a new `baggage` line, `:authority` rewritten)"
            }
            Guard::RateLimit => {
                "`rate_limit` 1,000,000 per second, burst 1,000,000 (never reached): a clock read, a shared-data get and a compare-and-swap set per tagged request"
            }
            Guard::LoopGuard => {
                "`loop_guard.max_hops` 32: the tagged requests carry no hop counter, so each gets a new `baggage` line `laneway-hops=1`"
            }
            Guard::Expiry => {
                "`expires_at` a year ahead on every sandbox: a clock read per tagged request"
            }
        }
    }
}

/// One kind of request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No `baggage`, no `tracestate` (with and without `traceparent`).
    Untagged,
    /// A key whose sandbox forks `location`.
    Fork,
    /// A key whose sandbox forks only another service.
    NoFork,
}

impl Kind {
    /// Every kind, in the table's order.
    pub const ALL: [Kind; 3] = [Kind::Untagged, Kind::Fork, Kind::NoFork];

    /// A short label.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Untagged => "untagged",
            Kind::Fork => "tagged, fork",
            Kind::NoFork => "tagged, no fork",
        }
    }

    fn key(self) -> Option<&'static str> {
        match self {
            Kind::Untagged => None,
            Kind::Fork => Some(HIT_KEY),
            Kind::NoFork => Some(NO_FORK_KEY),
        }
    }
}

fn secret() -> Result<signature::Secret> {
    signature::Secret::from_config(SECRET).map_err(anyhow::Error::msg)
}

fn ingress(trust_loopback: bool) -> Value {
    let cidrs: &[&str] = if trust_loopback {
        &["10.0.0.0/8", "127.0.0.0/8"]
    } else {
        &["10.0.0.0/8"]
    };
    json!({"trusted_cidrs": cidrs, "secrets": [SECRET]})
}

/// The plugin configuration of `guard`, at `now_s` (Unix seconds).
pub fn config(guard: Guard, now_s: u64) -> String {
    let mut buf = [0u8; rfc3339::FORMAT_LEN_MAX];
    let in_a_year = rfc3339::format((now_s + 365 * 86_400) * 1_000_000_000, &mut buf);
    let mut sandboxes: Vec<Value> = (0..SANDBOXES)
        .map(|i| {
            let k = sandbox_key(SANDBOXES, i);
            json!({"key": k, "forks": [{"service": SERVICE, "destination": fork_host(&k)}]})
        })
        .collect();
    sandboxes.push(json!({"key": NO_FORK_KEY, "forks": [{
        "service": OTHER_SERVICE,
        "destination": format!("{OTHER_SERVICE}-{NO_FORK_KEY}"),
    }]}));
    if guard == Guard::Expiry {
        for s in &mut sandboxes {
            s["expires_at"] = json!(in_a_year);
        }
    }
    let mut c = json!({"version": 1, "sandboxes": sandboxes});
    match guard {
        Guard::None | Guard::Expiry => {}
        Guard::IngressTrusted => c["ingress"] = ingress(true),
        Guard::IngressUntrusted | Guard::IngressSigned => c["ingress"] = ingress(false),
        Guard::Preview => {
            c["ingress"] = ingress(true);
            c["preview"] =
                json!({"hosts": [{"pattern": format!("*.{PREVIEW_SUFFIX}"), "service": SERVICE}]});
        }
        Guard::RateLimit => {
            c["rate_limit"] = json!({"requests_per_second": 1_000_000, "burst": 1_000_000});
        }
        Guard::LoopGuard => c["loop_guard"] = json!({"max_hops": 32}),
    }
    c.to_string()
}

/// The bootstrap of `guard`'s setup: Laneway, `location` and its forks,
/// every route a `direct_response`.
pub fn bootstrap_for(guard: Guard, laneway: &Path, now_s: u64) -> Value {
    let config = config(guard, now_s);
    let mut virtual_hosts = vec![VirtualHost {
        host: SERVICE.to_owned(),
        routes: vec![Route {
            header_regexes: Vec::new(),
            target: Target::Direct(baseline_body()),
        }],
    }];
    virtual_hosts.extend((0..SANDBOXES).map(|i| {
        let k = sandbox_key(SANDBOXES, i);
        VirtualHost::to(&fork_host(&k), Target::Direct(fork_body(&k)))
    }));
    bootstrap::sidecar(&Sidecar::new(
        Filter::Wasm {
            module: laneway,
            configuration: &config,
        },
        virtual_hosts,
    ))
}

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The requests of `kind` in `guard`'s setup, sent in turn; signatures
/// expire an hour after `now_s`.
pub fn requests(guard: Guard, kind: Kind, now_s: u64) -> Result<Vec<Vec<u8>>> {
    let tp = ("traceparent", TRACEPARENT.to_owned());
    let Some(key) = kind.key() else {
        return Ok(vec![
            keepalive_request(AUTHORITY, &[]),
            keepalive_request(AUTHORITY, &[tp]),
        ]);
    };
    if guard == Guard::Preview {
        return Ok(vec![keepalive_request(
            &format!("{key}.{PREVIEW_SUFFIX}"),
            &[tp],
        )]);
    }
    let mut member = format!("sd-routing-key={key}");
    if guard == Guard::IngressSigned {
        let mut token = [0u8; signature::TOKEN_LEN_MAX];
        let n = signature::sign(&secret()?, key.as_bytes(), now_s + 3600, &mut token)
            .context("cannot sign")?;
        let token = std::str::from_utf8(&token[..n])?;
        let _ = write!(member, ";{}={token}", signature::PROPERTY);
    }
    Ok(vec![keepalive_request(
        AUTHORITY,
        &[tp, ("baggage", format!("user=alice,{member}"))],
    )])
}

/// What a request of `kind` must get in `guard`'s setup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    /// The body: a fork's or the baseline's.
    pub body: String,
    /// The decision counter that grows (`laneway.decision.<reason>`).
    pub reason: &'static str,
    /// The guard's own counters that grow by one.
    pub counters: &'static [&'static str],
}

/// What a request of `kind` must get in `guard`'s setup.
pub fn expect(guard: Guard, kind: Kind) -> Expect {
    let stripped = guard == Guard::IngressUntrusted && kind != Kind::Untagged;
    let (body, reason) = match kind {
        _ if stripped => (baseline_body(), "stripped"),
        Kind::Untagged => (baseline_body(), "no_key"),
        Kind::Fork => (fork_body(HIT_KEY), "fork"),
        Kind::NoFork => (baseline_body(), "no_fork"),
    };
    let counters: &[&str] = match guard {
        _ if kind == Kind::Untagged => &[],
        Guard::IngressTrusted => &["ingress.trusted_source"],
        Guard::IngressSigned => &["ingress.trusted_signature"],
        Guard::Preview => &["ingress.trusted_source", "preview.injected"],
        _ => &[],
    };
    Expect {
        body,
        reason,
        counters,
    }
}

fn counter(stats: &std::collections::BTreeMap<String, u64>, name: &str) -> u64 {
    stats
        .get(&format!("wasmcustom.laneway.{name}"))
        .copied()
        .unwrap_or(0)
}

/// Sends each request of every kind once and checks its answer and
/// counters against [`expect`].
fn check(cg: &Counting, guard: Guard, kinds: &[(Kind, Vec<Vec<u8>>)]) -> Result<()> {
    let envoy = cg.envoy().context("Envoy is gone")?;
    for (kind, requests) in kinds {
        let want = expect(guard, *kind);
        for request in requests {
            let what = format!("{}: {}", guard.label(), kind.label());
            let before = envoy.stats()?;
            let r = client::exchange(cg.listener(), request).with_context(|| what.clone())?;
            let after = envoy.stats()?;
            if r.status != 200 || r.text() != want.body {
                bail!(
                    "{what}: got {} {:?}, want {:?}",
                    r.status,
                    r.text(),
                    want.body
                );
            }
            let grew = |name: &str| counter(&after, name) - counter(&before, name);
            let reason = format!("decision.{}", want.reason);
            for name in std::iter::once(reason.as_str()).chain(want.counters.iter().copied()) {
                if grew(name) != 1 {
                    bail!(
                        "{what}: laneway.{name} grew by {}, want 1: the guard did not do what it is measured doing",
                        grew(name)
                    );
                }
            }
            if grew("host_errors") != 0 {
                bail!(
                    "{what}: laneway.host_errors grew by {}",
                    grew("host_errors")
                );
            }
        }
    }
    Ok(())
}

/// One counted setup.
#[derive(Clone, Debug)]
pub struct Counted {
    /// The setup.
    pub guard: Guard,
    /// Instructions per request, in [`Kind::ALL`]'s order.
    pub per_request: [f64; 3],
}

/// Counts every setup of `guards`, one Envoy after another (never two at
/// once: the machine has two cores).
pub fn run(
    guards: &[Guard],
    laneway: &Path,
    per_kind: usize,
    dir: &Path,
    now_s: u64,
    progress: impl Fn(&str),
) -> Result<Vec<Counted>> {
    let mut out = Vec::new();
    for &guard in guards {
        let bootstrap = bootstrap_for(guard, laneway, now_s);
        let mut cg = Counting::start(
            &bootstrap,
            &dir.join(format!("callgrind-{}", out.len())),
            guard.label(),
        )?;
        let kinds = Kind::ALL
            .iter()
            .map(|&k| Ok((k, requests(guard, k, now_s)?)))
            .collect::<Result<Vec<_>>>()?;
        check(&cg, guard, &kinds)?;
        let all: Vec<Vec<u8>> = kinds.iter().flat_map(|(_, r)| r.clone()).collect();
        send_all(cg.listener(), &all, WARMUP)?;
        let mut per_request = [0.0; 3];
        for (i, (kind, requests)) in kinds.iter().enumerate() {
            let envoy = cg.envoy().context("Envoy is gone")?;
            let reason = format!("decision.{}", expect(guard, *kind).reason);
            let before = counter(&envoy.stats()?, &reason);
            let per = cg.count(requests, per_kind)?;
            let envoy = cg.envoy().context("Envoy is gone")?;
            let stats = envoy.stats()?;
            let grew = counter(&stats, &reason) - before;
            if grew != per_kind as u64 {
                bail!(
                    "{}: {}: laneway.{reason} grew by {grew} over {per_kind} requests",
                    guard.label(),
                    kind.label()
                );
            }
            if counter(&stats, "host_errors") != 0 {
                bail!("{}: laneway.host_errors is not 0", guard.label());
            }
            progress(&format!(
                "{:<30} {:<22} {per:>9.0} instructions per request",
                guard.label(),
                kind.label()
            ));
            per_request[i] = per;
        }
        drop(cg);
        out.push(Counted { guard, per_request });
    }
    Ok(out)
}

/// The counts as a Markdown table: per setup and kind, instructions per
/// request and the difference from the first no-guard setup (absolute,
/// and as a ratio), then a note per setup.
pub fn table(counted: &[Counted]) -> String {
    let reference = counted.iter().find(|c| c.guard == Guard::None);
    let mut out = String::from("| setup |");
    for k in Kind::ALL {
        let _ = write!(out, " {} | vs no guards |", k.label());
    }
    out.push_str("\n|---|");
    for _ in Kind::ALL {
        out.push_str("---:|---:|");
    }
    out.push('\n');
    let mut seen_reference = false;
    for c in counted {
        let label = if c.guard == Guard::None && seen_reference {
            "no guards, again".to_owned()
        } else {
            c.guard.label().to_owned()
        };
        let is_reference = c.guard == Guard::None && !seen_reference;
        seen_reference |= c.guard == Guard::None;
        let _ = write!(out, "| {label} |");
        for (i, v) in c.per_request.iter().enumerate() {
            let diff = match reference {
                _ if is_reference => "reference".to_owned(),
                Some(r) => {
                    let base = r.per_request[i];
                    format!("{:+.1}k ({:.3}×)", (v - base) / 1000.0, v / base)
                }
                None => "-".to_owned(),
            };
            let _ = write!(out, " {:.1}k | {diff} |", v / 1000.0);
        }
        out.push('\n');
    }
    out.push('\n');
    let mut noted = Vec::new();
    for c in counted {
        if !noted.contains(&c.guard) {
            noted.push(c.guard);
            let _ = writeln!(out, "- **{}**: {}.", c.guard.label(), c.guard.note());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_000_000;

    #[test]
    fn every_setup_is_a_valid_configuration_with_one_guard() {
        for guard in Guard::RUN {
            let text = config(guard, NOW);
            let router = laneway_core::Router::from_json(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", guard.label()));
            assert_eq!(router.forks(), SANDBOXES + 1, "{}", guard.label());
            assert_eq!(
                router.guards().any(),
                guard != Guard::None,
                "{}",
                guard.label()
            );
        }
    }

    #[test]
    fn the_signed_requests_carry_a_valid_token() {
        let request = requests(Guard::IngressSigned, Kind::Fork, NOW).unwrap();
        let text = String::from_utf8(request[0].clone()).unwrap();
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("baggage: "))
            .unwrap();
        let token = line.split_once(";laneway-sig=").map(|(_, t)| t).unwrap();
        let check = signature::verify(
            &[secret().unwrap()],
            HIT_KEY.as_bytes(),
            token.as_bytes(),
            NOW,
            7 * 86_400,
        );
        assert_eq!(check, signature::Check::Valid);
    }

    #[test]
    fn the_table_compares_with_the_first_reference() {
        let c = |guard, v: f64| Counted {
            guard,
            per_request: [v, v * 2.0, v * 3.0],
        };
        let t = table(&[
            c(Guard::None, 100_000.0),
            c(Guard::Expiry, 101_000.0),
            c(Guard::None, 100_000.0),
        ]);
        assert!(t.contains("| no guards | 100.0k | reference |"), "{t}");
        assert!(t.contains("| expiry | 101.0k | +1.0k (1.010×) |"), "{t}");
        assert!(
            t.contains("| no guards, again | 100.0k | +0.0k (1.000×) |"),
            "{t}"
        );
        assert_eq!(t.matches("- **no guards**").count(), 1, "{t}");
    }
}
