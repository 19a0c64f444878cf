//! The BGP transport: listeners, one task per peer, socket options.
//!
//! ```text
//!  SpeakerHandle::set_peers ──► peer table (Arc<Mutex<..>>) ◄── listener(s): accept, look up source,
//!        │ (diff: start/stop/reset)        │                   hand over or close before reading
//!        ▼                                 ▼
//!   peer task (one per peer): Session core + timers ──► reader/writer task per TCP connection
//!        │  events (bounded mpsc, shared)              ▲
//!        ▼                                             │ outbound (bounded per peer, never blocks
//!   SpeakerEvent consumer (RIB / supervisor)  ─────────┘  the caller: Full = back-pressure)
//! ```
//!
//! A slow or stuck peer never delays another: each peer has its own task, its own bounded
//! outbound queue and its own writer; a peer that stops reading is closed by the send hold timer
//! (RFC 9687); one that floods is not read while its events wait for the consumer.

mod conn;
pub mod counters;
mod listener;
mod peer;
pub mod socket;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::status::MessageCounts;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant as TokioInstant;
use tracing::warn;

use bgp_proto::Family;
use bgp_proto::message::Update;

use crate::session::{Down, PeerConfig, SessionInfo, State, StopReason};

pub use counters::OutputCounters;
use peer::{Desired, PeerCommand, PeerShared, PeerTask};

/// Speaker-wide settings.
#[derive(Debug, Clone)]
pub struct SpeakerConfig {
    /// Addresses to listen on (Calico `listenPort`; `bindMode: NodeIP` binds the node address).
    /// `[::]:179` is dual-stack: IPv4 peers arrive as IPv4-mapped addresses.
    pub listen: Vec<SocketAddr>,
    /// Capacity of the event channel shared by all peers.
    pub event_queue: usize,
    /// Capacity of each peer's outbound queue (messages).
    pub outbound_queue: usize,
}

impl Default for SpeakerConfig {
    fn default() -> Self {
        SpeakerConfig {
            listen: vec!["[::]:179".parse().expect("literal")],
            event_queue: 1024,
            outbound_queue: 1024,
        }
    }
}

/// Something to send to an Established peer.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// One or more encoded messages (encoded with the session's send context,
    /// [`SessionInfo::codec`]`.send`), not counted as route output.
    Message(Bytes),
    /// Encoded UPDATE messages carrying `prefixes` NLRI (announced + withdrawn): counted in the
    /// session's [`OutputCounters`] once written to the socket.
    Updates {
        /// The messages.
        bytes: Bytes,
        /// NLRI they carry.
        prefixes: u32,
    },
    /// End-of-RIB for a family (RFC 4724 §2), after the initial table.
    EndOfRib(Family),
    /// Ask the peer to send its routes of a family again (RFC 2918; only when
    /// [`SessionInfo::route_refresh`] was negotiated).
    RouteRefresh(Family),
}

/// What happened to a peer.
#[derive(Debug)]
pub enum PeerEvent {
    /// The session state changed.
    StateChanged {
        /// Old state.
        from: State,
        /// New state.
        to: State,
    },
    /// The session is Established. Send the initial table, then End-of-RIB per family, with
    /// [`SpeakerHandle::send`] and this `session` id.
    Established {
        /// Identifies this session; outbound items tagged with an older id are dropped.
        session: u64,
        /// The negotiated facts.
        info: Arc<SessionInfo>,
        /// Our end of the TCP connection (the next hop for locally originated routes).
        local: Option<SocketAddr>,
        /// The peer's end.
        remote: Option<SocketAddr>,
        /// What this session has written of its UPDATE output.
        output: Arc<OutputCounters>,
    },
    /// An UPDATE from the peer (decoded; RFC 7606 issues inside).
    Update(Box<Update>),
    /// The peer's End-of-RIB for a family.
    EndOfRib(Family),
    /// A malformed MP_REACH_NLRI / MP_UNREACH_NLRI disabled this family for the rest of the
    /// session (RFC 7606 §7.11): delete the peer's routes of it.
    FamilyDisabled(Family),
    /// The peer asks for our routes of a family again.
    RouteRefresh(Family),
    /// The session ended (routes to withdraw, or keep as stale per `retain_routes_for`).
    Down(Down),
    /// The outbound queue was full and has drained: send more.
    OutputReady,
}

/// An event of one peer.
#[derive(Debug)]
pub struct SpeakerEvent {
    /// The peer (its configured address).
    pub peer: IpAddr,
    /// What happened.
    pub event: PeerEvent,
}

/// A peer's status for `show` commands and readiness.
#[derive(Debug, Clone)]
pub struct PeerStatus {
    /// Current state.
    pub state: State,
    /// Negotiated facts while Established.
    pub info: Option<Arc<SessionInfo>>,
    /// The last reason the session failed or could not come up (never contains secrets).
    pub last_error: Option<String>,
}

impl Default for PeerStatus {
    fn default() -> Self {
        PeerStatus {
            state: State::Idle,
            info: None,
            last_error: None,
        }
    }
}

/// Why [`SpeakerHandle::send`] refused an item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No such peer.
    #[error("no configured peer {0}")]
    UnknownPeer(IpAddr),
    /// The session the item was for has ended (or never existed).
    #[error("session {session} of peer {peer} is not the current one")]
    StaleSession {
        /// The peer.
        peer: IpAddr,
        /// The session id given.
        session: u64,
    },
    /// The peer's outbound queue is full: wait for [`PeerEvent::OutputReady`].
    #[error("outbound queue of peer {0} is full")]
    Full(IpAddr),
}

/// Sends to one peer; see [`SpeakerHandle::sender`].
#[derive(Clone)]
pub struct PeerSender {
    peer: IpAddr,
    outbound: mpsc::Sender<(u64, Outbound)>,
    shared: Arc<PeerShared>,
}

impl PeerSender {
    /// Queues an item for session `session` without waiting. `StaleSession` when that session
    /// is not the current Established one; `Full` is back-pressure (retry after
    /// [`PeerEvent::OutputReady`]).
    pub fn send(&self, session: u64, item: Outbound) -> Result<(), SendError> {
        let peer = self.peer;
        let established = self
            .shared
            .status
            .lock()
            .map(|s| s.state == State::Established)
            .unwrap_or(false);
        if self.shared.session.load(Ordering::Relaxed) != session || !established {
            return Err(SendError::StaleSession { peer, session });
        }
        let item = match self.outbound.try_send((session, item)) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Full(item)) => item,
            // The peer was removed.
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(SendError::UnknownPeer(peer)),
        };
        // Ask for `OutputReady` first, then try once more: the peer task may have drained the
        // queue (and looked at the flag) between the first try and the store, and would then
        // never report. Either this retry finds room, or the queue is still full and the task
        // sees the flag when it empties it.
        self.shared.output_blocked.store(true, Ordering::SeqCst);
        self.outbound.try_send(item).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::Full(peer),
            mpsc::error::TrySendError::Closed(_) => SendError::UnknownPeer(peer),
        })
    }
}

pub(crate) struct PeerEntry {
    /// What the peer task is to do (configuration, held down, kicks, end): never full.
    desired: watch::Sender<Desired>,
    pub(crate) commands: mpsc::Sender<PeerCommand>,
    outbound: mpsc::Sender<(u64, Outbound)>,
    shared: Arc<PeerShared>,
    task: JoinHandle<()>,
}

pub(crate) type Peers = Arc<Mutex<HashMap<IpAddr, PeerEntry>>>;

/// Starts the speaker.
pub struct Speaker;

impl Speaker {
    /// Binds the listeners and starts accepting (connections are closed until their peer is
    /// configured with [`SpeakerHandle::set_peers`]). Must run inside a tokio runtime.
    pub fn start(
        config: SpeakerConfig,
    ) -> io::Result<(SpeakerHandle, mpsc::Receiver<SpeakerEvent>)> {
        let (events, rx) = mpsc::channel(config.event_queue.max(1));
        let peers: Peers = Arc::new(Mutex::new(HashMap::new()));
        let mut listeners = Vec::new();
        let mut accept_tasks = Vec::new();
        for addr in &config.listen {
            let listener = Arc::new(listener::bind(*addr)?);
            accept_tasks.push(tokio::spawn(listener::accept_loop(
                listener.clone(),
                peers.clone(),
            )));
            listeners.push(listener);
        }
        let inner = Arc::new(Inner {
            config,
            peers,
            listeners,
            accept_tasks,
            events,
            base: TokioInstant::now(),
        });
        Ok((SpeakerHandle { inner }, rx))
    }
}

struct Inner {
    config: SpeakerConfig,
    peers: Peers,
    listeners: Vec<Arc<TcpListener>>,
    accept_tasks: Vec<JoinHandle<()>>,
    events: mpsc::Sender<SpeakerEvent>,
    base: TokioInstant,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.accept_tasks {
            task.abort();
        }
    }
}

/// Controls a running speaker. Cheap to clone.
#[derive(Clone)]
pub struct SpeakerHandle {
    inner: Arc<Inner>,
}

impl SpeakerHandle {
    /// The addresses the listeners are bound to (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.inner
            .listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Applies a new set of peers as a diff: new peers start, removed ones stop (Cease/3 Peer
    /// De-configured), peers whose session-relevant parameters changed (password, AS, addresses,
    /// router id, capabilities, timers in the OPEN: [`PeerConfig::requires_reset`]) are reset with
    /// Cease/6; the others keep their sessions. Peers are keyed by address.
    pub fn set_peers(&self, configs: Vec<PeerConfig>) {
        let mut wanted: HashMap<IpAddr, PeerConfig> =
            configs.into_iter().map(|c| (c.peer_address, c)).collect();
        let Ok(mut table) = self.inner.peers.lock() else {
            return;
        };
        // Removed peers.
        let removed: Vec<IpAddr> = table
            .keys()
            .filter(|a| !wanted.contains_key(a))
            .copied()
            .collect();
        for address in removed {
            if let Some(entry) = table.remove(&address) {
                // Delivered whatever the task is doing: it ends with Cease/3.
                entry
                    .desired
                    .send_modify(|d| d.end = Some(StopReason::Deconfigured));
                self.install_key(address, None);
                drop(entry.task); // detached: it ends after its NOTIFICATION
            }
        }
        // Changed peers.
        for (address, entry) in table.iter_mut() {
            let Some(new) = wanted.remove(address) else {
                continue;
            };
            let old_password = entry.desired.borrow().config.password.clone();
            if new.password != old_password {
                // F16: the new key is installed before the reset; never falls back to none
                // unless the configuration says so.
                self.install_key(*address, new.password.as_ref());
            }
            // Recorded in the watch, which is the delivery: the task applies the latest
            // configuration (resetting when `requires_reset`) as soon as it runs.
            entry.desired.send_if_modified(|d| {
                if d.config == new {
                    return false;
                }
                d.config = new;
                true
            });
        }
        // New peers.
        for (address, config) in wanted {
            self.install_key(address, config.password.as_ref());
            let entry = self.spawn_peer(config);
            table.insert(address, entry);
        }
    }

    fn install_key(&self, peer: IpAddr, key: Option<&crate::session::Password>) {
        for listener in &self.inner.listeners {
            // A listener that cannot receive this peer's connections needs no key: IPv4-only
            // for an IPv6 peer, or bound to an IPv6 address (IPv6-only) for an IPv4 peer.
            let reachable = match (listener.local_addr(), peer) {
                (Ok(SocketAddr::V4(_)), IpAddr::V6(_)) => false,
                (Ok(SocketAddr::V6(l)), IpAddr::V4(_)) => l.ip().is_unspecified(),
                _ => true,
            };
            if !reachable {
                continue;
            }
            if let Err(error) = socket::set_md5_key(listener.as_ref(), peer, key) {
                warn!(%peer, %error, "cannot set the TCP-MD5 key on a listener");
            }
        }
    }

    fn spawn_peer(&self, config: PeerConfig) -> PeerEntry {
        let (commands, commands_rx) = mpsc::channel(16);
        let (desired, desired_rx) = watch::channel(Desired::new(config.clone()));
        let (outbound, outbound_rx) = mpsc::channel(self.inner.config.outbound_queue.max(1));
        let shared = Arc::new(PeerShared::default());
        let task = PeerTask::new(
            config.clone(),
            self.inner.base,
            commands_rx,
            desired_rx,
            outbound_rx,
            self.inner.events.clone(),
            shared.clone(),
        );
        // One span per peer (CONVENTIONS: logging).
        let span = tracing::info_span!("peer", address = %config.peer_address);
        let task = tokio::spawn(tracing::Instrument::instrument(task.run(), span));
        PeerEntry {
            desired,
            commands,
            outbound,
            shared,
            task,
        }
    }

    /// Queues an item for an Established peer without waiting. `Full` is back-pressure: keep the
    /// change and retry after [`PeerEvent::OutputReady`].
    pub fn send(&self, peer: IpAddr, session: u64, item: Outbound) -> Result<(), SendError> {
        self.sender(peer)
            .ok_or(SendError::UnknownPeer(peer))?
            .send(session, item)
    }

    /// A cheap handle for sending to one peer without looking it up each time (the RIB's hot
    /// path). It stays valid while the peer is configured.
    pub fn sender(&self, peer: IpAddr) -> Option<PeerSender> {
        let table = self.inner.peers.lock().ok()?;
        let entry = table.get(&peer)?;
        Some(PeerSender {
            peer,
            outbound: entry.outbound.clone(),
            shared: entry.shared.clone(),
        })
    }

    /// Stops one peer's session with `reason` without removing the peer: Cease per the reason
    /// (e.g. [`StopReason::MaxPrefix`] from the RIB, robustness F19, or [`StopReason::Reset`]).
    /// Reasons that restart ([`StopReason::restarts`]) bring the session back by themselves;
    /// the others hold it down until [`SpeakerHandle::start_peer`], across reconfigurations.
    /// Never lost to a busy peer task (a coalescing watch); fails only for an unknown peer.
    pub fn stop_peer(&self, peer: IpAddr, reason: StopReason) -> Result<(), SendError> {
        self.modify(peer, |d| {
            if reason.restarts() {
                d.kicks += 1;
                d.kick = Some(reason);
            } else {
                d.held_down = Some(reason);
            }
        })
    }

    /// Starts a peer stopped with [`SpeakerHandle::stop_peer`].
    pub fn start_peer(&self, peer: IpAddr) -> Result<(), SendError> {
        self.modify(peer, |d| d.held_down = None)
    }

    /// Whether `peer` is held down by [`SpeakerHandle::stop_peer`] (disabled).
    pub fn is_held_down(&self, peer: IpAddr) -> Option<bool> {
        let table = self.inner.peers.lock().ok()?;
        Some(table.get(&peer)?.desired.borrow().held_down.is_some())
    }

    fn modify(&self, peer: IpAddr, f: impl FnOnce(&mut Desired)) -> Result<(), SendError> {
        let table = self
            .inner
            .peers
            .lock()
            .map_err(|_| SendError::UnknownPeer(peer))?;
        let entry = table.get(&peer).ok_or(SendError::UnknownPeer(peer))?;
        entry.desired.send_modify(f);
        Ok(())
    }

    /// Messages `(received, sent)` by type on all of `peer`'s sessions since it was configured.
    pub fn message_counts(&self, peer: IpAddr) -> Option<(MessageCounts, MessageCounts)> {
        let table = self.inner.peers.lock().ok()?;
        let shared = &table.get(&peer)?.shared;
        Some((shared.messages.received(), shared.messages.sent()))
    }

    /// Every peer's status, ordered by address.
    pub fn status(&self) -> Vec<(IpAddr, PeerStatus)> {
        let Ok(table) = self.inner.peers.lock() else {
            return Vec::new();
        };
        let mut all: Vec<(IpAddr, PeerStatus)> = table
            .iter()
            .filter_map(|(a, e)| e.shared.status.lock().ok().map(|s| (*a, s.clone())))
            .collect();
        all.sort_by_key(|(a, _)| *a);
        all
    }

    /// The state of one peer.
    pub fn state(&self, peer: IpAddr) -> Option<State> {
        let table = self.inner.peers.lock().ok()?;
        let entry = table.get(&peer)?;
        entry.shared.status.lock().ok().map(|s| s.state)
    }

    /// Stops every session with `reason` (e.g. [`StopReason::PlannedRestart`] on SIGTERM: no
    /// NOTIFICATION to graceful-restart peers) and waits, at most `timeout`, for the tasks.
    pub async fn shutdown(&self, reason: StopReason, timeout: Duration) {
        let entries: Vec<PeerEntry> = match self.inner.peers.lock() {
            Ok(mut table) => table.drain().map(|(_, e)| e).collect(),
            Err(_) => return,
        };
        for entry in &entries {
            entry.desired.send_modify(|d| d.end = Some(reason.clone()));
        }
        let deadline = TokioInstant::now() + timeout;
        for entry in entries {
            let _ = tokio::time::timeout_at(deadline, entry.task).await;
        }
        for task in &self.inner.accept_tasks {
            task.abort();
        }
    }
}

/// A ROUTE-REFRESH request for a family (RFC 2918).
pub(crate) fn route_refresh(family: Family) -> Bytes {
    bgp_proto::message::Message::RouteRefresh(bgp_proto::message::RouteRefresh::new(family))
        .to_bytes(&bgp_proto::Context::default())
        .map(|b| b.freeze())
        .unwrap_or_default()
}

/// End-of-RIB for a family (RFC 4724 §2): an UPDATE without routes (IPv4 unicast) or with only
/// an empty MP_UNREACH_NLRI.
pub(crate) fn end_of_rib(family: Family) -> Bytes {
    let update = Update::end_of_rib(family);
    bgp_proto::message::Message::Update(update)
        .to_bytes(&bgp_proto::Context::default())
        .map(|b| b.freeze())
        .unwrap_or_default()
}
