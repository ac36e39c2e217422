//! `laneway oci`: the filter as an OCI image layout Istio can pull, and
//! the two checksums a WasmPlugin may pin. The work is
//! `laneway_deploy::oci`'s; this reads the module and says what it wrote.

use std::path::PathBuf;

use laneway_deploy::oci::{self, Image};

use crate::io::{self, Exit};

/// `laneway oci`.
#[derive(clap::Args)]
pub struct Args {
    /// The filter module (laneway_filter.wasm).
    #[arg(long, value_name = "FILE")]
    wasm: PathBuf,
    /// The layout's directory (created if missing; its index.json is
    /// replaced).
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: PathBuf,
    /// The tag the index gives the image (oras and skopeo copy DIR:TAG).
    #[arg(long, value_name = "TAG", default_value = env!("CARGO_PKG_VERSION"))]
    tag: String,
    /// Print what was written as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs `laneway oci`.
pub fn run(args: Args) -> Result<u8, Exit> {
    let module = laneway_scenario::input::read_regular_file(&args.wasm, oci::MAX_MODULE_BYTES)
        .map_err(|e| Exit::input(anyhow::anyhow!("{}: cannot read: {e}", args.wasm.display())))?;
    let image = Image::new(&module, &args.tag)
        .map_err(|e| Exit::input(anyhow::anyhow!("{}: {e}", args.wasm.display())))?;
    oci::write_layout(&image, &args.output).map_err(Exit::input)?;
    let dir = args.output.display();
    let text = if args.json {
        let v = serde_json::json!({
            "layout": dir.to_string(),
            "tag": image.tag,
            "manifest_digest": image.manifest.digest,
            "module_sha256": image.module_sha256,
            "module_bytes": module.len(),
        });
        format!("{v}\n")
    } else {
        format!(
            "{dir}: OCI image layout, tag {tag} ({bytes} bytes of wasm)\n\
             manifest digest: {manifest}\n  \
             pin an oci:// URL with it: sha256: {manifest_hex}\n\
             module sha256:   {module_sha}\n  \
             pin an https:// or http:// URL with it: sha256: {module_sha}\n",
            tag = image.tag,
            bytes = module.len(),
            manifest = image.manifest.digest,
            manifest_hex = image.manifest.hex(),
            module_sha = image.module_sha256,
        )
    };
    io::stdout(&text)?;
    Ok(0)
}
