//! One measured run: namespaces gen - dut - mon, the daemon, the two speakers, the table
//! sent, the monitor complete, the daemon's memory and CPU.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::artifacts::Artifacts;
use crate::netns::{Netns, veth};
use crate::wait::{pending, wait_until};

use super::dut::{self, Addressing, DutKind, GEN_AS, MON_AS};
use super::measure::{ProcSample, sample};
use super::routes::RouteSet;
use super::speaker::{Generator, Monitor, Peering};

/// How one run went.
#[derive(Debug, Clone, Copy)]
pub struct RunResult {
    /// Which daemon.
    pub kind: DutKind,
    /// First UPDATE written by the generator → last expected prefix at the monitor.
    pub seconds: f64,
    /// The daemon's peak RSS (`VmHWM`) at the end, bytes.
    pub peak_rss: u64,
    /// RSS with both sessions up and no routes, bytes.
    pub idle_rss: u64,
    /// RSS once it stopped changing after the table was complete, bytes.
    pub settled_rss: u64,
    /// CPU seconds from just before the first UPDATE until settled.
    pub cpu_seconds: f64,
    /// Prefixes.
    pub prefixes: usize,
    /// IPv4 routes in the daemon namespace's main table once settled (its two link routes
    /// included): shows whether the daemon programmed the kernel.
    pub kernel_routes: usize,
}

impl RunResult {
    /// Settled RSS minus idle RSS per prefix, bytes.
    pub fn bytes_per_route(&self) -> f64 {
        self.settled_rss.saturating_sub(self.idle_rss) as f64 / self.prefixes.max(1) as f64
    }
}

/// Limits of a run.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// For both sessions to come up.
    pub establish: Duration,
    /// For the monitor to have every prefix.
    pub converge: Duration,
    /// For memory to settle afterwards.
    pub settle: Duration,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            establish: Duration::from_secs(60),
            converge: Duration::from_secs(900),
            settle: Duration::from_secs(30),
        }
    }
}

/// Runs the table through `kind` once.
pub fn run_once(
    kind: DutKind,
    routes: &Arc<RouteSet>,
    limits: &RunLimits,
    label: &str,
) -> Result<RunResult> {
    let artifacts = Artifacts::new(&format!("bench-{label}"))?;
    let result = run_in(kind, routes, limits, &artifacts);
    if result.is_err() {
        artifacts.mark_failed();
    }
    result
}

fn run_in(
    kind: DutKind,
    routes: &Arc<RouteSet>,
    limits: &RunLimits,
    artifacts: &Artifacts,
) -> Result<RunResult> {
    let a = Addressing::default();
    let gen_ns = Netns::new("gen")?;
    let dut_ns = Netns::new("dut")?;
    let mon_ns = Netns::new("mon")?;
    veth(&gen_ns, "eth0", &dut_ns, "eth-gen")?;
    veth(&dut_ns, "eth-mon", &mon_ns, "eth0")?;
    gen_ns.add_address("eth0", &format!("{}/30", a.gen_addr))?;
    dut_ns.add_address("eth-gen", &format!("{}/30", a.dut_gen_side))?;
    dut_ns.add_address("eth-mon", &format!("{}/30", a.dut_mon_side))?;
    mon_ns.add_address("eth0", &format!("{}/30", a.mon_addr))?;

    let mut daemon = dut::start(kind, &dut_ns, artifacts, &a)?;
    let pids = daemon.pids();
    let mut monitor = Monitor::start(
        Peering {
            netns: mon_ns.name().to_owned(),
            local_as: MON_AS,
            router_id: a.mon_addr,
            remote: a.dut_mon_side,
            connect_timeout: limits.establish,
        },
        routes.prefixes,
    )?;
    let mut generator = Generator::start(
        Peering {
            netns: gen_ns.name().to_owned(),
            local_as: GEN_AS,
            router_id: a.gen_addr,
            remote: a.dut_gen_side,
            connect_timeout: limits.establish,
        },
        routes.clone(),
    )?;
    wait_until(
        &format!("{kind}: both sessions Established"),
        limits.establish,
        || {
            daemon.check_running()?;
            let (g, m) = (generator.established()?, monitor.established()?);
            Ok(if g && m {
                crate::wait::Check::Ready(())
            } else {
                pending(format!("generator {g}, monitor {m}"))
            })
        },
    )?;
    let idle = sample(&pids)?;
    generator.send()?;
    let complete = wait_until(
        &format!("{kind}: {} prefixes at the monitor", routes.prefixes),
        limits.converge,
        || {
            daemon.check_running()?;
            generator.error()?;
            let p = monitor.progress()?;
            Ok(match p.complete {
                Some(t) => crate::wait::Check::Ready(t),
                None => pending(format!("{} prefixes in {} UPDATEs", p.prefixes, p.updates)),
            })
        },
    )?;
    let first = generator
        .first_write()
        .context("generator recorded no first write")?;
    let seconds = complete.saturating_duration_since(first).as_secs_f64();
    let settled = settle(&pids, limits.settle)?;
    daemon.check_running()?;
    let progress = monitor.progress()?;
    if progress.prefixes != routes.prefixes {
        bail!(
            "{kind}: monitor has {} prefixes, expected {}",
            progress.prefixes,
            routes.prefixes
        );
    }
    let kernel_routes = dut_ns
        .ip(["-4", "route", "show", "table", "main"])?
        .lines()
        .count();
    generator.stop();
    monitor.stop();
    daemon.stop();
    Ok(RunResult {
        kind,
        seconds,
        peak_rss: settled.peak_rss,
        idle_rss: idle.rss,
        settled_rss: settled.rss,
        cpu_seconds: settled.cpu_seconds - idle.cpu_seconds,
        prefixes: routes.prefixes,
        kernel_routes,
    })
}

/// Samples every second until RSS changed by less than 1 % over the last three samples (or
/// `limit` passed) and returns the last sample.
fn settle(pids: &[u32], limit: Duration) -> Result<ProcSample> {
    let start = Instant::now();
    let mut history = vec![sample(pids)?];
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = sample(pids)?;
        history.push(now);
        let recent = &history[history.len().saturating_sub(4)..];
        let (lo, hi) = recent
            .iter()
            .fold((u64::MAX, 0), |(lo, hi), s| (lo.min(s.rss), hi.max(s.rss)));
        if (recent.len() == 4 && (hi - lo) * 100 <= hi) || start.elapsed() >= limit {
            return Ok(now);
        }
    }
}
