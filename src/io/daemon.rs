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
//! changes of the kernel task's desired set, which only the kernel task holds. Pure decisions live in [`crate::daemon`].

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ipnet::IpNet;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use bgp_proto::Family;
use bgp_proto::message::Message;

use crate::config::Settings;
use crate::daemon::{self as glue, PeeringBlocked, RestartRecovery, SessionDefaults};
use crate::fib::KernelRoute;
use crate::io::bgp::{
    Outbound, PeerEvent, SendError, Speaker, SpeakerConfig, SpeakerEvent, SpeakerHandle,
};
use crate::io::birdctl::{BirdCtlOptions, BirdCtlServer, SocketFamily};
use crate::io::control::{ControlServer, FibRequest, RouteRequest, ServeOptions, StatusHub};
use crate::io::datastore::{
    DatastoreEvent, FileDatastore, FileDatastoreConfig, KubernetesConfig, KubernetesDatastore,
};
use crate::io::kernel::{
    DesiredChange, KernelConfig, KernelHandle, LearnedRouteEvent, watch_local_addresses,
};
use crate::io::metrics::{MalformedAction, Metrics, MetricsServer, PeerMetrics};
use crate::plan::{Plan, PlanDiff};
use crate::rib::loc_rib::LOCAL_PEER;
use crate::rib::peer::SessionFacts;
use crate::rib::{
    Families, LocalRoute, LocalRouteKind, PeerId, PeerSession, PolicyContext, Rib, RibConfig,
};
use crate::session::{DownReason, SessionInfo, State, StopReason};
use crate::status::{self, DaemonStatus, Timestamp};

mod admin;
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
            router_id: Some(plan.router_id),
            local_as: Some(plan.local_as),
            hostname: Some(node.clone()),
            started_at: started,
            last_reconfigured: Some(started),
            heartbeat: started,
            graceful_restart: None,
            warnings: Vec::new(),
            datastore: None,
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

/// One configured peer's runtime state.
#[derive(Debug)]
struct PeerRuntime {
    id: PeerId,
    name: String,
    config: Option<crate::session::PeerConfig>,
    session: Option<EstablishedPeer>,
    malformed: u64,
    /// The peer's metric handles (flaps, malformed UPDATEs, messages): no label lookups on
    /// events or ticks.
    metrics: Option<PeerMetrics>,
    /// Per family (IPv4, IPv6): over its max-prefix limit now (warned once per crossing).
    over_limit: [bool; 2],
}

#[derive(Debug)]
struct EstablishedPeer {
    session: u64,
    info: Arc<SessionInfo>,
    facts: SessionFacts,
    /// Encoded output the peer's queue did not take yet.
    backlog: VecDeque<Outbound>,
    /// The queue was full: wait for `OutputReady`.
    blocked: bool,
}

struct Supervisor {
    plan: Arc<Plan>,
    subnets: Vec<IpNet>,
    defaults: SessionDefaults,
    speaker: SpeakerHandle,
    kernel: KernelHandle,
    /// `[kernel] program`: when false no desired kernel routes are computed or handed over.
    program_kernel: bool,
    hub: Arc<StatusHub>,
    /// Prometheus counters fed from the speaker's per-peer message counts.
    metrics: Option<Arc<Metrics>>,
    rib: Rib,
    ids: HashMap<IpAddr, PeerId>,
    addresses: HashMap<PeerId, IpAddr>,
    peers: BTreeMap<IpAddr, PeerRuntime>,
    /// Desired-route changes since the last hand-over, in order (the kernel task owns the
    /// desired set; the supervisor keeps no copy of it).
    desired_pending: Vec<DesiredChange>,
    /// The whole desired set must be computed from the RIB and handed over (start, pool rules
    /// or policy changed).
    desired_whole: bool,
    learned: BTreeSet<IpNet>,
    /// Kernel routes with an output interface (connected subnets included), by prefix: `show
    /// route` names the interface a next hop resolves through, as BIRD does.
    interfaces: BTreeMap<IpNet, String>,
    recovery: RestartRecovery,
    /// This speaker restarted and its route selection is not complete yet (RFC 4724 §4.1):
    /// nothing is sent to any peer until the recovery is over.
    deferring: bool,
    converge_pending: bool,
    status_dirty: bool,
    /// The prefix counters are not recomputed before this time (see [`COUNTS_COST_FACTOR`]).
    counts_not_before: Option<Instant>,
    /// When the desired set was last handed to the kernel task.
    last_fib_push: Option<Instant>,
    /// A changed desired set waits for this time (see [`FIB_PUSH_INTERVAL`]).
    fib_flush_at: Option<Instant>,
    /// Routes received (announced + withdrawn) since the heap was last trimmed.
    routes_since_trim: usize,
    /// The value of `routes_since_trim` at the previous tick (unchanged = idle).
    routes_at_last_tick: usize,
    /// The interface addresses (see [`watch_local_addresses`]); `None` until first read.
    local_addresses: Option<tokio::sync::watch::Receiver<Option<Vec<IpAddr>>>>,
    /// The warnings about the Node's addresses last published (each logged once).
    address_warnings: Vec<String>,
    /// The listener the running process bound: a change takes effect at the next start.
    listen_at_start: crate::plan::ListenPlan,
    /// A peer still has output it could queue now: the event loop runs another output pass
    /// without waiting for an event.
    output_more: bool,
    /// Which peer the next output pass starts with (round robin).
    output_turn: usize,
    /// Asks the datastore to re-read everything (SIGHUP).
    reloader: Option<crate::io::datastore::Reloader>,
    /// This node's addresses (interfaces, plan, session ends): never a valid next hop.
    own_addresses: Vec<IpAddr>,
}

impl Supervisor {
    fn new(
        plan: Arc<Plan>,
        defaults: SessionDefaults,
        speaker: SpeakerHandle,
        kernel: KernelHandle,
        hub: Arc<StatusHub>,
        recovery: RestartRecovery,
    ) -> Self {
        let rib = Rib::new(
            RibConfig {
                router_id: plan.router_id,
                local_as: plan.local_as,
                cluster_id: plan.route_reflector_cluster_id,
                min_advertisement_interval: Duration::ZERO,
            },
            PolicyContext::from(&plan.policy),
        );
        let listen_at_start = plan.listen.clone();
        Supervisor {
            subnets: glue::node_subnets(&plan),
            plan,
            defaults,
            speaker,
            kernel,
            program_kernel: true,
            hub,
            metrics: None,
            rib,
            ids: HashMap::new(),
            addresses: HashMap::new(),
            peers: BTreeMap::new(),
            desired_pending: Vec::new(),
            desired_whole: true,
            learned: BTreeSet::new(),
            deferring: !recovery.is_done(),
            interfaces: BTreeMap::new(),
            recovery,
            converge_pending: false,
            status_dirty: true,
            counts_not_before: None,
            last_fib_push: None,
            fib_flush_at: None,
            routes_since_trim: 0,
            routes_at_last_tick: 0,
            local_addresses: None,
            address_warnings: Vec::new(),
            listen_at_start,
            output_more: false,
            output_turn: 0,
            reloader: None,
            own_addresses: crate::io::addresses::interface_addresses(),
        }
    }

    fn peer_id(&mut self, address: IpAddr) -> PeerId {
        let next = PeerId(self.ids.len() as u32);
        let id = *self.ids.entry(address).or_insert(next);
        self.addresses.insert(id, address);
        id
    }

    /// First plan: originate, configure peers, publish status.
    fn start(&mut self) {
        self.rib.sync_originated(&self.plan.originated);
        self.apply_peers(&PlanDiff::default(), true);
        self.publish_recovery();
        self.refresh_warnings();
        self.after_batch();
    }

    async fn run(
        &mut self,
        mut speaker_rx: mpsc::Receiver<SpeakerEvent>,
        mut datastore_rx: mpsc::Receiver<DatastoreEvent>,
        mut learned_rx: mpsc::UnboundedReceiver<LearnedRouteEvent>,
        mut route_rx: mpsc::Receiver<RouteRequest>,
        mut fib_rx: mpsc::Receiver<FibRequest>,
        mut admin_rx: mpsc::Receiver<AdminRequest>,
    ) -> Result<(), String> {
        let mut sigterm = signal(SignalKind::terminate()).map_err(|e| format!("signals: {e}"))?;
        let mut sigint = signal(SignalKind::interrupt()).map_err(|e| format!("signals: {e}"))?;
        let mut sighup = signal(SignalKind::hangup()).map_err(|e| format!("signals: {e}"))?;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let flush_at = self.fib_flush_at.map(tokio::time::Instant::from_std);
            tokio::select! {
                _ = async {
                    match flush_at {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => self.fib_flush_at = None,
                _ = sigterm.recv() => { info!("SIGTERM"); return Ok(()); }
                _ = sigint.recv() => { info!("SIGINT"); return Ok(()); }
                _ = sighup.recv() => {
                    info!("SIGHUP: re-reading the datastore, files taken as they are");
                    if let Some(reloader) = &self.reloader {
                        let _ = reloader.reload();
                    }
                }
                Some(event) = speaker_rx.recv() => {
                    self.on_speaker(event);
                    for _ in 0..EVENT_BATCH {
                        match speaker_rx.try_recv() {
                            Ok(event) => self.on_speaker(event),
                            Err(_) => break,
                        }
                    }
                }
                Some(event) = datastore_rx.recv() => self.on_datastore(event),
                Some(event) = learned_rx.recv() => {
                    self.on_learned(event);
                    while let Ok(event) = learned_rx.try_recv() {
                        self.on_learned(event);
                    }
                }
                Some(request) = route_rx.recv() => self.answer_routes(request),
                Some(request) = fib_rx.recv() => {
                    let _ = request.reply.send(self.fib_status(true));
                }
                Some(request) = admin_rx.recv() => self.on_admin(request),
                _ = tick.tick() => self.on_tick(),
                // Output left over from the last pass (a peer's slice ran out): another pass,
                // with the other branches still served in between.
                () = std::future::ready(()), if self.output_more => {}
            }
            self.after_batch();
        }
    }

    // ----- peers --------------------------------------------------------------------------

    /// Gives the speaker the plan's peers (it starts new ones, stops removed ones and resets
    /// only those whose session parameters changed) and updates the RIB and status.
    fn apply_peers(&mut self, diff: &PlanDiff, first: bool) {
        let plan = Arc::clone(&self.plan);
        let now = now_ts();
        let mut configs = Vec::new();
        let mut wanted: BTreeSet<IpAddr> = BTreeSet::new();
        for peering in &plan.peerings {
            wanted.insert(peering.address);
            let id = self.peer_id(peering.address);
            let config = match glue::peer_config(peering, &plan, &self.defaults) {
                Ok(c) => Some(c),
                Err(blocked) => {
                    warn!(peer = %peering.name, error = %blocked, "peering not started");
                    None
                }
            };
            let old_status = self.hub_peer(&peering.name);
            let metrics = self.metrics.clone();
            let runtime = self
                .peers
                .entry(peering.address)
                .or_insert_with(|| PeerRuntime {
                    id,
                    name: peering.name.clone(),
                    config: None,
                    session: None,
                    malformed: 0,
                    metrics: metrics.as_ref().map(|m| m.peer(&peering.name)),
                    over_limit: [false; 2],
                });
            if runtime.name != peering.name {
                self.hub.remove_peer(&runtime.name);
                runtime.name = peering.name.clone();
                runtime.metrics = metrics.as_ref().map(|m| m.peer(&peering.name));
            }
            let mut status = glue::initial_peer_status(peering, now);
            if let Some(old) = old_status {
                status.state = old.state;
                status.since = old.since;
                status.last_error = old.last_error;
                status.session = old.session;
                status.prefixes = old.prefixes;
                status.flaps = old.flaps;
            }
            // Disabled by an operator: stays so across plan changes (the speaker holds it down).
            if self.speaker.is_held_down(peering.address) == Some(true) {
                status.enabled = false;
            }
            if config.is_none() {
                status.enabled = false;
                status.session = None;
                status.state = status::SessionState::Idle;
                let message = match glue::peer_config(peering, &plan, &self.defaults) {
                    Err(PeeringBlocked::PasswordUnavailable(e)) => {
                        PeeringBlocked::PasswordUnavailable(e).to_string()
                    }
                    Err(e) => e.to_string(),
                    Ok(_) => String::new(),
                };
                status.last_error = Some(status::PeerError {
                    at: now,
                    kind: status::PeerErrorKind::Other { message },
                });
            }
            self.hub.upsert_peer(status);
            if let Some(c) = &config {
                configs.push(c.clone());
            } else if runtime.session.take().is_some() {
                // The peering lost its secret: its session is stopped below (fail closed).
                self.rib.peer_down(id, Instant::now(), None);
            }
            runtime.config = config;
        }
        // Removed peerings.
        let removed: Vec<IpAddr> = self
            .peers
            .keys()
            .filter(|a| !wanted.contains(a))
            .copied()
            .collect();
        for address in removed {
            if let Some(runtime) = self.peers.remove(&address) {
                info!(peer = %runtime.name, "peering removed");
                self.hub.remove_peer(&runtime.name);
                self.rib.peer_down(runtime.id, Instant::now(), None);
                if self.recovery.forget(address) {
                    self.converge_pending = true;
                }
            }
        }
        if !first {
            // Soft changes: policy re-evaluated for the established session, no reset.
            for change in &diff.peers_updated {
                let Some(runtime) = self.peers.get(&change.new.address) else {
                    continue;
                };
                if let Some(est) = &runtime.session {
                    info!(peer = %change.new.name, "peering changed without a reset: policy re-evaluated");
                    let session = PeerSession::from_peering(&change.new, &plan, &est.facts);
                    self.rib.update_peer(runtime.id, session);
                }
            }
        }
        self.speaker.set_peers(configs);
    }

    fn hub_peer(&self, name: &str) -> Option<status::PeerStatus> {
        let mut found = None;
        self.hub.update_peer(name, |p| found = Some(p.clone()));
        found
    }

    fn on_speaker(&mut self, event: SpeakerEvent) {
        let address = event.peer;
        let Some(runtime) = self.peers.get_mut(&address) else {
            debug!(peer = %address, "event of a removed peer");
            return;
        };
        let id = runtime.id;
        let name = runtime.name.clone();
        match event.event {
            PeerEvent::StateChanged { from, to } => {
                info!(peer = %name, from = from.name(), to = to.name(), "session state");
                let now = now_ts();
                if from == State::Established
                    && let Some(metrics) = &runtime.metrics
                {
                    metrics.session_flapped();
                }
                self.hub.update_peer(&name, |p| {
                    p.state = glue::session_state(to);
                    p.since = now;
                    if from == State::Established {
                        p.flaps += 1;
                    }
                });
            }
            PeerEvent::Established {
                session,
                info,
                local,
                remote: _,
            } => {
                let local_address = local
                    .map(|l| l.ip().to_canonical())
                    .or(self.plan.ipv4_address.map(|a| a.addr()))
                    .unwrap_or(IpAddr::V4(self.plan.router_id));
                let receive = !info.codec.receive.add_path.is_empty();
                let send = !info.codec.send.add_path.is_empty();
                let facts = SessionFacts {
                    router_id: info.peer_router_id,
                    local_address,
                    add_path_send: send,
                    add_path_receive: receive,
                    graceful_restart: info.graceful_restart_negotiated(),
                    families: Families::negotiated(&info.families),
                };
                let Some(peering) = self.plan.peerings.iter().find(|p| p.address == address) else {
                    return;
                };
                if !self.own_addresses.contains(&local_address) {
                    self.own_addresses = crate::io::addresses::interface_addresses();
                    self.own_addresses.push(local_address);
                }
                let peer_session = PeerSession::from_peering(peering, &self.plan, &facts);
                self.rib.peer_up(id, peer_session);
                if facts.graceful_restart {
                    self.rib
                        .bound_stale(id, Instant::now() + self.defaults.stale_routes_time);
                }
                let details = runtime
                    .config
                    .as_ref()
                    .map(|c| glue::established_session(c, &info, local_address));
                info!(peer = %name, router_id = %info.peer_router_id, "established");
                if self.recovery.established(
                    address,
                    &info.families,
                    info.graceful_restart_negotiated(),
                    info.peer_restarting(),
                    Instant::now(),
                ) {
                    self.converge_pending = true;
                }
                runtime.session = Some(EstablishedPeer {
                    session,
                    info,
                    facts,
                    backlog: VecDeque::new(),
                    blocked: false,
                });
                self.hub.update_peer(&name, |p| {
                    p.state = status::SessionState::Established;
                    p.session = details;
                    p.peer_graceful_restart_active = false;
                });
                self.status_dirty = true;
            }
            PeerEvent::Update(update) => {
                if let Some(action) = update.action() {
                    runtime.malformed += 1;
                    if let Some(metrics) = &runtime.metrics {
                        metrics.malformed_update(malformed_action(action));
                    }
                    // Rate-limited: the 1st, 2nd, 4th, 8th... malformed UPDATE of a peer.
                    if runtime.malformed.is_power_of_two() {
                        warn!(peer = %name, ?action, issues = ?update.issues, count = runtime.malformed, "malformed UPDATE handled per RFC 7606");
                    }
                }
                if !self.recovery.is_done() {
                    self.recovery.update_received(address, Instant::now());
                }
                self.routes_since_trim +=
                    update.announced().count() + update.withdrawn_routes().count();
                let limit = self.defaults.max_prefix.for_peer(address);
                let outcome = glue::inbound::apply_update(
                    &mut self.rib,
                    id,
                    *update,
                    &self.own_addresses,
                    limit,
                    &mut runtime.over_limit,
                );
                if outcome.own_next_hop > 0 {
                    runtime.malformed += 1;
                }
                if outcome.own_next_hop > 0 && runtime.malformed.is_power_of_two() {
                    warn!(peer = %name, routes = outcome.own_next_hop, "next hop is an address of this node: routes treated as withdrawn (RFC 4271 §5.1.3)");
                }
                if let Some(full) = outcome.rib_full {
                    // Rate-limited like malformed UPDATEs (1st, 2nd, 4th, 8th...).
                    runtime.malformed += 1;
                    if runtime.malformed.is_power_of_two() {
                        error!(peer = %name, error = %full, count = runtime.malformed, "UPDATE rejected");
                    }
                }
                if let Some((family, limit)) = outcome.over_limit {
                    match limit.action {
                        glue::inbound::MaxPrefixAction::Warn => {
                            warn!(peer = %name, %family, limit = limit.limit, "peer is over its maximum prefix limit (warn only)");
                        }
                        glue::inbound::MaxPrefixAction::Restart => {
                            warn!(peer = %name, %family, limit = limit.limit, restart_after = ?limit.restart_after, "peer is over its maximum prefix limit: Cease/1, session restarts after the delay (RFC 4486)");
                            let stop = crate::session::StopReason::MaxPrefix {
                                family,
                                limit: limit.limit,
                                restart_after: limit.restart_after,
                            };
                            if let Err(e) = self.speaker.stop_peer(address, stop) {
                                error!(peer = %name, error = %e, "max-prefix stop not delivered");
                            }
                        }
                    }
                }
                self.status_dirty = true;
            }
            PeerEvent::FamilyDisabled(family) => {
                // RFC 7606 §7.11, RFC 4760 §7: delete the peer's routes of the family.
                warn!(peer = %name, %family, "malformed MP_REACH_NLRI/MP_UNREACH_NLRI: family disabled until the session resets, its routes withdrawn");
                if rib_family(family).is_some() {
                    self.rib
                        .remove_peer_family(id, family == Family::IPV6_UNICAST);
                }
                self.status_dirty = true;
            }
            PeerEvent::EndOfRib(family) => {
                debug!(peer = %name, ?family, "End-of-RIB received");
                if let Some(f) = rib_family(family) {
                    self.rib.end_of_rib(id, f);
                }
                if self.recovery.end_of_rib(address, family) {
                    self.converge_pending = true;
                }
            }
            PeerEvent::RouteRefresh(_) => self.rib.route_refresh(id),
            PeerEvent::Down(down) => {
                // A malformed UPDATE that reset the session (RFC 7606 session reset: we sent
                // an UPDATE Message Error).
                if let DownReason::NotificationSent(n) = &down.reason
                    && u8::from(n.code) == 3
                    && let Some(metrics) = &runtime.metrics
                {
                    metrics.malformed_update(MalformedAction::session_reset);
                }
                let retain = down.retain_routes_for;
                self.recovery.session_down(address);
                if down.was_established || runtime.session.is_some() {
                    info!(peer = %name, reason = %down.reason, keep_routes_for = ?retain, "session down");
                    runtime.session = None;
                    runtime.over_limit = [false; 2];
                    self.rib.peer_down(id, Instant::now(), retain);
                }
                let error = glue::peer_error(&down.reason, now_ts());
                self.hub.update_peer(&name, |p| {
                    p.session = None;
                    p.peer_graceful_restart_active = retain.is_some() && down.was_established;
                    if error.is_some() {
                        p.last_error = error;
                    }
                });
                self.status_dirty = true;
            }
            PeerEvent::OutputReady => {
                if let Some(est) = runtime.session.as_mut() {
                    est.blocked = false;
                }
            }
        }
    }

    // ----- datastore ----------------------------------------------------------------------

    fn on_datastore(&mut self, event: DatastoreEvent) {
        match event {
            DatastoreEvent::Problem { message } => {
                warn!(problem = %message, "datastore");
            }
            DatastoreEvent::Rejected { error } => {
                error!(error = %error, "configuration edit rejected; the running configuration stays");
            }
            DatastoreEvent::Plan { plan, diff, notes } => {
                for note in notes {
                    info!(note = %note, "datastore");
                }
                for warning in &plan.warnings {
                    warn!(warning = %warning, "plan");
                }
                if let Some((old, new)) = diff.router_id {
                    warn!(%old, %new, "router id changed: every session is reset with the new one");
                }
                if let Some((old, new)) = diff.local_as {
                    warn!(
                        old,
                        new, "AS changed: every session is reset with the new one"
                    );
                }
                if diff.listen_changed {
                    warn!("listen port or addresses changed: takes effect when tern restarts");
                }
                info!(
                    added = diff.peers_added.len(),
                    removed = diff.peers_removed.len(),
                    reset = diff.peers_reset.len(),
                    updated = diff.peers_updated.len(),
                    routes_added = diff.routes_added.len(),
                    routes_removed = diff.routes_removed.len(),
                    "new plan"
                );
                self.plan = plan;
                self.subnets = glue::node_subnets(&self.plan);
                // The identity in use: the sessions are reset with it (their configurations
                // carry it) and the RIB's loop checks and reflection follow.
                self.rib.set_identity(
                    self.plan.router_id,
                    self.plan.local_as,
                    self.plan.route_reflector_cluster_id,
                );
                let (router_id, local_as) = (self.plan.router_id, self.plan.local_as);
                self.hub.update_daemon(|d| {
                    d.router_id = Some(router_id);
                    d.local_as = Some(local_as);
                });
                if diff.policy_changed {
                    self.rib.set_policy(PolicyContext::from(&self.plan.policy));
                }
                if !diff.routes_added.is_empty() || !diff.routes_removed.is_empty() {
                    self.rib.sync_originated(&self.plan.originated);
                }
                self.apply_peers(&diff, false);
                if diff.pool_rules_changed || diff.policy_changed {
                    self.recompute_fib();
                }
                self.hub
                    .update_daemon(|d| d.last_reconfigured = Some(now_ts()));
                self.refresh_warnings();
            }
        }
    }

    // ----- kernel-learned routes -----------------------------------------------------------

    fn on_learned(&mut self, event: LearnedRouteEvent) {
        match event {
            LearnedRouteEvent::Added(route) => {
                let Some(interface) = route.interface.clone() else {
                    return;
                };
                self.interfaces.insert(route.prefix, interface.clone());
                // Interface (protocol kernel) routes and the node's own originated prefixes
                // are not borrowed addresses.
                if route.protocol == 2
                    || self
                        .plan
                        .originated
                        .iter()
                        .any(|o| o.prefix == route.prefix)
                {
                    return;
                }
                self.learned.insert(route.prefix);
                self.rib.originate(
                    route.prefix,
                    LocalRoute {
                        kind: LocalRouteKind::Kernel { interface },
                        metric: route.metric,
                    },
                );
            }
            LearnedRouteEvent::Removed(route) => {
                self.interfaces.remove(&route.prefix);
                if self.learned.remove(&route.prefix) {
                    self.rib.withdraw_local(route.prefix);
                }
            }
        }
    }

    // ----- outputs --------------------------------------------------------------------------

    fn after_batch(&mut self) {
        if self.deferring && self.recovery.is_done() {
            self.end_deferral();
        }
        // RFC 4724 §4.1: the restarting speaker defers its route selection, and so its UPDATEs
        // and End-of-RIB, until its peers' routes are re-learned (or the wait ends).
        if !self.deferring {
            self.flush_outbound();
        }
        self.update_fib();
    }

    /// The restart's route selection is complete: every Established peer is sent the table as
    /// it is now, then End-of-RIB (nothing was sent on those sessions yet), and the R and F
    /// bits leave the OPENs (they belong to the restart only; no session is reset for it).
    fn end_deferral(&mut self) {
        self.deferring = false;
        let established: Vec<PeerId> = self
            .peers
            .values()
            .filter(|r| r.session.is_some())
            .map(|r| r.id)
            .collect();
        info!(
            peers = established.len(),
            "restart recovery over: sending the selected routes, then End-of-RIB"
        );
        for id in established {
            self.rib.resend_table(id);
        }
        self.defaults.restarting = false;
        let plan = Arc::clone(&self.plan);
        let mut configs = Vec::new();
        for peering in &plan.peerings {
            if let (Some(runtime), Ok(config)) = (
                self.peers.get_mut(&peering.address),
                glue::peer_config(peering, &plan, &self.defaults),
            ) {
                runtime.config = Some(config.clone());
                configs.push(config);
            }
        }
        self.speaker.set_peers(configs);
    }

    /// Pulls each Established peer's pending export and queues it without waiting, round
    /// robin: each peer gets at most [`PULL_SLICE`] pulls per pass, starting with a different
    /// peer every pass, so one peer's large export never delays another's or new events.
    /// A peer left with work (not blocked on its queue) sets [`Supervisor::output_more`], and
    /// the event loop comes back here at once instead of waiting for the next event.
    fn flush_outbound(&mut self) {
        let now = Instant::now();
        self.output_more = false;
        let count = self.peers.len();
        if count == 0 {
            return;
        }
        let first = self.output_turn % count;
        self.output_turn = self.output_turn.wrapping_add(1);
        let order: Vec<IpAddr> = self
            .peers
            .keys()
            .skip(first)
            .chain(self.peers.keys().take(first))
            .copied()
            .collect();
        for address in order {
            if self.flush_peer(address, now) {
                self.output_more = true;
            }
        }
    }

    /// One peer's share of a [`Supervisor::flush_outbound`] pass. True when it still has work
    /// it could queue now (its slice ran out, not its queue).
    fn flush_peer(&mut self, address: IpAddr, now: Instant) -> bool {
        let Some(runtime) = self.peers.get_mut(&address) else {
            return false;
        };
        let Some(est) = runtime.session.as_mut() else {
            return false;
        };
        for _ in 0..PULL_SLICE {
            // The backlog first, in order.
            while let Some(item) = est.backlog.front() {
                match self.speaker.send(address, est.session, item.clone()) {
                    Ok(()) => {
                        est.backlog.pop_front();
                    }
                    Err(SendError::Full(_)) => {
                        est.blocked = true;
                        break;
                    }
                    Err(e) => {
                        // The session ended (its Down event is on the way): pull nothing more
                        // for it, a new session starts from its own initial table.
                        debug!(peer = %runtime.name, error = %e, "output dropped");
                        est.backlog.clear();
                        est.blocked = true;
                        break;
                    }
                }
            }
            if est.blocked || !est.backlog.is_empty() || !self.rib.has_pending(runtime.id) {
                return false;
            }
            let out = self.rib.pull(runtime.id, now, PULL_BATCH);
            let ctx = est.info.codec.send;
            for update in &out.updates {
                match update.encode(&ctx) {
                    Ok(messages) => {
                        let mut bytes = BytesMut::new();
                        for m in messages {
                            match Message::Update(m).to_bytes(&ctx) {
                                Ok(b) => bytes.extend_from_slice(&b),
                                Err(e) => {
                                    error!(peer = %runtime.name, error = %e, "cannot encode an UPDATE")
                                }
                            }
                        }
                        if !bytes.is_empty() {
                            est.backlog.push_back(Outbound::Message(Bytes::from(bytes)));
                        }
                    }
                    Err(e) => {
                        error!(peer = %runtime.name, error = %e, "cannot encode an UPDATE")
                    }
                }
            }
            if out.end_of_rib {
                for family in &est.info.families {
                    est.backlog.push_back(Outbound::EndOfRib(*family));
                }
            }
            if out.wake_at.is_some() && out.updates.is_empty() && !out.end_of_rib {
                // The minimum advertisement interval holds the rest back; the tick retries.
                return false;
            }
            // An empty pull that still leaves work (superseded log entries skipped) is
            // progress too: go on until the slice, the queue or the work runs out.
        }
        !est.blocked && (!est.backlog.is_empty() || self.rib.has_pending(runtime.id))
    }

    /// Pool rules or policy changed: the whole desired set is recomputed from the RIB and
    /// handed over (the kernel task's diff writes only what differs).
    fn recompute_fib(&mut self) {
        if !self.program_kernel {
            return;
        }
        self.desired_pending.clear();
        self.desired_whole = true;
    }

    /// Every desired kernel route, computed from the RIB's best routes and the plan's pool rules.
    fn desired_routes(&self) -> Vec<KernelRoute> {
        self.rib
            .loc_rib()
            .filter_map(|(prefix, _)| {
                let route = self.rib.fib_route(&prefix)?;
                glue::kernel_route(prefix, &route, &self.plan, &self.subnets)
            })
            .collect()
    }

    fn update_fib(&mut self) {
        let changes = self.rib.take_fib_changes();
        if !self.program_kernel {
            // Nothing is written: the Loc-RIB changes have no kernel consequence.
            drop(changes);
            if std::mem::take(&mut self.converge_pending) {
                self.publish_recovery();
            }
            return;
        }
        if !self.desired_whole {
            // Every change is handed over; the kernel task drops those that leave a prefix's
            // desired route as it was.
            self.desired_pending
                .extend(changes.into_iter().map(|change| {
                    match change.route.as_ref().and_then(|r| {
                        glue::kernel_route(change.prefix, r, &self.plan, &self.subnets)
                    }) {
                        Some(route) => DesiredChange::Set(route),
                        None => DesiredChange::Remove(change.prefix),
                    }
                }));
        }
        if self.desired_whole || !self.desired_pending.is_empty() {
            let now = Instant::now();
            let due = self
                .last_fib_push
                .map_or(now, |last| last + FIB_PUSH_INTERVAL);
            if due <= now || self.converge_pending {
                self.fib_flush_at = None;
                self.last_fib_push = Some(now);
                if std::mem::take(&mut self.desired_whole) {
                    self.desired_pending.clear();
                    self.kernel.set_desired(self.desired_routes());
                } else {
                    // Only the changes: proportional to the changes, not the table.
                    self.kernel
                        .apply_changes(std::mem::take(&mut self.desired_pending));
                }
                self.status_dirty = true;
            } else {
                self.fib_flush_at = Some(due);
            }
        }
        if self.converge_pending {
            self.converge_pending = false;
            info!("graceful restart recovery over: stale kernel routes are swept");
            self.kernel.converged();
            self.publish_recovery();
        }
    }

    // ----- status ---------------------------------------------------------------------------

    /// The status warnings: the plan's, the Node's BGP addresses on no local interface (logged
    /// when they appear and when they are resolved), and a listener change waiting for a
    /// restart.
    fn refresh_warnings(&mut self) {
        let addresses = match self.local_addresses.as_mut() {
            Some(rx) => rx
                .borrow_and_update()
                .as_deref()
                .map(|local| glue::address_warnings(&self.plan, local)),
            None => None,
        }
        .unwrap_or_default();
        for warning in addresses
            .iter()
            .filter(|w| !self.address_warnings.contains(w))
        {
            warn!(warning = %warning, "node address");
        }
        for resolved in self
            .address_warnings
            .iter()
            .filter(|w| !addresses.contains(w))
        {
            info!(was = %resolved, "node address now local");
        }
        self.address_warnings = addresses;
        let mut warnings = self.plan.warnings.clone();
        warnings.extend(self.address_warnings.iter().cloned());
        if self.plan.listen != self.listen_at_start {
            warnings.push(
                "listen port or addresses changed: takes effect when tern restarts".to_string(),
            );
        }
        self.hub.update_daemon(|d| d.warnings = warnings);
    }

    fn publish_recovery(&self) {
        let progress = (!self.recovery.is_done()).then(|| {
            let left = self
                .recovery
                .deadline()
                .saturating_duration_since(Instant::now());
            status::GracefulRestartProgress {
                waiting_for_peers: self.recovery.waiting_for() as u32,
                deadline: now_ts().plus(left),
                wait_secs: self.recovery.wait().as_secs() as u32,
            }
        });
        self.hub.update_daemon(|d| d.graceful_restart = progress);
    }

    /// After a large table load or flush, once a whole tick passed without a received route:
    /// the allocator keeps the pages of freed buffers (UPDATE batches, change logs, grown and
    /// rehashed tables) mapped; `malloc_trim` returns the free ones, so the settled footprint is
    /// what the RIB holds, not its high-water mark. Costs one heap walk per load, never during one.
    fn trim_heap_when_idle(&mut self) {
        let idle = self.routes_since_trim == self.routes_at_last_tick;
        if idle && self.routes_since_trim >= TRIM_AFTER_ROUTES {
            self.routes_since_trim = 0;
            // SAFETY: `malloc_trim` only releases free memory of the C allocator, which Rust's
            // default global allocator is; it has no preconditions.
            #[cfg(target_env = "gnu")]
            unsafe {
                libc::malloc_trim(0);
            }
            debug!("idle after a large route load: free heap returned to the system");
        }
        self.routes_at_last_tick = self.routes_since_trim;
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        self.trim_heap_when_idle();
        if self
            .local_addresses
            .as_ref()
            .is_some_and(|rx| rx.has_changed().unwrap_or(false))
        {
            self.refresh_warnings();
        }
        self.rib.advance(now);
        if self.recovery.tick(now) {
            if self.recovery.timed_out() {
                warn!(
                    waiting_for = self.recovery.waiting_for(),
                    "graceful restart wait ended before every peer's routes were re-learned"
                );
            }
            self.converge_pending = true;
        }
        self.hub.heartbeat(now_ts());
        if !self.recovery.is_done() {
            self.publish_recovery();
        }
        self.publish_fib();
        self.publish_messages();
        // The prefix counters walk the Loc-RIB: during a table load they are refreshed at most
        // once per COUNTS_COST_FACTOR × the last walk's time, so they take a bounded share of
        // the supervisor's time whatever the table size.
        if self.status_dirty && self.counts_not_before.is_none_or(|at| at <= now) {
            self.status_dirty = false;
            let started = Instant::now();
            self.publish_counts();
            self.counts_not_before = Some(Instant::now() + started.elapsed() * COUNTS_COST_FACTOR);
        }
    }

    /// The kernel summary published each tick (without the routes: those are copied only when
    /// asked for, see [`StatusHub::answer_fib_from`]).
    fn publish_fib(&self) {
        self.hub.set_fib(self.fib_status(false));
    }

    /// The kernel status; with `routes`, every desired route by prefix (on request only,
    /// computed from the RIB; none when kernel programming is off).
    fn fib_status(&self, routes: bool) -> status::FibStatus {
        let k = self.kernel.status();
        status::FibStatus {
            routes: if routes && self.program_kernel {
                let mut routes = self.desired_routes();
                routes.sort_unstable_by_key(|route| route.prefix);
                routes
            } else {
                Vec::new()
            },
            // All measured by the kernel task: when it last matched the desired set, the
            // error events it counted and the last one at its time.
            last_sync: k.last_sync.map(Timestamp::from_system_time),
            last_error: k.last_error.as_ref().map(|(at, message)| status::FibError {
                at: Timestamp::from_system_time(*at),
                message: message.clone(),
            }),
            errors_total: k.errors_total,
            desired: k.desired as u64,
            installed: Some(status::FibCounts {
                blackhole: k.installed.blackhole as u64,
                unicast: k.installed.plain as u64,
                tunnel: k.installed.tunnel as u64,
                ecmp: k.installed.multipath as u64,
            }),
            failing: k.failed.len() as u64,
            tunnel_device: Some(k.tunnel_device.clone()),
        }
    }

    /// Each peer's message counters from the speaker (a few atomics per peer) into the status
    /// and the metrics.
    fn publish_messages(&self) {
        for (address, runtime) in &self.peers {
            if let Some((received, sent)) = self.speaker.message_counts(*address) {
                if let Some(metrics) = &runtime.metrics {
                    metrics.messages_up_to(&received, &sent);
                }
                self.hub.update_peer(&runtime.name, |p| {
                    p.messages_received = received;
                    p.messages_sent = sent;
                });
            }
        }
    }

    /// Prefix counters and RIB sizes (one pass over the Loc-RIB).
    fn publish_counts(&self) {
        let (received, stale) = self.rib.path_counts();
        for runtime in self.peers.values() {
            let (r, a) = received.get(&runtime.id).copied().unwrap_or_default();
            let advertised = self
                .rib
                .group_of(runtime.id)
                .map(|g| g.advertised_to(runtime.id) as u64)
                .unwrap_or(0);
            self.hub.update_peer(&runtime.name, |p| {
                p.prefixes = status::PrefixCounts {
                    received: r,
                    accepted: a,
                    advertised,
                };
            });
        }
        let stats = self.rib.stats();
        self.hub.set_rib(status::RibSummary {
            prefixes: stats.prefixes as u64,
            paths: stats.paths as u64,
            attribute_sets: stats.attribute_sets as u64,
            stale_paths: stale,
        });
    }

    /// `show routes`: the Loc-RIB with every path.
    fn answer_routes(&self, request: RouteRequest) {
        let since = now_ts();
        let mut out = Vec::new();
        let prefixes: Vec<IpNet> = match (request.query.prefix, request.query.address) {
            (Some(p), _) => vec![p],
            // Longest-prefix lookup: the longest prefix holding the address that has paths.
            (None, Some(address)) => {
                let max = if address.is_ipv4() { 32 } else { 128 };
                (0..=max)
                    .rev()
                    .filter_map(|len| IpNet::new(address, len).ok().map(|n| n.trunc()))
                    .find(|p| !self.rib.paths(p).is_empty())
                    .into_iter()
                    .collect()
            }
            (None, None) => {
                // Ordered by prefix, as `show route` users expect.
                let mut all: Vec<IpNet> = self.rib.loc_rib().map(|(p, _)| p).collect();
                all.sort_unstable();
                all
            }
        };
        for prefix in prefixes {
            let selected = self.rib.selected(&prefix).len();
            let paths: Vec<status::PathStatus> = self
                .rib
                .paths(&prefix)
                .iter()
                .enumerate()
                .filter_map(|(i, path)| {
                    let attrs = path.accepted.as_ref()?;
                    let source = if path.peer == LOCAL_PEER {
                        status::RouteSource::Local {
                            reason: if self.learned.contains(&prefix) {
                                "kernel".into()
                            } else if self.plan.originated.iter().any(|o| {
                                o.prefix == prefix && o.kind == crate::plan::OriginKind::Block
                            }) {
                                "ipam-block".into()
                            } else {
                                "service".into()
                            },
                        }
                    } else {
                        let address = self.addresses.get(&path.peer).copied()?;
                        status::RouteSource::Peer {
                            name: self
                                .peers
                                .get(&address)
                                .map(|r| r.name.clone())
                                .unwrap_or_default(),
                            address,
                        }
                    };
                    let mut status = glue::path_status(
                        attrs,
                        source,
                        i == 0 && selected > 0,
                        i < selected,
                        path.stale,
                        since,
                    );
                    for hop in &mut status.next_hops {
                        hop.interface = glue::resolving_interface(&self.interfaces, hop.address);
                    }
                    Some(status)
                })
                .collect();
            if !paths.is_empty() {
                out.push(status::RouteStatus { prefix, paths });
            }
        }
        let _ = request.reply.send(out);
    }
}

fn rib_family(family: Family) -> Option<crate::rib::graceful_restart::Family> {
    if family == Family::IPV4_UNICAST {
        Some(crate::rib::graceful_restart::Family::Ipv4)
    } else if family == Family::IPV6_UNICAST {
        Some(crate::rib::graceful_restart::Family::Ipv6)
    } else {
        None
    }
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

/// The metrics label of an RFC 7606 outcome tern handled without a reset.
fn malformed_action(action: bgp_proto::Rfc7606Action) -> MalformedAction {
    match action {
        bgp_proto::Rfc7606Action::AttributeDiscard => MalformedAction::attribute_discard,
        bgp_proto::Rfc7606Action::TreatAsWithdraw | bgp_proto::Rfc7606Action::AfiSafiDisable => {
            MalformedAction::treat_as_withdraw
        }
        bgp_proto::Rfc7606Action::SessionReset => MalformedAction::session_reset,
    }
}
