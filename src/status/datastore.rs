//! The datastore's state as `tern show status` and `tern health` report it: which datastore,
//! whether it synced, since when it is in its current state, the last error and how often the
//! daemon retried. Filled by the datastore (`io::datastore`) from what it saw; pure values here.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// Which datastore feeds the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatastoreKind {
    /// Manifests on disk (`datastore.type = "file"`).
    File,
    /// The Kubernetes API server (`datastore.type = "kubernetes"`).
    Kubernetes,
}

impl DatastoreKind {
    /// `file` or `kubernetes`.
    pub fn as_str(self) -> &'static str {
        match self {
            DatastoreKind::File => "file",
            DatastoreKind::Kubernetes => "kubernetes",
        }
    }
}

/// Where the datastore stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// Connecting or listing, no failure seen in the current attempt: not every watch has
    /// listed yet.
    Syncing,
    /// Every watch listed and none failing (file: the manifests were loaded).
    InSync,
    /// The API server did not answer the last request (connection refused, timed out, reset);
    /// retrying with backoff.
    Unreachable,
    /// The API server answered with an error (403, 500, 410, ...), or the credentials or
    /// discovery failed; retrying with backoff.
    Failing,
}

impl SyncState {
    /// `syncing`, `in sync`, `unreachable`, `failing`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Syncing => "syncing",
            SyncState::InSync => "in sync",
            SyncState::Unreachable => "unreachable",
            SyncState::Failing => "failing",
        }
    }
}

impl fmt::Display for SyncState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error of the datastore and when it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatastoreError {
    /// When it happened.
    pub at: Timestamp,
    /// What happened, naming the resource (e.g. `cannot watch bgppeers.crd.projectcalico.org:
    /// ... (403)`).
    pub message: String,
}

/// One watched source (a Calico kind, Nodes, one referenced Secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSummary {
    /// The resource, e.g. `bgppeers.crd.projectcalico.org`, `nodes`, `secrets/kube-system/bgp`.
    pub name: String,
    /// Listed at least once.
    pub listed: bool,
    /// Objects held.
    pub objects: u64,
    /// Its current failure, when it is failing now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<DatastoreError>,
    /// Failed attempts since it last worked.
    #[serde(default)]
    pub failures: u64,
}

/// The datastore as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatastoreStatus {
    /// Which datastore.
    pub kind: DatastoreKind,
    /// Where it stands now.
    pub state: SyncState,
    /// When it entered `state`.
    pub since: Timestamp,
    /// When it first synced (the first plan was computed from it); `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_synced: Option<Timestamp>,
    /// When a plan was last computed from it (file: the manifests were last loaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update: Option<Timestamp>,
    /// Plans computed (file: loads).
    #[serde(default)]
    pub updates: u64,
    /// The current failure (the connection, or the most recent of a failing source); `None`
    /// when nothing fails now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<DatastoreError>,
    /// Failed attempts since it last worked (connection attempts before the first connection,
    /// then the failing sources' retries).
    #[serde(default)]
    pub retries: u64,
    /// The next connection attempt is in this many milliseconds (while not connected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
    /// The Calico API group/version in use (Kubernetes), once discovered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    /// What could not be used at the last update: resources by kind and name, files by path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// The last plan that could not be computed (the running plan stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<DatastoreError>,
    /// Each watched source (Kubernetes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceSummary>,
}

impl DatastoreStatus {
    /// A datastore of `kind` that has not synced yet, from `now`.
    pub fn syncing(kind: DatastoreKind, now: Timestamp) -> Self {
        DatastoreStatus {
            kind,
            state: SyncState::Syncing,
            since: now,
            first_synced: None,
            last_update: None,
            updates: 0,
            last_error: None,
            retries: 0,
            retry_in_ms: None,
            api_group: None,
            problems: Vec::new(),
            rejected: None,
            sources: Vec::new(),
        }
    }

    /// Moves to `state` at `now` (its `since` changes only when the state does).
    pub fn enter(&mut self, state: SyncState, now: Timestamp) {
        if self.state != state {
            self.state = state;
            self.since = now;
        }
    }

    /// One line: `kubernetes: unreachable since 2026-12-02T01:00:00Z (12s ago), 4 retries,
    /// last error at ...: ...`.
    pub fn summary(&self, now: Timestamp) -> String {
        let mut out = format!(
            "{}: {} since {} ({}s ago)",
            self.kind.as_str(),
            self.state,
            self.since.rfc3339(),
            now.since(self.since).as_secs()
        );
        if self.retries > 0 {
            out.push_str(&format!(", {} retries", self.retries));
        }
        if let Some(ms) = self.retry_in_ms {
            out.push_str(&format!(", next attempt in {}ms", ms));
        }
        if let Some(e) = &self.last_error {
            out.push_str(&format!(
                ", last error at {}: {}",
                e.at.rfc3339(),
                e.message
            ));
        }
        if let Some(e) = &self.rejected {
            out.push_str(&format!(
                ", plan rejected at {}: {}",
                e.at.rfc3339(),
                e.message
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_moves_only_with_the_state_and_the_summary_says_it_all() {
        let mut s = DatastoreStatus::syncing(DatastoreKind::Kubernetes, Timestamp(1_000));
        s.enter(SyncState::Unreachable, Timestamp(2_000));
        s.enter(SyncState::Unreachable, Timestamp(5_000));
        assert_eq!(s.since, Timestamp(2_000));
        s.retries = 3;
        s.last_error = Some(DatastoreError {
            at: Timestamp(4_000),
            message: "connection refused".into(),
        });
        let line = s.summary(Timestamp(14_000));
        assert_eq!(
            line,
            "kubernetes: unreachable since 1970-01-01T00:00:02Z (12s ago), 3 retries, last error at 1970-01-01T00:00:04Z: connection refused"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["state"], "unreachable");
        assert_eq!(json["kind"], "kubernetes");
        assert!(json.get("first_synced").is_none());
        let back: DatastoreStatus = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }
}
