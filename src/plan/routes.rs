//! Originated routes, per-pool kernel rules and export-pipeline inputs (confd
//! `processIPPools`, `processCommunityRules`, `bird_aggr`/`bird_ipam` templates).

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use super::peers::NodeInfo;
use super::{
    DEFAULT_NORMAL_PRIORITY, OriginKind, OriginatedRoute, Peering, PoolPolicy, PrefixCommunities,
    RoutePolicy, StaticRoute,
};
use super::{Encapsulation, PoolKernelRule};
use crate::model::{
    AffinityState, BgpConfigurationSpec, CidrBlock, Cluster, Community, EXCLUDE_FROM_LB_LABEL,
    EncapMode, IpPoolSpec, ProgramClusterRoutes, ServiceLoadBalancerAggregation,
};

/// tern's default for `BGPConfiguration.programClusterRoutes`: Calico's v3.33+ default, which
/// pairs with Felix's default `EnabledIPIPOnly`.
pub const DEFAULT_BGP_PROGRAM_CLUSTER_ROUTES: ProgramClusterRoutes =
    ProgramClusterRoutes::EnabledNoEncapOnly;
/// Felix's default for `FelixConfiguration.programClusterRoutes`.
pub const DEFAULT_FELIX_PROGRAM_CLUSTER_ROUTES: ProgramClusterRoutes =
    ProgramClusterRoutes::EnabledIPIPOnly;

pub(super) struct Routes {
    pub originated: Vec<OriginatedRoute>,
    pub static_routes: Vec<StaticRoute>,
    pub pool_kernel_rules: Vec<PoolKernelRule>,
    pub policy: RoutePolicy,
}

/// A pool's encapsulation.
pub fn encapsulation(pool: &IpPoolSpec) -> Encapsulation {
    match (pool.vxlan_mode, pool.ipip_mode) {
        (EncapMode::Always | EncapMode::CrossSubnet, _) => Encapsulation::Vxlan,
        (_, EncapMode::Always) => Encapsulation::IpIpAlways,
        (_, EncapMode::CrossSubnet) => Encapsulation::IpIpCrossSubnet,
        _ => Encapsulation::None,
    }
}

/// Whether an owner with `policy` programs the cluster routes of a pool with `encap`.
pub fn programs(policy: ProgramClusterRoutes, encap: Encapsulation) -> bool {
    match encap {
        Encapsulation::Vxlan => false,
        Encapsulation::IpIpAlways | Encapsulation::IpIpCrossSubnet => policy.covers_ipip(),
        Encapsulation::None => policy.covers_no_encap(),
    }
}

fn is_single_address(net: &IpNet) -> bool {
    net.prefix_len() == net.max_prefix_len()
}

fn cidrs(blocks: &[CidrBlock]) -> Vec<IpNet> {
    let set: BTreeSet<IpNet> = blocks
        .iter()
        .filter_map(|b| b.cidr)
        .map(|c| c.trunc())
        .collect();
    set.into_iter().collect()
}

fn prefix_communities(
    cfg: &BgpConfigurationSpec,
    owner: &str,
    warnings: &mut Vec<String>,
) -> Vec<PrefixCommunities> {
    let mut out = Vec::new();
    for adv in &cfg.prefix_advertisements {
        let mut set = BTreeSet::new();
        for c in &adv.communities {
            if let Ok(value) = c.parse::<Community>() {
                set.insert(value);
            } else if let Some(named) = cfg.communities.iter().find(|n| &n.name == c) {
                set.insert(named.value);
            } else {
                warnings.push(format!(
                    "BGPConfiguration {owner:?}: prefixAdvertisements for {}: community {c:?} is neither a value nor a name in communities; ignored",
                    adv.cidr
                ));
            }
        }
        if !set.is_empty() {
            out.push(PrefixCommunities {
                cidr: adv.cidr.trunc(),
                communities: set.into_iter().collect(),
            });
        }
    }
    out
}

pub(super) fn routes(
    cluster: &Cluster,
    implicit_pools: &[super::default_pools::ImplicitPool],
    me: &NodeInfo,
    peerings: &[Peering],
    warnings: &mut Vec<String>,
) -> Routes {
    let default_cfg = BgpConfigurationSpec::default();
    let global = cluster.global_bgp_configuration().unwrap_or(&default_cfg);
    let node_cfg = cluster.node_bgp_configuration(&me.name);

    // Blocks: confirmed (or implicitly confirmed) host affinities of this node, single
    // addresses included (confd's `calico_aggr` lists them; only its blackholes skip them).
    let own_blocks: BTreeSet<IpNet> = cluster
        .block_affinities
        .values()
        .map(|a| &a.spec)
        .filter(|a| a.node == me.name && a.state == AffinityState::Confirmed && !a.deleted.0)
        .filter(|a| {
            a.affinity_type
                .as_deref()
                .is_none_or(|t| t.is_empty() || t == "host")
        })
        .map(|a| a.cidr.trunc())
        .collect();

    let cluster_ips = cidrs(&global.service_cluster_ips);
    let external_ips = cidrs(&global.service_external_ips);
    let lb_ips = cidrs(&global.service_load_balancer_ips);
    let excluded = me
        .labels
        .get(EXCLUDE_FROM_LB_LABEL)
        .is_some_and(|v| v == "true");
    let mut originated: BTreeMap<IpNet, OriginatedRoute> = BTreeMap::new();
    if !excluded {
        let aggregate_lb = global.service_load_balancer_aggregation.unwrap_or_default()
            == ServiceLoadBalancerAggregation::Enabled;
        let services = cluster_ips
            .iter()
            .map(|c| (*c, OriginKind::ServiceClusterIp))
            .chain(
                external_ips
                    .iter()
                    .filter(|c| !is_single_address(c))
                    .map(|c| (*c, OriginKind::ServiceExternalIp)),
            )
            .chain(
                lb_ips
                    .iter()
                    .filter(|c| aggregate_lb && !is_single_address(c))
                    .map(|c| (*c, OriginKind::ServiceLoadBalancerIp)),
            );
        let per_service = super::services::routes(
            cluster,
            &me.name,
            &super::services::Ranges {
                cluster: &cluster_ips,
                external: &external_ips,
                load_balancer: &lb_ips,
                aggregation: global.service_load_balancer_aggregation.unwrap_or_default(),
            },
        );
        let per_service = per_service
            .into_iter()
            .map(|prefix| (prefix, OriginKind::Service));
        for (prefix, kind) in services.chain(per_service) {
            originated.entry(prefix).or_insert(OriginatedRoute {
                prefix,
                kind,
                blackhole: false,
            });
        }
    }

    let static_routes: BTreeSet<StaticRoute> = peerings
        .iter()
        .filter_map(|p| {
            p.reachable_by.map(|via| StaticRoute {
                prefix: IpNet::from(p.address),
                via,
            })
        })
        .collect();

    // Pools.
    let bgp_policy = global
        .program_cluster_routes
        .unwrap_or(DEFAULT_BGP_PROGRAM_CLUSTER_ROUTES);
    // Felix reads `node.<name>` over `default`.
    let felix_policy = [format!("node.{}", me.name), "default".to_string()]
        .iter()
        .find_map(|n| {
            cluster
                .felix_configurations
                .get(n)
                .and_then(|f| f.spec.program_cluster_routes)
        })
        .unwrap_or(DEFAULT_FELIX_PROGRAM_CLUSTER_ROUTES);
    let mut pools: Vec<(&String, &IpPoolSpec)> = cluster
        .ip_pools
        .iter()
        .map(|(n, p)| (n, &p.spec))
        .chain(implicit_pools.iter().map(|p| (&p.name, &p.spec)))
        .collect();
    pools.sort_by_key(|(name, p)| (p.cidr.trunc(), (*name).clone()));
    let mut pool_kernel_rules = Vec::new();
    let mut pool_policies = Vec::new();
    for (name, pool) in &pools {
        let encap = encapsulation(pool);
        let cidr = pool.cidr.trunc();
        let tern = programs(bgp_policy, encap);
        let felix = encap == Encapsulation::Vxlan || programs(felix_policy, encap);
        if tern && felix {
            warnings.push(format!(
                "IPPool {name:?} ({cidr}, {encap:?}): both Felix (programClusterRoutes {felix_policy:?}) and tern ({bgp_policy:?}) program its routes"
            ));
        } else if !tern && !felix {
            warnings.push(format!(
                "IPPool {name:?} ({cidr}, {encap:?}): neither Felix (programClusterRoutes {felix_policy:?}) nor tern ({bgp_policy:?}) programs its routes"
            ));
        }
        if tern
            && encap == Encapsulation::IpIpCrossSubnet
            && cidr.addr().is_ipv4()
            && me.ipv4.is_none()
        {
            warnings.push(format!(
                "IPPool {name:?}: CrossSubnet needs the node's IPv4 subnet, which is unknown"
            ));
        }
        pool_kernel_rules.push(PoolKernelRule {
            cidr,
            encapsulation: encap,
            programmed_by_tern: tern,
        });
        pool_policies.push(PoolPolicy {
            cidr,
            disable_bgp_export: pool.disable_bgp_export,
            encapsulation: encap,
        });
    }

    // Blocks win over a service range of the same prefix. Their blackholes follow confd's
    // static protocol and `calico_kernel_programming` filter (`block_blackholed`).
    for &prefix in &own_blocks {
        originated.insert(
            prefix,
            OriginatedRoute {
                prefix,
                kind: OriginKind::Block,
                blackhole: super::block_blackholed(&pool_kernel_rules, &prefix),
            },
        );
    }

    let mut ibgp_reject_interfaces = vec!["*.cali".to_string(), "*.calico".to_string()];
    if !bgp_policy.covers_ipip() {
        ibgp_reject_interfaces.push("tunl0".into());
    }
    let mut ignored_interfaces = global.ignored_interfaces.clone();
    ignored_interfaces.extend(["cali*".to_string(), "kube-ipvs*".to_string()]);

    // prefixAdvertisements: the node's own BGPConfiguration replaces the global list.
    let prefix_advertisements = match node_cfg {
        Some(cfg) if !cfg.prefix_advertisements.is_empty() => {
            prefix_communities(cfg, &format!("node.{}", me.name), warnings)
        }
        _ => prefix_communities(global, "default", warnings),
    };

    let policy = RoutePolicy {
        pools: pool_policies,
        own_blocks: own_blocks.into_iter().collect(),
        service_cluster_ips: cluster_ips,
        service_external_ips: external_ips,
        service_load_balancer_ips: lb_ips,
        services_excluded: excluded,
        route_reflector: me.cluster_id.is_some(),
        prefix_advertisements,
        ipv4_normal_route_priority: global
            .ipv4_normal_route_priority
            .unwrap_or(DEFAULT_NORMAL_PRIORITY),
        ipv6_normal_route_priority: global
            .ipv6_normal_route_priority
            .unwrap_or(DEFAULT_NORMAL_PRIORITY),
        ignored_interfaces,
        ibgp_reject_interfaces,
        reject_interfaces: vec!["bpf*.cali".into()],
        own_subnets: [me.ipv4, me.ipv6]
            .into_iter()
            .flatten()
            .map(|a| a.subnet())
            .collect(),
    };
    Routes {
        originated: originated.into_values().collect(),
        static_routes: static_routes.into_iter().collect(),
        pool_kernel_rules,
        policy,
    }
}
