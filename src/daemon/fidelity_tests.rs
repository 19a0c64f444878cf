//! What confd renders for cases of Calico's own test corpus (`confd/tests/`), rule by rule: each
//! test names the confd behaviour it mirrors. The whole-cluster versions are the golden plans in
//! `fixtures/clusters/`. They follow a cluster through the plan, the RIB's export policy and
//! the FIB, so they live with the glue above all three.

use std::net::Ipv4Addr;

use ipnet::IpNet;

use crate::fib::{BestRoute, KernelRouteKind, NodeKernelContext, RouteOrigin, kernel_route_for};
use crate::model::{Cluster, load_documents};
use crate::plan::*;
use crate::rib::attrs::{Origin, RouteAttrs};
use crate::rib::peer::ExportKey;
use crate::rib::policy::export::{ExportDecision, ExportTarget, RouteClass, decide};
use crate::rib::{NextHopMode as RibNextHop, PeerType, PolicyContext, ReflectionRole};

fn cluster(yaml: &str) -> Cluster {
    let mut c = Cluster::default();
    load_documents(&mut c, std::path::Path::new("t.yaml"), yaml, "kube-system");
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    c
}

fn plan(c: &Cluster, n: &str) -> Plan {
    compute(c, n, &PlanOptions::default()).unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

const NODES: &str = "
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec: {asNumber: 64532, nodeToNodeMeshEnabled: false}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: rr
  labels: {routeReflector: true}
spec: {bgp: {ipv4Address: 10.9.0.2/16, ipv6Address: 'fd10::2/96', routeReflectorClusterID: 10.0.0.1}}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: w1}
spec: {bgp: {ipv4Address: 10.9.0.3/16, ipv6Address: 'fd10::3/96'}}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: w2}
spec: {bgp: {ipv4Address: 10.9.0.4/16, ipv6Address: 'fd10::4/96'}}
";

/// confd `explicit_peering/route_reflector_v6_by_ip`: a global BGPPeer naming a route
/// reflector by `peerIP` only, without `asNumber`. Every other node peers with it, the AS taken
/// from the node at that address; the reflector gets the reverse peerings (IPv6 only, as the
/// address is IPv6) with its clients.
#[test]
fn peer_ip_without_as_number_takes_the_as_of_the_node_there() {
    let c = cluster(&format!(
        "{NODES}---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: to-rr}}\nspec: {{peerIP: 'fd10::2'}}\n"
    ));
    let w1 = plan(&c, "w1");
    let to_rr = w1
        .peering("Global_fd10__2")
        .expect("w1 peers with the reflector");
    assert_eq!((to_rr.peer_as, to_rr.local_as), (64532, 64532));
    assert_eq!(w1.peerings.len(), 1);
    let rr = plan(&c, "rr");
    let names: Vec<&str> = rr.peerings.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Node_fd10__3", "Node_fd10__4"]);
    for p in &rr.peerings {
        assert_eq!(p.peer_as, 64532);
        assert!(p.route_reflector_client);
        assert_eq!(p.cluster_id, Some(Ipv4Addr::new(10, 0, 0, 1)));
    }

    // An address that is no Calico node has no AS to take: the peer is skipped, named.
    let c = cluster(&format!(
        "{NODES}---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: nowhere}}\nspec: {{peerIP: 10.200.0.1}}\n"
    ));
    let w1 = plan(&c, "w1");
    assert!(w1.peerings.is_empty());
    assert!(
        w1.warnings
            .iter()
            .any(|w| w.contains("BGPPeer \"nowhere\"") && w.contains("asNumber")),
        "{:?}",
        w1.warnings
    );
}

const MESH: &str = "
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: n1}
spec: {bgp: {ipv4Address: 10.9.0.2/16, ipv6Address: 'fd10::2/96'}}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: n2}
spec: {bgp: {ipv4Address: 10.9.0.3/16}}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: ipip}
spec: {cidr: 192.168.0.0/16, ipipMode: Always}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: plain}
spec: {cidr: 172.20.0.0/16}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: vxlan}
spec: {cidr: 172.21.0.0/16, vxlanMode: Always}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: v6}
spec: {cidr: 'fd00:20::/48'}
";

fn affinity(name: &str, cidr: &str, state: &str) -> String {
    format!(
        "---\napiVersion: projectcalico.org/v3\nkind: BlockAffinity\nmetadata: {{name: {name}}}\nspec: {{node: n1, cidr: '{cidr}', state: '{state}'}}\n"
    )
}

fn blocks() -> String {
    [
        affinity("a", "10.0.0.0/30", ""),
        affinity("b", "10.2.0.1/32", ""),
        affinity("c", "192.168.1.0/26", "confirmed"),
        affinity("d", "192.168.1.64/26", "pending"),
        affinity("e", "172.20.1.0/26", ""),
        affinity("f", "172.21.1.0/26", "confirmed"),
        affinity("g", "fd00:20::5/128", ""),
        affinity("h", "fd00:20::/122", ""),
    ]
    .concat()
}

fn originated(p: &Plan) -> Vec<(String, bool)> {
    p.originated
        .iter()
        .filter(|r| r.kind == OriginKind::Block)
        .map(|r| (r.prefix.to_string(), r.blackhole))
        .collect()
}

/// confd's standard block affinities: `state: ""` is implicitly confirmed, pending is not a
/// block of the node; single-address blocks are in `calico_aggr` (advertised, more-specifics
/// not) but get no `blackhole` in the static protocol.
#[test]
fn single_address_blocks_are_aggregated_and_advertised_without_blackhole() {
    let p = plan(&cluster(&format!("{MESH}{}", blocks())), "n1");
    let aggregated: Vec<String> = p.policy.own_blocks.iter().map(|b| b.to_string()).collect();
    assert_eq!(
        aggregated,
        [
            "10.0.0.0/30",
            "10.2.0.1/32",
            "172.20.1.0/26",
            "172.21.1.0/26",
            "192.168.1.0/26",
            "fd00:20::/122",
            "fd00:20::5/128"
        ]
    );
    let origin = originated(&p);
    assert!(
        origin.contains(&("10.2.0.1/32".into(), false)),
        "{origin:?}"
    );
    assert!(
        origin.contains(&("fd00:20::5/128".into(), false)),
        "{origin:?}"
    );
}

/// confd `cluster_routes/*`: `calico_kernel_programming` rejects every route inside a pool whose
/// cluster routes Felix programs — the node's own blackholes included — and inside VXLAN pools.
/// Default (`programClusterRoutes` unset = EnabledNoEncapOnly): blackholes outside pools and in
/// unencapsulated pools only. `Enabled`: IP-in-IP pools too. `Disabled`: outside pools only.
#[test]
fn blackholes_follow_calico_kernel_programming_per_pool() {
    let blackholed = |cfg: &str| -> Vec<String> {
        let text = format!(
            "{MESH}{}---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {{name: default}}\nspec: {{{cfg}}}\n",
            blocks()
        );
        let p = plan(&cluster(&text), "n1");
        let from_plan: Vec<String> = originated(&p)
            .into_iter()
            .filter(|(_, b)| *b)
            .map(|(n, _)| n)
            .collect();
        // The kernel decision agrees with the plan, prefix by prefix.
        for r in p.originated.iter().filter(|r| r.kind == OriginKind::Block) {
            let kernel = kernel_route_for(
                &BestRoute {
                    prefix: r.prefix,
                    next_hops: &[],
                    local_pref: 100,
                    origin: RouteOrigin::OwnBlock,
                },
                &NodeKernelContext {
                    pools: &p.pool_kernel_rules,
                    node_subnets: &[],
                },
            );
            assert_eq!(
                kernel.map(|k| k.kind) == Some(KernelRouteKind::Blackhole),
                r.blackhole,
                "{}",
                r.prefix
            );
        }
        from_plan
    };
    assert_eq!(
        blackholed(""),
        ["10.0.0.0/30", "172.20.1.0/26", "fd00:20::/122"]
    );
    assert_eq!(
        blackholed("programClusterRoutes: Enabled"),
        [
            "10.0.0.0/30",
            "172.20.1.0/26",
            "192.168.1.0/26",
            "fd00:20::/122"
        ]
    );
    assert_eq!(
        blackholed("programClusterRoutes: EnabledIPIPOnly"),
        ["10.0.0.0/30", "192.168.1.0/26"]
    );
    assert_eq!(
        blackholed("programClusterRoutes: Disabled"),
        ["10.0.0.0/30"]
    );
}

fn export(ctx: &PolicyContext, prefix: &str) -> bool {
    let key = ExportKey {
        peer_type: PeerType::Ibgp,
        local_as: 64512,
        peer_as: None,
        local_address: "10.9.0.2".parse().unwrap(),
        reflection: ReflectionRole::NonClient,
        next_hop_mode: RibNextHop::Auto,
        add_path_send: false,
        families: crate::rib::Families::BOTH,
        filters: vec![],
    };
    let target = ExportTarget {
        key: &key,
        filter: None,
        cluster_id: None,
        router_id: Ipv4Addr::new(10, 9, 0, 2),
    };
    let class = RouteClass::Local {
        interface: Some("eth0"),
        metric: 1024,
    };
    matches!(
        decide(
            &net(prefix),
            &RouteAttrs::new(Origin::Igp, None),
            class,
            &target,
            ctx
        ),
        ExportDecision::Accept { .. }
    )
}

/// confd `mesh/static-routes-exclude-node`: a node labelled
/// `node.kubernetes.io/exclude-from-external-load-balancers: "true"` writes no static routes, so
/// its export filter accepts nothing in the service ranges (they stay kernel-rejected).
#[test]
fn a_node_excluded_from_service_advertisement_exports_no_service_range() {
    let text = "
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec:
  serviceClusterIPs: [{cidr: 10.101.0.0/16}, {cidr: 'fd00:96::/112'}]
  serviceExternalIPs: [{cidr: 203.0.113.0/24}]
---
apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: n1
  labels: {node.kubernetes.io/exclude-from-external-load-balancers: 'true'}
spec: {bgp: {ipv4Address: 10.9.0.2/16}}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: n2}
spec: {bgp: {ipv4Address: 10.9.0.3/16}}
";
    let c = cluster(text);
    let excluded = plan(&c, "n1");
    assert!(excluded.originated.is_empty());
    assert!(excluded.policy.services_excluded);
    assert_eq!(
        excluded.policy.service_cluster_ips.len(),
        2,
        "still never installed"
    );
    let ctx = PolicyContext::from(&excluded.policy);
    assert!(!export(&ctx, "10.101.0.7/32"));
    assert!(!export(&ctx, "203.0.113.9/32"));

    let other = plan(&c, "n2");
    assert!(!other.policy.services_excluded);
    let ctx = PolicyContext::from(&other.policy);
    assert!(export(&ctx, "10.101.0.7/32"));
    assert!(export(&ctx, "203.0.113.9/32"));
}
