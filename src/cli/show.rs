//! `tern show peers | routes | rib | fib | status`: answered by the running daemon over its
//! read-only control socket.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use ipnet::IpNet;

use super::Cli;
use super::client::{ClientArgs, ask_and_print_with};
use crate::io::control::format::{format_peers, format_routes};
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
        /// Only prefixes inside this one (e.g. 10.65.0.0/16), itself included.
        #[arg(long, value_name = "PREFIX", conflicts_with = "prefix")]
        within: Option<IpNet>,
        /// Only prefixes after this one in prefix order: the last prefix of the previous page.
        #[arg(long, value_name = "PREFIX", conflicts_with = "prefix")]
        after: Option<IpNet>,
        /// At most this many prefixes, the first in prefix order.
        #[arg(long, value_name = "N", conflicts_with = "prefix")]
        limit: Option<usize>,
    },
    /// RIB sizes: prefixes, paths, shared attribute sets, stale paths.
    Rib,
    /// Routes tern installed in the kernel, their counts by kind and the last kernel error.
    Fib {
        /// Only routes of prefixes inside this one, itself included.
        #[arg(long, value_name = "PREFIX")]
        within: Option<IpNet>,
        /// Only routes of prefixes after this one in prefix order (the previous page's last).
        #[arg(long, value_name = "PREFIX")]
        after: Option<IpNet>,
        /// At most this many routes (and differences), the first in prefix order.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// The daemon: version, router id, AS, uptime, graceful restart.
    Status,
}

/// Runs `tern show ...`.
pub fn run(cli: &Cli, args: &ShowArgs) -> ExitCode {
    let request = match &args.what {
        ShowWhat::Peers { name } => Request::ShowPeers { name: name.clone() },
        ShowWhat::Routes {
            prefix,
            within,
            after,
            limit,
        } => match prefix {
            Some(PrefixOrAddress::Address(address)) => Request::LookupRoute { address: *address },
            Some(PrefixOrAddress::Prefix(prefix)) => Request::show_routes(Some(*prefix)),
            None => Request::ShowRoutes {
                prefix: None,
                within: *within,
                after: *after,
                limit: *limit,
            },
        },
        ShowWhat::Rib => Request::ShowRib,
        ShowWhat::Fib {
            within,
            after,
            limit,
        } => Request::ShowFib {
            within: *within,
            after: *after,
            limit: *limit,
        },
        ShowWhat::Status => Request::ShowStatus,
    };
    let list_peers = matches!(args.what, ShowWhat::Peers { name: None });
    let page = match &args.what {
        ShowWhat::Routes {
            prefix: None,
            within,
            limit: Some(limit),
            ..
        } => Some((*within, *limit)),
        _ => None,
    };
    // Without a name, peers are always a table (even when there is only one).
    ask_and_print_with(
        cli,
        &args.client,
        &request,
        |response, now| match response {
            Response::Peers(peers) if list_peers => Some(format_peers(peers, now)),
            // A full page: say how to ask for the next one.
            Response::Routes(routes) => match (page, routes.last()) {
                (Some((within, limit)), Some(last)) if routes.len() == limit => Some(format!(
                    "{}-- {limit} prefixes shown; next page: tern show routes --after {}{} --limit {limit}\n",
                    format_routes(routes),
                    last.prefix,
                    within.map(|w| format!(" --within {w}")).unwrap_or_default(),
                )),
                _ => None,
            },
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
