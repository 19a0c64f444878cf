//! This node's own graceful restart (RFC 4724 §4.1, restarting speaker): after a restart with
//! routes left in the kernel, tern defers its route selection's consequences (its UPDATEs and
//! End-of-RIB to every peer, and the sweep of the kernel routes not re-learned) until every
//! peer's routes are re-learned, or until a bounded wait ends. Pure: time is passed in.
//!
//! A peer's routes count as re-learned:
//! - with graceful restart negotiated, when it sent End-of-RIB for each negotiated family;
//!   a peer that set the Restart State (R) bit is itself restarting and is not waited for
//!   (RFC 4724 §4.1);
//! - without graceful restart, when it sent End-of-RIB for each family anyway, or when its
//!   initial burst ended: no UPDATE from it for [`INITIAL_BURST_QUIET`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bgp_proto::Family;

/// A peer without graceful restart has sent its initial table once this long passed without an
/// UPDATE from it (counted from Established, then from its last UPDATE).
pub const INITIAL_BURST_QUIET: Duration = Duration::from_secs(2);

/// What a peer still owes before its routes count as re-learned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Awaited {
    /// Its session is not Established (yet, or any more): its families are unknown.
    Session,
    /// Graceful restart negotiated: End-of-RIB for these families.
    EndOfRib(BTreeSet<Family>),
    /// No graceful restart: End-of-RIB for these families, or no UPDATE until `quiet_until`.
    InitialBurst {
        owed: BTreeSet<Family>,
        quiet_until: Instant,
    },
}

/// Progress of the restart recovery.
#[derive(Debug, Clone)]
pub struct RestartRecovery {
    /// Peers whose routes are not re-learned yet.
    waiting: BTreeMap<IpAddr, Awaited>,
    deadline: Instant,
    wait: Duration,
    done: bool,
    timed_out: bool,
}

impl RestartRecovery {
    /// Recovery that starts at `now` and waits for `peers`, at most `wait`. With no peers it is
    /// over at once.
    pub fn new(peers: impl IntoIterator<Item = IpAddr>, now: Instant, wait: Duration) -> Self {
        let waiting: BTreeMap<IpAddr, Awaited> =
            peers.into_iter().map(|p| (p, Awaited::Session)).collect();
        let done = waiting.is_empty();
        RestartRecovery {
            waiting,
            deadline: now + wait,
            wait,
            done,
            timed_out: false,
        }
    }

    /// No recovery: this process did not restart with routes in the kernel.
    pub fn finished(now: Instant) -> Self {
        RestartRecovery {
            waiting: BTreeMap::new(),
            deadline: now,
            wait: Duration::ZERO,
            done: true,
            timed_out: false,
        }
    }

    /// Whether the recovery is over (every peer's routes re-learned, or the wait ended).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether the recovery ended because the wait ran out (some peer's routes were not
    /// re-learned in time).
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// The bound of the wait.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The configured wait.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Peers still awaited.
    pub fn waiting_for(&self) -> usize {
        self.waiting.len()
    }

    /// A peer's session is Established at `now` with these families. `graceful_restart`: both
    /// sides announced the capability; `peer_restarting`: the peer set the R bit. Returns `true`
    /// when this ended the recovery.
    pub fn established(
        &mut self,
        peer: IpAddr,
        families: &[Family],
        graceful_restart: bool,
        peer_restarting: bool,
        now: Instant,
    ) -> bool {
        if self.done {
            return false;
        }
        if let Some(awaited) = self.waiting.get_mut(&peer) {
            let owed: BTreeSet<Family> = families.iter().copied().collect();
            if graceful_restart && peer_restarting {
                // RFC 4724 §4.1: the speakers with the Restart State bit set are excluded
                // from the wait (they are restarting too and wait for nobody's routes).
                self.waiting.remove(&peer);
            } else if graceful_restart && !owed.is_empty() {
                *awaited = Awaited::EndOfRib(owed);
            } else {
                *awaited = Awaited::InitialBurst {
                    owed,
                    quiet_until: now + INITIAL_BURST_QUIET,
                };
            }
        }
        self.check()
    }

    /// An UPDATE from `peer` arrived at `now` (its initial burst goes on).
    pub fn update_received(&mut self, peer: IpAddr, now: Instant) {
        if let Some(Awaited::InitialBurst { quiet_until, .. }) = self.waiting.get_mut(&peer) {
            *quiet_until = now + INITIAL_BURST_QUIET;
        }
    }

    /// End-of-RIB from `peer` for `family`. Returns `true` when this ended the recovery.
    pub fn end_of_rib(&mut self, peer: IpAddr, family: Family) -> bool {
        if self.done {
            return false;
        }
        let complete = match self.waiting.get_mut(&peer) {
            Some(Awaited::EndOfRib(owed) | Awaited::InitialBurst { owed, .. }) => {
                owed.remove(&family);
                owed.is_empty()
            }
            _ => false,
        };
        if complete {
            self.waiting.remove(&peer);
        }
        self.check()
    }

    /// A still-awaited peer's session ended: its routes are awaited on its next session.
    pub fn session_down(&mut self, peer: IpAddr) {
        if let Some(awaited) = self.waiting.get_mut(&peer) {
            *awaited = Awaited::Session;
        }
    }

    /// A peer was removed from the plan. Returns `true` when this ended the recovery.
    pub fn forget(&mut self, peer: IpAddr) -> bool {
        if self.done {
            return false;
        }
        self.waiting.remove(&peer);
        self.check()
    }

    /// Time passes: peers without graceful restart whose initial burst is over stop being
    /// awaited; the whole wait ends at its deadline. Returns `true` when the recovery ended now.
    pub fn tick(&mut self, now: Instant) -> bool {
        if self.done {
            return false;
        }
        if now >= self.deadline {
            self.done = true;
            self.timed_out = true;
            return true;
        }
        self.waiting.retain(|_, awaited| {
            !matches!(awaited, Awaited::InitialBurst { quiet_until, .. } if *quiet_until <= now)
        });
        self.check()
    }

    fn check(&mut self) -> bool {
        if self.waiting.is_empty() {
            self.done = true;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const V4: Family = Family::IPV4_UNICAST;
    const V6: Family = Family::IPV6_UNICAST;

    #[test]
    fn ends_when_every_peer_sent_end_of_rib_for_each_family() {
        let t0 = Instant::now();
        let mut r = RestartRecovery::new(
            [ip("10.0.0.2"), ip("10.0.0.3")],
            t0,
            Duration::from_secs(60),
        );
        assert!(!r.is_done());
        assert!(!r.established(ip("10.0.0.2"), &[V4, V6], true, false, t0));
        assert!(!r.end_of_rib(ip("10.0.0.2"), V4));
        assert!(!r.end_of_rib(ip("10.0.0.2"), V6));
        assert_eq!(r.waiting_for(), 1, "10.0.0.3 still awaited");
        assert!(!r.established(ip("10.0.0.3"), &[V4], true, false, t0));
        assert!(
            !r.tick(t0 + Duration::from_secs(30)),
            "a graceful-restart peer is awaited however quiet"
        );
        assert!(r.end_of_rib(ip("10.0.0.3"), V4));
        assert!(r.is_done() && !r.timed_out());
    }

    #[test]
    fn a_peer_without_graceful_restart_is_awaited_until_its_initial_burst_ends() {
        let t0 = Instant::now();
        let peer = ip("10.0.0.2");
        let mut r = RestartRecovery::new([peer], t0, Duration::from_secs(60));
        assert!(!r.established(peer, &[V4], false, false, t0));
        assert!(!r.tick(t0 + INITIAL_BURST_QUIET / 2));
        // Its table arrives: each UPDATE moves the end of the burst.
        r.update_received(peer, t0 + INITIAL_BURST_QUIET);
        assert!(!r.tick(t0 + INITIAL_BURST_QUIET + INITIAL_BURST_QUIET / 2));
        assert_eq!(r.waiting_for(), 1);
        assert!(r.tick(t0 + INITIAL_BURST_QUIET * 2));
        assert!(r.is_done() && !r.timed_out());
    }

    #[test]
    fn a_peer_without_graceful_restart_that_sends_end_of_rib_ends_at_once() {
        let t0 = Instant::now();
        let peer = ip("10.0.0.2");
        let mut r = RestartRecovery::new([peer], t0, Duration::from_secs(60));
        assert!(!r.established(peer, &[V4], false, false, t0));
        r.update_received(peer, t0);
        assert!(r.end_of_rib(peer, V4));
    }

    #[test]
    fn a_restarting_peer_is_not_awaited() {
        let t0 = Instant::now();
        let mut r = RestartRecovery::new([ip("10.0.0.2")], t0, Duration::from_secs(60));
        assert!(r.established(ip("10.0.0.2"), &[V4], true, true, t0));
        assert!(r.is_done());
    }

    #[test]
    fn a_session_that_ends_is_awaited_again() {
        let t0 = Instant::now();
        let peer = ip("10.0.0.2");
        let mut r = RestartRecovery::new([peer], t0, Duration::from_secs(60));
        assert!(!r.established(peer, &[V4], false, false, t0));
        r.session_down(peer);
        assert!(
            !r.tick(t0 + INITIAL_BURST_QUIET * 2),
            "no quiet period while it is down"
        );
        assert!(!r.end_of_rib(peer, V4), "no End-of-RIB without a session");
        assert!(!r.established(peer, &[V4], true, false, t0));
        assert!(r.end_of_rib(peer, V4));
    }

    #[test]
    fn the_wait_is_bounded() {
        let t0 = Instant::now();
        let mut r = RestartRecovery::new([ip("10.0.0.2")], t0, Duration::from_secs(60));
        assert!(!r.tick(t0 + Duration::from_secs(59)));
        assert!(r.tick(t0 + Duration::from_secs(60)));
        assert!(r.is_done() && r.timed_out());
        assert!(!r.tick(t0 + Duration::from_secs(61)), "ends once");
    }

    #[test]
    fn last_family_ends_it() {
        let t0 = Instant::now();
        let mut r = RestartRecovery::new([ip("10.0.0.2")], t0, Duration::from_secs(60));
        r.established(ip("10.0.0.2"), &[V4, V6], true, false, t0);
        assert!(!r.end_of_rib(ip("10.0.0.2"), V6));
        assert_eq!(r.waiting_for(), 1);
        assert!(r.end_of_rib(ip("10.0.0.2"), V4));
        assert!(RestartRecovery::new([], t0, Duration::from_secs(1)).is_done());
    }
}
