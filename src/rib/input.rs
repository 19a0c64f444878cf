//! RIB input: UPDATEs from the wire, local routes, policy and identity changes, and the
//! re-import they cause.

use std::net::Ipv4Addr;
use std::sync::Arc;

use hashbrown::HashMap;
use ipnet::IpNet;

use super::adj_out::{GroupId, Nlri};
use super::attrs::RouteAttrs;
use super::loc_rib::LOCAL_PEER;
use super::origination::{LocalRoute, LocalRouteKind};
use super::peer::PeerId;
use super::policy::PolicyContext;
use super::policy::import::{self, ImportContext, ImportResult};
use super::{PREFETCH_AHEAD, Rib, RibFull};

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

impl Rib {
    /// Applies a received UPDATE from `peer` (ignored when the peer is not registered).
    ///
    /// An UPDATE whose announcements could overflow the table is rejected whole (nothing
    /// changes) and reported: a prefix table holds at most [`MAX_ENTRIES`](crate::table::MAX_ENTRIES) entries.
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
    pub(super) fn forget_last_exports(&mut self) {
        for g in self.groups.values_mut() {
            g.last = None;
        }
    }

    #[inline]
    pub(super) fn run_import(
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

    pub(super) fn reimport(&mut self, peer: PeerId) {
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
    /// ([`PeerSession::local_as`](crate::rib::PeerSession::local_as)) and follows the sessions, which are reset for it.
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
    pub(super) fn recompute_all(&mut self) {
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
}
