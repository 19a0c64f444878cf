//! A minimal HTTP/1.1 server for `GET /metrics`: one request per connection, headers parsed with
//! `httparse`, bounded in size and time, read-only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Metrics;
use crate::io::control::StatusSource;

/// Default listen address: loopback only.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9179";
/// Largest request head accepted.
const MAX_REQUEST: usize = 8 * 1024;
/// Time a client has to send its request or read the response.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the daemon's status before serving the last values.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once.
const MAX_CONNECTIONS: usize = 16;
/// The content type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics endpoint could not be started.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Binding the listen address failed.
    #[error("cannot listen for metrics on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A bound metrics endpoint.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
}

impl MetricsServer {
    /// Binds `addr` (use [`DEFAULT_METRICS_ADDR`] unless configured; port 0 picks a free port).
    pub async fn bind(addr: SocketAddr) -> Result<Self, MetricsError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MetricsError::Bind { addr, source })?;
        Ok(MetricsServer { listener })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` is cancelled. Each scrape first refreshes the gauges from
    /// `source` (bounded by a timeout; on failure the last values are served).
    pub async fn run<S: StatusSource>(
        self,
        metrics: Arc<Metrics>,
        source: Arc<S>,
        shutdown: CancellationToken,
    ) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let tasks = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = self.listener.accept() => a,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                drop(stream);
                continue;
            };
            let metrics = Arc::clone(&metrics);
            let source = Arc::clone(&source);
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::timeout(2 * IO_TIMEOUT + REFRESH_TIMEOUT, serve(stream, &metrics, &*source)) => {}
                }
                drop(permit);
            });
        }
        tasks.close();
        tasks.wait().await;
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics { head_only: bool },
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

/// Reads a request head; `None` when the client went away or timed out.
async fn read_head(stream: &mut TcpStream) -> Option<Route> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(IO_TIMEOUT, stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let path = req.path.unwrap_or("");
                let path = path.split('?').next().unwrap_or("");
                return Some(match (req.method, path) {
                    (Some("GET"), "/metrics") => Route::Metrics { head_only: false },
                    (Some("HEAD"), "/metrics") => Route::Metrics { head_only: true },
                    (Some("GET" | "HEAD"), _) => Route::NotFound,
                    _ => Route::MethodNotAllowed,
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST => continue,
            Ok(httparse::Status::Partial) | Err(_) => return Some(Route::BadRequest),
        }
    }
}

async fn serve<S: StatusSource>(mut stream: TcpStream, metrics: &Metrics, source: &S) {
    let Some(route) = read_head(&mut stream).await else {
        return;
    };
    let (status, content_type, body, head_only) = match route {
        Route::Metrics { head_only } => {
            if let Ok(Err(e)) =
                tokio::time::timeout(REFRESH_TIMEOUT, metrics.refresh_from(source)).await
            {
                tracing::debug!(error = %e, "metrics refresh failed; serving last values");
            }
            ("200 OK", CONTENT_TYPE, metrics.encode(), head_only)
        }
        Route::NotFound => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: metrics are at /metrics\n".to_owned(),
            false,
        ),
        Route::MethodNotAllowed => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET and HEAD are served\n".to_owned(),
            false,
        ),
        Route::BadRequest => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "malformed HTTP request\n".to_owned(),
            false,
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        response.extend_from_slice(body.as_bytes());
    }
    let _ = tokio::time::timeout(IO_TIMEOUT, async {
        stream.write_all(&response).await?;
        stream.shutdown().await
    })
    .await;
}
