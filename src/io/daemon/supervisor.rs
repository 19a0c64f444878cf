//! The supervisor: the task that owns the RIB, its event loop, what runs after each batch of
//! events and on the 1 s tick.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::daemon::{self as glue, RestartRecovery, SessionDefaults};
use crate::io::bgp::{Outbound, OutputCounters, SpeakerEvent, SpeakerHandle};
use crate::io::control::{FibRequest, RouteRequest, StatusHub};
use crate::io::datastore::DatastoreEvent;
use crate::io::kernel::{DesiredChange, KernelHandle, LearnedRouteEvent};
use crate::io::metrics::{Metrics, PeerMetrics};
use crate::plan::{Plan, PlanDiff};
use crate::rib::peer::SessionFacts;
use crate::rib::{PeerId, PolicyContext, Rib, RibConfig};
use crate::session::SessionInfo;

use super::admin::AdminRequest;
use super::{COUNTS_COST_FACTOR, EVENT_BATCH, TRIM_AFTER_ROUTES, now_ts};

/// One configured peer's runtime state.
#[derive(Debug)]
pub(super) struct PeerRuntime {
    pub(super) id: PeerId,
    pub(super) name: String,
    pub(super) config: Option<crate::session::PeerConfig>,
    pub(super) session: Option<EstablishedPeer>,
    pub(super) malformed: u64,
    /// The peer's metric handles (flaps, malformed UPDATEs, messages): no label lookups on
    /// events or ticks.
    pub(super) metrics: Option<PeerMetrics>,
    /// Per family (IPv4, IPv6): over its max-prefix limit now (warned once per crossing).
    pub(super) over_limit: [bool; 2],
    /// Everything queued for the session had been written at the last look.
    pub(super) drained: bool,
}

#[derive(Debug)]
pub(super) struct EstablishedPeer {
    pub(super) session: u64,
    pub(super) info: Arc<SessionInfo>,
    pub(super) facts: SessionFacts,
    /// Encoded output the peer's queue did not take yet.
    pub(super) backlog: VecDeque<Outbound>,
    /// The queue was full: wait for `OutputReady`.
    pub(super) blocked: bool,
    /// What the session's writer has written of the UPDATE output (counted there).
    pub(super) output: Arc<OutputCounters>,
    /// Prefixes (NLRI) encoded for this session so far.
    pub(super) prefixes_queued: u64,
    /// UPDATE bytes encoded for this session so far.
    pub(super) bytes_queued: u64,
}

pub(super) struct Supervisor {
    pub(super) plan: Arc<Plan>,
    pub(super) subnets: Vec<IpNet>,
    pub(super) defaults: SessionDefaults,
    pub(super) speaker: SpeakerHandle,
    pub(super) kernel: KernelHandle,
    /// `[kernel] program`: when false no desired kernel routes are computed or handed over.
    pub(super) program_kernel: bool,
    pub(super) hub: Arc<StatusHub>,
    /// Prometheus counters fed from the speaker's per-peer message counts.
    pub(super) metrics: Option<Arc<Metrics>>,
    pub(super) rib: Rib,
    pub(super) ids: HashMap<IpAddr, PeerId>,
    pub(super) addresses: HashMap<PeerId, IpAddr>,
    pub(super) peers: BTreeMap<IpAddr, PeerRuntime>,
    /// Desired-route changes since the last hand-over, in order (the kernel task owns the
    /// desired set; the supervisor keeps no copy of it).
    pub(super) desired_pending: Vec<DesiredChange>,
    /// The whole desired set must be computed from the RIB and handed over (start, pool rules
    /// or policy changed).
    pub(super) desired_whole: bool,
    pub(super) learned: BTreeSet<IpNet>,
    /// Kernel routes with an output interface (connected subnets included), by prefix: `show
    /// route` names the interface a next hop resolves through, as BIRD does.
    pub(super) interfaces: BTreeMap<IpNet, String>,
    pub(super) recovery: RestartRecovery,
    /// This speaker restarted and its route selection is not complete yet (RFC 4724 §4.1):
    /// nothing is sent to any peer until the recovery is over.
    pub(super) deferring: bool,
    pub(super) converge_pending: bool,
    pub(super) status_dirty: bool,
    /// The prefix counters are not recomputed before this time (see [`COUNTS_COST_FACTOR`]).
    pub(super) counts_not_before: Option<Instant>,
    /// When the desired set was last handed to the kernel task.
    pub(super) last_fib_push: Option<Instant>,
    /// A changed desired set waits for this time (see [`FIB_PUSH_INTERVAL`]).
    pub(super) fib_flush_at: Option<Instant>,
    /// Routes received (announced + withdrawn) since the heap was last trimmed.
    pub(super) routes_since_trim: usize,
    /// The value of `routes_since_trim` at the previous tick (unchanged = idle).
    pub(super) routes_at_last_tick: usize,
    /// The interface addresses (see [`watch_local_addresses`]); `None` until first read.
    pub(super) local_addresses: Option<tokio::sync::watch::Receiver<Option<Vec<IpAddr>>>>,
    /// The warnings about the Node's addresses last published (each logged once).
    pub(super) address_warnings: Vec<String>,
    /// The listener the running process bound: a change takes effect at the next start.
    pub(super) listen_at_start: crate::plan::ListenPlan,
    /// A peer still has output it could queue now: the event loop runs another output pass
    /// without waiting for an event.
    pub(super) output_more: bool,
    /// Which peer the next output pass starts with (round robin).
    pub(super) output_turn: usize,
    /// Asks the datastore to re-read everything (SIGHUP).
    pub(super) reloader: Option<crate::io::datastore::Reloader>,
    /// This node's addresses (interfaces, plan, session ends): never a valid next hop.
    pub(super) own_addresses: Vec<IpAddr>,
}

impl Supervisor {
    pub(super) fn new(
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

    pub(super) fn peer_id(&mut self, address: IpAddr) -> PeerId {
        let next = PeerId(self.ids.len() as u32);
        let id = *self.ids.entry(address).or_insert(next);
        self.addresses.insert(id, address);
        id
    }

    /// First plan: originate, configure peers, publish status.
    pub(super) fn start(&mut self) {
        self.rib.sync_originated(&self.plan.originated);
        self.apply_peers(&PlanDiff::default(), true);
        self.publish_recovery();
        self.refresh_warnings();
        self.after_batch();
    }

    pub(super) async fn run(
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

    pub(super) fn after_batch(&mut self) {
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

    pub(super) fn on_tick(&mut self) {
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

    /// After a large table load or flush, once a whole tick passed without a received route:
    /// the allocator keeps the pages of freed buffers (UPDATE batches, change logs, grown and
    /// rehashed tables) mapped; `malloc_trim` returns the free ones, so the settled footprint is
    /// what the RIB holds, not its high-water mark. Costs one heap walk per load, never during one.
    pub(super) fn trim_heap_when_idle(&mut self) {
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
}
