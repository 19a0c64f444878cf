//! Scenario 1 of issue 8, `mesh` (interop/scenarios/mesh/README.md): three tern nodes in a
//! Calico full mesh on two subnets joined by a router, one IP-in-IP CrossSubnet pool and one
//! unencapsulated pool. Every node's kernel gets the right route kind per block; killing a
//! node withdraws its routes on the others, which keep each other's.

use std::time::Duration;

use anyhow::{Result, bail};
use interop::cluster::*;
use interop::prelude::*;

const TIMEOUT: Duration = Duration::from_secs(60);
/// Withdrawal after a crash waits for the graceful restart time (15 s) plus detection.
const WITHDRAW_TIMEOUT: Duration = Duration::from_secs(120);
const AS: u32 = 64512;
const ROUTER_A: &str = "10.0.1.1";
const ROUTER_B: &str = "10.0.2.1";
const IPIP_POOL: &str = "10.244.0.0/16";
const PLAIN_POOL: &str = "10.245.0.0/16";

/// A node of the scenario: name, address (CIDR), switch (`a` or `b`), its block number `k`
/// (blocks `10.244.k.0/26` and `10.245.k.0/26`).
struct NodeDef {
    name: &'static str,
    cidr: &'static str,
    subnet: char,
    k: u8,
}

const NODES: [NodeDef; 3] = [
    NodeDef {
        name: "n1",
        cidr: "10.0.1.11/24",
        subnet: 'a',
        k: 1,
    },
    NodeDef {
        name: "n2",
        cidr: "10.0.1.12/24",
        subnet: 'a',
        k: 2,
    },
    NodeDef {
        name: "n3",
        cidr: "10.0.2.13/24",
        subnet: 'b',
        k: 3,
    },
];

impl NodeDef {
    fn ip(&self) -> &'static str {
        self.cidr.split('/').next().unwrap_or(self.cidr)
    }
    fn ipip_block(&self) -> String {
        format!("10.244.{}.0/26", self.k)
    }
    fn plain_block(&self) -> String {
        format!("10.245.{}.0/26", self.k)
    }
    fn router(&self) -> &'static str {
        if self.subnet == 'a' {
            ROUTER_A
        } else {
            ROUTER_B
        }
    }
}

/// The route kind a node must have for a block.
#[derive(Debug)]
enum Expect {
    Blackhole,
    Ipip(&'static str),
    Plain(&'static str),
}

fn matches(route: &KernelRoute, expect: &Expect) -> bool {
    match expect {
        Expect::Blackhole => route.is_bird_blackhole(),
        Expect::Ipip(gw) => route.is_ipip_via(gw),
        Expect::Plain(gw) => route.is_plain_via(gw, Some("eth0")),
    }
}

/// What `me` must have in its kernel for every block of the cluster.
fn expected_routes(me: &NodeDef, up: &[&NodeDef]) -> Vec<(String, Expect)> {
    let mut out = Vec::new();
    for other in up {
        if other.name == me.name {
            out.push((other.ipip_block(), Expect::Blackhole));
            out.push((other.plain_block(), Expect::Blackhole));
        } else if other.subnet == me.subnet {
            // CrossSubnet inside the node's subnet: plain route; no-encap: plain route.
            out.push((other.ipip_block(), Expect::Plain(other.ip())));
            out.push((other.plain_block(), Expect::Plain(other.ip())));
        } else {
            // CrossSubnet across subnets: IP-in-IP to the node's address; no-encap: the next
            // hop resolved recursively through the kernel table (the router).
            out.push((other.ipip_block(), Expect::Ipip(other.ip())));
            out.push((other.plain_block(), Expect::Plain(me.router())));
        }
    }
    out
}

fn routes_ok(ns: &Netns, me: &NodeDef, up: &[&NodeDef]) -> Result<Check<()>> {
    let routes = kernel_routes(ns)?;
    let mut wrong = Vec::new();
    for (prefix, expect) in expected_routes(me, up) {
        match routes.iter().find(|r| r.dst == prefix) {
            Some(r) if matches(r, &expect) => {}
            Some(r) => wrong.push(format!("{prefix}: want {expect:?}, have {r}")),
            None => wrong.push(format!("{prefix}: want {expect:?}, have none")),
        }
    }
    Ok(if wrong.is_empty() {
        Check::Ready(())
    } else {
        pending(format!("{}: {}", me.name, wrong.join("; ")))
    })
}

#[test]
fn ns_scenario_mesh() {
    run_scenario("mesh", &[BASE], |artifacts| {
        let lan_a = Switch::new("lan-a")?;
        let lan_b = Switch::new("lan-b")?;
        let router = Netns::new("router")?;
        lan_a.attach(&router, "eth0", &[&format!("{ROUTER_A}/24")])?;
        lan_b.attach(&router, "eth1", &[&format!("{ROUTER_B}/24")])?;
        router.enable_forwarding()?;

        let mut cluster = CalicoCluster::new(AS)
            .program_cluster_routes("Enabled")
            .with_pool("ipip-cross-subnet", IPIP_POOL, IpipMode::CrossSubnet)
            .with_pool("no-encap", PLAIN_POOL, IpipMode::Never);
        let mut namespaces = Vec::new();
        for node in &NODES {
            let ns = Netns::new(node.name)?;
            let (switch, other_subnet) = if node.subnet == 'a' {
                (&lan_a, "10.0.2.0/24")
            } else {
                (&lan_b, "10.0.1.0/24")
            };
            switch.attach(&ns, "eth0", &[node.cidr])?;
            ns.add_route(&format!("{other_subnet} via {}", node.router()))?;
            add_tunl0(&ns, &format!("10.244.{}.1/32", node.k))?;
            cluster = cluster
                .with_node(node.name, node.cidr)
                .with_block(node.name, &node.ipip_block())
                .with_block(node.name, &node.plain_block());
            namespaces.push(ns);
        }
        let mut pcap_a = artifacts.capture(lan_a.netns(), BRIDGE, "lan-a.pcap")?;
        let mut pcap_b = artifacts.capture(lan_b.netns(), BRIDGE, "lan-b.pcap")?;

        let mut terns = Vec::new();
        for (node, ns) in NODES.iter().zip(&namespaces) {
            terns.push(TernNode::start(
                ns,
                artifacts,
                &cluster,
                TernSettings::fast(node.name),
            )?);
        }

        // 1. Every node sees the two others Established.
        for (i, node) in NODES.iter().enumerate() {
            let others: Vec<&str> = NODES
                .iter()
                .filter(|o| o.name != node.name)
                .map(|o| o.ip())
                .collect();
            let tern = &mut terns[i];
            wait_until(&format!("{} peers Established", node.name), TIMEOUT, || {
                tern.all_established(&others)
            })?;
        }

        // 2. Kernel routes on every node: own blocks blackholes, CrossSubnet pool via tunl0
        //    onlink across subnets and plain inside, no-encap pool plain (recursive).
        let all: Vec<&NodeDef> = NODES.iter().collect();
        for (node, ns) in NODES.iter().zip(&namespaces) {
            wait_until(&format!("{} kernel routes", node.name), TIMEOUT, || {
                routes_ok(ns, node, &all)
            })?;
        }

        // 3. n3 crashes (SIGKILL: no NOTIFICATION, no chance to withdraw). n1 and n2 drop its
        //    routes once the graceful restart time it advertised has passed without it
        //    coming back, and keep each other's routes and session throughout.
        terns[2].kill()?;
        let survivors: Vec<&NodeDef> = NODES[..2].iter().collect();
        let n3 = &NODES[2];
        for (i, (node, ns)) in NODES[..2].iter().zip(&namespaces).enumerate() {
            wait_until(
                &format!("{}: n3's blocks withdrawn", node.name),
                WITHDRAW_TIMEOUT,
                || {
                    let routes = kernel_routes(ns)?;
                    let left: Vec<String> = routes
                        .iter()
                        .filter(|r| r.dst == n3.ipip_block() || r.dst == n3.plain_block())
                        .map(ToString::to_string)
                        .collect();
                    // Meanwhile the survivors keep each other's routes.
                    if let Check::Pending(why) = routes_ok(ns, node, &survivors)? {
                        bail!("lost a survivor's route while n3 was down: {why}");
                    }
                    Ok(if left.is_empty() {
                        Check::Ready(())
                    } else {
                        pending(format!("still there: {}", left.join("; ")))
                    })
                },
            )?;
            let survivor = NODES[1 - i].ip();
            let tern = &mut terns[i];
            let peer = tern.peer(n3.ip())?;
            if peer.as_ref().map(|p| p["state"] == "Established") == Some(true) {
                bail!("{} still reports n3 Established: {peer:?}", node.name);
            }
            if let Check::Pending(why) = tern.all_established(&[survivor])? {
                bail!("survivor session lost: {why}");
            }
            if let Check::Pending(why) = routes_ok(ns, node, &survivors)? {
                bail!("survivor routes after n3's withdrawal: {why}");
            }
        }
        pcap_a.stop()?;
        pcap_b.stop()?;
        Ok(())
    });
}
