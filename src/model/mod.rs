//! Calico resources (serde types) and the Calico selector language.
//!
//! [`load`] reads the YAML manifests users apply with `calicoctl` / `kubectl` (multi-document,
//! `projectcalico.org/v3` or the `crd.projectcalico.org/v1` storage form, core v1 `Node` and
//! `Secret`, `Service`, `discovery.k8s.io/v1` `EndpointSlice`) into a [`Cluster`]: the snapshot
//! that the pure plan module reads.

pub(crate) mod load;
mod resources;
pub mod selector;
mod services;
mod values;

use std::collections::BTreeMap;

pub use load::{
    Document, LoadError, ResourceProblem, add_resource, load_documents, load_paths, load_resources,
};
pub use resources::*;
pub use selector::{Selector, SelectorError};
pub use services::{
    Endpoint, EndpointSlice, IpFamily, SERVICE_NAME_LABEL, Service, ServiceType, TrafficPolicy,
};
pub use values::{AsNumber, Community, DurationSecs, LooseBool, NodeAddress, PeerAddress};

/// Annotation on v1 CRDs that carries the v3 object's own labels and annotations as JSON.
pub const V1_METADATA_ANNOTATION: &str = "projectcalico.org/metadata";
/// Node label that keeps service ranges from being advertised by the node.
pub const EXCLUDE_FROM_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// Every Calico resource tern reads, by name: one consistent snapshot of the datastore.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cluster {
    /// BGPConfigurations (`default`, `node.<name>`).
    pub bgp_configurations: BTreeMap<String, BgpConfiguration>,
    /// BGPPeers.
    pub bgp_peers: BTreeMap<String, BgpPeer>,
    /// BGPFilters.
    pub bgp_filters: BTreeMap<String, BgpFilter>,
    /// Nodes.
    pub nodes: BTreeMap<String, Node>,
    /// IPPools.
    pub ip_pools: BTreeMap<String, IpPool>,
    /// BlockAffinities.
    pub block_affinities: BTreeMap<String, BlockAffinity>,
    /// FelixConfigurations (`default` matters).
    pub felix_configurations: BTreeMap<String, FelixConfiguration>,
    /// Secrets by (namespace, name).
    pub secrets: BTreeMap<(String, String), Secret>,
    /// Kubernetes Services by (namespace, name), for service IP advertisement.
    pub services: BTreeMap<(String, String), Service>,
    /// Kubernetes EndpointSlices by (namespace, name).
    pub endpoint_slices: BTreeMap<(String, String), EndpointSlice>,
    /// Things skipped or ignored while loading (unknown kinds, unknown fields, duplicates).
    pub notes: Vec<String>,
    /// Resources (or documents) that could not be used and were skipped; the rest loaded.
    pub problems: Vec<ResourceProblem>,
    /// Unknown fields in the spec of a BGP resource and unknown kinds in a Calico API group,
    /// one line each: calicoctl refuses them, the daemon ignores them with a warning and
    /// `tern check` fails on them.
    pub unknown: Vec<String>,
}

impl Cluster {
    /// The global BGPConfiguration (`default`), if present.
    pub fn global_bgp_configuration(&self) -> Option<&BgpConfigurationSpec> {
        self.bgp_configurations.get("default").map(|c| &c.spec)
    }

    /// Adds clones of everything `other` holds (a later entry of the same name replaces an
    /// earlier one): how the Kubernetes datastore assembles its snapshot from objects parsed
    /// once each.
    pub fn absorb(&mut self, other: &Cluster) {
        fn extend<K: Ord + Clone, V: Clone>(into: &mut BTreeMap<K, V>, from: &BTreeMap<K, V>) {
            into.extend(from.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        extend(&mut self.bgp_configurations, &other.bgp_configurations);
        extend(&mut self.bgp_peers, &other.bgp_peers);
        extend(&mut self.bgp_filters, &other.bgp_filters);
        extend(&mut self.nodes, &other.nodes);
        extend(&mut self.ip_pools, &other.ip_pools);
        extend(&mut self.block_affinities, &other.block_affinities);
        extend(&mut self.felix_configurations, &other.felix_configurations);
        extend(&mut self.secrets, &other.secrets);
        extend(&mut self.services, &other.services);
        extend(&mut self.endpoint_slices, &other.endpoint_slices);
        self.notes.extend(other.notes.iter().cloned());
        self.problems.extend(other.problems.iter().cloned());
        self.unknown.extend(other.unknown.iter().cloned());
    }

    /// The per-node BGPConfiguration (`node.<name>`), if present.
    pub fn node_bgp_configuration(&self, node: &str) -> Option<&BgpConfigurationSpec> {
        self.bgp_configurations
            .get(&format!("node.{node}"))
            .map(|c| &c.spec)
    }
}
