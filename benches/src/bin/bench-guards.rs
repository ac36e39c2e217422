//! `bench-guards`: what each guard costs in Envoy, in instructions per
//! request (see `laneway_benches::guards`).
//!
//! Prints the table and writes it to `--out`/guards.md. Exits 1 only when
//! the harness breaks (Envoy will not start under valgrind, a guard does
//! not decide its requests as expected), never because of a number; 2 on
//! bad usage (no module).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use laneway_benches::guards::{self, Guard};

/// Instructions per request for Laneway with each guard alone, against
/// Laneway with none, under callgrind.
#[derive(Parser)]
#[command(name = "bench-guards", about)]
struct Args {
    /// The Laneway filter module.
    #[arg(
        long,
        default_value = "target/wasm32-wasip1/release/laneway_filter.wasm"
    )]
    laneway: PathBuf,
    /// Requests per kind counted in each setup.
    #[arg(long, default_value_t = 300)]
    per_kind: usize,
    /// Where to write guards.md (and, while running, callgrind's dumps).
    #[arg(long, default_value = "target/bench-guards")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.laneway.is_file() {
        eprintln!(
            "bench-guards: {}: no such module (run `make wasm`)",
            args.laneway.display()
        );
        return ExitCode::from(2);
    }
    if args.per_kind == 0 {
        eprintln!("bench-guards: --per-kind must be at least 1");
        return ExitCode::from(2);
    }
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("bench-guards: {}: {e}", args.out.display());
        return ExitCode::from(1);
    }
    // The real clock: Envoy's is what the expiry guard and the signature
    // check compare with.
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    eprintln!(
        "bench-guards: instructions per request, Envoy --concurrency 1 under callgrind, {} setups one after another, {} requests per kind after {} of warm-up",
        Guard::RUN.len(),
        args.per_kind,
        guards::WARMUP
    );
    let counted = match guards::run(
        &Guard::RUN,
        &args.laneway,
        args.per_kind,
        &args.out,
        now_s,
        |l| eprintln!("  {l}"),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bench-guards: the harness broke: {e:#}");
            return ExitCode::from(1);
        }
    };
    let table = guards::table(&counted);
    println!("{table}");
    if let Err(e) = std::fs::write(args.out.join("guards.md"), &table) {
        eprintln!("bench-guards: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
