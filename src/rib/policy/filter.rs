//! The seam where BGPFilter rules are evaluated.
//!
//! The plan compiles each BGPFilter into typed rules ([`crate::plan::filter::CompiledFilter`]);
//! the RIB only needs to ask "what does the first matching rule of this peer's filters say about
//! this route?". That question is [`RouteFilter::evaluate`]. The RIB calls it first in both
//! pipelines, and only for explicit peers (never mesh peers, calico-behaviour.md §1):
//!
//! - [`FilterVerdict::Reject`]: the route is dropped (import) or not sent (export).
//! - [`FilterVerdict::Accept`]: the route is taken after the rule's operations, and the rest of
//!   the pipeline is skipped (Calico emits `accept;` in BIRD, which ends the filter).
//! - [`FilterVerdict::NoMatch`]: fall through to Calico's defaults.
//!
//! [`PeerFilterChain`] is the implementation over the plan's compiled filters: a BGPPeer's
//! `filters`, in order, for one direction; it matches with the plan's own
//! [`crate::plan::filter::RuleMatch::matches`], so the plan's rule semantics are the only ones.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::FilterAction;
pub use crate::plan::filter::Operation as FilterOperation;
use crate::plan::filter::{CompiledFilter, Direction, RouteView};
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
    /// exported to): what `peerType` matches.
    pub session_peer_type: PeerType,
    /// The session peer's address.
    pub session_peer: IpAddr,
}

/// What the first matching rule says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterVerdict<'a> {
    /// No rule matched: continue with the defaults.
    NoMatch,
    /// Accept; `rule` identifies the rule (stable while the filter lives) and `operations` are
    /// applied in order.
    Accept {
        /// Index of the matching rule across the chain.
        rule: u32,
        /// Its operations.
        operations: &'a [FilterOperation],
    },
    /// Reject.
    Reject,
}

/// A compiled, ordered BGPFilter rule list for one direction.
pub trait RouteFilter: std::fmt::Debug + Send + Sync {
    /// The verdict of the first rule that matches `route`.
    fn evaluate(&self, route: &FilterRoute<'_>) -> FilterVerdict<'_>;

    /// Whether a verdict can depend on the route's prefix (a rule matches on the CIDR, or on the
    /// priority, which for routes without LOCAL_PREF comes from the prefix's pool). When it
    /// cannot, the routes of one UPDATE (one attribute set) share one verdict per family, and
    /// the RIB evaluates the filter once per UPDATE instead of once per prefix.
    fn depends_on_prefix(&self) -> bool {
        true
    }
}

/// A peer's BGPFilters (in the BGPPeer's `filters` order) for one direction.
#[derive(Debug, Clone)]
pub struct PeerFilterChain {
    filters: Vec<CompiledFilter>,
    direction: Direction,
    /// What the rules look at, so that a route's view is only built as far as needed.
    needs: ViewNeeds,
}

/// Which parts of a route the chain's rules (of its direction, either family) read.
#[derive(Debug, Clone, Copy, Default)]
struct ViewNeeds {
    communities: bool,
    as_path: bool,
    prefix: bool,
}

impl PeerFilterChain {
    /// The chain of `filters` for `direction`.
    pub fn new(filters: Vec<CompiledFilter>, direction: Direction) -> Self {
        let mut needs = ViewNeeds::default();
        for rule in filters
            .iter()
            .flat_map(|f| [f.rules(direction, false), f.rules(direction, true)])
            .flatten()
        {
            let m = &rule.matches;
            needs.communities |= m.community.is_some();
            needs.as_path |= !m.as_path_prefix.is_empty();
            needs.prefix |= m.prefix.is_some() || m.priority.is_some();
        }
        Self {
            filters,
            direction,
            needs,
        }
    }

    /// The chain named by a peering's `import_filters` / `export_filters`, looked up in the
    /// plan's compiled filters (names the plan does not know are skipped: the plan reports them).
    pub fn from_plan(plan: &crate::plan::Plan, names: &[String], direction: Direction) -> Self {
        Self::new(
            names
                .iter()
                .filter_map(|n| plan.filters.get(n).cloned())
                .collect(),
            direction,
        )
    }
}

impl RouteFilter for PeerFilterChain {
    fn depends_on_prefix(&self) -> bool {
        self.needs.prefix
    }

    fn evaluate(&self, route: &FilterRoute<'_>) -> FilterVerdict<'_> {
        let view = route_view(route, self.needs);
        let peer_type = match route.session_peer_type {
            PeerType::Ibgp => crate::plan::filter::PeerType::Ibgp,
            PeerType::Ebgp => crate::plan::filter::PeerType::Ebgp,
        };
        let ipv6 = matches!(route.prefix, IpNet::V6(_));
        let rules = self
            .filters
            .iter()
            .flat_map(|f| f.rules(self.direction, ipv6).iter());
        for (i, rule) in rules.enumerate() {
            if rule.matches.matches(&view, peer_type) {
                return match rule.action {
                    FilterAction::Accept => FilterVerdict::Accept {
                        rule: u32::try_from(i).unwrap_or(u32::MAX),
                        operations: &rule.operations,
                    },
                    FilterAction::Reject => FilterVerdict::Reject,
                };
            }
        }
        FilterVerdict::NoMatch
    }
}

/// The plan's view of a route.
/// The route as the plan's rules see it; the communities and the AS_PATH (allocations) are only
/// collected when a rule of the chain reads them.
fn route_view(route: &FilterRoute<'_>, needs: ViewNeeds) -> RouteView {
    let a = route.attrs;
    let communities = if needs.communities {
        a.communities
            .iter()
            .map(|c| crate::model::Community::Standard(c.asn(), c.value()))
            .chain(a.large_communities.iter().map(|c| {
                crate::model::Community::Large(c.global_admin, c.local_data_1, c.local_data_2)
            }))
            .collect()
    } else {
        Vec::new()
    };
    RouteView {
        prefix: Some(route.prefix),
        from_bgp: route.learned_from.is_some(),
        interface: route.interface.map(str::to_owned),
        communities,
        as_path: if needs.as_path {
            a.as_path.asns().collect()
        } else {
            Vec::new()
        },
        // The plan compares `priority` through LOCAL_PREF (`2^31 - 1 - priority`), as BIRD does;
        // local routes carry theirs from their metric (see `origination`).
        local_pref: a.local_pref,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{Community, MatchOperator};
    use crate::plan::filter::{CompiledRule, PrefixMatch, RuleMatch};
    use crate::rib::attrs::Origin;
    use std::net::Ipv4Addr;

    /// A chain of one filter whose rules apply to both families and directions.
    pub(crate) fn chain(direction: Direction, rules: Vec<CompiledRule>) -> PeerFilterChain {
        PeerFilterChain::new(
            vec![CompiledFilter {
                name: "test".into(),
                import_v4: rules.clone(),
                export_v4: rules.clone(),
                import_v6: rules.clone(),
                export_v6: rules,
            }],
            direction,
        )
    }

    /// A rule with a CIDR match.
    pub(crate) fn cidr_rule(
        operator: MatchOperator,
        cidr: &str,
        action: FilterAction,
    ) -> CompiledRule {
        CompiledRule {
            matches: RuleMatch {
                prefix: Some(PrefixMatch {
                    cidr: cidr.parse().unwrap(),
                    operator,
                    length: None,
                }),
                ..RuleMatch::default()
            },
            action,
            operations: vec![],
        }
    }

    #[test]
    fn only_prefix_and_priority_rules_make_a_chain_prefix_dependent() {
        let accept_all = CompiledRule {
            matches: RuleMatch::default(),
            action: FilterAction::Accept,
            operations: vec![],
        };
        assert!(!chain(Direction::Import, vec![accept_all.clone()]).depends_on_prefix());
        let community = CompiledRule {
            matches: RuleMatch {
                community: Some(Community::Standard(65000, 1)),
                as_path_prefix: vec![65001],
                ..RuleMatch::default()
            },
            ..accept_all.clone()
        };
        assert!(!chain(Direction::Export, vec![community]).depends_on_prefix());
        let cidr = cidr_rule(MatchOperator::In, "10.0.0.0/8", FilterAction::Reject);
        assert!(chain(Direction::Import, vec![accept_all.clone(), cidr]).depends_on_prefix());
        let priority = CompiledRule {
            matches: RuleMatch {
                priority: Some(512),
                ..RuleMatch::default()
            },
            ..accept_all
        };
        assert!(chain(Direction::Import, vec![priority]).depends_on_prefix());
    }

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
    fn first_matching_rule_wins_and_each_match_field_restricts() {
        let mut attrs = RouteAttrs::new(Origin::Igp, None)
            .with_as_sequence([65001, 65002])
            .with_local_pref(crate::rib::policy::local_pref_from_priority(1024));
        attrs.add_community(crate::rib::attrs::community(65000, 7));
        let rules = chain(
            Direction::Export,
            vec![
                CompiledRule {
                    matches: RuleMatch {
                        prefix: Some(PrefixMatch {
                            cidr: "0.0.0.0/0".parse().unwrap(),
                            operator: MatchOperator::In,
                            length: Some((25, 32)),
                        }),
                        ..RuleMatch::default()
                    },
                    action: FilterAction::Reject,
                    operations: vec![],
                },
                CompiledRule {
                    matches: RuleMatch {
                        prefix: Some(PrefixMatch {
                            cidr: "10.0.0.0/8".parse().unwrap(),
                            operator: MatchOperator::In,
                            length: None,
                        }),
                        from_remote_peers: true,
                        peer_type: Some(crate::plan::filter::PeerType::Ebgp),
                        community: Some(Community::Standard(65000, 7)),
                        as_path_prefix: vec![65001],
                        priority: Some(1024),
                        interface: None,
                    },
                    action: FilterAction::Accept,
                    operations: vec![FilterOperation::SetPriority(512)],
                },
            ],
        );
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
        let other_priority = attrs.clone().with_local_pref(100);
        assert_eq!(
            rules.evaluate(&route("10.0.0.0/24", &other_priority)),
            FilterVerdict::NoMatch
        );
        let other = RouteAttrs::new(Origin::Igp, None).with_as_sequence([65002]);
        assert_eq!(
            rules.evaluate(&route("10.0.0.0/24", &other)),
            FilterVerdict::NoMatch
        );
        let no_community = RouteAttrs::new(Origin::Igp, None).with_as_sequence([65001]);
        assert_eq!(
            rules.evaluate(&route("10.0.0.0/24", &no_community)),
            FilterVerdict::NoMatch
        );
    }

    #[test]
    fn interface_globs_and_the_chain_order() {
        let attrs = RouteAttrs::new(Origin::Igp, None);
        let iface = CompiledRule {
            matches: RuleMatch {
                interface: Some("*.cali".into()),
                ..RuleMatch::default()
            },
            action: FilterAction::Reject,
            operations: vec![],
        };
        let c = chain(Direction::Import, vec![iface]);
        let mut r = route("10.0.0.0/24", &attrs);
        assert_eq!(
            c.evaluate(&r),
            FilterVerdict::NoMatch,
            "no interface, no match"
        );
        r.interface = Some("vm1.cali");
        assert_eq!(c.evaluate(&r), FilterVerdict::Reject);
        // Two filters: the first one's verdict wins; an unmatched first one falls through.
        let first = chain(
            Direction::Export,
            vec![cidr_rule(
                MatchOperator::Equal,
                "10.0.0.0/24",
                FilterAction::Accept,
            )],
        );
        let second = chain(
            Direction::Export,
            vec![cidr_rule(
                MatchOperator::In,
                "10.0.0.0/8",
                FilterAction::Reject,
            )],
        );
        let both =
            PeerFilterChain::new([first.filters, second.filters].concat(), Direction::Export);
        assert!(matches!(
            both.evaluate(&route("10.0.0.0/24", &attrs)),
            FilterVerdict::Accept { rule: 0, .. }
        ));
        assert_eq!(
            both.evaluate(&route("10.1.0.0/24", &attrs)),
            FilterVerdict::Reject
        );
    }
}
