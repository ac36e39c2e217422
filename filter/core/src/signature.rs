//! Signed routing keys: a CI job's key can pass an ingress that strips
//! untrusted keys, when it carries an HMAC-SHA256 signature made with a
//! secret the ingress shares.
//!
//! The signature travels as a property of the routing-key member:
//!
//! ```text
//! sd-routing-key=KEY;laneway-sig=v1.EXP.SIG
//! EXP = Unix seconds, decimal, no leading zeros, 1 to 12 digits
//! SIG = base64url, no padding (43 characters) of
//!       HMAC-SHA256(secret, "laneway-sig-v1\n" KEY "\n" EXP)
//! ```
//!
//! Decisions made here:
//! - One spelling per token: `v1` only, EXP without leading zeros, SIG in
//!   canonical base64url (the last character's two unused bits zero), so a
//!   valid token cannot be altered into another valid token.
//! - Time is checked before the MAC: an expired token costs no HMAC. A
//!   token valid for longer than the configured `max_ttl` is refused
//!   (`too_far`): a leaked long-lived token is as good as a secret.
//! - The tag is compared in constant time (`Mac::verify_slice`), against
//!   every configured secret (at most two, for rotation) without stopping
//!   at the first match.
//! - A secret is never printed: `Debug` shows `Secret(..)` and errors say
//!   what is wrong with it without quoting it.
//!
//! [`verify`], [`find_token`] and [`sign`] never allocate and never panic on
//! any input; only [`Secret::from_config`] allocates (its error text).

use core::fmt;

use alloc::format;
use alloc::string::String;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::lines::trim_ows;

/// The baggage property that carries the token.
pub const PROPERTY: &str = "laneway-sig";
/// A secret has at least this many bytes (decoded).
pub const MIN_SECRET_BYTES: usize = 32;
/// A secret has at most this many bytes (decoded): SHA-256's block size,
/// past which HMAC hashes the key first.
pub const MAX_SECRET_BYTES: usize = 64;
/// The latest expiry a token can name: 12 decimal digits.
pub const MAX_EXPIRES_S: u64 = 999_999_999_999;
/// The length of SIG: 32 bytes in unpadded base64url.
pub const SIG_LEN: usize = 43;
/// The longest token, `v1.` + 12 digits + `.` + SIG.
pub const TOKEN_LEN_MAX: usize = VERSION.len() + 12 + 1 + SIG_LEN;

/// The token's version prefix, dot included.
const VERSION: &[u8] = b"v1.";
/// What the MAC covers before KEY.
const CONTEXT: &[u8] = b"laneway-sig-v1\n";

/// A shared secret, keyed into HMAC-SHA256 once at configure time; each
/// check clones the keyed state.
#[derive(Clone)]
pub struct Secret {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// The secret in a plugin configuration: base64 (standard or URL-safe
    /// alphabet, padding optional, surrounding whitespace ignored) of
    /// [`MIN_SECRET_BYTES`] to [`MAX_SECRET_BYTES`] bytes. The error says
    /// why, never quoting the secret.
    pub fn from_config(text: &str) -> Result<Secret, String> {
        let mut bytes = [0u8; MAX_SECRET_BYTES];
        let n = decode_secret(text, &mut bytes)?;
        let key = bytes.get(..n).unwrap_or_default();
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .map_err(|_| String::from("the secret cannot key HMAC-SHA256"))?;
        bytes.fill(0);
        Ok(Secret { mac })
    }

    /// The keyed MAC over the signed text for `key` and `exp`.
    fn mac(&self, key: &[u8], exp: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(CONTEXT);
        mac.update(key);
        mac.update(b"\n");
        mac.update(exp);
        mac
    }
}

const HINT: &str = "a secret is base64 of 32 to 64 random bytes, e.g. `openssl rand -base64 32`";

fn decode_secret(text: &str, out: &mut [u8; MAX_SECRET_BYTES]) -> Result<usize, String> {
    let lead = text.len() - text.trim_ascii_start().len();
    let text = text.trim_ascii().as_bytes();
    if text.is_empty() {
        return Err(format!("the secret is empty; {HINT}"));
    }
    let body = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    if body.len() < text.len() && !text.len().is_multiple_of(4) {
        return Err(format!(
            "the secret is not base64: its padding (=) does not fill the last group of 4; {HINT}"
        ));
    }
    if let Some(at) = body.iter().position(|&b| value(b, true).is_none()) {
        return Err(format!(
            "the secret is not base64: byte {} is not a base64 character; {HINT}",
            lead + at
        ));
    }
    let standard = body.iter().any(|b| b"+/".contains(b));
    let url = body.iter().any(|b| b"-_".contains(b));
    if standard && url {
        return Err(String::from(
            "the secret is not base64: it mixes the standard (+/) and URL-safe (-_) alphabets",
        ));
    }
    let decoded = body.len() * 3 / 4;
    if body.len() % 4 == 1 {
        return Err(format!(
            "the secret is not base64: {} characters cannot be base64 (one too many or too few); {HINT}",
            body.len()
        ));
    }
    if decoded < MIN_SECRET_BYTES {
        return Err(format!(
            "the secret is {decoded} bytes once decoded; at least {MIN_SECRET_BYTES} are needed ({HINT})"
        ));
    }
    if decoded > MAX_SECRET_BYTES {
        return Err(format!(
            "the secret is {decoded} bytes once decoded; at most {MAX_SECRET_BYTES} are used ({HINT})"
        ));
    }
    decode(body, true, out).ok_or_else(|| {
        String::from(
            "the secret is not canonical base64: the last character's unused bits are not zero",
        )
    })
}

/// A base64 character's 6-bit value: URL-safe (`-_`), and also standard
/// (`+/`) when `standard`.
fn value(c: u8, standard: bool) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        b'+' if standard => 62,
        b'/' if standard => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes unpadded base64 into `out`: `None` on a bad character, a
/// length no encoding has, non-zero unused bits, or too little room.
fn decode(text: &[u8], standard: bool, out: &mut [u8]) -> Option<usize> {
    if text.len() % 4 == 1 {
        return None;
    }
    let (mut acc, mut bits, mut n) = (0u32, 0u32, 0usize);
    for &c in text {
        acc = acc << 6 | value(c, standard)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    (acc == 0).then_some(n)
}

const URL_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Encodes `input` as unpadded base64url into `out`, returning the length.
fn encode_url(input: &[u8], out: &mut [u8]) -> usize {
    let mut n = 0;
    for chunk in input.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let group = byte(0) << 16 | byte(1) << 8 | byte(2);
        for i in 0..=chunk.len() {
            let sextet = (group >> (18 - 6 * i)) & 63;
            if let (Some(slot), Some(&c)) = (out.get_mut(n), URL_ALPHABET.get(sextet as usize)) {
                *slot = c;
                n += 1;
            }
        }
    }
    n
}

/// `value` in decimal, no leading zeros, into `buf`; the digits written.
fn decimal(mut value: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        if let Some(slot) = buf.get_mut(start) {
            *slot = b'0' + (value % 10) as u8;
        }
        value /= 10;
        if value == 0 || start == 0 {
            break;
        }
    }
    buf.get(start..).unwrap_or_default()
}

/// Writes the token `v1.EXP.SIG` for `key`, expiring at `expires_unix_s`,
/// into `out`; returns its length. `None` (nothing written) when
/// `expires_unix_s` is past [`MAX_EXPIRES_S`], which no token can name.
pub fn sign(
    secret: &Secret,
    key: &[u8],
    expires_unix_s: u64,
    out: &mut [u8; TOKEN_LEN_MAX],
) -> Option<usize> {
    if expires_unix_s > MAX_EXPIRES_S {
        return None;
    }
    let mut digits = [0u8; 20];
    let exp = decimal(expires_unix_s, &mut digits);
    let tag: [u8; 32] = secret.mac(key, exp).finalize().into_bytes().into();
    let mut n = 0;
    for part in [VERSION, exp, b"."] {
        out.get_mut(n..n + part.len())?.copy_from_slice(part);
        n += part.len();
    }
    Some(n + encode_url(&tag, out.get_mut(n..)?))
}

/// What [`verify`] made of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Check {
    /// Well-formed, in time, and signed by one of the secrets.
    Valid,
    /// Not `v1.EXP.SIG` (or the property was given twice).
    Malformed,
    /// EXP is now or in the past.
    Expired,
    /// EXP is further ahead than the configured `max_ttl`.
    TooFar,
    /// No secret made SIG.
    BadSignature,
}

impl Check {
    /// Every outcome, for counters.
    pub const ALL: [Check; 5] = [
        Check::Valid,
        Check::Malformed,
        Check::Expired,
        Check::TooFar,
        Check::BadSignature,
    ];

    /// A stable snake_case name, for counters and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Valid => "valid",
            Check::Malformed => "malformed",
            Check::Expired => "expired",
            Check::TooFar => "too_far",
            Check::BadSignature => "bad_signature",
        }
    }
}

/// Checks `token` (the property's value) for `key` at `now_unix_s`:
/// well-formed, expiring after now and at most `max_ttl_s` from now, and
/// signed by one of `secrets` (at most two are expected; all are tried,
/// each compared in constant time). Never allocates, never panics.
pub fn verify(
    secrets: &[Secret],
    key: &[u8],
    token: &[u8],
    now_unix_s: u64,
    max_ttl_s: u64,
) -> Check {
    let Some((exp_text, expires, tag)) = read_token(token) else {
        return Check::Malformed;
    };
    if expires <= now_unix_s {
        return Check::Expired;
    }
    if expires > now_unix_s.saturating_add(max_ttl_s) {
        return Check::TooFar;
    }
    let mut valid = false;
    for secret in secrets {
        valid |= secret.mac(key, exp_text).verify_slice(&tag).is_ok();
    }
    if valid {
        Check::Valid
    } else {
        Check::BadSignature
    }
}

/// `v1.EXP.SIG` split into EXP's text, its value, and SIG's 32 bytes.
fn read_token(token: &[u8]) -> Option<(&[u8], u64, [u8; 32])> {
    let rest = token.strip_prefix(VERSION)?;
    let dot = rest.iter().position(|&b| b == b'.')?;
    let exp = rest.get(..dot)?;
    let sig = rest.get(dot + 1..)?;
    let leading_zero = exp.len() > 1 && exp.first() == Some(&b'0');
    if exp.is_empty() || exp.len() > 12 || leading_zero || sig.len() != SIG_LEN {
        return None;
    }
    let expires = exp.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })?;
    let mut tag = [0u8; 32];
    (decode(sig, false, &mut tag)? == tag.len()).then_some((exp, expires, tag))
}

/// The `laneway-sig` property among a member's properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token<'h> {
    /// No `laneway-sig` property.
    Absent,
    /// Exactly one, with this value (OWS-trimmed; empty for a bare
    /// `laneway-sig` with no `=`).
    Value(&'h [u8]),
    /// More than one: which one counts is ambiguous, so none does
    /// (treat as [`Check::Malformed`]).
    Duplicated,
}

/// Finds the `laneway-sig` property among a baggage member's properties
/// (each `name=value`, OWS allowed around `=`; names compared exactly).
/// Never allocates, never panics.
pub fn find_token<'h>(properties: impl Iterator<Item = &'h [u8]>) -> Token<'h> {
    let mut found = Token::Absent;
    for property in properties {
        let (name, value) = match property.iter().position(|&b| b == b'=') {
            Some(eq) => (
                property.get(..eq).unwrap_or_default(),
                property.get(eq + 1..).unwrap_or_default(),
            ),
            None => (property, &[][..]),
        };
        if trim_ows(name) == PROPERTY.as_bytes() {
            if found != Token::Absent {
                return Token::Duplicated;
            }
            found = Token::Value(trim_ows(value));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::string::ToString;
    use std::vec::Vec;

    use proptest::prelude::*;

    const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
    const TTL: u64 = 7 * 24 * 3600;

    /// base64 of the bytes 0, 1, ..., 31.
    const SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn secret(text: &str) -> Secret {
        Secret::from_config(text).unwrap()
    }

    fn token(s: &Secret, key: &str, exp: u64) -> Vec<u8> {
        let mut out = [0u8; TOKEN_LEN_MAX];
        let n = sign(s, key.as_bytes(), exp, &mut out).unwrap();
        out[..n].to_vec()
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn hmac_sha256_meets_rfc_4231() {
        let long_key = [0xaa; 131];
        let cases: &[(&[u8], &[u8], &str)] = &[
            (&[0x0b; 20], b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            (&[0xaa; 20], &[0xdd; 50], "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
            (
                &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25],
                &[0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            // Test case 5 pins only the first 128 bits.
            (&[0x0c; 20], b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
            (&long_key, b"Test Using Larger Than Block-Size Key - Hash Key First", "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            (
                &long_key,
                b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (i, &(key, data, want)) in cases.iter().enumerate() {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
            mac.update(data);
            let tag = mac.finalize().into_bytes();
            let want = hex(want);
            assert_eq!(
                &tag[..want.len()],
                &want[..],
                "RFC 4231 test case {}",
                i + 1
            );
        }
    }

    #[test]
    fn tokens_match_an_independent_implementation() {
        // Made with Python's hmac and base64 modules.
        let s = secret(SECRET);
        assert_eq!(
            token(&s, "qwblp48fpmb30", 1_767_229_200),
            b"v1.1767229200.q83ip5AO7RMQZA5plHJDUh_iQ057E2fq-bKOMF7--6Q"
        );
        assert_eq!(
            token(&s, "alice", 1_767_225_660),
            b"v1.1767225660.P8UeafLbV_CodC6CxDh3KW85psQZNKMhf79sKxKzMq0"
        );
    }

    #[test]
    fn sign_then_verify() {
        let s = secret(SECRET);
        let t = token(&s, "qwblp48fpmb30", NOW + 3600);
        let check = |secrets: &[Secret], key: &str, token: &[u8], now: u64| {
            verify(secrets, key.as_bytes(), token, now, TTL)
        };
        let one = [s.clone()];
        assert_eq!(check(&one, "qwblp48fpmb30", &t, NOW), Check::Valid);
        assert_eq!(
            check(&one, "qwblp48fpmb31", &t, NOW),
            Check::BadSignature,
            "another key"
        );
        assert_eq!(check(&one, "", &t, NOW), Check::BadSignature);
        let other = secret(&"QUFB".repeat(11));
        assert_eq!(
            check(std::slice::from_ref(&other), "qwblp48fpmb30", &t, NOW),
            Check::BadSignature
        );
        assert_eq!(
            check(&[], "qwblp48fpmb30", &t, NOW),
            Check::BadSignature,
            "no secrets"
        );
        assert_eq!(check(&one, "qwblp48fpmb30", &t, NOW + 3599), Check::Valid);
        assert_eq!(
            check(&one, "qwblp48fpmb30", &t, NOW + 3600),
            Check::Expired,
            "EXP == now"
        );
        assert_eq!(check(&one, "qwblp48fpmb30", &t, NOW + 9999), Check::Expired);
        assert_eq!(
            verify(&one, b"qwblp48fpmb30", &t, NOW, 3599),
            Check::TooFar,
            "one second beyond max_ttl"
        );
        assert_eq!(verify(&one, b"qwblp48fpmb30", &t, NOW, 3600), Check::Valid);
        assert_eq!(
            verify(&one, b"qwblp48fpmb30", &t, NOW, u64::MAX),
            Check::Valid
        );
        // Rotation: a token from either of two secrets verifies.
        let both = [other.clone(), s.clone()];
        assert_eq!(check(&both, "qwblp48fpmb30", &t, NOW), Check::Valid);
        let t2 = token(&other, "qwblp48fpmb30", NOW + 60);
        assert_eq!(check(&both, "qwblp48fpmb30", &t2, NOW), Check::Valid);
        assert_eq!(check(&one, "qwblp48fpmb30", &t2, NOW), Check::BadSignature);
        // A changed EXP is a bad signature, not a new token.
        let moved = std::string::String::from_utf8(t.clone())
            .unwrap()
            .replace("1767229200", "1767229201");
        assert_eq!(
            check(&one, "qwblp48fpmb30", moved.as_bytes(), NOW),
            Check::BadSignature
        );
    }

    #[test]
    fn malformed_tokens() {
        let s = [secret(SECRET)];
        let good = std::string::String::from_utf8(token(&s[0], "k", NOW + 60)).unwrap();
        let sig = good.rsplit('.').next().unwrap().to_string();
        assert_eq!(sig.len(), SIG_LEN);
        // The last character's unused bits set: a different spelling.
        let last = sig.as_bytes()[SIG_LEN - 1];
        let pos = URL_ALPHABET.iter().position(|&c| c == last).unwrap();
        let sibling = URL_ALPHABET[pos ^ 1] as char;
        let noncanonical = format!("{}{}", &sig[..SIG_LEN - 1], sibling);
        let exp = NOW + 60;
        let cases = [
            std::string::String::new(),
            "v1".into(),
            "v1.".into(),
            format!("v2.{exp}.{sig}"),
            format!("V1.{exp}.{sig}"),
            format!("v1.{exp}.{sig}="),
            format!("v1.{exp}.{sig}A"),
            format!("v1.{exp}.{}", &sig[..42]),
            format!("v1.{exp}.{}+", &sig[..42]),
            format!("v1.{exp}.{}/", &sig[..42]),
            format!("v1.{exp}.{noncanonical}"),
            format!("v1.0{exp}.{sig}"),
            format!("v1.+{exp}.{sig}"),
            format!("v1.{exp}x.{sig}"),
            format!("v1..{sig}"),
            format!("v1.{exp}"),
            format!("v1.{exp}.{sig}.x"),
            format!("v1.1234567890123.{sig}"),
            format!(" v1.{exp}.{sig}"),
            format!("v1.{exp}.{sig} "),
            format!("v1.{exp} .{sig}"),
        ];
        for t in &cases {
            assert_eq!(
                verify(&s, b"k", t.as_bytes(), NOW, TTL),
                Check::Malformed,
                "{t:?}"
            );
        }
        assert_eq!(verify(&s, b"k", good.as_bytes(), NOW, TTL), Check::Valid);
        // EXP 0 is well-formed, and expired.
        assert_eq!(
            verify(&s, b"k", format!("v1.0.{sig}").as_bytes(), NOW, TTL),
            Check::Expired
        );
        assert_eq!(
            verify(
                &s,
                b"k",
                format!("v1.999999999999.{sig}").as_bytes(),
                NOW,
                TTL
            ),
            Check::TooFar
        );
    }

    #[test]
    fn sign_writes_every_expiry_a_token_can_name() {
        let s = secret(SECRET);
        let mut out = [0u8; TOKEN_LEN_MAX];
        assert_eq!(sign(&s, b"k", MAX_EXPIRES_S, &mut out), Some(TOKEN_LEN_MAX));
        assert_eq!(sign(&s, b"k", MAX_EXPIRES_S + 1, &mut out), None);
        assert_eq!(sign(&s, b"k", 0, &mut out), Some(3 + 1 + 1 + SIG_LEN));
        assert!(out.starts_with(b"v1.0."));
        for exp in [1, 9, 10, 99, 100, NOW, MAX_EXPIRES_S] {
            let n = sign(&s, b"k", exp, &mut out).unwrap();
            let t = &out[..n];
            assert_eq!(read_token(t).map(|(_, e, _)| e), Some(exp));
            assert_eq!(
                t,
                format!(
                    "v1.{exp}.{}",
                    std::str::from_utf8(&t[n - SIG_LEN..]).unwrap()
                )
                .as_bytes()
            );
        }
    }

    #[test]
    fn secrets_from_configuration() {
        // The same 33 bytes (with + and / in standard base64) in four
        // spellings sign the same tokens.
        let bytes: Vec<u8> = (0..33u8).map(|i| 0xf8 | (i % 8)).collect();
        let standard = "+Pn6+/z9/v/4+fr7/P3+//j5+vv8/f7/+Pn6+/z9/v/4";
        assert_eq!(standard.len(), 44);
        let want = token(&secret(standard), "k", NOW + 1);
        for text in [
            standard.to_string(),
            standard.replace('+', "-").replace('/', "_"),
            format!("  {standard}\n"),
        ] {
            assert_eq!(token(&secret(&text), "k", NOW + 1), want, "{text:?}");
        }
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&bytes).unwrap();
        mac.update(b"laneway-sig-v1\nk\n");
        mac.update((NOW + 1).to_string().as_bytes());
        let mut sig = [0u8; SIG_LEN];
        encode_url(&mac.finalize().into_bytes(), &mut sig);
        assert_eq!(&want[want.len() - SIG_LEN..], &sig);
        // Unpadded and padded forms of 32 bytes.
        let unpadded = SECRET.trim_end_matches('=');
        assert_eq!(
            token(&secret(unpadded), "k", 5),
            token(&secret(SECRET), "k", 5)
        );
        assert!(
            Secret::from_config(&"A".repeat(86)).is_ok(),
            "64 bytes, unpadded"
        );
        assert!(
            Secret::from_config(&format!("{}==", "A".repeat(86))).is_ok(),
            "64 bytes"
        );
        assert!(
            Secret::from_config(&format!("{}=", "A".repeat(43))).is_ok(),
            "32 bytes"
        );
        assert!(
            Secret::from_config(&"A".repeat(43)).is_ok(),
            "32 bytes, unpadded"
        );
    }

    #[test]
    fn secret_errors_say_why_without_the_secret() {
        let e = |t: &str| Secret::from_config(t).unwrap_err();
        assert!(e("").starts_with("the secret is empty"));
        assert!(e(" \n").starts_with("the secret is empty"));
        assert!(e(&"A".repeat(42)).starts_with("the secret is 31 bytes once decoded; at least 32"));
        assert!(e("c2hvcnQ=").starts_with("the secret is 5 bytes once decoded"));
        assert!(e(&"A".repeat(92)).starts_with("the secret is 69 bytes once decoded; at most 64"));
        assert!(
            e(&format!("{}!", "A".repeat(43)))
                .starts_with("the secret is not base64: byte 43 is not")
        );
        assert!(e(&format!("  {}*", "A".repeat(43))).contains("byte 45 is not"));
        assert!(e(&format!("{} {}", "A".repeat(20), "A".repeat(23))).contains("byte 20 is not"));
        assert!(e(&format!("{}+_", "A".repeat(42))).contains("mixes the standard"));
        assert!(
            e(&format!("{}=", "A".repeat(42))).contains("padding"),
            "42 + 1 is not a group of 4"
        );
        assert!(
            e(&format!("{}===", "A".repeat(41))).contains("byte 41 is not"),
            "three ="
        );
        assert!(e(&format!("{}=A", "A".repeat(42))).contains("byte 42 is not"));
        assert!(e(&"A".repeat(45)).contains("45 characters cannot be base64"));
        assert!(e(&format!("{}B", "A".repeat(42))).contains("not canonical"));
        for text in [
            "",
            "hunter2-secret-value",
            &"Z".repeat(42),
            &"Z".repeat(100),
        ] {
            let message = e(text);
            if !text.is_empty() {
                assert!(!message.contains(text), "{message}");
            }
        }
        assert_eq!(format!("{:?}", secret(SECRET)), "Secret(..)");
    }

    #[test]
    fn find_token_tells_absent_from_duplicated() {
        fn find<'h>(props: &[&'h str]) -> Token<'h> {
            find_token(props.iter().map(|p| p.as_bytes()))
        }
        assert_eq!(find(&[]), Token::Absent);
        assert_eq!(
            find(&["p=1", "laneway-sigx=1", "Laneway-Sig=1"]),
            Token::Absent
        );
        assert_eq!(find(&["laneway-sig=v1.1.x"]), Token::Value(b"v1.1.x"));
        assert_eq!(
            find(&["p=1", "laneway-sig \t= v1.1.x", "q"]),
            Token::Value(b"v1.1.x")
        );
        assert_eq!(find(&["laneway-sig"]), Token::Value(b""));
        assert_eq!(find(&["laneway-sig=a=b"]), Token::Value(b"a=b"));
        assert_eq!(find(&["laneway-sig=a", "laneway-sig=a"]), Token::Duplicated);
        assert_eq!(
            find(&["laneway-sig=a", "p", "laneway-sig"]),
            Token::Duplicated
        );
        // From a parsed baggage member.
        let m =
            crate::baggage::parse_member(b"sd-routing-key=k ; laneway-sig = v1.2.y ;p").unwrap();
        assert_eq!(find_token(m.properties()), Token::Value(b"v1.2.y"));
    }

    #[test]
    fn names_and_sizes() {
        let names: Vec<&str> = Check::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            ["valid", "malformed", "expired", "too_far", "bad_signature"]
        );
        assert_eq!(TOKEN_LEN_MAX, 59);
        assert_eq!(core::mem::size_of::<Check>(), 1);
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_tokens(
            bytes in prop::collection::vec(any::<u8>(), 0..80),
            now in any::<u64>(), ttl in any::<u64>(),
        ) {
            let s = [secret(SECRET)];
            let check = verify(&s, b"k", &bytes, now, ttl);
            prop_assert_ne!(check, Check::Valid);
            let _ = find_token(bytes.split(|&b| b == b';'));
            let _ = Secret::from_config(&std::string::String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn near_miss_tokens_never_verify(
            exp in 1u64..=MAX_EXPIRES_S, at in 0usize..TOKEN_LEN_MAX, with in any::<u8>(),
        ) {
            let s = [secret(SECRET)];
            let mut t = token(&s[0], "k", exp);
            prop_assert_eq!(verify(&s, b"k", &t, exp - 1, 1), Check::Valid);
            if let Some(b) = t.get_mut(at) && *b != with {
                *b = with;
                prop_assert_ne!(verify(&s, b"k", &t, exp - 1, 1), Check::Valid);
            }
        }

        #[test]
        fn round_trips_for_any_key_and_expiry(
            key in "[A-Za-z0-9._~-]{1,128}", exp in 1u64..=MAX_EXPIRES_S, secret_bytes in prop::collection::vec(any::<u8>(), 32..=64),
        ) {
            let text: std::string::String = {
                let mut out = [0u8; 86];
                let n = encode_url(&secret_bytes, &mut out);
                std::str::from_utf8(&out[..n]).unwrap().into()
            };
            let s = [secret(&text)];
            let t = token(&s[0], &key, exp);
            prop_assert!(t.len() <= TOKEN_LEN_MAX);
            prop_assert_eq!(verify(&s, key.as_bytes(), &t, exp - 1, 1), Check::Valid);
            prop_assert_eq!(verify(&s, key.as_bytes(), &t, exp, 1), Check::Expired);
            let mut other = key.clone();
            other.push('x');
            prop_assert_eq!(verify(&s, other.as_bytes(), &t, exp - 1, 1), Check::BadSignature);
        }
    }
}
