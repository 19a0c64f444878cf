//! Negotiated session facts that change how messages are decoded and encoded.
//!
//! A [`Context`] describes one direction of a session: the messages a speaker receives are decoded
//! with its receive context, the messages it sends are encoded with its send context. Both differ
//! only in ADD-PATH (RFC 7911 is negotiated per family and per direction). [`Negotiated`] computes
//! both from the two OPEN messages; deciding whether the session may come up at all (peer AS,
//! required families, roles) is the session layer's business.

use crate::capability::Capability;
use crate::iana::{Afi, Family, Safi};
use crate::message::Open;

/// Maximum BGP message size without the extended message capability (RFC 4271 §4.1).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Maximum BGP message size once extended messages are negotiated (RFC 8654 §4).
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;

/// The set of address families whose NLRI carry ADD-PATH path identifiers (RFC 7911 §3) in one
/// direction. Only families whose NLRI this crate decodes (IPv4/IPv6 unicast and multicast) can be
/// members; others are ignored by [`insert`](Self::insert).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AddPathFamilies(u8);

impl AddPathFamilies {
    /// No family carries path identifiers.
    pub const NONE: AddPathFamilies = AddPathFamilies(0);

    fn bit(family: Family) -> Option<u8> {
        match (family.afi, family.safi) {
            (Afi::Ipv4, Safi::Unicast) => Some(1),
            (Afi::Ipv6, Safi::Unicast) => Some(2),
            (Afi::Ipv4, Safi::Multicast) => Some(4),
            (Afi::Ipv6, Safi::Multicast) => Some(8),
            _ => None,
        }
    }

    /// A set holding the given families.
    pub fn of(families: &[Family]) -> Self {
        let mut set = Self::NONE;
        for family in families {
            set.insert(*family);
        }
        set
    }

    /// Adds a family; returns false if the family cannot carry path identifiers in this crate.
    pub fn insert(&mut self, family: Family) -> bool {
        match Self::bit(family) {
            Some(bit) => {
                self.0 |= bit;
                true
            }
            None => false,
        }
    }

    /// Whether NLRI of `family` carry path identifiers.
    pub fn contains(self, family: Family) -> bool {
        Self::bit(family).is_some_and(|bit| self.0 & bit != 0)
    }

    /// Whether no family carries path identifiers.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The member families, in a fixed order.
    pub fn iter(self) -> impl Iterator<Item = Family> {
        [
            Family::IPV4_UNICAST,
            Family::IPV6_UNICAST,
            Family::IPV4_MULTICAST,
            Family::IPV6_MULTICAST,
        ]
        .into_iter()
        .filter(move |f| self.contains(*f))
    }
}

/// The negotiated facts one direction of a session decodes or encodes with.
///
/// `Context::default()` is a modern internal peer before ADD-PATH: 4-octet AS numbers, no
/// ADD-PATH, no extended messages, every attribute kept (set `internal: false` for an external
/// peer; [`Negotiated::from_opens`] does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Context {
    /// Both sides announced the 4-octet AS capability (RFC 6793 §3): AS_PATH and AGGREGATOR carry
    /// 4-octet AS numbers. When false they carry 2-octet ones and AS4_PATH/AS4_AGGREGATOR apply.
    pub four_octet_as: bool,
    /// Both sides announced the extended message capability (RFC 8654): UPDATE, NOTIFICATION and
    /// ROUTE-REFRESH may be up to 65535 octets.
    pub extended_message: bool,
    /// Families whose NLRI in this direction carry path identifiers (RFC 7911).
    pub add_path: AddPathFamilies,
    /// Internal BGP: both speakers are in the same AS (RFC 4271 §3). Some RFC 7606 rules differ
    /// for internal and external peers: from an external one ORIGINATOR_ID and CLUSTER_LIST are
    /// discarded (§7.9-7.10) and a malformed LOCAL_PREF is discarded (§7.5).
    pub internal: bool,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            four_octet_as: true,
            extended_message: false,
            add_path: AddPathFamilies::NONE,
            internal: true,
        }
    }
}

impl Context {
    /// The context of a peer that does not speak 4-octet AS numbers (an "OLD" speaker, RFC 6793).
    pub fn two_octet_as() -> Self {
        Context {
            four_octet_as: false,
            ..Context::default()
        }
    }

    /// Whether NLRI of `family` carry path identifiers in this direction.
    pub fn add_path(&self, family: Family) -> bool {
        self.add_path.contains(family)
    }

    /// The largest message of `message_type` allowed in this direction. OPEN and KEEPALIVE stay
    /// limited to 4096 octets even with extended messages (RFC 8654 §4).
    pub fn max_message_len(&self, message_type: crate::iana::MessageType) -> usize {
        use crate::iana::MessageType;
        match message_type {
            MessageType::Open | MessageType::Keepalive => MAX_MESSAGE_LEN,
            _ if self.extended_message => MAX_EXTENDED_MESSAGE_LEN,
            _ => MAX_MESSAGE_LEN,
        }
    }

    /// The largest message of any type allowed in this direction.
    pub fn max_len(&self) -> usize {
        if self.extended_message {
            MAX_EXTENDED_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        }
    }
}

/// Both directions of a session as negotiated from the two OPEN messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Negotiated {
    /// Decode what the peer sends with this.
    pub receive: Context,
    /// Encode what we send with this.
    pub send: Context,
    /// Both sides announced extended next hop encoding for IPv4 unicast NLRI with IPv6 next hops
    /// (RFC 8950 §4). Decoding accepts IPv6 next hops for IPv4 NLRI regardless; this tells the
    /// sender whether it may use them.
    pub extended_next_hop_ipv4: bool,
}

impl Negotiated {
    /// Computes the contexts from our OPEN (`local`) and the peer's (`remote`).
    ///
    /// - Internal: both OPENs carry the same AS ([`Open::asn`]).
    /// - 4-octet AS: both announced capability 65 (RFC 6793 §3).
    /// - Extended message: both announced capability 6 (RFC 8654 §3).
    /// - ADD-PATH (RFC 7911 §4): we receive path identifiers for a family when we announced
    ///   receive (or both) and the peer announced send (or both) for it; we send them when we
    ///   announced send and the peer announced receive.
    pub fn from_opens(local: &Open, remote: &Open) -> Self {
        let four_octet_as = local.four_octet_as().is_some() && remote.four_octet_as().is_some();
        let internal = local.asn() == remote.asn();
        let extended_message = has(local, |c| matches!(c, Capability::ExtendedMessage))
            && has(remote, |c| matches!(c, Capability::ExtendedMessage));
        let mut receive = AddPathFamilies::NONE;
        let mut send = AddPathFamilies::NONE;
        for ours in local.add_path_families() {
            for theirs in remote.add_path_families() {
                if ours.family != theirs.family {
                    continue;
                }
                if ours.mode.receives() && theirs.mode.sends() {
                    receive.insert(ours.family);
                }
                if ours.mode.sends() && theirs.mode.receives() {
                    send.insert(ours.family);
                }
            }
        }
        let ipv4_v6nh = |open: &Open| {
            open.capabilities().any(|c| match c {
                Capability::ExtendedNextHop(entries) => entries.iter().any(|e| {
                    e.nlri_afi == Afi::Ipv4 && e.nlri_safi == 1 && e.next_hop_afi == Afi::Ipv6
                }),
                _ => false,
            })
        };
        Negotiated {
            receive: Context {
                four_octet_as,
                extended_message,
                add_path: receive,
                internal,
            },
            send: Context {
                four_octet_as,
                extended_message,
                add_path: send,
                internal,
            },
            extended_next_hop_ipv4: ipv4_v6nh(local) && ipv4_v6nh(remote),
        }
    }
}

fn has(open: &Open, predicate: impl Fn(&Capability) -> bool) -> bool {
    open.capabilities().any(predicate)
}
