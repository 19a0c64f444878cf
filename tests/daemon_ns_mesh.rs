//! `tern run` end to end: three tern nodes in a full mesh on two subnets (a router namespace
//! between them), one IP-in-IP CrossSubnet pool and one unencapsulated pool, BlockAffinities per
//! node. Checks sessions through `tern show peers --json`, each kernel's routes through
//! `ip -json route`, a planned stop (SIGTERM: routes kept by the others under graceful restart
//! until the restart time, then gone) and a `kill -9` (routes gone after the retention bound).
//! Needs root; fails otherwise (skips with `TERN_ALLOW_SKIP=1`).

mod daemon_common;

use std::time::Duration;

use anyhow::{Result, ensure};
use daemon_common::*;
use interop::prelude::*;
use nix::sys::signal::Signal;

const MANIFESTS: &str = r#"
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec:
  asNumber: 64512
  programClusterRoutes: Enabled
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: ipip}
spec: {cidr: 10.244.0.0/16, ipipMode: CrossSubnet, blockSize: 26}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: plain}
spec: {cidr: 10.245.0.0/16, ipipMode: Never, vxlanMode: Never, blockSize: 26}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: n1}
spec: {bgp: {ipv4Address: 10.0.1.1/24}}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: n2}
spec: {bgp: {ipv4Address: 10.0.1.2/24}}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: n3}
spec: {bgp: {ipv4Address: 10.0.2.3/24}}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: n1-a}
spec: {state: confirmed, node: n1, cidr: 10.244.1.0/26, type: host}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: n1-b}
spec: {state: confirmed, node: n1, cidr: 10.245.1.0/26, type: host}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: n2-a}
spec: {state: confirmed, node: n2, cidr: 10.244.2.0/26, type: host}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: n3-a}
spec: {state: confirmed, node: n3, cidr: 10.244.3.0/26, type: host}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: n3-b}
spec: {state: confirmed, node: n3, cidr: 10.245.3.0/26, type: host}
"#;

/// A node namespace: `eth0` on its subnet, default route via the router, and a veth end named
/// `tunl0` (up, with a /32 address) standing in for the IP-in-IP device.
fn node_ns(
    label: &str,
    lan: &Switch,
    address: &str,
    gateway: &str,
    tunnel_addr: &str,
) -> Result<Netns> {
    let ns = Netns::new(label)?;
    lan.attach(&ns, "eth0", &[address])?;
    ns.ip([
        "link", "add", "tunl0", "type", "veth", "peer", "name", "tunl0p",
    ])?;
    ns.link_up("tunl0p")?;
    ns.link_up("tunl0")?;
    ns.add_address("tunl0", tunnel_addr)?;
    ns.add_route(&format!("default via {gateway}"))?;
    Ok(ns)
}

fn gateway_and_dev(route: &serde_json::Value) -> (String, String, bool) {
    (
        route["gateway"].as_str().unwrap_or("").to_owned(),
        route["dev"].as_str().unwrap_or("").to_owned(),
        route["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "onlink")),
    )
}

#[test]
fn ns_daemon_mesh() {
    run_scenario("daemon-mesh", &[BASE], |artifacts| {
        let lan1 = Switch::new("lan1")?;
        let lan2 = Switch::new("lan2")?;
        let router = Netns::new("r")?;
        lan1.attach(&router, "eth1", &["10.0.1.254/24"])?;
        lan2.attach(&router, "eth2", &["10.0.2.254/24"])?;
        router.enable_forwarding()?;
        let ns1 = node_ns("n1", &lan1, "10.0.1.1/24", "10.0.1.254", "10.244.1.1/32")?;
        let ns2 = node_ns("n2", &lan1, "10.0.1.2/24", "10.0.1.254", "10.244.2.1/32")?;
        let ns3 = node_ns("n3", &lan2, "10.0.2.3/24", "10.0.2.254", "10.244.3.1/32")?;

        let n1 = TernNode::write(artifacts, "n1", MANIFESTS, "")?;
        let n2 = TernNode::write(artifacts, "n2", MANIFESTS, "")?;
        let n3 = TernNode::write(artifacts, "n3", MANIFESTS, "")?;
        let _t1 = n1.start(&ns1, artifacts)?;
        let mut t2 = n2.start(&ns2, artifacts)?;
        let mut t3 = n3.start(&ns3, artifacts)?;

        // Every node Established with the two others.
        for (node, others) in [
            (&n1, ["10.0.1.2", "10.0.2.3"]),
            (&n2, ["10.0.1.1", "10.0.2.3"]),
            (&n3, ["10.0.1.1", "10.0.1.2"]),
        ] {
            for other in others {
                wait_until(
                    &format!("{} Established with {other}", node.name),
                    CONVERGE,
                    || Ok(node.peer_state(other)? == "Established"),
                )?;
            }
        }

        // Own blocks: blackholes, protocol bird.
        for (ns, blocks) in [
            (&ns1, vec!["10.244.1.0/26", "10.245.1.0/26"]),
            (&ns2, vec!["10.244.2.0/26"]),
            (&ns3, vec!["10.244.3.0/26", "10.245.3.0/26"]),
        ] {
            for block in blocks {
                let r = wait_until(&format!("blackhole {block}"), CONVERGE, || {
                    kernel_route(ns, block)
                })?;
                ensure!(r["type"] == "blackhole", "{block}: {r}");
                ensure!(r["protocol"] == "bird", "{block}: {r}");
            }
        }

        // n1: n2's IPIP block in the same subnet → plain via; n3's across subnets → tunl0 onlink;
        // n3's no-encap block → not through the tunnel.
        let r = wait_until("n1 route to n2's block", CONVERGE, || {
            kernel_route(&ns1, "10.244.2.0/26")
        })?;
        let (gw, dev, onlink) = gateway_and_dev(&r);
        ensure!(gw == "10.0.1.2" && dev == "eth0" && !onlink, "n1 → n2: {r}");
        ensure!(r["protocol"] == "bird", "{r}");
        let r = wait_until("n1 route to n3's IPIP block", CONVERGE, || {
            kernel_route(&ns1, "10.244.3.0/26")
        })?;
        let (gw, dev, onlink) = gateway_and_dev(&r);
        ensure!(
            gw == "10.0.2.3" && dev == "tunl0" && onlink,
            "n1 → n3 ipip: {r}"
        );
        let r = wait_until("n1 route to n3's no-encap block", CONVERGE, || {
            kernel_route(&ns1, "10.245.3.0/26")
        })?;
        let (_, dev, _) = gateway_and_dev(&r);
        ensure!(dev == "eth0", "n1 → n3 no-encap: {r}");
        // n3 to n1's blocks: tunnel for IPIP.
        let r = wait_until("n3 route to n1's IPIP block", CONVERGE, || {
            kernel_route(&ns3, "10.244.1.0/26")
        })?;
        let (gw, dev, onlink) = gateway_and_dev(&r);
        ensure!(
            gw == "10.0.1.1" && dev == "tunl0" && onlink,
            "n3 → n1 ipip: {r}"
        );

        // Planned stop of n3 (SIGTERM): no NOTIFICATION, graceful restart keeps its routes on
        // n1 while the session is down, until the restart time (15 s) ends.
        t3.stop()?;
        wait_until("n1 sees n3 down", CONVERGE, || {
            Ok(n1.peer_state("10.0.2.3")? != "Established")
        })?;
        ensure!(
            kernel_route(&ns1, "10.244.3.0/26")?.is_some(),
            "n3's route kept on n1 under graceful restart"
        );
        let peers = n1.peers()?;
        let n3_status = peers
            .iter()
            .find(|p| p["address"] == "10.0.2.3")
            .cloned()
            .unwrap_or_default();
        ensure!(
            n3_status.get("last_error").is_none()
                || !n3_status["last_error"].to_string().contains("NOTIFICATION"),
            "no NOTIFICATION on a planned stop: {n3_status}"
        );
        wait_until(
            "n3's routes gone from n1 after the restart time",
            CONVERGE,
            || {
                Ok(kernel_route(&ns1, "10.244.3.0/26")?.is_none()
                    && kernel_route(&ns1, "10.245.3.0/26")?.is_none())
            },
        )?;
        // n3's own kernel keeps its routes after the planned stop.
        ensure!(
            kernel_route(&ns3, "10.244.1.0/26")?.is_some(),
            "n3's kernel routes stay after SIGTERM"
        );

        // kill -9 of n2 without restart: its route goes from n1 within the bound.
        ensure!(kernel_route(&ns1, "10.244.2.0/26")?.is_some());
        t2.signal(Signal::SIGKILL)?;
        wait_until("n2's route gone from n1 after kill -9", CONVERGE, || {
            Ok(kernel_route(&ns1, "10.244.2.0/26")?.is_none())
        })?;
        ensure!(
            kernel_route(&ns2, "10.244.2.0/26")?.is_some(),
            "a crash never flushes n2's kernel routes"
        );

        // Restart n2 with its routes still in the kernel, plus a stale route of tern's
        // protocol that nobody advertises any more: adopted (kept) at start, the R bit set in
        // n2's OPEN, swept once the recovery ends (bounded by kernel.restart_wait = 30 s,
        // since n3 is down and never sends End-of-RIB).
        ns2.ip([
            "route",
            "add",
            "10.244.77.0/26",
            "via",
            "10.0.1.1",
            "proto",
            "bird",
        ])?;
        let _t2 = n2.start(&ns2, artifacts)?;
        wait_until("n1 Established with the restarted n2", CONVERGE, || {
            Ok(n1.peer_state("10.0.1.2")? == "Established")
        })?;
        let peers = n1.peers()?;
        let n2_status = peers
            .iter()
            .find(|p| p["address"] == "10.0.1.2")
            .cloned()
            .unwrap_or_default();
        ensure!(
            n2_status["session"]["remote_capabilities"]["graceful_restart"]["restarting"] == true,
            "R bit in the restarted n2's OPEN: {n2_status}"
        );
        ensure!(
            kernel_route(&ns2, "10.244.2.0/26")?.is_some_and(|r| r["type"] == "blackhole"),
            "n2's block kept across the restart"
        );
        // n2 reports its recovery (calico-node's probes read it as BIRD's 0024 status).
        let status = wait_until("n2 reports graceful restart recovery", CONVERGE, || {
            let status = n2.show("status")?;
            Ok(status.contains("waiting_for_peers").then_some(status))
        })?;
        artifacts.write("n2-status-recovering.json", &status)?;
        wait_until("n2's route back on n1", CONVERGE, || {
            kernel_route(&ns1, "10.244.2.0/26")
        })?;
        wait_until(
            "the stale route swept after n2's recovery",
            Duration::from_secs(90),
            || Ok(kernel_route(&ns2, "10.244.77.0/26")?.is_none()),
        )?;
        ensure!(
            kernel_route(&ns2, "10.244.1.0/26")?.is_some(),
            "re-learned routes stay after the sweep"
        );
        wait_until("n2's recovery over in its status", CONVERGE, || {
            Ok(!n2.show("status")?.contains("waiting_for_peers"))
        })?;
        Ok(())
    });
}

/// The waits a node's log gives for its next connection attempt after a refusal, in ms.
fn refused_waits(log: &str, peer: &str) -> Vec<f64> {
    log.lines()
        .filter(|line| {
            line.contains("connection refused: nothing listens at the peer yet")
                && line.contains(&format!("peer={peer} "))
        })
        .filter_map(|line| {
            let wait = line
                .split("next_attempt_in=Some(")
                .nth(1)?
                .split(')')
                .next()?;
            let (number, unit) = wait.split_at(wait.find(|c: char| c.is_alphabetic() || c == 'µ')?);
            let value: f64 = number.parse().ok()?;
            Some(match unit {
                "s" => value * 1000.0,
                "ms" => value,
                "µs" => value / 1000.0,
                "ns" => value / 1e6,
                _ => return None,
            })
        })
        .collect()
}

/// Mesh start-up: a node whose peer's tern is not listening yet (every node of a mesh starts at
/// once; the lower address is passive, so only the other one connects) retries a refused
/// connection after 100 ms, doubling, not after the ConnectRetry time (2 s here, 5 s by
/// default): the session comes up as soon as the peer listens. Checked on what the node logs
/// for each refusal, then the session.
#[test]
fn ns_daemon_mesh_refused_connection_retried_soon() {
    run_scenario("daemon-mesh-refused", &[BASE], |artifacts| {
        let lan = Switch::new("lan")?;
        let ns1 = node_ns("n1", &lan, "10.0.1.1/24", "10.0.1.254", "10.244.1.1/32")?;
        let ns2 = node_ns("n2", &lan, "10.0.1.2/24", "10.0.1.254", "10.244.2.1/32")?;
        let n1 = TernNode::write(artifacts, "n1", MANIFESTS, "")?;
        let n2 = TernNode::write(artifacts, "n2", MANIFESTS, "")?;
        // n2 first: n1 (passive towards n2) does not listen yet, its host refuses.
        let t2 = n2.start(&ns2, artifacts)?;
        wait_until("n2 refused three times by n1", CONVERGE, || {
            Ok(refused_waits(&t2.log(), "10.0.1.1").len() >= 3)
        })?;
        let _t1 = n1.start(&ns1, artifacts)?;
        for (node, other) in [(&n1, "10.0.1.2"), (&n2, "10.0.1.1")] {
            wait_until(
                &format!("{} Established with {other}", node.name),
                CONVERGE,
                || Ok(node.peer_state(other)? == "Established"),
            )?;
        }
        let waits = refused_waits(&t2.log(), "10.0.1.1");
        // 100 ms, 200 ms, 400 ms...: each well under the ConnectRetry time (2 s).
        ensure!(
            waits.len() >= 3 && waits[..3].iter().all(|&w| w < 1000.0),
            "waits after refusals: {waits:?} ms"
        );
        ensure!(
            waits.windows(2).all(|w| w[1] >= w[0]),
            "waits do not back off: {waits:?} ms"
        );
        Ok(())
    });
}
