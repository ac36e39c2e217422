//! `laneway_filter.wasm` as an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/…`), in a format Istio's agent pulls for an
//! `oci://` URL, ready for `oras copy --from-oci-layout` or `skopeo copy
//! oci:…`.
//!
//! Which format: Istio's puller (istio/istio `pkg/wasm/imagefetcher.go`)
//! reads a Docker image, the *compat* variant of solo.io's Wasm image
//! spec (an OCI image of exactly one `application/vnd.oci.image.layer.v1.tar+gzip`
//! layer holding a file named `plugin.wasm`), or that spec's *oci*
//! variant (two layers, one `application/vnd.module.wasm.content.layer.v1+wasm`).
//! It does not read the CNCF Wasm artifact
//! (`application/vnd.wasm.content.layer.v1+wasm`). This writes the compat
//! variant: a plain image, which every registry and tool handles.
//!
//! Which digest: for `oci://`, Istio compares a WasmPlugin's `sha256` with
//! the image's *manifest* digest; for `http(s)://`, with the module's own
//! sha256. [`Image`] gives both.
//!
//! Deterministic: the same module and tag give the same bytes (tar mtime
//! 0, owner 0, mode 0644; gzip without a timestamp, its deflate stream of
//! stored blocks, so no compressor is needed; JSON in a fixed key order).
//! Only [`write_layout`] does I/O.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest, Sha256};

/// The largest module, as the simulator's host (64 MiB).
pub const MAX_MODULE_BYTES: u64 = 64 << 20;
/// The file in the layer that Istio's puller looks for.
pub const WASM_FILE_NAME: &str = "plugin.wasm";
/// `index.json`'s media type.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The manifest's media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The image config's media type.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The one layer's media type (the compat variant).
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The annotation that names a manifest's tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Why no image was made or written.
#[derive(Debug)]
pub enum OciError {
    /// The module does not start with the Wasm magic (`\0asm` and a
    /// version), which Istio checks after pulling.
    NotWasm,
    /// The module is larger than [`MAX_MODULE_BYTES`].
    TooLarge(usize),
    /// The tag is not `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
    BadTag(String),
    /// A file of the layout could not be written.
    Io(PathBuf, std::io::Error),
}

impl fmt::Display for OciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OciError::NotWasm => write!(f, "not a wasm binary (no \\0asm header)"),
            OciError::TooLarge(n) => write!(
                f,
                "is {n} bytes; a module may be at most {MAX_MODULE_BYTES} bytes"
            ),
            OciError::BadTag(t) => write!(
                f,
                "tag {t:?} is not 1 to 128 of A-Z a-z 0-9 _ . -, starting with a letter, digit or _"
            ),
            OciError::Io(path, e) => write!(f, "{}: cannot write: {e}", path.display()),
        }
    }
}

impl std::error::Error for OciError {}

/// A content-addressed blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    /// Its media type, as its descriptor gives it.
    pub media_type: &'static str,
    /// `sha256:HEX`.
    pub digest: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl Blob {
    fn new(media_type: &'static str, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type,
            digest: format!("sha256:{}", sha256_hex(&bytes)),
            bytes,
        }
    }

    /// The hex digits of the digest.
    pub fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }

    fn descriptor(&self) -> serde_json::Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.bytes.len()})
    }
}

/// The image: its blobs, its `index.json`, and the two checksums a
/// WasmPlugin may pin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The image config.
    pub config: Blob,
    /// The one layer: a gzipped tar of [`WASM_FILE_NAME`].
    pub layer: Blob,
    /// The manifest; its digest is what `sha256` pins for `oci://`.
    pub manifest: Blob,
    /// `index.json`: the manifest, tagged.
    pub index: Vec<u8>,
    /// The module's sha256 (hex): what `sha256` pins for `http(s)://`.
    pub module_sha256: String,
    /// The tag.
    pub tag: String,
}

impl Image {
    /// The image of `module`, tagged `tag` in the index.
    pub fn new(module: &[u8], tag: &str) -> Result<Image, OciError> {
        if module.len() as u64 > MAX_MODULE_BYTES {
            return Err(OciError::TooLarge(module.len()));
        }
        if module.len() < 8 || &module[..4] != b"\0asm" {
            return Err(OciError::NotWasm);
        }
        if !is_tag(tag) {
            return Err(OciError::BadTag(tag.to_owned()));
        }
        let tar = tar(WASM_FILE_NAME, module);
        let diff_id = format!("sha256:{}", sha256_hex(&tar));
        let layer = Blob::new(LAYER_MEDIA_TYPE, gzip_stored(&tar));
        let config = json!({
            "architecture": "wasm",
            "os": "wasip1",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        });
        let config = Blob::new(CONFIG_MEDIA_TYPE, to_bytes(&config));
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": config.descriptor(),
            "layers": [layer.descriptor()],
        });
        let manifest = Blob::new(MANIFEST_MEDIA_TYPE, to_bytes(&manifest));
        let mut entry = manifest.descriptor();
        entry["annotations"] = json!({REF_NAME: tag});
        let index = json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": [entry],
        });
        Ok(Image {
            config,
            layer,
            manifest,
            index: to_bytes(&index),
            module_sha256: sha256_hex(module),
            tag: tag.to_owned(),
        })
    }

    /// Every blob: config, layer, manifest.
    pub fn blobs(&self) -> [&Blob; 3] {
        [&self.config, &self.layer, &self.manifest]
    }
}

/// Writes `image` as an OCI image layout in `dir` (created if missing):
/// the blobs, then `oci-layout`, then `index.json` last, so a layout cut
/// short has no index. Blobs already there are content-addressed and are
/// left; an older `index.json` is replaced.
pub fn write_layout(image: &Image, dir: &Path) -> Result<(), OciError> {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| OciError::Io(blobs.clone(), e))?;
    let write = |path: PathBuf, bytes: &[u8]| {
        std::fs::write(&path, bytes).map_err(|e| OciError::Io(path, e))
    };
    for blob in image.blobs() {
        write(blobs.join(blob.hex()), &blob.bytes)?;
    }
    write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    write(dir.join("index.json"), &image.index)
}

/// The sha256 of `bytes`, in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn to_bytes(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Whether `t` is a tag OCI tools accept.
fn is_tag(t: &str) -> bool {
    let b = t.as_bytes();
    (1..=128).contains(&b.len())
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// A POSIX ustar archive of one regular file `name` (at most 100 bytes)
/// holding `data`: mode 0644, owner 0:0, mtime 0.
fn tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let mut field = |at: usize, value: &[u8]| header[at..at + value.len()].copy_from_slice(value);
    field(0, name.as_bytes());
    field(100, b"0000644\0");
    field(108, b"0000000\0");
    field(116, b"0000000\0");
    field(124, format!("{:011o}\0", data.len()).as_bytes());
    field(136, b"00000000000\0");
    field(148, b"        ");
    field(156, b"0");
    field(257, b"ustar\0");
    field(263, b"00");
    field(329, b"0000000\0");
    field(337, b"0000000\0");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let padded = data.len().div_ceil(512) * 512;
    let mut out = Vec::with_capacity(512 + padded + 1024);
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out.resize(512 + padded + 1024, 0);
    out
}

/// `data` as a gzip member (RFC 1952) with no timestamp, whose deflate
/// stream (RFC 1951) is stored blocks of at most 65,535 bytes.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    const MAX_STORED: usize = 0xffff;
    let mut out = Vec::with_capacity(data.len() + data.len() / MAX_STORED * 5 + 32);
    // ID1 ID2, CM = deflate, FLG = 0, MTIME = 0, XFL = 0, OS = unknown.
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    let mut chunks = data.chunks(MAX_STORED).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        // BFINAL on the last block, BTYPE = 00 (stored); the rest of the
        // byte is padding up to the block's length fields.
        out.push(u8::from(chunks.peek().is_none()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// CRC-32 (IEEE 802.3, reflected), as gzip's trailer has it.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !data.iter().fold(!0u32, |c, &b| {
        TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn refuses_what_istio_would_not_load() {
        assert!(matches!(
            Image::new(b"not wasm", "1"),
            Err(OciError::NotWasm)
        ));
        let module = b"\0asm\x01\0\0\0";
        assert!(matches!(Image::new(module, ""), Err(OciError::BadTag(_))));
        assert!(matches!(Image::new(module, "-x"), Err(OciError::BadTag(_))));
        assert!(Image::new(module, "0.1.0").is_ok());
    }

    #[test]
    fn the_same_module_and_tag_give_the_same_bytes() {
        let module = b"\0asm\x01\0\0\0rest";
        assert_eq!(
            Image::new(module, "t").unwrap(),
            Image::new(module, "t").unwrap()
        );
        // The tag lives in the index only: retagging keeps the digest.
        assert_eq!(
            Image::new(module, "a").unwrap().manifest,
            Image::new(module, "b").unwrap().manifest
        );
    }

    #[test]
    fn tar_is_ustar_with_a_valid_checksum() {
        let t = tar("plugin.wasm", &[7u8; 600]);
        assert_eq!(t.len(), 512 + 1024 + 1024);
        assert_eq!(&t[257..263], b"ustar\0");
        let mut h = t[..512].to_vec();
        let stored = u32::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        h[148..156].fill(b' ');
        assert_eq!(stored, h.iter().map(|&b| u32::from(b)).sum::<u32>());
    }
}
