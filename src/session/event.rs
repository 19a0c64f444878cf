//! What goes into the session core ([`Input`]) and what comes out ([`Action`]).
//!
//! RFC 4271 §8.1 events map to inputs as follows (the table-driven tests in `tests.rs` walk every
//! state × input):
//!
//! | RFC 4271 event | input |
//! |---|---|
//! | 1 ManualStart, 4 ManualStart_with_PassiveTcpEstablishment | [`Input::Start`] (passive from [`PeerConfig::passive`](super::PeerConfig::passive)) |
//! | 2 ManualStop, 8 AutomaticStop | [`Input::Stop`] ([`StopReason`] says which Cease and whether to restart) |
//! | 3, 5, 6, 7 AutomaticStart (with damping) | [`Timer::IdleHold`] expiry after an error (the error-wait backoff is the damping) |
//! | 9 ConnectRetryTimer_Expires | [`Timer::ConnectRetry`] expiry (also ends the initial connect delay) |
//! | 10 HoldTimer_Expires | [`Timer::Hold`] (primary connection) / [`Timer::OpenWait`] (collision candidate) |
//! | 11 KeepaliveTimer_Expires | [`Timer::Keepalive`] |
//! | 12 DelayOpenTimer_Expires, 20 BGPOpen with DelayOpenTimer running | not implemented (DelayOpen is an optional attribute; off) |
//! | 13 IdleHoldTimer_Expires | [`Timer::IdleHold`] |
//! | 14 TcpConnection_Valid, 17 TcpConnectionConfirmed | [`Input::Connected`] with [`Direction::Inbound`] |
//! | 15 Tcp_CR_Invalid | handled by the listener: connections from unconfigured addresses never reach a session |
//! | 16 Tcp_CR_Acked | [`Input::Connected`] with [`Direction::Outbound`] |
//! | 18 TcpConnectionFails | [`Input::ConnectFailed`] / [`Input::ConnectRefused`] (outgoing attempt) / [`Input::Closed`] (open connection) |
//! | 19 BGPOpen, 21 BGPHeaderErr, 22 BGPOpenMsgErr, 24 NotifMsgVerErr, 25 NotifMsg, 26 KeepAliveMsg, 27 UpdateMsg, 28 UpdateMsgErr | [`Input::Received`] (bytes decoded by the core) |
//! | 23 OpenCollisionDump | internal: the collision decision ([`super::collision`]) |
//! | (RFC 9687) SendHoldTimer_Expires | [`Timer::SendHold`], armed on [`Input::WriteStalled`] |

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use bgp_proto::Family;

use super::collision::Direction;
use super::negotiate::SessionInfo;
use super::time::Instant;

/// Identifies one TCP connection of a session; chosen by the driver (unique per session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// The RFC 4271 §8.2.2 session states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not trying: stopped, or waiting out the error wait (then only the peer's connection is
    /// taken, see the module docs of [`crate::session`]).
    Idle,
    /// An outgoing connection attempt is in flight.
    Connect,
    /// Waiting for the peer to connect (and for the next outgoing attempt, unless passive).
    Active,
    /// Our OPEN is sent; waiting for the peer's.
    OpenSent,
    /// OPENs exchanged; waiting for the peer's KEEPALIVE.
    OpenConfirm,
    /// The session is up.
    Established,
}

impl State {
    /// The name as RFC 4271 and BIRD print it.
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The session's timers. The driver keeps at most one deadline per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// RFC 4271 ConnectRetryTimer; also the initial connect delay.
    ConnectRetry,
    /// RFC 4271 HoldTimer of the primary connection.
    Hold,
    /// RFC 4271 KeepaliveTimer.
    Keepalive,
    /// RFC 4271 IdleHoldTimer: the error-wait backoff before an automatic restart.
    IdleHold,
    /// RFC 9687 SendHoldTimer: armed while the socket does not accept our data.
    SendHold,
    /// Hold timer of a second (collision candidate) connection waiting for its OPEN.
    OpenWait,
}

/// Why the session is being stopped ([`Input::Stop`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Administrative shutdown (peer disabled or removed): Cease/2 with the RFC 9003 shutdown
    /// text; the session stays down until the next [`Input::Start`].
    Shutdown {
        /// Shutdown communication (RFC 9003), at most 255 UTF-8 bytes (longer is truncated at a
        /// character boundary).
        text: String,
    },
    /// The peering was removed from the configuration: Cease/3 (Peer De-configured); stays down.
    Deconfigured,
    /// A planned restart of `tern`: no NOTIFICATION to peers that negotiated graceful restart
    /// (it would defeat their helper mode, RFC 4724 §4.1/RFC 8538), Cease/2 with `text` to the
    /// others; stays down.
    PlannedRestart {
        /// Shutdown communication for peers without graceful restart.
        text: String,
    },
    /// A change of configuration that needs a new session (password, AS, capabilities, router
    /// id): Cease/6 (Other Configuration Change, RFC 4486), then restart.
    ConfigChange,
    /// Administrative reset: Cease/4 with `text`, then restart.
    Reset {
        /// Shutdown communication (RFC 9003).
        text: String,
    },
    /// The peer sent more prefixes than allowed (RFC 4486 §4): Cease/1 with AFI, SAFI and the
    /// limit, then a new session after `restart_after` (robustness F19); the peer's connections
    /// are refused meanwhile.
    MaxPrefix {
        /// The family over its limit.
        family: Family,
        /// The limit.
        limit: u32,
        /// How long the session stays down.
        restart_after: Duration,
    },
}

impl StopReason {
    /// Whether the session restarts by itself afterwards.
    pub fn restarts(&self) -> bool {
        matches!(
            self,
            StopReason::ConfigChange | StopReason::Reset { .. } | StopReason::MaxPrefix { .. }
        )
    }
}

/// One input to [`Session::handle`](super::Session::handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// Administrative start (RFC 4271 events 1/4).
    Start,
    /// Administrative or automatic stop (events 2/8).
    Stop(&'a StopReason),
    /// A TCP connection is up: our attempt completed (event 16) or the listener accepted one from
    /// this peer's address (events 14/17).
    Connected {
        /// The driver's id for it.
        conn: ConnId,
        /// Who opened it.
        direction: Direction,
    },
    /// The outgoing connection attempt failed (event 18 in Connect).
    ConnectFailed,
    /// The outgoing connection attempt was refused (a TCP reset: the peer's host is up but
    /// nothing listens yet). Event 18 like [`Input::ConnectFailed`], retried sooner.
    ConnectRefused,
    /// A connection was closed or reset by the peer, or a read/write failed (event 18).
    Closed {
        /// Which one.
        conn: ConnId,
    },
    /// Bytes read from a connection (events 19-28 after decoding).
    Received {
        /// Which connection.
        conn: ConnId,
        /// The bytes, in stream order; any split is fine.
        bytes: &'a [u8],
    },
    /// A timer armed by [`Action::ArmTimer`] reached its deadline.
    TimerExpired(Timer),
    /// The connection's socket has not accepted queued data (RFC 9687): starts the send hold timer.
    WriteStalled {
        /// Which connection.
        conn: ConnId,
    },
    /// The socket accepted data again: stops the send hold timer.
    WriteResumed {
        /// Which connection.
        conn: ConnId,
    },
    /// The driver wrote an UPDATE on the Established connection (restarts the KeepaliveTimer,
    /// RFC 4271 §8.2.2 Established).
    UpdateSent,
}

/// Why a session (or an attempt at one) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// We sent this NOTIFICATION (a protocol error, a stop, a collision).
    NotificationSent(Notification),
    /// The peer sent this NOTIFICATION.
    NotificationReceived(Notification),
    /// The hold timer expired (NOTIFICATION 4/0 sent).
    HoldTimerExpired,
    /// The peer did not read our data for the send hold time (RFC 9687).
    SendHoldTimerExpired,
    /// The TCP connection closed or failed.
    TransportClosed,
    /// Stopped without a NOTIFICATION (planned restart towards a graceful-restart peer).
    PlannedRestart,
    /// The peer opened a new session while this one was Established and graceful restart was
    /// negotiated (RFC 4724 §4.2): the peer restarted.
    PeerRestarted,
}

impl std::fmt::Display for DownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownReason::NotificationSent(n) => write!(f, "sent NOTIFICATION {n}"),
            DownReason::NotificationReceived(n) => write!(f, "received NOTIFICATION {n}"),
            DownReason::HoldTimerExpired => f.write_str("hold timer expired"),
            DownReason::SendHoldTimerExpired => {
                f.write_str("send hold timer expired (peer not reading)")
            }
            DownReason::TransportClosed => f.write_str("connection closed"),
            DownReason::PlannedRestart => f.write_str("planned restart"),
            DownReason::PeerRestarted => {
                f.write_str("peer restarted (new OPEN on a new connection)")
            }
        }
    }
}

/// The session went down ([`Action::Down`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Down {
    /// Why.
    pub reason: DownReason,
    /// Whether it had been Established (routes from it exist).
    pub was_established: bool,
    /// When the peer's routes should be kept as stale (we act as graceful-restart helper, RFC
    /// 4724 §4.2 and RFC 8538 §4): for how long at most. `None` = withdraw them now.
    pub retain_routes_for: Option<Duration>,
}

/// A decoded NOTIFICATION (re-exported wire type).
pub use bgp_proto::message::Notification;

/// One thing for the driver to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start an outgoing TCP connection attempt (bind the source address, set TCP-MD5 and TTL
    /// first). The driver answers with [`Input::Connected`] or [`Input::ConnectFailed`].
    Connect,
    /// Abandon the outgoing attempt in flight (no input is expected for it afterwards).
    CancelConnect,
    /// Write these bytes (one or more whole BGP messages) on the connection.
    Send {
        /// Which connection.
        conn: ConnId,
        /// The encoded messages.
        bytes: Bytes,
    },
    /// Close the connection after writing what was sent before; forget it.
    Close {
        /// Which connection.
        conn: ConnId,
    },
    /// (Re)arm a timer to expire at `at`, replacing any earlier deadline for it.
    ArmTimer {
        /// Which timer.
        timer: Timer,
        /// Its deadline on the driver's monotonic clock.
        at: Instant,
    },
    /// Disarm a timer.
    CancelTimer(Timer),
    /// The state changed.
    StateChanged {
        /// Old state.
        from: State,
        /// New state.
        to: State,
    },
    /// The session is Established on `conn` with these negotiated facts. The driver now sends
    /// the initial table then End-of-RIB per family.
    Established {
        /// The connection it runs on.
        conn: ConnId,
        /// What both sides agreed.
        negotiated: Arc<SessionInfo>,
    },
    /// An UPDATE arrived (already decoded with the negotiated context; RFC 7606 outcomes are
    /// in it) for the RIB.
    Update(Box<bgp_proto::message::Update>),
    /// The peer finished its initial table for this family (RFC 4724 §2 End-of-RIB).
    EndOfRib(Family),
    /// A malformed MP_REACH_NLRI / MP_UNREACH_NLRI disabled this negotiated family for the rest
    /// of the session (RFC 7606 §7.11, RFC 4760 §7): delete the peer's routes of the family.
    /// Later routes of it are not passed on.
    FamilyDisabled(Family),
    /// The peer asks for our routes of this family again (RFC 2918).
    RouteRefresh(Family),
    /// The session (or attempt) ended.
    Down(Down),
}
