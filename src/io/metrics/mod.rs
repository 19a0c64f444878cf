//! Prometheus metrics (OpenMetrics text via the `prometheus-client` crate) and a small HTTP
//! endpoint serving them, bound to loopback unless configured otherwise.
//!
//! Counters on hot paths are handles the daemon keeps ([`PeerMetrics`]: atomic increments, no
//! lookups); gauges are set from status snapshots ([`Metrics::observe`]), which the HTTP server
//! refreshes from a [`StatusSource`] before each scrape.

pub mod http;

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::io::control::{SourceError, StatusSource};
use crate::status::{FibStatus, PeerStatus, RibSummary};

pub use http::{DEFAULT_METRICS_ADDR, MetricsError, MetricsServer};

/// Labels of per-peer metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    /// Protocol name (`Mesh_10_0_0_2`).
    pub peer: String,
}

/// BGP message types.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum MessageType {
    /// OPEN.
    open,
    /// UPDATE.
    update,
    /// NOTIFICATION.
    notification,
    /// KEEPALIVE.
    keepalive,
    /// ROUTE-REFRESH.
    route_refresh,
}

const MESSAGE_TYPES: [MessageType; 5] = [
    MessageType::open,
    MessageType::update,
    MessageType::notification,
    MessageType::keepalive,
    MessageType::route_refresh,
];

/// The action taken on a malformed UPDATE (RFC 7606 §2).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum MalformedAction {
    /// Treat-as-withdraw.
    treat_as_withdraw,
    /// Attribute discard.
    attribute_discard,
    /// Session reset.
    session_reset,
}

const MALFORMED_ACTIONS: [MalformedAction; 3] = [
    MalformedAction::treat_as_withdraw,
    MalformedAction::attribute_discard,
    MalformedAction::session_reset,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    peer: String,
    r#type: MessageType,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PrefixLabels {
    peer: String,
    stage: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MalformedLabels {
    peer: String,
    action: MalformedAction,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

/// Every metric tern exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    peer_state: Family<PeerLabels, Gauge>,
    peer_up: Family<PeerLabels, Gauge>,
    messages_received: Family<MessageLabels, Counter>,
    messages_sent: Family<MessageLabels, Counter>,
    prefixes: Family<PrefixLabels, Gauge>,
    output_backlog: Family<PeerLabels, Gauge>,
    flaps: Family<PeerLabels, Counter>,
    malformed_updates: Family<MalformedLabels, Counter>,
    kernel_routes: Family<KindLabels, Gauge>,
    kernel_errors: Family<OperationLabels, Counter>,
    rib_prefixes: Gauge,
    rib_paths: Gauge,
    rib_attribute_sets: Gauge,
    rib_stale_paths: Gauge,
    refresh_errors: Counter,
    known_peers: Mutex<HashSet<String>>,
}

/// Hot-path counters of one peer: clones of the registered counters, so incrementing is one
/// atomic add.
#[derive(Debug, Clone)]
pub struct PeerMetrics {
    received: [Counter; 5],
    sent: [Counter; 5],
    flaps: Counter,
    malformed: [Counter; 3],
}

fn index(t: MessageType) -> usize {
    MESSAGE_TYPES.iter().position(|&m| m == t).unwrap_or(0)
}

impl PeerMetrics {
    /// A message was received.
    pub fn message_received(&self, t: MessageType) {
        self.received[index(t)].inc();
    }

    /// A message was sent.
    pub fn message_sent(&self, t: MessageType) {
        self.sent[index(t)].inc();
    }

    /// Raises the message counters to `received` and `sent`, totals kept elsewhere (the
    /// speaker's per-peer counters): counters never go down, so a lower total changes nothing.
    pub fn messages_up_to(
        &self,
        received: &crate::status::MessageCounts,
        sent: &crate::status::MessageCounts,
    ) {
        for (counters, totals) in [(&self.received, received), (&self.sent, sent)] {
            let totals = [
                totals.open,
                totals.update,
                totals.notification,
                totals.keepalive,
                totals.route_refresh,
            ];
            for (counter, total) in counters.iter().zip(totals) {
                let current = counter.get();
                if total > current {
                    counter.inc_by(total - current);
                }
            }
        }
    }

    /// The session left Established.
    pub fn session_flapped(&self) {
        self.flaps.inc();
    }

    /// A malformed UPDATE was handled with this action.
    pub fn malformed_update(&self, action: MalformedAction) {
        let i = MALFORMED_ACTIONS
            .iter()
            .position(|&a| a == action)
            .unwrap_or(0);
        self.malformed[i].inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `tern_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tern");
        let m = Metrics {
            peer_state: Family::default(),
            peer_up: Family::default(),
            messages_received: Family::default(),
            messages_sent: Family::default(),
            prefixes: Family::default(),
            output_backlog: Family::default(),
            flaps: Family::default(),
            malformed_updates: Family::default(),
            kernel_routes: Family::default(),
            kernel_errors: Family::default(),
            rib_prefixes: Gauge::default(),
            rib_paths: Gauge::default(),
            rib_attribute_sets: Gauge::default(),
            rib_stale_paths: Gauge::default(),
            refresh_errors: Counter::default(),
            known_peers: Mutex::new(HashSet::new()),
            registry: Registry::default(),
        };
        registry.register(
            "bgp_peer_state",
            "BGP session state per peer: 1 Idle, 2 Connect, 3 Active, 4 OpenSent, 5 OpenConfirm, 6 Established (BGP4-MIB numbering); 0 disabled",
            m.peer_state.clone(),
        );
        registry.register(
            "bgp_peer_up",
            "1 when the session is Established",
            m.peer_up.clone(),
        );
        registry.register(
            "bgp_messages_received",
            "BGP messages received, by peer and type",
            m.messages_received.clone(),
        );
        registry.register(
            "bgp_messages_sent",
            "BGP messages sent, by peer and type",
            m.messages_sent.clone(),
        );
        registry.register(
            "bgp_prefixes",
            "Paths per peer: received (before import policy), accepted, advertised",
            m.prefixes.clone(),
        );
        registry.register(
            "bgp_output_backlog_prefixes",
            "Prefixes encoded for a peer and not yet written to its socket",
            m.output_backlog.clone(),
        );
        registry.register(
            "bgp_session_flaps",
            "Times a session left Established",
            m.flaps.clone(),
        );
        registry.register(
            "bgp_malformed_updates",
            "Malformed UPDATE messages by RFC 7606 action",
            m.malformed_updates.clone(),
        );
        registry.register(
            "kernel_routes",
            "Routes tern holds in the kernel, by kind",
            m.kernel_routes.clone(),
        );
        registry.register(
            "kernel_errors",
            "Failed kernel (netlink) operations",
            m.kernel_errors.clone(),
        );
        registry.register(
            "rib_prefixes",
            "Prefixes in the Loc-RIB",
            m.rib_prefixes.clone(),
        );
        registry.register("rib_paths", "Paths in the RIB", m.rib_paths.clone());
        registry.register(
            "rib_attribute_sets",
            "Distinct interned path attribute sets",
            m.rib_attribute_sets.clone(),
        );
        registry.register(
            "rib_stale_paths",
            "Paths kept from restarting peers",
            m.rib_stale_paths.clone(),
        );
        registry.register(
            "status_refresh_errors",
            "Scrapes whose status refresh failed (values may be stale)",
            m.refresh_errors.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The hot-path counters of a peer (creating its series at zero).
    pub fn peer(&self, name: &str) -> PeerMetrics {
        let msg = |f: &Family<MessageLabels, Counter>, t| {
            f.get_or_create_owned(&MessageLabels {
                peer: name.to_owned(),
                r#type: t,
            })
        };
        PeerMetrics {
            received: MESSAGE_TYPES.map(|t| msg(&self.messages_received, t)),
            sent: MESSAGE_TYPES.map(|t| msg(&self.messages_sent, t)),
            flaps: self.flaps.get_or_create_owned(&PeerLabels {
                peer: name.to_owned(),
            }),
            malformed: MALFORMED_ACTIONS.map(|action| {
                self.malformed_updates
                    .get_or_create_owned(&MalformedLabels {
                        peer: name.to_owned(),
                        action,
                    })
            }),
        }
    }

    /// A kernel operation (e.g. `route_add`) failed.
    pub fn kernel_error(&self, operation: &str) {
        self.kernel_errors
            .get_or_create(&OperationLabels {
                operation: operation.to_owned(),
            })
            .inc();
    }

    /// Sets the gauges from a status snapshot; removes the series of peers no longer present.
    pub fn observe(&self, peers: &[PeerStatus], rib: &RibSummary, fib: &FibStatus) {
        let mut known = self.known_peers.lock().unwrap_or_else(|e| e.into_inner());
        let current: HashSet<String> = peers.iter().map(|p| p.name.clone()).collect();
        for gone in known.difference(&current) {
            self.remove_peer(gone);
        }
        *known = current;
        drop(known);
        for p in peers {
            let labels = PeerLabels {
                peer: p.name.clone(),
            };
            let state = if p.enabled { p.state.mib_number() } else { 0 };
            self.peer_state.get_or_create(&labels).set(state);
            self.peer_up.get_or_create(&labels).set(i64::from(
                p.enabled && p.state == crate::status::SessionState::Established,
            ));
            self.output_backlog
                .get_or_create(&labels)
                .set(to_i64(p.output.backlog_prefixes));
            for (stage, n) in [
                ("received", p.prefixes.received),
                ("accepted", p.prefixes.accepted),
                ("advertised", p.prefixes.advertised),
            ] {
                self.prefixes
                    .get_or_create(&PrefixLabels {
                        peer: p.name.clone(),
                        stage,
                    })
                    .set(to_i64(n));
            }
        }
        self.rib_prefixes.set(to_i64(rib.prefixes));
        self.rib_paths.set(to_i64(rib.paths));
        self.rib_attribute_sets.set(to_i64(rib.attribute_sets));
        self.rib_stale_paths.set(to_i64(rib.stale_paths));
        // The kernel task counts its errors as they happen; the counter follows its total.
        let errors = self.kernel_errors.get_or_create(&OperationLabels {
            operation: "route".to_owned(),
        });
        let seen = errors.get();
        if fib.errors_total > seen {
            errors.inc_by(fib.errors_total - seen);
        }
        drop(errors);
        for (kind, n) in fib.counts().by_kind() {
            self.kernel_routes
                .get_or_create(&KindLabels { kind })
                .set(to_i64(n));
        }
    }

    fn remove_peer(&self, name: &str) {
        let peer = name.to_owned();
        self.peer_state.remove(&PeerLabels { peer: peer.clone() });
        self.peer_up.remove(&PeerLabels { peer: peer.clone() });
        self.output_backlog
            .remove(&PeerLabels { peer: peer.clone() });
        self.flaps.remove(&PeerLabels { peer: peer.clone() });
        for t in MESSAGE_TYPES {
            let l = MessageLabels {
                peer: peer.clone(),
                r#type: t,
            };
            self.messages_received.remove(&l);
            self.messages_sent.remove(&l);
        }
        for stage in ["received", "accepted", "advertised"] {
            self.prefixes.remove(&PrefixLabels {
                peer: peer.clone(),
                stage,
            });
        }
        for action in MALFORMED_ACTIONS {
            self.malformed_updates.remove(&MalformedLabels {
                peer: peer.clone(),
                action,
            });
        }
    }

    /// Fetches peers, RIB sizes and kernel status from `source` and [`observe`](Self::observe)s
    /// them. On failure the previous values stay and `tern_status_refresh_errors_total` grows.
    pub async fn refresh_from<S: StatusSource>(&self, source: &S) -> Result<(), SourceError> {
        let result = async {
            let peers = source.peers().await?;
            let rib = source.rib().await?;
            let fib = source.fib_summary().await?;
            Ok::<_, SourceError>((peers, rib, fib))
        }
        .await;
        match result {
            Ok((peers, rib, fib)) => {
                self.observe(&peers, &rib, &fib);
                Ok(())
            }
            Err(e) => {
                self.refresh_errors.inc();
                Err(e)
            }
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
