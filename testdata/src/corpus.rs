//! The table tests in `testdata/` (schema: `testdata/README.md`), as
//! typed cases. Unknown fields are refused; names are unique per kind.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The repository's `testdata/` folder: this crate's own directory.
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One header line: text, or parts concatenated (for long inputs).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Line {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Part {
    Text(String),
    /// `repeat` written `times` times; `{i}` becomes the 0-based repetition.
    Repeat {
        repeat: String,
        times: usize,
    },
}

impl Line {
    pub fn expand(&self) -> Vec<u8> {
        match self {
            Line::Text(t) => t.clone().into_bytes(),
            Line::Parts(parts) => {
                let mut out = String::new();
                for p in parts {
                    match p {
                        Part::Text(t) => out.push_str(t),
                        Part::Repeat { repeat, times } => {
                            for i in 0..*times {
                                out.push_str(&repeat.replace("{i}", &i.to_string()));
                            }
                        }
                    }
                }
                out.into_bytes()
            }
        }
    }
}

pub fn expand(lines: &[Line]) -> Vec<Vec<u8>> {
    lines.iter().map(Line::expand).collect()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedMember {
    pub key: String,
    pub value: String,
    pub properties: Option<Vec<String>>,
}

/// A case in `baggage/` or `tracestate/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParseCase {
    pub name: String,
    #[serde(default)]
    pub baggage: Vec<Line>,
    #[serde(default)]
    pub tracestate: Vec<Line>,
    pub members: Option<Vec<ExpectedMember>>,
    pub member_count: Option<usize>,
    pub invalid: Option<usize>,
    pub invalid_reasons: Option<Vec<String>>,
    pub dropped: Option<String>,
    pub valid: Option<bool>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedRegex {
    pub key: String,
    pub matches: bool,
}

/// A case in `routing/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingCase {
    pub name: String,
    /// Filled from the file's `config` when absent.
    pub config: Option<String>,
    pub authority: String,
    #[serde(default)]
    pub baggage: Vec<Line>,
    #[serde(default)]
    pub tracestate: Vec<Line>,
    pub route: Option<String>,
    pub reason: Option<String>,
    pub key: Option<String>,
    pub carrier: Option<String>,
    pub member: Option<String>,
    pub authority_out: Option<String>,
    pub seed_regex: Option<SeedRegex>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedError {
    pub path: String,
    pub reason: String,
}

/// A case in `config-errors/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigCase {
    pub name: String,
    pub config: String,
    pub errors: Vec<ExpectedError>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File<T> {
    config: Option<String>,
    test: Vec<T>,
}

/// Every `*.toml` in `testdata/<group>/`, sorted, with its cases.
fn load<T: for<'de> Deserialize<'de>>(group: &str) -> Vec<(String, Option<String>, Vec<T>)> {
    let dir = testdata().join(group);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no cases in {}", dir.display());
    paths
        .into_iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let file: File<T> =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (display(&p), file.config, file.test)
        })
        .collect()
}

fn display(p: &Path) -> String {
    p.strip_prefix(testdata().parent().expect("testdata has a parent"))
        .unwrap_or(p)
        .display()
        .to_string()
}

fn unique<'a>(kind: &str, names: impl Iterator<Item = &'a str>) {
    let mut seen = BTreeSet::new();
    for n in names {
        assert!(
            seen.insert(n.to_owned()),
            "duplicate {kind} test name {n:?}"
        );
    }
}

/// `(file, case)` for every baggage or tracestate parse case.
pub fn parse_cases(group: &str) -> Vec<(String, ParseCase)> {
    let files = load::<ParseCase>(group);
    let cases: Vec<_> = files
        .into_iter()
        .flat_map(|(f, _, tests)| tests.into_iter().map(move |t| (f.clone(), t)))
        .collect();
    unique(group, cases.iter().map(|(_, c)| c.name.as_str()));
    cases
}

/// `(file, case)` for every routing case, with `config` filled in.
pub fn routing_cases() -> Vec<(String, RoutingCase)> {
    let files = load::<RoutingCase>("routing");
    let mut cases = Vec::new();
    for (f, default_config, tests) in files {
        for mut t in tests {
            if t.config.is_none() {
                t.config = default_config.clone();
            }
            assert!(t.config.is_some(), "{f}: {}: no config", t.name);
            cases.push((f.clone(), t));
        }
    }
    unique("routing", cases.iter().map(|(_, c)| c.name.as_str()));
    cases
}

/// `(file, case)` for every configuration error case.
pub fn config_cases() -> Vec<(String, ConfigCase)> {
    let files = load::<ConfigCase>("config-errors");
    let cases: Vec<_> = files
        .into_iter()
        .flat_map(|(f, _, tests)| tests.into_iter().map(move |t| (f.clone(), t)))
        .collect();
    unique("config-errors", cases.iter().map(|(_, c)| c.name.as_str()));
    cases
}

/// The text of `testdata/configs/<name>`.
pub fn config_text(name: &str) -> String {
    let p = testdata().join("configs").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A chain of calls and how many traces of a file have it (notation:
/// `testdata/traces/README.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainCount {
    pub chain: String,
    pub count: u64,
}

/// One call of a trace, as the callee's entry span saw it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceHop {
    /// The trace id, lowercase hex.
    pub trace: String,
    /// `CALLER->CALLEE` (`ingress->SERVICE` for the root).
    pub call: String,
    /// The routing key the callee's span carried (`""`: none).
    pub key: String,
    /// The callee's `k8s.deployment.name`.
    pub deployment: String,
}

/// A file in `traces/` and what an importer must find in it
/// (`traces/expected.toml`; sparse: an absent field is not checked).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceFile {
    /// Relative to `testdata/traces/`.
    pub path: String,
    /// `otlp`, `otlp-jsonl`, `jaeger` or `zipkin` (absent when broken
    /// beyond telling).
    pub format: Option<String>,
    pub traces: Option<u64>,
    /// Distinct spans (a span written twice counts once).
    pub spans: Option<u64>,
    /// Span objects in the file, duplicates included.
    pub records: Option<u64>,
    /// Spans whose parent is not in the file.
    pub orphans: Option<u64>,
    #[serde(default)]
    pub chains: Vec<ChainCount>,
    /// The chains as `laneway import` writes them, where its rules read
    /// the file differently from the raw tree in `chains`: Istio names
    /// mapped (the gateway is the ingress), orphans attached to the
    /// root, messages marked with their system. Absent: as `chains`.
    #[serde(default)]
    pub imported: Vec<ChainCount>,
    /// Every call of the file, when given.
    #[serde(default)]
    pub hops: Vec<TraceHop>,
    /// Broken files: what the importer must report (exit 2).
    pub error: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceFiles {
    file: Vec<TraceFile>,
}

/// Every file of `traces/expected.toml`; paths are unique.
pub fn trace_files() -> Vec<TraceFile> {
    let p = testdata().join("traces").join("expected.toml");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let files: TraceFiles =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    unique("traces", files.file.iter().map(|f| f.path.as_str()));
    files.file
}

/// Every scenario that replays: `scenarios/*.yaml` and
/// `scenarios/failing/*.yaml`, sorted.
pub fn scenario_files() -> Vec<std::path::PathBuf> {
    let root = testdata().join("scenarios");
    let mut all = Vec::new();
    for dir in [root.clone(), root.join("failing")] {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for e in entries {
            let p = e
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path();
            if p.extension().is_some_and(|x| x == "yaml") {
                all.push(p);
            }
        }
    }
    all.sort();
    all
}
