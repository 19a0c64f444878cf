//! The `tern` command line (clap derive). One file per command; `run`, `check`, `show`,
//! `health` and `demo` slot into [`Command`] as they arrive.

mod plan;
mod version;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A BGP routing daemon for Kubernetes node networking (Calico-compatible).
#[derive(Debug, Parser)]
#[command(name = "tern", version, about)]
pub struct Cli {
    /// Settings file (TOML); default /etc/tern/tern.toml if it exists.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the peering plan of a node without touching the network.
    Plan(plan::PlanArgs),
    /// Print the version.
    Version,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Plan(args) => plan::run(&cli, args),
        Command::Version => version::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // One line, naming what is wrong.
            eprintln!("error: {}", message.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
