//! Hand-built messages: decode, encode, round trip.

use std::net::Ipv4Addr;

use bgp_proto::capability::{AddPathFamily, GracefulRestart, GracefulRestartFamily};
use bgp_proto::iana::{AddPathMode, CeaseSubcode, ErrorCode};
use bgp_proto::{Capability, Context, Family, Message, Negotiated, Notification, Open};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn keepalive_round_trip() {
    let bytes = hex("ffffffffffffffffffffffffffffffff 0013 04");
    let ctx = Context::default();
    let m = Message::decode(&bytes, &ctx).unwrap();
    assert_eq!(m, Message::Keepalive);
    assert_eq!(m.to_bytes(&ctx).unwrap().as_ref(), bytes.as_slice());
}

#[test]
fn open_round_trip_and_negotiation() {
    let ours = Open::new(
        65000,
        90,
        Ipv4Addr::new(10, 0, 0, 1),
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::FourOctetAs(65000),
            Capability::AddPath(vec![AddPathFamily {
                family: Family::IPV4_UNICAST,
                mode: AddPathMode::Both,
            }]),
            Capability::GracefulRestart(GracefulRestart {
                flags: GracefulRestart::RESTART_STATE,
                restart_time: 120,
                families: vec![GracefulRestartFamily {
                    family: Family::IPV4_UNICAST,
                    flags: GracefulRestartFamily::FORWARDING_STATE,
                }],
            }),
        ],
    );
    let theirs = Open::new(
        4_200_000_000,
        90,
        Ipv4Addr::new(10, 0, 0, 2),
        vec![
            Capability::FourOctetAs(4_200_000_000),
            Capability::AddPath(vec![AddPathFamily {
                family: Family::IPV4_UNICAST,
                mode: AddPathMode::Send,
            }]),
            Capability::ExtendedMessage,
        ],
    );
    assert_eq!(theirs.my_as, 23456);
    let ctx = Context::default();
    for open in [&ours, &theirs] {
        let bytes = Message::Open(open.clone()).to_bytes(&ctx).unwrap();
        let back = Message::decode(&bytes, &ctx).unwrap();
        assert_eq!(back, Message::Open(open.clone()));
        let Message::Open(o) = back else {
            unreachable!()
        };
        o.validate().unwrap();
    }
    let n = Negotiated::from_opens(&ours, &theirs);
    assert!(n.receive.four_octet_as);
    assert!(!n.receive.extended_message);
    assert!(n.receive.add_path(Family::IPV4_UNICAST));
    assert!(!n.send.add_path(Family::IPV4_UNICAST));
}

#[test]
fn notification_shutdown_communication() {
    let n =
        Notification::cease_with_communication(CeaseSubcode::AdministrativeShutdown, "maintenance");
    let ctx = Context::default();
    let bytes = Message::Notification(n.clone()).to_bytes(&ctx).unwrap();
    let Message::Notification(back) = Message::decode(&bytes, &ctx).unwrap() else {
        panic!()
    };
    assert_eq!(back, n);
    assert_eq!(back.code, ErrorCode::Cease);
    assert_eq!(back.shutdown_communication(), Some("maintenance"));
}

#[test]
fn update_accessors() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/messages");
    let text = std::fs::read_to_string(dir.join("update-ipv4-ibgp-route-reflected.hex")).unwrap();
    let bytes = hex(&text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<String>());
    let Message::Update(u) = Message::decode(&bytes, &Context::default()).unwrap() else {
        panic!()
    };
    assert_eq!(u.origin(), Some(bgp_proto::Origin::Incomplete));
    assert_eq!(u.next_hop(), Some(Ipv4Addr::new(10, 0, 0, 7)));
    assert_eq!(u.local_pref(), Some(100));
    assert_eq!(u.med(), None);
    assert!(u.communities().is_empty());
    assert_eq!(u.as_path().map(|p| p.path_len()), Some(0));
    assert_eq!(u.route_attributes().count(), 6);
}
