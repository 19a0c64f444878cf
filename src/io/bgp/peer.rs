//! The task of one peer: owns its [`Session`] core and turns its actions into socket writes,
//! connection attempts and tokio timers.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant as TokioInstant;
use tracing::{debug, info, trace, warn};

use crate::session::{
    Action, ConnId, Direction, Input, PeerConfig, Session, State, StopReason, Timer,
};

use super::conn::{Conn, ConnEvent};
use super::counters::OutputCounters;
use super::socket;
use super::{Outbound, PeerEvent, PeerStatus, SpeakerEvent};

/// Most bytes queued for writing to a peer before the task stops taking UPDATEs from its
/// outbound queue (the rest wait there, bounded, and the RIB sees back-pressure).
const MAX_QUEUED_BYTES: usize = 256 * 1024;
/// How long a stopping peer task may wait for the consumer to take its last events.
const FINAL_EVENTS_TIMEOUT: Duration = Duration::from_secs(5);
/// While reading is paused by local back-pressure with the peer's data waiting, an expired
/// hold timer is looked at again after this long instead of ending the session.
const HOLD_RECHECK: Duration = Duration::from_secs(1);
/// Connection data is read while fewer events than this wait for the consumer.
const READ_WHILE_PENDING: usize = 64;

/// Commands from the listener to a peer task.
#[derive(Debug)]
pub(crate) enum PeerCommand {
    /// The listener accepted a connection from this peer's address.
    Inbound(TcpStream),
}

/// What the speaker wants of a peer, carried in a `tokio::sync::watch`: it cannot be full and
/// coalesces (the task applies the latest value, comparing it with the one it applied last), so
/// a reconfiguration, a stop or an admin command is never lost to a busy task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Desired {
    /// The peer's configuration (a change that [`PeerConfig::requires_reset`] resets the
    /// session with Cease/6).
    pub(crate) config: PeerConfig,
    /// Held down with this reason (disabled: Cease/2) until cleared.
    pub(crate) held_down: Option<StopReason>,
    /// One-shot stops after which the session restarts by itself (admin reset, max-prefix):
    /// how many were asked, and the last one's reason.
    pub(crate) kicks: u64,
    /// The reason of the last kick.
    pub(crate) kick: Option<StopReason>,
    /// Stop the session with this reason and end the task (removed: Cease/3; speaker stop).
    pub(crate) end: Option<StopReason>,
}

impl Desired {
    pub(crate) fn new(config: PeerConfig) -> Self {
        Desired {
            config,
            held_down: None,
            kicks: 0,
            kick: None,
            end: None,
        }
    }
}

/// State shared between a peer task and the speaker handle.
#[derive(Debug, Default)]
pub(crate) struct PeerShared {
    /// The current session id (incremented on every Established).
    pub(crate) session: AtomicU64,
    /// Set by the handle when the outbound queue was full; the task reports
    /// [`PeerEvent::OutputReady`] once it has drained.
    pub(crate) output_blocked: AtomicBool,
    /// Status for `show` commands.
    pub(crate) status: std::sync::Mutex<PeerStatus>,
    /// Messages received and sent (written to the socket), by type.
    pub(crate) messages: Arc<super::counters::MessageCounters>,
}

type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

pub(crate) struct PeerTask {
    peer: IpAddr,
    session: Session,
    base: TokioInstant,
    timers: HashMap<Timer, TokioInstant>,
    conns: HashMap<ConnId, Conn>,
    /// Message framing of each connection's received bytes, for the counters.
    framers: HashMap<ConnId, super::counters::ReceiveFramer>,
    next_conn: u64,
    connect: Option<ConnectFuture>,
    commands: mpsc::Receiver<PeerCommand>,
    desired: watch::Receiver<Desired>,
    /// The desired state last applied.
    applied: Desired,
    conn_tx: mpsc::Sender<ConnEvent>,
    conn_rx: mpsc::Receiver<ConnEvent>,
    /// Notified by the writers when queued bytes went out.
    written: Arc<Notify>,
    outbound: mpsc::Receiver<(u64, Outbound)>,
    events: mpsc::Sender<SpeakerEvent>,
    pending: VecDeque<PeerEvent>,
    /// The Established connection and its session id.
    established: Option<(ConnId, u64)>,
    /// What the Established session has written of its UPDATE output.
    output: Arc<OutputCounters>,
    shared: Arc<PeerShared>,
    exit: bool,
}

impl PeerTask {
    pub(crate) fn new(
        config: PeerConfig,
        base: TokioInstant,
        commands: mpsc::Receiver<PeerCommand>,
        mut desired: watch::Receiver<Desired>,
        outbound: mpsc::Receiver<(u64, Outbound)>,
        events: mpsc::Sender<SpeakerEvent>,
        shared: Arc<PeerShared>,
    ) -> Self {
        let applied = desired.borrow_and_update().clone();
        let (conn_tx, conn_rx) = mpsc::channel(4);
        PeerTask {
            peer: config.peer_address,
            session: Session::new(config),
            base,
            timers: HashMap::new(),
            conns: HashMap::new(),
            framers: HashMap::new(),
            next_conn: 0,
            connect: None,
            commands,
            desired,
            applied,
            conn_tx,
            conn_rx,
            written: Arc::new(Notify::new()),
            outbound,
            events,
            pending: VecDeque::new(),
            established: None,
            output: Arc::new(OutputCounters::default()),
            shared,
            exit: false,
        }
    }

    fn now(&self) -> crate::session::Instant {
        crate::session::Instant::from_start(
            TokioInstant::now().saturating_duration_since(self.base),
        )
    }

    fn to_tokio(&self, at: crate::session::Instant) -> TokioInstant {
        self.base + at.since_start()
    }

    /// Runs the peer until it is stopped.
    pub(crate) async fn run(mut self) {
        if let Some(reason) = self.applied.end.clone() {
            self.input(Input::Stop(&reason));
            self.exit = true;
        } else if self.applied.held_down.is_none() {
            self.input(Input::Start);
        }
        while !self.exit {
            self.step().await;
        }
        // Hand over the last events (the Down the RIB must see), bounded in time.
        let deadline = TokioInstant::now() + FINAL_EVENTS_TIMEOUT;
        while let Some(event) = self.pending.pop_front() {
            let send = self.events.send(SpeakerEvent {
                peer: self.peer,
                event,
            });
            if tokio::time::timeout_at(deadline, send)
                .await
                .map_or(true, |r| r.is_err())
            {
                break;
            }
        }
        for (_, conn) in self.conns.drain() {
            conn.close();
        }
    }

    async fn step(&mut self) {
        let next_timer = self.timers.values().min().copied();
        let can_take_output = self
            .established
            .and_then(|(conn, _)| self.conns.get(&conn))
            .is_some_and(|c| c.queued() < MAX_QUEUED_BYTES);
        let output_waiting = self.established.is_some() && !can_take_output;
        let written = self.written.clone();
        let connect = &mut self.connect;
        let events = self.events.clone();
        tokio::select! {
            Some(cmd) = self.commands.recv() => self.command(cmd),
            changed = self.desired.changed() => match changed {
                Ok(()) => {
                    let desired = self.desired.borrow_and_update().clone();
                    self.apply(desired);
                }
                // The speaker is gone: stop quietly like a planned restart.
                Err(_) => {
                    let mut last = self.desired.borrow().clone();
                    if last.end.is_none() {
                        last.end = Some(StopReason::PlannedRestart { text: String::new() });
                    }
                    self.apply(last);
                }
            },
            // Reading stops while events wait for the consumer (TCP pushes back on a flooding
            // peer); a few waiting events (state changes) do not stop it, so a session still
            // comes up and its KEEPALIVEs are read while the consumer is slow.
            Some(event) = self.conn_rx.recv(), if self.pending.len() < READ_WHILE_PENDING => self.conn_event(event),
            result = async { connect.as_mut().expect("guarded").await }, if connect.is_some() => {
                self.connect = None;
                match result {
                    Ok(stream) => {
                        let id = self.new_conn(stream);
                        self.input(Input::Connected { conn: id, direction: Direction::Outbound });
                    }
                    Err(error) => {
                        debug!(peer = %self.peer, %error, "connect failed");
                        self.set_last_error(format!("connect: {error}"));
                        self.input(Input::ConnectFailed);
                    }
                }
            }
            () = sleep_until_opt(next_timer), if next_timer.is_some() => self.fire_timers(),
            Some((session, item)) = self.outbound.recv(), if can_take_output => self.output(session, item),
            // The writer caught up: re-check whether more output may be taken.
            () = written.notified(), if output_waiting => {}
            Ok(permit) = events.reserve(), if !self.pending.is_empty() => {
                if let Some(event) = self.pending.pop_front() {
                    permit.send(SpeakerEvent { peer: self.peer, event });
                }
            }
        }
        if self.outbound.is_empty() && self.shared.output_blocked.swap(false, Ordering::SeqCst) {
            self.pending.push_back(PeerEvent::OutputReady);
        }
    }

    fn new_conn(&mut self, stream: TcpStream) -> ConnId {
        self.next_conn += 1;
        let id = ConnId(self.next_conn);
        let _ = stream.set_nodelay(true);
        let conn = Conn::spawn(
            id,
            stream,
            self.conn_tx.clone(),
            self.written.clone(),
            Arc::clone(&self.shared.messages),
        );
        self.conns.insert(id, conn);
        id
    }

    fn command(&mut self, cmd: PeerCommand) {
        match cmd {
            PeerCommand::Inbound(stream) => {
                // Outgoing TTL / GTSM per this peer (the listener is shared by all peers).
                let sock = socket2::SockRef::from(&stream);
                if let Err(error) = socket::set_ttl(&sock, self.peer, self.session.config().ttl) {
                    warn!(peer = %self.peer, %error, "cannot set TTL on an accepted connection; closing it");
                    return;
                }
                let id = self.new_conn(stream);
                self.input(Input::Connected {
                    conn: id,
                    direction: Direction::Inbound,
                });
            }
        }
    }

    /// Moves the session from the desired state last applied to `new`.
    fn apply(&mut self, new: Desired) {
        let old = std::mem::replace(&mut self.applied, new.clone());
        if let Some(reason) = &new.end {
            self.input(Input::Stop(reason));
            self.exit = true;
            return;
        }
        if new.config != old.config {
            if old.config.requires_reset(&new.config) {
                self.input(Input::Stop(&StopReason::ConfigChange));
                // The stop above produced its NOTIFICATION and closes; start afresh (unless the
                // peer is held down).
                self.session = Session::new(new.config.clone());
                self.timers.clear();
                if new.held_down.is_none() {
                    self.input(Input::Start);
                }
            } else {
                self.session.update_pacing(new.config.clone());
            }
        }
        match (&old.held_down, &new.held_down) {
            (None, Some(reason)) => self.input(Input::Stop(reason)),
            (Some(_), None) => self.input(Input::Start),
            _ => {}
        }
        if new.kicks != old.kicks
            && new.held_down.is_none()
            && let Some(reason) = &new.kick
        {
            self.input(Input::Stop(reason));
        }
    }

    fn conn_event(&mut self, event: ConnEvent) {
        match event {
            ConnEvent::Data(conn, bytes) => {
                self.framers
                    .entry(conn)
                    .or_default()
                    .feed(&bytes, &self.shared.messages);
                self.input(Input::Received {
                    conn,
                    bytes: &bytes,
                })
            }
            ConnEvent::Closed(conn) => {
                self.framers.remove(&conn);
                if let Some(c) = self.conns.remove(&conn) {
                    c.close();
                    self.input(Input::Closed { conn });
                }
            }
            ConnEvent::WriteStalled(conn) => self.input(Input::WriteStalled { conn }),
            ConnEvent::WriteResumed(conn) => self.input(Input::WriteResumed { conn }),
        }
    }

    fn fire_timers(&mut self) {
        let now = TokioInstant::now();
        let due: Vec<Timer> = self
            .timers
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(t, _)| *t)
            .collect();
        for timer in due {
            if timer == Timer::Hold
                && self.pending.len() >= READ_WHILE_PENDING
                && !self.conn_rx.is_empty()
            {
                // Reading is paused by our own back-pressure (events wait for the consumer)
                // while the peer's data waits unread: the peer is alive, only we are slow. The
                // hold timer detects a dead peer (RFC 4271 §4.4, §6.5), so it must not end this
                // session; it is looked at again shortly, and re-armed by the FSM as soon as
                // the waiting messages are read. KEEPALIVEs keep going out meanwhile.
                self.timers.insert(timer, now + HOLD_RECHECK);
                continue;
            }
            self.timers.remove(&timer);
            self.input(Input::TimerExpired(timer));
        }
    }

    fn output(&mut self, session: u64, item: Outbound) {
        let Some((conn, current)) = self.established else {
            return;
        };
        if session != current {
            return; // queued for a session that has ended
        }
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        match item {
            Outbound::Message(bytes) => c.send(bytes),
            Outbound::Updates { bytes, prefixes } => {
                c.send_output(bytes, u64::from(prefixes), Arc::clone(&self.output))
            }
            // End-of-RIB ends the table: counted as output (no prefixes), so the time the
            // table was written includes it.
            Outbound::EndOfRib(family) => {
                c.send_output(super::end_of_rib(family), 0, Arc::clone(&self.output))
            }
            Outbound::RouteRefresh(family) => {
                c.send(super::route_refresh(family));
                return;
            }
        }
        self.input(Input::UpdateSent);
    }

    fn set_last_error(&self, error: String) {
        if let Ok(mut status) = self.shared.status.lock() {
            status.last_error = Some(error);
        }
    }

    /// Feeds one input to the session and carries out its actions.
    fn input(&mut self, input: Input<'_>) {
        let now = self.now();
        let actions = self.session.handle(input, now);
        for action in actions {
            self.act(action);
        }
    }

    fn act(&mut self, action: Action) {
        trace!(peer = %self.peer, ?action, "session action");
        match action {
            Action::Connect => {
                let config = self.session.config().clone();
                self.connect = Some(Box::pin(connect(config)));
            }
            Action::CancelConnect => self.connect = None,
            Action::Send { conn, bytes } => {
                if let Some(c) = self.conns.get(&conn) {
                    c.send(bytes);
                }
            }
            Action::Close { conn } => {
                self.framers.remove(&conn);
                if let Some(c) = self.conns.remove(&conn) {
                    c.close();
                }
            }
            Action::ArmTimer { timer, at } => {
                let at = self.to_tokio(at);
                self.timers.insert(timer, at);
            }
            Action::CancelTimer(timer) => {
                self.timers.remove(&timer);
            }
            Action::StateChanged { from, to } => {
                info!(peer = %self.peer, %from, %to, "BGP state");
                if let Ok(mut status) = self.shared.status.lock() {
                    status.state = to;
                }
                if from == State::Established {
                    self.established = None;
                    // Whatever was queued for the old session is void.
                    while self.outbound.try_recv().is_ok() {}
                }
                self.pending.push_back(PeerEvent::StateChanged { from, to });
            }
            Action::Established { conn, negotiated } => {
                let session = self.shared.session.fetch_add(1, Ordering::Relaxed) + 1;
                self.established = Some((conn, session));
                self.output = Arc::new(OutputCounters::default());
                let (local, remote) = self
                    .conns
                    .get(&conn)
                    .map_or((None, None), |c| (c.local_addr(), c.peer_addr()));
                if let Ok(mut status) = self.shared.status.lock() {
                    status.info = Some(negotiated.clone());
                    status.last_error = None;
                }
                self.pending.push_back(PeerEvent::Established {
                    session,
                    info: negotiated,
                    local,
                    remote,
                    output: Arc::clone(&self.output),
                });
            }
            Action::Update(update) => self.pending.push_back(PeerEvent::Update(update)),
            Action::EndOfRib(family) => self.pending.push_back(PeerEvent::EndOfRib(family)),
            Action::FamilyDisabled(family) => {
                self.pending.push_back(PeerEvent::FamilyDisabled(family))
            }
            Action::RouteRefresh(family) => self.pending.push_back(PeerEvent::RouteRefresh(family)),
            Action::Down(down) => {
                info!(peer = %self.peer, reason = %down.reason, "BGP session down");
                self.set_last_error(down.reason.to_string());
                if let Ok(mut status) = self.shared.status.lock() {
                    status.info = None;
                }
                self.pending.push_back(PeerEvent::Down(down));
            }
        }
    }
}

async fn sleep_until_opt(at: Option<TokioInstant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// An outgoing connection with this peer's socket options.
async fn connect(config: PeerConfig) -> io::Result<TcpStream> {
    let addr = socket::scoped(config.peer_address, config.peer_port, config.scope_id);
    let source = config
        .source_address
        .map(|ip| socket::scoped(ip, 0, config.scope_id));
    let socket = socket::outgoing_socket(addr, source, config.password.as_ref(), config.ttl)?;
    let socket = TcpSocket::from_std_stream(std::net::TcpStream::from(socket));
    socket.connect(addr).await
}
