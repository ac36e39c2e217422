//! Workload names, one type for everyone who writes or reads them: the
//! scenario's expectations, the replay's reports, the Envoy mesh's
//! upstreams (which answer with their name) and the demos.
//!
//! ```text
//! SERVICE@baseline        the service's shared baseline
//! SERVICE@fork(KEY)       the fork of SERVICE in the sandbox with KEY
//! SERVICE@rejected        the filter answered locally
//! SERVICE@unavailable     routed to a fork that is down or not deployed
//! SERVICE@failed          the filter failed (a trap, a runaway call)
//! ```
//!
//! [`WorkloadName`] borrows its parts; [`WorkloadName::parse`] is the
//! inverse of its `Display`, so a name written by one side is read back
//! exactly by the other. Never panics.

use std::fmt;

/// Where a call ended up, for a [`WorkloadName`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Place<'a> {
    /// The service's baseline.
    Baseline,
    /// The fork of the sandbox with this key.
    Fork(&'a str),
    /// The filter answered locally.
    Rejected,
    /// Routed to a fork that is down or not deployed.
    Unavailable,
    /// The filter failed.
    Failed,
}

/// `SERVICE@PLACE`; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadName<'a> {
    /// The service.
    pub service: &'a str,
    /// Where the call ended up.
    pub place: Place<'a>,
}

impl<'a> WorkloadName<'a> {
    /// `SERVICE@baseline`.
    pub fn baseline(service: &'a str) -> WorkloadName<'a> {
        WorkloadName {
            service,
            place: Place::Baseline,
        }
    }

    /// `SERVICE@fork(KEY)`.
    pub fn fork(service: &'a str, key: &'a str) -> WorkloadName<'a> {
        WorkloadName {
            service,
            place: Place::Fork(key),
        }
    }

    /// Reads a name written by `Display`. `None` when it is not one.
    pub fn parse(text: &'a str) -> Option<WorkloadName<'a>> {
        let (service, place) = text.split_once('@')?;
        if service.is_empty() {
            return None;
        }
        let place = match place {
            "baseline" => Place::Baseline,
            "rejected" => Place::Rejected,
            "unavailable" => Place::Unavailable,
            "failed" => Place::Failed,
            other => Place::Fork(
                other
                    .strip_prefix("fork(")?
                    .strip_suffix(')')
                    .filter(|k| !k.is_empty())?,
            ),
        };
        Some(WorkloadName { service, place })
    }
}

impl fmt::Display for WorkloadName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.place {
            Place::Baseline => write!(f, "{}@baseline", self.service),
            Place::Fork(key) => write!(f, "{}@fork({key})", self.service),
            Place::Rejected => write!(f, "{}@rejected", self.service),
            Place::Unavailable => write!(f, "{}@unavailable", self.service),
            Place::Failed => write!(f, "{}@failed", self.service),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "location@baseline",
            "location@fork(qwblp48fpmb30)",
            "a@rejected",
            "a@unavailable",
            "a@failed",
        ] {
            let parsed = WorkloadName::parse(name).unwrap();
            assert_eq!(parsed.to_string(), name);
        }
        assert_eq!(
            WorkloadName::parse("customer@fork(k)"),
            Some(WorkloadName::fork("customer", "k"))
        );
        for bad in [
            "",
            "location",
            "@baseline",
            "a@fork()",
            "a@fork(k",
            "a@base",
            "a@forked",
        ] {
            assert_eq!(WorkloadName::parse(bad), None, "{bad}");
        }
    }
}
