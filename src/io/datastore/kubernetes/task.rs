//! The watches and the task that turns what they see into plans.
//!
//! ```text
//!  watcher per source (kube-runtime) ──(Source, SourceEvent)──▶ datastore task ──DatastoreEvent──▶ daemon
//!  (Calico kinds, Nodes, each           mpsc                    (SyncState, gate, debounce,
//!   referenced Secret by name)                                    model, plan, diff)
//! ```
//!
//! Each watcher lists then watches (resuming from its last resource version, relisting on 410
//! Gone) and retries a failure with exponential backoff (0.5 s doubling to 30 s), reporting
//! the error by resource. The task connects (credentials, discovery) with the same backoff.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::client::{
    self, calico_json, calico_resource, describe, endpoint_slice_json, node_json, secret_json,
    service_json,
};
use super::sync::{CalicoKind, Source, SourceEvent, SourceStatus, SyncState};
use super::{KubernetesConfig, KubernetesStatus};
use crate::io::datastore::DatastoreEvent;
use crate::model::Cluster;
use crate::plan::{Plan, PlanDiff, compute};

/// First retry delay.
const BACKOFF_START: Duration = Duration::from_millis(500);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Exponential backoff.
#[derive(Debug)]
pub(super) struct Backoff(Duration);

impl Backoff {
    pub(super) fn new() -> Backoff {
        Backoff(BACKOFF_START)
    }
    /// The delay to wait now; the next one doubles.
    pub(super) fn next(&mut self) -> Duration {
        let delay = self.0;
        self.0 = (self.0 * 2).min(BACKOFF_MAX);
        delay
    }
    pub(super) fn reset(&mut self) {
        self.0 = BACKOFF_START;
    }
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
    convert: impl Fn(&K) -> (String, Option<String>) + Send + 'static,
) -> JoinHandle<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher::watcher(api, config));
        let mut backoff = Backoff::new();
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
                    let message = match &e {
                        watcher::Error::InitialListFailed(e) => {
                            format!("cannot list {resource}: {}", describe(e))
                        }
                        watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
                            format!("cannot watch {resource}: {}", describe(e))
                        }
                        watcher::Error::WatchError(status) => {
                            format!("watch of {resource}: {} ({})", status.message, status.code)
                        }
                        other => format!("{resource}: {other}"),
                    };
                    let delay = backoff.next();
                    let message = format!("{message}; retrying in {delay:?}");
                    if tx
                        .send((source.clone(), SourceEvent::Error(message)))
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
                spawn_watch(api, watch, source.clone(), name, tx.clone(), move |o| {
                    calico_json(kind, &resource, o, &node)
                })
            }
            Source::Nodes => spawn_watch(
                Api::<Node>::all(self.client.clone()),
                watch,
                source.clone(),
                "nodes".into(),
                tx.clone(),
                node_json,
            ),
            Source::Secret(name) => spawn_watch(
                Api::<Secret>::namespaced(self.client.clone(), &config.secret_namespace),
                watch.fields(&format!("metadata.name={name}")),
                source.clone(),
                format!(
                    "secrets \"{name}\" in namespace {}",
                    config.secret_namespace
                ),
                tx.clone(),
                secret_json,
            ),
            Source::Services => spawn_watch(
                Api::<Service>::all(self.client.clone()),
                watch,
                source.clone(),
                "services".into(),
                tx.clone(),
                service_json,
            ),
            Source::EndpointSlices => {
                let node = config.node.clone();
                spawn_watch(
                    Api::<EndpointSlice>::all(self.client.clone()),
                    // Slices of a Service, not of a headless one (the labels kube-proxy
                    // selects by); which endpoints are on this node cannot be selected.
                    watch.labels(&format!(
                        "{},!service.kubernetes.io/headless",
                        crate::model::SERVICE_NAME_LABEL
                    )),
                    source.clone(),
                    "endpointslices.discovery.k8s.io".into(),
                    tx.clone(),
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

/// Runs until the output is closed.
pub(super) async fn run(
    config: KubernetesConfig,
    status: Arc<Mutex<KubernetesStatus>>,
    output: Output,
) {
    let (tx, mut rx) = mpsc::channel::<(Source, SourceEvent)>(1024);
    let mut output = Some(output);
    let set_status = |f: &dyn Fn(&mut KubernetesStatus)| {
        if let Ok(mut s) = status.lock() {
            f(&mut s);
        }
    };
    // Connect: credentials and discovery, retried with backoff.
    let mut backoff = Backoff::new();
    let mut connected = loop {
        let attempt = async {
            let client = client::client(config.kubeconfig.as_deref()).await?;
            let group = client::calico_group(&client, &config.api_group).await?;
            Ok::<_, String>(Connected {
                client,
                group,
                watchers: BTreeMap::new(),
            })
        };
        match attempt.await {
            Ok(c) => break c,
            Err(e) => {
                let delay = backoff.next();
                warn!(error = %e, retry_in = ?delay, "Kubernetes API not reachable; retrying");
                set_status(&|s| {
                    s.last_error = Some(e.clone());
                    s.retries += 1;
                    s.retry_in = Some(delay);
                });
                if let Some(Output::Once(_)) = &output
                    && let Some(Output::Once(reply)) = output.take()
                {
                    let _ = reply.send(Err(e));
                    return;
                }
                tokio::time::sleep(delay).await;
            }
        }
    };
    let api_group = format!("{}/{}", connected.group.0, connected.group.1);
    info!(api_group = %api_group, "Kubernetes API connected");
    set_status(&|s| {
        s.connected = true;
        s.api_group = Some(api_group.clone());
        s.retry_in = None;
    });
    let mut state = SyncState::new(&config.secret_namespace);
    for kind in CalicoKind::ALL {
        state.add(Source::Calico(kind));
        connected.watch(Source::Calico(kind), &config, &tx);
    }
    state.add(Source::Nodes);
    connected.watch(Source::Nodes, &config, &tx);

    let mut current: Option<Plan> = None;
    let mut dirty = false;
    let mut due: Option<tokio::time::Instant> = None;
    loop {
        let timer = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            message = rx.recv() => {
                let Some((source, event)) = message else { return };
                if let SourceEvent::Error(e) = &event {
                    warn!(error = %e, "Kubernetes watch failed; the last good state stays");
                }
                let changed = state.apply(&source, event);
                dirty |= changed;
                // The service watches start as soon as BGPConfigurations have listed, so that
                // they list alongside the other sources.
                let configurations = Source::Calico(CalicoKind::BgpConfiguration);
                if changed && source == configurations
                    && let Some(c) = state.listed_cluster(&configurations)
                {
                    watch_services(&mut state, &mut connected, &config, &tx, advertises_services(&c));
                }
                publish(&status, &state);
                if let Some(Output::Once(_)) = &output
                    && let Some(error) = state.status().iter().find_map(|s| s.error.clone().filter(|_| !s.listed && !matches!(s.source, Source::Secret(_))))
                    && let Some(Output::Once(reply)) = output.take()
                {
                    let _ = reply.send(Err(error));
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
                                let diff = match &current {
                                    Some(old) => PlanDiff::between(old, &plan),
                                    None => PlanDiff::default(),
                                };
                                if current.as_ref().is_some_and(|old| diff.is_empty() && *old == plan) {
                                    continue;
                                }
                                current = Some(plan.clone());
                                debug!(took = ?started.elapsed(), "plan from Kubernetes");
                                set_status(&|s| s.plans += 1);
                                DatastoreEvent::Plan { plan: Arc::new(plan), diff, notes: cluster.notes }
                            }
                            Err(e) => DatastoreEvent::Rejected { error: e.to_string() },
                        };
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

fn publish(status: &Arc<Mutex<KubernetesStatus>>, state: &SyncState) {
    if let Ok(mut s) = status.lock() {
        s.in_sync = state.in_sync();
        s.sources = state.status();
        s.last_error = s
            .sources
            .iter()
            .find_map(|x: &SourceStatus| x.error.clone());
    }
}
