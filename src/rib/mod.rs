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
//! Modules: [`attrs`] (the attribute set) and [`intern`] (hash-consing), [`table`] (compact prefix
//! maps), [`loc_rib`] (paths per prefix), [`best_path`] (decision process and multipath),
//! [`reflection`] (split horizon, RFC 4456), [`policy`] (BGPFilter seam, Calico export pipeline,
//! import), [`adj_out`] (export groups), [`origination`] (local routes), [`graceful_restart`]
//! (RFC 4724 helper).

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
pub mod table;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use ipnet::IpNet;
use smallvec::SmallVec;

pub use adj_out::{GroupId, Nlri, OutboundUpdate, PullOutput};
pub use attrs::RouteAttrs;
pub use origination::{LocalRoute, LocalRouteKind};
pub use peer::{Families, NextHopMode, PeerId, PeerSession, PeerType, ReflectionRole};
pub use policy::PolicyContext;

use adj_out::{ExportGroup, LastExport, MemoKey, OutPath, OutPaths};
use best_path::{Candidate, CandidateSource};
use intern::Interner;
use loc_rib::{LOCAL_PEER, Path, PrefixEntry};
use policy::export::{self, ExportDecision, ExportStep, ExportTarget, RouteClass};
use policy::import::{self, ImportContext, ImportResult};
use table::PrefixTable;

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

/// One received UPDATE, already decoded and checked (RFC 7606 treat-as-withdraw turns announced
/// NLRI into `withdrawn` before it gets here).
#[derive(Debug, Clone, Default)]
pub struct RouteUpdate {
    /// Withdrawn NLRI (path id = ADD-PATH id when negotiated).
    pub withdrawn: Vec<Nlri>,
    /// Announced NLRI, all with `attrs`.
    pub announced: Vec<Nlri>,
    /// The attributes of `announced`, with the next hop of NEXT_HOP or MP_REACH_NLRI.
    pub attrs: Option<RouteAttrs>,
}

impl RouteUpdate {
    /// The routes of a decoded UPDATE (IPv4 and IPv6 unicast; other families are not the RIB's).
    ///
    /// RFC 7606 §2 treat-as-withdraw (and AFI/SAFI-disable, which the session handles by
    /// resetting or disabling the family) turns every announced route into a withdrawal, so a
    /// malformed UPDATE never installs anything and removes what it replaced.
    pub fn from_wire(update: &bgp_proto::Update) -> Self {
        let unicast = |f: &bgp_proto::Family| {
            *f == bgp_proto::Family::IPV4_UNICAST || *f == bgp_proto::Family::IPV6_UNICAST
        };
        let mut withdrawn: Vec<Nlri> = update
            .withdrawn_routes()
            .filter(|(f, _)| unicast(f))
            .map(|(_, n)| *n)
            .collect();
        let announced: Vec<Nlri> = update
            .announced()
            .filter(|(f, _)| unicast(f))
            .map(|(_, n)| *n)
            .collect();
        let withdraw_all = matches!(
            update.action(),
            Some(
                bgp_proto::Rfc7606Action::TreatAsWithdraw
                    | bgp_proto::Rfc7606Action::AfiSafiDisable
                    | bgp_proto::Rfc7606Action::SessionReset
            )
        );
        if withdraw_all {
            withdrawn.extend(announced);
            return RouteUpdate {
                withdrawn,
                announced: Vec::new(),
                attrs: None,
            };
        }
        let attrs = (!announced.is_empty()).then(|| RouteAttrs::from_wire(&update.attributes));
        RouteUpdate {
            withdrawn,
            announced,
            attrs,
        }
    }
}

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
/// [`crate::fib::KernelRoute`] with the pool rules.
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

    /// The node-wide settings.
    pub fn config(&self) -> &RibConfig {
        &self.config
    }

    // ----- peers -------------------------------------------------------------------------

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

    // ----- routes in ---------------------------------------------------------------------

    /// Applies a received UPDATE from `peer` (ignored when the peer is not registered).
    ///
    /// An UPDATE whose announcements could overflow the table is rejected whole (nothing
    /// changes) and reported: a prefix table holds at most [`table::MAX_ENTRIES`] entries.
    pub fn update(&mut self, peer: PeerId, update: RouteUpdate) -> Result<(), RibFull> {
        if !self.peers.contains_key(&peer) {
            return Ok(());
        }
        let prefixes = self.table.len();
        if prefixes.saturating_add(update.announced.len()) > self.max_prefixes {
            let new = update
                .announced
                .iter()
                .filter(|n| self.table.get(&n.prefix).is_none())
                .count();
            if prefixes.saturating_add(new) > self.max_prefixes {
                return Err(RibFull {
                    prefixes,
                    announced: update.announced.len(),
                    limit: self.max_prefixes,
                });
            }
        }
        for nlri in update.withdrawn {
            self.remove_path(nlri.prefix, peer, nlri.path_id.unwrap_or(0));
        }
        let Some(attrs) = update.attrs else {
            self.forget_last_exports();
            return Ok(());
        };
        let received = self.attrs.intern(attrs);
        // Import depends on the prefix only through a filter rule on the CIDR or the priority;
        // otherwise every prefix of the UPDATE gets the same result (per family), computed once.
        let per_update = self.peers.get(&peer).is_some_and(|s| {
            !(s.session.filters_apply()
                && s.session
                    .import_filter
                    .as_ref()
                    .is_some_and(|f| f.depends_on_prefix()))
        });
        let mut memo: [Option<Option<Arc<RouteAttrs>>>; 2] = [None, None];
        for (i, nlri) in update.announced.iter().enumerate() {
            // At a million prefixes each table probe is a cache miss: start loading the buckets
            // a few prefixes ahead, so the misses overlap with the work on this one.
            if let Some(ahead) = update.announced.get(i + PREFETCH_AHEAD) {
                self.table.prefetch(&ahead.prefix);
                for g in self.groups.values() {
                    g.prefetch(&ahead.prefix);
                }
            }
            let accepted = if per_update {
                let slot = &mut memo[usize::from(nlri.prefix.addr().is_ipv6())];
                match slot {
                    Some(result) => result.clone(),
                    None => {
                        let result = self.run_import(&nlri.prefix, &received, peer);
                        *slot = Some(result.clone());
                        result
                    }
                }
            } else {
                self.run_import(&nlri.prefix, &received, peer)
            };
            self.upsert_path(
                nlri.prefix,
                peer,
                nlri.path_id.unwrap_or(0),
                Arc::clone(&received),
                accepted,
            );
        }
        drop(memo);
        self.forget_last_exports();
        self.attrs.release(received);
        self.maybe_sweep();
        Ok(())
    }

    /// Deletes every path of `peer` for the prefixes of one address family (IPv6 when `ipv6`):
    /// RFC 7606 AFI/SAFI disable (§7.11), RFC 4760 §7.
    pub fn remove_peer_family(&mut self, peer: PeerId, ipv6: bool) {
        let prefixes: Vec<IpNet> = self
            .table
            .iter()
            .filter(|(prefix, e)| {
                prefix.addr().is_ipv6() == ipv6 && e.paths.iter().any(|p| p.peer == peer)
            })
            .map(|(p, _)| p)
            .collect();
        for prefix in prefixes {
            let mut removed = 0i64;
            self.modify(prefix, |entry, _| {
                let before = entry.paths.len();
                entry.paths.retain(|p| p.peer != peer);
                removed = (before - entry.paths.len()) as i64;
            });
            self.count(peer, &prefix, -removed);
            self.released += 1;
        }
        self.maybe_sweep();
    }

    /// Drops the export groups' per-UPDATE outcome caches ([`adj_out::LastExport`]), which are
    /// only valid while one UPDATE is applied.
    fn forget_last_exports(&mut self) {
        for g in self.groups.values_mut() {
            g.last = None;
        }
    }

    fn run_import(
        &mut self,
        prefix: &IpNet,
        received: &Arc<RouteAttrs>,
        peer: PeerId,
    ) -> Option<Arc<RouteAttrs>> {
        let session = &self.peers.get(&peer)?.session;
        let ctx = ImportContext {
            router_id: self.config.router_id,
            cluster_id: self.config.cluster_id,
            normal_priority: self.policy.normal_priority(prefix),
        };
        match import::import(prefix, received, session, &ctx) {
            ImportResult::Unchanged => Some(Arc::clone(received)),
            ImportResult::Modified(a) => Some(self.attrs.intern(*a)),
            ImportResult::Rejected(_) => None,
        }
    }

    fn reimport(&mut self, peer: PeerId) {
        let work: Vec<(IpNet, u32, Arc<RouteAttrs>)> = self
            .table
            .iter()
            .flat_map(|(prefix, e)| {
                e.paths
                    .iter()
                    .filter(|p| p.peer == peer)
                    .map(move |p| (prefix, p.rx_path_id, Arc::clone(&p.received)))
            })
            .collect();
        for (prefix, rx, received) in work {
            let accepted = self.run_import(&prefix, &received, peer);
            let stale = self
                .table
                .get(&prefix)
                .and_then(|e| e.find(peer, rx).map(|i| e.paths[i].stale))
                .unwrap_or(false);
            self.upsert_path(prefix, peer, rx, received, accepted);
            if stale {
                self.modify(prefix, |e, _| {
                    if let Some(i) = e.find(peer, rx) {
                        e.paths[i].stale = true;
                    }
                });
            }
        }
        self.maybe_sweep();
    }

    /// Originates (or updates) a local route: a block, a service range or a kernel-learned route.
    pub fn originate(&mut self, prefix: IpNet, route: LocalRoute) {
        let attrs = self.attrs.intern(route.attrs());
        self.local.insert(prefix, route);
        self.upsert_path(
            prefix,
            LOCAL_PEER,
            0,
            Arc::clone(&attrs),
            Some(Arc::clone(&attrs)),
        );
        self.attrs.release(attrs);
    }

    /// Makes the plan's originated routes (blocks and service ranges) the node's non-kernel
    /// local routes: new ones are originated, gone ones withdrawn, kernel-learned ones untouched.
    /// Blocks and service ranges carry the normal priority of their family.
    pub fn sync_originated(&mut self, routes: &[crate::plan::OriginatedRoute]) {
        use crate::plan::OriginKind;
        let wanted: HashMap<IpNet, LocalRoute> = routes
            .iter()
            .map(|r| {
                let kind = match r.kind {
                    OriginKind::Block => LocalRouteKind::Block,
                    OriginKind::ServiceClusterIp
                    | OriginKind::ServiceExternalIp
                    | OriginKind::ServiceLoadBalancerIp
                    | OriginKind::Service => LocalRouteKind::Service,
                };
                let metric = self.policy.normal_priority(&r.prefix);
                (r.prefix, LocalRoute { kind, metric })
            })
            .collect();
        let gone: Vec<IpNet> = self
            .local
            .iter()
            .filter(|(p, l)| {
                !matches!(l.kind, LocalRouteKind::Kernel { .. }) && !wanted.contains_key(p)
            })
            .map(|(p, _)| p)
            .collect();
        for prefix in gone {
            self.withdraw_local(prefix);
        }
        for (prefix, route) in wanted {
            if self.local.get(&prefix) != Some(&route) {
                self.originate(prefix, route);
            }
        }
    }

    /// Stops originating `prefix`.
    pub fn withdraw_local(&mut self, prefix: IpNet) {
        self.remove_path(prefix, LOCAL_PEER, 0);
        self.local.remove(&prefix);
        self.maybe_sweep();
    }

    /// Replaces the policy context (plan change): every export is re-evaluated, only the
    /// differences are sent; no session is reset.
    pub fn set_policy(&mut self, policy: PolicyContext) {
        if policy == self.policy {
            return;
        }
        self.policy = policy;
        self.recompute_all();
    }

    /// A new identity (the node's router id or route-reflector cluster id changed): loop
    /// checks and route reflection use it from now on, so every import and export is
    /// re-evaluated, as for a policy change. The local AS is per session
    /// ([`PeerSession::local_as`]) and follows the sessions, which are reset for it.
    pub fn set_identity(
        &mut self,
        router_id: Ipv4Addr,
        local_as: u32,
        cluster_id: Option<Ipv4Addr>,
    ) {
        let unchanged = self.config.router_id == router_id && self.config.cluster_id == cluster_id;
        self.config.local_as = local_as;
        if unchanged {
            return;
        }
        self.config.router_id = router_id;
        self.config.cluster_id = cluster_id;
        self.recompute_all();
    }

    /// Re-runs every export (memos cleared) and every import.
    fn recompute_all(&mut self) {
        let ids: Vec<GroupId> = self.groups.keys().copied().collect();
        for id in ids {
            let Some(g) = self.groups.get_mut(&id) else {
                continue;
            };
            g.memo.clear();
            let mut prefixes = g.prefixes();
            prefixes.extend(self.table.prefixes());
            prefixes.sort_unstable();
            prefixes.dedup();
            for prefix in prefixes {
                self.export_to_group(id, prefix);
            }
        }
        // Imports depend on the normal priority; re-run them for every peer.
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for p in peers {
            self.reimport(p);
        }
        self.maybe_sweep();
    }

    // ----- routes out --------------------------------------------------------------------

    /// Takes up to `max_prefixes` pending changes for `peer`, packed into UPDATEs.
    pub fn pull(&mut self, peer: PeerId, now: Instant, max_prefixes: usize) -> PullOutput {
        let Some(group) = self.peers.get(&peer).and_then(|s| s.group) else {
            return PullOutput::default();
        };
        let mrai = self.config.min_advertisement_interval;
        let out = match self.groups.get_mut(&group) {
            Some(g) => g.pull(peer, now, max_prefixes, mrai),
            None => PullOutput::default(),
        };
        self.maybe_sweep();
        out
    }

    /// Whether `peer` has anything to pull.
    pub fn has_pending(&self, peer: PeerId) -> bool {
        self.peers
            .get(&peer)
            .and_then(|s| s.group)
            .and_then(|g| self.groups.get(&g))
            .is_some_and(|g| g.has_pending(peer))
    }

    /// Route refresh request from `peer` (RFC 2918): its whole Adj-RIB-Out is sent again.
    pub fn route_refresh(&mut self, peer: PeerId) {
        if let Some(g) = self.peers.get(&peer).and_then(|s| s.group)
            && let Some(group) = self.groups.get_mut(&g)
        {
            group.refresh(peer);
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

    // ----- views -------------------------------------------------------------------------

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

    // ----- the core: change a prefix, reselect, propagate -------------------------------

    fn upsert_path(
        &mut self,
        prefix: IpNet,
        peer: PeerId,
        rx_path_id: u32,
        received: Arc<RouteAttrs>,
        accepted: Option<Arc<RouteAttrs>>,
    ) {
        let mut replaced = false;
        self.modify(prefix, |entry, _| match entry.find(peer, rx_path_id) {
            Some(i) => {
                let p = &mut entry.paths[i];
                p.stale = false;
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

    fn remove_path(&mut self, prefix: IpNet, peer: PeerId, rx_path_id: u32) {
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

    /// Computes the out-state of `prefix` for group `id` and stores it (logging a change).
    fn export_to_group(&mut self, id: GroupId, prefix: IpNet) {
        let Some(group) = self.groups.get_mut(&id) else {
            return;
        };
        let view = ExportView {
            peers: &self.peers,
            local: &self.local,
            policy: &self.policy,
            config: &self.config,
        };
        let out = view.compute(group, prefix, self.table.get(&prefix), &mut self.attrs);
        if group.set(prefix, out).is_some() {
            self.released += 1;
        }
    }
}

/// What computing a group's out-state reads besides the group and the prefix's entry.
struct ExportView<'a> {
    peers: &'a HashMap<PeerId, PeerState>,
    local: &'a PrefixTable<LocalRoute>,
    policy: &'a PolicyContext,
    config: &'a RibConfig,
}

impl ExportView<'_> {
    /// The out-state of `prefix` for `group`: the best path (or, with ADD-PATH, the multipath
    /// set) through the export decision and, via the group's memo, the export transform.
    fn compute(
        &self,
        group: &mut ExportGroup,
        prefix: IpNet,
        entry: Option<&PrefixEntry>,
        interner: &mut Interner<RouteAttrs>,
    ) -> OutPaths {
        let mut out = OutPaths::new();
        // RFC 4760 §5: only the families both sides advertised are sent on a session.
        if !group.key.families.carries(&prefix) {
            return out;
        }
        if let Some(entry) = entry {
            let selected = entry.selected();
            let candidates = if group.key.add_path_send {
                selected
            } else {
                &selected[..selected.len().min(1)]
            };
            let target = ExportTarget {
                key: &group.key,
                filter: group.filter.as_deref(),
                cluster_id: self.config.cluster_id,
                router_id: self.config.router_id,
            };
            let sole_member = group.sole_member();
            for path in candidates {
                let Some(attrs) = &path.accepted else {
                    continue;
                };
                if sole_member == Some(path.peer) {
                    continue;
                }
                let Some(class) = route_class(path, &prefix, self.peers, self.local) else {
                    continue;
                };
                let ipv6 = prefix.addr().is_ipv6();
                // A learned route's export is the same for every prefix of its UPDATE when the
                // filter reads no prefix and the filter or propagation step decides it.
                let cacheable = matches!(class, RouteClass::Learned { .. })
                    && target.filter.is_some_and(|f| !f.depends_on_prefix());
                if cacheable
                    && let Some(last) = &group.last
                    && Arc::ptr_eq(&last.input, attrs)
                    && last.source == path.peer
                    && last.ipv6 == ipv6
                {
                    if let Some(exported) = &last.exported {
                        out.push(OutPath {
                            tx_path_id: if group.key.add_path_send {
                                path.tx_path_id
                            } else {
                                0
                            },
                            source: path.peer,
                            attrs: Arc::clone(exported),
                        });
                    }
                    continue;
                }
                let (community_mask, rule, step) =
                    match export::decide(&prefix, attrs, class, &target, self.policy) {
                        ExportDecision::Accept {
                            community_mask,
                            rule,
                            step,
                        } => (community_mask, rule, step),
                        ExportDecision::Reject(step) => {
                            if cacheable
                                && matches!(step, ExportStep::Propagation | ExportStep::Filter)
                            {
                                group.last = Some(LastExport {
                                    input: Arc::clone(attrs),
                                    source: path.peer,
                                    ipv6,
                                    exported: None,
                                });
                            }
                            continue;
                        }
                    };
                let memo_key = MemoKey {
                    input: Arc::as_ptr(attrs) as usize,
                    class: match class {
                        RouteClass::Local { .. } => 0,
                        RouteClass::Learned {
                            peer_type: PeerType::Ebgp,
                            ..
                        } => 1,
                        RouteClass::Learned {
                            peer_type: PeerType::Ibgp,
                            ..
                        } => 2,
                    },
                    source_router_id: match class {
                        RouteClass::Learned { router_id, .. } => u32::from(router_id),
                        RouteClass::Local { .. } => 0,
                    },
                    community_mask,
                    rule: rule.map_or(u32::MAX, |r| r.0),
                };
                let exported = match group.memo.get(&memo_key) {
                    // The Weak keeps the address from being reused, so a live entry is ours.
                    Some((input, exported)) if input.strong_count() > 0 => Arc::clone(exported),
                    _ => {
                        let t = export::transform(
                            attrs,
                            class,
                            rule.map(|r| r.1),
                            community_mask,
                            &target,
                            self.policy,
                        );
                        let exported = interner.intern(t);
                        group
                            .memo
                            .insert(memo_key, (Arc::downgrade(attrs), Arc::clone(&exported)));
                        exported
                    }
                };
                if cacheable && matches!(step, ExportStep::Propagation | ExportStep::Filter) {
                    group.last = Some(LastExport {
                        input: Arc::clone(attrs),
                        source: path.peer,
                        ipv6,
                        exported: Some(Arc::clone(&exported)),
                    });
                }
                out.push(OutPath {
                    tx_path_id: if group.key.add_path_send {
                        path.tx_path_id
                    } else {
                        0
                    },
                    source: path.peer,
                    attrs: exported,
                });
            }
        }
        out
    }
}

fn same_filter(
    a: &Option<Arc<dyn policy::filter::RouteFilter>>,
    b: &Option<Arc<dyn policy::filter::RouteFilter>>,
) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => Arc::ptr_eq(x, y),
        _ => false,
    }
}

/// How export sees `path`.
fn route_class<'a>(
    path: &Path,
    prefix: &IpNet,
    peers: &'a HashMap<PeerId, PeerState>,
    local: &'a PrefixTable<LocalRoute>,
) -> Option<RouteClass<'a>> {
    if path.peer == LOCAL_PEER {
        let l = local.get(prefix)?;
        return Some(RouteClass::Local {
            interface: l.interface(),
            metric: l.metric,
        });
    }
    let s = &peers.get(&path.peer)?.session;
    Some(RouteClass::Learned {
        peer_type: s.peer_type(),
        reflection: s.reflection,
        router_id: s.router_id,
    })
}

/// Runs the decision process over `entry` and orders its paths: selected set first, best first.
fn select_into(
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

fn candidate_source(
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

#[cfg(test)]
mod tests;
