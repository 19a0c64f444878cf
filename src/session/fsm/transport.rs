//! Transport and timer inputs of the state machine: start and stop, connections made, failed
//! and closed, write stalls, timer expiries, and what follows a failed primary connection.

use super::{Conn, REFUSED_RETRY_MIN, Session, Slot};
use crate::session::collision::Direction;
use crate::session::event::{Action, ConnId, Down, DownReason, State, StopReason, Timer};
use crate::session::notification::cease_for;
use crate::session::time::Instant;
use crate::session::wire;
use bgp_proto::iana::ErrorCode;
use bgp_proto::message::Notification;
use std::time::Duration;

impl Session {
    pub(super) fn on_start(&mut self, now: Instant) {
        if self.started && self.state != State::Idle {
            return; // RFC 4271 §8.2.2: ManualStart is ignored outside Idle.
        }
        self.started = true;
        self.refuse_while_idle = false;
        self.backoff.reset();
        self.cancel(Timer::IdleHold);
        let delay = self.config.connect_delay;
        self.begin_connecting(now, delay);
    }

    pub(super) fn on_stop(&mut self, reason: &StopReason, now: Instant) {
        let restart = reason.restarts();
        self.refuse_while_idle = matches!(reason, StopReason::MaxPrefix { .. });
        if !restart {
            self.started = false;
        }
        if self.connecting {
            self.connecting = false;
            self.actions.push(Action::CancelConnect);
        }
        self.cancel(Timer::ConnectRetry);
        if let Some(candidate) = self.candidate.take() {
            self.cancel(Timer::OpenWait);
            let notification = cease_for(reason, false);
            if let Some(n) = notification {
                self.send_notification(candidate.id, &n);
            }
            self.close(candidate.id);
        }
        if let Some(primary) = self.primary.take() {
            let was_established = self.state == State::Established;
            let gr = primary
                .info
                .as_ref()
                .map(|i| i.graceful_restart_negotiated())
                .unwrap_or(false);
            let hard = was_established
                && primary
                    .info
                    .as_ref()
                    .is_some_and(|i| i.notification_negotiated());
            let notification = match reason {
                // RFC 4724 §4 / RFC 8538: on a planned restart a graceful-restart peer must not
                // get a NOTIFICATION (without N it would flush our routes); just close.
                StopReason::PlannedRestart { .. } if was_established && gr => None,
                _ => cease_for(reason, hard),
            };
            if let Some(n) = &notification {
                self.send_notification(primary.id, n);
            }
            self.close(primary.id);
            for t in [Timer::Hold, Timer::Keepalive, Timer::SendHold] {
                self.cancel(t);
            }
            if was_established || notification.is_some() {
                let down_reason = match notification {
                    Some(n) => DownReason::NotificationSent(n),
                    None => DownReason::PlannedRestart,
                };
                let retain = primary
                    .info
                    .as_ref()
                    .and_then(|i| i.retain_routes_for(&down_reason));
                self.actions.push(Action::Down(Down {
                    reason: down_reason,
                    was_established,
                    retain_routes_for: if was_established { retain } else { None },
                }));
            }
        }
        self.set_state(State::Idle);
        if restart {
            let wait = match reason {
                StopReason::MaxPrefix { restart_after, .. } => {
                    self.backoff.on_error(now);
                    *restart_after
                }
                _ => self.config.connect_delay,
            };
            self.arm(Timer::IdleHold, now + wait);
        } else {
            self.cancel(Timer::IdleHold);
        }
    }

    pub(super) fn on_connected(&mut self, conn: ConnId, direction: Direction, now: Instant) {
        match (self.state, direction) {
            // Waiting out the error wait before an automatic restart: the peer's connection is
            // taken (departing from RFC 4271 §8.2.2 Idle, which refuses it). Refusing it lets two
            // active peers whose error waits alternate refuse each other forever; the backoff
            // still paces our own attempts.
            (State::Idle, Direction::Inbound) if self.started && !self.refuse_while_idle => {
                self.cancel(Timer::IdleHold);
                self.take_primary(conn, direction, now);
            }
            // RFC 4271 §8.2.2 Idle: "refuses all incoming BGP connections".
            (State::Idle, _) => self.close(conn),
            (State::Connect, Direction::Outbound) if self.connecting => {
                self.connecting = false;
                self.take_primary(conn, direction, now);
            }
            (State::Connect | State::Active, Direction::Inbound) => {
                if self.connecting {
                    // Prefer the connection that is already up over the attempt in flight.
                    self.connecting = false;
                    self.actions.push(Action::CancelConnect);
                }
                self.take_primary(conn, direction, now);
            }
            // We never connect while a connection is in use: an outgoing one now is stale.
            (State::OpenSent | State::OpenConfirm | State::Established, Direction::Outbound)
                if !self.connecting =>
            {
                self.close(conn)
            }
            // A second connection while one is in use: track it for collision resolution
            // (RFC 4271 §8.2.2 OpenSent/OpenConfirm/Established, events 14-17).
            (State::OpenSent | State::OpenConfirm | State::Established, _) => {
                if let Some(old) = self.candidate.take() {
                    // The peer gave up on its previous second connection.
                    self.close(old.id);
                }
                if direction == Direction::Outbound {
                    self.connecting = false;
                }
                self.candidate = Some(Conn::new(conn, direction));
                self.send_open(conn);
                let wait = self.open_wait();
                self.arm(Timer::OpenWait, now + wait);
            }
            // An outgoing connection nobody asked for any more (stale).
            (State::Connect | State::Active, Direction::Outbound) => self.close(conn),
        }
    }

    /// Makes `conn` the primary connection: send OPEN, wait for the peer's (→ OpenSent).
    pub(super) fn take_primary(&mut self, conn: ConnId, direction: Direction, now: Instant) {
        self.cancel(Timer::ConnectRetry);
        self.refused = 0;
        self.primary = Some(Conn::new(conn, direction));
        self.send_open(conn);
        let wait = self.open_wait();
        self.arm(Timer::Hold, now + wait);
        self.last_received = now;
        self.set_state(State::OpenSent);
    }

    pub(super) fn on_connect_failed(&mut self) {
        if !self.connecting {
            return; // stale
        }
        self.connecting = false;
        // Unlike RFC 4271 §8.2.2 (Connect, event 18 → Idle) we keep listening and retry when the
        // ConnectRetryTimer fires, as BIRD does: a peer that is not up yet is not an error.
        if self.state == State::Connect {
            self.set_state(State::Active);
        }
    }

    /// The peer's host answered the attempt with a reset: nothing listens there yet (the peer's
    /// daemon is starting, as every node of a mesh does at once). Rather than wait the whole
    /// ConnectRetry time (5 s) the next attempt comes after [`REFUSED_RETRY_MIN`], doubling with
    /// each refusal in a row up to the ConnectRetry time: the session comes up as soon as the
    /// peer listens. Attempts that time out or fail otherwise keep the ConnectRetry pace.
    pub(super) fn on_connect_refused(&mut self, now: Instant) {
        if !self.connecting {
            return; // stale
        }
        self.on_connect_failed();
        let retry = self.config.connect_retry;
        let wait = REFUSED_RETRY_MIN
            .saturating_mul(1 << self.refused.min(16))
            .min(retry);
        self.refused = self.refused.saturating_add(1);
        if self.state == State::Active && !self.config.passive && self.started {
            self.arm(Timer::ConnectRetry, now + wait);
        }
    }

    pub(super) fn on_closed(&mut self, conn: ConnId, now: Instant) {
        match self.slot_of(conn) {
            Some(Slot::Candidate) => {
                self.candidate = None;
                self.cancel(Timer::OpenWait);
            }
            Some(Slot::Primary) => self.primary_failed(now, DownReason::TransportClosed, None),
            None => {}
        }
    }

    pub(super) fn on_write_stalled(&mut self, conn: ConnId, stalled: bool, now: Instant) {
        let Some(Slot::Primary) = self.slot_of(conn) else {
            return;
        };
        let Some(primary) = self.primary.as_mut() else {
            return;
        };
        if primary.write_stalled == stalled {
            return;
        }
        primary.write_stalled = stalled;
        if stalled {
            let at = now + self.send_hold_time();
            self.arm(Timer::SendHold, at);
        } else {
            self.cancel(Timer::SendHold);
        }
    }

    pub(super) fn on_timer(&mut self, timer: Timer, now: Instant) {
        match timer {
            Timer::ConnectRetry => match self.state {
                // RFC 4271 §8.2.2 Connect, event 9: drop the attempt, restart the timer, try again.
                State::Connect | State::Active if !self.config.passive && self.started => {
                    if self.connecting {
                        self.actions.push(Action::CancelConnect);
                    }
                    self.connecting = true;
                    self.actions.push(Action::Connect);
                    let retry = self.config.connect_retry;
                    let retry = self.jittered(retry);
                    self.arm(Timer::ConnectRetry, now + retry);
                    self.set_state(State::Connect);
                }
                _ => {}
            },
            Timer::IdleHold => {
                // Automatic start (RFC 4271 events 3/5/6/7) after the error wait.
                if self.state == State::Idle && self.started {
                    self.refuse_while_idle = false;
                    self.begin_connecting(now, Duration::ZERO);
                }
            }
            Timer::Hold => {
                if self.primary.is_none() {
                    return;
                }
                let hold = match self.state {
                    State::OpenSent => self.open_wait(),
                    _ => self.negotiated_hold(),
                };
                if hold.is_zero() {
                    return;
                }
                let deadline = self.last_received + hold;
                if deadline > now {
                    // Messages arrived since the timer was armed: re-arm from the last one.
                    self.arm(Timer::Hold, deadline);
                    return;
                }
                // RFC 4271 §6.5: Hold Timer Expired, then close.
                let n = Notification::hold_timer_expired();
                self.primary_failed(now, DownReason::HoldTimerExpired, Some(n));
            }
            Timer::Keepalive => {
                let Some(conn) = self.primary.as_ref().map(|c| c.id) else {
                    return;
                };
                if !matches!(self.state, State::OpenConfirm | State::Established) {
                    return;
                }
                let keepalive = self.negotiated_keepalive();
                if keepalive.is_zero() {
                    return;
                }
                let due = self.last_sent + keepalive;
                if due > now {
                    self.arm(Timer::Keepalive, due);
                    return;
                }
                self.send(conn, wire::encode_keepalive());
                self.last_sent = now;
                self.arm(Timer::Keepalive, now + keepalive);
            }
            Timer::SendHold => {
                if self.primary.as_ref().is_some_and(|c| c.write_stalled) {
                    // RFC 9687 §4: send a NOTIFICATION (best effort) and close.
                    let n = Notification::new(ErrorCode::SendHoldTimerExpired, 0, Vec::new());
                    self.primary_failed(now, DownReason::SendHoldTimerExpired, Some(n));
                }
            }
            Timer::OpenWait => {
                if let Some(candidate) = self.candidate.take() {
                    self.send_notification(candidate.id, &Notification::hold_timer_expired());
                    self.close(candidate.id);
                }
            }
        }
    }

    /// The primary connection failed: NOTIFICATION (if any), close, report, then either promote
    /// the second connection or go Idle and restart after the error wait.
    pub(super) fn primary_failed(
        &mut self,
        now: Instant,
        reason: DownReason,
        notification: Option<Notification>,
    ) {
        let Some(primary) = self.primary.take() else {
            return;
        };
        if let Some(n) = &notification {
            self.send_notification(primary.id, n);
        }
        self.close(primary.id);
        for t in [Timer::Hold, Timer::Keepalive, Timer::SendHold] {
            self.cancel(t);
        }
        let was_established = self.state == State::Established;
        let reason = match notification {
            Some(n) => DownReason::NotificationSent(n),
            None => reason,
        };
        let retain_routes_for = if was_established {
            primary
                .info
                .as_ref()
                .and_then(|i| i.retain_routes_for(&reason))
        } else {
            None
        };
        self.actions.push(Action::Down(Down {
            reason,
            was_established,
            retain_routes_for,
        }));
        if let Some(candidate) = self.candidate.take() {
            // The second connection carries on as the primary one.
            self.cancel(Timer::OpenWait);
            self.primary = Some(candidate);
            let wait = self.open_wait();
            self.arm(Timer::Hold, now + wait);
            self.last_received = now;
            if self.state != State::OpenSent {
                // Leave the old state first so that the RIB sees the session go down.
                self.set_state(State::Idle);
            }
            self.set_state(State::OpenSent);
            return;
        }
        self.set_state(State::Idle);
        self.refuse_while_idle = false;
        if self.started {
            let wait = self.backoff.on_error(now);
            let wait = self.jittered(wait);
            self.arm(Timer::IdleHold, now + wait);
        }
    }
}
