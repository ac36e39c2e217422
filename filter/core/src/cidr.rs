//! Trusted source networks for the ingress guard: IP addresses, read from
//! Envoy's `source.address` property, and the CIDRs they are matched
//! against.
//!
//! Decisions made here:
//! - One address type, [`Ip`], of 16 bytes. An IPv4 address is stored as
//!   its IPv4-mapped IPv6 form (`::ffff:a.b.c.d`), so a dual-stack
//!   listener's `[::ffff:10.1.2.3]:80` and a plain `10.1.2.3:80` are the
//!   same source, and both match `10.0.0.0/8`. An IPv4 CIDR matches only
//!   IPv4 sources (it is a /96+ prefix of the mapped space); an IPv6 CIDR
//!   is compared over all 128 bits, so `::/0` matches every source.
//! - Strict text, one spelling per address: IPv4 is four decimal octets
//!   without leading zeros (`010.1.2.3` is refused, as it reads as octal
//!   elsewhere); IPv6 is RFC 4291 text (groups of 1 to 4 hex digits, one
//!   `::`, an optional dotted IPv4 tail). No zone ids, no whitespace.
//! - A CIDR's network has no bits set beyond its prefix: `10.1.0.0/8` is
//!   refused with the network it probably means, not silently masked.
//!
//! [`parse_source`], [`Ip::parse`] and [`Cidr::contains`] run on the
//! request path: they never allocate and never panic on any input.

use core::fmt;

use alloc::format;
use alloc::string::String;

/// An IP address: 16 bytes, IPv4 stored as IPv4-mapped IPv6.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ip([u8; 16]);

/// The first 12 bytes of an IPv4-mapped IPv6 address.
const MAPPED: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

impl Ip {
    /// The address with these 16 bytes (network order).
    pub const fn from_octets(octets: [u8; 16]) -> Ip {
        Ip(octets)
    }

    /// The IPv4 address `a.b.c.d`, as `::ffff:a.b.c.d`.
    pub const fn from_v4([a, b, c, d]: [u8; 4]) -> Ip {
        Ip([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d])
    }

    /// The 16 bytes, network order (IPv4 as IPv4-mapped IPv6).
    pub const fn octets(self) -> [u8; 16] {
        self.0
    }

    /// The IPv4 address, if this is one (stored IPv4-mapped).
    pub fn to_v4(self) -> Option<[u8; 4]> {
        let [a, b, c, d] = *self.0.last_chunk::<4>()?;
        (self.0.first_chunk::<12>() == Some(&MAPPED)).then_some([a, b, c, d])
    }

    /// A bare address: `10.1.2.3`, `2001:db8::1`, `::ffff:10.1.2.3`. No
    /// brackets, no port, no zone.
    pub fn parse(text: &[u8]) -> Option<Ip> {
        if text.contains(&b':') {
            parse_v6(text).map(Ip)
        } else {
            parse_v4(text).map(Ip::from_v4)
        }
    }

    fn bits(self) -> u128 {
        u128::from_be_bytes(self.0)
    }
}

/// IPv4 sources print as `10.1.2.3`; IPv6 in RFC 5952 form.
impl fmt::Display for Ip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_v4() {
            Some(v4) => write_v4(f, v4),
            None => write_v6(f, self.0),
        }
    }
}

impl fmt::Debug for Ip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ip({self})")
    }
}

/// The source address in Envoy's `source.address` property value:
/// `1.2.3.4:5678`, `[2001:db8::1]:5678`, or the same without a port
/// (`1.2.3.4`, `2001:db8::1`, `[::1]`). `None` for anything else (a pipe
/// path, an internal address, garbage). Never allocates, never panics.
pub fn parse_source(address: &[u8]) -> Option<Ip> {
    if let Some(rest) = address.strip_prefix(b"[") {
        let close = rest.iter().position(|&b| b == b']')?;
        let inside = rest.get(..close)?;
        let after = rest.get(close + 1..)?;
        if !(after.is_empty() || after.strip_prefix(b":").is_some_and(is_port)) {
            return None;
        }
        return parse_v6(inside).map(Ip);
    }
    match address.iter().filter(|&&b| b == b':').count() {
        0 => parse_v4(address).map(Ip::from_v4),
        1 => {
            let colon = address.iter().position(|&b| b == b':')?;
            let port = address.get(colon + 1..)?;
            is_port(port)
                .then(|| parse_v4(address.get(..colon)?))
                .flatten()
                .map(Ip::from_v4)
        }
        // An IPv6 address has at least two colons; a bare one has no port.
        _ => parse_v6(address).map(Ip),
    }
}

/// A port: 0 to 65535, decimal, no leading zeros.
fn is_port(text: &[u8]) -> bool {
    decimal(text, 5).is_some_and(|p| p <= 65535)
}

/// A decimal number of 1 to `max_digits` digits without a leading zero
/// (`0` itself is fine).
fn decimal(text: &[u8], max_digits: usize) -> Option<u32> {
    if text.is_empty() || text.len() > max_digits || (text.len() > 1 && text.first() == Some(&b'0'))
    {
        return None;
    }
    text.iter().try_fold(0u32, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

/// Dotted-quad IPv4: four decimal octets, no leading zeros.
fn parse_v4(text: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = text.split(|&b| b == b'.');
    for slot in &mut out {
        *slot = u8::try_from(decimal(parts.next()?, 3)?).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// RFC 4291 text: eight groups of 1 to 4 hex digits, or fewer around one
/// `::` (which stands for at least one zero group); the last 32 bits may
/// be written as dotted IPv4.
fn parse_v6(text: &[u8]) -> Option<[u8; 16]> {
    let mut head = [0u16; 8];
    let mut tail = [0u16; 8];
    let gap = text.windows(2).position(|w| w == b"::");
    let (head_len, tail_len) = match gap {
        None => (groups(text, true, &mut head)?, 0),
        Some(at) => {
            let before = text.get(..at)?;
            let after = text.get(at + 2..)?;
            let head_len = groups(before, false, &mut head)?;
            let tail_len = groups(after, true, &mut tail)?;
            (head_len, tail_len)
        }
    };
    let complete = match gap {
        None => head_len == 8,
        Some(_) => head_len + tail_len <= 7,
    };
    if !complete {
        return None;
    }
    let mut all = head;
    let start = 8usize.checked_sub(tail_len)?;
    all.get_mut(start..)?.copy_from_slice(tail.get(..tail_len)?);
    let mut out = [0u8; 16];
    for (pair, group) in out.as_chunks_mut::<2>().0.iter_mut().zip(all) {
        *pair = group.to_be_bytes();
    }
    Some(out)
}

/// Reads colon-separated groups into `out`, returning how many 16-bit
/// groups they make (a dotted IPv4 tail, allowed last when `v4_last`,
/// makes two). An empty text is zero groups.
fn groups(text: &[u8], v4_last: bool, out: &mut [u16; 8]) -> Option<usize> {
    if text.is_empty() {
        return Some(0);
    }
    let mut n = 0usize;
    let mut pieces = text.split(|&b| b == b':').peekable();
    while let Some(piece) = pieces.next() {
        let last = pieces.peek().is_none();
        if last && v4_last && piece.contains(&b'.') {
            let [a, b, c, d] = parse_v4(piece)?;
            *out.get_mut(n)? = u16::from_be_bytes([a, b]);
            *out.get_mut(n + 1)? = u16::from_be_bytes([c, d]);
            n += 2;
        } else {
            *out.get_mut(n)? = hex_group(piece)?;
            n += 1;
        }
    }
    Some(n)
}

fn hex_group(text: &[u8]) -> Option<u16> {
    if text.is_empty() || text.len() > 4 {
        return None;
    }
    text.iter().try_fold(0u16, |n, &b| {
        let digit = (b as char).to_digit(16)?;
        Some(n << 4 | digit as u16)
    })
}

fn write_v4(f: &mut fmt::Formatter<'_>, [a, b, c, d]: [u8; 4]) -> fmt::Result {
    write!(f, "{a}.{b}.{c}.{d}")
}

/// RFC 5952: lower-case hex without leading zeros, the longest run of two
/// or more zero groups (the first, on a tie) as `::`, and an IPv4-mapped
/// address as `::ffff:a.b.c.d`.
fn write_v6(f: &mut fmt::Formatter<'_>, octets: [u8; 16]) -> fmt::Result {
    let ip = Ip(octets);
    if let Some(v4) = ip.to_v4() {
        f.write_str("::ffff:")?;
        return write_v4(f, v4);
    }
    let mut g = [0u16; 8];
    for (group, &pair) in g.iter_mut().zip(octets.as_chunks::<2>().0) {
        *group = u16::from_be_bytes(pair);
    }
    // The longest run of zero groups: (start, length).
    let (mut best, mut run) = ((0usize, 0usize), (0usize, 0usize));
    for (i, &group) in g.iter().enumerate() {
        if group == 0 {
            if run.1 == 0 {
                run.0 = i;
            }
            run.1 += 1;
            if run.1 > best.1 {
                best = run;
            }
        } else {
            run.1 = 0;
        }
    }
    let write_groups = |f: &mut fmt::Formatter<'_>, groups: &[u16]| -> fmt::Result {
        for (i, group) in groups.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{group:x}")?;
        }
        Ok(())
    };
    if best.1 < 2 {
        return write_groups(f, &g);
    }
    write_groups(f, g.get(..best.0).unwrap_or(&[]))?;
    f.write_str("::")?;
    write_groups(f, g.get(best.0 + best.1..).unwrap_or(&[]))
}

/// A network: an address and a prefix length. Its address has no bits set
/// beyond the prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: Ip,
    /// The prefix length over all 128 bits (an IPv4 /8 is 104).
    bits: u8,
    /// Written as IPv4: the prefix counts from the mapped part.
    v4: bool,
}

/// Why a text is not a CIDR. Each says what was expected; callers quote the
/// text itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CidrError {
    /// The text is empty.
    Empty,
    /// The part before `/` is not an IPv4 or IPv6 address.
    Address,
    /// The part after `/` is not a decimal number without leading zeros.
    Prefix,
    /// The prefix is longer than the address: more than 32 for IPv4, or
    /// 128 for IPv6.
    PrefixTooLong {
        /// 32 or 128.
        max: u8,
    },
    /// Bits are set beyond the prefix; `network` is the text with them
    /// cleared.
    HostBits {
        /// The network the text probably means.
        network: Cidr,
    },
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrError::Empty => f.write_str(
                "the network is empty; write ADDRESS/PREFIX, e.g. 10.0.0.0/8 or fd00::/8",
            ),
            CidrError::Address => f.write_str(
                "not an IPv4 or IPv6 address; write ADDRESS/PREFIX, e.g. 10.0.0.0/8 or fd00::/8 \
                 (IPv4 octets without leading zeros, no brackets, no zone)",
            ),
            CidrError::Prefix => f.write_str(
                "the prefix length after / is not a decimal number without leading zeros",
            ),
            CidrError::PrefixTooLong { max } => write!(
                f,
                "the prefix length is more than {max}, the address's length in bits"
            ),
            CidrError::HostBits { network } => write!(
                f,
                "host bits are set beyond the /{} prefix; did you mean {network}?",
                network.prefix_len()
            ),
        }
    }
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `192.168.1.7/32`, `fd00::/8`, `::1/128`; a
    /// bare address is a /32 (IPv4) or /128 (IPv6) network.
    pub fn parse(text: &str) -> Result<Cidr, CidrError> {
        let text = text.as_bytes();
        if text.is_empty() {
            return Err(CidrError::Empty);
        }
        let (address, prefix) = match text.iter().position(|&b| b == b'/') {
            Some(slash) => (
                text.get(..slash).unwrap_or_default(),
                Some(text.get(slash + 1..).unwrap_or_default()),
            ),
            None => (text, None),
        };
        let ip = Ip::parse(address).ok_or(CidrError::Address)?;
        // Written as IPv4 when it has no colon (a mapped address written
        // as IPv6 keeps its IPv6 prefix length).
        let v4 = !address.contains(&b':');
        let max: u8 = if v4 { 32 } else { 128 };
        let len = match prefix {
            None => max,
            Some(p) => {
                let n = decimal(p, 3).ok_or(CidrError::Prefix)?;
                u8::try_from(n)
                    .ok()
                    .filter(|&n| n <= max)
                    .ok_or(CidrError::PrefixTooLong { max })?
            }
        };
        let bits = if v4 { len + 96 } else { len };
        let network = Ip(mask(ip.bits(), bits).to_be_bytes());
        let cidr = Cidr { network, bits, v4 };
        if network != ip {
            return Err(CidrError::HostBits { network: cidr });
        }
        Ok(cidr)
    }

    /// Whether `ip` is in this network. Never allocates, never panics.
    pub fn contains(&self, ip: Ip) -> bool {
        mask(ip.bits(), self.bits) == self.network.bits()
    }

    /// The network's address (host bits clear).
    pub fn network(&self) -> Ip {
        self.network
    }

    /// The prefix length as written: 0 to 32 for IPv4, 0 to 128 for IPv6.
    pub fn prefix_len(&self) -> u8 {
        if self.v4 {
            self.bits.saturating_sub(96)
        } else {
            self.bits
        }
    }

    /// Whether the network was written as IPv4.
    pub fn is_v4(&self) -> bool {
        self.v4
    }
}

/// Canonical text: `10.0.0.0/8`, `fd00::/8`.
impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.network.to_v4().filter(|_| self.v4) {
            Some(v4) => write_v4(f, v4)?,
            None => write_v6(f, self.network.0)?,
        }
        write!(f, "/{}", self.prefix_len())
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cidr({self})")
    }
}

/// `value` with all but its first `bits` bits cleared.
fn mask(value: u128, bits: u8) -> u128 {
    let keep = u128::MAX
        .checked_shl(128u32.saturating_sub(u32::from(bits)))
        .unwrap_or(0);
    value & keep
}

/// Why `text` is not a CIDR, if it is not, quoting it (cut to
/// [`crate::config::QUOTE_LIMIT`] characters): for configuration errors.
pub fn problem(text: &str) -> Option<String> {
    Cidr::parse(text)
        .err()
        .map(|e| format!("{}: {e}", crate::config::cut(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::string::ToString;

    use proptest::prelude::*;

    fn from_std(a: IpAddr) -> Ip {
        match a {
            IpAddr::V4(v4) => Ip::from_v4(v4.octets()),
            IpAddr::V6(v6) => Ip(v6.octets()),
        }
    }

    /// The obviously-correct reading, by std's parsers: a bare address, a
    /// bracketed IPv6 address, or either with `:PORT` (decimal, no leading
    /// zeros, at most 65535). std accepts zones (`%eth0`) in socket
    /// addresses; Laneway does not.
    fn naive(s: &str) -> Option<Ip> {
        if s.contains('%') {
            return None;
        }
        if let Ok(a) = s.parse::<IpAddr>() {
            return Some(from_std(a));
        }
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            return inner.parse::<Ipv6Addr>().ok().map(|a| Ip(a.octets()));
        }
        let (host, port) = s.rsplit_once(':')?;
        let port_ok = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && (port == "0" || !port.starts_with('0'))
            && port.parse::<u32>().is_ok_and(|p| p <= 65535);
        if !port_ok {
            return None;
        }
        match host.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            Some(inner) => inner.parse::<Ipv6Addr>().ok().map(|a| Ip(a.octets())),
            None => host
                .parse::<Ipv4Addr>()
                .ok()
                .map(|a| Ip::from_v4(a.octets())),
        }
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Option<Ip> {
        Some(Ip::from_v4([a, b, c, d]))
    }

    fn v6(text: &str) -> Option<Ip> {
        Some(Ip(text.parse::<Ipv6Addr>().unwrap().octets()))
    }

    #[test]
    fn source_addresses_as_envoy_writes_them() {
        let cases: &[(&str, Option<Ip>)] = &[
            ("1.2.3.4:5678", v4(1, 2, 3, 4)),
            ("1.2.3.4", v4(1, 2, 3, 4)),
            ("0.0.0.0:0", v4(0, 0, 0, 0)),
            ("255.255.255.255:65535", v4(255, 255, 255, 255)),
            ("[2001:db8::1]:5678", v6("2001:db8::1")),
            ("2001:db8::1", v6("2001:db8::1")),
            ("[::1]", v6("::1")),
            ("[::]:80", v6("::")),
            ("::", v6("::")),
            ("[::ffff:10.1.2.3]:80", v4(10, 1, 2, 3)),
            ("::ffff:10.1.2.3", v4(10, 1, 2, 3)),
            ("::FFFF:0a01:0203", v4(10, 1, 2, 3)),
            ("2001:DB8:0:0:0:0:0:1", v6("2001:db8::1")),
            ("2001:0db8:0000:0000:0000:0000:0000:0001", v6("2001:db8::1")),
            ("1:2:3:4:5:6:7::", v6("1:2:3:4:5:6:7:0")),
            ("::2:3:4:5:6:7:8", v6("0:2:3:4:5:6:7:8")),
            ("1:2:3:4:5:6:1.2.3.4", v6("1:2:3:4:5:6:102:304")),
            ("64:ff9b::192.0.2.33", v6("64:ff9b::c000:221")),
            // Refused: no zones, no leading zeros, no garbage.
            ("010.1.2.3", None),
            ("10.1.2.03:80", None),
            ("1.2.3.4:080", None),
            ("1.2.3.4:65536", None),
            ("1.2.3.4:", None),
            ("1.2.3", None),
            ("1.2.3.4.5", None),
            ("256.1.2.3", None),
            ("1.2.3.4 ", None),
            (" 1.2.3.4", None),
            ("[1.2.3.4]:80", None),
            ("[fe80::1%eth0]:80", None),
            ("fe80::1%eth0", None),
            ("[::1]80", None),
            ("[::1", None),
            ("::1]", None),
            ("1:2:3:4:5:6:7:8:9", None),
            ("1:2:3:4:5:6:7:8::", None),
            ("::1:2:3:4:5:6:7:8", None),
            ("1::2::3", None),
            (":::", None),
            (":1::", None),
            ("1:2:3:4:5:6:7:1.2.3.4", None),
            ("1.2.3.4::", None),
            ("12345::", None),
            ("", None),
            ("[]", None),
            ("envoy://internal_client_address/", None),
            ("/var/run/sock", None),
        ];
        for &(text, want) in cases {
            assert_eq!(parse_source(text.as_bytes()), want, "{text:?}");
            assert_eq!(naive(text), want, "the oracle disagrees on {text:?}");
        }
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let c = |t: &str| Cidr::parse(t).unwrap();
        let ip = |t: &str| parse_source(t.as_bytes()).unwrap();
        assert!(c("10.0.0.0/8").contains(ip("10.255.1.2")));
        assert!(!c("10.0.0.0/8").contains(ip("11.0.0.0")));
        assert!(c("10.0.0.0/8").contains(ip("[::ffff:10.9.9.9]:1")));
        assert!(!c("10.0.0.0/8").contains(ip("::a00:1")), "not mapped");
        assert!(c("192.168.1.7/32").contains(ip("192.168.1.7:9")));
        assert!(!c("192.168.1.7/32").contains(ip("192.168.1.8")));
        assert!(c("192.168.1.7").contains(ip("192.168.1.7")));
        assert!(c("0.0.0.0/0").contains(ip("1.2.3.4")));
        assert!(!c("0.0.0.0/0").contains(ip("::1")), "IPv4 /0 is IPv4 only");
        assert!(c("::/0").contains(ip("::1")));
        assert!(c("::/0").contains(ip("1.2.3.4")), "IPv6 /0 is everything");
        assert!(c("fd00::/8").contains(ip("[fdab::1]:80")));
        assert!(!c("fd00::/8").contains(ip("fe00::1")));
        assert!(c("::1/128").contains(ip("[::1]:80")));
        assert!(c("::1").contains(ip("::1")));
        assert!(!c("::1").contains(ip("::2")));
        assert!(c("::ffff:10.0.0.0/104").contains(ip("10.1.2.3")));
        assert_eq!(c("::ffff:10.0.0.0/104").prefix_len(), 104);
        assert_eq!(c("10.0.0.0/8").prefix_len(), 8);
        assert_eq!(c("10.0.0.0/8").network(), Ip::from_v4([10, 0, 0, 0]));
        assert!(c("10.0.0.0/8").is_v4() && !c("::/0").is_v4());
    }

    #[test]
    fn cidr_errors_say_what_is_wrong() {
        let e = |t: &str| Cidr::parse(t).unwrap_err();
        assert_eq!(e(""), CidrError::Empty);
        assert_eq!(e("10.0.0.0/"), CidrError::Prefix);
        assert_eq!(e("10.0.0.0/08"), CidrError::Prefix);
        assert_eq!(e("10.0.0.0/8/8"), CidrError::Prefix);
        assert_eq!(e("10.0.0.0/+8"), CidrError::Prefix);
        assert_eq!(e("10.0.0.0/1000"), CidrError::Prefix);
        assert_eq!(e("10.0.0.0/33"), CidrError::PrefixTooLong { max: 32 });
        assert_eq!(e("::/129"), CidrError::PrefixTooLong { max: 128 });
        assert_eq!(e("10.0.0/8"), CidrError::Address);
        assert_eq!(e("010.0.0.0/8"), CidrError::Address);
        assert_eq!(e("[::1]/128"), CidrError::Address);
        assert_eq!(e("fe80::%1/64"), CidrError::Address);
        assert_eq!(e(" 10.0.0.0/8"), CidrError::Address);
        assert_eq!(e("/8"), CidrError::Address);
        let cases = [
            (
                "10.1.0.0/8",
                "host bits are set beyond the /8 prefix; did you mean 10.0.0.0/8?",
            ),
            (
                "192.168.1.7/24",
                "host bits are set beyond the /24 prefix; did you mean 192.168.1.0/24?",
            ),
            (
                "fd00::1/8",
                "host bits are set beyond the /8 prefix; did you mean fd00::/8?",
            ),
            (
                "2001:db8:1:2::/32",
                "host bits are set beyond the /32 prefix; did you mean 2001:db8::/32?",
            ),
            (
                "::ffff:10.1.0.0/104",
                "host bits are set beyond the /104 prefix; did you mean ::ffff:10.0.0.0/104?",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(e(text).to_string(), want, "{text}");
        }
        assert_eq!(
            problem("10.1.0.0/8").unwrap(),
            "\"10.1.0.0/8\": host bits are set beyond the /8 prefix; did you mean 10.0.0.0/8?"
        );
        assert!(problem("10.0.0.0/8").is_none());
        assert!(
            problem("x")
                .unwrap()
                .starts_with("\"x\": not an IPv4 or IPv6 address")
        );
    }

    #[test]
    fn display_is_canonical() {
        for (text, want) in [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("FD00::/8", "fd00::/8"),
            ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1/128"),
            ("1:0:0:2:0:0:0:3/128", "1:0:0:2::3/128"),
            ("1:0:0:2:0:0:3:4/128", "1::2:0:0:3:4/128"),
            ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7/128"),
            ("::/0", "::/0"),
            ("::1", "::1/128"),
        ] {
            assert_eq!(Cidr::parse(text).unwrap().to_string(), want, "{text}");
        }
        assert_eq!(Ip::from_v4([10, 1, 2, 3]).to_string(), "10.1.2.3");
        assert_eq!(format!("{:?}", Ip::from_v4([10, 1, 2, 3])), "Ip(10.1.2.3)");
        assert_eq!(Ip::from_v4([1, 2, 3, 4]).to_v4(), Some([1, 2, 3, 4]));
        assert_eq!(v6("::1").unwrap().to_v4(), None);
    }

    #[test]
    fn errors_stay_small() {
        assert!(core::mem::size_of::<CidrError>() <= 20);
        assert!(core::mem::size_of::<Cidr>() <= 18);
    }

    /// Text an IPv6 address may be written as: every group in full, the
    /// canonical form, upper case, and compressed at any zero run.
    fn spellings(a: Ipv6Addr) -> Vec<String> {
        let g = a.segments();
        let mut out = vec![
            a.to_string(),
            a.to_string().to_uppercase(),
            g.iter()
                .map(|x| format!("{x:04x}"))
                .collect::<Vec<_>>()
                .join(":"),
            g.iter()
                .map(|x| format!("{x:x}"))
                .collect::<Vec<_>>()
                .join(":"),
        ];
        for start in 0..8 {
            for end in start + 1..=8 {
                if g[start..end].iter().all(|&x| x == 0) {
                    let part = |s: &[u16]| {
                        s.iter()
                            .map(|x| format!("{x:x}"))
                            .collect::<Vec<_>>()
                            .join(":")
                    };
                    out.push(format!("{}::{}", part(&g[..start]), part(&g[end..])));
                }
            }
        }
        let [.., a1, b1, c1, d1] = a.octets();
        out.push(format!(
            "{}:{a1}.{b1}.{c1}.{d1}",
            g[..6]
                .iter()
                .map(|x| format!("{x:x}"))
                .collect::<Vec<_>>()
                .join(":")
        ));
        out
    }

    fn interesting_v6() -> impl Strategy<Value = Ipv6Addr> {
        // Zero-heavy groups, so that compression forms come up.
        prop::array::uniform8(prop_oneof![Just(0u16), Just(0xffff), any::<u16>()])
            .prop_map(|g| Ipv6Addr::new(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]))
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let got = parse_source(&bytes);
            if let Ok(s) = std::str::from_utf8(&bytes) {
                prop_assert_eq!(got, naive(s));
                let _ = Cidr::parse(s);
            }
        }

        #[test]
        fn agrees_with_std_on_address_like_text(s in "[0-9a-fA-F:.\\[\\]%]{0,46}") {
            prop_assert_eq!(parse_source(s.as_bytes()), naive(&s));
        }

        #[test]
        fn every_ipv6_spelling_reads_the_same(a in interesting_v6(), port in any::<u16>()) {
            let want = Some(from_std(IpAddr::V6(a).to_canonical()));
            for s in spellings(a) {
                prop_assert_eq!(parse_source(s.as_bytes()), want, "{}", s);
                prop_assert_eq!(parse_source(format!("[{s}]").as_bytes()), want, "{}", s);
                prop_assert_eq!(parse_source(format!("[{s}]:{port}").as_bytes()), want, "{}", s);
            }
            // Display agrees with std's (RFC 5952) when not IPv4-mapped.
            if a.to_ipv4_mapped().is_none() {
                prop_assert_eq!(Ip(a.octets()).to_string(), a.to_string());
            }
            let text = format!("{a}/128");
            prop_assert_eq!(Cidr::parse(&text).unwrap().to_string(), text);
        }

        #[test]
        fn ipv4_sources_read_as_std_reads_them(a in any::<[u8; 4]>(), port in any::<u16>()) {
            let std = Ipv4Addr::from(a);
            prop_assert_eq!(parse_source(format!("{std}:{port}").as_bytes()), Some(Ip::from_v4(a)));
            prop_assert_eq!(parse_source(format!("[::ffff:{std}]:{port}").as_bytes()), Some(Ip::from_v4(a)));
            prop_assert_eq!(Ip::from_v4(a).to_string(), std.to_string());
        }

        #[test]
        fn contains_agrees_with_bitwise_prefix_compare(
            net in any::<[u8; 16]>(), ip in any::<[u8; 16]>(), len in 0u8..=128, v4 in any::<bool>(),
        ) {
            // The oracle: compare bit by bit, most significant first.
            let bit = |o: &[u8; 16], i: usize| o[i / 8] >> (7 - i % 8) & 1;
            let (net, ip, len) = if v4 {
                let mut n = [0u8; 16];
                n[..12].copy_from_slice(&MAPPED);
                n[12..].copy_from_slice(&net[12..]);
                (n, ip, len % 33)
            } else {
                (net, ip, len)
            };
            let bits = usize::from(len) + if v4 { 96 } else { 0 };
            let mut masked = net;
            for i in bits..128 {
                masked[i / 8] &= !(1 << (7 - i % 8));
            }
            let text = if v4 {
                format!("{}.{}.{}.{}/{len}", masked[12], masked[13], masked[14], masked[15])
            } else {
                format!("{}/{len}", Ipv6Addr::from(masked))
            };
            let cidr = Cidr::parse(&text).unwrap();
            let naive = (0..bits).all(|i| bit(&masked, i) == bit(&ip, i));
            prop_assert_eq!(cidr.contains(Ip(ip)), naive);
            prop_assert!(cidr.contains(Ip(masked)));
            prop_assert_eq!(cidr.to_string(), text);
            if masked != net {
                let raw = if v4 {
                    format!("{}.{}.{}.{}/{len}", net[12], net[13], net[14], net[15])
                } else {
                    format!("{}/{len}", Ipv6Addr::from(net))
                };
                prop_assert_eq!(Cidr::parse(&raw), Err(CidrError::HostBits { network: cidr }));
            }
        }
    }
}
