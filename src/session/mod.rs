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
//! Timers follow Calico's BIRD configuration (connect delay 2 s, connect retry 5 s, error wait
//! 5-30 s) with `tern`'s faster hold time default of 90 s (see [`config`]).

pub mod backoff;
pub mod collision;
pub mod config;
pub mod event;
mod fsm;
pub mod negotiate;
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
