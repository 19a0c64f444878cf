//! The watches and the task that turns what they see into plans.
//!
//! ```text
//!  watcher per source (kube-runtime) ──(Source, SourceEvent)──▶ datastore task ──DatastoreEvent──▶ daemon
//!  (Calico kinds, Nodes, each           mpsc                    (SyncState, gate, debounce,
//!   referenced Secret by name)                                    model, plan, diff)
//! ```
//!
//! Each watcher lists then watches (resuming from its last resource version, relisting on 410
//! Gone) and retries a failure with kube-runtime's default backoff (0.8 s doubling to 30 s,
//! jittered), reporting the error by resource. The task connects (credentials, discovery) with the same backoff.
//! The status it publishes (state, since when, first sync, last error, retries) comes from
//! what it saw: failures reported by the watchers, ended by their next good event or by a
//! later successful request of the same path (`observe`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DynamicObject};
use kube::runtime::utils::Backoff as _;
use kube::runtime::watcher::{self, DefaultBackoff, Event};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::client::{
    self, ConnectError, calico_json, calico_resource, describe, endpoint_slice_json, node_json,
    secret_json, service_json,
};
use super::observe::Observed;
use super::sync::{CalicoKind, Failure, Source, SourceEvent, SourceStatus, SyncState};
use super::{KubernetesConfig, KubernetesStatus};
use crate::io::datastore::DatastoreEvent;
use crate::model::Cluster;
use crate::plan::{Plan, PlanDiff, compute};
use crate::status::{DatastoreError, SourceSummary, SyncState as State, Timestamp};

fn now_ts() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

/// Retry delays: kube-runtime's default (client-go's reflector parameters: 0.8 s doubling to
/// 30 s, with jitter so that many nodes do not retry in step, reset after 120 s without a
/// failure), also reset by each good event.
fn backoff() -> DefaultBackoff {
    DefaultBackoff::default()
}

/// The next delay of `backoff`.
fn next_delay(backoff: &mut DefaultBackoff) -> Duration {
    backoff.next().unwrap_or(Duration::from_secs(30))
}

type Sender = mpsc::Sender<(Source, SourceEvent)>;

/// Drives one kube-runtime watcher, converting objects with `convert` (a `None` JSON means
/// "not ours": treated as deleted) and sending its events; failures are sent and retried
/// after a backoff.
fn spawn_watch<K>(
    api: Api<K>,
    config: watcher::Config,
    source: Source,
    resource: String,
    tx: Sender,
    observed: Arc<Observed>,
    convert: impl Fn(&K) -> (String, Option<String>) + Send + 'static,
) -> JoinHandle<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher::watcher(api, config));
        let mut backoff = backoff();
        while let Some(item) = stream.next().await {
            let event = match item {
                Ok(Event::Init) => SourceEvent::Init,
                Ok(Event::InitApply(o)) => match convert(&o) {
                    (name, Some(json)) => SourceEvent::InitApply(name, json),
                    (_, None) => continue,
                },
                Ok(Event::InitDone) => SourceEvent::InitDone,
                Ok(Event::Apply(o)) => match convert(&o) {
                    (name, Some(json)) => SourceEvent::Apply(name, json),
                    (name, None) => SourceEvent::Delete(name),
                },
                Ok(Event::Delete(o)) => SourceEvent::Delete(convert(&o).0),
                Err(e) => {
                    let (message, unreachable) = match &e {
                        watcher::Error::InitialListFailed(e) => (
                            format!("cannot list {resource}: {}", describe(e)),
                            client::unreachable(e),
                        ),
                        watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => (
                            format!("cannot watch {resource}: {}", describe(e)),
                            client::unreachable(e),
                        ),
                        watcher::Error::WatchError(status) => (
                            format!("watch of {resource}: {} ({})", status.message, status.code),
                            false,
                        ),
                        other => (format!("{resource}: {other}"), false),
                    };
                    let delay = next_delay(&mut backoff);
                    let failure = Failure {
                        message: format!("{message}; retrying in {delay:?}"),
                        at: now_ts(),
                        seq: observed.next(),
                        unreachable,
                    };
                    if tx
                        .send((source.clone(), SourceEvent::Error(failure)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            backoff.reset();
            if tx.send((source.clone(), event)).await.is_err() {
                return;
            }
        }
    })
}

/// What the task holds once connected.
struct Connected {
    client: kube::Client,
    group: (String, String),
    watchers: BTreeMap<Source, JoinHandle<()>>,
    /// Each source's request path (what `observe` records successes by).
    paths: BTreeMap<Source, String>,
    observed: Arc<Observed>,
}

impl Connected {
    fn watch(&mut self, source: Source, config: &KubernetesConfig, tx: &Sender) {
        let watch = watcher::Config::default().page_size(config.page_size);
        let handle = match &source {
            Source::Calico(kind) => {
                let kind = *kind;
                let resource = calico_resource(kind, &self.group.0, &self.group.1);
                let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
                let watch = if kind == CalicoKind::BlockAffinity {
                    // As confd lists them: by the node's hostname-hash label.
                    watch.labels(&format!(
                        "projectcalico.org/hostname-hash={}",
                        client::hostname_hash(&config.node)
                    ))
                } else {
                    watch
                };
                let name = format!("{}.{}", kind.plural(), self.group.0);
                let node = config.node.clone();
                self.paths
                    .insert(source.clone(), api.resource_url().to_owned());
                spawn_watch(
                    api,
                    watch,
                    source.clone(),
                    name,
                    tx.clone(),
                    Arc::clone(&self.observed),
                    move |o| calico_json(kind, &resource, o, &node),
                )
            }
            Source::Nodes => {
                let api = Api::<Node>::all(self.client.clone());
                self.paths
                    .insert(source.clone(), api.resource_url().to_owned());
                spawn_watch(
                    api,
                    watch,
                    source.clone(),
                    "nodes".into(),
                    tx.clone(),
                    Arc::clone(&self.observed),
                    node_json,
                )
            }
            Source::Secret(name) => {
                let api = Api::<Secret>::namespaced(self.client.clone(), &config.secret_namespace);
                self.paths
                    .insert(source.clone(), api.resource_url().to_owned());
                spawn_watch(
                    api,
                    watch.fields(&format!("metadata.name={name}")),
                    source.clone(),
                    format!(
                        "secrets \"{name}\" in namespace {}",
                        config.secret_namespace
                    ),
                    tx.clone(),
                    Arc::clone(&self.observed),
                    secret_json,
                )
            }
            Source::Services => {
                let api = Api::<Service>::all(self.client.clone());
                self.paths
                    .insert(source.clone(), api.resource_url().to_owned());
                spawn_watch(
                    api,
                    watch,
                    source.clone(),
                    "services".into(),
                    tx.clone(),
                    Arc::clone(&self.observed),
                    service_json,
                )
            }
            Source::EndpointSlices => {
                let node = config.node.clone();
                let api = Api::<EndpointSlice>::all(self.client.clone());
                self.paths
                    .insert(source.clone(), api.resource_url().to_owned());
                spawn_watch(
                    api,
                    // Slices of a Service, not of a headless one (the labels kube-proxy
                    // selects by); which endpoints are on this node cannot be selected.
                    watch.labels(&format!(
                        "{},!service.kubernetes.io/headless",
                        crate::model::SERVICE_NAME_LABEL
                    )),
                    source.clone(),
                    "endpointslices.discovery.k8s.io".into(),
                    tx.clone(),
                    Arc::clone(&self.observed),
                    move |o| endpoint_slice_json(o, &node),
                )
            }
        };
        if let Some(old) = self.watchers.insert(source, handle) {
            old.abort();
        }
    }

    fn unwatch(&mut self, source: &Source) {
        if let Some(handle) = self.watchers.remove(source) {
            handle.abort();
        }
        self.paths.remove(source);
    }

    /// Ends the sources' failures that a later success of their path outdates.
    fn settle(&self, state: &mut SyncState) -> bool {
        state.settle(|source| {
            self.paths
                .get(source)
                .and_then(|path| self.observed.last_success(path))
        })
    }

    /// The name of a source in status output.
    fn source_name(&self, source: &Source, config: &KubernetesConfig) -> String {
        match source {
            Source::Calico(kind) => format!("{}.{}", kind.plural(), self.group.0),
            Source::Nodes => "nodes".into(),
            Source::Secret(name) => format!("secrets/{}/{name}", config.secret_namespace),
            Source::Services => "services".into(),
            Source::EndpointSlices => "endpointslices.discovery.k8s.io".into(),
        }
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        for handle in self.watchers.values() {
            handle.abort();
        }
    }
}

/// The Secrets that passwords reference (BGPPeers, the mesh password).
fn referenced_secrets(cluster: &Cluster) -> std::collections::BTreeSet<String> {
    let peers = cluster
        .bgp_peers
        .values()
        .filter_map(|p| p.spec.password.as_ref());
    let mesh = cluster
        .bgp_configurations
        .values()
        .filter_map(|c| c.spec.node_mesh_password.as_ref());
    peers
        .chain(mesh)
        .filter_map(|p| p.secret_key_ref.as_ref())
        .map(|r| r.name.clone())
        .collect()
}

/// Whether the global BGPConfiguration sets a service range (then Services and
/// EndpointSlices are watched, as confd starts its route generator).
fn advertises_services(cluster: &Cluster) -> bool {
    cluster.global_bgp_configuration().is_some_and(|c| {
        !c.service_cluster_ips.is_empty()
            || !c.service_external_ips.is_empty()
            || !c.service_load_balancer_ips.is_empty()
    })
}

/// Starts (`wanted`) or stops the Service and EndpointSlice watches; true when one started.
fn watch_services(
    state: &mut SyncState,
    connected: &mut Connected,
    config: &KubernetesConfig,
    tx: &Sender,
    wanted: bool,
) -> bool {
    let mut added = false;
    for source in [Source::Services, Source::EndpointSlices] {
        if wanted && !state.has(&source) {
            state.add(source.clone());
            connected.watch(source, config, tx);
            added = true;
        } else if !wanted {
            state.remove(&source);
            connected.unwatch(&source);
        }
    }
    added
}

/// What the task reports.
pub(super) enum Output {
    /// A daemon: plans and diffs.
    Events(mpsc::Sender<DatastoreEvent>),
    /// `tern plan` / `tern check`: the first synced model, or the first error.
    Once(tokio::sync::oneshot::Sender<Result<(Cluster, Vec<String>), String>>),
}

/// What the task saw beyond the sources: the connection, the plans.
#[derive(Debug, Default)]
struct Progress {
    connect_failures: u64,
    connect_error: Option<(ConnectError, Timestamp)>,
    retry_in: Option<Duration>,
    api_group: Option<String>,
    first_synced: Option<Timestamp>,
    last_plan: Option<Timestamp>,
    plans: u64,
    problems: Vec<String>,
    rejected: Option<DatastoreError>,
}

/// Publishes the status from what the task saw (`connected`: the sources' state too).
fn publish(
    status: &Arc<Mutex<KubernetesStatus>>,
    progress: &Progress,
    connected: Option<(&Connected, &SyncState)>,
    config: &KubernetesConfig,
) {
    let now = now_ts();
    let Ok(mut s) = status.lock() else { return };
    let d = &mut s.datastore;
    d.api_group = progress.api_group.clone();
    d.first_synced = progress.first_synced;
    d.last_update = progress.last_plan;
    d.updates = progress.plans;
    d.problems = progress.problems.clone();
    d.rejected = progress.rejected.clone();
    d.retry_in_ms = progress
        .retry_in
        .map(|r| u64::try_from(r.as_millis()).unwrap_or(u64::MAX));
    let Some((conn, state)) = connected else {
        let (next, error) = match &progress.connect_error {
            Some((e, at)) => (
                if e.unreachable {
                    State::Unreachable
                } else {
                    State::Failing
                },
                Some(DatastoreError {
                    at: *at,
                    message: e.message.clone(),
                }),
            ),
            None => (State::Syncing, None),
        };
        d.enter(next, now);
        d.last_error = error;
        d.retries = progress.connect_failures;
        return;
    };
    let sources = state.status();
    let (next, latest, retries) = overall(&sources, state.in_sync());
    d.enter(next, now);
    d.last_error = latest.map(|e| DatastoreError {
        at: e.at,
        message: e.message.clone(),
    });
    d.retries = retries;
    d.sources = sources
        .iter()
        .map(|x| SourceSummary {
            name: conn.source_name(&x.source, config),
            listed: x.listed,
            objects: u64::try_from(x.objects).unwrap_or(u64::MAX),
            error: x.error.as_ref().map(|e| DatastoreError {
                at: e.at,
                message: e.message.clone(),
            }),
            failures: x.failures,
        })
        .collect();
    s.sources = sources;
}

/// The datastore's state from its sources once connected: failing sources make it
/// `unreachable` when one of them got no answer, else `failing`; otherwise `in_sync` or
/// `syncing`. With the most recent current failure and the failing sources' retries.
fn overall(sources: &[SourceStatus], in_sync: bool) -> (State, Option<&Failure>, u64) {
    let failures: Vec<(&Failure, u64)> = sources
        .iter()
        .filter_map(|x| x.error.as_ref().map(|e| (e, x.failures)))
        .collect();
    let state = if failures.is_empty() {
        if in_sync {
            State::InSync
        } else {
            State::Syncing
        }
    } else if failures.iter().any(|(e, _)| e.unreachable) {
        State::Unreachable
    } else {
        State::Failing
    };
    let latest = failures.iter().map(|(e, _)| *e).max_by_key(|e| e.seq);
    (state, latest, failures.iter().map(|(_, n)| n).sum())
}

/// How often the status is refreshed while nothing happens (a watch restarted after a
/// failure sends nothing when it works again).
const STATUS_REFRESH: Duration = Duration::from_secs(1);

/// Runs until the output is closed.
pub(super) async fn run(
    config: KubernetesConfig,
    status: Arc<Mutex<KubernetesStatus>>,
    output: Output,
) {
    let (tx, mut rx) = mpsc::channel::<(Source, SourceEvent)>(1024);
    let mut output = Some(output);
    let observed = Arc::new(Observed::default());
    let mut progress = Progress::default();
    publish(&status, &progress, None, &config);
    // Connect: credentials and discovery, retried with backoff.
    let mut backoff = backoff();
    let mut connected = loop {
        let attempt = async {
            let client = client::client(config.kubeconfig.as_deref(), &observed).await?;
            let group = client::calico_group(&client, &config.api_group).await?;
            Ok::<_, ConnectError>(Connected {
                client,
                group,
                watchers: BTreeMap::new(),
                paths: BTreeMap::new(),
                observed: Arc::clone(&observed),
            })
        };
        match attempt.await {
            Ok(c) => break c,
            Err(e) => {
                let delay = next_delay(&mut backoff);
                warn!(error = %e.message, retry_in = ?delay, "Kubernetes API not reachable; retrying");
                progress.connect_failures += 1;
                progress.retry_in = Some(delay);
                progress.connect_error = Some((e.clone(), now_ts()));
                publish(&status, &progress, None, &config);
                if let Some(Output::Once(_)) = &output
                    && let Some(Output::Once(reply)) = output.take()
                {
                    let _ = reply.send(Err(e.message));
                    return;
                }
                tokio::time::sleep(delay).await;
            }
        }
    };
    let api_group = format!("{}/{}", connected.group.0, connected.group.1);
    info!(api_group = %api_group, "Kubernetes API connected");
    progress.api_group = Some(api_group);
    progress.retry_in = None;
    progress.connect_error = None;
    let mut state = SyncState::new(&config.secret_namespace);
    for kind in CalicoKind::ALL {
        state.add(Source::Calico(kind));
        connected.watch(Source::Calico(kind), &config, &tx);
    }
    state.add(Source::Nodes);
    connected.watch(Source::Nodes, &config, &tx);
    publish(&status, &progress, Some((&connected, &state)), &config);

    let mut current: Option<Plan> = None;
    let mut dirty = false;
    let mut due: Option<tokio::time::Instant> = None;
    let mut refresh = tokio::time::interval(STATUS_REFRESH);
    loop {
        let timer = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = refresh.tick() => {
                connected.settle(&mut state);
                publish(&status, &progress, Some((&connected, &state)), &config);
            }
            message = rx.recv() => {
                let Some((source, event)) = message else { return };
                if let SourceEvent::Error(e) = &event {
                    warn!(error = %e.message, "Kubernetes watch failed; the last good state stays");
                }
                let changed = state.apply(&source, event);
                dirty |= changed;
                // The service watches start as soon as BGPConfigurations have listed, so that
                // they list alongside the other sources.
                let configurations = Source::Calico(CalicoKind::BgpConfiguration);
                if changed
                    && source == configurations
                    && let Some(c) = state.listed_cluster(&configurations)
                {
                    watch_services(&mut state, &mut connected, &config, &tx, advertises_services(&c));
                }
                publish(&status, &progress, Some((&connected, &state)), &config);
                if let Some(Output::Once(_)) = &output
                    && let Some(error) = state.status().iter().find_map(|s| s.error.clone().filter(|_| !s.listed && !matches!(s.source, Source::Secret(_))))
                    && let Some(Output::Once(reply)) = output.take()
                {
                    let _ = reply.send(Err(error.message));
                    return;
                }
                if dirty && state.in_sync() {
                    // The first plan goes out at once; later changes are debounced.
                    let wait = if current.is_none() { Duration::ZERO } else { config.debounce };
                    due = Some(tokio::time::Instant::now() + wait);
                }
            }
            _ = timer => {
                due = None;
                if !state.in_sync() {
                    continue;
                }
                dirty = false;
                let started = Instant::now();
                let (cluster, skipped) = state.cluster();
                // Watch exactly the referenced Secrets; a new one is waited for.
                let wanted = referenced_secrets(&cluster);
                let have = state.secrets();
                for gone in have.difference(&wanted) {
                    let source = Source::Secret(gone.clone());
                    state.remove(&source);
                    connected.unwatch(&source);
                }
                let mut added = false;
                for new in wanted.difference(&have) {
                    let source = Source::Secret(new.clone());
                    state.add(source.clone());
                    connected.watch(source, &config, &tx);
                    added = true;
                }
                // Services and EndpointSlices while a service range is configured.
                added |= watch_services(&mut state, &mut connected, &config, &tx, advertises_services(&cluster));
                if added {
                    dirty = true;
                    publish(&status, &progress, Some((&connected, &state)), &config);
                    continue;
                }
                match &mut output {
                    Some(Output::Once(_)) => {
                        if let Some(Output::Once(reply)) = output.take() {
                            let _ = reply.send(Ok((cluster, skipped)));
                        }
                        return;
                    }
                    Some(Output::Events(events)) => {
                        let event = match compute(&cluster, &config.node, &config.options) {
                            // `skipped` is already among the plan's warnings.
                            Ok(plan) => {
                                let now = now_ts();
                                progress.last_plan = Some(now);
                                progress.problems = skipped;
                                progress.rejected = None;
                                let diff = match &current {
                                    Some(old) => PlanDiff::between(old, &plan),
                                    None => PlanDiff::default(),
                                };
                                if current.as_ref().is_some_and(|old| diff.is_empty() && *old == plan) {
                                    publish(&status, &progress, Some((&connected, &state)), &config);
                                    continue;
                                }
                                current = Some(plan.clone());
                                debug!(took = ?started.elapsed(), "plan from Kubernetes");
                                progress.plans += 1;
                                progress.first_synced.get_or_insert(now);
                                DatastoreEvent::Plan { plan: Arc::new(plan), diff, notes: cluster.notes }
                            }
                            Err(e) => {
                                progress.rejected = Some(DatastoreError { at: now_ts(), message: e.to_string() });
                                DatastoreEvent::Rejected { error: e.to_string() }
                            }
                        };
                        publish(&status, &progress, Some((&connected, &state)), &config);
                        if events.send(event).await.is_err() {
                            return;
                        }
                    }
                    None => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(kind: CalicoKind, error: Option<(u64, bool)>, failures: u64) -> SourceStatus {
        SourceStatus {
            source: Source::Calico(kind),
            listed: true,
            objects: 1,
            error: error.map(|(seq, unreachable)| Failure {
                message: format!("failure {seq}"),
                at: Timestamp(seq),
                seq,
                unreachable,
            }),
            failures,
        }
    }

    #[test]
    fn the_state_comes_from_the_sources_failures() {
        let ok = source(CalicoKind::IpPool, None, 0);
        assert_eq!(overall(std::slice::from_ref(&ok), true).0, State::InSync);
        assert_eq!(overall(std::slice::from_ref(&ok), false).0, State::Syncing);
        let forbidden = source(CalicoKind::BgpPeer, Some((7, false)), 2);
        let two = [ok.clone(), forbidden.clone()];
        let (state, latest, retries) = overall(&two, true);
        assert_eq!((state, retries), (State::Failing, 2));
        assert_eq!(latest.unwrap().message, "failure 7");
        // One source without an answer makes it unreachable; the latest failure is shown.
        let refused = source(CalicoKind::BgpFilter, Some((5, true)), 3);
        let three = [ok, forbidden, refused];
        let (state, latest, retries) = overall(&three, true);
        assert_eq!((state, retries), (State::Unreachable, 5));
        assert_eq!(latest.unwrap().seq, 7);
    }
}
