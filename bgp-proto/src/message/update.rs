//! UPDATE (RFC 4271 §4.3) with RFC 7606 error handling.
//!
//! ```text
//! +-----------------------------------------------------+
//! |   Withdrawn Routes Length (2 octets)                |
//! +-----------------------------------------------------+
//! |   Withdrawn Routes (variable)                       |
//! +-----------------------------------------------------+
//! |   Total Path Attribute Length (2 octets)            |
//! +-----------------------------------------------------+
//! |   Path Attributes (variable)                        |
//! +-----------------------------------------------------+
//! |   Network Layer Reachability Information (variable) |
//! +-----------------------------------------------------+
//! ```

use bytes::BufMut;

use std::net::Ipv4Addr;

use crate::attr::{
    self, AsPath, AttributeValue, Community, MpReach, MpUnreach, Origin, PathAttribute,
};
use crate::context::Context;
use crate::error::{DecodeError, EncodeError, Rfc7606Action, UpdateIssue};
use crate::iana::{Afi, AttributeType, Family, UpdateErrorSubcode};
use crate::message::Notification;
use crate::nlri::{self, Nlri, field_len};
use crate::wire::{Reader, sum};

/// An UPDATE message.
///
/// IPv4 unicast routes travel in `withdrawn` and `nlri`; every other family (and IPv4 unicast too,
/// if a peer chooses) in the MP_REACH_NLRI / MP_UNREACH_NLRI attributes, which stay in
/// `attributes` in their received position. [`announced`](Self::announced) and
/// [`withdrawn_routes`](Self::withdrawn_routes) walk both.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    /// Withdrawn IPv4 unicast routes.
    pub withdrawn: Vec<Nlri>,
    /// Path attributes in the order received (malformed ones removed, see `issues`).
    pub attributes: Vec<PathAttribute>,
    /// Announced IPv4 unicast routes.
    pub nlri: Vec<Nlri>,
    /// RFC 7606 problems found while decoding (empty for a well-formed UPDATE and for UPDATEs
    /// built locally; ignored when encoding). The strongest action is [`action`](Self::action).
    pub issues: Vec<UpdateIssue>,
}

impl Update {
    /// The End-of-RIB marker of a family (RFC 4724 §2): an empty UPDATE for IPv4 unicast, an
    /// empty MP_UNREACH_NLRI for the others.
    pub fn end_of_rib(family: Family) -> Self {
        if family == Family::IPV4_UNICAST {
            Update::default()
        } else {
            Update {
                attributes: vec![PathAttribute::new(AttributeValue::MpUnreachNlri(
                    MpUnreach::end_of_rib(family),
                ))],
                ..Update::default()
            }
        }
    }

    /// Whether this UPDATE is an End-of-RIB marker, and for which family (RFC 4724 §2).
    pub fn is_end_of_rib(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        match self.attributes.as_slice() {
            [] => Some(Family::IPV4_UNICAST),
            [
                PathAttribute {
                    value: AttributeValue::MpUnreachNlri(m),
                    ..
                },
            ] if m.withdrawn.is_empty() => Some(m.family),
            _ => None,
        }
    }

    /// The strongest RFC 7606 action called for by [`issues`](Self::issues), if any.
    pub fn action(&self) -> Option<Rfc7606Action> {
        self.issues.iter().map(|i| i.action).max()
    }

    /// Families to disable (RFC 7606 AFI/SAFI disable), if any.
    pub fn disabled_families(&self) -> impl Iterator<Item = Family> + '_ {
        self.issues
            .iter()
            .filter(|i| i.action == Rfc7606Action::AfiSafiDisable)
            .filter_map(|i| i.family)
    }

    /// The MP_REACH_NLRI attribute, if present.
    pub fn mp_reach(&self) -> Option<&MpReach> {
        self.attributes.iter().find_map(|a| match &a.value {
            AttributeValue::MpReachNlri(m) => Some(m),
            _ => None,
        })
    }

    /// The MP_UNREACH_NLRI attribute, if present.
    pub fn mp_unreach(&self) -> Option<&MpUnreach> {
        self.attributes.iter().find_map(|a| match &a.value {
            AttributeValue::MpUnreachNlri(m) => Some(m),
            _ => None,
        })
    }

    /// All announced routes with their family: the NLRI field (IPv4 unicast), then MP_REACH.
    /// On [`Rfc7606Action::TreatAsWithdraw`] these are the routes to withdraw.
    pub fn announced(&self) -> impl Iterator<Item = (Family, &Nlri)> {
        let mp = self.mp_reach().map(|m| (m.family, m.nlri.as_slice()));
        self.nlri.iter().map(|n| (Family::IPV4_UNICAST, n)).chain(
            mp.into_iter()
                .flat_map(|(f, list)| list.iter().map(move |n| (f, n))),
        )
    }

    /// All withdrawn routes with their family: the Withdrawn Routes field, then MP_UNREACH.
    pub fn withdrawn_routes(&self) -> impl Iterator<Item = (Family, &Nlri)> {
        let mp = self
            .mp_unreach()
            .map(|m| (m.family, m.withdrawn.as_slice()));
        self.withdrawn
            .iter()
            .map(|n| (Family::IPV4_UNICAST, n))
            .chain(
                mp.into_iter()
                    .flat_map(|(f, list)| list.iter().map(move |n| (f, n))),
            )
    }

    /// The first attribute of a type.
    pub fn attribute(&self, t: AttributeType) -> Option<&PathAttribute> {
        attr::find(&self.attributes, t)
    }

    /// The attributes that describe the routes (everything except MP_REACH_NLRI and
    /// MP_UNREACH_NLRI), e.g. to intern as the routes' attribute set.
    pub fn route_attributes(&self) -> impl Iterator<Item = &PathAttribute> {
        self.attributes.iter().filter(|a| {
            !matches!(
                a.value,
                AttributeValue::MpReachNlri(_) | AttributeValue::MpUnreachNlri(_)
            )
        })
    }

    /// The AS_PATH attribute's value.
    pub fn as_path(&self) -> Option<&AsPath> {
        match self.attribute(AttributeType::AsPath).map(|a| &a.value) {
            Some(AttributeValue::AsPath(p)) => Some(p),
            _ => None,
        }
    }

    /// The ORIGIN attribute's value.
    pub fn origin(&self) -> Option<Origin> {
        match self.attribute(AttributeType::Origin).map(|a| &a.value) {
            Some(AttributeValue::Origin(o)) => Some(*o),
            _ => None,
        }
    }

    /// The NEXT_HOP attribute's value (IPv4 NLRI field routes; MP families carry theirs in
    /// [`MpReach::next_hop`]).
    pub fn next_hop(&self) -> Option<Ipv4Addr> {
        match self.attribute(AttributeType::NextHop).map(|a| &a.value) {
            Some(AttributeValue::NextHop(a)) => Some(*a),
            _ => None,
        }
    }

    /// The MULTI_EXIT_DISC attribute's value.
    pub fn med(&self) -> Option<u32> {
        match self
            .attribute(AttributeType::MultiExitDisc)
            .map(|a| &a.value)
        {
            Some(AttributeValue::MultiExitDisc(v)) => Some(*v),
            _ => None,
        }
    }

    /// The LOCAL_PREF attribute's value.
    pub fn local_pref(&self) -> Option<u32> {
        match self.attribute(AttributeType::LocalPref).map(|a| &a.value) {
            Some(AttributeValue::LocalPref(v)) => Some(*v),
            _ => None,
        }
    }

    /// The COMMUNITIES attribute's values (empty if absent).
    pub fn communities(&self) -> &[Community] {
        match self.attribute(AttributeType::Communities).map(|a| &a.value) {
            Some(AttributeValue::Communities(c)) => c,
            _ => &[],
        }
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>, ctx: &Context) -> Result<Self, DecodeError> {
        // RFC 4271 §6.3: lengths that do not fit the message are Malformed Attribute List.
        let list_error = |field, offset, reason: String| {
            DecodeError::new(
                field,
                offset,
                reason,
                Notification::update(UpdateErrorSubcode::MalformedAttributeList, vec![]),
            )
        };
        let at = r.offset();
        let wd_len = r.u16().ok_or_else(|| {
            list_error(
                "UPDATE withdrawn routes length",
                at,
                "message ends early".into(),
            )
        })?;
        let Some(withdrawn_field) = r.sub(usize::from(wd_len)) else {
            return Err(list_error(
                "UPDATE withdrawn routes length",
                at,
                format!(
                    "withdrawn routes length {wd_len} exceeds the {} octets left",
                    r.remaining()
                ),
            ));
        };
        let at = r.offset();
        let attr_len = r.u16().ok_or_else(|| {
            list_error(
                "UPDATE total path attribute length",
                at,
                "message ends before the total path attribute length".into(),
            )
        })?;
        let Some(mut attrs_field) = r.sub(usize::from(attr_len)) else {
            return Err(list_error(
                "UPDATE total path attribute length",
                at,
                format!(
                    "withdrawn routes length {wd_len} + total path attribute length {attr_len} exceed the message"
                ),
            ));
        };
        let nlri_at = r.offset();
        let nlri_field = r.take_rest();

        // RFC 7606 §5.3 / RFC 4271 §6.3: a malformed Withdrawn Routes or NLRI field cannot be
        // parsed around: session reset with Invalid Network Field.
        let ipv4_add_path = ctx.add_path(Family::IPV4_UNICAST);
        let network_error = |field, e: nlri::NlriError| {
            DecodeError::new(
                field,
                e.offset,
                e.reason,
                Notification::update(UpdateErrorSubcode::InvalidNetworkField, vec![]),
            )
        };
        let mut withdrawn = Vec::new();
        nlri::decode_field(
            withdrawn_field.peek_rest(),
            withdrawn_field.offset(),
            Afi::Ipv4,
            ipv4_add_path,
            &mut withdrawn,
        )
        .map_err(|e| network_error("UPDATE withdrawn routes", e))?;
        let mut nlri = Vec::new();
        nlri::decode_field(nlri_field, nlri_at, Afi::Ipv4, ipv4_add_path, &mut nlri)
            .map_err(|e| network_error("UPDATE NLRI", e))?;

        let decoded = attr::decode_list(&mut attrs_field, ctx)?;
        // RFC 7606 §3(d): a missing well-known mandatory attribute is treat-as-withdraw.
        // ORIGIN and AS_PATH are required with any reachable NLRI (RFC 4271 §5, RFC 4760 §3),
        // NEXT_HOP only with NLRI in the NLRI field (RFC 4760 §3).
        let mandatory = [
            (AttributeType::Origin, decoded.saw(AttributeType::Origin)),
            (AttributeType::AsPath, decoded.saw(AttributeType::AsPath)),
            (AttributeType::NextHop, decoded.saw(AttributeType::NextHop)),
        ];
        let mut update = Update {
            withdrawn,
            attributes: decoded.attributes,
            nlri,
            issues: decoded.issues,
        };
        let has_mp_reach = update.mp_reach().is_some();
        let announcing = !update.nlri.is_empty() || has_mp_reach;
        for (t, seen) in mandatory {
            let required = match t {
                AttributeType::NextHop => !update.nlri.is_empty(),
                _ => announcing,
            };
            if required && !seen {
                update.issues.push(UpdateIssue {
                    action: Rfc7606Action::TreatAsWithdraw,
                    attribute: Some(t),
                    family: None,
                    offset: nlri_at,
                    reason: format!("missing well-known attribute {t:?}"),
                    notification: Notification::update(
                        UpdateErrorSubcode::MissingWellKnownAttribute,
                        vec![t.into()],
                    ),
                });
            }
        }

        // RFC 7606 §5.2: an UPDATE without any NLRI (no NLRI field, no MP_REACH/MP_UNREACH,
        // nothing withdrawn) whose attributes call for more than attribute discard resets the
        // session: treat-as-withdraw would have nothing to act on.
        let no_nlri = update.nlri.is_empty()
            && update.withdrawn.is_empty()
            && !has_mp_reach
            && update.mp_unreach().is_none();
        if no_nlri
            && let Some(issue) = update
                .issues
                .iter()
                .find(|i| i.action == Rfc7606Action::TreatAsWithdraw)
        {
            return Err(DecodeError::new(
                "UPDATE path attribute",
                issue.offset,
                format!("{} in an UPDATE without NLRI (RFC 7606 §5.2)", issue.reason),
                issue.notification.clone(),
            ));
        }
        Ok(update)
    }

    pub(crate) fn body_len(&self, ctx: &Context) -> usize {
        let ap = ctx.add_path(Family::IPV4_UNICAST);
        sum([
            4,
            field_len(&self.withdrawn, ap),
            self.attributes_len(ctx),
            field_len(&self.nlri, ap),
        ])
    }

    fn attributes_len(&self, ctx: &Context) -> usize {
        sum(self.attributes.iter().map(|a| a.encoded_len(ctx)))
    }

    pub(crate) fn check(&self, ctx: &Context) -> Result<(), EncodeError> {
        for a in &self.attributes {
            a.check(ctx)?;
        }
        let v4 = |field, list: &[Nlri]| {
            if let Some(bad) = list.iter().find(|n| n.prefix.addr().is_ipv6()) {
                return Err(EncodeError::InvalidValue {
                    field,
                    reason: format!("{} is not IPv4 (use MP_REACH/MP_UNREACH)", bad.prefix),
                });
            }
            Ok(())
        };
        v4("UPDATE withdrawn routes", &self.withdrawn)?;
        v4("UPDATE NLRI", &self.nlri)?;
        let ap = ctx.add_path(Family::IPV4_UNICAST);
        for (field, len) in [
            ("UPDATE withdrawn routes", field_len(&self.withdrawn, ap)),
            ("UPDATE path attributes", self.attributes_len(ctx)),
        ] {
            if len > usize::from(u16::MAX) {
                return Err(EncodeError::FieldTooLong {
                    field,
                    length: len,
                    max: usize::from(u16::MAX),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn encode_body(&self, ctx: &Context, buf: &mut impl BufMut) {
        let ap = ctx.add_path(Family::IPV4_UNICAST);
        buf.put_u16(u16::try_from(field_len(&self.withdrawn, ap)).unwrap_or(u16::MAX));
        for n in &self.withdrawn {
            n.encode(ap, buf);
        }
        buf.put_u16(u16::try_from(self.attributes_len(ctx)).unwrap_or(u16::MAX));
        for a in &self.attributes {
            a.encode(ctx, buf);
        }
        for n in &self.nlri {
            n.encode(ap, buf);
        }
    }
}
