// Shared by the fuzz targets: an arbitrary peer (AS, families, capabilities) whose OPEN the
// session accepts, so that arbitrary UPDATEs are decoded with an arbitrary negotiated context.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};

use arbitrary::Arbitrary;
use bgp_proto::capability::{AddPathFamily, Capability};
use bgp_proto::iana::AddPathMode as WireAddPath;
use bgp_proto::{Context, Family, Message, Open};
use tern::session::{AddPathMode, PeerConfig, StopReason};

/// The KEEPALIVE message.
pub const KEEPALIVE: [u8; 19] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0x00, 0x13, 0x04,
];

pub const LOCAL_AS: u32 = 64512;
pub const PEER_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const LOCAL_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

#[derive(Debug, Arbitrary)]
pub struct FuzzPeer {
    /// Internal (same AS) or external.
    pub internal: bool,
    /// The peer announces the 4-octet AS capability.
    pub four_octet_as: bool,
    /// The peer announces extended messages.
    pub extended_message: bool,
    /// Bits: IPv4 unicast, IPv6 unicast offered (by both sides).
    pub families: u8,
    /// Bits per family: the peer sends path ids / receives them.
    pub add_path: u8,
    /// The peer announces graceful restart.
    pub graceful_restart: bool,
    /// Hold time the peer offers (0 or >= 3 are valid).
    pub hold_time: u8,
}

impl FuzzPeer {
    pub fn peer_as(&self) -> u32 {
        if self.internal {
            LOCAL_AS
        } else if self.four_octet_as {
            4_200_000_000
        } else {
            65001
        }
    }

    pub fn families(&self) -> Vec<Family> {
        let mut out = Vec::new();
        if self.families & 1 != 0 || self.families & 3 == 0 {
            out.push(Family::IPV4_UNICAST);
        }
        if self.families & 2 != 0 {
            out.push(Family::IPV6_UNICAST);
        }
        out
    }

    /// Our side of the session.
    pub fn config(&self) -> PeerConfig {
        let mut c = PeerConfig::new(
            IpAddr::V4(PEER_ADDRESS),
            self.peer_as(),
            LOCAL_AS,
            LOCAL_ADDRESS,
        );
        c.families = self.families();
        c.add_path = AddPathMode::Both;
        c.jitter = self.hold_time & 1 == 0;
        c
    }

    /// The peer's OPEN, valid for `config` (the session accepts it).
    pub fn peer_open_bytes(&self, config: &PeerConfig) -> Vec<u8> {
        let asn = self.peer_as();
        let mut caps: Vec<Capability> = config
            .families
            .iter()
            .map(|f| Capability::Multiprotocol(*f))
            .collect();
        caps.push(Capability::RouteRefresh);
        if self.four_octet_as {
            caps.push(Capability::FourOctetAs(asn));
        }
        if self.extended_message {
            caps.push(Capability::ExtendedMessage);
        }
        let add_path: Vec<AddPathFamily> = config
            .families
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let mode = match (self.add_path >> (2 * i)) & 3 {
                    1 => WireAddPath::Send,
                    2 => WireAddPath::Receive,
                    3 => WireAddPath::Both,
                    _ => return None,
                };
                Some(AddPathFamily { family: *f, mode })
            })
            .collect();
        if !add_path.is_empty() {
            caps.push(Capability::AddPath(add_path));
        }
        if self.graceful_restart {
            caps.push(Capability::GracefulRestart(
                bgp_proto::capability::GracefulRestart {
                    flags: 0,
                    restart_time: 120,
                    families: Vec::new(),
                },
            ));
        }
        let hold = match self.hold_time {
            0 => 0,
            h => u16::from(h).max(3),
        };
        let two_octet = u16::try_from(asn).unwrap_or(23456);
        let open = Open::new(u32::from(two_octet), hold, PEER_ADDRESS, caps);
        Message::Open(open)
            .to_bytes(&Context::default())
            .map(|b| b.to_vec())
            .unwrap_or_default()
    }
}

/// The steps that bring a fresh session to Established on connection 1: `None` = start,
/// `Some(None)` = inbound connection, `Some(Some(bytes))` = bytes received.
pub fn establish(peer_open: &[u8]) -> Vec<Option<Option<Vec<u8>>>> {
    vec![
        None,
        Some(None),
        Some(Some(peer_open.to_vec())),
        Some(Some(KEEPALIVE.to_vec())),
    ]
}

/// One message of type `kind` around `body`, with a valid marker and length.
pub fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let body = &body[..body.len().min(65535 - 19)];
    let mut out = Vec::with_capacity(body.len() + 19);
    out.extend_from_slice(&[0xff; 16]);
    out.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
    out.push(kind % 6);
    out.extend_from_slice(body);
    out
}

/// A max-prefix stop (RFC 4486 §4).
pub fn max_prefix_stop(limit: u8) -> StopReason {
    StopReason::MaxPrefix {
        family: Family::IPV4_UNICAST,
        limit: u32::from(limit),
        restart_after: std::time::Duration::from_secs(u64::from(limit % 8)),
    }
}
