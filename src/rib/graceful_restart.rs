//! Graceful restart, receiving-speaker side (RFC 4724 §4.2: "helper").
//!
//! When a peer that negotiated graceful restart goes down without a NOTIFICATION, its routes are
//! kept and marked stale ([`super::Rib::peer_down`] with a restart time). Marking does not change
//! the decision process, so neither the FIB nor any peer sees a change. The stale routes go away
//! when the peer sends End-of-RIB for the family on its new session ([`super::Rib::end_of_rib`]),
//! when the restart time passes ([`super::Rib::advance`]), or at once if the peer comes back
//! without the capability. Routes the peer re-announces lose their stale mark.

use std::time::Instant;

use ipnet::IpNet;

use super::{PeerId, Rib};

/// An address family, for End-of-RIB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 unicast.
    Ipv4,
    /// IPv6 unicast.
    Ipv6,
}

impl Family {
    /// Whether `prefix` belongs to this family.
    pub fn contains(self, prefix: &IpNet) -> bool {
        matches!(
            (self, prefix),
            (Family::Ipv4, IpNet::V4(_)) | (Family::Ipv6, IpNet::V6(_))
        )
    }
}

impl Rib {
    /// Marks every path of `peer` stale, to be swept at `deadline`.
    pub(crate) fn mark_stale(&mut self, peer: PeerId, deadline: Instant) {
        for (_, entry) in self.table.iter_mut() {
            for p in entry.paths.iter_mut().filter(|p| p.peer == peer) {
                // RFC 4724 §4.2: the receiving speaker MUST retain the routes and mark them stale.
                p.stale = true;
            }
        }
        if let Some(state) = self.peers.get_mut(&peer) {
            state.stale_deadline = Some(deadline);
        }
    }

    /// Removes all of `peer`'s stale paths and forgets its deadline.
    pub(crate) fn sweep_stale(&mut self, peer: PeerId) {
        self.remove_peer_paths(peer, |p| p.stale);
        if let Some(state) = self.peers.get_mut(&peer) {
            state.stale_deadline = None;
        }
    }

    /// `peer`'s session is back with graceful restart: its restart timer stops (it bounds the
    /// re-establishment only, RFC 4724 §4.2) and its stale paths, if any, now wait for its
    /// End-of-RIB until `deadline` at most (the local bound on a restarting peer's stale routes).
    pub fn bound_stale(&mut self, peer: PeerId, deadline: Instant) {
        if let Some(state) = self.peers.get_mut(&peer)
            && state.stale_deadline.is_some()
        {
            state.stale_deadline = Some(deadline);
        }
    }

    /// End-of-RIB from `peer` for `family` (RFC 4724 §2): its stale paths of that family that it
    /// did not re-announce are removed now.
    pub fn end_of_rib(&mut self, peer: PeerId, family: Family) {
        let stale_prefixes: Vec<IpNet> = self
            .table
            .iter()
            .filter(|(prefix, e)| {
                family.contains(prefix) && e.paths.iter().any(|p| p.peer == peer && p.stale)
            })
            .map(|(p, _)| p)
            .collect();
        for prefix in stale_prefixes {
            // RFC 4724 §4.2: on End-of-RIB the receiving speaker MUST remove the routes still stale.
            let mut removed = 0i64;
            self.modify(prefix, |entry, _| {
                let before = entry.paths.len();
                entry.paths.retain(|p| !(p.peer == peer && p.stale));
                removed = (before - entry.paths.len()) as i64;
            });
            self.count(peer, &prefix, -removed);
        }
        let any_left = self
            .table
            .iter()
            .any(|(_, e)| e.paths.iter().any(|p| p.peer == peer && p.stale));
        if !any_left && let Some(state) = self.peers.get_mut(&peer) {
            state.stale_deadline = None;
        }
    }

    /// The next time [`Rib::advance`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.peers.values().filter_map(|s| s.stale_deadline).min()
    }

    /// Time passes: peers whose restart time ran out lose their stale paths (RFC 4724 §4.2:
    /// "if the session does not get re-established within the Restart Time ... the receiving
    /// speaker MUST delete all the stale routes").
    pub fn advance(&mut self, now: Instant) {
        let expired: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, s)| s.stale_deadline.is_some_and(|d| d <= now))
            .map(|(&p, _)| p)
            .collect();
        for peer in expired {
            self.remove_peer_paths(peer, |p| p.stale);
            let established = self.peers.get(&peer).is_some_and(|s| s.group.is_some());
            if established {
                if let Some(s) = self.peers.get_mut(&peer) {
                    s.stale_deadline = None;
                }
            } else {
                self.peers.remove(&peer);
            }
        }
    }
}
