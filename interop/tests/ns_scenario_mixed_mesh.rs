//! Scenario 2 of issue 8, `mixed-mesh` (interop/scenarios/mixed-mesh/README.md): the migration
//! path. Two tern nodes and two BIRD 2 nodes configured the way Calico configures BIRD
//! (`Mesh_<ip>` protocols, passive by IP string order, graceful restart, add paths,
//! multihop, gateway recursive) in one node-to-node mesh. The addresses make string order
//! differ from numeric order ("10.0.0.10" < "10.0.0.11" < "10.0.0.2" < "10.0.0.9"), so that
//! a wrong passive rule on either side shows up as a missing or doubled connection.

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use interop::cluster::*;
use interop::prelude::*;

const TIMEOUT: Duration = Duration::from_secs(60);
const AS: u32 = 64512;
const POOL: &str = "10.244.0.0/16";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tern,
    Bird,
}

struct NodeDef {
    name: &'static str,
    ip: &'static str,
    kind: Kind,
    block: &'static str,
}

const NODES: [NodeDef; 4] = [
    NodeDef {
        name: "t9",
        ip: "10.0.0.9",
        kind: Kind::Tern,
        block: "10.244.9.0/26",
    },
    NodeDef {
        name: "t10",
        ip: "10.0.0.10",
        kind: Kind::Tern,
        block: "10.244.10.0/26",
    },
    NodeDef {
        name: "b2",
        ip: "10.0.0.2",
        kind: Kind::Bird,
        block: "10.244.2.0/26",
    },
    NodeDef {
        name: "b11",
        ip: "10.0.0.11",
        kind: Kind::Bird,
        block: "10.244.11.0/26",
    },
];

/// Calico's rule: a node is passive towards a peer whose IP string sorts after its own.
fn passive(me: &str, peer: &str) -> bool {
    peer > me
}

/// Established TCP connections in `ns` as (local, peer) `ip:port` pairs.
fn connections(ns: &Netns) -> Result<Vec<(String, String)>> {
    let out = ns.run("ss", ["-Htn", "state", "established"])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4).then(|| (f[2].to_owned(), f[3].to_owned()))
        })
        .collect())
}

/// `10.0.0.9:179` or `[::ffff:10.0.0.9]:179` (a socket accepted on tern's dual-stack
/// listener) as address and port.
fn split(endpoint: &str) -> (&str, &str) {
    let (address, port) = endpoint.rsplit_once(':').unwrap_or((endpoint, ""));
    let address = address.trim_start_matches('[').trim_end_matches(']');
    (address.trim_start_matches("::ffff:"), port)
}

fn bird_established(bird: &Bird, proto: &str) -> Result<Check<()>> {
    let state = bird.bgp_state(proto)?;
    Ok(if state == "Established" {
        Check::Ready(())
    } else {
        pending(format!("{proto}: {state}"))
    })
}

#[test]
fn ns_scenario_mixed_mesh() {
    run_scenario("mixed-mesh", &[BASE, BIRD], |artifacts| {
        let lan = Switch::new("lan")?;
        let mut cluster = CalicoCluster::new(AS).with_pool("no-encap", POOL, IpipMode::Never);
        let mut namespaces = Vec::new();
        for node in &NODES {
            let ns = Netns::new(node.name)?;
            lan.attach(&ns, "eth0", &[&format!("{}/24", node.ip)])?;
            cluster = cluster
                .with_node(node.name, &format!("{}/24", node.ip))
                .with_block(node.name, node.block);
            namespaces.push(ns);
        }
        let mut pcap = artifacts.capture(lan.netns(), BRIDGE, "lan.pcap")?;
        let v4 = [Family::Ipv4Unicast];

        let mut terns = Vec::new();
        let mut birds = Vec::new();
        for (node, ns) in NODES.iter().zip(&namespaces) {
            match node.kind {
                Kind::Tern => {
                    let settings = TernSettings::fast(node.name);
                    terns.push((node, TernNode::start(ns, artifacts, &cluster, settings)?));
                }
                Kind::Bird => {
                    let mut config = BirdConfig::new(node.ip).with_static("blocks", &[node.block]);
                    for peer in NODES.iter().filter(|p| p.name != node.name) {
                        let session = BirdPeer::calico_mesh(node.ip, peer.ip, AS, &v4);
                        ensure!(session.passive == passive(node.ip, peer.ip));
                        config = config.with_peer(session);
                    }
                    birds.push((node, Bird::start(ns, artifacts, node.name, &config)?));
                }
            }
        }

        // 1. Every session Established, as each side reports it.
        for (node, tern) in &mut terns {
            let others: Vec<&str> = NODES
                .iter()
                .filter(|o| o.name != node.name)
                .map(|o| o.ip)
                .collect();
            wait_until(&format!("{} peers Established", node.name), TIMEOUT, || {
                tern.all_established(&others)
            })?;
        }
        for (node, bird) in &birds {
            for peer in NODES.iter().filter(|p| p.name != node.name) {
                let proto = calico_protocol_name("Mesh", peer.ip, None);
                wait_until(
                    &format!("{} {proto} Established", node.name),
                    TIMEOUT,
                    || bird_established(bird, &proto),
                )?;
            }
        }

        // 2. Routes flow both ways: every node has its own block as a blackhole and every
        //    other node's block via that node, in the kernel; BIRD's RIB has the tern blocks.
        for (node, ns) in NODES.iter().zip(&namespaces) {
            wait_until(&format!("{} kernel routes", node.name), TIMEOUT, || {
                let routes = kernel_routes(ns)?;
                let mut wrong = Vec::new();
                for other in &NODES {
                    let route = routes.iter().find(|r| r.dst == other.block);
                    let ok = match route {
                        Some(r) if other.name == node.name => r.is_bird_blackhole(),
                        Some(r) => r.is_plain_via(other.ip, Some("eth0")),
                        None => false,
                    };
                    if !ok {
                        wrong.push(format!(
                            "{}: {}",
                            other.block,
                            route.map_or("none".to_owned(), ToString::to_string)
                        ));
                    }
                }
                Ok(if wrong.is_empty() {
                    Check::Ready(())
                } else {
                    pending(wrong.join("; "))
                })
            })?;
        }
        for (node, bird) in &birds {
            for tern_node in NODES.iter().filter(|n| n.kind == Kind::Tern) {
                wait_until(
                    &format!("{} has {} in birdc show route", node.name, tern_node.block),
                    TIMEOUT,
                    || bird.has_route(tern_node.block),
                )?;
            }
        }

        // 3. Passive and active sides agree: exactly one TCP connection per pair, whose port
        //    179 end is the node that Calico's rule makes passive; tern reports the same rule.
        for (i, a) in NODES.iter().enumerate() {
            let conns = connections(&namespaces[i])?;
            for b in NODES.iter().filter(|b| b.name != a.name) {
                let between: Vec<&(String, String)> = conns
                    .iter()
                    .filter(|(local, peer)| split(local).0 == a.ip && split(peer).0 == b.ip)
                    .collect();
                ensure!(
                    between.len() == 1,
                    "{} <-> {}: want exactly one connection, have {between:?}",
                    a.name,
                    b.name
                );
                let (local, peer) = between[0];
                let accepted_here = split(local).1 == "179";
                let accepted_there = split(peer).1 == "179";
                ensure!(
                    accepted_here != accepted_there,
                    "{} <-> {}: not one port-179 end: {local} {peer}",
                    a.name,
                    b.name
                );
                ensure!(
                    accepted_here == passive(a.ip, b.ip),
                    "{} <-> {}: {} accepted the connection ({local} -> {peer}) but Calico's rule \
                     makes {} passive",
                    a.name,
                    b.name,
                    if accepted_here { a.name } else { b.name },
                    if passive(a.ip, b.ip) { a.name } else { b.name },
                );
            }
        }
        for (node, tern) in &mut terns {
            for peer in tern.peers()? {
                let address = peer["address"].as_str().unwrap_or_default().to_owned();
                ensure!(
                    peer["passive"].as_bool() == Some(passive(node.ip, &address)),
                    "{} reports passive={} towards {address}",
                    node.name,
                    peer["passive"]
                );
            }
        }

        // 4. The sessions stay up past two whole hold times (tern's 9 s is the negotiated
        //    one, so BIRD must send keepalives faster than its configured 80 s): every tern
        //    peer Established for 20 s in a row, no flap, and BIRD still Established.
        //    (tern's per-peer message counters are not filled by the daemon yet, so the age
        //    of the Established state is the measure.)
        for (node, tern) in &mut terns {
            wait_until(
                &format!("{}: every session Established for 20 s", node.name),
                TIMEOUT,
                || {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)?
                        .as_millis() as u64;
                    let young: Vec<String> = tern
                        .peers()?
                        .iter()
                        .filter(|p| {
                            p["state"] != "Established"
                                || now.saturating_sub(p["since"].as_u64().unwrap_or(now)) < 20_000
                        })
                        .map(|p| format!("{} {} since {}", p["address"], p["state"], p["since"]))
                        .collect();
                    Ok(if young.is_empty() {
                        Check::Ready(())
                    } else {
                        pending(young.join("; "))
                    })
                },
            )?;
        }
        for (node, tern) in &mut terns {
            for peer in tern.peers()? {
                if peer["state"] != "Established" || peer["flaps"].as_u64().unwrap_or(0) != 0 {
                    bail!("{}: session not steady: {peer}", node.name);
                }
            }
        }
        for (node, bird) in &birds {
            for peer in NODES.iter().filter(|p| p.name != node.name) {
                let proto = calico_protocol_name("Mesh", peer.ip, None);
                if let Check::Pending(why) = bird_established(bird, &proto)? {
                    bail!("{}: {why}", node.name);
                }
                // BIRD runs the negotiated hold time: tern's 9 s towards tern nodes.
                if peer.kind == Kind::Tern {
                    let detail = bird.birdc(&["show", "protocols", "all", &proto])?;
                    ensure!(
                        detail
                            .lines()
                            .any(|l| l.contains("Hold timer:") && l.trim_end().ends_with("/9")),
                        "{}: {proto} does not run a 9 s hold time: {detail}",
                        node.name
                    );
                }
            }
        }
        pcap.stop()?;
        Ok(())
    });
}
