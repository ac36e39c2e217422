//! `replay` and `explain`: scenarios through the filter in wasmtime, with
//! `laneway-core` as the reference, rendered by `laneway-report`.
//!
//! Before any work: every scenario loads, its hop bound is within
//! `--max-hops`, the module loads, and the output files open. During it:
//! progress (a bar on a terminal, a line every `--progress-every` seconds
//! otherwise) and a warning at the first failed hop.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use laneway_replay::{BackendFactory, NativeFactory, WasmFactory};
use laneway_report::{TextOptions, thousands};
use laneway_scenario::Scenario;
use proxy_wasm_host::{HostOptions, Plugin};

use crate::io::{self, Exit, Sink};
use crate::otlp;

/// Scenarios bigger than this (in hops) get their estimate printed first.
const ANNOUNCE_HOPS: u64 = 10_000_000;

/// Where each call is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// laneway_filter.wasm in wasmtime, in process; laneway-core is the
    /// reference.
    Wasm,
    /// Real Envoy on loopback (the `render envoy` configuration, the
    /// filter through ECDS, workloads that make the scenario's calls); the
    /// in-process wasm backend is the reference, so the differential check
    /// is the agreement of the two.
    Envoy,
}

/// How the filter sits in Envoy's chain (`--shape`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ShapeArg {
    /// Before the router, for every request (WasmPlugin's shape).
    Plain,
    /// Behind Envoy's composite filter: created only for requests that
    /// carry a header the configuration's carriers name.
    Composite,
}

impl From<ShapeArg> for laneway_envoy::bootstrap::Shape {
    fn from(s: ShapeArg) -> Self {
        match s {
            ShapeArg::Plain => laneway_envoy::bootstrap::Shape::Plain,
            ShapeArg::Composite => laneway_envoy::bootstrap::Shape::Composite,
        }
    }
}

/// The `replay` command's arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Scenario files (YAML or JSON, each a regular file of at most 64 MiB;
    /// see testdata/README.md).
    #[arg(required = true, value_name = "SCENARIO")]
    scenarios: Vec<PathBuf>,
    /// The filter module [default: $LANEWAY_WASM, else
    /// target/wasm32-wasip1/release/laneway_filter.wasm].
    #[arg(long, value_name = "FILE")]
    wasm: Option<PathBuf>,
    /// Write the reports as JSON to FILE (`-`: to stdout, instead of the
    /// text report).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write JUnit XML to FILE (`-`: to stdout, instead of the text
    /// report).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write the reports as one self-contained HTML page to FILE (`-`: to
    /// stdout, instead of the text report): the checks, each distinct
    /// path's call tree coloured baseline, fork, fallback or violation
    /// (route and reason on hover), the blast radius, and a switch that
    /// shows failures only. Nothing in it is fetched from the network.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Write the replayed requests as OpenTelemetry traces to FILE:
    /// OTLP/JSON, one ExportTraceServiceRequest per line (the Collector's
    /// file exporter format), one trace per request, one SERVER span per
    /// hop in its service's resource, the decision in `laneway.*`
    /// attributes and the key a hop received in `sd-routing-key`.
    #[arg(long, value_name = "FILE")]
    otlp: Option<PathBuf>,
    /// Write the traces of the first N requests of the run to --otlp (in
    /// scenario order, then request order; they wait in memory until the
    /// end, a few KB each). A warning says how many were left out.
    #[arg(long, value_name = "N", default_value_t = 10_000, requires = "otlp",
          value_parser = clap::value_parser!(u64).range(1..))]
    otlp_limit: u64,
    /// Show each hop's decision and reason under each path.
    #[arg(long)]
    details: bool,
    /// Show only failing checks and traffic groups with failures.
    #[arg(long)]
    only_failures: bool,
    /// Where each call is decided: in wasmtime (`wasm`) or in real Envoy
    /// (`envoy`, compared hop by hop with `wasm`; one request at a time).
    #[arg(long, value_enum, default_value = "wasm")]
    backend: BackendArg,
    /// With --backend envoy: how the filter sits in Envoy's chain.
    #[arg(long, value_enum, default_value = "plain")]
    shape: ShapeArg,
    /// With --backend envoy: declare baggage and tracestate as inline
    /// headers in the bootstrap (Envoy joins repeated lines with `,`); the
    /// plugin configuration Envoy gets then says routing_key.joined: true
    /// (the wasm reference keeps the scenario's).
    #[arg(long)]
    inline_headers: bool,
    /// Replay only the first N requests of each traffic group, and say so
    /// in the report [default: all; 100 with --backend envoy].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    sample: Option<u64>,
    /// Worker threads, one wasm VM each [default: every core].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Refuse a scenario that could make more hops than N (its requests
    /// times the most hops one request can make).
    #[arg(long, value_name = "N", default_value_t = 1_000_000_000)]
    max_hops: u64,
    /// The time budget of one filter callback, in milliseconds; a callback
    /// that runs longer fails its hop. proxy_on_configure has its own
    /// budget of 120 s.
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    budget: u64,
    /// Stop at the first failed hop (a trap, a callback over budget) and
    /// report the requests replayed so far.
    #[arg(long)]
    fail_fast: bool,
    /// The most linear memory one wasm VM may grow to, in MiB (Envoy's
    /// limit is 1 GiB).
    #[arg(long, value_name = "MIB", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    max_memory: u64,
    /// Without a terminal on stderr, print a progress line every SECS
    /// seconds (0: never). On a terminal, a bar.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    progress_every: f64,
}

/// The module at `path`, which must exist; `make wasm` builds the default.
pub fn module_file(path: &Path) -> Result<(), Exit> {
    if std::fs::symlink_metadata(path).is_err() {
        return Err(Exit::input(anyhow::anyhow!(
            "{}: no such module (build it with `make wasm`, or pass --wasm)",
            path.display()
        )));
    }
    Ok(())
}

fn wasm_path(wasm: Option<PathBuf>) -> Result<PathBuf, Exit> {
    let path = wasm
        .or_else(|| std::env::var_os("LANEWAY_WASM").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target/wasm32-wasip1/release/laneway_filter.wasm"));
    module_file(&path)?;
    Ok(path)
}

fn load_plugin(path: &Path) -> Result<Plugin, Exit> {
    Plugin::load(path).map_err(|e| match e {
        // Already `PATH: what it is`.
        proxy_wasm_host::HostError::Io { .. } => Exit::input(anyhow::anyhow!("{e}")),
        e => Exit::input(anyhow::anyhow!("{}: {e}", path.display())),
    })
}

fn load_scenario(path: &Path) -> Result<Scenario, Exit> {
    Scenario::load(path).map_err(|e| Exit::input(anyhow::anyhow!("invalid scenario\n{e}")))
}

fn module_name(wasm: &Path) -> String {
    wasm.file_name().map_or_else(
        || wasm.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn bar(done: u64, total: u64) {
    let width: usize = 30;
    let done = done.min(total);
    let filled = (done * width as u64)
        .checked_div(total)
        .map_or(width, |f| f as usize);
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    let end = if done >= total { "\n" } else { "" };
    io::progress_line(&format!(
        "\r[{}{}] {:>3}% {}/{} requests{end}",
        "#".repeat(filled),
        ".".repeat(width - filled),
        percent,
        thousands(done),
        thousands(total)
    ));
}

/// Progress for a log: a line every `every`, none for a run shorter than
/// that.
fn lines(name: String, every: Duration) -> laneway_replay::ProgressFn {
    let started = Instant::now();
    let next = Mutex::new(every);
    Arc::new(move |done, total| {
        let elapsed = started.elapsed();
        let Ok(mut next) = next.lock() else { return };
        if elapsed < *next || done >= total {
            return;
        }
        *next = elapsed + every;
        let percent = (done * 100).checked_div(total).unwrap_or(100);
        io::progress_line(&format!(
            "laneway: {name}: {} of {} requests ({percent}%) after {:.0} s\n",
            thousands(done),
            thousands(total),
            elapsed.as_secs_f64()
        ));
    })
}

/// `replay`.
pub fn run(a: Args) -> Result<u8, Exit> {
    use std::io::IsTerminal as _;
    let to_stdout: Vec<String> = [
        ("--json", &a.json),
        ("--junit", &a.junit),
        ("--html", &a.html),
    ]
    .into_iter()
    .filter(|(_, p)| p.as_deref() == Some(Path::new("-")))
    .map(|(flag, _)| format!("{flag} -"))
    .collect();
    if let [rest @ .., last] = &to_stdout[..]
        && !rest.is_empty()
    {
        return Err(Exit::input(anyhow::anyhow!(
            "{} and {last} {} ask for stdout; send {} to a file",
            rest.join(", "),
            if rest.len() == 1 { "both" } else { "all" },
            if rest.len() == 1 {
                "one of them"
            } else {
                "all but one"
            }
        )));
    }
    if !(a.progress_every.is_finite() && a.progress_every >= 0.0) {
        return Err(Exit::input(anyhow::anyhow!(
            "--progress-every: {} is not a number of seconds",
            a.progress_every
        )));
    }
    let wasm = wasm_path(a.wasm)?;
    let loaded: Vec<Scenario> = a
        .scenarios
        .iter()
        .map(|p| load_scenario(p))
        .collect::<Result<_, _>>()?;
    for s in &loaded {
        let bound = s.hop_bound();
        if bound > a.max_hops {
            return Err(Exit::input(anyhow::anyhow!(
                "{}: the scenario could make up to {} hops ({} requests), over the limit of {}; \
                 pass --max-hops to allow more",
                s.file.display(),
                thousands(bound),
                thousands(s.requests),
                thousands(a.max_hops)
            )));
        }
    }
    let plugin = load_plugin(&wasm)?;
    // Open the outputs before the work: a typo in a path fails now, not
    // after an hour of replay, and never overwrites an input.
    let mut inputs: Vec<&Path> = vec![&wasm];
    inputs.extend(
        loaded
            .iter()
            .flat_map(|s| s.inputs.iter().map(PathBuf::as_path)),
    );
    let json = a
        .json
        .as_deref()
        .map(|p| Sink::open(p, "--json", &inputs))
        .transpose()?;
    let junit = a
        .junit
        .as_deref()
        .map(|p| Sink::open(p, "--junit", &inputs))
        .transpose()?;
    let html = a
        .html
        .as_deref()
        .map(|p| Sink::open(p, "--html", &inputs))
        .transpose()?;
    let text_to_stdout = to_stdout.is_empty();
    let mut otlp = match a.otlp.as_deref() {
        Some(p) if p.as_os_str() == "-" => {
            return Err(Exit::input(anyhow::anyhow!(
                "--otlp -: OTLP traces go to a file; give its path"
            )));
        }
        Some(p) => Some(otlp::Collector::new(
            Sink::open(p, "--otlp", &inputs)?,
            p,
            a.otlp_limit,
        )),
        None => None,
    };

    let mut host = HostOptions {
        call_timeout: Duration::from_millis(a.budget),
        ..HostOptions::default()
    };
    host.limits.memory_bytes = usize::try_from(a.max_memory << 20).unwrap_or(usize::MAX);
    let wasm_backend = WasmFactory::new(plugin, module_name(&wasm)).with_host(host);
    if a.backend != BackendArg::Envoy && (a.shape != ShapeArg::Plain || a.inline_headers) {
        return Err(Exit::input(anyhow::anyhow!(
            "--shape and --inline-headers shape the real Envoy backend; add --backend envoy"
        )));
    }
    let shape = laneway_envoy::bootstrap::Shape::from(a.shape);
    let mut envoy_name = format!("{} in real Envoy", module_name(&wasm));
    if shape != laneway_envoy::bootstrap::Shape::Plain {
        envoy_name.push_str(&format!(" ({shape})"));
    }
    if a.inline_headers {
        envoy_name.push_str(" (inline headers)");
    }
    let envoy_backend = laneway_envoy::backend::EnvoyFactory::new(&wasm, envoy_name)
        .shaped(shape, a.inline_headers);
    let (primary, reference): (&dyn BackendFactory, &dyn BackendFactory) = match a.backend {
        BackendArg::Wasm => (&wasm_backend, &NativeFactory),
        BackendArg::Envoy => {
            laneway_envoy::ensure_binary()
                .map_err(|e| Exit::input(anyhow::anyhow!("--backend envoy: {e}")))?;
            (&envoy_backend, &wasm_backend)
        }
    };
    let sample = match a.backend {
        BackendArg::Wasm => a.sample,
        BackendArg::Envoy => a.sample.or(Some(100)),
    };
    let terminal = std::io::stderr().is_terminal();
    let mut reports = Vec::new();
    for scenario in &loaded {
        let bound = scenario.hop_bound();
        if bound >= ANNOUNCE_HOPS {
            io::stderr(&format!(
                "laneway: {}: {} requests, up to {} hops\n",
                laneway_report::printable(&scenario.name),
                thousands(scenario.requests),
                thousands(bound)
            ))?;
        }
        let name = laneway_report::printable(&scenario.name).into_owned();
        let mut options = laneway_replay::Options {
            fail_fast: a.fail_fast,
            progress: if terminal {
                Some(Arc::new(bar))
            } else if a.progress_every > 0.0 {
                Some(lines(
                    name.clone(),
                    Duration::from_secs_f64(a.progress_every),
                ))
            } else {
                None
            },
            on_first_failure: Some(Arc::new(move |story: &str| {
                io::progress_line(&format!(
                    "laneway: warning: {name}: {}\n  the failed-hops check counts every failed hop; \
                     --fail-fast stops at the first, --budget MS sets a callback's time budget\n",
                    laneway_report::printable(story)
                ));
            })),
            ..laneway_replay::Options::default()
        };
        if let Some(n) = a.threads {
            options.threads = n.max(1);
        }
        options.sample = sample;
        if a.backend == BackendArg::Envoy {
            // One Envoy, one request at a time: configuration swaps land
            // between requests as the scenario says.
            options.threads = 1;
        }
        options.on_trace = otlp.as_ref().map(otlp::Collector::hook);
        let mut replayed = laneway_replay::replay(scenario, primary, Some(reference), &options)
            .map_err(|e| Exit::input(anyhow::anyhow!("{}: {e}", scenario.file.display())))?;
        if a.backend == BackendArg::Envoy {
            let s = &replayed.summary;
            let note = format!(
                "agreement of real Envoy with {} in wasmtime: hops compared: {}, identical: {}",
                reference.name(),
                thousands(s.compared),
                thousands(s.compared.saturating_sub(s.differential.count))
            );
            replayed.summary.note(note);
        }
        if let Some(otlp) = &mut otlp {
            otlp.scenario_done(replayed.summary.requests)?;
        }
        let report = laneway_report::Report::new(scenario, &replayed);
        if text_to_stdout {
            let options = TextOptions {
                details: a.details,
                only_failures: a.only_failures,
            };
            io::stdout(&format!("{}\n", laneway_report::text(&report, options)))?;
        }
        let secs = report.elapsed.as_secs_f64();
        io::stderr(&format!(
            "laneway: {}: {} hops in {:.2} s ({:.0} hops/s, {} threads)\n",
            laneway_report::printable(&report.scenario),
            thousands(report.hops),
            secs,
            report.hops as f64 / secs.max(1e-9),
            report.threads
        ))?;
        reports.push(report);
    }
    if let Some(sink) = json {
        let text =
            serde_json::to_string_pretty(&laneway_report::json(&reports)).map_err(Exit::bug)?;
        sink.write(&format!("{text}\n"))?;
    }
    if let Some(sink) = junit {
        sink.write(&laneway_report::junit(&reports))?;
    }
    if let Some(sink) = html {
        sink.write(&laneway_report::html(&reports))?;
    }
    if let Some(otlp) = otlp {
        otlp.write()?;
    }
    Ok(if reports.iter().all(|r| r.passed()) {
        0
    } else {
        io::CHECK_FAILED
    })
}

/// `explain`.
pub fn explain(scenario: &Path, request: &str, wasm: Option<PathBuf>) -> Result<u8, Exit> {
    let wasm = wasm_path(wasm)?;
    let scenario = load_scenario(scenario)?;
    let plugin = load_plugin(&wasm)?;
    let primary = WasmFactory::new(plugin, module_name(&wasm));
    let explained = laneway_replay::explain(&scenario, &primary, Some(&NativeFactory), request)
        .map_err(|e| Exit::input(anyhow::anyhow!("{}: {e}", scenario.file.display())))?;
    let e = laneway_report::explain::explanation(&scenario, &explained);
    io::stdout(&laneway_report::explain::text(&e))?;
    Ok(if e.findings.is_empty() {
        0
    } else {
        io::CHECK_FAILED
    })
}
