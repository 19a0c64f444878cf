//! FRR: `bgpd` + `zebra` per namespace with their own runtime directory (vty sockets, zserv
//! socket, pid files), config writer and `vtysh` queries.
//!
//! Several FRR instances run side by side by giving each daemon explicit paths
//! (`--vty_socket <dir> -z <dir>/zserv.api -i <dir>/<daemon>.pid -P 0`) instead of the
//! `-N <pathspace>` default paths under `/var/run/frr`; `vtysh --vty_socket <dir>` talks to
//! them. The daemons drop privileges to user `frr`, so the directory is owned by `frr`.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::{Family, START_TIMEOUT};
use crate::artifacts::Artifacts;
use crate::netns::{Netns, run_host};
use crate::process::Process;
use crate::wait::wait_until;

/// One `neighbor` of `router bgp`.
#[derive(Debug, Clone)]
pub struct FrrNeighbor {
    /// Neighbor address.
    pub address: String,
    /// Its AS.
    pub remote_as: u32,
    /// Families activated.
    pub families: Vec<Family>,
    /// Extra `neighbor <address> ...` words, e.g. `local-role peer`, `timers 3 9`.
    pub options: Vec<String>,
    /// Extra per-family `neighbor <address> ...` words, e.g. `addpath-tx-all-paths`.
    pub family_options: Vec<String>,
}

impl FrrNeighbor {
    /// A plain session.
    pub fn new(address: &str, remote_as: u32, families: &[Family]) -> FrrNeighbor {
        FrrNeighbor {
            address: address.to_owned(),
            remote_as,
            families: families.to_vec(),
            options: Vec::new(),
            family_options: Vec::new(),
        }
    }
}

/// A `bgpd` configuration (zebra gets a minimal one).
#[derive(Debug, Clone)]
pub struct FrrConfig {
    /// Hostname (sent in the FQDN capability).
    pub hostname: String,
    /// Local AS.
    pub asn: u32,
    /// Router id.
    pub router_id: String,
    /// Sessions.
    pub neighbors: Vec<FrrNeighbor>,
    /// `network <prefix> [route-map <name>]` statements.
    pub networks: Vec<(String, Option<String>)>,
    /// Extra lines under `router bgp` (e.g. `bgp graceful-restart`).
    pub router_extra: Vec<String>,
    /// Extra top-level lines after `router bgp` (route-maps...).
    pub tail: Vec<String>,
}

impl FrrConfig {
    /// A configuration without neighbors.
    pub fn new(hostname: &str, asn: u32, router_id: &str) -> FrrConfig {
        FrrConfig {
            hostname: hostname.to_owned(),
            asn,
            router_id: router_id.to_owned(),
            neighbors: Vec::new(),
            networks: Vec::new(),
            router_extra: Vec::new(),
            tail: Vec::new(),
        }
    }

    /// Adds a neighbor.
    pub fn with_neighbor(mut self, neighbor: FrrNeighbor) -> FrrConfig {
        self.neighbors.push(neighbor);
        self
    }

    /// Originates `prefix` (no RIB check: `no bgp network import-check`).
    pub fn with_network(mut self, prefix: &str) -> FrrConfig {
        self.networks.push((prefix.to_owned(), None));
        self
    }

    /// Renders `bgpd.conf`.
    pub fn render(&self) -> String {
        let mut c = String::new();
        let _ = writeln!(c, "! written by the tern interop harness");
        let _ = writeln!(
            c,
            "frr defaults traditional\nhostname {}\nlog stdout informational\n!",
            self.hostname
        );
        let _ = writeln!(c, "router bgp {}", self.asn);
        let _ = writeln!(c, " bgp router-id {}", self.router_id);
        let _ = writeln!(c, " no bgp ebgp-requires-policy");
        let _ = writeln!(c, " no bgp network import-check");
        let _ = writeln!(c, " no bgp default ipv4-unicast");
        for line in &self.router_extra {
            let _ = writeln!(c, " {line}");
        }
        for n in &self.neighbors {
            let _ = writeln!(c, " neighbor {} remote-as {}", n.address, n.remote_as);
            // Retry connecting after 5 s (the default is 120 s) so that start order does not
            // matter.
            let _ = writeln!(c, " neighbor {} timers connect 5", n.address);
            for option in &n.options {
                let _ = writeln!(c, " neighbor {} {option}", n.address);
            }
        }
        for family in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
            let _ = writeln!(c, " address-family {} unicast", family.short());
            for (prefix, route_map) in &self.networks {
                if Family::of(prefix) == family {
                    match route_map {
                        Some(map) => {
                            let _ = writeln!(c, "  network {prefix} route-map {map}");
                        }
                        None => {
                            let _ = writeln!(c, "  network {prefix}");
                        }
                    }
                }
            }
            for n in self
                .neighbors
                .iter()
                .filter(|n| n.families.contains(&family))
            {
                let _ = writeln!(c, "  neighbor {} activate", n.address);
                for option in &n.family_options {
                    let _ = writeln!(c, "  neighbor {} {option}", n.address);
                }
            }
            let _ = writeln!(c, " exit-address-family");
        }
        let _ = writeln!(c, "!");
        for line in &self.tail {
            let _ = writeln!(c, "{line}");
        }
        c
    }
}

/// A running FRR (zebra + bgpd) in one namespace.
#[derive(Debug)]
pub struct Frr {
    /// `bgpd` (declared first: stopped before zebra).
    pub bgpd: Process,
    /// `zebra` (installs BGP routes in the namespace's kernel table, protocol `bgp`).
    pub zebra: Process,
    dir: PathBuf,
}

impl Frr {
    /// Writes the configs in its runtime directory (reachable by user `frr`, see
    /// [`Artifacts::runtime_dir_for_user`]) and starts zebra then bgpd in
    /// `netns`; returns once `vtysh` reaches bgpd.
    pub fn start(
        netns: &Netns,
        artifacts: &Artifacts,
        label: &str,
        config: &FrrConfig,
    ) -> Result<Frr> {
        let dir = artifacts.runtime_dir_for_user(&format!("{label}-frr"), "frr")?;
        std::fs::write(dir.join("bgpd.conf"), config.render())?;
        std::fs::write(
            dir.join("zebra.conf"),
            format!(
                "hostname {}\nlog stdout informational\n!\n",
                config.hostname
            ),
        )?;
        run_host("chown", ["-R", "frr:frr", dir.to_str().context("frr dir")?])?;
        let d = dir.to_str().context("frr dir")?.to_owned();
        let zserv = format!("{d}/zserv.api");
        let zebra = Process::spawn(
            Some(netns),
            &format!("zebra {label}"),
            "/usr/lib/frr/zebra",
            [
                "-P",
                "0",
                "--vty_socket",
                &d,
                "-z",
                &zserv,
                "-i",
                &format!("{d}/zebra.pid"),
                "-f",
                &format!("{d}/zebra.conf"),
                "--log",
                "stdout",
            ],
            &artifacts.path(&format!("{label}-zebra.log")),
        )?;
        let zserv_path = dir.join("zserv.api");
        let mut zebra = zebra;
        wait_until(&format!("zebra {label} socket"), START_TIMEOUT, || {
            if !zebra.is_running() {
                bail!("zebra exited: {}", zebra.log());
            }
            Ok(zserv_path.exists())
        })?;
        let bgpd = Process::spawn(
            Some(netns),
            &format!("bgpd {label}"),
            "/usr/lib/frr/bgpd",
            [
                "-P",
                "0",
                "--vty_socket",
                &d,
                "-z",
                &zserv,
                "-i",
                &format!("{d}/bgpd.pid"),
                "-f",
                &format!("{d}/bgpd.conf"),
                "--log",
                "stdout",
            ],
            &artifacts.path(&format!("{label}-bgpd.log")),
        )?;
        let mut frr = Frr { bgpd, zebra, dir };
        wait_until(
            &format!("bgpd {label} answering vtysh"),
            START_TIMEOUT,
            || {
                if !frr.bgpd.is_running() {
                    bail!("bgpd exited: {}", frr.bgpd.log());
                }
                Ok(frr.vtysh(&["show bgp summary"]).is_ok())
            },
        )?;
        Ok(frr)
    }

    /// Runs `vtysh --vty_socket <dir> -c <command>...` and returns its output.
    pub fn vtysh(&self, commands: &[&str]) -> Result<String> {
        let mut args = vec!["--vty_socket", self.dir.to_str().context("frr dir")?];
        for command in commands {
            args.push("-c");
            args.push(command);
        }
        run_host("vtysh", args)
    }

    /// Runs configuration commands under `configure terminal` / `router bgp <asn>`.
    pub fn configure_bgp(&self, asn: u32, lines: &[&str]) -> Result<String> {
        let router = format!("router bgp {asn}");
        let mut commands = vec!["configure terminal", router.as_str()];
        commands.extend_from_slice(lines);
        self.vtysh(&commands)
    }

    /// `show bgp neighbors <address> json`, the neighbor's object.
    pub fn neighbor(&self, address: &str) -> Result<Value> {
        let out = self.vtysh(&[&format!("show bgp neighbors {address} json")])?;
        let value: Value = serde_json::from_str(&out).context("parsing vtysh json")?;
        let neighbor = value[address].clone();
        if neighbor.is_null() {
            bail!("FRR has no neighbor {address}: {out}");
        }
        Ok(neighbor)
    }

    /// The session state of `address` (`Established`, `Active`, `Idle (Admin)`...).
    pub fn session_state(&self, address: &str) -> Result<String> {
        Ok(self.neighbor(address)?["bgpState"]
            .as_str()
            .unwrap_or("?")
            .to_owned())
    }

    /// ROUTE-REFRESH messages received from `address`.
    pub fn refresh_received(&self, address: &str) -> Result<u64> {
        Ok(self.neighbor(address)?["messageStats"]["routeRefreshRecv"]
            .as_u64()
            .unwrap_or(0))
    }

    /// Whether the BGP table of the prefix's family holds `prefix`.
    pub fn has_route(&self, prefix: &str) -> Result<bool> {
        let out = self.vtysh(&[&format!(
            "show bgp {} unicast json",
            Family::of(prefix).short()
        )])?;
        let value: Value = serde_json::from_str(&out).context("parsing vtysh json")?;
        Ok(!value["routes"][prefix].is_null())
    }
}
