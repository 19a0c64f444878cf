//! The BIRD-compatible socket server: greeting, one command per line, BIRD-framed replies.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::Semaphore;
use tokio_util::codec::{AnyDelimiterCodec, AnyDelimiterCodecError, FramedRead};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::command::{AdminAction, Command, ProtocolSelection, RouteOptions, parse};
use super::render::{self, Reply, SocketFamily};
use crate::io::control::{
    AdminActions, BoundSocket, Caller, NoAdmin, RouteQuery, SocketError, SourceError, StatusSource,
    bind_unix_socket, caller_text,
};
use crate::status::{FibStatus, HealthPolicy, Liveness, Timestamp, liveness};

/// Default path of the IPv4 socket (Calico's `bird.ctl`).
pub const DEFAULT_V4_SOCKET_PATH: &str = "/var/run/calico/bird.ctl";
/// Default path of the IPv6 socket (Calico's `bird6.ctl`).
pub const DEFAULT_V6_SOCKET_PATH: &str = "/var/run/calico/bird6.ctl";
/// The BIRD version tern announces: the release whose output it reproduces, marked as tern's.
/// It starts with `v` as calico-bird's do (`BIRD v0.3.3+birdv1.6.8`): calico-node's status
/// populator takes a version only from a line starting `BIRD v`.
pub const BIRD_COMPAT_VERSION: &str = concat!("v2.0.12+tern-", env!("CARGO_PKG_VERSION"));
/// Longest command line, as BIRD's CLI buffer.
const MAX_COMMAND: usize = 4096;

/// Settings of a BIRD-compatible socket.
#[derive(Debug, Clone)]
pub struct BirdCtlOptions {
    /// Which peers and routes this socket shows.
    pub family: SocketFamily,
    /// The version in the greeting and `show status` (`BIRD <version>`).
    pub version: String,
    /// Socket mode (default 0660).
    pub mode: u32,
    /// Socket group, when set.
    pub gid: Option<u32>,
    /// A connection with no command for this long is closed.
    pub idle_timeout: Duration,
    /// A reply the client does not read within this long closes the connection.
    pub write_timeout: Duration,
    /// Longest wait for the daemon to answer.
    pub source_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Liveness policy: when the daemon is not live (stale supervisor heartbeat, or no answer),
    /// a connection is closed before the greeting, as a wedged BIRD would not answer either. So
    /// calico-node's unchanged liveness probe (`birdcl ... show status`) fails when tern is
    /// wedged, instead of passing on the greeting alone.
    pub health: Option<HealthPolicy>,
}

impl BirdCtlOptions {
    /// Defaults for a family.
    pub fn new(family: SocketFamily) -> Self {
        BirdCtlOptions {
            family,
            version: BIRD_COMPAT_VERSION.to_owned(),
            mode: 0o660,
            gid: None,
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            source_timeout: Duration::from_secs(5),
            max_connections: 32,
            health: Some(HealthPolicy::default()),
        }
    }
}

/// A bound BIRD-compatible socket, ready to [`run`](BirdCtlServer::run).
pub struct BirdCtlServer<S, A = NoAdmin> {
    socket: BoundSocket,
    source: Arc<S>,
    admin: Option<Arc<A>>,
    options: Arc<BirdCtlOptions>,
}

impl<S: StatusSource> BirdCtlServer<S, NoAdmin> {
    /// Binds the socket at `path` (read-only until [`BirdCtlServer::with_admin`]).
    pub fn bind(path: &Path, source: Arc<S>, options: BirdCtlOptions) -> Result<Self, SocketError> {
        Ok(BirdCtlServer {
            socket: bind_unix_socket(path, options.mode, options.gid)?,
            source,
            admin: None,
            options: Arc::new(options),
        })
    }

    /// Serves BIRD's `disable`, `enable` and `restart` with `admin`, to callers running as
    /// root or as the daemon's own user (`SO_PEERCRED`; the socket's group may read only), on
    /// connections that did not send `restrict`. Each is logged with the caller.
    pub fn with_admin<A: AdminActions>(self, admin: Arc<A>) -> BirdCtlServer<S, A> {
        BirdCtlServer {
            socket: self.socket,
            source: self.source,
            admin: Some(admin),
            options: self.options,
        }
    }
}

impl<S: StatusSource, A: AdminActions> BirdCtlServer<S, A> {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        self.socket.path()
    }

    /// Serves until `shutdown` is cancelled, then closes every connection and removes the socket.
    pub async fn run(self, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.options.max_connections));
        let tasks = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = self.socket.listener.accept() => a,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(path = %self.socket.path().display(), error = %e, "BIRD socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                // BIRD has no "busy" reply; closing is what a client sees from an overloaded BIRD.
                drop(stream);
                continue;
            };
            let source = Arc::clone(&self.source);
            let admin = self.admin.clone();
            let options = Arc::clone(&self.options);
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                serve_connection(stream, &*source, admin.as_deref(), &options, &shutdown).await;
                drop(permit);
            });
        }
        tasks.close();
        tasks.wait().await;
    }
}

async fn send(w: &mut OwnedWriteHalf, text: &str, limit: Duration) -> bool {
    matches!(
        tokio::time::timeout(limit, w.write_all(text.as_bytes())).await,
        Ok(Ok(()))
    )
}

/// What one connection may do.
struct Session<'a, A> {
    admin: Option<&'a A>,
    caller: Option<Caller>,
    /// `restrict` was sent: no state changes on this connection.
    restricted: bool,
}

async fn serve_connection<S: StatusSource, A: AdminActions>(
    stream: UnixStream,
    source: &S,
    admin: Option<&A>,
    options: &BirdCtlOptions,
    shutdown: &CancellationToken,
) {
    let mut session = Session {
        admin,
        caller: Caller::of(&stream),
        restricted: false,
    };
    if let Some(policy) = &options.health {
        let now = Timestamp::from_system_time(SystemTime::now());
        let verdict = match ask(options.source_timeout, source.daemon()).await {
            Ok(daemon) => liveness(&daemon, now, policy),
            Err(e) => Liveness::NotLive {
                reason: e.to_string(),
            },
        };
        if let Liveness::NotLive { reason } = verdict {
            tracing::warn!(%reason, "BIRD-compatible socket: not live, closing the connection before the greeting");
            return;
        }
    }
    let (reader, mut writer) = stream.into_split();
    if !send(
        &mut writer,
        &render::hello(&options.version),
        options.write_timeout,
    )
    .await
    {
        return;
    }
    let codec = AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), b"\n".to_vec(), MAX_COMMAND);
    let mut lines = FramedRead::new(reader, codec);
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return,
            n = tokio::time::timeout(options.idle_timeout, lines.next()) => n,
        };
        let line = match next {
            Err(_) | Ok(None) | Ok(Some(Err(AnyDelimiterCodecError::Io(_)))) => return,
            Ok(Some(Err(AnyDelimiterCodecError::MaxChunkLengthExceeded))) => {
                let mut r = Reply::new();
                r.last(9000, "Command too long");
                let _ = send(&mut writer, &r.finish(), options.write_timeout).await;
                return;
            }
            Ok(Some(Ok(line))) => line,
        };
        let text = String::from_utf8_lossy(&line);
        let reply = match parse(text.trim_end_matches('\r')) {
            Ok(Command::Empty) => continue,
            Ok(Command::Quit) => return,
            Ok(Command::Restrict) => {
                session.restricted = true;
                let mut r = Reply::new();
                r.last(16, "Access restricted");
                r.finish()
            }
            Ok(Command::Admin { action, which }) => {
                admin_command(action, &which, source, &session, options).await
            }
            Ok(command) => answer(command, source, options).await,
            Err(e) => {
                let mut r = Reply::new();
                r.last(9001, &e.0);
                r.finish()
            }
        };
        if !send(&mut writer, &reply, options.write_timeout).await {
            return;
        }
    }
}

async fn ask<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, SourceError>>,
) -> Result<T, SourceError> {
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        Err(SourceError::Unavailable {
            component: "daemon".into(),
            reason: format!("no answer within {}s", limit.as_secs_f32()),
        })
    })
}

async fn answer<S: StatusSource>(command: Command, source: &S, options: &BirdCtlOptions) -> String {
    let now = Timestamp::from_system_time(SystemTime::now());
    let limit = options.source_timeout;
    let result = match command {
        Command::ShowStatus => ask(limit, source.daemon())
            .await
            .map(|d| render::show_status(&d, &options.version, now)),
        Command::ShowProtocols { all, which } => {
            show_protocols(source, options, all, &which, now).await
        }
        Command::ShowRoute(opts) => show_route(source, options, &opts, now).await,
        Command::Restrict => {
            let mut r = Reply::new();
            r.last(16, "Access restricted");
            Ok(r.finish())
        }
        // Admin commands are served by `admin_command`, with the connection's rights.
        Command::Denied | Command::Admin { .. } => Ok(denied()),
        Command::Empty | Command::Quit => Ok(String::new()),
    };
    result.unwrap_or_else(|e| {
        // A run-time error in BIRD's reply codes; the text names what did not answer.
        let mut r = Reply::new();
        r.last(8000, &format!("tern: {e}"));
        r.finish()
    })
}

/// Whether `caller` may change state through the BIRD socket: root, or the daemon's own user.
fn may_change_state(caller: Option<Caller>) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let own = unsafe { libc::geteuid() };
    caller.is_some_and(|c| c.uid == 0 || c.uid == own)
}

fn denied() -> String {
    let mut r = Reply::new();
    r.last(8007, "Access denied");
    r.finish()
}

/// `disable`, `enable`, `restart` of the selected BGP protocols of this socket's family, with
/// BIRD's reply codes (8/9 already disabled/disabled, 10/11 already enabled/enabled, 12
/// restarted), then `0000`.
async fn admin_command<S: StatusSource, A: AdminActions>(
    action: AdminAction,
    which: &ProtocolSelection,
    source: &S,
    session: &Session<'_, A>,
    options: &BirdCtlOptions,
) -> String {
    let who = caller_text(session.caller);
    let Some(admin) = session.admin else {
        return denied();
    };
    if session.restricted || !may_change_state(session.caller) {
        tracing::warn!(caller = %who, ?action, ?which, "BIRD-compatible socket: state change refused");
        return denied();
    }
    tracing::info!(caller = %who, ?action, ?which, "BIRD-compatible socket: admin request");
    let peers = match ask(options.source_timeout, source.peers()).await {
        Ok(peers) => peers,
        Err(e) => {
            let mut r = Reply::new();
            r.last(8000, &format!("tern: {e}"));
            return r.finish();
        }
    };
    let selected: Vec<_> = peers
        .iter()
        .filter(|p| options.family.contains(p.address))
        .filter(|p| match which {
            ProtocolSelection::All => true,
            ProtocolSelection::Name(n) => &p.name == n,
            ProtocolSelection::Pattern(pattern) => {
                super::command::pattern_matches(pattern, &p.name)
            }
        })
        .collect();
    let mut r = Reply::new();
    if selected.is_empty() && matches!(which, ProtocolSelection::Name(_)) {
        // As BIRD for a name that is not a protocol.
        r.last(
            9001,
            "syntax error, unexpected CF_SYM_UNDEFINED, expecting CF_SYM_KNOWN or TEXT or ALL",
        );
        return r.finish();
    }
    for peer in selected {
        let name = peer.name.as_str();
        let (code, result) = match action {
            AdminAction::Disable if !peer.enabled => (8, Ok(format!("{name}: already disabled"))),
            AdminAction::Enable if peer.enabled => (10, Ok(format!("{name}: already enabled"))),
            AdminAction::Restart if !peer.enabled => (8, Ok(format!("{name}: already disabled"))),
            AdminAction::Disable => (
                9,
                ask(options.source_timeout, admin.set_peer_enabled(name, false)).await,
            ),
            AdminAction::Enable => (
                11,
                ask(options.source_timeout, admin.set_peer_enabled(name, true)).await,
            ),
            AdminAction::Restart => (
                12,
                ask(options.source_timeout, admin.reset_peer(name)).await,
            ),
        };
        match result {
            Ok(message) => {
                tracing::info!(caller = %who, outcome = %message, "BIRD-compatible socket: admin request done");
                r.more(code, &message);
            }
            Err(e) => {
                tracing::warn!(caller = %who, peer = %name, error = %e, "BIRD-compatible socket: admin request failed");
                r.last(8000, &format!("tern: {name}: {e}"));
                return r.finish();
            }
        }
    }
    r.last(0, "");
    r.finish()
}

async fn show_protocols<S: StatusSource>(
    source: &S,
    options: &BirdCtlOptions,
    all: bool,
    which: &ProtocolSelection,
    now: Timestamp,
) -> Result<String, SourceError> {
    let limit = options.source_timeout;
    let daemon = ask(limit, source.daemon()).await?;
    let peers = ask(limit, source.peers()).await?;
    // The kernel row only needs the last sync time; a kernel task that does not answer must not
    // hide the peers Calico's probes look for.
    let fib = ask(limit, source.fib_summary())
        .await
        .unwrap_or_else(|_| FibStatus::default());
    Ok(render::show_protocols(
        &daemon,
        &peers,
        &fib,
        options.family,
        all,
        which,
        now,
    ))
}

async fn show_route<S: StatusSource>(
    source: &S,
    options: &BirdCtlOptions,
    opts: &RouteOptions,
    now: Timestamp,
) -> Result<String, SourceError> {
    let query = RouteQuery {
        prefix: opts.prefix,
        ..RouteQuery::default()
    };
    let routes = ask(options.source_timeout, source.routes(query)).await?;
    Ok(render::show_route(&routes, options.family, opts, now))
}
