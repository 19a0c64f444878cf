//! ExaBGP: config writer and launcher, with an API process that feeds ExaBGP the commands a
//! scenario appends to a file (`announce route ...`, `withdraw route ...`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::Family;
use crate::artifacts::Artifacts;
use crate::netns::Netns;
use crate::process::Process;

/// One `neighbor` block.
#[derive(Debug, Clone)]
pub struct ExabgpNeighbor {
    /// Neighbor address.
    pub address: String,
    /// Local address of the session.
    pub local_address: String,
    /// Local AS.
    pub local_as: u32,
    /// Peer AS.
    pub peer_as: u32,
    /// Families.
    pub families: Vec<Family>,
}

/// An ExaBGP configuration.
#[derive(Debug, Clone)]
pub struct ExabgpConfig {
    /// Router id.
    pub router_id: String,
    /// Sessions (ExaBGP connects actively; it does not listen).
    pub neighbors: Vec<ExabgpNeighbor>,
}

impl ExabgpConfig {
    /// Renders the config; `commands` is the file the API process follows.
    pub fn render(&self, commands: &std::path::Path) -> String {
        let mut c = String::new();
        let _ = writeln!(c, "# written by the tern interop harness");
        let _ = writeln!(
            c,
            "process commands {{\n  run /usr/bin/tail -n +1 -F {};\n  encoder text;\n}}\n",
            commands.display()
        );
        for n in &self.neighbors {
            let _ = writeln!(c, "neighbor {} {{", n.address);
            let _ = writeln!(
                c,
                "  router-id {};\n  local-address {};\n  local-as {};\n  peer-as {};",
                self.router_id, n.local_address, n.local_as, n.peer_as
            );
            let _ = writeln!(c, "  family {{");
            for family in &n.families {
                let _ = writeln!(c, "    {} unicast;", family.short());
            }
            let _ = writeln!(c, "  }}\n  api {{ processes [ commands ]; }}\n}}");
        }
        c
    }
}

/// A running ExaBGP.
#[derive(Debug)]
pub struct Exabgp {
    /// The daemon (its API helper runs in the same process group).
    pub process: Process,
    commands: PathBuf,
}

impl Exabgp {
    /// Writes `<label>-exabgp.conf` and starts `exabgp` in `netns` (foreground, as root, no
    /// CLI pipes, logging to its log file).
    pub fn start(
        netns: &Netns,
        artifacts: &Artifacts,
        label: &str,
        config: &ExabgpConfig,
    ) -> Result<Exabgp> {
        let commands = artifacts.write(&format!("{label}-exabgp.commands"), "")?;
        let conf = artifacts.write(&format!("{label}-exabgp.conf"), &config.render(&commands))?;
        let mut command = netns.command("exabgp");
        command
            .arg(conf.to_str().context("config path")?)
            .env("exabgp.daemon.user", "root")
            .env("exabgp.daemon.daemonize", "false")
            .env("exabgp.api.cli", "false")
            .env("exabgp.log.destination", "stdout")
            .env("exabgp.log.level", "INFO")
            .env("exabgp.tcp.bind", "");
        let process = Process::spawn_command(
            &format!("exabgp {label}"),
            command,
            &artifacts.path(&format!("{label}-exabgp.log")),
        )?;
        Ok(Exabgp { process, commands })
    }

    /// Sends an API command (`announce route 10.0.0.0/24 next-hop self`).
    pub fn command(&self, line: &str) -> Result<()> {
        let mut file = std::fs::File::options().append(true).open(&self.commands)?;
        writeln!(file, "{line}")?;
        Ok(())
    }
}
