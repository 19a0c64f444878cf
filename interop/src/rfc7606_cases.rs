//! The 81 eBGP cases of FRR's RFC 7606 topotests (`tests/topotests/bgp_rfc7606_attr_discard`,
//! `bgp_rfc7606_treat_as_withdraw`, `bgp_rfc7606_session_reset` in FRRouting/frr: the case
//! names, attribute type, flags and value octets; read from FRR's tables, not their code), with
//! the outcome FRR's tests expect from an eBGP peer and the outcome tern must give, per the RFC
//! section named. `docs/rfc-compliance.md` lists every case; where tern departs from FRR the
//! `why` says so.
//!
//! Every case is an IPv4 announcement of `10.<type>.<n>.1/32` (the n-th case of that type; 3 for
//! the NEXT_HOP cases) with ORIGIN IGP, AS_PATH [65001] and NEXT_HOP the peer, plus the case's
//! raw attribute (replacing ORIGIN or AS_PATH when it is one), as FRR's sender builds them.

use std::collections::BTreeMap;

/// What happens to a case's route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Installed; the malformed attribute is removed and not passed on (RFC 7606 attribute
    /// discard, or an unknown non-transitive attribute dropped, RFC 4271 §5).
    Discard,
    /// Installed and the attribute passed on with the Partial bit (an unknown optional
    /// transitive attribute, RFC 4271 §5, §9).
    Forward,
    /// Not installed; an earlier valid announcement of the prefix is withdrawn (RFC 7606
    /// treat-as-withdraw).
    Withdraw,
    /// RFC 7606 AFI/SAFI disable: the family of the malformed MP_REACH/MP_UNREACH is disabled
    /// (here IPv6, not negotiated: nothing to delete), the session stays up, the UPDATE's IPv4
    /// route is treated as withdrawn.
    DisableFamily,
    /// Session reset (FRR's expectation for the MP_REACH/MP_UNREACH cases).
    SessionReset,
}

impl Outcome {
    /// Short name.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Discard => "attribute discard",
            Outcome::Forward => "accepted, passed on",
            Outcome::Withdraw => "treat-as-withdraw",
            Outcome::DisableFamily => "AFI/SAFI disable",
            Outcome::SessionReset => "session reset",
        }
    }
}

/// One case.
#[derive(Debug, Clone)]
pub struct Case {
    /// FRR's case name.
    pub name: &'static str,
    /// FRR's directory (`attr_discard`, `treat_as_withdraw`, `session_reset`).
    pub table: &'static str,
    /// The raw attribute: type, flags, value (hex); `None` for NEXT_HOP cases.
    pub attribute: Option<(u8, u8, &'static str)>,
    /// NEXT_HOP override (semantic NEXT_HOP cases).
    pub next_hop: Option<&'static str>,
    /// What FRR's tests expect from an eBGP peer.
    pub frr: Outcome,
    /// What tern does.
    pub tern: Outcome,
    /// The governing RFC section.
    pub rfc: &'static str,
    /// Why tern departs from FRR (empty when it does not).
    pub why: &'static str,
    /// The announced prefix (set by [`cases`]).
    pub prefix: String,
}

impl Case {
    /// The attribute type code the case's prefix is numbered by (3 for NEXT_HOP cases).
    pub fn type_code(&self) -> u8 {
        self.attribute.map_or(3, |(t, _, _)| t)
    }
}

#[allow(clippy::too_many_arguments)]
fn case(
    name: &'static str,
    table: &'static str,
    attribute: Option<(u8, u8, &'static str)>,
    next_hop: Option<&'static str>,
    frr: Outcome,
    tern: Outcome,
    rfc: &'static str,
    why: &'static str,
) -> Case {
    Case {
        name,
        table,
        attribute,
        next_hop,
        frr,
        tern,
        rfc,
        why,
        prefix: String::new(),
    }
}

/// Every case, numbered.
pub fn cases() -> Vec<Case> {
    use Outcome::*;
    const D: &str = "attr_discard";
    const W: &str = "treat_as_withdraw";
    const R: &str = "session_reset";
    let a = |t: u8, f: u8, v: &'static str| Some((t, f, v));
    let disable_why = "RFC 7606 §7.11 allows AFI/SAFI disable or session reset; tern disables the family so that the session and its other families stay up";
    let ebgp_why = "RFC 7606 §7.9-7.10: from an external peer the attribute is discarded whatever is wrong with it, flags included";
    let as4_why = "RFC 6793 §3: a NEW speaker discards AS4_PATH from another NEW speaker (malformed or not; §6: malformed AS4_PATH is attribute discard)";
    let pmsi_why = "RFC 6514 gives no error rule: tern, which does not use the attribute, discards a malformed one (never passes it on) and keeps the route";
    let mut all = vec![
        // -- attr_discard (23 eBGP cases) --
        case(
            "atomic-aggregate-len-1",
            D,
            a(6, 0x40, "00"),
            None,
            Discard,
            Discard,
            "RFC 7606 §7.6",
            "",
        ),
        case(
            "aggregator-len-5",
            D,
            a(7, 0xc0, "0000fde90a"),
            None,
            Discard,
            Discard,
            "RFC 7606 §7.7",
            "",
        ),
        case(
            "aggregator-len-7",
            D,
            a(7, 0xc0, "0000fde90a0000"),
            None,
            Discard,
            Discard,
            "RFC 7606 §7.7",
            "",
        ),
        case(
            "aggregator-len-9",
            D,
            a(7, 0xc0, "0000fde90a00000200"),
            None,
            Discard,
            Discard,
            "RFC 7606 §7.7",
            "",
        ),
        case(
            "aggregator-as-zero",
            D,
            a(7, 0xc0, "000000000a000002"),
            None,
            Discard,
            Discard,
            "RFC 7607 §2",
            "",
        ),
        case(
            "as4-aggregator-len-7",
            D,
            a(18, 0xc0, "0000fde90a0000"),
            None,
            Discard,
            Discard,
            "RFC 6793 §6",
            "",
        ),
        case(
            "as4-aggregator-len-9",
            D,
            a(18, 0xc0, "0000fde90a00000200"),
            None,
            Discard,
            Discard,
            "RFC 6793 §6",
            "",
        ),
        case(
            "originator-id-len-3",
            D,
            a(9, 0x80, "0a0000"),
            None,
            Discard,
            Discard,
            "RFC 7606 §7.9",
            "",
        ),
        case(
            "originator-id-len-5",
            D,
            a(9, 0x80, "0a00000200"),
            None,
            Discard,
            Discard,
            "RFC 7606 §7.9",
            "",
        ),
        case(
            "cluster-list-len-0",
            D,
            a(10, 0x80, ""),
            None,
            Discard,
            Discard,
            "RFC 7606 §7.10",
            "",
        ),
        case(
            "cluster-list-len-5",
            D,
            a(10, 0x80, "0a00000200"),
            None,
            Discard,
            Discard,
            "RFC 7606 §7.10",
            "",
        ),
        case(
            "aigp-flag-trans",
            D,
            a(26, 0xc0, "01000b0000000000000000000a"),
            None,
            Discard,
            Discard,
            "RFC 7606 §3(c), RFC 7311 §3.2.1",
            "",
        ),
        case(
            "prefix-sid-flag-nontrans",
            D,
            a(40, 0x80, "010007000000000001"),
            None,
            Discard,
            Discard,
            "RFC 7606 §3(c), RFC 8669 §6",
            "",
        ),
        case(
            "prefix-sid-tlv-overrun",
            D,
            a(40, 0xc0, "0100ff000000"),
            None,
            Discard,
            Discard,
            "RFC 8669 §6",
            "",
        ),
        case(
            "prefix-sid-truncated-header",
            D,
            a(40, 0xc0, "0100"),
            None,
            Discard,
            Discard,
            "RFC 8669 §6",
            "",
        ),
        case(
            "prefix-sid-bad-label-index",
            D,
            a(40, 0xc0, "010000"),
            None,
            Discard,
            Discard,
            "RFC 8669 §6",
            "",
        ),
        case(
            "link-state-flag-trans",
            D,
            a(29, 0xc0, "0400000100"),
            None,
            Discard,
            Discard,
            "RFC 9552 §8.2.2",
            "",
        ),
        case(
            "link-state-tlv-overrun",
            D,
            a(29, 0x80, "040000ff00"),
            None,
            Discard,
            Discard,
            "RFC 9552 §8.2.2",
            "",
        ),
        case(
            "link-state-truncated-tlv",
            D,
            a(29, 0x80, "0400"),
            None,
            Discard,
            Discard,
            "RFC 9552 §8.2.2",
            "",
        ),
        case(
            "nhc-bad-afi-safi",
            D,
            a(39, 0xc0, "00ff010001000100"),
            None,
            Discard,
            Forward,
            "RFC 4271 §5 (type 39 is a draft)",
            "type 39 (next-hop capability) is an Internet-Draft without an RFC: to tern it is an unknown optional transitive attribute, passed on unchanged with Partial set (RFC 4271 §5)",
        ),
        case(
            "nhc-tlv-overrun",
            D,
            a(39, 0xc0, "0001010001ff00"),
            None,
            Discard,
            Forward,
            "RFC 4271 §5 (type 39 is a draft)",
            "as nhc-bad-afi-safi",
        ),
        case(
            "unknown-fd-nontransitive",
            D,
            a(0xfd, 0x80, "deadbeef"),
            None,
            Discard,
            Discard,
            "RFC 4271 §5 (unknown non-transitive: not passed on)",
            "",
        ),
        case(
            "unknown-fe-transitive",
            D,
            a(0xfe, 0xc0, "deadbeef"),
            None,
            Discard,
            Forward,
            "RFC 4271 §5, §9",
            "none: FRR's table labels it discard but requires that it reach the next router (MUST_REACH_R2)",
        ),
        // -- treat_as_withdraw (54 eBGP cases) --
        case(
            "origin-flag-optional",
            W,
            a(1, 0xc0, "00"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §3(c)",
            "",
        ),
        case(
            "origin-flag-partial",
            W,
            a(1, 0x60, "00"),
            None,
            Withdraw,
            Withdraw,
            "RFC 4271 §4.3, RFC 7606 §7.1",
            "",
        ),
        case(
            "origin-len-0",
            W,
            a(1, 0x40, ""),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §7.1",
            "",
        ),
        case(
            "origin-len-2",
            W,
            a(1, 0x40, "0000"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §7.1",
            "",
        ),
        case(
            "origin-value-3",
            W,
            a(1, 0x40, "03"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §7.1",
            "",
        ),
        case(
            "origin-value-4",
            W,
            a(1, 0x40, "04"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §7.1",
            "",
        ),
        case(
            "origin-value-255",
            W,
            a(1, 0x40, "ff"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §7.1",
            "",
        ),
        case(
            "aspath-flag-optional",
            W,
            a(2, 0xc0, "02010000fde9"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §3(c)",
            "",
        ),
        case(
            "aspath-flag-partial",
            W,
            a(2, 0x60, "02010000fde9"),
            None,
            Withdraw,
            Withdraw,
            "RFC 4271 §4.3, RFC 7606 §7.2",
            "",
        ),
        case(
            "aspath-seg-type-0",
            W,
            a(2, 0x40, "00010000fde9"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §7.2",
            "",
        ),
        case(
            "aspath-seg-type-5",
            W,
            a(2, 0x40, "05010000fde9"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §7.2",
            "",
        ),
        case(
            "aspath-seg-len-0",
            W,
            a(2, 0x40, "0200"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §7.2",
            "",
        ),
        case(
            "aspath-seg-len-overrun",
            W,
            a(2, 0x40, "02ff0000fde9"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §7.2",
            "",
        ),
        case(
            "aspath-as-zero",
            W,
            a(2, 0x40, "020100000000"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7607 §2",
            "",
        ),
        case(
            "nexthop-zero",
            W,
            None,
            Some("0.0.0.0"),
            Withdraw,
            Withdraw,
            "RFC 4271 §6.3, RFC 7606 §7.3",
            "",
        ),
        case(
            "nexthop-loopback",
            W,
            None,
            Some("127.0.0.1"),
            Withdraw,
            Withdraw,
            "RFC 4271 §6.3, RFC 7606 §7.3",
            "",
        ),
        case(
            "nexthop-multicast",
            W,
            None,
            Some("224.0.0.1"),
            Withdraw,
            Withdraw,
            "RFC 4271 §6.3, RFC 7606 §7.3",
            "",
        ),
        case(
            "med-flag-trans",
            W,
            a(4, 0xc0, "0000000a"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §3(c)",
            "",
        ),
        case(
            "med-len-3",
            W,
            a(4, 0x80, "000000"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §7.4",
            "",
        ),
        case(
            "med-len-5",
            W,
            a(4, 0x80, "000000000a"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §7.4",
            "",
        ),
        case(
            "med-len-0",
            W,
            a(4, 0x80, ""),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §7.4",
            "",
        ),
        case(
            "comm-flag-nontrans",
            W,
            a(8, 0x80, "ffff0001"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §3(c)",
            "",
        ),
        case(
            "comm-len-0",
            W,
            a(8, 0xc0, ""),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §7.8",
            "",
        ),
        case(
            "comm-len-5",
            W,
            a(8, 0xc0, "ffff000100"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §7.8",
            "",
        ),
        case(
            "originator-id-len-3",
            W,
            a(9, 0x80, "0a0000"),
            None,
            Discard,
            Discard,
            "RFC 7606 §7.9",
            "",
        ),
        case(
            "originator-id-len-5",
            W,
            a(9, 0x80, "0a00000200"),
            None,
            Discard,
            Discard,
            "RFC 7606 §7.9",
            "",
        ),
        case(
            "originator-id-flag-trans",
            W,
            a(9, 0xc0, "0a000002"),
            None,
            Withdraw,
            Discard,
            "RFC 7606 §7.9",
            ebgp_why,
        ),
        case(
            "cluster-list-len-0",
            W,
            a(10, 0x80, ""),
            None,
            Discard,
            Discard,
            "RFC 7606 §7.10",
            "",
        ),
        case(
            "cluster-list-len-5",
            W,
            a(10, 0x80, "0a00000200"),
            None,
            Discard,
            Discard,
            "RFC 7606 §7.10",
            "",
        ),
        case(
            "cluster-list-flag-trans",
            W,
            a(10, 0xc0, "0a000002"),
            None,
            Withdraw,
            Discard,
            "RFC 7606 §7.10",
            ebgp_why,
        ),
        case(
            "extcomm-flag-nontrans",
            W,
            a(16, 0x80, "0002fde900000001"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §3(c)",
            "",
        ),
        case(
            "extcomm-len-0",
            W,
            a(16, 0xc0, ""),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §7.14",
            "",
        ),
        case(
            "extcomm-len-9",
            W,
            a(16, 0xc0, "0002fde90000000100"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §7.14",
            "",
        ),
        case(
            "as4path-flag-nontrans",
            W,
            a(17, 0x80, "020100010001"),
            None,
            Withdraw,
            Discard,
            "RFC 6793 §3, §6",
            as4_why,
        ),
        case(
            "as4path-seg-type-0",
            W,
            a(17, 0xc0, "000100010001"),
            None,
            Withdraw,
            Discard,
            "RFC 6793 §3, §6",
            as4_why,
        ),
        case(
            "pmsi-flag-nontrans",
            W,
            a(22, 0x80, "00060000000a000002"),
            None,
            Withdraw,
            Discard,
            "RFC 7606 §3(c), RFC 6514 §5",
            pmsi_why,
        ),
        case(
            "pmsi-len-4",
            W,
            a(22, 0xc0, "00060000"),
            None,
            Withdraw,
            Discard,
            "RFC 6514 §5",
            pmsi_why,
        ),
        case(
            "pmsi-type-8",
            W,
            a(22, 0xc0, "00080000000a000002"),
            None,
            Withdraw,
            Forward,
            "RFC 6514 §5, RFC 7524 §5",
            "tunnel type 8 is RFC 7524's Transport Tunnel, a valid value: the attribute is well-formed and passed on",
        ),
        case(
            "pmsi-type-255",
            W,
            a(22, 0xc0, "00ff0000000a000002"),
            None,
            Withdraw,
            Forward,
            "RFC 6514 §5",
            "an unassigned tunnel type does not make the attribute malformed (RFC 6514 defines no error for it): passed on",
        ),
        case(
            "pmsi-ingress-repl-len-10",
            W,
            a(22, 0xc0, "00060000000a00000200"),
            None,
            Withdraw,
            Discard,
            "RFC 6514 §5, RFC 7988",
            pmsi_why,
        ),
        case(
            "encap-flag-nontrans",
            W,
            a(23, 0x80, "00070000"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §3(c), RFC 9012 §13",
            "",
        ),
        case(
            "encap-len-3",
            W,
            a(23, 0xc0, "000700"),
            None,
            Withdraw,
            Withdraw,
            "RFC 9012 §13",
            "",
        ),
        case(
            "encap-outer-len-mismatch",
            W,
            a(23, 0xc0, "0007000401"),
            None,
            Withdraw,
            Withdraw,
            "RFC 9012 §13",
            "",
        ),
        case(
            "encap-subtlv-overrun",
            W,
            a(23, 0xc0, "0007000401ff"),
            None,
            Withdraw,
            Withdraw,
            "RFC 9012 §13",
            "",
        ),
        case(
            "ipv6-extcomm-flag-nontrans",
            W,
            a(25, 0x80, "000220010db80000000000000000000000010001"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §3(c), §7.15",
            "",
        ),
        case(
            "ipv6-extcomm-len-0",
            W,
            a(25, 0xc0, ""),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §7.15",
            "",
        ),
        case(
            "ipv6-extcomm-len-21",
            W,
            a(25, 0xc0, "000220010db8000000000000000000000001000100"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §7.15",
            "",
        ),
        case(
            "large-comm-flag-nontrans",
            W,
            a(32, 0x80, "0000fde90000000100000002"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §3(c)",
            "",
        ),
        case(
            "large-comm-len-0",
            W,
            a(32, 0xc0, ""),
            None,
            Withdraw,
            Withdraw,
            "RFC 8092 §5",
            "",
        ),
        case(
            "large-comm-len-13",
            W,
            a(32, 0xc0, "0000fde9000000010000000200"),
            None,
            Withdraw,
            Withdraw,
            "RFC 8092 §5",
            "",
        ),
        case(
            "otc-flag-nontrans",
            W,
            a(35, 0x80, "0000fde9"),
            None,
            Withdraw,
            Withdraw,
            "RFC 7606 §3(c), RFC 9234 §5",
            "",
        ),
        case(
            "otc-len-3",
            W,
            a(35, 0xc0, "0000fd"),
            None,
            Withdraw,
            Withdraw,
            "RFC 9234 §5",
            "",
        ),
        case(
            "otc-len-5",
            W,
            a(35, 0xc0, "0000fde900"),
            None,
            Withdraw,
            Withdraw,
            "RFC 9234 §5",
            "",
        ),
        case(
            "otc-value-0",
            W,
            a(35, 0xc0, "00000000"),
            None,
            Withdraw,
            Forward,
            "RFC 9234 §5",
            "RFC 9234 makes only a length other than 4 malformed; RFC 7607 lists AS 0 for AS_PATH, AGGREGATOR and the AS4 attributes, not OTC: the route is accepted with its OTC",
        ),
        // -- session_reset (4 cases) --
        case(
            "mp-reach-nexthop-len-bogus",
            R,
            a(14, 0x80, "0002010920010db80000000000004020010db800000001"),
            None,
            SessionReset,
            DisableFamily,
            "RFC 7606 §7.11, RFC 4760 §7",
            disable_why,
        ),
        case(
            "mp-reach-nexthop-len-overrun",
            R,
            a(14, 0x80, "0002014020010db800000000000000000000000100"),
            None,
            SessionReset,
            DisableFamily,
            "RFC 7606 §7.11, RFC 4760 §7",
            disable_why,
        ),
        case(
            "mp-reach-truncated",
            R,
            a(14, 0x80, "0002011020010db800000000"),
            None,
            SessionReset,
            DisableFamily,
            "RFC 7606 §7.11, RFC 4760 §7",
            disable_why,
        ),
        case(
            "mp-unreach-truncated",
            R,
            a(15, 0x80, "0002014020010db8"),
            None,
            SessionReset,
            DisableFamily,
            "RFC 7606 §7.12, RFC 4760 §7",
            disable_why,
        ),
    ];
    let mut counters: BTreeMap<u8, u32> = BTreeMap::new();
    for c in &mut all {
        let n = counters.entry(c.type_code()).or_default();
        c.prefix = format!("10.{}.{n}.1/32", c.type_code());
        *n += 1;
    }
    all
}

/// The case's value octets.
pub fn value(hex: &str) -> Vec<u8> {
    let digits: Vec<u8> = hex.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    digits
        .chunks(2)
        .filter_map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

/// The UPDATE message of a case (or, with `valid`, the same announcement without the case's
/// attribute), from AS `asn` via `next_hop`.
pub fn update_bytes(case: &Case, asn: u32, next_hop: std::net::Ipv4Addr, valid: bool) -> Vec<u8> {
    let mut attrs: Vec<(u8, Vec<u8>)> = Vec::new();
    let push = |attrs: &mut Vec<(u8, Vec<u8>)>, code: u8, flags: u8, value: &[u8]| {
        let mut a = vec![flags, code];
        if flags & 0x10 != 0 || value.len() > 255 {
            a[0] |= 0x10;
            a.extend_from_slice(&(value.len() as u16).to_be_bytes());
        } else {
            a.push(value.len() as u8);
        }
        a.extend_from_slice(value);
        attrs.push((code, a));
    };
    let replaced = |t: u8| !valid && case.attribute.is_some_and(|(c, _, _)| c == t);
    if !replaced(1) {
        push(&mut attrs, 1, 0x40, &[0]);
    }
    if !replaced(2) {
        let mut path = vec![2, 1];
        path.extend_from_slice(&asn.to_be_bytes());
        push(&mut attrs, 2, 0x40, &path);
    }
    let hop = match case.next_hop {
        Some(h) if !valid => h.parse().unwrap_or(next_hop),
        _ => next_hop,
    };
    push(&mut attrs, 3, 0x40, &hop.octets());
    if !valid && let Some((code, flags, hex)) = case.attribute {
        push(&mut attrs, code, flags, &value(hex));
    }
    attrs.sort_by_key(|(code, _)| *code);
    let attrs: Vec<u8> = attrs.into_iter().flat_map(|(_, a)| a).collect();
    let prefix: ipnet::Ipv4Net = case.prefix.parse().unwrap_or_default();
    let mut nlri = vec![prefix.prefix_len()];
    nlri.extend_from_slice(&prefix.addr().octets());
    let len = 19 + 4 + attrs.len() + nlri.len();
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&(len as u16).to_be_bytes());
    m.push(2);
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.extend_from_slice(&attrs);
    m.extend_from_slice(&nlri);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_proto::{Context, Message, Rfc7606Action};

    /// 81 cases, distinct prefixes, and tern's codec (eBGP context) decides for each what the
    /// table says tern does.
    #[test]
    fn the_codec_gives_the_tabled_outcome_for_every_case() {
        let all = cases();
        assert_eq!(all.len(), 81);
        let prefixes: std::collections::BTreeSet<&str> =
            all.iter().map(|c| c.prefix.as_str()).collect();
        assert_eq!(prefixes.len(), 81);
        let ctx = Context {
            internal: false,
            ..Context::default()
        };
        let hop = std::net::Ipv4Addr::new(10, 0, 0, 2);
        for c in &all {
            let bytes = update_bytes(c, 65001, hop, false);
            let Ok(Message::Update(u)) = Message::decode(&bytes, &ctx) else {
                panic!("{}: does not decode as an UPDATE", c.name);
            };
            let got = match u.action() {
                None => {
                    let kept = u
                        .attributes
                        .iter()
                        .find(|a| Some(a.type_code()) == c.attribute.map(|a| a.0));
                    match kept.and_then(|a| a.for_propagation()) {
                        Some(_) => Outcome::Forward,
                        None => Outcome::Discard,
                    }
                }
                Some(Rfc7606Action::AttributeDiscard) => Outcome::Discard,
                Some(Rfc7606Action::TreatAsWithdraw) => Outcome::Withdraw,
                Some(Rfc7606Action::AfiSafiDisable) => Outcome::DisableFamily,
                Some(Rfc7606Action::SessionReset) => Outcome::SessionReset,
            };
            assert_eq!(got, c.tern, "{}", c.name);
            assert_eq!(
                c.frr != c.tern,
                !c.why.is_empty(),
                "{}: departure without why",
                c.name
            );
            let valid = update_bytes(c, 65001, hop, true);
            let Ok(Message::Update(v)) = Message::decode(&valid, &ctx) else {
                panic!("{}: valid form does not decode", c.name);
            };
            assert!(v.issues.is_empty(), "{}: valid form has issues", c.name);
        }
    }

    /// docs/rfc-compliance.md lists every case with tern's outcome.
    #[test]
    fn the_compliance_document_lists_every_case() {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/rfc-compliance.md"),
        )
        .unwrap();
        for c in cases() {
            let row = doc
                .lines()
                .find(|l| l.contains(&format!("`{}` ({})", c.name, c.table)))
                .unwrap_or_else(|| panic!("{} not in docs/rfc-compliance.md", c.name));
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            assert_eq!(cells.get(5), Some(&c.frr.label()), "{row}");
            assert_eq!(cells.get(6), Some(&c.tern.label()), "{row}");
        }
    }
}
