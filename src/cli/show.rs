//! `tern show peers | routes | rib | fib | status`: answered by the running daemon over its
//! read-only control socket.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use ipnet::IpNet;

use super::Cli;
use super::client::{ClientArgs, ask_and_print_with};
use crate::io::control::format::format_peers;
use crate::io::control::{Request, Response};

/// Arguments of `tern show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// What to show.
    #[command(subcommand)]
    pub what: ShowWhat,
    /// How to reach the daemon and print its answer.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// What `tern show` asks for.
#[derive(Debug, Subcommand)]
pub enum ShowWhat {
    /// Every BGP peer (state, since when, last error, prefix counts), or one peer in detail.
    Peers {
        /// Protocol name of one peer (e.g. Mesh_10_0_0_2) to show its details and capabilities.
        name: Option<String>,
    },
    /// Best and alternative paths of the Loc-RIB by prefix, of one prefix, or the route an address uses.
    Routes {
        /// A prefix, exact match (e.g. 10.65.2.0/26), or an address: the longest prefix holding it.
        #[arg(value_parser = parse_prefix_or_address)]
        prefix: Option<PrefixOrAddress>,
    },
    /// RIB sizes: prefixes, paths, shared attribute sets, stale paths.
    Rib,
    /// Routes tern installed in the kernel, their counts by kind and the last kernel error.
    Fib,
    /// The daemon: version, router id, AS, uptime, graceful restart.
    Status,
}

/// Runs `tern show ...`.
pub fn run(cli: &Cli, args: &ShowArgs) -> ExitCode {
    let request = match &args.what {
        ShowWhat::Peers { name } => Request::ShowPeers { name: name.clone() },
        ShowWhat::Routes { prefix } => match prefix {
            Some(PrefixOrAddress::Address(address)) => Request::LookupRoute { address: *address },
            Some(PrefixOrAddress::Prefix(prefix)) => Request::ShowRoutes {
                prefix: Some(*prefix),
            },
            None => Request::ShowRoutes { prefix: None },
        },
        ShowWhat::Rib => Request::ShowRib,
        ShowWhat::Fib => Request::ShowFib,
        ShowWhat::Status => Request::ShowStatus,
    };
    let list_peers = matches!(args.what, ShowWhat::Peers { name: None });
    // Without a name, peers are always a table (even when there is only one).
    ask_and_print_with(
        cli,
        &args.client,
        &request,
        |response, now| match response {
            Response::Peers(peers) if list_peers => Some(format_peers(peers, now)),
            _ => None,
        },
    )
}

/// What `tern show routes` was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixOrAddress {
    /// A prefix: exact match.
    Prefix(IpNet),
    /// An address: longest-prefix lookup.
    Address(std::net::IpAddr),
}

fn parse_prefix_or_address(text: &str) -> Result<PrefixOrAddress, String> {
    if let Ok(address) = text.parse::<std::net::IpAddr>() {
        return Ok(PrefixOrAddress::Address(address));
    }
    text.parse::<IpNet>()
        .map(PrefixOrAddress::Prefix)
        .map_err(|_| {
            format!("{text:?} is neither a prefix (10.65.2.0/26) nor an address (10.65.2.7)")
        })
}
