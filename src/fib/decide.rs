//! Which kernel route, if any, a best route becomes (calico-behaviour.md §4).

use std::net::IpAddr;

use ipnet::IpNet;

use super::{KernelRoute, KernelRouteKind, MAX_ECMP_PATHS, NextHop};
use crate::plan::{Encapsulation, PoolKernelRule, block_blackholed, pool_for};

/// Where a best route came from, as far as the kernel cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteOrigin {
    /// One of this node's own IPAM blocks (a confirmed block affinity): a blackhole.
    OwnBlock,
    /// Learned from a BGP peer.
    Peer {
        /// The prefix is one of the service ranges (cluster IPs, external or load-balancer IPs):
        /// advertised by every node, never installed from a peer.
        service_range: bool,
    },
}

/// A best route from the RIB, reduced to what decides its kernel form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BestRoute<'a> {
    /// Destination prefix.
    pub prefix: IpNet,
    /// BGP next hops of the (possibly multipath) best route.
    pub next_hops: &'a [IpAddr],
    /// BGP LOCAL_PREF, mapped to the kernel metric by [`metric_from_local_pref`].
    pub local_pref: u32,
    /// Own block or peer route.
    pub origin: RouteOrigin,
}

/// The node's facts the decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeKernelContext<'a> {
    /// The IP pools with their kernel rules.
    pub pools: &'a [PoolKernelRule],
    /// The node's own subnets (the prefixes of its `ipv4Address` / `ipv6Address`): a
    /// `CrossSubnet` next hop inside one of them is reached without the tunnel.
    pub node_subnets: &'a [IpNet],
}

/// Calico's priority ↔ local preference mapping: `metric = 2^31 - 1 - local_pref`
/// (saturating at 0 for a local preference above `2^31 - 1`).
pub fn metric_from_local_pref(local_pref: u32) -> u32 {
    const MAX_PRIORITY: u32 = (1 << 31) - 1;
    MAX_PRIORITY.saturating_sub(local_pref)
}

/// Decides the kernel route for one best route, or `None` when tern must not install it.
///
/// - own blocks → `blackhole` where [`block_blackholed`] says so, else nothing;
/// - service ranges learned from peers → never;
/// - inside a pool tern does not program (`programClusterRoutes`) → never;
/// - VXLAN pools → never (the node agent programs them);
/// - IP-in-IP `Always` → `via <nh> dev tunl0 onlink`; `CrossSubnet` → the same unless the next hop
///   is inside one of the node's subnets, then plain; no encapsulation and outside all pools →
///   plain `via <nh>`;
/// - next hops of the other address family are dropped (tunl0 carries IPv4 only); duplicates are
///   merged; at most [`MAX_ECMP_PATHS`] paths (the lowest addresses) are kept;
/// - metric from [`metric_from_local_pref`].
pub fn kernel_route_for(
    route: &BestRoute<'_>,
    node: &NodeKernelContext<'_>,
) -> Option<KernelRoute> {
    let metric = metric_from_local_pref(route.local_pref);
    if route.origin == RouteOrigin::OwnBlock {
        if !block_blackholed(node.pools, &route.prefix) {
            return None;
        }
        return Some(KernelRoute {
            prefix: route.prefix,
            kind: KernelRouteKind::Blackhole,
            metric,
        });
    }
    if route.origin
        == (RouteOrigin::Peer {
            service_range: true,
        })
    {
        return None;
    }
    let encapsulation = match pool_for(node.pools, &route.prefix) {
        None => Encapsulation::None,
        Some(pool) if !pool.programmed_by_tern => return None,
        Some(pool) if pool.encapsulation == Encapsulation::Vxlan => return None,
        Some(pool) => pool.encapsulation,
    };
    let prefix_is_v4 = matches!(route.prefix, IpNet::V4(_));
    let mut hops: Vec<NextHop> = route
        .next_hops
        .iter()
        .filter(|gateway| gateway.is_ipv4() == prefix_is_v4 && !gateway.is_unspecified())
        .map(|&gateway| {
            let via_tunnel = match encapsulation {
                Encapsulation::None | Encapsulation::Vxlan => false,
                Encapsulation::IpIpAlways => prefix_is_v4,
                Encapsulation::IpIpCrossSubnet => {
                    prefix_is_v4
                        && !node
                            .node_subnets
                            .iter()
                            .any(|subnet| subnet.contains(&gateway))
                }
            };
            NextHop {
                gateway,
                via_tunnel,
            }
        })
        .collect();
    hops.sort();
    hops.dedup_by_key(|hop| hop.gateway);
    hops.truncate(MAX_ECMP_PATHS);
    if hops.is_empty() {
        return None;
    }
    Some(KernelRoute {
        prefix: route.prefix,
        kind: KernelRouteKind::Unicast(hops),
        metric,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn pool(cidr: &str, encapsulation: Encapsulation, programmed_by_tern: bool) -> PoolKernelRule {
        PoolKernelRule {
            cidr: net(cidr),
            encapsulation,
            programmed_by_tern,
        }
    }

    const NORMAL_LOCAL_PREF: u32 = (1 << 31) - 1 - 1024;

    fn pools() -> Vec<PoolKernelRule> {
        vec![
            pool("10.1.0.0/16", Encapsulation::IpIpAlways, true),
            pool("10.2.0.0/16", Encapsulation::IpIpCrossSubnet, true),
            pool("10.3.0.0/16", Encapsulation::None, true),
            pool("10.4.0.0/16", Encapsulation::Vxlan, true),
            pool("10.5.0.0/16", Encapsulation::IpIpAlways, false),
            pool("fd00:1::/48", Encapsulation::None, true),
        ]
    }

    fn decide(prefix: &str, hops: &[&str], origin: RouteOrigin) -> Option<KernelRoute> {
        let pools = pools();
        let subnets = [net("192.168.1.0/24")];
        let hops: Vec<IpAddr> = hops.iter().map(|h| ip(h)).collect();
        let route = BestRoute {
            prefix: net(prefix),
            next_hops: &hops,
            local_pref: NORMAL_LOCAL_PREF,
            origin,
        };
        kernel_route_for(
            &route,
            &NodeKernelContext {
                pools: &pools,
                node_subnets: &subnets,
            },
        )
    }

    const PEER: RouteOrigin = RouteOrigin::Peer {
        service_range: false,
    };

    fn unicast(prefix: &str, hops: &[(&str, bool)]) -> Option<KernelRoute> {
        Some(KernelRoute {
            prefix: net(prefix),
            kind: KernelRouteKind::Unicast(
                hops.iter()
                    .map(|&(g, t)| NextHop {
                        gateway: ip(g),
                        via_tunnel: t,
                    })
                    .collect(),
            ),
            metric: 1024,
        })
    }

    #[test]
    fn metric_is_calico_priority() {
        assert_eq!(metric_from_local_pref(NORMAL_LOCAL_PREF), 1024);
        assert_eq!(metric_from_local_pref(100), 2_147_483_547);
        assert_eq!(metric_from_local_pref(u32::MAX), 0);
    }

    #[test]
    fn ipip_always_goes_via_tunnel_even_inside_the_node_subnet() {
        assert_eq!(
            decide("10.1.5.0/26", &["192.168.1.7"], PEER),
            unicast("10.1.5.0/26", &[("192.168.1.7", true)])
        );
        assert_eq!(
            decide("10.1.5.0/26", &["172.16.0.9"], PEER),
            unicast("10.1.5.0/26", &[("172.16.0.9", true)])
        );
    }

    #[test]
    fn cross_subnet_tunnels_only_outside_the_node_subnet() {
        assert_eq!(
            decide("10.2.5.0/26", &["192.168.1.7"], PEER),
            unicast("10.2.5.0/26", &[("192.168.1.7", false)])
        );
        assert_eq!(
            decide("10.2.5.0/26", &["172.16.0.9"], PEER),
            unicast("10.2.5.0/26", &[("172.16.0.9", true)])
        );
        // Multipath decides per next hop.
        assert_eq!(
            decide("10.2.5.0/26", &["172.16.0.9", "192.168.1.7"], PEER),
            unicast(
                "10.2.5.0/26",
                &[("172.16.0.9", true), ("192.168.1.7", false)]
            )
        );
    }

    #[test]
    fn no_encapsulation_and_outside_all_pools_are_plain() {
        assert_eq!(
            decide("10.3.1.0/26", &["172.16.0.9"], PEER),
            unicast("10.3.1.0/26", &[("172.16.0.9", false)])
        );
        assert_eq!(
            decide("0.0.0.0/0", &["172.16.0.1"], PEER),
            unicast("0.0.0.0/0", &[("172.16.0.1", false)])
        );
        assert_eq!(
            decide("fd00:1:0:1::/64", &["fd00::2"], PEER),
            unicast("fd00:1:0:1::/64", &[("fd00::2", false)])
        );
    }

    #[test]
    fn vxlan_service_ranges_and_foreign_pools_are_never_installed() {
        assert_eq!(decide("10.4.1.0/26", &["172.16.0.9"], PEER), None);
        assert_eq!(decide("10.5.1.0/26", &["172.16.0.9"], PEER), None);
        assert_eq!(
            decide(
                "10.96.0.0/12",
                &["172.16.0.9"],
                RouteOrigin::Peer {
                    service_range: true
                }
            ),
            None
        );
    }

    #[test]
    fn own_blocks_are_blackholes() {
        let route = decide("10.1.7.0/26", &[], RouteOrigin::OwnBlock).unwrap();
        assert_eq!(route.kind, KernelRouteKind::Blackhole);
        assert_eq!(route.metric, 1024);
        let outside = decide("172.31.0.0/26", &[], RouteOrigin::OwnBlock).unwrap();
        assert_eq!(outside.kind, KernelRouteKind::Blackhole);
    }

    /// confd's `calico_kernel_programming` filter applies to the node's own blackholes too:
    /// none inside a pool whose cluster routes Felix programs, none in VXLAN pools; and its
    /// static protocol has no blackhole for a single-address block.
    #[test]
    fn no_blackholes_where_felix_programs_or_for_single_addresses() {
        assert_eq!(decide("10.5.1.0/26", &[], RouteOrigin::OwnBlock), None);
        assert_eq!(decide("10.4.1.0/26", &[], RouteOrigin::OwnBlock), None);
        assert_eq!(decide("10.1.7.1/32", &[], RouteOrigin::OwnBlock), None);
        assert_eq!(decide("fd00:1::5/128", &[], RouteOrigin::OwnBlock), None);
        assert!(decide("fd00:1::/122", &[], RouteOrigin::OwnBlock).is_some());
        let pools = pools();
        assert!(block_blackholed(&pools, &net("10.3.0.0/26")));
        assert!(!block_blackholed(&pools, &net("10.5.0.0/26")));
    }

    #[test]
    fn most_specific_pool_wins() {
        let pools = [
            pool("10.0.0.0/8", Encapsulation::Vxlan, true),
            pool("10.9.0.0/16", Encapsulation::None, true),
        ];
        let hops = [ip("172.16.0.9")];
        let route = BestRoute {
            prefix: net("10.9.1.0/26"),
            next_hops: &hops,
            local_pref: NORMAL_LOCAL_PREF,
            origin: PEER,
        };
        assert!(
            kernel_route_for(
                &route,
                &NodeKernelContext {
                    pools: &pools,
                    node_subnets: &[]
                }
            )
            .is_some()
        );
        let route = BestRoute {
            prefix: net("10.8.1.0/26"),
            ..route
        };
        assert!(
            kernel_route_for(
                &route,
                &NodeKernelContext {
                    pools: &pools,
                    node_subnets: &[]
                }
            )
            .is_none()
        );
    }

    #[test]
    fn ecmp_is_sorted_deduplicated_and_capped_at_16() {
        let hops: Vec<String> = (1..=20).rev().map(|i| format!("172.16.0.{i}")).collect();
        let mut refs: Vec<&str> = hops.iter().map(String::as_str).collect();
        refs.push("172.16.0.3");
        let route = decide("10.3.1.0/26", &refs, PEER).unwrap();
        let KernelRouteKind::Unicast(hops) = route.kind else {
            panic!("not unicast")
        };
        assert_eq!(hops.len(), MAX_ECMP_PATHS);
        assert_eq!(hops[0].gateway, ip("172.16.0.1"));
        assert!(hops.windows(2).all(|w| w[0].gateway < w[1].gateway));
    }

    #[test]
    fn other_family_next_hops_are_dropped_and_ipv6_never_tunnels() {
        assert_eq!(decide("10.3.1.0/26", &["fd00::2"], PEER), None);
        assert_eq!(
            decide("10.3.1.0/26", &["fd00::2", "172.16.0.9"], PEER),
            unicast("10.3.1.0/26", &[("172.16.0.9", false)])
        );
        let pools = [pool("fd00:2::/48", Encapsulation::IpIpAlways, true)];
        let hops = [ip("fd00::2")];
        let route = BestRoute {
            prefix: net("fd00:2:0:1::/64"),
            next_hops: &hops,
            local_pref: NORMAL_LOCAL_PREF,
            origin: PEER,
        };
        let decided = kernel_route_for(
            &route,
            &NodeKernelContext {
                pools: &pools,
                node_subnets: &[],
            },
        )
        .unwrap();
        assert_eq!(
            decided.kind,
            KernelRouteKind::Unicast(vec![NextHop {
                gateway: ip("fd00::2"),
                via_tunnel: false
            }])
        );
    }
}
