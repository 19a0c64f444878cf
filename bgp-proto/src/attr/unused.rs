//! Attribute types this crate knows of but does not decode into values: each has a published
//! structure and (mostly) its own error-handling rule. A malformed instance is never kept, so it
//! can never be passed on to another peer: the incidents of 2023 (attribute 29) and 2025
//! (attribute 40) were speakers forwarding exactly such attributes, making their receivers reset.
//!
//! | type | name | structure checked | malformed → |
//! |---|---|---|---|
//! | 22 | PMSI_TUNNEL (RFC 6514 §5) | flags, tunnel type, label (5 octets); Ingress Replication id 4 or 16 octets | attribute discard (no published rule) |
//! | 23 | TUNNEL_ENCAPSULATION (RFC 9012 §2) | TLVs and sub-TLVs exactly fill the attribute | treat-as-withdraw (RFC 9012 §13) |
//! | 25 | IPv6 Address Specific Extended Community (RFC 5701) | non-zero multiple of 20 octets | treat-as-withdraw (RFC 7606 §7.15) |
//! | 26 | AIGP (RFC 7311 §3) | TLVs fill the attribute; an AIGP TLV (type 1) of length 11 | attribute discard (RFC 7311 §3.2.1) |
//! | 29 | BGP-LS (RFC 9552 §5.3) | TLVs exactly fill the attribute | attribute discard (RFC 9552 §8.2.2) |
//! | 40 | BGP Prefix-SID (RFC 8669 §3) | TLVs fill the attribute; Label-Index 7 octets, Originator SRGB 2 + 6n | attribute discard (RFC 8669 §6) |
//!
//! Optional/Transitive flags in conflict with the type's are malformed too (RFC 7606 §3(c)).

use crate::error::Rfc7606Action;
use crate::iana::UpdateErrorSubcode;

/// What is wrong with an attribute of one of these types, and what to do.
pub(crate) struct Malformed {
    /// RFC 7606 action.
    pub(crate) action: Rfc7606Action,
    /// RFC 4271 §6.3 subcode for the log and for a reset.
    pub(crate) subcode: UpdateErrorSubcode,
    /// In words.
    pub(crate) reason: String,
}

/// Optional (0x80) and Transitive (0x40) bits each of these types carries, and its name.
fn expected(code: u8) -> Option<(u8, &'static str, Rfc7606Action)> {
    const OPT: u8 = 0x80;
    const OPT_TRANS: u8 = 0xc0;
    Some(match code {
        22 => (OPT_TRANS, "PMSI_TUNNEL", Rfc7606Action::AttributeDiscard),
        // RFC 9012 §13.
        23 => (
            OPT_TRANS,
            "TUNNEL_ENCAPSULATION",
            Rfc7606Action::TreatAsWithdraw,
        ),
        // RFC 7606 §7.15.
        25 => (
            OPT_TRANS,
            "IPV6_EXTENDED_COMMUNITIES",
            Rfc7606Action::TreatAsWithdraw,
        ),
        // RFC 7311 §3.2.1.
        26 => (OPT, "AIGP", Rfc7606Action::AttributeDiscard),
        // RFC 9552 §8.2.2.
        29 => (OPT, "BGP-LS", Rfc7606Action::AttributeDiscard),
        // RFC 8669 §6.
        40 => (OPT_TRANS, "PREFIX_SID", Rfc7606Action::AttributeDiscard),
        _ => return None,
    })
}

/// Checks an attribute of type `code` with `flags` and `value`: `None` when it is well-formed
/// or not one of these types.
pub(crate) fn check(code: u8, flags: u8, value: &[u8]) -> Option<Malformed> {
    let (want, name, action) = expected(code)?;
    let malformed = |subcode, reason: String| {
        Some(Malformed {
            action,
            subcode,
            reason: format!("{name} (type {code}): {reason}"),
        })
    };
    // RFC 7606 §3(c): Optional/Transitive in conflict with the type.
    if flags & 0xc0 != want {
        return malformed(
            UpdateErrorSubcode::AttributeFlagsError,
            format!("flags {flags:#04x} but the type requires {want:#04x}"),
        );
    }
    let problem = match code {
        22 => pmsi_tunnel(value),
        23 => tunnel_encapsulation(value),
        25 => (value.is_empty() || !value.len().is_multiple_of(20))
            .then(|| format!("length {} is not a non-zero multiple of 20", value.len())),
        26 => aigp(value),
        29 => tlvs(value, 2, 2, |_, _| None),
        40 => prefix_sid(value),
        _ => None,
    };
    problem.and_then(|reason| malformed(UpdateErrorSubcode::OptionalAttributeError, reason))
}

/// RFC 6514 §5: Flags (1), Tunnel Type (1), MPLS Label (3), Tunnel Identifier.
fn pmsi_tunnel(value: &[u8]) -> Option<String> {
    let Some((header, id)) = value.split_at_checked(5) else {
        return Some(format!(
            "length {} is shorter than the 5-octet header",
            value.len()
        ));
    };
    // Tunnel type 6, Ingress Replication: the identifier is the endpoint's unicast address
    // (RFC 6514 §5, RFC 7988).
    if header.get(1) == Some(&6) && !matches!(id.len(), 4 | 16) {
        return Some(format!(
            "Ingress Replication tunnel identifier of {} octets (4 or 16)",
            id.len()
        ));
    }
    None
}

/// Walks `value` as TLVs with a `type_len`-octet type and a `len_len`-octet length (counting the
/// value only); `each(type, value)` may report a problem with one TLV. TLVs must fill `value`
/// exactly, and there must be at least one.
fn tlvs(
    value: &[u8],
    type_len: usize,
    len_len: usize,
    mut each: impl FnMut(u16, &[u8]) -> Option<String>,
) -> Option<String> {
    if value.is_empty() {
        return Some("no TLV".into());
    }
    let mut rest = value;
    while !rest.is_empty() {
        let Some((header, tail)) = rest.split_at_checked(type_len.saturating_add(len_len)) else {
            return Some(format!(
                "{} octets left, too few for a TLV header",
                rest.len()
            ));
        };
        let (t, l) = header.split_at(type_len);
        let t = be(t);
        let l = usize::from(be(l));
        let Some((v, tail)) = tail.split_at_checked(l) else {
            return Some(format!(
                "TLV type {t} length {l} overruns the attribute ({} octets left)",
                tail.len()
            ));
        };
        if let Some(problem) = each(t, v) {
            return Some(problem);
        }
        rest = tail;
    }
    None
}

fn be(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |acc, b| acc << 8 | u16::from(*b))
}

/// RFC 9012 §2: TLVs with a 2-octet type and 2-octet length; each value is a sequence of
/// sub-TLVs with a 1-octet type and a 1-octet (types 0-127) or 2-octet (128-255) length.
fn tunnel_encapsulation(value: &[u8]) -> Option<String> {
    tlvs(value, 2, 2, |tunnel_type, mut sub| {
        while !sub.is_empty() {
            let Some((&t, tail)) = sub.split_first() else {
                break;
            };
            let len_len = if t < 128 { 1 } else { 2 };
            let Some((l, tail)) = tail.split_at_checked(len_len) else {
                return Some(format!(
                    "tunnel type {tunnel_type}: sub-TLV {t} header cut short"
                ));
            };
            let l = usize::from(be(l));
            let Some((_, tail)) = tail.split_at_checked(l) else {
                return Some(format!(
                    "tunnel type {tunnel_type}: sub-TLV {t} length {l} overruns its TLV"
                ));
            };
            sub = tail;
        }
        None
    })
}

/// RFC 7311 §3: TLVs with a 1-octet type and a 2-octet length that counts the 3-octet header;
/// the AIGP TLV (type 1) has length 11.
fn aigp(value: &[u8]) -> Option<String> {
    let mut rest = value;
    let mut has_aigp = false;
    while !rest.is_empty() {
        let Some((header, _)) = rest.split_at_checked(3) else {
            return Some(format!(
                "{} octets left, too few for a TLV header",
                rest.len()
            ));
        };
        let (t, l) = header.split_at(1);
        let t = be(t);
        let l = usize::from(be(l));
        if l < 3 {
            return Some(format!(
                "TLV type {t} length {l} is shorter than its header"
            ));
        }
        let Some((_, tail)) = rest.split_at_checked(l) else {
            return Some(format!(
                "TLV type {t} length {l} overruns the attribute ({} octets left)",
                rest.len()
            ));
        };
        if t == 1 {
            if l != 11 {
                return Some(format!("AIGP TLV length {l} (must be 11)"));
            }
            has_aigp = true;
        }
        rest = tail;
    }
    (!has_aigp).then(|| "no AIGP TLV (type 1)".into())
}

/// RFC 8669 §3: TLVs with a 1-octet type and a 2-octet length; Label-Index (1) is 7 octets,
/// Originator SRGB (3) is 2 + a non-zero multiple of 6.
fn prefix_sid(value: &[u8]) -> Option<String> {
    tlvs(value, 1, 2, |t, v| match t {
        1 if v.len() != 7 => Some(format!("Label-Index TLV length {} (must be 7)", v.len())),
        3 if v.len() < 8 || !v.len().saturating_sub(2).is_multiple_of(6) => Some(format!(
            "Originator SRGB TLV length {} (must be 2 + 6n, n >= 1)",
            v.len()
        )),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn action(code: u8, flags: u8, value: &str) -> Option<Rfc7606Action> {
        check(code, flags, &hex(value)).map(|m| m.action)
    }

    const DISCARD: Option<Rfc7606Action> = Some(Rfc7606Action::AttributeDiscard);
    const WITHDRAW: Option<Rfc7606Action> = Some(Rfc7606Action::TreatAsWithdraw);

    #[test]
    fn well_formed_instances_pass() {
        assert_eq!(action(22, 0xc0, "00060000000a000002"), None);
        assert_eq!(action(22, 0xc0, "00080000000a000002"), None); // RFC 7524 type 8
        assert_eq!(action(23, 0xc0, "00070003010100"), None);
        assert_eq!(action(23, 0xc0, "0008000580000201ff"), None); // 2-octet sub-TLV length
        assert_eq!(
            action(25, 0xc0, "000220010db80000000000000000000000010001"),
            None
        );
        assert_eq!(action(26, 0x80, "01000b000000000000000a"), None);
        assert_eq!(action(29, 0x80, "0400000100"), None);
        assert_eq!(action(40, 0xc0, "01000700000000000001"), None);
        assert_eq!(action(40, 0xc0, "0300080000000010000100"), None);
        assert_eq!(action(99, 0x00, ""), None); // not one of these types
    }

    /// The attribute-discard and treat-as-withdraw cases of FRR's RFC 7606 topotests for these
    /// types, with the rule tern applies (docs/rfc-compliance.md lists where it departs).
    #[test]
    fn malformed_instances_get_their_rule() {
        assert_eq!(action(22, 0x80, "00060000000a000002"), DISCARD);
        assert_eq!(action(22, 0xc0, "00060000"), DISCARD);
        assert_eq!(action(22, 0xc0, "00060000000a00000200"), DISCARD);
        assert_eq!(action(23, 0x80, "00070000"), WITHDRAW);
        assert_eq!(action(23, 0xc0, "000700"), WITHDRAW);
        assert_eq!(action(23, 0xc0, "0007000401"), WITHDRAW);
        assert_eq!(action(23, 0xc0, "0007000401ff"), WITHDRAW);
        assert_eq!(action(23, 0xc0, ""), WITHDRAW);
        assert_eq!(
            action(25, 0x80, "000220010db80000000000000000000000010001"),
            WITHDRAW
        );
        assert_eq!(action(25, 0xc0, ""), WITHDRAW);
        assert_eq!(
            action(25, 0xc0, "000220010db8000000000000000000000001000100"),
            WITHDRAW
        );
        assert_eq!(action(26, 0xc0, "01000b0000000000000000000a"), DISCARD);
        assert_eq!(action(26, 0x80, "09000b0000000000000000000a"), DISCARD);
        assert_eq!(action(26, 0x80, "0100050000000000000000000a"), DISCARD);
        assert_eq!(action(26, 0x80, ""), DISCARD);
        assert_eq!(action(29, 0xc0, "0400000100"), DISCARD);
        assert_eq!(action(29, 0x80, "040000ff00"), DISCARD);
        assert_eq!(action(29, 0x80, "0400"), DISCARD);
        assert_eq!(action(40, 0x80, "010007000000000001"), DISCARD);
        assert_eq!(action(40, 0xc0, "0100ff000000"), DISCARD);
        assert_eq!(action(40, 0xc0, "0100"), DISCARD);
        assert_eq!(action(40, 0xc0, "010000"), DISCARD);
    }
}
