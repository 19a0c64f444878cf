//! The daemon (`tern run`): starts every task and runs the supervisor loop that owns the RIB.
//!
//! ```text
//!  file datastore thread ──DatastoreEvent (mpsc 16)──┐
//!  speaker peer tasks ─────SpeakerEvent (mpsc 1024)──┤      ┌───────────────────────────────┐
//!  kernel task ────────────LearnedRouteEvent─────────┼────► │ supervisor = RIB task          │
//!  control/BIRD/metrics ───RouteRequest (oneshot)────┤      │ owns Plan, Rib,                │
//!  1 s tick (heartbeat, GR timers, status) ──────────┘      │ per-peer output backlog        │
//!                                                           └───────────────────────────────┘
//!        │ SpeakerHandle::set_peers (diff)   │ SpeakerHandle::send (try, never waits)
//!        │ KernelHandle::apply_changes (RIB changes) │ StatusHub (short locks)
//! ```
//!
//! One task owns the pure [`Rib`]: events are handled in batches, then each Established peer's
//! pending export is pulled from its export group and queued without waiting (a full peer
//! queue leaves the rest in that peer's backlog until [`PeerEvent::OutputReady`]; other peers
//! are not delayed), and the Loc-RIB changes are mapped through the plan's pool rules into
//! changes of the kernel task's desired set, which only the kernel task holds. Pure decisions live
//! in [`crate::daemon`].
//!
//! Layout, one responsibility per file: this module wires the tasks together at start-up
//! ([`run`]) and starts the datastore; `supervisor` holds the supervisor's state, its event
//! loop and the tick; `events` handles speaker, datastore and kernel-learned events; `peers`
//! syncs the plan's peerings to the speaker; `outbound` pulls each peer's export (round robin,
//! flow control); `fib` hands the desired set to the kernel task; `recovery` ends a restart's
//! deferral (RFC 4724 §4.1); `publish` writes status and counters; `queries` answers `show
//! routes`; `admin` serves the admin socket's commands.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Settings;
use crate::daemon::{RestartRecovery, SessionDefaults};
use crate::io::bgp::{Speaker, SpeakerConfig};
use crate::io::birdctl::{BirdCtlOptions, BirdCtlServer, SocketFamily};
use crate::io::control::{ControlServer, ServeOptions, StatusHub};
use crate::io::datastore::{
    DatastoreEvent, FileDatastore, FileDatastoreConfig, KubernetesConfig, KubernetesDatastore,
};
use crate::io::kernel::{KernelConfig, KernelHandle, watch_local_addresses};
use crate::io::metrics::{Metrics, MetricsServer};
use crate::plan::Plan;
use crate::session::StopReason;
use crate::status::{DaemonStatus, Timestamp};

mod admin;
mod events;
mod fib;
mod outbound;
mod peers;
mod publish;
mod queries;
mod recovery;
mod supervisor;

use supervisor::Supervisor;

use admin::{AdminRequest, DaemonAdmin};

/// How many prefixes one pull takes for one peer.
const PULL_BATCH: usize = 2048;
/// How many pulls one peer gets per output pass before the next peer's turn.
const PULL_SLICE: usize = 8;
/// Events handled before the RIB's output is flushed.
const EVENT_BATCH: usize = 256;
/// Shortest time between two desired sets handed to the kernel task: during a full-table load
/// the set is handed over at most this often, not once per event batch.
const FIB_PUSH_INTERVAL: Duration = Duration::from_millis(100);
/// The prefix counters' Loc-RIB walk runs at most once per this many times its own duration.
const COUNTS_COST_FACTOR: u32 = 20;
/// Received routes after which, once a tick passes without any, freed heap is given back to
/// the system (see [`Supervisor::trim_heap_when_idle`]).
const TRIM_AFTER_ROUTES: usize = 50_000;
/// How long a planned stop waits for the peer tasks.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// What `tern run` was asked to do beyond the settings.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Delete tern's kernel routes on exit.
    pub flush_on_exit: bool,
}

fn now_ts() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

/// Runs the daemon until SIGTERM / SIGINT. Start-up errors (bad resources, a kernel or socket
/// that cannot be opened) are returned with a message naming what is wrong.
pub async fn run(settings: Settings, options: RunOptions) -> Result<(), String> {
    let node = settings.node_name.clone().ok_or_else(|| {
        "no node name: set node_name in the settings, NODENAME, or --node".to_string()
    })?;
    // 1. The first plan: resources tern cannot use are skipped (named in the plan warnings), a plan that cannot be computed at start is fatal (file datastore); the
    // Kubernetes datastore's first plan comes once every watch has listed.
    let (datastore, first_plan, datastore_rx) = start_datastore(&settings, &node).await?;
    let plan = Arc::new(first_plan);

    // 2. The kernel: adopt routes left by a previous run.
    let (kernel, learned_rx) = KernelHandle::start(KernelConfig {
        program: settings.kernel.program,
        protocol: settings.kernel.route_protocol,
        ignored_interfaces: plan.policy.ignored_interfaces.clone(),
        stale_hold: Duration::from_secs(settings.kernel.restart_wait.into()),
        flush_on_exit: options.flush_on_exit || settings.kernel.flush_on_exit,
        ..KernelConfig::default()
    })
    .await
    .map_err(|e| format!("kernel: {e}"))?;
    let adopted = kernel.status().stale;
    let restarting = adopted > 0;
    if restarting {
        info!(
            adopted,
            "routes of a previous run adopted: graceful restart (R and F bits set)"
        );
    }

    // 3. The speaker with listeners per the plan.
    let listen: Vec<SocketAddr> = if plan.listen.addresses.is_empty() {
        vec![SocketAddr::new(
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            plan.listen.port,
        )]
    } else {
        plan.listen
            .addresses
            .iter()
            .map(|a| SocketAddr::new(*a, plan.listen.port))
            .collect()
    };
    let (speaker, speaker_rx) = Speaker::start(SpeakerConfig {
        listen: listen.clone(),
        ..SpeakerConfig::default()
    })
    .map_err(|e| format!("BGP listener on {listen:?}: {e}"))?;

    // 4. Status hub and the servers reading it.
    let started = now_ts();
    let (route_tx, route_rx) = mpsc::channel(16);
    let (fib_tx, fib_rx) = mpsc::channel(16);
    let hub = Arc::new(StatusHub::new(
        DaemonStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            router_id: plan.router_id,
            local_as: plan.local_as,
            hostname: Some(node.clone()),
            started_at: started,
            last_reconfigured: started,
            heartbeat: started,
            graceful_restart: None,
            warnings: Vec::new(),
        },
        route_tx,
    ));
    hub.answer_fib_from(fib_tx);
    let shutdown = CancellationToken::new();
    let mut servers = Vec::new();
    let control = ControlServer::read_only(
        &settings.control.socket,
        None,
        Arc::clone(&hub),
        ServeOptions::default(),
    )
    .map_err(|e| format!("control socket {}: {e}", settings.control.socket.display()))?;
    servers.push(tokio::spawn(control.run(shutdown.clone())));
    // The admin socket (mode 0600): peer restart/disable/enable and reload.
    let (admin_tx, admin_rx) = mpsc::channel::<AdminRequest>(16);
    let admin = Arc::new(DaemonAdmin::new(admin_tx, datastore.reloader()));
    let admin_path = settings.control.admin_socket_path();
    let admin_server = ControlServer::admin(
        &admin_path,
        Arc::clone(&hub),
        Arc::clone(&admin),
        ServeOptions::default(),
    )
    .map_err(|e| format!("admin socket {}: {e}", admin_path.display()))?;
    servers.push(tokio::spawn(admin_server.run(shutdown.clone())));
    if settings.birdctl.enabled {
        for (path, family) in [
            (&settings.birdctl.socket, SocketFamily::V4),
            (&settings.birdctl.socket6, SocketFamily::V6),
        ] {
            let server = BirdCtlServer::bind(path, Arc::clone(&hub), BirdCtlOptions::new(family))
                .map_err(|e| format!("BIRD-compatible socket {}: {e}", path.display()))?
                .with_admin(Arc::clone(&admin));
            servers.push(tokio::spawn(server.run(shutdown.clone())));
        }
    }
    let metrics = Arc::new(Metrics::new());
    if settings.metrics.enabled {
        let server = MetricsServer::bind(settings.metrics.address)
            .await
            .map_err(|e| format!("metrics: {e}"))?;
        servers.push(tokio::spawn(server.run(
            Arc::clone(&metrics),
            Arc::clone(&hub),
            shutdown.clone(),
        )));
    }

    // The interface addresses, to warn when the Node's BGP address is not local.
    let (addresses_tx, addresses_rx) = tokio::sync::watch::channel(None);
    servers.push(tokio::spawn(watch_local_addresses(
        addresses_tx,
        shutdown.clone(),
    )));

    // 5. The supervisor owning the RIB.
    let defaults = SessionDefaults::from_settings(&settings, restarting);
    let now = Instant::now();
    let recovery = if restarting {
        RestartRecovery::new(
            plan.peerings
                .iter()
                .filter(|p| p.startable())
                .map(|p| p.address),
            now,
            Duration::from_secs(settings.kernel.restart_wait.into()),
        )
    } else {
        RestartRecovery::finished(now)
    };
    let mut supervisor = Supervisor::new(plan, defaults, speaker, kernel, hub, recovery);
    supervisor.program_kernel = settings.kernel.program;
    supervisor.reloader = datastore.reloader();
    supervisor.rib.set_fib_tracking(settings.kernel.program);
    supervisor.metrics = Some(metrics);
    supervisor.local_addresses = Some(addresses_rx);
    supervisor.start();
    info!(node = %node, router_id = %supervisor.plan.router_id, "tern running");
    let result = supervisor
        .run(
            speaker_rx,
            datastore_rx,
            learned_rx,
            route_rx,
            fib_rx,
            admin_rx,
        )
        .await;

    // Planned stop: no NOTIFICATION to graceful-restart peers, kernel routes stay (unless
    // flush on exit).
    info!("stopping: planned restart towards graceful-restart peers");
    supervisor
        .speaker
        .shutdown(
            StopReason::PlannedRestart {
                text: "tern stopping".into(),
            },
            STOP_WAIT,
        )
        .await;
    shutdown.cancel();
    for s in servers {
        let _ = s.await;
    }
    let Supervisor { kernel, .. } = supervisor;
    kernel.shutdown().await;
    drop(datastore);
    result
}

/// A running datastore, kept until the daemon stops.
#[allow(dead_code)]
enum RunningDatastore {
    File(FileDatastore),
    Kubernetes(KubernetesDatastore),
}

impl RunningDatastore {
    /// A handle that asks the datastore to re-read everything, where it has one (files).
    fn reloader(&self) -> Option<crate::io::datastore::Reloader> {
        match self {
            RunningDatastore::File(file) => Some(file.reloader()),
            RunningDatastore::Kubernetes(_) => None,
        }
    }
}

/// The Kubernetes datastore's settings for `node`.
pub fn kubernetes_config(settings: &Settings, node: &str) -> KubernetesConfig {
    KubernetesConfig {
        kubeconfig: settings.datastore.kubeconfig.clone(),
        api_group: settings.datastore.api_group.clone(),
        node: node.to_string(),
        secret_namespace: settings.datastore.secret_namespace.clone(),
        options: settings.plan_options(),
        debounce: Duration::from_millis(settings.datastore.debounce_ms),
        page_size: settings.datastore.page_size,
    }
}

/// Starts the configured datastore and returns its first plan.
async fn start_datastore(
    settings: &Settings,
    node: &str,
) -> Result<(RunningDatastore, Plan, mpsc::Receiver<DatastoreEvent>), String> {
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
        return Ok((RunningDatastore::File(datastore), first_plan, rx));
    }
    let (datastore, mut rx) = KubernetesDatastore::start(kubernetes_config(settings, node));
    info!("waiting for the Kubernetes datastore's first sync");
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| format!("signals: {e}"))?;
    loop {
        let event = tokio::select! {
            event = rx.recv() => event,
            _ = sigterm.recv() => return Err("SIGTERM before the first sync".into()),
            _ = tokio::signal::ctrl_c() => return Err("SIGINT before the first sync".into()),
        };
        match event {
            Some(DatastoreEvent::Plan { plan, notes, .. }) => {
                for note in notes {
                    info!(note = %note, "datastore");
                }
                for warning in &plan.warnings {
                    warn!(warning = %warning, "plan");
                }
                let plan = Arc::try_unwrap(plan).unwrap_or_else(|p| (*p).clone());
                return Ok((RunningDatastore::Kubernetes(datastore), plan, rx));
            }
            Some(DatastoreEvent::Rejected { error }) => {
                error!(error = %error, "no plan from the Kubernetes resources yet");
            }
            Some(DatastoreEvent::Problem { message }) => {
                warn!(problem = %message, "datastore");
            }
            None => return Err("Kubernetes datastore stopped".into()),
        }
    }
}

/// Settings paths given on the command line replace the settings file's.
pub fn datastore_paths(settings: &mut Settings, paths: Vec<PathBuf>) {
    if !paths.is_empty() {
        settings.datastore.paths = paths;
    }
}
