//! Outbound pull and flow control: each Established peer's pending export, pulled round robin
//! in bounded slices and queued without waiting.

use std::net::IpAddr;
use std::time::Instant;

use bgp_proto::message::Message;
use bytes::{Bytes, BytesMut};
use tracing::{debug, error};

use crate::io::bgp::{Outbound, SendError};

use super::supervisor::Supervisor;
use super::{PULL_BATCH, PULL_SLICE};

impl Supervisor {
    /// Pulls each Established peer's pending export and queues it without waiting, round
    /// robin: each peer gets at most [`PULL_SLICE`] pulls per pass, starting with a different
    /// peer every pass, so one peer's large export never delays another's or new events.
    /// A peer left with work (not blocked on its queue) sets [`Supervisor::output_more`], and
    /// the event loop comes back here at once instead of waiting for the next event.
    pub(super) fn flush_outbound(&mut self) {
        let now = Instant::now();
        self.output_more = false;
        let count = self.peers.len();
        if count == 0 {
            return;
        }
        let first = self.output_turn % count;
        self.output_turn = self.output_turn.wrapping_add(1);
        let order: Vec<IpAddr> = self
            .peers
            .keys()
            .skip(first)
            .chain(self.peers.keys().take(first))
            .copied()
            .collect();
        for address in order {
            if self.flush_peer(address, now) {
                self.output_more = true;
            }
        }
    }

    /// One peer's share of a [`Supervisor::flush_outbound`] pass. True when it still has work
    /// it could queue now (its slice ran out, not its queue).
    pub(super) fn flush_peer(&mut self, address: IpAddr, now: Instant) -> bool {
        let Some(runtime) = self.peers.get_mut(&address) else {
            return false;
        };
        let Some(est) = runtime.session.as_mut() else {
            return false;
        };
        for _ in 0..PULL_SLICE {
            // The backlog first, in order.
            while let Some(item) = est.backlog.front() {
                match self.speaker.send(address, est.session, item.clone()) {
                    Ok(()) => {
                        est.backlog.pop_front();
                    }
                    Err(SendError::Full(_)) => {
                        est.blocked = true;
                        break;
                    }
                    Err(e) => {
                        // The session ended (its Down event is on the way): pull nothing more
                        // for it, a new session starts from its own initial table.
                        debug!(peer = %runtime.name, error = %e, "output dropped");
                        est.backlog.clear();
                        est.blocked = true;
                        break;
                    }
                }
            }
            if est.blocked || !est.backlog.is_empty() || !self.rib.has_pending(runtime.id) {
                return false;
            }
            let out = self.rib.pull(runtime.id, now, PULL_BATCH);
            let ctx = est.info.codec.send;
            for update in &out.updates {
                let prefixes = update.announced.len() + update.withdrawn.len();
                match update.encode(&ctx) {
                    Ok(messages) => {
                        let mut bytes = BytesMut::new();
                        for m in messages {
                            match Message::Update(m).to_bytes(&ctx) {
                                Ok(b) => bytes.extend_from_slice(&b),
                                Err(e) => {
                                    error!(peer = %runtime.name, error = %e, "cannot encode an UPDATE")
                                }
                            }
                        }
                        if !bytes.is_empty() {
                            est.prefixes_queued += prefixes as u64;
                            est.bytes_queued += bytes.len() as u64;
                            est.backlog.push_back(Outbound::Updates {
                                bytes: Bytes::from(bytes),
                                prefixes: u32::try_from(prefixes).unwrap_or(u32::MAX),
                            });
                        }
                    }
                    Err(e) => {
                        error!(peer = %runtime.name, error = %e, "cannot encode an UPDATE")
                    }
                }
            }
            if out.end_of_rib {
                for family in &est.info.families {
                    est.backlog.push_back(Outbound::EndOfRib(*family));
                }
            }
            if out.wake_at.is_some() && out.updates.is_empty() && !out.end_of_rib {
                // The minimum advertisement interval holds the rest back; the tick retries.
                return false;
            }
            // An empty pull that still leaves work (superseded log entries skipped) is
            // progress too: go on until the slice, the queue or the work runs out.
        }
        !est.blocked && (!est.backlog.is_empty() || self.rib.has_pending(runtime.id))
    }
}
