//! The daemon's pure glue: how the plan's peerings become session configurations, how the RIB's
//! best routes become kernel routes through the plan's pool rules, how negotiated session facts
//! and RIB paths become status snapshots, and when this node's own graceful restart is over.
//!
//! No tokio, no sockets, no clock: the async supervisor (`io::daemon`) calls these with the time
//! in hand. See `docs/ARCHITECTURE.md` (tasks and channels) for where each piece is used.

pub mod inbound;
pub mod recovery;

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use bgp_proto::capability::Capability;
use bgp_proto::iana::AddPathMode as WireAddPath;
use bgp_proto::message::Open;

use crate::config::Settings;
use crate::fib::{BestRoute, KernelRoute, NodeKernelContext, RouteOrigin, kernel_route_for};
use crate::plan::{PeeringKind, Plan, SecretStatus};
use crate::rib::{FibRoute, FibSource, LocalRouteKind, RouteAttrs};
use crate::session::{
    AddPathMode, GracefulRestartConfig, Password, PeerConfig, SessionInfo, TtlMode,
};
use crate::status;

pub use recovery::RestartRecovery;

/// Session timers and graceful-restart facts that come from tern's settings, not from Calico
/// resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDefaults {
    /// Hold time offered in OPEN.
    pub hold_time: Duration,
    /// Keepalive interval when the peering does not set one.
    pub keepalive_time: Option<Duration>,
    /// Delay before the first outgoing connection.
    pub connect_delay: Duration,
    /// ConnectRetry time.
    pub connect_retry: Duration,
    /// Restart time advertised when the peering does not set one.
    pub restart_time: Duration,
    /// As graceful-restart helper: how long, at most, a restarting peer's stale routes wait for
    /// its End-of-RIB once its session is back (`bgp.stale_routes_time`).
    pub stale_routes_time: Duration,
    /// This process restarted with routes left in the kernel and its restart is not over: set
    /// the R and F bits (RFC 4724 §3) in the OPENs it sends.
    pub restarting: bool,
    /// Maximum prefixes per peer (`[bgp.max_prefix]`).
    pub max_prefix: inbound::MaxPrefixLimits,
}

impl SessionDefaults {
    /// The defaults from the settings file.
    pub fn from_settings(settings: &Settings, restarting: bool) -> Self {
        let b = &settings.bgp;
        SessionDefaults {
            hold_time: Duration::from_secs(b.hold_time.into()),
            keepalive_time: (b.keepalive_time != 0)
                .then(|| Duration::from_secs(b.keepalive_time.into())),
            connect_delay: Duration::from_secs(b.connect_delay_time.into()),
            connect_retry: Duration::from_secs(b.connect_retry_time.into()),
            restart_time: Duration::from_secs(b.graceful_restart_time.into()),
            stale_routes_time: Duration::from_secs(b.stale_routes_time.into()),
            restarting,
            max_prefix: b.max_prefix.limits(),
        }
    }
}

/// Why a planned peering has no session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeeringBlocked {
    /// The TCP-MD5 secret cannot be read: fail closed (robustness §3), never fall back to no
    /// authentication.
    #[error(
        "TCP-MD5 password unavailable: {0}; session kept down (tern never peers without the configured password)"
    )]
    PasswordUnavailable(String),
    /// The secret is longer than the kernel accepts or empty.
    #[error("TCP-MD5 password must be 1 to 80 bytes; session kept down")]
    PasswordInvalid,
    /// The peer's address family has no address on this node (no router id / source for it).
    #[error("the router id is IPv4 only; IPv4 address missing")]
    NoRouterId,
}

/// The session configuration of one planned peering (the table in [`PeerConfig`]'s docs), or
/// why it must not run.
pub fn peer_config(
    peering: &crate::plan::Peering,
    plan: &Plan,
    defaults: &SessionDefaults,
) -> Result<PeerConfig, PeeringBlocked> {
    let mut c = PeerConfig::new(
        peering.address,
        peering.peer_as,
        peering.local_as,
        plan.router_id,
    );
    c.peer_port = peering.port;
    c.passive = peering.passive;
    c.source_address = peering.source_address;
    c.hold_time = defaults.hold_time;
    c.keepalive_time = peering
        .keepalive_time
        .map(|s| Duration::from_secs(s.into()))
        .or(defaults.keepalive_time)
        .filter(|k| defaults.hold_time.is_zero() || *k < defaults.hold_time);
    c.connect_delay = defaults.connect_delay;
    c.connect_retry = defaults.connect_retry;
    c.ttl = match peering.ttl {
        crate::plan::TtlMode::Security { hops } => TtlMode::Security { hops },
        crate::plan::TtlMode::Multihop { ttl } => TtlMode::Multihop(ttl),
    };
    c.add_path = AddPathMode::Both;
    c.route_refresh = true;
    let restart_time = peering
        .graceful_restart_time
        .map(|s| Duration::from_secs(s.into()))
        .unwrap_or(defaults.restart_time);
    c.graceful_restart = Some(GracefulRestartConfig {
        restart_time,
        restarting: defaults.restarting,
        forwarding_preserved: defaults.restarting,
        notification: true,
    });
    if let Some(password) = &peering.password {
        match (&password.status, &password.value) {
            (SecretStatus::Unavailable(e), _) => {
                return Err(PeeringBlocked::PasswordUnavailable(e.clone()));
            }
            (SecretStatus::Resolved, Some(value)) => {
                c.password =
                    Some(Password::new(value.0.clone()).ok_or(PeeringBlocked::PasswordInvalid)?);
            }
            (SecretStatus::Resolved, None) => {
                return Err(PeeringBlocked::PasswordUnavailable("no value".to_string()));
            }
        }
    }
    Ok(c)
}

/// The node facts the kernel decision needs, from the plan.
pub fn node_subnets(plan: &Plan) -> Vec<IpNet> {
    let mut subnets: Vec<IpNet> = plan.policy.own_subnets.clone();
    for a in [plan.ipv4_address, plan.ipv6_address].into_iter().flatten() {
        let net = a.trunc();
        if !subnets.contains(&net) {
            subnets.push(net);
        }
    }
    subnets
}

/// The node's own BGP addresses (the Node resource's `bgp.ipv4Address` / `ipv6Address`) that
/// are on no local interface, given the addresses the interfaces have: peers connect to them
/// and sessions are sourced from them, so those sessions cannot come up.
pub fn address_warnings(plan: &Plan, local: &[IpAddr]) -> Vec<String> {
    [plan.ipv4_address, plan.ipv6_address]
        .into_iter()
        .flatten()
        .map(|a| a.addr())
        .filter(|a| !local.contains(a))
        .map(|a| {
            format!(
                "Node {} BGP address {a} is on no local interface: peers cannot reach this node \
                 at it and sessions sourced from it cannot start",
                plan.node
            )
        })
        .collect()
}

/// Whether `prefix` lies inside one of the plan's service ranges (never installed from peers).
pub fn is_service_range(plan: &Plan, prefix: &IpNet) -> bool {
    let p = &plan.policy;
    p.service_cluster_ips
        .iter()
        .chain(&p.service_external_ips)
        .chain(&p.service_load_balancer_ips)
        .any(|r| r.contains(prefix))
}

/// The kernel route for a prefix's best route, through the plan's pool rules (calico-behaviour.md
/// §4): own blocks become blackholes; service ranges and kernel-learned routes are not installed
/// (the latter are in the kernel already); peers' routes follow the pool's encapsulation.
pub fn kernel_route(
    prefix: IpNet,
    route: &FibRoute,
    plan: &Plan,
    subnets: &[IpNet],
) -> Option<KernelRoute> {
    let origin = match &route.source {
        FibSource::Local(LocalRouteKind::Block) => RouteOrigin::OwnBlock,
        FibSource::Local(LocalRouteKind::Service | LocalRouteKind::Kernel { .. }) => return None,
        FibSource::Ibgp | FibSource::Ebgp => RouteOrigin::Peer {
            service_range: is_service_range(plan, &prefix),
        },
    };
    let mut kernel = kernel_route_for(
        &BestRoute {
            prefix,
            next_hops: &route.next_hops,
            local_pref: route.local_pref,
            origin,
        },
        &NodeKernelContext {
            pools: &plan.pool_kernel_rules,
            node_subnets: subnets,
        },
    )?;
    // The RIB knows the priority (block metric or LOCAL_PREF mapping with the normal priority).
    kernel.metric = route.metric;
    Some(kernel)
}

/// The interface a next hop resolves through: that of the most specific kernel route with an
/// interface containing it (a connected subnet, or a route another agent installed), as BIRD
/// prints `via <next hop> on <interface>`.
pub fn resolving_interface(
    interfaces: &std::collections::BTreeMap<IpNet, String>,
    next_hop: IpAddr,
) -> Option<String> {
    let max = if next_hop.is_ipv6() { 128 } else { 32 };
    (0..=max).rev().find_map(|len| {
        let net = IpNet::new(next_hop, len).ok()?.trunc();
        interfaces.get(&net).cloned()
    })
}

/// The status kind of a peering.
pub fn peer_kind(kind: PeeringKind) -> status::PeerKind {
    match kind {
        PeeringKind::Mesh => status::PeerKind::Mesh,
        PeeringKind::Global => status::PeerKind::Global,
        PeeringKind::Node => status::PeerKind::Node,
    }
}

/// A peer's status before anything happened to its session.
pub fn initial_peer_status(
    peering: &crate::plan::Peering,
    now: status::Timestamp,
) -> status::PeerStatus {
    status::PeerStatus {
        name: peering.name.clone(),
        kind: peer_kind(peering.kind),
        address: peering.address,
        port: peering.port,
        remote_as: peering.peer_as,
        local_as: peering.local_as,
        enabled: true,
        passive: peering.passive,
        route_reflector_client: peering.route_reflector_client,
        state: status::SessionState::Idle,
        since: now,
        last_error: None,
        session: None,
        peer_graceful_restart_active: false,
        prefixes: status::PrefixCounts::default(),
        messages_received: status::MessageCounts::default(),
        messages_sent: status::MessageCounts::default(),
        output: status::OutputStatus::default(),
        flaps: 0,
    }
}

/// The session state as status output names it.
pub fn session_state(state: crate::session::State) -> status::SessionState {
    use crate::session::State;
    match state {
        State::Idle => status::SessionState::Idle,
        State::Connect => status::SessionState::Connect,
        State::Active => status::SessionState::Active,
        State::OpenSent => status::SessionState::OpenSent,
        State::OpenConfirm => status::SessionState::OpenConfirm,
        State::Established => status::SessionState::Established,
    }
}

fn family(f: bgp_proto::Family) -> status::Family {
    if f == bgp_proto::Family::IPV4_UNICAST {
        status::Family::Ipv4Unicast
    } else if f == bgp_proto::Family::IPV6_UNICAST {
        status::Family::Ipv6Unicast
    } else {
        status::Family::Other {
            afi: u16::from(f.afi),
            safi: u8::from(f.safi),
        }
    }
}

/// The capabilities an OPEN announces, for status output.
pub fn capability_set(open: &Open) -> status::CapabilitySet {
    let mut set = status::CapabilitySet::default();
    let mut mp = false;
    for c in open.capabilities() {
        match c {
            Capability::Multiprotocol(f) => {
                mp = true;
                set.families.push(family(*f));
            }
            Capability::RouteRefresh => set.route_refresh = true,
            Capability::EnhancedRouteRefresh => set.enhanced_route_refresh = true,
            Capability::FourOctetAs(_) => set.four_octet_as = true,
            Capability::ExtendedMessage => set.extended_message = true,
            Capability::AddPath(families) => {
                for a in families {
                    let direction = match a.mode {
                        WireAddPath::Receive => status::AddPathDirection::Receive,
                        WireAddPath::Send => status::AddPathDirection::Send,
                        WireAddPath::Both => status::AddPathDirection::Both,
                        #[allow(unreachable_patterns)]
                        _ => status::AddPathDirection::None,
                    };
                    set.add_path.push(status::AddPath {
                        family: family(a.family),
                        direction,
                    });
                }
            }
            Capability::GracefulRestart(gr) => {
                set.graceful_restart = Some(status::GracefulRestartCapability {
                    restart_time_secs: gr.restart_time,
                    restarting: gr.restart_state(),
                    families: gr
                        .families
                        .iter()
                        .map(|f| status::GracefulRestartFamily {
                            family: family(f.family),
                            forwarding_preserved: f.forwarding_state(),
                        })
                        .collect(),
                });
            }
            _ => {}
        }
    }
    if !mp {
        // RFC 4760 §8: no multiprotocol capability = IPv4 unicast only.
        set.families.push(status::Family::Ipv4Unicast);
    }
    set
}

/// The status details of an Established session.
pub fn established_session(
    config: &PeerConfig,
    info: &SessionInfo,
    local_address: IpAddr,
) -> status::EstablishedSession {
    status::EstablishedSession {
        remote_router_id: info.peer_router_id,
        local_address,
        hold_time_secs: u16::try_from(info.hold_time.as_secs()).unwrap_or(u16::MAX),
        keepalive_secs: u16::try_from(info.keepalive_time.as_secs()).unwrap_or(u16::MAX),
        local_capabilities: capability_set(&crate::session::negotiate::local_open(config)),
        remote_capabilities: capability_set(&info.peer_open),
    }
}

/// A peer's last error from why its session went down.
pub fn peer_error(
    reason: &crate::session::DownReason,
    at: status::Timestamp,
) -> Option<status::PeerError> {
    use crate::session::DownReason;
    let kind = match reason {
        DownReason::NotificationSent(n) => status::PeerErrorKind::NotificationSent {
            notification: status::NotificationStatus::new(u8::from(n.code), n.subcode, &n.data),
        },
        DownReason::NotificationReceived(n) => status::PeerErrorKind::NotificationReceived {
            notification: status::NotificationStatus::new(u8::from(n.code), n.subcode, &n.data),
        },
        DownReason::TransportClosed => status::PeerErrorKind::Socket {
            message: reason.to_string(),
        },
        DownReason::PlannedRestart => return None,
        other => status::PeerErrorKind::Other {
            message: other.to_string(),
        },
    };
    Some(status::PeerError { at, kind })
}

/// One path for `show routes`.
pub fn path_status(
    attrs: &RouteAttrs,
    source: status::RouteSource,
    best: bool,
    multipath: bool,
    stale: bool,
    since: status::Timestamp,
) -> status::PathStatus {
    use bgp_proto::attr::SegmentType;
    status::PathStatus {
        source,
        next_hops: attrs
            .next_hop
            .map(|address| status::NextHopStatus {
                address,
                interface: None,
            })
            .into_iter()
            .collect(),
        as_path: attrs
            .as_path
            .segments
            .iter()
            .map(|s| match s.kind {
                SegmentType::Set | SegmentType::ConfedSet => {
                    status::AsPathSegment::Set(s.asns.clone())
                }
                _ => status::AsPathSegment::Sequence(s.asns.clone()),
            })
            .collect(),
        origin: match attrs.origin {
            bgp_proto::Origin::Igp => status::Origin::Igp,
            bgp_proto::Origin::Egp => status::Origin::Egp,
            bgp_proto::Origin::Incomplete => status::Origin::Incomplete,
        },
        local_pref: attrs.local_pref,
        med: attrs.med,
        communities: attrs.communities.iter().map(|c| c.0).collect(),
        best,
        multipath,
        stale,
        since,
    }
}

#[cfg(test)]
mod tests;
