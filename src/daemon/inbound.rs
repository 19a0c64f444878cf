//! A received UPDATE on its way into the RIB: the checks that need more than the codec knows
//! (the node's own addresses as next hops), the RIB update itself, and the peer's prefix limit
//! (RFC 4486). Pure: the supervisor (`io::daemon`) passes the node's addresses and the limits in,
//! and carries out the returned [`Inbound`] (stop the session, log).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use bgp_proto::attr::NextHop;
use bgp_proto::{Family, Rfc7606Action, UpdateIssue};

use crate::rib::{PeerId, Rib, RibFull, RouteUpdate};

/// What to do when a peer holds more paths of a family than its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxPrefixAction {
    /// Log a warning (once per crossing) and keep the session.
    Warn,
    /// Cease/1 with the RFC 4486 §4 data, then restart after `restart_after`.
    Restart,
}

/// One peer's maximum number of prefixes per family (RFC 4486 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPrefix {
    /// Paths allowed per family (IPv4 unicast, IPv6 unicast counted apart).
    pub limit: u32,
    /// Warn only, or stop the session.
    pub action: MaxPrefixAction,
    /// How long the session stays down after a stop before it is tried again.
    pub restart_after: Duration,
}

/// The limits of every peer: a default and per-address overrides.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MaxPrefixLimits {
    /// Applies to peers without an override; `None` = no limit.
    pub default: Option<MaxPrefix>,
    /// Per peer address; `None` = no limit for that peer.
    pub peers: BTreeMap<IpAddr, Option<MaxPrefix>>,
}

impl MaxPrefixLimits {
    /// The limit of the peer at `address`.
    pub fn for_peer(&self, address: IpAddr) -> Option<MaxPrefix> {
        match self.peers.get(&address) {
            Some(over) => *over,
            None => self.default,
        }
    }
}

/// The outcome of [`apply_update`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inbound {
    /// The UPDATE's routes whose next hop is one of the node's own addresses, turned into
    /// withdrawals (RFC 4271 §5.1.3, §6.3): how many.
    pub own_next_hop: usize,
    /// The RIB could not take the UPDATE (rejected whole, nothing changed).
    pub rib_full: Option<RibFull>,
    /// The peer went over its limit with this UPDATE: which family, the limit and the action.
    pub over_limit: Option<(Family, MaxPrefix)>,
}

/// Whether `next_hop` is one of `own` (the node's addresses).
fn is_own(next_hop: &NextHop, own: &[IpAddr]) -> bool {
    match *next_hop {
        NextHop::Ipv4(a) => own.contains(&IpAddr::V4(a)),
        NextHop::Ipv6 { global, link_local } => {
            own.contains(&IpAddr::V6(global))
                || link_local.is_some_and(|ll| own.contains(&IpAddr::V6(ll)))
        }
    }
}

/// The UPDATE's routes for the RIB, with the checks that need the node: a NEXT_HOP (or
/// MP_REACH_NLRI next hop) that is an address of this node makes the UPDATE treat-as-withdraw
/// (RFC 4271 §6.3: "semantically incorrect"; §5.1.3: the NEXT_HOP MUST NOT be the address of
/// the receiving speaker). Returns the routes and how many announcements were withdrawn so.
pub fn checked_routes(update: &mut bgp_proto::Update, own: &[IpAddr]) -> (RouteUpdate, usize) {
    let mut own_hop = None;
    if let Some(hop) = update.next_hop().filter(|_| !update.nlri.is_empty())
        && own.contains(&IpAddr::V4(hop))
    {
        own_hop = Some(hop.to_string());
    }
    if let Some(m) = update.mp_reach()
        && is_own(&m.next_hop, own)
    {
        own_hop = Some(format!("{:?}", m.next_hop));
    }
    let mut withdrawn = 0;
    if let Some(hop) = own_hop {
        withdrawn = update.announced().count();
        update.issues.push(UpdateIssue {
            action: Rfc7606Action::TreatAsWithdraw,
            attribute: Some(bgp_proto::iana::AttributeType::NextHop),
            family: None,
            offset: 0,
            reason: format!("next hop {hop} is an address of this node (RFC 4271 §5.1.3)"),
            notification: bgp_proto::Notification::update(
                bgp_proto::iana::UpdateErrorSubcode::InvalidNextHopAttribute,
                Vec::new(),
            ),
        });
    }
    (RouteUpdate::from_wire(update), withdrawn)
}

/// Applies a received UPDATE of `peer` (at `address`) to the RIB: the node checks of
/// [`checked_routes`], the RIB update, then the peer's prefix limit. `was_over` says which
/// families were already over the limit before (a warning is given once per crossing); it is
/// updated.
pub fn apply_update(
    rib: &mut Rib,
    peer: PeerId,
    mut update: bgp_proto::Update,
    own: &[IpAddr],
    limit: Option<MaxPrefix>,
    was_over: &mut [bool; 2],
) -> Inbound {
    let (routes, own_next_hop) = checked_routes(&mut update, own);
    let mut out = Inbound {
        own_next_hop,
        ..Inbound::default()
    };
    if let Err(full) = rib.update(peer, routes) {
        out.rib_full = Some(full);
        return out;
    }
    if let Some(limit) = limit {
        out.over_limit = over_limit(rib.received_counts(peer), limit, was_over);
    }
    out
}

/// RFC 4486 §4: the first family whose count now exceeds the limit and did not before.
fn over_limit(
    counts: [u32; 2],
    limit: MaxPrefix,
    was_over: &mut [bool; 2],
) -> Option<(Family, MaxPrefix)> {
    let mut crossed = None;
    for (i, family) in [Family::IPV4_UNICAST, Family::IPV6_UNICAST]
        .into_iter()
        .enumerate()
    {
        let over = counts[i] > limit.limit;
        if over && !was_over[i] && crossed.is_none() {
            crossed = Some((family, limit));
        }
        was_over[i] = over;
    }
    crossed
}

#[cfg(test)]
mod tests;
