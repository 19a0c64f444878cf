//! The daemons under test, each started with equivalent settings: AS 65002, eBGP from the
//! generator (AS 65001) and to the monitor (AS 65003), accept-all import, next-hop-self
//! towards the monitor, hold time 90 s / keepalive 30 s, no per-route logging, nothing
//! installed into the kernel (see `dut_settings` in the W1 section of docs/benchmarks.md).

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context as _, Result, bail};

use crate::artifacts::Artifacts;
use crate::netns::{Netns, unique_number};
use crate::process::Process;

use super::speaker::HOLD_TIME;

/// The daemon's AS.
pub const DUT_AS: u32 = 65002;
/// The generator's AS.
pub const GEN_AS: u32 = 65001;
/// The monitor's AS.
pub const MON_AS: u32 = 65003;

/// Addresses of the two links: gen (`.1`) - dut (`.2`) on 10.0.1.0/30, dut (`.1`) - mon
/// (`.2`) on 10.0.2.0/30.
#[derive(Debug, Clone, Copy)]
pub struct Addressing {
    /// The generator's address.
    pub gen_addr: Ipv4Addr,
    /// The daemon's address towards the generator (also its router id).
    pub dut_gen_side: Ipv4Addr,
    /// The daemon's address towards the monitor.
    pub dut_mon_side: Ipv4Addr,
    /// The monitor's address.
    pub mon_addr: Ipv4Addr,
}

impl Default for Addressing {
    fn default() -> Self {
        Addressing {
            gen_addr: Ipv4Addr::new(10, 0, 1, 1),
            dut_gen_side: Ipv4Addr::new(10, 0, 1, 2),
            dut_mon_side: Ipv4Addr::new(10, 0, 2, 1),
            mon_addr: Ipv4Addr::new(10, 0, 2, 2),
        }
    }
}

/// Which daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DutKind {
    /// BIRD 2.
    Bird,
    /// GoBGP.
    Gobgp,
    /// FRR's bgpd.
    Frr,
    /// tern as a pure BGP speaker (`[kernel] program = false`), like the other daemons here.
    Tern,
    /// tern also installing every learned route into the `dut` kernel (its default).
    TernKernel,
}

impl DutKind {
    /// All, in the interleaving order.
    pub const ALL: [DutKind; 4] = [DutKind::Bird, DutKind::Gobgp, DutKind::Frr, DutKind::Tern];

    /// The programs it needs.
    pub fn binaries(self) -> Vec<String> {
        match self {
            DutKind::Bird => vec!["bird".into()],
            DutKind::Gobgp => vec!["gobgpd".into()],
            DutKind::Frr => vec!["/usr/lib/frr/bgpd".into()],
            DutKind::Tern | DutKind::TernKernel => {
                vec![super::tern::tern_binary().display().to_string()]
            }
        }
    }
}

impl fmt::Display for DutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DutKind::Bird => "bird",
            DutKind::Gobgp => "gobgp",
            DutKind::Frr => "frr",
            DutKind::Tern => "tern",
            DutKind::TernKernel => "tern-kernel",
        })
    }
}

impl FromStr for DutKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "bird" => DutKind::Bird,
            "gobgp" | "gobgpd" => DutKind::Gobgp,
            "frr" | "bgpd" => DutKind::Frr,
            "tern" => DutKind::Tern,
            "tern-kernel" => DutKind::TernKernel,
            other => bail!("unknown daemon {other:?} (bird, gobgp, frr, tern, tern-kernel)"),
        })
    }
}

/// A started daemon: its processes (measured together) and guards.
pub struct Dut {
    /// Which daemon.
    pub kind: DutKind,
    /// The processes whose memory and CPU count (one for every daemon here).
    pub processes: Vec<Process>,
    /// Runtime directories to remove afterwards.
    pub cleanup: Vec<PathBuf>,
}

impl Dut {
    /// The PIDs to measure.
    pub fn pids(&self) -> Vec<u32> {
        self.processes.iter().map(Process::pid).collect()
    }

    /// Fails when a process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        for p in &mut self.processes {
            if !p.is_running() {
                bail!("{} exited; log:\n{}", p.name(), tail(&p.log(), 30));
            }
        }
        Ok(())
    }

    /// Stops every process (SIGTERM, then SIGKILL).
    pub fn stop(&mut self) {
        for p in &mut self.processes {
            let _ = p.stop();
        }
        for dir in self.cleanup.drain(..) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for Dut {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Starts `kind` in `netns`.
pub fn start(kind: DutKind, netns: &Netns, artifacts: &Artifacts, a: &Addressing) -> Result<Dut> {
    match kind {
        DutKind::Bird => start_bird(netns, artifacts, a),
        DutKind::Gobgp => start_gobgp(netns, artifacts, a),
        DutKind::Frr => start_frr(netns, artifacts, a),
        DutKind::Tern => super::tern::start(netns, artifacts, a, false),
        DutKind::TernKernel => super::tern::start(netns, artifacts, a, true),
    }
}

/// BIRD: one table (`master4`), no kernel protocol (nothing exported to the kernel), only
/// warnings and errors logged.
pub fn bird_config(a: &Addressing) -> String {
    let hold = HOLD_TIME;
    format!(
        "log stderr {{ warning, error, fatal }};
router id {dut};
protocol device {{ }}
protocol bgp gen {{
  local {dut} as {DUT_AS};
  neighbor {gen} as {GEN_AS};
  hold time {hold};
  keepalive time {ka};
  connect retry time 5;
  ipv4 {{ import all; export none; }};
}}
protocol bgp mon {{
  local {dut_mon} as {DUT_AS};
  neighbor {mon} as {MON_AS};
  hold time {hold};
  keepalive time {ka};
  connect retry time 5;
  ipv4 {{ import none; export all; next hop self; }};
}}
",
        dut = a.dut_gen_side,
        gen = a.gen_addr,
        dut_mon = a.dut_mon_side,
        mon = a.mon_addr,
        ka = hold / 3,
    )
}

fn start_bird(netns: &Netns, artifacts: &Artifacts, a: &Addressing) -> Result<Dut> {
    let dir = artifacts.runtime_dir("bird")?;
    let conf = dir.join("bird.conf");
    std::fs::write(&conf, bird_config(a))?;
    let process = Process::spawn(
        Some(netns),
        "bird",
        "bird",
        [
            "-f",
            "-c",
            path(&conf)?,
            "-s",
            path(&dir.join("bird.ctl"))?,
            "-P",
            path(&dir.join("bird.pid"))?,
        ],
        &artifacts.path("bird.log"),
    )?;
    Ok(Dut {
        kind: DutKind::Bird,
        processes: vec![process],
        cleanup: vec![],
    })
}

/// GoBGP: accept-all global import and export policies, no zebra, logging at warning level.
pub fn gobgp_config(a: &Addressing) -> String {
    let neighbor = |addr: Ipv4Addr, asn: u32| {
        format!(
            "[[neighbors]]
  [neighbors.config]
    neighbor-address = \"{addr}\"
    peer-as = {asn}
  [neighbors.timers.config]
    hold-time = {hold}
    keepalive-interval = {ka}
    connect-retry = 5
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = \"ipv4-unicast\"
",
            hold = HOLD_TIME,
            ka = HOLD_TIME / 3
        )
    };
    format!(
        "[global.config]
  as = {DUT_AS}
  router-id = \"{id}\"
[global.apply-policy.config]
  default-import-policy = \"accept-route\"
  default-export-policy = \"accept-route\"
{gen}{mon}",
        id = a.dut_gen_side,
        gen = neighbor(a.gen_addr, GEN_AS),
        mon = neighbor(a.mon_addr, MON_AS),
    )
}

fn start_gobgp(netns: &Netns, artifacts: &Artifacts, a: &Addressing) -> Result<Dut> {
    let conf = artifacts.write("gobgpd.toml", &gobgp_config(a))?;
    let api = format!("127.0.0.1:{}", 50_000 + unique_number() % 10_000);
    let process = Process::spawn(
        Some(netns),
        "gobgpd",
        "gobgpd",
        [
            "-f",
            path(&conf)?,
            "-l",
            "warn",
            "-p",
            "--pprof-disable",
            "--api-hosts",
            &api,
        ],
        &artifacts.path("gobgpd.log"),
    )?;
    Ok(Dut {
        kind: DutKind::Gobgp,
        processes: vec![process],
        cleanup: vec![],
    })
}

/// FRR: bgpd alone (`-Z`: no zebra, `-n`: no kernel install), `no bgp ebgp-requires-policy`,
/// next-hop-self towards the monitor, warnings logged.
pub fn frr_config(a: &Addressing) -> String {
    format!(
        "hostname dut
log stdout warnings
!
router bgp {DUT_AS}
 bgp router-id {id}
 no bgp ebgp-requires-policy
 no bgp network import-check
 timers bgp {ka} {hold}
 neighbor {gen} remote-as {GEN_AS}
 neighbor {gen} timers connect 5
 neighbor {mon} remote-as {MON_AS}
 neighbor {mon} timers connect 5
 address-family ipv4 unicast
  neighbor {mon} next-hop-self
 exit-address-family
!
",
        id = a.dut_gen_side,
        gen = a.gen_addr,
        mon = a.mon_addr,
        hold = HOLD_TIME,
        ka = HOLD_TIME / 3,
    )
}

fn start_frr(netns: &Netns, artifacts: &Artifacts, a: &Addressing) -> Result<Dut> {
    let dir = artifacts.runtime_dir_for_user("frr", "frr")?;
    std::fs::write(dir.join("bgpd.conf"), frr_config(a))?;
    let d = path(&dir)?;
    let process = Process::spawn(
        Some(netns),
        "bgpd",
        "/usr/lib/frr/bgpd",
        [
            "-Z",
            "-n",
            "-S",
            "-P",
            "0",
            "--vty_socket",
            d,
            "-i",
            &format!("{d}/bgpd.pid"),
            "-f",
            &format!("{d}/bgpd.conf"),
            "--log",
            "stdout",
        ],
        &artifacts.path("bgpd.log"),
    )?;
    Ok(Dut {
        kind: DutKind::Frr,
        processes: vec![process],
        cleanup: vec![],
    })
}

pub(crate) fn path(p: &std::path::Path) -> Result<&str> {
    p.to_str()
        .with_context(|| format!("path {} is not UTF-8", p.display()))
}
