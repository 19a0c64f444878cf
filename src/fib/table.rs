//! The kernel task's view of its routes, compact: the desired route and the routes of tern's
//! protocol the kernel holds, per prefix, with next-hop sets interned.
//!
//! A table of a million routes is held here, so the per-route cost is what matters: a route is a
//! metric and a 4-byte reference to its next-hop set (a cluster has few distinct sets, shared by
//! many prefixes), stored in [`PrefixTable`]s (dense hash maps, about 26 bytes per IPv4 route
//! with the index) rather than a `BTreeMap` of [`KernelRoute`]s with a heap `Vec` each. The
//! diff ([`FibTable::diff`]) puts each next-hop set in its written form once per pass, not once
//! per route.

use std::collections::{BTreeMap, HashMap};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{FibChange, KernelRoute, KernelRouteKind, MAX_ECMP_PATHS, NextHop, RouteKey};
use crate::table::PrefixTable;

/// Counts of routes by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteCounts {
    /// `blackhole` routes.
    pub blackhole: usize,
    /// Single-path routes without the tunnel.
    pub plain: usize,
    /// Single-path routes via the tunnel.
    pub tunnel: usize,
    /// Multipath routes.
    pub multipath: usize,
}

/// What a desired route's next hops become when written now (see [`FibTable::diff`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Formed {
    /// Written as desired.
    AsDesired,
    /// Written with other next hops (e.g. a gateway replaced by the kernel's next hop for it).
    Rewritten(Vec<NextHop>),
    /// Cannot be written now (e.g. its tunnel device is missing): whatever the kernel holds for
    /// the prefix is kept.
    Unavailable,
}

/// The writes [`FibTable::diff`] found, and the prefixes it could not write now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Adds and replaces first, in prefix order (so a metric change installs the new route
    /// before the old one goes), then deletes in key order.
    pub changes: Vec<FibChange>,
    /// Desired prefixes whose form was [`Formed::Unavailable`], in prefix order.
    pub unavailable: Vec<IpNet>,
}

/// A reference to an interned next-hop set; 0 is a blackhole (no set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct HopRef(u32);

const BLACKHOLE: HopRef = HopRef(0);

/// One route of a prefix: its metric and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target {
    metric: u32,
    hops: HopRef,
}

/// Interned next-hop sets with reference counts; a set is freed with its last route.
#[derive(Debug, Default)]
struct HopSets {
    /// Slot `i - 1` holds set `HopRef(i)` and its reference count (0: free).
    sets: Vec<(Box<[NextHop]>, u32)>,
    index: HashMap<Box<[NextHop]>, u32>,
    free: Vec<u32>,
}

impl HopSets {
    fn find(&self, hops: &[NextHop]) -> Option<HopRef> {
        self.index.get(hops).map(|&i| HopRef(i))
    }

    /// The set's reference, one more route counted on it.
    fn acquire(&mut self, hops: &[NextHop]) -> HopRef {
        let i = match self.index.get(hops) {
            Some(&i) => i,
            None => {
                let i = match self.free.pop() {
                    Some(i) => {
                        self.sets[i as usize - 1] = (hops.into(), 0);
                        i
                    }
                    None => {
                        self.sets.push((hops.into(), 0));
                        u32::try_from(self.sets.len()).expect("at most 2^32 next-hop sets")
                    }
                };
                self.index.insert(hops.into(), i);
                i
            }
        };
        self.sets[i as usize - 1].1 += 1;
        HopRef(i)
    }

    fn release(&mut self, hops: HopRef) {
        if hops == BLACKHOLE {
            return;
        }
        let slot = &mut self.sets[hops.0 as usize - 1];
        slot.1 -= 1;
        if slot.1 == 0 {
            let set = std::mem::take(&mut slot.0);
            self.index.remove(&set);
            self.free.push(hops.0);
        }
    }

    fn get(&self, hops: HopRef) -> &[NextHop] {
        if hops == BLACKHOLE {
            &[]
        } else {
            &self.sets[hops.0 as usize - 1].0
        }
    }

    fn live(&self) -> usize {
        self.sets.len() - self.free.len()
    }
}

/// Desired and installed kernel routes of tern's protocol (see the module docs).
///
/// The desired side holds one route per prefix; the installed side is keyed like the kernel's
/// table, by prefix and metric (a prefix can have routes of several metrics, e.g. during a
/// metric change or left by a previous run).
#[derive(Debug, Default)]
pub struct FibTable {
    hops: HopSets,
    desired: PrefixTable<Target>,
    /// One installed route per prefix; the prefix's others are in `installed_more`.
    installed: PrefixTable<Target>,
    installed_more: BTreeMap<RouteKey, HopRef>,
    counts: RouteCounts,
}

impl FibTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn store(&mut self, kind: &KernelRouteKind) -> HopRef {
        match kind {
            KernelRouteKind::Blackhole => BLACKHOLE,
            KernelRouteKind::Unicast(hops) => self.hops.acquire(hops),
        }
    }

    fn kind(&self, hops: HopRef) -> KernelRouteKind {
        if hops == BLACKHOLE {
            KernelRouteKind::Blackhole
        } else {
            KernelRouteKind::Unicast(self.hops.get(hops).to_vec())
        }
    }

    fn route(&self, prefix: IpNet, target: Target) -> KernelRoute {
        KernelRoute {
            prefix,
            kind: self.kind(target.hops),
            metric: target.metric,
        }
    }

    // ---- desired ------------------------------------------------------------------------------

    /// Sets the desired route of its prefix (normalized), replacing any other; returns whether
    /// the desired route changed.
    pub fn set_desired(&mut self, route: KernelRoute) -> bool {
        let route = route.normalized();
        let target = Target {
            metric: route.metric,
            hops: self.store(&route.kind),
        };
        match self.desired.insert(route.prefix, target) {
            Some(old) => {
                self.hops.release(old.hops);
                old != target
            }
            None => true,
        }
    }

    /// Removes the desired route of `prefix`; returns whether there was one.
    pub fn remove_desired(&mut self, prefix: &IpNet) -> bool {
        match self.desired.remove(prefix) {
            Some(old) => {
                self.hops.release(old.hops);
                true
            }
            None => false,
        }
    }

    /// Replaces the whole desired set. Routes are normalized; when a prefix appears twice the
    /// one with the lower metric wins (of equal metrics, the first).
    pub fn replace_desired(&mut self, routes: impl IntoIterator<Item = KernelRoute>) {
        let old = std::mem::take(&mut self.desired);
        for (_, target) in old.iter() {
            self.hops.release(target.hops);
        }
        for route in routes {
            let route = route.normalized();
            if self
                .desired
                .get(&route.prefix)
                .is_some_and(|existing| existing.metric <= route.metric)
            {
                continue;
            }
            self.set_desired(route);
        }
    }

    /// The desired route for `prefix`.
    pub fn desired(&self, prefix: &IpNet) -> Option<KernelRoute> {
        self.desired
            .get(prefix)
            .map(|&target| self.route(*prefix, target))
    }

    /// Every desired route, in no particular order.
    pub fn desired_routes(&self) -> impl Iterator<Item = KernelRoute> + '_ {
        self.desired
            .iter()
            .map(|(prefix, &target)| self.route(prefix, target))
    }

    /// Every desired prefix, in no particular order.
    pub fn desired_prefixes(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.desired.prefixes()
    }

    /// Number of desired routes.
    pub fn desired_len(&self) -> usize {
        self.desired.len()
    }

    // ---- installed ----------------------------------------------------------------------------

    fn count(counts: &mut RouteCounts, hops: &[NextHop], blackhole: bool, delta: isize) {
        let slot = if blackhole {
            &mut counts.blackhole
        } else if hops.len() > 1 {
            &mut counts.multipath
        } else if hops.first().is_some_and(|hop| hop.via_tunnel) {
            &mut counts.tunnel
        } else {
            &mut counts.plain
        };
        *slot = slot.saturating_add_signed(delta);
    }

    fn counted(&mut self, hops: HopRef, delta: isize) {
        Self::count(
            &mut self.counts,
            self.hops.get(hops),
            hops == BLACKHOLE,
            delta,
        );
    }

    fn installed_ref(&self, key: &RouteKey) -> Option<HopRef> {
        match self.installed.get(&key.prefix) {
            Some(target) if target.metric == key.metric => Some(target.hops),
            Some(_) => self.installed_more.get(key).copied(),
            None => None,
        }
    }

    /// Records a route of tern's protocol the kernel holds (normalized), replacing the one with
    /// its key.
    pub fn insert_installed(&mut self, route: KernelRoute) {
        let route = route.normalized();
        let hops = self.store(&route.kind);
        self.counted(hops, 1);
        let target = Target {
            metric: route.metric,
            hops,
        };
        let old = match self.installed.get_mut(&route.prefix) {
            Some(primary) if primary.metric == route.metric => {
                Some(std::mem::replace(primary, target).hops)
            }
            Some(_) => self.installed_more.insert(route.key(), hops),
            None => {
                self.installed.insert(route.prefix, target);
                None
            }
        };
        if let Some(old) = old {
            self.counted(old, -1);
            self.hops.release(old);
        }
    }

    /// Forgets the kernel's route with `key`; returns whether there was one.
    pub fn remove_installed(&mut self, key: &RouteKey) -> bool {
        let removed = match self.installed.get(&key.prefix) {
            Some(primary) if primary.metric == key.metric => {
                let old = primary.hops;
                // Another metric of the prefix, if any, becomes the primary.
                let next = self
                    .installed_more
                    .range(Self::prefix_range(key.prefix))
                    .next()
                    .map(|(key, &hops)| (*key, hops));
                match next {
                    Some((next_key, hops)) => {
                        self.installed_more.remove(&next_key);
                        self.installed.insert(
                            key.prefix,
                            Target {
                                metric: next_key.metric,
                                hops,
                            },
                        );
                    }
                    None => {
                        self.installed.remove(&key.prefix);
                    }
                }
                Some(old)
            }
            Some(_) => self.installed_more.remove(key),
            None => None,
        };
        match removed {
            Some(old) => {
                self.counted(old, -1);
                self.hops.release(old);
                true
            }
            None => false,
        }
    }

    /// Forgets every installed route.
    pub fn clear_installed(&mut self) {
        let primary = std::mem::take(&mut self.installed);
        let more = std::mem::take(&mut self.installed_more);
        for hops in primary
            .iter()
            .map(|(_, target)| target.hops)
            .chain(more.into_values())
        {
            self.hops.release(hops);
        }
        self.counts = RouteCounts::default();
    }

    /// The kernel's route with `key`.
    pub fn installed(&self, key: &RouteKey) -> Option<KernelRoute> {
        self.installed_ref(key).map(|hops| {
            self.route(
                key.prefix,
                Target {
                    metric: key.metric,
                    hops,
                },
            )
        })
    }

    /// Whether the kernel holds exactly `route` (normalized form) under its key.
    pub fn is_installed(&self, route: &KernelRoute) -> bool {
        let wanted = match &route.kind {
            KernelRouteKind::Blackhole => Some(BLACKHOLE),
            KernelRouteKind::Unicast(hops) => self.hops.find(hops),
        };
        wanted.is_some() && self.installed_ref(&route.key()) == wanted
    }

    /// Whether the kernel holds a route of ours with `key`.
    pub fn has_installed(&self, key: &RouteKey) -> bool {
        self.installed_ref(key).is_some()
    }

    /// Every installed route, in no particular order.
    pub fn installed_routes(&self) -> impl Iterator<Item = KernelRoute> + '_ {
        self.installed
            .iter()
            .map(|(prefix, &target)| self.route(prefix, target))
            .chain(self.installed_more.iter().map(|(key, &hops)| {
                self.route(
                    key.prefix,
                    Target {
                        metric: key.metric,
                        hops,
                    },
                )
            }))
    }

    /// Every prefix with an installed route, in no particular order.
    pub fn installed_prefixes(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.installed.prefixes()
    }

    /// Number of installed routes.
    pub fn installed_len(&self) -> usize {
        self.installed.len() + self.installed_more.len()
    }

    /// Installed routes by kind.
    pub fn installed_counts(&self) -> &RouteCounts {
        &self.counts
    }

    /// Number of distinct next-hop sets held (for tests and diagnostics).
    pub fn hop_sets(&self) -> usize {
        self.hops.live()
    }

    // ---- diff ---------------------------------------------------------------------------------

    fn prefix_range(prefix: IpNet) -> std::ops::RangeInclusive<RouteKey> {
        RouteKey { prefix, metric: 0 }..=RouteKey {
            prefix,
            metric: u32::MAX,
        }
    }

    /// Every prefix desired or installed, sorted: the scope of a full [`FibTable::diff`].
    pub fn all_prefixes(&self) -> Vec<IpNet> {
        let mut prefixes: Vec<IpNet> = self
            .desired
            .prefixes()
            .chain(self.installed.prefixes())
            .collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        prefixes
    }

    /// The writes that make the kernel's routes of the `scope` prefixes equal to the desired
    /// ones (pass [`FibTable::all_prefixes`] for all).
    ///
    /// Each desired next-hop set is first put in the form it must be written in now (`form`,
    /// called once per set and pass); a prefix whose form is [`Formed::Unavailable`] is neither
    /// written nor are the kernel's routes for it deleted. `keep(prefix)` spares the prefix's
    /// installed routes that are not desired from deletion (stale routes held until
    /// convergence). Deterministic: see [`Diff::changes`].
    pub fn diff(
        &self,
        scope: &[IpNet],
        mut form: impl FnMut(&[NextHop]) -> Formed,
        keep: impl Fn(&IpNet) -> bool,
    ) -> Diff {
        let mut scope: Vec<IpNet> = scope.to_vec();
        scope.sort_unstable();
        scope.dedup();
        let mut formed: HashMap<HopRef, Written> = HashMap::new();
        let mut out = Diff::default();
        let mut deletes = Vec::new();
        let mut others: Vec<(u32, HopRef)> = Vec::new();
        for prefix in scope {
            let desired = self.desired.get(&prefix).copied();
            if let Some(target) = desired {
                let written = if target.hops == BLACKHOLE {
                    &Written::Same
                } else {
                    formed.entry(target.hops).or_insert_with(|| {
                        match form(self.hops.get(target.hops)) {
                            Formed::AsDesired => Written::Same,
                            Formed::Unavailable => Written::Unavailable,
                            Formed::Rewritten(hops) => {
                                let hops = normalized_hops(hops);
                                Written::Other(self.hops.find(&hops), hops)
                            }
                        }
                    })
                };
                let key = RouteKey {
                    prefix,
                    metric: target.metric,
                };
                let installed = self.installed_ref(&key);
                let write = match written {
                    Written::Unavailable => {
                        out.unavailable.push(prefix);
                        continue;
                    }
                    Written::Same if installed == Some(target.hops) => None,
                    Written::Same => Some(self.route(prefix, target)),
                    Written::Other(Some(hops), _) if installed == Some(*hops) => None,
                    Written::Other(_, hops) => Some(KernelRoute {
                        prefix,
                        kind: KernelRouteKind::Unicast(hops.clone()),
                        metric: target.metric,
                    }),
                };
                if let Some(route) = write {
                    out.changes.push(if installed.is_some() {
                        FibChange::Replace(route)
                    } else {
                        FibChange::Add(route)
                    });
                }
            }
            let Some(primary) = self.installed.get(&prefix).copied() else {
                continue;
            };
            if keep(&prefix) {
                continue;
            }
            others.clear();
            others.push((primary.metric, primary.hops));
            others.extend(
                self.installed_more
                    .range(Self::prefix_range(prefix))
                    .map(|(key, &hops)| (key.metric, hops)),
            );
            others.sort_unstable_by_key(|&(metric, _)| metric);
            for &(metric, hops) in &others {
                if desired.is_none_or(|target| target.metric != metric) {
                    deletes.push(FibChange::Delete(
                        self.route(prefix, Target { metric, hops }),
                    ));
                }
            }
        }
        out.changes.extend(deletes);
        out
    }
}

/// A desired next-hop set's written form within one diff pass.
enum Written {
    Same,
    /// Other hops (normalized), and their reference when some route holds that set.
    Other(Option<HopRef>, Vec<NextHop>),
    Unavailable,
}

/// Next hops in canonical form (see [`KernelRoute::normalized`]).
fn normalized_hops(mut hops: Vec<NextHop>) -> Vec<NextHop> {
    hops.sort();
    hops.dedup_by_key(|hop| hop.gateway);
    hops.truncate(MAX_ECMP_PATHS);
    hops
}

#[cfg(test)]
mod tests;
