//! Message inputs of the state machine: received bytes framed and decoded, then OPEN,
//! KEEPALIVE, UPDATE, ROUTE-REFRESH and NOTIFICATION handled per state, with collision
//! resolution on the second connection (RFC 4271 §6.8).

use super::{Session, Slot};
use crate::session::collision::{Collision, ExistingState, Survivor};
use crate::session::event::{Action, ConnId, Down, DownReason, State, Timer};
use crate::session::negotiate::{self};
use crate::session::notification::fsm_error;
use crate::session::time::Instant;
use crate::session::wire;
use bgp_proto::iana::{CeaseSubcode, MessageType, RouteRefreshSubtype};
use bgp_proto::message::{Message, Notification, Open};
use bgp_proto::{Context, Family};
use std::sync::Arc;

impl Session {
    pub(super) fn on_received(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
        let Some(slot) = self.slot_of(conn) else {
            return;
        };
        match slot {
            Slot::Primary => {
                if let Some(c) = self.primary.as_mut() {
                    c.buf.extend_from_slice(bytes);
                }
            }
            Slot::Candidate => {
                if let Some(c) = self.candidate.as_mut() {
                    c.buf.extend_from_slice(bytes);
                }
            }
        }
        // Decode and process whole messages until the buffer has none, or the connection is
        // gone (closed by an error or a collision). The slot is looked up again for every
        // message: a collision may just have made the second connection the primary one, and
        // the rest of its buffer (the peer's KEEPALIVE) belongs to the primary from then on.
        loop {
            let Some(slot) = self.slot_of(conn) else {
                return;
            };
            let conn_ref = match slot {
                Slot::Primary => self.primary.as_mut(),
                Slot::Candidate => self.candidate.as_mut(),
            };
            let Some(c) = conn_ref else {
                return;
            };
            let context = c
                .info
                .as_ref()
                .map_or_else(Context::default, |i| i.codec.receive);
            let (message_type, frame) = match wire::next_frame(&mut c.buf, &context) {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(error) => {
                    self.protocol_error(slot, now, error.notification);
                    return;
                }
            };
            let established = slot == Slot::Primary && self.state == State::Established;
            if !established
                && matches!(
                    message_type,
                    MessageType::Update | MessageType::RouteRefresh
                )
            {
                // RFC 4271 §8.2.2 (OpenSent/OpenConfirm, events 27-28): an UPDATE before
                // Established is an FSM error, malformed or not; its body is not decoded.
                let n = if slot == Slot::Primary {
                    fsm_error(self.state)
                } else {
                    fsm_error(State::OpenSent)
                };
                self.protocol_error(slot, now, n);
                return;
            }
            let message = match wire::decode(&frame, &context) {
                Ok(m) => m,
                Err(error) => {
                    self.protocol_error(slot, now, error.notification);
                    return;
                }
            };
            match slot {
                Slot::Primary => {
                    self.last_received = now;
                    self.primary_message(message, now);
                }
                Slot::Candidate => self.candidate_message(message, now),
            }
        }
    }

    /// A message on `slot` could not be accepted: NOTIFICATION and close that connection.
    pub(super) fn protocol_error(&mut self, slot: Slot, now: Instant, notification: Notification) {
        match slot {
            Slot::Primary => {
                self.primary_failed(now, DownReason::TransportClosed, Some(notification))
            }
            Slot::Candidate => {
                if let Some(candidate) = self.candidate.take() {
                    self.cancel(Timer::OpenWait);
                    self.send_notification(candidate.id, &notification);
                    self.close(candidate.id);
                }
            }
        }
    }

    pub(super) fn primary_message(&mut self, message: Message, now: Instant) {
        match (self.state, message) {
            (_, Message::Notification(n)) => {
                // RFC 4271 §6.4/§8.2.2 events 24/25: close without answering.
                self.primary_failed(now, DownReason::NotificationReceived(n), None);
            }
            (State::OpenSent, Message::Open(open)) => self.primary_open(open, now),
            (State::OpenConfirm, Message::Keepalive) => self.enter_established(now),
            (State::Established, Message::Keepalive) => {}
            (State::Established, Message::Update(update)) => self.on_update(update),
            (State::Established, Message::RouteRefresh(rr)) => {
                // RFC 7313 §5: BoRR/EoRR and unknown subtypes are ignored (no enhanced refresh).
                if rr.subtype == RouteRefreshSubtype::Normal {
                    self.on_route_refresh(rr.family);
                }
            }
            (_, _) => {
                // RFC 4271 §8.2.2: any other message is an FSM error (RFC 6608 subcodes).
                let n = fsm_error(self.state);
                self.primary_failed(now, DownReason::TransportClosed, Some(n));
            }
        }
    }

    pub(super) fn primary_open(&mut self, open: Open, now: Instant) {
        let info = match negotiate::check_open(&self.config, &self.local_open, open) {
            Ok(info) => Arc::new(info),
            Err(n) => {
                self.primary_failed(now, DownReason::TransportClosed, Some(n));
                return;
            }
        };
        if let (Some(primary), Some(candidate)) = (self.primary.as_ref(), self.candidate.as_ref()) {
            // RFC 4271 §6.8: the peer's identifier is now known; resolve the collision with the
            // second connection (still in OpenSent) right away.
            let decision = Collision {
                existing: primary.direction,
                existing_state: ExistingState::OpenConfirm,
                new: candidate.direction,
                local_id: self.config.router_id,
                remote_id: info.peer_router_id,
                local_as: self.config.local_as,
                remote_as: info.peer_as,
            }
            .resolve();
            if decision == Survivor::New {
                self.primary_loses_collision(now);
                return;
            }
            self.candidate_loses_collision();
        }
        if let Some(primary) = self.primary.as_mut() {
            primary.info = Some(info);
        }
        self.enter_open_confirm(now);
    }

    /// OPEN accepted on the primary connection: KEEPALIVE, negotiated timers (→ OpenConfirm).
    pub(super) fn enter_open_confirm(&mut self, now: Instant) {
        let Some(conn) = self.primary.as_ref().map(|c| c.id) else {
            return;
        };
        self.send(conn, wire::encode_keepalive());
        self.last_sent = now;
        self.last_received = now;
        let hold = self.negotiated_hold();
        let keepalive = self.negotiated_keepalive();
        if hold.is_zero() {
            // RFC 4271 §4.2: hold time 0 = no hold timer and no keepalives.
            self.cancel(Timer::Hold);
            self.cancel(Timer::Keepalive);
        } else {
            self.arm(Timer::Hold, now + hold);
            self.arm(Timer::Keepalive, now + keepalive);
        }
        self.set_state(State::OpenConfirm);
    }

    pub(super) fn enter_established(&mut self, now: Instant) {
        let Some(primary) = self.primary.as_ref() else {
            return;
        };
        let Some(info) = primary.info.clone() else {
            return;
        };
        let conn = primary.id;
        self.backoff.on_established(now);
        self.set_state(State::Established);
        self.actions.push(Action::Established {
            conn,
            negotiated: info,
        });
    }

    pub(super) fn primary_loses_collision(&mut self, now: Instant) {
        let Some(primary) = self.primary.take() else {
            return;
        };
        let n = Notification::cease(CeaseSubcode::ConnectionCollisionResolution);
        self.send_notification(primary.id, &n);
        self.close(primary.id);
        if let Some(candidate) = self.candidate.take() {
            self.cancel(Timer::OpenWait);
            self.primary = Some(candidate);
            let wait = self.open_wait();
            self.arm(Timer::Hold, now + wait);
            self.last_received = now;
            self.set_state(State::OpenSent);
        }
    }

    pub(super) fn candidate_loses_collision(&mut self) {
        if let Some(candidate) = self.candidate.take() {
            self.cancel(Timer::OpenWait);
            let n = Notification::cease(CeaseSubcode::ConnectionCollisionResolution);
            self.send_notification(candidate.id, &n);
            self.close(candidate.id);
        }
    }

    pub(super) fn candidate_message(&mut self, message: Message, now: Instant) {
        let open = match message {
            Message::Open(open) => open,
            Message::Notification(_) => {
                if let Some(c) = self.candidate.take() {
                    self.cancel(Timer::OpenWait);
                    self.close(c.id);
                }
                return;
            }
            _ => {
                // Anything before the OPEN is an FSM error in OpenSent (RFC 6608).
                let n = fsm_error(State::OpenSent);
                self.protocol_error(Slot::Candidate, now, n);
                return;
            }
        };
        let info = match negotiate::check_open(&self.config, &self.local_open, open) {
            Ok(info) => Arc::new(info),
            Err(n) => {
                self.protocol_error(Slot::Candidate, now, n);
                return;
            }
        };
        let (Some(primary), Some(candidate)) = (self.primary.as_ref(), self.candidate.as_ref())
        else {
            return;
        };
        if self.state == State::Established {
            let restarted = primary
                .info
                .as_ref()
                .is_some_and(|i| i.graceful_restart_negotiated());
            if !restarted {
                // RFC 4271 §6.8: a collision with an Established session closes the new one.
                self.candidate_loses_collision();
                return;
            }
            // RFC 4724 §4.2: a new OPEN from a graceful-restart peer while Established means it
            // restarted: the old session ends (its routes go stale) and the new one carries on.
            let old = self.primary.take();
            if let Some(old) = old {
                self.close(old.id);
                for t in [Timer::Hold, Timer::Keepalive, Timer::SendHold] {
                    self.cancel(t);
                }
                let reason = DownReason::PeerRestarted;
                let retain_routes_for =
                    old.info.as_ref().and_then(|i| i.retain_routes_for(&reason));
                self.actions.push(Action::Down(Down {
                    reason,
                    was_established: true,
                    retain_routes_for,
                }));
            }
            self.cancel(Timer::OpenWait);
            if let Some(mut c) = self.candidate.take() {
                c.info = Some(info);
                self.primary = Some(c);
            }
            self.set_state(State::Idle);
            self.set_state(State::OpenSent);
            self.enter_open_confirm(now);
            return;
        }
        let existing_state = match self.state {
            State::OpenConfirm => ExistingState::OpenConfirm,
            _ => ExistingState::OpenSent,
        };
        let decision = Collision {
            existing: primary.direction,
            existing_state,
            new: candidate.direction,
            local_id: self.config.router_id,
            remote_id: info.peer_router_id,
            local_as: self.config.local_as,
            remote_as: info.peer_as,
        }
        .resolve();
        match decision {
            Survivor::Existing => self.candidate_loses_collision(),
            Survivor::New => {
                self.primary_loses_collision(now);
                if let Some(primary) = self.primary.as_mut() {
                    primary.info = Some(info);
                }
                self.enter_open_confirm(now);
            }
        }
    }

    pub(super) fn on_update(&mut self, mut update: bgp_proto::message::Update) {
        let Some(conn) = self.primary.as_mut() else {
            return;
        };
        let negotiated: Vec<Family> = conn
            .info
            .as_ref()
            .map(|i| i.families.clone())
            .unwrap_or_default();
        // RFC 7606 §7.11-7.12, RFC 4760 §7: a malformed MP_REACH_NLRI / MP_UNREACH_NLRI
        // disables its family for the rest of the session ("AFI/SAFI disable", chosen over a
        // session reset so that the other families stay up): the peer's routes of the family
        // are deleted (`Action::FamilyDisabled`) and later ones ignored. A family that was not
        // negotiated has nothing to delete and is ignored anyway.
        let mut newly = Vec::new();
        for family in update.disabled_families() {
            if !conn.disabled.contains(&family) {
                conn.disabled.push(family);
                if negotiated.contains(&family) {
                    newly.push(family);
                }
            }
        }
        let disabled = conn.disabled.clone();
        self.actions
            .extend(newly.into_iter().map(Action::FamilyDisabled));
        let usable = |f: &Family| negotiated.contains(f) && !disabled.contains(f);
        if let Some(family) = update.is_end_of_rib().filter(|_| update.issues.is_empty()) {
            // RFC 4724 §2: an empty UPDATE (IPv4) or one with only an empty MP_UNREACH_NLRI.
            if usable(&family) {
                self.actions.push(Action::EndOfRib(family));
            }
            return;
        }
        // Routes of families disabled or never negotiated are ignored (RFC 4760 §7 for the
        // disabled ones; RFC 4760 §8 / RFC 5492 for the others: the peer was not told it may
        // send them).
        let had_routes = has_routes(&update);
        if !usable(&Family::IPV4_UNICAST) {
            update.nlri.clear();
            update.withdrawn.clear();
        }
        update.attributes.retain(|a| match &a.value {
            bgp_proto::AttributeValue::MpReachNlri(m) => usable(&m.family),
            bgp_proto::AttributeValue::MpUnreachNlri(m) => usable(&m.family),
            _ => true,
        });
        if had_routes && !has_routes(&update) {
            return;
        }
        self.actions.push(Action::Update(Box::new(update)));
    }

    pub(super) fn on_route_refresh(&mut self, family: Family) {
        let Some(info) = self.primary.as_ref().and_then(|c| c.info.as_ref()) else {
            return;
        };
        // RFC 2918 §4: a refresh for a family not negotiated is ignored.
        if info.families.contains(&family) {
            self.actions.push(Action::RouteRefresh(family));
        }
    }
}

/// Whether an UPDATE announces or withdraws anything (NLRI fields or MP attributes).
fn has_routes(update: &bgp_proto::message::Update) -> bool {
    !update.nlri.is_empty()
        || !update.withdrawn.is_empty()
        || update.mp_reach().is_some()
        || update.mp_unreach().is_some()
}
