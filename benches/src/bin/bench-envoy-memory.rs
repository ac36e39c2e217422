//! `bench-envoy-memory`: whether Envoy's memory stays flat across
//! 1,000,000 requests through Laneway.
//!
//! One Envoy 1.40 (one worker) runs Laneway with `--sandboxes` forks of
//! `location` (the in-Envoy load harness's configuration, the tagged
//! sandbox in the middle of the list); every route answers with
//! `direct_response`, so only the proxy holds memory. wrk drives a
//! rotating mix of request kinds (untagged, tagged with a fork in baggage
//! and in tracestate, tagged with no fork for the service, an unknown key,
//! malformed baggage, oversized baggage) in stages, stopping each stage
//! after its count of responses; between stages the harness reads Envoy's
//! `/proc/PID/status` (VmRSS, VmHWM) and `/stats` (tcmalloc's
//! `server.memory_allocated` and `server.memory_heap_size`, the wasm VM
//! counts, and any wasm memory gauge Envoy exposes: 1.40 exposes none).
//! The request counts are Envoy's own (`http.outbound.downstream_rq_total`).
//!
//! Before loading, each kind is sent once and its route checked. Prints a
//! Markdown table and writes it, with JSON, to `--out`. Exits 1 only when
//! the harness breaks (Envoy will not start, a kind routes wrongly, wrk
//! sees errors), never because of a number.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use laneway_benches::envoy_load::{HIT_KEY, laneway_config, sandbox_key};
use laneway_envoy::bootstrap::{self, Filter, Sidecar, Target, VirtualHost};
use laneway_envoy::{Envoy, Options, client};
use laneway_scenario::WorkloadName;
use serde_json::json;

/// Envoy memory across many requests through Laneway.
#[derive(Parser)]
#[command(name = "bench-envoy-memory", about)]
struct Args {
    /// The Laneway filter module.
    #[arg(
        long,
        default_value = "target/wasm32-wasip1/release/laneway_filter.wasm"
    )]
    wasm: PathBuf,
    /// Cumulative request counts at which memory is read.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10000,100000,500000,1000000"
    )]
    at: Vec<u64>,
    /// Sandboxes in the configuration, each forking `location`.
    #[arg(long, default_value_t = 1000)]
    sandboxes: usize,
    /// wrk connections (one wrk thread).
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Do not pin Envoy and wrk to separate CPUs.
    #[arg(long)]
    no_pin: bool,
    /// Where to write results.md and results.json.
    #[arg(long, default_value = "target/bench-envoy-memory")]
    out: PathBuf,
}

/// One kind of request of the mix.
struct Kind {
    name: &'static str,
    authority: &'static str,
    headers: Vec<(&'static str, String)>,
    /// Whether it reaches the fork of [`HIT_KEY`].
    fork: bool,
}

fn kinds() -> Vec<Kind> {
    let tagged = format!("sd-routing-key={HIT_KEY}");
    let tp = (
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
    );
    // About 10 KB of members before the key: past the 8192-byte limit.
    let padding: String = (0..200)
        .map(|i| format!("m{i:03}=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,"))
        .collect();
    let kind = |name, authority, headers: Vec<(&'static str, String)>, fork| Kind {
        name,
        authority,
        headers,
        fork,
    };
    vec![
        kind("untagged", "location:8083", vec![], false),
        kind(
            "untagged, traceparent",
            "location:8083",
            vec![tp.clone()],
            false,
        ),
        kind(
            "baggage key, fork",
            "location:8083",
            vec![tp.clone(), ("baggage", format!("user=alice,{tagged}"))],
            true,
        ),
        kind(
            "tracestate key, fork",
            "location:8083",
            vec![
                tp.clone(),
                ("tracestate", format!("rojo=00f067aa0ba902b7,{tagged}")),
            ],
            true,
        ),
        kind(
            "baggage key, no fork",
            "frontend:8080",
            vec![tp.clone(), ("baggage", tagged.clone())],
            false,
        ),
        kind(
            "unknown key",
            "location:8083",
            vec![tp.clone(), ("baggage", "sd-routing-key=sbx-gone".into())],
            false,
        ),
        kind(
            "malformed baggage",
            "location:8083",
            vec![tp.clone(), ("baggage", "sd-routing-key=%zz;p,=v".into())],
            false,
        ),
        kind(
            "oversized baggage",
            "location:8083",
            vec![tp, ("baggage", format!("{padding}{tagged}"))],
            false,
        ),
    ]
}

fn body(service: &str, key: Option<&str>) -> String {
    match key {
        Some(k) => format!("{}\n", WorkloadName::fork(service, k)),
        None => format!("{}\n", WorkloadName::baseline(service)),
    }
}

fn service_of(authority: &str) -> &str {
    authority.split(':').next().unwrap_or(authority)
}

fn bootstrap_for(module: &Path, config: &str, sandboxes: usize) -> serde_json::Value {
    let direct = |host: &str, text: String| VirtualHost::to(host, Target::Direct(text));
    let mut hosts = vec![
        direct("location", body("location", None)),
        direct("frontend", body("frontend", None)),
    ];
    hosts.extend((0..sandboxes).map(|i| {
        let k = sandbox_key(sandboxes, i);
        direct(&format!("location-{k}"), body("location", Some(&k)))
    }));
    bootstrap::sidecar(&Sidecar::new(
        Filter::Wasm {
            module,
            configuration: config,
        },
        hosts,
    ))
}

/// Sends each kind once and checks where it went.
fn check_routing(listener: SocketAddr, kinds: &[Kind]) -> Result<()> {
    for k in kinds {
        let mut lines: Vec<(&str, &[u8])> = vec![("host", k.authority.as_bytes())];
        lines.extend(k.headers.iter().map(|(n, v)| (*n, v.as_bytes())));
        let r = client::get(listener, "/", &lines).with_context(|| k.name)?;
        let want = body(service_of(k.authority), k.fork.then_some(HIT_KEY));
        if r.status != 200 || r.text() != want {
            bail!("{}: got {} {:?}, want {want:?}", k.name, r.status, r.text());
        }
    }
    Ok(())
}

/// The wrk script: the kinds in rotation; the thread stops after `limit`
/// responses and counts any that is not a 200.
fn wrk_script(kinds: &[Kind], limit: u64) -> String {
    let mut lua =
        String::from("local reqs = {}\nlocal n = 0\nlocal done = 0\ninit = function(args)\n");
    for (i, k) in kinds.iter().enumerate() {
        let mut h = format!("[\"Host\"]=\"{}\"", k.authority);
        for (name, value) in &k.headers {
            let _ = write!(h, ", [\"{name}\"]=\"{value}\"");
        }
        let _ = writeln!(
            lua,
            "  reqs[{}] = wrk.format(\"GET\", \"/\", {{{h}}})",
            i + 1
        );
    }
    let _ = write!(
        lua,
        "end\nrequest = function()\n  n = n % #reqs + 1\n  return reqs[n]\nend\n\
         response = function(status, headers, body)\n  done = done + 1\n  \
         if done >= {limit} then wrk.thread:stop() end\nend\n"
    );
    lua
}

/// Runs wrk until Envoy has counted `until` requests on the listener. The
/// script's thread stops at its limit, but wrk itself waits out `-d`, so
/// the harness ends it with SIGINT, on which wrk prints its report.
fn wrk(
    envoy: &Envoy,
    listener: SocketAddr,
    script: &Path,
    until: u64,
    connections: u32,
    pin: bool,
) -> Result<String> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t1",
        &format!("-c{connections}"),
        "-d3600s",
        "--timeout",
        "5s",
    ])
    .arg("-s")
    .arg(script)
    .arg(format!("http://{listener}/"))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if pin {
        // SAFETY: only sched_setaffinity runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| laneway_envoy::pin_to_cpu(0));
        }
    }
    let child = cmd
        .spawn()
        .context("cannot run wrk (apt-get install wrk, or make setup)")?;
    let pid = child.id() as libc::pid_t;
    let mut child = Some(child);
    let started = Instant::now();
    loop {
        if let Some(status) = child.as_mut().and_then(|c| c.try_wait().transpose()) {
            bail!("wrk ended early ({})", status?);
        }
        if requests(envoy)? >= until {
            break;
        }
        if started.elapsed() > Duration::from_secs(3000) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: `pid` is our child, not yet waited for.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let out = child.take().context("wrk")?.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    for bad in ["Non-2xx or 3xx responses:", "Socket errors:"] {
        if text.contains(bad) {
            bail!("wrk saw errors:\n{text}");
        }
    }
    Ok(text)
}

/// Requests Envoy has counted on the outbound listener.
fn requests(envoy: &Envoy) -> Result<u64> {
    envoy
        .stats()?
        .get("http.outbound.downstream_rq_total")
        .copied()
        .context("no http.outbound.downstream_rq_total in /stats")
}

/// `/proc/PID/status` fields in kB.
fn proc_status(pid: u32, fields: &[&str]) -> Result<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("/proc/{pid}/status"))?;
    fields
        .iter()
        .map(|f| {
            text.lines()
                .find_map(|l| l.strip_prefix(f)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
                .with_context(|| format!("no {f} in /proc/{pid}/status"))
        })
        .collect()
}

/// One reading.
struct Sample {
    requests: u64,
    seconds: f64,
    rss_kib: u64,
    hwm_kib: u64,
    allocated: u64,
    heap: u64,
    vms: u64,
    wasm_memory: BTreeMap<String, u64>,
}

fn sample(envoy: &Envoy, pid: u32, started: Instant, checks: u64) -> Result<Sample> {
    let stats = envoy.stats()?;
    let get = |n: &str| {
        stats
            .get(n)
            .copied()
            .with_context(|| format!("no {n} in /stats"))
    };
    let [rss, hwm] = proc_status(pid, &["VmRSS", "VmHWM"])?[..] else {
        bail!("/proc status");
    };
    Ok(Sample {
        requests: requests(envoy)?.saturating_sub(checks),
        seconds: started.elapsed().as_secs_f64(),
        rss_kib: rss,
        hwm_kib: hwm,
        allocated: get("server.memory_allocated")?,
        heap: get("server.memory_heap_size")?,
        vms: get("wasm.envoy.wasm.runtime.v8.active")?,
        wasm_memory: stats
            .iter()
            .filter(|(k, _)| k.starts_with("wasm") && k.contains("memory"))
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn table(samples: &[Sample]) -> String {
    let mut out = String::from(
        "| requests | VmRSS (MiB) | VmHWM (MiB) | tcmalloc allocated (MiB) | tcmalloc heap (MiB) | wasm VMs | elapsed (s) |\n|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for s in samples {
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.0} |",
            s.requests,
            s.rss_kib as f64 / 1024.0,
            s.hwm_kib as f64 / 1024.0,
            mib(s.allocated),
            mib(s.heap),
            s.vms,
            s.seconds
        );
    }
    out
}

fn run(args: &Args) -> Result<()> {
    if !args.wasm.is_file() {
        bail!("{}: no such module (run `make wasm`)", args.wasm.display());
    }
    std::fs::create_dir_all(&args.out)?;
    let kinds = kinds();
    let config = laneway_config(args.sandboxes);
    let envoy = Envoy::start_with(
        &bootstrap_for(&args.wasm, &config, args.sandboxes),
        &Options {
            cpu: (!args.no_pin).then_some(1),
            ..Options::default()
        },
    )?;
    let listener = envoy
        .listener(bootstrap::LISTENER)
        .context("no outbound listener")?;
    let pid = envoy.pid();
    check_routing(listener, &kinds)?;
    let checks = kinds.len() as u64;
    let started = Instant::now();
    let mut samples = vec![sample(&envoy, pid, started, checks)?];
    let mut sent = 0;
    for &at in &args.at {
        let stage = at.saturating_sub(sent);
        if stage == 0 {
            continue;
        }
        let script = args.out.join(format!("stage-{at}.lua"));
        std::fs::write(&script, wrk_script(&kinds, stage))?;
        wrk(
            &envoy,
            listener,
            &script,
            at + checks,
            args.connections,
            !args.no_pin,
        )?;
        // Let requests still in flight when wrk stopped finish.
        std::thread::sleep(Duration::from_millis(500));
        let s = sample(&envoy, pid, started, checks)?;
        eprintln!(
            "  {:>9} requests: VmRSS {:.1} MiB, tcmalloc allocated {:.1} MiB",
            s.requests,
            s.rss_kib as f64 / 1024.0,
            mib(s.allocated)
        );
        sent = s.requests;
        samples.push(s);
    }
    let stats = envoy.stats()?;
    let decisions: BTreeMap<&str, u64> = stats
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("wasmcustom.laneway.decision.")?, *v)))
        .collect();
    let table = table(&samples);
    println!("{table}");
    println!("decisions: {decisions:?}");
    let wasm_memory = &samples
        .last()
        .map(|s| s.wasm_memory.clone())
        .unwrap_or_default();
    if wasm_memory.is_empty() {
        println!("wasm memory: Envoy exposes no wasm memory stat in /stats");
    } else {
        println!("wasm memory stats: {wasm_memory:?}");
    }
    let json = json!({
        "sandboxes": args.sandboxes,
        "connections": args.connections,
        "mix": kinds.iter().map(|k| k.name).collect::<Vec<_>>(),
        "decisions": decisions,
        "samples": samples.iter().map(|s| json!({
            "requests": s.requests,
            "seconds": s.seconds,
            "vm_rss_kib": s.rss_kib,
            "vm_hwm_kib": s.hwm_kib,
            "memory_allocated": s.allocated,
            "memory_heap_size": s.heap,
            "wasm_vms": s.vms,
            "wasm_memory": s.wasm_memory,
        })).collect::<Vec<_>>(),
    });
    std::fs::write(args.out.join("results.md"), &table)?;
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    eprintln!(
        "bench-envoy-memory: wrote {}/results.md, results.json",
        args.out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    eprintln!(
        "bench-envoy-memory: Envoy --concurrency 1, Laneway with {} forks, wrk -t1 -c{}, direct_response, loopback{}",
        args.sandboxes,
        args.connections,
        if args.no_pin {
            ""
        } else {
            ", Envoy on CPU 1, wrk on CPU 0"
        }
    );
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-envoy-memory: the harness broke: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_rotates_every_kind_and_stops_at_its_limit() {
        let kinds = kinds();
        let lua = wrk_script(&kinds, 1234);
        assert_eq!(lua.matches("wrk.format(").count(), kinds.len());
        assert!(lua.contains("if done >= 1234 then wrk.thread:stop() end"));
        assert!(lua.contains("[\"Host\"]=\"frontend:8080\""));
    }

    #[test]
    fn the_configuration_forks_the_tagged_key() {
        let router = laneway_core::Router::from_json(&laneway_config(100)).unwrap();
        assert_eq!(router.forks(), 100);
    }
}
