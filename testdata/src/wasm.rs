//! Builds a workspace wasm package for tests and returns its `.wasm` path.
//!
//! Runs `cargo build --release --target wasm32-wasip1 -p <package>` from the
//! workspace root, once per package per test binary (a mutex serializes
//! parallel tests), so `cargo test` needs no separate build step.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());

/// The workspace root: the parent of `testdata/`.
pub fn workspace() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.pop();
    dir
}

/// Builds `package` for wasm32-wasip1 in release mode; returns the module.
pub fn build(package: &str) -> PathBuf {
    build_with(package, None)
}

/// As [`build`], with a cargo feature on, into its own target directory
/// (`target/feature-FEATURE/`), so the default build is never replaced by
/// a variant.
pub fn build_with(package: &str, feature: Option<&str>) -> PathBuf {
    let id = format!("{package}+{}", feature.unwrap_or(""));
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(&id) {
        return path.clone();
    }
    let root = workspace();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(&root).args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip1",
        "-p",
        package,
    ]);
    let default_target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let target = match feature {
        Some(f) => {
            let dir = default_target.join(format!("feature-{f}"));
            command.args(["--features", f, "--target-dir"]).arg(&dir);
            dir
        }
        None => default_target,
    };
    let status = command.status().expect("cargo runs");
    assert!(
        status.success(),
        "building {package} for wasm32-wasip1 failed"
    );
    let path = target
        .join("wasm32-wasip1/release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    assert!(
        path.is_file(),
        "{} is missing after the build",
        path.display()
    );
    built.insert(id, path.clone());
    path
}
