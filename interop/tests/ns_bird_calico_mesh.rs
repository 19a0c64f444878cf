//! Scenario `bird-calico-mesh` (interop/scenarios/bird-calico-mesh/README.md): two BIRD nodes
//! configured the way Calico configures BIRD for the node-to-node mesh (the BIRD side of
//! issue 8's scenario 2). Node IPs 10.0.0.9 and 10.0.0.10 make string order differ from
//! numeric order: 10.0.0.10 is the passive side, so 10.0.0.9 opens the connection.

use std::time::Duration;

use anyhow::{Result, ensure};
use interop::prelude::*;

const TIMEOUT: Duration = Duration::from_secs(60);
const AS: u32 = 64512;
const NODE_A: &str = "10.0.0.9";
const NODE_B: &str = "10.0.0.10";
const BLOCK_A: &str = "192.168.9.0/26";
const BLOCK_B: &str = "192.168.10.0/26";

fn established(bird: &Bird, proto: &str) -> Result<Check<()>> {
    let state = bird.bgp_state(proto)?;
    Ok(if state == "Established" {
        Check::Ready(())
    } else {
        pending(state)
    })
}

#[test]
fn ns_bird_calico_mesh() {
    run_scenario("bird-calico-mesh", &[BASE, BIRD], |artifacts| {
        let lan = Switch::new("lan")?;
        let a_ns = Netns::new("node-a")?;
        let b_ns = Netns::new("node-b")?;
        lan.attach(&a_ns, "eth0", &[&format!("{NODE_A}/24")])?;
        lan.attach(&b_ns, "eth0", &[&format!("{NODE_B}/24")])?;
        let mut pcap = artifacts.capture(lan.netns(), BRIDGE, "lan.pcap")?;
        let v4 = [Family::Ipv4Unicast];

        let a_peer = BirdPeer::calico_mesh(NODE_A, NODE_B, AS, &v4);
        let b_peer = BirdPeer::calico_mesh(NODE_B, NODE_A, AS, &v4);
        ensure!(
            !a_peer.passive && b_peer.passive,
            "10.0.0.10 must be the passive side"
        );
        let a = Bird::start(
            &a_ns,
            artifacts,
            "node-a",
            &BirdConfig::new(NODE_A)
                .with_static("blocks", &[BLOCK_A])
                .with_peer(a_peer),
        )?;
        let b = Bird::start(
            &b_ns,
            artifacts,
            "node-b",
            &BirdConfig::new(NODE_B)
                .with_static("blocks", &[BLOCK_B])
                .with_peer(b_peer),
        )?;

        wait_until("Mesh_10_0_0_10 Established on node A", TIMEOUT, || {
            established(&a, "Mesh_10_0_0_10")
        })?;
        wait_until("Mesh_10_0_0_9 Established on node B", TIMEOUT, || {
            established(&b, "Mesh_10_0_0_9")
        })?;

        // The passive node (B) accepted the connection: its end is port 179.
        let sockets = b_ns.run("ss", ["-Htn", "state", "established"])?;
        ensure!(
            sockets
                .lines()
                .any(|l| l.contains(&format!("{NODE_B}:179")) && l.contains(NODE_A)),
            "node B did not accept the session on port 179: {sockets}"
        );

        // Each node's block: a blackhole at home, a route via the owner on the other node.
        for (ns, own, other, via) in [
            (&a_ns, BLOCK_A, BLOCK_B, NODE_B),
            (&b_ns, BLOCK_B, BLOCK_A, NODE_A),
        ] {
            wait_until(&format!("{other} via {via}"), TIMEOUT, || {
                let routes = ns.routes_for(other)?;
                Ok(
                    if routes.contains(&format!("via {via}")) && routes.contains("proto bird") {
                        Check::Ready(())
                    } else {
                        pending(format!("{routes:?}"))
                    },
                )
            })?;
            let home = ns.routes_for(own)?;
            ensure!(
                home.contains("blackhole") && home.contains("proto bird"),
                "own block {own} is not a bird blackhole: {home:?}"
            );
        }
        pcap.stop()?;
        Ok(())
    });
}
