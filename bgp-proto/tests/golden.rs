//! Golden vectors in `fixtures/messages/`: `<name>.hex` (the bytes, with `# source:` and
//! `# context:` comments) and `<name>.txt` (the decoded message, pretty-printed).
//!
//! - Every `.hex` under `fixtures/messages/` (recursively, so captured vectors are included)
//!   decodes without RFC 7606 issues, matches its `.txt`, and re-encodes byte for byte.
//! - Every hand-made vector is also built from typed values here and must encode to the checked-in
//!   bytes (the readable → bytes direction).
//!
//! `UPDATE_GOLDEN=1 cargo test -p bgp-proto --test golden` rewrites the `.txt` files and the
//! hand-made `.hex` files.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use bgp_proto::attr::{
    Aggregator, AsPath, AsSegment, Community, ExtendedCommunity, LargeCommunity, MpReach,
    MpUnreach, NextHop, SegmentType,
};
use bgp_proto::capability::{
    AddPathFamily, ExtendedNextHop, GracefulRestart, GracefulRestartFamily, LlgrFamily,
};
use bgp_proto::iana::{
    AddPathMode, Afi, BgpRole, CeaseSubcode, RouteRefreshSubtype, UpdateErrorSubcode,
};
use bgp_proto::{
    AddPathFamilies, AttrFlags, AttributeValue, Capability, Context, Family, Message, Nlri,
    Notification, Open, OptionalParameter, Origin, PathAttribute, RouteRefresh, Update,
};
use common::{fixtures_dir, format_context, parse_vector, to_hex};

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

fn messages_dir() -> PathBuf {
    fixtures_dir().join("messages")
}

fn hex_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            hex_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "hex") {
            out.push(path);
        }
    }
}

fn readable(message: &Message) -> String {
    format!("{message:#?}\n")
}

/// With UPDATE_GOLDEN=1: writes the hand-made `.hex` files (once per process, atomically, so that
/// both tests can run in parallel, even in separate processes).
fn write_hand_made_once() {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        for (name, context, message) in hand_made() {
            let bytes = message.to_bytes(&context).unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut text = format!(
                "# source: hand-made; built from typed values in bgp-proto/tests/golden.rs\n# context: {}\n",
                format_context(&context)
            );
            for chunk in bytes.chunks(32) {
                text.push_str(&to_hex(chunk));
                text.push('\n');
            }
            let path = messages_dir().join(format!("{name}.hex"));
            let tmp = path.with_extension(format!("hex.tmp{}", std::process::id()));
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        }
    });
}

#[test]
fn every_vector_decodes_to_its_txt_and_reencodes_byte_exact() {
    if updating() {
        write_hand_made_once();
    }
    let mut files = Vec::new();
    hex_files(&messages_dir(), &mut files);
    assert!(
        files.len() >= 20,
        "expected the hand-made vectors, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        let name = path
            .strip_prefix(messages_dir())
            .unwrap_or(path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(path).unwrap();
        let vector = match parse_vector(&text) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        if !vector.comments.iter().any(|c| c.starts_with("source:")) {
            failures.push(format!("{name}: no `# source:` comment"));
        }
        let message = match Message::decode(&vector.bytes, &vector.context) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{name}: does not decode: {e}"));
                continue;
            }
        };
        if let Message::Update(u) = &message
            && !u.issues.is_empty()
        {
            failures.push(format!(
                "{name}: RFC 7606 issues in a golden vector: {:?}",
                u.issues
            ));
        }
        let txt_path = path.with_extension("txt");
        let pretty = readable(&message);
        if updating() {
            std::fs::write(&txt_path, &pretty).unwrap();
        } else {
            match std::fs::read_to_string(&txt_path) {
                Ok(expected) if expected == pretty => {}
                Ok(expected) => failures.push(format!(
                    "{name}: decoded form differs from {} (run with UPDATE_GOLDEN=1 if intended)\n--- expected\n{expected}\n--- got\n{pretty}",
                    txt_path.display()
                )),
                Err(_) => failures.push(format!(
                    "{name}: {} is missing; run `UPDATE_GOLDEN=1 cargo test -p bgp-proto --test golden` to create it",
                    txt_path.display()
                )),
            }
        }
        match message.to_bytes(&vector.context) {
            Ok(bytes) if bytes.as_ref() == vector.bytes.as_slice() => {}
            Ok(bytes) => failures.push(format!(
                "{name}: re-encoding differs\n  file:    {}\n  encoded: {}",
                to_hex(&vector.bytes),
                to_hex(&bytes)
            )),
            Err(e) => failures.push(format!("{name}: does not re-encode: {e}")),
        }
        assert_eq!(
            message.encoded_len(&vector.context),
            vector.bytes.len(),
            "{name}: encoded_len"
        );
    }
    assert!(
        failures.is_empty(),
        "{} vectors failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn hand_made_vectors_are_built_from_typed_values() {
    let mut failures = Vec::new();
    for (name, context, message) in hand_made() {
        let bytes = message
            .to_bytes(&context)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let path = messages_dir().join(format!("{name}.hex"));
        if updating() {
            write_hand_made_once();
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            failures.push(format!(
                "{name}: {} missing (run with UPDATE_GOLDEN=1)",
                path.display()
            ));
            continue;
        };
        let vector = parse_vector(&text).unwrap();
        if vector.context != context {
            failures.push(format!("{name}: context in file differs from the test's"));
        }
        if vector.bytes != bytes.as_ref() {
            failures.push(format!(
                "{name}: typed value encodes differently\n  file:  {}\n  typed: {}",
                to_hex(&vector.bytes),
                to_hex(&bytes)
            ));
        }
        match Message::decode(&vector.bytes, &context) {
            Ok(decoded) if decoded == message => {}
            Ok(decoded) => failures.push(format!(
                "{name}: decodes to\n{decoded:#?}\nnot\n{message:#?}"
            )),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn v4(s: &str) -> Nlri {
    Nlri::new(s.parse().unwrap())
}

fn ip4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn attr(value: AttributeValue) -> PathAttribute {
    PathAttribute::new(value)
}

fn seq(asns: &[u32]) -> AsSegment {
    AsSegment {
        kind: SegmentType::Sequence,
        asns: asns.to_vec(),
    }
}

fn base_attrs(as_path: &[u32]) -> Vec<PathAttribute> {
    vec![
        attr(AttributeValue::Origin(Origin::Igp)),
        attr(AttributeValue::AsPath(AsPath {
            segments: vec![seq(as_path)],
        })),
        attr(AttributeValue::NextHop(ip4("192.0.2.1"))),
    ]
}

fn update(withdrawn: Vec<Nlri>, attributes: Vec<PathAttribute>, nlri: Vec<Nlri>) -> Message {
    Message::Update(Update {
        withdrawn,
        attributes,
        nlri,
        issues: vec![],
    })
}

fn all_capabilities() -> Vec<Capability> {
    vec![
        Capability::Multiprotocol(Family::IPV4_UNICAST),
        Capability::Multiprotocol(Family::IPV6_UNICAST),
        Capability::RouteRefresh,
        Capability::EnhancedRouteRefresh,
        Capability::FourOctetAs(4_200_000_001),
        Capability::GracefulRestart(GracefulRestart {
            flags: GracefulRestart::RESTART_STATE | GracefulRestart::NOTIFICATION,
            restart_time: 120,
            families: vec![
                GracefulRestartFamily {
                    family: Family::IPV4_UNICAST,
                    flags: GracefulRestartFamily::FORWARDING_STATE,
                },
                GracefulRestartFamily {
                    family: Family::IPV6_UNICAST,
                    flags: 0,
                },
            ],
        }),
        Capability::LongLivedGracefulRestart(vec![LlgrFamily {
            family: Family::IPV4_UNICAST,
            flags: GracefulRestartFamily::FORWARDING_STATE,
            stale_time: 86_400,
        }]),
        Capability::AddPath(vec![
            AddPathFamily {
                family: Family::IPV4_UNICAST,
                mode: AddPathMode::Both,
            },
            AddPathFamily {
                family: Family::IPV6_UNICAST,
                mode: AddPathMode::Receive,
            },
        ]),
        Capability::ExtendedMessage,
        Capability::ExtendedNextHop(vec![ExtendedNextHop {
            nlri_afi: Afi::Ipv4,
            nlri_safi: 1,
            next_hop_afi: Afi::Ipv6,
        }]),
        Capability::Role(BgpRole::Customer),
        Capability::Fqdn {
            hostname: "node-1".into(),
            domain: "cluster.local".into(),
        },
        Capability::Unknown {
            code: 0xee,
            data: vec![0xab, 0xcd],
        },
    ]
}

/// The hand-made vectors: name, context, message.
fn hand_made() -> Vec<(&'static str, Context, Message)> {
    let ctx = Context::default();
    let two = Context::two_octet_as();
    let add_path = Context {
        add_path: AddPathFamilies::of(&[Family::IPV4_UNICAST, Family::IPV6_UNICAST]),
        ..Context::default()
    };
    let extended = Context {
        extended_message: true,
        ..Context::default()
    };
    let id = ip4("10.0.0.1");

    let mut open_per_param = Open::new(65001, 90, id, vec![]);
    open_per_param.parameters = all_capabilities()
        .into_iter()
        .map(|c| OptionalParameter::Capabilities(vec![c]))
        .collect();
    let mut open_extended = Open::new(4_200_000_001, 180, id, all_capabilities());
    open_extended.extended_parameters = true;

    let many: Vec<Nlri> = (0..1100u32)
        .map(|i| v4(&format!("10.{}.{}.0/24", i / 256, i % 256)))
        .collect();

    vec![
        ("keepalive", ctx, Message::Keepalive),
        (
            "open-all-capabilities",
            ctx,
            Message::Open(Open::new(4_200_000_001, 90, id, all_capabilities())),
        ),
        (
            "open-capability-per-parameter",
            ctx,
            Message::Open(open_per_param),
        ),
        (
            "open-rfc9072-extended-parameters",
            ctx,
            Message::Open(open_extended),
        ),
        (
            "open-two-octet-as-no-capabilities",
            two,
            Message::Open(Open::new(64512, 0, ip4("192.0.2.254"), vec![])),
        ),
        (
            "notification-cease-shutdown-communication",
            ctx,
            Message::Notification(Notification::cease_with_communication(
                CeaseSubcode::AdministrativeShutdown,
                "maintenance: back at 18:00 UTC",
            )),
        ),
        (
            "notification-update-attribute-length-error",
            ctx,
            Message::Notification(Notification::update(
                UpdateErrorSubcode::AttributeLengthError,
                vec![0x40, 0x03, 0x05, 10, 0, 0, 2, 0],
            )),
        ),
        (
            "notification-hold-timer-expired",
            ctx,
            Message::Notification(Notification::hold_timer_expired()),
        ),
        (
            "route-refresh-ipv4-unicast",
            ctx,
            Message::RouteRefresh(RouteRefresh::new(Family::IPV4_UNICAST)),
        ),
        (
            "route-refresh-ipv6-borr",
            ctx,
            Message::RouteRefresh(RouteRefresh {
                family: Family::IPV6_UNICAST,
                subtype: RouteRefreshSubtype::BeginningOfRefresh,
                orf: vec![],
            }),
        ),
        (
            "route-refresh-ipv6-eorr",
            ctx,
            Message::RouteRefresh(RouteRefresh {
                family: Family::IPV6_UNICAST,
                subtype: RouteRefreshSubtype::EndOfRefresh,
                orf: vec![],
            }),
        ),
        (
            "update-eor-ipv4-unicast",
            ctx,
            Message::Update(Update::end_of_rib(Family::IPV4_UNICAST)),
        ),
        (
            "update-eor-ipv6-unicast",
            ctx,
            Message::Update(Update::end_of_rib(Family::IPV6_UNICAST)),
        ),
        (
            "update-ipv4-basic",
            ctx,
            update(
                vec![],
                {
                    let mut a = base_attrs(&[65001]);
                    a.push(attr(AttributeValue::MultiExitDisc(50)));
                    a
                },
                vec![v4("10.1.1.0/24")],
            ),
        ),
        (
            "update-ipv4-ibgp-route-reflected",
            ctx,
            update(
                vec![],
                vec![
                    attr(AttributeValue::Origin(Origin::Incomplete)),
                    attr(AttributeValue::AsPath(AsPath::new())),
                    attr(AttributeValue::NextHop(ip4("10.0.0.7"))),
                    attr(AttributeValue::LocalPref(100)),
                    attr(AttributeValue::OriginatorId(ip4("10.0.0.7"))),
                    attr(AttributeValue::ClusterList(vec![
                        ip4("10.0.0.100"),
                        ip4("10.0.0.101"),
                    ])),
                ],
                vec![v4("192.168.10.0/26"), v4("192.168.10.64/26")],
            ),
        ),
        (
            "update-ipv4-all-optional-attributes",
            ctx,
            update(
                vec![],
                {
                    let mut a = base_attrs(&[65001, 4_200_000_001]);
                    a.extend([
                        attr(AttributeValue::AtomicAggregate),
                        attr(AttributeValue::Aggregator(Aggregator {
                            asn: 4_200_000_001,
                            address: ip4("10.9.9.9"),
                        })),
                        attr(AttributeValue::Communities(vec![
                            Community::new(65001, 100),
                            Community::NO_EXPORT,
                        ])),
                        attr(AttributeValue::ExtendedCommunities(vec![
                            ExtendedCommunity([0x00, 0x02, 0xfd, 0xe9, 0, 0, 0, 1]),
                        ])),
                        attr(AttributeValue::LargeCommunities(vec![LargeCommunity {
                            global_admin: 4_200_000_001,
                            local_data_1: 1,
                            local_data_2: 2,
                        }])),
                        attr(AttributeValue::OnlyToCustomer(65001)),
                        PathAttribute {
                            flags: AttrFlags(
                                AttrFlags::OPTIONAL | AttrFlags::TRANSITIVE | AttrFlags::PARTIAL,
                            ),
                            value: AttributeValue::Unknown {
                                type_code: 0xfe,
                                data: vec![0xde, 0xad, 0xbe, 0xef],
                            },
                        },
                    ]);
                    a
                },
                vec![
                    v4("10.1.1.0/24"),
                    v4("10.1.2.0/23"),
                    v4("0.0.0.0/0"),
                    v4("10.1.3.1/32"),
                ],
            ),
        ),
        (
            "update-as-path-all-segment-types",
            ctx,
            update(
                vec![],
                vec![
                    attr(AttributeValue::Origin(Origin::Egp)),
                    attr(AttributeValue::AsPath(AsPath {
                        segments: vec![
                            AsSegment {
                                kind: SegmentType::ConfedSequence,
                                asns: vec![64512, 64513],
                            },
                            AsSegment {
                                kind: SegmentType::ConfedSet,
                                asns: vec![64514],
                            },
                            seq(&[65001, 65002]),
                            AsSegment {
                                kind: SegmentType::Set,
                                asns: vec![65010, 65011, 65012],
                            },
                        ],
                    })),
                    attr(AttributeValue::NextHop(ip4("192.0.2.1"))),
                ],
                vec![v4("10.2.0.0/16")],
            ),
        ),
        (
            "update-two-octet-session-as4-path",
            two,
            update(
                vec![],
                vec![
                    attr(AttributeValue::Origin(Origin::Igp)),
                    attr(AttributeValue::AsPath(AsPath {
                        segments: vec![seq(&[65001, 23456, 23456])],
                    })),
                    attr(AttributeValue::NextHop(ip4("192.0.2.1"))),
                    attr(AttributeValue::Aggregator(Aggregator {
                        asn: 23456,
                        address: ip4("10.9.9.9"),
                    })),
                    attr(AttributeValue::As4Path(AsPath {
                        segments: vec![seq(&[4_200_000_001, 4_200_000_002])],
                    })),
                    attr(AttributeValue::As4Aggregator(Aggregator {
                        asn: 4_200_000_002,
                        address: ip4("10.9.9.9"),
                    })),
                ],
                vec![v4("10.3.0.0/16")],
            ),
        ),
        (
            "update-ipv4-withdraw",
            ctx,
            update(vec![v4("10.1.1.0/24"), v4("10.1.2.0/24")], vec![], vec![]),
        ),
        (
            "update-ipv6-mp-reach-link-local",
            ctx,
            update(
                vec![],
                vec![
                    attr(AttributeValue::MpReachNlri(MpReach {
                        family: Family::IPV6_UNICAST,
                        next_hop: NextHop::Ipv6 {
                            global: ip6("2001:db8::1"),
                            link_local: Some(ip6("fe80::1")),
                        },
                        reserved: 0,
                        nlri: vec![
                            Nlri::new("2001:db8:1::/48".parse().unwrap()),
                            Nlri::new("fd00:10:244::/64".parse().unwrap()),
                        ],
                    })),
                    attr(AttributeValue::Origin(Origin::Igp)),
                    attr(AttributeValue::AsPath(AsPath {
                        segments: vec![seq(&[65001])],
                    })),
                ],
                vec![],
            ),
        ),
        (
            "update-ipv6-mp-reach-global",
            ctx,
            update(
                vec![],
                vec![
                    attr(AttributeValue::Origin(Origin::Igp)),
                    attr(AttributeValue::AsPath(AsPath {
                        segments: vec![seq(&[65001])],
                    })),
                    attr(AttributeValue::MpReachNlri(MpReach {
                        family: Family::IPV6_UNICAST,
                        next_hop: NextHop::Ipv6 {
                            global: ip6("2001:db8::1"),
                            link_local: None,
                        },
                        reserved: 0,
                        nlri: vec![Nlri::new("2001:db8:2::/128".parse().unwrap())],
                    })),
                ],
                vec![],
            ),
        ),
        (
            "update-ipv4-nlri-ipv6-next-hop-rfc8950",
            ctx,
            update(
                vec![],
                vec![
                    attr(AttributeValue::MpReachNlri(MpReach {
                        family: Family::IPV4_UNICAST,
                        next_hop: NextHop::Ipv6 {
                            global: ip6("2001:db8::1"),
                            link_local: None,
                        },
                        reserved: 0,
                        nlri: vec![v4("10.4.0.0/16")],
                    })),
                    attr(AttributeValue::Origin(Origin::Igp)),
                    attr(AttributeValue::AsPath(AsPath {
                        segments: vec![seq(&[65001])],
                    })),
                ],
                vec![],
            ),
        ),
        (
            "update-ipv6-mp-unreach",
            ctx,
            update(
                vec![],
                vec![attr(AttributeValue::MpUnreachNlri(MpUnreach {
                    family: Family::IPV6_UNICAST,
                    withdrawn: vec![Nlri::new("2001:db8:1::/48".parse().unwrap())],
                }))],
                vec![],
            ),
        ),
        (
            "update-add-path-ipv4-and-ipv6",
            add_path,
            update(
                vec![Nlri::with_path_id("10.5.0.0/24".parse().unwrap(), 7)],
                vec![
                    attr(AttributeValue::Origin(Origin::Igp)),
                    attr(AttributeValue::AsPath(AsPath {
                        segments: vec![seq(&[65001])],
                    })),
                    attr(AttributeValue::NextHop(ip4("192.0.2.1"))),
                    attr(AttributeValue::MpReachNlri(MpReach {
                        family: Family::IPV6_UNICAST,
                        next_hop: NextHop::Ipv6 {
                            global: ip6("2001:db8::1"),
                            link_local: None,
                        },
                        reserved: 0,
                        nlri: vec![Nlri::with_path_id("2001:db8:5::/48".parse().unwrap(), 2)],
                    })),
                ],
                vec![
                    Nlri::with_path_id("10.5.1.0/24".parse().unwrap(), 1),
                    Nlri::with_path_id("10.5.1.0/24".parse().unwrap(), 2),
                ],
            ),
        ),
        (
            "update-extended-length-flag-on-short-attribute",
            ctx,
            update(
                vec![],
                {
                    let mut a = base_attrs(&[65001]);
                    a.push(PathAttribute {
                        flags: AttrFlags(
                            AttrFlags::OPTIONAL
                                | AttrFlags::TRANSITIVE
                                | AttrFlags::EXTENDED_LENGTH,
                        ),
                        value: AttributeValue::Communities(vec![Community::new(65001, 1)]),
                    });
                    a
                },
                vec![v4("10.6.0.0/24")],
            ),
        ),
        (
            "update-extended-message-1100-prefixes",
            extended,
            update(vec![], base_attrs(&[65001]), many),
        ),
    ]
}
