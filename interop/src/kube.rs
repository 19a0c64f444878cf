//! The Kubernetes API server double (`kube-api`, `src/bin/kube-api/`) for scenarios: started
//! as a separate process (in a namespace or on the host), with kubeconfigs for an administrator
//! and for tern's ServiceAccount, `kubectl` run against it, and its fault controls.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::artifacts::Artifacts;
use crate::netns::Netns;
use crate::process::Process;
use crate::wait::wait_until;

/// The administrator's token (group `system:masters`: RBAC does not apply).
pub const ADMIN_TOKEN: &str = "admin-token";
/// tern's token: ServiceAccount `kube-system/tern`, authorized by `deploy/rbac.yaml`.
pub const TERN_TOKEN: &str = "tern-token";
/// The user tern's token stands for.
pub const TERN_USER: &str = "system:serviceaccount:kube-system:tern";

/// Where the `kube-api` binary is: `$KUBE_API_BIN`, else `<workspace>/target/debug/kube-api`
/// (built with the workspace: `cargo build -p interop --bin kube-api`).
pub fn kube_api_binary() -> PathBuf {
    std::env::var_os("KUBE_API_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/kube-api"))
}

/// The repository's `deploy/` directory.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// How to start the double.
#[derive(Debug, Clone)]
pub struct KubeApiOptions {
    /// Listen address (`127.0.0.1:0` by default; an address of the namespace's interface to
    /// be reached from others).
    pub listen: String,
    /// Calico groups served (default `crd.projectcalico.org/v1`).
    pub calico_groups: Vec<String>,
    /// Manifests created at start (default: `deploy/rbac.yaml`).
    pub load: Vec<PathBuf>,
    /// Bookmark interval, milliseconds.
    pub bookmark_ms: u64,
}

impl Default for KubeApiOptions {
    fn default() -> Self {
        KubeApiOptions {
            listen: "127.0.0.1:0".into(),
            calico_groups: Vec::new(),
            load: vec![deploy_dir().join("rbac.yaml")],
            bookmark_ms: 1000,
        }
    }
}

/// A running double.
#[derive(Debug)]
pub struct KubeApi {
    process: Process,
    netns: Option<String>,
    /// Its runtime directory (CA, kubeconfigs, control socket).
    pub dir: PathBuf,
    /// `https://address:port`.
    pub server: String,
    /// The CA certificate (PEM).
    pub ca: PathBuf,
    /// The control socket.
    pub control: PathBuf,
    /// The administrator's kubeconfig.
    pub admin: PathBuf,
}

impl KubeApi {
    /// Starts the double in `netns` (or on the host) and waits until it listens.
    pub fn start(
        netns: Option<&Netns>,
        artifacts: &Artifacts,
        name: &str,
        options: &KubeApiOptions,
    ) -> Result<KubeApi> {
        let binary = kube_api_binary();
        if !binary.exists() {
            bail!(
                "{} not built: cargo build -p interop --bin kube-api",
                binary.display()
            );
        }
        let dir = artifacts.runtime_dir(name)?;
        let ready = dir.join("ready.json");
        let _ = std::fs::remove_file(&ready);
        let mut args: Vec<String> = vec![
            "--listen".into(),
            options.listen.clone(),
            "--ca-out".into(),
            dir.join("ca.crt").display().to_string(),
            "--ready-file".into(),
            ready.display().to_string(),
            "--control".into(),
            dir.join("control.sock").display().to_string(),
            "--bookmark-ms".into(),
            options.bookmark_ms.to_string(),
            "--token".into(),
            format!("{ADMIN_TOKEN}=admin;system:masters"),
            "--token".into(),
            format!("{TERN_TOKEN}={TERN_USER}"),
        ];
        for g in &options.calico_groups {
            args.extend(["--calico-group".into(), g.clone()]);
        }
        for l in &options.load {
            args.extend(["--load".into(), l.display().to_string()]);
        }
        let mut process = Process::spawn(
            netns,
            name,
            &binary.display().to_string(),
            &args,
            &artifacts.path(&format!("{name}.log")),
        )?;
        let info: Value = wait_until("kube-api ready", Duration::from_secs(30), || {
            if !process.is_running() {
                bail!("kube-api exited: {}", process.log());
            }
            Ok(std::fs::read_to_string(&ready)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok()))
        })?;
        let server = info["server"]
            .as_str()
            .context("ready.json: server")?
            .to_string();
        let mut api = KubeApi {
            process,
            netns: netns.map(|n| n.name().to_string()),
            ca: dir.join("ca.crt"),
            control: dir.join("control.sock"),
            admin: dir.join("admin.kubeconfig"),
            dir,
            server,
        };
        api.admin = api.kubeconfig("admin", ADMIN_TOKEN)?;
        Ok(api)
    }

    /// Writes `<dir>/<name>.kubeconfig` for `token` and returns its path.
    pub fn kubeconfig(&self, name: &str, token: &str) -> Result<PathBuf> {
        let path = self.dir.join(format!("{name}.kubeconfig"));
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: double\n  cluster:\n    server: {}\n    certificate-authority: {}\n\
             users:\n- name: {name}\n  user:\n    token: {token}\ncontexts:\n- name: {name}\n  context:\n    cluster: double\n    user: {name}\n\
             current-context: {name}\n",
            self.server,
            self.ca.display()
        );
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// A `kubectl` command with `kubeconfig`, in the double's namespace.
    pub fn kubectl_command(&self, kubeconfig: &Path) -> Command {
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "kubectl"]);
                c
            }
            None => Command::new("kubectl"),
        };
        command.arg("--kubeconfig").arg(kubeconfig);
        command.env("HOME", &self.dir);
        command
    }

    /// Runs kubectl as `kubeconfig`; Ok(stdout) on success, Err(stderr) otherwise.
    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> Result<String> {
        let out = self
            .kubectl_command(kubeconfig)
            .args(args)
            .output()
            .context("kubectl (scripts/setup.sh installs kubernetes-client)")?;
        if !out.status.success() {
            bail!(
                "kubectl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs kubectl as the administrator.
    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        self.kubectl_as(&self.admin, args)
    }

    /// `kubectl apply --validate=false -f` of a YAML text, as the administrator.
    pub fn apply(&self, yaml: &str) -> Result<String> {
        let file = self.write_manifest(yaml)?;
        self.kubectl(&[
            "apply",
            "--validate=false",
            "-f",
            &file.display().to_string(),
        ])
    }

    /// `kubectl delete -f` of a YAML text, as the administrator.
    pub fn delete(&self, yaml: &str) -> Result<String> {
        let file = self.write_manifest(yaml)?;
        self.kubectl(&["delete", "-f", &file.display().to_string()])
    }

    fn write_manifest(&self, yaml: &str) -> Result<PathBuf> {
        let path = self
            .dir
            .join(format!("manifest-{}.yaml", crate::netns::unique_number()));
        std::fs::write(&path, yaml)?;
        Ok(path)
    }

    /// Sends a control request (`/down`, `/fail?code=500`, ...); returns its JSON answer.
    pub fn control(&self, path: &str, body: &str) -> Result<Value> {
        let mut stream = UnixStream::connect(&self.control)
            .with_context(|| format!("control socket {}", self.control.display()))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: control\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .context("control: no HTTP response")?;
        let value: Value = serde_json::from_str(body.trim()).unwrap_or(Value::Null);
        if !head.starts_with("HTTP/1.1 200") {
            bail!("control {path}: {head}: {body}");
        }
        Ok(value)
    }

    /// Request counters (`requests` by "verb resource", `openWatches`, `resourceVersion`).
    pub fn stats(&self) -> Result<Value> {
        self.control("/stats", "")
    }

    /// How many requests of `verb` on `resource` were served so far.
    pub fn requests(&self, verb: &str, resource: &str) -> Result<u64> {
        Ok(self.stats()?["requests"][format!("{verb} {resource}")]
            .as_u64()
            .unwrap_or(0))
    }

    /// The double's log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Stops the process.
    pub fn stop(&mut self) -> Result<()> {
        self.process.stop()?;
        Ok(())
    }
}

/// The Kubernetes form of Calico manifests for the `group` the double serves: v3 `Node`s
/// become core `v1` Nodes with Calico's annotations and the same labels; other Calico kinds go
/// to `crd.projectcalico.org/v1` (labels and annotations packed into the
/// `projectcalico.org/metadata` annotation, as Calico stores them) or stay
/// `projectcalico.org/v3`; core `v1` objects stay as they are (a Secret without a namespace is
/// put in `kube-system`, the default secret namespace).
pub fn kubernetes_form(yaml: &str, group: &str) -> Result<String> {
    use serde::Deserialize as _;
    let mut out = String::new();
    for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value = Value::deserialize(doc).context("invalid YAML")?;
        let items = match value["kind"].as_str() {
            Some(k) if k.ends_with("List") => {
                value["items"].as_array().cloned().unwrap_or_default()
            }
            _ if value.is_null() => Vec::new(),
            _ => vec![value],
        };
        for item in items {
            let converted = convert(item, group)?;
            out.push_str("---\n");
            out.push_str(&serde_json::to_string(&converted)?);
            out.push('\n');
        }
    }
    Ok(out)
}

fn convert(mut item: Value, group: &str) -> Result<Value> {
    let api_version = item["apiVersion"].as_str().unwrap_or("").to_string();
    let kind = item["kind"].as_str().unwrap_or("").to_string();
    let calico = api_version == "projectcalico.org/v3" || api_version == "crd.projectcalico.org/v1";
    if !calico {
        // A Secret without a namespace is in the secret namespace, as the file datastore reads
        // it.
        if kind == "Secret" && item["metadata"]["namespace"].is_null() {
            item["metadata"]["namespace"] = Value::String("kube-system".into());
        }
        return Ok(item);
    }
    // Unpack the v1 storage form first, so that both inputs look like v3.
    if api_version == "crd.projectcalico.org/v1"
        && let Some(packed) = item
            .get_mut("metadata")
            .and_then(|m| m.get_mut("annotations"))
            .and_then(Value::as_object_mut)
            .and_then(|a| a.remove("projectcalico.org/metadata"))
    {
        let inner: Value = serde_json::from_str(packed.as_str().unwrap_or("{}"))?;
        for field in ["labels", "annotations"] {
            if let Some(v) = inner.get(field) {
                item["metadata"][field] = v.clone();
            }
        }
    }
    // Kubernetes keeps label values as strings (kubectl refuses a YAML boolean or number
    // there); a manifest written for files may use them, as Calico's own YAML does.
    if let Some(labels) = item
        .get_mut("metadata")
        .and_then(|m| m.get_mut("labels"))
        .and_then(Value::as_object_mut)
    {
        for value in labels.values_mut() {
            if !value.is_string() && !value.is_null() {
                *value = Value::String(value.to_string());
            }
        }
    }
    if kind == "Node" {
        let bgp = &item["spec"]["bgp"];
        let mut annotations = serde_json::Map::new();
        for (field, annotation) in [
            ("ipv4Address", "IPv4Address"),
            ("ipv6Address", "IPv6Address"),
            ("asNumber", "ASNumber"),
            ("routeReflectorClusterID", "RouteReflectorClusterID"),
            ("ipv4IPIPTunnelAddr", "IPv4IPIPTunnelAddr"),
        ] {
            let v = match &bgp[field] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => continue,
            };
            annotations.insert(format!("projectcalico.org/{annotation}"), Value::String(v));
        }
        let mut node = serde_json::json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": item["metadata"]["name"], "annotations": annotations},
        });
        if let Some(labels) = item["metadata"].get("labels") {
            node["metadata"]["labels"] = labels.clone();
        }
        return Ok(node);
    }
    if group == "crd.projectcalico.org/v1" {
        item["apiVersion"] = Value::String(group.into());
        let meta = item["metadata"].as_object_mut().context("metadata")?;
        let labels = meta.remove("labels").filter(|v| !v.is_null());
        let annotations = meta
            .remove("annotations")
            .filter(|v| v.as_object().is_some_and(|a| !a.is_empty()));
        if labels.is_some() || annotations.is_some() {
            let mut packed = serde_json::Map::new();
            if let Some(l) = labels {
                packed.insert("labels".into(), l);
            }
            if let Some(a) = annotations {
                packed.insert("annotations".into(), a);
            }
            let mut a = serde_json::Map::new();
            a.insert(
                "projectcalico.org/metadata".into(),
                Value::String(Value::Object(packed).to_string()),
            );
            meta.insert("annotations".into(), Value::Object(a));
        }
    } else {
        item["apiVersion"] = Value::String("projectcalico.org/v3".into());
    }
    if kind == "BlockAffinity" {
        // The labels Calico's IPAM puts on every affinity, so that a node lists its own.
        let spec = &item["spec"];
        let node = spec["node"].as_str().unwrap_or("").to_string();
        let cidr = spec["cidr"].as_str().unwrap_or("");
        let affinity_type = spec["type"]
            .as_str()
            .filter(|t| !t.is_empty())
            .unwrap_or("host");
        let labels = serde_json::json!({
            "projectcalico.org/hostname-hash": hostname_hash(&node),
            "projectcalico.org/affinity-type": affinity_type,
            "projectcalico.org/ip-version": if cidr.contains(':') { "6" } else { "4" },
        });
        let meta = item["metadata"].as_object_mut().context("metadata")?;
        let existing = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Default::default()));
        if let (Some(existing), Some(new)) = (existing.as_object_mut(), labels.as_object()) {
            existing.extend(new.clone());
        }
    }
    Ok(item)
}

/// Calico's `projectcalico.org/hostname-hash` label value: SHA3-256 of the node name in
/// unpadded standard base32.
pub fn hostname_hash(node: &str) -> String {
    use sha3::Digest as _;
    let digest = sha3::Sha3_256::digest(node.as_bytes());
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut buffer, mut bits) = (String::new(), 0u32, 0u32);
    for byte in digest.iter() {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_hash_is_sha3_base32() {
        // Python: base64.b32encode(hashlib.sha3_256(b"").digest()) without the padding.
        assert_eq!(
            hostname_hash(""),
            "U774N6F7D3LWMUOBI5LKAYOWML2YB72N4Q5UT6UC3AFEXAHYINFA"
        );
    }

    #[test]
    fn v3_nodes_become_annotated_core_nodes_and_crds_pack_metadata() {
        let out = kubernetes_form(
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n1, labels: {rack: a}}\nspec: {bgp: {ipv4Address: 10.0.0.1/24, asNumber: 65001}}\n---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p, labels: {x: y}}\nspec: {peerIP: 10.0.0.9, asNumber: 1}\n",
            "crd.projectcalico.org/v1",
        )
        .unwrap();
        assert!(
            out.contains(r#""projectcalico.org/ASNumber":"65001""#),
            "{out}"
        );
        assert!(out.contains(r#""labels":{"rack":"a"}"#), "{out}");
        assert!(
            out.contains(r#""apiVersion":"crd.projectcalico.org/v1""#),
            "{out}"
        );
        assert!(out.contains(r#"{\"labels\":{\"x\":\"y\"}}"#), "{out}");
    }
}
