//! Workload W1 of `shared/spec/benchmarks.md`: one peer announces 1,000,000 IPv4 prefixes to
//! the daemon under test, which re-advertises them to a monitor peer; timed from the
//! generator's first UPDATE to the last prefix at the monitor, with the daemon's peak and
//! settled memory and CPU time. BIRD, GoBGP, FRR and tern are run interleaved in the same run.
//!
//! The binary is `bgp-bench` (`interop/src/bin/bgp-bench.rs`); see `docs/benchmarks.md`.

pub mod dut;
pub mod measure;
pub mod report;
pub mod routes;
pub mod run;
pub mod speaker;
pub mod tern;
