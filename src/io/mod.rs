//! The only async and OS code: listener, peer tasks, kernel (rtnetlink), datastores, control socket, metrics.

pub mod datastore;
