//! The in-Envoy load harness: one Envoy 1.40 with one worker on loopback,
//! the same request mix for every setup, driven by `wrk`, setups run back to
//! back in one run so their ratios compare like with like.
//!
//! Setups:
//! 1. no filter (plain Envoy);
//! 2. an empty proxy-wasm filter (`benches/wasm/empty`): the floor;
//! 3. Laneway with N forks (N sandboxes each forking `location`);
//! 4. Istio-style regex routes for N sandboxes: per sandbox, one route for a
//!    `baggage` regex and one for a `tracestate` regex (a VirtualService
//!    match list with two entries renders as two Envoy routes), then the
//!    default route.
//!
//! Every route answers with `direct_response`, so the numbers measure the
//! proxy, not an upstream. Before loading a setup, the harness sends each
//! request of the mix once and checks where it went (fork or baseline), so
//! every setup is known to route the mix the same way; a harness that
//! breaks fails loudly, a slow number never does.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use laneway_envoy::bootstrap::{self, Filter, Route, Sidecar, Target, VirtualHost};
use laneway_envoy::{Envoy, Options, client};
use laneway_scenario::WorkloadName;
use serde_json::json;

use crate::callgrind::{Counting, keepalive_request, send_all};

/// The sandbox whose fork the tagged requests of the mix reach. The mix is
/// byte-for-byte the same in every setup; instead, each setup places this
/// sandbox in the *middle* of its list ([`sandbox_key`]), the average
/// position of a random sandbox. Envoy tries regex routes in order, so a
/// tagged request pays for the routes before its own; at the front it would
/// flatter the regex setups.
pub const HIT_KEY: &str = "sbx-000005";
const HIT_INDEX: usize = 5;

/// One setup under load.
#[derive(Clone, Debug, PartialEq)]
pub enum Setup {
    /// No HTTP filter but the router.
    Plain,
    /// An empty proxy-wasm filter.
    Empty,
    /// Laneway with this many forks.
    Laneway(usize),
    /// Regex routes for this many sandboxes.
    Regex(usize),
}

impl Setup {
    /// A short label.
    pub fn label(&self) -> String {
        match self {
            Setup::Plain => "plain Envoy".into(),
            Setup::Empty => "empty proxy-wasm filter".into(),
            Setup::Laneway(n) => format!("Laneway, {n} forks"),
            Setup::Regex(n) => format!("regex routes, {n} sandboxes"),
        }
    }

    fn forks(&self) -> usize {
        match self {
            Setup::Laneway(n) | Setup::Regex(n) => *n,
            Setup::Plain | Setup::Empty => 0,
        }
    }

    /// Whether tagged requests for [`HIT_KEY`] reach the fork.
    fn routes_tagged(&self) -> bool {
        self.forks() > 5
    }
}

/// Sandbox key number `i`.
pub fn key(i: usize) -> String {
    format!("sbx-{i:06}")
}

/// The key of the sandbox at position `i` of a setup with `n` sandboxes:
/// [`key`]`(i)`, except that [`HIT_KEY`] trades places with position `n / 2`.
pub fn sandbox_key(n: usize, i: usize) -> String {
    let middle = n / 2;
    key(match i {
        _ if n <= HIT_INDEX => i,
        _ if i == middle => HIT_INDEX,
        HIT_INDEX => middle,
        _ => i,
    })
}

/// One request of the mix: a description, its header lines, and whether it
/// reaches the fork when the setup routes.
pub type MixRequest = (&'static str, Vec<(&'static str, String)>, bool);

/// The request mix, cycled in order by every wrk connection.
pub fn mix() -> Vec<MixRequest> {
    let tp = (
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
    );
    vec![
        ("untagged", vec![], false),
        ("untagged, traceparent", vec![tp.clone()], false),
        (
            "baggage without key",
            vec![tp.clone(), ("baggage", "user=alice,session=8c1d2f".into())],
            false,
        ),
        (
            "baggage key, fork",
            vec![
                tp.clone(),
                ("baggage", format!("user=alice,sd-routing-key={HIT_KEY}")),
            ],
            true,
        ),
        (
            "tracestate key, fork",
            vec![
                tp.clone(),
                (
                    "tracestate",
                    format!("rojo=00f067aa0ba902b7,sd-routing-key={HIT_KEY}"),
                ),
            ],
            true,
        ),
        (
            "unknown key",
            vec![tp.clone(), ("baggage", "sd-routing-key=sbx-gone".into())],
            false,
        ),
        ("untagged", vec![], false),
        ("untagged, traceparent", vec![tp], false),
    ]
}

/// The service every request of the mix calls.
pub const SERVICE: &str = "location";
/// Its `:authority`.
pub const AUTHORITY: &str = "location:8083";

/// The host of `SERVICE`'s fork for key `k`.
pub fn fork_host(k: &str) -> String {
    format!("{SERVICE}-{k}")
}

/// What `SERVICE`'s fork for key `k` answers.
pub fn fork_body(k: &str) -> String {
    format!("{}\n", WorkloadName::fork(SERVICE, k))
}

/// What the baseline `SERVICE` answers.
pub fn baseline_body() -> String {
    format!("{}\n", WorkloadName::baseline(SERVICE))
}

/// The seed's Istio regex for one key, as RE2 (Envoy's `safe_regex`).
pub fn seed_regex(k: &str) -> String {
    format!(r"^.*\b(sd-routing-key|sd-sandbox)\s*=[^,]*\b{k}\b.*$")
}

/// The Laneway plugin configuration for `n` forks.
pub fn laneway_config(n: usize) -> String {
    let sandboxes: Vec<_> = (0..n)
        .map(|i| {
            let k = sandbox_key(n, i);
            json!({"key": k, "forks": [{"service": SERVICE, "destination": fork_host(&k)}]})
        })
        .collect();
    json!({"version": 1, "sandboxes": sandboxes}).to_string()
}

/// The bootstrap for one setup, with its Laneway configuration if any.
pub fn bootstrap_for(setup: &Setup, laneway: &Path, empty: &Path) -> serde_json::Value {
    let config = match setup {
        Setup::Laneway(n) => laneway_config(*n),
        _ => String::new(),
    };
    let n = setup.forks();
    let mut routes = Vec::new();
    if let Setup::Regex(n) = setup {
        for i in 0..*n {
            let k = sandbox_key(*n, i);
            for header in ["baggage", "tracestate"] {
                routes.push(Route {
                    header_regexes: vec![(header.to_owned(), seed_regex(&k))],
                    target: Target::Direct(fork_body(&k)),
                });
            }
        }
    }
    routes.push(Route {
        header_regexes: Vec::new(),
        target: Target::Direct(baseline_body()),
    });
    let mut virtual_hosts = vec![VirtualHost {
        host: SERVICE.to_owned(),
        routes,
    }];
    // Every fork is a service of its own, with its own virtual host, as in
    // Istio; regex setups route to it by header, Laneway by authority.
    virtual_hosts.extend((0..n).map(|i| {
        let k = sandbox_key(n, i);
        VirtualHost::to(&fork_host(&k), Target::Direct(fork_body(&k)))
    }));
    let filter = match setup {
        Setup::Plain | Setup::Regex(_) => Filter::None,
        Setup::Empty => Filter::Wasm {
            module: empty,
            configuration: "",
        },
        Setup::Laneway(_) => Filter::Wasm {
            module: laneway,
            configuration: &config,
        },
    };
    bootstrap::sidecar(&Sidecar::new(filter, virtual_hosts))
}

/// Load parameters.
#[derive(Clone, Debug)]
pub struct Load {
    /// Seconds of load per setup.
    pub seconds: u32,
    /// Seconds of warm-up load per setup, not measured.
    pub warmup: u32,
    /// wrk connections.
    pub connections: u32,
    /// Pin Envoy to CPU 1 and wrk to CPU 0.
    pub pin: bool,
    /// Rounds: every setup runs once per round, in the same order; the
    /// report takes each setup's median round.
    pub rounds: u32,
    /// Skip the check that every setup routes the mix the same way (for
    /// experiments with modules that do not route).
    pub skip_routing_check: bool,
}

/// One measured setup.
#[derive(Clone, Debug)]
pub struct Measured {
    /// The setup.
    pub setup: Setup,
    /// Requests per second.
    pub rps: f64,
    /// Latency percentiles, microseconds.
    pub p50_us: f64,
    /// 99th percentile, microseconds.
    pub p99_us: f64,
    /// Requests completed (in the median round).
    pub requests: u64,
    /// Requests per second of every round, in order.
    pub rounds: Vec<f64>,
}

fn wrk_script(dir: &Path) -> Result<PathBuf> {
    let mut lua = String::from("local reqs = {}\nlocal n = 0\ninit = function(args)\n");
    for (i, (_, headers, _)) in mix().iter().enumerate() {
        let mut h = format!("[\"Host\"]=\"{AUTHORITY}\"");
        for (name, value) in headers {
            let _ = write!(h, ", [\"{name}\"]=\"{value}\"");
        }
        let _ = writeln!(
            lua,
            "  reqs[{}] = wrk.format(\"GET\", \"/\", {{{h}}})",
            i + 1
        );
    }
    lua.push_str("end\nrequest = function()\n  n = n % #reqs + 1\n  return reqs[n]\nend\n");
    let path = dir.join("mix.lua");
    std::fs::write(&path, lua)?;
    Ok(path)
}

/// Sends each request of the mix once and checks where it went.
fn check_routing(setup: &Setup, listener: SocketAddr) -> Result<()> {
    for (what, headers, to_fork) in mix() {
        let mut lines: Vec<(&str, &[u8])> = vec![("host", AUTHORITY.as_bytes())];
        lines.extend(headers.iter().map(|(n, v)| (*n, v.as_bytes())));
        let r = client::get(listener, "/", &lines)
            .with_context(|| format!("{}: {what}", setup.label()))?;
        let want = if to_fork && setup.routes_tagged() {
            fork_body(HIT_KEY)
        } else {
            baseline_body()
        };
        if r.status != 200 || r.text() != want {
            bail!(
                "{}: {what}: got {} {:?}, want {want:?}: the setups would not route the same mix the same way",
                setup.label(),
                r.status,
                r.text()
            );
        }
    }
    Ok(())
}

fn wrk(listener: SocketAddr, script: &Path, seconds: u32, load: &Load) -> Result<String> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t1",
        &format!("-c{}", load.connections),
        &format!("-d{seconds}s"),
        "--latency",
        "--timeout",
        "5s",
    ])
    .arg("-s")
    .arg(script)
    .arg(format!("http://{listener}/"));
    if load.pin {
        // SAFETY: only sched_setaffinity runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| laneway_envoy::pin_to_cpu(0));
        }
    }
    let out = cmd
        .output()
        .context("cannot run wrk (apt-get install wrk, or make setup)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(text)
}

fn micros(v: &str) -> Option<f64> {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        _ => return None,
    })
}

/// Parses wrk's report; refuses one with errors or non-2xx responses.
pub fn parse_wrk(setup: &Setup, text: &str) -> Result<Measured> {
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::trim))
    };
    if let Some(bad) = field("Non-2xx or 3xx responses:") {
        bail!(
            "{}: wrk saw {bad} non-2xx responses:\n{text}",
            setup.label()
        );
    }
    if let Some(errors) = field("Socket errors:") {
        bail!(
            "{}: wrk saw socket errors ({errors}):\n{text}",
            setup.label()
        );
    }
    let rps = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .context("no Requests/sec in wrk output")?;
    let p50 = field("50%")
        .and_then(micros)
        .context("no 50% latency in wrk output")?;
    let p99 = field("99%")
        .and_then(micros)
        .context("no 99% latency in wrk output")?;
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .context("no request count in wrk output")?;
    Ok(Measured {
        setup: setup.clone(),
        rps,
        p50_us: p50,
        p99_us: p99,
        requests,
        rounds: vec![rps],
    })
}

/// Runs every setup back to back, `load.rounds` times, and returns each
/// setup's median round (with every round's throughput).
pub fn run(
    setups: &[Setup],
    laneway: &Path,
    empty: &Path,
    load: &Load,
    dir: &Path,
    progress: impl Fn(&str),
) -> Result<Vec<Measured>> {
    std::fs::create_dir_all(dir)?;
    let script = wrk_script(dir)?;
    let mut all: Vec<Vec<Measured>> = vec![Vec::new(); setups.len()];
    for round in 1..=load.rounds.max(1) {
        for (i, setup) in setups.iter().enumerate() {
            let bootstrap = bootstrap_for(setup, laneway, empty);
            let envoy = Envoy::start_with(
                &bootstrap,
                &Options {
                    cpu: load.pin.then_some(1),
                    ..Options::default()
                },
            )
            .with_context(|| setup.label())?;
            let listener = envoy
                .listener(bootstrap::LISTENER)
                .context("no outbound listener")?;
            if !load.skip_routing_check {
                check_routing(setup, listener)?;
            }
            if load.warmup > 0 {
                wrk(listener, &script, load.warmup, load)?;
            }
            let m = parse_wrk(setup, &wrk(listener, &script, load.seconds, load)?)?;
            progress(&format!(
                "round {round}: {:<30} {:>9.0} req/s  p50 {:>5.0} us  p99 {:>5.0} us",
                setup.label(),
                m.rps,
                m.p50_us,
                m.p99_us
            ));
            all[i].push(m);
            drop(envoy);
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(all
        .into_iter()
        .map(|mut runs| {
            let rounds: Vec<f64> = runs.iter().map(|m| m.rps).collect();
            runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
            let mut median = runs.swap_remove(runs.len() / 2);
            median.rounds = rounds;
            median
        })
        .collect())
}

/// The results as a Markdown table with ratios to plain Envoy and to the
/// empty filter, when those were measured.
pub fn table(results: &[Measured]) -> String {
    let find = |s: &Setup| results.iter().find(|m| m.setup == *s).map(|m| m.rps);
    let (plain, empty) = (find(&Setup::Plain), find(&Setup::Empty));
    let ratio =
        |base: Option<f64>, v: f64| base.map_or("-".to_owned(), |b| format!("{:.3}", v / b));
    let mut out = String::from(
        "| setup | req/s | p50 (µs) | p99 (µs) | vs plain | vs empty filter |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for m in results {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:.0} | {} | {} |",
            m.setup.label(),
            m.rps,
            m.p50_us,
            m.p99_us,
            ratio(plain, m.rps),
            ratio(empty, m.rps)
        );
    }
    out
}

/// The results as JSON, for CI.
pub fn to_json(results: &[Measured], load: &Load) -> serde_json::Value {
    json!({
        "load": {"seconds": load.seconds, "warmup": load.warmup, "connections": load.connections, "threads": 1, "envoy_concurrency": 1, "pinned": load.pin, "rounds": load.rounds},
        "mix": mix().iter().map(|(what, _, _)| *what).collect::<Vec<_>>(),
        "results": results.iter().map(|m| json!({
            "setup": m.setup.label(),
            "rps": m.rps,
            "p50_us": m.p50_us,
            "p99_us": m.p99_us,
            "requests": m.requests,
            "rounds_rps": m.rounds,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_output() {
        let text = "Running 3s test @ http://127.0.0.1:1/\n  1 threads and 16 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   330.12us  100.00us   5.00ms   90.00%\n  Latency Distribution\n     50%  310.00us\n     75%  350.00us\n     90%  400.00us\n     99%    1.20ms\n  145000 requests in 3.00s, 20.00MB read\nRequests/sec:  48333.33\nTransfer/sec:      6.67MB\n";
        let m = parse_wrk(&Setup::Plain, text).unwrap();
        assert_eq!(m.requests, 145000);
        assert!((m.rps - 48333.33).abs() < 0.01);
        assert_eq!((m.p50_us, m.p99_us), (310.0, 1200.0));
        let bad = format!("{text}  Non-2xx or 3xx responses: 12\n");
        assert!(
            parse_wrk(&Setup::Plain, &bad).is_err(),
            "errors must fail the harness"
        );
    }

    #[test]
    fn regex_setup_has_two_routes_per_sandbox() {
        let b = bootstrap_for(&Setup::Regex(10), Path::new("l.wasm"), Path::new("e.wasm"));
        let vhosts = &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
            ["route_config"]["virtual_hosts"];
        assert_eq!(vhosts[0]["routes"].as_array().unwrap().len(), 2 * 10 + 1);
        assert_eq!(vhosts.as_array().unwrap().len(), 1 + 10);
    }

    #[test]
    fn the_tagged_sandbox_sits_in_the_middle_of_every_list() {
        for n in [6, 10, 1000, 10_000] {
            let keys: Vec<_> = (0..n).map(|i| sandbox_key(n, i)).collect();
            assert_eq!(keys[n / 2], HIT_KEY, "n = {n}");
            let mut sorted = keys.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted, (0..n).map(key).collect::<Vec<_>>(), "a permutation");
        }
        let b = bootstrap_for(&Setup::Regex(1000), Path::new("l"), Path::new("e"));
        let routes = &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
            ["route_config"]["virtual_hosts"][0]["routes"];
        let first_hit = routes
            .as_array()
            .unwrap()
            .iter()
            .position(|r| r.to_string().contains(HIT_KEY))
            .unwrap();
        assert_eq!(first_hit, 2 * 500, "two routes per sandbox before it");
    }

    #[test]
    fn laneway_config_is_valid() {
        let r = laneway_core::Router::from_json(&laneway_config(100)).unwrap();
        assert_eq!(r.forks(), 100);
    }
}

/// Instructions per request, by request kind, for one setup.
#[derive(Clone, Debug)]
pub struct Counted {
    /// The setup.
    pub setup: Setup,
    /// `(kind, instructions per request)`, the mix's kinds then `the mix`.
    pub kinds: Vec<(String, f64)>,
}

/// Counts the instructions Envoy (all threads) executes per request of each
/// kind of the mix, under valgrind's callgrind ([`crate::callgrind`]):
/// deterministic, unlike timings on a shared machine. `per_kind` requests
/// per kind, after a warm-up that lets V8 tier the module up.
pub fn instructions(
    setups: &[Setup],
    laneway: &Path,
    empty: &Path,
    per_kind: usize,
    dir: &Path,
    progress: impl Fn(&str),
) -> Result<Vec<Counted>> {
    let mut out = Vec::new();
    for setup in setups {
        let bootstrap = bootstrap_for(setup, laneway, empty);
        let mut cg = Counting::start(
            &bootstrap,
            &dir.join(format!(
                "callgrind-{}",
                setup.label().replace([' ', ','], "-")
            )),
            &setup.label(),
        )?;
        let mix = mix();
        let all: Vec<Vec<u8>> = mix
            .iter()
            .map(|(_, h, _)| keepalive_request(AUTHORITY, h))
            .collect();
        send_all(cg.listener(), &all, 400)?;
        let mut kinds = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        let mut groups: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
        for (what, _, _) in &mix {
            let kind = what.trim_end_matches(", traceparent");
            if seen.contains(&kind) {
                continue;
            }
            seen.push(kind);
            let requests: Vec<Vec<u8>> = mix
                .iter()
                .filter(|(w, _, _)| w.trim_end_matches(", traceparent") == kind)
                .map(|(_, h, _)| keepalive_request(AUTHORITY, h))
                .collect();
            groups.push((kind.to_owned(), requests));
        }
        groups.push(("the mix".to_owned(), all));
        for (kind, requests) in &groups {
            let per = cg.count(requests, per_kind)?;
            progress(&format!(
                "{:<30} {kind:<22} {per:>9.0} instructions per request",
                setup.label()
            ));
            kinds.push((kind.clone(), per));
        }
        drop(cg);
        out.push(Counted {
            setup: setup.clone(),
            kinds,
        });
    }
    Ok(out)
}

/// The instruction counts as a Markdown table, with each setup's ratio to
/// the empty filter (empty / setup: above 1 is cheaper than the floor).
pub fn instructions_table(counted: &[Counted]) -> String {
    let Some(first) = counted.first() else {
        return String::new();
    };
    let empty = counted.iter().find(|c| c.setup == Setup::Empty);
    let mut out = String::from("| setup |");
    for (k, _) in &first.kinds {
        let _ = write!(out, " {k} |");
    }
    out.push_str(" the mix vs empty filter |\n|---|");
    for _ in &first.kinds {
        out.push_str("---:|");
    }
    out.push_str("---:|\n");
    for c in counted {
        let _ = write!(out, "| {} |", c.setup.label());
        for (_, v) in &c.kinds {
            let _ = write!(out, " {:.1}k |", v / 1000.0);
        }
        let ratio = match (empty.and_then(|e| e.kinds.last()), c.kinds.last()) {
            (Some((_, e)), Some((_, v))) => format!("{:.3}", e / v),
            _ => "-".into(),
        };
        let _ = writeln!(out, " {ratio} |");
    }
    out
}
