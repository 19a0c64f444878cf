//! The demo's namespaces: two bridges (one per subnet), a router joining them, a namespace per
//! node with `eth0` on its subnet and a `tunl0` stand-in, and a pod namespace on each node of
//! the ping pair, wired as Calico wires a workload (a `cali*` veth, a /32 route, proxy ARP).
//! Dropping the [`Lab`] deletes every namespace (the harness stops what still runs inside).

use anyhow::{Context, Result};
use interop::netns::{Netns, Switch, veth};

use super::Interrupt;
use crate::demo::DemoCluster;

/// The gateway pods use, as Calico configures them (answered by proxy ARP on the host side).
const POD_GATEWAY: &str = "169.254.1.1";

/// Every namespace of one demo run. Field order is drop order: pods and nodes go before the
/// router and the bridges.
#[derive(Debug)]
pub(super) struct Lab {
    /// `(node name, pod namespace)` for the nodes of the ping pair.
    pods: Vec<(&'static str, Netns)>,
    /// One namespace per node, in [`DemoCluster::nodes`] order.
    pub(super) nodes: Vec<Netns>,
    router: Netns,
    switches: Vec<Switch>,
}

impl Lab {
    /// Creates and wires every namespace of `cluster`.
    pub(super) fn build(cluster: &DemoCluster, interrupt: &Interrupt) -> Result<Lab> {
        // Built bottom-up into locals; on an error, what exists so far is dropped (deleted).
        let mut switches = Vec::new();
        for subnet in &cluster.subnets {
            interrupt.check()?;
            switches.push(Switch::new(&format!("demo-{}", subnet.label))?);
        }
        let router = Netns::new("demo-router")?;
        for (i, (subnet, switch)) in cluster.subnets.iter().zip(&switches).enumerate() {
            let cidr = format!("{}/{}", subnet.gateway, subnet.cidr.prefix_len());
            switch
                .attach(&router, &format!("eth{}", i + 1), &[&cidr])
                .with_context(|| format!("attaching the router to {}", subnet.cidr))?;
        }
        router.enable_forwarding()?;

        let mut nodes = Vec::new();
        let mut pods = Vec::new();
        let (ping_a, ping_b) = cluster.ping_pair();
        for node in &cluster.nodes {
            interrupt.check()?;
            let ns = Netns::new(&format!("demo-{}", node.name))?;
            let subnet = cluster.subnet_of(node);
            switches[node.subnet]
                .attach(&ns, "eth0", &[&node.address.to_string()])
                .with_context(|| format!("attaching {} to {}", node.name, subnet.cidr))?;
            ns.add_route(&format!("default via {}", subnet.gateway))?;
            ns.enable_forwarding()?;
            // The IP-in-IP device stand-in: a veth pair inside the node, `tunl0` holding the
            // tunnel address as calico-node would configure it.
            ns.ip([
                "link",
                "add",
                "tunl0",
                "type",
                "veth",
                "peer",
                "name",
                "tunl0-peer",
            ])?;
            ns.link_up("tunl0-peer")?;
            ns.link_up("tunl0")?;
            ns.add_address("tunl0", &format!("{}/32", node.tunnel_address))?;
            if node.name == ping_a.name || node.name == ping_b.name {
                interrupt.check()?;
                let pod = Netns::new(&format!("demo-pod{}", &node.name[node.name.len() - 1..]))?;
                let host_if = format!("cali{}", node.name.replace('-', ""));
                veth(&ns, &host_if, &pod, "eth0")?;
                pod.add_address("eth0", &format!("{}/32", node.pod_address))?;
                pod.add_route(&format!("{POD_GATEWAY} dev eth0 scope link"))?;
                pod.add_route(&format!("default via {POD_GATEWAY} dev eth0"))?;
                // As Calico does: answer the pod's ARP for the gateway at once (the default
                // proxy delay is up to 0.8 s per reply).
                ns.sysctl(&format!("net.ipv4.conf.{host_if}.proxy_arp"), "1")?;
                ns.sysctl(&format!("net.ipv4.neigh.{host_if}.proxy_delay"), "0")?;
                ns.add_route(&format!("{}/32 dev {host_if} scope link", node.pod_address))?;
                pods.push((node.name, pod));
            }
            nodes.push(ns);
        }
        Ok(Lab {
            pods,
            nodes,
            router,
            switches,
        })
    }

    /// The pod namespace on `node`, when it has one.
    pub(super) fn pod_of(&self, node: &str) -> Option<&Netns> {
        self.pods.iter().find(|(n, _)| *n == node).map(|(_, ns)| ns)
    }

    /// Every namespace's name, bridges first.
    pub(super) fn namespace_names(&self) -> Vec<String> {
        self.switches
            .iter()
            .map(|s| s.netns())
            .chain(std::iter::once(&self.router))
            .chain(&self.nodes)
            .chain(self.pods.iter().map(|(_, ns)| ns))
            .map(|ns| ns.name().to_owned())
            .collect()
    }
}
