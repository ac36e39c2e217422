//! Real call chains from distributed traces.
//!
//! [`import`] streams OTLP, Jaeger and Zipkin JSON files ([`read`]) into
//! one span model ([`model`]), closes traces into call trees and groups
//! them into chain templates with counts ([`assemble`]), judges what the
//! data shows about lost routing keys and misrouted calls ([`findings`]),
//! and writes a scenario that `laneway replay` runs as it stands
//! ([`scenario`]).
//!
//! Memory is bounded by the window of open spans (about 100 bytes each),
//! not by the input's size; see the limits in [`assemble`] and [`lex`].

pub mod assemble;
pub mod findings;
pub mod lex;
pub mod model;
pub mod read;
pub mod scenario;

use std::fs::File;
use std::io::Read;
use std::path::Path;

pub use assemble::{Assembler, Chains, DEFAULT_WINDOW, Mess, Template};
pub use findings::{Findings, Fork, Lost, Misrouted, findings};
pub use model::{Strings, Warning};
pub use read::{FileStats, Format, Names, ReadError};

/// How to import.
#[derive(Clone, Debug)]
pub struct Options {
    /// The input format.
    pub format: Format,
    /// Attribute names of the routing key.
    pub names: Names,
    /// Open spans at most.
    pub window: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            format: Format::Auto,
            names: Names::default(),
            window: DEFAULT_WINDOW,
        }
    }
}

/// A file that could not be read, and where.
#[derive(Debug)]
pub struct ImportError {
    /// The file.
    pub file: String,
    /// Where and why.
    pub reason: String,
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.reason)
    }
}

impl std::error::Error for ImportError {}

/// Everything imported.
#[derive(Debug)]
pub struct Import {
    /// The chains and what was seen.
    pub chains: Chains,
    /// The interned strings the chains point into.
    pub strings: Strings,
    /// Each file and what it held.
    pub files: Vec<(String, FileStats)>,
}

/// Reads `files` (`-` is standard input) in order.
pub fn import(files: &[String], options: &Options) -> Result<Import, ImportError> {
    let mut strings = Strings::default();
    let mut asm = Assembler::new(options.window);
    let mut stats = Vec::new();
    for file in files {
        let fail = |reason: String| ImportError {
            file: file.clone(),
            reason,
        };
        let src: Box<dyn Read> = if file == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            let path = Path::new(file);
            if path.is_dir() {
                return Err(fail("is a directory, not a trace file".into()));
            }
            Box::new(File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?)
        };
        let s = read::read(src, options.format, &options.names, &mut strings, &mut asm)
            .map_err(|e| fail(e.to_string()))?;
        if s.documents == 0 {
            return Err(fail("byte 0: empty: no JSON document in it".into()));
        }
        stats.push((file.clone(), s));
    }
    let chains = asm.finish(&strings);
    Ok(Import {
        chains,
        strings,
        files: stats,
    })
}

/// One line per kind of mess the input had, saying what was done.
pub fn warnings(import: &Import, window: usize) -> Vec<String> {
    let m = &import.chains.mess;
    let mut out = Vec::new();
    let mut say = |n: u64, what: &str| {
        if n > 0 {
            out.push(format!("{n} {what}"));
        }
    };
    for (w, &n) in &m.read {
        say(
            n,
            match w {
                Warning::UnknownProcess => {
                    "Jaeger span(s) named a process their trace does not list: their service is named unknown-process-ID"
                }
                Warning::NoId => "span(s) had no trace id or span id: left out",
                Warning::NoService => "span(s) had no service name: their service is named unknown",
                Warning::BadKind => {
                    "span(s) had a kind that is not one of OpenTelemetry's: taken as unspecified (in-process)"
                }
                Warning::TooManyStrings => {
                    "attribute value(s) past the limit of 1,000,000 distinct strings: dropped"
                }
            },
        );
    }
    say(
        m.duplicates,
        "duplicate span(s) (same id and kind): the later copies left out",
    );
    say(
        m.orphans,
        "orphan span(s) (parent not in the trace): attached to the trace's root",
    );
    say(
        m.extra_roots,
        "trace(s) had several roots: the later roots attached to the earliest",
    );
    say(
        m.skewed_traces,
        "trace(s) had clock skew (a child starting before its parent or ending after it): the tree follows parent links, children are ordered by their recorded start",
    );
    say(m.cycles, "span(s) in parent cycles: left out");
    say(
        m.late,
        &format!(
            "span(s) came after their trace was closed (more than {window} spans open; raise --window): left out"
        ),
    );
    say(
        m.evicted,
        &format!("trace(s) closed early because more than {window} spans were open"),
    );
    say(m.oversized, "span(s) past 100,000 in one trace: left out");
    say(m.too_deep, "call(s) nested deeper than 64: cut");
    say(
        m.unnamed_calls,
        "client span(s) that nothing answered name no callee: not calls",
    );
    say(
        m.untemplated,
        "trace(s) of chains past 10,000 distinct ones: counted, not written",
    );
    say(
        m.empty,
        "trace(s) had no call (only gateway or in-process spans): left out",
    );
    out
}

#[cfg(test)]
mod tests;
