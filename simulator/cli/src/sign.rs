//! `laneway sign`: the baggage member a CI job sends so that its routing
//! key passes an ingress that strips untrusted keys. The work is
//! `laneway_core::signature`'s; this reads the secret file, reads the
//! clock (unless `--now` is given) and prints one line.
//!
//! Every bad input exits 2 before anything is printed to stdout: a secret
//! file that is not a regular file, empty, not base64 or too short
//! (`FILE: reason`, never quoting the secret), a key or member name the
//! filter would not read, a TTL outside 1 second to 30 days.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use laneway_core::config::{self, MAX_TTL_SECONDS};
use laneway_core::rfc3339;
use laneway_core::signature::{self, Secret, TOKEN_LEN_MAX};

use crate::io::{self, Exit};

/// A secret file is a few dozen bytes; this bounds what is read.
const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// `laneway sign`.
#[derive(clap::Args)]
pub struct Args {
    /// The secret: a regular file holding the same base64 text as the
    /// plugin configuration's `ingress.secrets` entry (32 to 64 bytes once
    /// decoded; surrounding whitespace is ignored).
    #[arg(long, value_name = "FILE")]
    secret_file: PathBuf,
    /// The routing key to sign (ASCII letters, digits and -._~, at most
    /// 128 bytes).
    #[arg(long, value_name = "KEY", value_parser = routing_key)]
    key: String,
    /// How long the signature is valid: a number and a unit, s, m, h or d
    /// (90s, 15m, 1h, 7d), at most 30d. The filter refuses a signature
    /// valid for longer than its `ingress.max_ttl_seconds` (7d unless
    /// configured).
    #[arg(long, value_name = "DURATION", value_parser = ttl)]
    ttl: u64,
    /// The baggage member that carries the key.
    #[arg(long, value_name = "NAME", default_value = config::DEFAULT_MEMBERS[0],
          value_parser = member_name)]
    member: String,
    /// Sign as if the time were this (Unix seconds) [default: the clock].
    #[arg(long, value_name = "UNIX_SECONDS")]
    now: Option<u64>,
    /// Print one JSON object (member, key, expires_unix_s, expires_at)
    /// instead of the bare member.
    #[arg(long)]
    json: bool,
}

fn routing_key(text: &str) -> Result<String, String> {
    match config::key_problem(text) {
        Some(reason) => Err(reason),
        None => Ok(text.to_owned()),
    }
}

fn member_name(text: &str) -> Result<String, String> {
    if config::is_member_name(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{} is not a valid member name: use lowercase letters, digits and _-*, starting \
             with a lowercase letter, so it is both a baggage key and a tracestate key",
            config::cut(text)
        ))
    }
}

/// `90s`, `15m`, `1h`, `7d` as seconds: 1 to [`MAX_TTL_SECONDS`].
fn ttl(text: &str) -> Result<u64, String> {
    let expected = "expected a number and a unit (s, m, h or d), e.g. 90s, 15m, 1h or 7d";
    let mut chars = text.chars();
    let scale = match chars.next_back() {
        Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3600,
        Some('d') => 86_400,
        _ => return Err(expected.to_owned()),
    };
    let digits = chars.as_str();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(expected.to_owned());
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return Err(format!("{expected} (no leading zeros)"));
    }
    let seconds = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&s| s <= MAX_TTL_SECONDS);
    match seconds {
        Some(0) => Err("a signature valid for 0 seconds is expired already".to_owned()),
        Some(s) => Ok(s),
        None => Err(format!(
            "longer than 30d ({MAX_TTL_SECONDS} seconds), the longest a filter accepts"
        )),
    }
}

/// Runs `laneway sign`.
pub fn run(args: Args) -> Result<u8, Exit> {
    let file = args.secret_file.display();
    let text = io::read_text(&args.secret_file, MAX_SECRET_FILE_BYTES)?;
    let secret = Secret::from_config(&text)
        .map_err(|reason| Exit::input(anyhow::anyhow!("{file}: {reason}")))?;
    let now = match args.now {
        Some(now) => now,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| {
                Exit::input(anyhow::anyhow!(
                    "the system clock is before 1970; give --now UNIX_SECONDS"
                ))
            })?
            .as_secs(),
    };
    let too_late = || {
        Exit::input(anyhow::anyhow!(
            "--now {now} plus --ttl is past {}, the latest expiry a signature can name",
            signature::MAX_EXPIRES_S
        ))
    };
    let expires = now.checked_add(args.ttl).ok_or_else(too_late)?;
    let mut out = [0u8; TOKEN_LEN_MAX];
    let n =
        signature::sign(&secret, args.key.as_bytes(), expires, &mut out).ok_or_else(too_late)?;
    let token = std::str::from_utf8(&out[..n]).map_err(Exit::bug)?;
    let member = format!(
        "{}={};{}={token}",
        args.member,
        args.key,
        signature::PROPERTY
    );
    let line = if args.json {
        // Past 2554 a u64 of nanoseconds ends: name the seconds only.
        let mut buf = [0u8; rfc3339::FORMAT_LEN_MAX];
        let at = expires
            .checked_mul(1_000_000_000)
            .map(|ns| rfc3339::format(ns, &mut buf).to_owned());
        serde_json::json!({
            "member": member,
            "key": args.key,
            "expires_unix_s": expires,
            "expires_at": at,
        })
        .to_string()
    } else {
        member
    };
    io::stdout(&format!("{line}\n"))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_units_and_bounds() {
        assert_eq!(ttl("90s"), Ok(90));
        assert_eq!(ttl("15m"), Ok(900));
        assert_eq!(ttl("1h"), Ok(3600));
        assert_eq!(ttl("7d"), Ok(604_800));
        assert_eq!(ttl("30d"), Ok(MAX_TTL_SECONDS));
        assert_eq!(ttl("720h"), Ok(MAX_TTL_SECONDS));
        for bad in [
            "", "s", "1", "1w", "1H", "-1h", "+1h", "1.5h", " 1h", "1h ", "01h", "h1", "1é", "é",
            "1éh",
        ] {
            assert!(ttl(bad).is_err(), "{bad:?}");
        }
        assert!(ttl("0s").unwrap_err().contains("0 seconds"));
        assert!(ttl("31d").unwrap_err().contains("longer than 30d"));
        assert!(ttl("2592001s").unwrap_err().contains("longer than 30d"));
        assert!(
            ttl("99999999999999999999999d")
                .unwrap_err()
                .contains("longer than 30d")
        );
    }
}
