//! Credentials (a kubeconfig, else in-cluster), the Calico API group (discovery), and the
//! objects as the loader reads them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
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

/// The key of a namespaced object in its source: `namespace/name`.
fn namespaced_key(metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    format!(
        "{}/{}",
        metadata.namespace.as_deref().unwrap_or(""),
        metadata.name.as_deref().unwrap_or("")
    )
}

/// A Service as loader JSON with only what advertisement reads (type, addresses, traffic
/// policies, families, ingress IPs); `None` ("not ours") for one that can never be advertised:
/// `ExternalName`, or no cluster IP (headless).
pub fn service_json(service: &Service) -> (String, Option<String>) {
    let key = namespaced_key(&service.metadata);
    let Some(spec) = &service.spec else {
        return (key, None);
    };
    let cluster_ip = spec.cluster_ip.as_deref().unwrap_or("");
    if spec.type_.as_deref() == Some("ExternalName")
        || cluster_ip.is_empty()
        || cluster_ip == "None"
    {
        return (key, None);
    }
    let ingress: Vec<Value> = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_ref().map(|ip| json!({"ip": ip})))
        .collect();
    let value = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": service.metadata.name, "namespace": service.metadata.namespace},
        "spec": {
            "type": spec.type_, "clusterIP": spec.cluster_ip, "clusterIPs": spec.cluster_ips,
            "externalIPs": spec.external_ips, "loadBalancerIP": spec.load_balancer_ip,
            "externalTrafficPolicy": spec.external_traffic_policy,
            "internalTrafficPolicy": spec.internal_traffic_policy,
            "ipFamilies": spec.ip_families,
        },
        "status": {"loadBalancer": {"ingress": ingress}},
    });
    (key, Some(strip_nulls(value).to_string()))
}

/// An EndpointSlice as loader JSON with only the endpoints that can make `node` advertise its
/// Service: one ready endpoint on `node` and one ready endpoint elsewhere (for Services
/// advertised while any endpoint is ready); addresses dropped. `None` ("not ours") for a
/// slice without a Service label, of FQDN addresses, or without such an endpoint.
pub fn endpoint_slice_json(slice: &EndpointSlice, node: &str) -> (String, Option<String>) {
    let key = namespaced_key(&slice.metadata);
    let service = slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(crate::model::SERVICE_NAME_LABEL));
    let (Some(service), "IPv4" | "IPv6") = (service, slice.address_type.as_str()) else {
        return (key, None);
    };
    let ready = |e: &&k8s_openapi::api::discovery::v1::Endpoint| {
        e.conditions.as_ref().and_then(|c| c.ready) != Some(false)
    };
    let local = slice
        .endpoints
        .iter()
        .filter(ready)
        .find(|e| e.node_name.as_deref() == Some(node));
    let other = slice
        .endpoints
        .iter()
        .filter(ready)
        .find(|e| e.node_name.as_deref() != Some(node));
    let endpoints: Vec<Value> = local
        .into_iter()
        .chain(other)
        .map(|e| json!({"addresses": [], "nodeName": e.node_name}))
        .collect();
    if endpoints.is_empty() {
        return (key, None);
    }
    let value = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": slice.metadata.name, "namespace": slice.metadata.namespace,
                     "labels": {crate::model::SERVICE_NAME_LABEL: service}},
        "addressType": slice.address_type,
        "endpoints": endpoints,
    });
    (key, Some(strip_nulls(value).to_string()))
}

/// Drops `null` members (fields the object does not set).
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        other => other,
    }
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
    fn slices_keep_one_ready_local_and_one_ready_other_endpoint() {
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "web-abc", "namespace": "shop",
                         "labels": {"kubernetes.io/service-name": "web", "x": "y"}},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.244.1.1"], "nodeName": "n1", "conditions": {"ready": false}},
                {"addresses": ["10.244.2.1"], "nodeName": "n2", "conditions": {"ready": true}},
                {"addresses": ["10.244.3.1"], "nodeName": "n3"},
                {"addresses": ["10.244.1.2"], "nodeName": "n1"},
                {"addresses": ["10.244.1.3"], "nodeName": "n1"}
            ]
        }))
        .unwrap();
        let (key, json) = endpoint_slice_json(&slice, "n1");
        assert_eq!(key, "shop/web-abc");
        let v: Value = serde_json::from_str(&json.unwrap()).unwrap();
        assert_eq!(
            v["endpoints"],
            json!([{"addresses": [], "nodeName": "n1"}, {"addresses": [], "nodeName": "n2"}])
        );
        assert_eq!(
            v["metadata"]["labels"],
            json!({"kubernetes.io/service-name": "web"})
        );
        // Nothing ready: nothing kept; FQDN or no Service label: not ours.
        let none: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "s", "namespace": "a", "labels": {"kubernetes.io/service-name": "w"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"], "nodeName": "n1", "conditions": {"ready": false}}]
        }))
        .unwrap();
        assert_eq!(endpoint_slice_json(&none, "n1").1, None);
        let mut fqdn = slice.clone();
        fqdn.address_type = "FQDN".into();
        assert_eq!(endpoint_slice_json(&fqdn, "n1").1, None);
    }

    #[test]
    fn services_keep_addresses_and_policies_only() {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"},
                         "annotations": {"big": "x"}},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                     "externalTrafficPolicy": "Local", "ipFamilies": ["IPv4"],
                     "ports": [{"port": 80}], "selector": {"app": "web"}},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.5"}, {"hostname": "lb.example"}]}}
        }))
        .unwrap();
        let (key, json) = service_json(&service);
        assert_eq!(key, "shop/web");
        let json = json.unwrap();
        assert!(
            !json.contains("ports") && !json.contains("big") && !json.contains("hostname"),
            "{json}"
        );
        let mut cluster = crate::model::Cluster::default();
        crate::model::load_documents(
            &mut cluster,
            std::path::Path::new("k"),
            &json,
            "kube-system",
        );
        assert!(cluster.problems.is_empty(), "{:?}", cluster.problems);
        let s = &cluster.services[&("shop".to_string(), "web".to_string())];
        assert_eq!(
            s.ingress_ips,
            ["203.0.113.5".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(
            s.external_traffic_policy,
            Some(crate::model::TrafficPolicy::Local)
        );
        // Headless and ExternalName Services are never advertised: not kept.
        let mut headless = service.clone();
        headless.spec.as_mut().unwrap().cluster_ip = Some("None".into());
        assert_eq!(service_json(&headless).1, None);
        let mut name = service;
        name.spec.as_mut().unwrap().type_ = Some("ExternalName".into());
        assert_eq!(service_json(&name).1, None);
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
