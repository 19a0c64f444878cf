//! What the watches have seen, and when it may be acted on: one store per watched source
//! (a Calico kind, Nodes, one referenced Secret), each replaced whole when its (re)list
//! completes, so a failed or partial list is never used; the snapshot is in sync once every
//! source has listed once (confd's rule). A Secret's watch that fails counts as settled: its
//! peering fails closed while everything else goes on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::model::{Cluster, load_documents};
use crate::status::Timestamp;

/// A failed request of a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What failed, naming the resource.
    pub message: String,
    /// When (for status output).
    pub at: Timestamp,
    /// Its place in the order shared with the successes of the client's requests (see
    /// `observe`): a later success of the same path ends it.
    pub seq: u64,
    /// The API server did not answer (rather than answering with an error).
    pub unreachable: bool,
}

/// A Calico kind tern watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CalicoKind {
    /// BGPConfiguration.
    BgpConfiguration,
    /// BGPPeer.
    BgpPeer,
    /// BGPFilter.
    BgpFilter,
    /// IPPool.
    IpPool,
    /// BlockAffinity (this node's).
    BlockAffinity,
    /// FelixConfiguration (route programming of pools).
    FelixConfiguration,
}

impl CalicoKind {
    /// Every kind.
    pub const ALL: [CalicoKind; 6] = [
        CalicoKind::BgpConfiguration,
        CalicoKind::BgpPeer,
        CalicoKind::BgpFilter,
        CalicoKind::IpPool,
        CalicoKind::BlockAffinity,
        CalicoKind::FelixConfiguration,
    ];

    /// The kind's name.
    pub fn kind(self) -> &'static str {
        match self {
            CalicoKind::BgpConfiguration => "BGPConfiguration",
            CalicoKind::BgpPeer => "BGPPeer",
            CalicoKind::BgpFilter => "BGPFilter",
            CalicoKind::IpPool => "IPPool",
            CalicoKind::BlockAffinity => "BlockAffinity",
            CalicoKind::FelixConfiguration => "FelixConfiguration",
        }
    }

    /// The resource (URL plural).
    pub fn plural(self) -> &'static str {
        match self {
            CalicoKind::BgpConfiguration => "bgpconfigurations",
            CalicoKind::BgpPeer => "bgppeers",
            CalicoKind::BgpFilter => "bgpfilters",
            CalicoKind::IpPool => "ippools",
            CalicoKind::BlockAffinity => "blockaffinities",
            CalicoKind::FelixConfiguration => "felixconfigurations",
        }
    }
}

/// One watched source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// A Calico kind.
    Calico(CalicoKind),
    /// Core v1 Nodes.
    Nodes,
    /// One Secret (by name) in the secret namespace.
    Secret(String),
    /// Core v1 Services (watched while a service range is configured).
    Services,
    /// `discovery.k8s.io/v1` EndpointSlices (watched with the Services).
    EndpointSlices,
}

/// What a watch reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEvent {
    /// A (re)list starts.
    Init,
    /// An object of the (re)list: name and its loader JSON.
    InitApply(String, String),
    /// The (re)list is complete.
    InitDone,
    /// An object was added or changed.
    Apply(String, String),
    /// An object was deleted.
    Delete(String),
    /// The watch failed (it is retried); the message names the resource.
    Error(Failure),
}

/// Each object parsed once, when it arrives, by the loader the file datastore uses (its own
/// small model: the resource, or the problem that skipped it).
#[derive(Debug, Default)]
struct SourceState {
    objects: BTreeMap<String, Cluster>,
    /// The list in progress, applied at `InitDone`.
    buffer: Option<BTreeMap<String, Cluster>>,
    listed: bool,
    error: Option<Failure>,
    /// Failures since it last worked.
    failures: u64,
}

/// The snapshot of every source.
#[derive(Debug, Default)]
pub struct SyncState {
    sources: BTreeMap<Source, SourceState>,
    /// Where Secrets are (and the default namespace of passwords' references).
    secret_namespace: String,
}

/// One object through the loader.
fn parse(source: &Source, name: &str, json: &str, secret_namespace: &str) -> Cluster {
    let origin = match source {
        Source::Calico(kind) => format!("kubernetes {}/{name}", kind.plural()),
        Source::Nodes => format!("kubernetes nodes/{name}"),
        Source::Secret(_) => format!("kubernetes secrets/{secret_namespace}/{name}"),
        Source::Services => format!("kubernetes services/{name}"),
        Source::EndpointSlices => format!("kubernetes endpointslices/{name}"),
    };
    let mut cluster = Cluster::default();
    load_documents(&mut cluster, Path::new(&origin), json, secret_namespace);
    cluster
}

/// A source's state for status output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStatus {
    /// Which source.
    pub source: Source,
    /// Listed at least once.
    pub listed: bool,
    /// Objects held.
    pub objects: usize,
    /// The current failure: the last error since the last good event or success of its
    /// requests.
    pub error: Option<Failure>,
    /// Failures since it last worked.
    pub failures: u64,
}

impl SyncState {
    /// An empty snapshot; Secrets are read in `secret_namespace`.
    pub fn new(secret_namespace: &str) -> SyncState {
        SyncState {
            sources: BTreeMap::new(),
            secret_namespace: secret_namespace.to_string(),
        }
    }

    /// Starts tracking a source (not listed yet).
    pub fn add(&mut self, source: Source) {
        self.sources.entry(source).or_default();
    }

    /// Stops tracking a source and forgets its objects.
    pub fn remove(&mut self, source: &Source) {
        self.sources.remove(source);
    }

    /// Whether a source is tracked.
    pub fn has(&self, source: &Source) -> bool {
        self.sources.contains_key(source)
    }

    /// The tracked Secret names.
    pub fn secrets(&self) -> BTreeSet<String> {
        self.sources
            .keys()
            .filter_map(|s| match s {
                Source::Secret(name) => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    /// Applies one event; true when the usable snapshot changed.
    pub fn apply(&mut self, source: &Source, event: SourceEvent) -> bool {
        let Some(state) = self.sources.get_mut(source) else {
            return false;
        };
        let namespace = &self.secret_namespace;
        match event {
            SourceEvent::Init => {
                state.buffer = Some(BTreeMap::new());
                false
            }
            SourceEvent::InitApply(name, json) => {
                let parsed = parse(source, &name, &json, namespace);
                state.buffer.get_or_insert_default().insert(name, parsed);
                false
            }
            SourceEvent::InitDone => {
                let listed = state.buffer.take().unwrap_or_default();
                let changed = !state.listed || listed != state.objects;
                state.objects = listed;
                state.listed = true;
                state.error = None;
                state.failures = 0;
                changed
            }
            SourceEvent::Apply(name, json) => {
                state.error = None;
                state.failures = 0;
                let parsed = parse(source, &name, &json, namespace);
                let changed = state.objects.get(&name) != Some(&parsed);
                if changed {
                    state.objects.insert(name, parsed);
                }
                changed
            }
            SourceEvent::Delete(name) => {
                state.error = None;
                state.failures = 0;
                state.objects.remove(&name).is_some()
            }
            SourceEvent::Error(failure) => {
                // A list cut short is dropped; what was listed before stays.
                state.buffer = None;
                let first_failure = !state.listed && state.error.is_none();
                state.error = Some(failure);
                state.failures += 1;
                // A Secret that cannot be read settles its peering (fail closed).
                first_failure && matches!(source, Source::Secret(_))
            }
        }
    }

    /// Ends the failures that a later success of their requests outdates: `last_success`
    /// gives, for a source, the order number of the last successful request of its path.
    /// Returns whether any ended.
    pub fn settle(&mut self, last_success: impl Fn(&Source) -> Option<u64>) -> bool {
        let mut ended = false;
        for (source, state) in &mut self.sources {
            if let Some(error) = &state.error
                && last_success(source).is_some_and(|ok| ok > error.seq)
            {
                state.error = None;
                state.failures = 0;
                ended = true;
            }
        }
        ended
    }

    /// The objects of one source, once it has listed.
    pub fn listed_cluster(&self, source: &Source) -> Option<Cluster> {
        let state = self.sources.get(source).filter(|s| s.listed)?;
        let mut cluster = Cluster::default();
        for one in state.objects.values() {
            cluster.absorb(one);
        }
        Some(cluster)
    }

    /// Every source has listed once (a Secret's may have failed instead).
    pub fn in_sync(&self) -> bool {
        self.sources.iter().all(|(source, state)| {
            state.listed || (matches!(source, Source::Secret(_)) && state.error.is_some())
        })
    }

    /// Every source's state.
    pub fn status(&self) -> Vec<SourceStatus> {
        self.sources
            .iter()
            .map(|(source, s)| SourceStatus {
                source: source.clone(),
                listed: s.listed,
                objects: s.objects.len(),
                error: s.error.clone(),
                failures: s.failures,
            })
            .collect()
    }

    /// The snapshot as the model the file datastore also builds (each object went through the
    /// same loader when it arrived); a resource that cannot be used is left out and reported
    /// by kind and name.
    pub fn cluster(&self) -> (Cluster, Vec<String>) {
        let mut cluster = Cluster::default();
        for state in self.sources.values() {
            for one in state.objects.values() {
                cluster.absorb(one);
            }
        }
        // What could not be used is in `cluster.problems` (and so among the plan's warnings).
        let skipped = cluster.problems.iter().map(ToString::to_string).collect();
        (cluster, skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: &str = r#"{"apiVersion":"crd.projectcalico.org/v1","kind":"IPPool","metadata":{"name":"p"},"spec":{"cidr":"10.0.0.0/16"}}"#;
    const BAD: &str = r#"{"apiVersion":"crd.projectcalico.org/v1","kind":"BGPPeer","metadata":{"name":"bad"},"spec":{"peerIP":"x","asNumber":1}}"#;

    fn failure(message: &str, seq: u64) -> SourceEvent {
        SourceEvent::Error(Failure {
            message: message.into(),
            at: Timestamp(seq),
            seq,
            unreachable: false,
        })
    }

    #[test]
    fn nothing_is_in_sync_until_every_source_listed_and_partial_lists_are_dropped() {
        let pools = Source::Calico(CalicoKind::IpPool);
        let peers = Source::Calico(CalicoKind::BgpPeer);
        let mut s = SyncState::new("kube-system");
        s.add(pools.clone());
        s.add(peers.clone());
        s.apply(&pools, SourceEvent::Init);
        s.apply(&pools, SourceEvent::InitApply("p".into(), POOL.into()));
        assert!(s.apply(&pools, SourceEvent::InitDone));
        assert!(!s.in_sync());
        // A list that fails half way is not used.
        s.apply(&peers, SourceEvent::Init);
        s.apply(&peers, SourceEvent::InitApply("bad".into(), BAD.into()));
        assert!(!s.apply(&peers, failure("500", 1)));
        assert!(!s.in_sync());
        s.apply(&peers, SourceEvent::Init);
        s.apply(&peers, SourceEvent::InitApply("bad".into(), BAD.into()));
        assert!(s.apply(&peers, SourceEvent::InitDone));
        assert!(s.in_sync());
        // The bad peer is reported by kind and name; the pool is used.
        let (cluster, skipped) = s.cluster();
        assert_eq!(cluster.ip_pools.len(), 1);
        assert!(cluster.bgp_peers.is_empty());
        assert!(
            skipped[0].starts_with("kubernetes bgppeers/bad: BGPPeer \"bad\": field spec.peerIP"),
            "{skipped:?}"
        );
        // A relist with the same objects changes nothing; errors after sync keep the state.
        s.apply(&pools, SourceEvent::Init);
        s.apply(&pools, SourceEvent::InitApply("p".into(), POOL.into()));
        assert!(!s.apply(&pools, SourceEvent::InitDone));
        assert!(!s.apply(&pools, failure("403", 5)));
        assert!(!s.apply(&pools, failure("403", 7)));
        assert_eq!(s.cluster().0.ip_pools.len(), 1);
        let status = |s: &SyncState| s.status().into_iter().find(|x| x.source == pools).unwrap();
        assert_eq!(status(&s).failures, 2);
        // A success of the pools' requests before the last failure does not end it; a later
        // one does (a watch restarted silently).
        assert!(!s.settle(|x| (*x == pools).then_some(6)));
        assert!(status(&s).error.is_some());
        assert!(s.settle(|x| (*x == pools).then_some(8)));
        assert_eq!((status(&s).error, status(&s).failures), (None, 0));
        assert!(s.apply(&pools, SourceEvent::Delete("p".into())));
        assert!(s.cluster().0.ip_pools.is_empty());
    }

    #[test]
    fn a_secret_that_cannot_be_read_settles() {
        let secret = Source::Secret("bgp".into());
        let mut s = SyncState::new("kube-system");
        s.add(secret.clone());
        assert!(!s.in_sync());
        assert!(s.apply(&secret, failure("forbidden", 1)));
        assert!(s.in_sync());
        assert_eq!(s.secrets().into_iter().collect::<Vec<_>>(), ["bgp"]);
        s.remove(&secret);
        assert!(s.secrets().is_empty());
    }
}
