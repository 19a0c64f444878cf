//! Decoding the path attribute list with RFC 7606 error handling.
//!
//! Each malformed attribute becomes an [`UpdateIssue`] with the action RFC 7606 prescribes for
//! it; only problems after which the routes in the message can no longer be located are errors
//! (session reset).

use std::net::Ipv4Addr;

use super::{
    Aggregator, AsPath, AttrFlags, AttributeValue, Community, ExtendedCommunity, LargeCommunity,
    MpReach, MpUnreach, NextHop, Origin, PathAttribute, expected_flags,
};
use crate::context::Context;
use crate::error::{DecodeError, Rfc7606Action, UpdateIssue};
use crate::iana::{Afi, AttributeType, Family, UpdateErrorSubcode};
use crate::message::Notification;
use crate::nlri;
use crate::wire::Reader;

/// The attribute list of one UPDATE after RFC 7606 processing.
#[derive(Debug, Default)]
pub(crate) struct DecodedAttributes {
    pub(crate) attributes: Vec<PathAttribute>,
    pub(crate) issues: Vec<UpdateIssue>,
    /// Type codes seen (well-formed or not), for the missing-attribute checks.
    pub(crate) seen: [u64; 4],
}

impl DecodedAttributes {
    pub(crate) fn saw(&self, t: AttributeType) -> bool {
        let code: u8 = t.into();
        is_set(&self.seen, code)
    }
}

fn is_set(set: &[u64; 4], code: u8) -> bool {
    set.get(usize::from(code >> 6))
        .is_some_and(|w| w & (1u64 << (code & 63)) != 0)
}

fn set(set: &mut [u64; 4], code: u8) {
    if let Some(w) = set.get_mut(usize::from(code >> 6)) {
        *w |= 1u64 << (code & 63);
    }
}

/// The action RFC 7606 prescribes for a malformed attribute of this type.
fn malformed_action(t: AttributeType, ctx: &Context) -> Rfc7606Action {
    use AttributeType as T;
    match t {
        // RFC 7606 §7.5, §7.9, §7.10: LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST from an external
        // peer are discarded; the length rules (treat-as-withdraw) are for internal peers.
        T::LocalPref | T::OriginatorId | T::ClusterList if !ctx.internal => {
            Rfc7606Action::AttributeDiscard
        }
        // RFC 7606 §7.6 ATOMIC_AGGREGATE, §7.7 AGGREGATOR; RFC 6793 §6 AS4_PATH/AS4_AGGREGATOR.
        T::AtomicAggregate | T::Aggregator | T::As4Path | T::As4Aggregator => {
            Rfc7606Action::AttributeDiscard
        }
        // RFC 7606 §7.11 / RFC 4760 §7.
        T::MpReachNlri | T::MpUnreachNlri => Rfc7606Action::AfiSafiDisable,
        // RFC 7606 §2: treat-as-withdraw is the default.
        _ => Rfc7606Action::TreatAsWithdraw,
    }
}

/// A problem with one attribute's value: the NOTIFICATION subcode RFC 4271 §6.3 names and what
/// is wrong. `family` is set for MP_REACH/MP_UNREACH problems after the AFI/SAFI were read.
struct ValueError {
    subcode: UpdateErrorSubcode,
    offset: usize,
    reason: String,
    family: Option<Family>,
}

fn value_err(subcode: UpdateErrorSubcode, offset: usize, reason: impl Into<String>) -> ValueError {
    ValueError {
        subcode,
        offset,
        reason: reason.into(),
        family: None,
    }
}

/// Decodes the attribute list `r` (the "Path Attributes" field of an UPDATE).
pub(crate) fn decode_list(
    r: &mut Reader<'_>,
    ctx: &Context,
) -> Result<DecodedAttributes, DecodeError> {
    let mut out = DecodedAttributes {
        attributes: Vec::with_capacity(6),
        ..DecodedAttributes::default()
    };
    while !r.is_empty() {
        let at = r.offset();
        let whole = r.peek_rest();
        let flags = r.u8();
        let code = r.u8();
        let len = match flags {
            Some(f) if AttrFlags(f).extended_length() => r.u16(),
            Some(_) => r.u8().map(u16::from),
            None => None,
        };
        let (Some(flags), Some(code), Some(len)) = (flags, code, len) else {
            // RFC 7606 §4: fewer octets than an attribute header needs is treat-as-withdraw,
            // the NLRI field being locatable through the Total Path Attribute Length.
            out.issues.push(UpdateIssue {
                action: Rfc7606Action::TreatAsWithdraw,
                attribute: code.map(AttributeType::from),
                family: None,
                offset: at,
                reason: format!(
                    "{} octets left in the attribute list, too few for a header",
                    whole.len()
                ),
                notification: Notification::update(
                    UpdateErrorSubcode::MalformedAttributeList,
                    vec![],
                ),
            });
            break;
        };
        let header_len = r.offset().saturating_sub(at);
        let Some(mut value) = r.sub(usize::from(len)) else {
            // RFC 7606 §4: an attribute length overrunning the list is treat-as-withdraw.
            out.issues.push(UpdateIssue {
                action: Rfc7606Action::TreatAsWithdraw,
                attribute: Some(code.into()),
                family: None,
                offset: at,
                reason: format!(
                    "attribute length {len} overruns the attribute list ({} octets left)",
                    r.remaining()
                ),
                notification: Notification::update(
                    UpdateErrorSubcode::AttributeLengthError,
                    whole.to_vec(),
                ),
            });
            break;
        };
        let raw = whole
            .get(..header_len.saturating_add(usize::from(len)))
            .unwrap_or(whole);
        let t = AttributeType::from(code);
        let flags = AttrFlags(flags);

        // RFC 7606 §3(g): MP_REACH/MP_UNREACH more than once is Malformed Attribute List (session
        // reset); other duplicates are discarded, keeping the first.
        if is_set(&out.seen, code) {
            if matches!(t, AttributeType::MpReachNlri | AttributeType::MpUnreachNlri) {
                return Err(DecodeError::new(
                    "UPDATE path attribute",
                    at,
                    format!("{t:?} appears more than once (RFC 7606 §3(g))"),
                    Notification::update(UpdateErrorSubcode::MalformedAttributeList, vec![]),
                ));
            }
            out.issues.push(UpdateIssue {
                action: Rfc7606Action::AttributeDiscard,
                attribute: Some(t),
                family: None,
                offset: at,
                reason: format!("{t:?} appears more than once; the later one is discarded"),
                notification: Notification::update(
                    UpdateErrorSubcode::MalformedAttributeList,
                    vec![],
                ),
            });
            continue;
        }
        set(&mut out.seen, code);

        // RFC 7606 §7.9, §7.10: ORIGINATOR_ID and CLUSTER_LIST received from an external peer
        // are discarded ("attribute discard"), well-formed or not.
        if !ctx.internal && matches!(t, AttributeType::OriginatorId | AttributeType::ClusterList) {
            out.issues.push(UpdateIssue {
                action: Rfc7606Action::AttributeDiscard,
                attribute: Some(t),
                family: None,
                offset: at,
                reason: format!("{t:?} from an external peer is discarded (RFC 7606 §7.9-7.10)"),
                notification: Notification::update(
                    UpdateErrorSubcode::OptionalAttributeError,
                    raw.to_vec(),
                ),
            });
            continue;
        }

        let Some(expected) = expected_flags(t) else {
            // RFC 4271 §6.3: an unrecognized well-known attribute is Unrecognized Well-known
            // Attribute, data the attribute. RFC 7606 does not revise this (see
            // docs/rfc-compliance.md).
            if !flags.optional() {
                return Err(DecodeError::new(
                    "UPDATE path attribute",
                    at,
                    format!("unrecognized well-known attribute type {code}"),
                    Notification::update(
                        UpdateErrorSubcode::UnrecognizedWellKnownAttribute,
                        raw.to_vec(),
                    ),
                ));
            }
            // Types with a published structure and error rule that this crate does not decode
            // (docs/rfc-compliance.md): a malformed one is removed, never passed on.
            if let Some(bad) = super::unused::check(code, flags.0, value.peek_rest()) {
                out.issues.push(UpdateIssue {
                    action: bad.action,
                    attribute: Some(t),
                    family: None,
                    offset: at,
                    reason: bad.reason,
                    notification: Notification::update(bad.subcode, raw.to_vec()),
                });
                continue;
            }
            // RFC 4271 §5: unknown optional attributes are kept (transitive ones are passed on
            // with Partial set, see PathAttribute::for_propagation).
            out.attributes.push(PathAttribute {
                flags,
                value: AttributeValue::Unknown {
                    type_code: code,
                    data: value.take_rest().to_vec(),
                },
            });
            continue;
        };

        let action = malformed_action(t, ctx);
        // RFC 7606 §3(c): Optional/Transitive bits in conflict with the type make the attribute
        // malformed (handled with the attribute's own action). RFC 4271 §4.3: the Partial bit of
        // a well-known attribute MUST be 0; set, it conflicts with the type just the same.
        let flags_ok = (flags.0 & 0xc0) == expected.0 && (expected.optional() || !flags.partial());
        let decoded = match decode_value(t, &mut value, ctx) {
            Ok(v) if !flags_ok => {
                let error = value_err(
                    UpdateErrorSubcode::AttributeFlagsError,
                    at,
                    format!(
                        "flags {:#04x} but {t:?} requires {:#04x}",
                        flags.0, expected.0
                    ),
                );
                if matches!(t, AttributeType::MpReachNlri | AttributeType::MpUnreachNlri) {
                    // The routes are still locatable: keep the attribute so that they can be
                    // withdrawn, and treat them as withdrawn (RFC 7606 §3(c)).
                    out.issues.push(UpdateIssue {
                        action: Rfc7606Action::TreatAsWithdraw,
                        attribute: Some(t),
                        family: None,
                        offset: at,
                        reason: format!("{t:?}: {}", error.reason),
                        notification: Notification::update(error.subcode, raw.to_vec()),
                    });
                    out.attributes.push(PathAttribute { flags, value: v });
                    continue;
                }
                Err(error)
            }
            other => other,
        };
        if let Ok(AttributeValue::MpReachNlri(m)) = &decoded
            && let Some(problem) = mp_next_hop_problem(&m.next_hop)
        {
            // RFC 4271 §6.3 / RFC 7606 §7.3 applied to the MP_REACH_NLRI next hop: a next hop
            // that cannot be a neighbour's address is treat-as-withdraw; the routes are
            // locatable, so the attribute is kept for the withdrawal.
            out.issues.push(UpdateIssue {
                action: Rfc7606Action::TreatAsWithdraw,
                attribute: Some(t),
                family: Some(m.family),
                offset: at,
                reason: format!("{t:?}: next hop {problem}"),
                notification: Notification::update(
                    UpdateErrorSubcode::OptionalAttributeError,
                    raw.to_vec(),
                ),
            });
        }
        match decoded {
            Ok(v) => {
                // RFC 6793 §3: a NEW speaker receiving AS4_PATH/AS4_AGGREGATOR from a NEW speaker
                // discards them.
                if ctx.four_octet_as
                    && matches!(t, AttributeType::As4Path | AttributeType::As4Aggregator)
                {
                    out.issues.push(UpdateIssue {
                        action: Rfc7606Action::AttributeDiscard,
                        attribute: Some(t),
                        family: None,
                        offset: at,
                        reason: format!("{t:?} on a 4-octet AS session is discarded (RFC 6793 §3)"),
                        notification: Notification::update(
                            UpdateErrorSubcode::OptionalAttributeError,
                            raw.to_vec(),
                        ),
                    });
                    continue;
                }
                out.attributes.push(PathAttribute { flags, value: v });
            }
            Err(e) => {
                let family = e.family;
                if matches!(t, AttributeType::MpReachNlri | AttributeType::MpUnreachNlri)
                    && family.is_none()
                {
                    // RFC 7606 §5.3/§7.11: without an AFI/SAFI the routes cannot be located.
                    return Err(DecodeError::new(
                        "UPDATE path attribute",
                        e.offset,
                        format!("{t:?}: {}", e.reason),
                        Notification::update(
                            UpdateErrorSubcode::OptionalAttributeError,
                            raw.to_vec(),
                        ),
                    ));
                }
                // RFC 4271 §6.3: the attribute is the data for flags, length, ORIGIN, NEXT_HOP
                // and optional attribute errors; Malformed AS_PATH carries none.
                let data = if matches!(
                    e.subcode,
                    UpdateErrorSubcode::MalformedAttributeList
                        | UpdateErrorSubcode::MalformedAsPath
                ) {
                    vec![]
                } else {
                    raw.to_vec()
                };
                out.issues.push(UpdateIssue {
                    action,
                    attribute: Some(t),
                    family,
                    offset: e.offset,
                    reason: format!("{t:?}: {}", e.reason),
                    notification: Notification::update(e.subcode, data),
                });
            }
        }
    }
    Ok(out)
}

fn exact_len(r: &Reader<'_>, t: AttributeType, n: usize) -> Result<(), ValueError> {
    if r.remaining() == n {
        Ok(())
    } else {
        Err(value_err(
            UpdateErrorSubcode::AttributeLengthError,
            r.offset(),
            format!("length {} but {t:?} is {n} octets", r.remaining()),
        ))
    }
}

fn multiple_len(r: &Reader<'_>, t: AttributeType, n: usize) -> Result<(), ValueError> {
    // RFC 7606 §7.8, §7.10, §7.14, RFC 8092 §5: a non-zero multiple of the entry size.
    if r.remaining() != 0 && r.remaining().is_multiple_of(n) {
        Ok(())
    } else {
        Err(value_err(
            UpdateErrorSubcode::AttributeLengthError,
            r.offset(),
            format!(
                "length {} is not a non-zero multiple of {n} for {t:?}",
                r.remaining()
            ),
        ))
    }
}

fn decode_value(
    t: AttributeType,
    r: &mut Reader<'_>,
    ctx: &Context,
) -> Result<AttributeValue, ValueError> {
    use AttributeType as T;
    let start = r.offset();
    let four = |r: &mut Reader<'_>| r.u32().unwrap_or_default();
    let addr = |r: &mut Reader<'_>| r.ipv4().unwrap_or(Ipv4Addr::UNSPECIFIED);
    Ok(match t {
        T::Origin => {
            // RFC 7606 §7.1: length other than 1 or an undefined value is treat-as-withdraw.
            exact_len(r, t, 1)?;
            match r.u8() {
                Some(0) => AttributeValue::Origin(Origin::Igp),
                Some(1) => AttributeValue::Origin(Origin::Egp),
                Some(2) => AttributeValue::Origin(Origin::Incomplete),
                other => {
                    return Err(value_err(
                        UpdateErrorSubcode::InvalidOriginAttribute,
                        start,
                        format!("undefined ORIGIN value {}", other.unwrap_or_default()),
                    ));
                }
            }
        }
        T::AsPath | T::As4Path => {
            let width = if t == T::AsPath && !ctx.four_octet_as {
                2
            } else {
                4
            };
            let path = AsPath::decode(r, width).map_err(|(offset, reason)| {
                value_err(UpdateErrorSubcode::MalformedAsPath, offset, reason)
            })?;
            // RFC 7607 §2: AS 0 in AS_PATH (or AS4_PATH) makes the attribute malformed.
            if path.contains(0) {
                return Err(value_err(
                    UpdateErrorSubcode::MalformedAsPath,
                    start,
                    "AS 0 in the path (RFC 7607)",
                ));
            }
            if t == T::AsPath {
                AttributeValue::AsPath(path)
            } else {
                AttributeValue::As4Path(path)
            }
        }
        T::NextHop => {
            exact_len(r, t, 4)?;
            let a = addr(r);
            // RFC 4271 §6.3: a NEXT_HOP that is not a valid host address is Invalid NEXT_HOP
            // (RFC 7606 §7.3: treat-as-withdraw); a loopback address (RFC 1122 §3.2.1.3) is never
            // a neighbour's.
            if a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback() {
                return Err(value_err(
                    UpdateErrorSubcode::InvalidNextHopAttribute,
                    start,
                    format!("{a} is not a host address"),
                ));
            }
            AttributeValue::NextHop(a)
        }
        T::MultiExitDisc => {
            exact_len(r, t, 4)?; // RFC 7606 §7.4
            AttributeValue::MultiExitDisc(four(r))
        }
        T::LocalPref => {
            exact_len(r, t, 4)?; // RFC 7606 §7.5
            AttributeValue::LocalPref(four(r))
        }
        T::AtomicAggregate => {
            exact_len(r, t, 0)?; // RFC 7606 §7.6
            AttributeValue::AtomicAggregate
        }
        T::Aggregator | T::As4Aggregator => {
            let width: usize = if t == T::Aggregator && !ctx.four_octet_as {
                2
            } else {
                4
            };
            exact_len(r, t, width.saturating_add(4))?; // RFC 7606 §7.7, RFC 6793 §6
            let asn = if width == 2 {
                r.u16().map(u32::from).unwrap_or_default()
            } else {
                four(r)
            };
            // RFC 7607 §2: AS 0 in AGGREGATOR is malformed (attribute discard).
            if asn == 0 {
                return Err(value_err(
                    UpdateErrorSubcode::OptionalAttributeError,
                    start,
                    "AS 0 (RFC 7607)",
                ));
            }
            let agg = Aggregator {
                asn,
                address: addr(r),
            };
            if t == T::Aggregator {
                AttributeValue::Aggregator(agg)
            } else {
                AttributeValue::As4Aggregator(agg)
            }
        }
        T::Communities => {
            multiple_len(r, t, 4)?;
            let mut v = Vec::with_capacity(r.remaining() / 4);
            while let Some(c) = r.u32() {
                v.push(Community(c));
            }
            AttributeValue::Communities(v)
        }
        T::OriginatorId => {
            exact_len(r, t, 4)?; // RFC 7606 §7.9
            AttributeValue::OriginatorId(addr(r))
        }
        T::ClusterList => {
            multiple_len(r, t, 4)?;
            let mut v = Vec::with_capacity(r.remaining() / 4);
            while let Some(a) = r.ipv4() {
                v.push(a);
            }
            AttributeValue::ClusterList(v)
        }
        T::ExtendedCommunities => {
            multiple_len(r, t, 8)?;
            let mut v = Vec::with_capacity(r.remaining() / 8);
            while let Some(c) = r.take(8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                v.push(ExtendedCommunity(c));
            }
            AttributeValue::ExtendedCommunities(v)
        }
        T::LargeCommunity => {
            multiple_len(r, t, 12)?;
            let mut v = Vec::with_capacity(r.remaining() / 12);
            while let (Some(a), Some(b), Some(c)) = (r.u32(), r.u32(), r.u32()) {
                v.push(LargeCommunity {
                    global_admin: a,
                    local_data_1: b,
                    local_data_2: c,
                });
            }
            AttributeValue::LargeCommunities(v)
        }
        T::OnlyToCustomer => {
            exact_len(r, t, 4)?; // RFC 9234 §5
            AttributeValue::OnlyToCustomer(four(r))
        }
        T::MpReachNlri => decode_mp_reach(r, ctx)?,
        T::MpUnreachNlri => decode_mp_unreach(r, ctx)?,
        T::Other(code) => AttributeValue::Unknown {
            type_code: code,
            data: r.take_rest().to_vec(),
        },
    })
}

/// Why an MP_REACH_NLRI next hop cannot be a neighbour's address, if it cannot: IPv4 as for
/// NEXT_HOP; IPv6 global loopback or multicast, or unspecified without a link-local address.
fn mp_next_hop_problem(next_hop: &NextHop) -> Option<String> {
    match *next_hop {
        NextHop::Ipv4(a)
            if a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback() =>
        {
            Some(format!("{a} is not a host address"))
        }
        NextHop::Ipv6 { global, link_local }
            if global.is_loopback()
                || global.is_multicast()
                || (global.is_unspecified() && link_local.is_none()) =>
        {
            Some(format!("{global} is not a host address"))
        }
        _ => None,
    }
}

fn mp_family(r: &mut Reader<'_>, t: AttributeType) -> Result<Family, ValueError> {
    let at = r.offset();
    match (r.u16(), r.u8()) {
        (Some(afi), Some(safi)) => Ok(Family::new(afi.into(), safi.into())),
        _ => Err(value_err(
            UpdateErrorSubcode::OptionalAttributeError,
            at,
            format!("{t:?} shorter than its AFI/SAFI"),
        )),
    }
}

fn disable(family: Family, offset: usize, reason: String) -> ValueError {
    ValueError {
        subcode: UpdateErrorSubcode::OptionalAttributeError,
        offset,
        reason,
        family: Some(family),
    }
}

fn decode_mp_reach(r: &mut Reader<'_>, ctx: &Context) -> Result<AttributeValue, ValueError> {
    let whole = r.peek_rest();
    let family = mp_family(r, AttributeType::MpReachNlri)?;
    if !family.is_prefix_family() {
        return Ok(AttributeValue::Unknown {
            type_code: 14,
            data: whole.to_vec(),
        });
    }
    let at = r.offset();
    let Some(nh_len) = r.u8() else {
        return Err(disable(family, at, "next hop length missing".into()));
    };
    let Some(mut nh) = r.sub(usize::from(nh_len)) else {
        return Err(disable(
            family,
            at,
            format!("next hop length {nh_len} overruns the attribute"),
        ));
    };
    // RFC 7606 §7.11: a next hop length inconsistent with the family is AFI/SAFI disable (or
    // session reset); IPv4 NLRI may carry IPv6 next hops (RFC 8950 §3).
    let next_hop = match (family.afi, nh_len) {
        (Afi::Ipv4, 4) => nh.ipv4().map(NextHop::Ipv4),
        (_, 16) => nh.ipv6().map(|global| NextHop::Ipv6 {
            global,
            link_local: None,
        }),
        (_, 32) => match (nh.ipv6(), nh.ipv6()) {
            (Some(global), Some(ll)) => Some(NextHop::Ipv6 {
                global,
                link_local: Some(ll),
            }),
            _ => None,
        },
        _ => None,
    };
    let Some(next_hop) = next_hop else {
        return Err(disable(
            family,
            at,
            format!("next hop length {nh_len} is invalid for {family}"),
        ));
    };
    let at = r.offset();
    let Some(reserved) = r.u8() else {
        return Err(disable(family, at, "reserved octet missing".into()));
    };
    let nlri_at = r.offset();
    let mut out = Vec::new();
    nlri::decode_field(
        r.take_rest(),
        nlri_at,
        family.afi,
        ctx.add_path(family),
        &mut out,
    )
    .map_err(|e| disable(family, e.offset, format!("NLRI: {}", e.reason)))?;
    Ok(AttributeValue::MpReachNlri(MpReach {
        family,
        next_hop,
        reserved,
        nlri: out,
    }))
}

fn decode_mp_unreach(r: &mut Reader<'_>, ctx: &Context) -> Result<AttributeValue, ValueError> {
    let whole = r.peek_rest();
    let family = mp_family(r, AttributeType::MpUnreachNlri)?;
    if !family.is_prefix_family() {
        return Ok(AttributeValue::Unknown {
            type_code: 15,
            data: whole.to_vec(),
        });
    }
    let at = r.offset();
    let mut out = Vec::new();
    nlri::decode_field(
        r.take_rest(),
        at,
        family.afi,
        ctx.add_path(family),
        &mut out,
    )
    .map_err(|e| disable(family, e.offset, format!("withdrawn routes: {}", e.reason)))?;
    Ok(AttributeValue::MpUnreachNlri(MpUnreach {
        family,
        withdrawn: out,
    }))
}
