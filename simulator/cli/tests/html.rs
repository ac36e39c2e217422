//! `laneway replay --html` in a real browser: headless Chromium opens the
//! page of `hotrod.yaml` (every check holds) and of two failing scenarios,
//! runs its script, and takes a screenshot of each, saved under the cargo
//! target directory (`target/html-report/*.png`, the paths printed) for a
//! person to look at.
//!
//! What must hold: the page's script ran (it writes how many paths it
//! shows into the DOM), no script error was recorded (the page's own
//! `window.onerror` writes them into the DOM), and Chromium's console
//! stayed silent (`--enable-logging=stderr` prints every console message,
//! a blocked inline script or style included, as a `CONSOLE` line). A
//! canary page with an error checks that this Chromium reports it.
//!
//! Chromium is required: without it the test fails, telling to run
//! `make setup`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use laneway_testdata::wasm;

/// `target/html-report`, beside the binary's profile directory.
fn out_dir() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_laneway"));
    let dir = bin
        .parent()
        .and_then(Path::parent)
        .expect("the binary is in target/PROFILE/")
        .join("html-report");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["chromium", "chromium-browser"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "chromium is not installed: the HTML report is tested in headless Chromium; \
                 run `make setup` (it installs chromium), then run the tests again"
            )
        })
}

/// Runs `command` to the end, killing it after `limit`.
fn bounded(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}: {command:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// `laneway replay SCENARIOS --html OUT`; returns the exit code.
fn replay_html(scenarios: &[&str], out: &Path) -> i32 {
    let mut c = Command::new(env!("CARGO_BIN_EXE_laneway"));
    c.current_dir(wasm::workspace())
        .arg("replay")
        .args(scenarios)
        .arg("--wasm")
        .arg(wasm::build("laneway-filter"))
        .arg("--html")
        .arg(out);
    let o = bounded(c, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.is_file(), "{} was not written: {stderr}", out.display());
    o.status.code().expect("laneway exits")
}

/// What Chromium made of a page: the DOM after its scripts ran, and the
/// console messages.
struct Loaded {
    dom: String,
    console: Vec<String>,
}

/// Opens `url` in headless Chromium: `--dump-dom`, or a screenshot to
/// `png`. Each run has a profile of its own, so runs can overlap.
fn chromium_run(url: &str, png: Option<&Path>, profile: &str) -> Loaded {
    let profile =
        std::env::temp_dir().join(format!("laneway-html-{}-{profile}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let mut c = Command::new(chromium());
    c.args([
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1400,2000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    match png {
        Some(png) => {
            let _ = std::fs::remove_file(png);
            c.arg(format!("--screenshot={}", png.display()));
        }
        None => {
            c.arg("--dump-dom");
        }
    }
    c.arg(url);
    let o = bounded(c, Duration::from_secs(60));
    let _ = std::fs::remove_dir_all(&profile);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "chromium failed on {url}: {stderr}");
    Loaded {
        dom: String::from_utf8_lossy(&o.stdout).into_owned(),
        console: stderr
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(String::from)
            .collect(),
    }
}

fn url(path: &Path) -> String {
    format!("file://{}", path.canonicalize().unwrap().display())
}

/// The page at `html` runs without an error or a console message; its DOM
/// is returned. The screenshot goes to `png`.
fn clean_page(html: &Path, png: &Path, name: &str) -> String {
    let loaded = chromium_run(&url(html), None, &format!("{name}-dom"));
    assert!(
        loaded.dom.contains("<span id=\"shown\">showing "),
        "the page's script did not run:\n{}",
        &loaded.dom[..loaded.dom.floor_char_boundary(2000)]
    );
    assert!(
        !loaded.dom.contains("data-errors=\""),
        "script errors: {}",
        loaded
            .dom
            .lines()
            .find(|l| l.contains("data-errors=\""))
            .unwrap_or_default()
    );
    assert_eq!(loaded.console, Vec::<String>::new(), "console messages");
    let shot = chromium_run(&url(html), Some(png), &format!("{name}-png"));
    assert_eq!(shot.console, Vec::<String>::new(), "console messages");
    let bytes = std::fs::read(png).expect("the screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    println!("screenshot: {}", png.display());
    loaded.dom
}

#[test]
fn a_console_error_is_caught() {
    let dir = out_dir();
    let page = dir.join("canary.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head><script>window.onerror=function(m)\
         {document.documentElement.setAttribute('data-errors',m)}</script></head>\
         <body><script>nope();</script></body></html>",
    )
    .unwrap();
    let loaded = chromium_run(&url(&page), None, "canary");
    assert!(
        loaded.dom.contains("data-errors=\"Uncaught ReferenceError"),
        "{}",
        loaded.dom
    );
    assert!(
        loaded
            .console
            .iter()
            .any(|l| l.contains("nope is not defined")),
        "this Chromium does not print console messages to stderr: {:?}",
        loaded.console
    );
}

#[test]
fn hotrod_renders_without_errors() {
    let dir = out_dir();
    let html = dir.join("hotrod.html");
    assert_eq!(replay_html(&["testdata/scenarios/hotrod.yaml"], &html), 0);
    let dom = clean_page(&html, &dir.join("hotrod.png"), "hotrod");
    assert!(dom.contains("<span id=\"shown\">showing 4 of 4 drawn paths, 0 with violations"));
    assert!(dom.contains("<g class=\"hop fork\">"));
    assert!(dom.contains("<g class=\"hop fallback\">"));
    assert!(dom.contains("<g class=\"hop baseline\">"));
    assert!(!dom.contains("<g class=\"hop violation\">"));
    assert!(dom.contains("<h3>blast radius</h3>"));
}

#[test]
fn failing_scenarios_show_their_violations() {
    let dir = out_dir();
    let html = dir.join("failing.html");
    let scenarios = [
        "testdata/scenarios/failing/cross-talk.yaml",
        "testdata/scenarios/failing/dropped-context.yaml",
    ];
    assert_eq!(replay_html(&scenarios, &html), 1);
    let dom = clean_page(&html, &dir.join("failing.png"), "failing");
    assert!(dom.contains("<g class=\"hop violation\">"));
    assert!(dom.contains("location@fork(beta)"));
    // `#failures` turns the switch on: the script counts what it shows.
    let only = chromium_run(&format!("{}#failures", url(&html)), None, "failing-only");
    assert!(
        only.dom
            .contains("<span id=\"shown\">showing 2 of 3 drawn paths, 2 with violations"),
        "{}",
        only.dom
            .lines()
            .find(|l| l.contains("id=\"shown\""))
            .unwrap_or_default()
    );
}
