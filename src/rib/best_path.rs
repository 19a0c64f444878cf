//! The BGP decision process (RFC 4271 §9.1.2) and the multipath (ECMP) set.
//!
//! Selection is done by *elimination over the whole candidate set*, step by step, exactly as
//! RFC 4271 §9.1.2.2 describes, not by a pairwise comparator: the MED rule only compares routes
//! from the same neighbouring AS, so a pairwise "better than" is not transitive and a sort would
//! make the winner depend on arrival order. Elimination does not.
//!
//! Steps, in order (each is a function below, tested on its own):
//!
//! 0. [`Step::LocallyOriginated`]: a route this node originates beats any learned one (BIRD gives
//!    its static protocol preference 200 over BGP's 100; FRR gives local routes weight 32768).
//! 1. [`Step::LocalPref`]: highest LOCAL_PREF (RFC 4271 §9.1.1; absent = 100).
//! 2. [`Step::AsPathLength`]: shortest AS_PATH, an AS_SET counting 1, confederation segments 0
//!    (RFC 4271 §9.1.2.2 a), RFC 5065 §5.3).
//! 3. [`Step::Origin`]: lowest ORIGIN, IGP < EGP < INCOMPLETE (RFC 4271 §9.1.2.2 b)).
//! 4. [`Step::Med`]: remove a route when another route from the *same neighbouring AS* has a lower
//!    MED; a missing MED counts as 0 (RFC 4271 §9.1.2.2 c)).
//! 5. [`Step::EbgpOverIbgp`]: if any route was learned over eBGP, remove the iBGP ones
//!    (RFC 4271 §9.1.2.2 d)).
//! 6. [`Step::IgpCost`]: lowest IGP cost to the next hop where known; unknown counts as 0
//!    (RFC 4271 §9.1.2.2 e)).
//! 7. [`Step::RouterId`]: lowest BGP Identifier of the advertising router, using ORIGINATOR_ID
//!    instead when present (RFC 4271 §9.1.2.2 f), RFC 4456 §9).
//! 8. [`Step::ClusterListLength`]: shortest CLUSTER_LIST (RFC 4456 §9).
//! 9. [`Step::PeerAddress`]: lowest peer address (RFC 4271 §9.1.2.2 g)).
//! 10. [`Step::PathId`]: lowest received ADD-PATH path id (two paths from one peer; RFC 7911 leaves
//!     this open, any deterministic choice is correct).
//!
//! **Multipath** (what BIRD's `merge paths` does): the routes still standing after step 6 are
//! equally good for forwarding: same LOCAL_PREF, AS_PATH length and ORIGIN, not beaten on MED by
//! a route from their neighbouring AS, the same eBGP/iBGP type, and the same IGP cost. Of those,
//! the best and then the others in tie-break order, one per distinct next hop, at most
//! [`MAX_MULTIPATH`], form the ECMP set.

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr};

use super::attrs::RouteAttrs;
use super::peer::PeerType;

/// The most next hops a kernel multipath route gets (Calico/BIRD: 16).
pub const MAX_MULTIPATH: usize = 16;

/// Where a candidate came from, as far as the decision process cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateSource {
    /// Originated by this node (blocks, service ranges, kernel-learned routes).
    Local {
        /// Lower wins among local routes (the kernel route metric).
        metric: u32,
    },
    /// Learned from a BGP peer.
    Peer {
        /// iBGP or eBGP.
        peer_type: PeerType,
        /// The peer's BGP Identifier.
        router_id: Ipv4Addr,
        /// The peer's address.
        address: IpAddr,
        /// IGP cost to the next hop, if known.
        igp_cost: Option<u32>,
        /// The ADD-PATH path id it was received with (0 without ADD-PATH).
        path_id: u32,
    },
}

/// One route competing for a prefix.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Its post-import-policy attributes.
    pub attrs: &'a RouteAttrs,
    /// Its source.
    pub source: CandidateSource,
}

/// A step of the decision process (see the module docs for the rule and citation of each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// 0. local origination.
    LocallyOriginated,
    /// 1. LOCAL_PREF.
    LocalPref,
    /// 2. AS_PATH length.
    AsPathLength,
    /// 3. ORIGIN.
    Origin,
    /// 4. MED within a neighbouring AS.
    Med,
    /// 5. eBGP over iBGP.
    EbgpOverIbgp,
    /// 6. IGP cost.
    IgpCost,
    /// 7. ORIGINATOR_ID / router id.
    RouterId,
    /// 8. CLUSTER_LIST length.
    ClusterListLength,
    /// 9. peer address.
    PeerAddress,
    /// 10. received path id.
    PathId,
}

/// The outcome of the decision process over a candidate set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Index of the best route.
    pub best: usize,
    /// Indices of the multipath set, best first (always contains `best`).
    pub multipath: Vec<usize>,
}

/// Runs the decision process; `None` when there are no candidates.
pub fn select(candidates: &[Candidate<'_>]) -> Option<Selection> {
    if candidates.is_empty() {
        return None;
    }
    let mut alive: Vec<usize> = (0..candidates.len()).collect();
    for step in [
        Step::LocallyOriginated,
        Step::LocalPref,
        Step::AsPathLength,
        Step::Origin,
        Step::Med,
        Step::EbgpOverIbgp,
        Step::IgpCost,
    ] {
        eliminate(step, candidates, &mut alive);
    }
    // The survivors are multipath-equal; order them by the remaining tie-breaks.
    alive.sort_by(|&a, &b| tie_break(&candidates[a], &candidates[b]));
    let best = alive[0];
    let mut multipath = Vec::with_capacity(alive.len().min(MAX_MULTIPATH));
    let mut next_hops: Vec<Option<IpAddr>> = Vec::new();
    for i in alive {
        if multipath.len() == MAX_MULTIPATH {
            break;
        }
        let hop = candidates[i].attrs.next_hop;
        if !next_hops.contains(&hop) {
            next_hops.push(hop);
            multipath.push(i);
        }
    }
    Some(Selection { best, multipath })
}

/// Applies one elimination step to the surviving indices.
pub fn eliminate(step: Step, candidates: &[Candidate<'_>], alive: &mut Vec<usize>) {
    match step {
        Step::LocallyOriginated => {
            // Local routes, if any, beat every learned one; among them, the lowest metric.
            let best_local = alive
                .iter()
                .filter_map(|&i| match candidates[i].source {
                    CandidateSource::Local { metric } => Some(metric),
                    CandidateSource::Peer { .. } => None,
                })
                .min();
            if let Some(best) = best_local {
                alive.retain(|&i| candidates[i].source == CandidateSource::Local { metric: best });
            }
        }
        Step::LocalPref => keep_min_by_key(candidates, alive, |c| {
            // RFC 4271 §9.1.1: the degree of preference; highest wins.
            u64::from(u32::MAX - c.attrs.effective_local_pref())
        }),
        Step::AsPathLength => {
            // RFC 4271 §9.1.2.2 a): remove routes that do not have the shortest AS_PATH.
            keep_min_by_key(candidates, alive, |c| u64::from(c.attrs.as_path_len()))
        }
        Step::Origin => {
            // RFC 4271 §9.1.2.2 b): remove routes that do not have the lowest ORIGIN.
            keep_min_by_key(candidates, alive, |c| c.attrs.origin as u64)
        }
        Step::Med => {
            // RFC 4271 §9.1.2.2 c): a route is removed if another route from the same
            // neighbouring AS has a lower MED; a missing MED is the lowest value (0).
            let snapshot: Vec<usize> = alive.clone();
            alive.retain(|&r| {
                let r_as = candidates[r].attrs.neighbor_as();
                let r_med = candidates[r].attrs.med.unwrap_or(0);
                !snapshot.iter().any(|&s| {
                    candidates[s].attrs.neighbor_as() == r_as
                        && candidates[s].attrs.med.unwrap_or(0) < r_med
                })
            });
        }
        Step::EbgpOverIbgp => {
            // RFC 4271 §9.1.2.2 d): prefer routes learned via eBGP.
            let any_ebgp = alive.iter().any(|&i| {
                matches!(
                    candidates[i].source,
                    CandidateSource::Peer {
                        peer_type: PeerType::Ebgp,
                        ..
                    }
                )
            });
            if any_ebgp {
                alive.retain(|&i| {
                    !matches!(
                        candidates[i].source,
                        CandidateSource::Peer {
                            peer_type: PeerType::Ibgp,
                            ..
                        }
                    )
                });
            }
        }
        Step::IgpCost => {
            // RFC 4271 §9.1.2.2 e): lowest interior cost to the NEXT_HOP.
            keep_min_by_key(candidates, alive, |c| match c.source {
                CandidateSource::Peer { igp_cost, .. } => u64::from(igp_cost.unwrap_or(0)),
                CandidateSource::Local { .. } => 0,
            })
        }
        Step::RouterId | Step::ClusterListLength | Step::PeerAddress | Step::PathId => {
            // The tie-breaks are total orders: eliminate all but the minimum under this step.
            let Some(&min) = alive
                .iter()
                .min_by(|&&a, &&b| tie_break_step(step, &candidates[a], &candidates[b]))
            else {
                return;
            };
            let min_c = candidates[min];
            alive.retain(|&i| tie_break_step(step, &candidates[i], &min_c) == Ordering::Equal);
        }
    }
}

fn keep_min_by_key(
    candidates: &[Candidate<'_>],
    alive: &mut Vec<usize>,
    key: impl Fn(&Candidate<'_>) -> u64,
) {
    if let Some(min) = alive.iter().map(|&i| key(&candidates[i])).min() {
        alive.retain(|&i| key(&candidates[i]) == min);
    }
}

/// Steps 7-10 in order: a total order among multipath-equal routes.
fn tie_break(a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
    [
        Step::RouterId,
        Step::ClusterListLength,
        Step::PeerAddress,
        Step::PathId,
    ]
    .into_iter()
    .map(|s| tie_break_step(s, a, b))
    .find(|o| o.is_ne())
    .unwrap_or(Ordering::Equal)
}

fn tie_break_step(step: Step, a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
    fn ident(c: &Candidate<'_>) -> u32 {
        // RFC 4456 §9: "a route that carries the ORIGINATOR_ID attribute, the ORIGINATOR_ID
        // SHOULD be treated as the BGP Identifier of the BGP speaker that has advertised it".
        match (c.attrs.originator_id, c.source) {
            (Some(id), _) => u32::from(id),
            (None, CandidateSource::Peer { router_id, .. }) => u32::from(router_id),
            (None, CandidateSource::Local { .. }) => 0,
        }
    }
    fn address(c: &Candidate<'_>) -> Option<IpAddr> {
        match c.source {
            CandidateSource::Peer { address, .. } => Some(address),
            CandidateSource::Local { .. } => None,
        }
    }
    fn path_id(c: &Candidate<'_>) -> u32 {
        match c.source {
            CandidateSource::Peer { path_id, .. } => path_id,
            CandidateSource::Local { .. } => 0,
        }
    }
    match step {
        // RFC 4271 §9.1.2.2 f): lowest BGP Identifier.
        Step::RouterId => ident(a).cmp(&ident(b)),
        // RFC 4456 §9: shorter CLUSTER_LIST preferred.
        Step::ClusterListLength => a.attrs.cluster_list.len().cmp(&b.attrs.cluster_list.len()),
        // RFC 4271 §9.1.2.2 g): lowest peer address.
        Step::PeerAddress => address(a).cmp(&address(b)),
        Step::PathId => path_id(a).cmp(&path_id(b)),
        _ => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rib::attrs::{AsSegment, Origin, SegmentType};
    use proptest::prelude::*;

    fn peer(n: u8, peer_type: PeerType) -> CandidateSource {
        CandidateSource::Peer {
            peer_type,
            router_id: Ipv4Addr::new(10, 0, 0, n),
            address: IpAddr::V4(Ipv4Addr::new(192, 168, 0, n)),
            igp_cost: None,
            path_id: 0,
        }
    }

    fn attrs(hop: u8) -> RouteAttrs {
        RouteAttrs::new(
            Origin::Igp,
            Some(IpAddr::V4(Ipv4Addr::new(172, 16, 0, hop))),
        )
    }

    fn best(cands: &[Candidate<'_>]) -> usize {
        select(cands).unwrap().best
    }

    #[test]
    fn step0_local_route_beats_learned() {
        let a = attrs(1).with_local_pref(1000);
        let b = attrs(2);
        let c = [
            Candidate {
                attrs: &a,
                source: peer(1, PeerType::Ebgp),
            },
            Candidate {
                attrs: &b,
                source: CandidateSource::Local { metric: 1024 },
            },
        ];
        assert_eq!(best(&c), 1);
    }

    #[test]
    fn step1_highest_local_pref_wins() {
        let a = attrs(1).with_local_pref(100);
        let b = attrs(2).with_local_pref(200);
        let c = [
            Candidate {
                attrs: &a,
                source: peer(1, PeerType::Ibgp),
            },
            Candidate {
                attrs: &b,
                source: peer(2, PeerType::Ibgp),
            },
        ];
        assert_eq!(best(&c), 1);
        // Absent LOCAL_PREF counts as 100, so 101 beats it.
        let d = attrs(3);
        let e = attrs(4).with_local_pref(101);
        let c = [
            Candidate {
                attrs: &d,
                source: peer(1, PeerType::Ibgp),
            },
            Candidate {
                attrs: &e,
                source: peer(2, PeerType::Ibgp),
            },
        ];
        assert_eq!(best(&c), 1);
    }

    #[test]
    fn step2_shortest_as_path_wins_with_set_as_one() {
        let a = attrs(1).with_as_sequence([1, 2]);
        let mut b = attrs(2).with_as_sequence([3]);
        b.as_path.segments.push(AsSegment {
            kind: SegmentType::Set,
            asns: vec![7, 8, 9],
        });
        let c = attrs(3).with_as_sequence([4, 5, 6]);
        // a: 2, b: 1 + 1 = 2, c: 3 → c loses; a and b tie on length, router id picks a.
        let cands = [
            Candidate {
                attrs: &c,
                source: peer(0, PeerType::Ebgp),
            },
            Candidate {
                attrs: &a,
                source: peer(1, PeerType::Ebgp),
            },
            Candidate {
                attrs: &b,
                source: peer(2, PeerType::Ebgp),
            },
        ];
        let mut alive = vec![0, 1, 2];
        eliminate(Step::AsPathLength, &cands, &mut alive);
        assert_eq!(alive, vec![1, 2]);
    }

    #[test]
    fn step3_lowest_origin_wins() {
        let mut a = attrs(1);
        a.origin = Origin::Incomplete;
        let mut b = attrs(2);
        b.origin = Origin::Egp;
        let cands = [
            Candidate {
                attrs: &a,
                source: peer(1, PeerType::Ibgp),
            },
            Candidate {
                attrs: &b,
                source: peer(2, PeerType::Ibgp),
            },
        ];
        assert_eq!(best(&cands), 1);
    }

    #[test]
    fn step4_med_only_within_the_same_neighbour_as() {
        let a = attrs(1).with_as_sequence([65001]).with_med(50);
        let b = attrs(2).with_as_sequence([65001]).with_med(10);
        let c = attrs(3).with_as_sequence([65002]).with_med(5);
        let cands = [
            Candidate {
                attrs: &a,
                source: peer(1, PeerType::Ebgp),
            },
            Candidate {
                attrs: &b,
                source: peer(2, PeerType::Ebgp),
            },
            Candidate {
                attrs: &c,
                source: peer(3, PeerType::Ebgp),
            },
        ];
        let mut alive = vec![0, 1, 2];
        eliminate(Step::Med, &cands, &mut alive);
        // a loses to b (same AS); c is not compared with them.
        assert_eq!(alive, vec![1, 2]);
        // Missing MED counts as 0 and so beats 10 from the same AS.
        let d = attrs(4).with_as_sequence([65001]);
        let cands = [
            Candidate {
                attrs: &b,
                source: peer(2, PeerType::Ebgp),
            },
            Candidate {
                attrs: &d,
                source: peer(4, PeerType::Ebgp),
            },
        ];
        assert_eq!(best(&cands), 1);
    }

    #[test]
    fn step5_ebgp_over_ibgp() {
        let a = attrs(1);
        let b = attrs(2);
        let cands = [
            Candidate {
                attrs: &a,
                source: peer(1, PeerType::Ibgp),
            },
            Candidate {
                attrs: &b,
                source: peer(2, PeerType::Ebgp),
            },
        ];
        assert_eq!(best(&cands), 1);
    }

    #[test]
    fn step6_lowest_igp_cost() {
        let a = attrs(1);
        let b = attrs(2);
        let mut p1 = peer(1, PeerType::Ibgp);
        let mut p2 = peer(2, PeerType::Ibgp);
        if let CandidateSource::Peer { igp_cost, .. } = &mut p1 {
            *igp_cost = Some(20);
        }
        if let CandidateSource::Peer { igp_cost, .. } = &mut p2 {
            *igp_cost = Some(10);
        }
        let cands = [
            Candidate {
                attrs: &a,
                source: p1,
            },
            Candidate {
                attrs: &b,
                source: p2,
            },
        ];
        let sel = select(&cands).unwrap();
        assert_eq!(sel.best, 1);
        assert_eq!(
            sel.multipath,
            vec![1],
            "different IGP cost is not multipath"
        );
    }

    #[test]
    fn step7_lowest_router_id_or_originator_id() {
        let a = attrs(1);
        let b = attrs(2);
        let cands = [
            Candidate {
                attrs: &a,
                source: peer(2, PeerType::Ibgp),
            },
            Candidate {
                attrs: &b,
                source: peer(1, PeerType::Ibgp),
            },
        ];
        assert_eq!(best(&cands), 1);
        // ORIGINATOR_ID stands in for the router id (RFC 4456 §9).
        let mut c = attrs(3);
        c.originator_id = Some(Ipv4Addr::new(1, 1, 1, 1));
        let cands = [
            Candidate {
                attrs: &b,
                source: peer(1, PeerType::Ibgp),
            },
            Candidate {
                attrs: &c,
                source: peer(9, PeerType::Ibgp),
            },
        ];
        assert_eq!(best(&cands), 1);
    }

    #[test]
    fn step8_shortest_cluster_list() {
        let mut a = attrs(1);
        a.originator_id = Some(Ipv4Addr::new(1, 1, 1, 1));
        a.cluster_list = vec![Ipv4Addr::new(9, 9, 9, 9), Ipv4Addr::new(8, 8, 8, 8)];
        let mut b = a.clone();
        b.cluster_list.pop();
        b.next_hop = Some(IpAddr::V4(Ipv4Addr::new(172, 16, 0, 2)));
        let cands = [
            Candidate {
                attrs: &a,
                source: peer(1, PeerType::Ibgp),
            },
            Candidate {
                attrs: &b,
                source: peer(2, PeerType::Ibgp),
            },
        ];
        let mut alive = vec![0, 1];
        eliminate(Step::ClusterListLength, &cands, &mut alive);
        assert_eq!(alive, vec![1]);
        assert_eq!(best(&cands), 1);
    }

    #[test]
    fn step9_lowest_peer_address() {
        let a = attrs(1);
        let b = attrs(2);
        let same_id = |n: u8| CandidateSource::Peer {
            peer_type: PeerType::Ibgp,
            router_id: Ipv4Addr::new(1, 1, 1, 1),
            address: IpAddr::V4(Ipv4Addr::new(192, 168, 0, n)),
            igp_cost: None,
            path_id: 0,
        };
        let cands = [
            Candidate {
                attrs: &a,
                source: same_id(5),
            },
            Candidate {
                attrs: &b,
                source: same_id(4),
            },
        ];
        assert_eq!(best(&cands), 1);
    }

    #[test]
    fn step10_lowest_path_id_from_one_peer() {
        let a = attrs(1);
        let b = attrs(2);
        let with_id = |path_id| CandidateSource::Peer {
            peer_type: PeerType::Ibgp,
            router_id: Ipv4Addr::new(1, 1, 1, 1),
            address: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)),
            igp_cost: None,
            path_id,
        };
        let cands = [
            Candidate {
                attrs: &a,
                source: with_id(7),
            },
            Candidate {
                attrs: &b,
                source: with_id(3),
            },
        ];
        let sel = select(&cands).unwrap();
        assert_eq!(sel.best, 1);
        assert_eq!(
            sel.multipath,
            vec![1, 0],
            "both paths are ECMP, lower id first"
        );
    }

    #[test]
    fn multipath_needs_equality_through_igp_cost_and_distinct_next_hops() {
        let a = attrs(1);
        let b = attrs(2);
        let dup = attrs(2);
        let worse = attrs(3).with_as_sequence([1]);
        let cands = [
            Candidate {
                attrs: &a,
                source: peer(3, PeerType::Ibgp),
            },
            Candidate {
                attrs: &b,
                source: peer(2, PeerType::Ibgp),
            },
            Candidate {
                attrs: &dup,
                source: peer(4, PeerType::Ibgp),
            },
            Candidate {
                attrs: &worse,
                source: peer(1, PeerType::Ibgp),
            },
        ];
        let sel = select(&cands).unwrap();
        assert_eq!(sel.best, 1);
        assert_eq!(
            sel.multipath,
            vec![1, 0],
            "same next hop once; longer AS_PATH excluded"
        );
        // eBGP and iBGP are never mixed.
        let cands = [
            Candidate {
                attrs: &a,
                source: peer(1, PeerType::Ibgp),
            },
            Candidate {
                attrs: &b,
                source: peer(2, PeerType::Ebgp),
            },
        ];
        assert_eq!(select(&cands).unwrap().multipath, vec![1]);
    }

    #[test]
    fn multipath_is_capped_at_sixteen() {
        let all: Vec<RouteAttrs> = (0..20).map(attrs).collect();
        let cands: Vec<Candidate<'_>> = all
            .iter()
            .enumerate()
            .map(|(i, a)| Candidate {
                attrs: a,
                source: peer(i as u8, PeerType::Ibgp),
            })
            .collect();
        assert_eq!(select(&cands).unwrap().multipath.len(), MAX_MULTIPATH);
    }

    fn arb_candidate() -> impl Strategy<Value = (RouteAttrs, CandidateSource)> {
        (
            0u32..3,
            0usize..3,
            0u8..3,
            proptest::option::of(0u32..3),
            0u32..3,
            any::<bool>(),
            0u8..4,
            0u32..2,
        )
            .prop_map(|(lp, len, origin, med, nbr, ebgp, id, path_id)| {
                let mut a = attrs(id).with_local_pref(100 + lp);
                a.as_path = crate::rib::attrs::AsPath {
                    segments: if len == 0 {
                        vec![]
                    } else {
                        vec![AsSegment {
                            kind: SegmentType::Sequence,
                            asns: std::iter::once(65000 + nbr)
                                .chain(std::iter::repeat_n(1, len - 1))
                                .collect(),
                        }]
                    },
                };
                a.origin = [Origin::Igp, Origin::Egp, Origin::Incomplete][origin as usize];
                a.med = med;
                let source = CandidateSource::Peer {
                    peer_type: if ebgp { PeerType::Ebgp } else { PeerType::Ibgp },
                    router_id: Ipv4Addr::new(10, 0, 0, id),
                    address: IpAddr::V4(Ipv4Addr::new(192, 168, 0, id)),
                    igp_cost: None,
                    path_id,
                };
                (a, source)
            })
    }

    proptest! {
        /// The winner and the multipath set do not depend on the order routes arrived in, even
        /// with MEDs from different neighbouring ASes (where a pairwise comparator would fail).
        #[test]
        fn selection_is_independent_of_arrival_order(
            routes in proptest::collection::vec(arb_candidate(), 1..8),
            seed in any::<u64>(),
        ) {
            // One route per (peer, path id), as in a real RIB.
            let mut seen = Vec::new();
            let cands: Vec<Candidate<'_>> = routes
                .iter()
                .filter(|(_, s)| {
                    let key = match s { CandidateSource::Peer { router_id, path_id, .. } => (*router_id, *path_id), CandidateSource::Local { .. } => unreachable!() };
                    let fresh = !seen.contains(&key);
                    seen.push(key);
                    fresh
                })
                .map(|(a, s)| Candidate { attrs: a, source: *s })
                .collect();
            let sel = select(&cands).unwrap();
            let mut order: Vec<usize> = (0..cands.len()).collect();
            // A deterministic shuffle from the seed.
            let mut x = seed | 1;
            for i in (1..order.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                order.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let shuffled: Vec<Candidate<'_>> = order.iter().map(|&i| cands[i]).collect();
            let sel2 = select(&shuffled).unwrap();
            let same = |a: &Candidate<'_>, b: &Candidate<'_>| std::ptr::eq(a.attrs, b.attrs);
            prop_assert!(same(&cands[sel.best], &shuffled[sel2.best]));
            prop_assert_eq!(sel.multipath.len(), sel2.multipath.len());
            for (x, y) in sel.multipath.iter().zip(&sel2.multipath) {
                prop_assert!(same(&cands[*x], &shuffled[*y]));
            }
        }
    }
}
