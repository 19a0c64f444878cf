use std::net::Ipv4Addr;
use std::time::Duration;

use bgp_proto::attr::AsPath;
use bgp_proto::{Context, Nlri, Origin, PathAttribute, UpdateBuilder};
use ipnet::IpNet;

use super::*;
use crate::rib::{PeerSession, PolicyContext, RibConfig};

const PEER: PeerId = PeerId(1);
const OWN: &str = "10.0.0.1";

fn rib() -> Rib {
    let mut rib = Rib::new(
        RibConfig {
            router_id: Ipv4Addr::new(10, 0, 0, 1),
            local_as: 64512,
            cluster_id: None,
            min_advertisement_interval: Duration::ZERO,
        },
        PolicyContext::default(),
    );
    rib.peer_up(
        PEER,
        PeerSession::new(
            "10.0.0.2".parse().unwrap(),
            OWN.parse().unwrap(),
            Ipv4Addr::new(10, 0, 0, 2),
            64512,
            65001,
        ),
    );
    rib
}

fn prefixes(n: u32, base: u8) -> Vec<Nlri> {
    (0..n)
        .map(|i| {
            let net: IpNet = format!("10.{base}.{}.0/24", i % 256).parse().unwrap();
            Nlri::new(net)
        })
        .collect()
}

fn announce(nlri: &[Nlri], next_hop: &str) -> bgp_proto::Update {
    let attrs = [
        PathAttribute::new(bgp_proto::AttributeValue::Origin(Origin::Igp)),
        PathAttribute::new(bgp_proto::AttributeValue::AsPath(AsPath::sequence([65001]))),
    ];
    let mut updates = UpdateBuilder::new(Context::default(), Family::IPV4_UNICAST)
        .announce(&attrs, NextHop::Ipv4(next_hop.parse().unwrap()), nlri)
        .build()
        .unwrap();
    assert_eq!(updates.len(), 1);
    updates.remove(0)
}

fn own() -> Vec<IpAddr> {
    vec![OWN.parse().unwrap(), "fe80::1".parse().unwrap()]
}

fn installed(rib: &Rib) -> usize {
    rib.loc_rib().count()
}

/// RFC 4271 §5.1.3 / §6.3: a route whose NEXT_HOP is an address of this node is never installed,
/// and it withdraws what the peer sent before for the prefix.
#[test]
fn own_address_next_hop_is_treat_as_withdraw() {
    let mut rib = rib();
    let mut over = [false; 2];
    let nlri = prefixes(2, 1);
    let out = apply_update(
        &mut rib,
        PEER,
        announce(&nlri, "10.0.0.2"),
        &own(),
        None,
        &mut over,
    );
    assert_eq!(out, Inbound::default());
    assert_eq!(installed(&rib), 2);
    let out = apply_update(
        &mut rib,
        PEER,
        announce(&nlri, OWN),
        &own(),
        None,
        &mut over,
    );
    assert_eq!(out.own_next_hop, 2);
    assert_eq!(installed(&rib), 0);
    assert_eq!(rib.received_counts(PEER), [0, 0]);
}

/// RFC 4486 §4: the peer's paths are counted per family; crossing the limit is reported once,
/// with the family, until the count drops back.
#[test]
fn max_prefix_is_reported_once_per_crossing() {
    let mut rib = rib();
    let mut over = [false; 2];
    let limit = MaxPrefix {
        limit: 3,
        action: MaxPrefixAction::Warn,
        restart_after: Duration::from_secs(5),
    };
    let out = apply_update(
        &mut rib,
        PEER,
        announce(&prefixes(3, 1), "10.0.0.2"),
        &own(),
        Some(limit),
        &mut over,
    );
    assert_eq!(out.over_limit, None);
    assert_eq!(rib.received_counts(PEER), [3, 0]);
    let out = apply_update(
        &mut rib,
        PEER,
        announce(&prefixes(1, 2), "10.0.0.2"),
        &own(),
        Some(limit),
        &mut over,
    );
    assert_eq!(out.over_limit, Some((Family::IPV4_UNICAST, limit)));
    let out = apply_update(
        &mut rib,
        PEER,
        announce(&prefixes(1, 3), "10.0.0.2"),
        &own(),
        Some(limit),
        &mut over,
    );
    assert_eq!(out.over_limit, None, "reported once");
    // Withdrawals bring it back under; crossing again is reported again.
    let withdraw = bgp_proto::Update {
        withdrawn: prefixes(1, 2).into_iter().chain(prefixes(1, 3)).collect(),
        ..bgp_proto::Update::default()
    };
    apply_update(&mut rib, PEER, withdraw, &own(), Some(limit), &mut over);
    assert_eq!(rib.received_counts(PEER), [3, 0]);
    assert_eq!(over, [false, false]);
    let out = apply_update(
        &mut rib,
        PEER,
        announce(&prefixes(1, 4), "10.0.0.2"),
        &own(),
        Some(limit),
        &mut over,
    );
    assert_eq!(out.over_limit, Some((Family::IPV4_UNICAST, limit)));
}

/// The prefix table's size limit is an error path: the UPDATE that would overflow it is
/// rejected whole and reported; the RIB keeps what it had.
#[test]
fn full_table_rejects_the_update() {
    let mut rib = rib();
    rib.set_max_prefixes(5);
    let mut over = [false; 2];
    apply_update(
        &mut rib,
        PEER,
        announce(&prefixes(4, 1), "10.0.0.2"),
        &own(),
        None,
        &mut over,
    );
    let out = apply_update(
        &mut rib,
        PEER,
        announce(&prefixes(2, 2), "10.0.0.2"),
        &own(),
        None,
        &mut over,
    );
    let full = out.rib_full.expect("rejected");
    assert_eq!((full.prefixes, full.announced, full.limit), (4, 2, 5));
    assert_eq!(installed(&rib), 4);
    // Re-announcing known prefixes needs no room.
    let out = apply_update(
        &mut rib,
        PEER,
        announce(&prefixes(4, 1), "10.0.0.3"),
        &own(),
        None,
        &mut over,
    );
    assert_eq!(out.rib_full, None);
}

/// RFC 7606 AFI/SAFI disable: the peer's routes of one family go, the other family's stay.
#[test]
fn removing_a_family_keeps_the_other() {
    let mut rib = rib();
    let mut over = [false; 2];
    apply_update(
        &mut rib,
        PEER,
        announce(&prefixes(3, 1), "10.0.0.2"),
        &own(),
        None,
        &mut over,
    );
    let v6 = bgp_proto::Update {
        attributes: vec![
            PathAttribute::new(bgp_proto::AttributeValue::Origin(Origin::Igp)),
            PathAttribute::new(bgp_proto::AttributeValue::AsPath(AsPath::sequence([65001]))),
            PathAttribute::new(bgp_proto::AttributeValue::MpReachNlri(
                bgp_proto::attr::MpReach {
                    family: Family::IPV6_UNICAST,
                    next_hop: NextHop::Ipv6 {
                        global: "2001:db8::2".parse().unwrap(),
                        link_local: None,
                    },
                    reserved: 0,
                    nlri: vec![Nlri::new("2001:db8:1::/48".parse().unwrap())],
                },
            )),
        ],
        ..bgp_proto::Update::default()
    };
    apply_update(&mut rib, PEER, v6, &own(), None, &mut over);
    assert_eq!(rib.received_counts(PEER), [3, 1]);
    rib.remove_peer_family(PEER, false);
    assert_eq!(rib.received_counts(PEER), [0, 1]);
    assert_eq!(installed(&rib), 1);
}
