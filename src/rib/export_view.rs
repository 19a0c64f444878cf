//! The export view: each export group's out-state computed from the Loc-RIB, and the pulls
//! that hand it to a peer.

use std::sync::Arc;
use std::time::Instant;

use hashbrown::HashMap;
use ipnet::IpNet;

use super::adj_out::{ExportGroup, GroupId, LastExport, MemoKey, OutPath, OutPaths, PullOutput};
use super::attrs::RouteAttrs;
use super::intern::Interner;
use super::loc_rib::{LOCAL_PEER, Path, PrefixEntry};
use super::origination::LocalRoute;
use super::peer::{PeerId, PeerType};
use super::policy::PolicyContext;
use super::policy::export::{self, ExportDecision, ExportStep, ExportTarget, RouteClass};
use super::{PeerState, Rib, RibConfig, policy};
use crate::table::PrefixTable;

/// What computing a group's out-state reads besides the group and the prefix's entry.
pub(super) struct ExportView<'a> {
    pub(super) peers: &'a HashMap<PeerId, PeerState>,
    pub(super) local: &'a PrefixTable<LocalRoute>,
    pub(super) policy: &'a PolicyContext,
    pub(super) config: &'a RibConfig,
}

impl ExportView<'_> {
    /// The out-state of `prefix` for `group`: the best path (or, with ADD-PATH, the multipath
    /// set) through the export decision and, via the group's memo, the export transform.
    #[inline]
    pub(super) fn compute(
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

#[inline]
pub(super) fn same_filter(
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
#[inline]
pub(super) fn route_class<'a>(
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

impl Rib {
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

    /// Computes the out-state of `prefix` for group `id` and stores it (logging a change).
    #[inline]
    pub(super) fn export_to_group(&mut self, id: GroupId, prefix: IpNet) {
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
