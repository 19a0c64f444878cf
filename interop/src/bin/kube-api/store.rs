//! The object store: resource types, objects by key, a global resource version, the change
//! history that watches replay from, compaction, paged-list snapshots, and selectors.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

pub use crate::selector::Selectors;

/// One served resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    /// API group, `""` for core.
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Plural (the URL segment).
    pub plural: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
}

impl ResourceType {
    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural` or `plural.group`, as Kubernetes names a resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

const fn t(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> ResourceType {
    ResourceType {
        group,
        version,
        plural,
        kind,
        namespaced,
    }
}

/// Core and built-in groups, always served.
pub const BUILTIN: &[ResourceType] = &[
    t("", "v1", "nodes", "Node", false),
    t("", "v1", "namespaces", "Namespace", false),
    t("", "v1", "secrets", "Secret", true),
    t("", "v1", "services", "Service", true),
    t("", "v1", "serviceaccounts", "ServiceAccount", true),
    t("", "v1", "configmaps", "ConfigMap", true),
    t(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        true,
    ),
    t(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
    ),
    t(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
    ),
    t("rbac.authorization.k8s.io", "v1", "roles", "Role", true),
    t(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
    ),
];

/// The Calico kinds, served under each enabled Calico group.
pub const CALICO_KINDS: &[(&str, &str)] = &[
    ("bgpconfigurations", "BGPConfiguration"),
    ("bgppeers", "BGPPeer"),
    ("bgpfilters", "BGPFilter"),
    ("ippools", "IPPool"),
    ("blockaffinities", "BlockAffinity"),
    ("felixconfigurations", "FelixConfiguration"),
];

/// The Calico groups with their version.
pub const CALICO_GROUPS: &[(&str, &str)] =
    &[("crd.projectcalico.org", "v1"), ("projectcalico.org", "v3")];

/// Index into the served types.
pub type TypeId = usize;

/// Object key: type, namespace (`""` when cluster-scoped), name.
pub type Key = (TypeId, String, String);

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted.
    Deleted,
}

/// One write, as watches see it.
#[derive(Debug)]
pub struct Change {
    /// Resource version of the write.
    pub rv: u64,
    /// The object's type.
    pub ty: TypeId,
    /// Namespace.
    pub namespace: String,
    /// What happened.
    pub kind: ChangeKind,
    /// The object after the write (for a delete: its last state at the delete's version).
    pub object: Arc<Value>,
    /// The object before (updates).
    pub prev: Option<Arc<Value>>,
}

/// Why a write or read failed: HTTP code, reason, message.
#[derive(Debug, Clone)]
pub struct Failure {
    /// HTTP status.
    pub code: u16,
    /// Kubernetes `reason`.
    pub reason: &'static str,
    /// Message.
    pub message: String,
}

impl Failure {
    /// A failure.
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            code,
            reason,
            message: message.into(),
        }
    }

    /// The `Status` object.
    pub fn status(&self) -> Value {
        status(self.code, self.reason, &self.message)
    }
}

/// A `Status` object.
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": if code < 300 { "Success" } else { "Failure" },
        "message": message, "reason": reason, "code": code,
    })
}

/// The rest of a paged list.
#[derive(Debug)]
struct Snapshot {
    rv: u64,
    ty: TypeId,
    items: Vec<Arc<Value>>,
    offset: usize,
}

/// A page of a list.
#[derive(Debug)]
pub struct Page {
    /// Items.
    pub items: Vec<Arc<Value>>,
    /// Version of the list.
    pub rv: u64,
    /// Continue token when more follow.
    pub next: Option<String>,
    /// Items after this page.
    pub remaining: usize,
}

/// What a watch starts with.
pub struct WatchStart {
    /// Events to send first (replayed history or synthetic ADDED).
    pub initial: Vec<Arc<Change>>,
    /// Live changes after those.
    pub live: broadcast::Receiver<Arc<Change>>,
    /// Version the watch starts at.
    pub rv: u64,
}

/// The store.
pub struct Store {
    /// Served types.
    pub types: Vec<ResourceType>,
    rv: u64,
    uid: u64,
    objects: BTreeMap<Key, Arc<Value>>,
    history: VecDeque<Arc<Change>>,
    history_cap: usize,
    /// Watches may start at this version or later; older ones get 410.
    compacted: u64,
    snapshots: HashMap<String, Snapshot>,
    next_token: u64,
    tx: broadcast::Sender<Arc<Change>>,
}

impl Store {
    /// An empty store serving `types`, keeping up to `history_cap` changes.
    pub fn new(types: Vec<ResourceType>, history_cap: usize) -> Store {
        let (tx, _) = broadcast::channel(65_536);
        Store {
            types,
            rv: 1,
            uid: 0,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_cap,
            compacted: 0,
            snapshots: HashMap::new(),
            next_token: 0,
            tx,
        }
    }

    /// The current resource version.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// Type by group, version and plural.
    pub fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<TypeId> {
        self.types
            .iter()
            .position(|t| t.group == group && t.version == version && t.plural == plural)
    }

    /// Type by apiVersion and kind.
    pub fn type_of_kind(&self, api_version: &str, kind: &str) -> Option<TypeId> {
        self.types
            .iter()
            .position(|t| t.api_version() == api_version && t.kind == kind)
    }

    /// One object.
    pub fn get(&self, ty: TypeId, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.objects
            .get(&(ty, namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Every object of a type (in a namespace when given).
    pub fn all(&self, ty: TypeId, namespace: Option<&str>) -> Vec<Arc<Value>> {
        self.objects
            .range((ty, String::new(), String::new())..)
            .take_while(|((t, _, _), _)| *t == ty)
            .filter(|((_, ns, _), _)| namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| Arc::clone(v))
            .collect()
    }

    fn record(&mut self, change: Change) -> Arc<Change> {
        let change = Arc::new(change);
        self.history.push_back(Arc::clone(&change));
        while self.history.len() > self.history_cap {
            if let Some(old) = self.history.pop_front() {
                self.compacted = self.compacted.max(old.rv);
            }
        }
        let _ = self.tx.send(Arc::clone(&change));
        change
    }

    /// Creates an object (metadata filled in). 409 when it exists.
    pub fn create(
        &mut self,
        ty: TypeId,
        namespace: &str,
        mut object: Value,
    ) -> Result<Arc<Value>, Failure> {
        let rt = self.types[ty];
        let name = meta_str(&object, "name").unwrap_or_default();
        if name.is_empty() {
            return Err(Failure::new(
                422,
                "Invalid",
                format!("{} \"\" is invalid: metadata.name: Required value", rt.kind),
            ));
        }
        let key = (ty, namespace.to_string(), name.clone());
        if self.objects.contains_key(&key) {
            return Err(Failure::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", rt.qualified()),
            ));
        }
        self.rv += 1;
        self.uid += 1;
        normalize(&mut object, &rt, namespace);
        let meta = &mut object["metadata"];
        meta["resourceVersion"] = json!(self.rv.to_string());
        meta["uid"] = json!(format!("00000000-0000-4000-8000-{:012x}", self.uid));
        meta["creationTimestamp"] = json!(now_rfc3339());
        if meta.get("generation").is_none() {
            meta["generation"] = json!(1);
        }
        let object = Arc::new(object);
        self.objects.insert(key, Arc::clone(&object));
        self.record(Change {
            rv: self.rv,
            ty,
            namespace: namespace.to_string(),
            kind: ChangeKind::Added,
            object: Arc::clone(&object),
            prev: None,
        });
        Ok(object)
    }

    /// Replaces an object (404 when missing, 409 on a stale resourceVersion).
    pub fn update(
        &mut self,
        ty: TypeId,
        namespace: &str,
        name: &str,
        mut object: Value,
    ) -> Result<Arc<Value>, Failure> {
        let rt = self.types[ty];
        let key = (ty, namespace.to_string(), name.to_string());
        let Some(prev) = self.objects.get(&key).cloned() else {
            return Err(not_found(&rt, name));
        };
        if meta_str(&object, "name").is_some_and(|n| n != name) {
            return Err(Failure::new(
                400,
                "BadRequest",
                "the name of the object does not match the name on the URL",
            ));
        }
        if let Some(rv) = meta_str(&object, "resourceVersion")
            && !rv.is_empty()
            && Some(rv.as_str()) != meta_str(&prev, "resourceVersion").as_deref()
        {
            return Err(Failure::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    rt.qualified()
                ),
            ));
        }
        normalize(&mut object, &rt, namespace);
        object["metadata"]["name"] = json!(name);
        for keep in ["uid", "creationTimestamp", "generation"] {
            if let Some(v) = prev["metadata"].get(keep) {
                object["metadata"][keep] = v.clone();
            }
        }
        if object == *prev {
            return Ok(prev);
        }
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let object = Arc::new(object);
        self.objects.insert(key, Arc::clone(&object));
        self.record(Change {
            rv: self.rv,
            ty,
            namespace: namespace.to_string(),
            kind: ChangeKind::Modified,
            object: Arc::clone(&object),
            prev: Some(prev),
        });
        Ok(object)
    }

    /// Deletes an object, returning its last state.
    pub fn delete(
        &mut self,
        ty: TypeId,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Value>, Failure> {
        let rt = self.types[ty];
        let key = (ty, namespace.to_string(), name.to_string());
        let Some(prev) = self.objects.remove(&key) else {
            return Err(not_found(&rt, name));
        };
        self.rv += 1;
        let mut last = (*prev).clone();
        last["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let last = Arc::new(last);
        self.record(Change {
            rv: self.rv,
            ty,
            namespace: namespace.to_string(),
            kind: ChangeKind::Deleted,
            object: Arc::clone(&last),
            prev: Some(prev),
        });
        Ok(last)
    }

    /// A list page: the first (`token` None) or the next of a snapshot.
    pub fn list(
        &mut self,
        ty: TypeId,
        namespace: Option<&str>,
        select: &Selectors,
        limit: usize,
        token: Option<&str>,
    ) -> Result<Page, Failure> {
        let mut snapshot = match token {
            Some(token) => {
                let snapshot = self.snapshots.remove(token).ok_or_else(|| {
                    Failure::new(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                    )
                })?;
                if snapshot.ty != ty {
                    return Err(Failure::new(
                        400,
                        "BadRequest",
                        "continue token is for another resource",
                    ));
                }
                snapshot
            }
            None => Snapshot {
                rv: self.rv,
                ty,
                items: self
                    .all(ty, namespace)
                    .into_iter()
                    .filter(|o| select.matches(o))
                    .collect(),
                offset: 0,
            },
        };
        let end = if limit == 0 {
            snapshot.items.len()
        } else {
            (snapshot.offset + limit).min(snapshot.items.len())
        };
        let items = snapshot.items[snapshot.offset..end].to_vec();
        let remaining = snapshot.items.len() - end;
        let rv = snapshot.rv;
        let next = if remaining > 0 {
            self.next_token += 1;
            let token = format!("c{}-{}", rv, self.next_token);
            snapshot.offset = end;
            self.snapshots.insert(token.clone(), snapshot);
            Some(token)
        } else {
            None
        };
        Ok(Page {
            items,
            rv,
            next,
            remaining,
        })
    }

    /// Starts a watch from `rv` (None: the current state as ADDED events first).
    pub fn watch(
        &self,
        ty: TypeId,
        namespace: Option<&str>,
        select: &Selectors,
        rv: Option<u64>,
    ) -> Result<WatchStart, Failure> {
        let live = self.tx.subscribe();
        let initial = match rv {
            None => self
                .all(ty, namespace)
                .into_iter()
                .filter(|o| select.matches(o))
                .map(|o| {
                    Arc::new(Change {
                        rv: self.rv,
                        ty,
                        namespace: meta_str(&o, "namespace").unwrap_or_default(),
                        kind: ChangeKind::Added,
                        object: o,
                        prev: None,
                    })
                })
                .collect(),
            Some(from) if from < self.compacted => {
                return Err(Failure::new(
                    410,
                    "Expired",
                    format!("too old resource version: {from} ({})", self.compacted),
                ));
            }
            Some(from) => self
                .history
                .iter()
                .filter(|c| c.rv > from)
                .cloned()
                .collect(),
        };
        Ok(WatchStart {
            initial,
            live,
            rv: self.rv,
        })
    }

    /// Compacts: the history is dropped, paged-list snapshots expire, and a watch from any
    /// version seen so far gets 410 (the version moves on by one, as other writes in a real
    /// cluster do).
    pub fn compact(&mut self) {
        self.rv += 1;
        self.compacted = self.rv;
        self.history.clear();
        self.snapshots.clear();
    }
}

fn not_found(rt: &ResourceType, name: &str) -> Failure {
    Failure::new(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", rt.qualified()),
    )
}

/// `metadata.<field>` as a string.
pub fn meta_str(object: &Value, field: &str) -> Option<String> {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Sets apiVersion, kind and namespace as the type says; a Secret's `stringData` is merged
/// into `data` (base64), as the real server stores it.
fn normalize(object: &mut Value, rt: &ResourceType, namespace: &str) {
    if rt.kind == "Secret"
        && let Some(Value::Object(plain)) =
            object.as_object_mut().and_then(|o| o.remove("stringData"))
    {
        use base64::Engine as _;
        if !object.get("data").is_some_and(Value::is_object) {
            object["data"] = json!({});
        }
        for (k, v) in plain {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap_or(""));
            object["data"][k] = json!(encoded);
        }
    }
    if !object.is_object() {
        *object = json!({});
    }
    object["apiVersion"] = json!(rt.api_version());
    object["kind"] = json!(rt.kind);
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    if rt.namespaced {
        object["metadata"]["namespace"] = json!(namespace);
    } else if let Some(m) = object["metadata"].as_object_mut() {
        m.remove("namespace");
    }
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::new(BUILTIN.to_vec(), 100)
    }

    #[test]
    fn pages_history_and_compaction() {
        let mut s = store();
        for n in ["c", "a", "b"] {
            s.create(0, "", json!({"metadata": {"name": n}})).unwrap();
        }
        let all = Selectors::default();
        let p1 = s.list(0, None, &all, 2, None).unwrap();
        assert_eq!(p1.items.len(), 2);
        assert_eq!(meta_str(&p1.items[0], "name").unwrap(), "a");
        let p2 = s.list(0, None, &all, 2, p1.next.as_deref()).unwrap();
        assert_eq!(p2.items.len(), 1);
        assert!(p2.next.is_none());
        let from = p1.rv;
        s.update(
            0,
            "",
            "a",
            json!({"metadata": {"name": "a", "labels": {"k": "v"}}}),
        )
        .unwrap();
        let w = s.watch(0, None, &all, Some(from)).unwrap();
        assert_eq!(w.initial.len(), 1);
        assert_eq!(w.initial[0].kind, ChangeKind::Modified);
        let p = s.list(0, None, &all, 1, None).unwrap();
        s.compact();
        assert_eq!(s.watch(0, None, &all, Some(from)).err().unwrap().code, 410);
        assert_eq!(
            s.list(0, None, &all, 1, p.next.as_deref())
                .unwrap_err()
                .code,
            410
        );
        assert_eq!(
            s.create(0, "", json!({"metadata": {"name": "a"}}))
                .unwrap_err()
                .code,
            409
        );
        assert!(now_rfc3339().ends_with('Z'));
    }
}
