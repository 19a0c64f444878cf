//! The seam where BGPFilter rules are evaluated.
//!
//! The plan compiles each BGPPeer's `filters` (BGPFilter resources, in order) into typed rules;
//! the RIB only needs to ask "what does the first matching rule say about this route?". That
//! question is [`RouteFilter::evaluate`]. The RIB calls it first in both pipelines, and only for
//! explicit peers (never mesh peers, calico-behaviour.md §1):
//!
//! - [`FilterVerdict::Reject`]: the route is dropped (import) or not sent (export).
//! - [`FilterVerdict::Accept`]: the route is taken as is, after the rule's operations, and the
//!   rest of the pipeline is skipped (Calico emits `accept;` in BIRD, which ends the filter).
//! - [`FilterVerdict::NoMatch`]: fall through to Calico's defaults.
//!
//! The plan's compiled filter implements this trait; [`FilterRules`] is a plain typed rule list
//! with the same semantics, used by tests and by anyone who builds rules by hand.

use std::net::IpAddr;

use ipnet::IpNet;

use super::Community;
use crate::rib::attrs::RouteAttrs;
use crate::rib::peer::PeerType;

/// The route as a BGPFilter rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct FilterRoute<'a> {
    /// Destination prefix.
    pub prefix: IpNet,
    /// Its attributes (communities, AS_PATH, LOCAL_PREF...).
    pub attrs: &'a RouteAttrs,
    /// `None` for locally originated routes; the learning peer's type otherwise
    /// (`source: RemotePeers` matches `Some`).
    pub learned_from: Option<PeerType>,
    /// The kernel interface of a kernel-learned route (`interface` glob).
    pub interface: Option<&'a str>,
    /// The route's priority (kernel metric; `2^31 - 1 - LOCAL_PREF` for BGP routes).
    pub priority: u32,
    /// The type of the peer the filter is applied to (the session being imported from or
    /// exported to).
    pub session_peer_type: PeerType,
    /// The session peer's address.
    pub session_peer: IpAddr,
}

/// One operation of an accepting BGPFilter rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FilterOperation {
    /// `addCommunity`.
    AddCommunity(Community),
    /// `prependASPath`: these ASNs, in order, in front of the path.
    PrependAsPath(Vec<u32>),
    /// `setPriority`: sets LOCAL_PREF to `2^31 - 1 - priority`.
    SetPriority(u32),
}

/// What the first matching rule says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterVerdict<'a> {
    /// No rule matched: continue with the defaults.
    NoMatch,
    /// Accept; `rule` identifies the rule (stable while the filter lives) and `operations` are
    /// applied in order.
    Accept {
        /// Index of the matching rule.
        rule: u32,
        /// Its operations.
        operations: &'a [FilterOperation],
    },
    /// Reject.
    Reject,
}

/// A compiled, ordered BGPFilter rule list for one direction and family.
pub trait RouteFilter: std::fmt::Debug + Send + Sync {
    /// The verdict of the first rule that matches `route`.
    fn evaluate(&self, route: &FilterRoute<'_>) -> FilterVerdict<'_>;
}

/// `matchOperator` of a CIDR match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CidrOperator {
    /// The prefix equals the CIDR.
    Equal,
    /// The prefix differs from the CIDR.
    NotEqual,
    /// The prefix lies inside the CIDR (equal included).
    In,
    /// The prefix does not lie inside the CIDR.
    NotIn,
}

/// Whether `prefix` satisfies `op cidr`.
pub fn cidr_matches(op: CidrOperator, cidr: &IpNet, prefix: &IpNet) -> bool {
    match op {
        CidrOperator::Equal => cidr == prefix,
        CidrOperator::NotEqual => cidr != prefix,
        CidrOperator::In => cidr.contains(prefix),
        CidrOperator::NotIn => !cidr.contains(prefix),
    }
}

/// One typed rule: every present match must hold.
#[derive(Debug, Clone, Default)]
pub struct FilterRule {
    /// `cidr` + `matchOperator`.
    pub cidr: Option<(CidrOperator, IpNet)>,
    /// `prefixLength{min,max}`.
    pub prefix_length: Option<(u8, u8)>,
    /// `source: RemotePeers`: only routes learned from peers.
    pub remote_peers_only: bool,
    /// `interface`: a glob with `*`.
    pub interface: Option<String>,
    /// `peerType`.
    pub peer_type: Option<PeerType>,
    /// `communities.values[0]`.
    pub community: Option<Community>,
    /// `asPathPrefix`.
    pub as_path_prefix: Vec<u32>,
    /// `priority`.
    pub priority: Option<u32>,
    /// `action`: true = Accept.
    pub accept: bool,
    /// `operations` (Accept only).
    pub operations: Vec<FilterOperation>,
}

impl FilterRule {
    /// Whether every match of the rule holds for `route`.
    pub fn matches(&self, route: &FilterRoute<'_>) -> bool {
        if let Some((op, cidr)) = &self.cidr
            && !cidr_matches(*op, cidr, &route.prefix)
        {
            return false;
        }
        if let Some((min, max)) = self.prefix_length
            && !(min..=max).contains(&route.prefix.prefix_len())
        {
            return false;
        }
        if self.remote_peers_only && route.learned_from.is_none() {
            return false;
        }
        if let Some(glob) = &self.interface
            && !route.interface.is_some_and(|i| glob_matches(glob, i))
        {
            return false;
        }
        if let Some(t) = self.peer_type
            && t != route.session_peer_type
        {
            return false;
        }
        if let Some(c) = self.community
            && !c.is_in(route.attrs)
        {
            return false;
        }
        if !route.attrs.as_path_starts_with(&self.as_path_prefix) {
            return false;
        }
        if let Some(p) = self.priority
            && p != route.priority
        {
            return false;
        }
        true
    }
}

/// An ordered rule list: first match wins.
#[derive(Debug, Clone, Default)]
pub struct FilterRules(pub Vec<FilterRule>);

impl RouteFilter for FilterRules {
    fn evaluate(&self, route: &FilterRoute<'_>) -> FilterVerdict<'_> {
        for (i, rule) in self.0.iter().enumerate() {
            if rule.matches(route) {
                return if rule.accept {
                    FilterVerdict::Accept {
                        rule: i as u32,
                        operations: &rule.operations,
                    }
                } else {
                    FilterVerdict::Reject
                };
            }
        }
        FilterVerdict::NoMatch
    }
}

/// A `*` glob as BIRD's `~` on strings: `*` matches any run of characters.
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let parts: Vec<&str> = glob.split('*').collect();
    if parts.len() == 1 {
        return glob == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rib::attrs::Origin;
    use std::net::Ipv4Addr;

    fn route<'a>(prefix: &str, attrs: &'a RouteAttrs) -> FilterRoute<'a> {
        FilterRoute {
            prefix: prefix.parse().unwrap(),
            attrs,
            learned_from: Some(PeerType::Ebgp),
            interface: None,
            priority: 1024,
            session_peer_type: PeerType::Ebgp,
            session_peer: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        }
    }

    #[test]
    fn glob_is_birds_star_match() {
        assert!(glob_matches("*.cali", "eth0.cali"));
        assert!(glob_matches("bpf*.cali", "bpfout.cali"));
        assert!(!glob_matches("bpf*.cali", "eth0.cali"));
        assert!(glob_matches("tunl0", "tunl0"));
        assert!(!glob_matches("tunl0", "tunl01"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b*c", "acb"));
    }

    #[test]
    fn each_cidr_operator() {
        let cidr: IpNet = "10.0.0.0/16".parse().unwrap();
        let inside: IpNet = "10.0.1.0/24".parse().unwrap();
        let outside: IpNet = "10.1.0.0/24".parse().unwrap();
        assert!(cidr_matches(CidrOperator::Equal, &cidr, &cidr));
        assert!(!cidr_matches(CidrOperator::Equal, &cidr, &inside));
        assert!(cidr_matches(CidrOperator::NotEqual, &cidr, &inside));
        assert!(cidr_matches(CidrOperator::In, &cidr, &inside));
        assert!(cidr_matches(CidrOperator::In, &cidr, &cidr));
        assert!(!cidr_matches(CidrOperator::In, &cidr, &outside));
        assert!(cidr_matches(CidrOperator::NotIn, &cidr, &outside));
    }

    #[test]
    fn first_matching_rule_wins_and_each_match_field_restricts() {
        let mut attrs = RouteAttrs::new(Origin::Igp, None).with_as_sequence([65001, 65002]);
        attrs.add_community(crate::rib::attrs::community(65000, 7));
        let rules = FilterRules(vec![
            FilterRule {
                prefix_length: Some((25, 32)),
                accept: false,
                ..Default::default()
            },
            FilterRule {
                cidr: Some((CidrOperator::In, "10.0.0.0/8".parse().unwrap())),
                as_path_prefix: vec![65001],
                community: Some(Community::Standard(crate::rib::attrs::community(65000, 7))),
                peer_type: Some(PeerType::Ebgp),
                remote_peers_only: true,
                priority: Some(1024),
                accept: true,
                operations: vec![FilterOperation::SetPriority(512)],
                ..Default::default()
            },
        ]);
        assert_eq!(
            rules.evaluate(&route("10.0.0.0/26", &attrs)),
            FilterVerdict::Reject
        );
        assert!(matches!(
            rules.evaluate(&route("10.0.0.0/24", &attrs)),
            FilterVerdict::Accept { rule: 1, operations } if operations == [FilterOperation::SetPriority(512)]
        ));
        assert_eq!(
            rules.evaluate(&route("11.0.0.0/24", &attrs)),
            FilterVerdict::NoMatch
        );
        // Each match field on its own turns the match off.
        let mut r = route("10.0.0.0/24", &attrs);
        r.learned_from = None;
        assert_eq!(rules.evaluate(&r), FilterVerdict::NoMatch);
        let mut r = route("10.0.0.0/24", &attrs);
        r.session_peer_type = PeerType::Ibgp;
        assert_eq!(rules.evaluate(&r), FilterVerdict::NoMatch);
        let mut r = route("10.0.0.0/24", &attrs);
        r.priority = 100;
        assert_eq!(rules.evaluate(&r), FilterVerdict::NoMatch);
        let other = RouteAttrs::new(Origin::Igp, None).with_as_sequence([65002]);
        assert_eq!(
            rules.evaluate(&route("10.0.0.0/24", &other)),
            FilterVerdict::NoMatch
        );
        let iface = FilterRules(vec![FilterRule {
            interface: Some("*.cali".into()),
            accept: false,
            ..Default::default()
        }]);
        let mut r = route("10.0.0.0/24", &attrs);
        assert_eq!(iface.evaluate(&r), FilterVerdict::NoMatch);
        r.interface = Some("vm1.cali");
        assert_eq!(iface.evaluate(&r), FilterVerdict::Reject);
    }
}
