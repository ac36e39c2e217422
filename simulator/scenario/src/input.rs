//! Reading the files a scenario names, bounded: only regular files, at
//! most a documented size, opened without blocking. `/dev/zero`, a FIFO
//! with no writer or a directory is refused with what it is, before any
//! byte is read.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest scenario file (64 MiB).
pub const MAX_SCENARIO_BYTES: u64 = 64 << 20;

/// The largest plugin configuration file: the filter's own limit
/// ([`laneway_core::MAX_CONFIG_BYTES`], 128 MiB).
pub const MAX_CONFIG_BYTES: u64 = laneway_core::MAX_CONFIG_BYTES as u64;

/// Reads `path`, a regular file of at most `limit` bytes. The error says
/// why, without the path (the caller names it).
pub fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    let kind = meta.file_type();
    let what = if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_char_device() || kind.is_block_device() {
        Some("a device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        None
    };
    if let Some(what) = what {
        return Err(format!("it is {what}, not a regular file"));
    }
    if meta.len() > limit {
        return Err(format!(
            "it is {} bytes; the limit is {limit} bytes",
            meta.len()
        ));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "it grew past the limit of {limit} bytes while read"
        ));
    }
    Ok(bytes)
}
