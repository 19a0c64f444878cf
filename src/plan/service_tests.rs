//! Unit tests of per-Service advertisement (confd `routes.go`, `routes_test.go`).

use super::*;
use crate::model::{Cluster, load_documents};

fn cluster(yaml: &str) -> Cluster {
    let mut c = Cluster::default();
    load_documents(&mut c, std::path::Path::new("t.yaml"), yaml, "kube-system");
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    c
}

/// Two nodes (node-2 optionally excluded from load balancers) and the service ranges.
fn base(aggregation: &str, exclude_node2: bool) -> String {
    let label = if exclude_node2 {
        ", labels: {node.kubernetes.io/exclude-from-external-load-balancers: \"true\"}"
    } else {
        ""
    };
    format!(
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {{name: default}}\n\
         spec: {{nodeToNodeMeshEnabled: false, serviceLoadBalancerAggregation: {aggregation},\n\
           serviceClusterIPs: [{{cidr: 10.96.0.0/12}}, {{cidr: 'fd00:96::/108'}}],\n\
           serviceExternalIPs: [{{cidr: 192.0.2.0/24}}, {{cidr: 198.51.100.7/32}}],\n\
           serviceLoadBalancerIPs: [{{cidr: 203.0.113.0/24}}]}}\n\
         ---\napiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {{name: node-1}}\nspec: {{bgp: {{ipv4Address: 10.0.0.1/24}}}}\n\
         ---\napiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {{name: node-2{label}}}\nspec: {{bgp: {{ipv4Address: 10.0.0.2/24}}}}\n"
    )
}

/// A Service `web` in `default` with the given spec (YAML flow entries) and LB ingress IPs.
fn service(name: &str, spec: &str, ingress: &[&str]) -> String {
    let ingress: Vec<String> = ingress.iter().map(|ip| format!("{{ip: {ip}}}")).collect();
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\n\
         spec: {{{spec}}}\nstatus: {{loadBalancer: {{ingress: [{}]}}}}\n",
        ingress.join(", ")
    )
}

/// An EndpointSlice of Service `name` with endpoints `(node, ready)`.
fn slice(name: &str, family: &str, endpoints: &[(&str, Option<bool>)]) -> String {
    let eps: Vec<String> = endpoints
        .iter()
        .map(|(node, ready)| {
            let cond = match ready {
                Some(r) => format!(", conditions: {{ready: {r}}}"),
                None => String::new(),
            };
            format!("{{addresses: [10.244.1.5], nodeName: {node}{cond}}}")
        })
        .collect();
    format!(
        "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: {name}-{}, namespace: default, labels: {{kubernetes.io/service-name: {name}}}}}\n\
         addressType: {family}\nendpoints: [{}]\n",
        family.to_lowercase(),
        eps.join(", ")
    )
}

/// The per-Service routes of `node`.
fn service_routes(yaml: &str, node: &str) -> Vec<String> {
    let plan = compute(&cluster(yaml), node, &PlanOptions::default()).unwrap();
    plan.originated
        .iter()
        .filter(|r| r.kind == OriginKind::Service)
        .map(|r| r.prefix.to_string())
        .collect()
}

const LOCAL_LB: &str = "type: LoadBalancer, clusterIP: 10.96.0.10, externalTrafficPolicy: Local, externalIPs: [192.0.2.10]";

#[test]
fn local_policy_is_advertised_only_from_nodes_with_a_ready_local_endpoint() {
    let yaml = base("Enabled", false)
        + &service("web", LOCAL_LB, &["203.0.113.5"])
        + &slice("web", "IPv4", &[("node-1", Some(true))]);
    assert_eq!(
        service_routes(&yaml, "node-1"),
        ["10.96.0.10/32", "192.0.2.10/32", "203.0.113.5/32"]
    );
    assert!(service_routes(&yaml, "node-2").is_empty());
    // The ranges themselves are still advertised from every node.
    let plan = compute(&cluster(&yaml), "node-2", &PlanOptions::default()).unwrap();
    assert!(
        plan.originated
            .iter()
            .any(|r| r.prefix.to_string() == "10.96.0.0/12")
    );
    // The endpoint moves: node-2 advertises, node-1 withdraws.
    let moved = base("Enabled", false)
        + &service("web", LOCAL_LB, &["203.0.113.5"])
        + &slice("web", "IPv4", &[("node-2", None)]);
    assert!(service_routes(&moved, "node-1").is_empty());
    assert_eq!(service_routes(&moved, "node-2").len(), 3);
    // The last endpoint gone: withdrawn everywhere.
    let gone = base("Enabled", false) + &service("web", LOCAL_LB, &["203.0.113.5"]);
    assert!(service_routes(&gone, "node-1").is_empty());
}

#[test]
fn not_ready_endpoints_do_not_count() {
    let yaml = base("Enabled", false)
        + &service("web", LOCAL_LB, &[])
        + &slice(
            "web",
            "IPv4",
            &[("node-1", Some(false)), ("node-2", Some(true))],
        );
    assert!(service_routes(&yaml, "node-1").is_empty());
    assert_eq!(
        service_routes(&yaml, "node-2"),
        ["10.96.0.10/32", "192.0.2.10/32"]
    );
    // A second slice with a ready local endpoint keeps node-1 advertising.
    let yaml = yaml
        + &slice("web", "IPv4", &[("node-1", Some(true))])
            .replace("name: web-ipv4", "name: web-ipv4-b");
    assert_eq!(service_routes(&yaml, "node-1").len(), 2);
}

#[test]
fn cluster_policy_follows_aggregation() {
    let spec = "type: LoadBalancer, clusterIP: 10.96.0.11, externalTrafficPolicy: Cluster";
    let with_endpoint = |agg: &str| {
        base(agg, false)
            + &service("api", spec, &["203.0.113.6"])
            + &slice("api", "IPv4", &[("node-1", Some(true))])
    };
    // Aggregated (default): the ranges cover it, no /32 from anyone.
    assert!(service_routes(&with_endpoint("Enabled"), "node-1").is_empty());
    assert!(service_routes(&with_endpoint("Enabled"), "node-2").is_empty());
    // Disabled: /32s from every node while any endpoint is ready.
    for node in ["node-1", "node-2"] {
        assert_eq!(
            service_routes(&with_endpoint("Disabled"), node),
            ["10.96.0.11/32", "203.0.113.6/32"]
        );
    }
    let no_ready = base("Disabled", false)
        + &service("api", spec, &["203.0.113.6"])
        + &slice("api", "IPv4", &[("node-1", Some(false))]);
    assert!(service_routes(&no_ready, "node-2").is_empty());
    // The LB range is advertised only when aggregated.
    let ranges = |agg: &str| {
        compute(
            &cluster(&with_endpoint(agg)),
            "node-2",
            &PlanOptions::default(),
        )
        .unwrap()
        .originated
        .iter()
        .any(|r| r.prefix.to_string() == "203.0.113.0/24")
    };
    assert!(ranges("Enabled") && !ranges("Disabled"));
}

#[test]
fn a_single_address_external_range_is_advertised_from_every_node_for_cluster_policy() {
    let spec = "clusterIP: 10.96.0.12, externalTrafficPolicy: Cluster, externalIPs: [198.51.100.7]";
    let yaml = base("Enabled", false) + &service("ext", spec, &[]);
    for node in ["node-1", "node-2"] {
        assert_eq!(
            service_routes(&yaml, node),
            ["10.96.0.12/32", "198.51.100.7/32"]
        );
    }
}

#[test]
fn internal_traffic_policy_local_restricts_cluster_ips() {
    let spec = "clusterIP: 10.96.0.13, internalTrafficPolicy: Local";
    let yaml = base("Enabled", false)
        + &service("dns", spec, &[])
        + &slice("dns", "IPv4", &[("node-2", Some(true))]);
    assert!(service_routes(&yaml, "node-1").is_empty());
    assert_eq!(service_routes(&yaml, "node-2"), ["10.96.0.13/32"]);
    // Cluster policy externally, aggregation off: external/LB IPs from every node, the
    // cluster IP only where an endpoint is local.
    let spec = "type: LoadBalancer, clusterIP: 10.96.0.14, externalTrafficPolicy: Cluster, internalTrafficPolicy: Local";
    let yaml = base("Disabled", false)
        + &service("mixed", spec, &["203.0.113.9"])
        + &slice("mixed", "IPv4", &[("node-2", Some(true))]);
    assert_eq!(service_routes(&yaml, "node-1"), ["203.0.113.9/32"]);
    assert_eq!(
        service_routes(&yaml, "node-2"),
        ["10.96.0.14/32", "203.0.113.9/32"]
    );
}

#[test]
fn excluded_nodes_advertise_no_service() {
    let yaml = base("Enabled", true)
        + &service("web", LOCAL_LB, &[])
        + &slice("web", "IPv4", &[("node-2", Some(true))]);
    assert!(service_routes(&yaml, "node-2").is_empty());
    let plan = compute(&cluster(&yaml), "node-2", &PlanOptions::default()).unwrap();
    assert!(plan.originated.is_empty(), "{:?}", plan.originated);
}

#[test]
fn ipv6_services_get_a_128_and_families_must_match() {
    let spec = "clusterIP: 'fd00:96::10', externalTrafficPolicy: Local, ipFamilies: [IPv6]";
    let v6 = base("Enabled", false)
        + &service("v6", spec, &[])
        + &slice("v6", "IPv6", &[("node-1", Some(true))]);
    assert_eq!(service_routes(&v6, "node-1"), ["fd00:96::10/128"]);
    // An IPv4 slice does not make an IPv6-only Service local.
    let wrong = base("Enabled", false)
        + &service("v6", spec, &[])
        + &slice("v6", "IPv4", &[("node-1", Some(true))]);
    assert!(service_routes(&wrong, "node-1").is_empty());
    // Dual stack: one slice of either family is enough for both addresses.
    let dual = "clusterIPs: [10.96.0.20, 'fd00:96::20'], externalTrafficPolicy: Local, ipFamilies: [IPv4, IPv6]";
    let yaml = base("Enabled", false)
        + &service("dual", dual, &[])
        + &slice("dual", "IPv6", &[("node-1", Some(true))]);
    assert_eq!(
        service_routes(&yaml, "node-1"),
        ["10.96.0.20/32", "fd00:96::20/128"]
    );
}

#[test]
fn addresses_outside_every_range_are_not_advertised() {
    let spec = "type: LoadBalancer, clusterIP: 172.16.0.10, externalTrafficPolicy: Local, externalIPs: [192.0.3.1, 192.0.2.77]";
    let yaml = base("Enabled", false)
        + &service("out", spec, &["198.18.0.1"])
        + &slice("out", "IPv4", &[("node-1", Some(true))]);
    assert_eq!(service_routes(&yaml, "node-1"), ["192.0.2.77/32"]);
    // With no range configured at all, nothing per Service either.
    let bare = "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: node-1}\nspec: {bgp: {ipv4Address: 10.0.0.1/24}}\n"
        .to_string()
        + &service("web", LOCAL_LB, &[])
        + &slice("web", "IPv4", &[("node-1", Some(true))]);
    assert!(service_routes(&bare, "node-1").is_empty());
}

#[test]
fn headless_and_external_name_services_are_skipped() {
    let yaml = base("Disabled", false)
        + &service(
            "headless",
            "clusterIP: None, externalTrafficPolicy: Local",
            &[],
        )
        + &slice("headless", "IPv4", &[("node-1", Some(true))])
        + &service(
            "name",
            "type: ExternalName, clusterIP: 10.96.0.30, externalName: example.com",
            &[],
        )
        + &slice("name", "IPv4", &[("node-1", Some(true))]);
    assert!(service_routes(&yaml, "node-1").is_empty());
}

#[test]
fn a_service_with_a_bad_address_is_named_and_skipped() {
    let mut c = Cluster::default();
    let yaml = base("Enabled", false)
        + &service(
            "bad",
            "clusterIP: 10.96.0.300, externalTrafficPolicy: Local",
            &[],
        )
        + &service("web", LOCAL_LB, &[])
        + &slice("web", "IPv4", &[("node-1", Some(true))]);
    load_documents(&mut c, std::path::Path::new("t.yaml"), &yaml, "kube-system");
    assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
    assert_eq!(
        c.problems[0].to_string(),
        "t.yaml: Service \"bad\": field spec.clusterIP = '10.96.0.300' (invalid IP address); skipped"
    );
    let plan = compute(&c, "node-1", &PlanOptions::default()).unwrap();
    assert!(
        plan.originated
            .iter()
            .any(|r| r.kind == OriginKind::Service && r.prefix.to_string() == "10.96.0.10/32")
    );
}
