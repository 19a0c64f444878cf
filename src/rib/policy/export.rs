//! Export: which routes a peer group is sent ([`decide`]) and with which attributes
//! ([`transform`]).
//!
//! [`decide`] runs, in order: the BGP propagation rules (iBGP split horizon and route reflection,
//! [`crate::rib::reflection::may_propagate`]), then Calico's export pipeline exactly as
//! calico-behaviour.md §3 lists it (each step is an [`ExportStep`] and tested on its own):
//!
//! 1. BGPFilter export rules (explicit peers only): Reject ends; Accept ends after its operations.
//! 2. Reject routes inside a pool with `disableBGPExport`.
//! 3. Towards iBGP: reject routes on interfaces `*.cali`, `*.calico`, and `tunl0` when Felix owns
//!    IP-in-IP.
//! 4. Reject routes on `bpf*.cali`.
//! 5. Add the communities of every `prefixAdvertisements` entry containing the prefix.
//! 6. Aggregation: accept the node's own block itself; accept a more-specific inside it only when
//!    its priority is elevated (metric below normal); reject other more-specifics.
//! 7. Accept service routes (inside a service range).
//! 8. On a route reflector, accept anything inside the LB / external ranges.
//! 9. Accept anything inside a pool CIDR.
//! 10. Reject.

use std::net::Ipv4Addr;

use ipnet::IpNet;

use super::filter::{FilterOperation, FilterRoute, FilterVerdict, RouteFilter};
use super::{PolicyContext, add_community, priority_from_local_pref};
use crate::plan::filter::glob_matches;
use crate::rib::attrs::RouteAttrs;
use crate::rib::peer::{ExportKey, NextHopMode, PeerType, ReflectionRole};
use crate::rib::reflection;

/// How a route in the Loc-RIB came to be, as export needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass<'a> {
    /// Originated by this node.
    Local {
        /// The kernel interface of a kernel-learned route.
        interface: Option<&'a str>,
        /// Its priority (kernel metric).
        metric: u32,
    },
    /// Learned from a peer.
    Learned {
        /// iBGP or eBGP.
        peer_type: PeerType,
        /// Client or non-client of ours.
        reflection: ReflectionRole,
        /// The peer's BGP Identifier (ORIGINATOR_ID when we reflect).
        router_id: Ipv4Addr,
    },
}

/// Where a route is exported to: one export group.
#[derive(Debug, Clone, Copy)]
pub struct ExportTarget<'a> {
    /// The group's shared peer facts.
    pub key: &'a ExportKey,
    /// The group's BGPFilter export rules (explicit peers only).
    pub filter: Option<&'a dyn RouteFilter>,
    /// Our cluster id when we are a route reflector.
    pub cluster_id: Option<Ipv4Addr>,
    /// Our BGP Identifier.
    pub router_id: Ipv4Addr,
}

/// The step of the export pipeline that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportStep {
    /// iBGP split horizon / route reflection forbids it.
    Propagation,
    /// 1. a BGPFilter rule.
    Filter,
    /// 2. pool with `disableBGPExport`.
    DisabledPool,
    /// 3. Calico tunnel/workload interface towards iBGP.
    IbgpTunnelInterface,
    /// 4. eBPF interface.
    BpfInterface,
    /// 6. the node's own block (or an elevated more-specific / a plain more-specific).
    Aggregation,
    /// 7. service range.
    Service,
    /// 8. LB/external range on a route reflector.
    ReflectorAllowList,
    /// 9. pool CIDR.
    Pool,
    /// 10. nothing accepted it.
    Default,
}

/// What export decided for one route towards one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportDecision<'f> {
    /// Not sent.
    Reject(ExportStep),
    /// Sent, after these changes.
    Accept {
        /// The deciding step.
        step: ExportStep,
        /// Bit i set = `prefix_communities[i]` applies (first 64 entries).
        community_mask: u64,
        /// The accepting BGPFilter rule and its operations.
        rule: Option<(u32, &'f [FilterOperation])>,
    },
}

/// Runs the propagation rules and Calico's export pipeline for `prefix` towards `target`.
pub fn decide<'f>(
    prefix: &IpNet,
    attrs: &RouteAttrs,
    class: RouteClass<'_>,
    target: &ExportTarget<'f>,
    ctx: &PolicyContext,
) -> ExportDecision<'f> {
    let to_ibgp = target.key.peer_type == PeerType::Ibgp;
    if let RouteClass::Learned {
        peer_type,
        reflection,
        ..
    } = class
        && !reflection::may_propagate(
            peer_type,
            reflection,
            target.key.peer_type,
            target.key.reflection,
            target.cluster_id.is_some(),
        )
    {
        return ExportDecision::Reject(ExportStep::Propagation);
    }
    let (interface, priority) = match class {
        RouteClass::Local { interface, metric } => (interface, metric),
        RouteClass::Learned { .. } => (
            None,
            priority_from_local_pref(attrs.local_pref, ctx.normal_priority(prefix)),
        ),
    };

    // 1. BGPFilter export rules.
    if let Some(filter) = target.filter {
        let route = FilterRoute {
            prefix: *prefix,
            attrs,
            learned_from: match class {
                RouteClass::Local { .. } => None,
                RouteClass::Learned { peer_type, .. } => Some(peer_type),
            },
            interface,
            priority,
            session_peer_type: target.key.peer_type,
            session_peer: target.key.local_address,
        };
        match filter.evaluate(&route) {
            FilterVerdict::Reject => return ExportDecision::Reject(ExportStep::Filter),
            FilterVerdict::Accept { rule, operations } => {
                return ExportDecision::Accept {
                    step: ExportStep::Filter,
                    community_mask: 0,
                    rule: Some((rule, operations)),
                };
            }
            FilterVerdict::NoMatch => {}
        }
    }

    // 2. Pools with disableBGPExport.
    if ctx
        .pools
        .iter()
        .any(|p| p.disable_bgp_export && p.cidr.contains(prefix))
    {
        return ExportDecision::Reject(ExportStep::DisabledPool);
    }

    // 3. Towards iBGP: Calico's tunnel and workload interfaces (Felix programs those routes).
    if to_ibgp
        && let Some(ifname) = interface
        && ctx
            .ibgp_reject_interfaces
            .iter()
            .any(|g| glob_matches(g, ifname))
    {
        return ExportDecision::Reject(ExportStep::IbgpTunnelInterface);
    }

    // 4. eBPF dataplane interfaces, towards everyone.
    if let Some(ifname) = interface
        && ctx
            .reject_interfaces
            .iter()
            .any(|g| glob_matches(g, ifname))
    {
        return ExportDecision::Reject(ExportStep::BpfInterface);
    }

    // 5. Communities from prefixAdvertisements (does not decide).
    let community_mask = ctx
        .prefix_communities
        .iter()
        .take(64)
        .enumerate()
        .filter(|(_, pc)| pc.cidr.contains(prefix))
        .fold(0u64, |mask, (i, _)| mask | (1 << i));
    let accept = |step| ExportDecision::Accept {
        step,
        community_mask,
        rule: None,
    };

    // 6. Aggregation of this node's blocks.
    for block in &ctx.own_blocks {
        if block == prefix {
            return accept(ExportStep::Aggregation);
        }
        if block.contains(prefix) {
            return if priority < ctx.normal_priority(prefix) {
                accept(ExportStep::Aggregation)
            } else {
                ExportDecision::Reject(ExportStep::Aggregation)
            };
        }
    }

    // 7. Service ranges.
    if ctx.service_ranges.iter().any(|r| r.contains(prefix)) {
        return accept(ExportStep::Service);
    }

    // 8. A route reflector passes on LB / external ranges.
    if ctx.is_route_reflector && ctx.lb_external_ranges.iter().any(|r| r.contains(prefix)) {
        return accept(ExportStep::ReflectorAllowList);
    }

    // 9. Pools.
    if ctx.pools.iter().any(|p| p.cidr.contains(prefix)) {
        return accept(ExportStep::Pool);
    }

    // 10. Everything else.
    ExportDecision::Reject(ExportStep::Default)
}

/// The attributes sent for an accepted route: operations, communities, next hop, AS_PATH,
/// LOCAL_PREF, MED, and the route-reflection attributes.
pub fn transform(
    attrs: &RouteAttrs,
    class: RouteClass<'_>,
    decision_rule: Option<&[FilterOperation]>,
    community_mask: u64,
    target: &ExportTarget<'_>,
    ctx: &PolicyContext,
) -> RouteAttrs {
    let mut out = attrs.clone();
    let key = target.key;

    // BGPFilter operations, in order.
    super::import::apply_operations(&mut out, decision_rule.unwrap_or(&[]));
    // prefixAdvertisements communities.
    for (i, pc) in ctx.prefix_communities.iter().take(64).enumerate() {
        if community_mask & (1 << i) != 0 {
            for c in &pc.communities {
                add_community(&mut out, *c);
            }
        }
    }

    // RFC 4271 §5: unknown optional transitive attributes are passed on with Partial set,
    // unknown optional non-transitive ones are not passed on.
    out.prepare_other_for_propagation();

    let local = matches!(class, RouteClass::Local { .. });
    let rewrite_next_hop = local
        || match key.next_hop_mode {
            NextHopMode::SelfAddress => true,
            NextHopMode::Keep => false,
            NextHopMode::Auto => key.peer_type == PeerType::Ebgp,
        };
    if rewrite_next_hop || out.next_hop.is_none() {
        out.next_hop = Some(key.local_address);
        // A received link-local next hop belongs to the received global one.
        out.next_hop_link_local = None;
    }

    match key.peer_type {
        PeerType::Ebgp => {
            if !local {
                // RFC 4271 §5.1.4: a MED received from a neighbouring AS MUST NOT be propagated
                // to other neighbouring ASes (like BIRD, any learned MED is dropped towards eBGP).
                out.med = None;
            }
            // RFC 4271 §5.1.5 and RFC 4456 §8: no LOCAL_PREF, ORIGINATOR_ID or CLUSTER_LIST
            // towards an external peer.
            out.strip_for_ebgp();
            // RFC 4271 §5.1.2 b): prepend our own AS towards an external peer.
            out.prepend_as(key.local_as, 1);
        }
        PeerType::Ibgp => {
            // RFC 4271 §5.1.5: LOCAL_PREF MUST be included towards internal peers.
            out.local_pref = Some(out.effective_local_pref());
            if let RouteClass::Learned {
                peer_type: PeerType::Ibgp,
                router_id,
                ..
            } = class
                && let Some(cluster_id) = target.cluster_id
            {
                reflection::stamp_reflected(&mut out, router_id, cluster_id);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FilterAction, MatchOperator};
    use crate::plan::Encapsulation;
    use crate::plan::filter::{CompiledRule, Direction};
    use crate::rib::attrs::Origin;
    use crate::rib::policy::filter::tests::{chain, cidr_rule};
    use crate::rib::policy::{Community, PoolPolicy, PrefixCommunities, local_pref_from_priority};

    fn key(peer_type: PeerType) -> ExportKey {
        ExportKey {
            peer_type,
            local_as: 64512,
            peer_as: (peer_type == PeerType::Ebgp).then_some(65000),
            local_address: "192.168.1.1".parse().unwrap(),
            reflection: ReflectionRole::NonClient,
            next_hop_mode: NextHopMode::Auto,
            add_path_send: false,
            families: crate::rib::Families::BOTH,
            filters: vec![],
        }
    }

    fn target<'a>(key: &'a ExportKey, filter: Option<&'a dyn RouteFilter>) -> ExportTarget<'a> {
        ExportTarget {
            key,
            filter,
            cluster_id: None,
            router_id: Ipv4Addr::new(192, 168, 1, 1),
        }
    }

    fn ctx() -> PolicyContext {
        PolicyContext {
            pools: vec![
                PoolPolicy {
                    cidr: "10.244.0.0/16".parse().unwrap(),
                    disable_bgp_export: false,
                    encapsulation: Encapsulation::IpIpAlways,
                },
                PoolPolicy {
                    cidr: "10.99.0.0/16".parse().unwrap(),
                    disable_bgp_export: true,
                    encapsulation: Encapsulation::None,
                },
            ],
            own_blocks: vec!["10.244.1.0/26".parse().unwrap()],
            service_ranges: vec!["10.96.0.0/12".parse().unwrap()],
            lb_external_ranges: vec!["203.0.113.0/24".parse().unwrap()],
            prefix_communities: vec![PrefixCommunities {
                cidr: "10.244.0.0/16".parse().unwrap(),
                communities: vec![Community::Standard(65000, 100)],
            }],
            ..PolicyContext::default()
        }
    }

    fn local(interface: Option<&str>, metric: u32) -> RouteClass<'_> {
        RouteClass::Local { interface, metric }
    }

    fn step(d: ExportDecision<'_>) -> (bool, ExportStep) {
        match d {
            ExportDecision::Reject(s) => (false, s),
            ExportDecision::Accept { step, .. } => (true, step),
        }
    }

    fn run(
        prefix: &str,
        class: RouteClass<'_>,
        peer_type: PeerType,
        ctx: &PolicyContext,
    ) -> (bool, ExportStep) {
        let k = key(peer_type);
        let a = RouteAttrs::new(Origin::Igp, None);
        step(decide(
            &prefix.parse().unwrap(),
            &a,
            class,
            &target(&k, None),
            ctx,
        ))
    }

    #[test]
    fn step1_filter_reject_and_accept_end_the_pipeline() {
        let rules = chain(
            Direction::Export,
            vec![
                cidr_rule(MatchOperator::Equal, "10.244.1.0/26", FilterAction::Reject),
                CompiledRule {
                    operations: vec![FilterOperation::PrependAsPath(vec![1, 2])],
                    ..cidr_rule(MatchOperator::In, "192.0.2.0/24", FilterAction::Accept)
                },
            ],
        );
        let k = key(PeerType::Ebgp);
        let t = target(&k, Some(&rules));
        let a = RouteAttrs::new(Origin::Igp, None);
        let c = ctx();
        // The block would be accepted by aggregation; the filter rejects it first.
        assert_eq!(
            step(decide(
                &"10.244.1.0/26".parse().unwrap(),
                &a,
                local(None, 1024),
                &t,
                &c
            )),
            (false, ExportStep::Filter)
        );
        // Outside every pool, yet accepted by the filter.
        let d = decide(
            &"192.0.2.0/24".parse().unwrap(),
            &a,
            local(None, 1024),
            &t,
            &c,
        );
        assert_eq!(step(d), (true, ExportStep::Filter));
        let ExportDecision::Accept {
            rule: Some((_, ops)),
            ..
        } = d
        else {
            panic!()
        };
        let out = transform(&a, local(None, 1024), Some(ops), 0, &t, &c);
        assert_eq!(
            out.as_path.segments[0].asns,
            vec![64512, 1, 2],
            "local AS goes in front of the filter's prepends"
        );
        // Unmatched: the defaults.
        assert_eq!(
            step(decide(
                &"10.244.2.0/26".parse().unwrap(),
                &a,
                local(None, 1024),
                &t,
                &c
            )),
            (true, ExportStep::Pool)
        );
    }

    #[test]
    fn step2_disabled_pools_are_never_exported() {
        assert_eq!(
            run("10.99.0.0/26", local(None, 1024), PeerType::Ebgp, &ctx()),
            (false, ExportStep::DisabledPool)
        );
    }

    #[test]
    fn step3_tunnel_and_workload_interfaces_not_towards_ibgp() {
        let c = ctx();
        assert_eq!(
            run(
                "10.244.7.5/32",
                local(Some("eth0.cali"), 1024),
                PeerType::Ibgp,
                &c
            ),
            (false, ExportStep::IbgpTunnelInterface)
        );
        assert_eq!(
            run(
                "10.244.7.5/32",
                local(Some("x.calico"), 1024),
                PeerType::Ibgp,
                &c
            ),
            (false, ExportStep::IbgpTunnelInterface)
        );
        // tunl0 only when Felix owns IP-in-IP.
        assert_eq!(
            run(
                "10.244.7.5/32",
                local(Some("tunl0"), 1024),
                PeerType::Ibgp,
                &c
            ),
            (true, ExportStep::Pool)
        );
        let mut felix = ctx();
        felix.ibgp_reject_interfaces.push("tunl0".into());
        assert_eq!(
            run(
                "10.244.7.5/32",
                local(Some("tunl0"), 1024),
                PeerType::Ibgp,
                &felix
            ),
            (false, ExportStep::IbgpTunnelInterface)
        );
        // Not towards eBGP.
        assert_eq!(
            run(
                "10.244.7.5/32",
                local(Some("eth0.cali"), 1024),
                PeerType::Ebgp,
                &c
            ),
            (true, ExportStep::Pool)
        );
    }

    #[test]
    fn step4_bpf_interfaces_towards_everyone() {
        assert_eq!(
            run(
                "10.244.7.5/32",
                local(Some("bpfout.cali"), 1024),
                PeerType::Ebgp,
                &ctx()
            ),
            (false, ExportStep::BpfInterface)
        );
    }

    #[test]
    fn step5_prefix_advertisement_communities_are_added() {
        let k = key(PeerType::Ibgp);
        let c = ctx();
        let t = target(&k, None);
        let a = RouteAttrs::new(Origin::Igp, None);
        let class = local(None, 1024);
        let ExportDecision::Accept {
            community_mask,
            rule,
            ..
        } = decide(&"10.244.1.0/26".parse().unwrap(), &a, class, &t, &c)
        else {
            panic!("block must be accepted")
        };
        assert_eq!(community_mask, 1);
        let out = transform(&a, class, rule.map(|r| r.1), community_mask, &t, &c);
        assert_eq!(
            out.communities,
            vec![crate::rib::attrs::community(65000, 100)]
        );
        let ExportDecision::Accept { community_mask, .. } =
            decide(&"10.96.0.0/12".parse().unwrap(), &a, class, &t, &c)
        else {
            panic!()
        };
        assert_eq!(
            community_mask, 0,
            "service range is outside the advertisement CIDR"
        );
    }

    #[test]
    fn step6_aggregation_block_yes_more_specific_only_when_elevated() {
        let c = ctx();
        assert_eq!(
            run("10.244.1.0/26", local(None, 1024), PeerType::Ibgp, &c),
            (true, ExportStep::Aggregation)
        );
        assert_eq!(
            run("10.244.1.5/32", local(None, 1024), PeerType::Ibgp, &c),
            (false, ExportStep::Aggregation)
        );
        assert_eq!(
            run("10.244.1.5/32", local(None, 512), PeerType::Ibgp, &c),
            (true, ExportStep::Aggregation)
        );
        // A borrowed /32 outside our blocks but inside a pool goes out.
        assert_eq!(
            run("10.244.9.5/32", local(None, 1024), PeerType::Ibgp, &c),
            (true, ExportStep::Pool)
        );
    }

    #[test]
    fn step7_service_ranges() {
        assert_eq!(
            run("10.96.0.0/12", local(None, 1024), PeerType::Ebgp, &ctx()),
            (true, ExportStep::Service)
        );
    }

    #[test]
    fn step8_lb_ranges_only_on_a_reflector() {
        let c = ctx();
        assert_eq!(
            run("203.0.113.7/32", local(None, 1024), PeerType::Ibgp, &c),
            (false, ExportStep::Default)
        );
        let rr = PolicyContext {
            is_route_reflector: true,
            ..ctx()
        };
        assert_eq!(
            run("203.0.113.7/32", local(None, 1024), PeerType::Ibgp, &rr),
            (true, ExportStep::ReflectorAllowList)
        );
    }

    #[test]
    fn step9_and_10_pools_then_reject() {
        let c = ctx();
        assert_eq!(
            run("10.244.200.0/26", local(None, 1024), PeerType::Ibgp, &c),
            (true, ExportStep::Pool)
        );
        assert_eq!(
            run("0.0.0.0/0", local(None, 1024), PeerType::Ibgp, &c),
            (false, ExportStep::Default)
        );
    }

    #[test]
    fn ebgp_transform_prepends_strips_and_rewrites_next_hop() {
        let k = key(PeerType::Ebgp);
        let t = target(&k, None);
        let mut a = RouteAttrs::new(Origin::Igp, Some("10.0.0.9".parse().unwrap()))
            .with_as_sequence([65001])
            .with_local_pref(200)
            .with_med(5);
        a.originator_id = Some(Ipv4Addr::new(9, 9, 9, 9));
        a.cluster_list = vec![Ipv4Addr::new(1, 1, 1, 1)];
        let class = RouteClass::Learned {
            peer_type: PeerType::Ibgp,
            reflection: ReflectionRole::NonClient,
            router_id: Ipv4Addr::new(9, 9, 9, 9),
        };
        let out = transform(&a, class, None, 0, &t, &ctx());
        assert_eq!(out.as_path.segments[0].asns, vec![64512, 65001]);
        assert_eq!(out.local_pref, None);
        assert_eq!(out.med, None);
        assert_eq!(out.originator_id, None);
        assert!(out.cluster_list.is_empty());
        assert_eq!(out.next_hop, Some("192.168.1.1".parse().unwrap()));
        // Keep leaves a received next hop alone.
        let keep = ExportKey {
            next_hop_mode: NextHopMode::Keep,
            ..key(PeerType::Ebgp)
        };
        let out = transform(&a, class, None, 0, &target(&keep, None), &ctx());
        assert_eq!(out.next_hop, Some("10.0.0.9".parse().unwrap()));
    }

    #[test]
    fn ibgp_transform_keeps_next_hop_and_sets_local_pref() {
        let k = key(PeerType::Ibgp);
        let t = target(&k, None);
        let a = RouteAttrs::new(Origin::Igp, Some("10.0.0.9".parse().unwrap()))
            .with_as_sequence([65001]);
        let class = RouteClass::Learned {
            peer_type: PeerType::Ebgp,
            reflection: ReflectionRole::NonClient,
            router_id: Ipv4Addr::new(9, 9, 9, 9),
        };
        let out = transform(&a, class, None, 0, &t, &ctx());
        assert_eq!(
            out.next_hop,
            Some("10.0.0.9".parse().unwrap()),
            "Auto keeps the next hop towards iBGP"
        );
        assert_eq!(out.local_pref, Some(100));
        assert_eq!(
            out.as_path.segments[0].asns,
            vec![65001],
            "no prepend inside the AS"
        );
        // Self rewrites it.
        let s = ExportKey {
            next_hop_mode: NextHopMode::SelfAddress,
            ..key(PeerType::Ibgp)
        };
        let out = transform(&a, class, None, 0, &target(&s, None), &ctx());
        assert_eq!(out.next_hop, Some("192.168.1.1".parse().unwrap()));
        // A local route carries the session address even with Keep.
        let keep = ExportKey {
            next_hop_mode: NextHopMode::Keep,
            ..key(PeerType::Ibgp)
        };
        let l = RouteAttrs::new(Origin::Igp, None).with_local_pref(local_pref_from_priority(1024));
        let out = transform(&l, local(None, 1024), None, 0, &target(&keep, None), &ctx());
        assert_eq!(out.next_hop, Some("192.168.1.1".parse().unwrap()));
        assert_eq!(out.local_pref, Some(2_147_482_623));
    }
}
