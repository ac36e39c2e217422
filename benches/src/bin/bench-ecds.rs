//! `bench-ecds`: how long a plugin configuration change takes to reach a
//! connection that is already open, through filesystem ECDS.
//!
//! Starts the real-Envoy backend on `testdata/scenarios/hotrod.yaml`
//! (sandbox `qwblp48fpmb30` forks `location`), opens one keep-alive
//! connection to customer's sidecar, and then, `--rounds` times, writes a
//! configuration without the sandbox and one with it, each time timing
//! from the write to the first request on that same connection that is
//! routed the new way (requests are sent back to back). Prints min, median
//! and max; nothing is asserted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use laneway_scenario::Scenario;

#[derive(Parser)]
#[command(
    about = "ECDS: time from writing a configuration to the first request on an open connection that sees it"
)]
struct Args {
    /// The filter module.
    #[arg(
        long,
        default_value = "target/wasm32-wasip1/release/laneway_filter.wasm"
    )]
    wasm: PathBuf,
    /// Add/remove rounds.
    #[arg(long, default_value_t = 10)]
    rounds: u32,
}

fn ask(stream: &mut TcpStream, host: &str) -> anyhow::Result<String> {
    let request =
        format!("GET / HTTP/1.1\r\nHost: {host}\r\nbaggage: sd-routing-key=qwblp48fpmb30\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            bail!("Envoy closed the connection");
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(v["workload"].as_str().unwrap_or_default().to_owned())
}

fn run(args: &Args) -> anyhow::Result<()> {
    let sc = Scenario::load("testdata/scenarios/hotrod.yaml".as_ref())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let empty = r#"{"version": 1, "sandboxes": []}"#;
    let mut backend = laneway_envoy::backend::EnvoyBackend::start(&args.wasm, &sc)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let customer = sc
        .services
        .iter()
        .position(|s| s.name == "customer")
        .context("customer")?;
    let at = sc
        .services
        .iter()
        .position(|s| s.name == "location")
        .context("location")?;
    let location = sc.services[at].authority.clone();
    let mut stream = TcpStream::connect(backend.listener(Some(customer), at).context("listener")?)?;
    stream.set_nodelay(true)?;
    let mut times = Vec::new();
    let mut requests = 0u64;
    for round in 0..args.rounds * 2 {
        let (config, want) = if round % 2 == 0 {
            (empty, "location@baseline")
        } else {
            (sc.config.as_str(), "location@fork(qwblp48fpmb30)")
        };
        let t = Instant::now();
        backend.write_config(config)?;
        loop {
            requests += 1;
            if ask(&mut stream, &location)? == want {
                break;
            }
            if t.elapsed() > Duration::from_secs(60) {
                bail!("round {round}: no change after 60 s");
            }
        }
        times.push(t.elapsed());
        // Let the old instance go before the next change.
        std::thread::sleep(Duration::from_millis(200));
    }
    times.sort();
    println!(
        "ECDS update to an open connection, {} changes on one connection ({requests} requests): min {:.1} ms, median {:.1} ms, max {:.1} ms",
        times.len(),
        times[0].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
    Ok(())
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-ecds: {e:#}");
            ExitCode::from(1)
        }
    }
}
