//! The control socket server: answers [`Request`]s from a [`StatusSource`] (and, on the admin
//! socket, [`AdminActions`]).
//!
//! Each connection is its own task, so a slow or hung client delays nobody else; an idle
//! connection is closed after a timeout; a request line that is not a valid request gets an error
//! response and the connection stays usable; every call into the daemon is bounded by a timeout.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::Semaphore;
use tokio_util::codec::{AnyDelimiterCodec, AnyDelimiterCodecError, FramedRead};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::protocol::{ErrorKind, MAX_REQUEST_LINE, Request, Response};
use super::socket::{BoundSocket, SocketError, bind_unix_socket};
use super::source::{AdminActions, NoAdmin, RouteQuery, SourceError, StatusSource};
use crate::status::health::NotReadyReason;
use crate::status::{HealthPolicy, Liveness, Readiness, Timestamp, liveness, readiness};

/// Default path of the read-only control socket.
pub const DEFAULT_SOCKET_PATH: &str = "/var/run/tern/tern.ctl";
/// Default path of the admin (mutating) control socket.
pub const DEFAULT_ADMIN_SOCKET_PATH: &str = "/var/run/tern/tern-admin.ctl";
/// Mode of the read-only socket: owner and group may connect.
pub const READ_ONLY_MODE: u32 = 0o660;
/// Mode of the admin socket: the owner only.
pub const ADMIN_MODE: u32 = 0o600;

/// Limits and policies of a control server.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// A connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// A response the client does not read within this long closes the connection.
    pub write_timeout: Duration,
    /// Longest wait for the daemon to answer one question.
    pub source_timeout: Duration,
    /// Connections served at once; more are told `busy` and closed.
    pub max_connections: usize,
    /// Readiness/liveness policy.
    pub health: HealthPolicy,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            source_timeout: Duration::from_secs(5),
            max_connections: 64,
            health: HealthPolicy::default(),
        }
    }
}

/// Whether a socket accepts mutating requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketRole {
    /// Read-only requests only (mode 0660).
    ReadOnly,
    /// Every request (mode 0600).
    Admin,
}

/// A bound control socket, ready to [`run`](ControlServer::run).
pub struct ControlServer<S, A = NoAdmin> {
    socket: BoundSocket,
    ctx: Arc<Ctx<S, A>>,
}

struct Ctx<S, A> {
    role: SocketRole,
    source: Arc<S>,
    admin: Option<Arc<A>>,
    options: ServeOptions,
}

impl<S: StatusSource> ControlServer<S, NoAdmin> {
    /// Binds the read-only socket at `path` (mode 0660, group `gid` when given).
    pub fn read_only(
        path: &Path,
        gid: Option<u32>,
        source: Arc<S>,
        options: ServeOptions,
    ) -> Result<Self, SocketError> {
        Ok(ControlServer {
            socket: bind_unix_socket(path, READ_ONLY_MODE, gid)?,
            ctx: Arc::new(Ctx {
                role: SocketRole::ReadOnly,
                source,
                admin: None,
                options,
            }),
        })
    }
}

impl<S: StatusSource, A: AdminActions> ControlServer<S, A> {
    /// Binds the admin socket at `path` (mode 0600): read-only requests and actions.
    pub fn admin(
        path: &Path,
        source: Arc<S>,
        admin: Arc<A>,
        options: ServeOptions,
    ) -> Result<Self, SocketError> {
        Ok(ControlServer {
            socket: bind_unix_socket(path, ADMIN_MODE, None)?,
            ctx: Arc::new(Ctx {
                role: SocketRole::Admin,
                source,
                admin: Some(admin),
                options,
            }),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        self.socket.path()
    }

    /// Serves until `shutdown` is cancelled, then closes every connection and removes the socket.
    pub async fn run(self, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.ctx.options.max_connections));
        let tasks = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = self.socket.listener.accept() => a,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(path = %self.socket.path().display(), error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let ctx = Arc::clone(&self.ctx);
            let shutdown = shutdown.clone();
            match Arc::clone(&slots).try_acquire_owned() {
                Ok(permit) => {
                    tasks.spawn(async move {
                        serve_connection(stream, &ctx, &shutdown).await;
                        drop(permit);
                    });
                }
                Err(_) => {
                    tasks.spawn(async move {
                        let busy = Response::error(ErrorKind::Busy, "too many control connections");
                        let _ = write_response(stream, &busy, ctx.options.write_timeout).await;
                    });
                }
            }
        }
        tasks.close();
        tasks.wait().await;
    }
}

async fn write_response(
    mut stream: UnixStream,
    response: &Response,
    limit: Duration,
) -> std::io::Result<()> {
    let line = encode(response);
    tokio::time::timeout(limit, stream.write_all(&line))
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)?
}

fn encode(response: &Response) -> Vec<u8> {
    // These plain types always serialise; the fallback keeps the one-line-per-response contract.
    let mut line = serde_json::to_vec(response).unwrap_or_else(|_| {
        br#"{"response":"error","body":{"kind":"unavailable","message":"cannot encode response"}}"#
            .to_vec()
    });
    line.push(b'\n');
    line
}

/// Who is on the other end of a Unix socket connection (`SO_PEERCRED`), for the log of
/// mutating requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Process id, when the kernel gives it.
    pub pid: Option<i32>,
}

impl Caller {
    /// The credentials of the process connected on `stream`.
    pub fn of(stream: &UnixStream) -> Option<Caller> {
        stream.peer_cred().ok().map(|c| Caller {
            uid: c.uid(),
            gid: c.gid(),
            pid: c.pid(),
        })
    }
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "uid={} gid={}", self.uid, self.gid)?;
        if let Some(pid) = self.pid {
            write!(f, " pid={pid}")?;
        }
        Ok(())
    }
}

/// `Caller` for a log line: the credentials, or `unknown`.
pub fn caller_text(caller: Option<Caller>) -> String {
    caller.map_or_else(|| "unknown".to_owned(), |c| c.to_string())
}

async fn serve_connection<S: StatusSource, A: AdminActions>(
    stream: UnixStream,
    ctx: &Ctx<S, A>,
    shutdown: &CancellationToken,
) {
    let caller = Caller::of(&stream);
    let (reader, mut writer) = stream.into_split();
    let codec =
        AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), b"\n".to_vec(), MAX_REQUEST_LINE);
    let mut lines = FramedRead::new(reader, codec);
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return,
            n = tokio::time::timeout(ctx.options.idle_timeout, lines.next()) => n,
        };
        let (response, keep_open) = match next {
            Err(_) | Ok(None) | Ok(Some(Err(AnyDelimiterCodecError::Io(_)))) => return,
            Ok(Some(Err(AnyDelimiterCodecError::MaxChunkLengthExceeded))) => (
                Response::error(
                    ErrorKind::BadRequest,
                    format!("request line longer than {MAX_REQUEST_LINE} bytes"),
                ),
                false,
            ),
            Ok(Some(Ok(line))) if line.trim_ascii().is_empty() => continue,
            Ok(Some(Ok(line))) => match serde_json::from_slice::<Request>(&line) {
                Ok(request) => {
                    // A client that hangs up while its answer is built gets none: dropping the
                    // answer drops the request at its source (a `show routes` of a large table
                    // stops being built).
                    tokio::select! {
                        response = ctx.answer(request, caller) => (response, true),
                        () = hung_up(lines.get_ref()) => return,
                    }
                }
                Err(e) => (
                    Response::error(ErrorKind::BadRequest, format!("malformed request: {e}")),
                    true,
                ),
            },
        };
        let line = encode(&response);
        match tokio::time::timeout(ctx.options.write_timeout, writer.write_all(&line)).await {
            Ok(Ok(())) if keep_open => {}
            _ => return,
        }
    }
}

/// Returns once the client has closed its end entirely (not when it only shut down its
/// writing half after the request, as `nc -N` does); never, while it may still read. Looked at
/// every 100 ms while an answer is pending (one `poll` call, nothing read: a pipelined request
/// stays in the socket). tokio's read readiness cannot tell a half-close from a full one, and
/// may be stale from the read of the request itself.
async fn hung_up(reader: &tokio::net::unix::OwnedReadHalf) {
    let mut every = tokio::time::interval(Duration::from_millis(100));
    loop {
        every.tick().await;
        if closed_both_ways(reader) {
            return;
        }
    }
}

/// Whether the socket reports POLLHUP: the client closed both directions (tokio's readiness
/// for reading does not tell a half-close from a full one).
fn closed_both_ways(reader: &tokio::net::unix::OwnedReadHalf) -> bool {
    use std::os::fd::AsRawFd;
    let stream: &UnixStream = reader.as_ref();
    let mut poll = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd for an open descriptor, timeout 0 (never blocks).
    let n = unsafe { libc::poll(&mut poll, 1, 0) };
    n == 1 && poll.revents & libc::POLLHUP != 0
}

fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

impl<S: StatusSource, A: AdminActions> Ctx<S, A> {
    async fn ask<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, SourceError>>,
    ) -> Result<T, SourceError> {
        match tokio::time::timeout(self.options.source_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(SourceError::Unavailable {
                component: what.to_owned(),
                reason: format!(
                    "no answer within {}s",
                    self.options.source_timeout.as_secs_f32()
                ),
            }),
        }
    }

    async fn answer(&self, request: Request, caller: Option<Caller>) -> Response {
        let mutating = request.is_mutating();
        if mutating && self.role == SocketRole::ReadOnly {
            tracing::warn!(caller = %caller_text(caller), ?request, "control: mutating request refused on the read-only socket");
            return Response::error(
                ErrorKind::Forbidden,
                "this is the read-only control socket; send mutating requests to the admin socket",
            );
        }
        if mutating {
            tracing::info!(caller = %caller_text(caller), ?request, "control: admin request");
        }
        let response = self.answer_allowed(request).await;
        if mutating {
            match &response {
                Response::Done { message } => {
                    tracing::info!(caller = %caller_text(caller), outcome = %message, "control: admin request done")
                }
                Response::Error(e) => {
                    tracing::warn!(caller = %caller_text(caller), error = %e.message, "control: admin request failed")
                }
                _ => {}
            }
        }
        response
    }

    async fn answer_allowed(&self, request: Request) -> Response {
        let source = &*self.source;
        let result = match request {
            Request::ShowPeers { name } => {
                self.ask("peer status", source.peers())
                    .await
                    .and_then(|peers| match name {
                        None => Ok(Response::Peers(peers)),
                        Some(name) => {
                            let one: Vec<_> =
                                peers.into_iter().filter(|p| p.name == name).collect();
                            if one.is_empty() {
                                Err(SourceError::NoSuchPeer(name))
                            } else {
                                Ok(Response::Peers(one))
                            }
                        }
                    })
            }
            Request::ShowRoutes {
                prefix,
                within,
                after,
                limit,
            } => {
                let query = RouteQuery {
                    prefix,
                    within,
                    after,
                    limit,
                    ..RouteQuery::default()
                };
                self.ask("RIB", source.routes(query))
                    .await
                    .map(|routes| Response::Routes(filter_routes(routes, query)))
            }
            Request::LookupRoute { address } => {
                let query = RouteQuery {
                    address: Some(address),
                    ..RouteQuery::default()
                };
                self.ask("RIB", source.routes(query)).await.map(|routes| {
                    // The longest match only, whatever the source returned.
                    let longest = filter_routes(routes, query)
                        .into_iter()
                        .max_by_key(|r| r.prefix.prefix_len());
                    Response::Routes(longest.into_iter().collect())
                })
            }
            Request::ShowRib => self.ask("RIB", source.rib()).await.map(Response::Rib),
            Request::ShowFib {
                within,
                after,
                limit,
            } => {
                let query = RouteQuery {
                    within,
                    after,
                    limit,
                    ..RouteQuery::default()
                };
                self.ask("kernel status", source.fib_in(query))
                    .await
                    .map(|fib| Response::Fib(query.select_fib(fib)))
            }
            Request::ShowStatus => self
                .ask("daemon status", source.daemon())
                .await
                .map(Response::Status),
            Request::HealthReady => Ok(Response::Ready(self.readiness().await)),
            Request::HealthLive => Ok(Response::Live(
                match self.ask("daemon status", source.daemon()).await {
                    Ok(daemon) => liveness(&daemon, now(), &self.options.health),
                    Err(e) => Liveness::NotLive {
                        reason: e.to_string(),
                    },
                },
            )),
            Request::ResetPeer { name } => {
                self.act(|a| async move { a.reset_peer(&name).await }).await
            }
            Request::DisablePeer { name } => {
                self.act(|a| async move { a.set_peer_enabled(&name, false).await })
                    .await
            }
            Request::EnablePeer { name } => {
                self.act(|a| async move { a.set_peer_enabled(&name, true).await })
                    .await
            }
            Request::Reload => self.act(|a| async move { a.reload().await }).await,
        };
        result.unwrap_or_else(|e| {
            let kind = match e {
                SourceError::Unavailable { .. } => ErrorKind::Unavailable,
                SourceError::NoSuchPeer(_) => ErrorKind::NotFound,
                SourceError::Refused(_) => ErrorKind::Forbidden,
            };
            Response::error(kind, e.to_string())
        })
    }

    async fn act<F, Fut>(&self, f: F) -> Result<Response, SourceError>
    where
        F: FnOnce(Arc<A>) -> Fut,
        Fut: Future<Output = Result<String, SourceError>>,
    {
        let Some(admin) = self.admin.clone() else {
            return Err(SourceError::Refused(
                "no admin actions on this socket".into(),
            ));
        };
        self.ask("daemon", f(admin))
            .await
            .map(|message| Response::Done { message })
    }

    async fn readiness(&self) -> Readiness {
        let daemon = self.ask("daemon status", self.source.daemon()).await;
        let peers = self.ask("peer status", self.source.peers()).await;
        match (daemon, peers) {
            (Ok(daemon), Ok(peers)) => readiness(&daemon, &peers, now(), &self.options.health),
            (Err(e), _) | (_, Err(e)) => Readiness::NotReady {
                reason: NotReadyReason::DaemonUnavailable {
                    message: e.to_string(),
                },
            },
        }
    }
}

/// Applies a route query to routes a source returned (sources may return more than asked).
fn filter_routes(
    mut routes: Vec<crate::status::RouteStatus>,
    query: RouteQuery,
) -> Vec<crate::status::RouteStatus> {
    routes.retain(|r| query.matches(&r.prefix));
    if let Some(limit) = query.limit {
        routes.truncate(limit);
    }
    routes
}
