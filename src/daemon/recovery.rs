//! This node's own graceful restart (RFC 4724 §4.1, restarting speaker): routes left in the
//! kernel by the previous run are kept until every peer that negotiated graceful restart has
//! sent End-of-RIB for each of its families, or until a bounded wait ends. Pure: time is passed in.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bgp_proto::Family;

/// Progress of the restart recovery.
#[derive(Debug, Clone)]
pub struct RestartRecovery {
    /// Peers still owing End-of-RIB, with the families still owed (empty set = not yet
    /// Established, so its families are unknown).
    waiting: BTreeMap<IpAddr, BTreeSet<Family>>,
    deadline: Instant,
    wait: Duration,
    done: bool,
}

impl RestartRecovery {
    /// Recovery that starts at `now` and waits for `peers`, at most `wait`. With no peers it is
    /// over at once.
    pub fn new(peers: impl IntoIterator<Item = IpAddr>, now: Instant, wait: Duration) -> Self {
        let waiting: BTreeMap<IpAddr, BTreeSet<Family>> =
            peers.into_iter().map(|p| (p, BTreeSet::new())).collect();
        let done = waiting.is_empty();
        RestartRecovery {
            waiting,
            deadline: now + wait,
            wait,
            done,
        }
    }

    /// No recovery: this process did not restart with routes in the kernel.
    pub fn finished(now: Instant) -> Self {
        RestartRecovery {
            waiting: BTreeMap::new(),
            deadline: now,
            wait: Duration::ZERO,
            done: true,
        }
    }

    /// Whether the recovery is over (every End-of-RIB arrived, or the wait ended).
    pub fn is_done(&self) -> bool {
        self.done
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

    /// A peer's session is Established with these families. A peer that did not negotiate
    /// graceful restart sends no End-of-RIB we could rely on: stop waiting for it
    /// (`graceful_restart = false`). Returns `true` when this ended the recovery.
    pub fn established(
        &mut self,
        peer: IpAddr,
        families: &[Family],
        graceful_restart: bool,
    ) -> bool {
        if self.done {
            return false;
        }
        if let Some(owed) = self.waiting.get_mut(&peer) {
            if graceful_restart && !families.is_empty() {
                *owed = families.iter().copied().collect();
            } else {
                self.waiting.remove(&peer);
            }
        }
        self.check()
    }

    /// End-of-RIB from `peer` for `family`. Returns `true` when this ended the recovery.
    pub fn end_of_rib(&mut self, peer: IpAddr, family: Family) -> bool {
        if self.done {
            return false;
        }
        if let Some(owed) = self.waiting.get_mut(&peer) {
            owed.remove(&family);
            if owed.is_empty() {
                self.waiting.remove(&peer);
            }
        }
        self.check()
    }

    /// A peer was removed from the plan. Returns `true` when this ended the recovery.
    pub fn forget(&mut self, peer: IpAddr) -> bool {
        if self.done {
            return false;
        }
        self.waiting.remove(&peer);
        self.check()
    }

    /// Time passes. Returns `true` when the wait ended now.
    pub fn tick(&mut self, now: Instant) -> bool {
        if self.done || now < self.deadline {
            return false;
        }
        self.done = true;
        true
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

    #[test]
    fn ends_when_every_peer_sent_end_of_rib_for_each_family() {
        let t0 = Instant::now();
        let mut r = RestartRecovery::new(
            [ip("10.0.0.2"), ip("10.0.0.3")],
            t0,
            Duration::from_secs(60),
        );
        assert!(!r.is_done());
        let both = [Family::IPV4_UNICAST, Family::IPV6_UNICAST];
        assert!(!r.established(ip("10.0.0.2"), &both, true));
        assert!(!r.end_of_rib(ip("10.0.0.2"), Family::IPV4_UNICAST));
        assert!(!r.end_of_rib(ip("10.0.0.2"), Family::IPV6_UNICAST));
        assert_eq!(r.waiting_for(), 1, "10.0.0.3 still awaited");
        assert!(!r.established(ip("10.0.0.3"), &[Family::IPV4_UNICAST], true));
        assert!(r.end_of_rib(ip("10.0.0.3"), Family::IPV4_UNICAST));
        assert!(r.is_done());
    }

    #[test]
    fn peers_without_graceful_restart_are_not_awaited() {
        let t0 = Instant::now();
        let mut r = RestartRecovery::new([ip("10.0.0.2")], t0, Duration::from_secs(60));
        assert!(r.established(ip("10.0.0.2"), &[Family::IPV4_UNICAST], false));
        assert!(r.is_done());
    }

    #[test]
    fn the_wait_is_bounded() {
        let t0 = Instant::now();
        let mut r = RestartRecovery::new([ip("10.0.0.2")], t0, Duration::from_secs(60));
        assert!(!r.tick(t0 + Duration::from_secs(59)));
        assert!(r.tick(t0 + Duration::from_secs(60)));
        assert!(r.is_done());
        assert!(!r.tick(t0 + Duration::from_secs(61)), "ends once");
    }

    #[test]
    fn last_family_ends_it() {
        let t0 = Instant::now();
        let mut r = RestartRecovery::new([ip("10.0.0.2")], t0, Duration::from_secs(60));
        r.established(
            ip("10.0.0.2"),
            &[Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            true,
        );
        assert!(!r.end_of_rib(ip("10.0.0.2"), Family::IPV6_UNICAST));
        assert_eq!(r.waiting_for(), 1);
        assert!(r.end_of_rib(ip("10.0.0.2"), Family::IPV4_UNICAST));
        assert!(RestartRecovery::new([], t0, Duration::from_secs(1)).is_done());
    }
}
