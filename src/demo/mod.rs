//! The cluster `tern demo` builds, as data: three nodes on two subnets joined by a router, one
//! IP-in-IP CrossSubnet pool, a full mesh or a route reflector. Everything here is pure: the
//! Calico manifests and each node's settings file are rendered as text, and the convergence
//! expectations (which blocks each kernel must learn, which route shape each takes) are computed
//! from the same description. The namespaces and processes live in [`crate::io::demo`].

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use crate::model::{Cluster, load_documents};
use crate::plan::{Plan, PlanOptions, compute};

/// How the demo nodes peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Topology {
    /// Calico's default node-to-node mesh: every node peers with every other.
    #[default]
    Mesh,
    /// Mesh off; one node is a route reflector, the others peer only with it (selected by
    /// label, as Calico's documentation configures it).
    RouteReflector,
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Topology::Mesh => "full mesh",
            Topology::RouteReflector => "route reflector",
        })
    }
}

/// One subnet of the demo (a bridge with the router on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSubnet {
    /// Short label (namespace label of its bridge).
    pub label: &'static str,
    /// The subnet, with the router's address as gateway.
    pub cidr: Ipv4Net,
    /// The router's address on this subnet (the nodes' default gateway).
    pub gateway: Ipv4Addr,
}

/// One demo node: a Calico `Node`, its IPAM block and a pod address inside the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoNode {
    /// Calico node name (also the namespace label).
    pub name: &'static str,
    /// Index into [`DemoCluster::subnets`].
    pub subnet: usize,
    /// The node's address with its subnet prefix (`spec.bgp.ipv4Address`).
    pub address: Ipv4Net,
    /// The node's confirmed host block (BlockAffinity).
    pub block: Ipv4Net,
    /// The address of `tunl0` (`spec.bgp.ipv4IPIPTunnelAddr`), inside the block.
    pub tunnel_address: Ipv4Addr,
    /// A "pod" address inside the block (the ping's endpoints).
    pub pod_address: Ipv4Addr,
    /// The node is the route reflector (`--topology rr`).
    pub route_reflector: bool,
}

/// How a node's kernel reaches another node's block under the CrossSubnet pool
/// (calico-behaviour.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteShape {
    /// Same subnet: a plain route `via <node> dev eth0`.
    Direct,
    /// Another subnet: `via <node> dev tunl0 onlink` (IP-in-IP).
    Tunnel,
}

/// The whole demo cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCluster {
    /// Mesh or route reflector.
    pub topology: Topology,
    /// The cluster AS (BGPConfiguration `asNumber`).
    pub as_number: u32,
    /// The IP pool (IP-in-IP CrossSubnet).
    pub pool: Ipv4Net,
    /// Route-reflector cluster id of the reflector node.
    pub cluster_id: Ipv4Addr,
    /// The two subnets.
    pub subnets: Vec<DemoSubnet>,
    /// The three nodes.
    pub nodes: Vec<DemoNode>,
}

/// Name of the pool in the manifests.
pub const POOL_NAME: &str = "demo-ipip-crosssubnet";

fn net(text: &str) -> Ipv4Net {
    text.parse().expect("demo constant is a valid CIDR")
}

fn addr(text: &str) -> Ipv4Addr {
    text.parse().expect("demo constant is a valid address")
}

impl DemoCluster {
    /// The demo cluster: node-1 and node-2 on 10.0.1.0/24, node-3 on 10.0.2.0/24, pool
    /// 10.244.0.0/16 with one /26 block per node. With [`Topology::RouteReflector`], node-3 (the
    /// node across the router) is the reflector, so reflected routes between node-1 and node-2
    /// show that iBGP keeps the original next hop.
    pub fn new(topology: Topology) -> DemoCluster {
        let node = |name, subnet, address: &str, third_octet: u8| {
            let block = Ipv4Net::new(Ipv4Addr::new(10, 244, third_octet, 0), 26)
                .expect("a /26 is a valid prefix");
            DemoNode {
                name,
                subnet,
                address: net(address),
                block,
                tunnel_address: Ipv4Addr::new(10, 244, third_octet, 1),
                pod_address: Ipv4Addr::new(10, 244, third_octet, 10),
                route_reflector: topology == Topology::RouteReflector && name == "node-3",
            }
        };
        DemoCluster {
            topology,
            as_number: 64512,
            pool: net("10.244.0.0/16"),
            cluster_id: addr("224.0.0.1"),
            subnets: vec![
                DemoSubnet {
                    label: "lan1",
                    cidr: net("10.0.1.0/24"),
                    gateway: addr("10.0.1.1"),
                },
                DemoSubnet {
                    label: "lan2",
                    cidr: net("10.0.2.0/24"),
                    gateway: addr("10.0.2.1"),
                },
            ],
            nodes: vec![
                node("node-1", 0, "10.0.1.11/24", 1),
                node("node-2", 0, "10.0.1.12/24", 2),
                node("node-3", 1, "10.0.2.13/24", 3),
            ],
        }
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> Option<&DemoNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The subnet a node is on.
    pub fn subnet_of(&self, node: &DemoNode) -> &DemoSubnet {
        &self.subnets[node.subnet]
    }

    /// The blocks `node`'s kernel must learn from the others, each with the shape its route
    /// takes (CrossSubnet: plain within the subnet, `tunl0` across the router).
    pub fn remote_blocks(&self, node: &DemoNode) -> Vec<(Ipv4Net, Ipv4Addr, RouteShape)> {
        self.nodes
            .iter()
            .filter(|other| other.name != node.name)
            .map(|other| {
                let shape = if other.subnet == node.subnet {
                    RouteShape::Direct
                } else {
                    RouteShape::Tunnel
                };
                (other.block, other.address.addr(), shape)
            })
            .collect()
    }

    /// The two nodes whose pods ping each other: the first two nodes sharing a subnet, where
    /// CrossSubnet routes are plain `via` routes that a veth can carry (the `tunl0` stand-in
    /// cannot encapsulate).
    pub fn ping_pair(&self) -> (&DemoNode, &DemoNode) {
        for (i, a) in self.nodes.iter().enumerate() {
            if let Some(b) = self.nodes[i + 1..].iter().find(|b| b.subnet == a.subnet) {
                return (a, b);
            }
        }
        unreachable!("the demo cluster has two nodes on one subnet")
    }

    /// The Calico resources of the cluster (one multi-document YAML file), as `calicoctl`
    /// would apply them: BGPConfiguration, FelixConfiguration, IPPool, Nodes, BlockAffinities
    /// and, for the route-reflector topology, the BGPPeer joining clients to the reflector.
    pub fn manifests(&self) -> String {
        let mesh = self.topology == Topology::Mesh;
        let mut out = format!(
            "# Generated by `tern demo` ({topology}).\n\
             apiVersion: projectcalico.org/v3\n\
             kind: BGPConfiguration\n\
             metadata: {{name: default}}\n\
             spec:\n  \
               asNumber: {asn}\n  \
               nodeToNodeMeshEnabled: {mesh}\n  \
               # tern programs the IP-in-IP pool's routes (Felix does not, below).\n  \
               programClusterRoutes: Enabled\n\
             ---\n\
             apiVersion: projectcalico.org/v3\n\
             kind: FelixConfiguration\n\
             metadata: {{name: default}}\n\
             spec: {{programClusterRoutes: Disabled}}\n\
             ---\n\
             apiVersion: projectcalico.org/v3\n\
             kind: IPPool\n\
             metadata: {{name: {POOL_NAME}}}\n\
             spec: {{cidr: {pool}, ipipMode: CrossSubnet, vxlanMode: Never, blockSize: 26, natOutgoing: false}}\n",
            topology = self.topology,
            asn = self.as_number,
            pool = self.pool,
        );
        for node in &self.nodes {
            let (labels, rr) = if node.route_reflector {
                (
                    format!(
                        "{{kubernetes.io/hostname: {}, route-reflector: \"true\"}}",
                        node.name
                    ),
                    format!(", routeReflectorClusterID: {}", self.cluster_id),
                )
            } else {
                (
                    format!("{{kubernetes.io/hostname: {}}}", node.name),
                    String::new(),
                )
            };
            out += &format!(
                "---\n\
                 apiVersion: projectcalico.org/v3\n\
                 kind: Node\n\
                 metadata: {{name: {name}, labels: {labels}}}\n\
                 spec:\n  \
                   bgp: {{ipv4Address: {address}, ipv4IPIPTunnelAddr: {tunnel}{rr}}}\n",
                name = node.name,
                address = node.address,
                tunnel = node.tunnel_address,
            );
        }
        for node in &self.nodes {
            out += &format!(
                "---\n\
                 apiVersion: projectcalico.org/v3\n\
                 kind: BlockAffinity\n\
                 metadata: {{name: {name}-{block_name}}}\n\
                 spec: {{state: confirmed, node: {name}, cidr: {block}, type: host, deleted: false}}\n",
                name = node.name,
                block_name = node.block.to_string().replace(['.', '/'], "-"),
                block = node.block,
            );
        }
        if !mesh {
            out += "---\n\
                    apiVersion: projectcalico.org/v3\n\
                    kind: BGPPeer\n\
                    metadata: {name: peer-with-route-reflectors}\n\
                    spec:\n  \
                      nodeSelector: \"!has(route-reflector)\"\n  \
                      peerSelector: has(route-reflector)\n";
        }
        out
    }
}

/// Each node's peering plan, computed from [`DemoCluster::manifests`] by the same planner the
/// daemon runs: the generated manifests are checked before anything is started, and the plans
/// name the sessions each node must bring up.
pub fn plans(cluster: &DemoCluster) -> Result<Vec<Plan>, String> {
    let mut resources = Cluster::default();
    load_documents(
        &mut resources,
        Path::new("cluster.yaml"),
        &cluster.manifests(),
        "kube-system",
    );
    if let Some(problem) = resources.problems.first() {
        return Err(format!("generated manifests: {problem}"));
    }
    cluster
        .nodes
        .iter()
        .map(|node| {
            compute(&resources, node.name, &PlanOptions::default())
                .map_err(|e| format!("plan of {}: {e}", node.name))
        })
        .collect()
}

/// The files of one demo node, all under the run's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFiles {
    /// The settings file (TOML).
    pub settings: PathBuf,
    /// tern's control socket (`tern show ... --socket`).
    pub control_socket: PathBuf,
    /// The BIRD-compatible IPv4 socket (`birdc -s`).
    pub bird_socket: PathBuf,
    /// The BIRD-compatible IPv6 socket.
    pub bird6_socket: PathBuf,
    /// The daemon's log (stdout and stderr).
    pub log: PathBuf,
}

impl NodeFiles {
    /// The files of node `name` under `run_dir` (`<run_dir>/<name>/...`).
    pub fn under(run_dir: &Path, name: &str) -> NodeFiles {
        let dir = run_dir.join(name);
        NodeFiles {
            settings: dir.join("tern.toml"),
            control_socket: dir.join("tern.ctl"),
            bird_socket: dir.join("bird.ctl"),
            bird6_socket: dir.join("bird6.ctl"),
            log: dir.join("tern.log"),
        }
    }
}

/// A TOML string literal (basic string, escaped).
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The settings file of one node: its name, the shared manifests directory, its own control
/// and BIRD-compatible sockets. Metrics stay on the default loopback address, which is private
/// to each node's namespace.
pub fn node_settings(node: &DemoNode, manifests_dir: &Path, files: &NodeFiles) -> String {
    format!(
        "# Generated by `tern demo` for {name}.\n\
         node_name = {name_literal}\n\
         \n\
         [datastore]\n\
         type = \"file\"\n\
         paths = [{manifests}]\n\
         debounce_ms = 100\n\
         \n\
         [control]\n\
         socket = {control}\n\
         \n\
         [birdctl]\n\
         socket = {bird}\n\
         socket6 = {bird6}\n\
         \n\
         [metrics]\n\
         address = \"127.0.0.1:9179\"\n",
        name = node.name,
        name_literal = toml_string(node.name),
        manifests = toml_string(&manifests_dir.display().to_string()),
        control = toml_string(&files.control_socket.display().to_string()),
        bird = toml_string(&files.bird_socket.display().to_string()),
        bird6 = toml_string(&files.bird6_socket.display().to_string()),
    )
}

#[cfg(test)]
mod tests;
