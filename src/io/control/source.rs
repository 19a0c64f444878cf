//! What the control sockets ask the daemon: snapshots of its live state, and (admin socket only)
//! actions. The daemon implements these traits over its tasks (request + oneshot reply); tests
//! implement them over fixed snapshots.

use std::future::Future;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::status::{DaemonStatus, FibStatus, PeerStatus, RibSummary, RouteStatus};

/// The daemon could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The part of the daemon that holds the answer is not running or did not reply.
    #[error("{component} is not available: {reason}")]
    Unavailable {
        /// Which part, e.g. `RIB task`.
        component: String,
        /// Why.
        reason: String,
    },
    /// No peer has this protocol name.
    #[error("no peer named {0:?}")]
    NoSuchPeer(String),
    /// The action was refused.
    #[error("refused: {0}")]
    Refused(String),
}

/// Which routes to show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteQuery {
    /// Only this prefix (exact match), or every prefix when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<IpNet>,
    /// Only the longest prefix holding this address (a longest-prefix lookup, as `ip route
    /// get` or `show ip bgp ADDRESS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<std::net::IpAddr>,
    /// Only prefixes inside this one (itself included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<IpNet>,
    /// Only prefixes ordered after this one (paging: the last prefix of the previous page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<IpNet>,
    /// At most this many prefixes, the first in prefix order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

impl RouteQuery {
    /// The routes and differences of `fib` in range (`within`, `after`), at most `limit` of
    /// each, in prefix order.
    pub fn select_fib(&self, mut fib: FibStatus) -> FibStatus {
        let in_range = |p: &IpNet| {
            self.within.is_none_or(|w| w.contains(p)) && self.after.is_none_or(|a| *p > a)
        };
        fib.routes.retain(|r| in_range(&r.prefix));
        fib.differences.retain(|d| in_range(&d.prefix));
        if let Some(limit) = self.limit {
            fib.routes.truncate(limit);
            fib.differences.truncate(limit);
        }
        fib
    }

    /// Whether a route with this prefix is selected (for an address: any prefix holding it;
    /// the source picks the longest).
    pub fn matches(&self, prefix: &IpNet) -> bool {
        self.prefix.is_none_or(|p| p == *prefix)
            && self.address.is_none_or(|a| prefix.contains(&a))
            && self.within.is_none_or(|w| w.contains(prefix))
            && self.after.is_none_or(|a| *prefix > a)
    }
}

/// Read-only snapshots of the daemon's state. Each method answers from live state; a slow part of
/// the daemon must not make the answer hang forever (the servers bound every call with a timeout
/// anyway).
pub trait StatusSource: Send + Sync + 'static {
    /// The daemon as a whole.
    fn daemon(&self) -> impl Future<Output = Result<DaemonStatus, SourceError>> + Send;
    /// Every configured peer, in a stable order (by name).
    fn peers(&self) -> impl Future<Output = Result<Vec<PeerStatus>, SourceError>> + Send;
    /// Loc-RIB routes selected by `query`, ordered by prefix.
    fn routes(
        &self,
        query: RouteQuery,
    ) -> impl Future<Output = Result<Vec<RouteStatus>, SourceError>> + Send;
    /// RIB sizes.
    fn rib(&self) -> impl Future<Output = Result<RibSummary, SourceError>> + Send;
    /// The kernel side, with the desired routes.
    fn fib(&self) -> impl Future<Output = Result<FibStatus, SourceError>> + Send;
    /// The kernel side without routes: the kernel task's counters only, cheap whatever the
    /// table size (metrics scrapes, the BIRD socket's `show protocols`).
    fn fib_summary(&self) -> impl Future<Output = Result<FibStatus, SourceError>> + Send {
        self.fib()
    }
    /// The kernel side with the routes a query selects (`within`, `after`, `limit`; the
    /// prefix and address of a route query are not used). By default all of [`Self::fib`],
    /// filtered here; the daemon's hub passes the query to the kernel task.
    fn fib_in(
        &self,
        query: RouteQuery,
    ) -> impl Future<Output = Result<FibStatus, SourceError>> + Send {
        async move { self.fib().await.map(|fib| query.select_fib(fib)) }
    }
}

/// Mutating actions, served only on the admin socket.
pub trait AdminActions: Send + Sync + 'static {
    /// Resets a peer's session (Cease / Administrative Reset, RFC 4486) and lets it reconnect.
    fn reset_peer(&self, name: &str) -> impl Future<Output = Result<String, SourceError>> + Send;
    /// Enables or disables a peer (disabling sends Cease / Administrative Shutdown).
    fn set_peer_enabled(
        &self,
        name: &str,
        enabled: bool,
    ) -> impl Future<Output = Result<String, SourceError>> + Send;
    /// Re-reads settings and resources; a bad configuration keeps the running one.
    fn reload(&self) -> impl Future<Output = Result<String, SourceError>> + Send;
}

/// The admin actions of a server that has none (the read-only socket).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAdmin;

impl AdminActions for NoAdmin {
    async fn reset_peer(&self, _name: &str) -> Result<String, SourceError> {
        Err(SourceError::Refused(
            "no admin actions on this socket".into(),
        ))
    }
    async fn set_peer_enabled(&self, _name: &str, _enabled: bool) -> Result<String, SourceError> {
        Err(SourceError::Refused(
            "no admin actions on this socket".into(),
        ))
    }
    async fn reload(&self) -> Result<String, SourceError> {
        Err(SourceError::Refused(
            "no admin actions on this socket".into(),
        ))
    }
}
