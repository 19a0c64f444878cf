//! Loading manifests: files, directories, multi-document YAML, v3 and v1 CRD forms.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;

use super::resources::*;
use super::values::{AsNumber, NodeAddress};
use super::{Cluster, V1_METADATA_ANNOTATION};

const GROUP_V3: &str = "projectcalico.org/v3";
const GROUP_V1: &str = "crd.projectcalico.org/v1";

/// Why a datastore could not be loaded. Each message is one line naming the file and, for a bad
/// resource, its kind, name and field path.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path could not be read.
    #[error("{path}: cannot read: {message}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// A file is not valid YAML.
    #[error("{path}: invalid YAML: {message}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// Parser message with line/column.
        message: String,
    },
    /// A resource has an invalid field.
    #[error("{path}: {kind} {name:?}: field {field}: {message}")]
    Field {
        /// The file.
        path: PathBuf,
        /// Resource kind.
        kind: String,
        /// Resource name.
        name: String,
        /// Dotted field path, e.g. `spec.peerIP`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Loads every manifest under `paths` (files, or directories whose `*.yaml`, `*.yml` and
/// `*.json` files are read in name order, not recursively).
pub fn load_paths(paths: &[PathBuf], secret_namespace: &str) -> Result<Cluster, LoadError> {
    let mut cluster = Cluster::default();
    for file in manifest_files(paths)? {
        let text = std::fs::read_to_string(&file).map_err(|e| LoadError::Io {
            path: file.clone(),
            message: e.to_string(),
        })?;
        load_documents(&mut cluster, &file, &text, secret_namespace)?;
    }
    Ok(cluster)
}

/// The manifest files that `paths` name, in load order.
pub(crate) fn manifest_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    for path in paths {
        files.extend(manifest_files_at(path).map_err(|e| LoadError::Io {
            path: path.clone(),
            message: e.to_string(),
        })?);
    }
    Ok(files)
}

/// The manifest files one path names: the file itself, or a directory's `*.yaml`, `*.yml` and
/// `*.json` files (not recursive) in name order.
pub(crate) fn manifest_files_at(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !std::fs::metadata(path)?.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
        })
        .collect();
    entries.sort();
    Ok(entries)
}

/// Adds the resources of one (multi-document) YAML text to `cluster`.
pub fn load_documents(
    cluster: &mut Cluster,
    path: &Path,
    text: &str,
    secret_namespace: &str,
) -> Result<(), LoadError> {
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(document).map_err(|e| LoadError::Yaml {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        load_value(cluster, path, value, secret_namespace)?;
    }
    Ok(())
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn load_value(
    cluster: &mut Cluster,
    path: &Path,
    value: Value,
    secret_namespace: &str,
) -> Result<(), LoadError> {
    if value.is_null() {
        return Ok(());
    }
    let api_version = str_field(&value, "apiVersion").unwrap_or("").to_string();
    let kind = str_field(&value, "kind").unwrap_or("").to_string();
    let name = value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let ctx = Ctx {
        path,
        kind: &kind,
        name: &name,
    };

    if kind.ends_with("List")
        && let Some(Value::Sequence(items)) = value.get("items")
    {
        for item in items.clone() {
            load_value(cluster, path, item, secret_namespace)?;
        }
        return Ok(());
    }
    let calico = api_version == GROUP_V3 || api_version == GROUP_V1;
    let v1_storage = api_version == GROUP_V1;
    match (calico, api_version.as_str(), kind.as_str()) {
        (true, _, "BGPConfiguration") => {
            if name != "default" && !name.starts_with("node.") {
                cluster.notes.push(format!(
                    "{}: BGPConfiguration {name:?} ignored: only \"default\" and \"node.<name>\" have an effect",
                    path.display()
                ));
            }
            let r = ctx.resource::<BgpConfigurationSpec>(
                value,
                v1_storage,
                true,
                &mut cluster.notes,
                Some(Default::default()),
            )?;
            insert(&mut cluster.bgp_configurations, r, &ctx, &mut cluster.notes);
        }
        (true, _, "BGPPeer") => {
            let r = ctx.resource::<BgpPeerSpec>(
                value,
                v1_storage,
                true,
                &mut cluster.notes,
                Some(Default::default()),
            )?;
            if r.spec.peer_ip.is_none()
                && r.spec.peer_selector.is_none()
                && r.spec.local_workload_selector.is_none()
            {
                return Err(ctx.field("spec", "one of peerIP or peerSelector is required"));
            }
            if r.spec.peer_ip.is_some() && r.spec.as_number.0 == 0 {
                return Err(ctx.field("spec.asNumber", "required with peerIP"));
            }
            if r.spec.peer_ip.is_some() && r.spec.peer_selector.is_some() {
                return Err(ctx.field(
                    "spec.peerSelector",
                    "peerIP and peerSelector cannot both be set",
                ));
            }
            if !r.spec.node.is_empty() && r.spec.node_selector.is_some() {
                return Err(ctx.field(
                    "spec.nodeSelector",
                    "node and nodeSelector cannot both be set",
                ));
            }
            insert(&mut cluster.bgp_peers, r, &ctx, &mut cluster.notes);
        }
        (true, _, "BGPFilter") => {
            let r = ctx.resource::<BgpFilterSpec>(
                value,
                v1_storage,
                true,
                &mut cluster.notes,
                Some(Default::default()),
            )?;
            insert(&mut cluster.bgp_filters, r, &ctx, &mut cluster.notes);
        }
        (true, _, "IPPool") => {
            let r =
                ctx.resource::<IpPoolSpec>(value, v1_storage, true, &mut cluster.notes, None)?;
            insert(&mut cluster.ip_pools, r, &ctx, &mut cluster.notes);
        }
        (true, _, "BlockAffinity") => {
            let r = ctx.resource::<BlockAffinitySpec>(
                value,
                v1_storage,
                true,
                &mut cluster.notes,
                None,
            )?;
            insert(&mut cluster.block_affinities, r, &ctx, &mut cluster.notes);
        }
        (true, _, "FelixConfiguration") => {
            let r = ctx.resource::<FelixConfigurationSpec>(
                value,
                v1_storage,
                false,
                &mut cluster.notes,
                Some(Default::default()),
            )?;
            insert(
                &mut cluster.felix_configurations,
                r,
                &ctx,
                &mut cluster.notes,
            );
        }
        (true, _, "Node") => {
            let r = ctx.resource::<NodeSpec>(
                value,
                v1_storage,
                false,
                &mut cluster.notes,
                Some(Default::default()),
            )?;
            insert(&mut cluster.nodes, r, &ctx, &mut cluster.notes);
        }
        (false, "v1", "Node") => {
            let r = ctx.kubernetes_node(value)?;
            insert(&mut cluster.nodes, r, &ctx, &mut cluster.notes);
        }
        (false, "v1", "Secret") => {
            let secret = ctx.secret(value, secret_namespace)?;
            let key = (secret.namespace.clone(), secret.name.clone());
            if cluster.secrets.insert(key, secret).is_some() {
                cluster.notes.push(format!(
                    "{}: Secret {name:?} defined again; the later one wins",
                    path.display()
                ));
            }
        }
        _ => cluster.notes.push(format!(
            "{}: skipped {} {name:?} (apiVersion {api_version:?}): not a kind tern reads",
            path.display(),
            if kind.is_empty() {
                "a document without kind"
            } else {
                kind.as_str()
            },
        )),
    }
    Ok(())
}

fn insert<S>(
    map: &mut BTreeMap<String, Resource<S>>,
    resource: Resource<S>,
    ctx: &Ctx<'_>,
    notes: &mut Vec<String>,
) {
    if map
        .insert(resource.metadata.name.clone(), resource)
        .is_some()
    {
        notes.push(format!(
            "{}: {} {:?} defined again; the later one wins",
            ctx.path.display(),
            ctx.kind,
            ctx.name
        ));
    }
}

struct Ctx<'a> {
    path: &'a Path,
    kind: &'a str,
    name: &'a str,
}

#[derive(Deserialize)]
struct Raw<S> {
    #[serde(default)]
    metadata: ObjectMeta,
    spec: Option<S>,
}

#[derive(Deserialize, Default)]
struct V1Metadata {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl Ctx<'_> {
    fn field(&self, field: impl Into<String>, message: impl Into<String>) -> LoadError {
        LoadError::Field {
            path: self.path.to_path_buf(),
            kind: self.kind.to_string(),
            name: self.name.to_string(),
            field: field.into(),
            message: message.into(),
        }
    }

    fn typed<T: DeserializeOwned>(
        &self,
        value: Value,
        note_ignored: bool,
        notes: &mut Vec<String>,
    ) -> Result<T, LoadError> {
        let mut ignored = Vec::new();
        let mut on_ignored = |p: serde_ignored::Path<'_>| ignored.push(p.to_string());
        let de = serde_ignored::Deserializer::new(value, &mut on_ignored);
        let result = serde_path_to_error::deserialize::<_, T>(de);
        let typed = result.map_err(|e| {
            let field = e.path().to_string();
            let field = if field == "." {
                "(top level)".to_string()
            } else {
                field
            };
            self.field(field, e.into_inner().to_string())
        })?;
        if note_ignored {
            for p in ignored
                .into_iter()
                .map(|p| p.replace(".?", ""))
                .filter(|p| p.starts_with("spec."))
            {
                notes.push(format!(
                    "{}: {} {:?}: unknown field {p} ignored",
                    self.path.display(),
                    self.kind,
                    self.name
                ));
            }
        }
        Ok(typed)
    }

    fn resource<S: DeserializeOwned>(
        &self,
        value: Value,
        v1_storage: bool,
        note_ignored: bool,
        notes: &mut Vec<String>,
        default_spec: Option<S>,
    ) -> Result<Resource<S>, LoadError> {
        if self.name.is_empty() {
            return Err(self.field("metadata.name", "missing"));
        }
        let raw: Raw<S> = self.typed(value, note_ignored, notes)?;
        let mut metadata = raw.metadata;
        if v1_storage && let Some(json) = metadata.annotations.remove(V1_METADATA_ANNOTATION) {
            let inner: V1Metadata = serde_json::from_str(&json).map_err(|e| {
                self.field(
                    format!("metadata.annotations.{V1_METADATA_ANNOTATION}"),
                    e.to_string(),
                )
            })?;
            metadata.labels = inner.labels;
            metadata.annotations = inner.annotations;
        }
        let spec = match (raw.spec, default_spec) {
            (Some(spec), _) => spec,
            (None, Some(default)) => default,
            (None, None) => return Err(self.field("spec", "missing")),
        };
        Ok(Resource { metadata, spec })
    }

    fn kubernetes_node(&self, value: Value) -> Result<Node, LoadError> {
        if self.name.is_empty() {
            return Err(self.field("metadata.name", "missing"));
        }
        #[derive(Deserialize)]
        struct K8sNode {
            #[serde(default)]
            metadata: ObjectMeta,
        }
        let node: K8sNode = self.typed(value, false, &mut Vec::new())?;
        let annotations = &node.metadata.annotations;
        let field = |key: &str| format!("metadata.annotations.projectcalico.org/{key}");
        let get = |key: &str| {
            annotations
                .get(&format!("projectcalico.org/{key}"))
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
        };
        let addr = |key: &str| -> Result<Option<NodeAddress>, LoadError> {
            get(key)
                .map(|s| s.parse().map_err(|e: String| self.field(field(key), e)))
                .transpose()
        };
        let bgp = NodeBgpSpec {
            ipv4_address: addr("IPv4Address")?,
            ipv6_address: addr("IPv6Address")?,
            as_number: get("ASNumber")
                .map(|s| {
                    s.parse::<AsNumber>()
                        .map_err(|e| self.field(field("ASNumber"), e))
                })
                .transpose()?,
            route_reflector_cluster_id: get("RouteReflectorClusterID")
                .map(|s| {
                    s.parse().map_err(|_| {
                        self.field(
                            field("RouteReflectorClusterID"),
                            format!("invalid IPv4 cluster id {s:?}"),
                        )
                    })
                })
                .transpose()?,
            ipv4_ipip_tunnel_addr: get("IPv4IPIPTunnelAddr")
                .map(|s| {
                    s.parse().map_err(|_| {
                        self.field(
                            field("IPv4IPIPTunnelAddr"),
                            format!("invalid address {s:?}"),
                        )
                    })
                })
                .transpose()?,
        };
        let has_bgp = bgp != NodeBgpSpec::default();
        Ok(Resource {
            metadata: ObjectMeta {
                annotations: BTreeMap::new(),
                ..node.metadata
            },
            spec: NodeSpec {
                bgp: has_bgp.then_some(bgp),
            },
        })
    }

    fn secret(&self, value: Value, default_namespace: &str) -> Result<Secret, LoadError> {
        if self.name.is_empty() {
            return Err(self.field("metadata.name", "missing"));
        }
        #[derive(Deserialize)]
        struct K8sSecret {
            #[serde(default)]
            metadata: ObjectMeta,
            #[serde(flatten)]
            body: SecretBody,
        }
        let raw: K8sSecret = self.typed(value, false, &mut Vec::new())?;
        let mut values = BTreeMap::new();
        for (key, encoded) in &raw.body.data {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| self.field(format!("data.{key}"), "not valid base64"))?;
            values.insert(key.clone(), decoded);
        }
        for (key, plain) in raw.body.string_data {
            values.insert(key, plain.into_bytes());
        }
        Ok(Secret {
            namespace: raw
                .metadata
                .namespace
                .unwrap_or_else(|| default_namespace.to_string()),
            name: raw.metadata.name,
            values,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AsNumber, Community};

    fn load(text: &str) -> Result<Cluster, LoadError> {
        let mut c = Cluster::default();
        load_documents(&mut c, Path::new("test.yaml"), text, "kube-system")?;
        Ok(c)
    }

    #[test]
    fn multi_document_v3() {
        let c = load(
            r#"
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec:
  asNumber: 64513
  nodeToNodeMeshEnabled: false
  serviceClusterIPs: [{cidr: 10.96.0.0/12}]
  communities: [{name: c1, value: "65000:1"}]
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor}
spec:
  peerIP: "10.0.0.1:1790"
  asNumber: "1.10"
  nodeSelector: rack == 'a'
---
# empty document
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: np}
"#,
        )
        .unwrap();
        let cfg = c.global_bgp_configuration().unwrap();
        assert_eq!(cfg.as_number, Some(AsNumber(64513)));
        assert_eq!(cfg.communities[0].value, Community::Standard(65000, 1));
        let peer = &c.bgp_peers["tor"].spec;
        assert_eq!(peer.peer_ip.unwrap().port, Some(1790));
        assert_eq!(peer.as_number, AsNumber(65546));
        assert_eq!(c.notes.len(), 1);
        assert!(c.notes[0].contains("NetworkPolicy"), "{:?}", c.notes);
    }

    #[test]
    fn v1_storage_form_unpacks_metadata_and_string_bools() {
        let c = load(
            r#"
apiVersion: crd.projectcalico.org/v1
kind: Node
metadata:
  name: n1
  annotations:
    projectcalico.org/metadata: '{"labels":{"rack":"a"},"annotations":{"x":"y"}}'
spec:
  bgp: {ipv4Address: 10.0.0.1/24}
---
apiVersion: crd.projectcalico.org/v1
kind: BlockAffinity
metadata: {name: n1-10-244-0-0-26}
spec: {state: confirmed, node: n1, cidr: 10.244.0.0/26, deleted: "false", type: host}
"#,
        )
        .unwrap();
        let node = &c.nodes["n1"];
        assert_eq!(node.metadata.labels["rack"], "a");
        assert_eq!(node.metadata.annotations["x"], "y");
        assert!(!c.block_affinities["n1-10-244-0-0-26"].spec.deleted.0);
    }

    #[test]
    fn kubernetes_node_and_secret() {
        let c = load(
            r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata:
    name: k1
    labels: {kubernetes.io/hostname: k1}
    annotations:
      projectcalico.org/IPv4Address: 192.168.1.10/24
      projectcalico.org/ASNumber: "65001"
      projectcalico.org/RouteReflectorClusterID: 224.0.0.1
  status: {addresses: []}
- apiVersion: v1
  kind: Secret
  metadata: {name: bgp}
  data: {a: aHVudGVyMg==}
  stringData: {b: plain}
"#,
        )
        .unwrap();
        let bgp = c.nodes["k1"].spec.bgp.as_ref().unwrap();
        assert_eq!(
            bgp.ipv4_address.unwrap().subnet().to_string(),
            "192.168.1.0/24"
        );
        assert_eq!(bgp.as_number, Some(AsNumber(65001)));
        let s = &c.secrets[&("kube-system".to_string(), "bgp".to_string())];
        assert_eq!(s.values["a"], b"hunter2");
        assert_eq!(s.values["b"], b"plain");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn errors_name_file_kind_resource_and_field() {
        let e = load(
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: bad}\nspec: {peerIP: 10.0.0.300, asNumber: 1}\n",
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("test.yaml: BGPPeer \"bad\": field spec.peerIP: invalid peer address"),
            "{text}"
        );
        let e = load("apiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata: {name: f}\nspec:\n  exportV4:\n  - {action: Maybe}\n").unwrap_err();
        assert!(
            e.to_string().contains("field spec.exportV4[0].action"),
            "{e}"
        );
        let e = load("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {nodeSelector: \"rack ==\", peerIP: 10.0.0.1}\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("field spec.nodeSelector: invalid selector"),
            "{e}"
        );
        let e = load("apiVersion: v1\nkind: Node\nmetadata: {name: k, annotations: {projectcalico.org/ASNumber: x}}\n").unwrap_err();
        assert!(e.to_string().contains("projectcalico.org/ASNumber"), "{e}");
        let e = load("a: [").unwrap_err();
        assert!(matches!(e, LoadError::Yaml { .. }));
        let e = load("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {asNumber: 1}\n").unwrap_err();
        assert!(e.to_string().contains("peerIP or peerSelector"), "{e}");
    }

    #[test]
    fn unknown_spec_fields_are_noted_not_fatal() {
        let c = load("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p, resourceVersion: '1'}\nspec: {peerIP: 10.0.0.1, asNumber: 1, peerIp: x}\n").unwrap();
        assert_eq!(c.notes.len(), 1);
        assert!(c.notes[0].contains("spec.peerIp"), "{:?}", c.notes);
    }

    #[test]
    fn directories_load_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yaml"), "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.1.0.0/16}\n").unwrap();
        std::fs::write(dir.path().join("a.yaml"), "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16}\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not yaml: [").unwrap();
        let c = load_paths(&[dir.path().to_path_buf()], "kube-system").unwrap();
        assert_eq!(c.ip_pools["p"].spec.cidr.to_string(), "10.1.0.0/16");
        assert_eq!(c.notes.len(), 1, "duplicate noted");
        let e = load_paths(&[dir.path().join("missing.yaml")], "kube-system").unwrap_err();
        assert!(e.to_string().contains("missing.yaml: cannot read"), "{e}");
    }
}
