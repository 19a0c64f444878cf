//! Credentials (a kubeconfig, else in-cluster), the Calico API group (discovery), and the
//! objects as the loader reads them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{ApiResource, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

use super::observe::{ObserveLayer, Observed};
use super::sync::CalicoKind;

/// Why connecting failed: the message, and whether the API server did not answer at all
/// (rather than answering with an error, or credentials that cannot be used).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    /// What failed, naming the kubeconfig or the request.
    pub message: String,
    /// The API server did not answer (connection refused, timed out, reset).
    pub unreachable: bool,
}

impl ConnectError {
    fn config(message: String) -> ConnectError {
        ConnectError {
            message,
            unreachable: false,
        }
    }
}

/// Whether a kube error means the API server did not answer (a transport failure), as
/// opposed to an answer that is an error.
pub fn unreachable(e: &kube::Error) -> bool {
    matches!(
        e,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_)
    )
}

/// A client: from `kubeconfig` when given, else `KUBECONFIG` / `~/.kube/config`, else the
/// in-cluster ServiceAccount (token and CA under `/var/run/secrets/kubernetes.io/`,
/// `KUBERNETES_SERVICE_HOST` / `KUBERNETES_SERVICE_PORT`), as calico-node takes them.
/// `kubeconfig` (and `KUBECONFIG`) may list several files (`:`-separated); they are merged
/// as kubectl merges them. Every answer is recorded in `observed`.
pub async fn client(
    kubeconfig: Option<&Path>,
    observed: &Arc<Observed>,
) -> Result<kube::Client, ConnectError> {
    let config = match kubeconfig {
        Some(list) => {
            let file = read_kubeconfigs(list).map_err(ConnectError::config)?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|e| ConnectError::config(format!("kubeconfig {}: {e}", list.display())))?
        }
        None => kube::Config::infer().await.map_err(|e| {
            ConnectError::config(format!(
                "no Kubernetes credentials (kubeconfig or in-cluster ServiceAccount): {e}"
            ))
        })?,
    };
    let builder = kube::client::ClientBuilder::try_from(config)
        .map_err(|e| ConnectError::config(format!("Kubernetes client: {e}")))?;
    Ok(builder
        .with_layer(&ObserveLayer(Arc::clone(observed)))
        .build())
}

/// Reads a kubeconfig, or several in a `:`-separated list (as in `KUBECONFIG`), merged as
/// kubectl merges them: the first file to set a value wins. Every file must be readable.
fn read_kubeconfigs(list: &Path) -> Result<Kubeconfig, String> {
    let paths: Vec<_> = std::env::split_paths(list.as_os_str())
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    if paths.is_empty() {
        return Err(format!("kubeconfig {:?}: no file named", list.display()));
    }
    paths
        .iter()
        .try_fold(Kubeconfig::default(), |merged, path| {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
            merged
                .merge(file)
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))
        })
}

/// The Calico group/version to read: the setting, or with `auto` the one the API server
/// serves (`crd.projectcalico.org/v1` when present, else `projectcalico.org/v3`).
pub async fn calico_group(
    client: &kube::Client,
    setting: &str,
) -> Result<(String, String), ConnectError> {
    if let Some((group, version)) = setting.split_once('/') {
        return Ok((group.to_string(), version.to_string()));
    }
    let groups = client.list_api_groups().await.map_err(|e| ConnectError {
        message: format!("API discovery (/apis): {}", describe(&e)),
        unreachable: unreachable(&e),
    })?;
    let served = |name: &str| groups.groups.iter().any(|g| g.name == name);
    if served("crd.projectcalico.org") {
        Ok(("crd.projectcalico.org".into(), "v1".into()))
    } else if served("projectcalico.org") {
        Ok(("projectcalico.org".into(), "v3".into()))
    } else {
        Err(ConnectError::config("API discovery: neither crd.projectcalico.org nor projectcalico.org is served (are Calico's CRDs installed?)".into()))
    }
}

/// The API resource of a Calico kind in `group/version`.
pub fn calico_resource(kind: CalicoKind, group: &str, version: &str) -> ApiResource {
    ApiResource {
        group: group.to_string(),
        version: version.to_string(),
        api_version: format!("{group}/{version}"),
        kind: kind.kind().to_string(),
        plural: kind.plural().to_string(),
    }
}

/// A kube error in one line (the API server's message for API errors).
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    }
}

/// Metadata the loader reads; managed fields and kubectl's last-applied copy are dropped.
fn slim_metadata(metadata: &Value) -> Value {
    let mut m = serde_json::Map::new();
    for key in ["name", "namespace", "labels"] {
        if let Some(v) = metadata.get(key) {
            m.insert(key.into(), v.clone());
        }
    }
    if let Some(a) = metadata.get("annotations").and_then(Value::as_object) {
        let kept: serde_json::Map<String, Value> = a
            .iter()
            .filter(|(k, _)| k.as_str() != "kubectl.kubernetes.io/last-applied-configuration")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        m.insert("annotations".into(), Value::Object(kept));
    }
    Value::Object(m)
}

/// A Calico object as loader JSON (None for a BlockAffinity of another node).
pub fn calico_json(
    kind: CalicoKind,
    resource: &ApiResource,
    object: &DynamicObject,
    node: &str,
) -> (String, Option<String>) {
    let name = object.metadata.name.clone().unwrap_or_default();
    let mut value = json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": slim_metadata(&serde_json::to_value(&object.metadata).unwrap_or_default()),
    });
    if let Value::Object(data) = &object.data {
        for (k, v) in data {
            value[k] = v.clone();
        }
    }
    if kind == CalicoKind::BlockAffinity && value["spec"]["node"].as_str() != Some(node) {
        return (name, None);
    }
    (name, Some(value.to_string()))
}

/// A core Node as loader JSON: name, labels and Calico's annotations only.
pub fn node_json(node: &Node) -> (String, Option<String>) {
    let name = node.metadata.name.clone().unwrap_or_default();
    let annotations: BTreeMap<&String, &String> = node
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("projectcalico.org/"))
        .collect();
    let value = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": node.metadata.labels, "annotations": annotations},
    });
    (name, Some(value.to_string()))
}

/// A Secret as loader JSON (its data stays base64, as the loader reads it).
pub fn secret_json(secret: &Secret) -> (String, Option<String>) {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let value = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": secret.metadata.namespace},
        "data": secret.data,
    });
    (name, Some(value.to_string()))
}

/// Calico's `projectcalico.org/hostname-hash` label value of a node: SHA3-256 of the name in
/// unpadded standard base32 (what BlockAffinities carry, so a node lists only its own).
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
        buffer &= (1 << bits) - 1;
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
    fn kubeconfig_lists_are_merged_and_a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let clusters = dir.path().join("clusters");
        let users = dir.path().join("users");
        std::fs::write(&clusters, "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://10.0.0.1:6443'}\ncontexts:\n- name: t\n  context: {cluster: c, user: u}\ncurrent-context: t\n").unwrap();
        std::fs::write(
            &users,
            "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user: {token: x}\n",
        )
        .unwrap();
        let list = std::env::join_paths([&clusters, &users]).unwrap();
        let merged = read_kubeconfigs(Path::new(&list)).unwrap();
        assert_eq!(merged.current_context.as_deref(), Some("t"));
        assert_eq!(merged.clusters.len(), 1);
        assert_eq!(merged.auth_infos.len(), 1);
        let missing = dir.path().join("missing");
        let list = std::env::join_paths([&clusters, &missing]).unwrap();
        let error = read_kubeconfigs(Path::new(&list)).unwrap_err();
        assert!(
            error.starts_with(&format!("kubeconfig {}:", missing.display())),
            "{error}"
        );
    }

    #[test]
    fn hostname_hash_is_sha3_base32() {
        // Python: base64.b32encode(hashlib.sha3_256(b"").digest()) without the padding.
        assert_eq!(
            hostname_hash(""),
            "U774N6F7D3LWMUOBI5LKAYOWML2YB72N4Q5UT6UC3AFEXAHYINFA"
        );
    }

    #[test]
    fn nodes_keep_only_what_the_plan_reads() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n1", "labels": {"rack": "a"}, "annotations": {
                "projectcalico.org/IPv4Address": "10.0.0.1/24", "other": "x"}},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}
        }))
        .unwrap();
        let (name, json) = node_json(&node);
        assert_eq!(name, "n1");
        let json = json.unwrap();
        assert!(
            json.contains("IPv4Address") && json.contains("rack"),
            "{json}"
        );
        assert!(
            !json.contains("other") && !json.contains("status"),
            "{json}"
        );
    }
}
