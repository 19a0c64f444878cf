//! Property tests: `decode(encode(m)) == m` for generated messages of every type, in every kind
//! of context (2- and 4-octet AS, ADD-PATH per family, extended messages).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use bgp_proto::attr::{
    Aggregator, AsPath, AsSegment, Community, ExtendedCommunity, LargeCommunity, MpReach,
    MpUnreach, NextHop, SegmentType,
};
use bgp_proto::capability::{
    AddPathFamily, ExtendedNextHop, GracefulRestart, GracefulRestartFamily, LlgrFamily,
};
use bgp_proto::iana::{AttributeType, BgpRole, RouteRefreshSubtype};
use bgp_proto::{
    AddPathFamilies, AttrFlags, AttributeValue, Capability, Context, EncodeError, Family, Message,
    Nlri, Notification, Open, OptionalParameter, Origin, PathAttribute, RouteRefresh, Update,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

const FAMILIES: [Family; 4] = [
    Family::IPV4_UNICAST,
    Family::IPV6_UNICAST,
    Family::IPV4_MULTICAST,
    Family::IPV6_MULTICAST,
];

fn context() -> impl Strategy<Value = Context> {
    (
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(any::<bool>(), 4),
    )
        .prop_map(|(four_octet_as, extended_message, ap)| {
            let fams: Vec<Family> = FAMILIES
                .iter()
                .zip(ap)
                .filter(|(_, on)| *on)
                .map(|(f, _)| *f)
                .collect();
            Context {
                four_octet_as,
                extended_message,
                add_path: AddPathFamilies::of(&fams),
                internal: true,
            }
        })
}

fn family() -> impl Strategy<Value = Family> {
    prop_oneof![
        Just(Family::IPV4_UNICAST),
        Just(Family::IPV6_UNICAST),
        Just(Family::IPV4_MULTICAST),
        Just(Family::IPV6_MULTICAST),
        (any::<u16>(), any::<u8>()).prop_map(|(a, s)| Family::new(a.into(), s.into())),
    ]
}

fn prefix(v6: bool) -> BoxedStrategy<IpNet> {
    if v6 {
        (any::<u128>(), 0u8..=128)
            .prop_map(|(a, l)| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc()))
            .boxed()
    } else {
        (any::<u32>(), 0u8..=32)
            .prop_map(|(a, l)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc()))
            .boxed()
    }
}

fn nlri_list(v6: bool, add_path: bool, max: usize) -> BoxedStrategy<Vec<Nlri>> {
    proptest::collection::vec(
        (prefix(v6), any::<u32>()).prop_map(move |(prefix, id)| Nlri {
            prefix,
            path_id: add_path.then_some(id),
        }),
        0..max,
    )
    .boxed()
}

fn host_v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>()
        .prop_map(Ipv4Addr::from)
        .prop_filter("host address", |a| {
            !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast() && !a.is_loopback()
        })
}

fn as_path(max_asn: u32) -> impl Strategy<Value = AsPath> {
    let segment = (
        prop_oneof![
            Just(SegmentType::Set),
            Just(SegmentType::Sequence),
            Just(SegmentType::ConfedSequence),
            Just(SegmentType::ConfedSet)
        ],
        proptest::collection::vec(1..=max_asn, 1..20),
    )
        .prop_map(|(kind, asns)| AsSegment { kind, asns });
    proptest::collection::vec(segment, 0..4).prop_map(|segments| AsPath { segments })
}

const KNOWN_CAPABILITY_CODES: [u8; 11] = [1, 2, 5, 6, 9, 64, 65, 69, 70, 71, 73];

fn capability() -> impl Strategy<Value = Capability> {
    let fam3 = || (any::<u16>(), any::<u8>()).prop_map(|(a, s)| Family::new(a.into(), s.into()));
    prop_oneof![
        fam3().prop_map(Capability::Multiprotocol),
        Just(Capability::RouteRefresh),
        Just(Capability::EnhancedRouteRefresh),
        any::<u32>().prop_map(Capability::FourOctetAs),
        (
            0u8..16,
            0u16..4096,
            proptest::collection::vec((fam3(), any::<u8>()), 0..5)
        )
            .prop_map(|(flags, restart_time, f)| Capability::GracefulRestart(
                GracefulRestart {
                    flags,
                    restart_time,
                    families: f
                        .into_iter()
                        .map(|(family, flags)| GracefulRestartFamily { family, flags })
                        .collect(),
                }
            )),
        proptest::collection::vec((fam3(), any::<u8>(), 0u32..0x100_0000), 0..5).prop_map(|f| {
            Capability::LongLivedGracefulRestart(
                f.into_iter()
                    .map(|(family, flags, stale_time)| LlgrFamily {
                        family,
                        flags,
                        stale_time,
                    })
                    .collect(),
            )
        }),
        proptest::collection::vec((fam3(), any::<u8>()), 1..5).prop_map(|f| Capability::AddPath(
            f.into_iter()
                .map(|(family, m)| AddPathFamily {
                    family,
                    mode: m.into()
                })
                .collect()
        )),
        Just(Capability::ExtendedMessage),
        proptest::collection::vec((any::<u16>(), any::<u16>(), any::<u16>()), 0..4).prop_map(|e| {
            Capability::ExtendedNextHop(
                e.into_iter()
                    .map(|(a, s, n)| ExtendedNextHop {
                        nlri_afi: a.into(),
                        nlri_safi: s,
                        next_hop_afi: n.into(),
                    })
                    .collect(),
            )
        }),
        any::<u8>().prop_map(|r| Capability::Role(BgpRole::from(r))),
        ("[a-z0-9.-]{0,40}", "[a-z0-9.-]{0,40}")
            .prop_map(|(hostname, domain)| Capability::Fqdn { hostname, domain }),
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..20))
            .prop_filter("unknown code", |(c, _)| !KNOWN_CAPABILITY_CODES.contains(c))
            .prop_map(|(code, data)| Capability::Unknown { code, data }),
    ]
}

fn open() -> impl Strategy<Value = Message> {
    let parameter = prop_oneof![
        4 => proptest::collection::vec(capability(), 0..6).prop_map(OptionalParameter::Capabilities),
        1 => (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..10))
            .prop_filter("not capabilities or the RFC 9072 marker", |(t, _)| *t != 2 && *t != 255)
            .prop_map(|(param_type, data)| OptionalParameter::Other { param_type, data }),
    ];
    (
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        any::<bool>(),
        proptest::collection::vec(parameter, 0..8),
    )
        .prop_map(|(my_as, hold_time, id, extended, parameters)| {
            let mut o = Open {
                version: 4,
                my_as,
                hold_time,
                bgp_id: Ipv4Addr::from(id),
                extended_parameters: extended,
                parameters,
            };
            // The classic encoding cannot hold long parameter lists; encoding switches to RFC 9072,
            // and decoding reports that.
            let classic_len: usize = o
                .parameters
                .iter()
                .map(|p| match p {
                    OptionalParameter::Capabilities(c) => {
                        2 + c.iter().map(Capability::encoded_len).sum::<usize>()
                    }
                    OptionalParameter::Other { data, .. } => 2 + data.len(),
                })
                .sum();
            let any_long = o.parameters.iter().any(|p| match p {
                OptionalParameter::Capabilities(c) => {
                    c.iter().map(Capability::encoded_len).sum::<usize>() > 255
                }
                OptionalParameter::Other { data, .. } => data.len() > 255,
            });
            if classic_len > 255 || any_long {
                o.extended_parameters = true;
            }
            Message::Open(o)
        })
}

fn flags_for(t: AttributeType, extra: u8) -> AttrFlags {
    let base = AttributeValue::Unknown {
        type_code: t.into(),
        data: vec![],
    };
    let expected = match t {
        AttributeType::Other(_) => AttrFlags::OPTIONAL_TRANSITIVE,
        _ => PathAttribute::new(known_dummy(t).unwrap_or(base)).flags,
    };
    // Keep Optional/Transitive as required, vary Partial (optional attributes only: RFC 4271
    // §4.3), Extended Length and the unused bits.
    let vary = if expected.optional() { 0x3f } else { 0x1f };
    AttrFlags(expected.0 | (extra & vary))
}

fn known_dummy(t: AttributeType) -> Option<AttributeValue> {
    Some(match t {
        AttributeType::Origin => AttributeValue::Origin(Origin::Igp),
        AttributeType::AsPath => AttributeValue::AsPath(AsPath::new()),
        AttributeType::NextHop => AttributeValue::NextHop(Ipv4Addr::LOCALHOST),
        AttributeType::MultiExitDisc => AttributeValue::MultiExitDisc(0),
        AttributeType::LocalPref => AttributeValue::LocalPref(0),
        AttributeType::AtomicAggregate => AttributeValue::AtomicAggregate,
        AttributeType::Aggregator => AttributeValue::Aggregator(Aggregator {
            asn: 1,
            address: Ipv4Addr::LOCALHOST,
        }),
        AttributeType::Communities => AttributeValue::Communities(vec![]),
        AttributeType::OriginatorId => AttributeValue::OriginatorId(Ipv4Addr::LOCALHOST),
        AttributeType::ClusterList => AttributeValue::ClusterList(vec![]),
        AttributeType::ExtendedCommunities => AttributeValue::ExtendedCommunities(vec![]),
        AttributeType::As4Path => AttributeValue::As4Path(AsPath::new()),
        AttributeType::As4Aggregator => AttributeValue::As4Aggregator(Aggregator {
            asn: 1,
            address: Ipv4Addr::LOCALHOST,
        }),
        AttributeType::LargeCommunity => AttributeValue::LargeCommunities(vec![]),
        AttributeType::OnlyToCustomer => AttributeValue::OnlyToCustomer(0),
        AttributeType::MpReachNlri | AttributeType::MpUnreachNlri | AttributeType::Other(_) => {
            return None;
        }
    })
}

fn mp_reach(ctx: Context) -> impl Strategy<Value = AttributeValue> {
    (
        0usize..4,
        any::<u128>(),
        proptest::option::of(any::<u128>()),
        any::<u32>(),
        any::<bool>(),
    )
        .prop_flat_map(move |(i, g, ll, v4nh, use_v6)| {
            let family = FAMILIES[i];
            let v6 = family.afi == bgp_proto::Afi::Ipv6;
            // Next hops that can be a neighbour's (others are treat-as-withdraw).
            let global = Ipv6Addr::from(g);
            let global = if global.is_loopback() || global.is_multicast() || global.is_unspecified()
            {
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)
            } else {
                global
            };
            let v4 = Ipv4Addr::from(v4nh);
            let v4 = if v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_loopback()
            {
                Ipv4Addr::new(192, 0, 2, 1)
            } else {
                v4
            };
            let next_hop = if v6 || use_v6 {
                NextHop::Ipv6 {
                    global,
                    link_local: ll.map(Ipv6Addr::from),
                }
            } else {
                NextHop::Ipv4(v4)
            };
            nlri_list(v6, ctx.add_path(family), 20).prop_map(move |nlri| {
                AttributeValue::MpReachNlri(MpReach {
                    family,
                    next_hop,
                    reserved: 0,
                    nlri,
                })
            })
        })
}

fn mp_unreach(ctx: Context) -> impl Strategy<Value = AttributeValue> {
    (0usize..4).prop_flat_map(move |i| {
        let family = FAMILIES[i];
        nlri_list(family.afi == bgp_proto::Afi::Ipv6, ctx.add_path(family), 20).prop_map(
            move |withdrawn| AttributeValue::MpUnreachNlri(MpUnreach { family, withdrawn }),
        )
    })
}

fn attribute_value(ctx: Context) -> BoxedStrategy<AttributeValue> {
    let max_asn = if ctx.four_octet_as {
        u32::MAX
    } else {
        u32::from(u16::MAX)
    };
    let mut options: Vec<BoxedStrategy<AttributeValue>> = vec![
        prop_oneof![
            Just(Origin::Igp),
            Just(Origin::Egp),
            Just(Origin::Incomplete)
        ]
        .prop_map(AttributeValue::Origin)
        .boxed(),
        as_path(max_asn).prop_map(AttributeValue::AsPath).boxed(),
        host_v4().prop_map(AttributeValue::NextHop).boxed(),
        any::<u32>().prop_map(AttributeValue::MultiExitDisc).boxed(),
        any::<u32>().prop_map(AttributeValue::LocalPref).boxed(),
        Just(AttributeValue::AtomicAggregate).boxed(),
        (1..=max_asn, any::<u32>())
            .prop_map(|(asn, a)| {
                AttributeValue::Aggregator(Aggregator {
                    asn,
                    address: a.into(),
                })
            })
            .boxed(),
        proptest::collection::vec(any::<u32>().prop_map(Community), 1..80)
            .prop_map(AttributeValue::Communities)
            .boxed(),
        any::<u32>()
            .prop_map(|a| AttributeValue::OriginatorId(a.into()))
            .boxed(),
        proptest::collection::vec(any::<u32>().prop_map(Ipv4Addr::from), 1..5)
            .prop_map(AttributeValue::ClusterList)
            .boxed(),
        proptest::collection::vec(any::<[u8; 8]>().prop_map(ExtendedCommunity), 1..5)
            .prop_map(AttributeValue::ExtendedCommunities)
            .boxed(),
        proptest::collection::vec(
            (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(a, b, c)| LargeCommunity {
                global_admin: a,
                local_data_1: b,
                local_data_2: c,
            }),
            1..5,
        )
        .prop_map(AttributeValue::LargeCommunities)
        .boxed(),
        any::<u32>()
            .prop_map(AttributeValue::OnlyToCustomer)
            .boxed(),
        mp_reach(ctx).boxed(),
        mp_unreach(ctx).boxed(),
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300))
            .prop_filter("unknown type", |(t, _)| {
                // Not one of the types with a checked structure (attr/unused.rs).
                matches!(AttributeType::from(*t), AttributeType::Other(_))
                    && ![22, 23, 25, 26, 29, 40].contains(t)
            })
            .prop_map(|(type_code, data)| AttributeValue::Unknown { type_code, data })
            .boxed(),
    ];
    if !ctx.four_octet_as {
        // RFC 6793: AS4_PATH / AS4_AGGREGATOR only travel over 2-octet sessions.
        options.push(
            as_path(u32::MAX)
                .prop_filter("no confed in AS4_PATH test", |_| true)
                .prop_map(AttributeValue::As4Path)
                .boxed(),
        );
        options.push(
            (1..=u32::MAX, any::<u32>())
                .prop_map(|(asn, a)| {
                    AttributeValue::As4Aggregator(Aggregator {
                        asn,
                        address: a.into(),
                    })
                })
                .boxed(),
        );
    }
    proptest::strategy::Union::new(options).boxed()
}

fn update(ctx: Context) -> impl Strategy<Value = Message> {
    (
        proptest::collection::vec((attribute_value(ctx), any::<u8>()), 0..8),
        nlri_list(false, ctx.add_path(Family::IPV4_UNICAST), 30),
        nlri_list(false, ctx.add_path(Family::IPV4_UNICAST), 30),
        (
            prop_oneof![Just(Origin::Igp), Just(Origin::Incomplete)],
            as_path(if ctx.four_octet_as { u32::MAX } else { 65535 }),
            host_v4(),
        ),
        any::<u64>(),
    )
        .prop_map(move |(values, withdrawn, nlri, (origin, path, nh), seed)| {
            // One attribute per type (duplicates are discarded on receipt, RFC 7606 §3(g)).
            let mut by_type: BTreeMap<u8, PathAttribute> = BTreeMap::new();
            for (value, extra) in values {
                let t = AttributeType::from(value.type_code());
                let flags = flags_for(t, extra);
                by_type
                    .entry(value.type_code())
                    .or_insert(PathAttribute { flags, value });
            }
            let has_reach = by_type.contains_key(&14);
            // The well-known mandatory attributes must be there when routes are announced.
            if !nlri.is_empty() || has_reach {
                by_type
                    .entry(1)
                    .or_insert(PathAttribute::new(AttributeValue::Origin(origin)));
                by_type
                    .entry(2)
                    .or_insert(PathAttribute::new(AttributeValue::AsPath(path)));
            }
            if !nlri.is_empty() {
                by_type
                    .entry(3)
                    .or_insert(PathAttribute::new(AttributeValue::NextHop(nh)));
            }
            let mut attributes: Vec<PathAttribute> = by_type.into_values().collect();
            // A deterministic shuffle: order must survive the round trip.
            let n = attributes.len();
            if n > 1 {
                let mut s = seed;
                for i in (1..n).rev() {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    attributes.swap(i, (s >> 33) as usize % (i + 1));
                }
            }
            // Values over 255 octets are sent with Extended Length, which decoding reports.
            for a in &mut attributes {
                if a.value_len(&ctx) > 255 {
                    a.flags = AttrFlags(a.flags.0 | AttrFlags::EXTENDED_LENGTH);
                }
            }
            Message::Update(Update {
                withdrawn,
                attributes,
                nlri,
                issues: vec![],
            })
        })
}

fn notification() -> impl Strategy<Value = Message> {
    (
        any::<u8>(),
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..100),
    )
        .prop_map(|(c, s, data)| Message::Notification(Notification::new(c.into(), s, data)))
}

fn route_refresh() -> impl Strategy<Value = Message> {
    (
        family(),
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..20),
    )
        .prop_map(|(family, st, orf)| {
            let subtype = RouteRefreshSubtype::from(st);
            let orf = match subtype {
                RouteRefreshSubtype::BeginningOfRefresh | RouteRefreshSubtype::EndOfRefresh => {
                    vec![]
                }
                _ => orf,
            };
            Message::RouteRefresh(RouteRefresh {
                family,
                subtype,
                orf,
            })
        })
}

fn message_in_context() -> impl Strategy<Value = (Context, Message)> {
    context().prop_flat_map(|ctx| {
        let m = prop_oneof![
            1 => Just(Message::Keepalive),
            3 => open(),
            8 => update(ctx),
            1 => notification(),
            1 => route_refresh(),
        ];
        (Just(ctx), m)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn decode_encode_round_trip((ctx, message) in message_in_context()) {
        let bytes = match message.to_bytes(&ctx) {
            Ok(b) => b,
            Err(EncodeError::MessageTooLong { .. }) => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("cannot encode {message:?}: {e}"))),
        };
        prop_assert_eq!(bytes.len(), message.encoded_len(&ctx));
        let decoded = Message::decode(&bytes, &ctx)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{message:#?}")))?;
        prop_assert_eq!(&decoded, &message);
        // And the bytes are stable.
        prop_assert_eq!(decoded.to_bytes(&ctx).unwrap(), bytes);
    }

    #[test]
    fn two_octet_split_and_merge_restores_the_path(path in as_path(u32::MAX)) {
        // RFC 6793 §4.2.2 / §4.2.3 without confederation segments (those are not in AS4_PATH).
        let path = AsPath {
            segments: path.segments.into_iter()
                .filter(|s| matches!(s.kind, SegmentType::Sequence | SegmentType::Set))
                .collect(),
        };
        let (two, four) = path.split_for_two_octet();
        prop_assert!(two.asns().all(|a| a <= 65535));
        let merged = match four {
            Some(as4) => two.merge_as4(&as4),
            None => two,
        };
        prop_assert_eq!(merged, path);
    }
}
