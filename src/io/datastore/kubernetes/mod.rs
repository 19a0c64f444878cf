//! The Kubernetes datastore (`datastore.type = "kubernetes"`): watches what confd's BGP syncer
//! watches (BGPConfiguration, BGPPeer, BGPFilter, IPPool, this node's BlockAffinities,
//! FelixConfiguration, core Nodes, each Secret a BGP password references, by name in the
//! secret namespace, and, while a service range is configured, Services and EndpointSlices)
//! with `kube-runtime` watchers, builds the same [`Cluster`] the file
//! datastore builds (the objects go through the same loader), and emits the same
//! [`DatastoreEvent`]s: nothing until every watch has listed once, then one plan, then
//! debounced plan diffs.

mod client;
mod observe;
mod sync;
mod task;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::io::datastore::DatastoreEvent;
use crate::model::Cluster;
use crate::plan::PlanOptions;
use crate::status::{DatastoreKind, DatastoreStatus, Timestamp};

pub use sync::{CalicoKind, Failure, Source, SourceStatus};

/// What the Kubernetes datastore needs.
#[derive(Debug, Clone)]
pub struct KubernetesConfig {
    /// A kubeconfig file; `None`: `KUBECONFIG`, `~/.kube/config`, else in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// `auto`, `crd.projectcalico.org/v1` or `projectcalico.org/v3`.
    pub api_group: String,
    /// The local node.
    pub node: String,
    /// Namespace of the Secrets that BGP passwords reference.
    pub secret_namespace: String,
    /// Plan options.
    pub options: PlanOptions,
    /// Quiet time after a change before the plan is recomputed.
    pub debounce: Duration,
    /// Objects per list page.
    pub page_size: u32,
}

/// What the datastore is doing, for `tern show status` and `tern health`.
#[derive(Debug, Clone)]
pub struct KubernetesStatus {
    /// The published form: state and since when, first sync, last error, retries.
    pub datastore: DatastoreStatus,
    /// Each watched source.
    pub sources: Vec<SourceStatus>,
}

impl Default for KubernetesStatus {
    fn default() -> Self {
        KubernetesStatus {
            datastore: DatastoreStatus::syncing(
                DatastoreKind::Kubernetes,
                Timestamp::from_system_time(std::time::SystemTime::now()),
            ),
            sources: Vec::new(),
        }
    }
}

/// A running Kubernetes datastore; dropping it stops every watch.
#[derive(Debug)]
pub struct KubernetesDatastore {
    task: tokio::task::JoinHandle<()>,
    status: Arc<Mutex<KubernetesStatus>>,
}

impl KubernetesDatastore {
    /// Starts connecting and watching (on the current tokio runtime). The first event is the
    /// first plan (its diff empty), once every watch has listed; the channel holds 16.
    pub fn start(
        config: KubernetesConfig,
    ) -> (KubernetesDatastore, mpsc::Receiver<DatastoreEvent>) {
        let (tx, rx) = mpsc::channel(16);
        let status = Arc::new(Mutex::new(KubernetesStatus::default()));
        let task = tokio::spawn(task::run(
            config,
            Arc::clone(&status),
            task::Output::Events(tx),
        ));
        (KubernetesDatastore { task, status }, rx)
    }

    /// The current status.
    pub fn status(&self) -> DatastoreStatus {
        self.status_handle()()
    }

    /// A function reading the status, for the status hub.
    pub fn status_handle(&self) -> impl Fn() -> DatastoreStatus + Send + Sync + 'static {
        let status = Arc::clone(&self.status);
        move || match status.lock() {
            Ok(s) => s.datastore.clone(),
            Err(e) => e.into_inner().datastore.clone(),
        }
    }
}

impl Drop for KubernetesDatastore {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Lists everything once (as the daemon's first sync does) and returns the model with the
/// resources that were skipped (`tern plan`, `tern check`). The first error fails it.
pub async fn snapshot(
    config: KubernetesConfig,
    timeout: Duration,
) -> Result<(Cluster, Vec<String>), String> {
    let (tx, rx) = oneshot::channel();
    let status = Arc::new(Mutex::new(KubernetesStatus::default()));
    let task = tokio::spawn(task::run(
        config,
        Arc::clone(&status),
        task::Output::Once(tx),
    ));
    let result = tokio::time::timeout(timeout, rx).await;
    task.abort();
    match result {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err("Kubernetes datastore stopped".into()),
        Err(_) => {
            let s = status.lock().map(|s| s.clone()).unwrap_or_default();
            let waiting: Vec<String> = s
                .sources
                .iter()
                .filter(|x| !x.listed)
                .map(|x| format!("{:?}", x.source))
                .collect();
            Err(format!(
                "Kubernetes: not in sync after {timeout:?} (waiting for {}){}",
                waiting.join(", "),
                s.datastore
                    .last_error
                    .map(|e| format!("; last error: {}", e.message))
                    .unwrap_or_default()
            ))
        }
    }
}
