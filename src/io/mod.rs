//! The only async and OS code: listener, peer tasks, kernel (rtnetlink), datastores, control socket, metrics.

pub mod addresses;
pub mod bgp;
pub mod birdctl;
pub mod control;
pub mod daemon;
pub mod datastore;
#[cfg(feature = "demo")]
pub mod demo;
pub mod kernel;
pub mod metrics;
