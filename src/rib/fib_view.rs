//! The FIB projection: Loc-RIB changes recorded for the kernel side, and a prefix's route as
//! the kernel side maps it.

use std::net::IpAddr;

use ipnet::IpNet;

use super::loc_rib::LOCAL_PEER;
use super::origination::LocalRouteKind;
use super::peer::PeerType;
use super::{Rib, policy};

/// Where a Loc-RIB route came from, for the kernel side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FibSource {
    /// Originated here (blocks become blackholes; kernel-learned routes are already there).
    Local(LocalRouteKind),
    /// Learned over iBGP.
    Ibgp,
    /// Learned over eBGP.
    Ebgp,
}

/// The best route (and its ECMP next hops) of a prefix, for the kernel side to map onto
/// a kernel route with the pool rules (the FIB module, which depends on this one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FibRoute {
    /// Distinct next hops of the multipath set, best first (empty for local routes).
    pub next_hops: Vec<IpAddr>,
    /// LOCAL_PREF of the best route.
    pub local_pref: u32,
    /// Kernel metric: the local route's priority, or `2^31 - 1 - LOCAL_PREF` for priorities
    /// carried in LOCAL_PREF ([`policy::priority_from_local_pref`]).
    pub metric: u32,
    /// Source of the best route.
    pub source: FibSource,
}

/// A change of the Loc-RIB for the FIB: the prefix's route now, or `None` = gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FibChange {
    /// The prefix.
    pub prefix: IpNet,
    /// Its route now.
    pub route: Option<FibRoute>,
}

impl Rib {
    /// Turns the recording of FIB changes on or off (`[kernel] program = false` needs none: a
    /// million-route load then costs no change list). Turning it on marks every prefix changed,
    /// so the next [`Rib::take_fib_changes`] holds the whole Loc-RIB.
    pub fn set_fib_tracking(&mut self, on: bool) {
        if on == self.track_fib {
            return;
        }
        self.track_fib = on;
        self.fib_dirty.clear();
        for (_, entry) in self.table.iter_mut() {
            entry.fib_dirty = false;
        }
        if on {
            let prefixes: Vec<IpNet> = self.table.prefixes().collect();
            for prefix in prefixes {
                if let Some(e) = self.table.get_mut(&prefix) {
                    e.fib_dirty = true;
                }
                self.fib_dirty.push(prefix);
            }
        }
    }

    /// The Loc-RIB changes since the last call, coalesced per prefix.
    pub fn take_fib_changes(&mut self) -> Vec<FibChange> {
        let mut dirty = std::mem::take(&mut self.fib_dirty);
        // A prefix removed and re-added is listed twice.
        dirty.sort_unstable();
        dirty.dedup();
        dirty
            .into_iter()
            .map(|prefix| {
                if let Some(e) = self.table.get_mut(&prefix) {
                    e.fib_dirty = false;
                }
                FibChange {
                    prefix,
                    route: self.fib_route(&prefix),
                }
            })
            .collect()
    }

    /// The FIB view of `prefix` now.
    pub fn fib_route(&self, prefix: &IpNet) -> Option<FibRoute> {
        let entry = self.table.get(prefix)?;
        let best = entry.best()?;
        let attrs = best.accepted.as_ref()?;
        let (source, metric) = if best.peer == LOCAL_PEER {
            let local = self.local.get(prefix)?;
            (FibSource::Local(local.kind.clone()), local.metric)
        } else {
            let peer_type = self.peers.get(&best.peer).map(|s| s.session.peer_type());
            (
                if peer_type == Some(PeerType::Ebgp) {
                    FibSource::Ebgp
                } else {
                    FibSource::Ibgp
                },
                policy::priority_from_local_pref(
                    attrs.local_pref,
                    self.policy.normal_priority(prefix),
                ),
            )
        };
        let mut next_hops: Vec<IpAddr> = Vec::new();
        for p in entry.selected() {
            if let Some(hop) = p.accepted.as_ref().and_then(|a| a.next_hop)
                && !next_hops.contains(&hop)
            {
                next_hops.push(hop);
            }
        }
        Some(FibRoute {
            next_hops,
            local_pref: attrs.effective_local_pref(),
            metric,
            source,
        })
    }
}
