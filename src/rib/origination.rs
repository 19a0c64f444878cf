//! Locally originated routes: the node's blocks, service ranges, and routes learned from the
//! kernel (borrowed /32s and other workload routes the node agent installs).
//!
//! They enter the Loc-RIB as paths of the pseudo-peer [`super::loc_rib::LOCAL_PEER`] with
//! ORIGIN IGP, no AS_PATH, no next hop (export puts the session's source address there) and
//! LOCAL_PREF from their priority (`2^31 - 1 - metric`), and then go through the same export
//! pipeline as everything else. Kernel routes inside the node's own blocks are not suppressed
//! here: the export pipeline's aggregation step drops them unless their priority is elevated.

use super::attrs::{Origin, RouteAttrs};
use super::policy::local_pref_from_priority;

/// What kind of local route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LocalRouteKind {
    /// A confirmed host block affinity of this node (also a blackhole in the kernel).
    Block,
    /// A service range (`serviceClusterIPs`, external / LoadBalancer ranges).
    Service,
    /// A route the node agent installed in the kernel (e.g. a borrowed /32 on a `cali*`
    /// interface).
    Kernel {
        /// The route's output interface.
        interface: String,
    },
}

/// A route this node originates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LocalRoute {
    /// What it is.
    pub kind: LocalRouteKind,
    /// Its priority (kernel metric; normal = 1024, lower = elevated).
    pub metric: u32,
}

impl LocalRoute {
    /// The interface of a kernel-learned route.
    pub fn interface(&self) -> Option<&str> {
        match &self.kind {
            LocalRouteKind::Kernel { interface } => Some(interface),
            LocalRouteKind::Block | LocalRouteKind::Service => None,
        }
    }

    /// The attribute set the route enters the Loc-RIB with.
    pub fn attrs(&self) -> RouteAttrs {
        RouteAttrs::new(Origin::Igp, None).with_local_pref(local_pref_from_priority(self.metric))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_attrs_carry_priority_as_local_pref() {
        let r = LocalRoute {
            kind: LocalRouteKind::Block,
            metric: 1024,
        };
        assert_eq!(r.attrs().local_pref, Some(2_147_482_623));
        assert_eq!(r.attrs().next_hop, None);
    }
}
