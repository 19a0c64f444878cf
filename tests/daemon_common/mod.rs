//! Shared helpers of the `daemon_ns_*` tests: a tern node (settings, manifests, control socket,
//! BIRD-compatible socket) started through the real binary in a namespace.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use interop::prelude::*;
use serde_json::Value;

/// Generous: a loaded 2-core machine.
pub const CONVERGE: Duration = Duration::from_secs(60);

/// The `tern` binary under test: `TERN_BIN` when set (e.g. a release build, to time a
/// scenario), else the one cargo built for these tests.
pub fn tern_bin() -> String {
    std::env::var("TERN_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_tern").to_owned())
}

/// A tern node's files.
pub struct TernNode {
    pub name: String,
    pub dir: PathBuf,
    /// The sockets' directory (under `/tmp` when the checkout's path is too long for them).
    pub run: PathBuf,
    pub settings: PathBuf,
}

impl TernNode {
    /// Writes the node's settings (short timers) and its manifests (`manifests`, a YAML stream).
    pub fn write(
        artifacts: &Artifacts,
        name: &str,
        manifests: &str,
        extra: &str,
    ) -> Result<TernNode> {
        let dir = artifacts.subdir(&format!("{name}-node"))?;
        let run = artifacts.runtime_dir(&format!("{name}-run"))?;
        let resources = dir.join("resources");
        std::fs::create_dir_all(&resources)?;
        std::fs::write(resources.join("cluster.yaml"), manifests)?;
        let settings = format!(
            r#"node_name = "{name}"
log_format = "human"
log_level = "info,tern=debug"

[datastore]
paths = ["{res}"]
debounce_ms = 100

[bgp]
hold_time = 9
keepalive_time = 3
connect_delay_time = 0
connect_retry_time = 2
graceful_restart_time = 15

[kernel]
restart_wait = 30

[control]
socket = "{run}/tern.ctl"
admin_socket = "{run}/tern-admin.ctl"

[birdctl]
socket = "{run}/bird.ctl"
socket6 = "{run}/bird6.ctl"

[metrics]
address = "127.0.0.1:9179"
{extra}
"#,
            res = resources.display(),
            run = run.display(),
        );
        let path = dir.join("tern.toml");
        std::fs::write(&path, settings)?;
        Ok(TernNode {
            name: name.to_owned(),
            dir,
            run,
            settings: path,
        })
    }

    /// Starts `tern run` in `ns`.
    pub fn start(&self, ns: &Netns, artifacts: &Artifacts) -> Result<Process> {
        Process::spawn(
            Some(ns),
            &format!("tern {}", self.name),
            &tern_bin(),
            ["--config", &self.settings.display().to_string(), "run"],
            &artifacts.path(&format!("{}-tern.log", self.name)),
        )
    }

    pub fn control(&self) -> PathBuf {
        self.run.join("tern.ctl")
    }

    pub fn birdctl(&self) -> PathBuf {
        self.run.join("bird.ctl")
    }

    /// `tern show <what> --json` against this node's control socket, as text.
    pub fn show(&self, what: &str) -> Result<String> {
        let out = std::process::Command::new(tern_bin())
            .args(["show", what, "--json", "--socket"])
            .arg(self.control())
            .output()?;
        if !out.status.success() {
            bail!(
                "tern show {what}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `tern show peers --json` against this node's control socket.
    pub fn peers(&self) -> Result<Vec<Value>> {
        let out = std::process::Command::new(tern_bin())
            .args(["show", "peers", "--json", "--socket"])
            .arg(self.control())
            .output()?;
        if !out.status.success() {
            bail!(
                "tern show peers: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let v: Value = serde_json::from_slice(&out.stdout).context("show peers JSON")?;
        let list = match &v {
            Value::Array(a) => a.clone(),
            Value::Object(o) => o
                .values()
                .find_map(|x| x.as_array().cloned())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        Ok(list)
    }

    /// The state of the peer at `address`, from `tern show peers --json`.
    pub fn peer_state(&self, address: &str) -> Result<String> {
        for p in self.peers()? {
            if p["address"].as_str() == Some(address) {
                return Ok(p["state"].as_str().unwrap_or("").to_owned());
            }
        }
        bail!("no peer {address}")
    }
}

/// `ip -json route show <prefix>` in `ns` (main table).
pub fn kernel_route(ns: &Netns, prefix: &str) -> Result<Option<Value>> {
    let out = ns.ip(["-json", "route", "show", "exact", prefix])?;
    let v: Value = serde_json::from_str(out.trim()).unwrap_or(Value::Array(Vec::new()));
    Ok(v.as_array().and_then(|a| a.first().cloned()))
}

/// The resources of node `n1` (10.0.0.1/24, AS 64512, no mesh, block 10.244.1.0/26 of pool
/// 10.244.0.0/16 without encapsulation, cluster routes programmed) with one BGPPeer per
/// `(address, AS)`, named `p-<address with dashes>`.
pub fn single_node_manifests(peers: &[(&str, u32)]) -> String {
    let mut m = String::from(
        r#"
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec: {asNumber: 64512, nodeToNodeMeshEnabled: false, programClusterRoutes: Enabled}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pods}
spec: {cidr: 10.244.0.0/16, ipipMode: Never, blockSize: 26}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: n1}
spec: {bgp: {ipv4Address: 10.0.0.1/24}}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: n1-a}
spec: {state: confirmed, node: n1, cidr: 10.244.1.0/26, type: host}
"#,
    );
    for (ip, asn) in peers {
        m.push_str(&format!(
            "---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: p-{}}}\nspec: {{peerIP: {ip}, asNumber: {asn}}}\n",
            ip.replace('.', "-")
        ));
    }
    m
}
