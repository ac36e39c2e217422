//! The big hostile inputs, generated: too large to keep in the repository,
//! and each the exact shape that once crashed the CLI, took gigabytes, or
//! ran for hours (issue 8). The small ones live as files in
//! `testdata/scenarios/broken/`; `tests/hostile.rs` in the CLI runs both
//! with bounded memory and time, and `bench-validate` times the
//! configurations.
//!
//! Every generator is deterministic and returns the file's bytes.

use std::fmt::Write as _;

/// A plugin configuration with `sandboxes` sandboxes, each forking one of
/// 100 services (about 72 bytes per sandbox).
pub fn config(sandboxes: usize) -> String {
    sandbox_list(sandboxes, 100, 0, 0)
}

/// A configuration at all three limits of the core at once: 1,000,000
/// sandboxes, 1,000,000 forks of as many distinct services, and strings
/// padded to just under 128 MiB of text: the most memory a configuration
/// that validates can take.
pub fn config_at_limits() -> String {
    const SANDBOXES: usize = 1_000_000;
    const BYTES: usize = (128 << 20) - 4096;
    // Per sandbox without padding: at most 100 bytes of JSON.
    let pad = (BYTES / SANDBOXES).saturating_sub(100) / 2;
    sandbox_list(SANDBOXES, SANDBOXES, pad.min(100), pad.min(200))
}

/// `sandboxes` sandboxes of one fork each, of `services` distinct services
/// in turn, with keys and destinations padded by `key_pad` and `dest_pad`
/// bytes.
fn sandbox_list(sandboxes: usize, services: usize, key_pad: usize, dest_pad: usize) -> String {
    let (kp, dp) = ("k".repeat(key_pad), "d".repeat(dest_pad));
    let mut s = String::with_capacity(sandboxes * (80 + key_pad + dest_pad) + 64);
    s.push_str("{\"version\":1,\"sandboxes\":[\n");
    for i in 0..sandboxes {
        if i > 0 {
            s.push_str(",\n");
        }
        let svc = i % services.max(1);
        let _ = write!(
            s,
            "{{\"key\":\"k{i:07}{kp}\",\"forks\":[{{\"service\":\"svc{svc}\",\"destination\":\"svc{svc}-k{i:07}{dp}\"}}]}}",
        );
    }
    s.push_str("\n]}\n");
    s
}

/// A configuration whose one sandbox object has `keys` distinct unknown
/// keys (the JSON duplicate-key check was quadratic: 27 s at 100,000).
pub fn wide_object(keys: usize) -> String {
    let mut s = String::with_capacity(keys * 16 + 64);
    s.push_str("{\"version\":1,\"sandboxes\":[{\"key\":\"k\",\"forks\":[],");
    for i in 0..keys {
        let _ = write!(s, "\"x{i}\":0,");
    }
    s.push_str("\"y\":0}]}\n");
    s
}

/// A configuration listing `names` routing-key member names (the
/// duplicate scan went on past the limit of 8: 22 s at 100,000).
pub fn member_names(names: usize) -> String {
    let mut s = String::with_capacity(names * 12 + 64);
    s.push_str("{\"version\":1,\"sandboxes\":[],\"routing_key\":{\"members\":[");
    for i in 0..names {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "\"m{i}\"");
    }
    s.push_str("]}}\n");
    s
}

/// A scenario with `sandboxes` sandboxes over 100 services, its
/// configuration derived, one tagged request per sandbox through
/// `groups` traffic groups, and one untagged group.
pub fn many_sandboxes(sandboxes: usize, groups: usize) -> String {
    let mut s = String::with_capacity(sandboxes * 60 + groups * 80 + 1024);
    s.push_str("name: many-sandboxes\nservices:\n");
    for i in 0..100 {
        let _ = writeln!(s, "  svc{i}: {{ port: {} }}", 8000 + i);
    }
    s.push_str("chains:\n  - name: c\n    call: svc0\n    then: [{ call: svc1 }]\n");
    s.push_str("sandboxes:\n");
    for i in 0..sandboxes {
        let _ = writeln!(
            s,
            "  - {{ key: k{i:07}, forks: [{{ service: svc{} }}] }}",
            i % 100
        );
    }
    s.push_str("traffic:\n  - { name: untagged, chain: c, count: 10 }\n");
    let groups = groups.clamp(1, sandboxes.max(1));
    for g in 0..groups {
        let _ = writeln!(
            s,
            "  - {{ name: g{g}, chain: c, kind: tagged, key: k{g:07}, count: 1 }}"
        );
    }
    s.push_str("plugin: { derive: {} }\n");
    s
}

/// `sandboxes` sandboxes that each fork every service of a chain of
/// `length`, each fork calling the next: S^L distinct paths, which the
/// blast-radius walk once enumerated (a 2 KB file took 2.2 GB and 17 s).
pub fn exponential_blast(sandboxes: usize, length: usize) -> String {
    let mut s = String::from("name: exponential-blast\nservices:\n");
    for i in 0..length {
        let _ = writeln!(s, "  s{i}: {{ port: {} }}", 9000 + i);
    }
    s.push_str("chains:\n  - name: c\n    call: s0\n");
    s.push_str("sandboxes:\n");
    for k in 0..sandboxes {
        let _ = writeln!(s, "  - key: k{k}\n    forks:");
        for i in 0..length {
            if i + 1 < length {
                let _ = writeln!(
                    s,
                    "      - {{ service: s{i}, then: [{{ call: s{} }}] }}",
                    i + 1
                );
            } else {
                let _ = writeln!(s, "      - {{ service: s{i} }}");
            }
        }
    }
    s.push_str("traffic:\n  - { name: untagged, chain: c, count: 1 }\n");
    for k in 0..sandboxes {
        let _ = writeln!(
            s,
            "  - {{ name: t{k}, chain: c, kind: tagged, key: k{k}, count: 1 }}"
        );
    }
    s.push_str("plugin: { derive: {} }\n");
    s
}

/// One anchor of `anchor` bytes aliased until the file is about `bytes`
/// long (a 1.1 MB file once passed 6 GB).
pub fn alias_bomb(anchor: usize, bytes: usize) -> String {
    let mut s =
        String::from("name: alias-bomb\nservices: { a: {} }\nchains: [{ name: c, call: a }]\n");
    let _ = writeln!(s, "description: &big \"{}\"", "x".repeat(anchor));
    s.push_str("traffic:\n  - { name: t, chain: c }\nnotes: [");
    while s.len() < bytes {
        s.push_str("*big, ");
    }
    s.push_str("*big]\n");
    s
}

/// Flow sequences nested `depth` deep (once no finish in 60 s at 200 KB).
pub fn deep_flow(depth: usize) -> String {
    let mut s = String::from(
        "name: deep\nservices: { a: {} }\nchains: [{ name: c, call: a }]\ndescription: ",
    );
    s.push_str(&"[".repeat(depth));
    s.push_str(&"]".repeat(depth));
    s.push_str("\ntraffic: [{ name: t, chain: c }]\n");
    s
}

/// A scenario asking for `count` requests of one chain.
pub fn huge_count(count: u64) -> String {
    format!(
        "name: huge\nservices: {{ a: {{}} }}\nchains: [{{ name: c, call: a }}]\n\
         traffic: [{{ name: t, chain: c, count: {count} }}]\n"
    )
}

/// A scenario whose chain calls a service named with `bytes` bytes,
/// which does not exist.
pub fn long_name(bytes: usize) -> String {
    let name = "n".repeat(bytes);
    format!(
        "name: long\nservices: {{ a: {{}} }}\nchains: [{{ name: c, call: {name} }}]\n\
         traffic: [{{ name: t, chain: c }}]\n"
    )
}
