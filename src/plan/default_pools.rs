//! The IP pools calico-node creates at install when the datastore has none
//! (`node/pkg/lifecycle/startup/startup.go` `configureIPPools`), from its environment:
//! `NO_DEFAULT_POOLS`, `CALICO_IPV4POOL_CIDR`, `_IPIP`, `_VXLAN`, `_BLOCK_SIZE`,
//! `_NAT_OUTGOING`, `_DISABLE_BGP_EXPORT`, `_NODE_SELECTOR` and the `CALICO_IPV6POOL_*`
//! equivalents. tern uses them as implicit pools, so that a datastore without IPPools behaves
//! as the cluster calico-node would have made.
//!
//! Rules, as calico-node's: per address family, a default pool is used only when the datastore
//! has no pool of that family; `NO_DEFAULT_POOLS=true` turns both off (and is an error together
//! with a CIDR variable); a CIDR of `none` turns that family off. IPv4 defaults to
//! `192.168.0.0/16`, or when that overlaps the node's address the first of `172.16.0.0/16` ..
//! `172.31.0.0/16` that does not (calico-node looks at every host address; tern knows the
//! node's). IPv6 with no CIDR: calico-node generates a random ULA `/48`, which tern cannot know;
//! tern then uses no IPv6 default pool (and says so when the node has an IPv6 address).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::{EncapMode, IpPoolSpec, Selector};

/// The environment variables calico-node reads for its default pools.
pub const VARIABLES: &[&str] = &[
    "NO_DEFAULT_POOLS",
    "CALICO_IPV4POOL_CIDR",
    "CALICO_IPV4POOL_IPIP",
    "CALICO_IPV4POOL_VXLAN",
    "CALICO_IPV4POOL_BLOCK_SIZE",
    "CALICO_IPV4POOL_NAT_OUTGOING",
    "CALICO_IPV4POOL_DISABLE_BGP_EXPORT",
    "CALICO_IPV4POOL_NODE_SELECTOR",
    "CALICO_IPV6POOL_CIDR",
    "CALICO_IPV6POOL_VXLAN",
    "CALICO_IPV6POOL_BLOCK_SIZE",
    "CALICO_IPV6POOL_NAT_OUTGOING",
    "CALICO_IPV6POOL_DISABLE_BGP_EXPORT",
    "CALICO_IPV6POOL_NODE_SELECTOR",
];

/// calico-node's default IPv4 pool.
pub const DEFAULT_IPV4_CIDR: &str = "192.168.0.0/16";
/// calico-node's names for its default pools.
pub const DEFAULT_IPV4_NAME: &str = "default-ipv4-ippool";
/// See [`DEFAULT_IPV4_NAME`].
pub const DEFAULT_IPV6_NAME: &str = "default-ipv6-ippool";

/// The default-pool variables as set in the environment (unset ones absent).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DefaultPoolEnv(pub BTreeMap<String, String>);

impl DefaultPoolEnv {
    /// Reads [`VARIABLES`] from `env`.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> DefaultPoolEnv {
        DefaultPoolEnv(
            VARIABLES
                .iter()
                .filter_map(|name| env(name).map(|v| ((*name).to_string(), v)))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }

    /// calico-node's `evaluateENVBool`: unset = `default`; set, anything but `false`, `0`,
    /// `no`, `n`, `f` (any case) is true.
    fn flag(&self, name: &str, default: bool) -> bool {
        match self.0.get(name) {
            None => default,
            Some(v) => !matches!(v.to_lowercase().as_str(), "false" | "0" | "no" | "n" | "f"),
        }
    }

    /// Checks every variable, as calico-node does before it creates anything (it exits on the
    /// first bad one); the error names the variable and the value.
    pub fn validate(&self) -> Result<(), String> {
        self.templates().map(|_| ())
    }

    fn templates(&self) -> Result<[Option<Template>; 2], String> {
        let v4_cidr = self.get("CALICO_IPV4POOL_CIDR");
        let v6_cidr = self.get("CALICO_IPV6POOL_CIDR");
        if self.get("NO_DEFAULT_POOLS").eq_ignore_ascii_case("true") {
            if !v4_cidr.is_empty() || !v6_cidr.is_empty() {
                return Err("NO_DEFAULT_POOLS is true and CALICO_IPV4POOL_CIDR or CALICO_IPV6POOL_CIDR is set: calico-node refuses this configuration".into());
            }
            return Ok([None, None]);
        }
        let v4 = if v4_cidr == "none" {
            None
        } else {
            Some(Template {
                name: DEFAULT_IPV4_NAME,
                cidr: cidr("CALICO_IPV4POOL_CIDR", v4_cidr, false)?,
                ipip: mode("CALICO_IPV4POOL_IPIP", self.get("CALICO_IPV4POOL_IPIP"))?,
                vxlan: mode("CALICO_IPV4POOL_VXLAN", self.get("CALICO_IPV4POOL_VXLAN"))?,
                block_size: block_size(
                    "CALICO_IPV4POOL_BLOCK_SIZE",
                    self.get("CALICO_IPV4POOL_BLOCK_SIZE"),
                    26,
                    20..=32,
                )?,
                nat_outgoing: self.flag("CALICO_IPV4POOL_NAT_OUTGOING", true),
                disable_bgp_export: self.flag("CALICO_IPV4POOL_DISABLE_BGP_EXPORT", false),
                node_selector: selector(
                    "CALICO_IPV4POOL_NODE_SELECTOR",
                    self.get("CALICO_IPV4POOL_NODE_SELECTOR"),
                )?,
            })
        };
        let v6 = if v6_cidr == "none" {
            None
        } else {
            Some(Template {
                name: DEFAULT_IPV6_NAME,
                cidr: cidr("CALICO_IPV6POOL_CIDR", v6_cidr, true)?,
                ipip: EncapMode::Never,
                vxlan: mode("CALICO_IPV6POOL_VXLAN", self.get("CALICO_IPV6POOL_VXLAN"))?,
                block_size: block_size(
                    "CALICO_IPV6POOL_BLOCK_SIZE",
                    self.get("CALICO_IPV6POOL_BLOCK_SIZE"),
                    122,
                    116..=128,
                )?,
                nat_outgoing: self.flag("CALICO_IPV6POOL_NAT_OUTGOING", false),
                disable_bgp_export: self.flag("CALICO_IPV6POOL_DISABLE_BGP_EXPORT", false),
                node_selector: selector(
                    "CALICO_IPV6POOL_NODE_SELECTOR",
                    self.get("CALICO_IPV6POOL_NODE_SELECTOR"),
                )?,
            })
        };
        Ok([v4, v6])
    }
}

#[derive(Debug, Clone, Copy)]
enum PoolCidr {
    /// Unset: IPv4 picks its default, IPv6 a random ULA (unknown to tern).
    Default,
    Given(IpNet),
}

#[derive(Debug, Clone)]
struct Template {
    name: &'static str,
    cidr: PoolCidr,
    ipip: EncapMode,
    vxlan: EncapMode,
    block_size: u8,
    nat_outgoing: bool,
    disable_bgp_export: bool,
    node_selector: Option<Selector>,
}

fn cidr(name: &str, value: &str, v6: bool) -> Result<PoolCidr, String> {
    if value.is_empty() {
        return Ok(PoolCidr::Default);
    }
    match value.parse::<IpNet>() {
        Ok(net) if net.addr().is_ipv6() == v6 => Ok(PoolCidr::Given(net.trunc())),
        _ => Err(format!(
            "{name} = '{value}' (invalid CIDR: expected an IPv{} network, e.g. {})",
            if v6 { 6 } else { 4 },
            if v6 {
                "fd00:10::/48"
            } else {
                DEFAULT_IPV4_CIDR
            }
        )),
    }
}

fn mode(name: &str, value: &str) -> Result<EncapMode, String> {
    match value.to_lowercase().as_str() {
        "" | "off" | "never" => Ok(EncapMode::Never),
        "crosssubnet" | "cross-subnet" => Ok(EncapMode::CrossSubnet),
        "always" => Ok(EncapMode::Always),
        _ => Err(format!(
            "{name} = '{value}' (unrecognized mode: expected Always, CrossSubnet or Never)"
        )),
    }
}

fn block_size(
    name: &str,
    value: &str,
    default: u8,
    range: std::ops::RangeInclusive<u8>,
) -> Result<u8, String> {
    if value.is_empty() {
        return Ok(default);
    }
    match value.trim().parse::<u8>() {
        Ok(size) if range.contains(&size) => Ok(size),
        _ => Err(format!(
            "{name} = '{value}' (invalid block size: expected {} to {})",
            range.start(),
            range.end()
        )),
    }
}

fn selector(name: &str, value: &str) -> Result<Option<Selector>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse::<Selector>()
        .map(Some)
        .map_err(|e| format!("{name} = '{value}' ({e})"))
}

/// calico-node's `findAvailableCIDR`: the default IPv4 pool unless it contains one of the
/// node's addresses, then the first `172.<16..31>.0.0/16` that does not.
fn available_ipv4_default(node_addresses: &[IpAddr]) -> IpNet {
    let overlaps = |net: &IpNet| node_addresses.iter().any(|a| net.contains(a));
    let preferred: IpNet = DEFAULT_IPV4_CIDR
        .parse()
        .unwrap_or_else(|_| IpNet::default());
    if !overlaps(&preferred) {
        return preferred;
    }
    (16..=31)
        .filter_map(|i| format!("172.{i}.0.0/16").parse::<IpNet>().ok())
        .find(|net| !overlaps(net))
        .unwrap_or(preferred)
}

/// A pool calico-node would have created, as tern uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImplicitPool {
    /// calico-node's name for it.
    pub name: String,
    /// The pool.
    pub spec: IpPoolSpec,
}

/// The implicit pools for a datastore whose pools are `existing`: one per address family that
/// has no pool, as calico-node creates them. A second value says what tern cannot reproduce
/// (the random IPv6 ULA pool) when the node has an IPv6 address.
pub fn implicit_pools(
    env: &DefaultPoolEnv,
    existing: &[IpNet],
    node_addresses: &[IpAddr],
) -> Result<(Vec<ImplicitPool>, Option<String>), String> {
    let [v4, v6] = env.templates()?;
    let has_v4 = existing.iter().any(|c| c.addr().is_ipv4());
    let has_v6 = existing.iter().any(|c| c.addr().is_ipv6());
    let mut pools = Vec::new();
    let mut unknown = None;
    for (template, present, v6) in [(v4, has_v4, false), (v6, has_v6, true)] {
        let Some(t) = template.filter(|_| !present) else {
            continue;
        };
        let cidr = match (t.cidr, v6) {
            (PoolCidr::Given(net), _) => net,
            (PoolCidr::Default, false) => available_ipv4_default(node_addresses),
            (PoolCidr::Default, true) => {
                if node_addresses.iter().any(IpAddr::is_ipv6) {
                    unknown = Some(
                        "no IPv6 IPPool and CALICO_IPV6POOL_CIDR is unset: calico-node would create \
                         a random ULA /48 pool, which tern cannot know; set CALICO_IPV6POOL_CIDR \
                         (or create the IPPool) for IPv6 pod routes"
                            .to_string(),
                    );
                }
                continue;
            }
        };
        pools.push(ImplicitPool {
            name: t.name.to_string(),
            spec: IpPoolSpec {
                cidr,
                vxlan_mode: t.vxlan,
                ipip_mode: t.ipip,
                nat_outgoing: t.nat_outgoing,
                disabled: false,
                disable_bgp_export: t.disable_bgp_export,
                block_size: Some(t.block_size),
                node_selector: t.node_selector,
                namespace_selector: None,
                allowed_uses: Vec::new(),
                assignment_mode: None,
                ipip: None,
            },
        });
    }
    Ok((pools, unknown))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> DefaultPoolEnv {
        DefaultPoolEnv(
            vars.iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        )
    }

    fn pools(e: &DefaultPoolEnv, existing: &[&str], addrs: &[&str]) -> Vec<ImplicitPool> {
        let existing: Vec<IpNet> = existing.iter().map(|c| c.parse().unwrap()).collect();
        let addrs: Vec<IpAddr> = addrs.iter().map(|a| a.parse().unwrap()).collect();
        implicit_pools(e, &existing, &addrs).unwrap().0
    }

    #[test]
    fn calico_nodes_defaults() {
        let p = pools(&env(&[]), &[], &["10.0.0.1"]);
        assert_eq!(p.len(), 1, "no IPv6 pool without a CIDR: {p:?}");
        let v4 = &p[0];
        assert_eq!(v4.name, "default-ipv4-ippool");
        assert_eq!(v4.spec.cidr.to_string(), "192.168.0.0/16");
        assert_eq!(v4.spec.block_size, Some(26));
        assert!(v4.spec.nat_outgoing);
        assert_eq!(
            (v4.spec.ipip_mode, v4.spec.vxlan_mode),
            (EncapMode::Never, EncapMode::Never)
        );
        // The default overlapping the node's address falls back to 172.16.0.0/16 and up.
        let p = pools(&env(&[]), &[], &["192.168.1.5", "172.16.0.9"]);
        assert_eq!(p[0].spec.cidr.to_string(), "172.17.0.0/16");
    }

    #[test]
    fn variables_set_the_pools_per_family() {
        let e = env(&[
            ("CALICO_IPV4POOL_CIDR", "10.244.0.0/16"),
            ("CALICO_IPV4POOL_IPIP", "CrossSubnet"),
            ("CALICO_IPV4POOL_BLOCK_SIZE", "24"),
            ("CALICO_IPV4POOL_NAT_OUTGOING", "false"),
            ("CALICO_IPV6POOL_CIDR", "fd00:244::/48"),
            ("CALICO_IPV6POOL_VXLAN", "always"),
        ]);
        let p = pools(&e, &[], &[]);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].spec.cidr.to_string(), "10.244.0.0/16");
        assert_eq!(p[0].spec.ipip_mode, EncapMode::CrossSubnet);
        assert_eq!(p[0].spec.block_size, Some(24));
        assert!(!p[0].spec.nat_outgoing);
        assert_eq!(p[1].name, "default-ipv6-ippool");
        assert_eq!(p[1].spec.vxlan_mode, EncapMode::Always);
        assert_eq!(p[1].spec.block_size, Some(122));
        assert!(!p[1].spec.nat_outgoing, "IPv6 NAT outgoing defaults off");
        // A family that has a pool in the datastore gets none.
        let p = pools(&e, &["10.9.0.0/16"], &[]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].name, "default-ipv6-ippool");
        // `none` turns a family off; NO_DEFAULT_POOLS both.
        let p = pools(&env(&[("CALICO_IPV4POOL_CIDR", "none")]), &[], &[]);
        assert!(p.is_empty());
        let p = pools(&env(&[("NO_DEFAULT_POOLS", "TRUE")]), &[], &[]);
        assert!(p.is_empty());
    }

    #[test]
    fn bad_variables_are_named_like_calico_node_refuses_them() {
        for (vars, wanted) in [
            (
                vec![
                    ("NO_DEFAULT_POOLS", "true"),
                    ("CALICO_IPV4POOL_CIDR", "10.0.0.0/8"),
                ],
                "NO_DEFAULT_POOLS",
            ),
            (
                vec![("CALICO_IPV4POOL_CIDR", "fd00::/48")],
                "CALICO_IPV4POOL_CIDR = 'fd00::/48'",
            ),
            (
                vec![("CALICO_IPV4POOL_IPIP", "sometimes")],
                "CALICO_IPV4POOL_IPIP = 'sometimes'",
            ),
            (
                vec![("CALICO_IPV4POOL_BLOCK_SIZE", "33")],
                "expected 20 to 32",
            ),
            (
                vec![("CALICO_IPV6POOL_BLOCK_SIZE", "64")],
                "expected 116 to 128",
            ),
        ] {
            let e = env(&vars).validate().unwrap_err();
            assert!(e.contains(wanted), "{e}");
        }
    }

    #[test]
    fn an_unknowable_random_ipv6_pool_is_said() {
        let (p, note) = implicit_pools(&env(&[]), &[], &["fd00::1".parse().unwrap()]).unwrap();
        assert_eq!(p.len(), 1);
        assert!(note.unwrap().contains("CALICO_IPV6POOL_CIDR"));
    }
}
