//! `bench-import`: what `laneway import` costs per format and input size.
//!
//! For each format and size it writes a trace file with
//! `laneway_testdata::traces` (HotROD-shaped, about 0.6–1.3 KB a span),
//! runs `laneway import FILE -o SCENARIO` as a child process, and prints
//! wall time, MB/s, spans/s and the child's peak RSS (from `wait4`). It
//! also checks the import found the generator's chains with their counts,
//! so a fast wrong answer cannot pass as a result.
//!
//! One run prints the whole table; nothing is asserted on time. Exit 1
//! only when the harness breaks or the chains are wrong.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use laneway_testdata::traces::{Format, generate};

#[derive(Parser)]
#[command(about = "laneway import: MB/s, spans/s and peak RSS per format and size")]
struct Args {
    /// The laneway binary.
    #[arg(long, default_value = "target/release/laneway")]
    laneway: PathBuf,
    /// Formats: otlp, otlp-jsonl, jaeger, zipkin (comma-separated).
    #[arg(
        long,
        default_value = "otlp,otlp-jsonl,jaeger,zipkin",
        value_delimiter = ','
    )]
    formats: Vec<String>,
    /// Sizes in MB (comma-separated).
    #[arg(long, default_value = "10,100", value_delimiter = ',')]
    sizes: Vec<u64>,
    /// Where the generated files go (deleted after each run).
    #[arg(long, default_value = "target/bench-import")]
    dir: PathBuf,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-import: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Runs `cmd`, waiting with `wait4`: (exit status, peak RSS in KiB).
fn run_measured(cmd: &mut Command) -> anyhow::Result<(i32, i64)> {
    let child = cmd.spawn().context("cannot start laneway")?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for; `status` and `usage`
    // are valid for writes for the duration of the call.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if r != pid {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    std::mem::forget(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok((code, usage.ru_maxrss))
}

fn run(args: &Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)?;
    println!(
        "{:<11} {:>9} {:>11} {:>8} {:>8} {:>11} {:>9}",
        "format", "MB", "spans", "wall s", "MB/s", "spans/s", "peak RSS"
    );
    for name in &args.formats {
        let format = Format::from_name(name).with_context(|| format!("unknown format {name:?}"))?;
        for &mb in &args.sizes {
            let file = args.dir.join(format!("{name}-{mb}M.json"));
            let out = args.dir.join(format!("{name}-{mb}M.yaml"));
            let written = {
                let mut w = BufWriter::with_capacity(1 << 20, File::create(&file)?);
                let written = generate(format, &mut w, mb * 1_000_000, 7)?;
                std::io::Write::flush(&mut w)?;
                written
            };
            let started = Instant::now();
            let (code, rss) = run_measured(
                Command::new(&args.laneway)
                    .arg("import")
                    .arg(&file)
                    .arg("-o")
                    .arg(&out)
                    .arg("--json")
                    .arg(args.dir.join("report.json"))
                    .stdout(Stdio::null()),
            )?;
            let wall = started.elapsed().as_secs_f64();
            if code != 0 {
                bail!("laneway import {} exited {code}", file.display());
            }
            let report: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(args.dir.join("report.json"))?)?;
            let mut found: Vec<(String, u64)> = report["chains"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    (
                        c["tree"].as_str().unwrap_or_default().to_owned(),
                        c["count"].as_u64().unwrap_or_default(),
                    )
                })
                .collect();
            found.sort();
            let mut want: Vec<(String, u64)> = written
                .chains
                .iter()
                .map(|(c, n)| ((*c).to_owned(), *n))
                .collect();
            want.sort();
            if found != want {
                bail!(
                    "{}: chains {found:?}, the generator wrote {want:?}",
                    file.display()
                );
            }
            println!(
                "{:<11} {:>9.1} {:>11} {:>8.2} {:>8.0} {:>11.0} {:>6} MB",
                name,
                written.bytes as f64 / 1e6,
                written.spans,
                wall,
                written.bytes as f64 / 1e6 / wall,
                written.spans as f64 / wall,
                rss / 1024
            );
            std::fs::remove_file(&file)?;
            std::fs::remove_file(&out)?;
        }
    }
    Ok(())
}
