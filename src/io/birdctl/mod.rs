//! A BIRD-compatible control socket (`/var/run/calico/bird.ctl`, `bird6.ctl`), so that Calico's
//! readiness and liveness probes, `calicoctl node status` and `birdc` work against tern unchanged.
//!
//! It answers `show status`, `show protocols [all] [name]` and `show route [...]` from the same
//! [`StatusSource`](crate::io::control::StatusSource) as tern's own control socket. It is
//! read-only: BIRD commands that change state are answered `8007 Access denied`.

pub mod command;
pub mod render;
pub mod server;

pub use render::SocketFamily;
pub use server::{
    BIRD_COMPAT_VERSION, BirdCtlOptions, BirdCtlServer, DEFAULT_V4_SOCKET_PATH,
    DEFAULT_V6_SOCKET_PATH,
};
