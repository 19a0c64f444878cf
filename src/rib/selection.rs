//! The core: change a prefix's paths, re-run the decision process, propagate to the FIB and
//! the export groups.

use std::sync::Arc;

use hashbrown::HashMap;
use ipnet::IpNet;
use smallvec::SmallVec;

use super::attrs::RouteAttrs;
use super::best_path::{Candidate, CandidateSource};
use super::export_view::ExportView;
use super::intern::Interner;
use super::loc_rib::{LOCAL_PEER, Path, PrefixEntry};
use super::origination::LocalRoute;
use super::peer::PeerId;
use super::{PeerState, Rib, best_path};
use crate::table::PrefixTable;

/// Runs the decision process over `entry` and orders its paths: selected set first, best first.
#[inline]
pub(super) fn select_into(
    entry: &mut PrefixEntry,
    prefix: &IpNet,
    peers: &HashMap<PeerId, PeerState>,
    local: &PrefixTable<LocalRoute>,
) {
    // Fast path: a single path (most prefixes of a full table).
    if entry.paths.len() == 1 {
        let eligible = entry.paths[0].accepted.is_some()
            && candidate_source(&entry.paths[0], prefix, peers, local).is_some();
        entry.multipath = u8::from(eligible);
        return;
    }
    let mut index: SmallVec<[usize; 8]> = SmallVec::new();
    let candidates: Vec<Candidate<'_>> = entry
        .paths
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let attrs = p.accepted.as_deref()?;
            let source = candidate_source(p, prefix, peers, local)?;
            index.push(i);
            Some(Candidate { attrs, source })
        })
        .collect();
    let Some(selection) = best_path::select(&candidates) else {
        entry.multipath = 0;
        return;
    };
    let order: SmallVec<[usize; 8]> = selection.multipath.iter().map(|&c| index[c]).collect();
    drop(candidates);
    // Move the selected paths to the front, in order.
    let mut paths = std::mem::take(&mut entry.paths);
    let mut front: SmallVec<[Path; 1]> = SmallVec::with_capacity(paths.len());
    let mut taken: SmallVec<[Option<Path>; 8]> = paths.drain(..).map(Some).collect();
    for &i in &order {
        if let Some(p) = taken[i].take() {
            front.push(p);
        }
    }
    front.extend(taken.into_iter().flatten());
    entry.paths = front;
    entry.multipath = order.len() as u8;
}

#[inline]
pub(super) fn candidate_source(
    path: &Path,
    prefix: &IpNet,
    peers: &HashMap<PeerId, PeerState>,
    local: &PrefixTable<LocalRoute>,
) -> Option<CandidateSource> {
    if path.peer == LOCAL_PEER {
        return Some(CandidateSource::Local {
            metric: local.get(prefix)?.metric,
        });
    }
    let s = &peers.get(&path.peer)?.session;
    Some(CandidateSource::Peer {
        peer_type: s.peer_type(),
        router_id: s.router_id,
        address: s.address,
        igp_cost: s.igp_cost,
        path_id: path.rx_path_id,
    })
}

impl Rib {
    #[inline]
    pub(super) fn upsert_path(
        &mut self,
        prefix: IpNet,
        peer: PeerId,
        rx_path_id: u32,
        received: Arc<RouteAttrs>,
        accepted: Option<Arc<RouteAttrs>>,
    ) {
        let mut replaced = false;
        let clock = self.clock;
        self.modify(prefix, |entry, _| match entry.find(peer, rx_path_id) {
            Some(i) => {
                let p = &mut entry.paths[i];
                p.stale = false;
                // Interned: the same attributes are the same set. A refresh with the same
                // attributes keeps the time it was learned.
                if !Arc::ptr_eq(&p.received, &received) {
                    p.since = clock;
                }
                p.received = received;
                p.accepted = accepted;
                replaced = true;
            }
            None => {
                let tx_path_id = entry.free_tx_path_id();
                entry.paths.push(Path {
                    peer,
                    rx_path_id,
                    tx_path_id,
                    stale: false,
                    since: clock,
                    received,
                    accepted,
                });
            }
        });
        if replaced {
            self.released += 1;
        } else {
            self.count(peer, &prefix, 1);
        }
    }

    #[inline]
    pub(super) fn remove_path(&mut self, prefix: IpNet, peer: PeerId, rx_path_id: u32) {
        if self
            .table
            .get(&prefix)
            .and_then(|e| e.find(peer, rx_path_id))
            .is_none()
        {
            return;
        }
        self.modify(prefix, |entry, _| {
            if let Some(i) = entry.find(peer, rx_path_id) {
                entry.paths.remove(i);
            }
        });
        self.count(peer, &prefix, -1);
        self.released += 1;
    }

    /// Removes every path of `peer` for which `which` holds.
    pub(crate) fn remove_peer_paths(&mut self, peer: PeerId, which: impl Fn(&Path) -> bool) {
        let prefixes: Vec<IpNet> = self
            .table
            .iter()
            .filter(|(_, e)| e.paths.iter().any(|p| p.peer == peer && which(p)))
            .map(|(p, _)| p)
            .collect();
        for prefix in prefixes {
            let mut removed = 0i64;
            self.modify(prefix, |entry, _| {
                let before = entry.paths.len();
                entry.paths.retain(|p| !(p.peer == peer && which(p)));
                removed = (before - entry.paths.len()) as i64;
            });
            self.count(peer, &prefix, -removed);
            self.released += 1;
        }
        self.maybe_sweep();
    }

    /// Applies `mutate` to the entry of `prefix`, reruns the decision process, and propagates a
    /// changed selection to the FIB and every export group.
    pub(crate) fn modify(
        &mut self,
        prefix: IpNet,
        mutate: impl FnOnce(&mut PrefixEntry, &mut Interner<RouteAttrs>),
    ) {
        let (entry, new) = self.table.entry(prefix, PrefixEntry::default);
        // A new prefix had no selection: it changed exactly when it now has one.
        let before = (!new).then(|| entry.signature());
        mutate(entry, &mut self.attrs);
        select_into(entry, &prefix, &self.peers, &self.local);
        let changed = match before {
            Some(before) => before != entry.signature(),
            None => entry.multipath > 0,
        };
        if changed {
            if self.track_fib && !entry.fib_dirty {
                entry.fib_dirty = true;
                self.fib_dirty.push(prefix);
            }
            let view = ExportView {
                peers: &self.peers,
                local: &self.local,
                policy: &self.policy,
                config: &self.config,
            };
            let current = (!entry.paths.is_empty()).then_some(&*entry);
            for group in self.groups.values_mut() {
                let out = view.compute(group, prefix, current, &mut self.attrs);
                if group.set(prefix, out).is_some() {
                    self.released += 1;
                }
            }
        }
        if entry.paths.is_empty() {
            self.table.remove(&prefix);
        }
    }
}
