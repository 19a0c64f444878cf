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
//! One task owns the pure [`Rib`](crate::rib::Rib): events are handled in batches, then each Established peer's
//! pending export is pulled from its export group and queued without waiting (a full peer
//! queue leaves the rest in that peer's backlog until [`PeerEvent::OutputReady`](crate::io::bgp::PeerEvent::OutputReady); other peers
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

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::Settings;
use crate::daemon::{RestartRecovery, SessionDefaults};
use crate::io::bgp::{Speaker, SpeakerConfig};
use crate::io::birdctl::{BirdCtlOptions, BirdCtlServer, SocketFamily};
use crate::io::control::{ControlServer, ServeOptions, StatusHub};
use crate::io::datastore::KubernetesConfig;
use crate::io::kernel::{KernelConfig, KernelHandle, watch_local_addresses};
use crate::io::metrics::{Metrics, MetricsServer};
use crate::session::StopReason;
use crate::status::{DaemonStatus, Timestamp};

mod admin;
mod datastore;
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
    let started = now_ts();
    let restart_wait = Duration::from_secs(settings.kernel.restart_wait.into());
    // 1. The datastore: the file datastore's first plan now (resources tern cannot use are
    // skipped and named in the plan warnings; a plan that cannot be computed is fatal); the
    // Kubernetes datastore's once every watch has listed (step 4).
    let (datastore, first_plan, mut datastore_rx) = datastore::start(&settings, &node)?;

    // 2. The kernel: adopt routes left by a previous run. Without a plan yet they are held
    // until it comes (their timer starts with it).
    let (kernel, learned_rx) = KernelHandle::start(KernelConfig {
        program: settings.kernel.program,
        protocol: settings.kernel.route_protocol,
        ignored_interfaces: first_plan
            .as_ref()
            .map(|p| p.policy.ignored_interfaces.clone())
            .unwrap_or_default(),
        stale_hold: first_plan.is_some().then_some(restart_wait),
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

    // 3. Status hub and the servers reading it (the BIRD-compatible sockets wait for the
    // plan: calico-node's BIRD checks read peers there).
    let (route_tx, mut route_rx) = mpsc::channel(16);
    let (fib_tx, mut fib_rx) = mpsc::channel(16);
    let hub = Arc::new(StatusHub::new(
        DaemonStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            router_id: first_plan.as_ref().map(|p| p.router_id),
            local_as: first_plan.as_ref().map(|p| p.local_as),
            hostname: Some(node.clone()),
            started_at: started,
            last_reconfigured: first_plan.is_some().then_some(started),
            heartbeat: started,
            graceful_restart: None,
            warnings: Vec::new(),
            datastore: None,
        },
        route_tx,
    ));
    hub.answer_fib_from(fib_tx);
    hub.datastore_from(datastore.status_fn());
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
    let (admin_tx, mut admin_rx) = mpsc::channel::<AdminRequest>(16);
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

    // 4. The first plan (Kubernetes): the kernel's routes stay meanwhile, the status says
    // where the datastore stands.
    let plan = match first_plan {
        Some(plan) => plan,
        None => {
            let questions = datastore::Questions {
                routes: &mut route_rx,
                fib: &mut fib_rx,
                admin: &mut admin_rx,
            };
            match datastore::wait_for_first_plan(&mut datastore_rx, &hub, &kernel, questions).await
            {
                Ok(Some(plan)) => {
                    kernel.set_ignored_interfaces(plan.policy.ignored_interfaces.clone());
                    kernel.hold_stale_for(restart_wait);
                    let at = now_ts();
                    hub.update_daemon(|d| {
                        d.router_id = Some(plan.router_id);
                        d.local_as = Some(plan.local_as);
                        d.last_reconfigured = Some(at);
                    });
                    plan
                }
                other => {
                    // Stopped before the first sync: the kernel's routes stay.
                    shutdown.cancel();
                    for s in servers {
                        let _ = s.await;
                    }
                    kernel.shutdown().await;
                    drop(datastore);
                    return other.map(|_| ());
                }
            }
        }
    };
    let plan = Arc::new(plan);

    // 5. The speaker with listeners per the plan, and the BIRD-compatible sockets.
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

    // The interface addresses, to warn when the Node's BGP address is not local.
    let (addresses_tx, addresses_rx) = tokio::sync::watch::channel(None);
    servers.push(tokio::spawn(watch_local_addresses(
        addresses_tx,
        shutdown.clone(),
    )));

    // 6. The supervisor owning the RIB; a restart's recovery (and the kernel's stale timer)
    // runs from the first plan.
    let defaults = SessionDefaults::from_settings(&settings, restarting);
    let now = Instant::now();
    let recovery = if restarting {
        RestartRecovery::new(
            plan.peerings
                .iter()
                .filter(|p| p.startable())
                .map(|p| p.address),
            now,
            restart_wait,
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

/// Settings paths given on the command line replace the settings file's.
pub fn datastore_paths(settings: &mut Settings, paths: Vec<PathBuf>) {
    if !paths.is_empty() {
        settings.datastore.paths = paths;
    }
}
