//! The datastore at start-up: the file datastore's first plan is there at once (or start-up
//! fails naming what is wrong); the Kubernetes datastore's comes when every watch has listed,
//! which may be long after start when the API server does not answer. Meanwhile the kernel
//! task runs (the routes of a previous run adopted and held: no plan, so nothing to sweep
//! them by), the control socket answers (`tern show status` and `tern health` say where the
//! datastore stands) and the process stops cleanly on SIGTERM; [`wait_for_first_plan`] serves
//! all of that until the plan arrives.

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::config::Settings;
use crate::io::control::{DatastoreStatusFn, FibRequest, RouteRequest, SourceError, StatusHub};
use crate::io::datastore::{
    DatastoreEvent, FileDatastore, FileDatastoreConfig, KubernetesDatastore, Reloader,
};
use crate::io::kernel::KernelHandle;
use crate::plan::Plan;

use super::admin::AdminRequest;
use super::fib::kernel_summary;
use super::{kubernetes_config, now_ts};

/// A running datastore, kept until the daemon stops.
pub(super) enum RunningDatastore {
    File(FileDatastore),
    Kubernetes(KubernetesDatastore),
}

impl RunningDatastore {
    /// A handle that asks the datastore to re-read everything, where it has one (files).
    pub(super) fn reloader(&self) -> Option<Reloader> {
        match self {
            RunningDatastore::File(file) => Some(file.reloader()),
            RunningDatastore::Kubernetes(_) => None,
        }
    }

    /// Reads the datastore's status, for the status hub.
    pub(super) fn status_fn(&self) -> DatastoreStatusFn {
        match self {
            RunningDatastore::File(file) => Box::new(file.status_handle()),
            RunningDatastore::Kubernetes(kubernetes) => Box::new(kubernetes.status_handle()),
        }
    }
}

/// Starts the configured datastore: the file datastore with its first plan (an error names
/// what is wrong), the Kubernetes datastore without one (it connects and lists in the
/// background; its first plan arrives on the receiver).
pub(super) fn start(
    settings: &Settings,
    node: &str,
) -> Result<
    (
        RunningDatastore,
        Option<Plan>,
        mpsc::Receiver<DatastoreEvent>,
    ),
    String,
> {
    if settings.datastore.kind == crate::config::DatastoreType::File {
        let (datastore, first_plan, rx) = FileDatastore::start(FileDatastoreConfig {
            paths: settings.datastore.paths.clone(),
            node: node.to_string(),
            options: settings.plan_options(),
            debounce: Duration::from_millis(settings.datastore.debounce_ms),
        })
        .map_err(|e| format!("datastore: {e}"))?;
        for note in datastore.initial_notes() {
            info!(note = %note, "datastore");
        }
        for warning in &first_plan.warnings {
            warn!(warning = %warning, "plan");
        }
        return Ok((RunningDatastore::File(datastore), Some(first_plan), rx));
    }
    let (datastore, rx) = KubernetesDatastore::start(kubernetes_config(settings, node));
    Ok((RunningDatastore::Kubernetes(datastore), None, rx))
}

/// The channels a client's questions arrive on before the supervisor runs.
pub(super) struct Questions<'a> {
    pub(super) routes: &'a mut mpsc::Receiver<RouteRequest>,
    pub(super) fib: &'a mut mpsc::Receiver<FibRequest>,
    pub(super) admin: &'a mut mpsc::Receiver<AdminRequest>,
}

/// Waits for the datastore's first plan while keeping the status current (heartbeat and
/// kernel summary each second) and answering what is asked: no routes (there is no RIB yet),
/// the kernel's summary, and admin commands refused. `Ok(None)`: SIGTERM or SIGINT came first.
pub(super) async fn wait_for_first_plan(
    events: &mut mpsc::Receiver<DatastoreEvent>,
    hub: &StatusHub,
    kernel: &KernelHandle,
    questions: Questions<'_>,
) -> Result<Option<Plan>, String> {
    info!(
        "waiting for the Kubernetes datastore's first sync (the kernel's routes stay; `tern show status` says where it stands)"
    );
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| format!("signals: {e}"))?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| format!("signals: {e}"))?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let Questions { routes, fib, admin } = questions;
    loop {
        tokio::select! {
            _ = sigterm.recv() => {
                info!("SIGTERM before the first sync");
                return Ok(None);
            }
            _ = sigint.recv() => {
                info!("SIGINT before the first sync");
                return Ok(None);
            }
            _ = tick.tick() => {
                hub.heartbeat(now_ts());
                let k = kernel.status();
                let held = (k.stale > 0).then(|| {
                    format!("{} routes of a previous run kept in the kernel until the datastore syncs", k.stale)
                });
                hub.update_daemon(|d| d.warnings = held.into_iter().collect());
                hub.set_fib(kernel_summary(&k));
            }
            Some(request) = routes.recv() => {
                let _ = request.reply.send(Vec::new());
            }
            Some(request) = fib.recv() => {
                let _ = request.reply.send(kernel_summary(&kernel.status()));
            }
            Some(request) = admin.recv() => {
                let _ = request.reply.send(Err(SourceError::Unavailable {
                    component: "supervisor".into(),
                    reason: "no plan yet: the datastore has not synced".into(),
                }));
            }
            event = events.recv() => match event {
                Some(DatastoreEvent::Plan { plan, notes, .. }) => {
                    for note in notes {
                        info!(note = %note, "datastore");
                    }
                    for warning in &plan.warnings {
                        warn!(warning = %warning, "plan");
                    }
                    info!("Kubernetes datastore in sync: first plan");
                    return Ok(Some(std::sync::Arc::try_unwrap(plan).unwrap_or_else(|p| (*p).clone())));
                }
                Some(DatastoreEvent::Rejected { error }) => {
                    error!(error = %error, "no plan from the Kubernetes resources yet");
                }
                Some(DatastoreEvent::Problem { message }) => {
                    warn!(problem = %message, "datastore");
                }
                None => return Err("Kubernetes datastore stopped".into()),
            },
        }
    }
}
