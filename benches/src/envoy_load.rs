//! The in-Envoy load harness: one Envoy 1.40 with one worker on loopback,
//! the same requests for every setup, setups run back to back in one run so
//! their ratios compare like with like. `wrk` times them here;
//! [`instructions`] counts their instructions under callgrind.
//!
//! Setups ([`Setup`]):
//! 1. no filter (plain Envoy);
//! 2. an empty proxy-wasm filter (`benches/wasm/empty`): the floor;
//! 3. Laneway with N forks (N sandboxes each forking `location`), in each
//!    deployment shape of issue 12 ([`Wrapper`] × inline headers): the
//!    plain filter (what a WasmPlugin renders), the filter wrapped in
//!    Envoy's composite filter so that it runs only when a `baggage` or
//!    `tracestate` header is present, and either of those with both headers
//!    declared as bootstrap `inline_headers` (and `"joined": true` in the
//!    plugin configuration). Plain Envoy and the empty filter come with and
//!    without inline headers too, so each Laneway shape has a reference
//!    with the same bootstrap ([`Setup::like_plain`], [`Setup::like_empty`]);
//! 4. Istio-style regex routes for N sandboxes: per sandbox, one route for a
//!    `baggage` regex and one for a `tracestate` regex (a VirtualService
//!    match list with two entries renders as two Envoy routes), then the
//!    default route.
//!
//! Requests ([`Request`]) come in kinds ([`KINDS`]) and in two mixes, each
//! a fixed, deterministic cycle of real requests: the [`bench_mix`] (half
//! the requests carry context) and the [`production_mix`] (90% untagged,
//! half of those with `traceparent`; 10% with context, a fifth of which
//! carries the key of a sandbox that forks the service).
//!
//! Every route answers with `direct_response`, so the numbers measure the
//! proxy, not an upstream. Before measuring a setup, the harness sends each
//! request once and checks where it went (fork or baseline), so every setup
//! is known to route every request the same way; a harness that breaks
//! fails loudly, a slow number never does.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use laneway_envoy::bootstrap::{self, Filter, Route, Shape, Sidecar, Target, VirtualHost};
use laneway_envoy::{Envoy, Options, client};
use laneway_scenario::WorkloadName;
use serde_json::json;

pub mod instructions;

pub use instructions::{Count, Counted, instructions};

/// The sandbox whose fork the tagged requests reach. The requests are
/// byte-for-byte the same in every setup; instead, each setup places this
/// sandbox in the *middle* of its list ([`sandbox_key`]), the average
/// position of a random sandbox. Envoy tries regex routes in order, so a
/// tagged request pays for the routes before its own; at the front it would
/// flatter the regex setups.
pub const HIT_KEY: &str = "sbx-000005";
const HIT_INDEX: usize = 5;

/// Where the Laneway filter sits in the HTTP filter chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wrapper {
    /// Directly in the chain, as an Istio WasmPlugin renders it.
    Plain,
    /// Inside Envoy's composite filter (`ExtensionWithMatcher`), executed
    /// only for requests with a `baggage` or `tracestate` header.
    Composite,
}

impl Wrapper {
    fn shape(self) -> Shape {
        match self {
            Wrapper::Plain => Shape::Plain,
            Wrapper::Composite => Shape::Composite,
        }
    }
}

/// One setup under measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// No HTTP filter but the router.
    Plain {
        /// `baggage` and `tracestate` are bootstrap inline headers.
        inline: bool,
    },
    /// An empty proxy-wasm filter, plain in the chain.
    Empty {
        /// `baggage` and `tracestate` are bootstrap inline headers.
        inline: bool,
    },
    /// Laneway in one deployment shape.
    Laneway {
        /// Sandboxes, each forking `location`.
        forks: usize,
        /// Plain or composite-wrapped.
        wrapper: Wrapper,
        /// Inline headers in the bootstrap, `"joined": true` in the plugin
        /// configuration.
        inline: bool,
    },
    /// Regex routes for this many sandboxes (no filter, default bootstrap).
    Regex(usize),
}

/// The four Laneway deployment shapes, in the order the tables show them.
pub const SHAPES: [(Wrapper, bool); 4] = [
    (Wrapper::Plain, false),
    (Wrapper::Composite, false),
    (Wrapper::Plain, true),
    (Wrapper::Composite, true),
];

/// A shape's name: `plain`, `composite`, `plain + inline`, `composite + inline`.
pub fn shape_label(wrapper: Wrapper, inline: bool) -> &'static str {
    match (wrapper, inline) {
        (Wrapper::Plain, false) => "plain",
        (Wrapper::Composite, false) => "composite",
        (Wrapper::Plain, true) => "plain + inline",
        (Wrapper::Composite, true) => "composite + inline",
    }
}

/// `1,000`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Setup {
    /// Laneway with `forks` forks in one shape.
    pub fn laneway(forks: usize, (wrapper, inline): (Wrapper, bool)) -> Setup {
        Setup::Laneway {
            forks,
            wrapper,
            inline,
        }
    }

    /// A short label.
    pub fn label(&self) -> String {
        let plus = |inline: bool| if inline { " + inline" } else { "" };
        match *self {
            Setup::Plain { inline } => format!("plain Envoy{}", plus(inline)),
            Setup::Empty { inline } => format!("empty filter{}", plus(inline)),
            Setup::Laneway {
                forks,
                wrapper,
                inline,
            } => format!(
                "Laneway {}, {} forks",
                shape_label(wrapper, inline),
                thousands(forks)
            ),
            Setup::Regex(n) => format!("regex routes, {} sandboxes", thousands(n)),
        }
    }

    /// Whether the bootstrap declares inline headers.
    pub fn inline(&self) -> bool {
        match *self {
            Setup::Plain { inline } | Setup::Empty { inline } | Setup::Laneway { inline, .. } => {
                inline
            }
            Setup::Regex(_) => false,
        }
    }

    /// Plain Envoy with the same bootstrap (inline headers or not).
    pub fn like_plain(&self) -> Setup {
        Setup::Plain {
            inline: self.inline(),
        }
    }

    /// The empty filter with the same bootstrap (inline headers or not).
    pub fn like_empty(&self) -> Setup {
        Setup::Empty {
            inline: self.inline(),
        }
    }

    fn forks(&self) -> usize {
        match *self {
            Setup::Laneway { forks: n, .. } | Setup::Regex(n) => n,
            Setup::Plain { .. } | Setup::Empty { .. } => 0,
        }
    }

    /// Whether tagged requests for [`HIT_KEY`] reach the fork.
    fn routes_tagged(&self) -> bool {
        self.forks() > HIT_INDEX
    }

    /// A name usable as a directory.
    pub fn slug(&self) -> String {
        self.label()
            .chars()
            .filter_map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' => Some(c),
                ' ' | '+' => Some('-'),
                _ => None,
            })
            .collect()
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

/// One request: its kind, its header lines, and whether it reaches the
/// fork when the setup routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// One of [`KINDS`].
    pub kind: &'static str,
    /// Header lines besides `Host`.
    pub headers: Vec<(&'static str, String)>,
    /// Reaches `HIT_KEY`'s fork when the setup has it.
    pub to_fork: bool,
}

/// No context header (with or without `traceparent`).
pub const UNTAGGED: &str = "untagged";
/// `baggage` with other members only.
pub const BAGGAGE_NO_KEY: &str = "baggage without key";
/// `tracestate` with a vendor's entry only.
pub const TRACESTATE_NO_KEY: &str = "tracestate without key";
/// `baggage` carrying [`HIT_KEY`].
pub const BAGGAGE_FORK: &str = "baggage key, fork";
/// `tracestate` carrying [`HIT_KEY`].
pub const TRACESTATE_FORK: &str = "tracestate key, fork";
/// `baggage` carrying a key no sandbox has.
pub const UNKNOWN_KEY: &str = "unknown key";

/// Every request kind, in the order the tables show them.
pub const KINDS: [&str; 6] = [
    UNTAGGED,
    BAGGAGE_NO_KEY,
    TRACESTATE_NO_KEY,
    BAGGAGE_FORK,
    TRACESTATE_FORK,
    UNKNOWN_KEY,
];

/// The bench mix's name.
pub const BENCH_MIX: &str = "bench mix";
/// The production mix's name.
pub const PRODUCTION_MIX: &str = "production mix";
/// Both mixes, in the order the tables show them.
pub const MIXES: [&str; 2] = [BENCH_MIX, PRODUCTION_MIX];

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A request of `kind`; every kind but [`UNTAGGED`] carries `traceparent`,
/// which an untagged request carries when `traceparent` is set.
pub fn request(kind: &'static str, traceparent: bool) -> Request {
    let tp = ("traceparent", TRACEPARENT.to_owned());
    let context = match kind {
        UNTAGGED => {
            return Request {
                kind,
                headers: if traceparent { vec![tp] } else { vec![] },
                to_fork: false,
            };
        }
        BAGGAGE_NO_KEY => ("baggage", "user=alice,session=8c1d2f".to_owned()),
        TRACESTATE_NO_KEY => ("tracestate", "rojo=00f067aa0ba902b7".to_owned()),
        BAGGAGE_FORK => ("baggage", format!("user=alice,sd-routing-key={HIT_KEY}")),
        TRACESTATE_FORK => (
            "tracestate",
            format!("rojo=00f067aa0ba902b7,sd-routing-key={HIT_KEY}"),
        ),
        UNKNOWN_KEY => ("baggage", "sd-routing-key=sbx-gone".to_owned()),
        other => unreachable!("no request kind {other:?}"),
    };
    Request {
        kind,
        to_fork: matches!(kind, BAGGAGE_FORK | TRACESTATE_FORK),
        headers: vec![tp, context],
    }
}

/// The requests of one kind, cycled when that kind is counted: untagged
/// alternates without and with `traceparent`.
pub fn kind_requests(kind: &'static str) -> Vec<Request> {
    if kind == UNTAGGED {
        vec![request(UNTAGGED, false), request(UNTAGGED, true)]
    } else {
        vec![request(kind, true)]
    }
}

/// The bench mix, eight requests cycled in order (the mix of the earlier
/// benchmarks): untagged, untagged with `traceparent`, baggage without
/// key, baggage key with a fork, tracestate key with a fork, unknown key,
/// untagged, untagged with `traceparent`. Half carry context.
pub fn bench_mix() -> Vec<Request> {
    vec![
        request(UNTAGGED, false),
        request(UNTAGGED, true),
        request(BAGGAGE_NO_KEY, true),
        request(BAGGAGE_FORK, true),
        request(TRACESTATE_FORK, true),
        request(UNKNOWN_KEY, true),
        request(UNTAGGED, false),
        request(UNTAGGED, true),
    ]
}

/// The context requests of the production mix, one per ten requests:
/// two (a fifth) carry the key of a sandbox that forks the service, one in
/// `baggage` and one in `tracestate`; of the rest, three carry `baggage`
/// without a key, three a vendor's `tracestate` without a key, and two a
/// key no sandbox has.
const PRODUCTION_CONTEXT: [&str; 10] = [
    BAGGAGE_NO_KEY,
    TRACESTATE_NO_KEY,
    BAGGAGE_FORK,
    UNKNOWN_KEY,
    BAGGAGE_NO_KEY,
    TRACESTATE_NO_KEY,
    TRACESTATE_FORK,
    UNKNOWN_KEY,
    BAGGAGE_NO_KEY,
    TRACESTATE_NO_KEY,
];

/// The production mix, one hundred requests cycled in order: 90 untagged
/// (alternately without and with `traceparent`: 45 each) and 10 with
/// context ([`PRODUCTION_CONTEXT`]), the context requests spread evenly,
/// at every tenth position.
pub fn production_mix() -> Vec<Request> {
    let mut untagged = 0;
    (0..100)
        .map(|i| {
            if i % 10 == 5 {
                request(PRODUCTION_CONTEXT[i / 10], true)
            } else {
                untagged += 1;
                request(UNTAGGED, untagged % 2 == 0)
            }
        })
        .collect()
}

/// The mix called `name` ([`MIXES`]).
pub fn mix(name: &str) -> Vec<Request> {
    match name {
        PRODUCTION_MIX => production_mix(),
        _ => bench_mix(),
    }
}

/// The service every request calls.
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
    laneway_config_joined(n, false)
}

/// The Laneway plugin configuration for `n` forks; `joined` sets
/// `routing_key.joined` (for a bootstrap with inline headers), carriers
/// left at their default, both.
pub fn laneway_config_joined(n: usize, joined: bool) -> String {
    let sandboxes: Vec<_> = (0..n)
        .map(|i| {
            let k = sandbox_key(n, i);
            json!({"key": k, "forks": [{"service": SERVICE, "destination": fork_host(&k)}]})
        })
        .collect();
    if joined {
        json!({"version": 1, "routing_key": {"joined": true}, "sandboxes": sandboxes})
    } else {
        json!({"version": 1, "sandboxes": sandboxes})
    }
    .to_string()
}

/// The bootstrap for one setup, with its Laneway configuration if any.
pub fn bootstrap_for(setup: &Setup, laneway: &Path, empty: &Path) -> serde_json::Value {
    let config = match *setup {
        Setup::Laneway { forks, inline, .. } => laneway_config_joined(forks, inline),
        _ => String::new(),
    };
    let n = setup.forks();
    let mut routes = Vec::new();
    if let Setup::Regex(n) = *setup {
        for i in 0..n {
            let k = sandbox_key(n, i);
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
        Setup::Plain { .. } | Setup::Regex(_) => Filter::None,
        Setup::Empty { .. } => Filter::Wasm {
            module: empty,
            configuration: "",
        },
        Setup::Laneway { .. } => Filter::Wasm {
            module: laneway,
            configuration: &config,
        },
    };
    let mut sidecar = Sidecar::new(filter, virtual_hosts);
    if let Setup::Laneway { wrapper, .. } = *setup {
        sidecar.shape = wrapper.shape();
    }
    sidecar.inline_headers = setup.inline();
    bootstrap::sidecar(&sidecar)
}

/// Sends each request of every kind once and checks where it went.
pub fn check_routing(setup: &Setup, listener: SocketAddr) -> Result<()> {
    for kind in KINDS {
        for r in kind_requests(kind) {
            let mut lines: Vec<(&str, &[u8])> = vec![("host", AUTHORITY.as_bytes())];
            lines.extend(r.headers.iter().map(|(n, v)| (*n, v.as_bytes())));
            let got = client::get(listener, "/", &lines)
                .with_context(|| format!("{}: {kind}", setup.label()))?;
            let want = if r.to_fork && setup.routes_tagged() {
                fork_body(HIT_KEY)
            } else {
                baseline_body()
            };
            if got.status != 200 || got.text() != want {
                bail!(
                    "{}: {kind}: got {} {:?}, want {want:?}: the setups would not route the same requests the same way",
                    setup.label(),
                    got.status,
                    got.text()
                );
            }
        }
    }
    Ok(())
}

/// Load parameters.
#[derive(Clone, Debug)]
pub struct Load {
    /// Seconds of load per setup and mix.
    pub seconds: u32,
    /// Seconds of warm-up load per setup and mix, not measured.
    pub warmup: u32,
    /// wrk connections.
    pub connections: u32,
    /// Pin Envoy to CPU 1 and wrk to CPU 0.
    pub pin: bool,
    /// Rounds: every setup runs once per round, in the same order; the
    /// report takes each setup's median round.
    pub rounds: u32,
    /// Skip the check that every setup routes the requests the same way
    /// (for experiments with modules that do not route).
    pub skip_routing_check: bool,
}

/// One setup and mix, timed.
#[derive(Clone, Debug)]
pub struct Measured {
    /// The setup.
    pub setup: Setup,
    /// The mix ([`MIXES`]).
    pub mix: &'static str,
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

fn wrk_script(dir: &Path, name: &str) -> Result<PathBuf> {
    let mut lua = String::from("local reqs = {}\nlocal n = 0\ninit = function(args)\n");
    for (i, r) in mix(name).iter().enumerate() {
        let mut h = format!("[\"Host\"]=\"{AUTHORITY}\"");
        for (name, value) in &r.headers {
            let _ = write!(h, ", [\"{name}\"]=\"{value}\"");
        }
        let _ = writeln!(
            lua,
            "  reqs[{}] = wrk.format(\"GET\", \"/\", {{{h}}})",
            i + 1
        );
    }
    lua.push_str("end\nrequest = function()\n  n = n % #reqs + 1\n  return reqs[n]\nend\n");
    let path = dir.join(format!("{}.lua", name.replace(' ', "-")));
    std::fs::write(&path, lua)?;
    Ok(path)
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
pub fn parse_wrk(setup: &Setup, mix: &'static str, text: &str) -> Result<Measured> {
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
        setup: *setup,
        mix,
        rps,
        p50_us: p50,
        p99_us: p99,
        requests,
        rounds: vec![rps],
    })
}

/// Runs every setup back to back, `load.rounds` times, each with both
/// mixes, and returns each setup and mix's median round (with every
/// round's throughput), setups in order, the bench mix first.
pub fn run(
    setups: &[Setup],
    laneway: &Path,
    empty: &Path,
    load: &Load,
    dir: &Path,
    progress: impl Fn(&str),
) -> Result<Vec<Measured>> {
    std::fs::create_dir_all(dir)?;
    let scripts = MIXES
        .iter()
        .map(|m| wrk_script(dir, m))
        .collect::<Result<Vec<_>>>()?;
    let mut all: Vec<Vec<Measured>> = vec![Vec::new(); setups.len() * MIXES.len()];
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
            for (j, (name, script)) in MIXES.iter().zip(&scripts).enumerate() {
                if load.warmup > 0 {
                    wrk(listener, script, load.warmup, load)?;
                }
                let m = parse_wrk(setup, name, &wrk(listener, script, load.seconds, load)?)?;
                progress(&format!(
                    "round {round}: {:<40} {name:<15} {:>9.0} req/s  p50 {:>5.0} us  p99 {:>5.0} us",
                    setup.label(),
                    m.rps,
                    m.p50_us,
                    m.p99_us
                ));
                all[i * MIXES.len() + j].push(m);
            }
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

/// The results as a Markdown table, one row per setup, both mixes, with
/// ratios to plain Envoy and to the empty filter with the same bootstrap
/// (inline headers or not), when those were measured.
pub fn table(results: &[Measured]) -> String {
    let find = |s: Setup, mix: &str| {
        results
            .iter()
            .find(|m| m.setup == s && m.mix == mix)
            .map(|m| m.rps)
    };
    let ratio =
        |base: Option<f64>, v: f64| base.map_or("-".to_owned(), |b| format!("{:.3}", v / b));
    let mut out = String::from("| setup |");
    for mix in MIXES {
        let _ = write!(
            out,
            " {mix} req/s | p50 (µs) | p99 (µs) | vs plain | vs empty filter |"
        );
    }
    out.push_str("\n|---|");
    for _ in MIXES {
        out.push_str("---:|---:|---:|---:|---:|");
    }
    out.push('\n');
    let mut seen: Vec<Setup> = Vec::new();
    for m in results {
        if seen.contains(&m.setup) {
            continue;
        }
        seen.push(m.setup);
        let _ = write!(out, "| {} |", m.setup.label());
        for mix in MIXES {
            match results.iter().find(|r| r.setup == m.setup && r.mix == mix) {
                Some(r) => {
                    let _ = write!(
                        out,
                        " {:.0} | {:.0} | {:.0} | {} | {} |",
                        r.rps,
                        r.p50_us,
                        r.p99_us,
                        ratio(find(r.setup.like_plain(), mix), r.rps),
                        ratio(find(r.setup.like_empty(), mix), r.rps)
                    );
                }
                None => out.push_str(" - | - | - | - | - |"),
            }
        }
        out.push('\n');
    }
    out.push_str(
        "\nRatios are to plain Envoy and to the empty filter with the same bootstrap: \
         a `+ inline` setup against `plain Envoy + inline` and `empty filter + inline`.\n",
    );
    out
}

/// The results as JSON, for CI.
pub fn to_json(results: &[Measured], load: &Load) -> serde_json::Value {
    json!({
        "load": {"seconds": load.seconds, "warmup": load.warmup, "connections": load.connections, "threads": 1, "envoy_concurrency": 1, "pinned": load.pin, "rounds": load.rounds},
        "mixes": mixes_json(),
        "results": results.iter().map(|m| json!({
            "setup": m.setup.label(),
            "mix": m.mix,
            "rps": m.rps,
            "p50_us": m.p50_us,
            "p99_us": m.p99_us,
            "requests": m.requests,
            "rounds_rps": m.rounds,
        })).collect::<Vec<_>>(),
    })
}

/// Both mixes as JSON: each request's kind and whether it has
/// `traceparent`, in order.
pub fn mixes_json() -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for name in MIXES {
        let requests: Vec<_> = mix(name)
            .iter()
            .map(|r| {
                if r.kind == UNTAGGED && !r.headers.is_empty() {
                    "untagged, traceparent"
                } else {
                    r.kind
                }
            })
            .collect();
        out.insert(name.to_owned(), json!(requests));
    }
    serde_json::Value::Object(out)
}

#[cfg(test)]
mod tests;
