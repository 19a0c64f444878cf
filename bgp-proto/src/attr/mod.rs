//! Path attributes (RFC 4271 §4.3, §5) and their RFC 7606 error handling.
//!
//! ```text
//!  0                   1
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Attr. Flags  |Attr. Type Code|  then a 1-octet length, or 2 octets if Extended Length
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Attributes keep their flags exactly as received (including the Extended Length bit and the
//! unused low bits), and unknown attributes keep their bytes, so that an UPDATE re-encodes byte
//! for byte. All types derive `Hash` and `Eq` so that attribute sets can be interned.

mod as_path;
mod community;
mod decode;
mod mp;
mod unused;

use std::net::Ipv4Addr;

use bytes::BufMut;

pub use as_path::{AS_TRANS, AsPath, AsSegment, MAX_SEGMENT_LEN, SegmentType};
pub use community::{Community, ExtendedCommunity, LargeCommunity};
pub use mp::{MpReach, MpUnreach, NextHop};

pub(crate) use decode::decode_list;

use crate::context::Context;
use crate::error::EncodeError;
use crate::iana::{AttributeType, Family};
use crate::wire::sum;

/// The attribute flags octet (RFC 4271 §4.3), kept as received.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttrFlags(pub u8);

impl AttrFlags {
    /// Optional bit.
    pub const OPTIONAL: u8 = 0x80;
    /// Transitive bit.
    pub const TRANSITIVE: u8 = 0x40;
    /// Partial bit.
    pub const PARTIAL: u8 = 0x20;
    /// Extended Length bit.
    pub const EXTENDED_LENGTH: u8 = 0x10;

    /// Well-known transitive (ORIGIN, AS_PATH, NEXT_HOP, LOCAL_PREF, ATOMIC_AGGREGATE).
    pub const WELL_KNOWN: AttrFlags = AttrFlags(Self::TRANSITIVE);
    /// Optional transitive (AGGREGATOR, COMMUNITIES, EXTENDED_COMMUNITIES, ...).
    pub const OPTIONAL_TRANSITIVE: AttrFlags = AttrFlags(Self::OPTIONAL | Self::TRANSITIVE);
    /// Optional non-transitive (MED, ORIGINATOR_ID, CLUSTER_LIST, MP_REACH/MP_UNREACH).
    pub const OPTIONAL_NON_TRANSITIVE: AttrFlags = AttrFlags(Self::OPTIONAL);

    /// Whether the Optional bit is set.
    pub fn optional(self) -> bool {
        self.0 & Self::OPTIONAL != 0
    }

    /// Whether the Transitive bit is set.
    pub fn transitive(self) -> bool {
        self.0 & Self::TRANSITIVE != 0
    }

    /// Whether the Partial bit is set.
    pub fn partial(self) -> bool {
        self.0 & Self::PARTIAL != 0
    }

    /// Whether the Extended Length bit is set.
    pub fn extended_length(self) -> bool {
        self.0 & Self::EXTENDED_LENGTH != 0
    }

    /// The same flags with the Partial bit set.
    pub fn with_partial(self) -> Self {
        AttrFlags(self.0 | Self::PARTIAL)
    }
}

impl std::fmt::Debug for AttrFlags {
    /// `AttrFlags(0xc0 optional transitive)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AttrFlags({:#04x}", self.0)?;
        for (bit, name) in [
            (Self::OPTIONAL, "optional"),
            (Self::TRANSITIVE, "transitive"),
            (Self::PARTIAL, "partial"),
            (Self::EXTENDED_LENGTH, "extended-length"),
        ] {
            if self.0 & bit != 0 {
                write!(f, " {name}")?;
            }
        }
        f.write_str(")")
    }
}

/// ORIGIN values (RFC 4271 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// IGP (0).
    Igp,
    /// EGP (1).
    Egp,
    /// INCOMPLETE (2).
    Incomplete,
}

impl Origin {
    fn code(self) -> u8 {
        match self {
            Origin::Igp => 0,
            Origin::Egp => 1,
            Origin::Incomplete => 2,
        }
    }
}

/// AGGREGATOR and AS4_AGGREGATOR (RFC 4271 §5.1.7, RFC 6793 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aggregator {
    /// The aggregating AS (AS_TRANS in AGGREGATOR from an OLD speaker with a 4-octet AS).
    pub asn: u32,
    /// The aggregating speaker's BGP identifier.
    pub address: Ipv4Addr,
}

/// A path attribute value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttributeValue {
    /// ORIGIN (type 1).
    Origin(Origin),
    /// AS_PATH (type 2); 2- or 4-octet AS numbers on the wire per [`Context::four_octet_as`].
    AsPath(AsPath),
    /// NEXT_HOP (type 3).
    NextHop(Ipv4Addr),
    /// MULTI_EXIT_DISC (type 4).
    MultiExitDisc(u32),
    /// LOCAL_PREF (type 5).
    LocalPref(u32),
    /// ATOMIC_AGGREGATE (type 6).
    AtomicAggregate,
    /// AGGREGATOR (type 7); 6 or 8 octets on the wire per [`Context::four_octet_as`].
    Aggregator(Aggregator),
    /// COMMUNITIES (type 8).
    Communities(Vec<Community>),
    /// ORIGINATOR_ID (type 9).
    OriginatorId(Ipv4Addr),
    /// CLUSTER_LIST (type 10).
    ClusterList(Vec<Ipv4Addr>),
    /// MP_REACH_NLRI (type 14) of an IPv4/IPv6 unicast/multicast family.
    MpReachNlri(MpReach),
    /// MP_UNREACH_NLRI (type 15) of an IPv4/IPv6 unicast/multicast family.
    MpUnreachNlri(MpUnreach),
    /// EXTENDED_COMMUNITIES (type 16).
    ExtendedCommunities(Vec<ExtendedCommunity>),
    /// AS4_PATH (type 17), always 4-octet AS numbers.
    As4Path(AsPath),
    /// AS4_AGGREGATOR (type 18).
    As4Aggregator(Aggregator),
    /// LARGE_COMMUNITY (type 32).
    LargeCommunities(Vec<LargeCommunity>),
    /// Only to Customer (type 35, RFC 9234 §5).
    OnlyToCustomer(u32),
    /// An attribute this crate does not decode, kept byte for byte: an unknown type, or
    /// MP_REACH/MP_UNREACH of a family whose NLRI are not prefixes.
    Unknown {
        /// Type code.
        type_code: u8,
        /// Value.
        data: Vec<u8>,
    },
}

impl AttributeValue {
    /// The attribute type code.
    pub fn type_code(&self) -> u8 {
        let t = match self {
            AttributeValue::Origin(_) => AttributeType::Origin,
            AttributeValue::AsPath(_) => AttributeType::AsPath,
            AttributeValue::NextHop(_) => AttributeType::NextHop,
            AttributeValue::MultiExitDisc(_) => AttributeType::MultiExitDisc,
            AttributeValue::LocalPref(_) => AttributeType::LocalPref,
            AttributeValue::AtomicAggregate => AttributeType::AtomicAggregate,
            AttributeValue::Aggregator(_) => AttributeType::Aggregator,
            AttributeValue::Communities(_) => AttributeType::Communities,
            AttributeValue::OriginatorId(_) => AttributeType::OriginatorId,
            AttributeValue::ClusterList(_) => AttributeType::ClusterList,
            AttributeValue::MpReachNlri(_) => AttributeType::MpReachNlri,
            AttributeValue::MpUnreachNlri(_) => AttributeType::MpUnreachNlri,
            AttributeValue::ExtendedCommunities(_) => AttributeType::ExtendedCommunities,
            AttributeValue::As4Path(_) => AttributeType::As4Path,
            AttributeValue::As4Aggregator(_) => AttributeType::As4Aggregator,
            AttributeValue::LargeCommunities(_) => AttributeType::LargeCommunity,
            AttributeValue::OnlyToCustomer(_) => AttributeType::OnlyToCustomer,
            AttributeValue::Unknown { type_code, .. } => return *type_code,
        };
        t.into()
    }

    /// The flags a speaker originating this attribute uses (RFC 4271 §5 and each attribute's
    /// RFC); for `Unknown`, optional transitive.
    pub fn default_flags(&self) -> AttrFlags {
        expected_flags(AttributeType::from(self.type_code()))
            .unwrap_or(AttrFlags::OPTIONAL_TRANSITIVE)
    }

    fn value_len(&self, ctx: &Context) -> usize {
        let as_width = if ctx.four_octet_as { 4 } else { 2 };
        match self {
            AttributeValue::Origin(_) => 1,
            AttributeValue::AsPath(p) => p.encoded_len(as_width),
            AttributeValue::NextHop(_)
            | AttributeValue::MultiExitDisc(_)
            | AttributeValue::LocalPref(_)
            | AttributeValue::OriginatorId(_)
            | AttributeValue::OnlyToCustomer(_) => 4,
            AttributeValue::AtomicAggregate => 0,
            AttributeValue::Aggregator(_) => as_width.saturating_add(4),
            AttributeValue::Communities(c) => c.len().saturating_mul(4),
            AttributeValue::ClusterList(c) => c.len().saturating_mul(4),
            AttributeValue::MpReachNlri(m) => m.value_len(ctx.add_path(m.family)),
            AttributeValue::MpUnreachNlri(m) => m.value_len(ctx.add_path(m.family)),
            AttributeValue::ExtendedCommunities(c) => c.len().saturating_mul(8),
            AttributeValue::As4Path(p) => p.encoded_len(4),
            AttributeValue::As4Aggregator(_) => 8,
            AttributeValue::LargeCommunities(c) => c.len().saturating_mul(12),
            AttributeValue::Unknown { data, .. } => data.len(),
        }
    }
}

/// The Optional/Transitive bits each known attribute must carry (RFC 4271 §5, RFC 4760 §3-4,
/// RFC 1997, RFC 4360, RFC 4456 §8, RFC 6793 §3, RFC 8092 §3, RFC 9234 §5).
pub(crate) fn expected_flags(t: AttributeType) -> Option<AttrFlags> {
    use AttributeType as T;
    Some(match t {
        T::Origin | T::AsPath | T::NextHop | T::LocalPref | T::AtomicAggregate => {
            AttrFlags::WELL_KNOWN
        }
        T::MultiExitDisc | T::OriginatorId | T::ClusterList | T::MpReachNlri | T::MpUnreachNlri => {
            AttrFlags::OPTIONAL_NON_TRANSITIVE
        }
        T::Aggregator
        | T::Communities
        | T::ExtendedCommunities
        | T::As4Path
        | T::As4Aggregator
        | T::LargeCommunity
        | T::OnlyToCustomer => AttrFlags::OPTIONAL_TRANSITIVE,
        T::Other(_) => return None,
    })
}

/// One path attribute: flags as received plus the decoded value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathAttribute {
    /// Flags. Encoding sets Extended Length by itself when the value needs it; otherwise the
    /// flags are written as they are.
    pub flags: AttrFlags,
    /// The value.
    pub value: AttributeValue,
}

impl PathAttribute {
    /// An attribute with the standard flags for its type.
    pub fn new(value: AttributeValue) -> Self {
        PathAttribute {
            flags: value.default_flags(),
            value,
        }
    }

    /// The type code.
    pub fn type_code(&self) -> u8 {
        self.value.type_code()
    }

    /// This attribute as it is passed on to another peer (RFC 4271 §5, §9.1.4): known attributes
    /// unchanged; unknown optional transitive ones with the Partial bit set; unknown optional
    /// non-transitive ones not at all (`None`). Which known attributes a speaker rewrites or
    /// strips (NEXT_HOP, LOCAL_PREF, MED, ...) is the RIB's business.
    pub fn for_propagation(&self) -> Option<PathAttribute> {
        match &self.value {
            AttributeValue::Unknown { type_code, .. }
                if expected_flags(AttributeType::from(*type_code)).is_none() =>
            {
                if !self.flags.transitive() {
                    return None;
                }
                Some(PathAttribute {
                    flags: self.flags.with_partial(),
                    value: self.value.clone(),
                })
            }
            _ => Some(self.clone()),
        }
    }

    /// Length of the value on the wire.
    pub fn value_len(&self, ctx: &Context) -> usize {
        self.value.value_len(ctx)
    }

    fn uses_extended_length(&self, ctx: &Context) -> bool {
        self.flags.extended_length() || self.value_len(ctx) > 255
    }

    /// Octets the attribute takes on the wire, header included.
    pub fn encoded_len(&self, ctx: &Context) -> usize {
        let header = if self.uses_extended_length(ctx) { 4 } else { 3 };
        sum([header, self.value_len(ctx)])
    }

    pub(crate) fn check(&self, ctx: &Context) -> Result<(), EncodeError> {
        let width = if ctx.four_octet_as { 4 } else { 2 };
        match &self.value {
            AttributeValue::AsPath(p) => p.check("AS_PATH", width)?,
            AttributeValue::As4Path(p) => p.check("AS4_PATH", 4)?,
            AttributeValue::Aggregator(a) if width == 2 && a.asn > u32::from(u16::MAX) => {
                return Err(EncodeError::AsNumberTooLarge {
                    field: "AGGREGATOR",
                    asn: a.asn,
                });
            }
            AttributeValue::MpReachNlri(m) => {
                check_family_prefixes("MP_REACH_NLRI", m.family, &m.nlri)?
            }
            AttributeValue::MpUnreachNlri(m) => {
                check_family_prefixes("MP_UNREACH_NLRI", m.family, &m.withdrawn)?
            }
            _ => {}
        }
        let len = self.value_len(ctx);
        if len > usize::from(u16::MAX) {
            return Err(EncodeError::FieldTooLong {
                field: "path attribute value",
                length: len,
                max: usize::from(u16::MAX),
            });
        }
        Ok(())
    }

    pub(crate) fn encode(&self, ctx: &Context, buf: &mut impl BufMut) {
        let extended = self.uses_extended_length(ctx);
        let len = self.value_len(ctx);
        let flags = if extended {
            self.flags.0 | AttrFlags::EXTENDED_LENGTH
        } else {
            self.flags.0
        };
        buf.put_u8(flags);
        buf.put_u8(self.type_code());
        if extended {
            buf.put_u16(u16::try_from(len).unwrap_or(u16::MAX));
        } else {
            buf.put_u8(u8::try_from(len).unwrap_or(u8::MAX));
        }
        let four = ctx.four_octet_as;
        match &self.value {
            AttributeValue::Origin(o) => buf.put_u8(o.code()),
            AttributeValue::AsPath(p) => p.encode(if four { 4 } else { 2 }, buf),
            AttributeValue::NextHop(a) | AttributeValue::OriginatorId(a) => {
                buf.put_slice(&a.octets())
            }
            AttributeValue::MultiExitDisc(v)
            | AttributeValue::LocalPref(v)
            | AttributeValue::OnlyToCustomer(v) => buf.put_u32(*v),
            AttributeValue::AtomicAggregate => {}
            AttributeValue::Aggregator(a) => {
                if four {
                    buf.put_u32(a.asn);
                } else {
                    buf.put_u16(u16::try_from(a.asn).unwrap_or(AS_TRANS));
                }
                buf.put_slice(&a.address.octets());
            }
            AttributeValue::As4Aggregator(a) => {
                buf.put_u32(a.asn);
                buf.put_slice(&a.address.octets());
            }
            AttributeValue::Communities(c) => c.iter().for_each(|c| buf.put_u32(c.0)),
            AttributeValue::ClusterList(c) => c.iter().for_each(|a| buf.put_slice(&a.octets())),
            AttributeValue::MpReachNlri(m) => m.encode(ctx.add_path(m.family), buf),
            AttributeValue::MpUnreachNlri(m) => m.encode(ctx.add_path(m.family), buf),
            AttributeValue::ExtendedCommunities(c) => c.iter().for_each(|c| buf.put_slice(&c.0)),
            AttributeValue::As4Path(p) => p.encode(4, buf),
            AttributeValue::LargeCommunities(c) => c.iter().for_each(|c| {
                buf.put_u32(c.global_admin);
                buf.put_u32(c.local_data_1);
                buf.put_u32(c.local_data_2);
            }),
            AttributeValue::Unknown { data, .. } => buf.put_slice(data),
        }
    }
}

impl From<AttributeValue> for PathAttribute {
    fn from(value: AttributeValue) -> Self {
        PathAttribute::new(value)
    }
}

fn check_family_prefixes(
    field: &'static str,
    family: Family,
    nlri: &[crate::Nlri],
) -> Result<(), EncodeError> {
    use crate::iana::Afi;
    let ok = |n: &crate::Nlri| {
        matches!(
            (family.afi, n.prefix),
            (Afi::Ipv4, ipnet::IpNet::V4(_)) | (Afi::Ipv6, ipnet::IpNet::V6(_))
        )
    };
    if !family.is_prefix_family() {
        return Err(EncodeError::InvalidValue {
            field,
            reason: format!(
                "family {family} is not decoded by this crate; use AttributeValue::Unknown"
            ),
        });
    }
    if let Some(bad) = nlri.iter().find(|n| !ok(n)) {
        return Err(EncodeError::InvalidValue {
            field,
            reason: format!("prefix {} does not belong to family {family}", bad.prefix),
        });
    }
    Ok(())
}

/// Finds the first attribute of a type in a list.
pub fn find(attributes: &[PathAttribute], t: AttributeType) -> Option<&PathAttribute> {
    let code: u8 = t.into();
    attributes.iter().find(|a| a.type_code() == code)
}

/// RFC 6793 §4.2.3: the AS path and aggregator a NEW speaker uses for a route received over a
/// 2-octet session, from AS_PATH, AS4_PATH, AGGREGATOR and AS4_AGGREGATOR. If AGGREGATOR holds an
/// AS other than AS_TRANS, AS4_AGGREGATOR and AS4_PATH are ignored; otherwise AS4_AGGREGATOR
/// replaces AGGREGATOR and AS4_PATH is merged into AS_PATH ([`AsPath::merge_as4`]).
pub fn reconstruct_as4(attributes: &[PathAttribute]) -> (Option<AsPath>, Option<Aggregator>) {
    let get = |t| find(attributes, t).map(|a| &a.value);
    let as_path = match get(AttributeType::AsPath) {
        Some(AttributeValue::AsPath(p)) => Some(p),
        _ => None,
    };
    let as4_path = match get(AttributeType::As4Path) {
        Some(AttributeValue::As4Path(p)) => Some(p),
        _ => None,
    };
    let aggregator = match get(AttributeType::Aggregator) {
        Some(AttributeValue::Aggregator(a)) => Some(*a),
        _ => None,
    };
    let as4_aggregator = match get(AttributeType::As4Aggregator) {
        Some(AttributeValue::As4Aggregator(a)) => Some(*a),
        _ => None,
    };
    if let Some(agg) = aggregator
        && agg.asn != u32::from(AS_TRANS)
    {
        return (as_path.cloned(), Some(agg));
    }
    let aggregator = as4_aggregator.or(aggregator);
    let path = match (as_path, as4_path) {
        (Some(p), Some(p4)) => Some(p.merge_as4(p4)),
        (Some(p), None) => Some(p.clone()),
        (None, _) => None,
    };
    (path, aggregator)
}
