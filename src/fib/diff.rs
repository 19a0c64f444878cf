//! The diff of the desired kernel routes against the routes of tern's protocol the kernel holds.

use std::collections::BTreeMap;

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

/// The desired kernel routes, one per prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredRoutes {
    routes: BTreeMap<IpNet, KernelRoute>,
}

impl DesiredRoutes {
    /// Builds the set from routes in any order. Routes are normalized; when a prefix appears twice
    /// the one with the lower metric wins (of equal metrics, the first).
    pub fn new(routes: impl IntoIterator<Item = KernelRoute>) -> Self {
        let mut routes: Vec<KernelRoute> =
            routes.into_iter().map(KernelRoute::normalized).collect();
        // Stable sort by (prefix, metric), then keep the first of each prefix; the map is then
        // bulk-built from sorted input.
        routes.sort_by_key(|route| (route.prefix, route.metric));
        routes.dedup_by_key(|route| route.prefix);
        Self {
            routes: routes
                .into_iter()
                .map(|route| (route.prefix, route))
                .collect(),
        }
    }

    /// Sets the desired route of its prefix (normalized), replacing any other; returns the
    /// previous one.
    pub fn insert(&mut self, route: KernelRoute) -> Option<KernelRoute> {
        let route = route.normalized();
        self.routes.insert(route.prefix, route)
    }

    /// Removes the desired route of `prefix`; returns it.
    pub fn remove(&mut self, prefix: &IpNet) -> Option<KernelRoute> {
        self.routes.remove(prefix)
    }

    /// The desired route for `prefix`.
    pub fn get(&self, prefix: &IpNet) -> Option<&KernelRoute> {
        self.routes.get(prefix)
    }

    /// All desired routes, by prefix.
    pub fn iter(&self) -> impl Iterator<Item = &KernelRoute> {
        self.routes.values()
    }

    /// Number of desired routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// No route desired.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
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

/// The routes of tern's protocol in the kernel's table, by key.
pub type CurrentRoutes = BTreeMap<RouteKey, KernelRoute>;

/// What a desired route becomes when it is written now (see [`diff_formed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Formed {
    /// Written as desired.
    AsDesired,
    /// Written in another form (e.g. a gateway replaced by the kernel's next hop for it).
    Rewritten(KernelRoute),
    /// Cannot be written now (e.g. its tunnel device is missing): whatever the kernel holds for
    /// the prefix is kept.
    Unavailable,
}

/// Computes the writes that make `current` equal to `desired`.
///
/// Deterministic: all adds and replaces first, in prefix order (so a metric change installs the
/// new route before the old one goes), then deletes in key order. `keep(route)` spares a current
/// route that is not desired from deletion (stale routes held until convergence).
pub fn diff(
    desired: &DesiredRoutes,
    current: &CurrentRoutes,
    keep: impl Fn(&KernelRoute) -> bool,
) -> Vec<FibChange> {
    diff_formed(desired, current, |_| Formed::AsDesired, keep)
}

/// [`diff`] where each desired route is first put in the form it must be written in now; a
/// route whose form is [`Formed::Unavailable`] is neither written nor are the kernel's routes for
/// its prefix deleted. Routes written as desired are not copied unless they need a write.
pub fn diff_formed(
    desired: &DesiredRoutes,
    current: &CurrentRoutes,
    form: impl Fn(&KernelRoute) -> Formed,
    keep: impl Fn(&KernelRoute) -> bool,
) -> Vec<FibChange> {
    let mut changes = Vec::new();
    let mut unavailable = std::collections::HashSet::new();
    for route in desired.iter() {
        let change = match form(route) {
            Formed::AsDesired => write_for(route, current),
            Formed::Rewritten(rewritten) => write_for(&rewritten.normalized(), current),
            Formed::Unavailable => {
                unavailable.insert(route.prefix);
                None
            }
        };
        changes.extend(change);
    }
    for route in current.values() {
        if !is_desired_key(desired, route) && !unavailable.contains(&route.prefix) && !keep(route) {
            changes.push(FibChange::Delete(route.clone()));
        }
    }
    changes
}

/// [`diff`] restricted to the given prefixes (a route restored after someone deleted it, a prefix
/// whose desired route changed); same ordering rules.
pub fn diff_prefixes<'a>(
    desired: &DesiredRoutes,
    current: &CurrentRoutes,
    prefixes: impl IntoIterator<Item = &'a IpNet>,
    keep: impl Fn(&KernelRoute) -> bool,
) -> Vec<FibChange> {
    diff_prefixes_formed(desired, current, prefixes, |_| Formed::AsDesired, keep)
}

/// [`diff_formed`] restricted to the given prefixes.
pub fn diff_prefixes_formed<'a>(
    desired: &DesiredRoutes,
    current: &CurrentRoutes,
    prefixes: impl IntoIterator<Item = &'a IpNet>,
    form: impl Fn(&KernelRoute) -> Formed,
    keep: impl Fn(&KernelRoute) -> bool,
) -> Vec<FibChange> {
    let mut prefixes: Vec<IpNet> = prefixes.into_iter().copied().collect();
    prefixes.sort();
    prefixes.dedup();
    let mut writes = Vec::new();
    let mut deletes = Vec::new();
    for prefix in prefixes {
        if let Some(route) = desired.get(&prefix) {
            let change = match form(route) {
                Formed::AsDesired => write_for(route, current),
                Formed::Rewritten(rewritten) => write_for(&rewritten.normalized(), current),
                Formed::Unavailable => continue,
            };
            writes.extend(change);
        }
        let lowest = RouteKey { prefix, metric: 0 };
        let highest = RouteKey {
            prefix,
            metric: u32::MAX,
        };
        for route in current.range(lowest..=highest).map(|(_, route)| route) {
            if !is_desired_key(desired, route) && !keep(route) {
                deletes.push(FibChange::Delete(route.clone()));
            }
        }
    }
    writes.extend(deletes);
    writes
}

fn write_for(route: &KernelRoute, current: &CurrentRoutes) -> Option<FibChange> {
    match current.get(&route.key()) {
        Some(existing) if existing == route => None,
        Some(_) => Some(FibChange::Replace(route.clone())),
        None => Some(FibChange::Add(route.clone())),
    }
}

fn is_desired_key(desired: &DesiredRoutes, route: &KernelRoute) -> bool {
    desired
        .get(&route.prefix)
        .is_some_and(|wanted| wanted.metric == route.metric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fib::NextHop;

    fn route(prefix: &str, gateway: &str, metric: u32) -> KernelRoute {
        KernelRoute {
            prefix: prefix.parse().unwrap(),
            kind: KernelRouteKind::Unicast(vec![NextHop {
                gateway: gateway.parse().unwrap(),
                via_tunnel: false,
            }]),
            metric,
        }
    }

    fn current(routes: &[KernelRoute]) -> CurrentRoutes {
        routes.iter().map(|r| (r.key(), r.clone())).collect()
    }

    #[test]
    fn desired_routes_change_one_prefix_at_a_time() {
        let mut desired = DesiredRoutes::new([route("10.0.1.0/24", "192.0.2.1", 1024)]);
        assert_eq!(
            desired.insert(route("10.0.2.0/24", "192.0.2.1", 1024)),
            None
        );
        let old = desired.insert(route("10.0.1.0/24", "192.0.2.2", 1024));
        assert_eq!(old, Some(route("10.0.1.0/24", "192.0.2.1", 1024)));
        assert_eq!(desired.len(), 2);
        assert!(desired.remove(&"10.0.2.0/24".parse().unwrap()).is_some());
        assert!(desired.remove(&"10.0.2.0/24".parse().unwrap()).is_none());
        let kernel = current(&[route("10.0.1.0/24", "192.0.2.1", 1024)]);
        let prefixes = ["10.0.1.0/24".parse().unwrap()];
        assert_eq!(
            diff_prefixes(&desired, &kernel, &prefixes, |_| false),
            vec![FibChange::Replace(route("10.0.1.0/24", "192.0.2.2", 1024))]
        );
    }

    #[test]
    fn adds_replaces_and_deletes_in_a_fixed_order() {
        let desired = DesiredRoutes::new([
            route("10.0.2.0/24", "192.0.2.1", 1024),
            route("10.0.1.0/24", "192.0.2.1", 1024),
            route("10.0.3.0/24", "192.0.2.2", 1024),
        ]);
        let kernel = current(&[
            route("10.0.9.0/24", "192.0.2.1", 1024),
            route("10.0.3.0/24", "192.0.2.1", 1024),
            route("10.0.1.0/24", "192.0.2.1", 1024),
        ]);
        let changes = diff(&desired, &kernel, |_| false);
        assert_eq!(
            changes,
            vec![
                FibChange::Add(route("10.0.2.0/24", "192.0.2.1", 1024)),
                FibChange::Replace(route("10.0.3.0/24", "192.0.2.2", 1024)),
                FibChange::Delete(route("10.0.9.0/24", "192.0.2.1", 1024)),
            ]
        );
    }

    #[test]
    fn metric_change_adds_new_before_deleting_old() {
        let desired = DesiredRoutes::new([route("10.0.1.0/24", "192.0.2.1", 900)]);
        let kernel = current(&[route("10.0.1.0/24", "192.0.2.1", 1024)]);
        assert_eq!(
            diff(&desired, &kernel, |_| false),
            vec![
                FibChange::Add(route("10.0.1.0/24", "192.0.2.1", 900)),
                FibChange::Delete(route("10.0.1.0/24", "192.0.2.1", 1024)),
            ]
        );
    }

    #[test]
    fn kept_routes_are_not_deleted() {
        let desired = DesiredRoutes::default();
        let kernel = current(&[route("10.0.9.0/24", "192.0.2.1", 1024)]);
        assert!(diff(&desired, &kernel, |_| true).is_empty());
    }

    #[test]
    fn equal_sets_need_no_writes_whatever_the_next_hop_order() {
        let mut multipath = route("10.0.1.0/24", "192.0.2.2", 1024);
        if let KernelRouteKind::Unicast(hops) = &mut multipath.kind {
            hops.push(NextHop {
                gateway: "192.0.2.1".parse().unwrap(),
                via_tunnel: true,
            });
        }
        let desired = DesiredRoutes::new([multipath.clone()]);
        let kernel = current(&[multipath.normalized()]);
        assert!(diff(&desired, &kernel, |_| false).is_empty());
    }

    #[test]
    fn ipv6_metric_zero_is_the_kernels_1024() {
        let route = KernelRoute {
            prefix: "fd00::1/64".parse().unwrap(),
            kind: KernelRouteKind::Blackhole,
            metric: 0,
        };
        let normalized = route.normalized();
        assert_eq!(normalized.metric, 1024);
        assert_eq!(normalized.prefix, "fd00::/64".parse::<IpNet>().unwrap());
    }

    #[test]
    fn duplicate_prefixes_keep_the_lowest_metric() {
        let desired = DesiredRoutes::new([
            route("10.0.1.0/24", "192.0.2.1", 1024),
            route("10.0.1.0/24", "192.0.2.2", 500),
        ]);
        assert_eq!(desired.len(), 1);
        assert_eq!(
            desired.get(&"10.0.1.0/24".parse().unwrap()).unwrap().metric,
            500
        );
    }

    #[test]
    fn formed_routes_are_compared_in_their_written_form() {
        let desired = DesiredRoutes::new([
            route("10.0.1.0/24", "10.50.0.1", 1024),
            route("10.0.2.0/24", "192.0.2.9", 1024),
        ]);
        let kernel = current(&[
            route("10.0.1.0/24", "192.0.2.1", 1024),
            route("10.0.2.0/24", "192.0.2.1", 1024),
        ]);
        let form = |r: &KernelRoute| match r.prefix.to_string().as_str() {
            "10.0.1.0/24" => Formed::Rewritten(route("10.0.1.0/24", "192.0.2.1", 1024)),
            _ => Formed::Unavailable,
        };
        // The rewritten form is already there; the unavailable one is left alone.
        assert!(diff_formed(&desired, &kernel, form, |_| false).is_empty());
        let p2: IpNet = "10.0.2.0/24".parse().unwrap();
        assert!(diff_prefixes_formed(&desired, &kernel, [&p2], form, |_| false).is_empty());
    }

    #[test]
    fn prefix_restricted_diff_matches_the_full_diff_on_those_prefixes() {
        let desired = DesiredRoutes::new([
            route("10.0.1.0/24", "192.0.2.1", 900),
            route("10.0.2.0/24", "192.0.2.1", 1024),
        ]);
        let kernel = current(&[
            route("10.0.1.0/24", "192.0.2.1", 1024),
            route("10.0.5.0/24", "192.0.2.1", 1024),
        ]);
        let p1: IpNet = "10.0.1.0/24".parse().unwrap();
        assert_eq!(
            diff_prefixes(&desired, &kernel, [&p1], |_| false),
            vec![
                FibChange::Add(route("10.0.1.0/24", "192.0.2.1", 900)),
                FibChange::Delete(route("10.0.1.0/24", "192.0.2.1", 1024)),
            ]
        );
    }
}
