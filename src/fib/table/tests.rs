use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn route(prefix: &str, gateway: &str, metric: u32) -> KernelRoute {
    KernelRoute {
        prefix: prefix.parse().unwrap(),
        kind: KernelRouteKind::Unicast(vec![NextHop {
            gateway: gateway.parse().unwrap(),
            via_tunnel: false,
        }]),
        metric,
    }
}

fn table(desired: &[KernelRoute], installed: &[KernelRoute]) -> FibTable {
    let mut table = FibTable::new();
    table.replace_desired(desired.iter().cloned());
    for route in installed {
        table.insert_installed(route.clone());
    }
    table
}

fn full(table: &FibTable) -> Vec<FibChange> {
    table
        .diff(&table.all_prefixes(), |_| Formed::AsDesired, |_| false)
        .changes
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn desired_routes_change_one_prefix_at_a_time() {
    let mut fib = table(&[route("10.0.1.0/24", "192.0.2.1", 1024)], &[]);
    assert!(fib.set_desired(route("10.0.2.0/24", "192.0.2.1", 1024)));
    assert!(!fib.set_desired(route("10.0.2.0/24", "192.0.2.1", 1024)));
    assert!(fib.set_desired(route("10.0.1.0/24", "192.0.2.2", 1024)));
    assert_eq!(fib.desired_len(), 2);
    assert!(fib.remove_desired(&net("10.0.2.0/24")));
    assert!(!fib.remove_desired(&net("10.0.2.0/24")));
    fib.insert_installed(route("10.0.1.0/24", "192.0.2.1", 1024));
    let diff = fib.diff(&[net("10.0.1.0/24")], |_| Formed::AsDesired, |_| false);
    assert_eq!(
        diff.changes,
        vec![FibChange::Replace(route("10.0.1.0/24", "192.0.2.2", 1024))]
    );
    // The set of 192.0.2.1 is still held by the installed route; 192.0.2.2 by the desired one.
    assert_eq!(fib.hop_sets(), 2);
}

#[test]
fn adds_replaces_and_deletes_in_a_fixed_order() {
    let fib = table(
        &[
            route("10.0.2.0/24", "192.0.2.1", 1024),
            route("10.0.1.0/24", "192.0.2.1", 1024),
            route("10.0.3.0/24", "192.0.2.2", 1024),
        ],
        &[
            route("10.0.9.0/24", "192.0.2.1", 1024),
            route("10.0.3.0/24", "192.0.2.1", 1024),
            route("10.0.1.0/24", "192.0.2.1", 1024),
        ],
    );
    assert_eq!(
        full(&fib),
        vec![
            FibChange::Add(route("10.0.2.0/24", "192.0.2.1", 1024)),
            FibChange::Replace(route("10.0.3.0/24", "192.0.2.2", 1024)),
            FibChange::Delete(route("10.0.9.0/24", "192.0.2.1", 1024)),
        ]
    );
}

#[test]
fn metric_change_adds_new_before_deleting_old() {
    let fib = table(
        &[route("10.0.1.0/24", "192.0.2.1", 900)],
        &[route("10.0.1.0/24", "192.0.2.1", 1024)],
    );
    assert_eq!(
        full(&fib),
        vec![
            FibChange::Add(route("10.0.1.0/24", "192.0.2.1", 900)),
            FibChange::Delete(route("10.0.1.0/24", "192.0.2.1", 1024)),
        ]
    );
}

#[test]
fn kept_routes_are_not_deleted() {
    let fib = table(&[], &[route("10.0.9.0/24", "192.0.2.1", 1024)]);
    assert!(
        fib.diff(&fib.all_prefixes(), |_| Formed::AsDesired, |_| true)
            .changes
            .is_empty()
    );
}

#[test]
fn equal_sets_need_no_writes_whatever_the_next_hop_order() {
    let mut multipath = route("10.0.1.0/24", "192.0.2.2", 1024);
    if let KernelRouteKind::Unicast(hops) = &mut multipath.kind {
        hops.push(NextHop {
            gateway: "192.0.2.1".parse().unwrap(),
            via_tunnel: true,
        });
    }
    let fib = table(&[multipath.clone()], &[multipath.clone().normalized()]);
    assert!(full(&fib).is_empty());
    assert!(fib.is_installed(&multipath.normalized()));
    assert_eq!(fib.installed_counts().multipath, 1);
}

#[test]
fn ipv6_metric_zero_is_the_kernels_1024() {
    let route = KernelRoute {
        prefix: "fd00::1/64".parse().unwrap(),
        kind: KernelRouteKind::Blackhole,
        metric: 0,
    };
    let normalized = route.normalized();
    assert_eq!(normalized.metric, 1024);
    assert_eq!(normalized.prefix, net("fd00::/64"));
}

#[test]
fn duplicate_prefixes_keep_the_lowest_metric() {
    let fib = table(
        &[
            route("10.0.1.0/24", "192.0.2.1", 1024),
            route("10.0.1.0/24", "192.0.2.2", 500),
            route("10.0.1.0/24", "192.0.2.3", 500),
        ],
        &[],
    );
    assert_eq!(fib.desired_len(), 1);
    assert_eq!(
        fib.desired(&net("10.0.1.0/24")),
        Some(route("10.0.1.0/24", "192.0.2.2", 500))
    );
    assert_eq!(fib.hop_sets(), 1);
}

#[test]
fn formed_routes_are_compared_in_their_written_form() {
    let fib = table(
        &[
            route("10.0.1.0/24", "10.50.0.1", 1024),
            route("10.0.2.0/24", "192.0.2.9", 1024),
            route("10.0.3.0/24", "10.50.0.1", 1024),
        ],
        &[
            route("10.0.1.0/24", "192.0.2.1", 1024),
            route("10.0.2.0/24", "192.0.2.1", 1024),
        ],
    );
    let mut calls = 0;
    let form = |hops: &[NextHop]| {
        calls += 1;
        match hops[0].gateway.to_string().as_str() {
            "10.50.0.1" => Formed::Rewritten(vec![NextHop {
                gateway: "192.0.2.1".parse().unwrap(),
                via_tunnel: false,
            }]),
            _ => Formed::Unavailable,
        }
    };
    // The rewritten form is already there for 10.0.1.0/24; the unavailable one is left alone;
    // 10.0.3.0/24 gets the rewritten form. Each set is formed once.
    let diff = fib.diff(&fib.all_prefixes(), form, |_| false);
    assert_eq!(calls, 2);
    assert_eq!(
        diff.changes,
        vec![FibChange::Add(route("10.0.3.0/24", "192.0.2.1", 1024))]
    );
    assert_eq!(diff.unavailable, vec![net("10.0.2.0/24")]);
}

#[test]
fn prefix_restricted_diff_matches_the_full_diff_on_those_prefixes() {
    let fib = table(
        &[
            route("10.0.1.0/24", "192.0.2.1", 900),
            route("10.0.2.0/24", "192.0.2.1", 1024),
        ],
        &[
            route("10.0.1.0/24", "192.0.2.1", 1024),
            route("10.0.5.0/24", "192.0.2.1", 1024),
        ],
    );
    assert_eq!(
        fib.diff(&[net("10.0.1.0/24")], |_| Formed::AsDesired, |_| false)
            .changes,
        vec![
            FibChange::Add(route("10.0.1.0/24", "192.0.2.1", 900)),
            FibChange::Delete(route("10.0.1.0/24", "192.0.2.1", 1024)),
        ]
    );
}

#[test]
fn several_metrics_of_one_prefix_are_tracked_apart() {
    let mut fib = table(
        &[route("10.0.1.0/24", "192.0.2.1", 900)],
        &[
            route("10.0.1.0/24", "192.0.2.1", 1024),
            route("10.0.1.0/24", "192.0.2.2", 900),
            route("10.0.1.0/24", "192.0.2.3", 50),
        ],
    );
    assert_eq!(fib.installed_len(), 3);
    assert_eq!(
        full(&fib),
        vec![
            FibChange::Replace(route("10.0.1.0/24", "192.0.2.1", 900)),
            FibChange::Delete(route("10.0.1.0/24", "192.0.2.3", 50)),
            FibChange::Delete(route("10.0.1.0/24", "192.0.2.1", 1024)),
        ]
    );
    // Removing the first one found keeps the others.
    assert!(fib.remove_installed(&route("10.0.1.0/24", "192.0.2.1", 1024).key()));
    assert_eq!(fib.installed_len(), 2);
    assert!(fib.is_installed(&route("10.0.1.0/24", "192.0.2.2", 900)));
    assert!(fib.is_installed(&route("10.0.1.0/24", "192.0.2.3", 50)));
    fib.clear_installed();
    assert_eq!(fib.installed_len(), 0);
    assert_eq!(fib.installed_counts(), &RouteCounts::default());
    assert_eq!(fib.hop_sets(), 1);
}

fn arb_route() -> impl Strategy<Value = KernelRoute> {
    (0u8..6, 0u32..3, 0u8..5).prop_map(|(p, m, h)| KernelRoute {
        prefix: IpNet::V4(ipnet::Ipv4Net::new([10, 0, p, 0].into(), 24).unwrap()),
        kind: if h == 0 {
            KernelRouteKind::Blackhole
        } else {
            KernelRouteKind::Unicast(
                (0..h % 3 + 1)
                    .map(|i| NextHop {
                        gateway: std::net::IpAddr::V4([192, 0, 2, h + i].into()),
                        via_tunnel: h == 4,
                    })
                    .collect(),
            )
        },
        metric: 100 * m,
    })
}

#[derive(Debug, Clone)]
enum Op {
    SetDesired(KernelRoute),
    RemoveDesired(KernelRoute),
    Install(KernelRoute),
    Uninstall(KernelRoute),
}

fn arb_op() -> impl Strategy<Value = Op> {
    (0u8..4, arb_route()).prop_map(|(op, route)| match op {
        0 => Op::SetDesired(route),
        1 => Op::RemoveDesired(route),
        2 => Op::Install(route),
        _ => Op::Uninstall(route),
    })
}

proptest! {
    /// The table behaves like a `BTreeMap` of desired routes by prefix and one of installed
    /// routes by key, and applying its full diff makes the installed side equal the desired one.
    #[test]
    fn table_matches_a_map_model_and_its_diff_converges(ops in proptest::collection::vec(arb_op(), 0..60)) {
        let mut fib = FibTable::new();
        let mut desired: BTreeMap<IpNet, KernelRoute> = BTreeMap::new();
        let mut installed: BTreeMap<RouteKey, KernelRoute> = BTreeMap::new();
        for op in ops {
            match op {
                Op::SetDesired(r) => {
                    let changed = desired.get(&r.prefix) != Some(&r);
                    prop_assert_eq!(fib.set_desired(r.clone()), changed);
                    desired.insert(r.prefix, r);
                }
                Op::RemoveDesired(r) => {
                    prop_assert_eq!(fib.remove_desired(&r.prefix), desired.remove(&r.prefix).is_some());
                }
                Op::Install(r) => {
                    fib.insert_installed(r.clone());
                    installed.insert(r.key(), r);
                }
                Op::Uninstall(r) => {
                    prop_assert_eq!(fib.remove_installed(&r.key()), installed.remove(&r.key()).is_some());
                }
            }
            prop_assert_eq!(fib.desired_len(), desired.len());
            prop_assert_eq!(fib.installed_len(), installed.len());
            for (key, r) in &installed {
                prop_assert_eq!(fib.installed(key), Some(r.clone()));
                prop_assert!(fib.is_installed(r));
            }
            let mut counts = RouteCounts::default();
            for r in installed.values() {
                FibTable::count(&mut counts, match &r.kind {
                    KernelRouteKind::Unicast(h) => h,
                    KernelRouteKind::Blackhole => &[],
                }, r.kind == KernelRouteKind::Blackhole, 1);
            }
            prop_assert_eq!(fib.installed_counts(), &counts);
        }
        for (prefix, r) in &desired {
            prop_assert_eq!(fib.desired(prefix), Some(r.clone()));
        }
        // Apply the full diff; then nothing is left to do and the kernel holds the desired set.
        for change in fib.diff(&fib.all_prefixes(), |_| Formed::AsDesired, |_| false).changes {
            match change {
                FibChange::Add(r) | FibChange::Replace(r) => fib.insert_installed(r),
                FibChange::Delete(r) => { prop_assert!(fib.remove_installed(&r.key())); }
            }
        }
        prop_assert!(full(&fib).is_empty());
        let mut now: Vec<KernelRoute> = fib.installed_routes().collect();
        now.sort_by_key(|r| r.key());
        let wanted: Vec<KernelRoute> = desired.into_values().collect();
        prop_assert_eq!(now, wanted);
        // Only the sets still used are held.
        let mut sets: Vec<Vec<NextHop>> = fib.installed_routes().filter_map(|r| match r.kind {
            KernelRouteKind::Unicast(h) => Some(h),
            KernelRouteKind::Blackhole => None,
        }).collect();
        sets.sort();
        sets.dedup();
        prop_assert_eq!(fib.hop_sets(), sets.len());
    }
}
