//! The filter never traps, and always does what the core decides: random
//! configurations (every guard on or off, now and then an invalid one)
//! and random requests (arbitrary bytes in `baggage` and `tracestate`,
//! routing-key look-alikes, signatures good and bad, several and huge
//! lines, arbitrary `:authority`, `:path` and source addresses), each run
//! through `laneway_filter.wasm` in the wasmtime host and through the
//! core's `Router::guard` with the same facts (the hop's source address,
//! the VM's clock, the plugin's shared data).
//!
//! Three judges, in order:
//! 1. **The host**: no trap, no `HopError`, ever.
//! 2. **The core** ([`expect`]): the filter's counters, filter-state
//!    entry, local reply and bucket are what `Router::guard`'s outcome
//!    asks for, and the request it forwards is, header for header and in
//!    order, a copy of the request edited by the core's `Outcome::apply`
//!    (with the glue's `:authority` rewrite).
//! 3. **Naive oracles** ([`naive`]), which know neither the core nor the
//!    glue: an untrusted request leaves with no routing-key look-alike and
//!    every other element byte for byte; a counted hop leaves with the
//!    new count; a preview parameter never leaves in `:path`.
//!
//! Configurations: an invalid one must be refused by both the filter and
//! the core, and the VM goes on with its last good one. Two VMs of one
//! plugin (Envoy's workers) take the requests in random turns, so the
//! rate limit's shared bucket is exercised across them.
//!
//! Reproducible: a seeded SplitMix64 drives everything. A failing case is
//! minimised (lines, elements and bytes removed while it still fails the
//! same way, replayed alone on a fresh plugin) and written to
//! `testdata/fuzz/` (schema: `testdata/fuzz/README.md`); every file there
//! is replayed first. A file that still fails is an open bug: its kind of
//! failure is then tolerated (counted) during the random run, so one open
//! bug does not hide the others, and the test fails at the end.
//!
//! `LANEWAY_FUZZ_CASES` (default 100,000) and `LANEWAY_FUZZ_SEED` (default
//! fixed) choose the run; `make fuzz` runs ten million in release.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use laneway_core::cidr::{self, Ip};
use laneway_core::decide::TraceStateStatus;
use laneway_core::filter_state::{self, MAX_ENTRY, MAX_KEY_TEXT};
use laneway_core::guard::{self, BUCKET_BYTES, HeaderSink};
use laneway_core::rewrite;
use laneway_core::signature::{self, Secret};
use laneway_core::{Decision, Facts, Reason, Request, Route, Router, Trust};
use laneway_testdata::wasm;
use proxy_wasm_host::{
    Compiled, HeaderMap, Hop, HostError, HostOptions, LoadOptions, Plugin, ProxyState, Vm,
};

/// Cases between configuration changes.
const CONFIG_EVERY: u64 = 400;
/// The default seed (any run can be repeated with `LANEWAY_FUZZ_SEED`).
const DEFAULT_SEED: u64 = 0x1a2e_0011_fa22_2026;

// ---------------------------------------------------------------------
// The random source.

/// SplitMix64: tiny, seedable, and good enough to drive a generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn pick_copied<T: Copy>(&mut self, items: &[T]) -> T {
        *self.pick(items)
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    fn bytes(&mut self, max: u64) -> Vec<u8> {
        (0..self.below(max + 1)).map(|_| self.byte()).collect()
    }

    fn printable(&mut self, max: u64) -> Vec<u8> {
        (0..self.below(max + 1))
            .map(|_| b' ' + self.below(95) as u8)
            .collect()
    }
}

// ---------------------------------------------------------------------
// Configurations.

/// base64 of 38 bytes each; the edge may have any two.
const SECRETS: [&str; 3] = [
    "bGFuZXdheS10ZXN0LXNlY3JldC0wMDAwMDAwMDAwMDAwMDAwMDA=",
    "c2Vjb25kLWxhbmV3YXktdGVzdC1zZWNyZXQtMTExMTExMTExMTE=",
    "dGhpcmQtbGFuZXdheS10ZXN0LXNlY3JldC0yMjIyMjIyMjIyMjI=",
];
/// A well-formed secret no configuration has.
const FOREIGN: &str = "b3RoZXItc2VjcmV0LW5vdC1jb25maWd1cmVkLTAwMDAwMDAwMDA=";
const KEYS: [&str; 4] = ["k1", "k2", "k3", "qwblp48fpmb30"];
const SERVICES: [&str; 3] = ["frontend", "cart", "location"];
const CIDRS: [&str; 7] = [
    "10.0.0.0/8",
    "fd00::/8",
    "192.0.2.0/24",
    "2001:db8:1::/48",
    "10.1.2.3/32",
    "::/0",
    "0.0.0.0/0",
];
const PREVIEW_HOSTS: [(&str, &str); 2] =
    [("*.preview.example.com", "frontend"), ("*.pr.test", "cart")];
const QUERY_PARAMS: [&str; 2] = ["sd-routing-key", "key"];
const MEMBER_SETS: [&[&str]; 4] = [
    &["sd-routing-key", "sd-sandbox"],
    &["sd-routing-key"],
    &["x-route", "sd-routing-key"],
    &["sd-sandbox"],
];

/// A valid configuration and what a request generator needs to know of
/// it (to sign keys with its secrets, aim at its preview hosts).
#[derive(Clone)]
struct World {
    config: String,
    keys: Vec<&'static str>,
    members: &'static [&'static str],
    secrets: Vec<&'static str>,
    max_ttl: u64,
    suffixes: Vec<&'static str>,
    query_param: Option<&'static str>,
}

fn rfc3339(ns: u64) -> String {
    let mut buf = [0u8; laneway_core::rfc3339::FORMAT_LEN_MAX];
    laneway_core::rfc3339::format(ns, &mut buf).to_owned()
}

fn quoted(list: &[&str]) -> String {
    let items: Vec<String> = list.iter().map(|s| format!("\"{s}\"")).collect();
    items.join(",")
}

fn rate_limit(rng: &mut Rng) -> String {
    let rps = rng.range(1, 5);
    if rng.one_in(3) {
        format!(r#"{{"requests_per_second":{rps}}}"#)
    } else {
        format!(
            r#"{{"requests_per_second":{rps},"burst":{}}}"#,
            rng.range(1, 5)
        )
    }
}

/// An instant within two minutes of `now_ns`, either side.
fn around(rng: &mut Rng, now_ns: u64) -> u64 {
    let offset = rng.below(240_000_000_000);
    (now_ns + offset).saturating_sub(120_000_000_000)
}

impl World {
    fn generate(rng: &mut Rng, now_ns: u64) -> World {
        let members = *rng.pick(&MEMBER_SETS);
        let mut fields = vec![r#""version":1"#.to_owned()];
        if members != MEMBER_SETS[0] || rng.one_in(5) {
            fields.push(format!(
                r#""routing_key":{{"members":[{}]}}"#,
                quoted(members)
            ));
        }
        match rng.below(8) {
            0 => fields.push(r#""unknown_key":{"policy":"reject"}"#.into()),
            1 => fields.push(r#""unknown_key":{"policy":"reject","status":404}"#.into()),
            2 => fields.push(r#""unknown_key":{"policy":"baseline"}"#.into()),
            _ => {}
        }
        let mut world = World {
            config: String::new(),
            keys: Vec::new(),
            members,
            secrets: Vec::new(),
            max_ttl: 7 * 24 * 3600,
            suffixes: Vec::new(),
            query_param: None,
        };
        let ingress = rng.one_in(2);
        if ingress {
            let cidrs: Vec<&str> = CIDRS
                .iter()
                .enumerate()
                .filter(|(i, _)| rng.below(100) < if *i < 5 { 40 } else { 4 })
                .map(|(_, c)| *c)
                .collect();
            let n = rng.below(3) as usize;
            let first = rng.below(3) as usize;
            world.secrets = (0..n).map(|i| SECRETS[(first + i) % 3]).collect();
            let mut parts = vec![
                format!(r#""trusted_cidrs":[{}]"#, quoted(&cidrs)),
                format!(r#""secrets":[{}]"#, quoted(&world.secrets)),
            ];
            if rng.one_in(3) {
                world.max_ttl = rng.range(60, 7 * 24 * 3600);
                parts.push(format!(r#""max_ttl_seconds":{}"#, world.max_ttl));
            }
            fields.push(format!(r#""ingress":{{{}}}"#, parts.join(",")));
        }
        if ingress && rng.one_in(2) {
            let hosts: Vec<(&str, &str)> = PREVIEW_HOSTS
                .iter()
                .filter(|_| rng.below(10) < 6)
                .copied()
                .collect();
            let mut param = (rng.below(10) < 6).then(|| *rng.pick(&QUERY_PARAMS));
            if hosts.is_empty() && param.is_none() {
                param = Some(QUERY_PARAMS[0]);
            }
            let list: Vec<String> = hosts
                .iter()
                .map(|(p, s)| format!(r#"{{"pattern":"{p}","service":"{s}"}}"#))
                .collect();
            let mut parts = vec![format!(r#""hosts":[{}]"#, list.join(","))];
            if let Some(q) = param {
                parts.push(format!(r#""query_param":"{q}""#));
            }
            fields.push(format!(r#""preview":{{{}}}"#, parts.join(",")));
            world.suffixes = hosts.iter().map(|&(p, _)| &p[1..]).collect();
            world.query_param = param;
        }
        if rng.one_in(3) {
            fields.push(format!(r#""rate_limit":{}"#, rate_limit(rng)));
        }
        if rng.one_in(3) {
            fields.push(format!(
                r#""loop_guard":{{"max_hops":{}}}"#,
                rng.range(1, 5)
            ));
        }
        let mut keys = KEYS.to_vec();
        for i in (1..keys.len()).rev() {
            keys.swap(i, rng.below(i as u64 + 1) as usize);
        }
        keys.truncate(rng.range(1, 4) as usize);
        let mut sandboxes = Vec::new();
        for key in &keys {
            let mut forks = Vec::new();
            for service in SERVICES {
                if rng.below(10) >= 6 {
                    continue;
                }
                let port = if rng.one_in(4) { ":9000" } else { "" };
                let mut fork =
                    format!(r#"{{"service":"{service}","destination":"{service}-{key}{port}""#);
                if rng.one_in(5) {
                    let at = rfc3339(around(rng, now_ns));
                    fork.push_str(&format!(r#","expires_at":"{at}""#));
                }
                fork.push('}');
                forks.push(fork);
            }
            let mut sandbox = format!(r#"{{"key":"{key}","forks":[{}]"#, forks.join(","));
            if rng.one_in(5) {
                let at = rfc3339(around(rng, now_ns));
                sandbox.push_str(&format!(r#","expires_at":"{at}""#));
            }
            if rng.one_in(5) {
                sandbox.push_str(&format!(r#","rate_limit":{}"#, rate_limit(rng)));
            }
            sandbox.push('}');
            sandboxes.push(sandbox);
        }
        fields.push(format!(r#""sandboxes":[{}]"#, sandboxes.join(",")));
        world.keys = keys;
        world.config = format!("{{{}}}", fields.join(","));
        world
    }
}

/// A configuration both the filter and the core must refuse.
fn invalid(rng: &mut Rng, valid: &str) -> String {
    let front = |field: &str| format!("{{{field},{}", &valid[1..]);
    match rng.below(12) {
        0 => valid[..rng.below(valid.len() as u64) as usize].to_owned(),
        1 => front(r#""loop_guard":{"max_hops":0}"#),
        2 => front(r#""rate_limit":{"requests_per_second":0}"#),
        3 => front(r#""ingress":{"trusted_cidrs":["10.1.0.0/8"]}"#),
        4 => front(r#""ingress":{"secrets":["c2hvcnQ="]}"#),
        5 => r#"{"version":1,"preview":{"query_param":"q"},"sandboxes":[]}"#.into(),
        6 => front(r#""extra":1"#),
        7 => valid.replacen(r#""version":1"#, r#""version":2"#, 1),
        8 => r#"{"version":1,"sandboxes":[{"key":"k1","expires_at":"2026-13-01T00:00:00Z","forks":[]}]}"#.into(),
        9 => r#"{"version":1,"sandboxes":[{"key":"k1","forks":[]},{"key":"k1","forks":[]}]}"#.into(),
        10 => front(&format!(
            r#""ingress":{{"secrets":[{}]}}"#,
            quoted(&SECRETS)
        )),
        _ => front(r#""ingress":{"max_ttl_seconds":0}"#),
    }
}

// ---------------------------------------------------------------------
// Requests.

/// The secrets, keyed once (keying HMAC is most of a signature's cost).
fn keyed(secret: &str) -> &'static Secret {
    static KEYED: OnceLock<Vec<(&'static str, Secret)>> = OnceLock::new();
    let all = KEYED.get_or_init(|| {
        SECRETS
            .iter()
            .chain([&FOREIGN])
            .map(|s| (*s, Secret::from_config(s).expect("a test secret")))
            .collect()
    });
    &all.iter()
        .find(|(s, _)| *s == secret)
        .expect("a test secret")
        .1
}

fn token(secret: &str, key: &[u8], exp_s: u64) -> Vec<u8> {
    let mut buf = [0u8; signature::TOKEN_LEN_MAX];
    match signature::sign(keyed(secret), key, exp_s, &mut buf) {
        Some(n) => buf[..n].to_vec(),
        None => b"v1.0.x".to_vec(),
    }
}

struct Gen<'w> {
    rng: Rng,
    world: &'w World,
    now_s: u64,
}

impl Gen<'_> {
    fn key(&mut self) -> Vec<u8> {
        if self.rng.below(10) < 7 && !self.world.keys.is_empty() {
            return self.rng.pick(&self.world.keys).as_bytes().to_vec();
        }
        match self.rng.below(8) {
            0 => b"nope".to_vec(),
            1 => b"K1".to_vec(),
            2 => b"%6b1".to_vec(),
            3 => b"k%31".to_vec(),
            4 => Vec::new(),
            5 => vec![b'a'; 129],
            6 => b"k1 ".to_vec(),
            _ => self.rng.printable(10),
        }
    }

    fn member_name(&mut self) -> &'static str {
        if self.rng.below(10) < 8 {
            self.rng.pick_copied(self.world.members)
        } else {
            self.rng.pick_copied(MEMBER_SETS[0])
        }
    }

    /// A routing-key member written some other way that still reads as one.
    fn lookalike(&mut self, name: &str, key: &[u8]) -> Vec<u8> {
        let mut name = name.as_bytes().to_vec();
        match self.rng.below(6) {
            0 => {
                for b in &mut name {
                    if self.rng.one_in(2) {
                        *b = b.to_ascii_uppercase();
                    }
                }
            }
            1 => {
                let i = self.rng.below(name.len() as u64) as usize;
                let hex = if self.rng.one_in(2) {
                    format!("%{:02X}", name[i])
                } else {
                    format!("%{:02x}", name[i])
                };
                name.splice(i..=i, hex.into_bytes());
            }
            2 => {
                let mut out = name;
                out.extend_from_slice(if self.rng.one_in(2) { b"%3D" } else { b"%3d" });
                out.extend_from_slice(key);
                return out;
            }
            3 => {
                let mut out = b" \t".to_vec();
                out.extend_from_slice(&name);
                out.extend_from_slice(b" \t= ");
                out.extend_from_slice(key);
                out.push(b' ');
                return out;
            }
            4 => {
                name.extend_from_slice(if self.rng.one_in(2) { b";p" } else { b"" });
                return name;
            }
            _ => {
                let mut spaced = b"%20".to_vec();
                spaced.append(&mut name);
                name = spaced;
            }
        }
        name.push(b'=');
        name.extend_from_slice(key);
        name
    }

    fn signed(&mut self, name: &str) -> Vec<u8> {
        let key = self.key();
        let secret = if !self.world.secrets.is_empty() && self.rng.below(10) < 7 {
            *self.rng.pick(&self.world.secrets)
        } else if self.rng.one_in(2) {
            FOREIGN
        } else {
            *self.rng.pick(&SECRETS)
        };
        let ttl = self.world.max_ttl;
        let now = self.now_s;
        let exp = match self.rng.below(8) {
            0 => now.saturating_sub(self.rng.below(100)),
            1 => now + ttl + self.rng.range(1, 1000),
            2 => now + ttl,
            3 => now + 1,
            _ => now + self.rng.range(1, ttl),
        };
        // The signature covers the key decoded: sign it so, mostly.
        let signed_for = match self.rng.below(8) {
            0 => self.key(),
            1 => key.clone(),
            _ => naive::decode(&key),
        };
        let mut sig = token(secret, &signed_for, exp);
        match self.rng.below(12) {
            0 => {
                let last = sig.len() - 1;
                sig[last] = if sig[last] == b'A' { b'B' } else { b'A' };
            }
            1 => sig = self.rng.printable(20),
            2 => sig.truncate(sig.len() / 2),
            _ => {}
        }
        let mut out = if self.rng.one_in(6) {
            self.lookalike(name, &key)
        } else {
            let mut m = name.as_bytes().to_vec();
            m.push(b'=');
            m.extend_from_slice(&key);
            m
        };
        out.extend_from_slice(b";laneway-sig=");
        out.extend_from_slice(&sig);
        if self.rng.one_in(10) {
            out.extend_from_slice(b";laneway-sig=");
            out.extend_from_slice(&sig);
        }
        out
    }

    fn element(&mut self, tracestate: bool) -> Vec<u8> {
        let name = self.member_name();
        let plain = |g: &mut Self| {
            let mut m = name.as_bytes().to_vec();
            m.push(b'=');
            m.extend_from_slice(&g.key());
            if !tracestate && g.rng.one_in(5) {
                m.extend_from_slice(b";p=1");
            }
            m
        };
        match self.rng.below(16) {
            0..=3 => plain(self),
            4 if !tracestate => self.signed(name),
            5 => {
                let key = self.key();
                self.lookalike(name, &key)
            }
            6 if !tracestate => {
                let mut m = b"user=alice;".to_vec();
                m.extend_from_slice(&plain(self));
                m
            }
            7 if !tracestate => {
                let n: u64 = match self.rng.below(6) {
                    0 => 999_999,
                    1 => 1_000_000,
                    _ => self.rng.below(7),
                };
                format!("laneway-hops={n}").into_bytes()
            }
            7..=10 => self
                .rng
                .pick(&[
                    "user=alice",
                    "k=v",
                    "team=a;p=1",
                    "rojo=00f067aa0ba902b7",
                    "congo=t61rcWkgMzE",
                    "tenant@system=v",
                    "",
                    " ",
                    "\t",
                    "=v",
                    "k",
                    ";",
                    "a=b=c",
                    "laneway-hops=x",
                    "laneway-hops",
                    "Laneway-Hops=9",
                    "laneway-hops = 2 ;p",
                ])
                .as_bytes()
                .to_vec(),
            11 => self.rng.bytes(24),
            12 => self.rng.printable(24),
            13 => {
                let mut out = Vec::new();
                for _ in 0..self.rng.range(1, 12) {
                    match self.rng.below(4) {
                        0 => out.extend_from_slice(format!("%{:02X}", self.rng.byte()).as_bytes()),
                        1 => out.push(*self.rng.pick(&b"=;%, \t"[..])),
                        _ => out.push(*self.rng.pick(name.as_bytes())),
                    }
                }
                out
            }
            _ => plain(self),
        }
    }

    fn line(&mut self, tracestate: bool) -> Vec<u8> {
        match self.rng.below(20) {
            0 => return self.rng.bytes(40),
            1 => return Vec::new(),
            _ => {}
        }
        let mut out = Vec::new();
        for i in 0..self.rng.range(1, 5) {
            if i > 0 {
                out.extend_from_slice(
                    self.rng
                        .pick(&[",", ",", ", ", " ,", ",,", ",\t"])
                        .as_bytes(),
                );
            }
            out.extend(self.element(tracestate));
        }
        out
    }

    fn authority(&mut self) -> Vec<u8> {
        let suffix: &str = if !self.world.suffixes.is_empty() && self.rng.below(10) < 8 {
            self.rng.pick_copied(&self.world.suffixes)
        } else {
            let (pattern, _) = *self.rng.pick(&PREVIEW_HOSTS);
            &pattern[1..]
        };
        match self.rng.below(10) {
            0..=4 => self
                .rng
                .pick(&[
                    "frontend",
                    "frontend:8080",
                    "cart:80",
                    "location:8083",
                    "FRONTEND:80",
                    "frontend.",
                    "other:1",
                    "[::1]:8080",
                ])
                .as_bytes()
                .to_vec(),
            5..=7 => {
                let mut out = self.key();
                out.extend_from_slice(suffix.as_bytes());
                if self.rng.one_in(3) {
                    out.extend_from_slice(b":443");
                }
                out
            }
            8 => {
                let mut out = if self.rng.one_in(2) {
                    b"a.".to_vec()
                } else {
                    Vec::new()
                };
                out.extend(self.key());
                out.extend_from_slice(suffix.as_bytes());
                out
            }
            _ => {
                if self.rng.one_in(2) {
                    self.rng.bytes(30)
                } else {
                    self.rng.printable(30)
                }
            }
        }
    }

    fn path(&mut self) -> Vec<u8> {
        if self.rng.one_in(50) {
            return self.rng.bytes(60);
        }
        let mut out = self.rng.pick(&["/", "/x", "/a/b"]).as_bytes().to_vec();
        if self.rng.one_in(100) {
            out.extend(std::iter::repeat_n(b'p', 16_400));
        }
        if self.rng.below(10) < 4 {
            return out;
        }
        let param = match self.world.query_param {
            Some(p) if self.rng.below(10) < 8 => p,
            _ => *self.rng.pick(&QUERY_PARAMS),
        };
        out.push(b'?');
        for i in 0..self.rng.range(1, 4) {
            if i > 0 {
                out.extend_from_slice(if self.rng.one_in(10) { b"&&" } else { b"&" });
            }
            match self.rng.below(9) {
                0..=2 => {
                    out.extend_from_slice(param.as_bytes());
                    out.push(b'=');
                    out.extend(self.key());
                }
                3 | 4 => {
                    let key = self.key();
                    let secret = self.world.secrets.first().copied().unwrap_or(SECRETS[0]);
                    let exp = self.now_s + self.rng.range(0, 3600);
                    out.extend_from_slice(b"laneway-sig=");
                    out.extend(token(secret, &key, exp));
                }
                5 => out.extend_from_slice(b"x=1"),
                6 => out.extend_from_slice(b"=x"),
                7 => out.extend_from_slice(param.as_bytes()),
                _ => out.extend_from_slice(b"laneway-sig"),
            }
        }
        out
    }

    fn source(&mut self) -> SocketAddr {
        let r = &mut self.rng;
        let port = r.below(65536) as u16;
        let low = r.below(256) as u8;
        let ip: IpAddr = match r.below(12) {
            0 | 1 => Ipv4Addr::new(10, r.byte(), r.byte(), low).into(),
            2 | 3 => Ipv4Addr::new(203, 0, 113, low).into(),
            4 => Ipv4Addr::new(192, 0, 2, low).into(),
            5 => Ipv4Addr::from(r.next() as u32).into(),
            6 => Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(low)).into(),
            7 => Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(low)).into(),
            8 => Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, u16::from(low)).into(),
            9 => Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped().into(),
            10 => Ipv6Addr::LOCALHOST.into(),
            _ => Ipv6Addr::from((u128::from(r.next()) << 64) | u128::from(r.next())).into(),
        };
        match ip {
            IpAddr::V6(v6) if r.one_in(50) => {
                SocketAddr::V6(SocketAddrV6::new(v6, port, 0, r.range(1, 9) as u32))
            }
            ip => SocketAddr::new(ip, port),
        }
    }

    /// One request: its source and its header map.
    fn request(&mut self) -> (SocketAddr, Pairs) {
        let source = self.source();
        let mut headers: Pairs = Vec::new();
        if self.rng.below(20) > 0 {
            headers.push((b":authority".to_vec(), self.authority()));
        }
        if self.rng.one_in(100) {
            headers.push((b":authority".to_vec(), self.authority()));
        }
        if self.rng.below(10) > 0 {
            headers.push((b":path".to_vec(), self.path()));
        }
        headers.push((b":method".to_vec(), b"GET".to_vec()));
        let mut lines: Vec<(bool, Vec<u8>)> = Vec::new();
        for _ in 0..*self.rng.pick(&[0, 1, 1, 1, 2, 2, 3]) {
            lines.push((false, self.line(false)));
        }
        for _ in 0..*self.rng.pick(&[0, 0, 0, 1, 1, 2]) {
            lines.push((true, self.line(true)));
        }
        // Now and then many lines.
        if self.rng.one_in(100) {
            for _ in 0..self.rng.range(10, 60) {
                let tracestate = self.rng.one_in(3);
                lines.push((tracestate, self.line(tracestate)));
            }
        }
        // Now and then a line past the parser's limits, or past the
        // longest line an edit writes.
        if self.rng.one_in(40) {
            if lines.is_empty() || self.rng.one_in(4) {
                lines.push((self.rng.one_in(3), Vec::new()));
            }
            let i = self.rng.below(lines.len() as u64) as usize;
            let size = if self.rng.one_in(3) {
                self.rng.range(16 * 1024, 18 * 1024)
            } else {
                self.rng.range(8 * 1024, 9500)
            } as usize;
            let pad = if self.rng.one_in(2) {
                let mut p = b"pad=".to_vec();
                p.resize(size, b'x');
                p
            } else {
                padding(size)
            };
            let line = &mut lines[i].1;
            if self.rng.one_in(2) {
                if !line.is_empty() {
                    line.push(b',');
                }
                line.extend(pad);
            } else {
                let mut front = pad;
                if !line.is_empty() {
                    front.push(b',');
                }
                front.append(line);
                *line = front;
            }
        }
        for (tracestate, line) in lines {
            let name = if tracestate { "tracestate" } else { "baggage" };
            headers.push((name.as_bytes().to_vec(), line));
        }
        if self.rng.one_in(5) {
            headers.push((b"x-other".to_vec(), self.rng.printable(10)));
        }
        if self.rng.one_in(50) {
            let name = self.rng.pick(&["Baggage", "TraceState", "x-b3-traceid"]);
            headers.push((name.as_bytes().to_vec(), self.line(false)));
        }
        (source, headers)
    }
}

/// Members `m0=v0000,m1=v0001,...` of `bytes` bytes or a few more.
fn padding(bytes: usize) -> Vec<u8> {
    static PADDING: OnceLock<Vec<u8>> = OnceLock::new();
    let all = PADDING.get_or_init(|| {
        let mut out = Vec::new();
        for i in 0..3000 {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(format!("m{i}=v{i:04}").as_bytes());
        }
        out
    });
    let end = all[bytes.min(all.len() - 1)..]
        .iter()
        .position(|&b| b == b',')
        .map_or(all.len(), |i| bytes + i);
    all[..end].to_vec()
}

// ---------------------------------------------------------------------
// The host, and the same facts for the core.

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        Compiled::load(&wasm::build("laneway-filter"), &LoadOptions::default())
            .expect("filter compiles")
    })
}

/// A plugin of its own (its own shared data), from the compiled filter.
fn plugin() -> Plugin {
    fn itself(s: &mut ProxyState) -> &mut ProxyState {
        s
    }
    let c = compiled();
    let mut linker = wasmtime::Linker::new(c.engine());
    proxy_wasm_host::add_to_linker(&mut linker, c.module(), itself).expect("links");
    c.plugin(&linker, itself).expect("pre-instantiates")
}

fn options(config: &str, clock_ns: u64) -> HostOptions {
    HostOptions {
        plugin_name: "laneway".into(),
        plugin_config: config.as_bytes().to_vec(),
        clock_ns,
        ..HostOptions::default()
    }
}

/// The facts the host gives the filter, given the same way to the core:
/// the source address as the host writes it, the VM's clock, the
/// plugin's shared data (read for real; writes recorded, for the filter
/// to make and the test to compare).
struct Mirror<'p> {
    source: SocketAddr,
    now_ns: u64,
    plugin: &'p Plugin,
    /// Shared data read, as it was: `(key, value)`.
    read: Pairs,
    written: Pairs,
}

impl Facts for Mirror<'_> {
    fn source(&mut self) -> Option<Ip> {
        cidr::parse_source(self.source.to_string().as_bytes())
    }

    fn now_ns(&mut self) -> Option<u64> {
        Some(self.now_ns)
    }

    fn shared_get(&mut self, key: &[u8], out: &mut [u8; BUCKET_BYTES]) -> Result<Option<u32>, ()> {
        let Some((value, cas)) = self.plugin.shared_data(key) else {
            return Ok(None);
        };
        if !self.read.iter().any(|(k, _)| k == key) {
            self.read.push((key.to_vec(), value.clone()));
        }
        Ok(<[u8; BUCKET_BYTES]>::try_from(value.as_slice())
            .ok()
            .map(|b| {
                *out = b;
                cas
            }))
    }

    fn shared_set(&mut self, key: &[u8], value: &[u8], cas: u32) -> Result<bool, ()> {
        let ok = match self.plugin.shared_data(key) {
            Some((_, current)) => cas == 0 || cas == current,
            None => true,
        };
        if ok {
            self.written.push((key.to_vec(), value.to_vec()));
        }
        Ok(ok)
    }
}

// ---------------------------------------------------------------------
// One case, judged.

/// Header lines, or shared-data entries: `(name, value)` in order.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// One request under one configuration, with every fact it depends on:
/// what a regression file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Case {
    config: String,
    clock_ns: u64,
    source: SocketAddr,
    /// Shared data as it was before the request (the buckets it read).
    shared: Pairs,
    headers: Pairs,
}

/// A disagreement: its kind (stable, for grouping and file names) and
/// what exactly differed.
#[derive(Debug)]
struct Failure {
    what: &'static str,
    detail: String,
}

fn fail<T>(what: &'static str, detail: impl Into<String>) -> Result<T, Failure> {
    Err(Failure {
        what,
        detail: detail.into(),
    })
}

fn show(lines: &[Vec<u8>]) -> String {
    let shown: Vec<String> = lines.iter().map(|l| shorten(l)).collect();
    format!("[{}]", shown.join(", "))
}

fn shorten(bytes: &[u8]) -> String {
    let text = format!("{:?}", String::from_utf8_lossy(bytes));
    if text.len() > 200 {
        format!("{}...({} bytes)", &text[..120], bytes.len())
    } else {
        text
    }
}

/// The counters a request moves, in this order: one per decision, then
/// these.
const OTHER_METRICS: [&str; 9] = [
    "laneway.host_errors",
    "laneway.baggage.invalid_members",
    "laneway.baggage.over_limit",
    "laneway.tracestate.discarded",
    "laneway.ingress.trusted_source",
    "laneway.ingress.trusted_signature",
    "laneway.ingress.signature_refused",
    "laneway.preview.injected",
    "laneway.rate_limit.contended",
];
const N_METRICS: usize = Reason::ALL.len() + OTHER_METRICS.len();

fn metric_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        Reason::ALL
            .iter()
            .map(|r| format!("laneway.decision.{r}"))
            .chain(OTHER_METRICS.iter().map(|s| (*s).to_owned()))
            .collect()
    })
}

fn read_metrics(vm: &mut Vm) -> [u64; N_METRICS] {
    let names = metric_names();
    let mut out = [0u64; N_METRICS];
    for m in vm.metrics() {
        if let Some(i) = names.iter().position(|n| n == m.name) {
            out[i] = m.value;
        }
    }
    out
}

/// What the filter must have done, from the core's outcome.
struct Expected {
    reason: Reason,
    counters: [u64; N_METRICS],
    state: Option<Vec<u8>>,
    /// Status, `x-laneway-decision`, body.
    reply: Option<(u32, &'static str, Vec<u8>)>,
    /// The request headers as forwarded.
    headers: HeaderMap,
}

/// The core's edits made on a copy of the request's headers, as the host
/// makes the filter's on the real ones.
struct Edited<'m>(&'m mut HeaderMap);

impl HeaderSink for Edited<'_> {
    type Error = std::convert::Infallible;

    fn remove(&mut self, name: &[u8]) -> Result<(), Self::Error> {
        self.0.remove(name);
        Ok(())
    }

    fn add(&mut self, name: &[u8], value: &[u8]) -> Result<(), Self::Error> {
        self.0.add(name, value);
        Ok(())
    }

    fn replace(&mut self, name: &[u8], value: &[u8]) -> Result<(), Self::Error> {
        self.0.replace(name, value);
        Ok(())
    }
}

fn all(map: &HeaderMap, name: &str) -> Vec<Vec<u8>> {
    map.get_all(name.as_bytes()).map(<[u8]>::to_vec).collect()
}

/// The model: what the filter's glue (`filter/src/request.rs`) must do
/// with the core's `outcome`.
fn expect(router: &Router, input: &HeaderMap, out: &guard::Outcome<'_>, ran: bool) -> Expected {
    let verdict = &out.verdict;
    let reason = verdict.decision.reason();
    let mut counters = [0u64; N_METRICS];
    counters[reason.index()] = 1;
    if ran {
        let base = Reason::ALL.len();
        counters[base] = u64::from(out.host_errors);
        counters[base + 1] = u64::from(verdict.baggage_invalid);
        counters[base + 2] = u64::from(verdict.baggage_dropped.is_some());
        counters[base + 3] =
            u64::from(matches!(verdict.tracestate, TraceStateStatus::Discarded(_)));
        counters[base + 4] = u64::from(out.trust == Trust::Source);
        counters[base + 5] = u64::from(out.trust == Trust::Signature);
        counters[base + 6] = u64::from(matches!(out.trust, Trust::Untrusted(Some(_))));
        counters[base + 7] = u64::from(out.edits.inject.is_some());
        counters[base + 8] = u64::from(out.contended);
    }
    let mut key_buf = [0u8; MAX_KEY_TEXT];
    let key = verdict.key.map(|k| {
        let (n, _) = k.value.write_decoded(&mut key_buf);
        &key_buf[..n]
    });
    let authority = input.get(":authority").unwrap_or_default();
    let decided_for = match out.edits.preview_host {
        Some(i) => router.preview_service(i),
        None => authority,
    };
    let mut fork_buf = [0u8; laneway_core::authority::MAX_FORK_AUTHORITY];
    let fork = match verdict.decision {
        Decision::Fork(id) => router.fork_authority(id, decided_for, &mut fork_buf),
        _ => None,
    };
    let state = (reason != Reason::NoKey).then(|| {
        let mut buf = [0u8; MAX_ENTRY];
        let entry = filter_state::Entry { reason, key, fork };
        let n = filter_state::encode(&entry, &mut buf);
        buf[..n].to_vec()
    });
    let reply = (reason.route() == Route::Reject).then(|| {
        let mut body = b"routing key ".to_vec();
        body.extend_from_slice(key.unwrap_or_default());
        let decision = match verdict.decision {
            Decision::Limited => {
                let (rps, burst) = out
                    .limit
                    .map_or((0, 0), |l| (l.requests_per_second, l.burst));
                let rest = format!(
                    " is over its rate limit of {rps} requests per second (burst {burst})\n"
                );
                body.extend_from_slice(rest.as_bytes());
                "limited"
            }
            Decision::Looped => {
                let rest = format!(
                    " has crossed {} hops, more than the loop guard allows; is there a call cycle?\n",
                    out.hops.unwrap_or(0)
                );
                body.extend_from_slice(rest.as_bytes());
                "looped"
            }
            _ => {
                body.extend_from_slice(b" has no sandbox\n");
                "rejected"
            }
        };
        body.truncate(MAX_KEY_TEXT + 160);
        (u32::from(out.status(router)), decision, body)
    });
    // The core's header edits (`Outcome::apply`), then the glue's route
    // (`act` in filter/src/request.rs): `:authority`.
    let mut headers = input.clone();
    if ran {
        let path = if router.reads_untagged() {
            input.get(":path").unwrap_or_default()
        } else {
            b""
        };
        let Ok(()) = out.apply(
            router,
            path,
            input.get_all(b"baggage"),
            input.get_all(b"tracestate"),
            b"tracestate",
            &mut Edited(&mut headers),
        );
    }
    match (verdict.decision.route(), fork) {
        (Route::Fork, Some(f)) => headers.replace(":authority", f),
        (Route::Reject, _) => {}
        _ if out.edits.preview_host.is_some() => headers.replace(":authority", decided_for),
        _ => {}
    }
    Expected {
        reason,
        counters,
        state,
        reply,
        headers,
    }
}

/// Oracles that know neither the core's parsers nor the glue.
mod naive {
    /// Percent-decodes every `%XX`; a malformed escape stays literal.
    pub fn decode(raw: &[u8]) -> Vec<u8> {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        let mut out = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'%'
                && let (Some(h), Some(l)) = (
                    raw.get(i + 1).copied().and_then(hex),
                    raw.get(i + 2).copied().and_then(hex),
                )
            {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
            out.push(raw[i]);
            i += 1;
        }
        out
    }

    fn ows(b: &u8) -> bool {
        *b == b' ' || *b == b'\t'
    }

    /// Whether a list element, decoded, reads as a member (or a bare key)
    /// named like one of `names`, in any case.
    pub fn is_lookalike(element: &[u8], names: &[Box<str>]) -> bool {
        let decoded = decode(element);
        let start = decoded
            .iter()
            .position(|b| !ows(b))
            .unwrap_or(decoded.len());
        let text = &decoded[start..];
        names.iter().any(|name| {
            let name = name.as_bytes();
            text.len() >= name.len()
                && text[..name.len()].eq_ignore_ascii_case(name)
                && matches!(
                    text[name.len()..].iter().find(|b| !ows(b)),
                    None | Some(b'=') | Some(b';')
                )
        })
    }

    /// The lines an edge must forward for untrusted `lines`: every
    /// look-alike element removed, every other kept byte for byte; a line
    /// left with nothing but OWS goes, and so does one whose edit would be
    /// longer than `max` (it cannot be vouched for). Nothing changes when
    /// no line has a look-alike.
    pub fn stripped(lines: &[Vec<u8>], names: &[Box<str>], max: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for line in lines {
            let elements: Vec<&[u8]> = line.split(|&b| b == b',').collect();
            let kept: Vec<&[u8]> = elements
                .iter()
                .copied()
                .filter(|e| !is_lookalike(e, names))
                .collect();
            if kept.len() == elements.len() {
                out.push(line.clone());
                continue;
            }
            let edited = kept.join(&b","[..]);
            let only_ows = kept.iter().all(|e| e.iter().all(ows));
            if !only_ows && edited.len() <= max {
                out.push(edited);
            }
        }
        out
    }

    fn trim(s: &[u8]) -> &[u8] {
        let start = s.iter().position(|b| !ows(b)).unwrap_or(s.len());
        let end = s.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
        &s[start..end]
    }

    /// The largest `laneway-hops=N` (1 to 6 digits, OWS allowed, any
    /// properties) in `lines`.
    pub fn hops(lines: &[Vec<u8>]) -> Option<u32> {
        let mut best = None;
        for el in lines.iter().flat_map(|l| l.split(|&b| b == b',')) {
            let Some(eq) = el.iter().position(|&b| b == b'=') else {
                continue;
            };
            if trim(&el[..eq]) != b"laneway-hops" {
                continue;
            }
            let value = el[eq + 1..]
                .split(|&b| b == b';')
                .next()
                .unwrap_or_default();
            let digits = trim(value);
            if digits.is_empty() || digits.len() > 6 || !digits.iter().all(u8::is_ascii_digit) {
                continue;
            }
            let n: u32 = std::str::from_utf8(digits).unwrap().parse().unwrap();
            best = best.max(Some(n));
        }
        best
    }

    /// `path` without the query parameters named `names` (an empty name
    /// names none), the `?` gone when none is left; empty parameters
    /// (`&&`) go too, a normalisation a rewrite may make. When that is
    /// longer than `max` (what an edit can write), the rule is: the whole
    /// query goes, and a path whose part before the `?` is longer than
    /// `max` becomes `/`. A parameter that must not pass never does.
    pub fn without_params(path: &[u8], names: &[&[u8]], max: usize) -> Vec<u8> {
        let Some(q) = path.iter().position(|&b| b == b'?') else {
            return path.to_vec();
        };
        let kept: Vec<&[u8]> = path[q + 1..]
            .split(|&b| b == b'&')
            .filter(|p| {
                let name = p.split(|&b| b == b'=').next().unwrap_or(p);
                !p.is_empty() && !names.iter().any(|n| !n.is_empty() && *n == name)
            })
            .collect();
        let mut out = path[..q].to_vec();
        if !kept.is_empty() {
            out.push(b'?');
            out.extend(kept.join(&b"&"[..]));
        }
        match out.len() <= max {
            true => out,
            false if q <= max => path[..q].to_vec(),
            false => b"/".to_vec(),
        }
    }

    /// The query parameter names of `path`.
    pub fn params(path: &[u8]) -> Vec<Vec<u8>> {
        let Some(q) = path.iter().position(|&b| b == b'?') else {
            return Vec::new();
        };
        path[q + 1..]
            .split(|&b| b == b'&')
            .map(|p| p.split(|&b| b == b'=').next().unwrap_or(p).to_vec())
            .collect()
    }
}

/// Scratch buffers reused from case to case.
#[derive(Default)]
struct Scratch {
    input: HeaderMap,
    hop: Hop,
}

/// What one case did, for the statistics.
struct Judged {
    reason: Reason,
}

/// Runs `case` through the filter in `vm` (a VM of `plugin`, configured
/// with `case.config`, its clock at `case.clock_ns`) and through `router`,
/// and judges the filter. On failure, `shared` holds the shared data the
/// case read, as it was before.
fn check(
    vm: &mut Vm,
    plugin: &Plugin,
    router: &Router,
    case: &Case,
    s: &mut Scratch,
    shared: &mut Pairs,
) -> Result<Judged, Failure> {
    s.input.clear();
    for (k, v) in &case.headers {
        s.input.add(k, v);
    }
    let input = &s.input;
    let first = |name: &str| input.get(name).unwrap_or_default();
    let mut facts = Mirror {
        source: case.source,
        now_ns: vm.now_ns(),
        plugin,
        read: Vec::new(),
        written: Vec::new(),
    };
    let out = router.guard(
        Request {
            authority: first(":authority"),
            baggage: input.get_all(b"baggage"),
            tracestate: input.get_all(b"tracestate"),
        },
        if router.reads_untagged() {
            first(":path")
        } else {
            b""
        },
        &mut facts,
    );
    let tagged = input.get("baggage").is_some() || input.get("tracestate").is_some();
    let want = expect(router, input, &out, tagged || router.reads_untagged());
    let (read, written) = (facts.read, facts.written);
    shared.clone_from(&read);

    let hop = &mut s.hop;
    hop.clear_messages();
    hop.request_headers.copy_from(input);
    hop.response_headers.add(":status", "200");
    hop.source = case.source;
    let before = read_metrics(vm);
    let (forwarded, state, reply) = match vm.request(hop) {
        Ok(o) => (
            o.forwarded,
            o.properties.get("laneway").map(<[u8]>::to_vec),
            o.local_response.as_ref().map(|r| {
                (
                    r.status,
                    r.headers.get("x-laneway-decision").map(<[u8]>::to_vec),
                    r.body.clone(),
                )
            }),
        ),
        Err(e) => return fail("trap", e.to_string()),
    };
    let after = read_metrics(vm);
    let names = metric_names();
    let moved: Vec<String> = (0..N_METRICS)
        .filter(|&i| after[i] - before[i] != want.counters[i])
        .map(|i| {
            format!(
                "{} moved {}, want {}",
                names[i],
                after[i] - before[i],
                want.counters[i]
            )
        })
        .collect();
    if !moved.is_empty() {
        return fail(
            "counters",
            format!("the core says {}; {}", want.reason, moved.join("; ")),
        );
    }
    if state != want.state {
        return fail(
            "filter state",
            format!(
                "{:?}, want {:?}",
                state.as_deref().map(shorten),
                want.state.as_deref().map(shorten)
            ),
        );
    }
    match (&reply, &want.reply) {
        (None, None) if forwarded => {}
        (Some((status, decision, body)), Some((want_status, want_decision, want_body)))
            if !forwarded
                && status == want_status
                && decision.as_deref() == Some(want_decision.as_bytes())
                && body == want_body => {}
        _ => {
            return fail(
                "local reply",
                format!(
                    "forwarded {forwarded}, reply {reply:?}; the core says {} ({:?})",
                    want.reason, want.reply
                ),
            );
        }
    }
    let sent = &hop.request_headers;
    if *sent != want.headers {
        let what = [":authority", ":path", "baggage", "tracestate"]
            .into_iter()
            .find(|n| all(sent, n) != all(&want.headers, n))
            .unwrap_or("other headers");
        return fail(
            what,
            format!(
                "forwarded {}, want {} ({})",
                show(&all(sent, what)),
                show(&all(&want.headers, what)),
                want.reason
            ),
        );
    }
    for (key, value) in &written {
        match plugin.shared_data(key) {
            Some((stored, _)) if stored == *value => {}
            other => {
                return fail(
                    "shared data",
                    format!("{} holds {other:?}, want {value:?}", shorten(key)),
                );
            }
        }
    }
    if written.is_empty() {
        for (key, value) in &read {
            if plugin.shared_data(key).map(|(v, _)| v).as_ref() != Some(value) {
                return fail("shared data", format!("{} was written", shorten(key)));
            }
        }
    }

    // The naive oracles.
    let members = router.member_names();
    let forwarded_baggage = all(sent, "baggage");
    if out.edits.strip {
        for (name, lines) in [
            ("baggage", &forwarded_baggage),
            ("tracestate", &all(sent, "tracestate")),
        ] {
            let want = naive::stripped(&all(input, name), members, rewrite::MAX_LINE);
            if *lines != want {
                return fail(
                    "stripped lines",
                    format!("{name}: forwarded {}, want {}", show(lines), show(&want)),
                );
            }
            if let Some(l) = lines.iter().find(|l| {
                l.split(|&b| b == b',')
                    .any(|e| naive::is_lookalike(e, members))
            }) {
                return fail("look-alike left", format!("{name}: {}", shorten(l)));
            }
        }
    }
    if let Some(n) = out.edits.hops
        && want.reason != Reason::Looped
        && naive::hops(&forwarded_baggage) != Some(n)
    {
        return fail(
            "hop count",
            format!(
                "the request left with {:?} hops, want {n}: {}",
                naive::hops(&forwarded_baggage),
                show(&forwarded_baggage)
            ),
        );
    }
    if out.edits.path {
        let names = router.preview_params();
        let path = sent.get(":path").unwrap_or_default();
        let original = input.get(":path").unwrap_or_default();
        let want = naive::without_params(original, &names, rewrite::MAX_LINE);
        if path != want {
            let left = naive::params(path)
                .iter()
                .any(|p| names.iter().any(|n| !n.is_empty() && n == p));
            return fail(
                if left {
                    "preview parameter left"
                } else {
                    "path changed beyond the preview parameters"
                },
                format!("forwarded :path {}, want {}", shorten(path), shorten(&want)),
            );
        }
    }
    if let Some(k) = out.edits.inject {
        let mut member = members.first().map_or(&b""[..], |n| n.as_bytes()).to_vec();
        member.push(b'=');
        member.extend_from_slice(k);
        if !forwarded_baggage
            .iter()
            .any(|l| l.split(|&b| b == b',').next() == Some(&member[..]))
        {
            return fail("key not injected", show(&forwarded_baggage));
        }
    }
    Ok(Judged {
        reason: want.reason,
    })
}

/// Gives every VM an invalid configuration: each must refuse it and count
/// it, and so must the core (each VM keeps its last good one).
fn refused_by_both(vms: &mut [Vm], text: &str) -> Result<(), Failure> {
    let core = Router::from_json(text);
    for vm in vms {
        let rejected = vm.metric("laneway.config.rejected").unwrap_or(0);
        let refused = matches!(
            vm.reconfigure(text.as_bytes()),
            Err(HostError::Refused { .. })
        );
        let counted = vm.metric("laneway.config.rejected").unwrap_or(0) == rejected + 1;
        if core.is_ok() || !refused || !counted {
            return fail(
                "configuration",
                format!(
                    "refused by the filter: {refused} (counted: {counted}); by the core: {}",
                    core.is_err()
                ),
            );
        }
    }
    Ok(())
}

/// Runs `case` alone: a fresh plugin with the case's shared data, a VM
/// configured with the case's configuration at the case's clock. The
/// filter and the core must agree on whether the configuration is good.
fn replay(case: &Case) -> Result<Judged, Failure> {
    let plugin = plugin();
    for (k, v) in &case.shared {
        plugin.set_shared_data(k, v, 0);
    }
    let router = Router::from_json(&case.config);
    let vm = plugin.vm(&options(&case.config, case.clock_ns));
    let (mut vm, router) = match (vm, router) {
        (Ok(vm), Ok(router)) => (vm, router),
        (Err(HostError::Refused { .. }), Err(_)) => {
            return Ok(Judged {
                reason: Reason::NoKey,
            });
        }
        (vm, router) => {
            return fail(
                "configuration",
                format!(
                    "the filter: {:?}; the core: {:?}",
                    vm.err().map(|e| e.to_string()),
                    router.err().map(|e| e.to_string())
                ),
            );
        }
    };
    check(
        &mut vm,
        &plugin,
        &router,
        case,
        &mut Scratch::default(),
        &mut Vec::new(),
    )
}

// ---------------------------------------------------------------------
// Minimising, and the regression files.

/// Offsets of windows of `size` (at most `len`) at multiples of `size`;
/// past `max` windows, `max` of them spread evenly from start to end.
fn windows(len: usize, size: usize, max: usize) -> impl Iterator<Item = usize> {
    let size = size.max(1);
    let all = len / size;
    let count = all.clamp(1, max);
    let span = len - size;
    (0..count).map(move |i| match count {
        1 => 0,
        _ if all <= max => i * size,
        _ => i * span / (count - 1),
    })
}

/// Sizes from `len / 2` down to 1, halving.
fn halvings(len: usize) -> impl Iterator<Item = usize> {
    std::iter::successors(Some(len / 2), |&s| Some(s / 2)).take_while(|&s| s > 0)
}

/// Simpler versions of `case`, biggest cuts first: a header, a shared
/// value, a configuration field or array item (one that leaves the
/// configuration valid: otherwise the case no longer fails the same way),
/// windows of list elements, windows of bytes; then, keeping the
/// length, windows of bytes flattened to `x` (so that a long value left
/// long for a reason is written as one run).
fn shrinks(case: &Case) -> Vec<Case> {
    let mut out = Vec::new();
    if let Ok(config) = json::parse(&case.config) {
        for i in 0..json::removable(&config) {
            let mut smaller = config.clone();
            json::remove(&mut smaller, &mut { i });
            let mut c = case.clone();
            c.config = json::write(&smaller);
            out.push(c);
        }
    }
    for i in 0..case.headers.len() {
        let mut c = case.clone();
        c.headers.remove(i);
        out.push(c);
    }
    for i in 0..case.shared.len() {
        let mut c = case.clone();
        c.shared.remove(i);
        out.push(c);
    }
    for i in 0..case.headers.len() {
        let value = &case.headers[i].1;
        let elements: Vec<&[u8]> = value.split(|&b| b == b',').collect();
        let n = elements.len();
        for size in halvings(n).chain((n > 1).then_some(1)) {
            for at in windows(n, size, 32) {
                let mut kept = elements.clone();
                kept.drain(at..at + size);
                let mut c = case.clone();
                c.headers[i].1 = kept.join(&b","[..]);
                out.push(c);
            }
        }
        for size in halvings(value.len()) {
            for at in windows(value.len(), size, 32) {
                let mut c = case.clone();
                c.headers[i].1.drain(at..at + size);
                out.push(c);
            }
        }
    }
    for i in 0..case.headers.len() {
        let value = &case.headers[i].1;
        for size in halvings(value.len()).take_while(|&s| s >= 8) {
            for at in windows(value.len(), size, usize::MAX) {
                if value[at..at + size].iter().all(|&b| b == b'x') {
                    continue;
                }
                let mut c = case.clone();
                c.headers[i].1[at..at + size].fill(b'x');
                out.push(c);
            }
        }
    }
    out
}

/// Shrinks `case` greedily while it still fails alone with `what`.
fn minimise(mut case: Case, what: &'static str) -> (Case, bool) {
    let fails = |c: &Case| matches!(replay(c), Err(f) if f.what == what);
    if !fails(&case) {
        return (case, false);
    }
    let mut budget = 3000;
    'again: while budget > 0 {
        for smaller in shrinks(&case) {
            budget -= 1;
            if fails(&smaller) {
                case = smaller;
                continue 'again;
            }
            if budget == 0 {
                break;
            }
        }
        break;
    }
    (case, true)
}

fn fuzz_dir() -> PathBuf {
    laneway_testdata::corpus::testdata().join("fuzz")
}

/// FNV-1a, for stable file names.
fn fnv(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Writes the case as `testdata/fuzz/<what>-<hash>.json`; returns the path.
fn write_regression(case: &Case, failure: &Failure, found_by: &str) -> PathBuf {
    let mut slug: String = failure
        .what
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    slug = slug.trim_matches('-').to_owned();
    let body = json::case(case, &failure.what_and_detail(), found_by);
    let path = fuzz_dir().join(format!("{slug}-{:08x}.json", fnv(body.as_bytes())));
    std::fs::create_dir_all(fuzz_dir()).expect("testdata/fuzz/ can be created");
    std::fs::write(&path, body).expect("the regression file can be written");
    path
}

/// `LANEWAY_FUZZ_MINIMISE=FILE`: minimises a regression file again, in
/// place (after a better minimiser, or a hand-made case).
fn minimise_file(path: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let case = json::read_case(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let found_by = json::field(&text, "found_by").unwrap_or_default();
    let Err(failure) = replay(&case) else {
        println!("{path} does not fail: nothing to minimise");
        return;
    };
    let (small, _) = minimise(case, failure.what);
    let failure = replay(&small).err().unwrap_or(failure);
    let body = json::case(&small, &failure.what_and_detail(), &found_by);
    std::fs::write(path, &body).unwrap_or_else(|e| panic!("{path}: {e}"));
    println!("{path}, minimised:\n{body}");
}

impl Failure {
    fn what_and_detail(&self) -> String {
        format!("{}: {}", self.what, self.detail)
    }
}

/// Every regression file, replayed: `(file, failure)` for those that
/// still fail.
fn replay_regressions() -> (usize, Vec<(String, Failure)>) {
    let Ok(dir) = std::fs::read_dir(fuzz_dir()) else {
        return (0, Vec::new());
    };
    let mut files: Vec<PathBuf> = dir
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut open = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let case = json::read_case(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Err(f) = replay(&case) {
            open.push((name, f));
        }
    }
    (files.len(), open)
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => {
            let v = v.trim().replace('_', "");
            match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            }
            .unwrap_or_else(|e| panic!("{name}={v}: {e}"))
        }
        Err(_) => default,
    }
}

#[test]
fn the_filter_never_traps_and_does_what_the_core_decides() {
    if let Ok(path) = std::env::var("LANEWAY_FUZZ_MINIMISE") {
        return minimise_file(&path);
    }
    let cases = env_u64("LANEWAY_FUZZ_CASES", 100_000);
    let seed = env_u64("LANEWAY_FUZZ_SEED", DEFAULT_SEED);
    let started = Instant::now();
    compiled();
    let loaded = started.elapsed();

    let (files, open) = replay_regressions();
    for (file, f) in &open {
        eprintln!(
            "open: testdata/fuzz/{file} still fails: {}",
            f.what_and_detail()
        );
    }
    let known: Vec<&'static str> = open.iter().map(|(_, f)| f.what).collect();

    let mut rng = Rng(seed);
    let plugin = plugin();
    let clock = HostOptions::default().clock_ns + rng.below(1 << 40);
    let mut world = World::generate(&mut rng, clock);
    let start_vm = |world: &World, now: u64| {
        plugin
            .vm(&options(&world.config, now))
            .unwrap_or_else(|e| panic!("{e}\n{}", world.config))
    };
    let mut vms = [start_vm(&world, clock), start_vm(&world, clock)];
    let mut router = Router::from_json(&world.config).expect("a valid configuration");
    let mut scratch = Scratch::default();
    let mut shared = Vec::new();
    let mut reasons = [0u64; Reason::ALL.len()];
    let mut configs = (1u64, 0u64);
    let mut tolerated: Vec<(&'static str, u64)> = Vec::new();
    let mut new_failure: Option<String> = None;
    let fuzz_started = Instant::now();
    let mut done = 0;
    for i in 0..cases {
        if i > 0 && i % CONFIG_EVERY == 0 {
            let now = vms[0].now_ns();
            if rng.one_in(10) {
                let text = invalid(&mut rng, &world.config);
                configs.1 += 1;
                if let Err(failure) = refused_by_both(&mut vms, &text) {
                    let case = Case {
                        config: text,
                        clock_ns: now,
                        source: "203.0.113.9:40000".parse().unwrap(),
                        shared: Vec::new(),
                        headers: Vec::new(),
                    };
                    let path =
                        write_regression(&case, &failure, &format!("seed {seed:#x} case {i}"));
                    panic!(
                        "{}\n{}\nwritten to {}",
                        failure.what_and_detail(),
                        case.config,
                        path.display()
                    );
                }
            } else {
                world = World::generate(&mut rng, now);
                configs.0 += 1;
                router = Router::from_json(&world.config).unwrap_or_else(|e| {
                    panic!(
                        "the generator wrote an invalid configuration: {e}\n{}",
                        world.config
                    )
                });
                for vm in &mut vms {
                    vm.reconfigure(world.config.as_bytes())
                        .unwrap_or_else(|e| panic!("{e}\n{}", world.config));
                }
            }
        }
        let step = match rng.below(20) {
            0 => rng.range(1, 5000),
            1..=5 => rng.range(1, 200),
            _ => 0,
        };
        if step > 0 {
            for vm in &mut vms {
                vm.advance_clock(step).expect("the clock moves");
            }
        }
        let now = vms[0].now_ns();
        let mut generator = Gen {
            rng: Rng(rng.next()),
            world: &world,
            now_s: now / 1_000_000_000,
        };
        let (source, headers) = generator.request();
        let case = Case {
            config: world.config.clone(),
            clock_ns: now,
            source,
            shared: Vec::new(),
            headers,
        };
        let v = rng.below(2) as usize;
        done += 1;
        if cases >= 1_000_000 && done % (cases / 10) == 0 {
            let secs = fuzz_started.elapsed().as_secs_f64();
            println!(
                "fuzz: {done} cases, {secs:.0} s, {:.0} cases/s",
                done as f64 / secs
            );
        }
        match check(
            &mut vms[v],
            &plugin,
            &router,
            &case,
            &mut scratch,
            &mut shared,
        ) {
            Ok(j) => reasons[j.reason.index()] += 1,
            Err(f) => {
                if vms[v].poisoned().is_some() {
                    vms[v] = start_vm(&world, now);
                }
                if known.contains(&f.what) {
                    match tolerated.iter_mut().find(|(w, _)| *w == f.what) {
                        Some((_, n)) => *n += 1,
                        None => tolerated.push((f.what, 1)),
                    }
                    continue;
                }
                let mut case = case;
                case.shared = std::mem::take(&mut shared);
                let found_by = format!("seed {seed:#x} case {i}");
                let (small, alone) = minimise(case, f.what);
                let path = write_regression(&small, &f, &found_by);
                new_failure = Some(format!(
                    "{found_by}: {}\n{}minimised case written to {}:\n{}",
                    f.what_and_detail(),
                    if alone {
                        ""
                    } else {
                        "(it does not fail when replayed alone) "
                    },
                    path.display(),
                    std::fs::read_to_string(&path).unwrap_or_default()
                ));
                break;
            }
        }
    }
    let secs = fuzz_started.elapsed().as_secs_f64();
    let mut summary = format!(
        "fuzz: seed {seed:#x}: {done} cases in {secs:.1} s ({:.0} cases/s; compiling the filter took {:.1} s); \
         {} configurations, {} invalid ones refused; {files} regression files replayed\n  decisions:",
        done as f64 / secs.max(1e-9),
        loaded.as_secs_f64(),
        configs.0,
        configs.1,
    );
    for r in Reason::ALL {
        let _ = write!(summary, " {r}={}", reasons[r.index()]);
    }
    for (what, n) in &tolerated {
        let _ = write!(summary, "\n  open bug, seen again {n} times: {what}");
    }
    println!("{summary}");
    if let Some(failure) = new_failure {
        panic!("{failure}");
    }
    assert!(
        open.is_empty(),
        "{} regression files in testdata/fuzz/ still fail:\n{}",
        open.len(),
        open.iter()
            .map(|(f, e)| format!("  {f}: {}", e.what_and_detail()))
            .collect::<Vec<_>>()
            .join("\n")
    );
    if cases >= 10_000 {
        for r in [
            Reason::Fork,
            Reason::Stripped,
            Reason::Limited,
            Reason::Looped,
            Reason::Expired,
        ] {
            assert!(
                reasons[r.index()] > 0,
                "no {r} in {done} cases: the generator misses a guard"
            );
        }
    }
}

// ---------------------------------------------------------------------
// The regression files' JSON (schema: testdata/fuzz/README.md).

mod json {
    use super::{Case, Pairs};

    #[derive(Clone, Debug)]
    pub enum Json {
        Number(u64),
        String(String),
        Array(Vec<Json>),
        Object(Vec<(String, Json)>),
    }

    struct Parser<'t> {
        text: &'t [u8],
        at: usize,
    }

    impl Parser<'_> {
        fn error<T>(&self, what: &str) -> Result<T, String> {
            Err(format!("byte {}: {what}", self.at))
        }

        fn skip(&mut self) {
            while self
                .text
                .get(self.at)
                .is_some_and(|b| b" \t\r\n".contains(b))
            {
                self.at += 1;
            }
        }

        fn eat(&mut self, b: u8) -> bool {
            self.skip();
            if self.text.get(self.at) == Some(&b) {
                self.at += 1;
                true
            } else {
                false
            }
        }

        fn value(&mut self) -> Result<Json, String> {
            self.skip();
            match self.text.get(self.at) {
                Some(b'{') => {
                    self.at += 1;
                    let mut fields = Vec::new();
                    if self.eat(b'}') {
                        return Ok(Json::Object(fields));
                    }
                    loop {
                        self.skip();
                        let Json::String(name) = self.value()? else {
                            return self.error("expected a field name");
                        };
                        if !self.eat(b':') {
                            return self.error("expected :");
                        }
                        fields.push((name, self.value()?));
                        if self.eat(b'}') {
                            return Ok(Json::Object(fields));
                        }
                        if !self.eat(b',') {
                            return self.error("expected , or }");
                        }
                    }
                }
                Some(b'[') => {
                    self.at += 1;
                    let mut items = Vec::new();
                    if self.eat(b']') {
                        return Ok(Json::Array(items));
                    }
                    loop {
                        items.push(self.value()?);
                        if self.eat(b']') {
                            return Ok(Json::Array(items));
                        }
                        if !self.eat(b',') {
                            return self.error("expected , or ]");
                        }
                    }
                }
                Some(b'"') => self.string().map(Json::String),
                Some(b'0'..=b'9') => {
                    let start = self.at;
                    while self.text.get(self.at).is_some_and(u8::is_ascii_digit) {
                        self.at += 1;
                    }
                    std::str::from_utf8(&self.text[start..self.at])
                        .unwrap()
                        .parse()
                        .map(Json::Number)
                        .map_err(|e| format!("byte {start}: {e}"))
                }
                _ => self.error(
                    "expected an object, array, string or non-negative integer \
                     (the schema has nothing else)",
                ),
            }
        }

        fn string(&mut self) -> Result<String, String> {
            self.at += 1;
            let mut out = String::new();
            loop {
                let rest = &self.text[self.at..];
                let Some(&b) = rest.first() else {
                    return self.error("unterminated string");
                };
                match b {
                    b'"' => {
                        self.at += 1;
                        return Ok(out);
                    }
                    b'\\' => {
                        let esc = rest.get(1).copied();
                        self.at += 2;
                        match esc {
                            Some(b'"') => out.push('"'),
                            Some(b'\\') => out.push('\\'),
                            Some(b'/') => out.push('/'),
                            Some(b'n') => out.push('\n'),
                            Some(b'r') => out.push('\r'),
                            Some(b't') => out.push('\t'),
                            Some(b'b') => out.push('\u{8}'),
                            Some(b'f') => out.push('\u{c}'),
                            Some(b'u') => {
                                let hex = self.text.get(self.at..self.at + 4);
                                let code = hex
                                    .and_then(|h| std::str::from_utf8(h).ok())
                                    .and_then(|h| u32::from_str_radix(h, 16).ok());
                                self.at += 4;
                                match code.and_then(char::from_u32) {
                                    Some(c) => out.push(c),
                                    None => return self.error("a \\u escape this reader does not take (surrogates are not used)"),
                                }
                            }
                            _ => return self.error("unknown escape"),
                        }
                    }
                    _ => {
                        let len = rest
                            .iter()
                            .position(|&c| c == b'"' || c == b'\\')
                            .unwrap_or(rest.len());
                        match std::str::from_utf8(&rest[..len]) {
                            Ok(s) => out.push_str(s),
                            Err(_) => return self.error("not UTF-8"),
                        }
                        self.at += len;
                    }
                }
            }
        }
    }

    /// How many object fields and array items `j` holds, at any depth.
    pub fn removable(j: &Json) -> usize {
        match j {
            Json::Array(items) => items.iter().map(|v| 1 + removable(v)).sum(),
            Json::Object(fields) => fields.iter().map(|(_, v)| 1 + removable(v)).sum(),
            _ => 0,
        }
    }

    /// Removes the `i`-th field or item of `j` (pre-order); `i` counts
    /// down as they are passed. `true` once removed.
    pub fn remove(j: &mut Json, i: &mut usize) -> bool {
        let children: Vec<&mut Json> = match j {
            Json::Array(items) => items.iter_mut().collect(),
            Json::Object(fields) => fields.iter_mut().map(|(_, v)| v).collect(),
            _ => return false,
        };
        let mut hit = None;
        for (n, child) in children.into_iter().enumerate() {
            if *i == 0 {
                hit = Some(n);
                break;
            }
            *i -= 1;
            if remove(child, i) {
                return true;
            }
        }
        match (hit, j) {
            (Some(n), Json::Array(items)) => drop(items.remove(n)),
            (Some(n), Json::Object(fields)) => drop(fields.remove(n)),
            _ => return false,
        }
        true
    }

    /// Compact JSON text of `j`.
    pub fn write(j: &Json) -> String {
        let mut out = String::new();
        write_into(&mut out, j);
        out
    }

    fn write_into(out: &mut String, j: &Json) {
        match j {
            Json::Number(n) => out.push_str(&n.to_string()),
            Json::String(s) => string(out, s),
            Json::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_into(out, v);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    string(out, k);
                    out.push(':');
                    write_into(out, v);
                }
                out.push('}');
            }
        }
    }

    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser {
            text: text.as_bytes(),
            at: 0,
        };
        let v = p.value()?;
        p.skip();
        if p.at != p.text.len() {
            return p.error("text after the value");
        }
        Ok(v)
    }

    pub fn string(out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    /// Bytes as a JSON value: a string when they are UTF-8 with no long
    /// run; otherwise parts: strings, `{"repeat": TEXT, "times": N}` for a
    /// run, `{"hex": HEX}` for bytes that are not UTF-8.
    pub fn bytes(out: &mut String, b: &[u8]) {
        const RUN: usize = 32;
        let run_at = |i: usize| {
            i + RUN <= b.len() && b[i].is_ascii() && b[i..i + RUN].iter().all(|&x| x == b[i])
        };
        let has_run = (0..b.len()).any(run_at);
        if let (Ok(s), false) = (std::str::from_utf8(b), has_run) {
            string(out, s);
            return;
        }
        let mut parts: Vec<String> = Vec::new();
        let mut i = 0;
        let mut text = Vec::new();
        let flush = |text: &mut Vec<u8>, parts: &mut Vec<String>| {
            let mut rest = &text[..];
            while !rest.is_empty() {
                match std::str::from_utf8(rest) {
                    Ok(s) => {
                        let mut p = String::new();
                        string(&mut p, s);
                        parts.push(p);
                        rest = &[];
                    }
                    Err(e) => {
                        let (good, bad) = rest.split_at(e.valid_up_to());
                        if !good.is_empty() {
                            let mut p = String::new();
                            string(&mut p, std::str::from_utf8(good).unwrap());
                            parts.push(p);
                        }
                        let n = e.error_len().unwrap_or(bad.len());
                        let hex: String = bad[..n].iter().map(|x| format!("{x:02x}")).collect();
                        parts.push(format!("{{\"hex\": \"{hex}\"}}"));
                        rest = &bad[n..];
                    }
                }
            }
            text.clear();
        };
        while i < b.len() {
            if run_at(i) {
                flush(&mut text, &mut parts);
                let c = b[i];
                let n = b[i..].iter().take_while(|&&x| x == c).count();
                let mut p = String::from("{\"repeat\": ");
                string(&mut p, &(c as char).to_string());
                p.push_str(&format!(", \"times\": {n}}}"));
                parts.push(p);
                i += n;
            } else {
                text.push(b[i]);
                i += 1;
            }
        }
        flush(&mut text, &mut parts);
        out.push('[');
        out.push_str(&parts.join(", "));
        out.push(']');
    }

    pub fn read_bytes(v: &Json) -> Result<Vec<u8>, String> {
        match v {
            Json::String(s) => Ok(s.clone().into_bytes()),
            Json::Array(parts) => {
                let mut out = Vec::new();
                for p in parts {
                    match p {
                        Json::String(s) => out.extend_from_slice(s.as_bytes()),
                        Json::Object(f) => match f.as_slice() {
                            [(k, Json::String(hex))] if k == "hex" => {
                                if hex.len() % 2 != 0 {
                                    return Err(format!("odd hex {hex:?}"));
                                }
                                for i in (0..hex.len()).step_by(2) {
                                    out.push(
                                        u8::from_str_radix(&hex[i..i + 2], 16)
                                            .map_err(|e| format!("hex {hex:?}: {e}"))?,
                                    );
                                }
                            }
                            [(r, Json::String(text)), (t, Json::Number(n))]
                                if r == "repeat" && t == "times" =>
                            {
                                for _ in 0..*n {
                                    out.extend_from_slice(text.as_bytes());
                                }
                            }
                            _ => {
                                return Err(format!(
                                    "a part is text, {{\"hex\"}} or {{\"repeat\", \"times\"}}: {p:?}"
                                ));
                            }
                        },
                        other => return Err(format!("a part is text or an object: {other:?}")),
                    }
                }
                Ok(out)
            }
            other => Err(format!(
                "bytes are a string or an array of parts: {other:?}"
            )),
        }
    }

    fn pairs(out: &mut String, list: &[(Vec<u8>, Vec<u8>)]) {
        out.push('[');
        for (i, (k, v)) in list.iter().enumerate() {
            out.push_str(if i == 0 { "\n    [" } else { ",\n    [" });
            bytes(out, k);
            out.push_str(", ");
            bytes(out, v);
            out.push(']');
        }
        out.push_str(if list.is_empty() { "]" } else { "\n  ]" });
    }

    pub fn case(case: &Case, why: &str, found_by: &str) -> String {
        let mut out = String::from("{\n  \"why\": ");
        string(&mut out, why);
        out.push_str(",\n  \"found_by\": ");
        string(&mut out, found_by);
        out.push_str(",\n  \"config\": ");
        string(&mut out, &case.config);
        out.push_str(&format!(
            ",\n  \"clock_ns\": {},\n  \"source\": ",
            case.clock_ns
        ));
        string(&mut out, &case.source.to_string());
        out.push_str(",\n  \"shared\": ");
        pairs(&mut out, &case.shared);
        out.push_str(",\n  \"headers\": ");
        pairs(&mut out, &case.headers);
        out.push_str("\n}\n");
        out
    }

    fn read_pairs(v: Option<&Json>, field: &str) -> Result<Pairs, String> {
        let Some(v) = v else {
            return Ok(Vec::new());
        };
        let Json::Array(items) = v else {
            return Err(format!("{field}: expected an array"));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Json::Array(kv) if kv.len() == 2 => Ok((
                    read_bytes(&kv[0]).map_err(|e| format!("{field}[{i}][0]: {e}"))?,
                    read_bytes(&kv[1]).map_err(|e| format!("{field}[{i}][1]: {e}"))?,
                )),
                _ => Err(format!("{field}[{i}]: expected [name, value]")),
            })
            .collect()
    }

    /// The string field `name` of the object in `text`.
    pub fn field(text: &str, name: &str) -> Option<String> {
        match parse(text).ok()? {
            Json::Object(fields) => fields.into_iter().find_map(|(k, v)| match v {
                Json::String(s) if k == name => Some(s),
                _ => None,
            }),
            _ => None,
        }
    }

    pub fn read_case(text: &str) -> Result<Case, String> {
        let Json::Object(fields) = parse(text)? else {
            return Err("expected an object".into());
        };
        const KNOWN: [&str; 7] = [
            "why", "found_by", "config", "clock_ns", "source", "shared", "headers",
        ];
        if let Some((k, _)) = fields.iter().find(|(k, _)| !KNOWN.contains(&k.as_str())) {
            return Err(format!("unknown field {k:?}; expected one of {KNOWN:?}"));
        }
        let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let Some(Json::String(config)) = get("config") else {
            return Err("config: expected a string".into());
        };
        let clock_ns = match get("clock_ns") {
            Some(Json::Number(n)) => *n,
            None => proxy_wasm_host::HostOptions::default().clock_ns,
            Some(other) => return Err(format!("clock_ns: expected a number, found {other:?}")),
        };
        let source = match get("source") {
            Some(Json::String(s)) => s.parse().map_err(|e| format!("source {s:?}: {e}"))?,
            None => "203.0.113.9:40000".parse().unwrap(),
            Some(other) => return Err(format!("source: expected a string, found {other:?}")),
        };
        Ok(Case {
            config: config.clone(),
            clock_ns,
            source,
            shared: read_pairs(get("shared"), "shared")?,
            headers: read_pairs(get("headers"), "headers")?,
        })
    }
}

#[test]
fn a_case_survives_its_json() {
    let case = Case {
        config: r#"{"version":1,"sandboxes":[]}"#.into(),
        clock_ns: u64::MAX,
        source: "[2001:db8::1]:80".parse().unwrap(),
        shared: vec![(b"laneway.rl.k1".to_vec(), vec![0, 1, 2, 255, b'"'])],
        headers: vec![
            (b"baggage".to_vec(), b"a=1,\"\\\t\x7f".to_vec()),
            (b"tracestate".to_vec(), {
                let mut v = b"pad=".to_vec();
                v.extend(std::iter::repeat_n(b'x', 100));
                v.extend_from_slice(&[0xc3, 0xa9, 0xff, 0xfe, b'z']);
                v
            }),
        ],
    };
    let text = json::case(&case, "why", "by");
    assert!(text.contains(r#"{"repeat": "x", "times": 100}"#), "{text}");
    assert_eq!(json::read_case(&text).unwrap(), case, "{text}");
}
