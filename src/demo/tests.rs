//! The demo's cluster description: its manifests plan into the intended topology.

use std::path::Path;

use super::*;
use crate::config::Settings;
use crate::plan::Encapsulation;

fn peer_names(plan: &Plan) -> Vec<&str> {
    plan.peerings.iter().map(|p| p.name.as_str()).collect()
}

#[test]
fn mesh_manifests_plan_a_full_mesh_with_tern_programming_the_ipip_pool() {
    let cluster = DemoCluster::new(Topology::Mesh);
    let plans = plans(&cluster).unwrap();
    assert_eq!(plans.len(), 3);
    assert_eq!(
        peer_names(&plans[0]),
        ["Mesh_10_0_1_12", "Mesh_10_0_2_13"],
        "node-1"
    );
    assert_eq!(
        peer_names(&plans[1]),
        ["Mesh_10_0_1_11", "Mesh_10_0_2_13"],
        "node-2"
    );
    assert_eq!(
        peer_names(&plans[2]),
        ["Mesh_10_0_1_11", "Mesh_10_0_1_12"],
        "node-3"
    );
    for (plan, node) in plans.iter().zip(&cluster.nodes) {
        assert!(
            plan.warnings.is_empty(),
            "{}: {:?}",
            node.name,
            plan.warnings
        );
        assert_eq!(
            plan.pool_kernel_rules
                .iter()
                .map(|r| (r.cidr, r.encapsulation, r.programmed_by_tern))
                .collect::<Vec<_>>(),
            [(cluster.pool.into(), Encapsulation::IpIpCrossSubnet, true)]
        );
        assert!(
            plan.originated
                .iter()
                .any(|r| r.prefix == node.block.into() && r.blackhole),
            "{} originates its block: {:?}",
            node.name,
            plan.originated
        );
    }
}

#[test]
fn route_reflector_manifests_make_node_3_the_only_peer_of_the_others() {
    let cluster = DemoCluster::new(Topology::RouteReflector);
    let plans = plans(&cluster).unwrap();
    let rr = &plans[2];
    assert_eq!(rr.route_reflector_cluster_id, Some(cluster.cluster_id));
    assert_eq!(rr.peerings.len(), 2, "{:?}", peer_names(rr));
    assert!(rr.peerings.iter().all(|p| p.route_reflector_client));
    for client in &plans[..2] {
        assert_eq!(client.peerings.len(), 1, "{:?}", peer_names(client));
        assert_eq!(
            client.peerings[0].address,
            std::net::IpAddr::from(cluster.nodes[2].address.addr())
        );
        assert!(!client.peerings[0].route_reflector_client);
    }
}

#[test]
fn route_shapes_follow_crosssubnet_and_the_ping_pair_shares_a_subnet() {
    let cluster = DemoCluster::new(Topology::Mesh);
    let node_1 = cluster.node("node-1").unwrap();
    let shapes: Vec<_> = cluster
        .remote_blocks(node_1)
        .into_iter()
        .map(|(block, via, shape)| (block.to_string(), via.to_string(), shape))
        .collect();
    assert_eq!(
        shapes,
        [
            (
                "10.244.2.0/26".to_owned(),
                "10.0.1.12".to_owned(),
                RouteShape::Direct
            ),
            (
                "10.244.3.0/26".to_owned(),
                "10.0.2.13".to_owned(),
                RouteShape::Tunnel
            ),
        ]
    );
    let (a, b) = cluster.ping_pair();
    assert_eq!((a.name, b.name), ("node-1", "node-2"));
    for node in &cluster.nodes {
        assert!(node.block.contains(&node.pod_address));
        assert!(node.block.contains(&node.tunnel_address));
        assert!(cluster.pool.contains(&node.block));
        assert!(cluster.subnet_of(node).cidr.contains(&node.address.addr()));
    }
}

#[test]
fn node_settings_parse_and_point_at_the_nodes_own_files() {
    let cluster = DemoCluster::new(Topology::Mesh);
    let run_dir = Path::new("/tmp/tern-demo-1 \"quoted\"");
    let manifests = run_dir.join("manifests");
    let node = &cluster.nodes[1];
    let files = NodeFiles::under(run_dir, node.name);
    let text = node_settings(node, &manifests, &files);
    let settings = Settings::from_toml(&files.settings, &text).unwrap();
    assert_eq!(settings.node_name.as_deref(), Some("node-2"));
    assert_eq!(settings.datastore.paths, [manifests]);
    assert_eq!(settings.control.socket, files.control_socket);
    assert!(files.control_socket.starts_with(run_dir.join("node-2")));
}
