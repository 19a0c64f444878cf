//! Listening sockets: accept, look the source address up in the live peer table, hand the
//! connection to that peer's task, or close it before reading a byte.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::Instant;
use tracing::{error, warn};

use super::Peers;
use super::peer::PeerCommand;
use super::socket;

/// At most one log line per this interval about connections from unknown addresses.
const UNKNOWN_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// A bound listener.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket::listening_socket(addr, 128)?;
    TcpListener::from_std(std::net::TcpListener::from(socket))
}

/// Accepts connections forever, from when `accepting` turns true (the first peer set is known).
pub(crate) async fn accept_loop(
    listener: Arc<TcpListener>,
    peers: Peers,
    mut accepting: tokio::sync::watch::Receiver<bool>,
) {
    if accepting.wait_for(|on| *on).await.is_err() {
        return;
    }
    let mut last_log: Option<Instant> = None;
    let mut suppressed = 0u64;
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: back off a little instead of spinning.
                error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let address = socket::canonical(from.ip());
        let commands = peers
            .lock()
            .ok()
            .and_then(|table| table.get(&address).map(|p| p.commands.clone()));
        match commands {
            Some(commands) => {
                if commands.try_send(PeerCommand::Inbound(stream)).is_err() {
                    warn!(peer = %address, "peer task busy; dropped its new connection");
                }
            }
            None => {
                // Robustness §3: only configured peers; closed before any byte is read.
                drop(stream);
                suppressed += 1;
                let now = Instant::now();
                if last_log.is_none_or(|t| now - t >= UNKNOWN_LOG_INTERVAL) {
                    warn!(from = %from, connections = suppressed, "closed connection(s) from an address that is not a configured peer");
                    last_log = Some(now);
                    suppressed = 0;
                }
            }
        }
    }
}
