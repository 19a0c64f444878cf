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
