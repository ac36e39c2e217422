//! Writes imported chains as a scenario that replays as it stands: the
//! services, one chain per template, the sandboxes from `--fork`, and
//! traffic with the templates' counts, untagged and tagged for every
//! sandbox.

use std::fmt::Write as _;

use crate::assemble::{CallNode, Chains};
use crate::findings::{Findings, Fork};

/// A name as YAML: plain when it is safe, else double-quoted (JSON's
/// escapes are YAML's).
fn scalar(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        && !matches!(
            s,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
    }
}

/// The chains' names: the entry service and a rank (`frontend-1`).
pub fn chain_names(chains: &Chains) -> Vec<String> {
    let mut seen = std::collections::HashMap::<String, u32>::new();
    chains
        .ranked()
        .iter()
        .map(|(_, t)| {
            let entry = t
                .roots
                .first()
                .map_or("chain", |r| chains.services[r.service].name.as_str());
            let n = seen.entry(entry.to_owned()).or_default();
            *n += 1;
            format!("{entry}-{n}")
        })
        .collect()
}

/// The scenario, as YAML. `sources` names the files read.
pub fn scenario(
    name: &str,
    sources: &[String],
    chains: &Chains,
    findings: &Findings,
    forks: &[Fork],
) -> String {
    let mut y = String::new();
    let ranked = chains.ranked();
    let names = chain_names(chains);
    let _ = writeln!(
        y,
        "# Imported by `laneway import` from {} file(s): {} traces, {} spans, {} distinct chains.",
        sources.len(),
        chains.traces,
        chains.spans,
        ranked.len()
    );
    for f in sources {
        let _ = writeln!(y, "#   {}", f.replace(['\n', '\r'], " "));
    }
    if !findings.lost.is_empty() || !findings.misrouted.is_empty() {
        let _ = writeln!(
            y,
            "# The traces show lost context or misrouted calls: see `laneway import`'s report."
        );
    }
    let _ = writeln!(y, "name: {}", scalar(name));
    let _ = writeln!(
        y,
        "description: {}",
        scalar(&format!(
            "Call chains imported from {} traces ({} distinct).",
            chains.traces,
            ranked.len()
        ))
    );
    y.push_str("services:\n");
    for s in &chains.services {
        let mut fields = Vec::new();
        if let Some(h) = &s.host {
            fields.push(format!("host: {}", scalar(h)));
        }
        if fields.is_empty() {
            let _ = write!(y, "  {}: {{}}", scalar(&s.name));
        } else {
            let _ = write!(y, "  {}: {{ {} }}", scalar(&s.name), fields.join(", "));
        }
        if !s.instrumented {
            y.push_str("  # no spans of its own: named by its callers");
        }
        y.push('\n');
    }
    y.push_str("chains:\n");
    for ((_, t), cname) in ranked.iter().zip(&names) {
        let _ = writeln!(y, "  # {} trace(s), for example {}", t.count, t.example);
        match t.roots.as_slice() {
            [root] => {
                let _ = writeln!(y, "  - name: {}", scalar(cname));
                node(&mut y, chains, root, 4, false);
            }
            roots => {
                // Several entry calls in one trace: the first is the chain,
                // the others its calls (the scenario has one entry).
                let _ = writeln!(y, "  - name: {}", scalar(cname));
                let _ = writeln!(
                    y,
                    "    # the trace had {} entry calls; the later ones are under the first",
                    roots.len()
                );
                let mut first = roots[0].clone();
                first.then.extend(roots[1..].iter().cloned());
                node(&mut y, chains, &first, 4, false);
            }
        }
    }
    if !forks.is_empty() {
        y.push_str("sandboxes:\n");
        for f in forks {
            let _ = writeln!(y, "  - key: {}", scalar(&f.key));
            y.push_str("    forks:\n");
            for s in &f.services {
                let _ = writeln!(y, "      - service: {}", scalar(s));
            }
        }
    }
    y.push_str("traffic:\n");
    for ((_, t), cname) in ranked.iter().zip(&names) {
        let _ = writeln!(
            y,
            "  - {{ name: {}, chain: {}, count: {} }}",
            scalar(cname),
            scalar(cname),
            t.count
        );
        for f in forks {
            let _ = writeln!(
                y,
                "  - {{ name: {}, chain: {}, count: {}, kind: tagged, key: {} }}",
                scalar(&format!("{cname}-{}", f.key)),
                scalar(cname),
                t.count,
                scalar(&f.key)
            );
        }
    }
    y
}

/// One call: `call:` (the chain's own at `indent`, or a list item), its
/// messaging mark and its calls.
fn node(y: &mut String, chains: &Chains, n: &CallNode, indent: usize, item: bool) {
    let pad = " ".repeat(indent);
    let name = scalar(&chains.services[n.service].name);
    if item {
        let _ = writeln!(y, "{pad}- call: {name}");
    } else {
        let _ = writeln!(y, "{pad}call: {name}");
    }
    let inner = if item { indent + 2 } else { indent };
    let ipad = " ".repeat(inner);
    if let Some(m) = &n.messaging {
        let _ = writeln!(y, "{ipad}messaging: {}", scalar(m));
    }
    if !n.then.is_empty() {
        let _ = writeln!(y, "{ipad}then:");
        for c in &n.then {
            node(y, chains, c, inner + 2, true);
        }
    }
}
