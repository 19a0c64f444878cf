//! The kernel's routing table over rtnetlink: the only module that talks netlink.
//!
//! ```text
//!   daemon ──set_desired / apply_changes / converged──▶ ┌──────────────┐ ──RTM_NEWROUTE/DELROUTE──▶ kernel
//!                                                  │ KernelTask   │   (writer connection,
//!   daemon ◀──────── LearnedRouteEvent ─────────── │ (one tokio   │    pipelined batches)
//!   daemon ◀──────── KernelStatus (watch) ──────── │  task)       │ ◀──route/link/address events──
//!                                                  └──────────────┘   (monitor connection)
//! ```
//!
//! The task owns the desired set and keeps the main table's routes of tern's protocol equal to
//! it; both are held compactly in a [`crate::fib::FibTable`], which also computes the writes.
//! Everything is event driven: a route of ours deleted or replaced by someone else is restored
//! from its notification; link and address changes (after which the
//! kernel drops IPv4 routes without notifying) and netlink overruns (ENOBUFS) trigger a full dump
//! and resynchronisation, coalesced: one dump at a time, at most one started per second, and the
//! changes that call for one while a dump runs make a single further one. Every wait for the
//! kernel is bounded (10 s without a message of a dump or lookup answer, 10 s per write
//! acknowledgement): a failed dump is logged, counted as an error and retried a second later,
//! nothing being written until one succeeds; the initial dump is tried three times. Routes via a gateway the kernel cannot reach directly are installed via
//! the kernel's own next hop for that gateway (`ip route get`) and re-resolved on every change;
//! when a gateway becomes unreachable its routes are withdrawn (listed as failed) until it is
//! reachable again. tern's own `RTM_NEWROUTE` notifications are dropped in the kernel by a BPF
//! filter on the event socket (they would halve the install rate); the cost is that a route of
//! tern's protocol written by another process is only noticed at the next resynchronisation.
//! Changes on workload interfaces (`cali*`, `kube-ipvs*`, the ignored ones) never trigger one.
//! Routes found at start are adopted (never flushed) and the stale ones are swept after
//! [`KernelHandle::converged`] or the hold timer. On stop routes stay unless `flush_on_exit`.
//!
//! Conflicting routes (robustness F13): tern writes with `NLM_F_CREATE | NLM_F_REPLACE`, so a
//! route of another protocol with the same prefix and metric in the main table is replaced by
//! tern's (as `ip route replace` and BIRD do); one with another metric is left alone and both
//! coexist (the kernel prefers the lower metric). When another agent replaces a route of ours,
//! tern restores it once per notification and logs it; there is no retry loop.

mod addresses;
mod codec;
mod task;
mod writer;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ipnet::IpNet;
use tokio::sync::{mpsc, watch};

use crate::fib::KernelRoute;
/// Counts of tern's routes in the kernel by kind.
pub use crate::fib::RouteCounts;

pub use addresses::{local_addresses, watch_local_addresses};
pub use writer::WriterClosed;

/// Settings of the kernel task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelConfig {
    /// Write routes at all (`[kernel] program`). When `false` the task only reads: it learns
    /// routes and links, but adds, replaces and deletes nothing (routes of a previous run too).
    pub program: bool,
    /// Route protocol number of tern's routes (default 12, `bird`, which Felix treats as BIRD's).
    pub protocol: u8,
    /// The IP-in-IP device (the node agent's `tunl0`).
    pub tunnel_device: String,
    /// Interfaces whose routes are not learned, beyond Calico's fixed `cali*` and `kube-ipvs*`;
    /// a trailing `*` matches any suffix.
    pub ignored_interfaces: Vec<String>,
    /// How long routes adopted at start are kept when [`KernelHandle::converged`] never comes;
    /// `None`: kept until [`KernelHandle::hold_stale_for`] starts the timer (the daemon has no
    /// plan yet: its datastore has not synced).
    pub stale_hold: Option<Duration>,
    /// Delete tern's routes when the task stops (default: keep them).
    pub flush_on_exit: bool,
    /// Socket receive buffer of the event connection, in bytes (set with `SO_RCVBUFFORCE` when
    /// permitted).
    pub event_buffer_bytes: usize,
}

impl Default for KernelConfig {
    fn default() -> Self {
        Self {
            program: true,
            protocol: 12,
            tunnel_device: "tunl0".to_owned(),
            ignored_interfaces: Vec::new(),
            stale_hold: Some(Duration::from_secs(120)),
            flush_on_exit: false,
            event_buffer_bytes: 32 << 20,
        }
    }
}

/// A route another agent installed (or an interface route), learned as input for export.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LearnedRoute {
    /// Destination prefix.
    pub prefix: IpNet,
    /// Outgoing interface name, when the route has one.
    pub interface: Option<String>,
    /// Route protocol number (`boot` = 3, `static` = 4, ...; `kernel` = 2 for interface routes).
    pub protocol: u8,
    /// Route metric.
    pub metric: u32,
}

/// A change of the learned routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnedRouteEvent {
    /// The route appeared (or changed).
    Added(LearnedRoute),
    /// The route is gone.
    Removed(LearnedRoute),
}

/// A snapshot of the kernel task, for metrics and `tern show fib`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelStatus {
    /// Generation of the last desired set the task has fully reconciled (see
    /// [`KernelHandle::set_desired`]); routes that failed are listed in `failed`.
    pub applied_generation: u64,
    /// Number of desired routes.
    pub desired: usize,
    /// tern's routes in the kernel, by kind.
    pub installed: RouteCounts,
    /// Adopted routes still held until convergence.
    pub stale: usize,
    /// Whether the stale hold has ended (convergence or timer).
    pub stale_swept: bool,
    /// Desired routes not in the kernel, with the reason.
    pub failed: std::sync::Arc<BTreeMap<IpNet, String>>,
    /// The tunnel device is missing while IP-in-IP routes are desired.
    pub tunnel_missing: bool,
    /// Full resynchronisations (dumps) started: start, link/address changes, overruns;
    /// coalesced, at most one a second.
    pub resyncs: u64,
    /// Netlink overruns (ENOBUFS) seen on the event connection.
    pub overruns: u64,
    /// Routes of ours restored after someone else deleted or replaced them.
    pub restored: u64,
    /// Route writes sent to the kernel.
    pub writes: u64,
    /// Kernel errors since start: each refused route write, each time the tunnel device went
    /// missing while IP-in-IP routes were desired.
    pub errors_total: u64,
    /// The last of those errors: when it happened and what it was.
    pub last_error: Option<(std::time::SystemTime, String)>,
    /// When a pass last ended with the kernel as desired (no route failing).
    pub last_sync: Option<std::time::SystemTime>,
    /// The tunnel device IP-in-IP routes use.
    pub tunnel_device: String,
    /// A full resynchronisation is called for and not done yet.
    pub resync_pending: bool,
}

/// A change of one prefix's desired kernel route (see [`KernelHandle::apply_changes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DesiredChange {
    /// The prefix's desired route is now this one.
    Set(KernelRoute),
    /// The prefix has no desired route any more.
    Remove(IpNet),
}

impl DesiredChange {
    /// The prefix changed.
    pub fn prefix(&self) -> IpNet {
        match self {
            DesiredChange::Set(route) => route.prefix,
            DesiredChange::Remove(prefix) => *prefix,
        }
    }
}

/// What the handle sends the task about the desired set, in order.
#[derive(Debug)]
pub(super) enum DesiredUpdate {
    /// The whole set, with its generation: replaces everything before it.
    Whole(u64, Vec<KernelRoute>),
    /// Changes of some prefixes, with their generation.
    Changes(u64, Vec<DesiredChange>),
}

pub(super) enum Command {
    Converged,
    HoldStale(Duration),
    IgnoredInterfaces(Vec<String>),
    Routes(RouteRange, tokio::sync::oneshot::Sender<KernelRoutes>),
    Shutdown(tokio::sync::oneshot::Sender<()>),
}

/// What the kernel task holds, route by route (for `tern show fib`): built on request only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelRoutes {
    /// tern's routes in the kernel as the kernel task knows them (written and acknowledged, or
    /// found in a dump), by prefix.
    pub installed: Vec<KernelRoute>,
    /// Prefixes where the kernel does not hold what is desired, by prefix.
    pub differences: Vec<RouteDifference>,
}

/// Which of the kernel task's routes a query wants: in a range, after a prefix, at most so many
/// (of the routes, and as many of the differences), in prefix order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteRange {
    /// Only prefixes inside this one (itself included).
    pub within: Option<IpNet>,
    /// Only prefixes ordered after this one.
    pub after: Option<IpNet>,
    /// At most this many.
    pub limit: Option<usize>,
}

impl RouteRange {
    /// Whether `prefix` is in the range (the limit aside).
    pub fn contains(&self, prefix: &IpNet) -> bool {
        self.within.is_none_or(|w| w.contains(prefix)) && self.after.is_none_or(|a| *prefix > a)
    }
}

/// A prefix whose route in the kernel is not the desired one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDifference {
    /// The prefix.
    pub prefix: IpNet,
    /// The route wanted there (none: the kernel's route is to go).
    pub desired: Option<KernelRoute>,
    /// tern's route the kernel holds there now, if any.
    pub installed: Option<KernelRoute>,
    /// Why the last write failed; `None` while the write is pending.
    pub failed: Option<String>,
}

/// A cloneable handle to ask the kernel task for its routes.
#[derive(Debug, Clone)]
pub struct KernelQuery {
    commands: mpsc::UnboundedSender<Command>,
}

impl KernelQuery {
    /// The kernel task's routes, installed and differing from the desired ones; `None` when
    /// the task has stopped. The task answers between its passes.
    pub async fn routes(&self, range: RouteRange) -> Option<KernelRoutes> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.commands.send(Command::Routes(range, reply)).ok()?;
        answer.await.ok()
    }
}

/// The daemon's handle on the kernel task. Dropping it stops the task (routes stay).
#[derive(Debug)]
pub struct KernelHandle {
    desired: mpsc::UnboundedSender<DesiredUpdate>,
    generation: AtomicU64,
    commands: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<KernelStatus>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Converged => f.write_str("Converged"),
            Command::HoldStale(hold) => write!(f, "HoldStale({hold:?})"),
            Command::IgnoredInterfaces(i) => write!(f, "IgnoredInterfaces({i:?})"),
            Command::Routes(range, _) => write!(f, "Routes({range:?})"),
            Command::Shutdown(_) => f.write_str("Shutdown"),
        }
    }
}

/// The kernel task could not start.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// Opening or configuring a netlink socket failed.
    #[error("cannot open a netlink route socket: {0}")]
    Socket(#[from] std::io::Error),
    /// The first dump of links and routes failed.
    #[error("the initial netlink dump failed: {0}")]
    Dump(String),
}

impl KernelHandle {
    /// Opens the netlink connections in the current network namespace, dumps links and routes,
    /// adopts tern's existing routes and spawns the task on the current tokio runtime. Returns
    /// the handle and the stream of learned route changes (the initial set first).
    pub async fn start(
        config: KernelConfig,
    ) -> Result<(KernelHandle, mpsc::UnboundedReceiver<LearnedRouteEvent>), KernelError> {
        let (desired_tx, desired_rx) = mpsc::unbounded_channel();
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let (status_tx, status_rx) = watch::channel(KernelStatus::default());
        let (learned_tx, learned_rx) = mpsc::unbounded_channel();
        let task =
            task::KernelTask::start(config, desired_rx, commands_rx, status_tx, learned_tx).await?;
        let join = tokio::spawn(task.run());
        Ok((
            KernelHandle {
                desired: desired_tx,
                generation: AtomicU64::new(0),
                commands: commands_tx,
                status: status_rx,
                task: Some(join),
            },
            learned_rx,
        ))
    }

    /// Replaces the desired route set. Updates are coalesced: the task applies the latest set.
    /// Returns the generation number that [`KernelStatus::applied_generation`] reaches once this
    /// set (or a later one) has been applied.
    pub fn set_desired(&self, routes: Vec<KernelRoute>) -> u64 {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = self.desired.send(DesiredUpdate::Whole(generation, routes));
        generation
    }

    /// Changes the desired routes of some prefixes only (the rest stay as they are). The task
    /// takes every queued update at once, ignores changes that leave a prefix's desired route as
    /// it was, and writes only the changed prefixes, in pipelined
    /// batches: the cost is proportional to the changes, not to the table. Ordered with
    /// [`KernelHandle::set_desired`]; returns the generation that
    /// [`KernelStatus::applied_generation`] reaches once these changes have been applied.
    pub fn apply_changes(&self, changes: Vec<DesiredChange>) -> u64 {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = self
            .desired
            .send(DesiredUpdate::Changes(generation, changes));
        generation
    }

    /// The convergence signal (End-of-RIB from all peers): stale adopted routes not desired again
    /// are removed now rather than when the hold timer runs out. Call it once the desired set
    /// passed to [`KernelHandle::set_desired`] reflects the re-converged RIB.
    pub fn converged(&self) {
        let _ = self.commands.send(Command::Converged);
    }

    /// Starts the timer of the routes adopted at start: kept at most `hold` from now (unless
    /// [`KernelHandle::converged`] comes first). For a task started with no hold.
    pub fn hold_stale_for(&self, hold: Duration) {
        let _ = self.commands.send(Command::HoldStale(hold));
    }

    /// Interfaces whose routes are not learned from now on (as
    /// [`KernelConfig::ignored_interfaces`]); the learned routes are re-read from a dump, so
    /// those of a newly ignored interface are removed and the others learned.
    pub fn set_ignored_interfaces(&self, interfaces: Vec<String>) {
        let _ = self.commands.send(Command::IgnoredInterfaces(interfaces));
    }

    /// A handle to ask the task for its routes ([`KernelQuery::routes`]).
    pub fn query(&self) -> KernelQuery {
        KernelQuery {
            commands: self.commands.clone(),
        }
    }

    /// The latest status snapshot.
    pub fn status(&self) -> KernelStatus {
        self.status.borrow().clone()
    }

    /// A receiver of status snapshots (to wait for a condition).
    pub fn watch_status(&self) -> watch::Receiver<KernelStatus> {
        self.status.clone()
    }

    /// Stops the task; tern's routes stay in the kernel unless `flush_on_exit` was set.
    pub async fn shutdown(mut self) {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        if self.commands.send(Command::Shutdown(done_tx)).is_ok() {
            let _ = done_rx.await;
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
