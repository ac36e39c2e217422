//! `stamp`: a small proxy-wasm filter, written with the proxy-wasm Rust SDK,
//! that exercises much of ABI 0.2.1 so the simulator's host can be tested
//! against a module it did not write by hand.
//!
//! Configuration (plugin configuration, one `key=value` per line):
//! `stamp=<text>` (required) and `tick_ms=<n>` (optional, enables ticks).
//!
//! Per request it adds `x-stamp: <text>` and `x-stamp-hit: <n>` (a counter
//! shared by every VM of the plugin, bumped with compare-and-swap), copies
//! `request.path` and `plugin_name` into `x-stamp-path`/`x-stamp-plugin`,
//! sets the property `stamp.path`, counts `stamp.requests` and records the
//! header count in the histogram `stamp.header_count`. A request header
//! `x-stamp-reply: <code>` makes it answer locally; `x-stamp-callout:
//! <upstream>` makes it call `<upstream>` and wait: a 200 resumes the request
//! with `x-stamp-callout: <body>`, anything else answers 503. Responses get
//! `x-stamped-by: <text>` and set the gauge `stamp.last_status`. Each tick
//! counts `stamp.ticks` and stores the time in shared data `stamp.last_tick`.
//!
//! Invariant: it only calls host functions where the ABI allows them, so a
//! faithful host never makes it trap.

use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType, Status};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

const HITS: &str = "stamp.hits";
const LAST_TICK: &str = "stamp.last_tick";

/// Metric ids, defined once per VM in `on_vm_start`.
#[derive(Clone, Copy, Default)]
struct Metrics {
    requests: u32,
    ticks: u32,
    callouts: u32,
    last_status: u32,
    header_count: u32,
}

impl Metrics {
    fn define() -> Result<Metrics, Status> {
        Ok(Metrics {
            requests: hostcalls::define_metric(MetricType::Counter, "stamp.requests")?,
            ticks: hostcalls::define_metric(MetricType::Counter, "stamp.ticks")?,
            callouts: hostcalls::define_metric(MetricType::Counter, "stamp.callouts")?,
            last_status: hostcalls::define_metric(MetricType::Gauge, "stamp.last_status")?,
            header_count: hostcalls::define_metric(MetricType::Histogram, "stamp.header_count")?,
        })
    }
}

#[derive(Default)]
struct Root {
    stamp: String,
    metrics: Metrics,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        let level = hostcalls::get_log_level()
            .map(|l| l as u32)
            .unwrap_or(u32::MAX);
        let vm_config = self.get_vm_configuration().unwrap_or_default();
        log::info!(
            "vm starting: host log level {level}, vm configuration {:?}",
            String::from_utf8_lossy(&vm_config)
        );
        match Metrics::define() {
            Ok(metrics) => {
                self.metrics = metrics;
                true
            }
            Err(status) => {
                log::error!("defining metrics failed: {status:?}");
                false
            }
        }
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        match parse(&config) {
            Ok((stamp, tick)) => {
                log::info!("configured stamp {stamp:?}, tick {tick:?}");
                self.stamp = stamp;
                self.set_tick_period(tick.unwrap_or(Duration::ZERO));
                true
            }
            Err(reason) => {
                log::error!("invalid stamp configuration: {reason}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let _ = hostcalls::increment_metric(self.metrics.ticks, 1);
        let now = self.get_current_time();
        let nanos = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let _ = self.set_shared_data(LAST_TICK, Some(nanos.to_string().as_bytes()), None);
        log::debug!("tick at {nanos}");
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stamp {
            stamp: self.stamp.clone(),
            metrics: self.metrics,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Parses `stamp=<text>` and `tick_ms=<n>` lines.
fn parse(config: &[u8]) -> Result<(String, Option<Duration>), String> {
    let text = std::str::from_utf8(config).map_err(|e| format!("not UTF-8: {e}"))?;
    let (mut stamp, mut tick) = (None, None);
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once('=') {
            Some(("stamp", v)) if !v.is_empty() => stamp = Some(v.to_owned()),
            Some(("tick_ms", v)) => {
                let ms = v.parse::<u64>().map_err(|e| format!("tick_ms: {e}"))?;
                tick = Some(Duration::from_millis(ms));
            }
            _ => return Err(format!("unknown line {line:?}")),
        }
    }
    Ok((stamp.ok_or("missing stamp=<text>")?, tick))
}

struct Stamp {
    stamp: String,
    metrics: Metrics,
}

impl Stamp {
    /// Bumps the plugin-wide hit counter with compare-and-swap.
    fn bump_hits(&self) -> u64 {
        for _ in 0..8 {
            let (value, cas) = self.get_shared_data(HITS);
            let seen = value
                .and_then(|v| String::from_utf8(v).ok()?.parse::<u64>().ok())
                .unwrap_or(0);
            match self.set_shared_data(HITS, Some((seen + 1).to_string().as_bytes()), cas) {
                Ok(()) => return seen + 1,
                Err(Status::CasMismatch) => continue,
                Err(_) => break,
            }
        }
        0
    }

    fn property(&self, path: &[&str]) -> String {
        let value = self.get_property(path.to_vec()).unwrap_or_default();
        String::from_utf8_lossy(&value).into_owned()
    }
}

impl Context for Stamp {
    fn on_http_call_response(&mut self, _token: u32, headers: usize, body_size: usize, _: usize) {
        let status = match headers {
            0 => None,
            _ => self.get_http_call_response_header(":status"),
        };
        if status.as_deref() == Some("200") {
            let body = self
                .get_http_call_response_body(0, body_size)
                .unwrap_or_default();
            let body = String::from_utf8_lossy(&body).into_owned();
            self.set_http_request_header("x-stamp-callout", Some(&body));
            self.resume_http_request();
        } else {
            log::warn!("callout failed: status {status:?}");
            self.send_http_response(
                503,
                vec![("x-stamp-callout", "failed")],
                Some(b"callout failed\n"),
            );
        }
    }
}

impl HttpContext for Stamp {
    fn on_http_request_headers(&mut self, headers: usize, _end_of_stream: bool) -> Action {
        let _ = hostcalls::increment_metric(self.metrics.requests, 1);
        let _ = hostcalls::record_metric(self.metrics.header_count, headers as u64);
        let hits = self.bump_hits();
        let path = self.property(&["request", "path"]);
        self.add_http_request_header("x-stamp", &self.stamp);
        self.add_http_request_header("x-stamp-hit", &hits.to_string());
        self.set_http_request_header("x-stamp-path", Some(&path));
        self.set_http_request_header("x-stamp-plugin", Some(&self.property(&["plugin_name"])));
        self.set_property(vec!["stamp.path"], Some(path.as_bytes()));
        log::info!(
            "stamped {path} from {}",
            self.property(&["source", "address"])
        );

        if let Some(code) = self.get_http_request_header("x-stamp-reply") {
            let code = code.parse::<u32>().unwrap_or(500);
            self.send_http_response(
                code,
                vec![("x-stamp", &self.stamp)],
                Some(b"stamped locally\n"),
            );
            // The reply is sent after this callback returns, so the request
            // headers can still be changed here.
            self.set_http_request_header("x-stamp-after-reply", Some("1"));
            return Action::Pause;
        }
        if let Some(upstream) = self.get_http_request_header("x-stamp-callout") {
            let call = self.dispatch_http_call(
                &upstream,
                vec![
                    (":method", "GET"),
                    (":path", "/stamp"),
                    (":authority", &upstream),
                    ("x-stamp", &self.stamp),
                ],
                Some(b"ping"),
                vec![],
                Duration::from_millis(250),
            );
            match call {
                Ok(_) => {
                    let _ = hostcalls::increment_metric(self.metrics.callouts, 1);
                    return Action::Pause;
                }
                Err(status) => log::warn!("callout to {upstream} refused: {status:?}"),
            }
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.add_http_response_header("x-stamped-by", &self.stamp);
        if let Some(status) = self.get_http_response_header(":status") {
            let _ = hostcalls::record_metric(self.metrics.last_status, status.parse().unwrap_or(0));
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let stamp = self.get_http_request_header("x-stamp").unwrap_or_default();
        log::debug!("done with x-stamp {stamp:?}");
    }
}
