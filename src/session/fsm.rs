//! The session state machine (RFC 4271 §8): one per peer, up to two TCP connections (the primary
//! one the FSM runs on, and a second one tracked for collision resolution, RFC 4271 §6.8).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use bgp_proto::iana::{CeaseSubcode, ErrorCode, MessageType, RouteRefreshSubtype};
use bgp_proto::message::{Message, Notification, Open};
use bgp_proto::{Context, Family};

use super::backoff::ErrorWait;
use super::collision::{Collision, Direction, ExistingState, Survivor};
use super::config::{OPEN_WAIT_HOLD_TIME, PeerConfig};
use super::event::{Action, ConnId, Down, DownReason, Input, State, StopReason, Timer};
use super::negotiate::{self, SessionInfo};
use super::time::Instant;
use super::wire;

/// RFC 6608 FSM error subcodes.
const FSM_UNEXPECTED_IN_OPENSENT: u8 = 1;
const FSM_UNEXPECTED_IN_OPENCONFIRM: u8 = 2;
const FSM_UNEXPECTED_IN_ESTABLISHED: u8 = 3;

/// One TCP connection known to the session.
#[derive(Debug)]
struct Conn {
    id: ConnId,
    direction: Direction,
    /// Bytes received and not yet decoded (an incomplete message).
    buf: BytesMut,
    /// Set once the peer's OPEN on this connection was accepted.
    info: Option<Arc<SessionInfo>>,
    /// Whether the socket refuses our data (RFC 9687).
    write_stalled: bool,
    /// Families disabled on this session after a malformed MP_REACH_NLRI / MP_UNREACH_NLRI
    /// (RFC 7606 §7.11, RFC 4760 §7): their routes are ignored until the session resets.
    disabled: Vec<Family>,
}

impl Conn {
    fn new(id: ConnId, direction: Direction) -> Self {
        Conn {
            id,
            direction,
            buf: BytesMut::new(),
            info: None,
            write_stalled: false,
            disabled: Vec::new(),
        }
    }
}

/// Which of the session's connections an event concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Primary,
    Candidate,
}

/// The first wait after a refused outgoing attempt ([`Input::ConnectRefused`]).
pub const REFUSED_RETRY_MIN: Duration = Duration::from_millis(100);

/// The sans-IO BGP session of one peer.
///
/// Feed it [`Input`]s with the current time; carry out the returned [`Action`]s in order. It never
/// reads a clock, opens a socket or blocks. See [`super::event`] for how RFC 4271 events map to
/// inputs, and `tests.rs` for the state × event table.
#[derive(Debug)]
pub struct Session {
    config: PeerConfig,
    /// Our OPEN, built once from the configuration.
    local_open: Open,
    state: State,
    /// Administratively started (RFC 4271: the session should be up).
    started: bool,
    /// An outgoing connection attempt is in flight.
    connecting: bool,
    /// While Idle waiting to restart, refuse the peer's connections too (after a max-prefix
    /// stop the peer is kept out for the whole wait, RFC 4486 §4).
    refuse_while_idle: bool,
    primary: Option<Conn>,
    candidate: Option<Conn>,
    backoff: ErrorWait,
    /// Outgoing attempts refused in a row ([`Input::ConnectRefused`]): each retry waits twice
    /// as long as the last, from [`REFUSED_RETRY_MIN`] up to the ConnectRetry time.
    refused: u32,
    /// When the last message arrived on the primary connection (the hold timer is re-armed
    /// lazily on expiry: no timer action per message).
    last_received: Instant,
    /// When the last KEEPALIVE or UPDATE was sent (same lazy scheme for the keepalive timer).
    last_sent: Instant,
    /// State of the jitter generator (xorshift64*).
    rng: u64,
    actions: Vec<Action>,
}

impl Session {
    /// A session in Idle; nothing happens before [`Input::Start`].
    pub fn new(config: PeerConfig) -> Self {
        let local_open = negotiate::local_open(&config);
        let backoff = ErrorWait::new(
            config.error_wait.0,
            config.error_wait.1,
            config.error_forget,
        );
        let rng = jitter_seed(&(config.router_id, config.peer_address));
        Session {
            config,
            local_open,
            state: State::Idle,
            started: false,
            connecting: false,
            refuse_while_idle: false,
            refused: 0,
            primary: None,
            candidate: None,
            backoff,
            last_received: Instant::ZERO,
            last_sent: Instant::ZERO,
            rng,
            actions: Vec::new(),
        }
    }

    /// The current RFC 4271 state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration.
    pub fn config(&self) -> &PeerConfig {
        &self.config
    }

    /// Applies a configuration that differs only in fields that need no reset
    /// ([`PeerConfig::requires_reset`] is false): connection pacing, `passive` and the graceful
    /// restart R and F bits. They take effect at the next attempt (the OPEN is rebuilt for the
    /// next connection).
    pub fn update_pacing(&mut self, config: PeerConfig) {
        debug_assert!(!self.config.requires_reset(&config));
        self.backoff = ErrorWait::new(
            config.error_wait.0,
            config.error_wait.1,
            config.error_forget,
        );
        self.local_open = negotiate::local_open(&config);
        self.config = config;
    }

    /// Our OPEN as sent on every connection.
    pub fn local_open(&self) -> &Open {
        &self.local_open
    }

    /// The negotiated facts while Established.
    pub fn established(&self) -> Option<&Arc<SessionInfo>> {
        match (self.state, &self.primary) {
            (State::Established, Some(conn)) => conn.info.as_ref(),
            _ => None,
        }
    }

    /// The connection the session runs on, once a TCP connection is in use.
    pub fn primary_conn(&self) -> Option<ConnId> {
        self.primary.as_ref().map(|c| c.id)
    }

    /// Processes one input at `now` and returns what to do.
    pub fn handle(&mut self, input: Input<'_>, now: Instant) -> Vec<Action> {
        match input {
            Input::Start => self.on_start(now),
            Input::Stop(reason) => self.on_stop(reason, now),
            Input::Connected { conn, direction } => self.on_connected(conn, direction, now),
            Input::ConnectFailed => self.on_connect_failed(),
            Input::ConnectRefused => self.on_connect_refused(now),
            Input::Closed { conn } => self.on_closed(conn, now),
            Input::Received { conn, bytes } => self.on_received(conn, bytes, now),
            Input::TimerExpired(timer) => self.on_timer(timer, now),
            Input::WriteStalled { conn } => self.on_write_stalled(conn, true, now),
            Input::WriteResumed { conn } => self.on_write_stalled(conn, false, now),
            Input::UpdateSent => self.last_sent = now,
        }
        std::mem::take(&mut self.actions)
    }

    // ----- helpers -----

    fn set_state(&mut self, to: State) {
        if self.state != to {
            self.actions.push(Action::StateChanged {
                from: self.state,
                to,
            });
            self.state = to;
        }
    }

    fn arm(&mut self, timer: Timer, at: Instant) {
        self.actions.push(Action::ArmTimer { timer, at });
    }

    fn cancel(&mut self, timer: Timer) {
        self.actions.push(Action::CancelTimer(timer));
    }

    fn send(&mut self, conn: ConnId, bytes: Bytes) {
        self.actions.push(Action::Send { conn, bytes });
    }

    fn send_notification(&mut self, conn: ConnId, notification: &Notification) {
        self.send(conn, wire::encode_notification(notification));
    }

    fn close(&mut self, conn: ConnId) {
        self.actions.push(Action::Close { conn });
    }

    fn slot_of(&self, conn: ConnId) -> Option<Slot> {
        if self.primary.as_ref().is_some_and(|c| c.id == conn) {
            Some(Slot::Primary)
        } else if self.candidate.as_ref().is_some_and(|c| c.id == conn) {
            Some(Slot::Candidate)
        } else {
            None
        }
    }

    fn negotiated_hold(&self) -> Duration {
        self.primary
            .as_ref()
            .and_then(|c| c.info.as_ref())
            .map_or(Duration::ZERO, |i| i.hold_time)
    }

    fn negotiated_keepalive(&self) -> Duration {
        self.primary
            .as_ref()
            .and_then(|c| c.info.as_ref())
            .map_or(Duration::ZERO, |i| i.keepalive_time)
    }

    /// How long to wait for the peer's OPEN: the configured hold time, or 4 minutes when it is
    /// zero (RFC 4271 §8.2.2 suggests "a large value" such as 4 minutes).
    fn open_wait(&self) -> Duration {
        if self.config.hold_time.is_zero() {
            OPEN_WAIT_HOLD_TIME
        } else {
            self.config.hold_time
        }
    }

    fn send_hold_time(&self) -> Duration {
        // RFC 9687 §3: at least 8 minutes or twice the hold time, whichever is larger.
        self.config
            .send_hold_time
            .unwrap_or_else(|| super::config::MIN_SEND_HOLD_TIME.max(self.negotiated_hold() * 2))
    }

    /// `interval` × a factor in [0.75, 1.0] when jitter is on (RFC 4271 §10).
    fn jittered(&mut self, interval: Duration) -> Duration {
        if !self.config.jitter {
            return interval;
        }
        // xorshift64*: deterministic per session, no randomness source needed.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let unit = (r >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        interval.mul_f64(0.75 + 0.25 * unit)
    }

    /// Sends our OPEN on a fresh connection.
    fn send_open(&mut self, conn: ConnId) {
        let bytes = wire::encode_open(&self.local_open);
        self.send(conn, bytes);
    }

    /// Starts (or restarts) trying: Active, then Connect after the connect delay (or at once when
    /// `immediately`), unless passive.
    fn begin_connecting(&mut self, now: Instant, delay: Duration) {
        self.set_state(State::Active);
        if !self.config.passive {
            self.arm(Timer::ConnectRetry, now + delay);
        }
    }

    // ----- inputs -----

    fn on_start(&mut self, now: Instant) {
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

    fn on_stop(&mut self, reason: &StopReason, now: Instant) {
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

    fn on_connected(&mut self, conn: ConnId, direction: Direction, now: Instant) {
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
    fn take_primary(&mut self, conn: ConnId, direction: Direction, now: Instant) {
        self.cancel(Timer::ConnectRetry);
        self.refused = 0;
        self.primary = Some(Conn::new(conn, direction));
        self.send_open(conn);
        let wait = self.open_wait();
        self.arm(Timer::Hold, now + wait);
        self.last_received = now;
        self.set_state(State::OpenSent);
    }

    fn on_connect_failed(&mut self) {
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
    fn on_connect_refused(&mut self, now: Instant) {
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

    fn on_closed(&mut self, conn: ConnId, now: Instant) {
        match self.slot_of(conn) {
            Some(Slot::Candidate) => {
                self.candidate = None;
                self.cancel(Timer::OpenWait);
            }
            Some(Slot::Primary) => self.primary_failed(now, DownReason::TransportClosed, None),
            None => {}
        }
    }

    fn on_write_stalled(&mut self, conn: ConnId, stalled: bool, now: Instant) {
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

    fn on_timer(&mut self, timer: Timer, now: Instant) {
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
    fn primary_failed(
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

    fn on_received(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
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
                    self.fsm_error()
                } else {
                    Notification::new(
                        ErrorCode::FiniteStateMachine,
                        FSM_UNEXPECTED_IN_OPENSENT,
                        Vec::new(),
                    )
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
    fn protocol_error(&mut self, slot: Slot, now: Instant, notification: Notification) {
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

    fn fsm_error(&self) -> Notification {
        let subcode = match self.state {
            State::OpenSent => FSM_UNEXPECTED_IN_OPENSENT,
            State::OpenConfirm => FSM_UNEXPECTED_IN_OPENCONFIRM,
            _ => FSM_UNEXPECTED_IN_ESTABLISHED,
        };
        // RFC 6608 §4: Finite State Machine Error with the subcode naming the state.
        Notification::new(ErrorCode::FiniteStateMachine, subcode, Vec::new())
    }

    fn primary_message(&mut self, message: Message, now: Instant) {
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
                let n = self.fsm_error();
                self.primary_failed(now, DownReason::TransportClosed, Some(n));
            }
        }
    }

    fn primary_open(&mut self, open: Open, now: Instant) {
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
    fn enter_open_confirm(&mut self, now: Instant) {
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

    fn enter_established(&mut self, now: Instant) {
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

    fn primary_loses_collision(&mut self, now: Instant) {
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

    fn candidate_loses_collision(&mut self) {
        if let Some(candidate) = self.candidate.take() {
            self.cancel(Timer::OpenWait);
            let n = Notification::cease(CeaseSubcode::ConnectionCollisionResolution);
            self.send_notification(candidate.id, &n);
            self.close(candidate.id);
        }
    }

    fn candidate_message(&mut self, message: Message, now: Instant) {
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
                let n = Notification::new(
                    ErrorCode::FiniteStateMachine,
                    FSM_UNEXPECTED_IN_OPENSENT,
                    Vec::new(),
                );
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

    fn on_update(&mut self, mut update: bgp_proto::message::Update) {
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

    fn on_route_refresh(&mut self, family: Family) {
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

/// The Cease NOTIFICATION for a stop, wrapped in a Hard Reset (RFC 8538 §3) where the N bit is
/// negotiated and the subcode calls for one (RFC 8538 §5: Maximum Number of Prefixes Reached,
/// Administrative Shutdown and Peer De-configured).
fn cease_for(reason: &StopReason, hard_reset_possible: bool) -> Option<Notification> {
    let (n, hard) = match reason {
        StopReason::Shutdown { text } | StopReason::PlannedRestart { text } => {
            // RFC 9003 §2: the shutdown communication.
            (
                Notification::cease_with_communication(CeaseSubcode::AdministrativeShutdown, text),
                true,
            )
        }
        StopReason::Deconfigured => (Notification::cease(CeaseSubcode::PeerDeconfigured), true),
        StopReason::ConfigChange => (
            Notification::cease(CeaseSubcode::OtherConfigurationChange),
            false,
        ),
        StopReason::Reset { text } => (
            Notification::cease_with_communication(CeaseSubcode::AdministrativeReset, text),
            false,
        ),
        StopReason::MaxPrefix { family, limit, .. } => {
            // RFC 4486 §4: AFI (2), SAFI (1), upper bound (4).
            let mut data = Vec::with_capacity(7);
            data.extend_from_slice(&u16::from(family.afi).to_be_bytes());
            data.push(u8::from(family.safi));
            data.extend_from_slice(&limit.to_be_bytes());
            (
                Notification::new(
                    ErrorCode::Cease,
                    CeaseSubcode::MaximumPrefixesReached.into(),
                    data,
                ),
                true,
            )
        }
    };
    if hard && hard_reset_possible {
        // RFC 8538 §3: Hard Reset data = the inner code, subcode and data.
        let mut data = Vec::with_capacity(n.data.len() + 2);
        data.push(u8::from(n.code));
        data.push(n.subcode);
        data.extend_from_slice(&n.data);
        return Some(Notification::new(
            ErrorCode::Cease,
            CeaseSubcode::HardReset.into(),
            data,
        ));
    }
    Some(n)
}

/// A non-zero seed for the jitter generator from what distinguishes sessions.
fn jitter_seed(seed: &(std::net::Ipv4Addr, std::net::IpAddr)) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    seed.hash(&mut hasher);
    hasher.finish() | 1
}
