//! `laneway oci`, as `make oci` runs it. The layout it writes is read back
//! the way a registry client and Istio's puller read it: `index.json` →
//! the tagged manifest → its config and its one layer, every blob's digest
//! and size checked against its descriptor and its file name; the layer
//! unpacked (gzip, then tar) to `plugin.wasm`, which must be the module,
//! byte for byte, with the sha256 printed. When `python3` is there, its
//! `gzip` and `tarfile` unpack the layer too: a second reader that shares
//! no code with the writer.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use laneway_deploy::oci::{self, sha256_hex};
use serde_json::Value;

fn laneway(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_laneway"))
        .args(args)
        .output()
        .expect("the laneway binary runs")
}

/// `laneway oci --wasm WASM -o LAYOUT`, then `extra`.
fn oci(wasm: &Path, layout: &Path, extra: &[&str]) -> Output {
    let (wasm, layout) = (wasm.to_str().unwrap(), layout.to_str().unwrap());
    laneway(&[&["oci", "--wasm", wasm, "-o", layout][..], extra].concat())
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("laneway-oci-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A module of `n` bytes after the wasm header: more than one stored
/// deflate block (65,535 bytes each) when `n` is large.
fn module(n: usize) -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    m.extend((0..n).map(|i| (i * 7 % 251) as u8));
    m
}

fn json_file(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The blob a descriptor names, checked against its digest and size.
fn blob(layout: &Path, descriptor: &Value) -> Vec<u8> {
    let digest = descriptor["digest"].as_str().expect("a digest");
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let bytes = std::fs::read(layout.join("blobs/sha256").join(hex)).expect("the blob exists");
    assert_eq!(sha256_hex(&bytes), hex, "the blob's content is its digest");
    assert_eq!(
        Some(bytes.len() as u64),
        descriptor["size"].as_u64(),
        "{digest}: size"
    );
    bytes
}

/// Unpacks a gzip member whose deflate stream is stored blocks, checking
/// its CRC-32 and length.
fn gunzip_stored(gz: &[u8]) -> Vec<u8> {
    assert_eq!(&gz[..3], &[0x1f, 0x8b, 8], "gzip, deflate");
    assert_eq!(gz[3], 0, "no optional gzip fields");
    let mut at = 10;
    let mut out = Vec::new();
    loop {
        let header = gz[at];
        assert_eq!(
            header & 0b110,
            0,
            "a stored block (this reader reads no other)"
        );
        let len = u16::from_le_bytes([gz[at + 1], gz[at + 2]]);
        let nlen = u16::from_le_bytes([gz[at + 3], gz[at + 4]]);
        assert_eq!(len, !nlen, "LEN and NLEN agree");
        at += 5;
        out.extend_from_slice(&gz[at..at + usize::from(len)]);
        at += usize::from(len);
        if header & 1 == 1 {
            break;
        }
    }
    let crc = u32::from_le_bytes(gz[at..at + 4].try_into().unwrap());
    let size = u32::from_le_bytes(gz[at + 4..at + 8].try_into().unwrap());
    assert_eq!(at + 8, gz.len(), "nothing after the member");
    assert_eq!(crc, oci::crc32(&out), "CRC-32");
    assert_eq!(size as usize, out.len(), "ISIZE");
    out
}

/// The regular files of a ustar archive: `(name, content)`.
fn untar(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at..at + 512].iter().any(|&b| b != 0) {
        let h = &tar[at..at + 512];
        let text = |r: std::ops::Range<usize>| {
            String::from_utf8_lossy(&h[r])
                .trim_end_matches(['\0', ' '])
                .to_owned()
        };
        let mut blank = h.to_vec();
        blank[148..156].fill(b' ');
        let sum: u32 = blank.iter().map(|&b| u32::from(b)).sum();
        assert_eq!(
            u32::from_str_radix(&text(148..156), 8).unwrap(),
            sum,
            "header checksum"
        );
        assert_eq!(&h[257..263], b"ustar\0");
        let size = usize::from_str_radix(&text(124..136), 8).unwrap();
        assert_eq!(h[156], b'0', "a regular file");
        files.push((text(0..100), tar[at + 512..at + 512 + size].to_vec()));
        at += 512 + size.div_ceil(512) * 512;
    }
    files
}

#[test]
fn the_layout_reads_back_to_the_module() {
    let dir = scratch("layout");
    let wasm = dir.join("laneway_filter.wasm");
    let module = module(200_000);
    std::fs::write(&wasm, &module).unwrap();
    let layout = dir.join("oci/laneway");
    let out = oci(&wasm, &layout, &["--tag", "0.1.0", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");

    assert_eq!(
        json_file(&layout.join("oci-layout")),
        serde_json::json!({"imageLayoutVersion": "1.0.0"})
    );
    let index = json_file(&layout.join("index.json"));
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], oci::INDEX_MEDIA_TYPE);
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1);
    assert_eq!(
        manifests[0]["annotations"][oci::REF_NAME],
        "0.1.0",
        "oras and skopeo find it by tag"
    );
    assert_eq!(manifests[0]["mediaType"], oci::MANIFEST_MEDIA_TYPE);
    assert_eq!(manifests[0]["digest"], printed["manifest_digest"]);

    let manifest: Value = serde_json::from_slice(&blob(&layout, &manifests[0])).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], oci::MANIFEST_MEDIA_TYPE);
    assert_eq!(manifest["config"]["mediaType"], oci::CONFIG_MEDIA_TYPE);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "Istio's compat variant: exactly one layer");
    assert_eq!(layers[0]["mediaType"], oci::LAYER_MEDIA_TYPE);

    let config: Value = serde_json::from_slice(&blob(&layout, &manifest["config"])).unwrap();
    let tar = gunzip_stored(&blob(&layout, &layers[0]));
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        format!("sha256:{}", sha256_hex(&tar)),
        "diff_id: the tar's digest"
    );
    let files = untar(&tar);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, oci::WASM_FILE_NAME);
    assert!(
        files[0].1 == module,
        "plugin.wasm is the module, byte for byte"
    );
    assert_eq!(printed["module_sha256"], sha256_hex(&module));
    assert_eq!(printed["module_bytes"], module.len());

    // Nothing else in blobs/, and every blob is named by its digest.
    let mut names: Vec<String> = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut referenced: Vec<String> = [
        &manifests[0]["digest"],
        &manifest["config"]["digest"],
        &layers[0]["digest"],
    ]
    .iter()
    .map(|d| d.as_str().unwrap().trim_start_matches("sha256:").to_owned())
    .collect();
    referenced.sort();
    assert_eq!(names, referenced);

    // A second, independent reader.
    let layer = layout.join("blobs/sha256").join(
        layers[0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    let py = Command::new("python3")
        .args(["-c", "import sys,tarfile,hashlib; t=tarfile.open(sys.argv[1],'r:gz'); print(hashlib.sha256(t.extractfile('plugin.wasm').read()).hexdigest())"])
        .arg(&layer)
        .output();
    match py {
        Ok(o) if o.status.success() => {
            assert_eq!(
                String::from_utf8_lossy(&o.stdout).trim(),
                sha256_hex(&module),
                "python's tarfile reads it too"
            );
        }
        Ok(o) => panic!(
            "python3 could not read the layer: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => eprintln!("python3 not run ({e}): only the built-in reader checked the layer"),
    }

    // The same module and tag, the same layout: a rebuild pins the same digest.
    let again = oci(&wasm, &layout, &["--tag", "0.1.0", "--json"]);
    assert_eq!(again.stdout, out.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_text_report_says_which_digest_pins_which_url() {
    let dir = scratch("text");
    let wasm = dir.join("m.wasm");
    std::fs::write(&wasm, module(10)).unwrap();
    let out = oci(&wasm, &dir.join("l"), &[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("tag {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(
        text.contains("manifest digest: sha256:") && text.contains("pin an oci:// URL"),
        "{text}"
    );
    assert!(
        text.contains(&format!("module sha256:   {}", sha256_hex(&module(10)))),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn what_istio_would_not_load_exits_2() {
    let dir = scratch("bad");
    let not_wasm = dir.join("x.wasm");
    std::fs::write(&not_wasm, b"#!/bin/sh\n").unwrap();
    let out = oci(&not_wasm, &dir.join("l"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a wasm binary"));
    assert!(!dir.join("l").exists(), "nothing written");
    let wasm = dir.join("m.wasm");
    std::fs::write(&wasm, module(1)).unwrap();
    let out = oci(&wasm, &dir.join("l"), &["--tag", "no tag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not 1 to 128"));
    let _ = std::fs::remove_dir_all(&dir);
}
