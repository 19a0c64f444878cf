//! OPEN handling: building ours from the configuration, checking the peer's (RFC 4271 §6.2,
//! RFC 6286, RFC 6793, RFC 7607) and negotiating capabilities into the session facts.

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp_proto::capability::{
    AddPathFamily, Capability, ExtendedNextHop, GracefulRestart, GracefulRestartFamily,
};
use bgp_proto::iana::{AddPathMode, CeaseSubcode, ErrorCode, OpenErrorSubcode};
use bgp_proto::message::{Notification, Open};
use bgp_proto::{Afi, Family, Negotiated};

use super::config::{AddPathMode as ConfigAddPath, PeerConfig};
use super::event::DownReason;

/// Largest restart time the capability can carry (12 bits, RFC 4724 §3).
const MAX_RESTART_TIME: u16 = 4095;

/// What both sides agreed when the peer's OPEN was accepted: everything the peer task, the RIB
/// and status reporting need about an Established session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The peer's AS (from the 4-octet AS capability when present, RFC 6793 §4.1).
    pub peer_as: u32,
    /// Our AS on this session.
    pub local_as: u32,
    /// The peer's BGP identifier.
    pub peer_router_id: Ipv4Addr,
    /// Negotiated hold time: the smaller offer (RFC 4271 §4.2); zero = no hold timer.
    pub hold_time: Duration,
    /// Our keepalive interval: a third of the hold time unless configured lower (RFC 4271 §10).
    pub keepalive_time: Duration,
    /// Families both sides announced (IPv4 unicast implied for a peer without the
    /// multiprotocol capability, RFC 4760 §8).
    pub families: Vec<Family>,
    /// Both sides announced route refresh (RFC 2918).
    pub route_refresh: bool,
    /// The decode (receive) and encode (send) contexts: 4-octet AS, ADD-PATH per family and
    /// direction, extended messages.
    pub codec: Negotiated,
    /// Our graceful restart capability as sent (R, N and F bits), if any.
    pub local_graceful_restart: Option<GracefulRestart>,
    /// The peer's graceful restart capability as received, if any.
    pub peer_graceful_restart: Option<GracefulRestart>,
    /// The peer's OPEN as received (every capability, for status output).
    pub peer_open: Open,
}

impl SessionInfo {
    /// Internal BGP.
    pub fn is_ibgp(&self) -> bool {
        self.peer_as == self.local_as
    }

    /// Both sides announced graceful restart (RFC 4724).
    pub fn graceful_restart_negotiated(&self) -> bool {
        self.local_graceful_restart.is_some() && self.peer_graceful_restart.is_some()
    }

    /// Both sides set the N bit (RFC 8538 §2): NOTIFICATIONs other than Hard Reset keep graceful
    /// restart procedures.
    pub fn notification_negotiated(&self) -> bool {
        self.local_graceful_restart
            .as_ref()
            .is_some_and(GracefulRestart::notification)
            && self
                .peer_graceful_restart
                .as_ref()
                .is_some_and(GracefulRestart::notification)
    }

    /// The peer set the Restart State (R) bit: it has just restarted (RFC 4724 §4.2: do not wait
    /// for its End-of-RIB before sending ours).
    pub fn peer_restarting(&self) -> bool {
        self.peer_graceful_restart
            .as_ref()
            .is_some_and(GracefulRestart::restart_state)
    }

    /// The peer says it kept forwarding state for `family` across its restart (F bit).
    pub fn peer_forwarding_preserved(&self, family: Family) -> bool {
        self.peer_graceful_restart.as_ref().is_some_and(|gr| {
            gr.families
                .iter()
                .any(|f| f.family == family && f.forwarding_state())
        })
    }

    /// Families the peer covers with graceful restart (whose routes we keep as stale).
    pub fn peer_graceful_restart_families(&self) -> Vec<Family> {
        self.peer_graceful_restart
            .as_ref()
            .map_or_else(Vec::new, |gr| {
                gr.families.iter().map(|f| f.family).collect()
            })
    }

    /// Whether the peer's routes are kept (as stale) when the session ends for `reason`, and for
    /// how long at most: the peer's restart time (RFC 4724 §4.2). RFC 8538 §4: with the N bit
    /// negotiated, NOTIFICATIONs other than Hard Reset also keep them.
    pub fn retain_routes_for(&self, reason: &DownReason) -> Option<Duration> {
        if !self.graceful_restart_negotiated() {
            return None;
        }
        let peer = self.peer_graceful_restart.as_ref()?;
        if peer.restart_time == 0 || peer.families.is_empty() {
            return None;
        }
        let keep = match reason {
            DownReason::TransportClosed
            | DownReason::HoldTimerExpired
            | DownReason::SendHoldTimerExpired
            | DownReason::PeerRestarted => true,
            DownReason::NotificationSent(n) | DownReason::NotificationReceived(n) => {
                self.notification_negotiated() && !is_hard_reset(n)
            }
            DownReason::PlannedRestart => false,
        };
        keep.then(|| Duration::from_secs(u64::from(peer.restart_time)))
    }
}

/// Cease/Hard Reset (RFC 8538 §3).
pub fn is_hard_reset(n: &Notification) -> bool {
    n.code == ErrorCode::Cease && n.subcode == u8::from(CeaseSubcode::HardReset)
}

/// Our OPEN for this peering: multiprotocol per family (RFC 4760), route refresh (RFC 2918),
/// graceful restart (RFC 4724 + N bit RFC 8538), 4-octet AS (RFC 6793, always), ADD-PATH
/// (RFC 7911).
pub fn local_open(config: &PeerConfig) -> Open {
    let mut caps: Vec<Capability> = config
        .families
        .iter()
        .map(|f| Capability::Multiprotocol(*f))
        .collect();
    if config.route_refresh {
        caps.push(Capability::RouteRefresh);
    }
    if let Some(gr) = &config.graceful_restart {
        let mut flags = 0;
        if gr.restarting {
            flags |= GracefulRestart::RESTART_STATE;
        }
        if gr.notification {
            flags |= GracefulRestart::NOTIFICATION;
        }
        let family_flags = if gr.forwarding_preserved {
            GracefulRestartFamily::FORWARDING_STATE
        } else {
            0
        };
        caps.push(Capability::GracefulRestart(GracefulRestart {
            flags,
            restart_time: u16::try_from(gr.restart_time.as_secs())
                .unwrap_or(MAX_RESTART_TIME)
                .min(MAX_RESTART_TIME),
            families: config
                .families
                .iter()
                .map(|f| GracefulRestartFamily {
                    family: *f,
                    flags: family_flags,
                })
                .collect(),
        }));
    }
    if config.extended_next_hop && config.families.contains(&Family::IPV4_UNICAST) {
        // RFC 8950 §3: IPv4 unicast NLRI (AFI 1, SAFI 1) with IPv6 next hops (AFI 2).
        caps.push(Capability::ExtendedNextHop(vec![ExtendedNextHop {
            nlri_afi: Afi::Ipv4,
            nlri_safi: 1,
            next_hop_afi: Afi::Ipv6,
        }]));
    }
    caps.push(Capability::FourOctetAs(config.local_as));
    let mode = match config.add_path {
        ConfigAddPath::Off => None,
        ConfigAddPath::Receive => Some(AddPathMode::Receive),
        ConfigAddPath::Send => Some(AddPathMode::Send),
        ConfigAddPath::Both => Some(AddPathMode::Both),
    };
    if let Some(mode) = mode {
        caps.push(Capability::AddPath(
            config
                .families
                .iter()
                .map(|f| AddPathFamily { family: *f, mode })
                .collect(),
        ));
    }
    Open::new(
        config.local_as,
        config.offered_hold_secs(),
        config.router_id,
        caps,
    )
}

/// Checks the peer's OPEN against the configuration and our OPEN; returns the negotiated facts or
/// the NOTIFICATION to send.
pub fn check_open(
    config: &PeerConfig,
    local: &Open,
    remote: Open,
) -> Result<SessionInfo, Notification> {
    // RFC 4271 §6.2 (version, hold time 1-2, unsupported optional parameter), RFC 6286 §2.2
    // (identifier 0), RFC 7607 (AS 0).
    remote.validate().map_err(|e| e.notification)?;
    // RFC 4271 §6.2: "If the Autonomous System field of the OPEN message is unacceptable, then
    // the Error Subcode MUST be set to Bad Peer AS." RFC 6793 §4.1: a NEW speaker's AS is the
    // one in its 4-octet AS capability (an OLD speaker above 65535 shows AS_TRANS and fails here).
    let peer_as = remote.asn();
    if peer_as != config.remote_as {
        return Err(Notification::open(OpenErrorSubcode::BadPeerAs, Vec::new()));
    }
    // RFC 6286 §2.2: for an internal peer, an identifier equal to ours is Bad BGP Identifier.
    if config.is_ibgp() && remote.bgp_id == config.router_id {
        return Err(Notification::open(
            OpenErrorSubcode::BadBgpIdentifier,
            Vec::new(),
        ));
    }
    // RFC 4760 §8 / RFC 4271: a speaker without the multiprotocol capability speaks IPv4 unicast.
    let mut peer_families: Vec<Family> = remote.multiprotocol_families().collect();
    if peer_families.is_empty() {
        peer_families.push(Family::IPV4_UNICAST);
    }
    let families: Vec<Family> = config
        .families
        .iter()
        .copied()
        .filter(|f| peer_families.contains(f))
        .collect();
    if families.is_empty() {
        // RFC 5492 §3: Unsupported Capability, with the capabilities we needed in the data.
        let mut data = Vec::new();
        for f in &config.families {
            data.extend_from_slice(&[1, 4]);
            data.extend_from_slice(&u16::from(f.afi).to_be_bytes());
            data.push(0);
            data.push(u8::from(f.safi));
        }
        return Err(Notification::open(
            OpenErrorSubcode::UnsupportedCapability,
            data,
        ));
    }
    // RFC 4271 §4.2: the hold time is the smaller of both offers; zero disables it.
    let hold_secs = local.hold_time.min(remote.hold_time);
    let hold_time = Duration::from_secs(u64::from(hold_secs));
    let keepalive_time = if hold_time.is_zero() {
        Duration::ZERO
    } else {
        let third = (hold_time / 3).max(Duration::from_secs(1));
        config
            .keepalive_time
            .map_or(third, |k| k.min(third).max(Duration::from_secs(1)))
    };
    let has_rr = |open: &Open| {
        open.capabilities().any(|c| matches!(c, Capability::RouteRefresh | Capability::EnhancedRouteRefresh))
            // Pre-standard Cisco route refresh (code 128).
            || open.capabilities().any(|c| matches!(c, Capability::Unknown { code: 128, .. }))
    };
    let route_refresh = has_rr(local) && has_rr(&remote);
    Ok(SessionInfo {
        peer_as,
        local_as: config.local_as,
        peer_router_id: remote.bgp_id,
        hold_time,
        keepalive_time,
        families,
        route_refresh,
        codec: Negotiated::from_opens(local, &remote),
        local_graceful_restart: local.graceful_restart().cloned(),
        peer_graceful_restart: remote.graceful_restart().cloned(),
        peer_open: remote,
    })
}
