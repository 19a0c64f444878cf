//! Route identity and canonical form, and the writes a diff produces (see [`super::FibTable`]).

use ipnet::IpNet;

use super::{KernelRoute, KernelRouteKind, MAX_ECMP_PATHS};

/// The metric the kernel gives an IPv6 route added with metric 0.
const IPV6_DEFAULT_METRIC: u32 = 1024;

/// The kernel identifies a route of the main table by prefix and metric (and TOS, always 0 here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteKey {
    /// Destination prefix.
    pub prefix: IpNet,
    /// Route metric (priority).
    pub metric: u32,
}

impl KernelRoute {
    /// The key the kernel knows this route by.
    pub fn key(&self) -> RouteKey {
        RouteKey {
            prefix: self.prefix,
            metric: self.metric,
        }
    }

    /// The same route in canonical form: next hops sorted, deduplicated by gateway, at most
    /// [`MAX_ECMP_PATHS`]; the prefix with its host bits cleared; an IPv6 metric of 0 as the 1024
    /// the kernel stores instead. Kernel dumps and desired routes are compared in this form.
    pub fn normalized(mut self) -> Self {
        self.prefix = self.prefix.trunc();
        if matches!(self.prefix, IpNet::V6(_)) && self.metric == 0 {
            self.metric = IPV6_DEFAULT_METRIC;
        }
        if let KernelRouteKind::Unicast(hops) = &mut self.kind {
            hops.sort();
            hops.dedup_by_key(|hop| hop.gateway);
            hops.truncate(MAX_ECMP_PATHS);
        }
        self
    }
}

/// One write to bring the kernel in line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FibChange {
    /// No route of ours with this key: create it.
    Add(KernelRoute),
    /// A route of ours with this key differs: replace it.
    Replace(KernelRoute),
    /// A route of ours that is not desired (or desired with another metric): delete it.
    Delete(KernelRoute),
}

impl FibChange {
    /// The route the change writes or deletes.
    pub fn route(&self) -> &KernelRoute {
        match self {
            FibChange::Add(route) | FibChange::Replace(route) | FibChange::Delete(route) => route,
        }
    }
}
