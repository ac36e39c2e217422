//! Writes one generated trace file (`laneway_testdata::traces`), for
//! measuring an importer by hand or from a bench:
//!
//! ```text
//! traces FORMAT BYTES FILE [SEED]
//!   FORMAT  otlp | otlp-jsonl | jaeger | zipkin
//!   BYTES   the size to reach: 500000, 300K, 100M, 1G (K, M, G: 1024-based)
//! ```
//!
//! It prints what it wrote (spans, traces, each chain and its count) and
//! how fast, and exits 2 on bad usage or a failed write.

use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

use laneway_testdata::traces::{self, Format};

const USAGE: &str = "usage: traces otlp|otlp-jsonl|jaeger|zipkin BYTES FILE [SEED]";

/// `100M` → 104857600.
fn bytes(text: &str) -> Option<u64> {
    let (digits, unit) = match text.as_bytes().last()? {
        b'K' | b'k' => (&text[..text.len() - 1], 1 << 10),
        b'M' | b'm' => (&text[..text.len() - 1], 1 << 20),
        b'G' | b'g' => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (format, size, file, seed) = match args.as_slice() {
        [f, b, file] => (f, b, file, "1"),
        [f, b, file, seed] => (f, b, file, seed.as_str()),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Some(format) = Format::from_name(format) else {
        eprintln!("traces: unknown format {format:?}\n{USAGE}");
        return ExitCode::from(2);
    };
    let Some(target) = bytes(size) else {
        eprintln!("traces: {size}: not a size\n{USAGE}");
        return ExitCode::from(2);
    };
    let Ok(seed) = seed.parse::<u64>() else {
        eprintln!("traces: {seed}: not a seed\n{USAGE}");
        return ExitCode::from(2);
    };
    let out = match std::fs::File::create(file) {
        Ok(f) => BufWriter::with_capacity(1 << 20, f),
        Err(e) => {
            eprintln!("traces: {file}: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let written = match traces::generate(format, out, target, seed) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("traces: {file}: {e}");
            return ExitCode::from(2);
        }
    };
    let secs = started.elapsed().as_secs_f64();
    // A closed stdout (`| head`) loses the report, not the file.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "{file}: {} bytes, {} spans, {} traces in {secs:.2} s ({:.0} MB/s)",
        written.bytes,
        written.spans,
        written.traces,
        written.bytes as f64 / 1e6 / secs.max(1e-9),
    );
    for (chain, n) in &written.chains {
        let _ = writeln!(stdout, "  {n:>9}  {chain}");
    }
    ExitCode::SUCCESS
}
