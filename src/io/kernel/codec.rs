//! Translation between [`KernelRoute`]s and rtnetlink route messages.

use std::net::IpAddr;

use ipnet::IpNet;
use rtnetlink::packet_core::{
    NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkMessage,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHop,
    RouteNextHopFlags, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::fib::{KernelRoute, KernelRouteKind, NextHop};

/// The kernel's main routing table.
pub(super) const MAIN_TABLE: u32 = 254;
/// `RTPROT_REDIRECT`, `RTPROT_KERNEL`: routes no agent installed.
const RTPROT_REDIRECT: u8 = 1;
const RTPROT_KERNEL: u8 = 2;

/// One next hop as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ParsedHop {
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub onlink: bool,
}

/// A route message reduced to what tern looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ParsedRoute {
    pub prefix: IpNet,
    pub table: u32,
    pub protocol: u8,
    pub kind: RouteType,
    pub scope: RouteScope,
    pub metric: u32,
    pub hops: Vec<ParsedHop>,
}

impl ParsedRoute {
    /// Whether an agent (not the kernel itself, not an ICMP redirect) installed the route.
    pub fn installed_by_agent(&self) -> bool {
        !matches!(self.protocol, 0 | RTPROT_REDIRECT | RTPROT_KERNEL)
    }

    /// Whether the kernel made this route for an interface address (a connected subnet).
    pub fn is_interface_route(&self) -> bool {
        self.protocol == RTPROT_KERNEL && self.hops.iter().all(|hop| hop.gateway.is_none())
    }

    /// The first outgoing interface index.
    pub fn first_oif(&self) -> Option<u32> {
        self.hops.iter().find_map(|hop| hop.oif)
    }

    /// The route in tern's terms. A unicast route with a hop tern cannot express (no gateway)
    /// becomes a unicast route without hops, which never equals a desired route, so it is replaced.
    pub fn to_kernel_route(&self, tunnel_ifindex: Option<u32>) -> Option<KernelRoute> {
        let kind = match self.kind {
            RouteType::BlackHole => KernelRouteKind::Blackhole,
            RouteType::Unicast => {
                let mut hops = Vec::with_capacity(self.hops.len());
                for hop in &self.hops {
                    let Some(gateway) = hop.gateway else {
                        hops.clear();
                        break;
                    };
                    let via_tunnel = hop.onlink && hop.oif.is_some() && hop.oif == tunnel_ifindex;
                    hops.push(NextHop {
                        gateway,
                        via_tunnel,
                    });
                }
                KernelRouteKind::Unicast(hops)
            }
            _ => return None,
        };
        Some(
            KernelRoute {
                prefix: self.prefix,
                kind,
                metric: self.metric,
            }
            .normalized(),
        )
    }
}

fn address(addr: &RouteAddress) -> Option<IpAddr> {
    match addr {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// Parses an IPv4 or IPv6 route message; `None` for other families and malformed prefixes.
pub(super) fn parse_route(message: &RouteMessage) -> Option<ParsedRoute> {
    let header = &message.header;
    let unspecified: IpAddr = match header.address_family {
        AddressFamily::Inet => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        AddressFamily::Inet6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    let mut destination = unspecified;
    let mut table = u32::from(header.table);
    let mut metric = 0;
    let mut single = ParsedHop {
        gateway: None,
        oif: None,
        onlink: header.flags.contains(RouteFlags::Onlink),
    };
    let mut multipath: Option<Vec<ParsedHop>> = None;
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(addr) => destination = address(addr)?,
            RouteAttribute::Table(id) => table = *id,
            RouteAttribute::Priority(priority) => metric = *priority,
            RouteAttribute::Gateway(addr) => single.gateway = address(addr),
            RouteAttribute::Oif(index) => single.oif = Some(*index),
            RouteAttribute::MultiPath(hops) => {
                multipath = Some(hops.iter().map(parse_hop).collect());
            }
            _ => {}
        }
    }
    let prefix = IpNet::new(destination, header.destination_prefix_length).ok()?;
    let hops = match multipath {
        Some(hops) => hops,
        None if single.gateway.is_none() && single.oif.is_none() => Vec::new(),
        None => vec![single],
    };
    Some(ParsedRoute {
        prefix,
        table,
        protocol: header.protocol.into(),
        kind: header.kind,
        scope: header.scope,
        metric,
        hops,
    })
}

fn parse_hop(hop: &RouteNextHop) -> ParsedHop {
    let gateway = hop.attributes.iter().find_map(|attribute| match attribute {
        RouteAttribute::Gateway(addr) => address(addr),
        _ => None,
    });
    ParsedHop {
        gateway,
        oif: (hop.interface_index != 0).then_some(hop.interface_index),
        onlink: hop.flags.contains(RouteNextHopFlags::Onlink),
    }
}

fn family(prefix: &IpNet) -> AddressFamily {
    match prefix {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    }
}

// The netlink structs are `#[non_exhaustive]`: they can only be built from `Default`.
#[allow(clippy::field_reassign_with_default)]
fn header(prefix: &IpNet, protocol: u8) -> RouteHeader {
    let mut header = RouteHeader::default();
    header.address_family = family(prefix);
    header.destination_prefix_length = prefix.prefix_len();
    header.table = MAIN_TABLE as u8;
    header.protocol = RouteProtocol::from(protocol);
    header
}

#[allow(clippy::field_reassign_with_default)]
fn route_message(header: RouteHeader, attributes: Vec<RouteAttribute>) -> RouteMessage {
    let mut message = RouteMessage::default();
    message.header = header;
    message.attributes = attributes;
    message
}

/// `RTM_NEWROUTE` creating or replacing `route` (`NLM_F_CREATE | NLM_F_REPLACE`, like
/// `ip route replace`). Next hops marked `via_tunnel` need `tunnel_ifindex`.
pub(super) fn new_route_message(
    route: &KernelRoute,
    protocol: u8,
    tunnel_ifindex: u32,
) -> NetlinkMessage<RouteNetlinkMessage> {
    let mut message = route_message(header(&route.prefix, protocol), Vec::with_capacity(4));
    message.header.scope = RouteScope::Universe;
    message
        .attributes
        .push(RouteAttribute::Destination(route.prefix.network().into()));
    message
        .attributes
        .push(RouteAttribute::Priority(route.metric));
    match &route.kind {
        KernelRouteKind::Blackhole => message.header.kind = RouteType::BlackHole,
        KernelRouteKind::Unicast(hops) => {
            message.header.kind = RouteType::Unicast;
            if let [hop] = hops.as_slice() {
                message
                    .attributes
                    .push(RouteAttribute::Gateway(hop.gateway.into()));
                if hop.via_tunnel {
                    message.attributes.push(RouteAttribute::Oif(tunnel_ifindex));
                    message.header.flags |= RouteFlags::Onlink;
                }
            } else {
                let hops = hops
                    .iter()
                    .map(|hop| {
                        let mut next_hop = RouteNextHop::default();
                        if hop.via_tunnel {
                            next_hop.flags = RouteNextHopFlags::Onlink;
                            next_hop.interface_index = tunnel_ifindex;
                        }
                        next_hop.attributes = vec![RouteAttribute::Gateway(hop.gateway.into())];
                        next_hop
                    })
                    .collect();
                message.attributes.push(RouteAttribute::MultiPath(hops));
            }
        }
    }
    let mut request = NetlinkMessage::from(RouteNetlinkMessage::NewRoute(message));
    request.header.flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE;
    request
}

/// `RTM_DELROUTE` of tern's route with this prefix and metric (whatever its next hops).
pub(super) fn del_route_message(
    route: &KernelRoute,
    protocol: u8,
) -> NetlinkMessage<RouteNetlinkMessage> {
    let mut message = route_message(
        header(&route.prefix, protocol),
        vec![
            RouteAttribute::Destination(route.prefix.network().into()),
            RouteAttribute::Priority(route.metric),
        ],
    );
    message.header.scope = RouteScope::NoWhere;
    let mut request = NetlinkMessage::from(RouteNetlinkMessage::DelRoute(message));
    request.header.flags = NLM_F_REQUEST;
    request
}

/// A dump of every route of every family.
pub(super) fn dump_routes_message() -> NetlinkMessage<RouteNetlinkMessage> {
    let mut request = NetlinkMessage::from(RouteNetlinkMessage::GetRoute(RouteMessage::default()));
    request.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    request
}

/// A dump of every link.
pub(super) fn dump_links_message() -> NetlinkMessage<RouteNetlinkMessage> {
    let mut request = NetlinkMessage::from(RouteNetlinkMessage::GetLink(LinkMessage::default()));
    request.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    request
}

/// `ip route get <address>`: the kernel's own lookup.
pub(super) fn lookup_message(address: IpAddr) -> NetlinkMessage<RouteNetlinkMessage> {
    let prefix = IpNet::from(address);
    let mut message = RouteMessage::default();
    message.header.address_family = family(&prefix);
    message.header.destination_prefix_length = prefix.prefix_len();
    message
        .attributes
        .push(RouteAttribute::Destination(address.into()));
    let mut request = NetlinkMessage::from(RouteNetlinkMessage::GetRoute(message));
    request.header.flags = NLM_F_REQUEST;
    request
}

/// A link's index, name and whether it is up with carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ParsedLink {
    pub index: u32,
    pub name: String,
    pub up: bool,
}

pub(super) fn parse_link(message: &LinkMessage) -> Option<ParsedLink> {
    let name = message
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            LinkAttribute::IfName(name) => Some(name.clone()),
            _ => None,
        })?;
    let flags = message.header.flags;
    Some(ParsedLink {
        index: message.header.index,
        name,
        up: flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::LowerUp),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_core::NetlinkPayload;

    fn round_trip(route: KernelRoute) {
        let mut request = new_route_message(&route, 12, 7);
        request.finalize();
        let mut bytes = vec![0; request.buffer_len()];
        request.serialize(&mut bytes);
        let decoded = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes).unwrap();
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(message)) = decoded.payload
        else {
            panic!("not a NewRoute")
        };
        let parsed = parse_route(&message).unwrap();
        assert_eq!(parsed.protocol, 12);
        assert_eq!(parsed.table, MAIN_TABLE);
        assert_eq!(parsed.to_kernel_route(Some(7)), Some(route.normalized()));
    }

    fn hop(gateway: &str, via_tunnel: bool) -> NextHop {
        NextHop {
            gateway: gateway.parse().unwrap(),
            via_tunnel,
        }
    }

    #[test]
    fn every_kind_round_trips_through_a_route_message() {
        let prefix: IpNet = "10.1.2.0/26".parse().unwrap();
        round_trip(KernelRoute {
            prefix,
            kind: KernelRouteKind::Blackhole,
            metric: 1024,
        });
        round_trip(KernelRoute {
            prefix,
            kind: KernelRouteKind::Unicast(vec![hop("192.0.2.1", false)]),
            metric: 1024,
        });
        round_trip(KernelRoute {
            prefix,
            kind: KernelRouteKind::Unicast(vec![hop("192.0.2.1", true)]),
            metric: 7,
        });
        round_trip(KernelRoute {
            prefix,
            kind: KernelRouteKind::Unicast(vec![hop("192.0.2.1", true), hop("192.0.2.2", false)]),
            metric: 1024,
        });
        round_trip(KernelRoute {
            prefix: "fd00:1::/64".parse().unwrap(),
            kind: KernelRouteKind::Unicast(vec![hop("fd00::1", false), hop("fd00::2", false)]),
            metric: 1024,
        });
    }

    #[test]
    fn hops_without_gateway_never_equal_a_desired_route() {
        let parsed = ParsedRoute {
            prefix: "10.0.0.0/24".parse().unwrap(),
            table: MAIN_TABLE,
            protocol: 12,
            kind: RouteType::Unicast,
            scope: RouteScope::Link,
            metric: 0,
            hops: vec![ParsedHop {
                gateway: None,
                oif: Some(3),
                onlink: false,
            }],
        };
        assert_eq!(
            parsed.to_kernel_route(None).unwrap().kind,
            KernelRouteKind::Unicast(vec![])
        );
    }
}
