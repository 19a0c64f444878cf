//! `tern run` nodes for the scenarios: Calico manifests written as YAML (the file datastore),
//! a per-instance settings file (own control socket, metrics off), the daemon started in a
//! namespace, and queries through `tern show --json` / `tern health` on its control socket.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::artifacts::Artifacts;
use crate::netns::Netns;
use crate::peers::tern::tern_binary;
use crate::process::Process;
use crate::wait::{Check, pending, wait_until};

/// Calico resources as YAML documents, written to one file of a datastore directory.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    documents: Vec<String>,
}

impl Manifests {
    /// No resources.
    pub fn new() -> Manifests {
        Manifests::default()
    }

    /// Any document (YAML, without the `---`).
    pub fn raw(mut self, document: &str) -> Manifests {
        self.documents.push(document.trim().to_owned());
        self
    }

    /// BGPConfiguration `default`: mesh on/off and the global AS.
    pub fn bgp_configuration(self, mesh: bool, asn: u32) -> Manifests {
        self.raw(&format!(
            "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {{name: default}}\n\
             spec: {{nodeToNodeMeshEnabled: {mesh}, asNumber: {asn}, logSeverityScreen: Info}}"
        ))
    }

    /// A Calico Node with its IPv4 address (CIDR form), optional own AS, labels and route
    /// reflector cluster id.
    pub fn node(
        self,
        name: &str,
        ipv4_cidr: &str,
        asn: Option<u32>,
        labels: &[(&str, &str)],
        rr_cluster_id: Option<&str>,
    ) -> Manifests {
        let mut spec = format!("ipv4Address: {ipv4_cidr}");
        if let Some(asn) = asn {
            let _ = write!(spec, ", asNumber: {asn}");
        }
        if let Some(id) = rr_cluster_id {
            let _ = write!(spec, ", routeReflectorClusterID: {id}");
        }
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}: '{v}'")).collect();
        self.raw(&format!(
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {{name: {name}, labels: {{{}}}}}\n\
             spec: {{bgp: {{{spec}}}}}",
            labels.join(", ")
        ))
    }

    /// An IPPool with `ipipMode` (`Never`, `Always`, `CrossSubnet`), no VXLAN.
    pub fn ippool(self, name: &str, cidr: &str, ipip_mode: &str) -> Manifests {
        self.raw(&format!(
            "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: {name}}}\n\
             spec: {{cidr: {cidr}, ipipMode: {ipip_mode}, vxlanMode: Never, natOutgoing: true}}"
        ))
    }

    /// A confirmed block affinity of `node` for `cidr`.
    pub fn block(self, node: &str, cidr: &str) -> Manifests {
        let name = format!("{node}-{}", cidr.replace(['.', '/', ':'], "-"));
        self.raw(&format!(
            "apiVersion: projectcalico.org/v3\nkind: BlockAffinity\nmetadata: {{name: {name}}}\n\
             spec: {{state: confirmed, node: {node}, cidr: {cidr}, deleted: false}}"
        ))
    }

    /// A BGPPeer whose spec is the given YAML flow-mapping body, e.g.
    /// `nodeSelector: rack == 'r1', peerIP: 10.1.1.1, asNumber: 65101`.
    pub fn bgp_peer(self, name: &str, spec: &str) -> Manifests {
        self.raw(&format!(
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: {name}}}\n\
             spec: {{{spec}}}"
        ))
    }

    /// A Secret in `kube-system` with one `stringData` key.
    pub fn secret(self, name: &str, key: &str, value: &str) -> Manifests {
        self.raw(&format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: kube-system}}\n\
             stringData: {{{key}: '{value}'}}"
        ))
    }

    /// All documents, `---`-separated.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for doc in &self.documents {
            out.push_str("---\n");
            out.push_str(doc);
            out.push('\n');
        }
        out
    }

    /// Writes `<dir>/cluster.yaml` under the artifacts (a directory of its own, so that the
    /// datastore reads only it) and returns the directory.
    pub fn write(&self, artifacts: &Artifacts, dir: &str) -> Result<PathBuf> {
        let dir = artifacts.subdir(dir)?;
        std::fs::write(dir.join("cluster.yaml"), self.render())
            .with_context(|| format!("write {}", dir.display()))?;
        Ok(dir)
    }
}

/// The settings file of one instance: its node name, the datastore directory, its own control
/// and BIRD-compatible sockets (in `runtime`), metrics off (several instances share the host's
/// loopback port space otherwise), short connect retry.
pub fn settings_toml(node_name: &str, datastore: &Path, runtime: &Path) -> String {
    format!(
        "node_name = \"{node_name}\"\nlog_format = \"human\"\n\n[datastore]\ntype = \"file\"\n\
         paths = [\"{}\"]\ndebounce_ms = 50\n\n[bgp]\nconnect_retry_time = 2\n\n[control]\n\
         socket = \"{rt}/tern.ctl\"\n\n[birdctl]\nsocket = \"{rt}/bird.ctl\"\n\
         socket6 = \"{rt}/bird6.ctl\"\n\n[metrics]\nenabled = false\n",
        datastore.display(),
        rt = runtime.display()
    )
}

/// A running `tern run` instance.
#[derive(Debug)]
pub struct TernNode {
    /// Node name.
    pub name: String,
    /// Its control socket.
    pub control_socket: PathBuf,
    process: Process,
}

impl TernNode {
    /// Starts `tern run` in `netns` as node `name`, reading the manifests in `datastore`, and
    /// waits until its control socket answers (`tern health --live`). Fails with the log when
    /// the binary is missing or the daemon exits.
    pub fn start(
        netns: &Netns,
        artifacts: &Artifacts,
        name: &str,
        datastore: &Path,
    ) -> Result<TernNode> {
        TernNode::start_with(netns, artifacts, name, datastore, "")
    }

    /// [`TernNode::start`] with `extra` TOML appended to the settings file (tables such as
    /// `[bgp.max_prefix]`).
    pub fn start_with(
        netns: &Netns,
        artifacts: &Artifacts,
        name: &str,
        datastore: &Path,
        extra: &str,
    ) -> Result<TernNode> {
        let binary = tern_binary();
        if !binary.is_file() {
            bail!(
                "tern binary {} not built (cargo build --bin tern)",
                binary.display()
            );
        }
        let runtime = artifacts.runtime_dir(&format!("{name}-tern"))?;
        let control_socket = runtime.join("tern.ctl");
        let settings = artifacts.write(
            &format!("{name}-tern.toml"),
            &(settings_toml(name, datastore, &runtime) + extra),
        )?;
        let process = Process::spawn(
            Some(netns),
            &format!("tern {name}"),
            &binary.display().to_string(),
            [
                "--config".to_owned(),
                settings.display().to_string(),
                "--log-level".to_owned(),
                "info".to_owned(),
                "run".to_owned(),
            ],
            &artifacts.path(&format!("{name}-tern.log")),
        )?;
        let mut node = TernNode {
            name: name.to_owned(),
            control_socket,
            process,
        };
        let exited = wait_until(
            &format!("tern {name} answers on its control socket"),
            Duration::from_secs(60),
            || {
                if !node.process.is_running() {
                    return Ok(Some(true));
                }
                Ok(node.live()?.then_some(false))
            },
        )?;
        if exited {
            bail!("tern {name} exited: {}", node.process.log());
        }
        Ok(node)
    }

    /// Runs the `tern` CLI against this instance's socket.
    pub fn cli(&self, args: &[&str]) -> Result<std::process::Output> {
        let output = std::process::Command::new(tern_binary())
            .args(args)
            .arg("--socket")
            .arg(&self.control_socket)
            .output()
            .context("run tern CLI")?;
        Ok(output)
    }

    /// `tern show <what...> --json`, parsed.
    pub fn show_json(&self, what: &[&str]) -> Result<Value> {
        let mut args = vec!["show"];
        args.extend_from_slice(what);
        args.push("--json");
        let output = self.cli(&args)?;
        if !output.status.success() {
            bail!(
                "tern show {what:?}: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        serde_json::from_slice(&output.stdout).context("tern show output is not JSON")
    }

    /// `tern health --live` succeeds.
    pub fn live(&self) -> Result<bool> {
        Ok(self.cli(&["health", "--live"])?.status.success())
    }

    /// The session state of the peer at `address` as `tern show peers` reports it.
    pub fn peer_state(&self, address: &str) -> Result<String> {
        let peers = self.show_json(&["peers"])?;
        let mut found = Vec::new();
        collect_objects_with(&peers, "address", &mut found);
        found
            .into_iter()
            .find(|p| p.get("address").and_then(Value::as_str) == Some(address))
            .and_then(|p| p.get("state").and_then(Value::as_str).map(str::to_owned))
            .with_context(|| format!("no peer {address} in tern show peers: {peers}"))
    }

    /// Waits until the peer at `address` is Established at tern.
    pub fn wait_established(&self, address: &str, timeout: Duration) -> Result<()> {
        wait_until(
            &format!("tern {} Established with {address}", self.name),
            timeout,
            || {
                let state = self.peer_state(address)?;
                Ok(if state == "Established" {
                    Check::Ready(())
                } else {
                    pending(state)
                })
            },
        )
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Stops the daemon (SIGTERM, bounded wait, SIGKILL).
    pub fn stop(&mut self) -> Result<()> {
        self.process.stop().map(|_| ())
    }
}

/// `tern plan --node <node> --datastore <dir> --json`, parsed: what the daemon would do with
/// the manifests (no root, no network). Scenarios check their manifests with it.
pub fn plan(node: &str, datastore: &Path) -> Result<Value> {
    let output = std::process::Command::new(tern_binary())
        .args(["plan", "--node", node, "--datastore"])
        .arg(datastore)
        .arg("--json")
        .output()
        .context("run tern plan")?;
    if !output.status.success() {
        bail!(
            "tern plan --node {node}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("tern plan output is not JSON")
}

/// `(address, peerAs, routeReflectorClient)` of every peering in a plan, sorted.
pub fn plan_peerings(plan: &Value) -> Vec<(String, u64, bool)> {
    let mut out: Vec<(String, u64, bool)> = plan["peerings"]
        .as_array()
        .map(|peerings| {
            peerings
                .iter()
                .map(|p| {
                    (
                        p["address"].as_str().unwrap_or_default().to_owned(),
                        p["peerAs"].as_u64().unwrap_or_default(),
                        p["routeReflectorClient"].as_bool().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The prefixes a plan originates (blocks, ...), sorted.
pub fn plan_originated(plan: &Value) -> Vec<String> {
    let mut out: Vec<String> = plan["originated"]
        .as_array()
        .map(|o| {
            o.iter()
                .filter_map(|r| r["prefix"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// A manifests directory for plan checks outside an artifacts directory (a temporary
/// directory under `target/`, unique per call).
pub fn plan_datastore(manifests: &Manifests, label: &str) -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../target/interop-plans/{label}-{}-{}",
        std::process::id(),
        crate::netns::unique_number()
    ));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("cluster.yaml"), manifests.render())?;
    Ok(dir)
}

fn collect_objects_with<'a>(value: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            if map.contains_key(key) {
                out.push(value);
            }
            for v in map.values() {
                collect_objects_with(v, key, out);
            }
        }
        Value::Array(items) => {
            for v in items {
                collect_objects_with(v, key, out);
            }
        }
        _ => {}
    }
}

/// Destinations of the routes of protocol `proto` (`bird`, `bgp`, `static`...) in the main
/// table of `netns`, IPv4 (`ip -j route show proto <proto>`).
pub fn kernel_routes(netns: &Netns, proto: &str) -> Result<Vec<String>> {
    let out = netns.ip(["-j", "route", "show", "proto", proto])?;
    let parsed: Value = serde_json::from_str(if out.trim().is_empty() { "[]" } else { &out })
        .context("ip -j route")?;
    Ok(parsed
        .as_array()
        .map(|routes| {
            routes
                .iter()
                .filter_map(|r| r.get("dst").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// Number of IPv4 routes of protocol `proto` in `netns` (counted without JSON, fast for 10k).
pub fn kernel_route_count(netns: &Netns, proto: &str) -> Result<usize> {
    let out = netns.ip(["route", "show", "proto", proto])?;
    Ok(out.lines().filter(|l| !l.trim().is_empty()).count())
}

/// A `TcpExt` counter of `netns` (`/proc/net/netstat` read inside it), e.g. `TCPMD5Failure`
/// (segments dropped for a wrong TCP-MD5 signature) or `TCPMinTTLDrop` (GTSM drops).
pub fn tcp_ext_counter(netns: &Netns, name: &str) -> Result<u64> {
    let text = netns.run("cat", ["/proc/net/netstat"])?;
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        bail!("no TcpExt lines in /proc/net/netstat of {}", netns.name());
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == name)
        .with_context(|| format!("no TcpExt counter {name}"))?
        .1
        .parse()
        .with_context(|| format!("TcpExt {name} is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_render_calico_documents() {
        let yaml = Manifests::new()
            .bgp_configuration(false, 64512)
            .node("n1", "10.0.1.11/24", Some(65001), &[("rack", "r1")], None)
            .ippool("pool", "10.244.0.0/16", "Never")
            .block("n1", "10.244.1.0/26")
            .bgp_peer(
                "tor",
                "nodeSelector: rack == 'r1', peerIP: 10.0.1.1, asNumber: 65101",
            )
            .secret("bgp", "tor", "s3cret")
            .render();
        assert_eq!(yaml.matches("---\n").count(), 6);
        assert!(yaml.contains("name: n1-10-244-1-0-26"));
        assert!(yaml.contains("labels: {rack: 'r1'}"));
        assert!(yaml.contains("asNumber: 65001"));
        assert!(yaml.contains("stringData: {tor: 's3cret'}"));
    }

    #[test]
    fn finds_peer_objects_anywhere_in_the_answer() {
        let v: Value = serde_json::json!({"peers": [{"address": "10.0.0.2", "state": "Idle"}]});
        let mut found = Vec::new();
        collect_objects_with(&v, "address", &mut found);
        assert_eq!(found.len(), 1);
    }
}
