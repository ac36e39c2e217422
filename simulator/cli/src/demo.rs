//! `laneway demo-envoy`: start Envoy with the filter and a HotROD-like mesh
//! on loopback, send tagged and untagged requests, and show where each one
//! went: the workload that answered, and the decision the filter recorded
//! in its access log.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use laneway_core::filter_state;
use laneway_envoy::EnvoyError;
use laneway_envoy::mesh::Mesh;

/// The HotROD services: the frontend calls customer, driver and route.
pub const HOTROD: [&str; 5] = ["frontend", "customer", "driver", "route", "location"];

/// One demo request.
pub struct DemoRequest {
    /// What it shows.
    pub what: &'static str,
    /// `:authority`.
    pub authority: &'static str,
    /// Extra header lines.
    pub headers: &'static [(&'static str, &'static str)],
}

/// The requests `demo-envoy` sends (keys from `testdata/configs/hotrod.json`).
pub const REQUESTS: &[DemoRequest] = &[
    DemoRequest {
        what: "untagged",
        authority: "frontend:8080",
        headers: &[],
    },
    DemoRequest {
        what: "untagged",
        authority: "location:8083",
        headers: &[],
    },
    DemoRequest {
        what: "tagged, service has a fork",
        authority: "location:8083",
        headers: &[("baggage", "sd-routing-key=qwblp48fpmb30")],
    },
    DemoRequest {
        what: "tagged, service has no fork",
        authority: "frontend:8080",
        headers: &[("baggage", "sd-routing-key=qwblp48fpmb30")],
    },
    DemoRequest {
        what: "route group: driver",
        authority: "driver:8082",
        headers: &[("baggage", "sd-routing-key=r7gq2x9k4mzt1")],
    },
    DemoRequest {
        what: "route group: route",
        authority: "route:8083",
        headers: &[("baggage", "sd-routing-key=r7gq2x9k4mzt1")],
    },
    DemoRequest {
        what: "percent-encoded key",
        authority: "location:8083",
        headers: &[("baggage", "sd-routing-key=%71wblp48fpmb30")],
    },
    DemoRequest {
        what: "key only in tracestate",
        authority: "location:8083",
        headers: &[(
            "tracestate",
            "rojo=00f067aa0ba902b7,sd-routing-key=qwblp48fpmb30",
        )],
    },
    DemoRequest {
        what: "regex false positive",
        authority: "location:8083",
        headers: &[("baggage", "not-sd-routing-key=qwblp48fpmb30")],
    },
    DemoRequest {
        what: "key in a property",
        authority: "location:8083",
        headers: &[("baggage", "user=alice;sd-routing-key=qwblp48fpmb30")],
    },
    DemoRequest {
        what: "conflicting values",
        authority: "location:8083",
        headers: &[
            ("baggage", "sd-routing-key=qwblp48fpmb30"),
            ("baggage", "sd-routing-key=r7gq2x9k4mzt1"),
        ],
    },
    DemoRequest {
        what: "unknown key",
        authority: "location:8083",
        headers: &[("baggage", "sd-routing-key=deleted0sandbox")],
    },
];

/// Runs the demo and returns the report.
pub fn run(module: &Path, config_text: &str) -> Result<String, EnvoyError> {
    let dir = std::env::temp_dir().join(format!("laneway-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| EnvoyError::Io(format!("{}: {e}", dir.display())))?;
    let access_log = dir.join("access.log");
    let mesh = Mesh::start(module, config_text, &HOTROD, Some(&access_log))?;
    let mut served = Vec::new();
    for r in REQUESTS {
        let mut headers: Vec<(&str, &[u8])> = vec![("host", r.authority.as_bytes())];
        headers.extend(r.headers.iter().map(|(n, v)| (*n, v.as_bytes())));
        let response = mesh
            .send(&headers)
            .map_err(|e| EnvoyError::Io(format!("request through envoy: {e}")))?;
        served.push(match response.header("x-served-by") {
            Some(w) => w,
            None => format!("{} {}", response.status, response.text().trim()),
        });
    }
    // The access log is flushed every 100 ms.
    std::thread::sleep(Duration::from_millis(300));
    let log = std::fs::read_to_string(&access_log).unwrap_or_default();
    let decisions: Vec<String> = log
        .lines()
        .map(
            |l| match l.split_once("laneway: ").map(|(_, state)| state.trim()) {
                None | Some("-") => "no_key (no key in baggage or tracestate)".to_owned(),
                Some(state) => match filter_state::decode(state.as_bytes()) {
                    Ok(d) => d.reason.as_str().to_owned(),
                    Err(e) => format!("unreadable filter state ({e}): {state}"),
                },
            },
        )
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Envoy {} with laneway_filter.wasm; upstreams answer with the workload that served.\n",
        mesh.envoy.admin()
    );
    let _ = writeln!(
        out,
        "{:<28} {:<16} {:<62} {:<30} DECISION",
        "REQUEST", "AUTHORITY", "HEADERS", "SERVED BY"
    );
    for (i, r) in REQUESTS.iter().enumerate() {
        let headers = r
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect::<Vec<_>>()
            .join(" | ");
        let _ = writeln!(
            out,
            "{:<28} {:<16} {:<62} {:<30} {}",
            r.what,
            r.authority,
            if headers.is_empty() {
                "-".into()
            } else {
                headers
            },
            served[i],
            decisions.get(i).map_or("?", String::as_str)
        );
    }
    let stats = mesh.envoy.stats()?;
    let _ = writeln!(out, "\nEnvoy /stats:");
    for (name, value) in stats
        .iter()
        .filter(|(n, _)| n.starts_with("wasmcustom.laneway.decision."))
    {
        let _ = writeln!(out, "  {name}: {value}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}
