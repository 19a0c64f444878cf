//! Packing many prefixes that share one attribute set into as few UPDATEs as fit.
//!
//! IPv4 unicast with an IPv4 next hop travels in the Withdrawn Routes and NLRI fields; every other
//! family (and IPv4 with an IPv6 next hop, RFC 8950) in MP_UNREACH_NLRI / MP_REACH_NLRI, placed
//! first in the attribute list (RFC 7606 §5.1). Messages are filled in order: withdrawals first,
//! then announcements, each message holding as many entries as the size limit of the context
//! allows (4096, or 65535 with extended messages), so every message but the last is full.

use crate::attr::{AttrFlags, AttributeValue, MpReach, MpUnreach, NextHop, PathAttribute};
use crate::context::Context;
use crate::error::EncodeError;
use crate::iana::{Afi, AttributeType, Family, MessageType};
use crate::message::{HEADER_LEN, Update};
use crate::nlri::Nlri;
use crate::wire::sum;

/// Builds the UPDATEs for one family: withdrawals and announcements sharing one attribute set.
///
/// ```
/// use bgp_proto::builder::UpdateBuilder;
/// use bgp_proto::attr::{AsPath, NextHop};
/// use bgp_proto::{AttributeValue, Context, Family, Nlri, Origin, PathAttribute};
///
/// let attrs = [
///     PathAttribute::new(AttributeValue::Origin(Origin::Igp)),
///     PathAttribute::new(AttributeValue::AsPath(AsPath::sequence([65001]))),
/// ];
/// let prefixes: Vec<Nlri> = (0..2000u32)
///     .map(|i| Nlri::new(format!("10.{}.{}.0/24", i / 256, i % 256).parse().unwrap()))
///     .collect();
/// let updates = UpdateBuilder::new(Context::default(), Family::IPV4_UNICAST)
///     .announce(&attrs, NextHop::Ipv4("192.0.2.1".parse().unwrap()), &prefixes)
///     .build()
///     .unwrap();
/// assert_eq!(updates.len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct UpdateBuilder<'a> {
    ctx: Context,
    family: Family,
    withdraw: &'a [Nlri],
    announce: Option<(&'a [PathAttribute], NextHop, &'a [Nlri])>,
}

/// The attribute list shared by the announcing messages, with the MP attributes left out.
struct Plan {
    /// Whether the family travels in MP attributes.
    mp: bool,
    /// Encoded length of the shared attributes (without MP_REACH).
    shared_len: usize,
    shared: Vec<PathAttribute>,
    next_hop: Option<NextHop>,
    add_path: bool,
}

fn attr_header(value_len: usize) -> usize {
    if value_len > 255 { 4 } else { 3 }
}

impl<'a> UpdateBuilder<'a> {
    /// A builder for `family`, encoding with the send context `ctx`.
    pub fn new(ctx: Context, family: Family) -> Self {
        UpdateBuilder {
            ctx,
            family,
            withdraw: &[],
            announce: None,
        }
    }

    /// Prefixes to withdraw.
    pub fn withdraw(mut self, prefixes: &'a [Nlri]) -> Self {
        self.withdraw = prefixes;
        self
    }

    /// Prefixes to announce with `attributes` (NEXT_HOP, MP_REACH_NLRI and MP_UNREACH_NLRI in it
    /// are ignored: the next hop is `next_hop`).
    pub fn announce(
        mut self,
        attributes: &'a [PathAttribute],
        next_hop: NextHop,
        prefixes: &'a [Nlri],
    ) -> Self {
        self.announce = Some((attributes, next_hop, prefixes));
        self
    }

    fn plan(&self) -> Plan {
        let next_hop = self.announce.as_ref().map(|(_, nh, _)| *nh);
        let mp = !(self.family == Family::IPV4_UNICAST
            && matches!(next_hop, None | Some(NextHop::Ipv4(_))));
        let mut shared: Vec<PathAttribute> = self
            .announce
            .as_ref()
            .map(|(attrs, _, _)| attrs.iter())
            .into_iter()
            .flatten()
            .filter(|a| {
                !matches!(
                    AttributeType::from(a.type_code()),
                    AttributeType::NextHop
                        | AttributeType::MpReachNlri
                        | AttributeType::MpUnreachNlri
                )
            })
            .cloned()
            .collect();
        if !mp && let Some(NextHop::Ipv4(addr)) = next_hop {
            shared.push(PathAttribute::new(AttributeValue::NextHop(addr)));
        }
        // Attributes in type order, as most speakers send them.
        shared.sort_by_key(PathAttribute::type_code);
        // Lengths may change the Extended Length bit; recompute from scratch in `encode`.
        for a in &mut shared {
            a.flags = AttrFlags(a.flags.0 & !AttrFlags::EXTENDED_LENGTH);
        }
        let shared_len = sum(shared.iter().map(|a| a.encoded_len(&self.ctx)));
        Plan {
            mp,
            shared_len,
            shared,
            next_hop,
            add_path: self.ctx.add_path(self.family),
        }
    }

    /// Packs the prefixes into UPDATEs. Fails if the family does not match a prefix, or if the
    /// attributes leave no room for a single prefix.
    pub fn build(&self) -> Result<Vec<Update>, EncodeError> {
        let plan = self.plan();
        let announce: &[Nlri] = self
            .announce
            .as_ref()
            .map(|(_, _, p)| *p)
            .unwrap_or_default();
        let want_v6 = self.family.afi == Afi::Ipv6;
        if !self.family.is_prefix_family() {
            return Err(EncodeError::InvalidValue {
                field: "UpdateBuilder family",
                reason: format!("{} NLRI are not prefixes", self.family),
            });
        }
        if let Some(bad) = self
            .withdraw
            .iter()
            .chain(announce)
            .find(|n| n.prefix.addr().is_ipv6() != want_v6)
        {
            return Err(EncodeError::InvalidValue {
                field: "UpdateBuilder prefixes",
                reason: format!("{} is not in family {}", bad.prefix, self.family),
            });
        }
        let max = self.ctx.max_message_len(MessageType::Update);
        let nh_len = plan.next_hop.map(|n| n.encoded_len()).unwrap_or(0);
        // Octets of a message holding `w` octets of withdrawn entries and `a` of announced ones.
        let size = |w: usize, a: usize, announcing: bool| -> usize {
            if plan.mp {
                let unreach = if w > 0 || !announcing {
                    let v = sum([3, w]);
                    sum([attr_header(v), v])
                } else {
                    0
                };
                let reach = if announcing {
                    let v = sum([5, nh_len, a]);
                    sum([plan.shared_len, attr_header(v), v])
                } else {
                    0
                };
                sum([HEADER_LEN, 4, unreach, reach])
            } else {
                sum([
                    HEADER_LEN,
                    4,
                    w,
                    if announcing { plan.shared_len } else { 0 },
                    a,
                ])
            }
        };

        let mut messages: Vec<(Vec<Nlri>, Vec<Nlri>)> = Vec::new();
        let (mut w, mut a): (Vec<Nlri>, Vec<Nlri>) = (Vec::new(), Vec::new());
        let (mut w_len, mut a_len) = (0usize, 0usize);
        for n in self.withdraw {
            let len = n.encoded_len(plan.add_path);
            if size(w_len.saturating_add(len), 0, false) > max && !w.is_empty() {
                messages.push((std::mem::take(&mut w), Vec::new()));
                w_len = 0;
            }
            w.push(*n);
            w_len = w_len.saturating_add(len);
        }
        for n in announce {
            let len = n.encoded_len(plan.add_path);
            if size(w_len, a_len.saturating_add(len), true) > max {
                if w.is_empty() && a.is_empty() {
                    return Err(EncodeError::MessageTooLong {
                        message: "UPDATE",
                        length: size(0, len, true),
                        max,
                    });
                }
                messages.push((std::mem::take(&mut w), std::mem::take(&mut a)));
                w_len = 0;
                a_len = 0;
            }
            a.push(*n);
            a_len = a_len.saturating_add(len);
        }
        if !w.is_empty() || !a.is_empty() {
            messages.push((w, a));
        }
        Ok(messages
            .into_iter()
            .map(|(w, a)| self.message(&plan, w, a))
            .collect())
    }

    fn message(&self, plan: &Plan, withdrawn: Vec<Nlri>, announced: Vec<Nlri>) -> Update {
        let mut update = Update::default();
        if plan.mp {
            if !withdrawn.is_empty() || announced.is_empty() {
                update
                    .attributes
                    .push(PathAttribute::new(AttributeValue::MpUnreachNlri(
                        MpUnreach {
                            family: self.family,
                            withdrawn,
                        },
                    )));
            }
            if let (false, Some(next_hop)) = (announced.is_empty(), plan.next_hop) {
                update
                    .attributes
                    .push(PathAttribute::new(AttributeValue::MpReachNlri(MpReach {
                        family: self.family,
                        next_hop,
                        reserved: 0,
                        nlri: announced,
                    })));
                update.attributes.extend(plan.shared.iter().cloned());
            }
        } else {
            update.withdrawn = withdrawn;
            if !announced.is_empty() {
                update.attributes = plan.shared.clone();
                update.nlri = announced;
            }
        }
        update
    }
}
