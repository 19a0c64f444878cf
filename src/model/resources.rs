//! Typed Calico resources (`projectcalico.org/v3` field names) as tern reads them.
//!
//! Specs deserialize with serde from the manifests users apply; fields tern does not use are
//! still listed where Calico defines them so that a typo in a field name is reported (as an
//! ignored field) rather than silently changing behaviour.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::selector::Selector;
use super::values::{AsNumber, Community, DurationSecs, LooseBool, NodeAddress, PeerAddress};

/// Object metadata: the parts tern uses. On v1 CRDs the v3 labels/annotations have already been
/// unpacked from the `projectcalico.org/metadata` annotation by the loader.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Resource name.
    #[serde(default)]
    pub name: String,
    /// Namespace (Secrets only).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Labels (values YAML typed as booleans or numbers are read as strings, as Calico does).
    #[serde(default, deserialize_with = "super::values::string_map")]
    pub labels: BTreeMap<String, String>,
    /// Annotations (values read as strings, like labels).
    #[serde(default, deserialize_with = "super::values::string_map")]
    pub annotations: BTreeMap<String, String>,
}

/// A reference to one key of a Kubernetes Secret (`secretKeyRef`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key inside the secret's data.
    pub key: String,
    /// `optional` (accepted, not used: a missing password always fails closed).
    #[serde(default, skip_serializing)]
    pub optional: Option<bool>,
}

/// `password` / `nodeMeshPassword`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpPassword {
    /// The secret holding the password.
    pub secret_key_ref: Option<SecretKeyRef>,
}

/// BGPConfiguration `bindMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
pub enum BindMode {
    /// Listen on all addresses.
    #[default]
    None,
    /// Listen on the node's IP only.
    NodeIP,
}

/// `programClusterRoutes`: which pools' cluster routes the BGP daemon programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum ProgramClusterRoutes {
    /// IPIP and unencapsulated pools.
    Enabled,
    /// None.
    Disabled,
    /// IPIP pools only.
    EnabledIPIPOnly,
    /// Unencapsulated pools only (Calico's BGP default from v3.33).
    EnabledNoEncapOnly,
}

impl ProgramClusterRoutes {
    /// Whether the owner covers IPIP pools.
    pub fn covers_ipip(self) -> bool {
        matches!(self, Self::Enabled | Self::EnabledIPIPOnly)
    }
    /// Whether the owner covers unencapsulated pools.
    pub fn covers_no_encap(self) -> bool {
        matches!(self, Self::Enabled | Self::EnabledNoEncapOnly)
    }
}

/// `serviceLoadBalancerAggregation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
pub enum ServiceLoadBalancerAggregation {
    /// Advertise configured LB ranges from every node (default).
    #[default]
    Enabled,
    /// Advertise per-service /32s only (needs the Kubernetes service watcher).
    Disabled,
}

/// A `{cidr}` entry of `serviceClusterIPs` / `serviceExternalIPs` / `serviceLoadBalancerIPs`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CidrBlock {
    /// The range (entries without one are ignored, as in Calico).
    pub cidr: Option<IpNet>,
}

/// A named community (`communities[]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamedCommunity {
    /// Name used by `prefixAdvertisements`.
    pub name: String,
    /// `a:b` or `a:b:c`.
    pub value: Community,
}

/// A `prefixAdvertisements[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixAdvertisement {
    /// Routes inside this CIDR get the communities.
    pub cidr: IpNet,
    /// Community values or names from `communities[]`.
    #[serde(default)]
    pub communities: Vec<String>,
}

/// BGPConfiguration spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpConfigurationSpec {
    /// BIRD log level (accepted; tern's own logging is configured in its TOML).
    pub log_severity_screen: Option<String>,
    /// Full node-to-node mesh (default true).
    pub node_to_node_mesh_enabled: Option<bool>,
    /// Default AS (64512).
    #[serde(rename = "asNumber")]
    pub as_number: Option<AsNumber>,
    /// LoadBalancer service ranges.
    #[serde(rename = "serviceLoadBalancerIPs", default)]
    pub service_load_balancer_ips: Vec<CidrBlock>,
    /// External service ranges.
    #[serde(rename = "serviceExternalIPs", default)]
    pub service_external_ips: Vec<CidrBlock>,
    /// Cluster service ranges.
    #[serde(rename = "serviceClusterIPs", default)]
    pub service_cluster_ips: Vec<CidrBlock>,
    /// Whether LB ranges are advertised as ranges.
    pub service_load_balancer_aggregation: Option<ServiceLoadBalancerAggregation>,
    /// Named communities.
    #[serde(default)]
    pub communities: Vec<NamedCommunity>,
    /// Communities to attach to routes inside CIDRs.
    #[serde(default)]
    pub prefix_advertisements: Vec<PrefixAdvertisement>,
    /// BGP listen port (default 179).
    pub listen_port: Option<u16>,
    /// Password for mesh sessions.
    pub node_mesh_password: Option<BgpPassword>,
    /// Graceful-restart time for mesh sessions.
    pub node_mesh_max_restart_time: Option<DurationSecs>,
    /// Listen on all addresses or the node IP.
    pub bind_mode: Option<BindMode>,
    /// Interfaces whose routes are not learned.
    #[serde(default)]
    pub ignored_interfaces: Vec<String>,
    /// Local workload peering address (v4); accepted, not used.
    #[serde(rename = "localWorkloadPeeringIPV4")]
    pub local_workload_peering_ipv4: Option<String>,
    /// Local workload peering address (v6); accepted, not used.
    #[serde(rename = "localWorkloadPeeringIPV6")]
    pub local_workload_peering_ipv6: Option<String>,
    /// Which pools' cluster routes the BGP daemon programs.
    pub program_cluster_routes: Option<ProgramClusterRoutes>,
    /// Normal IPv4 route priority (metric), default 1024.
    pub ipv4_normal_route_priority: Option<u32>,
    /// Normal IPv6 route priority (metric), default 1024.
    pub ipv6_normal_route_priority: Option<u32>,
}

/// BGPPeer `nextHopMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
pub enum NextHopMode {
    /// BIRD's default behaviour.
    #[default]
    Auto,
    /// Always rewrite the next hop to self.
    #[serde(rename = "Self")]
    SelfMode,
    /// Never rewrite the next hop.
    Keep,
}

/// BGPPeer `sourceAddress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
pub enum SourceAddress {
    /// Use the node's IP as the session's source address (default).
    #[default]
    UseNodeIP,
    /// Let the kernel choose.
    None,
}

/// BGPPeer `reversePeering`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
pub enum ReversePeering {
    /// Generate the reverse peering on the selected nodes.
    #[default]
    Auto,
    /// Do not.
    Manual,
}

/// BGPPeer spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpPeerSpec {
    /// The local node this peering applies to.
    #[serde(default)]
    pub node: String,
    /// Local nodes by selector.
    pub node_selector: Option<Selector>,
    /// Peer address (`ip`, `ip:port`, `[v6]:port`).
    #[serde(rename = "peerIP")]
    pub peer_ip: Option<PeerAddress>,
    /// Peer AS.
    #[serde(rename = "asNumber", default)]
    pub as_number: AsNumber,
    /// Local AS override.
    #[serde(rename = "localASNumber")]
    pub local_as_number: Option<AsNumber>,
    /// Peer Calico nodes by selector.
    pub peer_selector: Option<Selector>,
    /// Legacy: keep the next hop (eBGP only).
    #[serde(default)]
    pub keep_original_next_hop: bool,
    /// Next-hop handling.
    pub next_hop_mode: Option<NextHopMode>,
    /// TCP-MD5 password.
    pub password: Option<BgpPassword>,
    /// Session source address.
    pub source_address: Option<SourceAddress>,
    /// Graceful-restart time.
    pub max_restart_time: Option<DurationSecs>,
    /// Keepalive time.
    pub keepalive_time: Option<DurationSecs>,
    /// Allow the local AS this many times in AS_PATH.
    #[serde(rename = "numAllowedLocalASNumbers")]
    pub num_allowed_local_as_numbers: Option<u32>,
    /// GTSM hop count.
    pub ttl_security: Option<u8>,
    /// Gateway for a static route to the peer.
    pub reachable_by: Option<IpAddr>,
    /// BGPFilter names, in order.
    #[serde(default)]
    pub filters: Vec<String>,
    /// Local workload peering (not supported by tern yet; such peers are skipped with a warning).
    pub local_workload_selector: Option<Selector>,
    /// Automatic reverse peering.
    pub reverse_peering: Option<ReversePeering>,
}

/// BGPFilter `matchOperator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum MatchOperator {
    /// Prefix equals the CIDR.
    Equal,
    /// Prefix differs from the CIDR.
    NotEqual,
    /// Prefix inside the CIDR.
    In,
    /// Prefix not inside the CIDR.
    NotIn,
}

/// BGPFilter rule action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum FilterAction {
    /// Accept the route (after the rule's operations).
    Accept,
    /// Reject the route.
    Reject,
}

/// BGPFilter `peerType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum FilterPeerType {
    /// Peer AS differs from the (effective) local AS.
    #[serde(rename = "eBGP")]
    Ebgp,
    /// Same AS.
    #[serde(rename = "iBGP")]
    Ibgp,
}

/// BGPFilter `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum FilterSource {
    /// Routes learned from BGP peers.
    RemotePeers,
}

/// `prefixLength {min, max}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixLengthRange {
    /// Minimum length.
    pub min: Option<u8>,
    /// Maximum length.
    pub max: Option<u8>,
}

/// `communities: {values: [..]}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CommunityMatch {
    /// Values; Calico allows exactly one.
    pub values: Vec<Community>,
}

/// `addCommunity`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AddCommunity {
    /// Community to add.
    pub value: Community,
}

/// `prependASPath`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrependAsPath {
    /// ASNs to put in front of the path, in this order.
    pub prefix: Vec<AsNumber>,
}

/// `setPriority`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SetPriority {
    /// New priority (1..=2147483646).
    pub value: u32,
}

/// One operation of an accepting rule; exactly one field is set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FilterOperation {
    /// Add a community.
    pub add_community: Option<AddCommunity>,
    /// Prepend to AS_PATH.
    #[serde(rename = "prependASPath")]
    pub prepend_as_path: Option<PrependAsPath>,
    /// Set the priority (local preference).
    pub set_priority: Option<SetPriority>,
}

/// A BGPFilter rule (v4 and v6 rules share the shape).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FilterRule {
    /// Prefix to compare with.
    pub cidr: Option<IpNet>,
    /// Prefix length range (with `cidr`).
    pub prefix_length: Option<PrefixLengthRange>,
    /// Route source.
    pub source: Option<FilterSource>,
    /// Interface glob.
    pub interface: Option<String>,
    /// How `cidr` is compared.
    pub match_operator: Option<MatchOperator>,
    /// eBGP / iBGP.
    pub peer_type: Option<FilterPeerType>,
    /// Community the route must carry.
    pub communities: Option<CommunityMatch>,
    /// AS_PATH must start with these.
    #[serde(default)]
    pub as_path_prefix: Vec<AsNumber>,
    /// Priority the route must have.
    pub priority: Option<u32>,
    /// Accept or Reject.
    pub action: FilterAction,
    /// Operations applied on Accept.
    #[serde(default)]
    pub operations: Vec<FilterOperation>,
}

/// BGPFilter spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpFilterSpec {
    /// IPv4 export rules.
    #[serde(rename = "exportV4", default)]
    pub export_v4: Vec<FilterRule>,
    /// IPv4 import rules.
    #[serde(rename = "importV4", default)]
    pub import_v4: Vec<FilterRule>,
    /// IPv6 export rules.
    #[serde(rename = "exportV6", default)]
    pub export_v6: Vec<FilterRule>,
    /// IPv6 import rules.
    #[serde(rename = "importV6", default)]
    pub import_v6: Vec<FilterRule>,
}

/// IPPool `ipipMode` / `vxlanMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
pub enum EncapMode {
    /// No encapsulation.
    #[default]
    Never,
    /// Always encapsulate.
    Always,
    /// Encapsulate only across subnets.
    CrossSubnet,
}

/// IPPool spec.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpPoolSpec {
    /// The pool.
    pub cidr: IpNet,
    /// VXLAN mode.
    #[serde(default)]
    pub vxlan_mode: EncapMode,
    /// IP-in-IP mode.
    #[serde(default)]
    pub ipip_mode: EncapMode,
    /// SNAT (no BGP effect).
    #[serde(default)]
    pub nat_outgoing: bool,
    /// No new allocations (still exported).
    #[serde(default)]
    pub disabled: bool,
    /// Do not export routes inside this pool.
    #[serde(rename = "disableBGPExport", default)]
    pub disable_bgp_export: bool,
    /// Block size (default 26 for IPv4, 122 for IPv6).
    pub block_size: Option<u8>,
    /// Nodes allowed to allocate from this pool.
    pub node_selector: Option<Selector>,
    /// Namespaces (no BGP effect).
    pub namespace_selector: Option<String>,
    /// Allowed uses (no BGP effect).
    #[serde(default)]
    pub allowed_uses: Vec<String>,
    /// Assignment mode (no BGP effect).
    pub assignment_mode: Option<String>,
    /// Legacy v1 IPIP block (accepted, not used).
    pub ipip: Option<serde_json::Value>,
}

/// BlockAffinity `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum AffinityState {
    /// The node owns the block. An empty or missing state (how older Calico versions store
    /// affinities) is "implicitly confirmed", as confd reads it.
    #[default]
    #[serde(alias = "")]
    Confirmed,
    /// Being claimed.
    Pending,
    /// Being released.
    PendingDeletion,
}

/// BlockAffinity spec.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockAffinitySpec {
    /// Affinity state (missing or `""`: implicitly confirmed).
    #[serde(default)]
    pub state: AffinityState,
    /// Owning node.
    pub node: String,
    /// `host` (default) or `virtual`.
    #[serde(rename = "type", default)]
    pub affinity_type: Option<String>,
    /// The block.
    pub cidr: IpNet,
    /// Marked for deletion (a string in the v1 CRD).
    #[serde(default, skip_serializing)]
    pub deleted: LooseBool,
}

/// FelixConfiguration spec: only `programClusterRoutes` matters to tern; other fields are
/// ignored without a note.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FelixConfigurationSpec {
    /// Which pools' cluster routes Felix programs (Felix default `EnabledIPIPOnly`).
    pub program_cluster_routes: Option<ProgramClusterRoutes>,
}

/// Calico Node `spec.bgp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeBgpSpec {
    /// IPv4 address with subnet prefix length.
    pub ipv4_address: Option<NodeAddress>,
    /// IPv6 address with subnet prefix length.
    pub ipv6_address: Option<NodeAddress>,
    /// Node AS.
    #[serde(rename = "asNumber")]
    pub as_number: Option<AsNumber>,
    /// Route reflector cluster id (makes the node a route reflector).
    #[serde(rename = "routeReflectorClusterID")]
    pub route_reflector_cluster_id: Option<Ipv4Addr>,
    /// IPIP tunnel address (no BGP effect).
    #[serde(rename = "ipv4IPIPTunnelAddr")]
    pub ipv4_ipip_tunnel_addr: Option<IpAddr>,
}

/// Calico Node spec (only `bgp` matters; other fields are ignored without a note).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSpec {
    /// BGP settings.
    pub bgp: Option<NodeBgpSpec>,
}

/// A Kubernetes Secret: `data` (base64) and `stringData`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretBody {
    /// Base64 values.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    /// Plain values (win over `data`, as the API server merges them).
    #[serde(default)]
    pub string_data: BTreeMap<String, String>,
}

/// A resource with metadata and a spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource<S> {
    /// Metadata (v3 labels/annotations).
    pub metadata: ObjectMeta,
    /// The spec.
    pub spec: S,
}

/// BGPConfiguration resource.
pub type BgpConfiguration = Resource<BgpConfigurationSpec>;
/// BGPPeer resource.
pub type BgpPeer = Resource<BgpPeerSpec>;
/// BGPFilter resource.
pub type BgpFilter = Resource<BgpFilterSpec>;
/// IPPool resource.
pub type IpPool = Resource<IpPoolSpec>;
/// BlockAffinity resource.
pub type BlockAffinity = Resource<BlockAffinitySpec>;
/// FelixConfiguration resource.
pub type FelixConfiguration = Resource<FelixConfigurationSpec>;
/// Calico Node (from a v3 Node, or a core v1 Node with `projectcalico.org/*` annotations).
pub type Node = Resource<NodeSpec>;

/// A Kubernetes Secret's decoded values. `Debug` does not show them.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Decoded values by key.
    pub values: BTreeMap<String, Vec<u8>>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}
