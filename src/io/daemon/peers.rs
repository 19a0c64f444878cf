//! Peer configuration sync: the plan's peerings handed to the speaker, the RIB and the status.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn};

use crate::daemon::{self as glue, PeeringBlocked};
use crate::plan::PlanDiff;
use crate::rib::PeerSession;
use crate::status;

use super::now_ts;
use super::supervisor::{PeerRuntime, Supervisor};

impl Supervisor {
    /// Gives the speaker the plan's peers (it starts new ones, stops removed ones and resets
    /// only those whose session parameters changed) and updates the RIB and status.
    pub(super) fn apply_peers(&mut self, diff: &PlanDiff, first: bool) {
        let plan = Arc::clone(&self.plan);
        let now = now_ts();
        let mut configs = Vec::new();
        let mut wanted: BTreeSet<IpAddr> = BTreeSet::new();
        for peering in &plan.peerings {
            wanted.insert(peering.address);
            let id = self.peer_id(peering.address);
            let config = match glue::peer_config(peering, &plan, &self.defaults) {
                Ok(c) => Some(c),
                Err(blocked) => {
                    warn!(peer = %peering.name, error = %blocked, "peering not started");
                    None
                }
            };
            let old_status = self.hub_peer(&peering.name);
            let metrics = self.metrics.clone();
            let runtime = self
                .peers
                .entry(peering.address)
                .or_insert_with(|| PeerRuntime {
                    id,
                    name: peering.name.clone(),
                    config: None,
                    session: None,
                    malformed: 0,
                    metrics: metrics.as_ref().map(|m| m.peer(&peering.name)),
                    over_limit: [false; 2],
                    drained: false,
                });
            if runtime.name != peering.name {
                self.hub.remove_peer(&runtime.name);
                runtime.name = peering.name.clone();
                runtime.metrics = metrics.as_ref().map(|m| m.peer(&peering.name));
            }
            let mut status = glue::initial_peer_status(peering, now);
            if let Some(old) = old_status {
                status.state = old.state;
                status.since = old.since;
                status.last_error = old.last_error;
                status.session = old.session;
                status.prefixes = old.prefixes;
                status.flaps = old.flaps;
            }
            // Disabled by an operator: stays so across plan changes (the speaker holds it down).
            if self.speaker.is_held_down(peering.address) == Some(true) {
                status.enabled = false;
            }
            if config.is_none() {
                status.enabled = false;
                status.session = None;
                status.state = status::SessionState::Idle;
                let message = match glue::peer_config(peering, &plan, &self.defaults) {
                    Err(PeeringBlocked::PasswordUnavailable(e)) => {
                        PeeringBlocked::PasswordUnavailable(e).to_string()
                    }
                    Err(e) => e.to_string(),
                    Ok(_) => String::new(),
                };
                status.last_error = Some(status::PeerError {
                    at: now,
                    kind: status::PeerErrorKind::Other { message },
                });
            }
            self.hub.upsert_peer(status);
            if let Some(c) = &config {
                configs.push(c.clone());
            } else if runtime.session.take().is_some() {
                // The peering lost its secret: its session is stopped below (fail closed).
                self.rib.peer_down(id, Instant::now(), None);
            }
            runtime.config = config;
        }
        // Removed peerings.
        let removed: Vec<IpAddr> = self
            .peers
            .keys()
            .filter(|a| !wanted.contains(a))
            .copied()
            .collect();
        for address in removed {
            if let Some(runtime) = self.peers.remove(&address) {
                info!(peer = %runtime.name, "peering removed");
                self.hub.remove_peer(&runtime.name);
                self.rib.peer_down(runtime.id, Instant::now(), None);
                if self.recovery.forget(address) {
                    self.converge_pending = true;
                }
            }
        }
        if !first {
            // Soft changes: policy re-evaluated for the established session, no reset.
            for change in &diff.peers_updated {
                let Some(runtime) = self.peers.get(&change.new.address) else {
                    continue;
                };
                if let Some(est) = &runtime.session {
                    info!(peer = %change.new.name, "peering changed without a reset: policy re-evaluated");
                    let session = PeerSession::from_peering(&change.new, &plan, &est.facts);
                    self.rib.update_peer(runtime.id, session);
                }
            }
        }
        self.speaker.set_peers(configs);
    }

    pub(super) fn hub_peer(&self, name: &str) -> Option<status::PeerStatus> {
        let mut found = None;
        self.hub.update_peer(name, |p| found = Some(p.clone()));
        found
    }
}
