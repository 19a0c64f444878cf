//! `tern`: a BGP routing daemon for Kubernetes node networking.
//!
//! Data flows one way: datastore → [`plan`] → [`session`]s and [`rib`] → [`fib`] (kernel) and
//! peers. Everything except [`io`], [`cli`] and [`logging`] (its `init`) is pure: no sockets, no
//! tokio, no wall clock.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod fib;
pub mod io;
pub mod logging;
pub mod model;
pub mod plan;
pub mod rib;
pub mod session;
pub mod status;
pub mod table;
