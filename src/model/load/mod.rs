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

/// Every kind of the Calico API groups (`projectcalico.org/v3` and the `crd.projectcalico.org/v1`
/// storage form): calicoctl knows them, so tern notes and skips the ones it does not read, and
/// reports any other kind in those groups as unknown.
const CALICO_KINDS: &[&str] = &[
    "BGPConfiguration",
    "BGPFilter",
    "BGPPeer",
    "BlockAffinity",
    "CalicoNodeStatus",
    "ClusterInformation",
    "FelixConfiguration",
    "GlobalNetworkPolicy",
    "GlobalNetworkSet",
    "HostEndpoint",
    "IPAMBlock",
    "IPAMConfig",
    "IPAMConfiguration",
    "IPAMHandle",
    "IPPool",
    "IPReservation",
    "KubeControllersConfiguration",
    "NetworkPolicy",
    "NetworkSet",
    "Node",
    "Profile",
    "StagedGlobalNetworkPolicy",
    "StagedKubernetesNetworkPolicy",
    "StagedNetworkPolicy",
    "Tier",
    "WorkloadEndpoint",
];

const GROUP_V3: &str = "projectcalico.org/v3";
const GROUP_V1: &str = "crd.projectcalico.org/v1";

/// Why manifests could not be read at all: a path that cannot be read. Problems with single
/// resources are not errors: they are [`ResourceProblem`]s, the resource is skipped and the rest
/// loads.
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
}

/// One resource (or document) tern cannot use. It is skipped; every other resource loads.
/// `Display` is one line naming where it came from, the kind and name, the field and what is
/// wrong, e.g. `a.yaml: BGPPeer "tor": field spec.peerIP = '10.0.0.300' (invalid IP address
/// ...); skipped`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceProblem {
    /// Where the resource came from: a file path, or the datastore (e.g. `kubernetes`).
    pub origin: String,
    /// Resource kind (empty when the document could not be read as YAML).
    pub kind: String,
    /// Resource name (may be empty).
    pub name: String,
    /// Dotted field path (e.g. `spec.peerIP`), empty when the problem is the whole document.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ResourceProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.origin)?;
        if self.kind.is_empty() {
            write!(f, "document")?;
        } else {
            write!(f, "{} {:?}", self.kind, self.name)?;
        }
        if !self.field.is_empty() {
            write!(f, ": field {}", self.field)?;
        }
        // Calico's form for a bad value: `field peerIP = '10.0.0.300' (invalid IP address)`.
        let separator = if self.message.starts_with("= ") {
            " "
        } else {
            ": "
        };
        write!(f, "{separator}{}; skipped", self.message)
    }
}

/// One parsed manifest document and where it came from (a file path, or a datastore name such as
/// `kubernetes`), as [`load_resources`] takes it.
#[derive(Debug, Clone)]
pub struct Document {
    /// Where it came from, used in problems and notes.
    pub origin: String,
    /// The parsed document (a resource or a `*List`).
    pub value: Value,
}

/// Loads parsed resource documents into a [`Cluster`]. Never fails: a resource tern cannot use
/// is named in [`Cluster::problems`] and skipped, and everything else loads (a datastore is
/// never refused as a whole because of one resource).
pub fn load_resources(
    documents: impl IntoIterator<Item = Document>,
    secret_namespace: &str,
) -> Cluster {
    let mut cluster = Cluster::default();
    for document in documents {
        add_resource(
            &mut cluster,
            &document.origin,
            document.value,
            secret_namespace,
        );
    }
    cluster
}

/// Adds one parsed document (a resource or a `*List`) to `cluster`; a problem is recorded in
/// [`Cluster::problems`] and the resource skipped.
pub fn add_resource(cluster: &mut Cluster, origin: &str, value: Value, secret_namespace: &str) {
    load_value(cluster, origin, value, secret_namespace);
}

/// Loads every manifest under `paths` (files, or directories whose `*.yaml`, `*.yml` and
/// `*.json` files are read in name order, not recursively). Fails only when a path cannot be
/// read; bad documents and resources are in [`Cluster::problems`].
pub fn load_paths(paths: &[PathBuf], secret_namespace: &str) -> Result<Cluster, LoadError> {
    let mut cluster = Cluster::default();
    for file in manifest_files(paths)? {
        let text = std::fs::read_to_string(&file).map_err(|e| LoadError::Io {
            path: file.clone(),
            message: e.to_string(),
        })?;
        load_documents(&mut cluster, &file, &text, secret_namespace);
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

/// Adds the resources of one (multi-document) YAML text to `cluster`. Each document is parsed on
/// its own: one that is not valid YAML is a problem naming its line, and the others load.
pub fn load_documents(cluster: &mut Cluster, path: &Path, text: &str, secret_namespace: &str) {
    let origin = path.display().to_string();
    for document in split_documents(text) {
        match serde_yaml_ng::from_str::<Value>(&document) {
            Ok(value) => load_value(cluster, &origin, value, secret_namespace),
            Err(e) => cluster.problems.push(ResourceProblem {
                origin: origin.clone(),
                kind: String::new(),
                name: String::new(),
                field: String::new(),
                message: format!("invalid YAML: {e}"),
            }),
        }
    }
}

/// Splits a multi-document YAML text at its `---` document markers (a marker is always at the
/// start of a line). Each part is padded with the blank lines before it, so that the line
/// numbers of YAML errors are those of the whole file.
pub(crate) fn split_documents(text: &str) -> Vec<String> {
    let is_marker = |line: &str| {
        line.strip_prefix("---")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
    };
    let mut parts = vec![String::new()];
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        if is_marker(line) {
            parts.push("\n".repeat(line_no));
        }
        if let Some(part) = parts.last_mut() {
            part.push_str(line);
        }
    }
    // Keep the parts with something besides markers, directives, blank lines and comments.
    parts.retain(|part| {
        part.lines().any(|line| {
            let line = if is_marker(line) { &line[3..] } else { line }.trim();
            !line.is_empty() && !line.starts_with('#') && !line.starts_with('%')
        })
    });
    parts
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn load_value(cluster: &mut Cluster, origin: &str, value: Value, secret_namespace: &str) {
    if let Err(problem) = load_one(cluster, origin, value, secret_namespace) {
        cluster.problems.push(problem);
    }
}

fn load_one(
    cluster: &mut Cluster,
    origin: &str,
    value: Value,
    secret_namespace: &str,
) -> Result<(), ResourceProblem> {
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
        origin,
        kind: &kind,
        name: &name,
    };

    if kind.ends_with("List")
        && let Some(Value::Sequence(items)) = value.get("items")
    {
        for item in items.clone() {
            load_value(cluster, origin, item, secret_namespace);
        }
        return Ok(());
    }
    let calico = api_version == GROUP_V3 || api_version == GROUP_V1;
    let v1_storage = api_version == GROUP_V1;
    match (calico, api_version.as_str(), kind.as_str()) {
        (true, _, "BGPConfiguration") => {
            if name != "default" && !name.starts_with("node.") {
                cluster.notes.push(format!(
                    "{origin}: BGPConfiguration {name:?} ignored: only \"default\" and \"node.<name>\" have an effect"
                ));
            }
            let r = ctx.resource::<BgpConfigurationSpec>(
                value,
                v1_storage,
                true,
                &mut cluster.unknown,
                Some(Default::default()),
            )?;
            insert(&mut cluster.bgp_configurations, r, &ctx, &mut cluster.notes);
        }
        (true, _, "BGPPeer") => {
            let r = ctx.resource::<BgpPeerSpec>(
                value,
                v1_storage,
                true,
                &mut cluster.unknown,
                Some(Default::default()),
            )?;
            if r.spec.peer_ip.is_none()
                && r.spec.peer_selector.is_none()
                && r.spec.local_workload_selector.is_none()
            {
                return Err(ctx.field("spec", "one of peerIP or peerSelector is required"));
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
                &mut cluster.unknown,
                Some(Default::default()),
            )?;
            insert(&mut cluster.bgp_filters, r, &ctx, &mut cluster.notes);
        }
        (true, _, "IPPool") => {
            let r =
                ctx.resource::<IpPoolSpec>(value, v1_storage, true, &mut cluster.unknown, None)?;
            insert(&mut cluster.ip_pools, r, &ctx, &mut cluster.notes);
        }
        (true, _, "BlockAffinity") => {
            let r = ctx.resource::<BlockAffinitySpec>(
                value,
                v1_storage,
                true,
                &mut cluster.unknown,
                None,
            )?;
            insert(&mut cluster.block_affinities, r, &ctx, &mut cluster.notes);
        }
        (true, _, "FelixConfiguration") => {
            let r = ctx.resource::<FelixConfigurationSpec>(
                value,
                v1_storage,
                false,
                &mut cluster.unknown,
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
                &mut cluster.unknown,
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
                    "{origin}: Secret {name:?} defined again; the later one wins"
                ));
            }
        }
        (false, "v1", "Service") => {
            let manifest: super::services::ServiceManifest =
                ctx.typed(value, false, &mut Vec::new())?;
            if name.is_empty() {
                return Err(ctx.field("metadata.name", "missing"));
            }
            let service = manifest
                .into_service("default")
                .map_err(|(field, message)| ctx.field(field, message))?;
            let key = (service.namespace.clone(), service.name.clone());
            if cluster.services.insert(key, service).is_some() {
                cluster.notes.push(format!(
                    "{origin}: Service {name:?} defined again; the later one wins"
                ));
            }
        }
        (false, "discovery.k8s.io/v1", "EndpointSlice") => {
            let manifest: super::services::EndpointSliceManifest =
                ctx.typed(value, false, &mut Vec::new())?;
            if name.is_empty() {
                return Err(ctx.field("metadata.name", "missing"));
            }
            let slice = manifest
                .into_slice("default")
                .map_err(|(field, message)| ctx.field(field, message))?;
            let key = (slice.namespace.clone(), slice.name.clone());
            if cluster.endpoint_slices.insert(key, slice).is_some() {
                cluster.notes.push(format!(
                    "{origin}: EndpointSlice {name:?} defined again; the later one wins"
                ));
            }
        }
        (true, _, _) if !CALICO_KINDS.contains(&kind.as_str()) => {
            let hint = CALICO_KINDS
                .iter()
                .find(|k| k.eq_ignore_ascii_case(&kind))
                .map(|k| format!("; kinds are case-sensitive: did you mean {k}?"))
                .unwrap_or_default();
            cluster.unknown.push(format!(
                "{origin}: {kind} {name:?}: unknown resource type ({kind}) and/or version ({api_version}): \
                 calicoctl refuses it{hint}; tern skips it"
            ));
        }
        _ => cluster.notes.push(format!(
            "{origin}: skipped {} {name:?} (apiVersion {api_version:?}): not a kind tern reads",
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
            ctx.origin, ctx.kind, ctx.name
        ));
    }
}

struct Ctx<'a> {
    origin: &'a str,
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
    fn field(&self, field: impl Into<String>, message: impl Into<String>) -> ResourceProblem {
        ResourceProblem {
            origin: self.origin.to_string(),
            kind: self.kind.to_string(),
            name: self.name.to_string(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// Deserializes `value`; a spec field tern does not know is recorded in `unknown` (when
    /// `strict_spec`), and an error names the field, its value and what Calico expects.
    fn typed<T: DeserializeOwned>(
        &self,
        value: Value,
        strict_spec: bool,
        unknown: &mut Vec<String>,
    ) -> Result<T, ResourceProblem> {
        let original = value.clone();
        let mut ignored = Vec::new();
        let mut on_ignored = |p: serde_ignored::Path<'_>| ignored.push(p.to_string());
        let de = serde_ignored::Deserializer::new(value, &mut on_ignored);
        let result = serde_path_to_error::deserialize::<_, T>(de);
        let typed = result.map_err(|e| {
            let field = e.path().to_string();
            let message = e.into_inner().to_string();
            if field == "." {
                return self.field("(top level)", message);
            }
            let shown = value_at(&original, &field).and_then(scalar_text);
            self.field(&field, calico_words(&field, shown.as_deref(), &message))
        })?;
        if strict_spec {
            for p in ignored
                .into_iter()
                .map(|p| p.replace(".?", ""))
                .filter(|p| p.starts_with("spec."))
            {
                let leaf = p.rsplit('.').next().unwrap_or(&p).to_string();
                unknown.push(format!(
                    "{}: {} {:?}: unknown field {p}: calicoctl refuses the resource \
                     (json: unknown field {leaf:?}); tern ignores the field",
                    self.origin, self.kind, self.name
                ));
            }
        }
        Ok(typed)
    }

    fn resource<S: DeserializeOwned>(
        &self,
        value: Value,
        v1_storage: bool,
        strict_spec: bool,
        unknown: &mut Vec<String>,
        default_spec: Option<S>,
    ) -> Result<Resource<S>, ResourceProblem> {
        if self.name.is_empty() {
            return Err(self.field("metadata.name", "missing"));
        }
        let raw: Raw<S> = self.typed(value, strict_spec, unknown)?;
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

    fn kubernetes_node(&self, value: Value) -> Result<Node, ResourceProblem> {
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
        let addr = |key: &str| -> Result<Option<NodeAddress>, ResourceProblem> {
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

    fn secret(&self, value: Value, default_namespace: &str) -> Result<Secret, ResourceProblem> {
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

/// The value at a field path as `serde_path_to_error` prints it (`spec.exportV4[0].cidr`).
fn value_at<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    let mut current = root;
    for segment in path.split('.') {
        let (key, indices) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        if !key.is_empty() {
            current = current.get(key)?;
        }
        for index in indices
            .split(['[', ']'])
            .filter(|s| !s.is_empty())
            .map(str::parse::<usize>)
        {
            current = current.get(index.ok()?)?;
        }
    }
    Some(current)
}

/// A scalar as the user wrote it (strings unquoted), for error messages.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// What a numeric field holds, in Calico's terms.
fn numeric_expectation(leaf: &str) -> &'static str {
    match leaf {
        "ttlSecurity" => "a TTL security hop count, 0 to 255",
        "blockSize" => "a block size (a prefix length: 20 to 32 for IPv4, 116 to 128 for IPv6)",
        "min" | "max" => "a prefix length, 0 to 32 (IPv4) or 0 to 128 (IPv6)",
        "listenPort" => "a port number, 1 to 65535",
        "ipv4NormalRoutePriority" | "ipv6NormalRoutePriority" | "priority" | "value" => {
            "a route priority, 1 to 2147483646"
        }
        "numAllowedLocalASNumbers" => "a count of times the local AS may appear, 0 or more",
        _ => "a non-negative integer in range",
    }
}

/// A deserialization error reworded the way Calico's validation says it: the value shown, and
/// what is expected instead of Rust type names (`expected u8`).
fn calico_words(field: &str, shown: Option<&str>, message: &str) -> String {
    let leaf = field
        .rsplit('.')
        .next()
        .unwrap_or(field)
        .split('[')
        .next()
        .unwrap_or(field);
    let reason = if [
        "expected u8",
        "expected u16",
        "expected u32",
        "expected u64",
    ]
    .iter()
    .any(|t| message.contains(t))
    {
        format!("expected {}", numeric_expectation(leaf))
    } else if message.contains("invalid IP address syntax") {
        if leaf == "cidr" {
            "invalid CIDR (expected an address/prefix length, e.g. 10.0.0.0/16)".to_string()
        } else {
            "invalid IP address".to_string()
        }
    } else if let Some(rest) = message.strip_prefix("unknown variant ") {
        // "`x`, expected one of `a`, `b`" -> "must be one of a, b"
        let expected = rest
            .split_once("expected ")
            .map(|(_, e)| e)
            .unwrap_or(rest)
            .replace("one of ", "")
            .split(", ")
            .map(|v| v.trim_matches('`'))
            .filter(|v| !v.is_empty())
            .collect::<Vec<_>>()
            .join(", ");
        format!("must be one of {expected}")
    } else {
        message.to_string()
    };
    match shown {
        Some(v) if !reason.contains(v) => format!("= '{v}' ({reason})"),
        _ => reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AsNumber, Community};

    /// Loads `text`; `Err` with the first problem when any resource was skipped.
    fn load(text: &str) -> Result<Cluster, ResourceProblem> {
        let c = load_all(text);
        match c.problems.first() {
            Some(p) => Err(p.clone()),
            None => Ok(c),
        }
    }

    fn load_all(text: &str) -> Cluster {
        let mut c = Cluster::default();
        load_documents(&mut c, Path::new("test.yaml"), text, "kube-system");
        c
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
        assert!(
            e.kind.is_empty() && e.message.starts_with("invalid YAML"),
            "{e}"
        );
        let e = load("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {asNumber: 1}\n").unwrap_err();
        assert!(e.to_string().contains("peerIP or peerSelector"), "{e}");
    }

    #[test]
    fn unknown_spec_fields_and_kinds_are_named_not_fatal() {
        let c = load("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p, resourceVersion: '1'}\nspec: {peerIP: 10.0.0.1, asNumber: 1, nodeSelektor: all()}\n---\n\
                      apiVersion: projectcalico.org/v3\nkind: BgpPeer\nmetadata: {name: q}\nspec: {peerIP: 10.0.0.2, asNumber: 1}\n---\n\
                      apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: np}\n").unwrap();
        // The peer loads (the daemon ignores the field, as calicoctl would not have let it in).
        assert!(c.bgp_peers.contains_key("p"));
        assert_eq!(c.unknown.len(), 2, "{:?}", c.unknown);
        assert!(
            c.unknown[0].contains("BGPPeer \"p\": unknown field spec.nodeSelektor")
                && c.unknown[0].contains("calicoctl refuses"),
            "{:?}",
            c.unknown
        );
        assert!(
            c.unknown[1]
                .contains("unknown resource type (BgpPeer) and/or version (projectcalico.org/v3)")
                && c.unknown[1].contains("did you mean BGPPeer?"),
            "{:?}",
            c.unknown
        );
        // A Calico kind tern does not read is only a note.
        assert_eq!(c.notes.len(), 1);
        assert!(c.notes[0].contains("NetworkPolicy"), "{:?}", c.notes);
    }

    /// Errors show the value and say what Calico expects, not Rust's type names.
    #[test]
    fn errors_say_what_calico_expects_with_the_value() {
        let problem = |spec: &str| {
            load(&format!(
                "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: p}}\nspec: {spec}\n"
            ))
            .unwrap_err()
            .to_string()
        };
        let t = problem("{peerIP: 10.0.0.1, asNumber: 1, ttlSecurity: 300}");
        assert!(
            t.contains(
                "field spec.ttlSecurity = '300' (expected a TTL security hop count, 0 to 255)"
            ),
            "{t}"
        );
        assert!(!t.contains("u8"), "{t}");
        let t = problem("{peerIP: 10.0.0.1, asNumber: 1, reachableBy: 10.0.0.999}");
        assert!(
            t.contains("field spec.reachableBy = '10.0.0.999' (invalid IP address)"),
            "{t}"
        );
        let t = problem("{peerIP: 10.0.0.1, asNumber: 1.10}");
        assert!(
            t.contains("field spec.asNumber") && t.contains("\"1.10\""),
            "{t}"
        );
        assert!(!t.contains("\"1.1\""), "must not suggest \"1.1\": {t}");
        let t = problem("{peerIP: 10.0.0.1, asNumber: 1, nextHopMode: Sometimes}");
        assert!(
            t.contains("field spec.nextHopMode = 'Sometimes' (must be one of Auto, Self, Keep)"),
            "{t}"
        );
    }

    #[test]
    fn documents_split_at_markers_keeping_line_numbers() {
        let text = "a: 1\n---\nb: 2\n--- # c\nc: 3\n---\n\n---\nkey: |\n  --- not a marker\n";
        let parts = split_documents(text);
        assert_eq!(parts.len(), 4, "{parts:?}");
        assert_eq!(parts[0], "a: 1\n");
        assert_eq!(parts[1], "\n---\nb: 2\n");
        assert_eq!(parts[2], "\n\n\n--- # c\nc: 3\n");
        assert_eq!(
            parts[3],
            "\n".repeat(7) + "---\nkey: |\n  --- not a marker\n"
        );
        assert!(split_documents("").is_empty());
        assert!(split_documents("---\n").is_empty());
        assert_eq!(split_documents("%YAML 1.2\n---\na: 1\n").len(), 1);
        assert_eq!(split_documents("---x: 1\n"), vec!["---x: 1\n".to_string()]);
    }

    /// One resource tern cannot use is named and skipped; the rest of the datastore loads.
    #[test]
    fn a_bad_resource_is_skipped_and_the_rest_loads() {
        let c = load_all(
            "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: good}\nspec: {cidr: 10.0.0.0/16}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: bad}\nspec: {peerIP: 10.0.0.300, asNumber: 1}\n---\n\
             kind: [\n---\n\
             apiVersion: v1\nkind: List\nitems:\n- apiVersion: projectcalico.org/v3\n  kind: BlockAffinity\n  metadata: {name: b1}\n  spec: {node: n1, cidr: 10.0.0.0/26, state: sideways}\n\
             - apiVersion: projectcalico.org/v3\n  kind: BlockAffinity\n  metadata: {name: b2}\n  spec: {node: n1, cidr: 10.0.0.64/26}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: good-peer}\nspec: {peerIP: 10.0.0.1, asNumber: 1}\n",
        );
        assert!(c.ip_pools.contains_key("good"));
        assert!(c.bgp_peers.contains_key("good-peer"));
        assert!(!c.bgp_peers.contains_key("bad"));
        assert_eq!(c.block_affinities.keys().collect::<Vec<_>>(), ["b2"]);
        let problems: Vec<String> = c.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(
            problems[0].starts_with("test.yaml: BGPPeer \"bad\": field spec.peerIP")
                && problems[0].ends_with("; skipped"),
            "{problems:#?}"
        );
        assert!(
            problems[1].starts_with("test.yaml: document: invalid YAML"),
            "{problems:#?}"
        );
        assert!(problems[1].contains("line 12"), "{problems:#?}");
        assert!(
            problems[2].starts_with("test.yaml: BlockAffinity \"b1\": field spec.state"),
            "{problems:#?}"
        );
    }

    /// The same from parsed documents, as a datastore other than files hands them over.
    #[test]
    fn parsed_documents_load_with_problems_collected() {
        let doc = |origin: &str, text: &str| Document {
            origin: origin.to_string(),
            value: serde_yaml_ng::from_str(text).unwrap(),
        };
        let c = load_resources(
            [
                doc(
                    "kubernetes",
                    "apiVersion: crd.projectcalico.org/v1\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16}",
                ),
                doc(
                    "kubernetes",
                    "apiVersion: crd.projectcalico.org/v1\nkind: IPPool\nmetadata: {name: q}\nspec: {cidr: banana}",
                ),
            ],
            "kube-system",
        );
        assert_eq!(c.ip_pools.keys().collect::<Vec<_>>(), ["p"]);
        assert_eq!(c.problems.len(), 1);
        assert_eq!(c.problems[0].origin, "kubernetes");
        assert_eq!(
            (c.problems[0].kind.as_str(), c.problems[0].name.as_str()),
            ("IPPool", "q")
        );
    }

    /// Older Calico versions (and confd's own test corpus) store `state: ""`: implicitly
    /// confirmed, as is a missing state.
    #[test]
    fn empty_or_missing_affinity_state_is_confirmed() {
        let c = load(
            "apiVersion: projectcalico.org/v3\nkind: BlockAffinity\nmetadata: {name: a}\nspec: {node: n1, cidr: 10.0.0.0/26, state: \"\"}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: BlockAffinity\nmetadata: {name: b}\nspec: {node: n1, cidr: 10.0.1.0/26}\n",
        )
        .unwrap();
        for name in ["a", "b"] {
            assert_eq!(
                c.block_affinities[name].spec.state,
                AffinityState::Confirmed
            );
        }
    }

    /// `routeReflector: true` (a YAML boolean) is the label value "true", as Calico reads it.
    #[test]
    fn label_values_typed_by_yaml_are_strings() {
        let c = load(
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: n1\n  labels: {routeReflector: true, rack: 7}\nspec: {bgp: {ipv4Address: 10.0.0.1/24}}\n",
        )
        .unwrap();
        let labels = &c.nodes["n1"].metadata.labels;
        assert_eq!(labels["routeReflector"], "true");
        assert_eq!(labels["rack"], "7");
    }

    /// A BGPPeer with `peerIP` and no `asNumber` (peering with a Calico node by address, the AS
    /// taken from that node) loads.
    #[test]
    fn peer_ip_without_as_number_loads() {
        let c = load(
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: \"fe0a::2\"}\n",
        )
        .unwrap();
        assert_eq!(c.bgp_peers["p"].spec.as_number, AsNumber(0));
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
