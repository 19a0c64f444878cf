//! Graceful restart recovery (RFC 4724 §4.1): the end of the deferral after a restart and its
//! status.

use std::sync::Arc;
use std::time::Instant;

use tracing::info;

use crate::daemon as glue;
use crate::rib::PeerId;
use crate::status;

use super::now_ts;
use super::supervisor::Supervisor;

impl Supervisor {
    /// The restart's route selection is complete: every Established peer is sent the table as
    /// it is now, then End-of-RIB (nothing was sent on those sessions yet), and the R and F
    /// bits leave the OPENs (they belong to the restart only; no session is reset for it).
    pub(super) fn end_deferral(&mut self) {
        self.deferring = false;
        let established: Vec<PeerId> = self
            .peers
            .values()
            .filter(|r| r.session.is_some())
            .map(|r| r.id)
            .collect();
        info!(
            peers = established.len(),
            "restart recovery over: sending the selected routes, then End-of-RIB"
        );
        for id in established {
            self.rib.resend_table(id);
        }
        self.defaults.restarting = false;
        let plan = Arc::clone(&self.plan);
        let mut configs = Vec::new();
        for peering in &plan.peerings {
            if let (Some(runtime), Ok(config)) = (
                self.peers.get_mut(&peering.address),
                glue::peer_config(peering, &plan, &self.defaults),
            ) {
                runtime.config = Some(config.clone());
                configs.push(config);
            }
        }
        self.speaker.set_peers(configs);
    }

    pub(super) fn publish_recovery(&self) {
        let progress = (!self.recovery.is_done()).then(|| {
            let left = self
                .recovery
                .deadline()
                .saturating_duration_since(Instant::now());
            status::GracefulRestartProgress {
                waiting_for_peers: self.recovery.waiting_for() as u32,
                deadline: now_ts().plus(left),
                wait_secs: self.recovery.wait().as_secs() as u32,
            }
        });
        self.hub.update_daemon(|d| d.graceful_restart = progress);
    }
}
