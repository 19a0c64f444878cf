//! Adj-RIB-In, Loc-RIB, Adj-RIB-Out, best path, policy and route reflection. Pure.
//!
//! [`Rib`] is a plain value owned by the RIB task: inputs are method calls (peer up/down,
//! received UPDATEs, End-of-RIB, local routes, policy, time), outputs are pulled (per-peer
//! UPDATEs from the export groups, FIB changes). No tokio, no sockets, no clock: time is passed
//! in as `Instant`s.
//!
//! ```text
//!  UPDATE ─► import policy ─► paths (pre + post policy) ─► decision ─► Loc-RIB ─┬─► FIB changes
//!  local routes ─────────────────────────────────────────┘   process            └─► export groups
//!                                                                                  (policy once,
//!                                                                                   pulled per peer)
//! ```
//!
//! # Driving it (the RIB task)
//!
//! | input | call |
//! |---|---|
//! | session Established | [`Rib::peer_up`] with [`PeerSession::from_peering`] (plan peering + [`peer::SessionFacts`]); returns the peer's [`GroupId`] |
//! | UPDATE received | [`Rib::update`] with [`RouteUpdate::from_wire`] (RFC 7606 treat-as-withdraw applied) |
//! | End-of-RIB received | [`Rib::end_of_rib`] |
//! | session down | [`Rib::peer_down`] (`Some(restart time)` when the peer negotiated GR and did not send a NOTIFICATION) |
//! | ROUTE-REFRESH received | [`Rib::route_refresh`] |
//! | plan changed | [`Rib::set_policy`] (`PolicyContext::from(&plan.policy)`), [`Rib::sync_originated`] (`&plan.originated`), [`Rib::update_peer`] (new filters/roles) |
//! | kernel route learned / gone | [`Rib::originate`] with [`LocalRouteKind::Kernel`] / [`Rib::withdraw_local`] |
//! | time | [`Rib::advance`] at [`Rib::next_deadline`] (GR restart timers) |
//!
//! | output | call |
//! |---|---|
//! | UPDATEs for a peer whose socket can take more | [`Rib::pull`] → [`PullOutput`]: [`OutboundUpdate::encode`] each batch with the session's `bgp_proto::Context`; send End-of-RIB when `end_of_rib`; pull again when `more` (or at `wake_at` with a minimum advertisement interval); [`Rib::has_pending`] after any input tells which peers to wake |
//! | kernel | [`Rib::take_fib_changes`] → [`FibChange`] (prefix, [`FibRoute`]: ECMP next hops, LOCAL_PREF, metric, [`FibSource`]) or `None` = remove |
//! | status | [`Rib::loc_rib`], [`Rib::paths`], [`Rib::adj_rib_in`], [`Rib::group_of`], [`Rib::stats`] |
//!
//! Modules: [`attrs`] (the attribute set) and [`intern`] (hash-consing), [`loc_rib`] (paths per
//! prefix; the compact prefix maps are [`crate::table`]), [`best_path`] (decision process and multipath),
//! [`reflection`] (split horizon, RFC 4456), [`policy`] (BGPFilter seam, Calico export pipeline,
//! import), [`adj_out`] (export groups), [`origination`] (local routes), [`graceful_restart`]
//! (RFC 4724 helper). The [`Rib`] facade's methods are split by what they do: `input` (UPDATEs,
//! local routes, policy and identity changes, re-import), `selection` (change a prefix's paths,
//! decide, propagate), `export_view` (each group's out-state and the pulls), `fib_view` (the
//! changes and routes the kernel side reads).

pub mod adj_out;
pub mod attrs;
pub mod best_path;
pub mod graceful_restart;
pub mod intern;
pub mod loc_rib;
pub mod origination;
pub mod peer;
pub mod policy;
pub mod reflection;

mod export_view;
mod fib_view;
mod input;
mod selection;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use ipnet::IpNet;

pub use adj_out::{GroupId, Nlri, OutboundUpdate, PullOutput};
pub use attrs::RouteAttrs;
pub use fib_view::{FibChange, FibRoute, FibSource};
pub use input::RouteUpdate;
pub use origination::{LocalRoute, LocalRouteKind};
pub use peer::{Families, NextHopMode, PeerId, PeerSession, PeerType, ReflectionRole};
pub use policy::PolicyContext;

use crate::table::{self, PrefixTable};
use adj_out::ExportGroup;
use export_view::same_filter;
use intern::Interner;
use loc_rib::{Arrival, Path, PrefixEntry};

/// How many prefixes ahead [`Rib::update`] prefetches table buckets.
const PREFETCH_AHEAD: usize = 8;

/// Node-wide RIB settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RibConfig {
    /// Our BGP Identifier.
    pub router_id: Ipv4Addr,
    /// The node's AS.
    pub local_as: u32,
    /// Our cluster id when this node is a route reflector.
    pub cluster_id: Option<Ipv4Addr>,
    /// Minimum time between two sends to one peer (RFC 4271 §9.2.1.1); 0 inside the cluster.
    pub min_advertisement_interval: Duration,
}

/// Sizes, for status output and the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RibStats {
    /// Prefixes with at least one path.
    pub prefixes: usize,
    /// Paths over all prefixes.
    pub paths: usize,
    /// Distinct interned attribute sets alive.
    pub attribute_sets: usize,
    /// Export groups.
    pub groups: usize,
}

#[derive(Debug)]
pub(crate) struct PeerState {
    pub(crate) session: PeerSession,
    pub(crate) group: Option<GroupId>,
    /// Graceful restart: stale routes are swept at this time (RFC 4724 §4.2).
    pub(crate) stale_deadline: Option<Instant>,
    /// Paths received from the peer and held (pre-policy, stale ones included): IPv4, IPv6.
    pub(crate) received: [u32; 2],
}

/// The table cannot take the UPDATE's new prefixes: it was rejected whole, nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "RIB full: {prefixes} prefixes held, the UPDATE announces {announced} and the table holds at most {limit}; UPDATE rejected"
)]
pub struct RibFull {
    /// Prefixes in the Loc-RIB.
    pub prefixes: usize,
    /// Routes the rejected UPDATE announced.
    pub announced: usize,
    /// The limit.
    pub limit: usize,
}

/// The routing information base (see the module docs).
#[derive(Debug)]
pub struct Rib {
    config: RibConfig,
    /// The time stamped on paths that arrive ([`Rib::set_clock`]).
    clock: Arrival,
    policy: PolicyContext,
    attrs: Interner<RouteAttrs>,
    table: PrefixTable<PrefixEntry>,
    local: PrefixTable<LocalRoute>,
    pub(crate) peers: HashMap<PeerId, PeerState>,
    groups: HashMap<GroupId, ExportGroup>,
    group_of_key: HashMap<peer::ExportKey, GroupId>,
    next_group: u32,
    /// Prefixes whose selection changed since the last `take_fib_changes` (each once while its
    /// entry's `fib_dirty` flag is set).
    fib_dirty: Vec<IpNet>,
    /// Whether Loc-RIB changes are recorded for [`Rib::take_fib_changes`] (off when nothing
    /// programs the kernel, see [`Rib::set_fib_tracking`]).
    track_fib: bool,
    released: usize,
    /// Most prefixes the table may hold ([`table::MAX_ENTRIES`]; lower in tests).
    max_prefixes: usize,
}

impl Rib {
    /// An empty RIB.
    pub fn new(config: RibConfig, policy: PolicyContext) -> Self {
        Self {
            clock: Arrival::default(),
            config,
            policy,
            attrs: Interner::default(),
            table: PrefixTable::default(),
            local: PrefixTable::default(),
            peers: HashMap::new(),
            groups: HashMap::new(),
            group_of_key: HashMap::new(),
            next_group: 0,
            fib_dirty: Vec::new(),
            track_fib: true,
            released: 0,
            max_prefixes: table::MAX_ENTRIES,
        }
    }

    /// Lowers the most prefixes the table may hold (to test the full-table path).
    pub fn set_max_prefixes(&mut self, limit: usize) {
        self.max_prefixes = limit.min(table::MAX_ENTRIES);
    }

    /// Paths held from `peer` (pre-policy, stale included) for IPv4 and IPv6: what a maximum
    /// prefix limit counts (RFC 4486 §4).
    pub fn received_counts(&self, peer: PeerId) -> [u32; 2] {
        self.peers.get(&peer).map_or([0, 0], |s| s.received)
    }

    fn count(&mut self, peer: PeerId, prefix: &IpNet, delta: i64) {
        if let Some(state) = self.peers.get_mut(&peer) {
            let slot = &mut state.received[usize::from(prefix.addr().is_ipv6())];
            *slot = (i64::from(*slot) + delta).clamp(0, i64::from(u32::MAX)) as u32;
        }
    }

    /// The node-wide settings.
    pub fn config(&self) -> &RibConfig {
        &self.config
    }

    /// The local route originated for `prefix`, if any.
    pub fn local_route(&self, prefix: &IpNet) -> Option<&LocalRoute> {
        self.local.get(prefix)
    }

    /// Sets the time stamped on paths that arrive from now on, in seconds on the caller's clock
    /// (the RIB reads none). A path keeps the time it arrived until it arrives with other
    /// attributes ([`Path::since`]).
    pub fn set_clock(&mut self, secs: u32) {
        self.clock = Arrival::from_secs(secs);
    }

    /// A session reached Established: register the peer and put it in its export group (it will
    /// be sent the whole table, then End-of-RIB). A peer that comes back after a graceful restart
    /// keeps its stale routes until End-of-RIB; without the capability they are flushed now
    /// (RFC 4724 §4.2).
    pub fn peer_up(&mut self, peer: PeerId, session: PeerSession) -> GroupId {
        let had_stale = self
            .peers
            .get(&peer)
            .is_some_and(|s| s.stale_deadline.is_some());
        let restart_capable = session.graceful_restart;
        if let Some(old) = self.peers.get(&peer).and_then(|s| s.group) {
            self.leave_group(peer, old);
        }
        let group = self.group_for(&session);
        let deadline = self.peers.get(&peer).and_then(|s| s.stale_deadline);
        let received = self.received_counts(peer);
        self.peers.insert(
            peer,
            PeerState {
                session,
                group: Some(group),
                stale_deadline: deadline,
                received,
            },
        );
        if had_stale && !restart_capable {
            self.sweep_stale(peer);
        }
        let mut recompute = false;
        if let Some(g) = self.groups.get_mut(&group) {
            // A group that had one member did not store that member's own paths
            // (`ExportGroup::sole_member`); now that another peer shares it, it needs them.
            recompute = g.sole_member().is_some_and(|m| m != peer);
            g.join(peer);
        }
        if recompute {
            let prefixes: Vec<IpNet> = self.table.prefixes().collect();
            for prefix in prefixes {
                self.export_to_group(group, prefix);
            }
        }
        group
    }

    /// Sends `peer` the whole table again from its current state, then End-of-RIB, as when it
    /// joined its export group; what the group logged for it meanwhile is skipped (the table is
    /// read as it is now). A restarting speaker holds its UPDATEs back until its route
    /// selection is complete (RFC 4724 §4.1), then starts each peer over with this: nothing
    /// was sent on those sessions yet.
    pub fn resend_table(&mut self, peer: PeerId) {
        let Some(group) = self.peers.get(&peer).and_then(|s| s.group) else {
            return;
        };
        if let Some(g) = self.groups.get_mut(&group) {
            g.join(peer);
        }
    }

    /// The session went down. With `graceful_restart` (the peer's restart time, when it
    /// negotiated GR and the session did not end with a NOTIFICATION), its routes stay, marked
    /// stale, until End-of-RIB or `now + restart time`; otherwise they are withdrawn now.
    pub fn peer_down(&mut self, peer: PeerId, now: Instant, graceful_restart: Option<Duration>) {
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        let group = state.group.take();
        if let Some(g) = group {
            self.leave_group(peer, g);
        }
        match graceful_restart {
            Some(restart_time) => self.mark_stale(peer, now + restart_time),
            None => {
                self.remove_peer_paths(peer, |_| true);
                self.peers.remove(&peer);
            }
        }
    }

    /// New import filters, export filters or roles for an established peer: re-runs import policy
    /// over its pre-policy Adj-RIB-In (no session reset) and moves it to the right export group.
    pub fn update_peer(&mut self, peer: PeerId, session: PeerSession) {
        let Some(state) = self.peers.get(&peer) else {
            return;
        };
        let regroup = state.session.export_key() != session.export_key();
        let new_filter = if session.filters_apply() {
            session.export_filter.clone()
        } else {
            None
        };
        if regroup {
            self.peer_up(peer, session);
        } else if let Some(state) = self.peers.get_mut(&peer) {
            state.session = session;
            // Same filter names, new compiled rules (a BGPFilter was edited): the group's members
            // all name the same filters, so the group takes the new rules and recomputes.
            let group = state.group;
            if let Some(id) = group
                && let Some(g) = self.groups.get_mut(&id)
                && !same_filter(&g.filter, &new_filter)
            {
                g.filter = new_filter;
                g.memo.clear();
                let prefixes: Vec<IpNet> = self.table.prefixes().chain(g.prefixes()).collect();
                for prefix in prefixes {
                    self.export_to_group(id, prefix);
                }
            }
        }
        self.reimport(peer);
    }

    fn group_for(&mut self, session: &PeerSession) -> GroupId {
        let key = session.export_key();
        if let Some(&g) = self.group_of_key.get(&key) {
            return g;
        }
        let id = GroupId(self.next_group);
        self.next_group += 1;
        let filter = if session.filters_apply() {
            session.export_filter.clone()
        } else {
            None
        };
        self.groups
            .insert(id, ExportGroup::new(key.clone(), filter));
        self.group_of_key.insert(key, id);
        // A new group computes its Adj-RIB-Out from the whole Loc-RIB once.
        let prefixes: Vec<IpNet> = self.table.prefixes().collect();
        for prefix in prefixes {
            self.export_to_group(id, prefix);
        }
        id
    }

    fn leave_group(&mut self, peer: PeerId, group: GroupId) {
        let Some(g) = self.groups.get_mut(&group) else {
            return;
        };
        g.leave(peer);
        if g.is_empty() {
            self.group_of_key.remove(&g.key);
            if let Some(g) = self.groups.remove(&group) {
                drop(g);
                self.released += 1;
            }
        }
    }

    /// The best path of every prefix.
    pub fn loc_rib(&self) -> impl Iterator<Item = (IpNet, &Path)> {
        self.table
            .iter()
            .filter_map(|(p, e)| e.best().map(|b| (p, b)))
    }

    /// All paths of `prefix`, selected ones first.
    pub fn paths(&self, prefix: &IpNet) -> &[Path] {
        self.table.get(prefix).map_or(&[], |e| &e.paths)
    }

    /// The selected (ECMP) paths of `prefix`, best first.
    pub fn selected(&self, prefix: &IpNet) -> &[Path] {
        self.table.get(prefix).map_or(&[], |e| e.selected())
    }

    /// `peer`'s Adj-RIB-In: every path it sent, with its pre-policy (`received`) and
    /// post-policy (`accepted`) attributes.
    pub fn adj_rib_in(&self, peer: PeerId) -> impl Iterator<Item = (IpNet, &Path)> {
        self.table.iter().flat_map(move |(prefix, e)| {
            e.paths
                .iter()
                .filter(move |p| p.peer == peer)
                .map(move |p| (prefix, p))
        })
    }

    /// The export group of `peer`.
    pub fn group_of(&self, peer: PeerId) -> Option<&ExportGroup> {
        self.peers
            .get(&peer)
            .and_then(|s| s.group)
            .and_then(|g| self.groups.get(&g))
    }

    /// Paths per peer, in one sequential pass over the table (no per-prefix lookup): for each
    /// peer, (paths received, paths accepted by import policy); and the stale paths overall.
    pub fn path_counts(&self) -> (HashMap<PeerId, (u64, u64)>, u64) {
        let mut per_peer: HashMap<PeerId, (u64, u64)> = HashMap::new();
        let mut stale = 0;
        for (_, entry) in self.table.iter() {
            for path in &entry.paths {
                let counts = per_peer.entry(path.peer).or_default();
                counts.0 += 1;
                counts.1 += u64::from(path.accepted.is_some());
                stale += u64::from(path.stale);
            }
        }
        (per_peer, stale)
    }

    /// Sizes.
    pub fn stats(&self) -> RibStats {
        RibStats {
            prefixes: self.table.len(),
            paths: self.table.iter().map(|(_, e)| e.paths.len()).sum(),
            attribute_sets: self.attrs.len(),
            groups: self.groups.len(),
        }
    }

    /// Bytes held by the prefix tables themselves (not the shared attribute sets).
    pub fn table_bytes(&self) -> usize {
        self.table.heap_bytes()
            + self.local.heap_bytes()
            + self
                .groups
                .values()
                .map(ExportGroup::heap_bytes)
                .sum::<usize>()
    }

    /// Heap bytes per structure (debugging aid for the benchmark): Loc-RIB table, local table,
    /// export groups' Adj-RIB-Out tables, pending FIB changes.
    pub fn memory_breakdown(&self) -> [(&'static str, usize); 4] {
        [
            ("loc-rib table", self.table.heap_bytes()),
            ("local routes", self.local.heap_bytes()),
            (
                "adj-rib-out tables",
                self.groups.values().map(ExportGroup::heap_bytes).sum(),
            ),
            (
                "pending fib changes",
                self.fib_dirty.capacity() * std::mem::size_of::<IpNet>(),
            ),
        ]
    }

    /// Frees unused attribute sets now (also done automatically as routes churn).
    pub fn sweep_unused_attributes(&mut self) -> usize {
        // Sets only the interner holds go; then memo entries whose input went; then the
        // exported sets only those memo entries held.
        let mut freed = self.attrs.sweep();
        for g in self.groups.values_mut() {
            g.memo.retain(|_, (input, _)| input.strong_count() > 0);
        }
        freed += self.attrs.sweep();
        self.released = 0;
        freed
    }

    fn maybe_sweep(&mut self) {
        if self.released > 4096.max(self.attrs.len()) {
            self.sweep_unused_attributes();
        }
    }
}

#[cfg(test)]
mod tests;
