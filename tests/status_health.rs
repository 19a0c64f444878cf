//! Readiness and liveness with virtual time: pure functions of a snapshot and `now`.

mod status_fixture;
use status_fixture as common;

use std::time::Duration;

use common::{connecting_peer, daemon, established_peer, failing_peer};
use tern::status::health::NotReadyReason;
use tern::status::{
    DatastoreError, DatastoreKind, DatastoreStatus, GracefulRestartProgress, HealthPolicy,
    Liveness, Readiness, SyncState, Timestamp, liveness, readiness,
};

const START: Timestamp = Timestamp(1_000_000_000);
const POLICY: HealthPolicy = HealthPolicy {
    startup_window: Duration::from_secs(30),
    heartbeat_timeout: Duration::from_secs(20),
};

fn at(secs: u64) -> Timestamp {
    START.plus(Duration::from_secs(secs))
}

fn not_ready_peers(r: Readiness) -> (Vec<String>, bool) {
    match r {
        Readiness::NotReady {
            reason:
                NotReadyReason::PeersNotEstablished {
                    peers,
                    during_startup,
                },
        } => (peers, during_startup),
        other => panic!("expected peers not established, got {other:?}"),
    }
}

#[test]
fn no_peers_is_ready_from_the_start() {
    let d = daemon(START);
    assert_eq!(readiness(&d, &[], at(0), &POLICY), Readiness::Ready);
    assert_eq!(readiness(&d, &[], at(3600), &POLICY), Readiness::Ready);
}

#[test]
fn during_startup_every_peer_must_be_established() {
    let d = daemon(START);
    let peers = vec![
        established_peer(at(1)),
        failing_peer(at(2)),
        connecting_peer(at(2)),
    ];
    let (down, during) = not_ready_peers(readiness(&d, &peers, at(10), &POLICY));
    assert!(during);
    assert_eq!(down, vec!["10.0.0.9", "10.0.0.7"]);
    assert_eq!(
        readiness(&d, &peers, at(10), &POLICY).to_string_reason(),
        "BGP not established with 10.0.0.9,10.0.0.7"
    );
    // The last instant of the window still applies the start-up rule.
    assert!(matches!(
        readiness(
            &d,
            &peers,
            START.plus(Duration::from_millis(29_999)),
            &POLICY
        ),
        Readiness::NotReady { .. }
    ));
    // From the window's end on, one Established peer is enough.
    assert_eq!(readiness(&d, &peers, at(30), &POLICY), Readiness::Ready);
    assert_eq!(readiness(&d, &peers, at(86_400), &POLICY), Readiness::Ready);

    let all_up = vec![established_peer(at(1))];
    assert_eq!(readiness(&d, &all_up, at(5), &POLICY), Readiness::Ready);
}

#[test]
fn graceful_restart_blocks_readiness_only_during_startup() {
    let mut d = daemon(START);
    d.graceful_restart = Some(GracefulRestartProgress {
        waiting_for_peers: 1,
        deadline: at(120),
        wait_secs: 120,
    });
    let peers = vec![established_peer(at(1))];
    assert_eq!(
        readiness(&d, &peers, at(5), &POLICY),
        Readiness::NotReady {
            reason: NotReadyReason::GracefulRestartInProgress
        }
    );
    assert_eq!(readiness(&d, &peers, at(31), &POLICY), Readiness::Ready);
    // Unestablished peers are reported before graceful restart.
    let (down, _) = not_ready_peers(readiness(&d, &[failing_peer(at(1))], at(5), &POLICY));
    assert_eq!(down, vec!["10.0.0.9"]);
}

#[test]
fn after_startup_no_established_peer_is_not_ready() {
    let d = daemon(START);
    let peers = vec![failing_peer(at(1)), connecting_peer(at(1))];
    let (down, during) = not_ready_peers(readiness(&d, &peers, at(600), &POLICY));
    assert!(!during);
    assert_eq!(down, vec!["10.0.0.9", "10.0.0.7"]);
}

#[test]
fn disabled_peers_are_not_counted() {
    let d = daemon(START);
    let mut off = failing_peer(at(1));
    off.enabled = false;
    assert_eq!(
        readiness(&d, &[off.clone()], at(5), &POLICY),
        Readiness::Ready
    );
    let peers = vec![off, established_peer(at(1))];
    assert_eq!(readiness(&d, &peers, at(5), &POLICY), Readiness::Ready);
}

#[test]
fn liveness_follows_the_heartbeat() {
    let mut d = daemon(START);
    d.heartbeat = at(100);
    assert_eq!(liveness(&d, at(100), &POLICY), Liveness::Live);
    assert_eq!(liveness(&d, at(120), &POLICY), Liveness::Live);
    match liveness(&d, at(121), &POLICY) {
        Liveness::NotLive { reason } => {
            assert!(
                reason.contains("no heartbeat from the supervisor for 21s"),
                "{reason}"
            )
        }
        Liveness::Live => panic!("a stale heartbeat must not be live"),
    }
    // A heartbeat from the (virtual) future is live, not an underflow.
    assert_eq!(liveness(&d, at(50), &POLICY), Liveness::Live);
}

#[test]
fn never_synced_is_not_ready_and_says_why_and_lost_sync_keeps_readiness() {
    let mut d = daemon(START);
    let mut ds = DatastoreStatus::syncing(DatastoreKind::Kubernetes, at(0));
    ds.enter(SyncState::Unreachable, at(1));
    ds.retries = 4;
    ds.last_error = Some(DatastoreError {
        at: at(9),
        message: "API discovery (/apis): connection refused".into(),
    });
    d.datastore = Some(ds.clone());
    // No peers (no plan yet) would be ready; a datastore that never synced is not.
    let r = readiness(&d, &[], at(10), &POLICY);
    assert_eq!(
        r.to_string_reason(),
        format!(
            "datastore never synced: kubernetes: unreachable since {} (9s ago), 4 retries, last error at {}: API discovery (/apis): connection refused",
            at(1).rfc3339(),
            at(9).rfc3339()
        )
    );
    assert!(matches!(
        r,
        Readiness::NotReady {
            reason: NotReadyReason::DatastoreNotSynced { .. }
        }
    ));
    // Synced at 100 s: the start-up window runs from the first sync, so every peer must be
    // Established until 130 s.
    ds.first_synced = Some(at(100));
    ds.enter(SyncState::InSync, at(100));
    d.datastore = Some(ds.clone());
    let peers = vec![established_peer(at(101)), failing_peer(at(101))];
    let (_, during) = not_ready_peers(readiness(&d, &peers, at(110), &POLICY));
    assert!(during);
    assert_eq!(readiness(&d, &peers, at(130), &POLICY), Readiness::Ready);
    // Sync lost after the first sync: the last good state keeps running, still ready.
    ds.enter(SyncState::Unreachable, at(200));
    d.datastore = Some(ds);
    assert_eq!(readiness(&d, &peers, at(210), &POLICY), Readiness::Ready);
}

trait ReasonText {
    fn to_string_reason(&self) -> String;
}

impl ReasonText for Readiness {
    fn to_string_reason(&self) -> String {
        match self {
            Readiness::Ready => "ready".into(),
            Readiness::NotReady { reason } => reason.to_string(),
        }
    }
}
