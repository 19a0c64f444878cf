//! Scenario `peers-baseline` (interop/scenarios/peers-baseline/README.md): BIRD 2, GoBGP and
//! FRR on one LAN, eBGP full mesh; sessions reach Established, each one's route reaches the
//! others (their CLIs and kernel tables), and stopping GoBGP withdraws its route.

use std::time::Duration;

use anyhow::{Result, ensure};
use interop::prelude::*;

const ESTABLISHED: Duration = Duration::from_secs(60);
const CONVERGE: Duration = Duration::from_secs(60);

const BIRD_IP: &str = "10.0.0.1";
const GOBGP_IP: &str = "10.0.0.2";
const FRR_IP: &str = "10.0.0.3";
const BIRD_AS: u32 = 65001;
const GOBGP_AS: u32 = 65002;
const FRR_AS: u32 = 65003;
const BIRD_ROUTE: &str = "192.168.1.0/24";
const GOBGP_ROUTE: &str = "192.168.2.0/24";
const FRR_ROUTE: &str = "192.168.3.0/24";

/// Waits until a kernel route for `prefix` exists in `ns` and mentions every word of `must`.
fn wait_kernel_route(ns: &Netns, who: &str, prefix: &str, must: &[&str]) -> Result<String> {
    wait_until(
        &format!("kernel route {prefix} in {who} with {must:?}"),
        CONVERGE,
        || {
            let routes = ns.routes_for(prefix)?;
            Ok(
                if must.iter().all(|w| routes.contains(w)) && !routes.trim().is_empty() {
                    Check::Ready(routes)
                } else {
                    pending(format!("ip route show {prefix}: {routes:?}"))
                },
            )
        },
    )
}

fn wait_kernel_route_gone(ns: &Netns, who: &str, prefix: &str) -> Result<()> {
    wait_until(
        &format!("kernel route {prefix} gone in {who}"),
        CONVERGE,
        || {
            let routes = ns.routes_for(prefix)?;
            Ok(if routes.trim().is_empty() {
                Check::Ready(())
            } else {
                pending(format!("still: {routes:?}"))
            })
        },
    )
}

#[test]
fn ns_peers_baseline() {
    run_scenario("peers-baseline", &[BASE, BIRD, GOBGP, FRR], |artifacts| {
        let lan = Switch::new("lan")?;
        let bird_ns = Netns::new("bird")?;
        let gobgp_ns = Netns::new("gobgp")?;
        let frr_ns = Netns::new("frr")?;
        lan.attach(&bird_ns, "eth0", &[&format!("{BIRD_IP}/24")])?;
        lan.attach(&gobgp_ns, "eth0", &[&format!("{GOBGP_IP}/24")])?;
        lan.attach(&frr_ns, "eth0", &[&format!("{FRR_IP}/24")])?;
        let mut pcap = artifacts.capture(lan.netns(), BRIDGE, "lan.pcap")?;

        let v4 = [Family::Ipv4Unicast];
        let bird_config = BirdConfig::new(BIRD_IP)
            .with_static("own_routes", &[BIRD_ROUTE])
            .with_peer(BirdPeer::new("gobgp", BIRD_IP, BIRD_AS, GOBGP_IP, GOBGP_AS, &v4).calico())
            .with_peer(BirdPeer::new("frr", BIRD_IP, BIRD_AS, FRR_IP, FRR_AS, &v4).calico());
        let gobgp_config = GobgpConfig::new(GOBGP_AS, GOBGP_IP)
            .with_neighbor(GobgpNeighbor::new(BIRD_IP, BIRD_AS, &v4))
            .with_neighbor(GobgpNeighbor::new(FRR_IP, FRR_AS, &v4));
        let frr_config = FrrConfig::new("frr", FRR_AS, FRR_IP)
            .with_neighbor(FrrNeighbor::new(BIRD_IP, BIRD_AS, &v4))
            .with_neighbor(FrrNeighbor::new(GOBGP_IP, GOBGP_AS, &v4))
            .with_network(FRR_ROUTE);

        let frr = Frr::start(&frr_ns, artifacts, "frr", &frr_config)?;
        let mut gobgp = Gobgp::start(&gobgp_ns, artifacts, "gobgp", &gobgp_config)?;
        let bird = Bird::start(&bird_ns, artifacts, "bird", &bird_config)?;

        // 1. Every session is Established, as each side's own CLI reports it.
        for (who, peer) in [("gobgp", "gobgp"), ("frr", "frr")] {
            wait_until(
                &format!("BIRD session {who} Established"),
                ESTABLISHED,
                || {
                    let state = bird.bgp_state(peer)?;
                    Ok(if state == "Established" {
                        Check::Ready(())
                    } else {
                        pending(state)
                    })
                },
            )?;
        }
        for address in [BIRD_IP, FRR_IP] {
            wait_until(
                &format!("GoBGP session {address} Established"),
                ESTABLISHED,
                || {
                    let state = gobgp.session_state(address)?;
                    Ok(if state == "Established" {
                        Check::Ready(())
                    } else {
                        pending(state)
                    })
                },
            )?;
        }
        for address in [BIRD_IP, GOBGP_IP] {
            wait_until(
                &format!("FRR session {address} Established"),
                ESTABLISHED,
                || {
                    let state = frr.session_state(address)?;
                    Ok(if state == "Established" {
                        Check::Ready(())
                    } else {
                        pending(state)
                    })
                },
            )?;
        }

        // 2. Each speaker's route reaches the two others.
        gobgp.announce(GOBGP_ROUTE, &["origin", "igp"])?;
        wait_until("BIRD's route at GoBGP", CONVERGE, || {
            gobgp.has_route(BIRD_ROUTE)
        })?;
        wait_until("BIRD's route at FRR", CONVERGE, || {
            frr.has_route(BIRD_ROUTE)
        })?;
        wait_until("GoBGP's route at BIRD", CONVERGE, || {
            bird.has_route(GOBGP_ROUTE)
        })?;
        wait_until("GoBGP's route at FRR", CONVERGE, || {
            frr.has_route(GOBGP_ROUTE)
        })?;
        wait_until("FRR's route at BIRD", CONVERGE, || {
            bird.has_route(FRR_ROUTE)
        })?;
        wait_until("FRR's route at GoBGP", CONVERGE, || {
            gobgp.has_route(FRR_ROUTE)
        })?;
        // ... and the kernels of the daemons that install routes, via the originator.
        wait_kernel_route(
            &bird_ns,
            "BIRD",
            GOBGP_ROUTE,
            &["via 10.0.0.2", "proto bird"],
        )?;
        wait_kernel_route(&bird_ns, "BIRD", FRR_ROUTE, &["via 10.0.0.3", "proto bird"])?;
        wait_kernel_route(&frr_ns, "FRR", BIRD_ROUTE, &["via 10.0.0.1", "proto bgp"])?;
        wait_kernel_route(&frr_ns, "FRR", GOBGP_ROUTE, &["via 10.0.0.2", "proto bgp"])?;
        // The originators keep their own routes out of their peers' paths.
        ensure!(
            bird_ns.routes_for(BIRD_ROUTE)?.contains("blackhole"),
            "BIRD's own route is not its blackhole: {}",
            bird_ns.routes_for(BIRD_ROUTE)?
        );

        // 3. Stopping GoBGP withdraws its route everywhere and its sessions go down.
        gobgp.process.stop()?;
        wait_until("BIRD session gobgp down", ESTABLISHED, || {
            let state = bird.bgp_state("gobgp")?;
            Ok(if state != "Established" {
                Check::Ready(())
            } else {
                pending(state)
            })
        })?;
        wait_until("FRR session to GoBGP down", ESTABLISHED, || {
            let state = frr.session_state(GOBGP_IP)?;
            Ok(if state != "Established" {
                Check::Ready(())
            } else {
                pending(state)
            })
        })?;
        wait_until("GoBGP's route gone at BIRD", CONVERGE, || {
            Ok(!bird.has_route(GOBGP_ROUTE)?)
        })?;
        wait_until("GoBGP's route gone at FRR", CONVERGE, || {
            Ok(!frr.has_route(GOBGP_ROUTE)?)
        })?;
        wait_kernel_route_gone(&bird_ns, "BIRD", GOBGP_ROUTE)?;
        wait_kernel_route_gone(&frr_ns, "FRR", GOBGP_ROUTE)?;
        // The BIRD <-> FRR session and its routes are unaffected.
        ensure!(
            bird.bgp_state("frr")? == "Established",
            "BIRD-FRR session dropped"
        );
        ensure!(
            frr.has_route(BIRD_ROUTE)? && bird.has_route(FRR_ROUTE)?,
            "BIRD/FRR routes lost"
        );

        pcap.stop()?;
        ensure!(
            std::fs::metadata(pcap.path())?.len() > 24,
            "the packet capture is empty"
        );
        Ok(())
    });
}
