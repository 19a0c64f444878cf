//! What the RIB knows about a peer: its identity, role and negotiated session facts.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ipnet::IpNet;

use super::policy::filter::RouteFilter;

/// A peer's handle inside the RIB, chosen by the daemon (e.g. an index into its peer list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u32);

/// Internal or external peering (RFC 4271 §3: internal = same AS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerType {
    /// Same AS.
    Ibgp,
    /// Different AS.
    Ebgp,
}

/// Calico's `nextHopMode` (with `keepOriginalNextHop: true` mapping to `Keep`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NextHopMode {
    /// BIRD's default: iBGP and reflected routes keep their next hop, eBGP rewrites to self.
    #[default]
    Auto,
    /// Always rewrite the next hop to the session's local address.
    SelfAddress,
    /// Never rewrite a received next hop (locally originated routes still carry the local address).
    Keep,
}

impl From<crate::model::NextHopMode> for NextHopMode {
    fn from(mode: crate::model::NextHopMode) -> Self {
        match mode {
            crate::model::NextHopMode::Auto => NextHopMode::Auto,
            crate::model::NextHopMode::SelfMode => NextHopMode::SelfAddress,
            crate::model::NextHopMode::Keep => NextHopMode::Keep,
        }
    }
}

/// The unicast address families a session negotiated. RFC 4760 §5: a family is used on a
/// session only when both sides advertised it, so routes of any other family are never exported
/// on it (nor put in its export group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Families {
    /// IPv4 unicast negotiated.
    pub ipv4: bool,
    /// IPv6 unicast negotiated.
    pub ipv6: bool,
}

impl Families {
    /// IPv4 and IPv6 unicast.
    pub const BOTH: Families = Families {
        ipv4: true,
        ipv6: true,
    };

    /// The unicast families among those both sides announced.
    pub fn negotiated(families: &[bgp_proto::Family]) -> Families {
        Families {
            ipv4: families.contains(&bgp_proto::Family::IPV4_UNICAST),
            ipv6: families.contains(&bgp_proto::Family::IPV6_UNICAST),
        }
    }

    /// Whether routes for `prefix` may be sent on the session.
    pub fn carries(&self, prefix: &IpNet) -> bool {
        if prefix.addr().is_ipv6() {
            self.ipv6
        } else {
            self.ipv4
        }
    }
}

/// What the OPEN exchange of an established session settled, as the RIB needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionFacts {
    /// The peer's BGP Identifier.
    pub router_id: Ipv4Addr,
    /// Our address on the session (the socket's local address).
    pub local_address: IpAddr,
    /// ADD-PATH: we may send several paths per prefix.
    pub add_path_send: bool,
    /// ADD-PATH: the peer sends path ids.
    pub add_path_receive: bool,
    /// The peer negotiated graceful restart.
    pub graceful_restart: bool,
    /// The unicast families both sides advertised.
    pub families: Families,
}

/// Where a peer sits in the reflection topology (RFC 4456 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReflectionRole {
    /// An ordinary iBGP or eBGP neighbour.
    NonClient,
    /// An RR client of ours (we are its reflector).
    Client,
}

/// Everything the RIB needs to know about an established session.
///
/// Built by the daemon from the plan's peering and the negotiated OPEN.
#[derive(Debug, Clone)]
pub struct PeerSession {
    /// The peer's address (last tie-break of RFC 4271 §9.1.2.2 g)).
    pub address: IpAddr,
    /// Our address on this session: the next hop of locally originated routes and of
    /// next-hop-self (Calico's session source address, the node's IP).
    pub local_address: IpAddr,
    /// The peer's BGP Identifier from its OPEN.
    pub router_id: Ipv4Addr,
    /// Our AS on this session (`localASNumber` overrides the node's AS).
    pub local_as: u32,
    /// The peer's AS.
    pub peer_as: u32,
    /// Client or not, when we are a route reflector.
    pub reflection: ReflectionRole,
    /// Next-hop rewriting towards this peer.
    pub next_hop_mode: NextHopMode,
    /// `numAllowedLocalASNumbers`: how often our AS may appear in a received AS_PATH.
    pub allow_local_as: u8,
    /// ADD-PATH: we may send several paths per prefix (RFC 7911 §4 negotiated "send").
    pub add_path_send: bool,
    /// ADD-PATH: the peer sends path ids (RFC 7911 negotiated "receive").
    pub add_path_receive: bool,
    /// The peer negotiated the graceful restart capability on this session (RFC 4724 §3). When a
    /// peer with stale routes comes back without it, its stale routes are flushed at once.
    pub graceful_restart: bool,
    /// Whether this is a node-to-node mesh peering (BGPFilters never apply to mesh peers).
    pub mesh: bool,
    /// The unicast families negotiated: nothing of another family is sent (RFC 4760 §5).
    pub families: Families,
    /// Compiled BGPFilter import rules, in the BGPPeer's `filters` order (explicit peers only).
    pub import_filter: Option<Arc<dyn RouteFilter>>,
    /// Compiled BGPFilter export rules (explicit peers only).
    pub export_filter: Option<Arc<dyn RouteFilter>>,
    /// The `filters` names, used to decide which peers can share an export group.
    pub filter_names: Vec<String>,
    /// IGP cost to reach next hops through this peer, where known (RFC 4271 §9.1.2.2 e)).
    pub igp_cost: Option<u32>,
}

impl PeerSession {
    /// A plain session with defaults: Auto next hop, non-client, no ADD-PATH, mesh, IPv4 and
    /// IPv6 unicast negotiated.
    pub fn new(
        address: IpAddr,
        local_address: IpAddr,
        router_id: Ipv4Addr,
        local_as: u32,
        peer_as: u32,
    ) -> Self {
        Self {
            address,
            local_address,
            router_id,
            local_as,
            peer_as,
            reflection: ReflectionRole::NonClient,
            next_hop_mode: NextHopMode::Auto,
            allow_local_as: 0,
            add_path_send: false,
            add_path_receive: false,
            graceful_restart: true,
            mesh: true,
            families: Families::BOTH,
            import_filter: None,
            export_filter: None,
            filter_names: Vec::new(),
            igp_cost: None,
        }
    }

    /// The RIB's view of one of the plan's peerings once its session is established: role,
    /// next-hop mode, allow-local-as and BGPFilters from the plan, the rest from the session.
    pub fn from_peering(
        peering: &crate::plan::Peering,
        plan: &crate::plan::Plan,
        facts: &SessionFacts,
    ) -> Self {
        use super::policy::filter::PeerFilterChain;
        use crate::plan::filter::Direction;
        let mesh = peering.kind == crate::plan::PeeringKind::Mesh;
        let chain = |names: &[String], direction| -> Option<Arc<dyn RouteFilter>> {
            (!mesh && !names.is_empty()).then(|| {
                Arc::new(PeerFilterChain::from_plan(plan, names, direction)) as Arc<dyn RouteFilter>
            })
        };
        Self {
            address: peering.address,
            local_address: facts.local_address,
            router_id: facts.router_id,
            local_as: peering.local_as,
            peer_as: peering.peer_as,
            reflection: if peering.route_reflector_client {
                ReflectionRole::Client
            } else {
                ReflectionRole::NonClient
            },
            next_hop_mode: peering.next_hop.into(),
            allow_local_as: peering
                .allow_local_as
                .map_or(0, |n| u8::try_from(n).unwrap_or(u8::MAX)),
            add_path_send: facts.add_path_send,
            add_path_receive: facts.add_path_receive,
            graceful_restart: facts.graceful_restart,
            mesh,
            families: facts.families,
            import_filter: chain(&peering.import_filters, Direction::Import),
            export_filter: chain(&peering.export_filters, Direction::Export),
            filter_names: peering.export_filters.clone(),
            igp_cost: None,
        }
    }

    /// iBGP or eBGP.
    pub fn peer_type(&self) -> PeerType {
        if self.peer_as == self.local_as {
            PeerType::Ibgp
        } else {
            PeerType::Ebgp
        }
    }

    /// Whether BGPFilters apply (explicit peers only, calico-behaviour.md §1).
    pub fn filters_apply(&self) -> bool {
        !self.mesh
    }

    /// The facts that decide what this peer is sent: peers with equal keys share one export
    /// group (computed once, sent to many).
    pub fn export_key(&self) -> ExportKey {
        ExportKey {
            peer_type: self.peer_type(),
            local_as: self.local_as,
            peer_as: if self.peer_type() == PeerType::Ebgp {
                Some(self.peer_as)
            } else {
                None
            },
            local_address: self.local_address,
            reflection: self.reflection,
            next_hop_mode: self.next_hop_mode,
            add_path_send: self.add_path_send,
            families: self.families,
            filters: if self.filters_apply() {
                self.filter_names.clone()
            } else {
                Vec::new()
            },
        }
    }
}

/// What makes two peers' Adj-RIB-Out identical (see [`PeerSession::export_key`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExportKey {
    /// iBGP or eBGP.
    pub peer_type: PeerType,
    /// Our AS on the session (prepended towards eBGP).
    pub local_as: u32,
    /// The peer's AS for eBGP groups.
    pub peer_as: Option<u32>,
    /// The next hop we put on rewritten routes.
    pub local_address: IpAddr,
    /// RR client or not.
    pub reflection: ReflectionRole,
    /// Next-hop mode.
    pub next_hop_mode: NextHopMode,
    /// ADD-PATH send negotiated.
    pub add_path_send: bool,
    /// The unicast families negotiated: the group holds routes of these only.
    pub families: Families,
    /// BGPFilter names (explicit peers).
    pub filters: Vec<String>,
}
