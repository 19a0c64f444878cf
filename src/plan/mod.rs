//! Resources + node name → the node's desired BGP behaviour (peers, originated routes, policy). Pure.
//!
//! [`compute`] reproduces what confd renders into BIRD's configuration for one node
//! (`confd/pkg/backends/calico/bgp_processor.go`, `client.go`): router id, local AS, every
//! peering with its options and BIRD-style name, the routes the node originates, the per-pool
//! kernel rules and the inputs of Calico's export pipeline. [`PlanDiff`] compares two plans so
//! that the daemon resets only the sessions whose parameters changed.

pub mod default_pools;
mod diff;
mod display;
pub mod filter;
mod peers;
mod pools;
mod routes;
mod services;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{Cluster, Community, NextHopMode, SecretKeyRef};

pub use diff::{PeerChange, PlanDiff};
pub use filter::{CompiledFilter, FilterError};
pub use pools::{Encapsulation, PoolKernelRule, block_blackholed, pool_for};

/// Default AS when neither the node nor the global BGPConfiguration sets one.
pub const DEFAULT_AS: u32 = 64512;
/// Default BGP port.
pub const DEFAULT_PORT: u16 = 179;
/// TTL used for every non-GTSM session (BIRD's `multihop;`).
pub const MULTIHOP_TTL: u8 = 64;
/// Default normal route priority (kernel metric).
pub const DEFAULT_NORMAL_PRIORITY: u32 = 1024;
/// Longest TCP-MD5 key Linux accepts (`TCP_MD5SIG_MAXKEYLEN`).
pub const MAX_MD5_KEY_LEN: usize = 80;

/// Where the router id comes from (`CALICO_ROUTER_ID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouterIdSource {
    /// The node's IPv4 address (default).
    #[default]
    NodeIpv4,
    /// Derived from SHA-256 of the node name (`hash`).
    Hash,
    /// A literal address.
    Literal(Ipv4Addr),
}

impl std::str::FromStr for RouterIdSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" => Ok(Self::NodeIpv4),
            "hash" => Ok(Self::Hash),
            other => other.parse().map(Self::Literal).map_err(|_| {
                format!("invalid router id {other:?} (expected an IPv4 address or \"hash\")")
            }),
        }
    }
}

/// Inputs that do not come from Calico resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// How the router id is chosen.
    pub router_id: RouterIdSource,
    /// Namespace of the Secrets that `secretKeyRef`s point to.
    pub secret_namespace: String,
    /// Listen port override (tern settings `bgp.listen_port`).
    pub listen_port: Option<u16>,
    /// Listen address override (tern settings `bgp.listen_addresses`); empty = from `bindMode`.
    pub listen_addresses: Vec<IpAddr>,
    /// calico-node's default-pool variables (`CALICO_IPV4POOL_CIDR`...): the pools used when
    /// the datastore has none of a family.
    pub default_pools: default_pools::DefaultPoolEnv,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            router_id: RouterIdSource::NodeIpv4,
            secret_namespace: "kube-system".into(),
            listen_port: None,
            listen_addresses: Vec::new(),
            default_pools: default_pools::DefaultPoolEnv::default(),
        }
    }
}

/// Why no plan can be made for the node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The node has no Node resource.
    #[error("Node {0:?} not found in the datastore")]
    UnknownNode(String),
    /// No router id can be chosen.
    #[error(
        "Node {0:?} has no IPv4 address (spec.bgp.ipv4Address); set CALICO_ROUTER_ID to an address or \"hash\""
    )]
    NoRouterId(String),
    /// A BGPFilter does not compile.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// A default-pool variable is invalid (calico-node would not start).
    #[error("{0}")]
    DefaultPools(String),
}

/// The router id derived from a node name: the first 4 bytes of SHA-256(name), first octet
/// lowered by 32 when above 223 (confd `HashToIPv4`).
pub fn hashed_router_id(node_name: &str) -> Ipv4Addr {
    let digest = Sha256::digest(node_name.as_bytes());
    let first = if digest[0] > 223 {
        digest[0] - 32
    } else {
        digest[0]
    };
    Ipv4Addr::new(first, digest[1], digest[2], digest[3])
}

/// Kind of peering, as in BIRD's protocol name prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PeeringKind {
    /// Node-to-node mesh (`Mesh_`).
    Mesh,
    /// A global BGPPeer (`Global_`).
    Global,
    /// A node-specific BGPPeer, or an automatic reverse peering (`Node_`).
    Node,
}

/// TTL handling of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TtlMode {
    /// GTSM (RFC 5082): send TTL 255, accept only TTL ≥ 256 - hops.
    Security {
        /// Allowed hops.
        hops: u8,
    },
    /// Multihop: send with this TTL, accept any.
    Multihop {
        /// TTL sent.
        ttl: u8,
    },
}

/// Whether the password a peering references could be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state", content = "error")]
pub enum SecretStatus {
    /// Found; the value is in [`PeerPassword::value`].
    Resolved,
    /// Missing or unusable: the session must not start (fail closed).
    Unavailable(String),
}

/// A password value. Never serialized, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretValue(pub Vec<u8>);

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A TCP-MD5 password reference with its resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerPassword {
    /// Namespace of the Secret.
    pub namespace: String,
    /// The Secret and key.
    pub secret: SecretKeyRef,
    /// Resolution status.
    pub status: SecretStatus,
    /// The password (only when resolved). Compared by [`PlanDiff`] so a rotation resets the session.
    #[serde(skip)]
    pub value: Option<SecretValue>,
}

impl std::fmt::Display for PeerPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<secret {}/{}:{}>",
            self.namespace, self.secret.name, self.secret.key
        )?;
        if let SecretStatus::Unavailable(e) = &self.status {
            write!(f, " UNAVAILABLE: {e}")?;
        }
        Ok(())
    }
}

/// Next-hop handling towards a peer.
pub type NextHop = NextHopMode;

/// One BGP session the node should have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Peering {
    /// BIRD-style protocol name (`Mesh_10_0_0_2`, `Global_10_0_0_1_port_1790`, `Node_...`).
    pub name: String,
    /// Mesh, global or node peering.
    pub kind: PeeringKind,
    /// Peer address.
    pub address: IpAddr,
    /// Peer port.
    pub port: u16,
    /// Peer AS.
    pub peer_as: u32,
    /// Local AS on this session (`localASNumber` or the node's AS).
    pub local_as: u32,
    /// Wait for the peer to connect.
    pub passive: bool,
    /// Session source address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_address: Option<IpAddr>,
    /// TCP-MD5 password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<PeerPassword>,
    /// GTSM or multihop.
    pub ttl: TtlMode,
    /// The peer is a route-reflector client of this node.
    pub route_reflector_client: bool,
    /// Cluster id used towards RR clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<Ipv4Addr>,
    /// Next-hop mode.
    pub next_hop: NextHop,
    /// Accept the local AS this many times in AS_PATH.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_local_as: Option<u32>,
    /// Graceful-restart time (seconds), when set by the resources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graceful_restart_time: Option<u32>,
    /// Keepalive time (seconds), when set by the resources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalive_time: Option<u32>,
    /// BGPFilter names applied on import, in order (explicit peers only).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub import_filters: Vec<String>,
    /// BGPFilter names applied on export, in order (explicit peers only).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub export_filters: Vec<String>,
    /// Gateway of a static host route to the peer (`reachableBy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reachable_by: Option<IpAddr>,
    /// The Calico node at the other end, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_node: Option<String>,
    /// The BGPPeer resource this peering comes from (none for mesh).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_resource: Option<String>,
}

impl Peering {
    /// Whether the session may be started (a referenced password must be available).
    pub fn startable(&self) -> bool {
        !matches!(
            &self.password,
            Some(PeerPassword {
                status: SecretStatus::Unavailable(_),
                ..
            })
        )
    }

    /// iBGP when the peer AS equals this session's local AS.
    pub fn is_ibgp(&self) -> bool {
        self.peer_as == self.local_as
    }

    /// The parameters whose change requires the session to be reset.
    pub fn session_parameters_equal(&self, other: &Peering) -> bool {
        self.address == other.address
            && self.port == other.port
            && self.peer_as == other.peer_as
            && self.local_as == other.local_as
            && self.passive == other.passive
            && self.source_address == other.source_address
            && self.password.as_ref().map(|p| (&p.status, &p.value))
                == other.password.as_ref().map(|p| (&p.status, &p.value))
            && self.ttl == other.ttl
            && self.route_reflector_client == other.route_reflector_client
            && self.cluster_id == other.cluster_id
            && self.graceful_restart_time == other.graceful_restart_time
            && self.keepalive_time == other.keepalive_time
    }
}

/// Why the node originates a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OriginKind {
    /// A confirmed IPAM block of this node: advertised, and blackholed in the kernel where
    /// [`OriginatedRoute::blackhole`] says so.
    Block,
    /// `serviceClusterIPs`: advertised, never installed.
    ServiceClusterIp,
    /// `serviceExternalIPs` range: advertised, never installed.
    ServiceExternalIp,
    /// `serviceLoadBalancerIPs` range: advertised, never installed.
    ServiceLoadBalancerIp,
    /// One address (/32, /128) of a Kubernetes Service this node advertises (confd's route
    /// generator: `externalTrafficPolicy: Local` with a ready local endpoint, ...): advertised,
    /// never installed.
    Service,
}

/// A route the node originates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OriginatedRoute {
    /// The prefix.
    pub prefix: IpNet,
    /// Why.
    pub kind: OriginKind,
    /// Installed as `blackhole <prefix>` (blocks only, and not single-address blocks nor blocks
    /// inside a pool whose cluster routes the node agent programs: confd's
    /// `calico_kernel_programming`).
    pub blackhole: bool,
}

/// An implicit pool: calico-node's default pool, not in the datastore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImplicitPoolInfo {
    /// calico-node's name for it (`default-ipv4-ippool`).
    pub name: String,
    /// The pool.
    pub cidr: IpNet,
    /// Where it comes from.
    pub source: String,
}

/// A static host route to a peer (`reachableBy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaticRoute {
    /// `peer/32` or `peer/128`.
    pub prefix: IpNet,
    /// Gateway.
    pub via: IpAddr,
}

/// A pool as the export pipeline sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolPolicy {
    /// Pool CIDR.
    pub cidr: IpNet,
    /// Routes inside are never exported.
    pub disable_bgp_export: bool,
    /// Encapsulation.
    pub encapsulation: Encapsulation,
}

/// Communities added to routes inside a CIDR (`prefixAdvertisements`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrefixCommunities {
    /// The CIDR.
    pub cidr: IpNet,
    /// Communities, sorted.
    pub communities: Vec<Community>,
}

/// Everything the RIB's export/import pipeline needs besides the per-peer filters
/// (calico-behaviour.md §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutePolicy {
    /// Every IP pool (sorted by CIDR).
    pub pools: Vec<PoolPolicy>,
    /// This node's confirmed blocks (aggregation: accept the block, reject more-specifics
    /// unless their priority is elevated).
    pub own_blocks: Vec<IpNet>,
    /// Configured cluster service ranges (never installed from peers).
    pub service_cluster_ips: Vec<IpNet>,
    /// Configured external service ranges, single addresses included.
    pub service_external_ips: Vec<IpNet>,
    /// Configured LoadBalancer ranges, single addresses included.
    pub service_load_balancer_ips: Vec<IpNet>,
    /// The node carries `node.kubernetes.io/exclude-from-external-load-balancers: "true"`: it
    /// neither originates nor exports service ranges (the ranges still are never installed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub services_excluded: bool,
    /// Route reflectors accept routes inside LB and external ranges.
    pub route_reflector: bool,
    /// Communities per CIDR.
    pub prefix_advertisements: Vec<PrefixCommunities>,
    /// Normal IPv4 priority; below it a route is "elevated".
    pub ipv4_normal_route_priority: u32,
    /// Normal IPv6 priority.
    pub ipv6_normal_route_priority: u32,
    /// Interface globs whose routes are not learned (user list + `cali*`, `kube-ipvs*`).
    pub ignored_interfaces: Vec<String>,
    /// Interface globs rejected towards iBGP peers (`*.cali`, `*.calico`, and `tunl0` when
    /// Felix programs IPIP routes).
    pub ibgp_reject_interfaces: Vec<String>,
    /// Interface globs rejected towards every peer (`bpf*.cali`).
    pub reject_interfaces: Vec<String>,
    /// The node's own subnets (IPv4 one decides CrossSubnet).
    pub own_subnets: Vec<IpNet>,
}

/// Where the BGP listener binds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenPlan {
    /// Port (node BGPConfiguration, else global, else 179).
    pub port: u16,
    /// Addresses to bind (`bindMode: NodeIP`); empty = all addresses.
    pub addresses: Vec<IpAddr>,
}

/// The desired BGP state of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Node name.
    pub node: String,
    /// Router id.
    pub router_id: Ipv4Addr,
    /// Local AS.
    pub local_as: u32,
    /// Node IPv4 address with subnet prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<IpNet>,
    /// Node IPv6 address with subnet prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<IpNet>,
    /// Route-reflector cluster id when the node is a reflector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_reflector_cluster_id: Option<Ipv4Addr>,
    /// Listener.
    pub listen: ListenPlan,
    /// Sessions, sorted by name.
    pub peerings: Vec<Peering>,
    /// Originated routes, sorted.
    pub originated: Vec<OriginatedRoute>,
    /// Static routes to peers.
    pub static_routes: Vec<StaticRoute>,
    /// Per-pool kernel rules, sorted by CIDR.
    pub pool_kernel_rules: Vec<PoolKernelRule>,
    /// Pools not in the datastore, used as calico-node would have created them at install.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub implicit_pools: Vec<ImplicitPoolInfo>,
    /// Export/import pipeline inputs.
    pub policy: RoutePolicy,
    /// Compiled BGPFilters used by peerings, by name.
    pub filters: BTreeMap<String, CompiledFilter>,
    /// Things worth a look (configuration conflicts, skipped peers).
    pub warnings: Vec<String>,
}

impl Plan {
    /// A peering by name.
    pub fn peering(&self, name: &str) -> Option<&Peering> {
        self.peerings.iter().find(|p| p.name == name)
    }

    /// The compiled BGPFilters of a peering for one direction, in the peering's order (feed to
    /// [`filter::evaluate_chain`]). Mesh peerings have none.
    pub fn filters_for<'a>(
        &'a self,
        peering: &'a Peering,
        direction: filter::Direction,
    ) -> impl Iterator<Item = &'a CompiledFilter> + 'a {
        let names = match direction {
            filter::Direction::Import => &peering.import_filters,
            filter::Direction::Export => &peering.export_filters,
        };
        names.iter().filter_map(|n| self.filters.get(n))
    }
}

impl RoutePolicy {
    /// The normal route priority (kernel metric) for a family; below it a route is elevated.
    pub fn normal_priority(&self, ipv6: bool) -> u32 {
        if ipv6 {
            self.ipv6_normal_route_priority
        } else {
            self.ipv4_normal_route_priority
        }
    }

    /// The pool containing `prefix`, if any (most specific first).
    pub fn pool_of(&self, prefix: &IpNet) -> Option<&PoolPolicy> {
        self.pools
            .iter()
            .filter(|p| {
                p.cidr.contains(&prefix.network()) && p.cidr.prefix_len() <= prefix.prefix_len()
            })
            .max_by_key(|p| p.cidr.prefix_len())
    }
}

/// Computes the plan for `node_name`. Pure: the same inputs always give the same plan.
pub fn compute(
    cluster: &Cluster,
    node_name: &str,
    options: &PlanOptions,
) -> Result<Plan, PlanError> {
    let view = peers::ClusterView::new(cluster);
    let me = view
        .node(node_name)
        .ok_or_else(|| PlanError::UnknownNode(node_name.to_string()))?;
    let router_id = match options.router_id {
        RouterIdSource::Literal(ip) => ip,
        RouterIdSource::Hash => hashed_router_id(node_name),
        RouterIdSource::NodeIpv4 => match me.ipv4.map(|a| a.ip()) {
            Some(IpAddr::V4(ip)) => ip,
            _ => return Err(PlanError::NoRouterId(node_name.to_string())),
        },
    };
    // Resources the loader skipped, and unknown fields and kinds it ignored, are named in every
    // plan, so the daemon logs them as warnings and `tern plan` shows them.
    let mut warnings: Vec<String> = cluster
        .problems
        .iter()
        .map(ToString::to_string)
        .chain(cluster.unknown.iter().cloned())
        .collect();
    let peerings = peers::peerings(&view, &me, cluster, options, &mut warnings);

    let mut filters = BTreeMap::new();
    for p in &peerings {
        for name in p.import_filters.iter().chain(&p.export_filters) {
            if !filters.contains_key(name)
                && let Some(f) = cluster.bgp_filters.get(name)
            {
                filters.insert(name.clone(), filter::compile(f)?);
            }
        }
    }
    // Every BGPFilter must compile, used or not: a bad edit is rejected before it is referenced.
    for f in cluster.bgp_filters.values() {
        filter::compile(f)?;
    }

    let global = cluster.global_bgp_configuration();
    let node_cfg = cluster.node_bgp_configuration(node_name);
    let port = options
        .listen_port
        .filter(|&p| p != 0)
        .or(node_cfg.and_then(|c| c.listen_port).filter(|&p| p != 0))
        .or(global.and_then(|c| c.listen_port).filter(|&p| p != 0))
        .unwrap_or(DEFAULT_PORT);
    let bind_node_ip = global.and_then(|c| c.bind_mode) == Some(crate::model::BindMode::NodeIP);
    let addresses = if !options.listen_addresses.is_empty() {
        options.listen_addresses.clone()
    } else if bind_node_ip {
        [me.ipv4, me.ipv6]
            .into_iter()
            .flatten()
            .map(|a| a.ip())
            .collect()
    } else {
        Vec::new()
    };

    let existing: Vec<IpNet> = cluster.ip_pools.values().map(|p| p.spec.cidr).collect();
    let node_addresses: Vec<IpAddr> = [me.ipv4, me.ipv6]
        .into_iter()
        .flatten()
        .map(|a| a.ip())
        .collect();
    let (implicit, unknowable) =
        default_pools::implicit_pools(&options.default_pools, &existing, &node_addresses)
            .map_err(PlanError::DefaultPools)?;
    warnings.extend(unknowable);
    let routes = routes::routes(cluster, &implicit, &me, &peerings, &mut warnings);
    let implicit_pools = implicit
        .iter()
        .map(|p| ImplicitPoolInfo {
            name: p.name.clone(),
            cidr: p.spec.cidr,
            source: format!(
                "no IPv{} IPPool in the datastore: calico-node's default pool from NO_DEFAULT_POOLS and CALICO_IPV{}POOL_* (unset = its defaults)",
                if p.spec.cidr.addr().is_ipv6() { 6 } else { 4 },
                if p.spec.cidr.addr().is_ipv6() { 6 } else { 4 }
            ),
        })
        .collect();
    Ok(Plan {
        node: node_name.to_string(),
        router_id,
        local_as: me.local_as,
        ipv4_address: me.ipv4.map(|a| a.0),
        ipv6_address: me.ipv6.map(|a| a.0),
        route_reflector_cluster_id: me.cluster_id,
        listen: ListenPlan { port, addresses },
        peerings,
        originated: routes.originated,
        static_routes: routes.static_routes,
        pool_kernel_rules: routes.pool_kernel_rules,
        implicit_pools,
        policy: routes.policy,
        filters,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_router_ids_match_confd() {
        // Vectors from `printf node-1 | sha256sum` (35971be6...) and `printf t | sha256sum`
        // (e3b98a4d...: first octet 227 > 223 becomes 195).
        assert_eq!(hashed_router_id("node-1"), Ipv4Addr::new(53, 151, 27, 230));
        assert_eq!(hashed_router_id("t"), Ipv4Addr::new(195, 185, 138, 77));
    }

    #[test]
    fn router_id_sources_parse() {
        assert_eq!(
            "hash".parse::<RouterIdSource>().unwrap(),
            RouterIdSource::Hash
        );
        assert_eq!(
            "".parse::<RouterIdSource>().unwrap(),
            RouterIdSource::NodeIpv4
        );
        assert_eq!(
            "1.2.3.4".parse::<RouterIdSource>().unwrap(),
            RouterIdSource::Literal(Ipv4Addr::new(1, 2, 3, 4))
        );
        assert!("fd00::1".parse::<RouterIdSource>().is_err());
    }
}

#[cfg(test)]
mod rule_tests;
#[cfg(test)]
mod service_tests;
