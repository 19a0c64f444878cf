//! The only async and OS code: listener, peer tasks, kernel (rtnetlink), datastores, control socket, metrics.

pub mod bgp;
pub mod birdctl;
pub mod control;
pub mod daemon;
pub mod datastore;
pub mod kernel;
pub mod metrics;
