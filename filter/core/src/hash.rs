//! A small seeded hash for the routing tables: deterministic (no WASI
//! `random_get`), byte-at-a-time so percent-decoded values hash while they
//! decode, and case-folding for hosts.
//!
//! Collision attacks are not a concern here: the tables hold only
//! configured (trusted) entries, and [`crate::index`] bounds the probe
//! length at build time, so a crafted request can cost at most that bound.
//!
//! Never allocates; never panics.

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over bytes, finished with the murmur3 64-bit mixer so that the low
/// bits (the table index) depend on every input byte.
#[derive(Clone, Copy, Debug)]
pub struct Hasher(u64);

impl Hasher {
    /// A hasher for table `seed`.
    #[inline]
    pub fn new(seed: u64) -> Hasher {
        Hasher(OFFSET ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    /// Feeds one byte.
    #[inline]
    pub fn byte(&mut self, b: u8) {
        self.0 = (self.0 ^ u64::from(b)).wrapping_mul(PRIME);
    }

    /// Feeds bytes.
    #[inline]
    pub fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    /// Feeds bytes, ASCII-lowercased.
    #[inline]
    pub fn bytes_lowercase(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b.to_ascii_lowercase());
        }
    }

    /// Feeds a 32-bit integer.
    #[inline]
    pub fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }

    /// The hash.
    #[inline]
    pub fn finish(self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_equals_slice_and_case_folds() {
        let mut a = Hasher::new(7);
        a.bytes(b"location");
        let mut b = Hasher::new(7);
        b"location".iter().for_each(|&x| b.byte(x));
        let mut c = Hasher::new(7);
        c.bytes_lowercase(b"LoCaTiOn");
        assert_eq!(a.finish(), b.finish());
        assert_eq!(a.finish(), c.finish());
        let mut d = Hasher::new(8);
        d.bytes(b"location");
        assert_ne!(a.finish(), d.finish(), "the seed changes the hash");
    }
}
