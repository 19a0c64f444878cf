//! Readiness and liveness as pure functions of a status snapshot and the current time.
//!
//! Readiness follows calico-node's BIRD check (`node/pkg/health`): no peers → ready; during a
//! start-up window every peer must be Established and no graceful restart may be in progress;
//! afterwards one Established peer is enough, so that a mesh does not turn not-ready when some
//! nodes go down. calico-node measures the window from the nodename file's modification time;
//! tern measures it from its own start. Administratively disabled peers are not counted (BIRD
//! prints no BGP state for them, so Calico's check skips them too).
//!
//! The datastore comes first: while it has never synced (no plan yet: the Kubernetes API did
//! not answer, or not every watch has listed) the daemon is not ready, and the reason says
//! where the datastore stands. Once it has synced, losing the API does not make the daemon
//! not ready: the last good state keeps running (as BIRD keeps its configuration when confd
//! loses the API, so calico-node's BIRD check stays ready); `tern show status` shows the
//! datastore's state. The start-up window is measured from the first sync (when the sessions
//! start), not from the process start.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{DaemonStatus, PeerStatus, SessionState, Timestamp};

/// The knobs of the health decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthPolicy {
    /// After start, how long every peer must be Established to be ready (calico-node's
    /// `-threshold-time`, whose default is 30 s).
    pub startup_window: Duration,
    /// How old the supervisor's heartbeat may be before the daemon is not live.
    pub heartbeat_timeout: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            startup_window: Duration::from_secs(30),
            heartbeat_timeout: Duration::from_secs(30),
        }
    }
}

/// The readiness decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "readiness", rename_all = "snake_case")]
pub enum Readiness {
    /// Ready.
    Ready,
    /// Not ready, and why.
    NotReady {
        /// Why.
        reason: NotReadyReason,
    },
}

/// Why the daemon is not ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum NotReadyReason {
    /// Peers are not Established (all of them must be during start-up; after it, none is).
    PeersNotEstablished {
        /// The addresses of the peers that are not Established.
        peers: Vec<String>,
        /// Still inside the start-up window.
        during_startup: bool,
    },
    /// This daemon's graceful restart recovery is in progress (start-up window only).
    GracefulRestartInProgress,
    /// The datastore has never synced: there is no plan, so no session runs yet.
    DatastoreNotSynced {
        /// Where the datastore stands (kind, state and since when, retries, last error).
        status: String,
    },
    /// The daemon did not answer the question.
    DaemonUnavailable {
        /// Why.
        message: String,
    },
}

impl fmt::Display for NotReadyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Calico's wording, so existing alerts keep matching.
            NotReadyReason::PeersNotEstablished { peers, .. } => {
                write!(f, "BGP not established with {}", peers.join(","))
            }
            NotReadyReason::GracefulRestartInProgress => {
                f.write_str("graceful restart in progress")
            }
            NotReadyReason::DatastoreNotSynced { status } => {
                write!(f, "datastore never synced: {status}")
            }
            NotReadyReason::DaemonUnavailable { message } => {
                write!(f, "daemon unavailable: {message}")
            }
        }
    }
}

/// Decides readiness like calico-node does.
pub fn readiness(
    daemon: &DaemonStatus,
    peers: &[PeerStatus],
    now: Timestamp,
    policy: &HealthPolicy,
) -> Readiness {
    if let Some(datastore) = &daemon.datastore
        && datastore.first_synced.is_none()
    {
        return Readiness::NotReady {
            reason: NotReadyReason::DatastoreNotSynced {
                status: datastore.summary(now),
            },
        };
    }
    let counted: Vec<&PeerStatus> = peers.iter().filter(|p| p.enabled).collect();
    if counted.is_empty() {
        return Readiness::Ready;
    }
    let not_established: Vec<String> = counted
        .iter()
        .filter(|p| p.state != SessionState::Established)
        .map(|p| p.address.to_string())
        .collect();
    let window_start = daemon
        .datastore
        .as_ref()
        .and_then(|d| d.first_synced)
        .map_or(daemon.started_at, |t| t.max(daemon.started_at));
    let during_startup = now.since(window_start) < policy.startup_window;
    if during_startup {
        if !not_established.is_empty() {
            return Readiness::NotReady {
                reason: NotReadyReason::PeersNotEstablished {
                    peers: not_established,
                    during_startup,
                },
            };
        }
        if daemon.graceful_restart_in_progress() {
            return Readiness::NotReady {
                reason: NotReadyReason::GracefulRestartInProgress,
            };
        }
        return Readiness::Ready;
    }
    if not_established.len() < counted.len() {
        Readiness::Ready
    } else {
        Readiness::NotReady {
            reason: NotReadyReason::PeersNotEstablished {
                peers: not_established,
                during_startup,
            },
        }
    }
}

/// The liveness decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "liveness", rename_all = "snake_case")]
pub enum Liveness {
    /// Live.
    Live,
    /// Not live, and why.
    NotLive {
        /// Why, e.g. `no heartbeat from the supervisor for 45s`.
        reason: String,
    },
}

/// Live while the supervisor's heartbeat is recent. (That the question was answered at all
/// shows the control task is alive; the heartbeat shows the main loop is not wedged.)
pub fn liveness(daemon: &DaemonStatus, now: Timestamp, policy: &HealthPolicy) -> Liveness {
    let age = now.since(daemon.heartbeat);
    if age > policy.heartbeat_timeout {
        Liveness::NotLive {
            reason: format!(
                "no heartbeat from the supervisor for {}s (limit {}s)",
                age.as_secs(),
                policy.heartbeat_timeout.as_secs()
            ),
        }
    } else {
        Liveness::Live
    }
}
