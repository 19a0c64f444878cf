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
mod tests;
