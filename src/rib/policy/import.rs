//! Import: loop checks, BGPFilter import rules, then Calico's default (accept everything, a ToR
//! default route included).

use std::net::Ipv4Addr;

use ipnet::IpNet;

use super::filter::{FilterOperation, FilterRoute, FilterVerdict};
use super::{add_community, local_pref_from_priority, priority_from_local_pref};
use crate::rib::attrs::RouteAttrs;
use crate::rib::peer::{PeerSession, PeerType};
use crate::rib::reflection::{self, LoopReason};

/// Why a received route was not accepted into the Loc-RIB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportReject {
    /// A routing loop ([`reflection::check_received`]).
    Loop(LoopReason),
    /// A BGPFilter import rule rejected it.
    Filter,
}

/// The outcome of import policy for one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportResult {
    /// Accepted with the received attributes.
    Unchanged,
    /// Accepted with changed attributes.
    Modified(Box<RouteAttrs>),
    /// Not accepted (kept in the pre-policy Adj-RIB-In so a policy change can revisit it).
    Rejected(ImportReject),
}

/// Our side of the import decision.
#[derive(Debug, Clone, Copy)]
pub struct ImportContext {
    /// Our BGP Identifier.
    pub router_id: Ipv4Addr,
    /// Our cluster id when we are a route reflector.
    pub cluster_id: Option<Ipv4Addr>,
    /// Normal route priority for this family.
    pub normal_priority: u32,
}

/// Runs import policy for a route received from `peer`.
pub fn import(
    prefix: &IpNet,
    attrs: &RouteAttrs,
    peer: &PeerSession,
    ctx: &ImportContext,
) -> ImportResult {
    if let Err(reason) = reflection::check_received(
        attrs,
        peer.local_as,
        peer.allow_local_as,
        ctx.router_id,
        ctx.cluster_id,
    ) {
        return ImportResult::Rejected(ImportReject::Loop(reason));
    }
    let mut modified: Option<RouteAttrs> = None;
    if peer.peer_type() == PeerType::Ebgp && attrs.local_pref.is_some() {
        // RFC 4271 §5.1.5: LOCAL_PREF is not sent over eBGP; one received from an external peer
        // is ignored.
        let mut a = attrs.clone();
        a.local_pref = None;
        modified = Some(a);
    }
    if peer.filters_apply()
        && let Some(filter) = &peer.import_filter
    {
        let current = modified.as_ref().unwrap_or(attrs);
        let route = FilterRoute {
            prefix: *prefix,
            attrs: current,
            learned_from: Some(peer.peer_type()),
            interface: None,
            priority: priority_from_local_pref(current.local_pref, ctx.normal_priority),
            session_peer_type: peer.peer_type(),
            session_peer: peer.address,
        };
        match filter.evaluate(&route) {
            FilterVerdict::Reject => return ImportResult::Rejected(ImportReject::Filter),
            FilterVerdict::Accept { operations, .. } if !operations.is_empty() => {
                let mut a = current.clone();
                apply_operations(&mut a, operations);
                modified = Some(a);
            }
            FilterVerdict::Accept { .. } | FilterVerdict::NoMatch => {}
        }
    }
    // Calico's import default: accept.
    match modified {
        Some(a) => ImportResult::Modified(Box::new(a)),
        None => ImportResult::Unchanged,
    }
}

/// Applies BGPFilter operations in order.
pub fn apply_operations(attrs: &mut RouteAttrs, operations: &[FilterOperation]) {
    for op in operations {
        match op {
            FilterOperation::AddCommunity(c) => add_community(attrs, *c),
            // Calico: these ASNs, in this order, in front of the path.
            FilterOperation::PrependAsPath(asns) => {
                for asn in asns.iter().rev() {
                    attrs.prepend_as(*asn, 1);
                }
            }
            FilterOperation::SetPriority(p) => {
                attrs.local_pref = Some(local_pref_from_priority(*p))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FilterAction, MatchOperator};
    use crate::plan::filter::{CompiledRule, Direction, RuleMatch};
    use crate::rib::attrs::Origin;
    use crate::rib::policy::filter::tests::{chain, cidr_rule};
    use std::sync::Arc;

    fn peer(peer_as: u32) -> PeerSession {
        PeerSession::new(
            "192.168.0.2".parse().unwrap(),
            "192.168.0.1".parse().unwrap(),
            Ipv4Addr::new(192, 168, 0, 2),
            64512,
            peer_as,
        )
    }

    fn ctx() -> ImportContext {
        ImportContext {
            router_id: Ipv4Addr::new(192, 168, 0, 1),
            cluster_id: None,
            normal_priority: 1024,
        }
    }

    #[test]
    fn default_accepts_everything_including_a_default_route() {
        let a = RouteAttrs::new(Origin::Igp, None).with_as_sequence([65000]);
        assert_eq!(
            import(&"0.0.0.0/0".parse().unwrap(), &a, &peer(65000), &ctx()),
            ImportResult::Unchanged
        );
    }

    #[test]
    fn loops_are_rejected() {
        let a = RouteAttrs::new(Origin::Igp, None).with_as_sequence([65000, 64512]);
        assert_eq!(
            import(&"10.0.0.0/8".parse().unwrap(), &a, &peer(65000), &ctx()),
            ImportResult::Rejected(ImportReject::Loop(LoopReason::AsPath))
        );
        let mut allow = peer(65000);
        allow.allow_local_as = 1;
        assert_eq!(
            import(&"10.0.0.0/8".parse().unwrap(), &a, &allow, &ctx()),
            ImportResult::Unchanged
        );
    }

    #[test]
    fn ebgp_local_pref_is_ignored() {
        let a = RouteAttrs::new(Origin::Igp, None)
            .with_as_sequence([65000])
            .with_local_pref(500);
        let ImportResult::Modified(m) =
            import(&"10.0.0.0/8".parse().unwrap(), &a, &peer(65000), &ctx())
        else {
            panic!()
        };
        assert_eq!(m.local_pref, None);
        assert_eq!(
            import(&"10.0.0.0/8".parse().unwrap(), &a, &peer(64512), &ctx()),
            ImportResult::Unchanged
        );
    }

    #[test]
    fn filters_apply_to_explicit_peers_only() {
        let rules: Arc<dyn crate::rib::policy::filter::RouteFilter> = Arc::new(chain(
            Direction::Import,
            vec![
                cidr_rule(MatchOperator::In, "10.0.0.0/8", FilterAction::Reject),
                CompiledRule {
                    matches: RuleMatch::default(),
                    action: FilterAction::Accept,
                    operations: vec![FilterOperation::SetPriority(512)],
                },
            ],
        ));
        let mut explicit = peer(64512);
        explicit.mesh = false;
        explicit.import_filter = Some(rules.clone());
        let a = RouteAttrs::new(Origin::Igp, None);
        assert_eq!(
            import(&"10.1.0.0/16".parse().unwrap(), &a, &explicit, &ctx()),
            ImportResult::Rejected(ImportReject::Filter)
        );
        let ImportResult::Modified(m) =
            import(&"172.16.0.0/16".parse().unwrap(), &a, &explicit, &ctx())
        else {
            panic!()
        };
        assert_eq!(m.local_pref, Some(local_pref_from_priority(512)));
        // A mesh peer with the same rules attached: ignored.
        let mut mesh = explicit.clone();
        mesh.mesh = true;
        assert_eq!(
            import(&"10.1.0.0/16".parse().unwrap(), &a, &mesh, &ctx()),
            ImportResult::Unchanged
        );
    }
}
