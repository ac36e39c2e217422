//! `laneway render TARGET`: files a cluster or a proxy applies, rendered
//! from a scenario. Each target is a variant of [`Target`] that renders
//! `(file name, text)` pairs with a library crate (`istio`:
//! `laneway-deploy`); [`emit`] is the one way they leave: to stdout,
//! separated by `---`, or written into `-o DIR`.
//!
//! Nothing is written unless every file can be: the scenario and the
//! options are checked first, and every output file is opened (and
//! refused if it is an input of the run) before the first byte is written.

use std::path::{Path, PathBuf};

use laneway_deploy::IstioOptions;
use laneway_scenario::Scenario;

use crate::io::{self, Exit, Sink};

/// What to render.
#[derive(clap::Subcommand)]
pub enum Target {
    /// Istio manifests for the scenario's plugin configuration: WasmPlugin
    /// and TrafficExtension for outbound sidecars (wasmplugin.yaml,
    /// trafficextension.yaml), the same on waypoints (…-waypoint.yaml), a
    /// WasmPlugin for the ingress gateway (wasmplugin-ingress.yaml),
    /// EnvoyFilters for meshes without WasmPlugin (envoyfilter*.yaml; in
    /// envoyfilter-composite.yaml the filter sits behind Envoy's composite
    /// filter, created only for requests carrying a carrier header), the
    /// inline-headers bootstrap override (bootstrap-inline-headers.yaml),
    /// and each fork's Deployment and Service (forks.yaml).
    ///
    /// Without -o, every file goes to stdout, separated by `---`. A bad
    /// scenario exits 2 with FILE: where: reason, and nothing is written.
    Istio(IstioArgs),
    /// A runnable Envoy configuration shaped like Istio's outbound sidecars
    /// (bootstrap.yaml): one listener per caller (ports 15001 on: the
    /// ingress's, then each service's; in an ambient mesh one per
    /// waypoint and `direct`), one virtual host per service host and fork
    /// host, one cluster per workload (found by DNS), the filter before the
    /// router with its configuration through filesystem ECDS
    /// (laneway-ecds.json): replace that file to change sandboxes, and
    /// open connections take the change for their next request.
    Envoy(EnvoyArgs),
}

/// `laneway render envoy`.
#[derive(clap::Args)]
pub struct EnvoyArgs {
    /// The scenario file.
    scenario: PathBuf,
    /// Write the files into DIR (created if missing) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: Option<PathBuf>,
    /// The module's path where Envoy runs.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/etc/laneway/laneway_filter.wasm"
    )]
    module: String,
    /// The ECDS file's path where Envoy runs (its directory is watched).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/etc/laneway/laneway-ecds.json"
    )]
    ecds: PathBuf,
    /// How the filter sits in the chain: `plain` (before the router, for
    /// every request) or `composite` (behind Envoy's composite filter,
    /// created only for requests carrying a header the configuration's
    /// carriers name).
    #[arg(long, value_enum, default_value = "plain")]
    shape: crate::replay::ShapeArg,
    /// Declare baggage and tracestate as inline headers in the bootstrap
    /// (Envoy joins repeated lines with `,`), and write the configuration
    /// with routing_key.joined: true.
    #[arg(long)]
    inline_headers: bool,
}

/// `laneway render istio`.
#[derive(clap::Args)]
pub struct IstioArgs {
    /// The scenario file.
    scenario: PathBuf,
    /// Write the files into DIR (created if missing) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: Option<PathBuf>,
    /// The module's URL (oci://, https://, http:// or file://)
    /// [default: oci://registry.example.com/laneway:VERSION].
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The checksum Istio verifies: for oci:// the image manifest's digest,
    /// for https:// the module's sha256 (both printed by `laneway oci`).
    #[arg(long, value_name = "HEX")]
    sha256: Option<String>,
    /// The namespace of the workloads, their plugins and their forks.
    #[arg(long, value_name = "NS", default_value = "default")]
    namespace: String,
    /// Each fork's container image; {service} and {key} are replaced.
    #[arg(
        long,
        value_name = "IMAGE",
        default_value = "registry.example.com/{service}:{key}"
    )]
    fork_image: String,
    /// The namespace's sidecars and the forks run with the inline-headers
    /// bootstrap (bootstrap-inline-headers.yaml, named by the pods'
    /// sidecar.istio.io/bootstrapOverride annotation): their plugins say
    /// routing_key.joined: true and the forks' pods carry the annotation.
    /// Only with that bootstrap in place: otherwise the filter misses
    /// repeated header lines after the first.
    #[arg(long)]
    inline_headers: bool,
}

/// Runs `laneway render TARGET`.
pub fn run(target: Target) -> Result<u8, Exit> {
    match target {
        Target::Istio(args) => istio(args),
        Target::Envoy(args) => envoy(args),
    }
}

fn envoy(args: EnvoyArgs) -> Result<u8, Exit> {
    let scenario = Scenario::load(&args.scenario)
        .map_err(|e| Exit::input(anyhow::anyhow!("invalid scenario\n{e}")))?;
    let files = laneway_envoy::scenario::render(
        &scenario,
        &laneway_envoy::scenario::Render {
            module: &args.module,
            ecds: &args.ecds,
            shape: args.shape.into(),
            inline_headers: args.inline_headers,
        },
    );
    emit(&files, args.output.as_deref(), &scenario.inputs)
}

fn istio(args: IstioArgs) -> Result<u8, Exit> {
    let scenario = Scenario::load(&args.scenario)
        .map_err(|e| Exit::input(anyhow::anyhow!("invalid scenario\n{e}")))?;
    let options = IstioOptions {
        namespace: args.namespace,
        url: args.url,
        sha256: args.sha256,
        fork_image: args.fork_image,
        inline_headers: args.inline_headers,
        ..IstioOptions::default()
    };
    let errors = options.validate(&scenario);
    if !errors.is_empty() {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(Exit::input(anyhow::anyhow!(
            "invalid options\n{}",
            lines.join("\n")
        )));
    }
    let files = laneway_deploy::istio(&scenario, &options);
    emit(&files, args.output.as_deref(), &scenario.inputs)
}

/// Prints `files` to stdout, `---` between them, or writes each into
/// `dir` (created if missing) and lists the paths written. A file that is
/// one of `inputs` is refused before anything is written.
pub fn emit(
    files: &[(String, String)],
    dir: Option<&Path>,
    inputs: &[PathBuf],
) -> Result<u8, Exit> {
    let Some(dir) = dir else {
        let texts: Vec<&str> = files.iter().map(|(_, text)| text.as_str()).collect();
        io::stdout(&texts.join("---\n"))?;
        return Ok(0);
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| Exit::input(anyhow::anyhow!("{}: cannot create: {e}", dir.display())))?;
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    let sinks = files
        .iter()
        .map(|(name, _)| Sink::open(&dir.join(name), "rendered file", &inputs))
        .collect::<Result<Vec<Sink>, Exit>>()?;
    let mut written = String::new();
    for (sink, (name, text)) in sinks.into_iter().zip(files) {
        sink.write(text)?;
        written.push_str(&format!("{}\n", dir.join(name).display()));
    }
    io::stdout(&written)?;
    Ok(0)
}
