//! The W1 benchmark harness at small scale: 10,000 prefixes from the generator through BIRD
//! to the monitor, so that the harness (`interop::bench`, binary `bgp-bench`) keeps working.
//! Asserts completeness and sane measurements, never timings.

use std::sync::Arc;

use interop::bench::dut::{Addressing, DutKind, GEN_AS};
use interop::bench::routes::{RouteSet, RouteSpec};
use interop::bench::run::{RunLimits, run_once};
use interop::prelude::{BASE, BIRD};
use interop::scenario::require;

#[test]
fn ns_bench_smoke() {
    if !require("bench-smoke", &[BASE, BIRD].concat()) {
        return;
    }
    let routes = Arc::new(
        RouteSet::generate(&RouteSpec {
            prefixes: 10_000,
            prefixes_per_set: 250,
            seed: 1,
            local_as: GEN_AS,
            next_hop: Addressing::default().gen_addr,
        })
        .unwrap(),
    );
    let result = run_once(DutKind::Bird, &routes, &RunLimits::default(), "smoke-bird").unwrap();
    assert_eq!(result.prefixes, 10_000);
    assert!(result.seconds > 0.0);
    assert!(result.peak_rss >= result.settled_rss && result.settled_rss > 0);
    assert!(result.cpu_seconds >= 0.0);
}
