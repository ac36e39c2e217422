//! The proxy-wasm header-map "pairs" serialization (ABI 0.2.1).
//!
//! ```text
//! u32 count | count × (u32 key_len, u32 value_len) | count × (key NUL value NUL)
//! ```
//!
//! All integers little-endian. [`pairs`] checks the whole layout up front,
//! so iteration cannot fail; [`encode`] writes into a caller's buffer. The
//! filter decodes Envoy's header maps with this; the simulator's host
//! encodes them with it.
//!
//! Never allocates; never panics on any bytes.

/// Iterator over `(name, value)` pairs. Create it with [`pairs`].
#[derive(Clone, Debug)]
pub struct Pairs<'h> {
    sizes: &'h [u8],
    data: &'h [u8],
}

/// Checks `buf` and iterates its pairs. `None` when the layout is broken:
/// truncated, lengths that overrun, or missing NUL terminators.
pub fn pairs(buf: &[u8]) -> Option<Pairs<'_>> {
    let count = read_u32(buf, 0)? as usize;
    let sizes_len = count.checked_mul(8)?;
    let sizes = buf.get(4..4usize.checked_add(sizes_len)?)?;
    let data = &buf[4 + sizes_len..];
    let mut at = 0usize;
    for i in 0..count {
        let k = read_u32(sizes, i * 8)? as usize;
        let v = read_u32(sizes, i * 8 + 4)? as usize;
        let key_end = at.checked_add(k)?;
        let value_end = key_end.checked_add(1)?.checked_add(v)?;
        if *data.get(key_end)? != 0 || *data.get(value_end)? != 0 {
            return None;
        }
        at = value_end + 1;
    }
    (at == data.len()).then_some(Pairs { sizes, data })
}

impl<'h> Iterator for Pairs<'h> {
    type Item = (&'h [u8], &'h [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let k = read_u32(self.sizes, 0)? as usize;
        let v = read_u32(self.sizes, 4)? as usize;
        self.sizes = &self.sizes[8..];
        // `pairs` checked these bounds; `get` keeps it panic-free anyway.
        let key = self.data.get(..k)?;
        let value = self.data.get(k + 1..k + 1 + v)?;
        self.data = self.data.get(k + v + 2..)?;
        Some((key, value))
    }
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// Bytes needed to encode `pairs`.
pub fn encoded_len<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> usize {
    pairs
        .into_iter()
        .fold(4, |n, (k, v)| n + 8 + k.len() + v.len() + 2)
}

/// Encodes `pairs` into `out`, returning the length written, or `None` when
/// `out` is too small or a length does not fit in a `u32`.
pub fn encode<'a, I>(pairs: I, out: &mut [u8]) -> Option<usize>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    I::IntoIter: Clone,
{
    let pairs = pairs.into_iter();
    let count = pairs.clone().count();
    let mut sizes = 4usize;
    let mut data = 4usize.checked_add(count.checked_mul(8)?)?;
    write_u32(out, 0, u32::try_from(count).ok()?)?;
    for (k, v) in pairs {
        write_u32(out, sizes, u32::try_from(k.len()).ok()?)?;
        write_u32(out, sizes + 4, u32::try_from(v.len()).ok()?)?;
        sizes += 8;
        for part in [k, b"\0", v, b"\0"] {
            out.get_mut(data..data.checked_add(part.len())?)?
                .copy_from_slice(part);
            data += part.len();
        }
    }
    Some(data)
}

fn write_u32(out: &mut [u8], at: usize, v: u32) -> Option<()> {
    out.get_mut(at..at.checked_add(4)?)?
        .copy_from_slice(&v.to_le_bytes());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn roundtrip(input: &[(Vec<u8>, Vec<u8>)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let refs: Vec<(&[u8], &[u8])> = input.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        let mut buf = vec![0u8; encoded_len(refs.iter().copied())];
        let n = encode(refs.iter().copied(), &mut buf).expect("buffer sized by encoded_len");
        assert_eq!(n, buf.len());
        pairs(&buf)
            .expect("what encode writes, pairs reads")
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect()
    }

    #[test]
    fn encodes_the_documented_layout() {
        let mut buf = [0u8; 64];
        let n = encode([(&b":authority"[..], &b"a"[..])], &mut buf).unwrap();
        let mut want = vec![1, 0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0];
        want.extend_from_slice(b":authority\0a\0");
        assert_eq!(&buf[..n], &want[..]);
    }

    #[test]
    fn refuses_broken_layouts() {
        assert!(pairs(b"").is_none());
        assert!(pairs(&[1, 0, 0, 0]).is_none());
        assert!(pairs(&[1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, b'a', 0, b'b']).is_none());
        assert!(pairs(&[1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, b'a', 1, b'b', 0]).is_none());
        assert!(pairs(&[255, 255, 255, 255]).is_none());
        assert!(pairs(&[0, 0, 0, 0, 9]).is_none(), "trailing bytes");
        assert_eq!(pairs(&[0, 0, 0, 0]).unwrap().count(), 0);
    }

    #[test]
    fn encode_refuses_a_small_buffer() {
        let mut buf = [0u8; 10];
        assert_eq!(encode([(&b"k"[..], &b"v"[..])], &mut buf), None);
    }

    proptest! {
        #[test]
        fn roundtrips(input in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..12), proptest::collection::vec(any::<u8>(), 0..12)),
            0..8,
        )) {
            prop_assert_eq!(roundtrip(&input), input);
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(buf in proptest::collection::vec(any::<u8>(), 0..96)) {
            if let Some(p) = pairs(&buf) {
                let total: usize = p.map(|(k, v)| k.len() + v.len() + 10).sum();
                prop_assert_eq!(total + 4, buf.len());
            }
        }
    }
}
