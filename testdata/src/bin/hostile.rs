//! Writes one generated hostile input to a file, for measuring by hand or
//! from the Makefile (`make bench-validate`):
//!
//! ```text
//! hostile config N FILE          N sandboxes
//! hostile many-sandboxes N FILE  a scenario with N sandboxes
//! ```

use std::process::ExitCode;

use laneway_testdata::hostile;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, n, file] = args.as_slice() else {
        eprintln!("usage: hostile config|many-sandboxes N FILE");
        return ExitCode::from(2);
    };
    let Ok(n) = n.parse::<usize>() else {
        eprintln!("hostile: {n}: not a count");
        return ExitCode::from(2);
    };
    let text = match kind.as_str() {
        "config" => hostile::config(n),
        "many-sandboxes" => hostile::many_sandboxes(n, 1),
        other => {
            eprintln!("hostile: unknown kind {other:?}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::write(file, text) {
        eprintln!("hostile: {file}: {e}");
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
