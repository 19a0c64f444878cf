//! The attribute set of a route, as the RIB sees it: the decoded path attributes plus the
//! questions the decision process and the export pipeline ask of them.
//!
//! The RIB never stores NLRI or MP_REACH/MP_UNREACH here: those are taken apart by the session
//! into (prefix, path id) keys and a next hop; what remains is the part shared by many routes,
//! which is interned ([`super::intern`]).

use std::net::{IpAddr, Ipv4Addr};

pub use wire::{AsPath, AsSegment, AsSegmentKind, LargeCommunity, Origin, RawAttribute};

/// Wire types of the path attributes the RIB works with.
///
/// Provisional: these mirror what the `bgp-proto` codec decodes and are replaced by its types when
/// its `types` step lands (the RIB only touches them through [`RouteAttrs`]' methods).
pub mod wire {
    /// ORIGIN (RFC 4271 §4.3, §5.1.1). Lower is preferred: IGP < EGP < INCOMPLETE.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Origin {
        /// 0: learned from an interior protocol.
        Igp,
        /// 1: learned via EGP.
        Egp,
        /// 2: learned some other way.
        Incomplete,
    }

    /// AS_PATH segment type (RFC 4271 §4.3, RFC 5065 §3).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum AsSegmentKind {
        /// AS_SET (1).
        Set,
        /// AS_SEQUENCE (2).
        Sequence,
        /// AS_CONFED_SEQUENCE (3).
        ConfedSequence,
        /// AS_CONFED_SET (4).
        ConfedSet,
    }

    /// One AS_PATH segment (4-octet ASNs).
    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    pub struct AsSegment {
        /// Segment type.
        pub kind: AsSegmentKind,
        /// The ASNs in the segment.
        pub asns: Vec<u32>,
    }

    /// AS_PATH: a list of segments.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct AsPath {
        /// Segments, first = most recently traversed.
        pub segments: Vec<AsSegment>,
    }

    /// A large community (RFC 8092).
    pub type LargeCommunity = [u32; 3];

    /// An attribute carried through unchanged (unknown optional transitive, etc.).
    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    pub struct RawAttribute {
        /// Attribute flags.
        pub flags: u8,
        /// Attribute type code.
        pub type_code: u8,
        /// Attribute value bytes.
        pub value: Vec<u8>,
    }
}

/// LOCAL_PREF assumed when a route has none (RFC 4271 §9.1.1 leaves it to the implementation;
/// 100 is what BIRD, GoBGP and FRR use).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// The attribute set of a route (everything but its prefix and path id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteAttrs {
    /// ORIGIN.
    pub origin: Origin,
    /// AS_PATH (4-octet form; AS4_PATH already merged by the codec).
    pub as_path: AsPath,
    /// NEXT_HOP, or the next hop of MP_REACH_NLRI (RFC 4760 §3).
    pub next_hop: Option<IpAddr>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF.
    pub local_pref: Option<u32>,
    /// ATOMIC_AGGREGATE present.
    pub atomic_aggregate: bool,
    /// AGGREGATOR (ASN, address).
    pub aggregator: Option<(u32, Ipv4Addr)>,
    /// COMMUNITIES (RFC 1997), in received order.
    pub communities: Vec<u32>,
    /// LARGE_COMMUNITY (RFC 8092).
    pub large_communities: Vec<LargeCommunity>,
    /// EXTENDED COMMUNITIES (RFC 4360), raw 8-byte values.
    pub extended_communities: Vec<[u8; 8]>,
    /// ORIGINATOR_ID (RFC 4456 §8).
    pub originator_id: Option<Ipv4Addr>,
    /// CLUSTER_LIST (RFC 4456 §8), first = most recent reflector.
    pub cluster_list: Vec<Ipv4Addr>,
    /// Other attributes passed on unchanged (unknown optional transitive ones with Partial set).
    pub other: Vec<RawAttribute>,
}

impl RouteAttrs {
    /// An attribute set with only ORIGIN and the next hop.
    pub fn new(origin: Origin, next_hop: Option<IpAddr>) -> Self {
        Self {
            origin,
            as_path: AsPath::default(),
            next_hop,
            med: None,
            local_pref: None,
            atomic_aggregate: false,
            aggregator: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
            extended_communities: Vec::new(),
            originator_id: None,
            cluster_list: Vec::new(),
            other: Vec::new(),
        }
    }

    /// Builder: AS_PATH as one AS_SEQUENCE.
    pub fn with_as_sequence(mut self, asns: impl IntoIterator<Item = u32>) -> Self {
        let asns: Vec<u32> = asns.into_iter().collect();
        self.as_path = if asns.is_empty() {
            AsPath::default()
        } else {
            AsPath {
                segments: vec![AsSegment {
                    kind: AsSegmentKind::Sequence,
                    asns,
                }],
            }
        };
        self
    }

    /// Builder: LOCAL_PREF.
    pub fn with_local_pref(mut self, local_pref: u32) -> Self {
        self.local_pref = Some(local_pref);
        self
    }

    /// Builder: MED.
    pub fn with_med(mut self, med: u32) -> Self {
        self.med = Some(med);
        self
    }

    /// LOCAL_PREF, or [`DEFAULT_LOCAL_PREF`] when absent.
    pub fn effective_local_pref(&self) -> u32 {
        self.local_pref.unwrap_or(DEFAULT_LOCAL_PREF)
    }

    /// AS_PATH length for the decision process: RFC 4271 §9.1.2.2 a) counts an AS_SET as 1;
    /// RFC 5065 §5.3 does not count confederation segments.
    pub fn as_path_len(&self) -> u32 {
        self.as_path
            .segments
            .iter()
            .map(|s| match s.kind {
                AsSegmentKind::Sequence => s.asns.len() as u32,
                AsSegmentKind::Set => 1,
                AsSegmentKind::ConfedSequence | AsSegmentKind::ConfedSet => 0,
            })
            .sum()
    }

    /// The neighbouring AS for MED comparison: the first AS of the first AS_SEQUENCE
    /// (RFC 4271 §9.1.2.2 c)); `None` for a locally originated or iBGP-internal route.
    pub fn neighbor_as(&self) -> Option<u32> {
        self.as_path
            .segments
            .iter()
            .find(|s| matches!(s.kind, AsSegmentKind::Sequence | AsSegmentKind::Set))
            .and_then(|s| match s.kind {
                AsSegmentKind::Sequence => s.asns.first().copied(),
                _ => None,
            })
    }

    /// How many times `asn` occurs in AS_PATH (for loop detection, RFC 4271 §9.1.2).
    pub fn as_path_count(&self, asn: u32) -> usize {
        self.as_path
            .segments
            .iter()
            .flat_map(|s| s.asns.iter())
            .filter(|&&a| a == asn)
            .count()
    }

    /// Whether AS_PATH starts with `prefix` (BGPFilter `asPathPrefix`).
    pub fn as_path_starts_with(&self, prefix: &[u32]) -> bool {
        let mut flat = self
            .as_path
            .segments
            .iter()
            .filter(|s| s.kind == AsSegmentKind::Sequence)
            .flat_map(|s| s.asns.iter().copied());
        prefix.iter().all(|want| flat.next() == Some(*want))
    }

    /// Prepends `asn` `times` times to the leading AS_SEQUENCE (RFC 4271 §5.1.2 b)).
    pub fn prepend_as(&mut self, asn: u32, times: usize) {
        if times == 0 {
            return;
        }
        match self.as_path.segments.first_mut() {
            // RFC 4271 §5.1.2: a sequence of fewer than 255 ASNs gets the prepends in place.
            Some(first)
                if first.kind == AsSegmentKind::Sequence && first.asns.len() + times <= 255 =>
            {
                first.asns.splice(0..0, std::iter::repeat_n(asn, times));
            }
            _ => self.as_path.segments.insert(
                0,
                AsSegment {
                    kind: AsSegmentKind::Sequence,
                    asns: vec![asn; times],
                },
            ),
        }
    }

    /// Adds a standard community unless already present.
    pub fn add_community(&mut self, community: u32) {
        if !self.communities.contains(&community) {
            self.communities.push(community);
        }
    }

    /// Adds a large community unless already present.
    pub fn add_large_community(&mut self, community: LargeCommunity) {
        if !self.large_communities.contains(&community) {
            self.large_communities.push(community);
        }
    }

    /// Removes the attributes that must not leave the AS: LOCAL_PREF (RFC 4271 §5.1.5),
    /// ORIGINATOR_ID and CLUSTER_LIST (RFC 4456 §8: non-transitive, never sent to eBGP).
    pub fn strip_for_ebgp(&mut self) {
        // RFC 4271 §5.1.5: LOCAL_PREF MUST NOT be included in UPDATEs to external peers.
        self.local_pref = None;
        // RFC 4456 §8: ORIGINATOR_ID and CLUSTER_LIST are optional non-transitive.
        self.originator_id = None;
        self.cluster_list.clear();
    }
}

/// A standard community from `asn:value`.
pub const fn community(asn: u16, value: u16) -> u32 {
    ((asn as u32) << 16) | value as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(kind: AsSegmentKind, asns: &[u32]) -> AsSegment {
        AsSegment {
            kind,
            asns: asns.to_vec(),
        }
    }

    #[test]
    fn as_path_length_counts_sets_as_one_and_confed_as_zero() {
        let mut a = RouteAttrs::new(Origin::Igp, None);
        a.as_path.segments = vec![
            seg(AsSegmentKind::ConfedSequence, &[65001, 65002]),
            seg(AsSegmentKind::Sequence, &[1, 2, 3]),
            seg(AsSegmentKind::Set, &[4, 5, 6]),
        ];
        assert_eq!(a.as_path_len(), 4);
        assert_eq!(a.neighbor_as(), Some(1));
        assert_eq!(a.as_path_count(2), 1);
    }

    #[test]
    fn prepend_goes_into_the_leading_sequence() {
        let mut a = RouteAttrs::new(Origin::Igp, None).with_as_sequence([2, 3]);
        a.prepend_as(1, 2);
        assert_eq!(a.as_path.segments.len(), 1);
        assert_eq!(a.as_path.segments[0].asns, vec![1, 1, 2, 3]);
        let mut empty = RouteAttrs::new(Origin::Igp, None);
        empty.prepend_as(7, 1);
        assert_eq!(empty.as_path.segments[0].asns, vec![7]);
        assert!(a.as_path_starts_with(&[1, 1, 2]));
        assert!(!a.as_path_starts_with(&[2]));
    }

    #[test]
    fn strip_for_ebgp_removes_ibgp_only_attributes() {
        let mut a = RouteAttrs::new(Origin::Igp, None).with_local_pref(200);
        a.originator_id = Some(Ipv4Addr::new(1, 1, 1, 1));
        a.cluster_list = vec![Ipv4Addr::new(2, 2, 2, 2)];
        a.strip_for_ebgp();
        assert_eq!(a.local_pref, None);
        assert_eq!(a.originator_id, None);
        assert!(a.cluster_list.is_empty());
    }
}
