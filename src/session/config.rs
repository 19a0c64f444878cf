//! Per-peering session configuration: what the plan (Calico peerings) maps to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bgp_proto::Family;

/// Default hold time offered in our OPEN.
///
/// `tern` offers 90 s (keepalive 30 s) instead of Calico's BIRD defaults of 240 s / 80 s: a dead
/// peer that does not close its TCP connection is detected in 1.5 minutes instead of 4, at the cost
/// of one 19-byte KEEPALIVE every 30 s. The negotiated hold time is the smaller of both offers
/// (RFC 4271 §4.2), so a peer asking for less still gets less.
pub const DEFAULT_HOLD_TIME: Duration = Duration::from_secs(90);
/// Delay before the first outgoing connection attempt after a start (BIRD `connect delay time`, as
/// Calico's BIRD: 2 s). Incoming connections are accepted during it.
pub const DEFAULT_CONNECT_DELAY: Duration = Duration::from_secs(2);
/// Time between outgoing connection attempts (ConnectRetryTime, as Calico's BIRD: 5 s).
pub const DEFAULT_CONNECT_RETRY: Duration = Duration::from_secs(5);
/// First wait before an automatic restart after an error (BIRD `error wait time`, Calico: 5 s).
pub const DEFAULT_ERROR_WAIT_MIN: Duration = Duration::from_secs(5);
/// Longest wait before an automatic restart after repeated errors (Calico: 30 s).
pub const DEFAULT_ERROR_WAIT_MAX: Duration = Duration::from_secs(30);
/// Established time after which past errors are forgotten (BIRD `error forget time`: 300 s).
pub const DEFAULT_ERROR_FORGET: Duration = Duration::from_secs(300);
/// Graceful-restart time advertised by default (Calico's BIRD: 120 s).
pub const DEFAULT_RESTART_TIME: Duration = Duration::from_secs(120);
/// Hold time used while waiting for the peer's OPEN (RFC 4271 §8.2.2 suggests 4 minutes).
pub const OPEN_WAIT_HOLD_TIME: Duration = Duration::from_secs(240);
/// Smallest send hold time (RFC 9687 §3: 8 minutes, or twice the hold time if larger).
pub const MIN_SEND_HOLD_TIME: Duration = Duration::from_secs(480);

/// A TCP-MD5 key (RFC 2385). Held in memory only; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Vec<u8>);

impl Password {
    /// Longest key the kernel accepts (`TCP_MD5SIG_MAXKEYLEN`).
    pub const MAX_LEN: usize = 80;

    /// A key; `None` when it is empty or longer than [`Password::MAX_LEN`] bytes.
    pub fn new(key: impl Into<Vec<u8>>) -> Option<Self> {
        let key = key.into();
        (!key.is_empty() && key.len() <= Self::MAX_LEN).then_some(Password(key))
    }

    /// The key bytes (for the socket option only).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// TTL handling of the session's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlMode {
    /// Send with this TTL and accept any TTL. Calico's BIRD runs every session, eBGP included, as
    /// `multihop` with TTL 64; that is the default.
    Multihop(u8),
    /// GTSM (RFC 5082): send with TTL 255 and drop packets whose TTL is below `256 - hops`
    /// (`IP_MINTTL` / `IPV6_MINHOPCOUNT`). Calico's `ttlSecurity`.
    Security {
        /// How many hops away the peer may be (1 = directly connected).
        hops: u8,
    },
}

impl Default for TtlMode {
    fn default() -> Self {
        TtlMode::Multihop(64)
    }
}

/// ADD-PATH (RFC 7911) directions we offer for every configured family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddPathMode {
    /// No ADD-PATH capability.
    #[default]
    Off,
    /// We can receive several paths per prefix.
    Receive,
    /// We can send several paths per prefix.
    Send,
    /// Both (Calico's BIRD: `add paths on`).
    Both,
}

impl AddPathMode {
    /// Whether we offer to receive.
    pub fn receive(self) -> bool {
        matches!(self, AddPathMode::Receive | AddPathMode::Both)
    }
    /// Whether we offer to send.
    pub fn send(self) -> bool {
        matches!(self, AddPathMode::Send | AddPathMode::Both)
    }
}

/// Graceful restart (RFC 4724) as we advertise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    /// Restart time advertised to the peer (how long it should keep our routes), ≤ 4095 s.
    pub restart_time: Duration,
    /// Set the Restart State (R) bit: we are coming back from a restart (RFC 4724 §3).
    pub restarting: bool,
    /// Set the Forwarding State (F) bit for every family: forwarding state (kernel routes) was
    /// preserved across the restart (RFC 4724 §3).
    pub forwarding_preserved: bool,
    /// Set the N bit (RFC 8538): NOTIFICATIONs other than Hard Reset keep graceful restart.
    pub notification: bool,
}

impl Default for GracefulRestartConfig {
    fn default() -> Self {
        GracefulRestartConfig {
            restart_time: DEFAULT_RESTART_TIME,
            restarting: false,
            forwarding_preserved: false,
            notification: true,
        }
    }
}

/// Everything one peering needs: the session core's configuration.
///
/// The daemon maps each planned peering (Calico BGPPeer / mesh peer) to one of these:
///
/// | field | Calico |
/// |---|---|
/// | `peer_address`, `peer_port` | `peerIP` (`ip`, `ip:port`, `[v6]:port`), mesh peer's address and `listenPort` |
/// | `remote_as` | `asNumber` of the BGPPeer / the other node's AS |
/// | `local_as` | `localASNumber`, else the node's AS, else the global AS (64512) |
/// | `router_id` | the node's router id (`CALICO_ROUTER_ID`, IPv4 address, or `hash`) |
/// | `passive` | the mesh rule: passive towards a peer whose IP string sorts after ours |
/// | `password` | `password.secretKeyRef` / `nodeMeshPassword` (fail closed if unreadable) |
/// | `ttl` | `ttlSecurity: k` → `Security { hops: k }`, else `Multihop(64)` |
/// | `source_address` | `sourceAddress: UseNodeIP` (default) → the node's address; `None` → unset |
/// | `graceful_restart.restart_time` | `maxRestartTime` / `nodeMeshMaxRestartTime` (default 120 s) |
/// | `keepalive_time` | `keepaliveTime` |
/// | `hold_time`, `send_hold_time`, `families`, `add_path`, `route_refresh` | `tern` extensions (Calico: 240 s, n/a, per address family, on, on) |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// The peer's address (also the key of the peer in the speaker).
    pub peer_address: IpAddr,
    /// The peer's TCP port (179 by default; Calico's `ip:port` peers may differ).
    pub peer_port: u16,
    /// The peer's AS, checked against its OPEN (2/2 Bad Peer AS otherwise).
    pub remote_as: u32,
    /// Our AS on this peering (Calico `localASNumber` overrides the node's AS).
    pub local_as: u32,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// Hold time offered in our OPEN; zero disables keepalives and the hold timer (if the peer
    /// also offers zero). Non-zero values below 3 s are raised to 3 s (RFC 4271 §4.2).
    pub hold_time: Duration,
    /// Keepalive interval; `None` = a third of the negotiated hold time (RFC 4271 §10).
    pub keepalive_time: Option<Duration>,
    /// Delay before the first outgoing connection attempt after a start.
    pub connect_delay: Duration,
    /// Time between outgoing connection attempts.
    pub connect_retry: Duration,
    /// Error-wait backoff before automatic restarts: (first, longest).
    pub error_wait: (Duration, Duration),
    /// Established time after which the error-wait backoff is forgotten.
    pub error_forget: Duration,
    /// Send hold time (RFC 9687); `None` = max(8 min, 2 × negotiated hold time).
    pub send_hold_time: Option<Duration>,
    /// Never connect; only accept the peer's connections (Calico's mesh rule decides).
    pub passive: bool,
    /// RFC 4271 §10 jitter: the ConnectRetry interval and the error wait are multiplied by a
    /// factor in [0.75, 1.0] (as BIRD does) so that sessions do not retry in lock-step. The
    /// factor comes from a generator seeded by the router id and peer address (no randomness
    /// source in the pure core). Off gives exact timers.
    pub jitter: bool,
    /// TCP-MD5 key (RFC 2385).
    pub password: Option<Password>,
    /// TTL handling (GTSM or multihop).
    pub ttl: TtlMode,
    /// Local address to bind outgoing connections to (Calico `sourceAddress: UseNodeIP`).
    pub source_address: Option<IpAddr>,
    /// Interface index for a link-local IPv6 peer (`fe80::/10`): the scope of `peer_address`
    /// and `source_address`. Ignored for other addresses.
    pub scope_id: Option<u32>,
    /// Offer IPv4 unicast routes with IPv6 next hops (RFC 8950 extended next hop, capability 5):
    /// IPv4 over an IPv6 (e.g. link-local) session.
    pub extended_next_hop: bool,
    /// Address families offered (Multiprotocol capability, RFC 4760).
    pub families: Vec<Family>,
    /// ADD-PATH offered on every family.
    pub add_path: AddPathMode,
    /// Offer route refresh (RFC 2918).
    pub route_refresh: bool,
    /// Graceful restart; `None` = no capability.
    pub graceful_restart: Option<GracefulRestartConfig>,
}

impl PeerConfig {
    /// A configuration with Calico-like defaults (`tern`'s faster hold time, see
    /// [`DEFAULT_HOLD_TIME`]): route refresh, ADD-PATH both ways, graceful restart 120 s,
    /// multihop TTL 64, port 179, IPv4 unicast (or IPv6 unicast for an IPv6 peer).
    pub fn new(peer_address: IpAddr, remote_as: u32, local_as: u32, router_id: Ipv4Addr) -> Self {
        let family = if peer_address.is_ipv4() {
            Family::IPV4_UNICAST
        } else {
            Family::IPV6_UNICAST
        };
        PeerConfig {
            peer_address,
            peer_port: 179,
            remote_as,
            local_as,
            router_id,
            hold_time: DEFAULT_HOLD_TIME,
            keepalive_time: None,
            connect_delay: DEFAULT_CONNECT_DELAY,
            connect_retry: DEFAULT_CONNECT_RETRY,
            error_wait: (DEFAULT_ERROR_WAIT_MIN, DEFAULT_ERROR_WAIT_MAX),
            error_forget: DEFAULT_ERROR_FORGET,
            send_hold_time: None,
            passive: false,
            jitter: true,
            password: None,
            ttl: TtlMode::default(),
            source_address: None,
            scope_id: None,
            extended_next_hop: false,
            families: vec![family],
            add_path: AddPathMode::Both,
            route_refresh: true,
            graceful_restart: Some(GracefulRestartConfig::default()),
        }
    }

    /// Whether both ASes are equal (internal BGP).
    pub fn is_ibgp(&self) -> bool {
        self.local_as == self.remote_as
    }

    /// The hold time we put in our OPEN, in seconds (0, or 3..=65535).
    pub fn offered_hold_secs(&self) -> u16 {
        let secs = self.hold_time.as_secs().min(u64::from(u16::MAX)) as u16;
        if secs == 0 { 0 } else { secs.max(3) }
    }

    /// Whether changing from `self` to `new` requires resetting an established session: anything
    /// that is in the OPEN, the TCP connection or its security (password, AS, addresses, router
    /// id, timers offered in the OPEN, capabilities). Timers that only pace reconnection,
    /// `jitter`, `passive` and the graceful restart R and F bits (they describe this speaker's
    /// restart, which the established session already told the peer about; RFC 4724 §3) apply
    /// without a reset, from the next OPEN on.
    pub fn requires_reset(&self, new: &PeerConfig) -> bool {
        let graceful_restart = match (&self.graceful_restart, &new.graceful_restart) {
            (Some(old), Some(gr)) => Some(GracefulRestartConfig {
                restarting: old.restarting,
                forwarding_preserved: old.forwarding_preserved,
                ..gr.clone()
            }),
            (_, gr) => gr.clone(),
        };
        let pacing_only = PeerConfig {
            graceful_restart,
            connect_delay: self.connect_delay,
            connect_retry: self.connect_retry,
            error_wait: self.error_wait,
            error_forget: self.error_forget,
            passive: self.passive,
            jitter: self.jitter,
            ..new.clone()
        };
        *self != pacing_only
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PeerConfig {
        PeerConfig::new(
            "192.0.2.2".parse().unwrap(),
            65001,
            65000,
            Ipv4Addr::new(192, 0, 2, 1),
        )
    }

    #[test]
    fn password_is_bounded_and_redacted() {
        assert!(Password::new(vec![b'a'; 80]).is_some());
        assert!(Password::new(vec![b'a'; 81]).is_none());
        assert!(Password::new(Vec::new()).is_none());
        let p = Password::new("s3cret").unwrap();
        assert!(!format!("{p:?}").contains("s3cret"));
        let mut c = cfg();
        c.password = Some(p);
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn hold_time_offer_is_zero_or_at_least_three() {
        let mut c = cfg();
        assert_eq!(c.offered_hold_secs(), 90);
        c.hold_time = Duration::ZERO;
        assert_eq!(c.offered_hold_secs(), 0);
        c.hold_time = Duration::from_secs(1);
        assert_eq!(c.offered_hold_secs(), 3);
    }

    #[test]
    fn only_session_relevant_changes_reset() {
        let a = cfg();
        let mut b = a.clone();
        b.connect_retry = Duration::from_secs(60);
        b.passive = true;
        if let Some(gr) = b.graceful_restart.as_mut() {
            // The end of this speaker's restart window: later OPENs carry no R or F bit.
            gr.restarting = true;
            gr.forwarding_preserved = true;
        }
        assert!(!a.requires_reset(&b));
        for change in [
            |c: &mut PeerConfig| c.password = Password::new("x"),
            |c: &mut PeerConfig| c.remote_as = 1,
            |c: &mut PeerConfig| c.local_as = 1,
            |c: &mut PeerConfig| c.router_id = Ipv4Addr::new(1, 1, 1, 1),
            |c: &mut PeerConfig| c.hold_time = Duration::from_secs(9),
            |c: &mut PeerConfig| c.add_path = AddPathMode::Off,
            |c: &mut PeerConfig| c.graceful_restart = None,
            |c: &mut PeerConfig| {
                if let Some(gr) = c.graceful_restart.as_mut() {
                    gr.restart_time = Duration::from_secs(7);
                }
            },
            |c: &mut PeerConfig| c.ttl = TtlMode::Security { hops: 1 },
            |c: &mut PeerConfig| c.source_address = Some("192.0.2.9".parse().unwrap()),
        ] {
            let mut b = a.clone();
            change(&mut b);
            assert!(a.requires_reset(&b), "{b:?}");
        }
    }
}
