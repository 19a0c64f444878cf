//! Small value types used by Calico resources: AS numbers, durations, peer addresses, node
//! addresses, communities.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 4-octet AS number; parsed from a plain number (`64512`, `"64512"`) or dotted notation
/// (`"1.10"` = 1 × 65536 + 10, RFC 5396).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct AsNumber(pub u32);

impl FromStr for AsNumber {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some((high, low)) = s.split_once('.') {
            let high: u16 = high
                .parse()
                .map_err(|_| format!("invalid AS number {s:?}"))?;
            let low: u16 = low
                .parse()
                .map_err(|_| format!("invalid AS number {s:?}"))?;
            Ok(AsNumber((u32::from(high) << 16) | u32::from(low)))
        } else {
            s.parse()
                .map(AsNumber)
                .map_err(|_| format!("invalid AS number {s:?}"))
        }
    }
}

impl fmt::Display for AsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for AsNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for AsNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AsVisitor;
        impl Visitor<'_> for AsVisitor {
            type Value = AsNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an AS number (0..4294967295 or dotted a.b)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AsNumber, E> {
                u32::try_from(v)
                    .map(AsNumber)
                    .map_err(|_| E::custom(format!("AS number {v} out of range")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AsNumber, E> {
                u32::try_from(v)
                    .map(AsNumber)
                    .map_err(|_| E::custom(format!("AS number {v} out of range")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<AsNumber, E> {
                // YAML reads an unquoted `1.10` as the number 1.1: the digits after the dot are
                // lost, so no dotted value can be suggested from it.
                Err(E::custom(format!(
                    "{v} is a number with a fraction, not an AS number: write an integer, or dotted \
                     notation as a quoted string (asNumber: \"1.10\" is 1 x 65536 + 10; unquoted, \
                     YAML reads 1.10 as 1.1)"
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AsNumber, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(AsVisitor)
    }
}

/// A Kubernetes `metav1.Duration` (Go duration syntax: `120s`, `2m`, `1h30m`, `1.5s`), kept in
/// whole seconds rounded to nearest as confd does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DurationSecs(pub u32);

impl FromStr for DurationSecs {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid duration {s:?} (expected e.g. \"120s\", \"2m\", \"1h30m\")");
        let text = s.trim();
        if text == "0" {
            return Ok(DurationSecs(0));
        }
        if text.is_empty() {
            return Err(bad());
        }
        let mut rest = text;
        let mut total = 0f64;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(bad)?;
            if num_len == 0 {
                return Err(bad());
            }
            let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
            rest = &rest[num_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let scale = match &rest[..unit_len] {
                "ns" => 1e-9,
                "us" | "µs" | "μs" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return Err(bad()),
            };
            total += value * scale;
            rest = &rest[unit_len..];
        }
        let rounded = total.round();
        if !(0.0..=f64::from(u32::MAX)).contains(&rounded) {
            return Err(bad());
        }
        Ok(DurationSecs(rounded as u32))
    }
}

impl Serialize for DurationSecs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for DurationSecs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(de::Error::custom)
    }
}

/// A BGPPeer `peerIP`: `ip`, `ip:port` or `[v6]:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerAddress {
    /// The peer's address.
    pub ip: IpAddr,
    /// The explicit port, if any.
    pub port: Option<u16>,
}

impl FromStr for PeerAddress {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid peer address {s:?} (expected ip, ip:port or [ipv6]:port)");
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(PeerAddress { ip, port: None });
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let ip: IpAddr = host.parse().map_err(|_| bad())?;
        if ip.is_ipv6() && !s.starts_with('[') {
            return Err(bad());
        }
        let port: u16 = port.parse().map_err(|_| bad())?;
        Ok(PeerAddress {
            ip,
            port: Some(port),
        })
    }
}

impl fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ip, self.port) {
            (ip, None) => write!(f, "{ip}"),
            (IpAddr::V4(ip), Some(p)) => write!(f, "{ip}:{p}"),
            (IpAddr::V6(ip), Some(p)) => write!(f, "[{ip}]:{p}"),
        }
    }
}

impl<'de> Deserialize<'de> for PeerAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(de::Error::custom)
    }
}

impl Serialize for PeerAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A node's BGP address: an IP with the prefix length of its subnet (`10.0.0.1/24`); a bare IP
/// means a host prefix (libcalico-go `ParseCIDROrIP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeAddress(pub IpNet);

impl NodeAddress {
    /// The node's own address.
    pub fn ip(&self) -> IpAddr {
        self.0.addr()
    }
    /// The subnet the address lies in.
    pub fn subnet(&self) -> IpNet {
        self.0.trunc()
    }
}

impl FromStr for NodeAddress {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(NodeAddress(net));
        }
        s.parse::<IpAddr>()
            .map(|ip| NodeAddress(IpNet::from(ip)))
            .map_err(|_| format!("invalid address {s:?} (expected ip or ip/prefix)"))
    }
}

impl<'de> Deserialize<'de> for NodeAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(de::Error::custom)
    }
}

impl Serialize for NodeAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// A BGP community: standard `a:b` (RFC 1997) or large `a:b:c` (RFC 8092).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Community {
    /// A standard community `a:b` (each 16 bits).
    Standard(u16, u16),
    /// A large community `a:b:c` (each 32 bits).
    Large(u32, u32, u32),
}

impl FromStr for Community {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid community {s:?} (expected a:b or a:b:c)");
        let parts: Vec<&str> = s.trim().split(':').collect();
        match parts.as_slice() {
            [a, b] => Ok(Community::Standard(
                a.parse().map_err(|_| bad())?,
                b.parse().map_err(|_| bad())?,
            )),
            [a, b, c] => Ok(Community::Large(
                a.parse().map_err(|_| bad())?,
                b.parse().map_err(|_| bad())?,
                c.parse().map_err(|_| bad())?,
            )),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Community::Standard(a, b) => write!(f, "{a}:{b}"),
            Community::Large(a, b, c) => write!(f, "{a}:{b}:{c}"),
        }
    }
}

impl<'de> Deserialize<'de> for Community {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(de::Error::custom)
    }
}

impl Serialize for Community {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A boolean that the v1 CRD storage form writes as a string (`"true"`); accepts both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LooseBool(pub bool);

impl<'de> Deserialize<'de> for LooseBool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LooseBool;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false, \"true\" or \"false\"")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<LooseBool, E> {
                Ok(LooseBool(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LooseBool, E> {
                match v.to_ascii_lowercase().as_str() {
                    "true" => Ok(LooseBool(true)),
                    "false" | "" => Ok(LooseBool(false)),
                    _ => Err(E::custom(format!(
                        "expected \"true\" or \"false\", found {v:?}"
                    ))),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<LooseBool, E> {
                Ok(LooseBool(false))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Deserializes a label or annotation map whose values YAML may have typed as booleans or
/// numbers (`routeReflector: true`): Calico reads every label value as a string, so `true`
/// becomes `"true"` and `1` becomes `"1"`; a null value becomes `""`.
pub(crate) fn string_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct Scalar(String);
    impl<'de> Deserialize<'de> for Scalar {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Scalar;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a label value (a string, number or boolean)")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                    Ok(Scalar(v.to_string()))
                }
                fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                    Ok(Scalar(v.to_string()))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                    Ok(Scalar(v.to_string()))
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                    Ok(Scalar(v.to_string()))
                }
                fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                    Ok(Scalar(v.to_string()))
                }
                fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                    Ok(Scalar(String::new()))
                }
            }
            deserializer.deserialize_any(V)
        }
    }
    let map = Option::<BTreeMap<String, Scalar>>::deserialize(deserializer)?;
    Ok(map
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_numbers_plain_and_dotted() {
        assert_eq!("64512".parse::<AsNumber>().unwrap(), AsNumber(64512));
        assert_eq!("1.10".parse::<AsNumber>().unwrap(), AsNumber(65546));
        assert_eq!(
            "65535.65535".parse::<AsNumber>().unwrap(),
            AsNumber(u32::MAX)
        );
        assert!("65536.1".parse::<AsNumber>().is_err());
        assert!("x".parse::<AsNumber>().is_err());
        assert_eq!(
            serde_json::from_str::<AsNumber>("4200000000").unwrap(),
            AsNumber(4_200_000_000)
        );
        assert!(serde_json::from_str::<AsNumber>("4294967296").is_err());
        assert!(serde_json::from_str::<AsNumber>("-1").is_err());
        assert_eq!(
            serde_json::from_str::<AsNumber>("\"2.1\"").unwrap(),
            AsNumber(131073)
        );
    }

    #[test]
    fn durations() {
        assert_eq!("120s".parse::<DurationSecs>().unwrap(), DurationSecs(120));
        assert_eq!("2m".parse::<DurationSecs>().unwrap(), DurationSecs(120));
        assert_eq!("1h30m".parse::<DurationSecs>().unwrap(), DurationSecs(5400));
        assert_eq!("1.6s".parse::<DurationSecs>().unwrap(), DurationSecs(2));
        assert_eq!("1500ms".parse::<DurationSecs>().unwrap(), DurationSecs(2));
        assert_eq!("0".parse::<DurationSecs>().unwrap(), DurationSecs(0));
        assert!("10".parse::<DurationSecs>().is_err());
        assert!("s".parse::<DurationSecs>().is_err());
        assert!("10d".parse::<DurationSecs>().is_err());
    }

    #[test]
    fn peer_addresses() {
        let p: PeerAddress = "10.0.0.1".parse().unwrap();
        assert_eq!((p.ip.to_string(), p.port), ("10.0.0.1".into(), None));
        let p: PeerAddress = "10.0.0.1:1790".parse().unwrap();
        assert_eq!(p.port, Some(1790));
        let p: PeerAddress = "[fd00::1]:179".parse().unwrap();
        assert_eq!((p.ip.to_string(), p.port), ("fd00::1".into(), Some(179)));
        let p: PeerAddress = "fd00::1".parse().unwrap();
        assert_eq!(p.port, None);
        assert!("10.0.0.1:x".parse::<PeerAddress>().is_err());
        assert!("10.0.0.1:70000".parse::<PeerAddress>().is_err());
        assert!("host:179".parse::<PeerAddress>().is_err());
        assert_eq!(p.to_string(), "fd00::1");
        assert_eq!(
            "[fd00::1]:179".parse::<PeerAddress>().unwrap().to_string(),
            "[fd00::1]:179"
        );
    }

    #[test]
    fn node_addresses_keep_host_and_subnet() {
        let a: NodeAddress = "10.0.1.5/24".parse().unwrap();
        assert_eq!(a.ip().to_string(), "10.0.1.5");
        assert_eq!(a.subnet().to_string(), "10.0.1.0/24");
        let a: NodeAddress = "10.0.1.5".parse().unwrap();
        assert_eq!(a.subnet().to_string(), "10.0.1.5/32");
        assert!("10.0.1".parse::<NodeAddress>().is_err());
    }

    #[test]
    fn communities() {
        assert_eq!(
            "65000:100".parse::<Community>().unwrap(),
            Community::Standard(65000, 100)
        );
        assert_eq!(
            "4200000000:1:2".parse::<Community>().unwrap(),
            Community::Large(4_200_000_000, 1, 2)
        );
        assert!("70000:1".parse::<Community>().is_err());
        assert!("1".parse::<Community>().is_err());
        assert_eq!(Community::Large(1, 2, 3).to_string(), "1:2:3");
    }

    #[test]
    fn label_values_of_any_scalar_type_are_strings() {
        #[derive(Deserialize)]
        struct M {
            #[serde(deserialize_with = "string_map")]
            labels: BTreeMap<String, String>,
        }
        let m: M = serde_yaml_ng::from_str(
            "labels: {routeReflector: true, rack: 1, weight: 0.5, empty: null, name: a}",
        )
        .unwrap();
        let got: Vec<(&str, &str)> = m
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("empty", ""),
                ("name", "a"),
                ("rack", "1"),
                ("routeReflector", "true"),
                ("weight", "0.5")
            ]
        );
        let m: M = serde_yaml_ng::from_str("labels: null").unwrap();
        assert!(m.labels.is_empty());
        assert!(serde_yaml_ng::from_str::<M>("labels: {a: [1]}").is_err());
    }

    #[test]
    fn loose_bools() {
        assert!(serde_json::from_str::<LooseBool>("\"true\"").unwrap().0);
        assert!(!serde_json::from_str::<LooseBool>("false").unwrap().0);
        assert!(serde_json::from_str::<LooseBool>("\"maybe\"").is_err());
    }
}
