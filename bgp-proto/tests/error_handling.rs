//! RFC 7606 / RFC 4271 §6 / RFC 6793 cases beyond the TSV, including the incident classes named
//! in the robustness spec (corrupted optional transitive attributes, AS4_PATH, long AS paths,
//! MP_REACH lengths, OPEN capability lengths).

mod common;

use bgp_proto::attr::{AsPath, AsSegment, NextHop, SegmentType, reconstruct_as4};
use bgp_proto::iana::AttributeType;
use bgp_proto::{
    AttributeValue, Context, Family, Message, Nlri, Origin, PathAttribute, Rfc7606Action, Update,
};
use common::{fixtures_dir, hex, parse_vector};

/// An UPDATE message around an attribute list (hex) and an NLRI field (hex).
fn update_bytes(attrs: &str, nlri: &str) -> Vec<u8> {
    let attrs = hex(attrs);
    let nlri = hex(nlri);
    let len = 19 + 2 + 2 + attrs.len() + nlri.len();
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&(len as u16).to_be_bytes());
    m.push(2);
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.extend_from_slice(&attrs);
    m.extend_from_slice(&nlri);
    m
}

const BASE: &str = "400101 00 400206 0201 0000fde9 400304 0a000002";

fn decode(bytes: &[u8], ctx: &Context) -> Update {
    match Message::decode(bytes, ctx) {
        Ok(Message::Update(u)) => u,
        other => panic!("expected an UPDATE, got {other:?}"),
    }
}

#[test]
fn corrupted_known_optional_transitive_attribute_does_not_reset() {
    // The 2009/2023/2025 incidents: a malformed optional transitive attribute. LARGE_COMMUNITY of
    // 11 octets: treat-as-withdraw, session stays up.
    let u = decode(
        &update_bytes(
            &format!("{BASE} c0200b 0000fde9 00000001 000000"),
            "180a0101",
        ),
        &Context::default(),
    );
    assert_eq!(u.action(), Some(Rfc7606Action::TreatAsWithdraw));
    assert_eq!(u.nlri.len(), 1);
    // AS4_PATH malformed over a 2-octet session: attribute discard (RFC 6793 §6), route kept.
    let two = Context::two_octet_as();
    let u = decode(
        &update_bytes(
            "400101 00 400204 0201 fde9 400304 0a000002 c01103 020100",
            "180a0101",
        ),
        &two,
    );
    assert_eq!(u.action(), Some(Rfc7606Action::AttributeDiscard));
    assert!(u.attribute(AttributeType::As4Path).is_none());
    // BGP-LS (29) with the Transitive bit and Prefix-SID (40) with a cut TLV, the attributes of
    // the 2023 and 2025 incidents: both discarded (RFC 9552 §8.2.2, RFC 8669 §6), so never
    // passed on; the route stays.
    let u = decode(
        &update_bytes(&format!("{BASE} c01d03 ffffff c02801 00"), "180a0101"),
        &Context::default(),
    );
    assert_eq!(u.action(), Some(Rfc7606Action::AttributeDiscard));
    assert_eq!(u.issues.len(), 2);
    assert_eq!(u.attributes.len(), 3);
    assert!(
        u.attributes
            .iter()
            .all(|a| a.type_code() != 29 && a.type_code() != 40)
    );
    assert_eq!(u.nlri.len(), 1);
    // A well-formed unknown optional transitive type stays, to be passed on.
    let u = decode(
        &update_bytes(&format!("{BASE} c0fe02 ffff"), "180a0101"),
        &Context::default(),
    );
    assert!(u.issues.is_empty());
    assert_eq!(u.attributes.len(), 4);
}

#[test]
fn as4_attributes_on_a_four_octet_session_are_discarded() {
    let u = decode(
        &update_bytes(&format!("{BASE} c01106 0201 0000fde9"), "180a0101"),
        &Context::default(),
    );
    assert_eq!(u.action(), Some(Rfc7606Action::AttributeDiscard));
    assert!(u.attribute(AttributeType::As4Path).is_none());
}

#[test]
fn two_octet_session_reconstructs_the_four_octet_path() {
    let v = parse_vector(
        &std::fs::read_to_string(
            fixtures_dir().join("messages/update-two-octet-session-as4-path.hex"),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(!v.context.four_octet_as);
    let u = decode(&v.bytes, &v.context);
    let (path, aggregator) = reconstruct_as4(&u.attributes);
    assert_eq!(
        path.unwrap(),
        AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns: vec![65001, 4_200_000_001, 4_200_000_002]
            }]
        }
    );
    assert_eq!(aggregator.unwrap().asn, 4_200_000_002);
}

#[test]
fn very_long_as_path_decodes() {
    // 8 segments of 255 4-octet ASes: 8 * (2 + 1020) = 8176 octets; needs extended messages.
    let mut path = String::new();
    for _ in 0..8 {
        path.push_str("02ff");
        for i in 0..255u32 {
            path.push_str(&format!("{:08x}", 65000 + i));
        }
    }
    let attrs = format!(
        "400101 00 5002{:04x} {path} 400304 0a000002",
        path.len() / 2
    );
    let ctx = Context {
        extended_message: true,
        ..Context::default()
    };
    let bytes = update_bytes(&attrs, "180a0101");
    let u = decode(&bytes, &ctx);
    assert!(u.issues.is_empty());
    assert_eq!(u.as_path().unwrap().path_len(), 8 * 255);
    assert_eq!(
        Message::Update(u).to_bytes(&ctx).unwrap().as_ref(),
        bytes.as_slice()
    );
    // Over a 4096-octet session the same message is a header error 1/2.
    let err = Message::decode(&bytes, &Context::default()).unwrap_err();
    assert_eq!(
        (u8::from(err.notification.code), err.notification.subcode),
        (1, 2)
    );
}

#[test]
fn mp_reach_with_wrong_flags_is_treat_as_withdraw_with_the_routes() {
    // MP_REACH sent as well-known: RFC 7606 §3(c) treat-as-withdraw; the NLRI are kept.
    let attrs = "400e1c 0002 01 10 20010db8000000000000000000000001 00 30 20010db80001 400101 00 400206 0201 0000fde9";
    let u = decode(&update_bytes(attrs, ""), &Context::default());
    assert_eq!(u.action(), Some(Rfc7606Action::TreatAsWithdraw));
    let routes: Vec<_> = u.announced().map(|(f, n)| (f, *n)).collect();
    assert_eq!(
        routes,
        vec![(
            Family::IPV6_UNICAST,
            Nlri::new("2001:db8:1::/48".parse().unwrap())
        )]
    );
}

#[test]
fn mp_reach_shorter_than_afi_safi_resets_the_session() {
    let err = Message::decode(
        &update_bytes("800e02 0002 400101 00", ""),
        &Context::default(),
    )
    .unwrap_err();
    assert_eq!(
        (u8::from(err.notification.code), err.notification.subcode),
        (3, 9)
    );
}

#[test]
fn mp_reach_nlri_overrun_disables_the_family() {
    let attrs = "800e1c 0002 01 10 20010db8000000000000000000000001 00 40 20010db80001 400101 00 400206 0201 0000fde9";
    let u = decode(&update_bytes(attrs, ""), &Context::default());
    assert_eq!(u.action(), Some(Rfc7606Action::AfiSafiDisable));
    assert_eq!(
        u.disabled_families().collect::<Vec<_>>(),
        vec![Family::IPV6_UNICAST]
    );
}

#[test]
fn next_hop_that_is_not_a_host_is_treat_as_withdraw() {
    let u = decode(
        &update_bytes("400101 00 400206 0201 0000fde9 400304 00000000", "180a0101"),
        &Context::default(),
    );
    assert_eq!(u.action(), Some(Rfc7606Action::TreatAsWithdraw));
    assert_eq!(u.issues[0].notification.subcode, 8);
}

#[test]
fn unknown_optional_non_transitive_is_not_passed_on() {
    let u = decode(
        &update_bytes(&format!("{BASE} 80fd02 abcd"), "180a0101"),
        &Context::default(),
    );
    assert!(u.issues.is_empty());
    let unknown = u.attribute(AttributeType::Other(0xfd)).unwrap();
    assert_eq!(unknown.for_propagation(), None);
    // Known attributes pass unchanged.
    let origin = u.attribute(AttributeType::Origin).unwrap();
    assert_eq!(origin.for_propagation().as_ref(), Some(origin));
}

#[test]
fn mp_only_update_needs_no_next_hop_but_origin_and_as_path() {
    let attrs = "800e1c 0002 01 10 20010db8000000000000000000000001 00 30 20010db80001";
    let u = decode(&update_bytes(attrs, ""), &Context::default());
    let missing: Vec<_> = u.issues.iter().filter_map(|i| i.attribute).collect();
    assert_eq!(missing, vec![AttributeType::Origin, AttributeType::AsPath]);
    assert_eq!(u.action(), Some(Rfc7606Action::TreatAsWithdraw));
}

#[test]
fn open_errors() {
    // Unsupported optional parameter (type 1, authentication): 2/4 (RFC 4271 §6.2).
    let m = Message::decode(
        &hex("ffffffffffffffffffffffffffffffff 0020 01 04 fde9 005a 0a000002 03 0101 00"),
        &Context::default(),
    )
    .unwrap();
    let Message::Open(o) = m else { panic!() };
    let e = o.validate().unwrap_err();
    assert_eq!(
        (u8::from(e.notification.code), e.notification.subcode),
        (2, 4)
    );
    // Capability length of a 4-octet AS capability wrong: malformed capability 2/0.
    let e = Message::decode(
        &hex("ffffffffffffffffffffffffffffffff 0021 01 04 fde9 005a 0a000002 04 0202 4100"),
        &Context::default(),
    )
    .unwrap_err();
    assert_eq!(
        (u8::from(e.notification.code), e.notification.subcode),
        (2, 0)
    );
    assert!(e.to_string().contains("OPEN capability at byte 31"), "{e}");
}

#[test]
fn route_refresh_errors() {
    // EoRR with an extra octet: 7/1 with the whole message as data (RFC 7313 §5).
    let bytes = hex("ffffffffffffffffffffffffffffffff 0018 05 0002 02 01 00");
    let e = Message::decode(&bytes, &Context::default()).unwrap_err();
    assert_eq!(
        (u8::from(e.notification.code), e.notification.subcode),
        (7, 1)
    );
    assert_eq!(e.notification.data, bytes);
    // An unknown subtype decodes (the session layer ignores it, RFC 7313 §5).
    let m = Message::decode(
        &hex("ffffffffffffffffffffffffffffffff 0017 05 0001 07 01"),
        &Context::default(),
    )
    .unwrap();
    assert!(matches!(m, Message::RouteRefresh(_)));
}

#[test]
fn open_is_limited_to_4096_even_with_extended_messages() {
    let ctx = Context {
        extended_message: true,
        ..Context::default()
    };
    let e = Message::decode(&hex("ffffffffffffffffffffffffffffffff 1001 01"), &ctx).unwrap_err();
    assert_eq!(
        (
            u8::from(e.notification.code),
            e.notification.subcode,
            e.notification.data
        ),
        (1, 2, vec![0x10, 0x01])
    );
}

#[test]
fn errors_name_the_field_and_offset() {
    let e = Message::decode(&update_bytes(BASE, "210a010101"), &Context::default()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("UPDATE NLRI at byte 43"), "{text}");
    assert!(text.contains("prefix length 33"), "{text}");
}

#[test]
fn builder_output_is_accepted_by_the_receive_path() {
    let attrs = vec![
        PathAttribute::new(AttributeValue::Origin(Origin::Igp)),
        PathAttribute::new(AttributeValue::AsPath(AsPath::sequence([65001]))),
    ];
    let p = [Nlri::new("2001:db8::/32".parse().unwrap())];
    let nh = NextHop::Ipv6 {
        global: "2001:db8::1".parse().unwrap(),
        link_local: None,
    };
    let u = bgp_proto::builder::UpdateBuilder::new(Context::default(), Family::IPV6_UNICAST)
        .announce(&attrs, nh, &p)
        .build()
        .unwrap();
    let bytes = Message::Update(u[0].clone())
        .to_bytes(&Context::default())
        .unwrap();
    assert!(decode(&bytes, &Context::default()).issues.is_empty());
}

fn external() -> Context {
    Context {
        internal: false,
        ..Context::default()
    }
}

/// RFC 7606 §7.9-7.10: from an external peer ORIGINATOR_ID and CLUSTER_LIST are discarded,
/// malformed or not (the route stays); from an internal one a bad length is treat-as-withdraw.
#[test]
fn originator_id_and_cluster_list_depend_on_the_peer() {
    for attr in [
        "800903 0a0000",
        "800905 0a00000200",
        "800a00",
        "800a05 0a00000200",
    ] {
        let bytes = update_bytes(&format!("{BASE} {attr}"), "180a0101");
        let u = decode(&bytes, &external());
        assert_eq!(u.action(), Some(Rfc7606Action::AttributeDiscard), "{attr}");
        assert_eq!(u.attributes.len(), 3, "{attr}");
        let u = decode(&bytes, &Context::default());
        assert_eq!(u.action(), Some(Rfc7606Action::TreatAsWithdraw), "{attr}");
    }
    // Well-formed from an external peer: discarded too, nothing to loop-check or pass on.
    let u = decode(
        &update_bytes(
            &format!("{BASE} 800904 0a000009 800a04 0a000001"),
            "180a0101",
        ),
        &external(),
    );
    assert_eq!(u.action(), Some(Rfc7606Action::AttributeDiscard));
    assert!(u.attribute(AttributeType::OriginatorId).is_none());
    assert!(u.attribute(AttributeType::ClusterList).is_none());
    let u = decode(
        &update_bytes(
            &format!("{BASE} 800904 0a000009 800a04 0a000001"),
            "180a0101",
        ),
        &Context::default(),
    );
    assert!(u.issues.is_empty());
    // RFC 7606 §7.5: a malformed LOCAL_PREF from an external peer is discarded.
    let bytes = update_bytes(&format!("{BASE} 400503 000064"), "180a0101");
    assert_eq!(
        decode(&bytes, &external()).action(),
        Some(Rfc7606Action::AttributeDiscard)
    );
    assert_eq!(
        decode(&bytes, &Context::default()).action(),
        Some(Rfc7606Action::TreatAsWithdraw)
    );
}

/// `Negotiated::from_opens` marks a session internal when both OPENs carry the same AS.
#[test]
fn negotiated_context_knows_internal_sessions() {
    use bgp_proto::{Capability, Negotiated, Open};
    let id = std::net::Ipv4Addr::new(10, 0, 0, 1);
    let open = |asn: u32| Open::new(23456, 90, id, vec![Capability::FourOctetAs(asn)]);
    let same = Negotiated::from_opens(&open(4_200_000_001), &open(4_200_000_001));
    assert!(same.receive.internal && same.send.internal);
    let other = Negotiated::from_opens(&open(4_200_000_001), &open(4_200_000_002));
    assert!(!other.receive.internal);
}

/// RFC 4271 §4.3: the Partial bit of a well-known attribute MUST be 0; set, the attribute is
/// malformed and gets its own RFC 7606 action (§3(c)).
#[test]
fn partial_bit_on_well_known_attributes_is_malformed() {
    let partial_origin = "600101 00 400206 0201 0000fde9 400304 0a000002";
    let u = decode(
        &update_bytes(partial_origin, "180a0101"),
        &Context::default(),
    );
    assert_eq!(u.action(), Some(Rfc7606Action::TreatAsWithdraw));
    let partial_path = "400101 00 600206 0201 0000fde9 400304 0a000002";
    let u = decode(&update_bytes(partial_path, "180a0101"), &Context::default());
    assert_eq!(u.action(), Some(Rfc7606Action::TreatAsWithdraw));
    // ATOMIC_AGGREGATE's own action is attribute discard.
    let u = decode(
        &update_bytes(&format!("{BASE} 600600"), "180a0101"),
        &Context::default(),
    );
    assert_eq!(u.action(), Some(Rfc7606Action::AttributeDiscard));
    // Partial on an optional transitive attribute is normal (RFC 4271 §5).
    let u = decode(
        &update_bytes(&format!("{BASE} e00804 ffff0001"), "180a0101"),
        &Context::default(),
    );
    assert!(u.issues.is_empty());
}

/// RFC 4271 §6.3: a loopback NEXT_HOP is not a neighbour's address: Invalid NEXT_HOP, treated
/// as withdraw (RFC 7606 §7.3); so is a loopback or multicast MP_REACH_NLRI next hop, whose
/// attribute is kept so that its routes can be withdrawn.
#[test]
fn loopback_next_hops_are_treat_as_withdraw() {
    let u = decode(
        &update_bytes("400101 00 400206 0201 0000fde9 400304 7f000001", "180a0101"),
        &Context::default(),
    );
    assert_eq!(u.action(), Some(Rfc7606Action::TreatAsWithdraw));
    assert_eq!(u.issues[0].notification.subcode, 8);
    for nh in [
        "00000000000000000000000000000001",
        "ff020000000000000000000000000001",
    ] {
        let mp = format!("800e1e 0002 01 10 {nh} 00 40 20010db800000001");
        let u = decode(
            &update_bytes(&format!("400101 00 400206 0201 0000fde9 {mp}"), ""),
            &Context::default(),
        );
        assert_eq!(u.action(), Some(Rfc7606Action::TreatAsWithdraw), "{nh}");
        assert_eq!(u.announced().count(), 1, "{nh}");
    }
}
