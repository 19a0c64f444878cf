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

    /// Each peer's message counters from the speaker and its route output (a few atomics per
    /// peer) into the status and the metrics. A peer whose output has just drained makes the
    /// prefix counters run again, so its `advertised` count catches up.
    pub(super) fn publish_messages(&mut self) {
        for (address, runtime) in &mut self.peers {
            let output = runtime.session.as_ref().map(|est| {
                let prefixes_written = est.output.prefixes_written();
                let bytes_written = est.output.bytes_written();
                let export_pending = self.rib.has_pending(runtime.id);
                let backlog_prefixes = est.prefixes_queued.saturating_sub(prefixes_written);
                let drained = backlog_prefixes == 0 && est.backlog.is_empty() && !export_pending;
                status::OutputStatus {
                    prefixes_written,
                    bytes_written,
                    backlog_prefixes,
                    backlog_bytes: est.bytes_queued.saturating_sub(bytes_written),
                    export_pending,
                    drained_at: drained
                        .then(|| est.output.last_write())
                        .flatten()
                        .map(status::Timestamp::from_system_time),
                }
            });
            let drained = output.as_ref().is_some_and(|o| {
                o.backlog_prefixes == 0 && o.backlog_bytes == 0 && !o.export_pending
            });
            if drained && !runtime.drained {
                self.status_dirty = true;
            }
            runtime.drained = drained;
            let counts = self.speaker.message_counts(*address);
            if let (Some((received, sent)), Some(metrics)) = (&counts, &runtime.metrics) {
                metrics.messages_up_to(received, sent);
            }
            self.hub.update_peer(&runtime.name, |p| {
                if let Some((received, sent)) = counts {
                    p.messages_received = received;
                    p.messages_sent = sent;
                }
                if let Some(output) = output {
                    // The time of the drain stays that of the write that drained it.
                    let drained_at = output.drained_at.or(p.output.drained_at);
                    p.output = status::OutputStatus {
                        drained_at,
                        ..output
                    };
                }
            });
        }
    }

    /// Prefix counters and RIB sizes (one pass over the Loc-RIB).
    pub(super) fn publish_counts(&self) {
        let (received, stale) = self.rib.path_counts();
        for runtime in self.peers.values() {
            let (r, a) = received.get(&runtime.id).copied().unwrap_or_default();
            // Counted only while everything queued for the peer has been written: otherwise
            // the count of the last drain stays (see `PrefixCounts::advertised`).
            let advertised = runtime
                .drained
                .then(|| {
                    self.rib
                        .group_of(runtime.id)
                        .map(|g| g.advertised_to(runtime.id) as u64)
                })
                .flatten();
            self.hub.update_peer(&runtime.name, |p| {
                p.prefixes = status::PrefixCounts {
                    received: r,
                    accepted: a,
                    advertised: advertised.unwrap_or(p.prefixes.advertised),
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
