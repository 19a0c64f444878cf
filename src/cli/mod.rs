//! The `tern` command line (clap derive). One file per command; `run` and `demo` slot into
//! [`Command`] as they arrive.
//!
//! Exit codes: 0 success; 1 invalid input (`check`, `plan`), not ready / not live (`health`);
//! 2 the daemon could not be asked or answered with an error (`show`, `health`, `peer`,
//! `reload`).

mod admin;
mod check;
mod client;
#[cfg(feature = "demo")]
mod demo;
mod health;
mod plan;
mod run;
mod show;
mod version;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{LogFormat, Settings};
use crate::logging::LogSettings;

pub use admin::{AdminClientArgs, PeerAction, PeerArgs, ReloadArgs};
pub use check::CheckArgs;
pub use client::ClientArgs;
#[cfg(feature = "demo")]
pub use demo::DemoArgs;
pub use health::HealthArgs;
pub use plan::PlanArgs;
pub use run::RunArgs;
pub use show::{ShowArgs, ShowWhat};
pub use version::VersionArgs;

/// A BGP routing daemon for Kubernetes node networking (Calico-compatible).
#[derive(Debug, Parser)]
#[command(name = "tern", version, about)]
pub struct Cli {
    /// Settings file (TOML); default /etc/tern/tern.toml if it exists.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log output format of the daemon: auto (human on a terminal, else JSON), human or json.
    #[arg(
        long,
        global = true,
        value_name = "FORMAT",
        hide_possible_values = true,
        help_heading = "Logging (tern run)"
    )]
    pub log_format: Option<LogFormat>,
    /// Log level or filter of the daemon: trace, debug, info, warn, error, off, a Calico severity
    /// (Warning) or directives such as warn,tern::session=debug (beats TERN_LOG and RUST_LOG).
    #[arg(
        long,
        global = true,
        value_name = "LEVEL",
        help_heading = "Logging (tern run)"
    )]
    pub log_level: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The logging configuration the daemon starts with: `--log-format` / `--log-level`, then
    /// `TERN_LOG`, then `RUST_LOG`, then the settings file (see [`LogSettings::resolve`]).
    pub fn log_settings(&self, settings: &Settings) -> Result<LogSettings, String> {
        LogSettings::resolve(settings, self.log_format, self.log_level.as_deref(), |k| {
            std::env::var(k).ok()
        })
        .map_err(|e| e.to_string())
    }
}

/// The settings of a command: the file (`--config`, else the default path when it exists), then
/// the environment overrides (`NODENAME`, `CALICO_ROUTER_ID`, ...).
pub fn load_settings(cli: &Cli) -> Result<Settings, String> {
    let mut settings = Settings::load(cli.config.as_deref()).map_err(|e| e.to_string())?;
    settings
        .apply_env(|k| std::env::var(k).ok())
        .map_err(|e| e.to_string())?;
    Ok(settings)
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: BGP sessions, RIB, kernel routes, control and status sockets.
    Run(run::RunArgs),
    /// Print the peering plan of a node without touching the network.
    Plan(plan::PlanArgs),
    /// Validate the settings and the Calico resources; exit 1 when something is invalid.
    Check(check::CheckArgs),
    /// Ask the running daemon about its peers, routes, RIB, kernel routes or itself.
    Show(show::ShowArgs),
    /// Readiness or liveness probe against the running daemon (exit 0 = healthy, 1 = not).
    Health(health::HealthArgs),
    /// Restart, disable or enable one peer's session (admin socket).
    Peer(admin::PeerArgs),
    /// Re-read the datastore now; a bad configuration is rejected and the running one stays (admin socket).
    Reload(admin::ReloadArgs),
    /// Print the version (and build details with --json).
    Version(version::VersionArgs),
    /// Build a three-node cluster in network namespaces, show it converge and ping, tear it down.
    #[cfg(feature = "demo")]
    Demo(demo::DemoArgs),
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Run(args) => run::run(&cli, args).map(|()| ExitCode::SUCCESS),
        Command::Plan(args) => plan::run(&cli, args).map(|()| ExitCode::SUCCESS),
        Command::Check(args) => Ok(check::run(&cli, args)),
        Command::Show(args) => Ok(show::run(&cli, args)),
        Command::Health(args) => Ok(health::run(&cli, args)),
        Command::Peer(args) => Ok(admin::run_peer(&cli, args)),
        Command::Reload(args) => Ok(admin::run_reload(&cli, args)),
        Command::Version(args) => version::run(args).map(|()| ExitCode::SUCCESS),
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo::run(args),
    };
    result.unwrap_or_else(|message| {
        // One line, naming what is wrong.
        eprintln!("error: {}", one_line(&message));
        ExitCode::FAILURE
    })
}

/// Writes to standard output. A reader that went away (`tern show peers | head -1`) is not an
/// error worth a panic: the rest of the output is dropped.
pub(crate) fn print_out(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// A message on one line: line breaks become spaces.
pub(crate) fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_line_is_consistent_and_every_argument_has_help() {
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        fn walk(cmd: &clap::Command, path: &str) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(!help.is_empty(), "{path} {id} has no help");
                assert!(!help.contains('\n'), "{path} {id}: help is one line");
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() == "help" {
                    continue;
                }
                assert!(
                    sub.get_about().is_some(),
                    "{path} {} has no help",
                    sub.get_name()
                );
                walk(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        walk(&cmd, "tern");
    }

    #[test]
    fn global_flags_reach_subcommands() {
        let cli = Cli::try_parse_from([
            "tern",
            "show",
            "peers",
            "Mesh_10_0_0_2",
            "--json",
            "--socket",
            "/tmp/x.ctl",
            "--log-level",
            "debug",
        ])
        .unwrap();
        assert_eq!(cli.log_level.as_deref(), Some("debug"));
        let Command::Show(show) = cli.command else {
            panic!("not show")
        };
        assert!(show.client.json);
        assert_eq!(show.client.socket, Some(PathBuf::from("/tmp/x.ctl")));
        assert!(matches!(show.what, ShowWhat::Peers { name: Some(ref n) } if n == "Mesh_10_0_0_2"));

        assert!(Cli::try_parse_from(["tern", "health"]).is_err());
        assert!(Cli::try_parse_from(["tern", "health", "--ready", "--live"]).is_err());
        assert!(Cli::try_parse_from(["tern", "show", "routes", "10.0.0.0/33"]).is_err());
        assert!(Cli::try_parse_from(["tern", "--log-format", "xml", "version"]).is_err());
    }
}
