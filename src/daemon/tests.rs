use std::path::PathBuf;

use super::*;
use crate::fib::KernelRouteKind;
use crate::plan::{PlanOptions, compute};

fn plan(cluster: &str, node: &str) -> Plan {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/clusters")
        .join(cluster)
        .join("manifests");
    let c = crate::model::load_paths(&[dir], "kube-system").unwrap();
    compute(&c, node, &PlanOptions::default()).unwrap()
}

fn defaults() -> SessionDefaults {
    SessionDefaults::from_settings(&Settings::default(), false)
}

#[test]
fn a_missing_secret_keeps_only_that_peering_down() {
    let p = plan("passwords", "n1");
    let mut up = Vec::new();
    for peering in &p.peerings {
        match peer_config(peering, &p, &defaults()) {
            Ok(c) => {
                assert!(
                    c.password.is_some(),
                    "{} must use its password",
                    peering.name
                );
                up.push(peering.name.clone());
            }
            Err(e) => {
                assert!(matches!(e, PeeringBlocked::PasswordUnavailable(_)), "{e}");
                assert!(e.to_string().contains("kept down"));
            }
        }
    }
    assert_eq!(up, ["Global_10_0_0_254", "Mesh_10_0_0_2"]);
}

#[test]
fn peer_config_carries_plan_and_settings() {
    let p = plan("mesh-ipip-crosssubnet", "n9");
    let mesh = p.peering("Mesh_10_0_0_10").unwrap();
    let d = SessionDefaults {
        restarting: true,
        ..defaults()
    };
    let c = peer_config(mesh, &p, &d).unwrap();
    assert_eq!(c.router_id, p.router_id);
    assert_eq!(c.remote_as, 64512);
    assert_eq!(c.passive, mesh.passive);
    assert_eq!(c.hold_time, Duration::from_secs(90));
    assert_eq!(c.ttl, TtlMode::Multihop(64));
    let gr = c.graceful_restart.unwrap();
    assert!(
        gr.restarting && gr.forwarding_preserved,
        "R and F bits after a restart"
    );
    assert_eq!(c.add_path, AddPathMode::Both);
}

fn fib(source: FibSource, hops: &[&str]) -> FibRoute {
    FibRoute {
        next_hops: hops.iter().map(|h| h.parse().unwrap()).collect(),
        local_pref: (1 << 31) - 1 - 1024,
        metric: 1024,
        source,
    }
}

#[test]
fn kernel_routes_follow_pool_rules_and_subnets() {
    let p = plan("mesh-ipip-crosssubnet", "n9");
    let subnets = node_subnets(&p);
    assert_eq!(subnets, vec!["10.0.0.0/24".parse::<IpNet>().unwrap()]);
    let own = kernel_route(
        "10.244.9.0/26".parse().unwrap(),
        &fib(FibSource::Local(LocalRouteKind::Block), &[]),
        &p,
        &subnets,
    )
    .unwrap();
    assert_eq!(own.kind, KernelRouteKind::Blackhole);
    // Same subnet: plain; other subnet: through tunl0.
    let same = kernel_route(
        "10.244.1.0/26".parse().unwrap(),
        &fib(FibSource::Ibgp, &["10.0.0.1"]),
        &p,
        &subnets,
    )
    .unwrap();
    let KernelRouteKind::Unicast(h) = &same.kind else {
        panic!("unicast")
    };
    assert!(!h[0].via_tunnel);
    let other = kernel_route(
        "10.244.3.0/26".parse().unwrap(),
        &fib(FibSource::Ibgp, &["10.0.1.3"]),
        &p,
        &subnets,
    )
    .unwrap();
    let KernelRouteKind::Unicast(h) = &other.kind else {
        panic!("unicast")
    };
    assert!(h[0].via_tunnel);
    // Service ranges from peers and kernel-learned routes are not installed.
    assert!(
        kernel_route(
            "10.96.0.0/12".parse().unwrap(),
            &fib(FibSource::Ibgp, &["10.0.0.1"]),
            &p,
            &subnets
        )
        .is_none()
    );
    assert!(
        kernel_route(
            "10.244.50.7/32".parse().unwrap(),
            &fib(
                FibSource::Local(LocalRouteKind::Kernel {
                    interface: "cali1".into()
                }),
                &[]
            ),
            &p,
            &subnets
        )
        .is_none()
    );
}

#[test]
fn capability_sets_read_the_open() {
    let p = plan("mesh-ipip-crosssubnet", "n9");
    let c = peer_config(p.peering("Mesh_10_0_0_10").unwrap(), &p, &defaults()).unwrap();
    let set = capability_set(&crate::session::negotiate::local_open(&c));
    assert!(set.four_octet_as && set.route_refresh);
    assert_eq!(set.families, vec![status::Family::Ipv4Unicast]);
    assert_eq!(set.add_path[0].direction, status::AddPathDirection::Both);
    assert_eq!(set.graceful_restart.unwrap().restart_time_secs, 120);
}

#[test]
fn a_node_address_on_no_local_interface_is_named() {
    let p = plan("mesh-ipip-crosssubnet", "n9");
    let own = p.ipv4_address.unwrap().addr();
    assert!(address_warnings(&p, &[own, "127.0.0.1".parse().unwrap()]).is_empty());
    let warnings = address_warnings(&p, &["127.0.0.1".parse().unwrap()]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(&own.to_string()) && warnings[0].contains("no local interface"),
        "{warnings:?}"
    );
}

#[test]
fn next_hops_resolve_through_the_most_specific_interface_route() {
    let routes: std::collections::BTreeMap<IpNet, String> = [
        ("10.0.0.0/24", "eth0"),
        ("10.0.0.128/25", "eth1"),
        ("0.0.0.0/0", "eth9"),
        ("fd00::/64", "eth0"),
    ]
    .into_iter()
    .map(|(p, i)| (p.parse().unwrap(), i.to_string()))
    .collect();
    let on = |a: &str| resolving_interface(&routes, a.parse().unwrap());
    assert_eq!(on("10.0.0.2").as_deref(), Some("eth0"));
    assert_eq!(on("10.0.0.200").as_deref(), Some("eth1"));
    assert_eq!(on("192.0.2.1").as_deref(), Some("eth9"));
    assert_eq!(on("fd00::2").as_deref(), Some("eth0"));
    assert_eq!(on("fd01::2"), None);
}
