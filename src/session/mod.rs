//! The BGP session: a sans-IO RFC 4271 state machine with its timers, OPEN negotiation and
//! connection collision resolution. Pure: no sockets, no tokio, no clock; time is passed in.
//!
//! ```text
//!   Input (admin, TCP events, bytes, timer expiries) ──► Session::handle(input, now) ──► Vec<Action>
//! ```
//!
//! The driver (`io::bgp`) owns the sockets and timers and carries out the actions in order. The
//! core decodes received bytes itself so that every malformed message maps to its exact
//! NOTIFICATION, and encodes what it sends (OPEN, KEEPALIVE, NOTIFICATION). UPDATEs from the RIB
//! are written by the driver directly; it reports them with [`Input::UpdateSent`].
//!
//! Timers follow Calico's BIRD configuration (connect retry 5 s, error wait 5-30 s) except the
//! connect delay, 0 s by default (BIRD's is 2 s) with `tern`'s faster hold time default of 90 s (see [`config`]).
//!
//! # Where this departs from RFC 4271 §8 (all permitted options or BIRD's established practice)
//!
//! - A start waits `connect_delay` (`bgp.connect_delay_time`, 0 s by default; BIRD's `connect
//!   delay time` is 2 s) in Active, accepting connections, before the first outgoing attempt.
//! - An attempt refused by the peer's host (nothing listens yet: its daemon is starting, as
//!   every node of a mesh does at once) is retried after 100 ms, doubling up to the
//!   ConnectRetry time, rather than after the whole ConnectRetry time.
//! - A failed outgoing attempt (event 18 in Connect) returns to Active and retries when the
//!   ConnectRetryTimer fires instead of going to Idle: a peer that is not up yet is not an error.
//! - Every failure of an open connection goes to Idle and restarts automatically after the
//!   error-wait backoff (the RFC's optional DampPeerOscillations with IdleHoldTimer). During that
//!   wait a connection from the peer is accepted (the RFC's Idle refuses it): otherwise two active
//!   peers whose waits alternate refuse each other indefinitely. Idle after an administrative
//!   stop refuses every connection.
//! - The hold timer while waiting for the peer's OPEN is the configured hold time (4 minutes
//!   when that is 0) instead of a fixed 4 minutes, so a peer that accepts TCP but never answers
//!   is dropped as quickly as a silent Established one.
//! - Collision (§6.8) is resolved as soon as one of the two connections delivers an OPEN, since
//!   that gives the peer's identifier (the RFC's MAY for OpenSent); the loser gets Cease/7.
//! - With graceful restart negotiated, a new OPEN on a second connection while Established means
//!   the peer restarted (RFC 4724 §4.2): the old session ends (routes kept as stale) and the new
//!   one proceeds; without it the new connection loses (§6.8).
//! - DelayOpen (events 12 and 20) is not implemented (optional).
//! - Messages that are not allowed before Established (UPDATE, ROUTE-REFRESH) are answered with
//!   the RFC 6608 FSM error subcodes without decoding their body.

pub mod backoff;
pub mod collision;
pub mod config;
pub mod event;
mod fsm;
pub mod negotiate;
mod notification;
pub mod time;
mod wire;

#[cfg(test)]
mod tests;

pub use collision::Direction;
pub use config::{AddPathMode, GracefulRestartConfig, Password, PeerConfig, TtlMode};
pub use event::{Action, ConnId, Down, DownReason, Input, State, StopReason, Timer};
pub use fsm::Session;
pub use negotiate::SessionInfo;
pub use time::Instant;
