//! `bench-envoy`: the in-Envoy load harness (see `laneway_benches::envoy_load`).
//!
//! Prints the table, and writes `results.md`, `results.json` and
//! `throughput.svg` to `--out`. Exits 1 only when the harness breaks (Envoy
//! will not start, a setup routes the mix wrongly, wrk reports errors),
//! never because of a number.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use laneway_benches::envoy_load::{self, Load, Setup};
use laneway_benches::plot::{self, Level, Series};

/// In-Envoy throughput: no filter, empty wasm filter, Laneway, regex routes.
#[derive(Parser)]
#[command(name = "bench-envoy", about)]
struct Args {
    /// The Laneway filter module.
    #[arg(
        long,
        default_value = "target/wasm32-wasip1/release/laneway_filter.wasm"
    )]
    laneway: PathBuf,
    /// The empty proxy-wasm filter module (the floor).
    #[arg(
        long,
        default_value = "target/wasm32-wasip1/release/laneway_empty_filter.wasm"
    )]
    empty: PathBuf,
    /// Seconds of measured load per setup.
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// Seconds of unmeasured warm-up load per setup.
    #[arg(long, default_value_t = 2)]
    warmup: u32,
    /// wrk connections (one wrk thread).
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Rounds: every setup runs once per round; the table shows medians.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Do not check that each setup routes the mix the same way (for
    /// experiments with modules that do not route).
    #[arg(long)]
    skip_routing_check: bool,
    /// Do not pin Envoy and wrk to separate CPUs.
    #[arg(long)]
    no_pin: bool,
    /// Only plain Envoy, the empty filter and Laneway with 1,000 forks.
    #[arg(long)]
    floor_only: bool,
    /// Count instructions per request kind under valgrind's callgrind
    /// instead of timing with wrk (deterministic; slow: about a minute per
    /// setup). Writes instructions.md.
    #[arg(long)]
    instructions: bool,
    /// Requests per kind when counting instructions.
    #[arg(long, default_value_t = 500)]
    per_kind: usize,
    /// Where to write results.md, results.json and throughput.svg.
    #[arg(long, default_value = "target/bench-envoy")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let setups: Vec<Setup> = if args.floor_only {
        vec![Setup::Plain, Setup::Empty, Setup::Laneway(1000)]
    } else {
        vec![
            Setup::Plain,
            Setup::Empty,
            Setup::Laneway(10),
            Setup::Laneway(1000),
            Setup::Laneway(10_000),
            Setup::Regex(10),
            Setup::Regex(100),
            Setup::Regex(1000),
        ]
    };
    let load = Load {
        seconds: args.seconds,
        warmup: args.warmup,
        connections: args.connections,
        pin: !args.no_pin,
        rounds: args.rounds,
        skip_routing_check: args.skip_routing_check,
    };
    for m in [&args.laneway, &args.empty] {
        if !m.is_file() {
            eprintln!(
                "bench-envoy: {}: no such module (run `make wasm`)",
                m.display()
            );
            return ExitCode::from(2);
        }
    }
    if args.instructions {
        if let Err(e) = std::fs::create_dir_all(&args.out) {
            eprintln!("bench-envoy: {}: {e}", args.out.display());
            return ExitCode::from(1);
        }
        eprintln!(
            "bench-envoy: instructions per request, Envoy --concurrency 1 under callgrind, {} requests per kind",
            args.per_kind
        );
        let counted = match envoy_load::instructions(
            &setups,
            &args.laneway,
            &args.empty,
            args.per_kind,
            &args.out,
            |l| eprintln!("  {l}"),
        ) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("bench-envoy: the harness broke: {e:#}");
                return ExitCode::from(1);
            }
        };
        let table = envoy_load::instructions_table(&counted);
        println!("{table}");
        if let Err(e) = std::fs::write(args.out.join("instructions.md"), &table) {
            eprintln!("bench-envoy: {e}");
            return ExitCode::from(1);
        }
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "bench-envoy: Envoy --concurrency 1, wrk -t1 -c{} -d{}s (+{}s warm-up), {} rounds, direct_response, loopback{}",
        load.connections,
        load.seconds,
        load.warmup,
        load.rounds,
        if load.pin {
            ", Envoy on CPU 1, wrk on CPU 0"
        } else {
            ""
        }
    );
    let results = match envoy_load::run(
        &setups,
        &args.laneway,
        &args.empty,
        &load,
        &args.out,
        |line| eprintln!("  {line}"),
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench-envoy: the harness broke: {e:#}");
            return ExitCode::from(1);
        }
    };
    let table = envoy_load::table(&results);
    println!("{table}");
    let points = |f: fn(&Setup) -> Option<usize>| -> Vec<(f64, f64)> {
        results
            .iter()
            .filter_map(|m| f(&m.setup).map(|n| (n as f64, m.rps)))
            .collect()
    };
    let level = |s: Setup| results.iter().find(|m| m.setup == s).map(|m| m.rps);
    let mut levels = Vec::new();
    if let Some(v) = level(Setup::Plain) {
        levels.push(Level {
            name: "plain Envoy",
            color: "#555",
            value: v,
        });
    }
    if let Some(v) = level(Setup::Empty) {
        levels.push(Level {
            name: "empty proxy-wasm filter",
            color: "#999",
            value: v,
        });
    }
    let svg = plot::svg(
        "Envoy 1.40, one worker: throughput against sandboxes",
        &[
            Series {
                name: "Laneway (exact, hashed)",
                color: "#1f77b4",
                points: points(|s| {
                    if let Setup::Laneway(n) = s {
                        Some(*n)
                    } else {
                        None
                    }
                }),
            },
            Series {
                name: "Istio-style regex routes",
                color: "#d62728",
                points: points(|s| {
                    if let Setup::Regex(n) = s {
                        Some(*n)
                    } else {
                        None
                    }
                }),
            },
        ],
        &levels,
    );
    let json = envoy_load::to_json(&results, &load);
    let write = |name: &str, text: &str| std::fs::write(args.out.join(name), text);
    if let Err(e) = write("results.md", &table)
        .and_then(|_| {
            write(
                "results.json",
                &serde_json::to_string_pretty(&json).unwrap_or_default(),
            )
        })
        .and_then(|_| write("throughput.svg", &svg))
    {
        eprintln!("bench-envoy: writing {}: {e}", args.out.display());
        return ExitCode::from(1);
    }
    eprintln!(
        "bench-envoy: wrote {}/results.md, results.json, throughput.svg",
        args.out.display()
    );
    ExitCode::SUCCESS
}
