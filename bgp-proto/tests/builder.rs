//! UpdateBuilder: output decodes back to the same prefixes, and uses as few messages as fit.

use std::net::Ipv4Addr;

use bgp_proto::attr::{AsPath, Community, NextHop};
use bgp_proto::builder::UpdateBuilder;
use bgp_proto::{
    AddPathFamilies, AttributeValue, Context, Family, Message, Nlri, Origin, PathAttribute, Update,
};

fn attrs() -> Vec<PathAttribute> {
    vec![
        PathAttribute::new(AttributeValue::Origin(Origin::Igp)),
        PathAttribute::new(AttributeValue::AsPath(AsPath::sequence([65001, 65002]))),
        PathAttribute::new(AttributeValue::Communities(vec![Community::new(65001, 1)])),
    ]
}

fn v4_24s(n: u32) -> Vec<Nlri> {
    (0..n)
        .map(|i| Nlri::new(format!("10.{}.{}.0/24", i / 256, i % 256).parse().unwrap()))
        .collect()
}

fn v6_48s(n: u32) -> Vec<Nlri> {
    (0..n)
        .map(|i| Nlri::new(format!("2001:db8:{i:x}::/48").parse().unwrap()))
        .collect()
}

/// Encodes and decodes every update, checks it fits, and collects (family, prefix) pairs.
type Routes = Vec<(Family, Nlri)>;

fn round_trip(ctx: &Context, updates: &[Update]) -> (Routes, Routes) {
    let (mut announced, mut withdrawn) = (Vec::new(), Vec::new());
    for u in updates {
        let bytes = Message::Update(u.clone()).to_bytes(ctx).unwrap();
        assert!(bytes.len() <= ctx.max_len());
        let Message::Update(d) = Message::decode(&bytes, ctx).unwrap() else {
            panic!()
        };
        assert!(d.issues.is_empty(), "{:?}", d.issues);
        announced.extend(d.announced().map(|(f, n)| (f, *n)));
        withdrawn.extend(d.withdrawn_routes().map(|(f, n)| (f, *n)));
    }
    (announced, withdrawn)
}

/// Every message but the last must be unable to take the next prefix (greedy in-order packing is
/// minimal for a fixed order).
fn assert_full(ctx: &Context, updates: &[Update], entry_len: usize) {
    for (i, u) in updates
        .iter()
        .enumerate()
        .take(updates.len().saturating_sub(1))
    {
        let len = Message::Update(u.clone()).encoded_len(ctx);
        assert!(
            len + entry_len > ctx.max_len(),
            "message {i} has room: {len} + {entry_len} <= {}",
            ctx.max_len()
        );
    }
}

#[test]
fn ipv4_announcements_pack_minimally() {
    let ctx = Context::default();
    let prefixes = v4_24s(5000);
    let updates = UpdateBuilder::new(ctx, Family::IPV4_UNICAST)
        .announce(
            &attrs(),
            NextHop::Ipv4(Ipv4Addr::new(192, 0, 2, 1)),
            &prefixes,
        )
        .build()
        .unwrap();
    // 23 header+lengths, attributes: ORIGIN 4, AS_PATH 3+2+8, COMMUNITIES 3+4, NEXT_HOP 7 = 31.
    let per_message = (4096 - 23 - 31) / 4;
    assert_eq!(updates.len(), 5000usize.div_ceil(per_message));
    assert_full(&ctx, &updates, 4);
    let (announced, withdrawn) = round_trip(&ctx, &updates);
    assert!(withdrawn.is_empty());
    assert_eq!(
        announced,
        prefixes
            .iter()
            .map(|n| (Family::IPV4_UNICAST, *n))
            .collect::<Vec<_>>()
    );
    let first = &updates[0];
    assert_eq!(
        first
            .attribute(bgp_proto::iana::AttributeType::NextHop)
            .unwrap()
            .value,
        AttributeValue::NextHop(Ipv4Addr::new(192, 0, 2, 1))
    );
}

#[test]
fn ipv6_with_add_path_and_withdrawals_pack_minimally() {
    let ctx = Context {
        add_path: AddPathFamilies::of(&[Family::IPV6_UNICAST]),
        ..Context::default()
    };
    let announce: Vec<Nlri> = v6_48s(3000)
        .into_iter()
        .enumerate()
        .map(|(i, n)| Nlri {
            path_id: Some(i as u32 % 3),
            ..n
        })
        .collect();
    let withdraw: Vec<Nlri> = v6_48s(1500)
        .into_iter()
        .map(|n| Nlri {
            path_id: Some(9),
            ..n
        })
        .collect();
    let nh = NextHop::Ipv6 {
        global: "2001:db8::1".parse().unwrap(),
        link_local: Some("fe80::1".parse().unwrap()),
    };
    let updates = UpdateBuilder::new(ctx, Family::IPV6_UNICAST)
        .withdraw(&withdraw)
        .announce(&attrs(), nh, &announce)
        .build()
        .unwrap();
    assert_full(&ctx, &updates, 4 + 1 + 6);
    let (announced, withdrawn) = round_trip(&ctx, &updates);
    assert_eq!(
        announced,
        announce
            .iter()
            .map(|n| (Family::IPV6_UNICAST, *n))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        withdrawn,
        withdraw
            .iter()
            .map(|n| (Family::IPV6_UNICAST, *n))
            .collect::<Vec<_>>()
    );
    // Lower bound from the bytes: each entry is 11 octets; a message carries at most
    // 4096 - 23 - 4 (MP_UNREACH header) - 3 octets of withdrawals...
    let total_entries = 4500usize;
    let best_case_per_message = (4096 - 23 - 4 - 3) / 11;
    assert!(updates.len() <= total_entries.div_ceil(best_case_per_message) + 1);
}

#[test]
fn ipv4_withdrawals_only_and_extended_messages() {
    let ctx = Context {
        extended_message: true,
        ..Context::default()
    };
    let withdraw = v4_24s(40_000);
    let updates = UpdateBuilder::new(ctx, Family::IPV4_UNICAST)
        .withdraw(&withdraw)
        .build()
        .unwrap();
    let per_message = (65535 - 23) / 4;
    assert_eq!(updates.len(), 40_000usize.div_ceil(per_message));
    assert_full(&ctx, &updates, 4);
    let (announced, withdrawn) = round_trip(&ctx, &updates);
    assert!(announced.is_empty());
    assert_eq!(withdrawn.len(), 40_000);
}

#[test]
fn ipv4_with_ipv6_next_hop_uses_mp_reach() {
    let ctx = Context::default();
    let prefixes = v4_24s(10);
    let nh = NextHop::Ipv6 {
        global: "2001:db8::1".parse().unwrap(),
        link_local: None,
    };
    let updates = UpdateBuilder::new(ctx, Family::IPV4_UNICAST)
        .announce(&attrs(), nh, &prefixes)
        .build()
        .unwrap();
    assert_eq!(updates.len(), 1);
    assert!(updates[0].nlri.is_empty());
    assert_eq!(updates[0].mp_reach().unwrap().nlri, prefixes);
}

#[test]
fn wrong_family_is_refused() {
    let err = UpdateBuilder::new(Context::default(), Family::IPV6_UNICAST)
        .withdraw(&v4_24s(1))
        .build();
    assert!(err.is_err());
}
