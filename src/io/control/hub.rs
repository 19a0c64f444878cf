//! [`StatusHub`]: a ready-made [`StatusSource`] the daemon's tasks publish into.
//!
//! The supervisor, peer tasks and kernel task push their small, often-read state here (a short
//! lock, no awaiting); routes, which are large, are asked of the RIB task on demand over a
//! channel with a oneshot reply, so nothing copies the RIB unless someone runs `show routes`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::{mpsc, oneshot};

use super::source::{RouteQuery, SourceError, StatusSource};
use crate::status::{
    DaemonStatus, DatastoreStatus, FibStatus, PeerStatus, RibSummary, RouteStatus, Timestamp,
};

/// Where the datastore's status is read, at the time a client asks (see
/// [`StatusHub::datastore_from`]).
pub type DatastoreStatusFn = Box<dyn Fn() -> DatastoreStatus + Send + Sync>;

/// A request for routes, answered by the RIB task.
#[derive(Debug)]
pub struct RouteRequest {
    /// Which routes.
    pub query: RouteQuery,
    /// Where to send them (ordered by prefix).
    pub reply: oneshot::Sender<Vec<RouteStatus>>,
}

/// A request for the kernel status with every route, answered by the task that owns the
/// desired set (so a table of a million routes is copied only when someone asks).
#[derive(Debug)]
pub struct FibRequest {
    /// Which routes (`within`, `after`, `limit`).
    pub query: RouteQuery,
    /// Where to send the status.
    pub reply: oneshot::Sender<FibStatus>,
}

/// Live status published by the daemon; serves the control and BIRD sockets and metrics.
pub struct StatusHub {
    daemon: Mutex<DaemonStatus>,
    peers: Mutex<BTreeMap<String, PeerStatus>>,
    rib: Mutex<RibSummary>,
    fib: Mutex<FibStatus>,
    fib_requests: Mutex<Option<mpsc::Sender<FibRequest>>>,
    routes: mpsc::Sender<RouteRequest>,
    datastore: Mutex<Option<DatastoreStatusFn>>,
}

impl std::fmt::Debug for DatastoreStatusFnDebug<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}

struct DatastoreStatusFnDebug<'a>(&'a Option<DatastoreStatusFn>);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StatusHub {
    /// A hub for a daemon; route questions go to `routes` (the RIB task's receiver).
    pub fn new(daemon: DaemonStatus, routes: mpsc::Sender<RouteRequest>) -> Self {
        StatusHub {
            daemon: Mutex::new(daemon),
            peers: Mutex::new(BTreeMap::new()),
            rib: Mutex::new(RibSummary::default()),
            fib: Mutex::new(FibStatus::default()),
            fib_requests: Mutex::new(None),
            routes,
            datastore: Mutex::new(None),
        }
    }

    /// From now on the daemon status carries the datastore's status, read from `status` each
    /// time a client asks (so it is as fresh as the datastore's own view).
    pub fn datastore_from(&self, status: DatastoreStatusFn) {
        *lock(&self.datastore) = Some(status);
    }

    /// Changes the daemon status in place (router id, reconfiguration time, graceful restart).
    pub fn update_daemon(&self, f: impl FnOnce(&mut DaemonStatus)) {
        f(&mut lock(&self.daemon));
    }

    /// Records that the supervisor loop made progress (liveness).
    pub fn heartbeat(&self, now: Timestamp) {
        lock(&self.daemon).heartbeat = now;
    }

    /// Adds or replaces a peer.
    pub fn upsert_peer(&self, peer: PeerStatus) {
        lock(&self.peers).insert(peer.name.clone(), peer);
    }

    /// Changes a peer in place; returns `false` when there is no such peer.
    pub fn update_peer(&self, name: &str, f: impl FnOnce(&mut PeerStatus)) -> bool {
        match lock(&self.peers).get_mut(name) {
            Some(p) => {
                f(p);
                true
            }
            None => false,
        }
    }

    /// Removes a peer (it was de-configured).
    pub fn remove_peer(&self, name: &str) {
        lock(&self.peers).remove(name);
    }

    /// Sets the RIB sizes.
    pub fn set_rib(&self, rib: RibSummary) {
        *lock(&self.rib) = rib;
    }

    /// From now on the kernel status is asked of `requests`' receiver (with its routes); the
    /// status set with [`StatusHub::set_fib`] is the answer when that task does not reply.
    pub fn answer_fib_from(&self, requests: mpsc::Sender<FibRequest>) {
        *lock(&self.fib_requests) = Some(requests);
    }

    /// Sets the kernel status.
    pub fn set_fib(&self, fib: FibStatus) {
        *lock(&self.fib) = fib;
    }
}

impl std::fmt::Debug for StatusHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusHub")
            .field("daemon", &self.daemon)
            .field("peers", &self.peers)
            .field("datastore", &DatastoreStatusFnDebug(&lock(&self.datastore)))
            .finish_non_exhaustive()
    }
}

impl StatusSource for StatusHub {
    async fn daemon(&self) -> Result<DaemonStatus, SourceError> {
        let mut daemon = lock(&self.daemon).clone();
        if let Some(status) = lock(&self.datastore).as_ref() {
            daemon.datastore = Some(status());
        }
        Ok(daemon)
    }

    async fn peers(&self) -> Result<Vec<PeerStatus>, SourceError> {
        Ok(lock(&self.peers).values().cloned().collect())
    }

    async fn routes(&self, query: RouteQuery) -> Result<Vec<RouteStatus>, SourceError> {
        let unavailable = |reason: &str| SourceError::Unavailable {
            component: "RIB task".into(),
            reason: reason.into(),
        };
        let (reply, answer) = oneshot::channel();
        self.routes
            .send(RouteRequest { query, reply })
            .await
            .map_err(|_| unavailable("it has stopped"))?;
        answer
            .await
            .map_err(|_| unavailable("it dropped the request"))
    }

    async fn rib(&self) -> Result<RibSummary, SourceError> {
        Ok(*lock(&self.rib))
    }

    async fn fib_summary(&self) -> Result<FibStatus, SourceError> {
        Ok(lock(&self.fib).clone())
    }

    async fn fib(&self) -> Result<FibStatus, SourceError> {
        self.fib_in(RouteQuery::default()).await
    }

    async fn fib_in(&self, query: RouteQuery) -> Result<FibStatus, SourceError> {
        let requests = lock(&self.fib_requests).clone();
        if let Some(requests) = requests {
            let (reply, answer) = oneshot::channel();
            if requests.send(FibRequest { query, reply }).await.is_ok()
                && let Ok(fib) = answer.await
            {
                return Ok(fib);
            }
        }
        Ok(lock(&self.fib).clone())
    }
}
