//! iBGP split horizon and route reflection (RFC 4271 §9.2, RFC 4456).

use std::net::Ipv4Addr;

use super::attrs::RouteAttrs;
use super::peer::{PeerType, ReflectionRole};

/// Whether a route learned from a `from` peer may be advertised to a `to` peer.
///
/// - RFC 4271 §9.2: routes learned from an internal peer MUST NOT be advertised to internal peers
///   (iBGP split horizon), unless we are a route reflector:
/// - RFC 4456 §6: a reflector sends routes from a non-client to its clients only, and routes from
///   a client to all clients and non-clients.
/// - eBGP-learned routes go to everyone; everything goes to eBGP peers.
///
/// Reflectors sharing a cluster id treat each other as non-clients (the plan decides the role),
/// so they never reflect non-client routes to each other, and a client route reflected to one of
/// them carries the shared cluster id and is dropped on receipt ([`check_received`]).
///
/// Not sending a route back to the peer it came from is done per member at send time.
pub fn may_propagate(
    from: PeerType,
    from_role: ReflectionRole,
    to: PeerType,
    to_role: ReflectionRole,
    we_reflect: bool,
) -> bool {
    match (from, to) {
        (PeerType::Ebgp, _) | (_, PeerType::Ebgp) => true,
        (PeerType::Ibgp, PeerType::Ibgp) => {
            if !we_reflect {
                // RFC 4271 §9.2: iBGP-learned routes are not re-advertised over iBGP.
                return false;
            }
            // RFC 4456 §6.
            from_role == ReflectionRole::Client || to_role == ReflectionRole::Client
        }
    }
}

/// Sets the reflection attributes on a route we reflect (RFC 4456 §8).
pub fn stamp_reflected(attrs: &mut RouteAttrs, source_router_id: Ipv4Addr, cluster_id: Ipv4Addr) {
    // RFC 4456 §8: ORIGINATOR_ID is created by an RR, set to the BGP Identifier of the
    // originator in the local AS; an existing ORIGINATOR_ID MUST NOT be changed.
    if attrs.originator_id.is_none() {
        attrs.originator_id = Some(source_router_id);
    }
    // RFC 4456 §8: the RR MUST prepend its CLUSTER_ID to the CLUSTER_LIST (creating it if empty).
    attrs.cluster_list.insert(0, cluster_id);
}

/// Why a received route is not eligible (a loop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopReason {
    /// Our AS occurs more often than `numAllowedLocalASNumbers` allows.
    AsPath,
    /// ORIGINATOR_ID is our router id.
    OriginatorId,
    /// CLUSTER_LIST contains our cluster id.
    ClusterList,
}

/// Loop checks on receipt.
///
/// - RFC 4271 §9.1.2: a route whose AS_PATH contains our AS is excluded (Calico's
///   `numAllowedLocalASNumbers` allows it up to that many times; BIRD's `allow local as`).
/// - RFC 4456 §8: a route whose ORIGINATOR_ID is our router id SHOULD be ignored; a route whose
///   CLUSTER_LIST contains our cluster id MUST be ignored.
pub fn check_received(
    attrs: &RouteAttrs,
    local_as: u32,
    allow_local_as: u8,
    router_id: Ipv4Addr,
    cluster_id: Option<Ipv4Addr>,
) -> Result<(), LoopReason> {
    if attrs.as_path_count(local_as) > usize::from(allow_local_as) {
        return Err(LoopReason::AsPath);
    }
    if attrs.originator_id == Some(router_id) {
        return Err(LoopReason::OriginatorId);
    }
    if let Some(c) = cluster_id
        && attrs.cluster_list.contains(&c)
    {
        return Err(LoopReason::ClusterList);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rib::attrs::Origin;
    use PeerType::{Ebgp, Ibgp};
    use ReflectionRole::{Client, NonClient};

    #[test]
    fn ibgp_split_horizon_without_reflection() {
        assert!(!may_propagate(Ibgp, NonClient, Ibgp, NonClient, false));
        assert!(may_propagate(Ibgp, NonClient, Ebgp, NonClient, false));
        assert!(may_propagate(Ebgp, NonClient, Ibgp, NonClient, false));
        assert!(may_propagate(Ebgp, NonClient, Ebgp, NonClient, false));
    }

    #[test]
    fn reflector_client_routes_go_everywhere() {
        assert!(may_propagate(Ibgp, Client, Ibgp, Client, true));
        assert!(may_propagate(Ibgp, Client, Ibgp, NonClient, true));
    }

    #[test]
    fn reflector_non_client_routes_go_to_clients_only() {
        assert!(may_propagate(Ibgp, NonClient, Ibgp, Client, true));
        // Two reflectors sharing a cluster id are non-clients of each other: no reflection.
        assert!(!may_propagate(Ibgp, NonClient, Ibgp, NonClient, true));
    }

    #[test]
    fn reflection_sets_originator_once_and_prepends_cluster_id() {
        let mut a = RouteAttrs::new(Origin::Igp, None);
        stamp_reflected(
            &mut a,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(1, 1, 1, 1),
        );
        assert_eq!(a.originator_id, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(a.cluster_list, vec![Ipv4Addr::new(1, 1, 1, 1)]);
        stamp_reflected(
            &mut a,
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(2, 2, 2, 2),
        );
        assert_eq!(
            a.originator_id,
            Some(Ipv4Addr::new(10, 0, 0, 1)),
            "never changed"
        );
        assert_eq!(
            a.cluster_list,
            vec![Ipv4Addr::new(2, 2, 2, 2), Ipv4Addr::new(1, 1, 1, 1)]
        );
    }

    #[test]
    fn loops_are_detected_on_receipt() {
        let me = Ipv4Addr::new(10, 0, 0, 1);
        let cluster = Ipv4Addr::new(1, 1, 1, 1);
        let a = RouteAttrs::new(Origin::Igp, None).with_as_sequence([65000, 64512]);
        assert_eq!(
            check_received(&a, 64512, 0, me, None),
            Err(LoopReason::AsPath)
        );
        assert_eq!(
            check_received(&a, 64512, 1, me, None),
            Ok(()),
            "allow-local-as 1"
        );
        let twice = RouteAttrs::new(Origin::Igp, None).with_as_sequence([64512, 64512]);
        assert_eq!(
            check_received(&twice, 64512, 1, me, None),
            Err(LoopReason::AsPath)
        );
        let mut o = RouteAttrs::new(Origin::Igp, None);
        o.originator_id = Some(me);
        assert_eq!(
            check_received(&o, 64512, 0, me, None),
            Err(LoopReason::OriginatorId)
        );
        let mut c = RouteAttrs::new(Origin::Igp, None);
        c.cluster_list = vec![Ipv4Addr::new(3, 3, 3, 3), cluster];
        assert_eq!(
            check_received(&c, 64512, 0, me, Some(cluster)),
            Err(LoopReason::ClusterList)
        );
        assert_eq!(
            check_received(&c, 64512, 0, me, None),
            Ok(()),
            "not a reflector: no cluster check"
        );
    }
}
