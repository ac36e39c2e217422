//! `bench-config`: what a plugin configuration of N sandboxes costs, at
//! every place it is loaded. For each N (one fork each, the shape of
//! `laneway_testdata::hostile::config`):
//!
//! - native: `Config::from_json` and `Router::new`, as `laneway validate`
//!   and the replay's reference run them: wall time, and the heap's peak
//!   and what stays (a counting allocator, so exact);
//! - wasm: a fresh VM of the filter configured with it in wasmtime
//!   (`proxy_on_vm_start` and `proxy_on_configure`): wall time, and the
//!   VM's linear memory afterwards, against Envoy's 1 GiB limit;
//! - Envoy (for the sizes given with `--envoy`): from start to ready with
//!   the configuration in a sidecar bootstrap, against an empty one.
//!
//! One run prints the whole table; nothing is asserted. Exit 1 only when
//! the harness breaks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use laneway_core::{Config, Router};
use laneway_envoy::bootstrap::{self, Filter, Sidecar, Target, VirtualHost};
use laneway_envoy::{Envoy, Options};
use proxy_wasm_host::{HostOptions, Plugin};

/// The heap, counted: current and peak bytes.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call forwards to `System` unchanged; the counters are
// bookkeeping only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let grown = new_size - layout.size();
                let now = CURRENT.fetch_add(grown, Ordering::Relaxed) + grown;
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static HEAP: Counting = Counting;

/// Plugin configuration cost: native parse and index, wasm on_configure,
/// Envoy start-up.
#[derive(Parser)]
#[command(name = "bench-config", about)]
struct Args {
    /// The Laneway filter module.
    #[arg(
        long,
        default_value = "target/wasm32-wasip1/release/laneway_filter.wasm"
    )]
    laneway: PathBuf,
    /// Sandbox counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    sizes: Vec<usize>,
    /// Also measure a configuration at all three limits at once
    /// (`hostile::config_at_limits`).
    #[arg(long)]
    at_limits: bool,
    /// Sandbox counts to start Envoy with (0 always runs, as the floor).
    #[arg(long, value_delimiter = ',', default_value = "100000")]
    envoy: Vec<usize>,
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn envoy_ready(module: &std::path::Path, config: &str) -> anyhow::Result<Duration> {
    let bootstrap = bootstrap::sidecar(&Sidecar::new(
        Filter::Wasm {
            module,
            configuration: config,
        },
        vec![VirtualHost::to(
            "location",
            Target::Direct("location@baseline".into()),
        )],
    ));
    let started = Instant::now();
    let envoy = Envoy::start_with(
        &bootstrap,
        &Options {
            ready_timeout: Duration::from_secs(600),
            ..Options::default()
        },
    )?;
    let ready = started.elapsed();
    drop(envoy);
    Ok(ready)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-config: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let plugin = Plugin::load(&args.laneway)?;
    println!(
        "| sandboxes | config | native parse + index | native peak heap | router heap | wasm on_configure | wasm memory |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    type Make = Box<dyn Fn() -> String>;
    let mut rows: Vec<(String, Make)> = args
        .sizes
        .iter()
        .map(|&n| {
            let make: Make = Box::new(move || laneway_testdata::hostile::config(n));
            (n.to_string(), make)
        })
        .collect();
    if args.at_limits {
        rows.push((
            "1000000, at every limit".into(),
            Box::new(laneway_testdata::hostile::config_at_limits),
        ));
    }
    for (n, make) in rows {
        let text = make();
        let base = CURRENT.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let started = Instant::now();
        let router = Config::from_json(&text)
            .and_then(|c| Router::new(&c))
            .map_err(|e| anyhow::anyhow!("{n} sandboxes: {e}"))?;
        let native = started.elapsed();
        let peak = PEAK.load(Ordering::Relaxed) - base;
        let kept = CURRENT.load(Ordering::Relaxed) - base;
        drop(router);

        let options = HostOptions {
            plugin_name: "laneway".into(),
            plugin_config: text.as_bytes().to_vec(),
            ..HostOptions::default()
        };
        let started = Instant::now();
        let (wasm, memory) = match plugin.vm(&options) {
            Ok(mut vm) => (secs(started.elapsed()), mib(vm.memory_bytes())),
            Err(e) => (
                format!("failed after {}", secs(started.elapsed())),
                format!("{e}").chars().take(60).collect(),
            ),
        };
        println!(
            "| {n} | {} | {} | {} | {} | {wasm} | {memory} |",
            mib(text.len()),
            secs(native),
            mib(peak),
            mib(kept),
        );
    }
    if !args.envoy.is_empty() {
        println!();
        println!("| sandboxes | Envoy start to ready | over an empty configuration |");
        println!("|---:|---:|---:|");
        let floor = envoy_ready(&args.laneway, r#"{"version": 1, "sandboxes": []}"#)?;
        println!("| 0 | {} | - |", secs(floor));
        for &n in args.envoy.iter().filter(|n| **n > 0) {
            let ready = envoy_ready(&args.laneway, &laneway_testdata::hostile::config(n))?;
            println!(
                "| {n} | {} | +{} |",
                secs(ready),
                secs(ready.saturating_sub(floor))
            );
        }
    }
    Ok(())
}
