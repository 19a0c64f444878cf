//! Kubernetes Services and EndpointSlices, as much as service IP advertisement reads
//! (confd `routes.go`): a Service's type, addresses and traffic policies, and for each
//! EndpointSlice its Service, address family and endpoints (node and readiness).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::resources::ObjectMeta;

/// The label of an EndpointSlice that names its Service (`discoveryv1.LabelServiceName`).
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// `spec.type` of a Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum ServiceType {
    /// `ClusterIP` (the default).
    #[default]
    ClusterIP,
    /// `NodePort`.
    NodePort,
    /// `LoadBalancer`.
    LoadBalancer,
    /// `ExternalName`: never advertised.
    ExternalName,
}

/// `externalTrafficPolicy` / `internalTrafficPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum TrafficPolicy {
    /// Any endpoint in the cluster.
    Cluster,
    /// Only endpoints on the node the traffic arrives at.
    Local,
}

/// An IP family (`spec.ipFamilies`, an EndpointSlice's `addressType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum IpFamily {
    /// IPv4.
    IPv4,
    /// IPv6.
    IPv6,
}

impl IpFamily {
    /// The family of an address.
    pub fn of(ip: &IpAddr) -> IpFamily {
        if ip.is_ipv4() {
            IpFamily::IPv4
        } else {
            IpFamily::IPv6
        }
    }
}

/// A Service, reduced to what advertisement needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.type`.
    pub service_type: ServiceType,
    /// `spec.clusterIPs` (else `spec.clusterIP`); empty for a headless Service (`None`) or one
    /// without a cluster IP.
    pub cluster_ips: Vec<IpAddr>,
    /// `spec.externalIPs`.
    pub external_ips: Vec<IpAddr>,
    /// `spec.loadBalancerIP` (deprecated, still read by confd for single-address ranges).
    pub load_balancer_ip: Option<IpAddr>,
    /// `status.loadBalancer.ingress[].ip`.
    pub ingress_ips: Vec<IpAddr>,
    /// `spec.externalTrafficPolicy` (unset on ClusterIP Services).
    pub external_traffic_policy: Option<TrafficPolicy>,
    /// `spec.internalTrafficPolicy`.
    pub internal_traffic_policy: Option<TrafficPolicy>,
    /// `spec.ipFamilies`; when the manifest has none, the families of its cluster IPs (what
    /// the API server fills in).
    pub ip_families: Vec<IpFamily>,
}

/// One endpoint of an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// `nodeName`.
    pub node_name: Option<String>,
    /// `conditions.ready`; unset means ready (EndpointSlice API).
    pub ready: Option<bool>,
}

impl Endpoint {
    /// Ready (an unset condition counts as ready).
    pub fn is_ready(&self) -> bool {
        self.ready != Some(false)
    }
}

/// An EndpointSlice, reduced to what advertisement needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSlice {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Its Service (label `kubernetes.io/service-name`), in the same namespace.
    pub service: Option<String>,
    /// `addressType`; `None` for `FQDN` (never matches a Service's family).
    pub address_type: Option<IpFamily>,
    /// Endpoints.
    pub endpoints: Vec<Endpoint>,
}

/// A Service manifest (core v1).
#[derive(Debug, Deserialize)]
pub(crate) struct ServiceManifest {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: ServiceSpec,
    #[serde(default)]
    status: ServiceStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceSpec {
    #[serde(rename = "type", default)]
    service_type: ServiceType,
    #[serde(rename = "clusterIP")]
    cluster_ip: Option<String>,
    #[serde(rename = "clusterIPs", default)]
    cluster_ips: Vec<String>,
    #[serde(rename = "externalIPs", default)]
    external_ips: Vec<IpAddr>,
    #[serde(rename = "loadBalancerIP")]
    load_balancer_ip: Option<String>,
    external_traffic_policy: Option<TrafficPolicy>,
    internal_traffic_policy: Option<TrafficPolicy>,
    #[serde(default)]
    ip_families: Vec<IpFamily>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceStatus {
    #[serde(default)]
    load_balancer: LoadBalancerStatus,
}

#[derive(Debug, Default, Deserialize)]
struct LoadBalancerStatus {
    #[serde(default)]
    ingress: Vec<LoadBalancerIngress>,
}

#[derive(Debug, Default, Deserialize)]
struct LoadBalancerIngress {
    ip: Option<IpAddr>,
}

/// An address field that may be empty or `None`: (field path, value).
fn optional_ip(field: &str, value: &str) -> Result<Option<IpAddr>, (String, String)> {
    match value.trim() {
        "" | "None" => Ok(None),
        v => v
            .parse()
            .map(Some)
            .map_err(|_| (field.to_string(), format!("= '{v}' (invalid IP address)"))),
    }
}

impl ServiceManifest {
    /// The Service in `default_namespace` unless the manifest names one; an error is the
    /// field path and what is wrong.
    pub(crate) fn into_service(self, default_namespace: &str) -> Result<Service, (String, String)> {
        let spec = self.spec;
        let mut cluster_ips = Vec::new();
        if spec.cluster_ips.is_empty() {
            if let Some(ip) = spec.cluster_ip.as_deref() {
                cluster_ips.extend(optional_ip("spec.clusterIP", ip)?);
            }
        } else {
            for (i, ip) in spec.cluster_ips.iter().enumerate() {
                cluster_ips.extend(optional_ip(&format!("spec.clusterIPs[{i}]"), ip)?);
            }
        }
        let load_balancer_ip = match spec.load_balancer_ip.as_deref() {
            Some(ip) => optional_ip("spec.loadBalancerIP", ip)?,
            None => None,
        };
        let mut ip_families = spec.ip_families;
        if ip_families.is_empty() {
            for ip in &cluster_ips {
                let family = IpFamily::of(ip);
                if !ip_families.contains(&family) {
                    ip_families.push(family);
                }
            }
        }
        Ok(Service {
            namespace: self
                .metadata
                .namespace
                .unwrap_or_else(|| default_namespace.to_string()),
            name: self.metadata.name,
            service_type: spec.service_type,
            cluster_ips,
            external_ips: spec.external_ips,
            load_balancer_ip,
            ingress_ips: self
                .status
                .load_balancer
                .ingress
                .into_iter()
                .filter_map(|i| i.ip)
                .collect(),
            external_traffic_policy: spec.external_traffic_policy,
            internal_traffic_policy: spec.internal_traffic_policy,
            ip_families,
        })
    }
}

/// An EndpointSlice manifest (`discovery.k8s.io/v1`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EndpointSliceManifest {
    #[serde(default)]
    metadata: ObjectMeta,
    address_type: String,
    #[serde(default)]
    endpoints: Vec<EndpointManifest>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EndpointManifest {
    node_name: Option<String>,
    #[serde(default)]
    conditions: EndpointConditions,
}

#[derive(Debug, Default, Deserialize)]
struct EndpointConditions {
    ready: Option<bool>,
}

impl EndpointSliceManifest {
    /// The EndpointSlice in `default_namespace` unless the manifest names one.
    pub(crate) fn into_slice(
        self,
        default_namespace: &str,
    ) -> Result<EndpointSlice, (String, String)> {
        let address_type = match self.address_type.as_str() {
            "IPv4" => Some(IpFamily::IPv4),
            "IPv6" => Some(IpFamily::IPv6),
            "FQDN" => None,
            other => {
                return Err((
                    "addressType".into(),
                    format!("= '{other}' (must be one of IPv4, IPv6, FQDN)"),
                ));
            }
        };
        Ok(EndpointSlice {
            namespace: self
                .metadata
                .namespace
                .unwrap_or_else(|| default_namespace.to_string()),
            service: self.metadata.labels.get(SERVICE_NAME_LABEL).cloned(),
            name: self.metadata.name,
            address_type,
            endpoints: self
                .endpoints
                .into_iter()
                .map(|e| Endpoint {
                    node_name: e.node_name,
                    ready: e.conditions.ready,
                })
                .collect(),
        })
    }
}
