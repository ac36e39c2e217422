//! Byte classes for the parsers: a 256-entry table for keys and OWS, and a
//! SWAR scan that checks eight value bytes per step.
//!
//! Design decision: values are most of a baggage header's bytes, so the
//! value scan works on blocks and finds the first byte that is not a plain
//! baggage-octet with masks instead of a branch per byte: sixteen bytes per
//! step with SSE2 on x86_64 (the crate's one `unsafe` call), eight per step
//! on `u64` words elsewhere (wasm32 included). The two scans are separate
//! functions, [`plain_octets_sse2`] and [`plain_octets_swar`], so the one
//! that Envoy runs (SWAR, on wasm32) is tested on its own on every host:
//! one property suite, instantiated for each scan, against a byte-at-a-time
//! oracle.
//!
//! Never allocates; never panics.

const TCHAR: u8 = 1;
const OCTET: u8 = 2;
const TS_KEY: u8 = 4;
const TS_VALUE: u8 = 8;

static TABLE: [u8; 256] = table();

const fn table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let tchar = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        let octet = matches!(c, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E);
        let ts_key =
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'*' | b'/');
        // tracestate `chr`: SP or nblk-chr (printable ASCII but `,` and `=`).
        let ts_value = matches!(c, 0x20..=0x2B | 0x2D..=0x3C | 0x3E..=0x7E);
        t[b] = (if tchar { TCHAR } else { 0 })
            | (if octet { OCTET } else { 0 })
            | (if ts_key { TS_KEY } else { 0 })
            | (if ts_value { TS_VALUE } else { 0 });
        b += 1;
    }
    t
}

/// RFC 9110 `tchar`.
#[inline]
pub fn is_tchar(b: u8) -> bool {
    TABLE[b as usize] & TCHAR != 0
}

/// W3C Baggage `baggage-octet`.
#[inline]
pub fn is_baggage_octet(b: u8) -> bool {
    TABLE[b as usize] & OCTET != 0
}

/// A tracestate key character after the first: `lcalpha / DIGIT / _-*/@`.
#[inline]
pub fn is_tracestate_key(b: u8) -> bool {
    TABLE[b as usize] & TS_KEY != 0
}

/// A tracestate value character (`chr`): SP or printable ASCII but `,` `=`.
#[inline]
pub fn is_tracestate_value(b: u8) -> bool {
    TABLE[b as usize] & TS_VALUE != 0
}

/// Whether every byte of `bytes` has `class`, without a branch per byte.
#[inline]
fn all(bytes: &[u8], class: u8) -> bool {
    bytes.iter().fold(class, |acc, &b| acc & TABLE[b as usize]) == class
}

/// Whether every byte is a tracestate key character.
#[inline]
pub fn all_tracestate_key(bytes: &[u8]) -> bool {
    all(bytes, TS_KEY)
}

/// Whether every byte is a tracestate value character.
#[inline]
pub fn all_tracestate_value(bytes: &[u8]) -> bool {
    all(bytes, TS_VALUE)
}

/// Length of the leading run of tchars.
#[inline]
pub fn tchars(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&b| !is_tchar(b))
        .unwrap_or(bytes.len())
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `low7` (bytes < 0x80) equal to `c` (< 0x80).
#[inline]
fn eq(low7: u64, c: u8) -> u64 {
    let z = low7 ^ (LO * u64::from(c));
    // z's bytes are < 0x80, so z + 0x7F never carries into the next byte,
    // and its high bit is clear exactly for the zero bytes.
    !((z + LO * 0x7F) | z) & HI
}

/// High bit set in each byte of `x` that is not a plain baggage-octet:
/// outside 0x21..=0x7E, or one of `"` `,` `;` `\` `%`.
#[inline]
fn not_plain(x: u64) -> u64 {
    let high = x & HI;
    let low7 = x & !HI;
    let below_21 = !(low7 + LO * (0x80 - 0x21)) & HI;
    let is_7f = (low7 + LO) & HI;
    high | below_21
        | is_7f
        | eq(low7, b'"')
        | eq(low7, b',')
        | eq(low7, b';')
        | eq(low7, b'\\')
        | eq(low7, b'%')
}

/// Length of the leading run of baggage-octets other than `%`: the SSE2
/// scan on x86_64, the SWAR scan elsewhere.
#[inline]
pub fn plain_octets(bytes: &[u8]) -> usize {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    return plain_octets_sse2(bytes);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    return plain_octets_swar(bytes, 0);
}

/// [`plain_octets`] eight bytes per step on `u64` words, starting at
/// `from` (the SSE2 scan hands over its tail), then byte by byte.
#[inline]
pub fn plain_octets_swar(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(word) = bytes.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let bad = not_plain(u64::from_le_bytes(w));
        if bad != 0 {
            return i + (bad.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < bytes.len() && bytes[i] != b'%' && is_baggage_octet(bytes[i]) {
        i += 1;
    }
    i
}

/// [`plain_octets`] sixteen bytes per step with SSE2, then the SWAR scan
/// for the tail.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
pub fn plain_octets_sse2(bytes: &[u8]) -> usize {
    let mut i = 0;
    while let Some(block) = bytes.get(i..i + 16) {
        let (lo, hi) = block.split_at(8);
        let word = |b: &[u8]| {
            let mut w = [0u8; 8];
            w.copy_from_slice(b);
            u64::from_le_bytes(w)
        };
        // SAFETY: the cfg above proves this build has SSE2, the only
        // target feature `not_plain16` needs; it reads no memory.
        #[allow(unsafe_code)]
        let bad = unsafe { sse2::not_plain16(word(lo), word(hi)) };
        if bad != 0 {
            return i + bad.trailing_zeros() as usize;
        }
        i += 16;
    }
    plain_octets_swar(bytes, i)
}

/// SSE2 (part of every x86_64 CPU): sixteen bytes per step.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use core::arch::x86_64::*;

    /// Bit `i` set when byte `i` of `lo` then `hi` (little-endian) is not
    /// a plain baggage-octet. Signed compares: bytes >= 0x80 are negative,
    /// so `> 0x20` leaves them out.
    #[target_feature(enable = "sse2")]
    pub fn not_plain16(lo: u64, hi: u64) -> u32 {
        let x = _mm_set_epi64x(hi as i64, lo as i64);
        let in_range = _mm_and_si128(
            _mm_cmpgt_epi8(x, _mm_set1_epi8(0x20)),
            _mm_cmplt_epi8(x, _mm_set1_epi8(0x7f)),
        );
        let eq = |c: u8| _mm_cmpeq_epi8(x, _mm_set1_epi8(c as i8));
        let special = _mm_or_si128(
            _mm_or_si128(eq(b'"'), eq(b'%')),
            _mm_or_si128(_mm_or_si128(eq(b','), eq(b';')), eq(b'\\')),
        );
        let plain = _mm_andnot_si128(special, in_range);
        !(_mm_movemask_epi8(plain) as u32) & 0xFFFF
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_plain(bytes: &[u8]) -> usize {
        bytes
            .iter()
            .position(|&b| {
                b == b'%'
                    || !matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
            })
            .unwrap_or(bytes.len())
    }

    /// One property suite, instantiated for every scan: each byte value
    /// in each lane of a block, and arbitrary runs, against the oracle.
    macro_rules! scan_suite {
        ($name:ident, $scan:expr) => {
            mod $name {
                use super::*;

                fn scan(bytes: &[u8]) -> usize {
                    $scan(bytes)
                }

                #[test]
                fn every_byte_in_every_lane() {
                    for b in 0..=255u8 {
                        for lane in 0..19 {
                            for len in [lane + 1, 19, 40] {
                                let mut v = alloc::vec![b'v'; len];
                                v[lane] = b;
                                assert_eq!(
                                    scan(&v),
                                    naive_plain(&v),
                                    "byte {b:#04x} in lane {lane} of {len}"
                                );
                            }
                        }
                    }
                }

                proptest! {
                    #[test]
                    fn matches_naive(bytes in proptest::collection::vec(
                        prop_oneof![Just(b'v'), Just(b'%'), Just(b' '), Just(b';'), Just(b'"'),
                                    Just(0x7f), Just(0x80), any::<u8>()], 0..70)) {
                        prop_assert_eq!(scan(&bytes), naive_plain(&bytes));
                    }
                }
            }
        };
    }

    scan_suite!(dispatch, plain_octets);
    scan_suite!(swar, |b: &[u8]| plain_octets_swar(b, 0));
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    scan_suite!(sse2_then_swar, plain_octets_sse2);

    #[test]
    fn tracestate_classes_match_the_grammar() {
        for b in 0..=255u8 {
            let key = b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/".contains(&b);
            assert_eq!(is_tracestate_key(b), key, "{b:#04x}");
            assert_eq!(all_tracestate_key(&[b'a', b, b'z']), key, "{b:#04x}");
            let value = b == b' ' || ((0x21..=0x7E).contains(&b) && b != b',' && b != b'=');
            assert_eq!(is_tracestate_value(b), value, "{b:#04x}");
            assert_eq!(all_tracestate_value(&[b'v', b]), value, "{b:#04x}");
        }
        assert!(all_tracestate_key(b"") && all_tracestate_value(b""));
    }

    #[test]
    fn table_matches_the_grammar() {
        for b in 0..=255u8 {
            let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_tchar(b), tchar, "{b:#04x}");
            let octet = b == 0x21
                || (0x23..=0x2B).contains(&b)
                || (0x2D..=0x3A).contains(&b)
                || (0x3C..=0x5B).contains(&b)
                || (0x5D..=0x7E).contains(&b);
            assert_eq!(is_baggage_octet(b), octet, "{b:#04x}");
        }
    }
}
