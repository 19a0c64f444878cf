//! Per-pool kernel rules: how routes inside each IP pool are programmed into the kernel, as the
//! plan derives them from the IPPools (and the FIB applies them).

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

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

/// The most specific pool containing `prefix`, if any.
pub fn pool_for<'a>(pools: &'a [PoolKernelRule], prefix: &IpNet) -> Option<&'a PoolKernelRule> {
    pools
        .iter()
        .filter(|pool| pool.cidr.contains(prefix))
        .max_by_key(|pool| pool.cidr.prefix_len())
}

/// Whether one of the node's own blocks is installed as a blackhole: confd's static protocol
/// skips single-address blocks (`/32`, `/128`), and its `calico_kernel_programming` filter
/// rejects every route inside a pool whose cluster routes the node agent programs (VXLAN pools
/// always; IP-in-IP and unencapsulated pools per `programClusterRoutes`), blackholes included.
pub fn block_blackholed(pools: &[PoolKernelRule], block: &IpNet) -> bool {
    if block.prefix_len() == block.max_prefix_len() {
        return false;
    }
    match pool_for(pools, block) {
        None => true,
        Some(pool) => pool.programmed_by_tern && pool.encapsulation != Encapsulation::Vxlan,
    }
}
