//! BIRD-style protocol names for peers, as Calico names them and its tools parse them
//! (calico-behaviour.md §2): `Mesh_<ip>`, `Global_<ip>[_port_<n>]`, `Node_<ip>[_port_<n>]`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Why a peering exists, as encoded in its protocol name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerKind {
    /// Node-to-node full mesh.
    Mesh,
    /// A global BGPPeer (no `node`/`nodeSelector`).
    Global,
    /// A BGPPeer selecting this node.
    Node,
}

impl PeerKind {
    /// The name prefix: `Mesh`, `Global` or `Node`.
    pub fn prefix(self) -> &'static str {
        match self {
            PeerKind::Mesh => "Mesh",
            PeerKind::Global => "Global",
            PeerKind::Node => "Node",
        }
    }

    /// The type `calicoctl node status` displays.
    pub fn calico_display(self) -> &'static str {
        match self {
            PeerKind::Mesh => "node-to-node mesh",
            PeerKind::Global => "global",
            PeerKind::Node => "node specific",
        }
    }
}

/// The protocol name of a peering: the kind, the address with `.`/`:` replaced by `_`, and
/// `_port_<n>` when a port is configured explicitly (Global and Node peers only, as Calico's
/// templates do).
pub fn bird_protocol_name(kind: PeerKind, address: IpAddr, port: Option<u16>) -> String {
    let ip = address.to_string().replace(['.', ':'], "_");
    match (kind, port) {
        (PeerKind::Global | PeerKind::Node, Some(port)) => {
            format!("{}_{ip}_port_{port}", kind.prefix())
        }
        _ => format!("{}_{ip}", kind.prefix()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_calico_makes_them() {
        let v4: IpAddr = "10.0.0.2".parse().unwrap();
        let v6: IpAddr = "fd80:24e2:f998:72d7::2".parse().unwrap();
        assert_eq!(
            bird_protocol_name(PeerKind::Mesh, v4, None),
            "Mesh_10_0_0_2"
        );
        assert_eq!(
            bird_protocol_name(PeerKind::Mesh, v4, Some(1790)),
            "Mesh_10_0_0_2"
        );
        assert_eq!(
            bird_protocol_name(PeerKind::Global, v4, Some(1790)),
            "Global_10_0_0_2_port_1790"
        );
        assert_eq!(
            bird_protocol_name(PeerKind::Node, v6, None),
            "Node_fd80_24e2_f998_72d7__2"
        );
    }
}
