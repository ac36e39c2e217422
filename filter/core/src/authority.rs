//! The host and port of an HTTP `:authority`, for matching service hosts.
//!
//! `location:8083` and `location` name the same service: the port is split
//! off, and hosts compare ASCII case-insensitively. A single trailing dot
//! (the DNS absolute form, `location.`) is dropped. Bracketed IPv6 literals
//! keep their brackets (`[::1]:80` → `[::1]`). A port is one to
//! [`MAX_PORT_DIGITS`] digits: anything longer is not a port, so
//! `location:` followed by 400 digits is a host that names no service.
//!
//! [`MAX_FORK_AUTHORITY`] bounds every `:authority` Laneway writes: a
//! configured destination host (at most [`MAX_HOST`] bytes) with its own
//! port or the request's. The core's decision, the filter's buffer and the
//! simulator's host all use this one constant, so the core never decides a
//! fork that the filter could not write.
//!
//! Never allocates; never panics.

/// The longest host a configuration may name (RFC 1035's 253 bytes).
pub const MAX_HOST: usize = 253;
/// The most digits a port may have.
pub const MAX_PORT_DIGITS: usize = 5;
/// The longest `:authority` a fork rewrite produces: host, `:`, port.
pub const MAX_FORK_AUTHORITY: usize = MAX_HOST + 1 + MAX_PORT_DIGITS;

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
            if authority.len() - i - 1 <= MAX_PORT_DIGITS
                && authority[i + 1..].iter().all(u8::is_ascii_digit)
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
        assert_eq!(split(b"a:65535"), (&b"a"[..], Some(&b"65535"[..])));
        assert_eq!(split(b"a:123456"), (&b"a:123456"[..], None), "not a port");
    }

    #[test]
    fn a_port_of_400_digits_is_not_a_port() {
        let mut authority = b"location:".to_vec();
        authority.extend(core::iter::repeat_n(b'7', 400));
        assert_eq!(split(&authority), (&authority[..], None));
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
                prop_assert!((1..=MAX_PORT_DIGITS).contains(&p.len()));
            }
        }
    }
}
