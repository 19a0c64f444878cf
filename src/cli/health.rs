//! `tern health --ready | --live`: Kubernetes probes against the running daemon. Exit 0 ready /
//! live, 1 not, 2 when the daemon cannot be asked.

use std::process::ExitCode;

use clap::{ArgGroup, Args};

use super::Cli;
use super::client::{ClientArgs, ask_and_print};
use crate::io::control::Request;

/// Arguments of `tern health`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("probe").required(true).args(["ready", "live"])))]
pub struct HealthArgs {
    /// Readiness: the datastore synced once, then no peers, or all peers Established shortly
    /// after the first sync, then at least one.
    #[arg(long)]
    pub ready: bool,
    /// Liveness: the daemon answers and its main loop is not stuck.
    #[arg(long)]
    pub live: bool,
    /// How to reach the daemon and print its answer.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs `tern health`.
pub fn run(cli: &Cli, args: &HealthArgs) -> ExitCode {
    let request = if args.ready {
        Request::HealthReady
    } else {
        Request::HealthLive
    };
    ask_and_print(cli, &args.client, &request)
}
