//! Calico clusters of `tern` nodes: the Calico resources (BGPConfiguration, FelixConfiguration,
//! Nodes, IPPools, BlockAffinities) written as YAML manifests per node, each node's TOML
//! settings, `tern run` started in the node's namespace, and `tern show ... --json` queries.
//!
//! ```no_run
//! # use interop::prelude::*;
//! use interop::cluster::*;
//! # fn body(artifacts: &Artifacts, ns: &Netns) -> anyhow::Result<()> {
//! let cluster = CalicoCluster::new(64512)
//!     .with_pool("ipip", "10.244.0.0/16", IpipMode::CrossSubnet)
//!     .with_node("n1", "10.0.0.1/24")
//!     .with_block("n1", "10.244.1.0/26");
//! let mut n1 = TernNode::start(ns, artifacts, &cluster, TernSettings::fast("n1"))?;
//! let peers = n1.peers()?;
//! # Ok(()) }
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;
use serde_json::Value;

use crate::artifacts::Artifacts;
use crate::netns::Netns;
use crate::peers::tern::tern_binary;
use crate::process::Process;
use crate::wait::{Check, pending};

/// IP-in-IP mode of an IPPool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpipMode {
    /// No encapsulation (`ipipMode: Never`).
    Never,
    /// Always IP-in-IP.
    Always,
    /// IP-in-IP only towards nodes outside this node's subnet.
    CrossSubnet,
}

impl IpipMode {
    fn as_str(self) -> &'static str {
        match self {
            IpipMode::Never => "Never",
            IpipMode::Always => "Always",
            IpipMode::CrossSubnet => "CrossSubnet",
        }
    }
}

/// An IPPool.
#[derive(Debug, Clone)]
pub struct Pool {
    /// Resource name.
    pub name: String,
    /// The pool's CIDR.
    pub cidr: String,
    /// IP-in-IP mode.
    pub ipip: IpipMode,
}

/// A Calico Node.
#[derive(Debug, Clone)]
pub struct ClusterNode {
    /// Node name.
    pub name: String,
    /// `spec.bgp.ipv4Address` in CIDR form (the prefix length is the node's subnet).
    pub ipv4_address: String,
    /// `spec.bgp.ipv6Address` in CIDR form, for a dual-stack node.
    pub ipv6_address: Option<String>,
}

/// A confirmed host BlockAffinity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Owning node.
    pub node: String,
    /// Block CIDR.
    pub cidr: String,
}

/// The Calico resources of a cluster (every node gets the same manifests).
#[derive(Debug, Clone)]
pub struct CalicoCluster {
    /// Global AS (`BGPConfiguration default` `asNumber`).
    pub as_number: u32,
    /// `programClusterRoutes` of BGPConfiguration (`Enabled` makes tern program IPIP pools
    /// too; FelixConfiguration is then written with `Disabled`, so that neither warns).
    pub program_cluster_routes: Option<String>,
    /// `nodeMeshMaxRestartTime` (e.g. `10s`).
    pub mesh_restart_time: Option<String>,
    /// IPPools.
    pub pools: Vec<Pool>,
    /// Nodes.
    pub nodes: Vec<ClusterNode>,
    /// Confirmed block affinities.
    pub blocks: Vec<Block>,
    /// Further resources (BGPPeer, BGPFilter, ...) as YAML documents without `---`.
    pub documents: Vec<String>,
}

impl CalicoCluster {
    /// An empty cluster with the node-to-node mesh on in AS `as_number`.
    pub fn new(as_number: u32) -> CalicoCluster {
        CalicoCluster {
            as_number,
            program_cluster_routes: None,
            mesh_restart_time: None,
            pools: Vec::new(),
            nodes: Vec::new(),
            blocks: Vec::new(),
            documents: Vec::new(),
        }
    }

    /// Adds any resource, written as one YAML document (without the `---`), e.g. a BGPPeer.
    pub fn with_document(mut self, document: &str) -> CalicoCluster {
        self.documents.push(document.trim().to_owned());
        self
    }

    /// Sets BGPConfiguration `programClusterRoutes` (and FelixConfiguration's to the
    /// complement `Disabled` when it is `Enabled`).
    pub fn program_cluster_routes(mut self, value: &str) -> CalicoCluster {
        self.program_cluster_routes = Some(value.to_owned());
        self
    }

    /// Sets `nodeMeshMaxRestartTime` (the graceful restart time of mesh sessions).
    pub fn mesh_restart_time(mut self, value: &str) -> CalicoCluster {
        self.mesh_restart_time = Some(value.to_owned());
        self
    }

    /// Adds an IPPool (block size 26).
    pub fn with_pool(mut self, name: &str, cidr: &str, ipip: IpipMode) -> CalicoCluster {
        self.pools.push(Pool {
            name: name.to_owned(),
            cidr: cidr.to_owned(),
            ipip,
        });
        self
    }

    /// Adds a Node with `ipv4Address` in CIDR form (`10.0.1.11/24`).
    pub fn with_node(mut self, name: &str, ipv4_cidr: &str) -> CalicoCluster {
        self.nodes.push(ClusterNode {
            name: name.to_owned(),
            ipv4_address: ipv4_cidr.to_owned(),
            ipv6_address: None,
        });
        self
    }

    /// Adds a dual-stack Node with `ipv4Address` and `ipv6Address` in CIDR form.
    pub fn with_dual_stack_node(
        mut self,
        name: &str,
        ipv4_cidr: &str,
        ipv6_cidr: &str,
    ) -> CalicoCluster {
        self.nodes.push(ClusterNode {
            name: name.to_owned(),
            ipv4_address: ipv4_cidr.to_owned(),
            ipv6_address: Some(ipv6_cidr.to_owned()),
        });
        self
    }

    /// Adds a confirmed host block affinity of `node`.
    pub fn with_block(mut self, node: &str, cidr: &str) -> CalicoCluster {
        self.blocks.push(Block {
            node: node.to_owned(),
            cidr: cidr.to_owned(),
        });
        self
    }

    /// The same cluster without the block affinity `cidr`.
    pub fn without_block(&self, cidr: &str) -> CalicoCluster {
        let mut cluster = self.clone();
        cluster.blocks.retain(|b| b.cidr != cidr);
        cluster
    }

    /// The node's address without the prefix length.
    pub fn node_ip(&self, node: &str) -> Option<&str> {
        self.nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| crate::peers::host_part(&n.ipv4_address))
    }

    /// The blocks of `node`.
    pub fn blocks_of(&self, node: &str) -> Vec<&str> {
        self.blocks
            .iter()
            .filter(|b| b.node == node)
            .map(|b| b.cidr.as_str())
            .collect()
    }

    /// The resources as one YAML stream (`projectcalico.org/v3`).
    pub fn manifests(&self) -> String {
        let mut y = String::new();
        let _ = writeln!(y, "# written by the tern interop harness");
        let _ = writeln!(
            y,
            "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {{name: default}}\nspec:\n  asNumber: {}\n  nodeToNodeMeshEnabled: true",
            self.as_number
        );
        if let Some(value) = &self.program_cluster_routes {
            let _ = writeln!(y, "  programClusterRoutes: {value}");
        }
        if let Some(value) = &self.mesh_restart_time {
            let _ = writeln!(y, "  nodeMeshMaxRestartTime: {value}");
        }
        if self.program_cluster_routes.as_deref() == Some("Enabled") {
            let _ = writeln!(
                y,
                "---\napiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {{name: default}}\nspec:\n  programClusterRoutes: Disabled"
            );
        }
        for pool in &self.pools {
            let _ = writeln!(
                y,
                "---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: {}}}\nspec:\n  cidr: \"{}\"\n  ipipMode: {}\n  vxlanMode: Never\n  blockSize: {}",
                pool.name,
                pool.cidr,
                pool.ipip.as_str(),
                if pool.cidr.contains(':') { 122 } else { 26 }
            );
        }
        for node in &self.nodes {
            let v6 = node
                .ipv6_address
                .as_ref()
                .map(|a| format!(", ipv6Address: \"{a}\""))
                .unwrap_or_default();
            let _ = writeln!(
                y,
                "---\napiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {{name: {}}}\nspec:\n  bgp: {{ipv4Address: {}{v6}}}",
                node.name, node.ipv4_address
            );
        }
        for block in &self.blocks {
            let _ = writeln!(
                y,
                "---\napiVersion: projectcalico.org/v3\nkind: BlockAffinity\nmetadata: {{name: {}-{}}}\nspec: {{state: confirmed, node: {}, cidr: \"{}\", type: host, deleted: false}}",
                block.node,
                block.cidr.replace(['.', '/', ':'], "-"),
                block.node,
                block.cidr
            );
        }
        for document in &self.documents {
            let _ = writeln!(y, "---\n{document}");
        }
        y
    }
}

/// A tern node's own settings (the TOML file), with short timers for tests.
#[derive(Debug, Clone)]
pub struct TernSettings {
    /// `node_name`.
    pub node_name: String,
    /// `bgp.hold_time`, seconds.
    pub hold_time: u16,
    /// `bgp.keepalive_time`, seconds.
    pub keepalive_time: u16,
    /// `bgp.connect_retry_time`, seconds.
    pub connect_retry_time: u16,
    /// `bgp.graceful_restart_time`: the restart time advertised to peers, seconds.
    pub graceful_restart_time: u16,
    /// `bgp.stale_routes_time`: the bound on keeping a restarting peer's routes, seconds.
    pub stale_routes_time: u16,
    /// `kernel.restart_wait`: how long routes of a previous run are kept at start, seconds.
    pub restart_wait: u16,
    /// `datastore.debounce_ms`.
    pub debounce_ms: u32,
}

impl TernSettings {
    /// Test timers: hold 9 s / keepalive 3 s, connect retry 1 s, graceful restart 15 s, stale
    /// routes 30 s, restart wait 30 s, datastore debounce 100 ms.
    pub fn fast(node_name: &str) -> TernSettings {
        TernSettings {
            node_name: node_name.to_owned(),
            hold_time: 9,
            keepalive_time: 3,
            connect_retry_time: 1,
            graceful_restart_time: 15,
            stale_routes_time: 30,
            restart_wait: 30,
            debounce_ms: 100,
        }
    }

    /// Renders the TOML file for a node whose datastore is `datastore` and whose runtime
    /// directory (control socket) is `runtime`. Metrics and the BIRD-compatible sockets are off
    /// (several nodes share the host's loopback for metrics and the BIRD socket paths).
    pub fn render(&self, datastore: &std::path::Path, runtime: &std::path::Path) -> String {
        format!(
            "# written by the tern interop harness\n\
             node_name = \"{node}\"\n\
             \n[datastore]\ntype = \"file\"\npaths = [\"{datastore}\"]\ndebounce_ms = {debounce}\n\
             \n[bgp]\nhold_time = {hold}\nkeepalive_time = {keepalive}\nconnect_retry_time = {retry}\n\
             graceful_restart_time = {gr}\nstale_routes_time = {stale}\n\
             \n[kernel]\nrestart_wait = {wait}\n\
             \n[control]\nsocket = \"{socket}\"\n\
             \n[metrics]\nenabled = false\n\
             \n[birdctl]\nenabled = false\n",
            node = self.node_name,
            datastore = datastore.display(),
            debounce = self.debounce_ms,
            hold = self.hold_time,
            keepalive = self.keepalive_time,
            retry = self.connect_retry_time,
            gr = self.graceful_restart_time,
            stale = self.stale_routes_time,
            wait = self.restart_wait,
            socket = runtime.join("tern.ctl").display(),
        )
    }
}

/// One running (or stopped, between restarts) `tern run` in a node's namespace.
#[derive(Debug)]
pub struct TernNode {
    name: String,
    ns_name: String,
    config: PathBuf,
    datastore: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    runs: u32,
    process: Option<Process>,
}

impl TernNode {
    /// Writes `<node>-resources.yaml` (the cluster's manifests) and `<node>-tern.toml`, then
    /// starts `tern --config <toml> run` in `ns`. Fails with a message naming
    /// `cargo build --bin tern` when the binary is missing.
    pub fn start(
        ns: &Netns,
        artifacts: &Artifacts,
        cluster: &CalicoCluster,
        settings: TernSettings,
    ) -> Result<TernNode> {
        let name = settings.node_name.clone();
        let datastore = artifacts.write(&format!("{name}-resources.yaml"), &cluster.manifests())?;
        let runtime = artifacts.runtime_dir(&format!("{name}-run"))?;
        let config = artifacts.write(
            &format!("{name}-tern.toml"),
            &settings.render(&datastore, &runtime),
        )?;
        let mut node = TernNode {
            ns_name: ns.name().to_owned(),
            config,
            datastore,
            socket: runtime.join("tern.ctl"),
            log: artifacts.path(&format!("{name}-tern.log")),
            runs: 0,
            process: None,
            name,
        };
        node.launch(ns)?;
        Ok(node)
    }

    fn launch(&mut self, ns: &Netns) -> Result<()> {
        let binary = tern_binary();
        if !binary.is_file() {
            bail!(
                "tern binary {} not found: run `cargo build --bin tern` first (or set TERN_BIN)",
                binary.display()
            );
        }
        if ns.name() != self.ns_name {
            bail!("{} belongs to namespace {}", self.name, self.ns_name);
        }
        // A socket file left by a killed run is replaced by the daemon; remove it so that
        // "socket answers" means "the new run answers".
        let _ = std::fs::remove_file(&self.socket);
        self.runs += 1;
        let mut command = ns.command(&binary.display().to_string());
        command
            .arg("--config")
            .arg(&self.config)
            .args(["--log-format", "json", "--log-level", "debug", "run"])
            .env("RUST_BACKTRACE", "1")
            .env_remove("NODENAME")
            .env_remove("CALICO_ROUTER_ID")
            .env_remove("TERN_DATASTORE_PATHS")
            .env_remove("DATASTORE_TYPE");
        let process = Process::spawn_command(&format!("tern {}", self.name), command, &self.log)?;
        self.process = Some(process);
        Ok(())
    }

    /// The node name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's manifest file (rewrite it with [`TernNode::write_resources`]).
    pub fn datastore_path(&self) -> &std::path::Path {
        &self.datastore
    }

    /// Replaces the node's manifests (the daemon watches the file).
    pub fn write_resources(&self, cluster: &CalicoCluster) -> Result<()> {
        let tmp = self.datastore.with_extension("yaml.tmp");
        std::fs::write(&tmp, cluster.manifests())?;
        std::fs::rename(&tmp, &self.datastore)
            .with_context(|| format!("replacing {}", self.datastore.display()))
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the daemon is running; a daemon that exited is an error naming its status
    /// and the end of its log (so that waits stop early with the reason).
    pub fn check_running(&mut self) -> Result<()> {
        let Some(process) = self.process.as_mut() else {
            bail!("tern {} is stopped", self.name);
        };
        if let Some(status) = process.exit_status() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            bail!(
                "tern {} exited ({status}); log tail:\n{}",
                self.name,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }

    /// Planned stop: SIGTERM and a bounded wait for the exit (the daemon leaves its kernel
    /// routes and sends no NOTIFICATION to graceful-restart peers).
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut process) = self.process.take() {
            let status = process.stop()?;
            if !status.success() {
                bail!("tern {} exited with {status} on SIGTERM", self.name);
            }
        }
        Ok(())
    }

    /// Crash: SIGKILL, then reap.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut process) = self.process.take() {
            process.signal(Signal::SIGKILL)?;
            let _ = process.stop_within(std::time::Duration::from_secs(5));
        }
        Ok(())
    }

    /// Starts the daemon again with the same settings and datastore file.
    pub fn restart(&mut self, ns: &Netns) -> Result<()> {
        if self.process.is_some() {
            bail!("tern {} is still running", self.name);
        }
        self.launch(ns)
    }

    /// Runs `tern --config <toml> show <what...>` and returns its text, as a user reads it.
    pub fn show_text(&mut self, what: &[&str]) -> Result<String> {
        self.check_running()?;
        let output = std::process::Command::new(tern_binary())
            .arg("--config")
            .arg(&self.config)
            .arg("show")
            .args(what)
            .arg("--socket")
            .arg(&self.socket)
            .output()
            .context("running tern show")?;
        if !output.status.success() {
            bail!(
                "tern show {} on {}: {} {}",
                what.join(" "),
                self.name,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs `tern --config <toml> show <what...> --json` and parses the answer.
    pub fn show(&mut self, what: &[&str]) -> Result<Value> {
        self.check_running()?;
        let output = std::process::Command::new(tern_binary())
            .arg("--config")
            .arg(&self.config)
            .arg("show")
            .args(what)
            .args(["--json", "--socket"])
            .arg(&self.socket)
            .output()
            .context("running tern show")?;
        if !output.status.success() {
            bail!(
                "tern show {} on {}: {} {}",
                what.join(" "),
                self.name,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        serde_json::from_slice(&output.stdout).with_context(|| {
            format!(
                "tern show {} output is not JSON: {}",
                what.join(" "),
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// `tern show peers --json`: every peer.
    pub fn peers(&mut self) -> Result<Vec<Value>> {
        match self.show(&["peers"])? {
            Value::Array(peers) => Ok(peers),
            other => bail!("tern show peers: not a list: {other}"),
        }
    }

    /// The peer whose address is `address`, if configured.
    pub fn peer(&mut self, address: &str) -> Result<Option<Value>> {
        Ok(self
            .peers()?
            .into_iter()
            .find(|p| p["address"].as_str() == Some(address)))
    }

    /// Ready when every address in `addresses` is a peer in state Established (pending
    /// with each peer's state and last error otherwise).
    pub fn all_established(&mut self, addresses: &[&str]) -> Result<Check<()>> {
        let peers = self.peers()?;
        let mut missing = Vec::new();
        for address in addresses {
            match peers
                .iter()
                .find(|p| p["address"].as_str() == Some(address))
            {
                Some(p) if p["state"] == "Established" => {}
                Some(p) => missing.push(format!(
                    "{address}: {} {}",
                    p["state"],
                    p.get("last_error").cloned().unwrap_or(Value::Null)
                )),
                None => missing.push(format!("{address}: not a peer")),
            }
        }
        Ok(if missing.is_empty() {
            Check::Ready(())
        } else {
            pending(format!(
                "{} not Established: {}",
                self.name,
                missing.join("; ")
            ))
        })
    }
}

impl Drop for TernNode {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.stop();
        }
    }
}

/// One kernel route as `ip -json route` prints it (the fields the scenarios look at).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    /// Destination (`10.244.1.0/26`).
    pub dst: String,
    /// `blackhole`, `unicast`, ...
    pub kind: String,
    /// Gateway, when any.
    pub gateway: Option<String>,
    /// Output device, when any.
    pub dev: Option<String>,
    /// Route protocol (`bird`, `kernel`, `boot`, a number).
    pub protocol: String,
    /// Next-hop flags (`onlink`, ...).
    pub flags: Vec<String>,
    /// The raw JSON object.
    pub raw: Value,
}

impl KernelRoute {
    /// Whether this is `blackhole <dst> proto bird`.
    pub fn is_bird_blackhole(&self) -> bool {
        self.kind == "blackhole" && self.protocol == "bird"
    }

    /// Whether this is `<dst> via <gateway> dev tunl0 onlink proto bird` (IP-in-IP).
    pub fn is_ipip_via(&self, gateway: &str) -> bool {
        self.protocol == "bird"
            && self.gateway.as_deref() == Some(gateway)
            && self.dev.as_deref() == Some("tunl0")
            && self.flags.iter().any(|f| f == "onlink")
    }

    /// Whether this is a plain `<dst> via <gateway> proto bird` (not tunl0, not onlink),
    /// optionally on device `dev`.
    pub fn is_plain_via(&self, gateway: &str, dev: Option<&str>) -> bool {
        self.kind == "unicast"
            && self.protocol == "bird"
            && self.gateway.as_deref() == Some(gateway)
            && self.dev.as_deref() != Some("tunl0")
            && !self.flags.iter().any(|f| f == "onlink")
            && dev.is_none_or(|d| self.dev.as_deref() == Some(d))
    }
}

impl std::fmt::Display for KernelRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.dst)?;
        if let Some(g) = &self.gateway {
            write!(f, " via {g}")?;
        }
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        write!(f, " proto {}", self.protocol)?;
        for flag in &self.flags {
            write!(f, " {flag}")?;
        }
        Ok(())
    }
}

/// The IPv4 main table of `ns` (`ip -4 -json route show`).
pub fn kernel_routes(ns: &Netns) -> Result<Vec<KernelRoute>> {
    let text = ns.ip(["-4", "-json", "route", "show"])?;
    parse_ip_json_routes(&text)
}

/// The IPv6 main table of `ns` (`ip -6 -json route show`).
pub fn kernel_routes_v6(ns: &Netns) -> Result<Vec<KernelRoute>> {
    let text = ns.ip(["-6", "-json", "route", "show"])?;
    parse_ip_json_routes(&text)
}

/// The route for exactly `prefix` in `ns`'s main table, if any.
pub fn kernel_route(ns: &Netns, prefix: &str) -> Result<Option<KernelRoute>> {
    Ok(kernel_routes(ns)?.into_iter().find(|r| r.dst == prefix))
}

/// Parses `ip -json route` output.
pub fn parse_ip_json_routes(text: &str) -> Result<Vec<KernelRoute>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<Value> = serde_json::from_str(text).context("ip -json route output")?;
    Ok(list
        .into_iter()
        .map(|r| {
            let s = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_owned);
            KernelRoute {
                dst: s("dst").unwrap_or_default(),
                kind: s("type").unwrap_or_else(|| "unicast".to_owned()),
                gateway: s("gateway"),
                dev: s("dev"),
                protocol: r
                    .get("protocol")
                    .map(|p| match p {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_else(|| "boot".to_owned()),
                flags: r
                    .get("flags")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                raw: r,
            }
        })
        .collect())
}

/// A stand-in for the IP-in-IP device (this kernel has no `ipip`): a veth pair inside `ns`
/// whose end `tunl0` is up with `address` (e.g. the node's `/32` tunnel address), so that
/// `onlink` routes over it can be installed.
pub fn add_tunl0(ns: &Netns, address: &str) -> Result<()> {
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
    ns.add_address("tunl0", address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_hold_every_resource() {
        let cluster = CalicoCluster::new(64512)
            .program_cluster_routes("Enabled")
            .mesh_restart_time("10s")
            .with_pool("ipip", "10.244.0.0/16", IpipMode::CrossSubnet)
            .with_pool("v6", "fd00:244::/48", IpipMode::Never)
            .with_node("n1", "10.0.1.11/24")
            .with_dual_stack_node("n2", "10.0.1.12/24", "fd00::12/64")
            .with_block("n1", "10.244.1.0/26")
            .with_block("n2", "fd00:244::/122")
            .with_document("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.9, asNumber: 65000}");
        let y = cluster.manifests();
        for needle in [
            "kind: BGPConfiguration",
            "programClusterRoutes: Enabled",
            "nodeMeshMaxRestartTime: 10s",
            "kind: FelixConfiguration",
            "ipipMode: CrossSubnet",
            "ipv4Address: 10.0.1.11/24",
            "cidr: \"10.244.1.0/26\"",
            "cidr: \"fd00:244::/48\"\n  ipipMode: Never\n  vxlanMode: Never\n  blockSize: 122",
            "{ipv4Address: 10.0.1.12/24, ipv6Address: \"fd00::12/64\"}",
            "cidr: \"fd00:244::/122\"",
            "---\napiVersion: projectcalico.org/v3\nkind: BGPPeer",
        ] {
            assert!(y.contains(needle), "{needle} missing from\n{y}");
        }
        assert_eq!(cluster.node_ip("n1"), Some("10.0.1.11"));
        assert_eq!(cluster.without_block("10.244.1.0/26").blocks.len(), 1);
    }

    #[test]
    fn ip_json_routes_are_parsed() {
        let text = r#"[{"type":"blackhole","dst":"10.244.1.0/26","protocol":"bird","flags":[]},
            {"dst":"10.244.3.0/26","gateway":"10.0.2.13","dev":"tunl0","protocol":"bird","flags":["onlink"]},
            {"dst":"10.245.2.0/26","gateway":"10.0.1.12","dev":"eth0","protocol":"bird","flags":[]}]"#;
        let routes = parse_ip_json_routes(text).unwrap();
        assert!(routes[0].is_bird_blackhole());
        assert!(routes[1].is_ipip_via("10.0.2.13"));
        assert!(!routes[1].is_plain_via("10.0.2.13", None));
        assert!(routes[2].is_plain_via("10.0.1.12", Some("eth0")));
        assert!(parse_ip_json_routes("").unwrap().is_empty());
    }
}
