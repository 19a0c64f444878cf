//! Scenario `exabgp-inject` (interop/scenarios/exabgp-inject/README.md): ExaBGP peers with
//! GoBGP and BIRD; routes injected through ExaBGP's API process appear at both (BIRD's kernel
//! table too) and disappear when withdrawn.

use std::time::Duration;

use anyhow::Result;
use interop::prelude::*;

const TIMEOUT: Duration = Duration::from_secs(60);
const EXABGP_IP: &str = "10.0.0.5";
const GOBGP_IP: &str = "10.0.0.2";
const BIRD_IP: &str = "10.0.0.1";
const EXABGP_AS: u32 = 65005;
const GOBGP_AS: u32 = 65002;
const BIRD_AS: u32 = 65001;
const INJECTED: &str = "10.55.0.0/24";

fn established(state: String) -> Result<Check<()>> {
    Ok(if state == "Established" {
        Check::Ready(())
    } else {
        pending(state)
    })
}

#[test]
fn ns_exabgp_inject() {
    run_scenario("exabgp-inject", &[BASE, EXABGP, GOBGP, BIRD], |artifacts| {
        let lan = Switch::new("lan")?;
        let exabgp_ns = Netns::new("exabgp")?;
        let gobgp_ns = Netns::new("gobgp")?;
        let bird_ns = Netns::new("bird")?;
        lan.attach(&exabgp_ns, "eth0", &[&format!("{EXABGP_IP}/24")])?;
        lan.attach(&gobgp_ns, "eth0", &[&format!("{GOBGP_IP}/24")])?;
        lan.attach(&bird_ns, "eth0", &[&format!("{BIRD_IP}/24")])?;
        let mut pcap = artifacts.capture(lan.netns(), BRIDGE, "lan.pcap")?;

        let v4 = [Family::Ipv4Unicast];
        let gobgp = Gobgp::start(
            &gobgp_ns,
            artifacts,
            "gobgp",
            &GobgpConfig::new(GOBGP_AS, GOBGP_IP)
                .with_neighbor(GobgpNeighbor::new(EXABGP_IP, EXABGP_AS, &v4)),
        )?;
        let bird = Bird::start(
            &bird_ns,
            artifacts,
            "bird",
            &BirdConfig::new(BIRD_IP).with_peer(BirdPeer::new(
                "exabgp", BIRD_IP, BIRD_AS, EXABGP_IP, EXABGP_AS, &v4,
            )),
        )?;
        let exabgp_config = ExabgpConfig {
            router_id: EXABGP_IP.to_owned(),
            neighbors: vec![
                ExabgpNeighbor {
                    address: GOBGP_IP.to_owned(),
                    local_address: EXABGP_IP.to_owned(),
                    local_as: EXABGP_AS,
                    peer_as: GOBGP_AS,
                    families: v4.to_vec(),
                },
                ExabgpNeighbor {
                    address: BIRD_IP.to_owned(),
                    local_address: EXABGP_IP.to_owned(),
                    local_as: EXABGP_AS,
                    peer_as: BIRD_AS,
                    families: v4.to_vec(),
                },
            ],
        };
        let exabgp = Exabgp::start(&exabgp_ns, artifacts, "exabgp", &exabgp_config)?;

        wait_until("GoBGP session with ExaBGP Established", TIMEOUT, || {
            established(gobgp.session_state(EXABGP_IP)?)
        })?;
        wait_until("BIRD session with ExaBGP Established", TIMEOUT, || {
            established(bird.bgp_state("exabgp")?)
        })?;

        exabgp.command(&format!(
            "announce route {INJECTED} next-hop self community [65005:1]"
        ))?;
        wait_until("injected route at GoBGP", TIMEOUT, || {
            gobgp.has_route(INJECTED)
        })?;
        wait_until("injected route at BIRD", TIMEOUT, || {
            bird.has_route(INJECTED)
        })?;
        wait_until("injected route in BIRD's kernel table", TIMEOUT, || {
            let routes = bird_ns.routes_for(INJECTED)?;
            Ok(if routes.contains("via 10.0.0.5") {
                Check::Ready(())
            } else {
                pending(format!("{routes:?}"))
            })
        })?;

        exabgp.command(&format!("withdraw route {INJECTED} next-hop self"))?;
        wait_until("injected route withdrawn at GoBGP", TIMEOUT, || {
            Ok(!gobgp.has_route(INJECTED)?)
        })?;
        wait_until("injected route withdrawn at BIRD", TIMEOUT, || {
            Ok(!bird.has_route(INJECTED)?)
        })?;
        wait_until("injected route gone from BIRD's kernel", TIMEOUT, || {
            Ok(!bird_ns.has_route(INJECTED)?)
        })?;
        pcap.stop()?;
        Ok(())
    });
}
