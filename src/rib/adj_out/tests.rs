//! Export groups: shared computation, independent pulls, ADD-PATH, the minimum advertisement
//! interval, packing, and a change log that stays bounded and never stalls a pull.

use super::*;
use crate::rib::attrs::Origin;
use crate::rib::peer::{NextHopMode, PeerType, ReflectionRole};

fn key(add_path_send: bool) -> ExportKey {
    ExportKey {
        peer_type: PeerType::Ibgp,
        local_as: 64512,
        peer_as: None,
        local_address: "192.168.0.1".parse().unwrap(),
        reflection: ReflectionRole::NonClient,
        next_hop_mode: NextHopMode::Auto,
        add_path_send,
        families: crate::rib::Families::BOTH,
        filters: vec![],
    }
}

fn path(id: u32, source: u32, attrs: &Arc<RouteAttrs>) -> OutPath {
    OutPath {
        tx_path_id: id,
        source: PeerId(source),
        attrs: Arc::clone(attrs),
    }
}

fn p(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn an_out_entry_is_sixteen_bytes() {
    assert_eq!(std::mem::size_of::<OutEntry>(), 16);
}

#[test]
fn sequence_numbers_widen_from_their_low_bits() {
    assert_eq!(widen_seq(5, 7), 5);
    assert_eq!(widen_seq(7, 7), 7);
    let now = (3u64 << 32) + 2;
    assert_eq!(widen_seq(u32::MAX, now), (3u64 << 32) - 1);
    assert_eq!(widen_seq(1, now), (3u64 << 32) + 1);
}

#[test]
fn members_share_one_computation_and_pull_independently() {
    let now = Instant::now();
    let a = Arc::new(RouteAttrs::new(Origin::Igp, None));
    let mut g = ExportGroup::new(key(false), None);
    g.join(PeerId(1));
    g.join(PeerId(2));
    // Two members were told End-of-RIB of an empty table.
    assert!(g.pull(PeerId(1), now, 100, Duration::ZERO).end_of_rib);
    assert!(g.pull(PeerId(2), now, 100, Duration::ZERO).end_of_rib);
    g.set(p("10.0.0.0/24"), [path(0, 9, &a)].into_iter().collect());
    g.set(p("10.0.1.0/24"), [path(0, 9, &a)].into_iter().collect());
    let out1 = g.pull(PeerId(1), now, 100, Duration::ZERO);
    assert_eq!(
        out1.updates.len(),
        1,
        "two prefixes, one attribute set, one UPDATE"
    );
    assert_eq!(out1.updates[0].announced.len(), 2);
    // Peer 2 is slow: the first prefix changes again and is withdrawn; it sees the end state.
    g.set(p("10.0.0.0/24"), OutPaths::new());
    let out2 = g.pull(PeerId(2), now, 100, Duration::ZERO);
    assert_eq!(out2.updates.len(), 2);
    assert_eq!(
        out2.updates[0].withdrawn,
        vec![Nlri {
            prefix: p("10.0.0.0/24"),
            path_id: None
        }]
    );
    assert_eq!(
        out2.updates[1].announced,
        vec![Nlri {
            prefix: p("10.0.1.0/24"),
            path_id: None
        }]
    );
    let out1 = g.pull(PeerId(1), now, 100, Duration::ZERO);
    assert_eq!(out1.updates[0].withdrawn.len(), 1);
    assert!(g.log.is_empty(), "log trimmed once everyone read it");
}

#[test]
fn a_late_joiner_gets_the_table_then_end_of_rib() {
    let now = Instant::now();
    let a = Arc::new(RouteAttrs::new(Origin::Igp, None));
    let mut g = ExportGroup::new(key(false), None);
    g.set(p("10.0.0.0/24"), [path(0, 9, &a)].into_iter().collect());
    g.join(PeerId(1));
    let out = g.pull(PeerId(1), now, 100, Duration::ZERO);
    assert_eq!(out.updates[0].announced.len(), 1);
    assert!(out.end_of_rib);
    assert!(!out.more);
}

#[test]
fn a_route_is_not_sent_back_to_its_source() {
    let now = Instant::now();
    let a = Arc::new(RouteAttrs::new(Origin::Igp, None));
    let mut g = ExportGroup::new(key(false), None);
    g.join(PeerId(1));
    g.pull(PeerId(1), now, 100, Duration::ZERO);
    g.set(p("10.0.0.0/24"), [path(0, 1, &a)].into_iter().collect());
    let out = g.pull(PeerId(1), now, 100, Duration::ZERO);
    assert!(out.updates[0].announced.is_empty());
    assert_eq!(out.updates[0].withdrawn.len(), 1);
}

#[test]
fn add_path_groups_send_and_withdraw_by_path_id() {
    let now = Instant::now();
    let a = Arc::new(RouteAttrs::new(
        Origin::Igp,
        Some("10.0.0.1".parse().unwrap()),
    ));
    let b = Arc::new(RouteAttrs::new(
        Origin::Igp,
        Some("10.0.0.2".parse().unwrap()),
    ));
    let mut g = ExportGroup::new(key(true), None);
    g.join(PeerId(1));
    g.pull(PeerId(1), now, 100, Duration::ZERO);
    g.set(
        p("10.0.0.0/24"),
        [path(1, 7, &a), path(2, 8, &b)].into_iter().collect(),
    );
    let out = g.pull(PeerId(1), now, 100, Duration::ZERO);
    let ids: Vec<_> = out
        .updates
        .iter()
        .flat_map(|u| u.announced.iter().map(|n| n.path_id))
        .collect();
    assert_eq!(ids, vec![Some(1), Some(2)]);
    g.set(p("10.0.0.0/24"), [path(2, 8, &b)].into_iter().collect());
    let out = g.pull(PeerId(1), now, 100, Duration::ZERO);
    assert_eq!(
        out.updates[0].withdrawn,
        vec![Nlri {
            prefix: p("10.0.0.0/24"),
            path_id: Some(1)
        }]
    );
    assert_eq!(
        out.updates[1].announced,
        vec![Nlri {
            prefix: p("10.0.0.0/24"),
            path_id: Some(2)
        }]
    );
}

#[test]
fn minimum_advertisement_interval_holds_changes_back() {
    let t0 = Instant::now();
    let mrai = Duration::from_secs(5);
    let a = Arc::new(RouteAttrs::new(Origin::Igp, None));
    let mut g = ExportGroup::new(key(false), None);
    g.join(PeerId(1));
    g.pull(PeerId(1), t0, 100, mrai);
    g.set(p("10.0.0.0/24"), [path(0, 9, &a)].into_iter().collect());
    assert_eq!(g.pull(PeerId(1), t0, 100, mrai).updates.len(), 1);
    g.set(p("10.0.1.0/24"), [path(0, 9, &a)].into_iter().collect());
    let held = g.pull(PeerId(1), t0 + Duration::from_secs(1), 100, mrai);
    assert!(held.updates.is_empty());
    assert_eq!(held.wake_at, Some(t0 + mrai));
    assert_eq!(g.pull(PeerId(1), t0 + mrai, 100, mrai).updates.len(), 1);
}

#[test]
fn a_batch_encodes_into_full_updates_per_family() {
    let attrs = Arc::new(RouteAttrs::new(
        Origin::Igp,
        Some("192.168.0.1".parse().unwrap()),
    ));
    let v4: Vec<Nlri> = (0..2000u32)
        .map(|i| {
            Nlri::new(IpNet::V4(
                ipnet::Ipv4Net::new((0x0a00_0000 + (i << 8)).into(), 24).unwrap(),
            ))
        })
        .collect();
    let batch = OutboundUpdate {
        withdrawn: vec![Nlri::new(p("fd00::/64"))],
        attrs: Some(attrs),
        announced: v4,
    };
    let updates = batch.encode(&Context::default()).unwrap();
    // 2000 /24s at 4 octets each need two 4096-octet UPDATEs; the IPv6 withdrawal one more.
    assert_eq!(updates.len(), 3);
    assert_eq!(updates.iter().map(|u| u.nlri.len()).sum::<usize>(), 2000);
}

#[test]
fn the_log_stays_bounded_while_a_member_does_not_read() {
    let now = Instant::now();
    let a = Arc::new(RouteAttrs::new(
        Origin::Igp,
        Some("10.0.0.1".parse().unwrap()),
    ));
    let b = Arc::new(RouteAttrs::new(
        Origin::Igp,
        Some("10.0.0.2".parse().unwrap()),
    ));
    let mut g = ExportGroup::new(key(true), None);
    g.join(PeerId(1));
    g.pull(PeerId(1), now, 100, Duration::ZERO);
    // Path 1 is announced once and read; then the prefix flaps 10,000 times between path 2
    // alone and paths 2 + 3 without the member reading.
    g.set(p("10.0.0.0/24"), [path(1, 7, &a)].into_iter().collect());
    g.pull(PeerId(1), now, 100, Duration::ZERO);
    for i in 0..10_000u32 {
        let paths: OutPaths = if i % 2 == 0 {
            [path(2, 8, &b)].into_iter().collect()
        } else {
            [path(2, 8, &b), path(3, 9, &a)].into_iter().collect()
        };
        g.set(p("10.0.0.0/24"), paths);
        assert!(g.log.len() <= 1024 + 2 * g.out.len() + 1);
    }
    // The member learns that path 1 went and which paths are there now.
    let out = g.pull(PeerId(1), now, 100_000, Duration::ZERO);
    let withdrawn: Vec<Option<u32>> = out
        .updates
        .iter()
        .flat_map(|u| u.withdrawn.iter().map(|n| n.path_id))
        .collect();
    assert!(withdrawn.contains(&Some(1)));
    let announced: Vec<Option<u32>> = out
        .updates
        .iter()
        .flat_map(|u| u.announced.iter().map(|n| n.path_id))
        .collect();
    assert!(announced.contains(&Some(2)) && announced.contains(&Some(3)));
    assert!(!out.more);
}

#[test]
fn pull_respects_the_prefix_budget() {
    let now = Instant::now();
    let a = Arc::new(RouteAttrs::new(Origin::Igp, None));
    let mut g = ExportGroup::new(key(false), None);
    for i in 0..10u32 {
        g.set(
            IpNet::V4(ipnet::Ipv4Net::new((0x0a00_0000 + (i << 8)).into(), 24).unwrap()),
            [path(0, 9, &a)].into_iter().collect(),
        );
    }
    g.join(PeerId(1));
    let first = g.pull(PeerId(1), now, 4, Duration::ZERO);
    assert_eq!(first.updates[0].announced.len(), 4);
    assert!(first.more && !first.end_of_rib);
    let rest = g.pull(PeerId(1), now, 100, Duration::ZERO);
    assert_eq!(rest.updates[0].announced.len(), 6);
    assert!(rest.end_of_rib && !rest.more);
}

fn v4(i: u32, len: u8) -> IpNet {
    IpNet::V4(ipnet::Ipv4Net::new(i.into(), len).unwrap())
}

/// A group holding 20,000 /24s with attributes `a` (a table large enough to keep the
/// size-based compaction away) and member 1 that has read all of it.
fn caught_up_behind_a_large_table(now: Instant, a: &Arc<RouteAttrs>) -> ExportGroup {
    let mut g = ExportGroup::new(key(false), None);
    for i in 0..20_000u32 {
        g.set(
            v4(0x0b00_0000 + (i << 8), 24),
            [path(0, 9, a)].into_iter().collect(),
        );
    }
    g.join(PeerId(1));
    while g.has_pending(PeerId(1)) {
        g.pull(PeerId(1), now, 100_000, Duration::ZERO);
    }
    g
}

/// A burst of changes to the same prefixes (announce then withdraw before the member
/// read them) leaves superseded log entries: a pull skips them instead of coming back
/// empty while the log still holds work (issue 12: the observer stalled for minutes).
#[test]
fn a_pull_skips_superseded_entries_instead_of_returning_nothing() {
    let now = Instant::now();
    let a = Arc::new(RouteAttrs::new(Origin::Igp, None));
    let b = Arc::new(RouteAttrs::new(Origin::Egp, None));
    let mut g = caught_up_behind_a_large_table(now, &a);
    // 3,000 /32s announced, then withdrawn, then announced with other attributes, all
    // before the member pulls; then one more change after them.
    for round in [Some(&a), None, Some(&b)] {
        for i in 0..3_000u32 {
            let paths = round
                .map(|x| [path(0, 9, x)].into_iter().collect())
                .unwrap_or_default();
            g.set(v4(0x0c00_0000 + i, 32), paths);
        }
    }
    g.set(v4(0x0d00_0000, 24), [path(0, 9, &a)].into_iter().collect());
    let mut announced = 0;
    let mut pulls = 0;
    while g.has_pending(PeerId(1)) {
        let out = g.pull(PeerId(1), now, 64, Duration::ZERO);
        announced += out.updates.iter().map(|u| u.announced.len()).sum::<usize>();
        pulls += 1;
        assert!(pulls <= 60, "{pulls} pulls and still not done");
    }
    // Exactly the final state: 3,000 /32s with `b` and the last /24, in about one pull
    // per 64 of them (superseded entries cost no budget; counting them took 141 pulls).
    assert_eq!(announced, 3_001);
}

/// Superseded entries do not pile up behind a large table: once they are half the log it
/// is compacted (the bound by table size alone let a 1M-route group keep 2M of them).
#[test]
fn superseded_entries_are_compacted_once_they_are_half_the_log() {
    let now = Instant::now();
    let a = Arc::new(RouteAttrs::new(Origin::Igp, None));
    let mut g = caught_up_behind_a_large_table(now, &a);
    for _ in 0..10 {
        for i in 0..2_000u32 {
            g.set(
                v4(0x0c00_0000 + i, 32),
                [path(0, 9, &a)].into_iter().collect(),
            );
            g.set(v4(0x0c00_0000 + i, 32), OutPaths::default());
        }
    }
    assert!(
        g.log.len() <= 2 * 2_000 + 2 * COMPACT_MIN_SUPERSEDED + 2,
        "log {}",
        g.log.len()
    );
    assert!(2 * g.superseded <= g.log.len() || g.superseded <= COMPACT_MIN_SUPERSEDED);
}
