//! The generators against a naive reader, and the hand-written files of
//! `traces/` against `traces/expected.toml`, through the same reader.
//!
//! The reader is an oracle, not an importer: it reads each format with
//! `serde_json::Value`, flattens every span to [`Flat`], and walks the
//! tree the obvious way (notation: `traces/README.md`). It pins what the
//! files claim, so a wrong expectation or a generator that lies fails here
//! before it misleads an importer's tests.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use super::*;
use crate::corpus::{TraceFile, trace_files};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum K {
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

/// A span, whatever the format.
#[derive(Debug, Clone)]
struct Flat {
    trace: String,
    id: String,
    parent: Option<String>,
    service: String,
    kind: K,
    /// For ordering calls only (ns, or µs: one unit per file).
    start: u64,
    /// `peer.service`, else `server.address`, `net.peer.name`, `db.system`;
    /// Zipkin: the remote endpoint's service name.
    peer: Option<String>,
    /// `sd-routing-key` or `baggage.sd-routing-key`.
    key: Option<String>,
    /// `k8s.deployment.name` of the resource or process.
    deployment: Option<String>,
}

type Read = Result<Vec<Flat>, String>;

fn s(v: &Value) -> Option<&str> {
    v.as_str()
}

fn arr<'v>(v: &'v Value, what: &str) -> Result<&'v Vec<Value>, String> {
    v.as_array().ok_or_else(|| format!("{what}: not an array"))
}

/// OTLP attributes (or Jaeger tags) to `(key, value as text)`.
fn attrs(list: Option<&Value>) -> Result<Vec<(String, String)>, String> {
    let Some(list) = list else { return Ok(vec![]) };
    let mut out = vec![];
    for a in arr(list, "attributes")? {
        let key = a["key"].as_str().ok_or("attribute without key")?.to_owned();
        let v = &a["value"];
        let text = match v {
            Value::Object(o) => o
                .values()
                .next()
                .map(|x| x.as_str().map_or(x.to_string(), str::to_owned))
                .unwrap_or_default(),
            Value::String(t) => t.clone(),
            other => other.to_string(),
        };
        out.push((key, text));
    }
    Ok(out)
}

fn get<'a>(a: &'a [(String, String)], key: &str) -> Option<&'a str> {
    a.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn peer(a: &[(String, String)]) -> Option<String> {
    [
        "peer.service",
        "server.address",
        "net.peer.name",
        "db.system",
    ]
    .iter()
    .find_map(|k| get(a, k))
    .map(str::to_owned)
}

fn key(a: &[(String, String)]) -> Option<String> {
    get(a, "sd-routing-key")
        .or_else(|| get(a, "baggage.sd-routing-key"))
        .map(str::to_owned)
}

fn base64(t: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = vec![];
    for c in t.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        bits = bits << 6 | v as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    Some(out)
}

/// An id in hex (16 or 32 digits) or base64 (8 or 16 bytes), as lowercase
/// hex; `""` is none.
fn id(v: &Value, bytes: usize) -> Result<Option<String>, String> {
    let Some(t) = v.as_str() else {
        return if v.is_null() {
            Ok(None)
        } else {
            Err(format!("id {v}: not a string"))
        };
    };
    if t.is_empty() {
        return Ok(None);
    }
    if t.len() == 2 * bytes && t.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Ok(Some(t.to_ascii_lowercase()));
    }
    match base64(t) {
        Some(b) if b.len() == bytes => Ok(Some(b.iter().map(|x| format!("{x:02x}")).collect())),
        _ => Err(format!("id {t:?}: neither hex nor base64 of {bytes} bytes")),
    }
}

fn time(v: &Value) -> Result<u64, String> {
    match v {
        Value::String(t) => t.parse().map_err(|_| format!("time {t:?}")),
        Value::Number(n) => n.as_u64().ok_or_else(|| format!("time {n}")),
        other => Err(format!("time {other}: not a number")),
    }
}

fn otlp(doc: &Value) -> Read {
    let list = doc
        .get("resourceSpans")
        .or_else(|| doc.get("batches"))
        .or_else(|| doc.get("result").and_then(|r| r.get("resourceSpans")))
        .ok_or("no resourceSpans, batches or result.resourceSpans")?;
    let mut out = vec![];
    for rs in arr(list, "resourceSpans")? {
        let res = attrs(rs.get("resource").and_then(|r| r.get("attributes")))?;
        let service = get(&res, "service.name").unwrap_or("?").to_owned();
        let deployment = get(&res, "k8s.deployment.name").map(str::to_owned);
        let scopes = rs
            .get("scopeSpans")
            .or_else(|| rs.get("instrumentationLibrarySpans"))
            .ok_or("no scopeSpans")?;
        for sc in arr(scopes, "scopeSpans")? {
            for sp in arr(&sc["spans"], "spans")? {
                let a = attrs(sp.get("attributes"))?;
                let kind = match &sp["kind"] {
                    Value::Number(n) => n.as_u64().unwrap_or(0),
                    Value::String(t) => [
                        "SPAN_KIND_UNSPECIFIED",
                        "SPAN_KIND_INTERNAL",
                        "SPAN_KIND_SERVER",
                        "SPAN_KIND_CLIENT",
                        "SPAN_KIND_PRODUCER",
                        "SPAN_KIND_CONSUMER",
                    ]
                    .iter()
                    .position(|k| k == t)
                    .ok_or_else(|| format!("kind {t:?}"))?
                        as u64,
                    _ => 0,
                };
                out.push(Flat {
                    trace: id(&sp["traceId"], 16)?.ok_or("no traceId")?,
                    id: id(&sp["spanId"], 8)?.ok_or("no spanId")?,
                    parent: id(&sp["parentSpanId"], 8)?,
                    service: service.clone(),
                    kind: [
                        K::Internal,
                        K::Internal,
                        K::Server,
                        K::Client,
                        K::Producer,
                        K::Consumer,
                    ][kind.min(5) as usize],
                    start: time(&sp["startTimeUnixNano"])?,
                    peer: peer(&a),
                    key: key(&a),
                    deployment: deployment.clone(),
                });
            }
        }
    }
    Ok(out)
}

fn jaeger(doc: &Value) -> Read {
    let traces = match doc.get("data") {
        Some(d) => arr(d, "data")?.iter().collect::<Vec<_>>(),
        None => vec![doc],
    };
    let mut out = vec![];
    for t in traces {
        let procs = t["processes"].as_object().ok_or("no processes")?;
        for sp in arr(&t["spans"], "spans")? {
            let tags = attrs(sp.get("tags"))?;
            let proc = sp["processID"].as_str().and_then(|p| procs.get(p));
            let ptags = attrs(proc.and_then(|p| p.get("tags")))?;
            let parent = sp["references"]
                .as_array()
                .and_then(|r| r.first())
                .map(|r| r["spanID"].clone())
                .unwrap_or(Value::Null);
            out.push(Flat {
                trace: sp["traceID"].as_str().ok_or("no traceID")?.to_owned(),
                id: sp["spanID"].as_str().ok_or("no spanID")?.to_owned(),
                parent: parent.as_str().map(str::to_owned),
                service: proc
                    .and_then(|p| s(&p["serviceName"]))
                    .unwrap_or("?")
                    .to_owned(),
                kind: match get(&tags, "span.kind") {
                    Some("server") => K::Server,
                    Some("client") => K::Client,
                    Some("producer") => K::Producer,
                    Some("consumer") => K::Consumer,
                    _ => K::Internal,
                },
                start: time(&sp["startTime"])?,
                peer: peer(&tags),
                key: key(&tags),
                deployment: get(&ptags, "k8s.deployment.name").map(str::to_owned),
            });
        }
    }
    Ok(out)
}

fn zipkin(doc: &Value) -> Read {
    let mut spans: Vec<&Value> = vec![];
    for v in arr(doc, "spans")? {
        match v {
            Value::Array(trace) => spans.extend(trace),
            span => spans.push(span),
        }
    }
    let clients: BTreeSet<(&str, &str)> = spans
        .iter()
        .filter(|v| v["kind"] == "CLIENT")
        .filter_map(|v| Some((v["traceId"].as_str()?, v["id"].as_str()?)))
        .collect();
    let mut out = vec![];
    for v in spans {
        let trace = v["traceId"].as_str().ok_or("no traceId")?;
        let sid = v["id"].as_str().ok_or("no id")?;
        let kind = match v["kind"].as_str() {
            Some("SERVER") => K::Server,
            Some("CLIENT") => K::Client,
            Some("PRODUCER") => K::Producer,
            Some("CONSUMER") => K::Consumer,
            _ => K::Internal,
        };
        let mut parent = v["parentId"].as_str().map(str::to_owned);
        let mut id = sid.to_owned();
        // A shared span: the server half of the client's id, its child.
        if kind == K::Server && clients.contains(&(trace, sid)) {
            parent = Some(id.clone());
            id.push_str("#server");
        }
        let tags: Vec<(String, String)> = v["tags"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, x)| (k.clone(), x.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        out.push(Flat {
            trace: trace.to_owned(),
            id,
            parent,
            service: s(&v["localEndpoint"]["serviceName"])
                .unwrap_or("?")
                .to_owned(),
            kind,
            start: time(&v["timestamp"])?,
            peer: s(&v["remoteEndpoint"]["serviceName"])
                .map(str::to_owned)
                .or_else(|| peer(&tags)),
            key: key(&tags),
            deployment: None,
        });
    }
    // A child of a shared span names the shared id: its parent is the half
    // in its own service.
    let servers: BTreeMap<(String, String), String> = out
        .iter()
        .filter_map(|f| {
            let id = f.id.strip_suffix("#server")?;
            Some(((f.trace.clone(), id.to_owned()), f.service.clone()))
        })
        .collect();
    for f in &mut out {
        if let Some(p) = &f.parent
            && servers.get(&(f.trace.clone(), p.clone())) == Some(&f.service)
            && !f.id.ends_with("#server")
        {
            f.parent = Some(format!("{p}#server"));
        }
    }
    Ok(out)
}

/// Every span of a file (`records`: duplicates included).
fn read(format: &str, bytes: &[u8]) -> Read {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let parse = |t: &str| serde_json::from_str::<Value>(t).map_err(|e| e.to_string());
    match format {
        "otlp-jsonl" => {
            let mut out = vec![];
            for line in text.lines().filter(|l| !l.is_empty()) {
                out.extend(otlp(&parse(line)?)?);
            }
            Ok(out)
        }
        "otlp" => otlp(&parse(text)?),
        "jaeger" => jaeger(&parse(text)?),
        "zipkin" => zipkin(&parse(text)?),
        other => Err(format!("unknown format {other}")),
    }
}

/// What the oracle finds in a file.
#[derive(Debug, Default)]
struct Found {
    records: u64,
    spans: u64,
    traces: u64,
    orphans: u64,
    chains: BTreeMap<String, u64>,
    /// `(trace, CALLER->CALLEE, key, deployment)`.
    hops: Vec<(String, String, String, String)>,
}

struct Tree<'a> {
    spans: Vec<&'a Flat>,
    children: HashMap<usize, Vec<usize>>,
    hops: Vec<(String, String, String, String)>,
}

impl Tree<'_> {
    fn kids(&self, i: usize) -> &[usize] {
        self.children.get(&i).map_or(&[], Vec::as_slice)
    }

    /// `i` entered its service from `caller`: the service and its calls.
    fn entry(&mut self, i: usize, caller: &str) -> String {
        let sp = self.spans[i];
        self.hops.push((
            sp.trace.clone(),
            format!("{caller}->{}", sp.service),
            sp.key.clone().unwrap_or_default(),
            sp.deployment.clone().unwrap_or_default(),
        ));
        let calls = match sp.kind {
            K::Client | K::Producer => self.callee(i),
            _ => self.calls(i, &sp.service.clone()),
        };
        render(&sp.service, &calls)
    }

    /// The calls made below `i` within `svc`.
    fn calls(&mut self, i: usize, svc: &str) -> Vec<String> {
        let mut out = vec![];
        for c in self.kids(i).to_vec() {
            let sp = self.spans[c];
            if sp.service != svc {
                out.push(self.entry(c, svc));
                continue;
            }
            match sp.kind {
                K::Client | K::Producer => out.extend(self.callee(c)),
                K::Server | K::Consumer => out.push(self.entry(c, svc)),
                K::Internal => out.extend(self.calls(c, svc)),
            }
        }
        out
    }

    /// What the CLIENT or PRODUCER span `c` called: its SERVER or CONSUMER
    /// children, else the uninstrumented peer it names.
    fn callee(&mut self, c: usize) -> Vec<String> {
        let caller = self.spans[c].service.clone();
        let entries: Vec<usize> = self
            .kids(c)
            .iter()
            .copied()
            .filter(|&k| {
                let sp = self.spans[k];
                matches!(sp.kind, K::Server | K::Consumer) || sp.service != caller
            })
            .collect();
        if entries.is_empty() {
            return vec![self.spans[c].peer.clone().unwrap_or_else(|| "?".into())];
        }
        entries
            .into_iter()
            .map(|k| self.entry(k, &caller))
            .collect()
    }
}

/// `svc`, or `svc → [a, b ×2]`: equal neighbours collapse.
fn render(svc: &str, calls: &[String]) -> String {
    if calls.is_empty() {
        return svc.to_owned();
    }
    let mut parts: Vec<String> = vec![];
    let mut i = 0;
    while i < calls.len() {
        let n = calls[i..].iter().take_while(|c| **c == calls[i]).count();
        parts.push(if n == 1 {
            calls[i].clone()
        } else {
            format!("{} ×{n}", calls[i])
        });
        i += n;
    }
    format!("{svc} → [{}]", parts.join(", "))
}

fn find(spans: &[Flat]) -> Found {
    let mut f = Found {
        records: spans.len() as u64,
        ..Found::default()
    };
    // Distinct spans, grouped by trace, in file order.
    let mut seen = BTreeSet::new();
    let mut traces: Vec<(String, Vec<&Flat>)> = vec![];
    for sp in spans {
        if !seen.insert((sp.trace.clone(), sp.id.clone())) {
            continue;
        }
        match traces.iter_mut().find(|(t, _)| *t == sp.trace) {
            Some((_, v)) => v.push(sp),
            None => traces.push((sp.trace.clone(), vec![sp])),
        }
    }
    f.spans = seen.len() as u64;
    f.traces = traces.len() as u64;
    for (_, list) in traces {
        let index: HashMap<&str, usize> = list
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut roots = vec![];
        for (i, sp) in list.iter().enumerate() {
            match sp.parent.as_deref().and_then(|p| index.get(p)) {
                Some(&p) => children.entry(p).or_default().push(i),
                None => {
                    f.orphans += sp.parent.is_some() as u64;
                    roots.push(i);
                }
            }
        }
        // Calls in the order they started; ties in file order.
        for v in children.values_mut() {
            v.sort_by_key(|&i| (list[i].start, i));
        }
        roots.sort_by_key(|&i| (list[i].start, i));
        let mut tree = Tree {
            spans: list,
            children,
            hops: vec![],
        };
        for r in roots {
            let chain = tree.entry(r, "ingress");
            *f.chains.entry(chain).or_default() += 1;
        }
        f.hops.extend(tree.hops);
    }
    f
}

fn generated(format: Format, target: u64, seed: u64) -> (Vec<u8>, Written) {
    let mut buf = vec![];
    let w = generate(format, &mut buf, target, seed).expect("writing to memory");
    (buf, w)
}

#[test]
fn generated_files_hold_what_the_generators_say() {
    for (i, name) in Format::NAMES.iter().enumerate() {
        let format = Format::from_name(name).unwrap();
        let target = 1 << 20;
        let (buf, w) = generated(format, target, 7 + i as u64);
        assert_eq!(w.bytes, buf.len() as u64, "{name}: bytes");
        let off = (w.bytes as f64 - target as f64).abs() / target as f64;
        assert!(
            off < 0.05,
            "{name}: {} bytes for a target of {target}",
            w.bytes
        );
        let found = find(&read(name, &buf).unwrap_or_else(|e| panic!("{name}: {e}")));
        assert_eq!(found.spans, w.spans, "{name}: spans");
        assert_eq!(found.records, w.spans, "{name}: records");
        assert_eq!(found.traces, w.traces, "{name}: traces");
        assert_eq!(found.orphans, 0, "{name}: orphans");
        let claimed: BTreeMap<String, u64> =
            w.chains.iter().map(|(c, n)| (c.to_string(), *n)).collect();
        assert_eq!(found.chains, claimed, "{name}: chains");
        assert_eq!(w.chains.len(), CHAINS.len(), "{name}: every variant occurs");
    }
}

#[test]
fn every_target_is_met_within_five_percent() {
    for name in Format::NAMES {
        let format = Format::from_name(name).unwrap();
        for target in [300 << 10, 3 << 20] {
            let w = generate(format, io::sink(), target, 1).unwrap();
            let off = (w.bytes as f64 - target as f64).abs() / target as f64;
            assert!(off < 0.05, "{name}: {} bytes for {target}", w.bytes);
        }
    }
}

/// Counts what reaches the writer, and the largest single write.
#[derive(Default)]
struct Chunks {
    bytes: u64,
    largest: usize,
}

impl Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes += buf.len() as u64;
        self.largest = self.largest.max(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn generators_stream_in_batches_not_whole_files() {
    for name in Format::NAMES {
        let mut w = Chunks::default();
        let written = generate(Format::from_name(name).unwrap(), &mut w, 8 << 20, 2).unwrap();
        assert_eq!(w.bytes, written.bytes, "{name}");
        assert!(
            w.largest < 512 << 10,
            "{name}: a write of {} bytes",
            w.largest
        );
    }
}

#[test]
fn a_tiny_target_still_writes_one_whole_trace() {
    for name in Format::NAMES {
        let (buf, w) = generated(Format::from_name(name).unwrap(), 0, 3);
        assert_eq!(w.traces, 1, "{name}");
        let found = find(&read(name, &buf).unwrap_or_else(|e| panic!("{name}: {e}")));
        assert_eq!(found.traces, 1, "{name}");
    }
}

#[test]
fn the_same_seed_writes_the_same_bytes() {
    for name in Format::NAMES {
        let format = Format::from_name(name).unwrap();
        let (a, _) = generated(format, 200 << 10, 11);
        let (b, _) = generated(format, 200 << 10, 11);
        let (c, _) = generated(format, 200 << 10, 12);
        assert!(a == b, "{name}: not deterministic");
        assert!(a != c, "{name}: the seed changes nothing");
    }
}

#[test]
fn jsonl_spreads_each_trace_over_two_lines() {
    let (buf, _) = generated(Format::OtlpJsonl, 2 << 20, 5);
    let text = std::str::from_utf8(&buf).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 4, "{} lines", lines.len());
    let first: BTreeSet<String> = read("otlp-jsonl", lines[0].as_bytes())
        .unwrap()
        .into_iter()
        .map(|s| s.trace)
        .collect();
    let second = read("otlp-jsonl", lines[1].as_bytes()).unwrap();
    assert!(
        second
            .iter()
            .any(|s| first.contains(&s.trace) && s.parent.is_none())
    );
}

fn traces_dir() -> std::path::PathBuf {
    crate::corpus::testdata().join("traces")
}

fn check(file: &TraceFile) {
    let path = traces_dir().join(&file.path);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let format = file.format.as_deref().unwrap_or("otlp");
    let read = read(format, &bytes);
    if file.error.is_some() {
        let found = read.map(|s| find(&s));
        assert!(
            !matches!(&found, Ok(f) if f.spans > 0),
            "{}: broken, but read as {found:?}",
            file.path
        );
        return;
    }
    let found = find(&read.unwrap_or_else(|e| panic!("{}: {e}", file.path)));
    let f = &file.path;
    let eq = |what: &str, want: Option<u64>, got: u64| {
        if let Some(want) = want {
            assert_eq!(got, want, "{f}: {what}");
        }
    };
    eq("traces", file.traces, found.traces);
    eq("spans", file.spans, found.spans);
    eq("records", file.records.or(file.spans), found.records);
    eq("orphans", file.orphans.or(Some(0)), found.orphans);
    let want: BTreeMap<String, u64> = file
        .chains
        .iter()
        .map(|c| (c.chain.clone(), c.count))
        .collect();
    assert_eq!(found.chains, want, "{f}: chains");
    if !file.hops.is_empty() {
        let mut want: Vec<_> = file
            .hops
            .iter()
            .map(|h| {
                (
                    h.trace.clone(),
                    h.call.clone(),
                    h.key.clone(),
                    h.deployment.clone(),
                )
            })
            .collect();
        let mut got = found.hops.clone();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{f}: hops");
    }
}

#[test]
fn hand_written_files_hold_what_expected_toml_says() {
    let files = trace_files();
    for file in &files {
        check(file);
    }
    // Every file is listed, so none is silently unchecked.
    let listed: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let mut stack = vec![traces_dir()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p
                .strip_prefix(traces_dir())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel != "README.md" && rel != "expected.toml" {
                assert!(listed.contains(rel.as_str()), "{rel}: not in expected.toml");
            }
        }
    }
}
