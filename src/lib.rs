//! `tern`: a BGP routing daemon for Kubernetes node networking.
//!
//! Data flows one way: datastore → [`plan`] → [`session`]s and [`rib`] → [`fib`] (kernel) and
//! peers. Everything except [`io`] and [`cli`] is pure: no sockets, no tokio, no wall clock.

pub mod cli;
pub mod config;
pub mod fib;
pub mod io;
pub mod model;
pub mod plan;
pub mod rib;
pub mod session;
