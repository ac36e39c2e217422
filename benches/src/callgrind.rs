//! Instructions per request in a real Envoy, counted by valgrind's
//! callgrind: the measuring half of `bench-envoy --instructions` and of
//! `bench-guards`, which differ only in what they configure and send.
//!
//! [`Counting::start`] runs one Envoy (`--concurrency 1`) under callgrind
//! with instrumentation off, so start-up, configuration and warm-up cost
//! nothing. [`Counting::count`] switches it on (the first time), zeroes
//! the counters, sends one kind of request on a keep-alive connection,
//! dumps, and divides the dump's total (every Envoy thread) by the number
//! of requests. The count is deterministic: the same binary, module and
//! requests give the same instructions whatever else the machine does.
//!
//! A request answered with any status but 200 fails the count: a harness
//! whose requests do not go where it thinks fails loudly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use laneway_envoy::{Envoy, Options, bootstrap};

/// One HTTP/1.1 keep-alive `GET /` to `authority` with extra header lines.
pub fn keepalive_request(authority: &str, headers: &[(&str, String)]) -> Vec<u8> {
    let mut r = format!("GET / HTTP/1.1\r\nHost: {authority}\r\n");
    for (n, v) in headers {
        r.push_str(&format!("{n}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// Sends `count` requests, cycling through `requests` in order, on one
/// keep-alive connection; fails on any status but 200.
pub fn send_all(listener: SocketAddr, requests: &[Vec<u8>], count: usize) -> Result<()> {
    use std::io::{BufRead, BufReader, Read, Write};
    let stream = std::net::TcpStream::connect(listener)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    for i in 0..count {
        writer.write_all(&requests[i % requests.len()])?;
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if !line.starts_with("HTTP/1.1 200") {
            bail!("request {i} got {line:?}");
        }
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':')
                && n.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
    }
    Ok(())
}

/// Sends a command to a callgrind process. `callgrind_control` exits 0
/// even when it fails, so its output is checked.
fn callgrind(pid: u32, args: &[&str]) -> Result<()> {
    let out = Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() || text.contains("Error") || !text.contains("OK") {
        bail!("callgrind_control {args:?} {pid} failed: {text}");
    }
    Ok(())
}

/// Waits for callgrind's dump labelled `label` (written asynchronously,
/// after `callgrind_control -d` returns) and reads its instruction total.
fn dumped_instructions(dir: &Path, label: &str) -> Result<u64> {
    let trigger = format!("desc: Trigger: dump {label}");
    for _ in 0..600 {
        for e in std::fs::read_dir(dir)? {
            let text = std::fs::read_to_string(e?.path()).unwrap_or_default();
            if text.lines().any(|l| l == trigger)
                && let Some(n) = text
                    .lines()
                    .find_map(|l| l.strip_prefix("summary: ")?.trim().parse().ok())
            {
                return Ok(n);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("no callgrind dump labelled {label} after 60 s")
}

/// One Envoy under callgrind. Killed, and its dumps removed, on drop
/// (kept when `LANEWAY_KEEP_CALLGRIND` is set, for `callgrind_annotate`).
pub struct Counting {
    envoy: Option<Envoy>,
    dir: PathBuf,
    listener: SocketAddr,
    on: bool,
    dumps: usize,
}

impl Counting {
    /// Starts Envoy with `bootstrap` under callgrind, instrumentation off,
    /// writing its dumps to `dir` (emptied first). `name` says which setup
    /// failed to start.
    pub fn start(bootstrap: &serde_json::Value, dir: &Path, name: &str) -> Result<Counting> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        let envoy = Envoy::start_with(
            bootstrap,
            &Options {
                wrapper: ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
                    .iter()
                    .map(Into::into)
                    .chain([format!("--callgrind-out-file={}/cg.%p", dir.display()).into()])
                    .collect(),
                ready_timeout: Duration::from_secs(300),
                ..Options::default()
            },
        )
        .with_context(|| format!("{name} under valgrind (apt-get install valgrind)"))?;
        let listener = envoy
            .listener(bootstrap::LISTENER)
            .context("no outbound listener")?;
        Ok(Counting {
            envoy: Some(envoy),
            dir: dir.to_path_buf(),
            listener,
            on: false,
            dumps: 0,
        })
    }

    /// The running Envoy (its admin API, its stats).
    pub fn envoy(&self) -> Option<&Envoy> {
        self.envoy.as_ref()
    }

    /// The outbound listener.
    pub fn listener(&self) -> SocketAddr {
        self.listener
    }

    /// Sends `count` requests, cycling through `requests`, and returns
    /// Envoy's instructions per request. The first call switches
    /// instrumentation on; everything sent before it (checks, warm-up) is
    /// not counted.
    pub fn count(&mut self, requests: &[Vec<u8>], count: usize) -> Result<f64> {
        let pid = self.envoy.as_ref().context("Envoy is gone")?.pid();
        if !self.on {
            callgrind(pid, &["-i", "on"])?;
            self.on = true;
        }
        callgrind(pid, &["-z"])?;
        send_all(self.listener, requests, count)?;
        let label = format!("k{}", self.dumps);
        self.dumps += 1;
        callgrind(pid, &["-d", &label])?;
        let n = dumped_instructions(&self.dir, &label)?;
        Ok(n as f64 / count as f64)
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        drop(self.envoy.take());
        if std::env::var_os("LANEWAY_KEEP_CALLGRIND").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
