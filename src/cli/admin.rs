//! `tern peer restart|disable|enable NAME` and `tern reload`: mutating requests, sent to the
//! running daemon's admin socket (mode 0600: the daemon's user or root).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::client::{ClientArgs, ask_and_print};
use super::{Cli, one_line};
use crate::config::Settings;
use crate::io::control::Request;

/// How to reach the admin socket.
#[derive(Debug, Clone, Args)]
pub struct AdminClientArgs {
    /// Print the daemon's answer as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// tern's admin socket (default: settings control.admin_socket, else tern-admin.ctl beside control.socket).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// How long to wait for the daemon to answer (e.g. 500ms, 5s).
    #[arg(long, global = true, value_name = "DURATION", default_value = "10s",
          value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// Arguments of `tern peer`.
#[derive(Debug, Args)]
pub struct PeerArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: PeerAction,
    /// How to reach the daemon.
    #[command(flatten)]
    pub client: AdminClientArgs,
}

/// What `tern peer` does to one peer.
#[derive(Debug, Subcommand)]
pub enum PeerAction {
    /// Reset the session (Cease/4 Administrative Reset); it comes back by itself.
    Restart {
        /// Protocol name of the peer (e.g. Mesh_10_0_0_2), as `tern show peers` lists it.
        name: String,
    },
    /// Stop the session (Cease/2 Administrative Shutdown) until `tern peer enable`.
    Disable {
        /// Protocol name of the peer (e.g. Mesh_10_0_0_2), as `tern show peers` lists it.
        name: String,
    },
    /// Start a disabled peer's session again.
    Enable {
        /// Protocol name of the peer (e.g. Mesh_10_0_0_2), as `tern show peers` lists it.
        name: String,
    },
}

/// Arguments of `tern reload`.
#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// How to reach the daemon.
    #[command(flatten)]
    pub client: AdminClientArgs,
}

fn client_args(cli: &Cli, args: &AdminClientArgs) -> Result<ClientArgs, String> {
    let socket = match &args.socket {
        Some(path) => path.clone(),
        None => Settings::load(cli.config.as_deref())
            .map(|s| s.control.admin_socket_path())
            .map_err(|e| format!("{e} (pass --socket PATH to name the admin socket directly)"))?,
    };
    Ok(ClientArgs {
        json: args.json,
        socket: Some(socket),
        timeout: args.timeout,
    })
}

fn ask(cli: &Cli, args: &AdminClientArgs, request: &Request) -> ExitCode {
    match client_args(cli, args) {
        Ok(client) => ask_and_print(cli, &client, request),
        Err(message) => {
            eprintln!("error: {}", one_line(&message));
            ExitCode::from(super::client::EXIT_UNREACHABLE)
        }
    }
}

/// Runs `tern peer ...`.
pub fn run_peer(cli: &Cli, args: &PeerArgs) -> ExitCode {
    let request = match &args.action {
        PeerAction::Restart { name } => Request::ResetPeer { name: name.clone() },
        PeerAction::Disable { name } => Request::DisablePeer { name: name.clone() },
        PeerAction::Enable { name } => Request::EnablePeer { name: name.clone() },
    };
    ask(cli, &args.client, &request)
}

/// Runs `tern reload`.
pub fn run_reload(cli: &Cli, args: &ReloadArgs) -> ExitCode {
    ask(cli, &args.client, &Request::Reload)
}
