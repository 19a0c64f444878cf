//! Per-Service routes (confd `routes.go`, the route generator): the /32 or /128 of a Service's
//! addresses that this node advertises besides the configured ranges.
//!
//! For each Service (not `ExternalName`, not headless), as confd's `advertiseThisService`:
//! - `externalTrafficPolicy: Cluster` with an external IP, or (type LoadBalancer) a
//!   `loadBalancerIP` / ingress IP, inside a single-address (/32, /128) range entry: advertised
//!   from every node;
//! - otherwise, with `serviceLoadBalancerAggregation` enabled (the default), only
//!   `externalTrafficPolicy: Local` Services, from nodes with a ready endpoint of their own
//!   (`nodeName` = this node, `ready` not false) in an EndpointSlice of the Service's family;
//! - with aggregation disabled, non-Local Services too, from every node while any of their
//!   endpoints is ready.
//!
//! The routes of an advertised Service are its cluster IPs inside `serviceClusterIPs`, its
//! external IPs inside `serviceExternalIPs` and its ingress IPs inside
//! `serviceLoadBalancerIPs`. Beyond confd: cluster IPs must lie in a configured cluster range
//! (confd takes every cluster IP once any range is set; tern's export accepts only prefixes
//! inside the ranges), and a Service with `internalTrafficPolicy: Local` has its cluster IPs
//! advertised only from nodes with a ready local endpoint (confd ignores that policy).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::{
    Cluster, EndpointSlice, Service, ServiceLoadBalancerAggregation, ServiceType, TrafficPolicy,
};

/// The configured ranges (already truncated).
pub(super) struct Ranges<'a> {
    pub cluster: &'a [IpNet],
    pub external: &'a [IpNet],
    pub load_balancer: &'a [IpNet],
    pub aggregation: ServiceLoadBalancerAggregation,
}

fn host(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

fn inside(ranges: &[IpNet], ip: &IpAddr) -> bool {
    ranges.iter().any(|r| r.contains(ip))
}

fn inside_single(ranges: &[IpNet], ip: &IpAddr) -> bool {
    ranges
        .iter()
        .any(|r| r.prefix_len() == r.max_prefix_len() && r.contains(ip))
}

/// What the Service's EndpointSlices say about readiness.
#[derive(Default)]
struct Readiness {
    /// A ready endpoint on this node.
    local: bool,
    /// A ready endpoint anywhere.
    any: bool,
}

fn readiness(service: &Service, slices: &[&EndpointSlice], node: &str) -> Readiness {
    let mut r = Readiness::default();
    for slice in slices {
        // Only slices of one of the Service's families count.
        let Some(family) = slice.address_type else {
            continue;
        };
        if !service.ip_families.contains(&family) {
            continue;
        }
        for endpoint in slice.endpoints.iter().filter(|e| e.is_ready()) {
            r.any = true;
            if endpoint.node_name.as_deref() == Some(node) {
                r.local = true;
            }
        }
    }
    r
}

/// The routes of one Service this node advertises.
fn service_routes(
    service: &Service,
    slices: &[&EndpointSlice],
    node: &str,
    ranges: &Ranges<'_>,
    out: &mut BTreeSet<IpNet>,
) {
    if service.service_type == ServiceType::ExternalName || service.cluster_ips.is_empty() {
        return;
    }
    let ready = readiness(service, slices, node);
    let etp = service.external_traffic_policy;
    let single_ip = etp == Some(TrafficPolicy::Cluster)
        && ((service.service_type == ServiceType::LoadBalancer
            && service
                .load_balancer_ip
                .iter()
                .chain(&service.ingress_ips)
                .any(|ip| inside_single(ranges.load_balancer, ip)))
            || service
                .external_ips
                .iter()
                .any(|ip| inside_single(ranges.external, ip)));
    let advertise = if single_ip {
        true
    } else if etp == Some(TrafficPolicy::Local) {
        ready.local
    } else if ranges.aggregation == ServiceLoadBalancerAggregation::Enabled {
        false
    } else {
        ready.any
    };
    let cluster_ips = if service.internal_traffic_policy == Some(TrafficPolicy::Local) {
        ready.local
    } else {
        advertise
    };
    if cluster_ips {
        out.extend(
            service
                .cluster_ips
                .iter()
                .filter(|ip| inside(ranges.cluster, ip))
                .map(|ip| host(*ip)),
        );
    }
    if advertise {
        out.extend(
            service
                .external_ips
                .iter()
                .filter(|ip| inside(ranges.external, ip))
                .map(|ip| host(*ip)),
        );
        out.extend(
            service
                .ingress_ips
                .iter()
                .filter(|ip| inside(ranges.load_balancer, ip))
                .map(|ip| host(*ip)),
        );
    }
}

/// Every per-Service /32 and /128 this node advertises (none when no range is configured).
pub(super) fn routes(cluster: &Cluster, node: &str, ranges: &Ranges<'_>) -> BTreeSet<IpNet> {
    let mut out = BTreeSet::new();
    if ranges.cluster.is_empty() && ranges.external.is_empty() && ranges.load_balancer.is_empty() {
        return out;
    }
    let mut slices: BTreeMap<(&str, &str), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in cluster.endpoint_slices.values() {
        if let Some(service) = &slice.service {
            slices
                .entry((slice.namespace.as_str(), service.as_str()))
                .or_default()
                .push(slice);
        }
    }
    for service in cluster.services.values() {
        let key = (service.namespace.as_str(), service.name.as_str());
        let of_service = slices.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        service_routes(service, of_service, node, ranges, &mut out);
    }
    out
}
