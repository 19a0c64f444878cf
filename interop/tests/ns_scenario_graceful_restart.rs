//! Scenario 7 of issue 8, `graceful-restart` (interop/scenarios/graceful-restart/README.md):
//! two tern nodes in a mesh; a ping every 10 ms between pod addresses inside their blocks
//! while tern on node B is restarted, first with SIGTERM (planned: no NOTIFICATION), then with
//! `kill -9`. No packet is lost, node A keeps B's route and B's kernel keeps its routes the
//! whole time (`ip monitor route` records both kernels), B's OPEN on return carries the
//! restart (R) and forwarding-preserved (F) bits, and a block removed from B's datastore
//! while tern was down is swept from both kernels after convergence.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use interop::cluster::*;
use interop::prelude::*;
use nix::sys::signal::Signal;

const TIMEOUT: Duration = Duration::from_secs(60);
/// Convergence after a restart is bounded by End-of-RIB or tern's 30 s restart wait.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(120);
const AS: u32 = 64512;
const POOL: &str = "10.244.0.0/16";
const A_IP: &str = "10.0.0.1";
const B_IP: &str = "10.0.0.2";
const A_BLOCK: &str = "10.244.1.0/26";
const B_BLOCK: &str = "10.244.2.0/26";
/// Blocks of B removed from its datastore while tern is down, one per restart round.
const B_SWEPT: [&str; 2] = ["10.244.2.64/26", "10.244.2.128/26"];
const A_POD: &str = "10.244.1.10";
const B_POD: &str = "10.244.2.10";

#[derive(Debug, Clone, Copy)]
enum Stop {
    Sigterm,
    Sigkill,
}

/// A ping every 10 ms from A's pod address to B's, until stopped.
struct Pinger {
    process: Process,
}

impl Pinger {
    fn start(ns: &Netns, artifacts: &Artifacts, name: &str) -> Result<Pinger> {
        let process = Process::spawn(
            Some(ns),
            name,
            "ping",
            ["-n", "-i", "0.01", "-I", A_POD, B_POD],
            &artifacts.path(&format!("{name}.log")),
        )?;
        let pinger = Pinger { process };
        wait_until(&format!("{name}: replies"), TIMEOUT, || {
            Ok(pinger.received()?.len() >= 20)
        })?;
        Ok(pinger)
    }

    /// Sequence numbers answered so far.
    fn received(&self) -> Result<BTreeSet<u64>> {
        Ok(self
            .process
            .log()
            .lines()
            .filter(|l| l.contains("bytes from") && !l.contains("DUP!"))
            .filter_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("icmp_seq="))
                    .and_then(|s| s.parse().ok())
            })
            .collect())
    }

    /// Stops ping (SIGINT: it prints its summary and exits) and returns the sequence numbers
    /// lost before the last answered one (replies still in flight at the stop do not count)
    /// and how many were answered.
    fn stop_and_losses(mut self) -> Result<(Vec<u64>, usize)> {
        self.process.signal(Signal::SIGINT)?;
        wait_until("ping exits", TIMEOUT, || Ok(!self.process.is_running()))?;
        let received = self.received()?;
        let last = received.iter().next_back().copied().unwrap_or(0);
        let lost = (1..=last).filter(|s| !received.contains(s)).collect();
        Ok((lost, received.len()))
    }
}

fn route_check(ns: &Netns, prefix: &str, ok: impl Fn(&KernelRoute) -> bool) -> Result<Check<()>> {
    Ok(match kernel_route(ns, prefix)? {
        Some(r) if ok(&r) => Check::Ready(()),
        Some(r) => pending(format!("{prefix}: {r}")),
        None => pending(format!("{prefix}: no route")),
    })
}

fn absent(ns: &Netns, prefix: &str) -> Result<Check<()>> {
    Ok(match kernel_route(ns, prefix)? {
        Some(r) => pending(format!("still there: {r}")),
        None => Check::Ready(()),
    })
}

/// Both kernels in the steady state: own blocks blackholes, the other's via its node.
fn steady(a_ns: &Netns, b_ns: &Netns, b_blocks: &[&str]) -> Result<()> {
    wait_until("A: own block blackhole", TIMEOUT, || {
        route_check(a_ns, A_BLOCK, KernelRoute::is_bird_blackhole)
    })?;
    wait_until("B: A's block via A", TIMEOUT, || {
        route_check(b_ns, A_BLOCK, |r| r.is_plain_via(A_IP, Some("eth0")))
    })?;
    for block in b_blocks {
        wait_until(&format!("B: own {block} blackhole"), TIMEOUT, || {
            route_check(b_ns, block, KernelRoute::is_bird_blackhole)
        })?;
        wait_until(&format!("A: B's {block} via B"), TIMEOUT, || {
            route_check(a_ns, block, |r| r.is_plain_via(B_IP, Some("eth0")))
        })?;
    }
    Ok(())
}

#[test]
fn ns_scenario_graceful_restart() {
    run_scenario("graceful-restart", &[BASE, TSHARK], |artifacts| {
        let lan = Switch::new("lan")?;
        let a_ns = Netns::new("node-a")?;
        let b_ns = Netns::new("node-b")?;
        lan.attach(&a_ns, "eth0", &[&format!("{A_IP}/24")])?;
        lan.attach(&b_ns, "eth0", &[&format!("{B_IP}/24")])?;
        // Pod-like addresses inside each node's block (on lo: the local table answers them,
        // the block's blackhole covers the rest of the block).
        a_ns.add_address("lo", &format!("{A_POD}/32"))?;
        b_ns.add_address("lo", &format!("{B_POD}/32"))?;
        let mut pcap = artifacts.capture(lan.netns(), BRIDGE, "lan.pcap")?;

        let mut cluster = CalicoCluster::new(AS)
            .with_pool("no-encap", POOL, IpipMode::Never)
            .with_node("node-a", &format!("{A_IP}/24"))
            .with_node("node-b", &format!("{B_IP}/24"))
            .with_block("node-a", A_BLOCK)
            .with_block("node-b", B_BLOCK);
        for block in B_SWEPT {
            cluster = cluster.with_block("node-b", block);
        }
        let mut a = TernNode::start(&a_ns, artifacts, &cluster, TernSettings::fast("node-a"))?;
        let mut b = TernNode::start(&b_ns, artifacts, &cluster, TernSettings::fast("node-b"))?;
        wait_until("A: B Established", TIMEOUT, || a.all_established(&[B_IP]))?;
        wait_until("B: A Established", TIMEOUT, || b.all_established(&[A_IP]))?;
        let mut b_blocks: Vec<&str> = vec![B_BLOCK];
        b_blocks.extend(B_SWEPT);
        steady(&a_ns, &b_ns, &b_blocks)?;

        for (round, (stop, swept)) in [(Stop::Sigterm, B_SWEPT[0]), (Stop::Sigkill, B_SWEPT[1])]
            .into_iter()
            .enumerate()
        {
            let label = format!("round {} ({stop:?})", round + 1);
            let a_monitor = RouteMonitor::start(&a_ns, artifacts, &format!("a-round{round}"))?;
            let b_monitor = RouteMonitor::start(&b_ns, artifacts, &format!("b-round{round}"))?;
            let pinger = Pinger::start(&a_ns, artifacts, &format!("ping-round{round}"))?;

            match stop {
                Stop::Sigterm => b.stop()?,
                Stop::Sigkill => b.kill()?,
            }
            // A notices (the TCP connection closes) and, as graceful restart helper, keeps
            // B's routes as stale (RFC 4724 §4.2).
            wait_until(
                &format!("{label}: A holds B's routes as stale"),
                TIMEOUT,
                || {
                    Ok(match a.peer(B_IP)? {
                        Some(p)
                            if p["state"] != "Established"
                                && p["peer_graceful_restart_active"] == true =>
                        {
                            Check::Ready(())
                        }
                        Some(p) => pending(format!("{p}")),
                        None => pending("B is not a peer of A"),
                    })
                },
            )?;
            // Traffic keeps flowing while tern is down on B: 50 more replies (0.5 s).
            let before = pinger.received()?.len();
            wait_until(
                &format!("{label}: pings answered while B is down"),
                TIMEOUT,
                || {
                    let now = pinger.received()?.len();
                    Ok(if now >= before + 50 {
                        Check::Ready(())
                    } else {
                        pending(format!("{} replies since the stop", now - before))
                    })
                },
            )?;
            // While B is down its datastore loses a block: the restarted tern must sweep it.
            cluster = cluster.without_block(swept);
            b.write_resources(&cluster)?;
            b_blocks.retain(|blk| *blk != swept);
            b.restart(&b_ns)?;

            wait_until(&format!("{label}: A: B Established again"), TIMEOUT, || {
                a.all_established(&[B_IP])
            })?;
            wait_until(&format!("{label}: B: A Established again"), TIMEOUT, || {
                b.all_established(&[A_IP])
            })?;
            // Convergence: the removed block is swept from both kernels (from B's after its
            // End-of-RIB wait, from A's when B's End-of-RIB ends A's stale period).
            wait_until(
                &format!("{label}: B swept {swept}"),
                CONVERGE_TIMEOUT,
                || absent(&b_ns, swept),
            )?;
            wait_until(
                &format!("{label}: A swept {swept}"),
                CONVERGE_TIMEOUT,
                || absent(&a_ns, swept),
            )?;
            steady(&a_ns, &b_ns, &b_blocks)?;
            wait_until(
                &format!("{label}: A: B no longer restarting"),
                TIMEOUT,
                || {
                    Ok(match a.peer(B_IP)? {
                        Some(p) if p["peer_graceful_restart_active"] == true => {
                            pending(format!("{p}"))
                        }
                        Some(_) => Check::Ready(()),
                        None => pending("B is not a peer of A"),
                    })
                },
            )?;

            let (lost, answered) = pinger.stop_and_losses()?;
            ensure!(answered > 0, "{label}: no ping replies at all");
            ensure!(
                lost.is_empty(),
                "{label}: {} of {} pings lost (icmp_seq {:?})",
                lost.len(),
                answered + lost.len(),
                &lost[..lost.len().min(20)]
            );
            let a_deleted = a_monitor.stop_and_deletions(&[B_BLOCK])?;
            ensure!(
                a_deleted.is_empty(),
                "{label}: A's route to B's block disappeared: {a_deleted:?}"
            );
            let b_deleted = b_monitor.stop_and_deletions(&[A_BLOCK, B_BLOCK])?;
            ensure!(
                b_deleted.is_empty(),
                "{label}: B's kernel lost routes during the restart: {b_deleted:?}"
            );

            // On the wire: no NOTIFICATION at all (a planned stop sends none to a graceful
            // restart peer; a crash cannot), and B's OPEN on return has R and F set.
            let restart_opens = format!(
                "bgp.type == 1 && ip.src == {B_IP} && bgp.cap.gr.timers.restart_flag == 1 \
                 && bgp.cap.gr.flag.pfs == 1"
            );
            wait_until(
                &format!("{label}: B's OPEN with R and F bits in the capture"),
                TIMEOUT,
                || Ok(pcap.count(&restart_opens)? > round),
            )?;
            let notifications = pcap.count("bgp.type == 3")?;
            if notifications != 0 {
                bail!("{label}: {notifications} NOTIFICATION(s) in the capture");
            }
        }
        pcap.stop()?;
        Ok(())
    });
}
