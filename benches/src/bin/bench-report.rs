//! `bench-report`: prints the ratio tables of the last criterion run
//! (`target/criterion/`), for BENCHMARKS.md and CI logs.

use std::path::PathBuf;

fn main() {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/criterion"));
    if !root.is_dir() {
        eprintln!(
            "bench-report: {}: no criterion results (run `make bench` first)",
            root.display()
        );
        std::process::exit(2);
    }
    print!("{}", laneway_benches::summary::markdown(&root));
}
