//! Harness for the interop scenarios: network namespaces joined by veth pairs and bridges,
//! real BGP speakers (BIRD 2, GoBGP, FRR, ExaBGP) started in them, conditions polled (never
//! fixed sleeps), packet captures, and artifacts kept when a scenario fails.
//!
//! A scenario is a test whose name starts with `ns_`:
//!
//! ```no_run
//! use std::time::Duration;
//! use interop::prelude::*;
//!
//! #[test]
//! fn ns_example() {
//!     run_scenario("example", &[BASE, GOBGP], |artifacts| {
//!         let lan = Switch::new("lan")?;
//!         let a = Netns::new("a")?;
//!         lan.attach(&a, "eth0", &["10.0.0.1/24"])?;
//!         let mut pcap = artifacts.capture(lan.netns(), BRIDGE, "lan.pcap")?;
//!         let gobgp = Gobgp::start(&a, artifacts, "a", &GobgpConfig::new(65001, "10.0.0.1"))?;
//!         wait_until("gobgp answers", Duration::from_secs(60), || Ok(gobgp.cli(&["global"]).is_ok()))?;
//!         pcap.stop()?;
//!         Ok(())
//!     });
//! }
//! ```

pub mod artifacts;
pub mod bench;
pub mod capture;
pub mod cluster;
pub mod evil;
pub mod kube;
pub mod malformed;
pub mod monitor;
pub mod netns;
pub mod peers;
pub mod process;
pub mod rfc7606_cases;
pub mod scenario;
pub mod tern_node;
pub mod wait;

/// Everything a scenario usually needs.
pub mod prelude {
    pub use crate::artifacts::{Artifacts, Capture};
    pub use crate::monitor::RouteMonitor;
    pub use crate::netns::{BRIDGE, Netns, Switch, veth};
    pub use crate::peers::Family;
    pub use crate::peers::bird::{Bird, BirdConfig, BirdPeer, calico_protocol_name};
    pub use crate::peers::exabgp::{Exabgp, ExabgpConfig, ExabgpNeighbor};
    pub use crate::peers::frr::{Frr, FrrConfig, FrrNeighbor};
    pub use crate::peers::gobgp::{Gobgp, GobgpConfig, GobgpNeighbor};
    pub use crate::process::Process;
    pub use crate::scenario::{BASE, BIRD, EXABGP, FRR, GOBGP, Requirement, TSHARK, run_scenario};
    pub use crate::wait::{Check, pending, wait_until};
}
