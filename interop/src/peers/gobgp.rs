//! GoBGP: TOML config writer, launcher (`gobgpd` with a per-instance API port) and `gobgp`
//! CLI queries.

use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::{Family, START_TIMEOUT};
use crate::artifacts::Artifacts;
use crate::netns::{Netns, unique_number};
use crate::process::Process;
use crate::wait::wait_until;

/// One `[[neighbors]]` entry.
#[derive(Debug, Clone)]
pub struct GobgpNeighbor {
    /// Neighbor address.
    pub address: String,
    /// Neighbor AS.
    pub peer_as: u32,
    /// Local AS for this session (defaults to the global AS).
    pub local_as: Option<u32>,
    /// Families of the session.
    pub families: Vec<Family>,
    /// ADD-PATH: receive, and send up to 4 paths.
    pub add_paths: bool,
    /// Graceful restart (120 s) with per-family forwarding state.
    pub graceful_restart: bool,
    /// Long-lived graceful restart (300 s) per family (needs `graceful_restart`).
    pub long_lived_graceful_restart: bool,
    /// Do not connect, only accept.
    pub passive: bool,
    /// Hold time in seconds (keepalive a third of it); GoBGP's default (90 s) when `None`.
    pub hold_time: Option<u16>,
}

impl GobgpNeighbor {
    /// A plain session.
    pub fn new(address: &str, peer_as: u32, families: &[Family]) -> GobgpNeighbor {
        GobgpNeighbor {
            address: address.to_owned(),
            peer_as,
            local_as: None,
            families: families.to_vec(),
            add_paths: false,
            graceful_restart: false,
            long_lived_graceful_restart: false,
            passive: false,
            hold_time: None,
        }
    }
}

/// A `gobgpd` configuration.
#[derive(Debug, Clone)]
pub struct GobgpConfig {
    /// Global AS.
    pub asn: u32,
    /// Router id.
    pub router_id: String,
    /// Sessions.
    pub neighbors: Vec<GobgpNeighbor>,
}

impl GobgpConfig {
    /// A configuration without neighbors.
    pub fn new(asn: u32, router_id: &str) -> GobgpConfig {
        GobgpConfig {
            asn,
            router_id: router_id.to_owned(),
            neighbors: Vec::new(),
        }
    }

    /// Adds a neighbor.
    pub fn with_neighbor(mut self, neighbor: GobgpNeighbor) -> GobgpConfig {
        self.neighbors.push(neighbor);
        self
    }

    /// Renders the TOML file.
    pub fn render(&self) -> String {
        let mut c = String::new();
        let _ = writeln!(c, "# written by the tern interop harness");
        let _ = writeln!(
            c,
            "[global.config]\n  as = {}\n  router-id = \"{}\"\n  port = 179\n",
            self.asn, self.router_id
        );
        for n in &self.neighbors {
            let _ = writeln!(
                c,
                "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {}",
                n.address, n.peer_as
            );
            if let Some(local_as) = n.local_as {
                let _ = writeln!(c, "    local-as = {local_as}");
            }
            // Retry connecting after 5 s (GoBGP's default is 120 s) so that start order does
            // not matter.
            let _ = writeln!(c, "  [neighbors.timers.config]\n    connect-retry = 5");
            if let Some(hold) = n.hold_time {
                let _ = writeln!(
                    c,
                    "    hold-time = {hold}\n    keepalive-interval = {}",
                    (hold / 3).max(1)
                );
            }
            if n.passive {
                let _ = writeln!(c, "  [neighbors.transport.config]\n    passive-mode = true");
            }
            if n.graceful_restart {
                let _ = writeln!(
                    c,
                    "  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = 120"
                );
                if n.long_lived_graceful_restart {
                    let _ = writeln!(c, "    long-lived-enabled = true");
                }
            }
            for family in &n.families {
                let name = match family {
                    Family::Ipv4Unicast => "ipv4-unicast",
                    Family::Ipv6Unicast => "ipv6-unicast",
                };
                let _ = writeln!(
                    c,
                    "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{name}\""
                );
                if n.add_paths {
                    let _ = writeln!(
                        c,
                        "    [neighbors.afi-safis.add-paths.config]\n      receive = true\n      send-max = 4"
                    );
                }
                if n.graceful_restart {
                    let _ = writeln!(
                        c,
                        "    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true"
                    );
                }
                if n.long_lived_graceful_restart {
                    let _ = writeln!(
                        c,
                        "    [neighbors.afi-safis.long-lived-graceful-restart.config]\n      enabled = true\n      restart-time = 300"
                    );
                }
            }
            let _ = writeln!(c);
        }
        c
    }
}

/// GoBGP's numeric session states (`gobgp neighbor -j`), by name.
pub fn session_state_name(state: i64) -> &'static str {
    match state {
        1 => "Idle",
        2 => "Connect",
        3 => "Active",
        4 => "OpenSent",
        5 => "OpenConfirm",
        6 => "Established",
        _ => "Unknown",
    }
}

/// A running `gobgpd`.
#[derive(Debug)]
pub struct Gobgp {
    /// The daemon.
    pub process: Process,
    netns_name: String,
    api_port: u16,
}

impl Gobgp {
    /// Writes `<label>-gobgpd.toml` and starts `gobgpd -f conf --api-hosts 127.0.0.1:<port>`
    /// in `netns` (the port is unique per instance); returns once `gobgp global` answers.
    pub fn start(
        netns: &Netns,
        artifacts: &Artifacts,
        label: &str,
        config: &GobgpConfig,
    ) -> Result<Gobgp> {
        let conf = artifacts.write(&format!("{label}-gobgpd.toml"), &config.render())?;
        let api_port = 50100 + (unique_number() % 10000) as u16;
        let process = Process::spawn(
            Some(netns),
            &format!("gobgpd {label}"),
            "gobgpd",
            [
                "-f",
                conf.to_str().context("config path")?,
                "--api-hosts",
                &format!("127.0.0.1:{api_port}"),
                "--pprof-disable",
                "-l",
                "debug",
            ],
            &artifacts.path(&format!("{label}-gobgpd.log")),
        )?;
        let mut gobgp = Gobgp {
            process,
            netns_name: netns.name().to_owned(),
            api_port,
        };
        wait_until(
            &format!("gobgpd {label} answering its API"),
            START_TIMEOUT,
            || {
                if !gobgp.process.is_running() {
                    bail!("gobgpd exited: {}", gobgp.process.log());
                }
                Ok(gobgp.cli(&["global"]).is_ok())
            },
        )?;
        Ok(gobgp)
    }

    /// Runs `gobgp -p <port> args` inside the namespace and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let port = self.api_port.to_string();
        let mut command = std::process::Command::new("ip");
        command
            .args(["netns", "exec", &self.netns_name, "gobgp", "-p", &port])
            .args(args);
        let out = crate::netns::run_command(command)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `gobgp neighbor -j`, parsed.
    pub fn neighbors(&self) -> Result<Vec<Value>> {
        let out = self.cli(&["neighbor", "-j"])?;
        let value: Value = serde_json::from_str(&out).context("parsing gobgp neighbor -j")?;
        Ok(value.as_array().cloned().unwrap_or_default())
    }

    /// The JSON of one neighbor.
    pub fn neighbor(&self, address: &str) -> Result<Value> {
        self.neighbors()?
            .into_iter()
            .find(|n| {
                n["state"]["neighbor_address"] == address
                    || n["conf"]["neighbor_address"] == address
            })
            .with_context(|| format!("gobgp has no neighbor {address}"))
    }

    /// The session state of `address` (`Established`, `Active`, ...).
    pub fn session_state(&self, address: &str) -> Result<String> {
        let n = self.neighbor(address)?;
        Ok(session_state_name(n["state"]["session_state"].as_i64().unwrap_or(0)).to_owned())
    }

    /// ROUTE-REFRESH messages received from `address`.
    pub fn refresh_received(&self, address: &str) -> Result<u64> {
        let n = self.neighbor(address)?;
        Ok(n["state"]["messages"]["received"]["refresh"]
            .as_u64()
            .unwrap_or(0))
    }

    /// Prefixes in the global RIB of `family`.
    pub fn rib_prefixes(&self, family: Family) -> Result<Vec<String>> {
        let out = self.cli(&["global", "rib", "-a", family.short(), "-j"])?;
        if out.trim().is_empty() || out.trim() == "null" {
            return Ok(Vec::new());
        }
        let value: Value = serde_json::from_str(&out).context("parsing gobgp global rib -j")?;
        Ok(value
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default())
    }

    /// Whether the global RIB holds `prefix`.
    pub fn has_route(&self, prefix: &str) -> Result<bool> {
        Ok(self
            .rib_prefixes(Family::of(prefix))?
            .iter()
            .any(|p| p == prefix))
    }

    /// `gobgp global rib -a <family> add <prefix> <attributes...>` (e.g. `community 65002:1`).
    pub fn announce(&self, prefix: &str, attributes: &[&str]) -> Result<()> {
        let mut args = vec![
            "global",
            "rib",
            "-a",
            Family::of(prefix).short(),
            "add",
            prefix,
        ];
        args.extend_from_slice(attributes);
        self.cli(&args)?;
        Ok(())
    }

    /// `gobgp global rib -a <family> del <prefix>`.
    pub fn withdraw(&self, prefix: &str) -> Result<()> {
        self.cli(&[
            "global",
            "rib",
            "-a",
            Family::of(prefix).short(),
            "del",
            prefix,
        ])?;
        Ok(())
    }
}
