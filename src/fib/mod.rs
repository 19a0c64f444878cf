//! The desired kernel route set and its diff against what the kernel holds. Pure.
//!
//! The plan decides, per IP pool, how routes inside it reach the kernel ([`PoolKernelRule`]); the
//! RIB's best paths are turned into [`KernelRoute`]s; the kernel module in `io` keeps the kernel's
//! table equal to the desired set, held with what the kernel has in a compact [`FibTable`].

mod decide;
mod diff;
mod stale;
mod table;

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use decide::{
    BestRoute, NodeKernelContext, RouteOrigin, block_blackholed, kernel_route_for,
    metric_from_local_pref, pool_for,
};
pub use diff::{FibChange, RouteKey};
pub use stale::StaleRoutes;
pub use table::{Diff, FibTable, Formed, RouteCounts};

/// The most next hops of one multipath route (the kernel allows more; Calico's BIRD uses 16).
pub const MAX_ECMP_PATHS: usize = 16;

/// How routes inside one IP pool are programmed into the kernel (calico-behaviour.md §4).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PoolKernelRule {
    /// The pool's CIDR.
    pub cidr: IpNet,
    /// The pool's encapsulation.
    pub encapsulation: Encapsulation,
    /// Whether tern programs this pool's routes (from `programClusterRoutes`); `false` means the
    /// node agent (Felix) does and tern installs nothing inside the pool.
    pub programmed_by_tern: bool,
}

/// A pool's encapsulation, from IPPool `ipipMode` / `vxlanMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Encapsulation {
    /// Unencapsulated: `via <next hop>`, resolved recursively.
    None,
    /// IP-in-IP to every next hop: `via <next hop> dev tunl0 onlink`.
    IpIpAlways,
    /// IP-in-IP only when the next hop is outside this node's subnet.
    IpIpCrossSubnet,
    /// VXLAN: programmed by the node agent, never by tern.
    Vxlan,
}

/// One route tern wants in the kernel's main table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KernelRoute {
    /// Destination prefix.
    pub prefix: IpNet,
    /// What the route does.
    pub kind: KernelRouteKind,
    /// Route metric (`2^31 - 1 - local_pref`; 1024 for normal routes).
    pub metric: u32,
}

/// The kind of a kernel route.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KernelRouteKind {
    /// `blackhole <prefix>`: the node's own IPAM blocks.
    Blackhole,
    /// Forward via one or more next hops (more than one = ECMP multipath, at most 16).
    Unicast(Vec<NextHop>),
}

/// One next hop of a unicast kernel route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NextHop {
    /// The BGP next hop address.
    pub gateway: IpAddr,
    /// `dev tunl0 onlink` (IP-in-IP) instead of a plain recursive `via`.
    pub via_tunnel: bool,
}
