//! The RIB end to end: wire UPDATEs in, plan peerings and originated routes, filters edited in place, and a property test of what a peer is sent against a model.

use super::*;

fn v4(i: u32, len: u8) -> IpNet {
    IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(0x0af4_0000 + (i << 8)), len).unwrap())
}

/// A prefix and its selected (peer, next hop) list.
type SelectedView = (IpNet, Vec<(PeerId, Option<IpAddr>)>);

proptest! {
    /// Whatever order the routes of several peers arrive in, the Loc-RIB selection is the same.
    #[test]
    fn selection_is_independent_of_arrival_order(
        routes in proptest::collection::vec((2u8..6, 0u32..4, 0u32..3, proptest::option::of(0u32..3)), 1..20),
    ) {
        let run = |order: &mut dyn Iterator<Item = &(u8, u32, u32, Option<u32>)>| {
            let mut rib = Rib::new(config(None), policy());
            for n in 2..6 {
                rib.peer_up(PeerId(u32::from(n)), session(n, 65000 + u32::from(n % 2)));
            }
            for (peer, prefix, lp, med) in order {
                let mut attrs = hop(*peer).with_as_sequence([65000 + u32::from(peer % 2)]).with_local_pref(100 + lp);
                attrs.med = *med;
                rib.update(PeerId(u32::from(*peer)), RouteUpdate {
                    withdrawn: vec![],
                    announced: vec![Nlri { prefix: v4(*prefix, 24), path_id: None }],
                    attrs: Some(attrs),
                }).unwrap();
            }
            let mut sel: Vec<SelectedView> = (0..4)
                .map(|i| (v4(i, 24), rib.selected(&v4(i, 24)).iter().map(|p| (p.peer, p.accepted.as_ref().unwrap().next_hop)).collect()))
                .collect();
            sel.sort();
            sel
        };
        let forward = run(&mut routes.iter());
        let backward = run(&mut routes.iter().rev());
        // Later duplicates from the same peer replace earlier ones, so compare only when each
        // (peer, prefix) occurs once.
        let mut keys: Vec<(u8, u32)> = routes.iter().map(|r| (r.0, r.1)).collect();
        keys.sort();
        let unique = keys.windows(2).all(|w| w[0] != w[1]);
        if unique {
            prop_assert_eq!(forward, backward);
        }
    }

    /// Withdrawing everything empties the Loc-RIB, every Adj-RIB-Out, and frees every interned
    /// attribute set.
    #[test]
    fn withdrawing_everything_frees_everything(
        routes in proptest::collection::vec((2u8..5, 0u32..50, 0u32..4), 1..100),
    ) {
        let now = Instant::now();
        let mut rib = Rib::new(config(None), policy());
        for n in 2..5 {
            rib.peer_up(PeerId(u32::from(n)), session(n, 65000));
        }
        rib.peer_up(PeerId(20), session(20, LOCAL_AS));
        for (peer, prefix, lp) in &routes {
            rib.update(PeerId(u32::from(*peer)), RouteUpdate {
                withdrawn: vec![],
                announced: vec![Nlri { prefix: v4(*prefix, 26), path_id: None }],
                attrs: Some(hop(*peer).with_as_sequence([65000, *lp])),
            }).unwrap();
        }
        rib.originate(v4(1, 26), LocalRoute { kind: LocalRouteKind::Block, metric: 1024 });
        let (ann, _) = drain(&mut rib, PeerId(20), now);
        prop_assert!(!ann.is_empty());
        drop(ann);
        for (peer, prefix, _) in &routes {
            rib.update(PeerId(u32::from(*peer)), RouteUpdate {
                withdrawn: vec![Nlri { prefix: v4(*prefix, 26), path_id: None }],
                ..RouteUpdate::default()
            }).unwrap();
        }
        rib.withdraw_local(v4(1, 26));
        drain(&mut rib, PeerId(20), now);
        rib.take_fib_changes();
        rib.sweep_unused_attributes();
        let stats = rib.stats();
        prop_assert_eq!(stats.prefixes, 0);
        prop_assert_eq!(stats.paths, 0);
        prop_assert_eq!(rib.group_of(PeerId(20)).unwrap().len(), 0);
        prop_assert_eq!(stats.attribute_sets, 0);
    }
}

#[test]
fn wire_updates_round_trip_through_the_rib() {
    use bgp_proto::attr::{AttrFlags, AttributeValue, PathAttribute};
    let now = Instant::now();
    let mut rib = Rib::new(config(None), policy());
    rib.peer_up(PeerId(2), session(2, LOCAL_AS));
    rib.peer_up(PeerId(9), session(9, 65000));
    drain(&mut rib, PeerId(9), now);
    // An UPDATE as the codec decodes it, with an unknown optional transitive attribute and an
    // unknown optional non-transitive one.
    let mut attrs = hop(2).with_local_pref(100).to_wire();
    attrs.push(PathAttribute::new(AttributeValue::NextHop(Ipv4Addr::new(
        192, 168, 0, 2,
    ))));
    attrs.push(PathAttribute {
        flags: AttrFlags::OPTIONAL_TRANSITIVE,
        value: AttributeValue::Unknown {
            type_code: 99,
            data: vec![1, 2],
        },
    });
    attrs.push(PathAttribute {
        flags: AttrFlags::OPTIONAL_NON_TRANSITIVE,
        value: AttributeValue::Unknown {
            type_code: 98,
            data: vec![3],
        },
    });
    let wire = bgp_proto::Update {
        withdrawn: vec![],
        attributes: attrs,
        nlri: vec![Nlri::new(net("10.244.2.0/26"))],
        issues: vec![],
    };
    let update = RouteUpdate::from_wire(&wire);
    assert_eq!(
        update.attrs.as_ref().unwrap().next_hop,
        Some(ip("192.168.0.2"))
    );
    rib.update(PeerId(2), update).unwrap();
    let out = rib.pull(PeerId(9), now, 100);
    let messages: Vec<bgp_proto::Update> = out
        .updates
        .iter()
        .flat_map(|u| u.encode(&bgp_proto::Context::default()).unwrap())
        .collect();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.nlri, vec![Nlri::new(net("10.244.2.0/26"))]);
    let unknown: Vec<&PathAttribute> = m
        .attributes
        .iter()
        .filter(|a| matches!(a.value, AttributeValue::Unknown { .. }))
        .collect();
    assert_eq!(unknown.len(), 1, "non-transitive unknown attribute dropped");
    assert!(
        unknown[0].flags.partial(),
        "transitive unknown attribute passed on with Partial"
    );
    assert!(
        m.attribute(bgp_proto::iana::AttributeType::LocalPref)
            .is_none()
    );
    // Treat-as-withdraw removes the route.
    let mut bad = wire.clone();
    bad.issues.push(bgp_proto::UpdateIssue {
        action: bgp_proto::Rfc7606Action::TreatAsWithdraw,
        attribute: None,
        family: None,
        offset: 0,
        reason: "test".into(),
        notification: bgp_proto::Notification::update(
            bgp_proto::iana::UpdateErrorSubcode::MalformedAttributeList,
            vec![],
        ),
    });
    rib.update(PeerId(2), RouteUpdate::from_wire(&bad)).unwrap();
    assert_eq!(rib.loc_rib().count(), 0);
}

#[test]
fn a_second_group_member_gets_the_first_members_routes() {
    let now = Instant::now();
    let mut rib = Rib::new(config(None), policy());
    // Two eBGP peers of one AS share a group; the first is alone when it sends its route, which
    // the group therefore does not store for it.
    rib.peer_up(PeerId(8), session(8, 65000));
    rib.update(
        PeerId(8),
        announce(&["10.244.8.0/26"], hop(8).with_as_sequence([65000])),
    )
    .unwrap();
    assert!(drain(&mut rib, PeerId(8), now).0.is_empty());
    assert_eq!(rib.group_of(PeerId(8)).unwrap().len(), 0);
    rib.peer_up(PeerId(9), session(9, 65000));
    let (ann, _) = drain(&mut rib, PeerId(9), now);
    assert_eq!(announced_prefixes(&ann), vec![net("10.244.8.0/26")]);
    // And the first member still does not get its own route back.
    assert!(drain(&mut rib, PeerId(8), now).0.is_empty());
}

#[test]
fn the_plans_originated_routes_are_synced() {
    use crate::plan::{OriginKind, OriginatedRoute};
    let now = Instant::now();
    let mut rib = Rib::new(config(None), policy());
    rib.peer_up(PeerId(9), session(9, 65000));
    drain(&mut rib, PeerId(9), now);
    let block = OriginatedRoute {
        prefix: net("10.244.1.0/26"),
        kind: OriginKind::Block,
        blackhole: true,
    };
    let service = OriginatedRoute {
        prefix: net("10.96.0.0/12"),
        kind: OriginKind::ServiceClusterIp,
        blackhole: false,
    };
    rib.originate(
        net("10.244.9.9/32"),
        LocalRoute {
            kind: LocalRouteKind::Kernel {
                interface: "cali1".into(),
            },
            metric: 1024,
        },
    );
    rib.sync_originated(&[block, service]);
    assert_eq!(
        announced_prefixes(&drain(&mut rib, PeerId(9), now).0),
        vec![
            net("10.96.0.0/12"),
            net("10.244.1.0/26"),
            net("10.244.9.9/32")
        ]
    );
    rib.sync_originated(&[service]);
    let (ann, wd) = drain(&mut rib, PeerId(9), now);
    assert!(ann.is_empty());
    assert_eq!(wd, vec![Nlri::new(net("10.244.1.0/26"))]);
    assert_eq!(rib.loc_rib().count(), 2, "the kernel route stays");
}

#[test]
fn a_peering_from_the_plan_becomes_a_peer_session() {
    use crate::plan::{Peering, PeeringKind, TtlMode};
    let peering = Peering {
        name: "Global_192_0_2_1".into(),
        kind: PeeringKind::Global,
        address: ip("192.0.2.1"),
        port: 179,
        peer_as: 65000,
        local_as: LOCAL_AS,
        passive: false,
        source_address: None,
        password: None,
        ttl: TtlMode::Multihop { ttl: 64 },
        route_reflector_client: false,
        cluster_id: None,
        next_hop: crate::model::NextHopMode::Keep,
        allow_local_as: Some(2),
        graceful_restart_time: None,
        keepalive_time: None,
        import_filters: vec!["everything".into()],
        export_filters: vec![],
        reachable_by: None,
        peer_node: None,
        source_resource: None,
    };
    let facts = peer::SessionFacts {
        router_id: Ipv4Addr::new(192, 0, 2, 1),
        local_address: ip("192.168.0.1"),
        add_path_send: true,
        add_path_receive: false,
        graceful_restart: true,
        families: peer::Families::BOTH,
    };
    let plan_json = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/clusters/bgpfilter/plan-n1.json"
    ))
    .unwrap();
    let plan: crate::plan::Plan = serde_json::from_str(&plan_json).unwrap();
    let s = PeerSession::from_peering(&peering, &plan, &facts);
    assert_eq!(s.peer_type(), PeerType::Ebgp);
    assert_eq!(s.next_hop_mode, NextHopMode::Keep);
    assert_eq!(s.allow_local_as, 2);
    assert!(!s.mesh && s.add_path_send && s.import_filter.is_some() && s.export_filter.is_none());
}

#[test]
fn an_edited_export_filter_is_applied_without_a_reset() {
    let now = Instant::now();
    let mut rib = Rib::new(config(None), policy());
    rib.originate(
        net("10.244.1.0/26"),
        LocalRoute {
            kind: LocalRouteKind::Block,
            metric: 1024,
        },
    );
    let accept_all: Arc<dyn RouteFilter> = Arc::new(chain(
        Direction::Export,
        vec![CompiledRule {
            matches: RuleMatch::default(),
            action: FilterAction::Accept,
            operations: vec![],
        }],
    ));
    let mut tor = session(9, 65000);
    tor.mesh = false;
    tor.filter_names = vec!["f".into()];
    tor.export_filter = Some(accept_all);
    rib.peer_up(PeerId(9), tor.clone());
    assert_eq!(drain(&mut rib, PeerId(9), now).0.len(), 1);
    // The BGPFilter "f" is edited to reject everything: same name, new rules.
    tor.export_filter = Some(Arc::new(chain(
        Direction::Export,
        vec![CompiledRule {
            matches: RuleMatch::default(),
            action: FilterAction::Reject,
            operations: vec![],
        }],
    )));
    rib.update_peer(PeerId(9), tor);
    let (ann, wd) = drain(&mut rib, PeerId(9), now);
    assert!(ann.is_empty());
    assert_eq!(wd, vec![Nlri::new(net("10.244.1.0/26"))]);
}

proptest! {
    /// Graceful restart: while a peer restarts nothing changes for the FIB; after it re-sends a
    /// subset and End-of-RIB, exactly that subset remains.
    #[test]
    fn graceful_restart_keeps_then_sweeps_exactly_the_unrefreshed(
        before in proptest::collection::btree_set(0u32..40, 1..20),
        after in proptest::collection::btree_set(0u32..40, 0..20),
    ) {
        let t0 = Instant::now();
        let mut rib = Rib::new(config(None), policy());
        rib.peer_up(PeerId(2), session(2, LOCAL_AS));
        for i in &before {
            rib.update(PeerId(2), RouteUpdate { withdrawn: vec![], announced: vec![Nlri::new(v4(*i, 26))], attrs: Some(hop(2)) }).unwrap();
        }
        rib.take_fib_changes();
        rib.peer_down(PeerId(2), t0, Some(Duration::from_secs(120)));
        prop_assert!(rib.take_fib_changes().is_empty());
        rib.peer_up(PeerId(2), session(2, LOCAL_AS));
        for i in &after {
            rib.update(PeerId(2), RouteUpdate { withdrawn: vec![], announced: vec![Nlri::new(v4(*i, 26))], attrs: Some(hop(2)) }).unwrap();
        }
        rib.end_of_rib(PeerId(2), Family::Ipv4);
        let mut left: Vec<IpNet> = rib.loc_rib().map(|(p, _)| p).collect();
        left.sort();
        let expected: Vec<IpNet> = after.iter().map(|i| v4(*i, 26)).collect();
        prop_assert_eq!(left, expected);
        prop_assert!(rib.loc_rib().all(|(_, p)| !p.stale));
        // FIB changes: exactly the prefixes that came or went.
        let changed: std::collections::BTreeSet<IpNet> = rib.take_fib_changes().into_iter().map(|c| c.prefix).collect();
        let diff: std::collections::BTreeSet<IpNet> = before.symmetric_difference(&after).map(|i| v4(*i, 26)).collect();
        prop_assert_eq!(changed, diff);
    }
}

/// One step of the random whole-RIB property test.
#[derive(Debug, Clone)]
enum Op {
    Announce { peer: u8, prefix: u32, lp: u32 },
    Withdraw { peer: u8, prefix: u32 },
    Down { peer: u8, graceful: bool },
    Up { peer: u8 },
    EndOfRib { peer: u8 },
    Expire,
    Pull { budget: usize },
    Originate { prefix: u32 },
    WithdrawLocal { prefix: u32 },
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (2u8..5, 0u32..12, 0u32..3).prop_map(|(peer, prefix, lp)| Op::Announce { peer, prefix, lp }),
        3 => (2u8..5, 0u32..12).prop_map(|(peer, prefix)| Op::Withdraw { peer, prefix }),
        1 => (2u8..5, any::<bool>()).prop_map(|(peer, graceful)| Op::Down { peer, graceful }),
        1 => (2u8..5).prop_map(|peer| Op::Up { peer }),
        1 => (2u8..5).prop_map(|peer| Op::EndOfRib { peer }),
        1 => Just(Op::Expire),
        2 => (1usize..8).prop_map(|budget| Op::Pull { budget }),
        1 => (0u32..12).prop_map(|prefix| Op::Originate { prefix }),
        1 => (0u32..12).prop_map(|prefix| Op::WithdrawLocal { prefix }),
    ]
}

/// Applies what a peer was sent to its view of our Adj-RIB-Out.
fn apply_sent(view: &mut std::collections::BTreeMap<IpNet, RouteAttrs>, out: PullOutput) {
    for u in out.updates {
        for w in u.withdrawn {
            view.remove(&w.prefix);
        }
        if let Some(a) = u.attrs {
            for n in u.announced {
                view.insert(n.prefix, (*a).clone());
            }
        }
    }
}

proptest! {
    /// Under any sequence of announcements, withdrawals, session flaps (with and without graceful
    /// restart), End-of-RIBs, restart-timer expiries, local routes and partial pulls, what an
    /// incrementally fed peer has been sent equals the table a brand-new export group computes
    /// from the Loc-RIB, and the interned sets are freed once everything is gone.
    #[test]
    fn incremental_export_equals_a_fresh_computation(ops in proptest::collection::vec(arb_op(), 1..80)) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut rib = Rib::new(config(None), policy());
        let mut up = [false; 5];
        for n in 2..5u8 {
            rib.peer_up(PeerId(u32::from(n)), session(n, 65000 + u32::from(n)));
            up[n as usize] = true;
        }
        let monitor = PeerId(100);
        rib.peer_up(monitor, session(100, 65100));
        let mut seen = std::collections::BTreeMap::new();
        for op in ops {
            match op {
                Op::Announce { peer, prefix, lp } if up[peer as usize] => rib.update(
                    PeerId(u32::from(peer)),
                    RouteUpdate {
                        withdrawn: vec![],
                        announced: vec![Nlri::new(v4(prefix, 26))],
                        attrs: Some(hop(peer).with_as_sequence([65000 + u32::from(peer), 1 + lp])),
                    },
                ).unwrap(),
                Op::Withdraw { peer, prefix } if up[peer as usize] => {
                    rib.update(PeerId(u32::from(peer)), RouteUpdate { withdrawn: vec![Nlri::new(v4(prefix, 26))], ..RouteUpdate::default() }).unwrap()
                }
                Op::Down { peer, graceful } if up[peer as usize] => {
                    rib.peer_down(PeerId(u32::from(peer)), now, graceful.then_some(Duration::from_secs(10)));
                    up[peer as usize] = false;
                }
                Op::Up { peer } if !up[peer as usize] => {
                    rib.peer_up(PeerId(u32::from(peer)), session(peer, 65000 + u32::from(peer)));
                    up[peer as usize] = true;
                }
                Op::EndOfRib { peer } if up[peer as usize] => rib.end_of_rib(PeerId(u32::from(peer)), Family::Ipv4),
                Op::Expire => {
                    now += Duration::from_secs(11);
                    rib.advance(now);
                }
                Op::Pull { budget } => apply_sent(&mut seen, rib.pull(monitor, now, budget)),
                Op::Originate { prefix } => rib.originate(v4(prefix, 26), LocalRoute { kind: LocalRouteKind::Service, metric: 1024 }),
                Op::WithdrawLocal { prefix } => rib.withdraw_local(v4(prefix, 26)),
                _ => {}
            }
            // Invariants of the Loc-RIB after every step.
            for (_, best) in rib.loc_rib() {
                prop_assert!(best.accepted.is_some());
            }
        }
        loop {
            let out = rib.pull(monitor, now, 5);
            let more = out.more;
            apply_sent(&mut seen, out);
            if !more {
                break;
            }
        }
        // A fresh group with the same behaviour (eBGP, next-hop-self) but another key.
        let fresh = PeerId(101);
        rib.peer_up(fresh, PeerSession { next_hop_mode: NextHopMode::SelfAddress, ..session(101, 65100) });
        let mut expected = std::collections::BTreeMap::new();
        loop {
            let out = rib.pull(fresh, now, 1000);
            let more = out.more;
            apply_sent(&mut expected, out);
            if !more {
                break;
            }
        }
        prop_assert_eq!(&seen, &expected);
        // Everything gone: tables and interned sets empty.
        for n in 2..5u8 {
            if up[n as usize] {
                rib.peer_down(PeerId(u32::from(n)), now, None);
            }
        }
        now += Duration::from_secs(11);
        rib.advance(now);
        for i in 0..12 {
            rib.withdraw_local(v4(i, 26));
        }
        for p in [monitor, fresh] {
            loop {
                let out = rib.pull(p, now, 1000);
                if !out.more {
                    break;
                }
            }
        }
        drop(seen);
        drop(expected);
        rib.take_fib_changes();
        rib.sweep_unused_attributes();
        prop_assert_eq!(rib.stats().prefixes, 0);
        prop_assert_eq!(rib.stats().attribute_sets, 0);
    }
}

#[test]
fn a_prefix_filter_decides_each_prefix_of_one_update() {
    let mut rib = Rib::new(config(None), policy());
    let mut tor = session(9, 65000);
    tor.mesh = false;
    tor.import_filter = Some(Arc::new(chain(
        Direction::Import,
        vec![cidr_rule(
            MatchOperator::Equal,
            "0.0.0.0/0",
            FilterAction::Reject,
        )],
    )));
    rib.peer_up(PeerId(9), tor);
    rib.update(
        PeerId(9),
        announce(
            &["0.0.0.0/0", "172.16.0.0/16", "172.17.0.0/16"],
            hop(9).with_as_sequence([65000]),
        ),
    )
    .unwrap();
    let mut best: Vec<IpNet> = rib.loc_rib().map(|(p, _)| p).collect();
    best.sort();
    assert_eq!(best, vec![net("172.16.0.0/16"), net("172.17.0.0/16")]);
    assert_eq!(rib.adj_rib_in(PeerId(9)).count(), 3, "pre-policy keeps all");
}

#[test]
fn fib_tracking_off_records_nothing_and_back_on_gives_the_whole_loc_rib() {
    let mut rib = Rib::new(config(None), policy());
    rib.set_fib_tracking(false);
    rib.peer_up(PeerId(2), session(2, LOCAL_AS));
    rib.update(
        PeerId(2),
        announce(&["10.96.0.10/32", "10.96.0.11/32"], hop(2)),
    )
    .unwrap();
    assert!(rib.take_fib_changes().is_empty());
    assert_eq!(rib.loc_rib().count(), 2, "the Loc-RIB itself is unchanged");
    rib.set_fib_tracking(true);
    let mut changed: Vec<IpNet> = rib
        .take_fib_changes()
        .into_iter()
        .map(|c| c.prefix)
        .collect();
    changed.sort();
    assert_eq!(changed, vec![net("10.96.0.10/32"), net("10.96.0.11/32")]);
    rib.update(PeerId(2), withdraw(&["10.96.0.11/32"])).unwrap();
    assert_eq!(
        rib.take_fib_changes(),
        vec![FibChange {
            prefix: net("10.96.0.11/32"),
            route: None
        }]
    );
}

/// RFC 4760 §5: a session carries only the families both sides advertised. An IPv4-only
/// session is never sent an IPv6 route and an IPv6-only one never an IPv4 route, whether the
/// route is originated here or learned; a dual-stack session gets both. The families also
/// split export groups, so peers that differ only in families do not share an Adj-RIB-Out.
#[test]
fn only_negotiated_families_are_exported() {
    let now = Instant::now();
    let mut pol = policy();
    pol.pools.push(PoolPolicy {
        cidr: net("fd00:244::/48"),
        disable_bgp_export: false,
        encapsulation: crate::plan::Encapsulation::None,
    });
    pol.own_blocks.push(net("fd00:244::/122"));
    let mut rib = Rib::new(config(None), pol);
    for block in ["10.244.1.0/26", "fd00:244::/122"] {
        rib.originate(
            net(block),
            LocalRoute {
                kind: LocalRouteKind::Block,
                metric: 1024,
            },
        );
    }
    let only = |ipv4, ipv6| Families { ipv4, ipv6 };
    let v4 = rib.peer_up(
        PeerId(2),
        PeerSession {
            families: only(true, false),
            ..session(2, LOCAL_AS)
        },
    );
    let v6 = rib.peer_up(
        PeerId(3),
        PeerSession {
            families: only(false, true),
            ..session(3, LOCAL_AS)
        },
    );
    let both = rib.peer_up(PeerId(4), session(4, LOCAL_AS));
    assert!(
        v4 != v6 && v6 != both && v4 != both,
        "families split groups"
    );
    // An eBGP peer (both families) sends a route of each family inside the pools.
    rib.peer_up(PeerId(5), session(5, 65005));
    rib.update(PeerId(5), announce(&["10.244.7.0/26"], hop(5)))
        .unwrap();
    rib.update(
        PeerId(5),
        announce(
            &["fd00:244:0:7::/64"],
            RouteAttrs::new(Origin::Igp, Some(ip("fd00::5"))),
        ),
    )
    .unwrap();
    let sent = |rib: &mut Rib, peer| {
        let (ann, wd) = drain(rib, PeerId(peer), now);
        assert!(wd.is_empty(), "{wd:?}");
        announced_prefixes(&ann)
            .into_iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(sent(&mut rib, 2), ["10.244.1.0/26", "10.244.7.0/26"]);
    assert_eq!(sent(&mut rib, 3), ["fd00:244::/122", "fd00:244:0:7::/64"]);
    assert_eq!(
        sent(&mut rib, 4),
        [
            "10.244.1.0/26",
            "10.244.7.0/26",
            "fd00:244::/122",
            "fd00:244:0:7::/64"
        ]
    );
    // Withdrawals of the other family are not sent either.
    rib.update(PeerId(5), withdraw(&["fd00:244:0:7::/64"]))
        .unwrap();
    let (ann, wd) = drain(&mut rib, PeerId(2), now);
    assert!(ann.is_empty() && wd.is_empty(), "{ann:?} {wd:?}");
    let (_, wd) = drain(&mut rib, PeerId(3), now);
    assert_eq!(wd.len(), 1);
}
