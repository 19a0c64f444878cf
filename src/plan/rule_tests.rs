//! Unit tests for each peering and route rule (calico-behaviour.md §2-§4).

use super::*;
use crate::model::{Cluster, load_documents};

fn cluster(yaml: &str) -> Cluster {
    let mut c = Cluster::default();
    load_documents(&mut c, std::path::Path::new("t.yaml"), yaml, "kube-system");
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    c
}

fn node(name: &str, v4: &str, extra: &str) -> String {
    format!(
        "---\napiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {{name: {name}{extra}}}\nspec: {{bgp: {{ipv4Address: {v4}}}}}\n"
    )
}

fn plan(c: &Cluster, n: &str) -> Plan {
    compute(c, n, &PlanOptions::default()).unwrap()
}

fn names(p: &Plan) -> Vec<&str> {
    p.peerings.iter().map(|x| x.name.as_str()).collect()
}

const MESH_OFF: &str = "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: false}\n";

#[test]
fn mesh_passive_side_compares_addresses_as_strings() {
    let c = cluster(&(node("a", "10.0.0.9/24", "") + &node("b", "10.0.0.10/24", "")));
    // "10.0.0.10" < "10.0.0.9" as strings: a is active, b is passive.
    assert!(!plan(&c, "a").peering("Mesh_10_0_0_10").unwrap().passive);
    assert!(plan(&c, "b").peering("Mesh_10_0_0_9").unwrap().passive);
}

#[test]
fn route_reflectors_join_no_mesh_and_are_not_meshed_with() {
    let rr = node("rr", "10.0.0.5/24", "").replace(
        "ipv4Address: 10.0.0.5/24",
        "ipv4Address: 10.0.0.5/24, routeReflectorClusterID: 1.1.1.1",
    );
    let c = cluster(&(node("a", "10.0.0.1/24", "") + &node("b", "10.0.0.2/24", "") + &rr));
    assert_eq!(names(&plan(&c, "a")), ["Mesh_10_0_0_2"]);
    assert!(plan(&c, "rr").peerings.is_empty());
}

#[test]
fn mesh_peer_as_and_port_come_from_the_peer_node() {
    let text = node("a", "10.0.0.1/24", "")
        + &node("b", "10.0.0.2/24", "").replace(
            "ipv4Address: 10.0.0.2/24",
            "ipv4Address: 10.0.0.2/24, asNumber: 65002",
        )
        + &node("c", "10.0.0.3/24", "")
        + "---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {asNumber: 65000, listenPort: 1000}\n"
        + "---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: node.b}\nspec: {listenPort: 2000}\n";
    let p = plan(&cluster(&text), "a");
    let b = p.peering("Mesh_10_0_0_2").unwrap();
    assert_eq!((b.peer_as, b.port, b.local_as), (65002, 2000, 65000));
    let c = p.peering("Mesh_10_0_0_3").unwrap();
    assert_eq!((c.peer_as, c.port), (65000, 1000));
    assert_eq!(p.listen.port, 1000);
}

#[test]
fn reverse_peering_is_automatic_unless_manual_and_forward_wins() {
    let base = format!(
        "{MESH_OFF}{}{}",
        node("n1", "10.0.0.1/24", ""),
        node("n2", "10.0.0.2/24", "")
    );
    let fwd = "---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: n1-to-n2}\nspec: {node: n1, peerIP: 10.0.0.2, asNumber: 64512}\n";
    let c = cluster(&(base.clone() + fwd));
    let rev = plan(&c, "n2");
    assert_eq!(names(&rev), ["Node_10_0_0_1"]);
    assert_eq!(rev.peerings[0].keepalive_time, None);

    let manual = fwd.replace(
        "asNumber: 64512}",
        "asNumber: 64512, reversePeering: Manual}",
    );
    assert!(
        plan(&cluster(&(base.clone() + &manual)), "n2")
            .peerings
            .is_empty()
    );

    // An explicit peering on n2 towards n1 wins over the implicit reverse one.
    let back = "---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: n2-to-n1}\nspec: {node: n2, peerIP: 10.0.0.1, asNumber: 64512, keepaliveTime: 10s}\n";
    let p = plan(&cluster(&(base + fwd + back)), "n2");
    assert_eq!(names(&p), ["Node_10_0_0_1"]);
    assert_eq!(p.peerings[0].keepalive_time, Some(10));
}

#[test]
fn peer_selector_peers_on_both_families() {
    let text = format!(
        "{MESH_OFF}{}{}---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: p}}\nspec: {{nodeSelector: role == 'a', peerSelector: role == 'b'}}\n",
        node("a", "10.0.0.1/24", ", labels: {role: a}").replace(
            "ipv4Address: 10.0.0.1/24",
            "ipv4Address: 10.0.0.1/24, ipv6Address: 'fd00::1/64'"
        ),
        node("b", "10.0.0.2/24", ", labels: {role: b}").replace(
            "ipv4Address: 10.0.0.2/24",
            "ipv4Address: 10.0.0.2/24, ipv6Address: 'fd00::2/64'"
        ),
    );
    let c = cluster(&text);
    assert_eq!(names(&plan(&c, "a")), ["Node_10_0_0_2", "Node_fd00__2"]);
    assert_eq!(
        names(&plan(&c, "b")),
        ["Node_10_0_0_1", "Node_fd00__1"],
        "automatic reverse on the selected node"
    );
}

#[test]
fn node_peers_are_never_passive_but_global_peers_to_calico_nodes_can_be() {
    let base = format!(
        "{MESH_OFF}{}{}",
        node("n1", "10.0.0.1/24", ""),
        node("n2", "10.0.0.2/24", "")
    );
    let global = "---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: g}\nspec: {peerIP: 10.0.0.2, asNumber: 64512}\n";
    assert!(
        plan(&cluster(&(base.clone() + global)), "n1")
            .peering("Global_10_0_0_2")
            .unwrap()
            .passive
    );
    let nodepeer = global.replace("spec: {", "spec: {node: n1, ");
    assert!(
        !plan(&cluster(&(base.clone() + &nodepeer)), "n1")
            .peering("Node_10_0_0_2")
            .unwrap()
            .passive
    );
    // A global peer that is not a Calico node is never passive.
    let ext = global.replace("10.0.0.2", "10.0.0.200");
    assert!(
        !plan(&cluster(&(base + &ext)), "n1")
            .peering("Global_10_0_0_200")
            .unwrap()
            .passive
    );
}

#[test]
fn route_reflector_clients_and_cluster_ids() {
    let rr = node("rr", "10.0.0.5/24", ", labels: {rr: 'y'}").replace(
        "ipv4Address: 10.0.0.5/24",
        "ipv4Address: 10.0.0.5/24, routeReflectorClusterID: 1.1.1.1",
    );
    let rr2 = node("rr2", "10.0.0.6/24", ", labels: {rr: 'y'}").replace(
        "ipv4Address: 10.0.0.6/24",
        "ipv4Address: 10.0.0.6/24, routeReflectorClusterID: 1.1.1.1",
    );
    let peers = "---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: rrs}\nspec: {nodeSelector: has(rr), peerSelector: has(rr)}\n\
                 ---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: ibgp-ext}\nspec: {node: rr, peerIP: 10.0.0.100, asNumber: 64512}\n\
                 ---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: ebgp-ext}\nspec: {node: rr, peerIP: 10.0.0.101, asNumber: 65000}\n\
                 ---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: local-as}\nspec: {node: rr, peerIP: 10.0.0.102, asNumber: 65099, localASNumber: 65099}\n";
    let p = plan(&cluster(&format!("{MESH_OFF}{rr}{rr2}{peers}")), "rr");
    let client = |n: &str| p.peering(n).unwrap().route_reflector_client;
    assert!(!client("Node_10_0_0_6"), "same cluster id: not a client");
    assert!(client("Node_10_0_0_100"), "iBGP peerIP peer: client");
    assert_eq!(
        p.peering("Node_10_0_0_100").unwrap().cluster_id,
        Some("1.1.1.1".parse().unwrap())
    );
    assert!(!client("Node_10_0_0_101"), "eBGP: not a client");
    assert!(
        client("Node_10_0_0_102"),
        "iBGP through localASNumber: client"
    );
}

#[test]
fn next_hop_modes() {
    let base = format!("{MESH_OFF}{}", node("n1", "10.0.0.1/24", ""));
    let peer = |name: &str, spec: &str| {
        format!(
            "---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: {name}}}\nspec: {{node: n1, {spec}}}\n"
        )
    };
    let text =
        base + &peer(
            "a",
            "peerIP: 10.0.0.100, asNumber: 65000, keepOriginalNextHop: true",
        ) + &peer(
            "b",
            "peerIP: 10.0.0.101, asNumber: 64512, keepOriginalNextHop: true",
        ) + &peer(
            "c",
            "peerIP: 10.0.0.102, asNumber: 65000, keepOriginalNextHop: true, nextHopMode: Self",
        ) + &peer(
            "d",
            "peerIP: 10.0.0.103, asNumber: 64512, nextHopMode: Keep",
        );
    let p = plan(&cluster(&text), "n1");
    let nh = |n: &str| p.peering(n).unwrap().next_hop;
    assert_eq!(
        nh("Node_10_0_0_100"),
        NextHopMode::Keep,
        "legacy keep, eBGP"
    );
    assert_eq!(
        nh("Node_10_0_0_101"),
        NextHopMode::Auto,
        "legacy keep ignored for iBGP"
    );
    assert_eq!(
        nh("Node_10_0_0_102"),
        NextHopMode::SelfMode,
        "nextHopMode wins over the legacy field"
    );
    assert_eq!(nh("Node_10_0_0_103"), NextHopMode::Keep);
}

#[test]
fn peer_ip_matching_a_node_uses_its_port_with_confds_port_check() {
    let text = format!(
        "{}{}---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {{name: default}}\nspec: {{nodeToNodeMeshEnabled: false, listenPort: 1000}}\n\
         ---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {{name: node.n2}}\nspec: {{listenPort: 2000}}\n\
         ---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: p}}\nspec: {{node: n1, peerIP: 10.0.0.2, asNumber: 64512}}\n\
         ---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: q}}\nspec: {{node: n1, peerIP: '10.0.0.2:2000', asNumber: 64512}}\n",
        node("n1", "10.0.0.1/24", ""),
        node("n2", "10.0.0.2/24", "")
    );
    let c = cluster(&text);
    // Without a port, the Calico node's own listen port is used (and named).
    assert_eq!(
        names(&plan(&c, "n1")),
        ["Node_10_0_0_2_port_2000"],
        "p and q collapse to one key; first wins"
    );
    // confd's nodesWithIPPortAndAS: port 2000 matches n2's own port but differs from the
    // global 1000, so q gets no automatic reverse; p (no port) does.
    let rev = plan(&c, "n2");
    assert_eq!(names(&rev), ["Node_10_0_0_1_port_1000"]);
}

#[test]
fn router_id_errors_and_hash() {
    let v6 = "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: six}\nspec: {bgp: {ipv6Address: 'fd00::6/64'}}\n";
    let c = cluster(v6);
    assert_eq!(
        compute(&c, "six", &PlanOptions::default()).unwrap_err(),
        PlanError::NoRouterId("six".into())
    );
    let opts = PlanOptions {
        router_id: RouterIdSource::Hash,
        ..PlanOptions::default()
    };
    assert_eq!(
        compute(&c, "six", &opts).unwrap().router_id,
        hashed_router_id("six")
    );
    assert_eq!(
        compute(&c, "nope", &opts).unwrap_err(),
        PlanError::UnknownNode("nope".into())
    );
}

#[test]
fn a_broken_bgp_filter_rejects_the_plan_even_if_unused() {
    let text = node("n1", "10.0.0.1/24", "")
        + "---\napiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata: {name: f}\nspec: {exportV4: [{cidr: 10.0.0.0/8, action: Accept}]}\n";
    let e = compute(&cluster(&text), "n1", &PlanOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "BGPFilter \"f\": field spec.exportV4[0].matchOperator: required with cidr"
    );
}

#[test]
fn program_cluster_routes_and_felix_warnings() {
    let pools = "---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: ipip}\nspec: {cidr: 10.1.0.0/16, ipipMode: Always}\n\
                 ---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: plain}\nspec: {cidr: 10.2.0.0/16}\n\
                 ---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: vx}\nspec: {cidr: 10.3.0.0/16, vxlanMode: CrossSubnet, ipipMode: Always}\n";
    let base = node("n1", "10.0.0.1/24", "") + pools;
    let rules = |p: &Plan| {
        p.pool_kernel_rules
            .iter()
            .map(|r| (r.encapsulation, r.programmed_by_tern))
            .collect::<Vec<_>>()
    };
    // Defaults: tern EnabledNoEncapOnly, Felix EnabledIPIPOnly: no conflict.
    let p = plan(&cluster(&base), "n1");
    assert_eq!(
        rules(&p),
        [
            (Encapsulation::IpIpAlways, false),
            (Encapsulation::None, true),
            (Encapsulation::Vxlan, false)
        ]
    );
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert!(
        p.policy
            .ibgp_reject_interfaces
            .contains(&"tunl0".to_string())
    );
    // tern Enabled + Felix default: both program the IPIP pool.
    let both = base.clone()
        + "---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {programClusterRoutes: Enabled}\n";
    let p = plan(&cluster(&both), "n1");
    assert_eq!(rules(&p)[0], (Encapsulation::IpIpAlways, true));
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("\"ipip\"") && w.contains("both")),
        "{:?}",
        p.warnings
    );
    assert!(
        !p.policy
            .ibgp_reject_interfaces
            .contains(&"tunl0".to_string())
    );
    // tern Disabled + Felix EnabledIPIPOnly: nobody programs the plain pool.
    let none = base
        + "---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {programClusterRoutes: Disabled}\n";
    let p = plan(&cluster(&none), "n1");
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("\"plain\"") && w.contains("neither")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn per_node_prefix_advertisements_replace_global_ones() {
    let text = node("n1", "10.0.0.1/24", "")
        + "---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {prefixAdvertisements: [{cidr: 10.0.0.0/8, communities: ['1:1']}]}\n\
           ---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: node.n1}\nspec: {communities: [{name: x, value: '2:2'}], prefixAdvertisements: [{cidr: 10.1.0.0/16, communities: [x, '3:3']}]}\n";
    let p = plan(&cluster(&text), "n1");
    assert_eq!(p.policy.prefix_advertisements.len(), 1);
    assert_eq!(
        p.policy.prefix_advertisements[0].cidr.to_string(),
        "10.1.0.0/16"
    );
    assert_eq!(
        p.policy.prefix_advertisements[0].communities,
        vec![Community::Standard(2, 2), Community::Standard(3, 3)]
    );
}

#[test]
fn diff_separates_resets_from_soft_changes() {
    let secret = |pw: &str| {
        format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\nstringData: {{k: {pw}}}\n"
        )
    };
    let peer = |extra: &str| {
        format!(
            "---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: p}}\nspec: {{node: n1, peerIP: 10.0.0.9, asNumber: 65000, password: {{secretKeyRef: {{name: s, key: k}}}}{extra}}}\n"
        )
    };
    let filter = "---\napiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata: {name: f}\nspec: {importV4: [{action: Accept}]}\n";
    let base = format!("{MESH_OFF}{}{filter}", node("n1", "10.0.0.1/24", ""));
    let old = plan(&cluster(&(base.clone() + &secret("one") + &peer(""))), "n1");

    let same = plan(&cluster(&(base.clone() + &secret("one") + &peer(""))), "n1");
    assert!(PlanDiff::between(&old, &same).is_empty());

    let rotated = plan(&cluster(&(base.clone() + &secret("two") + &peer(""))), "n1");
    let d = PlanDiff::between(&old, &rotated);
    assert_eq!(
        d.peers_reset.len(),
        1,
        "a password rotation resets the session"
    );
    assert!(format!("{d:?}").contains("<redacted>") && !format!("{d:?}").contains("two"));

    let filtered = plan(
        &cluster(&(base.clone() + &secret("one") + &peer(", filters: [f]"))),
        "n1",
    );
    let d = PlanDiff::between(&old, &filtered);
    assert!(d.peers_reset.is_empty());
    assert_eq!(d.peers_updated.len(), 1, "adding a filter needs no reset");
    assert!(d.policy_changed);

    let gr = plan(
        &cluster(&(base.clone() + &secret("one") + &peer(", maxRestartTime: 30s"))),
        "n1",
    );
    assert_eq!(PlanDiff::between(&old, &gr).peers_reset.len(), 1);

    let block = "---\napiVersion: projectcalico.org/v3\nkind: BlockAffinity\nmetadata: {name: b}\nspec: {state: confirmed, node: n1, cidr: 10.244.0.0/26}\n";
    let moved = plan(
        &cluster(
            &(base.replace("10.0.0.1/24", "10.0.0.2/24") + &secret("one") + &peer("") + block),
        ),
        "n1",
    );
    let d = PlanDiff::between(&old, &moved);
    assert_eq!(
        d.router_id,
        Some(("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()))
    );
    assert_eq!(d.peers_reset.len(), 1, "source address changed");
    assert_eq!(d.routes_added.len(), 1);
    assert_eq!(PlanDiff::between(&moved, &old).routes_removed.len(), 1);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// In a full mesh exactly one side of every pair is passive, whatever the addresses.
        #[test]
        fn mesh_has_exactly_one_passive_side(addrs in proptest::collection::btree_set(any::<[u8; 4]>(), 2..6)) {
            let text: String = addrs.iter().enumerate()
                .map(|(i, a)| node(&format!("n{i}"), &format!("{}.{}.{}.{}/24", a[0], a[1], a[2], a[3]), ""))
                .collect();
            let c = cluster(&text);
            let plans: Vec<Plan> = (0..addrs.len()).map(|i| plan(&c, &format!("n{i}"))).collect();
            for a in &plans {
                for b in &plans {
                    if a.node == b.node {
                        continue;
                    }
                    let ab = a.peerings.iter().find(|p| p.peer_node.as_deref() == Some(b.node.as_str())).unwrap();
                    let ba = b.peerings.iter().find(|p| p.peer_node.as_deref() == Some(a.node.as_str())).unwrap();
                    prop_assert!(ab.passive != ba.passive, "{} / {}", ab.name, ba.name);
                }
            }
        }

        /// Corrupted manifests never panic the loader or the planner.
        #[test]
        fn corrupted_manifests_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
            let text = include_str!("../../fixtures/clusters/bgpfilter/manifests/all.yaml");
            let mut bytes = text.as_bytes().to_vec();
            for (index, byte) in flips {
                let i = index.index(bytes.len());
                bytes[i] = byte;
            }
            let text = String::from_utf8_lossy(&bytes);
            let mut c = Cluster::default();
            load_documents(&mut c, std::path::Path::new("t.yaml"), &text, "kube-system");
            let _ = compute(&c, "n1", &PlanOptions::default());
        }
    }
}

#[test]
fn filters_for_and_pool_lookup() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/clusters/bgpfilter/manifests");
    let c = crate::model::load_paths(&[dir], "kube-system").unwrap();
    let p = plan(&c, "n1");
    let tor = p.peering("Node_10_0_0_254").unwrap();
    let names: Vec<&str> = p
        .filters_for(tor, filter::Direction::Export)
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(names, ["everything"]);
    assert_eq!(
        p.filters_for(
            p.peering("Mesh_10_0_0_2").unwrap(),
            filter::Direction::Import
        )
        .count(),
        0
    );

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/clusters/dual-stack/manifests");
    let p = plan(
        &crate::model::load_paths(&[dir], "kube-system").unwrap(),
        "n1",
    );
    let pool = p.policy.pool_of(&"10.244.3.0/26".parse().unwrap()).unwrap();
    assert_eq!(pool.cidr.to_string(), "10.244.0.0/16");
    assert!(p.policy.pool_of(&"10.0.0.0/8".parse().unwrap()).is_none());
    assert!(
        p.policy
            .pool_of(&"fd00:244::5/128".parse().unwrap())
            .unwrap()
            .disable_bgp_export
    );
    assert_eq!(p.policy.normal_priority(true), 512);
}

#[test]
fn listen_overrides_from_settings_win() {
    let text = node("n1", "10.0.0.1/24", "")
        + "---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {listenPort: 1000, bindMode: NodeIP}\n";
    let c = cluster(&text);
    let p = plan(&c, "n1");
    assert_eq!(
        (p.listen.port, p.listen.addresses.clone()),
        (1000, vec!["10.0.0.1".parse().unwrap()])
    );
    let opts = PlanOptions {
        listen_port: Some(2000),
        listen_addresses: vec!["0.0.0.0".parse().unwrap()],
        ..PlanOptions::default()
    };
    let p = compute(&c, "n1", &opts).unwrap();
    assert_eq!(
        (p.listen.port, p.listen.addresses),
        (2000, vec!["0.0.0.0".parse().unwrap()])
    );
}
