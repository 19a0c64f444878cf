//! Status publishing: warnings, message counters and prefix counters into the status hub and
//! the metrics.

use tracing::{info, warn};

use crate::daemon as glue;
use crate::status;

use super::supervisor::Supervisor;

impl Supervisor {
    /// The status warnings: the plan's, the Node's BGP addresses on no local interface (logged
    /// when they appear and when they are resolved), and a listener change waiting for a
    /// restart.
    pub(super) fn refresh_warnings(&mut self) {
        let addresses = match self.local_addresses.as_mut() {
            Some(rx) => rx
                .borrow_and_update()
                .as_deref()
                .map(|local| glue::address_warnings(&self.plan, local)),
            None => None,
        }
        .unwrap_or_default();
        for warning in addresses
            .iter()
            .filter(|w| !self.address_warnings.contains(w))
        {
            warn!(warning = %warning, "node address");
        }
        for resolved in self
            .address_warnings
            .iter()
            .filter(|w| !addresses.contains(w))
        {
            info!(was = %resolved, "node address now local");
        }
        self.address_warnings = addresses;
        let mut warnings = self.plan.warnings.clone();
        warnings.extend(self.address_warnings.iter().cloned());
        if self.plan.listen != self.listen_at_start {
            warnings.push(
                "listen port or addresses changed: takes effect when tern restarts".to_string(),
            );
        }
        self.hub.update_daemon(|d| d.warnings = warnings);
    }

    /// Each peer's message counters from the speaker (a few atomics per peer) into the status
    /// and the metrics.
    pub(super) fn publish_messages(&self) {
        for (address, runtime) in &self.peers {
            if let Some((received, sent)) = self.speaker.message_counts(*address) {
                if let Some(metrics) = &runtime.metrics {
                    metrics.messages_up_to(&received, &sent);
                }
                self.hub.update_peer(&runtime.name, |p| {
                    p.messages_received = received;
                    p.messages_sent = sent;
                });
            }
        }
    }

    /// Prefix counters and RIB sizes (one pass over the Loc-RIB).
    pub(super) fn publish_counts(&self) {
        let (received, stale) = self.rib.path_counts();
        for runtime in self.peers.values() {
            let (r, a) = received.get(&runtime.id).copied().unwrap_or_default();
            let advertised = self
                .rib
                .group_of(runtime.id)
                .map(|g| g.advertised_to(runtime.id) as u64)
                .unwrap_or(0);
            self.hub.update_peer(&runtime.name, |p| {
                p.prefixes = status::PrefixCounts {
                    received: r,
                    accepted: a,
                    advertised,
                };
            });
        }
        let stats = self.rib.stats();
        self.hub.set_rib(status::RibSummary {
            prefixes: stats.prefixes as u64,
            paths: stats.paths as u64,
            attribute_sets: stats.attribute_sets as u64,
            stale_paths: stale,
        });
    }
}
