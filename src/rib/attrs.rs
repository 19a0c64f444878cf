//! The attribute set of a route, as the RIB sees it: the decoded path attributes plus the
//! questions the decision process and the export pipeline ask of them.
//!
//! The RIB never stores NLRI or MP_REACH/MP_UNREACH here: those are taken apart by the session
//! into (prefix, path id) keys and a next hop; what remains is the part shared by many routes,
//! which is interned ([`super::intern`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use bgp_proto::Origin;
pub use bgp_proto::attr::{
    Aggregator, AsPath, AsSegment, Community, ExtendedCommunity, LargeCommunity, SegmentType,
};
use bgp_proto::attr::{AttributeValue, NextHop, PathAttribute, reconstruct_as4};

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
    /// NEXT_HOP, or the (global) next hop of MP_REACH_NLRI (RFC 4760 §3).
    pub next_hop: Option<IpAddr>,
    /// The link-local IPv6 next hop sent after the global one (RFC 2545 §3).
    pub next_hop_link_local: Option<Ipv6Addr>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF.
    pub local_pref: Option<u32>,
    /// ATOMIC_AGGREGATE present.
    pub atomic_aggregate: bool,
    /// AGGREGATOR (AS4_AGGREGATOR already merged).
    pub aggregator: Option<Aggregator>,
    /// COMMUNITIES (RFC 1997), in received order.
    pub communities: Vec<Community>,
    /// LARGE_COMMUNITY (RFC 8092).
    pub large_communities: Vec<LargeCommunity>,
    /// EXTENDED COMMUNITIES (RFC 4360).
    pub extended_communities: Vec<ExtendedCommunity>,
    /// ORIGINATOR_ID (RFC 4456 §8).
    pub originator_id: Option<Ipv4Addr>,
    /// CLUSTER_LIST (RFC 4456 §8), first = most recent reflector.
    pub cluster_list: Vec<Ipv4Addr>,
    /// Other attributes, as received (unknown ones keep their bytes and flags; on export
    /// [`PathAttribute::for_propagation`] sets Partial or drops them).
    pub other: Vec<PathAttribute>,
}

impl RouteAttrs {
    /// An attribute set with only ORIGIN and the next hop.
    pub fn new(origin: Origin, next_hop: Option<IpAddr>) -> Self {
        Self {
            origin,
            as_path: AsPath::default(),
            next_hop,
            next_hop_link_local: None,
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
                    kind: SegmentType::Sequence,
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
        u32::try_from(self.as_path.path_len()).unwrap_or(u32::MAX)
    }

    /// The neighbouring AS for MED comparison: the first AS of the first AS_SEQUENCE
    /// (RFC 4271 §9.1.2.2 c)); `None` for a locally originated or iBGP-internal route.
    pub fn neighbor_as(&self) -> Option<u32> {
        self.as_path
            .segments
            .iter()
            .find(|s| matches!(s.kind, SegmentType::Sequence | SegmentType::Set))
            .and_then(|s| match s.kind {
                SegmentType::Sequence => s.asns.first().copied(),
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
            .filter(|s| s.kind == SegmentType::Sequence)
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
                if first.kind == SegmentType::Sequence && first.asns.len() + times <= 255 =>
            {
                first.asns.splice(0..0, std::iter::repeat_n(asn, times));
            }
            _ => self.as_path.segments.insert(
                0,
                AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![asn; times],
                },
            ),
        }
    }

    /// Adds a standard community unless already present.
    pub fn add_community(&mut self, community: Community) {
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
pub const fn community(asn: u16, value: u16) -> Community {
    Community::new(asn, value)
}

impl RouteAttrs {
    /// The attribute set of a received UPDATE's path attributes: AS4_PATH/AS4_AGGREGATOR merged
    /// (RFC 6793 §4.2.3), the next hop from NEXT_HOP or MP_REACH_NLRI, MP_REACH/MP_UNREACH
    /// themselves left out (their NLRI are the session's business), everything else kept.
    /// Without ORIGIN (a treat-as-withdraw case the codec reports) INCOMPLETE is assumed.
    pub fn from_wire(attributes: &[PathAttribute]) -> Self {
        let (as_path, aggregator) = reconstruct_as4(attributes);
        let mut out = RouteAttrs::new(Origin::Incomplete, None);
        out.as_path = as_path.unwrap_or_default();
        out.aggregator = aggregator;
        for a in attributes {
            match &a.value {
                AttributeValue::Origin(o) => out.origin = *o,
                AttributeValue::NextHop(n) => {
                    if out.next_hop.is_none() {
                        out.next_hop = Some(IpAddr::V4(*n));
                    }
                }
                AttributeValue::MpReachNlri(mp) => match mp.next_hop {
                    NextHop::Ipv4(n) => out.next_hop = Some(IpAddr::V4(n)),
                    NextHop::Ipv6 { global, link_local } => {
                        out.next_hop = Some(IpAddr::V6(global));
                        out.next_hop_link_local = link_local;
                    }
                },
                AttributeValue::MultiExitDisc(m) => out.med = Some(*m),
                AttributeValue::LocalPref(l) => out.local_pref = Some(*l),
                AttributeValue::AtomicAggregate => out.atomic_aggregate = true,
                AttributeValue::Communities(c) => out.communities.clone_from(c),
                AttributeValue::LargeCommunities(c) => out.large_communities.clone_from(c),
                AttributeValue::ExtendedCommunities(c) => out.extended_communities.clone_from(c),
                AttributeValue::OriginatorId(o) => out.originator_id = Some(*o),
                AttributeValue::ClusterList(c) => out.cluster_list.clone_from(c),
                AttributeValue::AsPath(_)
                | AttributeValue::As4Path(_)
                | AttributeValue::Aggregator(_)
                | AttributeValue::As4Aggregator(_)
                | AttributeValue::MpUnreachNlri(_) => {}
                _ => out.other.push(a.clone()),
            }
        }
        out
    }

    /// The next hop in the codec's form (for [`bgp_proto::builder::UpdateBuilder`]).
    pub fn wire_next_hop(&self) -> Option<NextHop> {
        match self.next_hop? {
            IpAddr::V4(a) => Some(NextHop::Ipv4(a)),
            IpAddr::V6(global) => Some(NextHop::Ipv6 {
                global,
                link_local: self.next_hop_link_local,
            }),
        }
    }

    /// The path attributes to send, without the next hop (the UPDATE builder places it in
    /// NEXT_HOP or MP_REACH_NLRI). The 4-octet AS_PATH is written as is: for a 2-octet session
    /// the codec's `AsPath::split_for_two_octet` gives AS_PATH + AS4_PATH.
    pub fn to_wire(&self) -> Vec<PathAttribute> {
        let mut out = Vec::with_capacity(8 + self.other.len());
        out.push(PathAttribute::new(AttributeValue::Origin(self.origin)));
        out.push(PathAttribute::new(AttributeValue::AsPath(
            self.as_path.clone(),
        )));
        if let Some(m) = self.med {
            out.push(PathAttribute::new(AttributeValue::MultiExitDisc(m)));
        }
        if let Some(l) = self.local_pref {
            out.push(PathAttribute::new(AttributeValue::LocalPref(l)));
        }
        if self.atomic_aggregate {
            out.push(PathAttribute::new(AttributeValue::AtomicAggregate));
        }
        if let Some(a) = self.aggregator {
            out.push(PathAttribute::new(AttributeValue::Aggregator(a)));
        }
        if !self.communities.is_empty() {
            out.push(PathAttribute::new(AttributeValue::Communities(
                self.communities.clone(),
            )));
        }
        if let Some(o) = self.originator_id {
            out.push(PathAttribute::new(AttributeValue::OriginatorId(o)));
        }
        if !self.cluster_list.is_empty() {
            out.push(PathAttribute::new(AttributeValue::ClusterList(
                self.cluster_list.clone(),
            )));
        }
        if !self.extended_communities.is_empty() {
            out.push(PathAttribute::new(AttributeValue::ExtendedCommunities(
                self.extended_communities.clone(),
            )));
        }
        if !self.large_communities.is_empty() {
            out.push(PathAttribute::new(AttributeValue::LargeCommunities(
                self.large_communities.clone(),
            )));
        }
        out.extend(self.other.iter().cloned());
        out
    }

    /// The path attributes for a session whose peer is an OLD (2-octet AS) speaker when
    /// `four_octet_as` is false: RFC 6793 §4.2.2, AS_PATH with AS_TRANS for large ASNs plus
    /// AS4_PATH, and AGGREGATOR with AS_TRANS plus AS4_AGGREGATOR.
    pub fn to_wire_for(&self, four_octet_as: bool) -> Vec<PathAttribute> {
        let mut attrs = self.to_wire();
        if four_octet_as {
            return attrs;
        }
        let (two, as4) = self.as_path.split_for_two_octet();
        let trans = u32::from(bgp_proto::attr::AS_TRANS);
        let mut extra = Vec::new();
        for a in &mut attrs {
            match &mut a.value {
                AttributeValue::AsPath(p) => *p = two.clone(),
                AttributeValue::Aggregator(agg) if agg.asn > u32::from(u16::MAX) => {
                    extra.push(PathAttribute::new(AttributeValue::As4Aggregator(*agg)));
                    agg.asn = trans;
                }
                _ => {}
            }
        }
        if let Some(p) = as4 {
            extra.push(PathAttribute::new(AttributeValue::As4Path(p)));
        }
        attrs.extend(extra);
        attrs
    }

    /// Unknown attributes as they are passed on (RFC 4271 §5, §9.1.4): optional transitive ones
    /// with the Partial bit set, optional non-transitive ones dropped.
    pub fn prepare_other_for_propagation(&mut self) {
        self.other = self
            .other
            .iter()
            .filter_map(PathAttribute::for_propagation)
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(kind: SegmentType, asns: &[u32]) -> AsSegment {
        AsSegment {
            kind,
            asns: asns.to_vec(),
        }
    }

    #[test]
    fn as_path_length_counts_sets_as_one_and_confed_as_zero() {
        let mut a = RouteAttrs::new(Origin::Igp, None);
        a.as_path.segments = vec![
            seg(SegmentType::ConfedSequence, &[65001, 65002]),
            seg(SegmentType::Sequence, &[1, 2, 3]),
            seg(SegmentType::Set, &[4, 5, 6]),
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

#[cfg(test)]
mod wire_tests {
    use super::*;

    #[test]
    fn from_wire_and_to_wire_agree() {
        let mut a = RouteAttrs::new(Origin::Egp, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))))
            .with_as_sequence([65001, 4_200_000_000])
            .with_med(7)
            .with_local_pref(200);
        a.communities = vec![community(65000, 1)];
        a.large_communities = vec![LargeCommunity {
            global_admin: 1,
            local_data_1: 2,
            local_data_2: 3,
        }];
        a.originator_id = Some(Ipv4Addr::new(1, 1, 1, 1));
        a.cluster_list = vec![Ipv4Addr::new(2, 2, 2, 2)];
        a.aggregator = Some(Aggregator {
            asn: 4_200_000_000,
            address: Ipv4Addr::new(3, 3, 3, 3),
        });
        let mut wire = a.to_wire();
        wire.push(PathAttribute::new(AttributeValue::NextHop(Ipv4Addr::new(
            10, 0, 0, 1,
        ))));
        assert_eq!(RouteAttrs::from_wire(&wire), a);
        // Towards a 2-octet speaker: AS_TRANS in AS_PATH/AGGREGATOR, the truth in AS4_*; decoding
        // that merges it back (RFC 6793 §4.2.3).
        let mut old = a.to_wire_for(false);
        old.push(PathAttribute::new(AttributeValue::NextHop(Ipv4Addr::new(
            10, 0, 0, 1,
        ))));
        assert!(
            old.iter()
                .any(|x| matches!(x.value, AttributeValue::As4Path(_)))
        );
        assert!(
            old.iter()
                .any(|x| matches!(x.value, AttributeValue::As4Aggregator(_)))
        );
        assert_eq!(RouteAttrs::from_wire(&old), a);
    }
}
