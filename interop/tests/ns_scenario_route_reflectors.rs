//! Scenario `route-reflectors` (interop/scenarios/route-reflectors/README.md):
//! (a) a tern route reflector serving a tern client and a BIRD client configured as Calico
//! configures BIRD; (b) tern clients under a BIRD route reflector; (c) tern clients under a
//! GoBGP route reflector. Every client gets the other clients' blocks in its kernel.

use std::time::Duration;

use anyhow::{Result, ensure};
use interop::prelude::*;
use interop::tern_node::{Manifests, TernNode, kernel_routes, plan, plan_datastore, plan_peerings};

const TIMEOUT: Duration = Duration::from_secs(90);
const AS: u32 = 64512;
const RR_IP: &str = "10.0.0.10";
const CLUSTER_ID: &str = "224.0.0.1";
const RR_BLOCK: &str = "10.244.10.0/26";
const C1_IP: &str = "10.0.0.1";
const C1_BLOCK: &str = "10.244.1.0/26";
const C2_IP: &str = "10.0.0.2";
const C2_BLOCK: &str = "10.244.2.0/26";

fn in_kernel(ns: &Netns, prefix: &str) -> Result<bool> {
    Ok(kernel_routes(ns, "bird")?.iter().any(|p| p == prefix))
}

fn wait_kernel(ns: &Netns, who: &str, prefix: &str) -> Result<()> {
    wait_until(&format!("{prefix} in {who}'s kernel"), TIMEOUT, || {
        in_kernel(ns, prefix)
    })
}

/// (a) tern RR `rr` (label route-reflector, cluster id), tern client `c1`, BIRD client
/// `bird-1` (a Calico node whose BGP daemon is BIRD). Clients peer with the RR by selector.
fn tern_rr_manifests() -> Manifests {
    Manifests::new()
        .bgp_configuration(false, AS)
        .ippool("pool", "10.244.0.0/16", "Never")
        .node(
            "rr",
            &format!("{RR_IP}/24"),
            None,
            &[("route-reflector", "true")],
            Some(CLUSTER_ID),
        )
        .node("c1", &format!("{C1_IP}/24"), None, &[], None)
        .node("bird-1", &format!("{C2_IP}/24"), None, &[], None)
        .block("rr", RR_BLOCK)
        .block("c1", C1_BLOCK)
        .block("bird-1", C2_BLOCK)
        .bgp_peer(
            "peer-to-rrs",
            "nodeSelector: \"!has(route-reflector)\", peerSelector: route-reflector == 'true'",
        )
}

/// (b), (c): two tern clients with a global BGPPeer to an external RR.
fn external_rr_manifests() -> Manifests {
    Manifests::new()
        .bgp_configuration(false, AS)
        .ippool("pool", "10.244.0.0/16", "Never")
        .node("c1", &format!("{C1_IP}/24"), None, &[], None)
        .node("c2", &format!("{C2_IP}/24"), None, &[], None)
        .block("c1", C1_BLOCK)
        .block("c2", C2_BLOCK)
        .bgp_peer("rr", &format!("peerIP: {RR_IP}, asNumber: {AS}"))
}

fn skip_without_tern(name: &str) -> bool {
    let missing = !interop::peers::tern::tern_binary().is_file();
    if missing {
        interop::scenario::missing_prerequisite(
            name,
            "the tern binary is not built (cargo build --bin tern)",
        );
    }
    missing
}

/// The RR peers with both clients as route-reflector clients; the clients peer only with
/// the RR; with an external RR each client has exactly the RR.
#[test]
fn plan_route_reflectors() {
    if skip_without_tern("plan_route_reflectors") {
        return;
    }
    let dir = plan_datastore(&tern_rr_manifests(), "route-reflectors").unwrap();
    let rr = plan("rr", &dir).unwrap();
    assert_eq!(
        plan_peerings(&rr),
        vec![
            (C1_IP.to_owned(), u64::from(AS), true),
            (C2_IP.to_owned(), u64::from(AS), true)
        ]
    );
    let c1 = plan("c1", &dir).unwrap();
    assert_eq!(
        plan_peerings(&c1),
        vec![(RR_IP.to_owned(), u64::from(AS), false)]
    );
    let dir = plan_datastore(&external_rr_manifests(), "route-reflectors-ext").unwrap();
    for node in ["c1", "c2"] {
        let p = plan(node, &dir).unwrap();
        assert_eq!(
            plan_peerings(&p),
            vec![(RR_IP.to_owned(), u64::from(AS), false)]
        );
    }
}

/// Three hosts on one LAN: the RR at .10, clients at .1 and .2.
struct Lan {
    _switch: Switch,
    rr: Netns,
    c1: Netns,
    c2: Netns,
}

fn lan() -> Result<Lan> {
    let switch = Switch::new("lan")?;
    let rr = Netns::new("rr")?;
    let c1 = Netns::new("c1")?;
    let c2 = Netns::new("c2")?;
    switch.attach(&rr, "eth0", &[&format!("{RR_IP}/24")])?;
    switch.attach(&c1, "eth0", &[&format!("{C1_IP}/24")])?;
    switch.attach(&c2, "eth0", &[&format!("{C2_IP}/24")])?;
    Ok(Lan {
        _switch: switch,
        rr,
        c1,
        c2,
    })
}

#[test]
fn ns_scenario_route_reflectors_tern_rr() {
    run_scenario("route-reflectors-tern-rr", &[BASE, BIRD], |artifacts| {
        let lan = lan()?;
        let mut pcap = artifacts.capture(lan._switch.netns(), BRIDGE, "lan.pcap")?;
        let v4 = [Family::Ipv4Unicast];
        // The BIRD client: Calico's per-node peer protocol towards the RR.
        let bird = Bird::start(
            &lan.c2,
            artifacts,
            "bird-1",
            &BirdConfig::new(C2_IP)
                .with_static("blocks", &[C2_BLOCK])
                .with_peer(BirdPeer::new("Node_10_0_0_10", C2_IP, AS, RR_IP, AS, &v4).calico()),
        )?;
        let datastore = tern_rr_manifests().write(artifacts, "datastore")?;
        let rr = TernNode::start(&lan.rr, artifacts, "rr", &datastore)?;
        let c1 = TernNode::start(&lan.c1, artifacts, "c1", &datastore)?;
        rr.wait_established(C1_IP, TIMEOUT)?;
        rr.wait_established(C2_IP, TIMEOUT)?;
        c1.wait_established(RR_IP, TIMEOUT)?;
        wait_until("BIRD client Established with the tern RR", TIMEOUT, || {
            Ok(bird.bgp_state("Node_10_0_0_10")? == "Established")
        })?;
        // Each client sees the others' routes (reflected) and the RR's own block.
        wait_kernel(&lan.c1, "c1", C2_BLOCK)?;
        wait_kernel(&lan.c1, "c1", RR_BLOCK)?;
        wait_kernel(&lan.c2, "bird-1", C1_BLOCK)?;
        wait_kernel(&lan.c2, "bird-1", RR_BLOCK)?;
        wait_kernel(&lan.rr, "rr", C1_BLOCK)?;
        wait_kernel(&lan.rr, "rr", C2_BLOCK)?;
        // The reflected route carries ORIGINATOR_ID (the client's router id) and CLUSTER_LIST.
        let shown = bird.birdc(&["show", "route", "all", C1_BLOCK])?;
        ensure!(
            shown.contains(&format!("BGP.originator_id: {C1_IP}")),
            "no ORIGINATOR_ID {C1_IP} at BIRD:\n{shown}"
        );
        ensure!(
            shown.contains(&format!("BGP.cluster_list: {CLUSTER_ID}")),
            "no CLUSTER_LIST {CLUSTER_ID} at BIRD:\n{shown}"
        );
        pcap.stop()?;
        Ok(())
    });
}

#[test]
fn ns_scenario_route_reflectors_bird_rr() {
    run_scenario("route-reflectors-bird-rr", &[BASE, BIRD], |artifacts| {
        let lan = lan()?;
        let mut pcap = artifacts.capture(lan._switch.netns(), BRIDGE, "lan.pcap")?;
        let v4 = [Family::Ipv4Unicast];
        let mut config = BirdConfig::new(RR_IP);
        for (name, ip) in [("c1", C1_IP), ("c2", C2_IP)] {
            let mut peer = BirdPeer::new(name, RR_IP, AS, ip, AS, &v4);
            peer.extra = vec![
                "rr client;".to_owned(),
                format!("rr cluster id {CLUSTER_ID};"),
            ];
            peer.channel_extra = vec!["export all;".to_owned()];
            config = config.with_peer(peer);
        }
        let bird = Bird::start(&lan.rr, artifacts, "rr", &config)?;
        let datastore = external_rr_manifests().write(artifacts, "datastore")?;
        let c1 = TernNode::start(&lan.c1, artifacts, "c1", &datastore)?;
        let c2 = TernNode::start(&lan.c2, artifacts, "c2", &datastore)?;
        c1.wait_established(RR_IP, TIMEOUT)?;
        c2.wait_established(RR_IP, TIMEOUT)?;
        for name in ["c1", "c2"] {
            wait_until(&format!("BIRD RR Established with {name}"), TIMEOUT, || {
                Ok(bird.bgp_state(name)? == "Established")
            })?;
        }
        wait_kernel(&lan.c1, "c1", C2_BLOCK)?;
        wait_kernel(&lan.c2, "c2", C1_BLOCK)?;
        pcap.stop()?;
        Ok(())
    });
}

#[test]
fn ns_scenario_route_reflectors_gobgp_rr() {
    run_scenario("route-reflectors-gobgp-rr", &[BASE, GOBGP], |artifacts| {
        let lan = lan()?;
        let mut pcap = artifacts.capture(lan._switch.netns(), BRIDGE, "lan.pcap")?;
        let gobgp = Gobgp::start(&lan.rr, artifacts, "rr", &GobgpConfig::new(AS, RR_IP))?;
        for ip in [C1_IP, C2_IP] {
            gobgp.cli(&[
                "neighbor",
                "add",
                ip,
                "as",
                &AS.to_string(),
                "route-reflector-client",
                CLUSTER_ID,
            ])?;
        }
        let datastore = external_rr_manifests().write(artifacts, "datastore")?;
        let c1 = TernNode::start(&lan.c1, artifacts, "c1", &datastore)?;
        let c2 = TernNode::start(&lan.c2, artifacts, "c2", &datastore)?;
        c1.wait_established(RR_IP, TIMEOUT)?;
        c2.wait_established(RR_IP, TIMEOUT)?;
        for ip in [C1_IP, C2_IP] {
            wait_until(&format!("GoBGP RR Established with {ip}"), TIMEOUT, || {
                Ok(gobgp.session_state(ip)? == "Established")
            })?;
        }
        wait_kernel(&lan.c1, "c1", C2_BLOCK)?;
        wait_kernel(&lan.c2, "c2", C1_BLOCK)?;
        pcap.stop()?;
        Ok(())
    });
}
