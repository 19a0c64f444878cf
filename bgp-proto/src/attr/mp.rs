//! MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760 §3, §4), with IPv6 next hops for IPv4 NLRI
//! (RFC 8950).
//!
//! ```text
//! MP_REACH_NLRI                               MP_UNREACH_NLRI
//! +--------------------------------------+    +-------------------------------+
//! | AFI (2) | SAFI (1)                   |    | AFI (2) | SAFI (1)            |
//! | Length of Next Hop (1)               |    | Withdrawn Routes (variable)   |
//! | Next Hop (variable)                  |    +-------------------------------+
//! | Reserved (1)                         |
//! | NLRI (variable)                      |
//! +--------------------------------------+
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::BufMut;

use crate::iana::Family;
use crate::nlri::{Nlri, field_len};
use crate::wire::sum;

/// MP_REACH_NLRI of a family whose NLRI are prefixes (IPv4/IPv6 unicast or multicast).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpReach {
    /// The family of the NLRI.
    pub family: Family,
    /// The next hop.
    pub next_hop: NextHop,
    /// The octet after the next hop: RFC 4760 §3 "Reserved, MUST be 0, SHOULD be ignored on
    /// receipt" (RFC 2858 called it "Number of SNPAs"). Kept as received.
    pub reserved: u8,
    /// Announced prefixes.
    pub nlri: Vec<Nlri>,
}

/// MP_UNREACH_NLRI of a family whose NLRI are prefixes. With no prefixes it is the End-of-RIB
/// marker of that family (RFC 4724 §2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpUnreach {
    /// The family.
    pub family: Family,
    /// Withdrawn prefixes.
    pub withdrawn: Vec<Nlri>,
}

/// The next hop of MP_REACH_NLRI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NextHop {
    /// An IPv4 next hop (4 octets).
    Ipv4(Ipv4Addr),
    /// An IPv6 global next hop, optionally followed by a link-local one (16 or 32 octets,
    /// RFC 2545 §3; for IPv4 NLRI RFC 8950 §3).
    Ipv6 {
        /// Global address.
        global: Ipv6Addr,
        /// Link-local address, when 32 octets were sent.
        link_local: Option<Ipv6Addr>,
    },
}

impl NextHop {
    /// Octets of the next hop on the wire.
    pub fn encoded_len(&self) -> usize {
        match self {
            NextHop::Ipv4(_) => 4,
            NextHop::Ipv6 {
                link_local: None, ..
            } => 16,
            NextHop::Ipv6 {
                link_local: Some(_),
                ..
            } => 32,
        }
    }

    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        match self {
            NextHop::Ipv4(a) => buf.put_slice(&a.octets()),
            NextHop::Ipv6 { global, link_local } => {
                buf.put_slice(&global.octets());
                if let Some(ll) = link_local {
                    buf.put_slice(&ll.octets());
                }
            }
        }
    }
}

impl MpReach {
    /// Length of the attribute value.
    pub(crate) fn value_len(&self, add_path: bool) -> usize {
        sum([
            3,
            1,
            self.next_hop.encoded_len(),
            1,
            field_len(&self.nlri, add_path),
        ])
    }

    pub(crate) fn encode(&self, add_path: bool, buf: &mut impl BufMut) {
        buf.put_u16(self.family.afi.into());
        buf.put_u8(self.family.safi.into());
        buf.put_u8(u8::try_from(self.next_hop.encoded_len()).unwrap_or(u8::MAX));
        self.next_hop.encode(buf);
        buf.put_u8(self.reserved);
        for n in &self.nlri {
            n.encode(add_path, buf);
        }
    }
}

impl MpUnreach {
    /// The End-of-RIB marker of a family (RFC 4724 §2).
    pub fn end_of_rib(family: Family) -> Self {
        MpUnreach {
            family,
            withdrawn: Vec::new(),
        }
    }

    pub(crate) fn value_len(&self, add_path: bool) -> usize {
        sum([3, field_len(&self.withdrawn, add_path)])
    }

    pub(crate) fn encode(&self, add_path: bool, buf: &mut impl BufMut) {
        buf.put_u16(self.family.afi.into());
        buf.put_u8(self.family.safi.into());
        for n in &self.withdrawn {
            n.encode(add_path, buf);
        }
    }
}
