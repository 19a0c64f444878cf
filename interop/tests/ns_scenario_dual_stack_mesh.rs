//! Scenario `dual-stack-mesh` (interop/scenarios/dual-stack-mesh/README.md): two tern nodes and
//! one BIRD 2 node, each with an IPv4 and an IPv6 address, an IPv4 and an IPv6 pool and a block
//! of each, in Calico's node-to-node mesh: one session per address family and pair (the IPv4
//! session negotiates IPv4 unicast only, the IPv6 one IPv6 unicast only, as confd's `bird.cfg`
//! and `bird6.cfg` do). The capture of the whole LAN shows no UPDATE of a family its session did
//! not negotiate (RFC 4760 §5), and every kernel has both families' routes. A global BGPPeer
//! whose Secret is missing stays down and `tern show peers` says why.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use interop::cluster::*;
use interop::netns::run_host;
use interop::prelude::*;

const TIMEOUT: Duration = Duration::from_secs(60);
const AS: u32 = 64512;
const POOL_V4: &str = "10.244.0.0/16";
const POOL_V6: &str = "fd00:244::/48";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tern,
    Bird,
}

struct NodeDef {
    name: &'static str,
    v4: &'static str,
    v6: &'static str,
    kind: Kind,
    block_v4: &'static str,
    block_v6: &'static str,
}

const NODES: [NodeDef; 3] = [
    NodeDef {
        name: "t1",
        v4: "10.0.0.1",
        v6: "fd00::1",
        kind: Kind::Tern,
        block_v4: "10.244.1.0/26",
        block_v6: "fd00:244:0:1::/122",
    },
    NodeDef {
        name: "t2",
        v4: "10.0.0.2",
        v6: "fd00::2",
        kind: Kind::Tern,
        block_v4: "10.244.2.0/26",
        block_v6: "fd00:244:0:2::/122",
    },
    NodeDef {
        name: "b3",
        v4: "10.0.0.3",
        v6: "fd00::3",
        kind: Kind::Bird,
        block_v4: "10.244.3.0/26",
        block_v6: "fd00:244:0:3::/122",
    },
];

/// A global BGPPeer whose password Secret does not exist: tern keeps it down (fail closed).
const NO_SECRET_PEER: &str = "apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor}
spec:
  peerIP: 10.0.0.254
  asNumber: 65000
  password:
    secretKeyRef: {name: missing, key: tor}";

fn bird_established(bird: &Bird, proto: &str) -> Result<Check<()>> {
    let state = bird.bgp_state(proto)?;
    Ok(if state == "Established" {
        Check::Ready(())
    } else {
        pending(format!("{proto}: {state}"))
    })
}

/// Whether `route` is a route of tern's or BIRD's protocol towards `node` (IPv4: via its
/// address on eth0; IPv6: via its address or its link-local address on eth0).
fn via_node(route: &KernelRoute, node: &NodeDef, v6: bool) -> bool {
    let gateway = route.gateway.as_deref().unwrap_or_default();
    let right_gateway = if v6 {
        gateway == node.v6 || gateway.starts_with("fe80:")
    } else {
        gateway == node.v4
    };
    route.kind == "unicast"
        && route.protocol == "bird"
        && right_gateway
        && route.dev.as_deref() == Some("eth0")
}

/// One BGP message frame of the capture, as tshark dissects it.
struct Frame {
    stream: String,
    source: String,
    types: Vec<u8>,
    /// AFIs of the Multiprotocol capabilities in an OPEN.
    mp_afis: BTreeSet<u16>,
    /// AFIs an UPDATE carries routes or withdrawals of: 1 for classic NLRI / withdrawn routes,
    /// the AFI of MP_REACH_NLRI / MP_UNREACH_NLRI (End-of-RIB included).
    update_afis: BTreeSet<u16>,
}

fn afis(field: &str) -> BTreeSet<u16> {
    field
        .split(',')
        .filter_map(|a| a.trim().parse().ok())
        .collect()
}

fn frames(pcap: &std::path::Path) -> Result<Vec<Frame>> {
    let out = run_host(
        "tshark",
        [
            "-r",
            pcap.to_str().context("pcap path")?,
            "-Y",
            "bgp",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
            "-e",
            "tcp.stream",
            "-e",
            "ip.src",
            "-e",
            "ipv6.src",
            "-e",
            "bgp.type",
            "-e",
            "bgp.cap.mp.afi",
            "-e",
            "bgp.nlri_prefix",
            "-e",
            "bgp.withdrawn_prefix",
            "-e",
            "bgp.update.path_attribute.mp_reach_nlri.afi",
            "-e",
            "bgp.update.path_attribute.mp_unreach_nlri.afi",
        ],
    )?;
    let mut frames = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('|').collect();
        ensure!(f.len() == 9, "unexpected tshark line: {line}");
        let mut update_afis = afis(f[7]);
        update_afis.extend(afis(f[8]));
        if !f[5].is_empty() || !f[6].is_empty() {
            update_afis.insert(1);
        }
        frames.push(Frame {
            stream: f[0].to_owned(),
            source: if f[1].is_empty() { f[2] } else { f[1] }.to_owned(),
            types: f[3]
                .split(',')
                .filter_map(|t| t.trim().parse().ok())
                .collect(),
            mp_afis: afis(f[4]),
            update_afis,
        });
    }
    Ok(frames)
}

#[test]
fn ns_scenario_dual_stack_mesh() {
    run_scenario("dual-stack-mesh", &[BASE, BIRD, TSHARK], |artifacts| {
        let lan = Switch::new("lan")?;
        let mut cluster = CalicoCluster::new(AS)
            .with_pool("v4", POOL_V4, IpipMode::Never)
            .with_pool("v6", POOL_V6, IpipMode::Never)
            .with_document(NO_SECRET_PEER);
        let mut namespaces = Vec::new();
        for node in &NODES {
            let ns = Netns::new(node.name)?;
            lan.attach(
                &ns,
                "eth0",
                &[&format!("{}/24", node.v4), &format!("{}/64", node.v6)],
            )?;
            cluster = cluster
                .with_dual_stack_node(
                    node.name,
                    &format!("{}/24", node.v4),
                    &format!("{}/64", node.v6),
                )
                .with_block(node.name, node.block_v4)
                .with_block(node.name, node.block_v6);
            namespaces.push(ns);
        }
        let mut pcap = artifacts.capture(lan.netns(), BRIDGE, "lan.pcap")?;

        let mut terns = Vec::new();
        let mut birds = Vec::new();
        for (node, ns) in NODES.iter().zip(&namespaces) {
            match node.kind {
                Kind::Tern => {
                    let settings = TernSettings::fast(node.name);
                    terns.push((node, TernNode::start(ns, artifacts, &cluster, settings)?));
                }
                Kind::Bird => {
                    let mut config = BirdConfig::new(node.v4)
                        .with_static("blocks", &[node.block_v4])
                        .with_static("blocks6", &[node.block_v6]);
                    for peer in NODES.iter().filter(|p| p.name != node.name) {
                        config = config
                            .with_peer(BirdPeer::calico_mesh(
                                node.v4,
                                peer.v4,
                                AS,
                                &[Family::Ipv4Unicast],
                            ))
                            .with_peer(BirdPeer::calico_mesh(
                                node.v6,
                                peer.v6,
                                AS,
                                &[Family::Ipv6Unicast],
                            ));
                    }
                    birds.push((node, Bird::start(ns, artifacts, node.name, &config)?));
                }
            }
        }

        // 1. Every session of both families Established, as each side reports it.
        for (node, tern) in &mut terns {
            let others: Vec<&str> = NODES
                .iter()
                .filter(|o| o.name != node.name)
                .flat_map(|o| [o.v4, o.v6])
                .collect();
            wait_until(&format!("{} peers Established", node.name), TIMEOUT, || {
                tern.all_established(&others)
            })?;
        }
        for (node, bird) in &birds {
            for peer in NODES.iter().filter(|p| p.name != node.name) {
                for address in [peer.v4, peer.v6] {
                    let proto = calico_protocol_name("Mesh", address, None);
                    wait_until(
                        &format!("{} {proto} Established", node.name),
                        TIMEOUT,
                        || bird_established(bird, &proto),
                    )?;
                }
            }
        }

        // 2. Both families' routes in every kernel: the node's own blocks as blackholes, every
        //    other node's IPv4 block via its IPv4 address and IPv6 block via its IPv6 address.
        for (node, ns) in NODES.iter().zip(&namespaces) {
            wait_until(&format!("{} kernel routes", node.name), TIMEOUT, || {
                let mut routes = kernel_routes(ns)?;
                routes.extend(kernel_routes_v6(ns)?);
                let mut wrong = Vec::new();
                for other in &NODES {
                    for (block, v6) in [(other.block_v4, false), (other.block_v6, true)] {
                        let route = routes.iter().find(|r| r.dst == block);
                        let ok = match route {
                            Some(r) if other.name == node.name => r.is_bird_blackhole(),
                            Some(r) => via_node(r, other, v6),
                            None => false,
                        };
                        if !ok {
                            wrong.push(format!(
                                "{block}: {}",
                                route.map_or("none".to_owned(), ToString::to_string)
                            ));
                        }
                    }
                }
                Ok(if wrong.is_empty() {
                    Check::Ready(())
                } else {
                    pending(wrong.join("; "))
                })
            })?;
        }

        // 3. The peer whose Secret is missing stays down, and tern says exactly why.
        for (node, tern) in &mut terns {
            let tor = tern
                .peer("10.0.0.254")?
                .with_context(|| format!("{}: no peer 10.0.0.254", node.name))?;
            ensure!(
                tor["state"] != "Established",
                "{}: a peer without its password came up: {tor}",
                node.name
            );
            let text = tern.show_text(&["peers"])?;
            let line = text
                .lines()
                .find(|l| l.starts_with("Global_10_0_0_254"))
                .with_context(|| format!("{}: no Global_10_0_0_254 in:\n{text}", node.name))?;
            ensure!(
                line.contains("TCP-MD5 password unavailable: Secret kube-system/missing not found")
                    && line.contains("session kept down"),
                "{}: show peers does not say why: {line}",
                node.name
            );
        }

        // 4. The capture: every UPDATE carries only families both sides of its session
        //    advertised in their OPENs; and both families did flow.
        let pcap_path = pcap.stop()?;
        let frames = frames(&pcap_path)?;
        let mut offered: BTreeMap<(String, String), BTreeSet<u16>> = BTreeMap::new();
        for f in frames.iter().filter(|f| f.types.contains(&1)) {
            offered
                .entry((f.stream.clone(), f.source.clone()))
                .or_default()
                .extend(&f.mp_afis);
        }
        let mut negotiated: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
        for ((stream, _), afis) in &offered {
            negotiated
                .entry(stream.clone())
                .and_modify(|n| *n = n.intersection(afis).copied().collect())
                .or_insert_with(|| afis.clone());
        }
        let mut violations = Vec::new();
        let mut seen: BTreeSet<u16> = BTreeSet::new();
        let mut updates = 0;
        for f in frames.iter().filter(|f| f.types.contains(&2)) {
            updates += 1;
            let Some(allowed) = negotiated.get(&f.stream) else {
                violations.push(format!("stream {}: UPDATE before both OPENs", f.stream));
                continue;
            };
            for afi in &f.update_afis {
                seen.insert(*afi);
                if !allowed.contains(afi) {
                    violations.push(format!(
                        "stream {} from {}: UPDATE of AFI {afi}, negotiated {allowed:?}",
                        f.stream, f.source
                    ));
                }
            }
        }
        ensure!(
            violations.is_empty(),
            "UPDATEs of families not negotiated:\n{}",
            violations.join("\n")
        );
        ensure!(
            updates > 0 && seen.contains(&1) && seen.contains(&2),
            "the capture has {updates} UPDATE frames with AFIs {seen:?}: both families expected"
        );
        ensure!(
            negotiated.values().all(|n| n.len() == 1),
            "every session negotiates one family: {negotiated:?}"
        );
        Ok(())
    });
}
