//! The session state machine (RFC 4271 §8): one per peer, up to two TCP connections (the primary
//! one the FSM runs on, and a second one tracked for collision resolution, RFC 4271 §6.8).
//!
//! [`Session::handle`] dispatches each input to one handler: transport and timer inputs in
//! `transport`, received messages in `messages`; the NOTIFICATIONs the machine builds are in
//! `session::notification`. State by state (RFC 4271 §8.2.2; the departures are listed in the
//! `session` module documentation):
//!
//! | state | Start | Stop | connection made | connect failed | OPEN | KEEPALIVE | UPDATE, ROUTE-REFRESH | NOTIFICATION, closed, error | timers |
//! |---|---|---|---|---|---|---|---|---|---|
//! | Idle | → Active (ConnectRetry at the connect delay unless passive) | stays Idle, restart timer cancelled | inbound taken → OpenSent while an automatic restart waits (not after an admin stop or max-prefix); else closed | - | - | - | - | - | IdleHold: → Active, connect at once |
//! | Connect | ignored | → Idle (attempt cancelled) | taken, OPEN sent → OpenSent (an inbound one wins over the attempt in flight) | → Active, retry at ConnectRetry | - | - | - | - | ConnectRetry: new attempt, re-armed (jittered) |
//! | Active | ignored | → Idle | inbound taken → OpenSent; a stale outbound one closed | - | - | - | - | - | ConnectRetry: connect → Connect |
//! | OpenSent | ignored | Cease → Idle | a second one tracked (OPEN sent, OpenWait) | - | checked: KEEPALIVE, negotiated timers → OpenConfirm (collision with a second connection resolved first, §6.8); rejected: its NOTIFICATION → Idle | FSM error (RFC 6608) → Idle | FSM error → Idle, body not decoded | → Idle and the error wait, or the second connection → OpenSent | Hold (the OPEN wait): Hold Timer Expired → Idle |
//! | OpenConfirm | ignored | Cease → Idle | a second one tracked; its OPEN resolves the collision | - | FSM error → Idle | → Established | FSM error → Idle | as OpenSent | Hold: expired → Idle; Keepalive: KEEPALIVE |
//! | Established | ignored | Cease (none to a graceful-restart peer on a planned restart) → Idle, Down | a second one tracked; its OPEN loses (Cease/7) unless the peer negotiated graceful restart: then the old session is Down (routes stale) and the new one → OpenConfirm | - | FSM error → Idle | hold timer refreshed | routes of negotiated, enabled families; a malformed MP attribute disables its family (RFC 7606); ROUTE-REFRESH (normal subtype) → re-send | → Idle, Down (routes kept per graceful restart) | Hold, Keepalive; SendHold (RFC 9687): writes stalled → NOTIFICATION → Idle |
//!
//! Every failure of the primary connection goes through `primary_failed`: NOTIFICATION if any,
//! close, `Action::Down`, then the second connection carries on (→ OpenSent) or the session
//! waits out the error backoff in Idle. The second connection's own OPEN wait (`OpenWait`)
//! expiring closes only it.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use bgp_proto::Family;
use bgp_proto::message::{Notification, Open};

use super::backoff::ErrorWait;
use super::collision::Direction;
use super::config::{OPEN_WAIT_HOLD_TIME, PeerConfig};
use super::event::{Action, ConnId, Input, State, Timer};
use super::negotiate::{self, SessionInfo};
use super::time::Instant;
use super::wire;

mod messages;
mod transport;

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
}

/// A non-zero seed for the jitter generator from what distinguishes sessions.
fn jitter_seed(seed: &(std::net::Ipv4Addr, std::net::IpAddr)) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    seed.hash(&mut hasher);
    hasher.finish() | 1
}
