//! The header corpus shared by the core and table benches: the same bytes
//! for Laneway's parser, the seed's regex and the memchr floor.

/// The key the corpus carries.
pub const KEY: &str = "qwblp48fpmb30";

/// One benchmark input: an authority and header lines.
pub struct Case {
    /// A short name for the bench id.
    pub name: &'static str,
    /// `baggage` lines.
    pub baggage: Vec<String>,
    /// `tracestate` lines.
    pub tracestate: Vec<String>,
}

impl Case {
    /// Bytes of header values: what every contender reads.
    pub fn bytes(&self) -> usize {
        self.baggage
            .iter()
            .chain(&self.tracestate)
            .map(String::len)
            .sum()
    }

    /// The one line the regex and memchr contenders scan (Istio matches one
    /// header per route).
    pub fn line(&self) -> &[u8] {
        self.baggage
            .first()
            .or(self.tracestate.first())
            .map_or(&[][..], |l| l.as_bytes())
    }
}

fn members(n: usize, width: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("m{i:02}={}", "v".repeat(width)))
        .collect()
}

/// The corpus of the issue: no baggage; small baggage with the key first,
/// last or absent; 1 KiB; the worst case of 64 members and 8 KiB; a
/// 32-member tracestate.
pub fn cases() -> Vec<Case> {
    let key = format!("sd-routing-key={KEY}");
    let small = ["user=alice", "session=8c1d2f", "tenant=t1"];
    let join = |v: Vec<String>| v.join(",");
    let kib: Vec<String> = members(15, 62).into_iter().chain([key.clone()]).collect();
    let worst: Vec<String> = members(63, 124).into_iter().chain([key.clone()]).collect();
    let ts: Vec<String> = (0..31)
        .map(|i| format!("vendor{i:02}=00f067aa0ba902b7"))
        .chain([key.clone()])
        .collect();
    vec![
        Case {
            name: "no-baggage",
            baggage: vec![],
            tracestate: vec![],
        },
        Case {
            name: "small-key-first",
            baggage: vec![join(
                std::iter::once(key.clone())
                    .chain(small.iter().map(|s| s.to_string()))
                    .collect(),
            )],
            tracestate: vec![],
        },
        Case {
            name: "small-key-last",
            baggage: vec![join(
                small
                    .iter()
                    .map(|s| s.to_string())
                    .chain([key.clone()])
                    .collect(),
            )],
            tracestate: vec![],
        },
        Case {
            name: "small-key-absent",
            baggage: vec![join(small.iter().map(|s| s.to_string()).collect())],
            tracestate: vec![],
        },
        Case {
            name: "1kib-key-last",
            baggage: vec![join(kib)],
            tracestate: vec![],
        },
        Case {
            name: "8kib-64-members",
            baggage: vec![join(worst)],
            tracestate: vec![],
        },
        Case {
            name: "tracestate-32",
            baggage: vec![],
            tracestate: vec![join(ts)],
        },
    ]
}

/// A plugin configuration with `n` sandboxes, one of them [`KEY`], each
/// forking `location`.
pub fn config(n: usize) -> String {
    let sandboxes: Vec<String> = (0..n)
        .map(|i| {
            let key = if i == n / 2 { KEY.to_owned() } else { format!("sbx{i:06}") };
            format!(r#"{{"key":"{key}","forks":[{{"service":"location","destination":"location-{key}"}}]}}"#)
        })
        .collect();
    format!(r#"{{"version":1,"sandboxes":[{}]}}"#, sandboxes.join(","))
}

/// The seed's Istio regex for `key`.
pub fn seed_regex(key: &str) -> String {
    format!(r"^.*\b(sd-routing-key|sd-sandbox)\s*=[^,]*\b{key}\b.*$")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_has_the_sizes_it_claims() {
        let c = cases();
        let find = |n: &str| c.iter().find(|x| x.name == n).unwrap();
        assert!((1000..=1100).contains(&find("1kib-key-last").bytes()));
        let worst = find("8kib-64-members");
        assert_eq!(worst.baggage[0].split(',').count(), 64);
        assert!((8000..=8192).contains(&worst.bytes()), "{}", worst.bytes());
        assert_eq!(find("tracestate-32").tracestate[0].split(',').count(), 32);
        let r = laneway_core::Router::from_json(&config(1000)).unwrap();
        assert_eq!(r.forks(), 1000);
    }
}
