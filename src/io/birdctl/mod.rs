//! A BIRD-compatible control socket (`/var/run/calico/bird.ctl`, `bird6.ctl`), so that Calico's
//! readiness and liveness probes, `calicoctl node status` and `birdc` work against tern unchanged.
//!
//! It answers `show status`, `show protocols [all] [name]` and `show route [...]` from the same
//! [`StatusSource`](crate::io::control::StatusSource) as tern's own control socket. With the
//! daemon's admin actions it also serves `disable`, `enable` and `restart <protocol | "pattern"
//! | all>` for operators used to `birdc`, to root or the daemon's own user only (`SO_PEERCRED`),
//! each logged with the caller; every other BIRD command that changes state is answered
//! `8007 Access denied`.

pub mod command;
pub mod render;
pub mod server;

pub use render::SocketFamily;
pub use server::{
    BIRD_COMPAT_VERSION, BirdCtlOptions, BirdCtlServer, DEFAULT_V4_SOCKET_PATH,
    DEFAULT_V6_SOCKET_PATH,
};
