//! Whole-RIB tests: peers in, peers out, FIB out.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use proptest::prelude::*;

use super::attrs::Origin;
use super::graceful_restart::Family;
use super::policy::filter::RouteFilter;
use super::policy::filter::tests::{chain, cidr_rule};
use super::policy::{PoolPolicy, local_pref_from_priority};
use super::*;
use crate::model::{FilterAction, MatchOperator};
use crate::plan::filter::{CompiledRule, Direction, RuleMatch};

const LOCAL_AS: u32 = 64512;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn rid(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 0, n)
}

fn config(cluster_id: Option<Ipv4Addr>) -> RibConfig {
    RibConfig {
        router_id: rid(1),
        local_as: LOCAL_AS,
        cluster_id,
        min_advertisement_interval: Duration::ZERO,
    }
}

fn policy() -> PolicyContext {
    PolicyContext {
        pools: vec![PoolPolicy {
            cidr: net("10.244.0.0/16"),
            disable_bgp_export: false,
            encapsulation: crate::plan::Encapsulation::IpIpAlways,
        }],
        own_blocks: vec![net("10.244.1.0/26")],
        service_ranges: vec![net("10.96.0.0/12")],
        ..PolicyContext::default()
    }
}

/// A peer numbered `n` at 192.168.0.n in AS `peer_as`.
fn session(n: u8, peer_as: u32) -> PeerSession {
    PeerSession::new(
        ip(&format!("192.168.0.{n}")),
        ip("192.168.0.1"),
        rid(n),
        LOCAL_AS,
        peer_as,
    )
}

fn client(n: u8) -> PeerSession {
    PeerSession {
        reflection: ReflectionRole::Client,
        ..session(n, LOCAL_AS)
    }
}

fn announce(prefixes: &[&str], attrs: RouteAttrs) -> RouteUpdate {
    RouteUpdate {
        withdrawn: vec![],
        announced: prefixes
            .iter()
            .map(|p| Nlri {
                prefix: net(p),
                path_id: None,
            })
            .collect(),
        attrs: Some(attrs),
    }
}

fn withdraw(prefixes: &[&str]) -> RouteUpdate {
    RouteUpdate {
        withdrawn: prefixes
            .iter()
            .map(|p| Nlri {
                prefix: net(p),
                path_id: None,
            })
            .collect(),
        ..RouteUpdate::default()
    }
}

fn hop(n: u8) -> RouteAttrs {
    RouteAttrs::new(Origin::Igp, Some(ip(&format!("192.168.0.{n}"))))
}

/// Everything `peer` is sent now: (announced prefix → attrs) and withdrawn prefixes.
fn drain(rib: &mut Rib, peer: PeerId, now: Instant) -> (Vec<(Nlri, Arc<RouteAttrs>)>, Vec<Nlri>) {
    let mut ann = Vec::new();
    let mut wd = Vec::new();
    loop {
        let out = rib.pull(peer, now, 1000);
        for u in out.updates {
            wd.extend(u.withdrawn);
            if let Some(a) = u.attrs {
                ann.extend(u.announced.into_iter().map(|n| (n, Arc::clone(&a))));
            }
        }
        if !out.more {
            return (ann, wd);
        }
    }
}

fn announced_prefixes(ann: &[(Nlri, Arc<RouteAttrs>)]) -> Vec<IpNet> {
    let mut v: Vec<IpNet> = ann.iter().map(|(n, _)| n.prefix).collect();
    v.sort();
    v
}

#[test]
fn local_block_goes_to_mesh_peers_with_session_address_and_priority() {
    let now = Instant::now();
    let mut rib = Rib::new(config(None), policy());
    rib.originate(
        net("10.244.1.0/26"),
        LocalRoute {
            kind: LocalRouteKind::Block,
            metric: 1024,
        },
    );
    rib.originate(
        net("10.244.1.5/32"),
        LocalRoute {
            kind: LocalRouteKind::Kernel {
                interface: "cali123".into(),
            },
            metric: 1024,
        },
    );
    rib.peer_up(PeerId(2), session(2, LOCAL_AS));
    let (ann, _) = drain(&mut rib, PeerId(2), now);
    assert_eq!(
        announced_prefixes(&ann),
        vec![net("10.244.1.0/26")],
        "the /32 inside our block is aggregated away"
    );
    let attrs = &ann[0].1;
    assert_eq!(attrs.next_hop, Some(ip("192.168.0.1")));
    assert_eq!(attrs.local_pref, Some(local_pref_from_priority(1024)));
    assert!(attrs.as_path.segments.is_empty());
    // The FIB sees the block as a local route.
    let fib = rib.take_fib_changes();
    let block = fib
        .iter()
        .find(|c| c.prefix == net("10.244.1.0/26"))
        .unwrap();
    assert_eq!(
        block.route.as_ref().unwrap().source,
        FibSource::Local(LocalRouteKind::Block)
    );
    assert_eq!(block.route.as_ref().unwrap().metric, 1024);
}

#[test]
fn ibgp_learned_routes_are_not_sent_to_other_ibgp_peers() {
    let now = Instant::now();
    let mut rib = Rib::new(config(None), policy());
    rib.peer_up(PeerId(2), session(2, LOCAL_AS));
    rib.peer_up(PeerId(3), session(3, LOCAL_AS));
    rib.peer_up(PeerId(9), session(9, 65000));
    drain(&mut rib, PeerId(3), now);
    drain(&mut rib, PeerId(9), now);
    rib.update(
        PeerId(2),
        announce(
            &["10.244.2.0/26"],
            hop(2).with_local_pref(local_pref_from_priority(1024)),
        ),
    )
    .unwrap();
    let (ann, _) = drain(&mut rib, PeerId(3), now);
    assert!(ann.is_empty(), "iBGP split horizon");
    let (ann, _) = drain(&mut rib, PeerId(9), now);
    assert_eq!(announced_prefixes(&ann), vec![net("10.244.2.0/26")]);
    let a = &ann[0].1;
    assert_eq!(a.next_hop, Some(ip("192.168.0.1")), "eBGP rewrites to self");
    assert_eq!(a.as_path.segments[0].asns, vec![LOCAL_AS]);
    assert_eq!(a.local_pref, None);
    // The FIB gets it with its next hop and normal metric.
    let fib = rib.take_fib_changes();
    assert_eq!(fib.len(), 1);
    let r = fib[0].route.as_ref().unwrap();
    assert_eq!(r.next_hops, vec![ip("192.168.0.2")]);
    assert_eq!(r.metric, 1024);
    assert_eq!(r.source, FibSource::Ibgp);
}

#[test]
fn mesh_peers_share_one_export_group() {
    let mut rib = Rib::new(config(None), policy());
    let a = rib.peer_up(PeerId(2), session(2, LOCAL_AS));
    let b = rib.peer_up(PeerId(3), session(3, LOCAL_AS));
    let c = rib.peer_up(PeerId(9), session(9, 65000));
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(rib.stats().groups, 2);
    rib.peer_down(PeerId(9), Instant::now(), None);
    assert_eq!(rib.stats().groups, 1, "an empty group is dropped");
}

#[test]
fn route_reflector_reflects_client_routes_with_originator_and_cluster_list() {
    let now = Instant::now();
    let cluster = Ipv4Addr::new(224, 0, 0, 1);
    let mut rib = Rib::new(config(Some(cluster)), policy());
    rib.peer_up(PeerId(2), client(2));
    rib.peer_up(PeerId(3), client(3));
    rib.peer_up(PeerId(4), session(4, LOCAL_AS)); // a non-client (e.g. another reflector)
    for p in [2, 3, 4] {
        drain(&mut rib, PeerId(p), now);
    }
    // From a client: to the other client and to the non-client, never back.
    rib.update(
        PeerId(2),
        announce(&["10.244.2.0/26"], hop(2).with_local_pref(100)),
    )
    .unwrap();
    for p in [3, 4] {
        let (ann, _) = drain(&mut rib, PeerId(p), now);
        assert_eq!(
            announced_prefixes(&ann),
            vec![net("10.244.2.0/26")],
            "to peer {p}"
        );
        let a = &ann[0].1;
        assert_eq!(a.originator_id, Some(rid(2)));
        assert_eq!(a.cluster_list, vec![cluster]);
        assert_eq!(
            a.next_hop,
            Some(ip("192.168.0.2")),
            "reflected routes keep their next hop"
        );
    }
    let (ann, _) = drain(&mut rib, PeerId(2), now);
    assert!(ann.is_empty());
    // From the non-client: to clients only.
    rib.update(
        PeerId(4),
        announce(&["10.244.4.0/26"], hop(4).with_local_pref(100)),
    )
    .unwrap();
    let (ann, _) = drain(&mut rib, PeerId(2), now);
    assert_eq!(announced_prefixes(&ann), vec![net("10.244.4.0/26")]);
    let (ann, _) = drain(&mut rib, PeerId(4), now);
    assert!(ann.is_empty());
}

#[test]
fn reflected_loops_are_dropped_on_receipt() {
    let cluster = Ipv4Addr::new(224, 0, 0, 1);
    let mut rib = Rib::new(config(Some(cluster)), policy());
    rib.peer_up(PeerId(4), session(4, LOCAL_AS));
    let mut looped = hop(4);
    looped.cluster_list = vec![cluster];
    rib.update(PeerId(4), announce(&["10.244.4.0/26"], looped))
        .unwrap();
    let mut mine = hop(4);
    mine.originator_id = Some(rid(1));
    rib.update(PeerId(4), announce(&["10.244.5.0/26"], mine))
        .unwrap();
    assert_eq!(rib.loc_rib().count(), 0);
    // Still in the pre-policy Adj-RIB-In.
    assert_eq!(rib.adj_rib_in(PeerId(4)).count(), 2);
    assert!(rib.adj_rib_in(PeerId(4)).all(|(_, p)| p.accepted.is_none()));
}

#[test]
fn a_new_router_id_applies_to_the_routes_already_received() {
    let mut rib = Rib::new(config(None), policy());
    rib.peer_up(PeerId(4), session(4, LOCAL_AS));
    let mut stamped = hop(4);
    stamped.originator_id = Some(rid(9));
    rib.update(PeerId(4), announce(&["10.244.5.0/26"], stamped))
        .unwrap();
    assert_eq!(rib.loc_rib().count(), 1);
    // The node's address changed: router id 192.168.0.9 is ours now, so the route is a loop.
    rib.set_identity(rid(9), LOCAL_AS, None);
    assert_eq!(rib.config().router_id, rid(9));
    assert_eq!(
        rib.loc_rib().count(),
        0,
        "RFC 4456 §8: our own ORIGINATOR_ID"
    );
    rib.set_identity(rid(1), LOCAL_AS, None);
    assert_eq!(rib.loc_rib().count(), 1);
}

#[test]
fn two_peers_with_one_prefix_give_a_multipath_fib_route() {
    let mut rib = Rib::new(config(None), policy());
    rib.peer_up(PeerId(2), session(2, LOCAL_AS));
    rib.peer_up(PeerId(3), session(3, LOCAL_AS));
    rib.update(PeerId(3), announce(&["10.96.0.10/32"], hop(3)))
        .unwrap();
    rib.update(PeerId(2), announce(&["10.96.0.10/32"], hop(2)))
        .unwrap();
    let fib = rib.take_fib_changes();
    assert_eq!(fib.len(), 1, "coalesced per prefix");
    assert_eq!(
        fib[0].route.as_ref().unwrap().next_hops,
        vec![ip("192.168.0.2"), ip("192.168.0.3")]
    );
    rib.update(PeerId(2), withdraw(&["10.96.0.10/32"])).unwrap();
    let fib = rib.take_fib_changes();
    assert_eq!(
        fib[0].route.as_ref().unwrap().next_hops,
        vec![ip("192.168.0.3")]
    );
    rib.update(PeerId(3), withdraw(&["10.96.0.10/32"])).unwrap();
    assert_eq!(
        rib.take_fib_changes(),
        vec![FibChange {
            prefix: net("10.96.0.10/32"),
            route: None
        }]
    );
}

#[test]
fn add_path_lets_ecmp_survive_a_reflector() {
    let now = Instant::now();
    let cluster = Ipv4Addr::new(224, 0, 0, 1);
    let mut rib = Rib::new(config(Some(cluster)), policy());
    rib.peer_up(PeerId(2), client(2));
    rib.peer_up(PeerId(3), client(3));
    let receiver = PeerSession {
        add_path_send: true,
        ..client(4)
    };
    rib.peer_up(PeerId(4), receiver);
    let plain = client(5);
    rib.peer_up(PeerId(5), plain);
    drain(&mut rib, PeerId(4), now);
    drain(&mut rib, PeerId(5), now);
    // Anycast: two clients announce the same service address.
    rib.update(PeerId(2), announce(&["10.96.0.10/32"], hop(2)))
        .unwrap();
    rib.update(PeerId(3), announce(&["10.96.0.10/32"], hop(3)))
        .unwrap();
    let (ann, _) = drain(&mut rib, PeerId(4), now);
    let mut ids: Vec<Option<u32>> = ann.iter().map(|(n, _)| n.path_id).collect();
    ids.sort();
    assert_eq!(ids, vec![Some(1), Some(2)]);
    let hops: Vec<_> = ann.iter().map(|(_, a)| a.next_hop).collect();
    assert!(hops.contains(&Some(ip("192.168.0.2"))) && hops.contains(&Some(ip("192.168.0.3"))));
    let (ann, _) = drain(&mut rib, PeerId(5), now);
    assert_eq!(ann.len(), 1, "without ADD-PATH: the best path only");
    assert_eq!(ann[0].0.path_id, None);
    // One path goes; its id is withdrawn, the other's id is unchanged.
    let id_of_2 = ann_id(&rib, "10.96.0.10/32", PeerId(2));
    rib.update(PeerId(2), withdraw(&["10.96.0.10/32"])).unwrap();
    let (_, wd) = drain(&mut rib, PeerId(4), now);
    assert_eq!(
        wd,
        vec![Nlri {
            prefix: net("10.96.0.10/32"),
            path_id: Some(id_of_2)
        }]
    );
}

fn ann_id(rib: &Rib, prefix: &str, peer: PeerId) -> u32 {
    rib.paths(&net(prefix))
        .iter()
        .find(|p| p.peer == peer)
        .unwrap()
        .tx_path_id
}

#[test]
fn add_path_receive_keeps_each_path_id_apart() {
    let mut rib = Rib::new(config(None), policy());
    rib.peer_up(
        PeerId(2),
        PeerSession {
            add_path_receive: true,
            ..session(2, LOCAL_AS)
        },
    );
    let with_id = |id, attrs| RouteUpdate {
        withdrawn: vec![],
        announced: vec![Nlri {
            prefix: net("10.96.0.10/32"),
            path_id: Some(id),
        }],
        attrs: Some(attrs),
    };
    rib.update(PeerId(2), with_id(7, hop(7))).unwrap();
    rib.update(PeerId(2), with_id(8, hop(8))).unwrap();
    assert_eq!(rib.paths(&net("10.96.0.10/32")).len(), 2);
    assert_eq!(
        rib.selected(&net("10.96.0.10/32")).len(),
        2,
        "equal paths from one RR are ECMP"
    );
    rib.update(
        PeerId(2),
        RouteUpdate {
            withdrawn: vec![Nlri {
                prefix: net("10.96.0.10/32"),
                path_id: Some(7),
            }],
            ..RouteUpdate::default()
        },
    )
    .unwrap();
    let left = rib.paths(&net("10.96.0.10/32"));
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].rx_path_id, 8);
}

#[test]
fn graceful_restart_keeps_routes_until_end_of_rib_without_touching_the_fib() {
    let t0 = Instant::now();
    let mut rib = Rib::new(config(None), policy());
    rib.peer_up(PeerId(2), session(2, LOCAL_AS));
    rib.update(
        PeerId(2),
        announce(&["10.244.2.0/26", "10.244.3.0/26"], hop(2)),
    )
    .unwrap();
    rib.take_fib_changes();
    rib.peer_down(PeerId(2), t0, Some(Duration::from_secs(120)));
    assert!(
        rib.take_fib_changes().is_empty(),
        "stale routes stay, nothing changes"
    );
    assert_eq!(rib.loc_rib().count(), 2);
    assert_eq!(rib.next_deadline(), Some(t0 + Duration::from_secs(120)));
    // It comes back and re-announces one of the two, then End-of-RIB.
    rib.peer_up(PeerId(2), session(2, LOCAL_AS));
    rib.update(PeerId(2), announce(&["10.244.2.0/26"], hop(2)))
        .unwrap();
    assert!(
        rib.take_fib_changes().is_empty(),
        "same route again: no FIB change"
    );
    rib.end_of_rib(PeerId(2), Family::Ipv4);
    let fib = rib.take_fib_changes();
    assert_eq!(
        fib,
        vec![FibChange {
            prefix: net("10.244.3.0/26"),
            route: None
        }]
    );
    assert_eq!(rib.next_deadline(), None);
}

#[test]
fn graceful_restart_sweeps_at_the_restart_time() {
    let t0 = Instant::now();
    let mut rib = Rib::new(config(None), policy());
    rib.peer_up(PeerId(2), session(2, LOCAL_AS));
    rib.update(PeerId(2), announce(&["10.244.2.0/26"], hop(2)))
        .unwrap();
    rib.peer_down(PeerId(2), t0, Some(Duration::from_secs(120)));
    rib.advance(t0 + Duration::from_secs(119));
    assert_eq!(rib.loc_rib().count(), 1);
    rib.advance(t0 + Duration::from_secs(120));
    assert_eq!(rib.loc_rib().count(), 0);
    assert_eq!(rib.next_deadline(), None);
}

#[test]
fn a_peer_returning_without_graceful_restart_loses_its_stale_routes() {
    let t0 = Instant::now();
    let mut rib = Rib::new(config(None), policy());
    rib.peer_up(PeerId(2), session(2, LOCAL_AS));
    rib.update(PeerId(2), announce(&["10.244.2.0/26"], hop(2)))
        .unwrap();
    rib.peer_down(PeerId(2), t0, Some(Duration::from_secs(120)));
    rib.peer_up(
        PeerId(2),
        PeerSession {
            graceful_restart: false,
            ..session(2, LOCAL_AS)
        },
    );
    assert_eq!(rib.loc_rib().count(), 0);
}

#[test]
fn peer_down_without_graceful_restart_withdraws_everything() {
    let now = Instant::now();
    let mut rib = Rib::new(config(None), policy());
    rib.peer_up(PeerId(2), session(2, LOCAL_AS));
    rib.peer_up(PeerId(9), session(9, 65000));
    rib.update(PeerId(2), announce(&["10.244.2.0/26"], hop(2)))
        .unwrap();
    drain(&mut rib, PeerId(9), now);
    rib.peer_down(PeerId(2), now, None);
    let (_, wd) = drain(&mut rib, PeerId(9), now);
    assert_eq!(
        wd,
        vec![Nlri {
            prefix: net("10.244.2.0/26"),
            path_id: None
        }]
    );
    assert_eq!(rib.stats().prefixes, 0);
}

#[test]
fn policy_change_re_evaluates_exports_without_a_reset() {
    let now = Instant::now();
    let mut rib = Rib::new(config(None), policy());
    rib.originate(
        net("10.244.1.0/26"),
        LocalRoute {
            kind: LocalRouteKind::Block,
            metric: 1024,
        },
    );
    rib.peer_up(PeerId(9), session(9, 65000));
    let (ann, _) = drain(&mut rib, PeerId(9), now);
    assert_eq!(ann.len(), 1);
    let mut p = policy();
    p.pools[0].disable_bgp_export = true;
    rib.set_policy(p);
    let (ann, wd) = drain(&mut rib, PeerId(9), now);
    assert!(ann.is_empty());
    assert_eq!(
        wd,
        vec![Nlri {
            prefix: net("10.244.1.0/26"),
            path_id: None
        }]
    );
    rib.set_policy(policy());
    let (ann, _) = drain(&mut rib, PeerId(9), now);
    assert_eq!(ann.len(), 1);
}

#[test]
fn import_filter_change_re_evaluates_the_pre_policy_routes() {
    let mut rib = Rib::new(config(None), policy());
    let mut tor = session(9, 65000);
    tor.mesh = false;
    rib.peer_up(PeerId(9), tor.clone());
    rib.update(
        PeerId(9),
        announce(
            &["0.0.0.0/0", "172.16.0.0/16"],
            hop(9).with_as_sequence([65000]),
        ),
    )
    .unwrap();
    assert_eq!(
        rib.loc_rib().count(),
        2,
        "import default accepts a ToR default route"
    );
    let reject_default: Arc<dyn RouteFilter> = Arc::new(chain(
        Direction::Import,
        vec![cidr_rule(
            MatchOperator::Equal,
            "0.0.0.0/0",
            FilterAction::Reject,
        )],
    ));
    tor.import_filter = Some(reject_default);
    rib.update_peer(PeerId(9), tor.clone());
    assert_eq!(rib.loc_rib().count(), 1);
    assert_eq!(
        rib.adj_rib_in(PeerId(9)).count(),
        2,
        "pre-policy keeps both"
    );
    tor.import_filter = None;
    rib.update_peer(PeerId(9), tor);
    assert_eq!(rib.loc_rib().count(), 2);
}

#[test]
fn export_filters_apply_to_explicit_peers_only() {
    let now = Instant::now();
    let mut rib = Rib::new(config(None), policy());
    rib.originate(
        net("10.244.1.0/26"),
        LocalRoute {
            kind: LocalRouteKind::Block,
            metric: 1024,
        },
    );
    let deny_all: Arc<dyn RouteFilter> = Arc::new(chain(
        Direction::Export,
        vec![CompiledRule {
            matches: RuleMatch::default(),
            action: FilterAction::Reject,
            operations: vec![],
        }],
    ));
    let mut explicit = session(9, 65000);
    explicit.mesh = false;
    explicit.export_filter = Some(deny_all.clone());
    explicit.filter_names = vec!["deny".into()];
    rib.peer_up(PeerId(9), explicit);
    let mut mesh = session(2, LOCAL_AS);
    mesh.export_filter = Some(deny_all);
    mesh.filter_names = vec!["deny".into()];
    rib.peer_up(PeerId(2), mesh);
    assert!(drain(&mut rib, PeerId(9), now).0.is_empty());
    assert_eq!(drain(&mut rib, PeerId(2), now).0.len(), 1);
}

#[test]
fn route_refresh_resends_the_table() {
    let now = Instant::now();
    let mut rib = Rib::new(config(None), policy());
    rib.originate(
        net("10.244.1.0/26"),
        LocalRoute {
            kind: LocalRouteKind::Block,
            metric: 1024,
        },
    );
    rib.peer_up(PeerId(9), session(9, 65000));
    assert_eq!(drain(&mut rib, PeerId(9), now).0.len(), 1);
    assert!(drain(&mut rib, PeerId(9), now).0.is_empty());
    rib.route_refresh(PeerId(9));
    assert_eq!(drain(&mut rib, PeerId(9), now).0.len(), 1);
}

#[test]
fn resend_table_starts_a_peer_over_from_the_current_table() {
    let now = Instant::now();
    let block = |n: u8| net(&format!("10.244.{n}.0/26"));
    let local = LocalRoute {
        kind: LocalRouteKind::Block,
        metric: 1024,
    };
    let mut rib = Rib::new(config(None), policy());
    rib.originate(block(1), local.clone());
    rib.originate(block(2), local.clone());
    // Established, but nothing pulled (a restarting speaker defers its updates) while the
    // table changes.
    rib.peer_up(PeerId(9), session(9, 65000));
    rib.withdraw_local(block(2));
    rib.originate(block(3), local.clone());
    rib.resend_table(PeerId(9));
    let (mut announced, mut withdrawn, mut ends) = (Vec::new(), Vec::new(), 0);
    loop {
        let out = rib.pull(PeerId(9), now, 1);
        for u in out.updates {
            withdrawn.extend(u.withdrawn.into_iter().map(|n| n.prefix));
            announced.extend(u.announced.into_iter().map(|n| n.prefix));
        }
        if out.end_of_rib {
            ends += 1;
            assert_eq!(announced.len(), 2, "End-of-RIB after the whole table");
        }
        if !out.more {
            break;
        }
    }
    announced.sort();
    assert_eq!(announced, vec![block(1), block(3)]);
    assert!(withdrawn.is_empty(), "nothing to withdraw: {withdrawn:?}");
    assert_eq!(ends, 1);
}

#[test]
fn a_returning_graceful_restart_peer_has_its_stale_routes_bounded_anew() {
    let t0 = Instant::now();
    let mut rib = Rib::new(config(None), policy());
    rib.peer_up(PeerId(2), session(2, LOCAL_AS));
    rib.update(PeerId(2), announce(&["10.244.2.0/26"], hop(2)))
        .unwrap();
    rib.peer_down(PeerId(2), t0, Some(Duration::from_secs(120)));
    rib.peer_up(PeerId(2), session(2, LOCAL_AS));
    let back = t0 + Duration::from_secs(100);
    rib.bound_stale(PeerId(2), back + Duration::from_secs(360));
    rib.advance(t0 + Duration::from_secs(200));
    assert_eq!(
        rib.loc_rib().count(),
        1,
        "the restart time no longer applies once the session is back"
    );
    rib.advance(back + Duration::from_secs(360));
    assert_eq!(rib.loc_rib().count(), 0);
    // A peer without stale paths gets no deadline.
    rib.bound_stale(PeerId(2), back);
    assert_eq!(rib.next_deadline(), None);
}

#[test]
fn local_route_beats_a_learned_one_for_the_same_prefix() {
    let now = Instant::now();
    let mut rib = Rib::new(config(None), policy());
    rib.peer_up(PeerId(9), session(9, 65000));
    rib.update(
        PeerId(9),
        announce(&["10.96.0.0/12"], hop(9).with_as_sequence([65000])),
    )
    .unwrap();
    rib.originate(
        net("10.96.0.0/12"),
        LocalRoute {
            kind: LocalRouteKind::Service,
            metric: 1024,
        },
    );
    let best = rib.loc_rib().next().unwrap().1.peer;
    assert_eq!(best, loc_rib::LOCAL_PEER);
    let (ann, _) = drain(&mut rib, PeerId(9), now);
    // The service range goes to the ToR from us, not back to it as its own route.
    assert_eq!(ann.len(), 1);
    assert_eq!(ann[0].1.as_path.segments[0].asns, vec![LOCAL_AS]);
}

mod pipeline;
