//! Scenario `top-of-rack` (interop/scenarios/top-of-rack/README.md): two racks, each with an
//! FRR ToR in its own AS; tern nodes with their own AS peer eBGP with their rack's ToR (BGPPeer
//! per rack by nodeSelector, mesh off); the ToRs peer with each other. Pod blocks reach the
//! ToRs, the ToR's default route is installed on the nodes, and nothing outside the pools
//! leaks (neither a route learned from a ToR nor a kernel route of a node).

use std::time::Duration;

use anyhow::{Result, ensure};
use interop::prelude::*;
use interop::tern_node::{
    Manifests, TernNode, kernel_routes, plan, plan_datastore, plan_originated, plan_peerings,
};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(90);
const TOR1_AS: u32 = 65101;
const TOR2_AS: u32 = 65102;
const TOR1_IP: &str = "10.1.1.1";
const TOR2_IP: &str = "10.1.2.1";
/// The ToR-ToR link.
const TOR1_LINK: &str = "10.0.12.1";
const TOR2_LINK: &str = "10.0.12.2";
/// A route ToR 1 sends its nodes that is outside the pools.
const FOREIGN: &str = "198.51.100.0/24";
/// A kernel route on node 1 outside the pools.
const NODE_KERNEL_ROUTE: &str = "203.0.113.0/24";

/// (name, rack, address, AS, block)
const NODES: [(&str, &str, &str, u32, &str); 3] = [
    ("n1", "r1", "10.1.1.11", 64611, "10.244.1.0/26"),
    ("n2", "r1", "10.1.1.12", 64612, "10.244.2.0/26"),
    ("n3", "r2", "10.1.2.11", 64621, "10.244.3.0/26"),
];

fn manifests() -> Manifests {
    let mut m = Manifests::new()
        .bgp_configuration(false, 64512)
        .ippool("pool", "10.244.0.0/16", "Never")
        .bgp_peer(
            "tor-r1",
            &format!("nodeSelector: rack == 'r1', peerIP: {TOR1_IP}, asNumber: {TOR1_AS}"),
        )
        .bgp_peer(
            "tor-r2",
            &format!("nodeSelector: rack == 'r2', peerIP: {TOR2_IP}, asNumber: {TOR2_AS}"),
        );
    for (name, rack, ip, asn, block) in NODES {
        m = m
            .node(
                name,
                &format!("{ip}/24"),
                Some(asn),
                &[("rack", rack)],
                None,
            )
            .block(name, block);
    }
    m
}

/// The ToR's BGP table prefixes (`show bgp ipv4 unicast json`).
fn tor_prefixes(tor: &Frr) -> Result<Vec<String>> {
    let out = tor.vtysh(&["show bgp ipv4 unicast json"])?;
    let v: Value = serde_json::from_str(&out)?;
    Ok(v["routes"]
        .as_object()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default())
}

/// What ToR 1 received from `neighbor` before its policy and loop checks
/// (`soft-reconfiguration inbound`).
fn received_from(tor: &Frr, neighbor: &str) -> Result<Vec<String>> {
    let out = tor.vtysh(&[&format!(
        "show bgp ipv4 unicast neighbors {neighbor} received-routes json"
    )])?;
    let v: Value = serde_json::from_str(&out)?;
    Ok(v["receivedRoutes"]
        .as_object()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default())
}

fn tor_config(
    name: &str,
    asn: u32,
    ip: &str,
    other_link: &str,
    other_as: u32,
    rack: &str,
) -> FrrConfig {
    let v4 = [Family::Ipv4Unicast];
    let mut config = FrrConfig::new(name, asn, ip);
    for (_, node_rack, node_ip, node_as, _) in NODES {
        if node_rack != rack {
            continue;
        }
        let mut n = FrrNeighbor::new(node_ip, node_as, &v4);
        n.family_options = vec![
            "default-originate".to_owned(),
            "soft-reconfiguration inbound".to_owned(),
        ];
        config = config.with_neighbor(n);
    }
    // Between the ToRs only pool routes travel: the foreign route stays in rack 1.
    let mut peer = FrrNeighbor::new(other_link, other_as, &v4);
    peer.family_options = vec!["route-map POOLS out".to_owned()];
    config = config.with_neighbor(peer);
    config.tail.extend([
        "ip prefix-list POOLS seq 5 permit 10.244.0.0/16 le 32".to_owned(),
        "route-map POOLS permit 10".to_owned(),
        " match ip address prefix-list POOLS".to_owned(),
    ]);
    config
}

/// The manifests give every node exactly its rack's ToR, with its own AS and its block.
#[test]
fn plan_top_of_rack() {
    if !interop::peers::tern::tern_binary().is_file() {
        interop::scenario::missing_prerequisite(
            "plan_top_of_rack",
            "the tern binary is not built (cargo build --bin tern)",
        );
        return;
    }
    let dir = plan_datastore(&manifests(), "top-of-rack").unwrap();
    for (name, rack, _, asn, block) in NODES {
        let plan = plan(name, &dir).unwrap();
        let (tor, tor_as) = if rack == "r1" {
            (TOR1_IP, TOR1_AS)
        } else {
            (TOR2_IP, TOR2_AS)
        };
        assert_eq!(plan["localAs"].as_u64(), Some(u64::from(asn)), "{name}");
        assert_eq!(
            plan_peerings(&plan),
            vec![(tor.to_owned(), u64::from(tor_as), false)],
            "{name}"
        );
        assert_eq!(plan_originated(&plan), vec![block.to_owned()], "{name}");
    }
}

#[test]
fn ns_scenario_top_of_rack() {
    run_scenario("top-of-rack", &[BASE, FRR], |artifacts| {
        let rack1 = Switch::new("rack1")?;
        let rack2 = Switch::new("rack2")?;
        let tor1_ns = Netns::new("tor1")?;
        let tor2_ns = Netns::new("tor2")?;
        rack1.attach(&tor1_ns, "eth0", &[&format!("{TOR1_IP}/24")])?;
        rack2.attach(&tor2_ns, "eth0", &[&format!("{TOR2_IP}/24")])?;
        veth(&tor1_ns, "spine", &tor2_ns, "spine")?;
        tor1_ns.add_address("spine", &format!("{TOR1_LINK}/30"))?;
        tor2_ns.add_address("spine", &format!("{TOR2_LINK}/30"))?;
        tor1_ns.enable_forwarding()?;
        tor2_ns.enable_forwarding()?;
        let mut node_ns = Vec::new();
        for (name, rack, ip, _, _) in NODES {
            let ns = Netns::new(name)?;
            let switch = if rack == "r1" { &rack1 } else { &rack2 };
            switch.attach(&ns, "eth0", &[&format!("{ip}/24")])?;
            node_ns.push(ns);
        }
        // A kernel route on node 1 outside the pools (must never be exported).
        node_ns[0].add_route(&format!("{NODE_KERNEL_ROUTE} via {TOR1_IP} proto static"))?;
        let mut pcap1 = artifacts.capture(rack1.netns(), BRIDGE, "rack1.pcap")?;
        let mut pcap2 = artifacts.capture(rack2.netns(), BRIDGE, "rack2.pcap")?;

        let tor1 = Frr::start(
            &tor1_ns,
            artifacts,
            "tor1",
            &tor_config("tor1", TOR1_AS, TOR1_IP, TOR2_LINK, TOR2_AS, "r1").with_network(FOREIGN),
        )?;
        let tor2 = Frr::start(
            &tor2_ns,
            artifacts,
            "tor2",
            &tor_config("tor2", TOR2_AS, TOR2_IP, TOR1_LINK, TOR1_AS, "r2"),
        )?;
        let datastore = manifests().write(artifacts, "datastore")?;
        let mut terns = Vec::new();
        for ((name, ..), ns) in NODES.iter().zip(&node_ns) {
            terns.push(TernNode::start(ns, artifacts, name, &datastore)?);
        }
        for ((_, rack, ip, ..), tern) in NODES.iter().zip(&terns) {
            let tor = if *rack == "r1" { TOR1_IP } else { TOR2_IP };
            tern.wait_established(tor, TIMEOUT)?;
            let frr = if *rack == "r1" { &tor1 } else { &tor2 };
            wait_until(
                &format!("ToR of {rack} Established with {ip}"),
                TIMEOUT,
                || Ok(frr.session_state(ip)? == "Established"),
            )?;
        }
        // 1. Every node's block on both ToRs.
        for (tor_name, tor) in [("tor1", &tor1), ("tor2", &tor2)] {
            for (name, .., block) in NODES {
                wait_until(
                    &format!("{name}'s block {block} at {tor_name}"),
                    TIMEOUT,
                    || Ok(tor_prefixes(tor)?.iter().any(|p| p == block)),
                )?;
            }
        }
        // 2. The ToR's default route in every node's kernel (protocol bird), and the other
        // nodes' blocks.
        for ((name, _, _, _, own), ns) in NODES.iter().zip(&node_ns) {
            wait_until(
                &format!("default route in {name}'s kernel"),
                TIMEOUT,
                || Ok(kernel_routes(ns, "bird")?.iter().any(|p| p == "default")),
            )?;
            for (.., block) in NODES {
                if block == *own {
                    continue;
                }
                wait_until(&format!("{block} in {name}'s kernel"), TIMEOUT, || {
                    Ok(kernel_routes(ns, "bird")?.iter().any(|p| p == block))
                })?;
            }
        }
        // 3. Nothing outside the pools leaks. Node 1 learned the foreign route (it is in its
        // kernel), yet no node sends it back, and node 1's kernel route is never exported.
        wait_until(&format!("{FOREIGN} in n1's kernel"), TIMEOUT, || {
            Ok(kernel_routes(&node_ns[0], "bird")?
                .iter()
                .any(|p| p == FOREIGN))
        })?;
        for (name, rack, ip, _, block) in NODES {
            let tor = if rack == "r1" { &tor1 } else { &tor2 };
            // The block arrived (so the adj-RIB-in is filled) and it is all that arrived.
            let received = received_from(tor, ip)?;
            ensure!(
                received == vec![block.to_owned()],
                "{name} sent its ToR {received:?}, only {block} allowed"
            );
        }
        let at_tor2 = tor_prefixes(&tor2)?;
        ensure!(
            !at_tor2
                .iter()
                .any(|p| p == FOREIGN || p == NODE_KERNEL_ROUTE),
            "leak at tor2: {at_tor2:?}"
        );
        pcap1.stop()?;
        pcap2.stop()?;
        drop(terns);
        Ok(())
    });
}
