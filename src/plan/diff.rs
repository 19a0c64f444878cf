//! The difference between two plans, so the daemon changes only what changed. Pure.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::Serialize;

use super::{OriginatedRoute, Peering, Plan};

/// A peering present in both plans with different parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerChange {
    /// The peering before.
    pub old: Peering,
    /// The peering after.
    pub new: Peering,
}

/// What changed between two plans of the same node. Peerings are matched by name (BIRD's
/// protocol name, which encodes kind, address and explicit port).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanDiff {
    /// Router id changed (every session needs a reset, Cease/6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router_id: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Local AS changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_as: Option<(u32, u32)>,
    /// Listener port or addresses changed.
    pub listen_changed: bool,
    /// New peerings.
    pub peers_added: Vec<Peering>,
    /// Peerings to remove.
    pub peers_removed: Vec<Peering>,
    /// Peerings whose session parameters changed: reset them.
    pub peers_reset: Vec<PeerChange>,
    /// Peerings changed only in ways that need no reset (filters, next-hop mode, allow-local-as,
    /// reachableBy, provenance): re-run export towards the peer; for import-side changes
    /// (import filters, allow-local-as) ask the peer for its routes again (ROUTE-REFRESH).
    pub peers_updated: Vec<PeerChange>,
    /// Originated routes to add.
    pub routes_added: Vec<OriginatedRoute>,
    /// Originated routes to withdraw.
    pub routes_removed: Vec<OriginatedRoute>,
    /// Pool kernel rules changed.
    pub pool_rules_changed: bool,
    /// Export/import policy inputs or compiled filters changed (re-run policy, no reset).
    pub policy_changed: bool,
    /// Static routes to peers changed.
    pub static_routes_changed: bool,
}

impl PlanDiff {
    /// Compares `old` with `new`.
    pub fn between(old: &Plan, new: &Plan) -> PlanDiff {
        let old_peers: BTreeMap<&str, &Peering> =
            old.peerings.iter().map(|p| (p.name.as_str(), p)).collect();
        let new_peers: BTreeMap<&str, &Peering> =
            new.peerings.iter().map(|p| (p.name.as_str(), p)).collect();
        let mut diff = PlanDiff {
            router_id: (old.router_id != new.router_id).then_some((old.router_id, new.router_id)),
            local_as: (old.local_as != new.local_as).then_some((old.local_as, new.local_as)),
            listen_changed: old.listen != new.listen,
            pool_rules_changed: old.pool_kernel_rules != new.pool_kernel_rules,
            policy_changed: old.policy != new.policy || old.filters != new.filters,
            static_routes_changed: old.static_routes != new.static_routes,
            ..PlanDiff::default()
        };
        for (name, p) in &new_peers {
            match old_peers.get(name) {
                None => diff.peers_added.push((*p).clone()),
                Some(o) if !o.session_parameters_equal(p) => diff.peers_reset.push(PeerChange {
                    old: (*o).clone(),
                    new: (*p).clone(),
                }),
                Some(o) if o != p => diff.peers_updated.push(PeerChange {
                    old: (*o).clone(),
                    new: (*p).clone(),
                }),
                Some(_) => {}
            }
        }
        for (name, p) in &old_peers {
            if !new_peers.contains_key(name) {
                diff.peers_removed.push((*p).clone());
            }
        }
        let old_routes: std::collections::BTreeSet<_> = old.originated.iter().collect();
        let new_routes: std::collections::BTreeSet<_> = new.originated.iter().collect();
        diff.routes_added = new_routes.difference(&old_routes).map(|r| **r).collect();
        diff.routes_removed = old_routes.difference(&new_routes).map(|r| **r).collect();
        diff
    }

    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == PlanDiff::default()
    }
}
