//! The host and port of an HTTP `:authority`, for matching service hosts.
//!
//! `location:8083` and `location` name the same service: the port is split
//! off, and hosts compare ASCII case-insensitively. A single trailing dot
//! (the DNS absolute form, `location.`) is dropped. Bracketed IPv6 literals
//! keep their brackets (`[::1]:80` → `[::1]`).
//!
//! Never allocates; never panics.

/// Splits an authority into its host and, when present, its port digits.
///
/// ```
/// use laneway_core::authority::split;
/// assert_eq!(split(b"location:8083"), (&b"location"[..], Some(&b"8083"[..])));
/// assert_eq!(split(b"Location."), (&b"Location"[..], None));
/// assert_eq!(split(b"[::1]:80"), (&b"[::1]"[..], Some(&b"80"[..])));
/// ```
pub fn split(authority: &[u8]) -> (&[u8], Option<&[u8]>) {
    let (host, port) = match authority.iter().rposition(|&b| b == b':') {
        Some(i)
            if authority[i + 1..].iter().all(u8::is_ascii_digit)
                && match authority.first() {
                    Some(b'[') => authority[..i].ends_with(b"]"),
                    _ => !authority[..i].contains(&b':'),
                } =>
        {
            let port = &authority[i + 1..];
            (&authority[..i], (!port.is_empty()).then_some(port))
        }
        _ => (authority, None),
    };
    let host = match host.split_last() {
        Some((b'.', rest)) if !rest.is_empty() => rest,
        _ => host,
    };
    (host, port)
}

/// The host part of `authority`; see [`split`].
pub fn host(authority: &[u8]) -> &[u8] {
    split(authority).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_host_and_port() {
        assert_eq!(split(b"location"), (&b"location"[..], None));
        assert_eq!(split(b"location:"), (&b"location"[..], None));
        assert_eq!(
            split(b"a.b.svc.cluster.local:80"),
            (&b"a.b.svc.cluster.local"[..], Some(&b"80"[..]))
        );
        assert_eq!(split(b"[::1]"), (&b"[::1]"[..], None));
        assert_eq!(
            split(b"::1"),
            (&b"::1"[..], None),
            "unbracketed IPv6 is not split"
        );
        assert_eq!(split(b"host:port"), (&b"host:port"[..], None));
        assert_eq!(split(b""), (&b""[..], None));
        assert_eq!(split(b"."), (&b"."[..], None));
    }

    proptest! {
        #[test]
        fn never_panics_and_returns_subslices(a in proptest::collection::vec(any::<u8>(), 0..40)) {
            let (h, p) = split(&a);
            prop_assert!(h.len() <= a.len());
            prop_assert!(a.starts_with(h));
            if let Some(p) = p {
                prop_assert!(a.ends_with(p));
                prop_assert!(p.iter().all(u8::is_ascii_digit));
            }
        }
    }
}
