//! The operator-facing status model: what the daemon reports about itself, its peers, its routes
//! and the kernel. Pure and serde-serializable.
//!
//! The daemon fills these snapshots from its live state; the control socket (`io::control`), the
//! BIRD-compatible socket (`io::birdctl`) and the metrics (`io::metrics`) only read them. The
//! readiness and liveness decisions are pure functions of a snapshot and the current time
//! ([`health`]).

pub mod health;
pub mod names;
pub mod notification;
pub mod time;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::fib::{KernelRoute, KernelRouteKind};
pub use health::{HealthPolicy, Liveness, Readiness, liveness, readiness};
pub use names::{PeerKind, bird_protocol_name};
pub use notification::NotificationStatus;
pub use time::Timestamp;

/// The daemon as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonStatus {
    /// tern's version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// The BGP identifier in use.
    pub router_id: Ipv4Addr,
    /// The node's AS number.
    pub local_as: u32,
    /// The node name or host name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// When the daemon started.
    pub started_at: Timestamp,
    /// When the running configuration (plan) was last applied.
    pub last_reconfigured: Timestamp,
    /// The last time the daemon's supervisor loop made progress (liveness).
    pub heartbeat: Timestamp,
    /// Graceful restart recovery of this daemon (RFC 4724 §4.1, restarting speaker), when in
    /// progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graceful_restart: Option<GracefulRestartProgress>,
    /// What the operator should know about the running configuration: the plan's warnings,
    /// a Node address on no local interface, a change that takes effect only after a restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl DaemonStatus {
    /// Whether this daemon is still recovering from its own restart.
    pub fn graceful_restart_in_progress(&self) -> bool {
        self.graceful_restart.is_some()
    }
}

/// This daemon's graceful restart recovery: it keeps the routes it installed before the restart
/// until its peers have sent End-of-RIB or the wait timer expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GracefulRestartProgress {
    /// Peers whose End-of-RIB is still awaited.
    pub waiting_for_peers: u32,
    /// When the wait ends regardless.
    pub deadline: Timestamp,
    /// The configured wait, in seconds.
    pub wait_secs: u32,
}

/// One BGP peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// BIRD-style protocol name (`Mesh_10_0_0_2`, `Global_10_0_0_9_port_1790`, `Node_...`), see
    /// [`bird_protocol_name`].
    pub name: String,
    /// Why this peering exists.
    pub kind: PeerKind,
    /// The peer's address.
    pub address: IpAddr,
    /// The peer's TCP port.
    pub port: u16,
    /// The peer's AS.
    pub remote_as: u32,
    /// The AS this node uses towards the peer.
    pub local_as: u32,
    /// Whether the peer is administratively enabled.
    pub enabled: bool,
    /// Whether this node only waits for the peer to connect (Calico's passive rule).
    pub passive: bool,
    /// The peer is a route-reflector client of this node.
    #[serde(default)]
    pub route_reflector_client: bool,
    /// Session state (RFC 4271 §8.2.2).
    pub state: SessionState,
    /// When `state` was entered.
    pub since: Timestamp,
    /// Why the session last went down or failed to come up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<PeerError>,
    /// Details of the session while it is Established.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<EstablishedSession>,
    /// The peer is restarting gracefully: its routes are kept as stale (RFC 4724 §4.2).
    #[serde(default)]
    pub peer_graceful_restart_active: bool,
    /// Prefix counters.
    pub prefixes: PrefixCounts,
    /// Messages received.
    pub messages_received: MessageCounts,
    /// Messages sent (written to the socket).
    pub messages_sent: MessageCounts,
    /// Route output of the current session: written, and waiting to be written.
    #[serde(default)]
    pub output: OutputStatus,
    /// How many times the session left Established.
    #[serde(default)]
    pub flaps: u64,
}

/// BGP session states (RFC 4271 §8.2.2), named as BIRD and Calico print them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SessionState {
    /// Idle.
    Idle,
    /// Connect.
    Connect,
    /// Active.
    Active,
    /// OpenSent.
    OpenSent,
    /// OpenConfirm.
    OpenConfirm,
    /// Established.
    Established,
}

impl SessionState {
    /// The name as BIRD prints it (`Established`, `OpenSent`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Idle => "Idle",
            SessionState::Connect => "Connect",
            SessionState::Active => "Active",
            SessionState::OpenSent => "OpenSent",
            SessionState::OpenConfirm => "OpenConfirm",
            SessionState::Established => "Established",
        }
    }

    /// A number for the per-peer state gauge: 1 Idle ... 6 Established (the BGP4-MIB's
    /// `bgpPeerState` numbering, RFC 4273).
    pub fn mib_number(self) -> i64 {
        match self {
            SessionState::Idle => 1,
            SessionState::Connect => 2,
            SessionState::Active => 3,
            SessionState::OpenSent => 4,
            SessionState::OpenConfirm => 5,
            SessionState::Established => 6,
        }
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last error of a peer and when it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerError {
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub kind: PeerErrorKind,
}

/// What ended (or prevented) a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum PeerErrorKind {
    /// This node sent a NOTIFICATION.
    NotificationSent {
        /// The NOTIFICATION.
        notification: NotificationStatus,
    },
    /// The peer sent a NOTIFICATION.
    NotificationReceived {
        /// The NOTIFICATION.
        notification: NotificationStatus,
    },
    /// The TCP connection failed or was closed (e.g. `Connection refused`).
    Socket {
        /// The OS error text.
        message: String,
    },
    /// Anything else (e.g. a missing TCP-MD5 secret).
    Other {
        /// What went wrong.
        message: String,
    },
}

impl PeerErrorKind {
    /// One line for operators, e.g. `received NOTIFICATION: Cease: Administrative Shutdown (6/2)`.
    pub fn describe(&self) -> String {
        match self {
            PeerErrorKind::NotificationSent { notification } => {
                format!("sent NOTIFICATION: {}", notification.describe())
            }
            PeerErrorKind::NotificationReceived { notification } => {
                format!("received NOTIFICATION: {}", notification.describe())
            }
            PeerErrorKind::Socket { message } => format!("socket: {message}"),
            PeerErrorKind::Other { message } => message.clone(),
        }
    }
}

/// Details of an Established session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EstablishedSession {
    /// The peer's BGP identifier.
    pub remote_router_id: Ipv4Addr,
    /// The local address of the TCP connection.
    pub local_address: IpAddr,
    /// Negotiated hold time in seconds (0: no keepalives).
    pub hold_time_secs: u16,
    /// Keepalive interval in seconds.
    pub keepalive_secs: u16,
    /// What this node announced in its OPEN.
    pub local_capabilities: CapabilitySet,
    /// What the peer announced in its OPEN.
    pub remote_capabilities: CapabilitySet,
}

impl EstablishedSession {
    /// What both sides agreed on (RFC 5492 §3, RFC 6793 §3, RFC 7911 §5, RFC 4724 §3).
    pub fn negotiated(&self) -> NegotiatedCapabilities {
        let (l, r) = (&self.local_capabilities, &self.remote_capabilities);
        let families: Vec<Family> = l
            .families
            .iter()
            .copied()
            .filter(|f| r.families.contains(f))
            .collect();
        let add_path = families
            .iter()
            .filter_map(|&family| {
                let local = l.add_path_for(family);
                let remote = r.add_path_for(family);
                // RFC 7911 §5: send when we may send and the peer may receive, and vice versa.
                let send = local.may_send() && remote.may_receive();
                let receive = local.may_receive() && remote.may_send();
                AddPathDirection::from_flags(receive, send)
                    .map(|direction| AddPath { family, direction })
            })
            .collect();
        NegotiatedCapabilities {
            four_octet_as: l.four_octet_as && r.four_octet_as,
            route_refresh: l.route_refresh && r.route_refresh,
            enhanced_route_refresh: l.enhanced_route_refresh && r.enhanced_route_refresh,
            families,
            add_path,
            peer_graceful_restart: r.graceful_restart.clone(),
            hold_time_secs: self.hold_time_secs,
        }
    }
}

/// The capabilities one side announced in its OPEN.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitySet {
    /// Multiprotocol families (RFC 4760).
    pub families: Vec<Family>,
    /// Route refresh (RFC 2918).
    pub route_refresh: bool,
    /// Enhanced route refresh (RFC 7313).
    pub enhanced_route_refresh: bool,
    /// 4-octet AS numbers (RFC 6793).
    pub four_octet_as: bool,
    /// Extended messages (RFC 8654).
    #[serde(default)]
    pub extended_message: bool,
    /// ADD-PATH per family (RFC 7911).
    pub add_path: Vec<AddPath>,
    /// Graceful restart (RFC 4724).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graceful_restart: Option<GracefulRestartCapability>,
}

impl CapabilitySet {
    fn add_path_for(&self, family: Family) -> AddPathDirection {
        self.add_path
            .iter()
            .find(|a| a.family == family)
            .map_or(AddPathDirection::None, |a| a.direction)
    }
}

/// What both sides of a session agreed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NegotiatedCapabilities {
    /// Both sides support 4-octet AS numbers.
    pub four_octet_as: bool,
    /// Both sides support route refresh.
    pub route_refresh: bool,
    /// Both sides support enhanced route refresh.
    pub enhanced_route_refresh: bool,
    /// Families both sides announced.
    pub families: Vec<Family>,
    /// ADD-PATH as this node uses it: `Send` means this node sends several paths.
    pub add_path: Vec<AddPath>,
    /// The peer's graceful restart capability (how long to keep its routes after it goes down).
    pub peer_graceful_restart: Option<GracefulRestartCapability>,
    /// Negotiated hold time in seconds.
    pub hold_time_secs: u16,
}

/// An address family (AFI/SAFI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// IPv4 unicast (1/1).
    Ipv4Unicast,
    /// IPv6 unicast (2/1).
    Ipv6Unicast,
    /// Any other AFI/SAFI.
    Other {
        /// AFI.
        afi: u16,
        /// SAFI.
        safi: u8,
    },
}

impl Family {
    /// The name BIRD prints (`ipv4`, `ipv6`, `<afi/safi>` otherwise).
    pub fn bird_name(self) -> String {
        match self {
            Family::Ipv4Unicast => "ipv4".to_owned(),
            Family::Ipv6Unicast => "ipv6".to_owned(),
            Family::Other { afi, safi } => format!("<{afi}/{safi}>"),
        }
    }
}

/// ADD-PATH for one family (RFC 7911 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddPath {
    /// The family.
    pub family: Family,
    /// Receive, send, or both.
    pub direction: AddPathDirection,
}

/// ADD-PATH directions (RFC 7911 §4: 1 receive, 2 send, 3 both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddPathDirection {
    /// Neither (absent).
    None,
    /// Able to receive several paths.
    Receive,
    /// Able to send several paths.
    Send,
    /// Both.
    Both,
}

impl AddPathDirection {
    fn from_flags(receive: bool, send: bool) -> Option<Self> {
        match (receive, send) {
            (false, false) => None,
            (true, false) => Some(AddPathDirection::Receive),
            (false, true) => Some(AddPathDirection::Send),
            (true, true) => Some(AddPathDirection::Both),
        }
    }

    /// Receives several paths.
    pub fn may_receive(self) -> bool {
        matches!(self, AddPathDirection::Receive | AddPathDirection::Both)
    }

    /// Sends several paths.
    pub fn may_send(self) -> bool {
        matches!(self, AddPathDirection::Send | AddPathDirection::Both)
    }
}

/// A graceful restart capability (RFC 4724 §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GracefulRestartCapability {
    /// Restart time in seconds.
    pub restart_time_secs: u16,
    /// The R bit: the sender has restarted.
    pub restarting: bool,
    /// Families with state kept across a restart, and whether forwarding was preserved (F bit).
    pub families: Vec<GracefulRestartFamily>,
}

/// One family of a graceful restart capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GracefulRestartFamily {
    /// The family.
    pub family: Family,
    /// Forwarding state preserved (F bit).
    pub forwarding_preserved: bool,
}

/// Prefix counters of one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixCounts {
    /// Paths in Adj-RIB-In before import policy.
    pub received: u64,
    /// Paths accepted by import policy.
    pub accepted: u64,
    /// Prefixes in the peer's Adj-RIB-Out as of the last time everything queued for it had
    /// been written to the socket ([`OutputStatus::drained_at`]): a peer that stops reading
    /// does not show routes it was never sent.
    pub advertised: u64,
}

/// A peer's route output in the current session, measured where it happens: the writer counts
/// what reached the socket, the supervisor what it encoded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputStatus {
    /// Prefixes (announced + withdrawn NLRI) written to the socket.
    pub prefixes_written: u64,
    /// UPDATE bytes written to the socket.
    pub bytes_written: u64,
    /// Prefixes encoded for the peer and not yet written (tern's backlog, the peer task's
    /// queue and its writer).
    pub backlog_prefixes: u64,
    /// Bytes of those.
    pub backlog_bytes: u64,
    /// Route changes for the peer wait in the RIB, not yet encoded.
    pub export_pending: bool,
    /// When everything queued for the peer was last written; `None` until the first time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drained_at: Option<Timestamp>,
}

/// Message counters by type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageCounts {
    /// OPEN messages.
    pub open: u64,
    /// UPDATE messages.
    pub update: u64,
    /// NOTIFICATION messages.
    pub notification: u64,
    /// KEEPALIVE messages.
    pub keepalive: u64,
    /// ROUTE-REFRESH messages.
    pub route_refresh: u64,
}

impl MessageCounts {
    /// All messages.
    pub fn total(&self) -> u64 {
        self.open + self.update + self.notification + self.keepalive + self.route_refresh
    }
}

/// One prefix in the Loc-RIB with its paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStatus {
    /// The prefix.
    pub prefix: IpNet,
    /// Its paths, best first.
    pub paths: Vec<PathStatus>,
}

/// One path of a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStatus {
    /// Where the path comes from.
    pub source: RouteSource,
    /// Next hops (several for ECMP), with the interface when resolved.
    pub next_hops: Vec<NextHopStatus>,
    /// AS_PATH segments.
    pub as_path: Vec<AsPathSegment>,
    /// ORIGIN.
    pub origin: Origin,
    /// LOCAL_PREF, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
    /// MULTI_EXIT_DISC, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub med: Option<u32>,
    /// Standard communities (RFC 1997) as 32-bit values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<u32>,
    /// Selected as best path.
    pub best: bool,
    /// Part of the multipath (ECMP) set.
    pub multipath: bool,
    /// Kept from a restarting peer (RFC 4724 §4.2).
    pub stale: bool,
    /// When the path was learned or last changed.
    pub since: Timestamp,
}

impl PathStatus {
    /// The last AS of the AS_PATH, when any (BIRD prints it in `show route`).
    pub fn origin_as(&self) -> Option<u32> {
        self.as_path.iter().rev().find_map(|s| match s {
            AsPathSegment::Sequence(v) => v.last().copied(),
            AsPathSegment::Set(_) => None,
        })
    }

    /// The AS_PATH as text: sequences space-separated, sets in braces.
    pub fn as_path_text(&self) -> String {
        let parts: Vec<String> = self
            .as_path
            .iter()
            .map(|s| match s {
                AsPathSegment::Sequence(v) => join(v, " "),
                AsPathSegment::Set(v) => format!("{{{}}}", join(v, ",")),
            })
            .collect();
        parts.join(" ")
    }

    /// Communities as `high:low`, space-separated.
    pub fn communities_text(&self) -> String {
        let parts: Vec<String> = self
            .communities
            .iter()
            .map(|c| format!("{}:{}", c >> 16, c & 0xffff))
            .collect();
        parts.join(" ")
    }
}

fn join(v: &[u32], sep: &str) -> String {
    let parts: Vec<String> = v.iter().map(u32::to_string).collect();
    parts.join(sep)
}

/// Where a path comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum RouteSource {
    /// Learned from a peer.
    Peer {
        /// The peer's protocol name.
        name: String,
        /// The peer's address.
        address: IpAddr,
    },
    /// Originated by this node (IPAM block, service range, borrowed address...).
    Local {
        /// Why it is originated, e.g. `ipam-block`.
        reason: String,
    },
}

/// One next hop of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextHopStatus {
    /// The next hop address.
    pub address: IpAddr,
    /// The interface it resolves through, when known (e.g. `eth0`, `tunl0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

/// An AS_PATH segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AsPathSegment {
    /// AS_SEQUENCE.
    Sequence(Vec<u32>),
    /// AS_SET.
    Set(Vec<u32>),
}

/// ORIGIN (RFC 4271 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// IGP (`i`).
    Igp,
    /// EGP (`e`).
    Egp,
    /// INCOMPLETE (`?`).
    Incomplete,
}

impl Origin {
    /// The one-letter code BIRD and others print.
    pub fn letter(self) -> char {
        match self {
            Origin::Igp => 'i',
            Origin::Egp => 'e',
            Origin::Incomplete => '?',
        }
    }
}

/// RIB sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RibSummary {
    /// Prefixes in the Loc-RIB.
    pub prefixes: u64,
    /// Paths over all prefixes (Adj-RIB-In after policy).
    pub paths: u64,
    /// Distinct interned attribute sets.
    pub attribute_sets: u64,
    /// Paths from peers that are stale (graceful restart).
    pub stale_paths: u64,
}

/// The kernel side: routes tern holds in the kernel and the last error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FibStatus {
    /// The desired routes (computed from the RIB), when asked for with the routes.
    pub routes: Vec<KernelRoute>,
    /// When the kernel task last finished a pass leaving the kernel as desired (no route
    /// failing), as the kernel task measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<Timestamp>,
    /// The last kernel error, at the time it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<FibError>,
    /// Kernel errors since start (each refused route write, each time the tunnel device went
    /// missing while IP-in-IP routes were desired).
    pub errors_total: u64,
    /// Routes the kernel task wants in the kernel.
    #[serde(default)]
    pub desired: u64,
    /// tern's routes the kernel holds, by kind, as the kernel task counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed: Option<FibCounts>,
    /// Desired routes not in the kernel now.
    #[serde(default)]
    pub failing: u64,
    /// The IP-in-IP tunnel device routes use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_device: Option<String>,
}

/// A kernel programming error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FibError {
    /// When it happened.
    pub at: Timestamp,
    /// What failed, e.g. `add 10.65.2.0/26 via 10.0.0.2: Network is unreachable (os error 101)`.
    pub message: String,
}

impl FibStatus {
    /// Installed route counts by kind: the kernel task's counters when known, else counted
    /// from `routes`.
    pub fn counts(&self) -> FibCounts {
        if let Some(installed) = self.installed {
            return installed;
        }
        let mut c = FibCounts::default();
        for r in &self.routes {
            match &r.kind {
                KernelRouteKind::Blackhole => c.blackhole += 1,
                KernelRouteKind::Unicast(hops) if hops.len() > 1 => c.ecmp += 1,
                KernelRouteKind::Unicast(hops) if hops.iter().any(|h| h.via_tunnel) => {
                    c.tunnel += 1
                }
                KernelRouteKind::Unicast(_) => c.unicast += 1,
            }
        }
        c
    }
}

/// Kernel route counts by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FibCounts {
    /// `blackhole` routes (own blocks).
    pub blackhole: u64,
    /// Single next hop, no tunnel.
    pub unicast: u64,
    /// Single next hop through the IP-in-IP tunnel.
    pub tunnel: u64,
    /// Several next hops (ECMP).
    pub ecmp: u64,
}

impl FibCounts {
    /// All routes.
    pub fn total(&self) -> u64 {
        self.blackhole + self.unicast + self.tunnel + self.ecmp
    }

    /// `(kind name, count)` pairs, in a fixed order, for tables and metrics.
    pub fn by_kind(&self) -> [(&'static str, u64); 4] {
        [
            ("blackhole", self.blackhole),
            ("unicast", self.unicast),
            ("ipip", self.tunnel),
            ("ecmp", self.ecmp),
        ]
    }
}
