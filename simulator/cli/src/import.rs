//! `laneway import`: trace files in, a scenario out, and what the traces
//! show about lost routing keys and misrouted calls. The work is
//! `laneway-traces`'; this is its view.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use laneway_scenario::Scenario;
use laneway_traces::{Findings, Fork, Format, Import, Names, Options};

use crate::io::{self, Exit, Sink};

/// A format on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    /// Each document's shape decides.
    Auto,
    /// OTLP JSON (also the Collector's file exporter, Jaeger API v3, Tempo).
    Otlp,
    /// Jaeger JSON (UI download, query API, a bare trace).
    Jaeger,
    /// Zipkin v2 JSON.
    Zipkin,
}

/// `laneway import`.
#[derive(clap::Args)]
pub struct Args {
    /// Trace files (OTLP, Jaeger or Zipkin JSON); `-` is standard input.
    /// Several files are one input: a trace's spans may be in several.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    /// The input format.
    #[arg(long, value_enum, default_value = "auto")]
    format: FormatArg,
    /// Declare a sandbox: its key and the services it forks
    /// (KEY=SERVICE[,SERVICE...]); repeat for several. The scenario gets
    /// tagged traffic for it on every chain.
    #[arg(long = "fork", value_name = "KEY=SERVICES")]
    forks: Vec<String>,
    /// Where to write the scenario (`-`: stdout; the report then goes to
    /// stderr).
    #[arg(short = 'o', long = "output", value_name = "SCENARIO")]
    output: PathBuf,
    /// The scenario's name [default: the output file's stem].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Attribute names that carry the routing key (an attribute of that
    /// name, or with a `baggage.` prefix) [default: sd-routing-key,
    /// sd-sandbox].
    #[arg(long = "member", value_name = "NAME")]
    members: Vec<String>,
    /// Open spans at most: past it the oldest open trace is closed. Memory
    /// is about 100 bytes per open span.
    #[arg(long, value_name = "SPANS", default_value_t = laneway_traces::DEFAULT_WINDOW as u32,
          value_parser = clap::value_parser!(u32).range(1..=50_000_000))]
    window: u32,
    /// Also write the report as JSON (`-`: stdout).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Exit 1 when the traces show a lost key or a misrouted call.
    #[arg(long)]
    check: bool,
}

/// Parses `KEY=SERVICE[,SERVICE...]`.
fn fork(text: &str) -> Result<Fork, String> {
    let (key, services) = text
        .split_once('=')
        .ok_or_else(|| format!("--fork {text:?}: expected KEY=SERVICE[,SERVICE...]"))?;
    if let Some(why) = laneway_core::config::key_problem(key) {
        return Err(format!("--fork {text:?}: {why}"));
    }
    let services: Vec<String> = services
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if services.is_empty() {
        return Err(format!(
            "--fork {text:?}: name at least one service after '='"
        ));
    }
    Ok(Fork {
        key: key.to_owned(),
        services,
    })
}

fn bad(message: String) -> Exit {
    Exit::input(anyhow::anyhow!(message))
}

/// Runs `laneway import`.
pub fn run(args: Args) -> Result<u8, Exit> {
    let forks = args
        .forks
        .iter()
        .map(|f| fork(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let mut keys = std::collections::HashSet::new();
    for f in &forks {
        if !keys.insert(f.key.as_str()) {
            return Err(bad(format!("--fork {}: the key is declared twice", f.key)));
        }
    }
    let inputs: Vec<&Path> = args.files.iter().map(Path::new).collect();
    let out = Sink::open(&args.output, "the scenario", &inputs)?;
    let json = args
        .json
        .as_deref()
        .map(|p| Sink::open(p, "the JSON report", &inputs))
        .transpose()?;
    if out.is_stdout() && json.as_ref().is_some_and(Sink::is_stdout) {
        return Err(bad(
            "-o - and --json - both want stdout: give one a file".into()
        ));
    }
    let options = Options {
        format: match args.format {
            FormatArg::Auto => Format::Auto,
            FormatArg::Otlp => Format::Otlp,
            FormatArg::Jaeger => Format::Jaeger,
            FormatArg::Zipkin => Format::Zipkin,
        },
        names: if args.members.is_empty() {
            Names::default()
        } else {
            Names {
                members: args.members.clone(),
            }
        },
        window: args.window as usize,
    };
    let started = std::time::Instant::now();
    let import = laneway_traces::import(&args.files, &options).map_err(|e| bad(e.to_string()))?;
    let elapsed = started.elapsed();
    for f in &forks {
        for s in &f.services {
            if !import.chains.services.iter().any(|x| &x.name == s) {
                let known: Vec<&str> = import
                    .chains
                    .services
                    .iter()
                    .map(|x| x.name.as_str())
                    .collect();
                return Err(bad(format!(
                    "--fork {}={}: no service {s:?} in the traces (they name: {})",
                    f.key,
                    f.services.join(","),
                    laneway_report::printable(&known.join(", "))
                )));
            }
        }
    }
    if import.chains.templates.is_empty() {
        return Err(bad(format!(
            "{}: no call chain in {} trace(s): nothing to write",
            args.files.join(", "),
            import.chains.traces
        )));
    }
    let findings = laneway_traces::findings(&import.chains, &import.strings, &forks);
    let name = args.name.clone().unwrap_or_else(|| {
        args.output
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| s != "-")
            .unwrap_or_else(|| "imported".into())
    });
    let yaml =
        laneway_traces::scenario::scenario(&name, &args.files, &import.chains, &findings, &forks);
    // What is written must replay as it stands.
    if let Err(e) = Scenario::from_bytes(&args.output, yaml.as_bytes()) {
        return Err(Exit::bug(format!(
            "the imported scenario does not compile: {e}"
        )));
    }
    let report = text(&import, &findings, args.window as usize, elapsed);
    let to_stdout = !out.is_stdout();
    out.write(&yaml)?;
    if let Some(j) = json {
        let doc =
            serde_json::to_string_pretty(&json_report(&import, &findings, args.window as usize))
                .map_err(Exit::bug)?;
        j.write(&format!("{doc}\n"))?;
    }
    if to_stdout {
        io::stdout(&report)?;
    } else {
        io::stderr(&report)?;
    }
    let found = !findings.lost.is_empty() || !findings.misrouted.is_empty();
    Ok(if args.check && found {
        io::CHECK_FAILED
    } else {
        0
    })
}

fn text(import: &Import, f: &Findings, window: usize, elapsed: std::time::Duration) -> String {
    use laneway_report::{printable, thousands};
    use std::fmt::Write as _;
    let c = &import.chains;
    let bytes: u64 = import.files.iter().map(|(_, s)| s.bytes).sum();
    let mut t = String::new();
    let _ = writeln!(
        t,
        "read {} file(s), {} bytes, {} spans in {:.2} s: {} traces, {} distinct chains, {} services",
        import.files.len(),
        thousands(bytes),
        thousands(c.spans),
        elapsed.as_secs_f64(),
        thousands(c.traces),
        c.templates.len(),
        c.services.len()
    );
    for (file, s) in &import.files {
        let formats: Vec<String> = ["otlp", "jaeger", "zipkin"]
            .iter()
            .zip(s.formats)
            .filter(|(_, n)| *n > 0)
            .map(|(f, n)| format!("{f} ×{n}"))
            .collect();
        let _ = writeln!(
            t,
            "  {}: {} document(s) ({}), {} spans",
            printable(file),
            s.documents,
            formats.join(", "),
            thousands(s.spans)
        );
    }
    let names = laneway_traces::scenario::chain_names(c);
    for ((_, tpl), name) in c.ranked().iter().zip(&names).take(10) {
        let _ = writeln!(
            t,
            "  chain {}: {} trace(s): {}",
            printable(name),
            thousands(tpl.count),
            printable(&c.show(&tpl.roots))
        );
    }
    if c.templates.len() > 10 {
        let _ = writeln!(
            t,
            "  … and {} more chains (all in the scenario)",
            c.templates.len() - 10
        );
    }
    for w in laneway_traces::warnings(import, window) {
        let _ = writeln!(t, "warning: {}", printable(&w));
    }
    let _ = writeln!(
        t,
        "routing key seen in {} of {} traces; {} calls name the workload that served them",
        thousands(f.keyed_traces),
        thousands(c.traces),
        thousands(f.attributed_calls)
    );
    if f.lost.is_empty() {
        let _ = writeln!(t, "context: no lost routing key");
    }
    for l in &f.lost {
        let _ = writeln!(
            t,
            "context_dropped at {}: {} trace(s) called {} without the routing key",
            printable(&l.at),
            thousands(l.traces),
            printable(&l.to)
        );
    }
    if f.misrouted.is_empty() && f.attributed_calls > 0 {
        let _ = writeln!(t, "routing: no misrouted call");
    }
    for m in &f.misrouted {
        let what = match m.kind {
            "baseline" => format!(
                "reached the baseline ({}) although sandbox {} forks it{}",
                printable(&m.workload),
                printable(&m.key),
                if m.lost {
                    " (the key was lost on the way: see context_dropped)"
                } else {
                    " (the call carried the key)"
                }
            ),
            "other-fork" => format!(
                "with key {} reached another sandbox's fork ({})",
                printable(&m.key),
                printable(&m.workload)
            ),
            _ => format!(
                "without a routing key reached a fork ({})",
                printable(&m.workload)
            ),
        };
        let _ = writeln!(
            t,
            "misrouted: {} call(s) to {} {}",
            thousands(m.calls),
            printable(&m.service),
            what
        );
    }
    t
}

fn json_report(import: &Import, f: &Findings, window: usize) -> serde_json::Value {
    let c = &import.chains;
    let names = laneway_traces::scenario::chain_names(c);
    serde_json::json!({
        "files": import.files.iter().map(|(file, s)| serde_json::json!({
            "file": file,
            "bytes": s.bytes,
            "documents": s.documents,
            "spans": s.spans,
            "otlp": s.formats[0],
            "jaeger": s.formats[1],
            "zipkin": s.formats[2],
        })).collect::<Vec<_>>(),
        "traces": c.traces,
        "spans": c.spans,
        "services": c.services.iter().map(|s| serde_json::json!({
            "name": s.name, "host": s.host, "instrumented": s.instrumented,
        })).collect::<Vec<_>>(),
        "chains": c.ranked().iter().zip(&names).map(|(( _, t), name)| serde_json::json!({
            "name": name, "count": t.count, "tree": c.show(&t.roots), "example": t.example,
        })).collect::<Vec<_>>(),
        "warnings": laneway_traces::warnings(import, window),
        "keyed_traces": f.keyed_traces,
        "attributed_calls": f.attributed_calls,
        "context_dropped": f.lost.iter().map(|l| serde_json::json!({
            "at": l.at, "to": l.to, "traces": l.traces,
        })).collect::<Vec<_>>(),
        "misrouted": f.misrouted.iter().map(|m| serde_json::json!({
            "kind": m.kind, "service": m.service, "key": m.key,
            "workload": m.workload, "key_lost_upstream": m.lost, "calls": m.calls,
        })).collect::<Vec<_>>(),
    })
}
