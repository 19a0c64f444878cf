//! A fixed status snapshot and a `StatusSource` over it, shared by the socket tests.
#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tern::fib::{KernelRoute, KernelRouteKind, NextHop};
use tern::io::control::{AdminActions, RouteQuery, SourceError, StatusSource};
use tern::status::{
    AddPath, AddPathDirection, AsPathSegment, CapabilitySet, DaemonStatus, EstablishedSession,
    Family, FibError, FibStatus, GracefulRestartCapability, GracefulRestartFamily, MessageCounts,
    NextHopStatus, NotificationStatus, Origin, PathStatus, PeerError, PeerErrorKind, PeerKind,
    PeerStatus, PrefixCounts, RibSummary, RouteSource, RouteStatus, SessionState, Timestamp,
    bird_protocol_name,
};

pub fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn daemon(started: Timestamp) -> DaemonStatus {
    DaemonStatus {
        version: "0.1.0".into(),
        router_id: "10.0.0.1".parse().unwrap(),
        local_as: 64512,
        hostname: Some("node-1".into()),
        started_at: started,
        last_reconfigured: started,
        heartbeat: now(),
        graceful_restart: None,
        warnings: Vec::new(),
    }
}

pub fn caps(gr: bool) -> CapabilitySet {
    CapabilitySet {
        families: vec![Family::Ipv4Unicast],
        route_refresh: true,
        enhanced_route_refresh: true,
        four_octet_as: true,
        extended_message: false,
        add_path: vec![AddPath {
            family: Family::Ipv4Unicast,
            direction: AddPathDirection::Both,
        }],
        graceful_restart: gr.then(|| GracefulRestartCapability {
            restart_time_secs: 120,
            restarting: false,
            families: vec![GracefulRestartFamily {
                family: Family::Ipv4Unicast,
                forwarding_preserved: true,
            }],
        }),
    }
}

/// Mesh_10_0_0_2: Established with capabilities and counters.
pub fn established_peer(since: Timestamp) -> PeerStatus {
    PeerStatus {
        name: bird_protocol_name(PeerKind::Mesh, ip("10.0.0.2"), None),
        kind: PeerKind::Mesh,
        address: ip("10.0.0.2"),
        port: 179,
        remote_as: 64512,
        local_as: 64512,
        enabled: true,
        passive: false,
        route_reflector_client: false,
        state: SessionState::Established,
        since,
        last_error: None,
        session: Some(EstablishedSession {
            remote_router_id: "10.0.0.2".parse().unwrap(),
            local_address: ip("10.0.0.1"),
            hold_time_secs: 90,
            keepalive_secs: 30,
            local_capabilities: caps(true),
            remote_capabilities: caps(true),
        }),
        peer_graceful_restart_active: false,
        prefixes: PrefixCounts {
            received: 3,
            accepted: 2,
            advertised: 1,
        },
        messages_received: MessageCounts {
            open: 1,
            update: 4,
            notification: 0,
            keepalive: 10,
            route_refresh: 0,
        },
        messages_sent: MessageCounts {
            open: 1,
            update: 2,
            notification: 0,
            keepalive: 11,
            route_refresh: 0,
        },
        output: Default::default(),
        flaps: 1,
    }
}

/// Global_10_0_0_9_port_1790: Active after a received Cease/Administrative Shutdown.
pub fn failing_peer(since: Timestamp) -> PeerStatus {
    let mut data = vec![11];
    data.extend_from_slice(b"maintenance");
    PeerStatus {
        name: bird_protocol_name(PeerKind::Global, ip("10.0.0.9"), Some(1790)),
        kind: PeerKind::Global,
        address: ip("10.0.0.9"),
        port: 1790,
        remote_as: 65001,
        local_as: 64512,
        enabled: true,
        passive: false,
        route_reflector_client: false,
        state: SessionState::Active,
        since,
        last_error: Some(PeerError {
            at: since,
            kind: PeerErrorKind::NotificationReceived {
                notification: NotificationStatus::new(6, 2, &data),
            },
        }),
        session: None,
        peer_graceful_restart_active: false,
        prefixes: PrefixCounts::default(),
        messages_received: MessageCounts::default(),
        messages_sent: MessageCounts::default(),
        output: Default::default(),
        flaps: 3,
    }
}

/// Node_10_0_0_7: Connect, last error a refused connection.
pub fn connecting_peer(since: Timestamp) -> PeerStatus {
    let mut p = failing_peer(since);
    p.name = bird_protocol_name(PeerKind::Node, ip("10.0.0.7"), None);
    p.kind = PeerKind::Node;
    p.address = ip("10.0.0.7");
    p.port = 179;
    p.state = SessionState::Connect;
    p.last_error = Some(PeerError {
        at: since,
        kind: PeerErrorKind::Socket {
            message: "Connection refused".into(),
        },
    });
    p
}

pub fn routes(at: Timestamp) -> Vec<RouteStatus> {
    vec![
        RouteStatus {
            prefix: "10.65.1.0/26".parse().unwrap(),
            paths: vec![PathStatus {
                source: RouteSource::Local {
                    reason: "ipam-block".into(),
                },
                next_hops: vec![],
                as_path: vec![],
                origin: Origin::Igp,
                local_pref: Some(100),
                med: None,
                communities: vec![],
                best: true,
                multipath: false,
                stale: false,
                since: at,
            }],
        },
        RouteStatus {
            prefix: "10.65.2.0/26".parse().unwrap(),
            paths: vec![
                PathStatus {
                    source: RouteSource::Peer {
                        name: "Mesh_10_0_0_2".into(),
                        address: ip("10.0.0.2"),
                    },
                    next_hops: vec![NextHopStatus {
                        address: ip("10.0.0.2"),
                        interface: Some("tunl0".into()),
                    }],
                    as_path: vec![],
                    origin: Origin::Igp,
                    local_pref: Some(100),
                    med: None,
                    communities: vec![(64512 << 16) | 100],
                    best: true,
                    multipath: false,
                    stale: false,
                    since: at,
                },
                PathStatus {
                    source: RouteSource::Peer {
                        name: "Global_10_0_0_9_port_1790".into(),
                        address: ip("10.0.0.9"),
                    },
                    next_hops: vec![NextHopStatus {
                        address: ip("10.0.0.9"),
                        interface: Some("eth0".into()),
                    }],
                    as_path: vec![AsPathSegment::Sequence(vec![65001, 65002])],
                    origin: Origin::Incomplete,
                    local_pref: None,
                    med: Some(5),
                    communities: vec![],
                    best: false,
                    multipath: false,
                    stale: true,
                    since: at,
                },
            ],
        },
    ]
}

pub fn fib(at: Timestamp) -> FibStatus {
    FibStatus {
        routes: vec![
            KernelRoute {
                prefix: "10.65.1.0/26".parse().unwrap(),
                kind: KernelRouteKind::Blackhole,
                metric: 1024,
            },
            KernelRoute {
                prefix: "10.65.2.0/26".parse().unwrap(),
                kind: KernelRouteKind::Unicast(vec![NextHop {
                    gateway: ip("10.0.0.2"),
                    via_tunnel: true,
                }]),
                metric: 1024,
            },
        ],
        last_sync: Some(at),
        last_error: Some(FibError {
            at,
            message: "add 10.65.3.0/26 via 10.1.0.3: Network is unreachable (os error 101)".into(),
        }),
        errors_total: 1,
        ..FibStatus::default()
    }
}

/// The snapshot a test source serves.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub daemon: DaemonStatus,
    pub peers: Vec<PeerStatus>,
    pub routes: Vec<RouteStatus>,
    pub rib: RibSummary,
    pub fib: FibStatus,
}

impl Snapshot {
    /// A node up for an hour with one Established, one failing and one connecting peer.
    pub fn sample() -> Self {
        let t = now();
        let started = Timestamp(t.0 - 3_600_000);
        Snapshot {
            daemon: daemon(started),
            peers: vec![
                established_peer(Timestamp(t.0 - 192_000)),
                failing_peer(Timestamp(t.0 - 45_000)),
                connecting_peer(Timestamp(t.0 - 5_000)),
            ],
            routes: routes(started),
            rib: RibSummary {
                prefixes: 2,
                paths: 3,
                attribute_sets: 2,
                stale_paths: 1,
            },
            fib: fib(started),
        }
    }
}

/// A `StatusSource` over a snapshot; `delay` makes every answer slow; admin actions are
/// recorded.
pub struct TestSource {
    pub snapshot: Mutex<Snapshot>,
    pub delay: Duration,
    pub actions: Mutex<Vec<String>>,
}

impl TestSource {
    pub fn new(snapshot: Snapshot) -> Self {
        TestSource {
            snapshot: Mutex::new(snapshot),
            delay: Duration::ZERO,
            actions: Mutex::new(Vec::new()),
        }
    }

    async fn pause(&self) {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
    }
}

impl StatusSource for TestSource {
    async fn daemon(&self) -> Result<DaemonStatus, SourceError> {
        self.pause().await;
        Ok(self.snapshot.lock().unwrap().daemon.clone())
    }
    async fn peers(&self) -> Result<Vec<PeerStatus>, SourceError> {
        self.pause().await;
        Ok(self.snapshot.lock().unwrap().peers.clone())
    }
    async fn routes(&self, query: RouteQuery) -> Result<Vec<RouteStatus>, SourceError> {
        self.pause().await;
        let routes = self.snapshot.lock().unwrap().routes.clone();
        Ok(routes
            .into_iter()
            .filter(|r| query.matches(&r.prefix))
            .collect())
    }
    async fn rib(&self) -> Result<RibSummary, SourceError> {
        self.pause().await;
        Ok(self.snapshot.lock().unwrap().rib)
    }
    async fn fib(&self) -> Result<FibStatus, SourceError> {
        self.pause().await;
        Ok(self.snapshot.lock().unwrap().fib.clone())
    }
}

impl AdminActions for TestSource {
    async fn reset_peer(&self, name: &str) -> Result<String, SourceError> {
        let known = self
            .snapshot
            .lock()
            .unwrap()
            .peers
            .iter()
            .any(|p| p.name == name);
        if !known {
            return Err(SourceError::NoSuchPeer(name.into()));
        }
        self.actions.lock().unwrap().push(format!("reset {name}"));
        Ok(format!("{name}: reset"))
    }
    async fn set_peer_enabled(&self, name: &str, enabled: bool) -> Result<String, SourceError> {
        self.actions.lock().unwrap().push(format!(
            "{} {name}",
            if enabled { "enable" } else { "disable" }
        ));
        Ok(format!(
            "{name}: {}",
            if enabled { "enabled" } else { "disabled" }
        ))
    }
    async fn reload(&self) -> Result<String, SourceError> {
        self.actions.lock().unwrap().push("reload".into());
        Ok("reloaded".into())
    }
}
