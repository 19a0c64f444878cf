//! BGPFilter rules compiled to typed match/action rules, and their pure evaluation.
//!
//! Semantics follow the BIRD functions confd generates (`confd/pkg/resource/template`):
//! the rules of a direction and family are tried in order and the first match decides;
//! `peerType` guards a rule by whether the session is iBGP (peer AS = effective local AS);
//! `priority` compares against `local_pref = 2^31 - 1 - priority`; an accepting rule applies
//! its operations first. A route no rule matches falls through to the next filter of the peer,
//! then to Calico's default pipeline. Filters apply to explicit peers only, never mesh peers.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::model::{
    AsNumber, BgpFilter, Community, FilterAction, FilterPeerType, FilterRule, FilterSource,
    MatchOperator,
};

/// `2^31 - 1`: priority ↔ local preference conversion constant (`local_pref = MAX - priority`).
pub const PRIORITY_BASE: u32 = 2_147_483_647;

/// Converts a route priority (kernel metric) to a BGP local preference.
pub fn priority_to_local_pref(priority: u32) -> u32 {
    PRIORITY_BASE.saturating_sub(priority)
}

/// Direction a rule list applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    /// Routes received from the peer.
    Import,
    /// Routes sent to the peer.
    Export,
}

/// Whether a session is iBGP or eBGP (peer AS against the effective local AS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerType {
    /// Same AS.
    #[serde(rename = "iBGP")]
    Ibgp,
    /// Different AS.
    #[serde(rename = "eBGP")]
    Ebgp,
}

/// A BGPFilter with its four rule lists compiled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompiledFilter {
    /// BGPFilter name.
    pub name: String,
    /// IPv4 import rules.
    pub import_v4: Vec<CompiledRule>,
    /// IPv4 export rules.
    pub export_v4: Vec<CompiledRule>,
    /// IPv6 import rules.
    pub import_v6: Vec<CompiledRule>,
    /// IPv6 export rules.
    pub export_v6: Vec<CompiledRule>,
}

impl CompiledFilter {
    /// The rules for one direction and address family.
    pub fn rules(&self, direction: Direction, ipv6: bool) -> &[CompiledRule] {
        match (direction, ipv6) {
            (Direction::Import, false) => &self.import_v4,
            (Direction::Export, false) => &self.export_v4,
            (Direction::Import, true) => &self.import_v6,
            (Direction::Export, true) => &self.export_v6,
        }
    }
}

/// How a rule compares the route's prefix with its CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrefixMatch {
    /// The rule's CIDR.
    pub cidr: IpNet,
    /// The comparison.
    pub operator: MatchOperator,
    /// Prefix length range `{min,max}` when `prefixLength` is given (min clamped to the CIDR's
    /// length, max to the family's), matching BIRD's `[ cidr{min,max} ]`.
    pub length: Option<(u8, u8)>,
}

impl PrefixMatch {
    /// Whether `prefix` satisfies this match.
    pub fn matches(&self, prefix: &IpNet) -> bool {
        let inside = |p: &IpNet| match self.length {
            Some((min, max)) => {
                self.cidr.contains(&p.network()) && (min..=max).contains(&p.prefix_len())
            }
            None => p.prefix_len() >= self.cidr.prefix_len() && self.cidr.contains(&p.network()),
        };
        let equal = |p: &IpNet| match self.length {
            // `net = [ set ]`: with a length range, equality is membership of the set.
            Some(_) => inside(p),
            None => p.trunc() == self.cidr.trunc(),
        };
        match self.operator {
            MatchOperator::Equal => equal(prefix),
            MatchOperator::NotEqual => !equal(prefix),
            MatchOperator::In => inside(prefix),
            MatchOperator::NotIn => !inside(prefix),
        }
    }
}

/// The conditions of one rule; every present condition must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleMatch {
    /// Prefix comparison.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<PrefixMatch>,
    /// Route must be learned from a BGP peer.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub from_remote_peers: bool,
    /// Interface glob (`*` and `?`), BIRD `ifname ~ "glob"`; routes without an interface do not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Session type guard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_type: Option<PeerType>,
    /// Community the route must carry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub community: Option<Community>,
    /// AS_PATH must begin with these ASNs.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub as_path_prefix: Vec<u32>,
    /// Route priority must equal this (via local preference).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
}

/// What an accepting rule does to the route before accepting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Operation {
    /// Add a community (standard or large).
    AddCommunity(Community),
    /// Put these ASNs in front of AS_PATH, in this order.
    PrependAsPath(Vec<u32>),
    /// Set the priority (local preference = 2^31 - 1 - value).
    SetPriority(u32),
}

/// A compiled rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompiledRule {
    /// Conditions.
    #[serde(rename = "match")]
    pub matches: RuleMatch,
    /// Accept or Reject.
    pub action: FilterAction,
    /// Operations applied on Accept, in order.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub operations: Vec<Operation>,
}

/// The parts of a route a BGPFilter can look at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteView {
    /// Destination.
    pub prefix: Option<IpNet>,
    /// Learned from a BGP peer (BIRD `source = RTS_BGP`).
    pub from_bgp: bool,
    /// Interface of a kernel-learned route.
    pub interface: Option<String>,
    /// Communities.
    pub communities: Vec<Community>,
    /// AS_PATH, first AS first.
    pub as_path: Vec<u32>,
    /// Local preference, when defined.
    pub local_pref: Option<u32>,
}

impl RouteView {
    /// Applies operations as the BIRD statements would.
    pub fn apply(&mut self, operations: &[Operation]) {
        for op in operations {
            match op {
                Operation::AddCommunity(c) => {
                    if !self.communities.contains(c) {
                        self.communities.push(*c);
                    }
                }
                Operation::PrependAsPath(prefix) => {
                    let mut path = prefix.clone();
                    path.extend_from_slice(&self.as_path);
                    self.as_path = path;
                }
                Operation::SetPriority(p) => self.local_pref = Some(priority_to_local_pref(*p)),
            }
        }
    }
}

/// The outcome of the first matching rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Accept or Reject.
    pub action: FilterAction,
    /// Operations to apply (empty for Reject).
    pub operations: Vec<Operation>,
}

/// BIRD-style glob: `*` any run of characters, `?` one character.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            pi += 1;
            mark = ti;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl RuleMatch {
    /// Whether `route` on a session of `peer_type` satisfies every condition.
    pub fn matches(&self, route: &RouteView, peer_type: PeerType) -> bool {
        if self.peer_type.is_some_and(|t| t != peer_type) {
            return false;
        }
        if let Some(pm) = &self.prefix {
            match &route.prefix {
                Some(p) if pm.matches(p) => {}
                _ => return false,
            }
        }
        if self.from_remote_peers && !route.from_bgp {
            return false;
        }
        if let Some(glob) = &self.interface {
            match &route.interface {
                Some(i) if glob_matches(glob, i) => {}
                _ => return false,
            }
        }
        if self
            .community
            .is_some_and(|c| !route.communities.contains(&c))
        {
            return false;
        }
        if !route.as_path.starts_with(&self.as_path_prefix) {
            return false;
        }
        if let Some(p) = self.priority
            && route.local_pref != Some(priority_to_local_pref(p))
        {
            return false;
        }
        true
    }
}

/// Runs one rule list: the first matching rule's verdict, or `None` to fall through.
pub fn evaluate(rules: &[CompiledRule], route: &RouteView, peer_type: PeerType) -> Option<Verdict> {
    rules
        .iter()
        .find(|r| r.matches.matches(route, peer_type))
        .map(|r| Verdict {
            action: r.action,
            operations: if r.action == FilterAction::Accept {
                r.operations.clone()
            } else {
                Vec::new()
            },
        })
}

/// Runs a peer's filters in order (the first verdict wins), for one direction.
pub fn evaluate_chain<'a>(
    filters: impl IntoIterator<Item = &'a CompiledFilter>,
    direction: Direction,
    route: &RouteView,
    peer_type: PeerType,
) -> Option<Verdict> {
    let ipv6 = matches!(route.prefix, Some(IpNet::V6(_)));
    filters
        .into_iter()
        .find_map(|f| evaluate(f.rules(direction, ipv6), route, peer_type))
}

/// A BGPFilter field that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("BGPFilter {filter:?}: field {field}: {message}")]
pub struct FilterError {
    /// Filter name.
    pub filter: String,
    /// Field path, e.g. `spec.exportV4[0].cidr`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Compiles a BGPFilter resource, validating every rule.
pub fn compile(filter: &BgpFilter) -> Result<CompiledFilter, FilterError> {
    let name = filter.metadata.name.clone();
    let spec = &filter.spec;
    let list =
        |rules: &[FilterRule], field: &str, v6: bool| -> Result<Vec<CompiledRule>, FilterError> {
            rules
                .iter()
                .enumerate()
                .map(|(i, r)| compile_rule(r, v6).map_err(|(_, f, m)| (i, f, m)))
                .collect::<Result<Vec<_>, (usize, String, String)>>()
                .map_err(|(i, f, message)| FilterError {
                    filter: name.clone(),
                    field: format!("spec.{field}[{i}]{f}"),
                    message,
                })
        };
    Ok(CompiledFilter {
        name: name.clone(),
        import_v4: list(&spec.import_v4, "importV4", false)?,
        export_v4: list(&spec.export_v4, "exportV4", false)?,
        import_v6: list(&spec.import_v6, "importV6", true)?,
        export_v6: list(&spec.export_v6, "exportV6", true)?,
    })
}

fn as_list(asns: &[AsNumber]) -> Vec<u32> {
    asns.iter().map(|a| a.0).collect()
}

fn compile_rule(rule: &FilterRule, v6: bool) -> Result<CompiledRule, (usize, String, String)> {
    let err = |field: &str, message: String| (0usize, field.to_string(), message);
    let family_max: u8 = if v6 { 128 } else { 32 };
    let prefix = match (rule.cidr, rule.match_operator) {
        (Some(cidr), Some(operator)) => {
            if cidr.addr().is_ipv6() != v6 {
                return Err(err(
                    ".cidr",
                    format!("{cidr} is not an IPv{} prefix", if v6 { 6 } else { 4 }),
                ));
            }
            let length = match rule.prefix_length {
                Some(range) => {
                    for (f, v) in [
                        (".prefixLength.min", range.min),
                        (".prefixLength.max", range.max),
                    ] {
                        if v.is_some_and(|v| v > family_max) {
                            return Err(err(f, format!("must be at most {family_max}")));
                        }
                    }
                    let min = range.min.unwrap_or(0).max(cidr.prefix_len());
                    let max = range.max.unwrap_or(family_max).min(family_max);
                    Some((min, max))
                }
                None => None,
            };
            Some(PrefixMatch {
                cidr: cidr.trunc(),
                operator,
                length,
            })
        }
        (Some(_), None) => return Err(err(".matchOperator", "required with cidr".into())),
        (None, _) => None,
    };
    let community = match &rule.communities {
        None => None,
        Some(m) if m.values.len() == 1 => Some(m.values[0]),
        Some(_) => {
            return Err(err(
                ".communities.values",
                "exactly one value is supported".into(),
            ));
        }
    };
    if rule.interface.as_deref() == Some("") {
        return Err(err(".interface", "must not be empty".into()));
    }
    if let Some(p) = rule.priority {
        check_priority(p).map_err(|m| err(".priority", m))?;
    }
    let mut operations = Vec::new();
    for (i, op) in rule.operations.iter().enumerate() {
        let set = [
            op.add_community.is_some(),
            op.prepend_as_path.is_some(),
            op.set_priority.is_some(),
        ];
        if set.iter().filter(|&&b| b).count() != 1 {
            return Err(err(
                &format!(".operations[{i}]"),
                "exactly one of addCommunity, prependASPath, setPriority must be set".into(),
            ));
        }
        if let Some(a) = &op.add_community {
            operations.push(Operation::AddCommunity(a.value));
        } else if let Some(p) = &op.prepend_as_path {
            if p.prefix.is_empty() {
                return Err(err(
                    &format!(".operations[{i}].prependASPath.prefix"),
                    "must not be empty".into(),
                ));
            }
            operations.push(Operation::PrependAsPath(as_list(&p.prefix)));
        } else if let Some(s) = &op.set_priority {
            check_priority(s.value)
                .map_err(|m| err(&format!(".operations[{i}].setPriority.value"), m))?;
            operations.push(Operation::SetPriority(s.value));
        }
    }
    Ok(CompiledRule {
        matches: RuleMatch {
            prefix,
            from_remote_peers: rule.source == Some(FilterSource::RemotePeers),
            interface: rule.interface.clone(),
            peer_type: rule.peer_type.map(|t| match t {
                FilterPeerType::Ebgp => PeerType::Ebgp,
                FilterPeerType::Ibgp => PeerType::Ibgp,
            }),
            community,
            as_path_prefix: as_list(&rule.as_path_prefix),
            priority: rule.priority,
        },
        action: rule.action,
        operations,
    })
}

fn check_priority(p: u32) -> Result<(), String> {
    if (1..=2_147_483_646).contains(&p) {
        Ok(())
    } else {
        Err(format!("{p} is outside 1..=2147483646"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cluster, load_documents};

    fn filter(yaml_spec: &str) -> Result<CompiledFilter, FilterError> {
        let mut c = Cluster::default();
        let text = format!(
            "apiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata: {{name: f}}\nspec:\n{yaml_spec}"
        );
        load_documents(&mut c, std::path::Path::new("t.yaml"), &text, "kube-system");
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        compile(&c.bgp_filters["f"])
    }

    fn route(prefix: &str) -> RouteView {
        RouteView {
            prefix: Some(prefix.parse().unwrap()),
            ..Default::default()
        }
    }

    #[test]
    fn prefix_operators_and_length_ranges() {
        let pm = |op, len| PrefixMatch {
            cidr: "10.0.0.0/16".parse().unwrap(),
            operator: op,
            length: len,
        };
        let p = |s: &str| s.parse::<IpNet>().unwrap();
        assert!(pm(MatchOperator::Equal, None).matches(&p("10.0.0.0/16")));
        assert!(!pm(MatchOperator::Equal, None).matches(&p("10.0.1.0/24")));
        assert!(pm(MatchOperator::NotEqual, None).matches(&p("10.0.1.0/24")));
        assert!(pm(MatchOperator::In, None).matches(&p("10.0.1.0/24")));
        assert!(pm(MatchOperator::In, None).matches(&p("10.0.0.0/16")));
        assert!(!pm(MatchOperator::In, None).matches(&p("10.0.0.0/8")));
        assert!(pm(MatchOperator::NotIn, None).matches(&p("10.1.0.0/24")));
        assert!(pm(MatchOperator::In, Some((24, 26))).matches(&p("10.0.3.0/24")));
        assert!(!pm(MatchOperator::In, Some((24, 26))).matches(&p("10.0.3.0/27")));
        assert!(!pm(MatchOperator::In, Some((24, 26))).matches(&p("10.0.0.0/16")));
        assert!(pm(MatchOperator::NotIn, Some((24, 26))).matches(&p("10.0.3.0/28")));
    }

    #[test]
    fn globs() {
        assert!(glob_matches("eth*", "eth0"));
        assert!(glob_matches("*.cali", "vxlan.cali"));
        assert!(!glob_matches("*.cali", "vxlan.calico"));
        assert!(glob_matches("e?h0", "eth0"));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("eth?", "eth10"));
    }

    #[test]
    fn compile_clamps_lengths_and_rejects_bad_fields() {
        let f = filter(
            "  exportV4:\n  - {cidr: 10.0.0.0/16, matchOperator: In, prefixLength: {min: 8, max: 40}, action: Accept}\n",
        );
        assert!(
            f.unwrap_err()
                .field
                .ends_with("exportV4[0].prefixLength.max")
        );
        let f = filter("  exportV4:\n  - {cidr: 10.0.0.0/16, matchOperator: In, prefixLength: {min: 8}, action: Accept}\n").unwrap();
        assert_eq!(
            f.export_v4[0].matches.prefix.unwrap().length,
            Some((16, 32))
        );
        let e = filter("  importV6:\n  - {cidr: 10.0.0.0/16, matchOperator: In, action: Accept}\n")
            .unwrap_err();
        assert_eq!(e.field, "spec.importV6[0].cidr");
        let e =
            filter("  importV4:\n  - {action: Accept}\n  - {cidr: 10.0.0.0/16, action: Accept}\n")
                .unwrap_err();
        assert_eq!(
            e.to_string(),
            "BGPFilter \"f\": field spec.importV4[1].matchOperator: required with cidr"
        );
        let e = filter("  importV4:\n  - {action: Accept, operations: [{}]}\n").unwrap_err();
        assert_eq!(e.field, "spec.importV4[0].operations[0]");
        let e = filter("  importV4:\n  - {action: Accept, priority: 0}\n").unwrap_err();
        assert_eq!(e.field, "spec.importV4[0].priority");
    }

    #[test]
    fn first_match_wins_with_every_condition() {
        let f = filter(
            r#"  exportV4:
  - {peerType: iBGP, action: Reject}
  - {cidr: 10.0.0.0/8, matchOperator: In, prefixLength: {min: 24, max: 26}, source: RemotePeers,
     interface: "eth*", communities: {values: ["65000:1"]}, asPathPrefix: [65001, 65002],
     priority: 512, action: Accept,
     operations: [{addCommunity: {value: "65000:2"}}, {prependASPath: {prefix: [65100, 65101]}}, {setPriority: {value: 100}}]}
  - {cidr: 10.0.0.0/8, matchOperator: In, action: Reject}
"#,
        )
        .unwrap();
        let rules = &f.export_v4;
        let mut r = route("10.1.2.0/24");
        r.from_bgp = true;
        r.interface = Some("eth0".into());
        r.communities = vec!["65000:1".parse().unwrap()];
        r.as_path = vec![65001, 65002, 7];
        r.local_pref = Some(priority_to_local_pref(512));
        assert_eq!(
            evaluate(rules, &r, PeerType::Ibgp).unwrap().action,
            FilterAction::Reject
        );
        let v = evaluate(rules, &r, PeerType::Ebgp).unwrap();
        assert_eq!(v.action, FilterAction::Accept);
        assert_eq!(v.operations.len(), 3);
        let mut applied = r.clone();
        applied.apply(&v.operations);
        assert_eq!(applied.as_path, vec![65100, 65101, 65001, 65002, 7]);
        assert_eq!(applied.local_pref, Some(2_147_483_547));
        assert!(applied.communities.contains(&"65000:2".parse().unwrap()));
        // Each condition, when violated, drops to the catch-all reject.
        let variants: Vec<fn(&mut RouteView)> = vec![
            |r| r.prefix = Some("10.1.2.0/27".parse().unwrap()),
            |r| r.from_bgp = false,
            |r| r.interface = Some("tunl0".into()),
            |r| r.interface = None,
            |r| r.communities.clear(),
            |r| r.as_path = vec![65002, 65001],
            |r| r.local_pref = None,
        ];
        for change in variants {
            let mut x = r.clone();
            change(&mut x);
            let v = evaluate(rules, &x, PeerType::Ebgp).unwrap();
            assert_eq!(v.action, FilterAction::Reject, "{x:?}");
            assert!(v.operations.is_empty());
        }
        // Outside every rule: fall through.
        assert_eq!(
            evaluate(rules, &route("192.168.0.0/24"), PeerType::Ebgp),
            None
        );
        assert_eq!(
            evaluate_chain([&f, &f], Direction::Import, &r, PeerType::Ebgp),
            None
        );
        assert!(evaluate_chain([&f], Direction::Export, &r, PeerType::Ebgp).is_some());
    }
}
