//! Route policy as typed rules: BGPFilter rules ([`filter`]), then Calico's default export
//! pipeline ([`export`]) and import default ([`import`]). No filter language, no interpreter.

pub mod export;
pub mod filter;
pub mod import;

use ipnet::IpNet;

use super::attrs::{Community as StandardCommunity, LargeCommunity, RouteAttrs};

/// `2^31 - 1`: the pivot of Calico's priority ↔ LOCAL_PREF mapping.
pub const PRIORITY_PIVOT: u32 = (1 << 31) - 1;

/// Calico's default `ipv4NormalRoutePriority` / `ipv6NormalRoutePriority`.
pub const DEFAULT_NORMAL_PRIORITY: u32 = 1024;

/// Route priority (kernel metric) → LOCAL_PREF: `local_pref = 2^31 - 1 - metric`
/// (calico-behaviour.md §3). Metrics above the pivot map to 0.
pub fn local_pref_from_priority(metric: u32) -> u32 {
    PRIORITY_PIVOT.saturating_sub(metric)
}

/// LOCAL_PREF → route priority (kernel metric): `metric = 2^31 - 1 - local_pref`.
///
/// Only LOCAL_PREFs at or above `2^30` carry a priority (Calico nodes advertise
/// `2^31 - 1 - 1024`); an ordinary LOCAL_PREF such as a ToR's 100 is not a priority and maps to
/// `normal`. This band is tern's decision where Calico's documentation is silent.
pub fn priority_from_local_pref(local_pref: Option<u32>, normal: u32) -> u32 {
    match local_pref {
        Some(lp) if lp >= 1 << 30 => PRIORITY_PIVOT.saturating_sub(lp),
        _ => normal,
    }
}

pub use crate::model::Community;
pub use crate::plan::{PoolPolicy, PrefixCommunities};

/// Adds a Calico community (standard or large) to `attrs`.
pub fn add_community(attrs: &mut RouteAttrs, community: Community) {
    match community {
        Community::Standard(asn, value) => attrs.add_community(StandardCommunity::new(asn, value)),
        Community::Large(global_admin, local_data_1, local_data_2) => {
            attrs.add_large_community(LargeCommunity {
                global_admin,
                local_data_1,
                local_data_2,
            })
        }
    }
}

/// Everything Calico's export/import defaults need to know about the cluster and this node.
///
/// Built by the daemon from the plan; replaced as a whole on a plan change
/// ([`crate::rib::Rib::set_policy`] re-evaluates the exports without resetting sessions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyContext {
    /// Every IP pool (both families).
    pub pools: Vec<PoolPolicy>,
    /// This node's confirmed host block affinities (the aggregation step).
    pub own_blocks: Vec<IpNet>,
    /// Service ranges advertised from this node (`serviceClusterIPs`, external and LB ranges).
    pub service_ranges: Vec<IpNet>,
    /// LoadBalancer and external IP ranges (a route reflector passes on anything inside them).
    pub lb_external_ranges: Vec<IpNet>,
    /// Whether this node is a route reflector (has a cluster id).
    pub is_route_reflector: bool,
    /// Interface globs whose routes are not exported to iBGP peers: `*.cali`, `*.calico`, and
    /// `tunl0` when Felix programs IP-in-IP routes (the plan decides).
    pub ibgp_reject_interfaces: Vec<String>,
    /// Interface globs whose routes are exported to nobody (`bpf*.cali`).
    pub reject_interfaces: Vec<String>,
    /// `prefixAdvertisements`, in order.
    pub prefix_communities: Vec<PrefixCommunities>,
    /// `ipv4NormalRoutePriority`.
    pub normal_priority_v4: u32,
    /// `ipv6NormalRoutePriority`.
    pub normal_priority_v6: u32,
}

impl Default for PolicyContext {
    fn default() -> Self {
        Self {
            pools: Vec::new(),
            own_blocks: Vec::new(),
            service_ranges: Vec::new(),
            lb_external_ranges: Vec::new(),
            is_route_reflector: false,
            ibgp_reject_interfaces: vec!["*.cali".into(), "*.calico".into()],
            reject_interfaces: vec!["bpf*.cali".into()],
            prefix_communities: Vec::new(),
            normal_priority_v4: DEFAULT_NORMAL_PRIORITY,
            normal_priority_v6: DEFAULT_NORMAL_PRIORITY,
        }
    }
}

impl From<&crate::plan::RoutePolicy> for PolicyContext {
    /// The export/import context of a plan: service ranges are the cluster, external and
    /// LoadBalancer ranges (none on a node excluded from service advertisement, as confd then
    /// writes no static routes); a reflector's allow-list is the external and LoadBalancer ones.
    fn from(p: &crate::plan::RoutePolicy) -> Self {
        let lb_external: Vec<IpNet> = p
            .service_external_ips
            .iter()
            .chain(&p.service_load_balancer_ips)
            .copied()
            .collect();
        Self {
            pools: p.pools.clone(),
            own_blocks: p.own_blocks.clone(),
            service_ranges: if p.services_excluded {
                Vec::new()
            } else {
                p.service_cluster_ips
                    .iter()
                    .chain(&lb_external)
                    .copied()
                    .collect()
            },
            lb_external_ranges: lb_external,
            is_route_reflector: p.route_reflector,
            ibgp_reject_interfaces: p.ibgp_reject_interfaces.clone(),
            reject_interfaces: p.reject_interfaces.clone(),
            prefix_communities: p.prefix_advertisements.clone(),
            normal_priority_v4: p.ipv4_normal_route_priority,
            normal_priority_v6: p.ipv6_normal_route_priority,
        }
    }
}

impl PolicyContext {
    /// The normal route priority for `prefix`'s family.
    pub fn normal_priority(&self, prefix: &IpNet) -> u32 {
        match prefix {
            IpNet::V4(_) => self.normal_priority_v4,
            IpNet::V6(_) => self.normal_priority_v6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_maps_to_local_pref_and_back() {
        assert_eq!(local_pref_from_priority(1024), 2_147_482_623);
        assert_eq!(priority_from_local_pref(Some(2_147_482_623), 1024), 1024);
        assert_eq!(
            priority_from_local_pref(Some(local_pref_from_priority(512)), 1024),
            512
        );
        // An ordinary LOCAL_PREF is no priority.
        assert_eq!(priority_from_local_pref(Some(100), 1024), 1024);
        assert_eq!(priority_from_local_pref(None, 1024), 1024);
        // Elevated = lower metric = higher LOCAL_PREF.
        assert!(local_pref_from_priority(512) > local_pref_from_priority(1024));
    }
}
