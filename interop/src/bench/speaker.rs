//! The benchmark's own BGP speakers: the route generator (`gen`) and the monitor (`mon`).
//!
//! Each runs on its own threads inside a network namespace (the thread enters it with
//! `setns`, so the sockets it opens live there) and connects to the daemon under test. Both
//! use blocking sockets: the generator writes its pre-encoded UPDATEs in large writes, the
//! monitor decodes every message with `bgp-proto` and counts distinct prefixes. Times are
//! taken with [`Instant`] in this process, so the generator's first write and the monitor's
//! last prefix are on one clock.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use bgp_proto::framing::BgpCodec;
use bgp_proto::{Capability, Family, Message, Negotiated, Open};
use bytes::BytesMut;
use ipnet::IpNet;
use nix::sched::{CloneFlags, setns};
use tokio_util::codec::{Decoder, Encoder};

use super::routes::RouteSet;

/// Hold time both speakers offer (the daemons are configured with the same).
pub const HOLD_TIME: u16 = 90;

/// Who a speaker is and whom it talks to.
#[derive(Debug, Clone)]
pub struct Peering {
    /// The namespace to run in (`ip netns` name).
    pub netns: String,
    /// Our AS.
    pub local_as: u32,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// The daemon's address (port 179).
    pub remote: Ipv4Addr,
    /// How long to keep trying to connect and complete the OPEN exchange.
    pub connect_timeout: Duration,
}

/// Moves the calling thread into namespace `name`.
fn enter_netns(name: &str) -> Result<()> {
    let file = File::open(format!("/run/netns/{name}"))
        .with_context(|| format!("opening namespace {name}"))?;
    setns(&file, CloneFlags::CLONE_NEWNET).with_context(|| format!("entering namespace {name}"))
}

/// An Established session: the stream, the framer (with the negotiated contexts) and what
/// was read past the handshake.
struct Session {
    stream: TcpStream,
    codec: BgpCodec,
    pending: BytesMut,
}

fn our_open(peering: &Peering) -> Open {
    Open::new(
        peering.local_as,
        HOLD_TIME,
        peering.router_id,
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(peering.local_as),
        ],
    )
}

fn write_message(stream: &mut TcpStream, codec: &mut BgpCodec, message: Message) -> Result<()> {
    let mut buf = BytesMut::new();
    codec.encode(message, &mut buf)?;
    stream.write_all(&buf)?;
    Ok(())
}

/// Reads until one whole message is decoded.
fn read_message(
    stream: &mut TcpStream,
    codec: &mut BgpCodec,
    pending: &mut BytesMut,
) -> Result<Message> {
    loop {
        if let Some(message) = codec.decode(pending)? {
            return Ok(message);
        }
        pending.reserve(64 * 1024);
        let mut chunk = [0u8; 64 * 1024];
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed by the daemon");
        }
        pending.extend_from_slice(&chunk[..n]);
    }
}

/// Connects (retrying until the timeout: the daemon may not listen yet) and completes the
/// OPEN exchange (RFC 4271 §8: OPEN both ways, then KEEPALIVE both ways).
fn establish(peering: &Peering) -> Result<Session> {
    let deadline = Instant::now() + peering.connect_timeout;
    let target = SocketAddr::from((peering.remote, 179));
    let mut last = anyhow!("not tried");
    while Instant::now() < deadline {
        match TcpStream::connect_timeout(&target, Duration::from_secs(2))
            .map_err(anyhow::Error::from)
            .and_then(|stream| handshake(stream, peering))
        {
            Ok(session) => return Ok(session),
            Err(e) => last = e,
        }
        // Connection refused comes back at once: pace the retries.
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(last.context(format!("no session with {target}")))
}

fn handshake(mut stream: TcpStream, peering: &Peering) -> Result<Session> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut codec = BgpCodec::new();
    let mut pending = BytesMut::new();
    let ours = our_open(peering);
    write_message(&mut stream, &mut codec, Message::Open(ours.clone()))?;
    let theirs = match read_message(&mut stream, &mut codec, &mut pending)? {
        Message::Open(open) => open,
        Message::Notification(n) => bail!("NOTIFICATION instead of OPEN: {n:?}"),
        other => bail!("expected OPEN, got {:?}", other.message_type()),
    };
    theirs
        .validate()
        .map_err(|e| anyhow!("daemon's OPEN: {e}"))?;
    codec.set_negotiated(&Negotiated::from_opens(&ours, &theirs));
    write_message(&mut stream, &mut codec, Message::Keepalive)?;
    match read_message(&mut stream, &mut codec, &mut pending)? {
        Message::Keepalive => {}
        Message::Notification(n) => bail!("NOTIFICATION instead of KEEPALIVE: {n:?}"),
        other => bail!("expected KEEPALIVE, got {:?}", other.message_type()),
    }
    stream.set_read_timeout(None)?;
    Ok(Session {
        stream,
        codec,
        pending,
    })
}

/// What the threads of one speaker share with the driver.
#[derive(Debug, Default)]
struct Shared {
    established: AtomicBool,
    error: Mutex<Option<String>>,
    stop: AtomicBool,
}

impl Shared {
    fn fail(&self, error: anyhow::Error) {
        if self.stop.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert(format!("{error:#}"));
        }
    }

    fn check(&self) -> Result<bool> {
        if let Some(error) = self.error.lock().ok().and_then(|e| e.clone()) {
            bail!("{error}");
        }
        Ok(self.established.load(Ordering::SeqCst))
    }
}

/// Sends a KEEPALIVE every hold time / 3 on `writer` until `stop` fires. The writer is shared
/// with the bulk writer, which holds the lock while it writes (the daemon's hold timer is
/// reset by UPDATEs too).
fn keepalives(writer: Arc<Mutex<TcpStream>>, stop: Receiver<()>, shared: Arc<Shared>) {
    let interval = Duration::from_secs(u64::from(HOLD_TIME / 3));
    let keepalive = match Message::Keepalive.to_bytes(&Default::default()) {
        Ok(bytes) => bytes,
        Err(e) => return shared.fail(e.into()),
    };
    loop {
        match stop.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let result = writer
            .lock()
            .map_err(|_| anyhow!("writer poisoned"))
            .and_then(|mut w| Ok(w.write_all(&keepalive)?));
        if let Err(e) = result {
            return shared.fail(e.context("sending KEEPALIVE"));
        }
    }
}

/// Joins and stops one speaker's threads.
struct Threads {
    stop_keepalive: Option<Sender<()>>,
    stream: Arc<OnceLock<TcpStream>>,
    handles: Vec<JoinHandle<()>>,
}

impl Threads {
    fn stop(&mut self, shared: &Shared) {
        shared.stop.store(true, Ordering::SeqCst);
        self.stop_keepalive.take();
        if let Some(stream) = self.stream.get() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

/// The route generator: one eBGP session to the daemon; on [`Generator::send`] it writes the
/// whole pre-encoded table and End-of-RIB, then keeps the session up until stopped.
pub struct Generator {
    shared: Arc<Shared>,
    go: Option<Sender<()>>,
    first_write: Arc<OnceLock<Instant>>,
    last_write: Arc<OnceLock<Instant>>,
    threads: Threads,
}

impl Generator {
    /// Starts connecting to the daemon from `peering.netns`.
    pub fn start(peering: Peering, routes: Arc<RouteSet>) -> Result<Generator> {
        let shared = Arc::new(Shared::default());
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let first_write = Arc::new(OnceLock::new());
        let last_write = Arc::new(OnceLock::new());
        let stream_slot: Arc<OnceLock<TcpStream>> = Arc::new(OnceLock::new());
        let handle = {
            let shared = shared.clone();
            let first_write = first_write.clone();
            let last_write = last_write.clone();
            let stream_slot = stream_slot.clone();
            std::thread::Builder::new()
                .name("bench-gen".into())
                .spawn(move || {
                    let result = run_generator(
                        &peering,
                        &routes,
                        &shared,
                        go_rx,
                        stop_rx,
                        &first_write,
                        &last_write,
                        &stream_slot,
                    );
                    if let Err(e) = result {
                        shared.fail(e);
                    }
                })?
        };
        Ok(Generator {
            shared,
            go: Some(go_tx),
            first_write,
            last_write,
            threads: Threads {
                stop_keepalive: Some(stop_tx),
                stream: stream_slot,
                handles: vec![handle],
            },
        })
    }

    /// Whether the session is Established (an error if it failed).
    pub fn established(&self) -> Result<bool> {
        self.shared.check()
    }

    /// Starts writing the table.
    pub fn send(&mut self) -> Result<()> {
        self.go
            .take()
            .context("table already sent")?
            .send(())
            .map_err(|_| anyhow!("generator thread ended"))
    }

    /// When the first UPDATE write started.
    pub fn first_write(&self) -> Option<Instant> {
        self.first_write.get().copied()
    }

    /// When the last byte of the table (End-of-RIB) was handed to the kernel.
    pub fn last_write(&self) -> Option<Instant> {
        self.last_write.get().copied()
    }

    /// An error the session met, if any.
    pub fn error(&self) -> Result<()> {
        self.shared.check().map(|_| ())
    }

    /// Closes the session and joins the threads.
    pub fn stop(&mut self) {
        self.threads.stop(&self.shared);
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        self.stop();
    }
}

#[allow(clippy::too_many_arguments)]
fn run_generator(
    peering: &Peering,
    routes: &RouteSet,
    shared: &Arc<Shared>,
    go: Receiver<()>,
    stop: Receiver<()>,
    first_write: &OnceLock<Instant>,
    last_write: &OnceLock<Instant>,
    stream_slot: &OnceLock<TcpStream>,
) -> Result<()> {
    enter_netns(&peering.netns)?;
    let session = establish(peering)?;
    let _ = stream_slot.set(session.stream.try_clone()?);
    let writer = Arc::new(Mutex::new(session.stream.try_clone()?));
    let mut reader = session.stream;
    let reader_shared = shared.clone();
    // Whatever the daemon sends us is read and dropped, so that it never blocks on us.
    std::thread::Builder::new()
        .name("bench-gen-read".into())
        .spawn(move || {
            let mut codec = session.codec;
            let mut pending = session.pending;
            loop {
                match read_message(&mut reader, &mut codec, &mut pending) {
                    Ok(Message::Notification(n)) => {
                        return reader_shared.fail(anyhow!("daemon sent NOTIFICATION {n:?}"));
                    }
                    Ok(_) => {}
                    Err(e) => return reader_shared.fail(e.context("generator session")),
                }
            }
        })?;
    let keepalive_writer = writer.clone();
    let keepalive_shared = shared.clone();
    std::thread::Builder::new()
        .name("bench-gen-ka".into())
        .spawn(move || keepalives(keepalive_writer, stop, keepalive_shared))?;
    shared.established.store(true, Ordering::SeqCst);
    if go.recv().is_ok() {
        let mut w = writer.lock().map_err(|_| anyhow!("writer poisoned"))?;
        let _ = first_write.set(Instant::now());
        // Large writes: the kernel takes as much as the socket buffer holds each time.
        for chunk in routes.wire.chunks(4 << 20) {
            w.write_all(chunk).context("writing UPDATEs")?;
        }
        let _ = last_write.set(Instant::now());
    }
    Ok(())
}

/// What the monitor has seen.
#[derive(Debug, Clone, Copy, Default)]
pub struct MonitorProgress {
    /// Distinct prefixes currently announced to the monitor.
    pub prefixes: usize,
    /// UPDATE messages received.
    pub updates: usize,
    /// When the first UPDATE arrived.
    pub first_update: Option<Instant>,
    /// When the count first reached the expected number.
    pub complete: Option<Instant>,
}

/// The monitoring peer: one eBGP session to the daemon; counts distinct prefixes announced
/// (withdrawals remove them) and notes when the expected count is first reached.
pub struct Monitor {
    shared: Arc<Shared>,
    progress: Arc<Mutex<MonitorProgress>>,
    received: Arc<AtomicUsize>,
    threads: Threads,
}

impl Monitor {
    /// Starts connecting to the daemon from `peering.netns`; `expected` is the number of
    /// distinct prefixes that makes the table complete.
    pub fn start(peering: Peering, expected: usize) -> Result<Monitor> {
        let shared = Arc::new(Shared::default());
        let progress = Arc::new(Mutex::new(MonitorProgress::default()));
        let received = Arc::new(AtomicUsize::new(0));
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let stream_slot: Arc<OnceLock<TcpStream>> = Arc::new(OnceLock::new());
        let handle = {
            let shared = shared.clone();
            let progress = progress.clone();
            let received = received.clone();
            let stream_slot = stream_slot.clone();
            std::thread::Builder::new()
                .name("bench-mon".into())
                .spawn(move || {
                    let result = run_monitor(
                        &peering,
                        expected,
                        &shared,
                        stop_rx,
                        &progress,
                        &received,
                        &stream_slot,
                    );
                    if let Err(e) = result {
                        shared.fail(e);
                    }
                })?
        };
        Ok(Monitor {
            shared,
            progress,
            received,
            threads: Threads {
                stop_keepalive: Some(stop_tx),
                stream: stream_slot,
                handles: vec![handle],
            },
        })
    }

    /// Whether the session is Established (an error if it failed).
    pub fn established(&self) -> Result<bool> {
        self.shared.check()
    }

    /// What has been seen so far (an error if the session failed).
    pub fn progress(&self) -> Result<MonitorProgress> {
        self.shared.check()?;
        self.progress
            .lock()
            .map(|p| *p)
            .map_err(|_| anyhow!("progress poisoned"))
    }

    /// Bytes received so far.
    pub fn bytes_received(&self) -> usize {
        self.received.load(Ordering::Relaxed)
    }

    /// Closes the session and joins the threads.
    pub fn stop(&mut self) {
        self.threads.stop(&self.shared);
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A prefix as one integer: address and length.
fn prefix_key(prefix: &IpNet) -> u64 {
    match prefix {
        IpNet::V4(p) => (u64::from(u32::from(p.addr())) << 8) | u64::from(p.prefix_len()),
        IpNet::V6(p) => {
            // Not expected on this IPv4 session; kept apart from IPv4 keys.
            let bits = u128::from(p.addr());
            (1u64 << 63) ^ (bits as u64) ^ ((bits >> 64) as u64) ^ u64::from(p.prefix_len())
        }
    }
}

fn run_monitor(
    peering: &Peering,
    expected: usize,
    shared: &Arc<Shared>,
    stop: Receiver<()>,
    progress: &Mutex<MonitorProgress>,
    received: &AtomicUsize,
    stream_slot: &OnceLock<TcpStream>,
) -> Result<()> {
    enter_netns(&peering.netns)?;
    let session = establish(peering)?;
    let _ = stream_slot.set(session.stream.try_clone()?);
    let writer = Arc::new(Mutex::new(session.stream.try_clone()?));
    let keepalive_shared = shared.clone();
    std::thread::Builder::new()
        .name("bench-mon-ka".into())
        .spawn(move || keepalives(writer, stop, keepalive_shared))?;
    shared.established.store(true, Ordering::SeqCst);
    let mut stream = session.stream;
    let mut codec = session.codec;
    let mut pending = session.pending;
    let mut prefixes: HashSet<u64> = HashSet::with_capacity(expected);
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let mut updates = 0;
        let mut first = None;
        loop {
            match codec.decode(&mut pending) {
                Ok(Some(Message::Update(update))) => {
                    updates += 1;
                    first.get_or_insert_with(Instant::now);
                    for (_, nlri) in update.withdrawn_routes() {
                        prefixes.remove(&prefix_key(&nlri.prefix));
                    }
                    for (_, nlri) in update.announced() {
                        prefixes.insert(prefix_key(&nlri.prefix));
                    }
                }
                Ok(Some(Message::Notification(n))) => {
                    return Err(anyhow!("daemon sent NOTIFICATION {n:?}"));
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => return Err(anyhow!(e).context("decoding what the daemon sent")),
            }
        }
        if updates > 0 {
            let now = Instant::now();
            let mut p = progress.lock().map_err(|_| anyhow!("progress poisoned"))?;
            p.updates += updates;
            p.prefixes = prefixes.len();
            if p.first_update.is_none() {
                p.first_update = first;
            }
            if p.complete.is_none() && prefixes.len() >= expected {
                p.complete = Some(now);
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(anyhow!("connection closed by the daemon")),
            Ok(n) => {
                received.fetch_add(n, Ordering::Relaxed);
                pending.extend_from_slice(&chunk[..n]);
            }
            Err(e) => return Err(anyhow!(e).context("reading from the daemon")),
        }
    }
}
