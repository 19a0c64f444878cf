//! The control socket's wire format: one JSON object per line in each direction (newline-delimited
//! JSON). A client sends a [`Request`] line and reads one [`Response`] line; it may send several
//! requests on one connection.

use serde::{Deserialize, Serialize};

use ipnet::IpNet;

use crate::status::{
    DaemonStatus, FibStatus, Liveness, PeerStatus, Readiness, RibSummary, RouteStatus,
};

/// Longest request line accepted, in bytes.
pub const MAX_REQUEST_LINE: usize = 64 * 1024;

/// A request. Requests without fields ignore extra members; the others reject unknown ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Every peer, or the one with this protocol name.
    ShowPeers {
        /// A protocol name (`Mesh_10_0_0_2`) to show only that peer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Loc-RIB routes.
    ShowRoutes {
        /// Only this prefix (exact match), or every prefix when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<IpNet>,
        /// Only prefixes inside this one (itself included).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within: Option<IpNet>,
        /// Only prefixes ordered after this one (the last of the previous page).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<IpNet>,
        /// At most this many prefixes, the first in prefix order.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// The Loc-RIB route a destination address uses: the longest prefix holding it.
    LookupRoute {
        /// The destination.
        address: std::net::IpAddr,
    },
    /// RIB sizes.
    ShowRib,
    /// Kernel routes and errors.
    ShowFib {
        /// Only routes of prefixes inside this one (itself included).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within: Option<IpNet>,
        /// Only routes of prefixes ordered after this one (the last of the previous page).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<IpNet>,
        /// At most this many routes (and as many differences), the first in prefix order.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// The daemon.
    ShowStatus,
    /// The readiness decision.
    HealthReady,
    /// The liveness decision.
    HealthLive,
    /// Reset a peer (admin socket only).
    ResetPeer {
        /// Protocol name.
        name: String,
    },
    /// Disable a peer (admin socket only).
    DisablePeer {
        /// Protocol name.
        name: String,
    },
    /// Enable a peer (admin socket only).
    EnablePeer {
        /// Protocol name.
        name: String,
    },
    /// Re-read configuration (admin socket only).
    Reload,
}

impl Request {
    /// `ShowFib` of every route.
    pub fn show_fib() -> Request {
        Request::ShowFib {
            within: None,
            after: None,
            limit: None,
        }
    }

    /// `ShowRoutes` of one prefix (exact match), or of every prefix when `None`.
    pub fn show_routes(prefix: Option<IpNet>) -> Request {
        Request::ShowRoutes {
            prefix,
            within: None,
            after: None,
            limit: None,
        }
    }

    /// Whether the request changes the daemon's state (accepted on the admin socket only).
    pub fn is_mutating(&self) -> bool {
        matches!(
            self,
            Request::ResetPeer { .. }
                | Request::DisablePeer { .. }
                | Request::EnablePeer { .. }
                | Request::Reload
        )
    }
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "response", content = "body", rename_all = "snake_case")]
pub enum Response {
    /// Peers.
    Peers(Vec<PeerStatus>),
    /// Routes.
    Routes(Vec<RouteStatus>),
    /// RIB sizes.
    Rib(RibSummary),
    /// Kernel side.
    Fib(FibStatus),
    /// The daemon.
    Status(DaemonStatus),
    /// Readiness.
    Ready(Readiness),
    /// Liveness.
    Live(Liveness),
    /// A mutating request was carried out.
    Done {
        /// What was done.
        message: String,
    },
    /// The request failed.
    Error(ErrorResponse),
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The class of error.
    pub kind: ErrorKind,
    /// What is wrong.
    pub message: String,
}

/// Classes of request errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The line was not a valid request.
    BadRequest,
    /// A mutating request on the read-only socket.
    Forbidden,
    /// The named peer does not exist.
    NotFound,
    /// The daemon could not answer (in time).
    Unavailable,
    /// Too many connections.
    Busy,
}

impl Response {
    /// An error response.
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Self {
        Response::Error(ErrorResponse {
            kind,
            message: message.into(),
        })
    }
}
