//! `bench-envoy`: the in-Envoy harness (see `laneway_benches::envoy_load`).
//!
//! Two modes. By default, wrk times every setup with both mixes (the
//! secondary, interleaved check): prints the table and writes
//! `results.md`, `results.json` and `throughput.svg` to `--out`. With
//! `--instructions`, callgrind counts instructions per request of every
//! request kind and both mixes (the primary measurement): prints the
//! report with the issue-12 target lines and writes `instructions.md`,
//! `instructions.json` and `instructions.svg`. Exits 1 only when the
//! harness breaks (Envoy will not start, a setup routes a request wrongly,
//! wrk reports errors), never because of a number: a MISS line is a
//! finding, not a failure.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use laneway_benches::envoy_load::{self, BENCH_MIX, Load, SHAPES, Setup, Wrapper, instructions};
use laneway_benches::plot::{self, Level, Series};

/// In-Envoy cost: no filter, empty wasm filter, Laneway in each deployment
/// shape, regex routes.
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
    /// Seconds of measured load per setup and mix.
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// Seconds of unmeasured warm-up load per setup and mix.
    #[arg(long, default_value_t = 2)]
    warmup: u32,
    /// wrk connections (one wrk thread).
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Rounds: every setup runs once per round; the table shows medians.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Do not check that each setup routes the requests the same way (for
    /// experiments with modules that do not route; wrk mode only).
    #[arg(long)]
    skip_routing_check: bool,
    /// Do not pin Envoy and wrk to separate CPUs.
    #[arg(long)]
    no_pin: bool,
    /// Only plain Envoy, the empty filter, and Laneway plain and
    /// composite + inline at 1,000 forks.
    #[arg(long)]
    floor_only: bool,
    /// Only the setups whose label contains this text (e.g. `composite`,
    /// `1,000 forks`, `empty`); repeatable, any match keeps a setup.
    #[arg(long)]
    only: Vec<String>,
    /// Count instructions per request kind and mix under valgrind's
    /// callgrind instead of timing with wrk (deterministic). Writes
    /// instructions.md, instructions.json and instructions.svg.
    #[arg(long)]
    instructions: bool,
    /// Requests per count when counting instructions (rounded up to whole
    /// mix cycles; a tenth for 10,000 regex sandboxes).
    #[arg(long, default_value_t = 500)]
    per_kind: usize,
    /// Count the first selected setup twice, in two Envoys, and print the
    /// largest difference (callgrind's run-to-run noise), then exit.
    #[arg(long, requires = "instructions")]
    noise: bool,
    /// Where to write the results.
    #[arg(long, default_value = "target/bench-envoy")]
    out: PathBuf,
}

/// wrk's setups: the references, every shape at 1,000 forks, the plain
/// shape at 10 and 10,000, the regex routes up to 1,000 (10,000 regex
/// sandboxes take seconds per request).
fn wrk_setups(floor_only: bool) -> Vec<Setup> {
    if floor_only {
        return instructions::setups(true);
    }
    let mut out = vec![
        Setup::Plain { inline: false },
        Setup::Plain { inline: true },
        Setup::Empty { inline: false },
        Setup::Empty { inline: true },
        Setup::laneway(10, SHAPES[0]),
    ];
    out.extend(SHAPES.iter().map(|&s| Setup::laneway(1000, s)));
    out.push(Setup::laneway(10_000, SHAPES[0]));
    out.extend([10, 100, 1000].map(Setup::Regex));
    out
}

fn write(args: &Args, name: &str, text: &str) -> bool {
    match std::fs::write(args.out.join(name), text) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("bench-envoy: writing {}/{name}: {e}", args.out.display());
            false
        }
    }
}

fn count_instructions(args: &Args, setups: &[Setup]) -> ExitCode {
    let started = Instant::now();
    eprintln!(
        "bench-envoy: instructions per request, Envoy --concurrency 1 under callgrind, {} requests per count",
        args.per_kind
    );
    let progress = |l: &str| eprintln!("  {l}");
    if args.noise {
        let Some(setup) = setups.first() else {
            eprintln!("bench-envoy: no setup selected");
            return ExitCode::from(2);
        };
        return match instructions::noise(
            setup,
            &args.laneway,
            &args.empty,
            args.per_kind,
            &args.out,
            progress,
        ) {
            Ok((d, what)) => {
                println!(
                    "{}: two identical runs differ by at most {:.3}% ({what})",
                    setup.label(),
                    d * 100.0
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bench-envoy: the harness broke: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    let counted = match envoy_load::instructions(
        setups,
        &args.laneway,
        &args.empty,
        args.per_kind,
        &args.out,
        progress,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bench-envoy: the harness broke: {e:#}");
            return ExitCode::from(1);
        }
    };
    let report = instructions::report(&counted);
    println!("{report}");
    let json = instructions::to_json(&counted, args.per_kind);
    let ok = write(args, "instructions.md", &report)
        && write(
            args,
            "instructions.json",
            &serde_json::to_string_pretty(&json).unwrap_or_default(),
        )
        && write(args, "instructions.svg", &instructions::svg(&counted));
    if !ok {
        return ExitCode::from(1);
    }
    eprintln!(
        "bench-envoy: wrote {}/instructions.md, instructions.json, instructions.svg in {:.0} s",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args = Args::parse();
    for m in [&args.laneway, &args.empty] {
        if !m.is_file() {
            eprintln!(
                "bench-envoy: {}: no such module (run `make wasm`)",
                m.display()
            );
            return ExitCode::from(2);
        }
    }
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("bench-envoy: {}: {e}", args.out.display());
        return ExitCode::from(1);
    }
    let all = if args.instructions {
        instructions::setups(args.floor_only)
    } else {
        wrk_setups(args.floor_only)
    };
    let setups: Vec<Setup> = all
        .into_iter()
        .filter(|s| {
            args.only.is_empty() || args.only.iter().any(|o| s.label().contains(o.as_str()))
        })
        .collect();
    if args.instructions {
        return count_instructions(&args, &setups);
    }
    let load = Load {
        seconds: args.seconds,
        warmup: args.warmup,
        connections: args.connections,
        pin: !args.no_pin,
        rounds: args.rounds,
        skip_routing_check: args.skip_routing_check,
    };
    eprintln!(
        "bench-envoy: Envoy --concurrency 1, wrk -t1 -c{} -d{}s (+{}s warm-up) per mix, {} rounds, direct_response, loopback{}",
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
    let bench = |m: &&envoy_load::Measured| m.mix == BENCH_MIX;
    let points = |f: &dyn Fn(&Setup) -> Option<usize>| -> Vec<(f64, f64)> {
        results
            .iter()
            .filter(bench)
            .filter_map(|m| f(&m.setup).map(|n| (n as f64, m.rps)))
            .collect()
    };
    let level = |s: Setup| {
        results
            .iter()
            .filter(bench)
            .find(|m| m.setup == s)
            .map(|m| m.rps)
    };
    let mut levels = Vec::new();
    if let Some(v) = level(Setup::Plain { inline: false }) {
        levels.push(Level {
            name: "plain Envoy",
            color: "#555",
            value: v,
        });
    }
    if let Some(v) = level(Setup::Empty { inline: false }) {
        levels.push(Level {
            name: "empty proxy-wasm filter",
            color: "#999",
            value: v,
        });
    }
    let laneway = |want: (Wrapper, bool)| {
        move |s: &Setup| match *s {
            Setup::Laneway {
                forks,
                wrapper,
                inline,
            } if (wrapper, inline) == want => Some(forks),
            _ => None,
        }
    };
    let svg = plot::svg(
        "Envoy 1.40, one worker, bench mix: throughput against sandboxes",
        &[
            Series {
                name: "Laneway plain (WasmPlugin)",
                color: "#1f77b4",
                points: points(&laneway(SHAPES[0])),
            },
            Series {
                name: "Laneway composite + inline",
                color: "#ff7f0e",
                points: points(&laneway(SHAPES[3])),
            },
            Series {
                name: "Istio-style regex routes",
                color: "#d62728",
                points: points(&|s| match *s {
                    Setup::Regex(n) => Some(n),
                    _ => None,
                }),
            },
        ],
        &levels,
    );
    let json = envoy_load::to_json(&results, &load);
    let ok = write(&args, "results.md", &table)
        && write(
            &args,
            "results.json",
            &serde_json::to_string_pretty(&json).unwrap_or_default(),
        )
        && write(&args, "throughput.svg", &svg);
    if !ok {
        return ExitCode::from(1);
    }
    eprintln!(
        "bench-envoy: wrote {}/results.md, results.json, throughput.svg",
        args.out.display()
    );
    ExitCode::SUCCESS
}
