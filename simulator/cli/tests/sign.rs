//! `laneway sign` as a CI job uses it: the printed member verifies with
//! `laneway_core::signature::verify`, and every bad input (secret file,
//! key, member name, TTL) exits 2 naming what is wrong, without printing
//! the secret.

use std::path::PathBuf;
use std::process::{Command, Output};

use laneway_core::baggage::parse_member;
use laneway_core::signature::{self, Check, Secret, Token};

/// base64 of the bytes 0, 1, ..., 31.
const SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn laneway(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_laneway"))
        .args(args)
        .output()
        .expect("the laneway binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("laneway-sign-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A secret file holding `text`.
fn secret_file(name: &str, text: &str) -> String {
    let path = scratch(name).join("secret");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// `laneway sign` with the test secret and `--now NOW`, plus `extra`.
fn sign(name: &str, extra: &[&str]) -> Output {
    sign_at(name, &NOW.to_string(), extra)
}

/// `laneway sign` with the test secret and `--now now`, plus `extra`.
fn sign_at(name: &str, now: &str, extra: &[&str]) -> Output {
    let file = secret_file(name, &format!("{SECRET}\n"));
    let mut args = vec!["sign", "--secret-file", &file, "--now", now];
    args.extend_from_slice(extra);
    laneway(&args)
}

/// The token in a printed member line, checked as the filter checks it.
/// `key` is what the token is checked for: the member's value, unless a
/// test asks for another.
fn check(line: &str, member: &str, key: &str, now: u64, max_ttl: u64) -> Check {
    let m = parse_member(line.as_bytes()).expect("a valid baggage member");
    assert_eq!(m.key, member.as_bytes());
    let Token::Value(token) = signature::find_token(m.properties()) else {
        panic!("one laneway-sig property in {line:?}");
    };
    let secrets = [Secret::from_config(SECRET).unwrap()];
    signature::verify(&secrets, key.as_bytes(), token, now, max_ttl)
}

#[test]
fn the_printed_member_verifies_until_it_expires() {
    let out = sign("ok", &["--key", "qwblp48fpmb30", "--ttl", "1h"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text.strip_suffix('\n').expect("one line");
    // The same bytes as Python's hmac and base64 make.
    assert_eq!(
        line,
        "sd-routing-key=qwblp48fpmb30;laneway-sig=v1.1767229200.q83ip5AO7RMQZA5plHJDUh_iQ057E2fq-bKOMF7--6Q"
    );
    let week = 7 * 24 * 3600;
    assert_eq!(
        check(line, "sd-routing-key", "qwblp48fpmb30", NOW, week),
        Check::Valid
    );
    assert_eq!(
        check(line, "sd-routing-key", "qwblp48fpmb30", NOW + 3599, week),
        Check::Valid
    );
    assert_eq!(
        check(line, "sd-routing-key", "qwblp48fpmb30", NOW + 3600, week),
        Check::Expired
    );
    assert_eq!(
        check(line, "sd-routing-key", "qwblp48fpmb3", NOW, week),
        Check::BadSignature
    );
    assert_eq!(
        check(line, "sd-routing-key", "qwblp48fpmb30", NOW, 60),
        Check::TooFar
    );
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn member_name_ttl_units_and_the_clock() {
    for (ttl, seconds) in [
        ("90s", 90),
        ("15m", 900),
        ("1h", 3600),
        ("7d", 604_800),
        ("30d", 2_592_000),
    ] {
        let out = sign(
            &format!("ttl-{ttl}"),
            &["--key", "k-1.x_~", "--ttl", ttl, "--member", "sd-sandbox"],
        );
        assert!(out.status.success(), "{ttl}: {}", stderr(&out));
        let text = stdout(&out);
        let line = text.trim_end();
        let exp = NOW + seconds;
        assert!(
            line.starts_with(&format!("sd-sandbox=k-1.x_~;laneway-sig=v1.{exp}.")),
            "{line}"
        );
        assert_eq!(
            check(line, "sd-sandbox", "k-1.x_~", NOW, 30 * 86_400),
            Check::Valid,
            "{ttl}"
        );
    }
    // Without --now, the clock: valid now, for about an hour.
    let file = secret_file("clock", SECRET);
    let out = laneway(&["sign", "--secret-file", &file, "--key", "k", "--ttl", "1h"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(
        check(
            stdout(&out).trim_end(),
            "sd-routing-key",
            "k",
            now,
            3600 + 60
        ),
        Check::Valid
    );
}

#[test]
fn json_names_the_expiry() {
    let out = sign("json", &["--key", "k", "--ttl", "1h", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["key"], "k");
    assert_eq!(v["expires_unix_s"], NOW + 3600);
    assert_eq!(v["expires_at"], "2026-01-01T01:00:00Z");
    let member = v["member"].as_str().unwrap();
    assert_eq!(
        check(member, "sd-routing-key", "k", NOW, 3600),
        Check::Valid
    );
}

/// Exits 2, prints nothing to stdout, and says `want` on stderr.
fn refused(out: &Output, want: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty(), "{}", stdout(out));
    assert!(err.contains(want), "expected {want:?} in:\n{err}");
    assert!(!err.contains("internal error"), "{err}");
}

#[test]
fn bad_secret_files_exit_2_naming_the_file() {
    let run = |file: &str| laneway(&["sign", "--secret-file", file, "--key", "k", "--ttl", "1h"]);
    let short = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg"; // 31 bytes
    let cases = [
        ("empty", "", "the secret is empty"),
        ("blank", " \n\t\n", "the secret is empty"),
        (
            "short",
            short,
            "the secret is 31 bytes once decoded; at least 32",
        ),
        (
            "not-base64",
            "this is not base64 at all, is it?",
            "the secret is not base64: byte 4 is not a base64 character",
        ),
        (
            "mixed",
            &format!("{}+_", "A".repeat(42)),
            "the secret is not base64: it mixes the standard",
        ),
    ];
    for (name, text, want) in cases {
        let file = secret_file(name, text);
        let out = run(&file);
        refused(&out, &format!("{file}: {want}"));
        if !text.trim().is_empty() {
            assert!(
                !stderr(&out).contains(text.trim()),
                "the secret is quoted: {}",
                stderr(&out)
            );
        }
    }
    let missing = scratch("missing").join("nope");
    let missing = missing.display().to_string();
    refused(&run(&missing), &format!("{missing}: cannot read"));
    refused(
        &run("/dev/zero"),
        "/dev/zero: cannot read: it is a device, not a regular file",
    );
    let dir = scratch("dir").display().to_string();
    refused(
        &run(&dir),
        &format!("{dir}: cannot read: it is a directory"),
    );
    let big = secret_file("big", &"A".repeat(10_000));
    refused(
        &run(&big),
        &format!("{big}: cannot read: it is 10000 bytes"),
    );
    let binary = scratch("binary").join("secret");
    std::fs::write(&binary, [0xff, 0xfe, b'A']).unwrap();
    let binary = binary.display().to_string();
    refused(&run(&binary), &format!("{binary}: not UTF-8"));
}

#[test]
fn bad_keys_members_and_ttls_are_usage_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["--key", "", "--ttl", "1h"], "the key is empty"),
        (
            &["--key", "a b", "--ttl", "1h"],
            "a key is ASCII letters, digits and -._~",
        ),
        (
            &["--key", "k;laneway-sig=x", "--ttl", "1h"],
            "a key is ASCII letters",
        ),
        (
            &["--key", &"k".repeat(129), "--ttl", "1h"],
            "longer than 128 bytes",
        ),
        (
            &["--key", "k", "--ttl", "1h", "--member", "SD-Key"],
            "is not a valid member name",
        ),
        (
            &["--key", "k", "--ttl", "1h", "--member", "a=b"],
            "is not a valid member name",
        ),
        (&["--key", "k", "--ttl", "0s"], "expired already"),
        (&["--key", "k", "--ttl", "31d"], "longer than 30d"),
        (&["--key", "k", "--ttl", "1w"], "a number and a unit"),
        (&["--key", "k", "--ttl", "1"], "a number and a unit"),
        (&["--key", "k", "--ttl", "01h"], "no leading zeros"),
        (&["--key", "k"], "--ttl"),
        (&["--ttl", "1h"], "--key"),
    ];
    for (i, (args, want)) in cases.iter().enumerate() {
        refused(&sign(&format!("usage-{i}"), args), want);
    }
    let out = laneway(&["sign", "--key", "k", "--ttl", "1h"]);
    refused(&out, "--secret-file");
    let far = sign_at("far", "999999999999", &["--key", "k", "--ttl", "1d"]);
    refused(&far, "the latest expiry a signature can name");
    let overflow = sign_at(
        "overflow",
        &u64::MAX.to_string(),
        &["--key", "k", "--ttl", "1d"],
    );
    refused(&overflow, "the latest expiry a signature can name");
}

#[test]
fn help_is_true() {
    let out = laneway(&["sign", "--help"]);
    assert!(out.status.success());
    let help = stdout(&out);
    for word in [
        "--secret-file",
        "--key",
        "--ttl",
        "--member",
        "--now",
        "--json",
        "sd-routing-key",
        "30d",
    ] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
    let top = stdout(&laneway(&["--help"]));
    assert!(top.contains("sign"), "{top}");
}
