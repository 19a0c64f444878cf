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
    BestRoute, NodeKernelContext, RouteOrigin, kernel_route_for, metric_from_local_pref,
};
pub use diff::{FibChange, RouteKey};
pub use stale::StaleRoutes;
pub use table::{Diff, FibTable, Formed, RouteCounts};

/// The most next hops of one multipath route (the kernel allows more; Calico's BIRD uses 16).
pub const MAX_ECMP_PATHS: usize = 16;

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
