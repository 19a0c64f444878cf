//! Who peers with whom: mesh, global and node BGPPeers, peerSelector, automatic reverse
//! peerings (confd `updatePeersV1`, `processMeshPeers`, `buildPeerFromData`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use super::{
    DEFAULT_AS, DEFAULT_PORT, MAX_MD5_KEY_LEN, MULTIHOP_TTL, PeerPassword, Peering, PeeringKind,
    PlanOptions, SecretStatus, SecretValue, TtlMode,
};
use crate::model::{
    BgpPassword, BgpPeer, Cluster, NextHopMode, NodeAddress, ReversePeering, SecretKeyRef,
    Selector, SourceAddress,
};

/// What the plan needs to know about one Calico node.
#[derive(Debug, Clone)]
pub(super) struct NodeInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub ipv4: Option<NodeAddress>,
    pub ipv6: Option<NodeAddress>,
    /// The node's own `asNumber`.
    pub as_number: Option<u32>,
    /// Own AS, else the global one.
    pub local_as: u32,
    pub cluster_id: Option<Ipv4Addr>,
}

impl NodeInfo {
    fn address(&self, v6: bool) -> Option<IpAddr> {
        if v6 { self.ipv6 } else { self.ipv4 }.map(|a| a.ip())
    }
}

/// Indexes over the cluster that peer computation uses.
pub(super) struct ClusterView {
    nodes: Vec<NodeInfo>,
    global_as: u32,
    global_listen_port: Option<u16>,
    node_listen_ports: BTreeMap<String, u16>,
    node_ips: BTreeSet<IpAddr>,
}

impl ClusterView {
    pub fn new(cluster: &Cluster) -> ClusterView {
        let global = cluster.global_bgp_configuration();
        let global_as = global.and_then(|c| c.as_number).map_or(DEFAULT_AS, |a| a.0);
        let nodes: Vec<NodeInfo> = cluster
            .nodes
            .values()
            .map(|n| {
                let bgp = n.spec.bgp.clone().unwrap_or_default();
                NodeInfo {
                    name: n.metadata.name.clone(),
                    labels: n.metadata.labels.clone(),
                    ipv4: bgp.ipv4_address,
                    ipv6: bgp.ipv6_address,
                    as_number: bgp.as_number.map(|a| a.0),
                    local_as: bgp.as_number.map_or(global_as, |a| a.0),
                    cluster_id: bgp.route_reflector_cluster_id,
                }
            })
            .collect();
        let node_listen_ports = cluster
            .bgp_configurations
            .iter()
            .filter_map(|(name, c)| {
                let node = name.strip_prefix("node.")?;
                c.spec
                    .listen_port
                    .filter(|&p| p != 0)
                    .map(|p| (node.to_string(), p))
            })
            .collect();
        let node_ips = nodes
            .iter()
            .flat_map(|n| [n.ipv4, n.ipv6])
            .flatten()
            .map(|a| a.ip())
            .collect();
        ClusterView {
            nodes,
            global_as,
            global_listen_port: global.and_then(|c| c.listen_port).filter(|&p| p != 0),
            node_listen_ports,
            node_ips,
        }
    }

    pub fn node(&self, name: &str) -> Option<NodeInfo> {
        self.nodes.iter().find(|n| n.name == name).cloned()
    }

    fn matching<'a>(&'a self, selector: &'a Selector) -> impl Iterator<Item = &'a NodeInfo> + 'a {
        self.nodes
            .iter()
            .filter(move |n| selector.matches(&n.labels))
    }

    /// The port confd would use towards a Calico node: its own listen port, else the global one.
    fn node_port(&self, name: &str) -> Option<u16> {
        self.node_listen_ports
            .get(name)
            .copied()
            .or(self.global_listen_port)
    }

    /// confd `nodesWithIPPortAndAS`, including its port check.
    fn nodes_with_ip_port_as(&self, ip: IpAddr, as_number: u32, port: u16) -> Vec<&NodeInfo> {
        let wanted_as = if as_number == 0 {
            self.global_as
        } else {
            as_number
        };
        self.nodes
            .iter()
            .filter(|n| n.address(false) == Some(ip) || n.address(true) == Some(ip))
            .filter(|n| n.as_number.unwrap_or(self.global_as) == wanted_as)
            .filter(|n| {
                if port == 0 {
                    return true;
                }
                match self.node_listen_ports.get(&n.name) {
                    Some(&node_port) if node_port != port => false,
                    _ => self.global_listen_port.is_none_or(|g| g == port),
                }
            })
            .collect()
    }
}

/// One peering before it is specialised for the local node (confd `backends.BGPPeer`).
#[derive(Debug, Clone)]
struct Candidate {
    ip: IpAddr,
    port: u16,
    as_number: u32,
    local_as: Option<u32>,
    source_address: SourceAddress,
    keep_original_next_hop: bool,
    next_hop_mode: Option<NextHopMode>,
    calico_node: bool,
    ttl_security: u8,
    filters: Vec<String>,
    allow_local_as: u32,
    reachable_by: Option<IpAddr>,
    rr_cluster_id: Option<Ipv4Addr>,
    password: Option<SecretKeyRef>,
    restart_time: Option<u32>,
    keepalive_time: Option<u32>,
    peer_node: Option<String>,
    resource: String,
}

fn secret_ref(p: &Option<BgpPassword>) -> Option<SecretKeyRef> {
    p.as_ref().and_then(|p| p.secret_key_ref.clone())
}

/// confd `nodeAsBGPPeers` + `setPeerConfigFieldsFromV3Resource`.
fn node_as_peers(
    view: &ClusterView,
    node: &NodeInfo,
    v4: bool,
    v6: bool,
    peer: &BgpPeer,
) -> Vec<Candidate> {
    let spec = &peer.spec;
    [(v4, node.ipv4), (v6, node.ipv6)]
        .into_iter()
        .filter_map(|(wanted, addr)| wanted.then_some(addr).flatten())
        .map(|addr| Candidate {
            ip: addr.ip(),
            port: view.node_port(&node.name).unwrap_or(0),
            as_number: node.as_number.unwrap_or(view.global_as),
            local_as: None,
            source_address: spec.source_address.unwrap_or_default(),
            keep_original_next_hop: spec.next_hop_mode.is_none() && spec.keep_original_next_hop,
            next_hop_mode: spec.next_hop_mode,
            calico_node: false,
            ttl_security: spec.ttl_security.unwrap_or(0),
            filters: spec.filters.clone(),
            allow_local_as: 0,
            reachable_by: spec.reachable_by,
            rr_cluster_id: node.cluster_id,
            password: secret_ref(&spec.password),
            restart_time: spec.max_restart_time.map(|d| d.0),
            keepalive_time: spec.keepalive_time.map(|d| d.0),
            peer_node: Some(node.name.clone()),
            resource: peer.metadata.name.clone(),
        })
        .collect()
}

/// The `peerIP` branch of confd `updatePeersV1`.
fn peer_ip_candidate(
    view: &ClusterView,
    peer: &BgpPeer,
    warnings: &mut Vec<String>,
) -> Option<Candidate> {
    let spec = &peer.spec;
    let addr = spec.peer_ip?;
    let mut port = addr.port.unwrap_or(0);
    let calico_nodes = view.nodes_with_ip_port_as(addr.ip, spec.as_number.0, 0);
    if port == 0
        && let Some(first) = calico_nodes.first()
    {
        port = view.node_port(&first.name).unwrap_or(0);
    }
    if let Some(gw) = spec.reachable_by
        && gw.is_ipv6() != addr.ip.is_ipv6()
    {
        warnings.push(format!(
            "BGPPeer {:?} skipped: reachableBy {gw} and peerIP {} are different address families",
            peer.metadata.name, addr.ip
        ));
        return None;
    }
    let node_at_ip = view
        .nodes
        .iter()
        .find(|n| n.address(false) == Some(addr.ip) || n.address(true) == Some(addr.ip));
    // No `asNumber`: peering with a Calico node by address, the AS is that node's (confd matches
    // the node by IP and the global AS, and renders the peering).
    let as_number = match (spec.as_number.0, node_at_ip) {
        (0, Some(node)) => node.as_number.unwrap_or(view.global_as),
        (0, None) => {
            warnings.push(format!(
                "BGPPeer {:?} skipped: asNumber is not set and peerIP {} is not a Calico node's address to take the AS from",
                peer.metadata.name, addr.ip
            ));
            return None;
        }
        (n, _) => n,
    };
    Some(Candidate {
        ip: addr.ip,
        port,
        as_number,
        local_as: spec.local_as_number.map(|a| a.0).filter(|&a| a != 0),
        source_address: spec.source_address.unwrap_or_default(),
        keep_original_next_hop: spec.next_hop_mode.is_none() && spec.keep_original_next_hop,
        next_hop_mode: spec.next_hop_mode,
        calico_node: view.node_ips.contains(&addr.ip),
        ttl_security: spec.ttl_security.unwrap_or(0),
        filters: spec.filters.clone(),
        allow_local_as: spec.num_allowed_local_as_numbers.unwrap_or(0),
        reachable_by: spec.reachable_by,
        rr_cluster_id: None,
        password: secret_ref(&spec.password),
        restart_time: spec.max_restart_time.map(|d| d.0),
        keepalive_time: spec.keepalive_time.map(|d| d.0),
        peer_node: node_at_ip.map(|n| n.name.clone()),
        resource: peer.metadata.name.clone(),
    })
}

fn applies_to(peer: &BgpPeer, node: &NodeInfo) -> bool {
    match &peer.spec.node_selector {
        Some(sel) => sel.matches(&node.labels),
        None => peer.spec.node == node.name,
    }
}

fn is_global(peer: &BgpPeer) -> bool {
    peer.spec.node.is_empty() && peer.spec.node_selector.is_none()
}

/// The emitted peerings for the local node, in confd's first-wins order.
fn emitted(
    view: &ClusterView,
    me: &NodeInfo,
    cluster: &Cluster,
    warnings: &mut Vec<String>,
) -> Vec<(PeeringKind, Candidate)> {
    let mut out: Vec<(PeeringKind, Candidate)> = Vec::new();
    let mut global_keys: HashSet<(IpAddr, u16)> = HashSet::new();
    let mut node_keys: HashSet<(IpAddr, u16)> = HashSet::new();
    let mut emit = |kind: PeeringKind, c: Candidate, out: &mut Vec<(PeeringKind, Candidate)>| {
        let key = (c.ip, c.port);
        match kind {
            PeeringKind::Global => {
                if global_keys.insert(key) {
                    out.push((kind, c));
                }
            }
            _ => {
                if !global_keys.contains(&key) && node_keys.insert(key) {
                    out.push((kind, c));
                }
            }
        }
    };

    for global_pass in [true, false] {
        for peer in cluster.bgp_peers.values() {
            if global_pass != is_global(peer) {
                continue;
            }
            if !global_pass && !applies_to(peer, me) {
                continue;
            }
            if peer.spec.local_workload_selector.is_some() {
                warnings.push(format!(
                    "BGPPeer {:?} skipped: localWorkloadSelector is not supported by tern",
                    peer.metadata.name
                ));
                continue;
            }
            let candidates = match &peer.spec.peer_selector {
                Some(sel) => view
                    .matching(sel)
                    .flat_map(|n| node_as_peers(view, n, true, true, peer))
                    .collect(),
                None => peer_ip_candidate(view, peer, warnings)
                    .into_iter()
                    .collect::<Vec<_>>(),
            };
            let kind = if global_pass {
                PeeringKind::Global
            } else {
                PeeringKind::Node
            };
            for c in candidates {
                emit(kind, c, &mut out);
            }
        }
    }

    // Automatic reverse peerings where the local node is the "remote" end of a BGPPeer.
    for peer in cluster.bgp_peers.values() {
        let spec = &peer.spec;
        if spec.reverse_peering == Some(ReversePeering::Manual)
            || spec.local_workload_selector.is_some()
        {
            continue;
        }
        let (selected, v4, v6) = match (&spec.peer_selector, spec.peer_ip) {
            (Some(sel), _) => (sel.matches(&me.labels), true, true),
            (None, Some(addr)) => {
                let nodes =
                    view.nodes_with_ip_port_as(addr.ip, spec.as_number.0, addr.port.unwrap_or(0));
                (
                    nodes.iter().any(|n| n.name == me.name),
                    addr.ip.is_ipv4(),
                    addr.ip.is_ipv6(),
                )
            }
            (None, None) => (false, false, false),
        };
        if !selected {
            continue;
        }
        let peer_nodes: Vec<&NodeInfo> = match (&spec.node_selector, spec.node.as_str()) {
            (Some(sel), _) => view.matching(sel).collect(),
            (None, "") => view.nodes.iter().collect(),
            (None, name) => view.nodes.iter().filter(|n| n.name == name).collect(),
        };
        for n in peer_nodes {
            for c in node_as_peers(view, n, v4, v6, peer) {
                emit(PeeringKind::Node, c, &mut out);
            }
        }
    }
    out
}

fn ip_name(ip: IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "_")
}

/// Resolves a `secretKeyRef`; a missing or unusable secret fails closed.
fn resolve_password(
    cluster: &Cluster,
    options: &PlanOptions,
    secret: &SecretKeyRef,
) -> PeerPassword {
    let ns = options.secret_namespace.clone();
    let lookup = cluster.secrets.get(&(ns.clone(), secret.name.clone()));
    let (status, value) = match lookup.map(|s| s.values.get(&secret.key)) {
        None => (
            SecretStatus::Unavailable(format!(
                "Secret {ns}/{} not found (wanted key {:?})",
                secret.name, secret.key
            )),
            None,
        ),
        Some(None) => (
            SecretStatus::Unavailable(format!(
                "Secret {ns}/{} has no key {:?}",
                secret.name, secret.key
            )),
            None,
        ),
        Some(Some(v)) if v.is_empty() => {
            (SecretStatus::Unavailable("password is empty".into()), None)
        }
        Some(Some(v)) if v.len() > MAX_MD5_KEY_LEN => (
            SecretStatus::Unavailable(format!(
                "password longer than {MAX_MD5_KEY_LEN} bytes (TCP-MD5 limit)"
            )),
            None,
        ),
        Some(Some(v)) => (SecretStatus::Resolved, Some(SecretValue(v.clone()))),
    };
    PeerPassword {
        namespace: ns,
        secret: secret.clone(),
        status,
        value,
    }
}

fn mesh_peerings(
    view: &ClusterView,
    me: &NodeInfo,
    cluster: &Cluster,
    options: &PlanOptions,
    out: &mut Vec<Peering>,
) {
    let global = cluster.global_bgp_configuration();
    if me.cluster_id.is_some() || global.and_then(|c| c.node_to_node_mesh_enabled) == Some(false) {
        return;
    }
    let password = global
        .and_then(|c| secret_ref(&c.node_mesh_password))
        .map(|s| resolve_password(cluster, options, &s));
    let restart = global
        .and_then(|c| c.node_mesh_max_restart_time)
        .map(|d| d.0);
    for v6 in [false, true] {
        let Some(my_ip) = me.address(v6) else {
            continue;
        };
        for other in &view.nodes {
            let Some(ip) = other.address(v6) else {
                continue;
            };
            if ip == my_ip || other.cluster_id.is_some() {
                continue;
            }
            out.push(Peering {
                name: format!("Mesh_{}", ip_name(ip)),
                kind: PeeringKind::Mesh,
                address: ip,
                port: view.node_port(&other.name).unwrap_or(DEFAULT_PORT),
                peer_as: other.as_number.unwrap_or(view.global_as),
                local_as: me.local_as,
                // Passive when the peer's address sorts after ours *as a string*.
                passive: ip.to_string() > my_ip.to_string(),
                source_address: Some(my_ip),
                password: password.clone(),
                ttl: TtlMode::Multihop { ttl: MULTIHOP_TTL },
                route_reflector_client: false,
                cluster_id: None,
                next_hop: NextHopMode::Auto,
                allow_local_as: None,
                graceful_restart_time: restart,
                keepalive_time: None,
                import_filters: Vec::new(),
                export_filters: Vec::new(),
                reachable_by: None,
                peer_node: Some(other.name.clone()),
                source_resource: None,
            });
        }
    }
}

/// confd `buildPeerFromData`.
fn explicit_peering(
    kind: PeeringKind,
    c: &Candidate,
    me: &NodeInfo,
    cluster: &Cluster,
    options: &PlanOptions,
    warnings: &mut Vec<String>,
) -> Option<Peering> {
    let v6 = c.ip.is_ipv6();
    let Some(my_ip) = me.address(v6) else {
        warnings.push(format!(
            "BGPPeer {:?}: peering with {} skipped: node {} has no IPv{} address",
            c.resource,
            c.ip,
            me.name,
            if v6 { 6 } else { 4 }
        ));
        return None;
    };
    if c.ip == my_ip {
        return None;
    }
    let prefix = if kind == PeeringKind::Global {
        "Global"
    } else {
        "Node"
    };
    let mut name = format!("{prefix}_{}", ip_name(c.ip));
    if c.port > 0 {
        name.push_str(&format!("_port_{}", c.port));
    }
    let local_as = c.local_as.unwrap_or(me.local_as);
    let ibgp = c.as_number == local_as;
    let mut next_hop = match c.next_hop_mode {
        Some(NextHopMode::SelfMode) => NextHopMode::SelfMode,
        Some(NextHopMode::Keep) => NextHopMode::Keep,
        _ => NextHopMode::Auto,
    };
    // Legacy keepOriginalNextHop applies to eBGP peers only.
    if c.keep_original_next_hop && !ibgp {
        next_hop = NextHopMode::Keep;
    }
    let rr_client = ibgp && me.cluster_id.is_some() && c.rr_cluster_id != me.cluster_id;
    let passive =
        kind == PeeringKind::Global && c.calico_node && c.ip.to_string() > my_ip.to_string();
    let (mut import_filters, mut export_filters) = (Vec::new(), Vec::new());
    for f in &c.filters {
        match cluster.bgp_filters.get(f) {
            Some(filter) => {
                let (imp, exp) = if v6 {
                    (&filter.spec.import_v6, &filter.spec.export_v6)
                } else {
                    (&filter.spec.import_v4, &filter.spec.export_v4)
                };
                if !imp.is_empty() {
                    import_filters.push(f.clone());
                }
                if !exp.is_empty() {
                    export_filters.push(f.clone());
                }
            }
            None => warnings.push(format!(
                "BGPPeer {:?} references BGPFilter {f:?}, which does not exist",
                c.resource
            )),
        }
    }
    Some(Peering {
        name,
        kind,
        address: c.ip,
        port: if c.port > 0 { c.port } else { DEFAULT_PORT },
        peer_as: c.as_number,
        local_as,
        passive,
        source_address: (c.source_address == SourceAddress::UseNodeIP).then_some(my_ip),
        password: c
            .password
            .as_ref()
            .map(|s| resolve_password(cluster, options, s)),
        ttl: if c.ttl_security > 0 {
            TtlMode::Security {
                hops: c.ttl_security,
            }
        } else {
            TtlMode::Multihop { ttl: MULTIHOP_TTL }
        },
        route_reflector_client: rr_client,
        cluster_id: if rr_client { me.cluster_id } else { None },
        next_hop,
        allow_local_as: (c.allow_local_as > 0).then_some(c.allow_local_as),
        graceful_restart_time: c.restart_time,
        keepalive_time: c.keepalive_time,
        import_filters,
        export_filters,
        reachable_by: c.reachable_by,
        peer_node: c.peer_node.clone(),
        source_resource: Some(c.resource.clone()),
    })
}

/// Every peering of the local node, sorted by name.
pub(super) fn peerings(
    view: &ClusterView,
    me: &NodeInfo,
    cluster: &Cluster,
    options: &PlanOptions,
    warnings: &mut Vec<String>,
) -> Vec<Peering> {
    let mut out = Vec::new();
    mesh_peerings(view, me, cluster, options, &mut out);
    for (kind, c) in emitted(view, me, cluster, warnings) {
        if let Some(p) = explicit_peering(kind, &c, me, cluster, options, warnings) {
            out.push(p);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    // Two BGPPeers can yield the same BIRD name (e.g. a v4 peer on different ports is
    // distinct, but a global and a node peering to one address are not deduplicated by
    // confd either); keep the first, as BIRD would refuse a duplicate protocol name.
    out.dedup_by(|b, a| {
        let dup = a.name == b.name;
        if dup {
            warnings.push(format!("duplicate peering {} dropped", b.name));
        }
        dup
    });
    for p in &out {
        if let Some(PeerPassword {
            status: SecretStatus::Unavailable(e),
            ..
        }) = &p.password
        {
            let referrer = match &p.source_resource {
                Some(peer) => format!("spec.password of BGPPeer {peer:?}"),
                None => "spec.nodeMeshPassword of BGPConfiguration \"default\"".to_string(),
            };
            warnings.push(format!(
                "peering {} will not start: TCP-MD5 password unavailable: {e}, referenced by {referrer}; \
                 tern keeps the session down rather than peer without it (confd would drop the password and peer)",
                p.name
            ));
        }
    }
    out
}
