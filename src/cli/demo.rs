//! `tern demo`: a three-node cluster in network namespaces, converged, shown and pinged across,
//! then torn down (also on Ctrl-C). The README's "run" command. Needs root.
//!
//! Exit codes: 0 converged and the ping succeeded; 1 anything else; 128 + signal when stopped by
//! SIGINT / SIGTERM (after tearing down).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::demo::Topology;
use crate::io::demo::{DemoOptions, DemoOutcome, preflight, run as run_demo};

/// Arguments of `tern demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How the nodes peer: mesh (Calico's node-to-node mesh) or rr (node-3 as route reflector).
    #[arg(long, value_enum, default_value_t = TopologyArg::Mesh)]
    pub topology: TopologyArg,
    /// After the ping, keep the cluster running until Ctrl-C (to explore it).
    #[arg(long)]
    pub keep: bool,
    /// Seconds to wait for convergence (every peer Established, every block in every kernel).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
}

/// `--topology` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TopologyArg {
    /// Full node-to-node mesh.
    Mesh,
    /// One route reflector, the other nodes its clients.
    Rr,
}

/// Runs `tern demo`.
pub fn run(args: &DemoArgs) -> Result<ExitCode, String> {
    preflight()?;
    let tern_binary =
        std::env::current_exe().map_err(|e| format!("cannot find the tern binary itself: {e}"))?;
    let options = DemoOptions {
        topology: match args.topology {
            TopologyArg::Mesh => Topology::Mesh,
            TopologyArg::Rr => Topology::RouteReflector,
        },
        keep: args.keep,
        timeout: Duration::from_secs(args.timeout.max(1)),
        tern_binary,
    };
    match run_demo(&options)? {
        DemoOutcome::Success => Ok(ExitCode::SUCCESS),
        DemoOutcome::Interrupted(signal) => Ok(ExitCode::from(
            u8::try_from(128 + signal).unwrap_or(u8::MAX),
        )),
    }
}
