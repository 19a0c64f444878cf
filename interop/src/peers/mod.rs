//! Real BGP speakers (BIRD 2, GoBGP, FRR, ExaBGP) and the `tern` launcher: typed config
//! writers, launchers that run them in a namespace, and helpers that query their own CLIs.

pub mod bird;
pub mod exabgp;
pub mod frr;
pub mod gobgp;
pub mod tern;

use std::time::Duration;

/// How long a daemon gets to answer its CLI after start (generous for a loaded 2-core box).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Address families the scenarios use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 unicast (AFI 1, SAFI 1).
    Ipv4Unicast,
    /// IPv6 unicast (AFI 2, SAFI 1).
    Ipv6Unicast,
}

impl Family {
    /// The family of a prefix or address written in text (`:` means IPv6).
    pub fn of(prefix: &str) -> Family {
        if prefix.contains(':') {
            Family::Ipv6Unicast
        } else {
            Family::Ipv4Unicast
        }
    }

    /// Short name: `ipv4` or `ipv6`.
    pub fn short(self) -> &'static str {
        match self {
            Family::Ipv4Unicast => "ipv4",
            Family::Ipv6Unicast => "ipv6",
        }
    }
}

/// Strips the prefix length of `10.0.0.1/24` (addresses are often written in CIDR form).
pub fn host_part(cidr: &str) -> &str {
    cidr.split('/').next().unwrap_or(cidr)
}
