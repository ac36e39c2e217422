//! The CLI's edge to the world: exit codes, bounded reads, writes that
//! can fail.
//!
//! - Every input file is read with [`read_text`]: a regular file, at most
//!   a documented size, never a FIFO or a device.
//! - Every byte to stdout or stderr goes through [`stdout`] and
//!   [`stderr`]. A closed pipe (`| head`) ends the program quietly, killed
//!   by `SIGPIPE` as Unix tools are; any other write error (`> /dev/full`)
//!   is reported as what it is.
//! - Output files are [`Sink`]s: opened (and checked) before the work
//!   starts, refused when they are one of the inputs, written at the end,
//!   removed again when the run fails before writing them.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// 1: a check failed.
pub const CHECK_FAILED: u8 = 1;
/// 2: bad input, bad usage, or a file that cannot be read or written.
pub const BAD_INPUT: u8 = 2;
/// 3: an internal error, a bug in laneway.
pub const BUG: u8 = 3;

/// How the program ends, when not with a report.
pub enum Exit {
    /// Exit with this code, after printing the message (if any) to stderr.
    Code(u8, Option<anyhow::Error>),
    /// Stdout or stderr is a closed pipe: die of `SIGPIPE`, saying nothing.
    Pipe,
}

impl Exit {
    /// Bad input or usage (exit 2).
    pub fn input(e: impl Into<anyhow::Error>) -> Exit {
        Exit::Code(BAD_INPUT, Some(e.into()))
    }

    /// An internal error (exit 3): never the user's fault.
    pub fn bug(e: impl std::fmt::Display) -> Exit {
        Exit::Code(
            BUG,
            Some(anyhow::anyhow!(
                "internal error (a bug in laneway; please report it): {e}"
            )),
        )
    }
}

/// Reads `path` as UTF-8 text: a regular file of at most `limit` bytes.
pub fn read_text(path: &Path, limit: u64) -> Result<String, Exit> {
    let bytes = laneway_scenario::input::read_regular_file(path, limit)
        .map_err(|e| Exit::input(anyhow::anyhow!("{}: cannot read: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|e| {
        Exit::input(anyhow::anyhow!(
            "{}: not UTF-8: invalid byte at offset {}",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Ends the process the way a Unix tool ends on a closed pipe: killed by
/// `SIGPIPE` (which Rust programs ignore by default, to see `EPIPE`).
pub fn die_of_sigpipe() -> ! {
    // SAFETY: restoring a signal's default disposition and raising it has
    // no memory-safety preconditions; nothing here runs Rust code in a
    // signal handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    // Unreachable unless SIGPIPE is blocked: the shell's code for it.
    std::process::exit(128 + libc::SIGPIPE)
}

fn write_all(w: &mut dyn Write, what: &str, text: &str) -> Result<(), Exit> {
    match w.write_all(text.as_bytes()).and_then(|()| w.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Exit::Pipe),
        Err(e) => Err(Exit::input(anyhow::anyhow!("{what}: cannot write: {e}"))),
    }
}

/// Writes `text` to stdout.
pub fn stdout(text: &str) -> Result<(), Exit> {
    write_all(&mut std::io::stdout().lock(), "stdout", text)
}

/// Writes `text` to stderr. When stderr itself cannot be written, there
/// is nowhere left to say why: the program ends quietly (exit 2, or
/// `SIGPIPE` for a closed pipe).
pub fn stderr(text: &str) -> Result<(), Exit> {
    write_all(&mut std::io::stderr().lock(), "stderr", text).map_err(|e| match e {
        Exit::Pipe => Exit::Pipe,
        Exit::Code(..) => Exit::Code(BAD_INPUT, None),
    })
}

/// Writes a line to stderr, ignoring failure: for progress, which must
/// never stop the work.
pub fn progress_line(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Whether `a` and `b` are the same file (both exist, same device and
/// inode).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// An output file, opened before the work and written after it; `-` is
/// stdout.
pub struct Sink {
    path: PathBuf,
    file: Option<File>,
    /// We created it: remove it again if nothing is written.
    created: bool,
    written: bool,
}

impl Sink {
    /// Opens `path` for writing, without truncating it yet. Refuses a path
    /// that is one of `inputs`, a directory, or a FIFO with no reader.
    pub fn open(path: &Path, what: &str, inputs: &[&Path]) -> Result<Sink, Exit> {
        if path.as_os_str() == "-" {
            return Ok(Sink {
                path: path.to_path_buf(),
                file: None,
                created: false,
                written: false,
            });
        }
        let fail = |why: String| Exit::input(anyhow::anyhow!("{}: {what}: {why}", path.display()));
        if let Some(input) = inputs.iter().find(|i| same_file(path, i)) {
            return Err(fail(format!(
                "refusing to overwrite {}, an input of this run",
                input.display()
            )));
        }
        let existed = std::fs::symlink_metadata(path).is_ok();
        // O_NONBLOCK: opening a FIFO with no reader fails (ENXIO) instead
        // of waiting forever; it is cleared again below.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| {
                fail(match e.raw_os_error() {
                    Some(libc::ENXIO) => "it is a FIFO with no reader".into(),
                    Some(libc::EISDIR) => "it is a directory".into(),
                    _ => format!("cannot write: {e}"),
                })
            })?;
        set_blocking(&file).map_err(|e| fail(format!("cannot write: {e}")))?;
        Ok(Sink {
            path: path.to_path_buf(),
            file: Some(file),
            created: !existed,
            written: false,
        })
    }

    /// Whether this is stdout.
    pub fn is_stdout(&self) -> bool {
        self.file.is_none()
    }

    /// Replaces the file's contents with `text` (or writes it to stdout).
    pub fn write(mut self, text: &str) -> Result<(), Exit> {
        self.written = true;
        let Some(file) = &mut self.file else {
            return stdout(text);
        };
        let what = self.path.display().to_string();
        if file.metadata().is_ok_and(|m| m.is_file()) {
            file.set_len(0)
                .map_err(|e| Exit::input(anyhow::anyhow!("{what}: cannot write: {e}")))?;
        }
        write_all(file, &what, text)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if self.created && !self.written {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn set_blocking(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is a valid open descriptor owned by `file` for the
    // duration of these calls; F_GETFL/F_SETFL only read and set its
    // status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
