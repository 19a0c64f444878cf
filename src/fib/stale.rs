//! Restart without loss: routes of tern's protocol found in the kernel at start are adopted as
//! stale and kept until the daemon has re-converged (End-of-RIB from its peers) or a bounded timer
//! has run out; then the stale routes nobody desired again are swept. Time is passed in.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ipnet::IpNet;

/// Bookkeeping of routes adopted at start.
#[derive(Debug, Clone)]
pub struct StaleRoutes {
    adopted: HashSet<IpNet>,
    /// `None`: no timer yet ([`StaleRoutes::hold_for`] starts it).
    deadline: Option<Instant>,
    swept: bool,
}

impl StaleRoutes {
    /// Adopts the prefixes of the routes found at start (`now`), to be kept at most `hold` unless
    /// [`StaleRoutes::converged`] comes first; with no `hold`, kept until
    /// [`StaleRoutes::hold_for`] starts the timer (or convergence).
    pub fn adopt(
        found: impl IntoIterator<Item = IpNet>,
        now: Instant,
        hold: Option<Duration>,
    ) -> Self {
        let adopted: HashSet<IpNet> = found.into_iter().collect();
        let swept = adopted.is_empty();
        Self {
            adopted,
            deadline: hold.map(|hold| now + hold),
            swept,
        }
    }

    /// (Re)starts the timer: the hold ends at the latest `hold` after `now`.
    pub fn hold_for(&mut self, now: Instant, hold: Duration) {
        self.deadline = Some(now + hold);
    }

    /// Nothing adopted, nothing to hold (e.g. a fresh node): deletes apply at once.
    pub fn none(now: Instant) -> Self {
        Self {
            adopted: HashSet::new(),
            deadline: Some(now),
            swept: true,
        }
    }

    /// A prefix is desired again: it is no longer stale (and later withdrawals of it apply at once).
    pub fn redesired(&mut self, prefix: &IpNet) {
        self.adopted.remove(prefix);
    }

    /// Whether the routes of `prefix` must be kept although they are not desired.
    pub fn keeps(&self, prefix: &IpNet) -> bool {
        !self.swept && self.adopted.contains(prefix)
    }

    /// The convergence signal: from now on stale routes not desired are removed. Returns whether
    /// this call ended the hold.
    pub fn converged(&mut self) -> bool {
        let ended = !self.swept;
        self.swept = true;
        self.adopted.clear();
        ended
    }

    /// Ends the hold when the timer has run out at `now`; returns whether this call ended it.
    pub fn on_tick(&mut self, now: Instant) -> bool {
        if !self.swept && self.deadline.is_some_and(|deadline| now >= deadline) {
            self.converged()
        } else {
            false
        }
    }

    /// When the hold ends by timer, if it is still running.
    pub fn deadline(&self) -> Option<Instant> {
        if self.swept { None } else { self.deadline }
    }

    /// Whether the hold is over (converged, timer run out, or nothing adopted).
    pub fn is_swept(&self) -> bool {
        self.swept
    }

    /// Number of adopted routes still stale.
    pub fn stale_count(&self) -> usize {
        if self.swept { 0 } else { self.adopted.len() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fib::{FibChange, FibTable, Formed, KernelRoute, KernelRouteKind};

    fn blackhole(prefix: &str) -> KernelRoute {
        KernelRoute {
            prefix: prefix.parse().unwrap(),
            kind: KernelRouteKind::Blackhole,
            metric: 1024,
        }
    }

    fn table(desired: &[KernelRoute], installed: &[KernelRoute]) -> FibTable {
        let mut table = FibTable::new();
        table.replace_desired(desired.iter().cloned());
        for route in installed {
            table.insert_installed(route.clone());
        }
        table
    }

    fn diff(table: &FibTable, stale: &StaleRoutes) -> Vec<FibChange> {
        table
            .diff(
                &table.all_prefixes(),
                |_| Formed::AsDesired,
                |p| stale.keeps(p),
            )
            .changes
    }

    #[test]
    fn stale_routes_are_kept_until_convergence_then_swept() {
        let found = [blackhole("10.0.1.0/26"), blackhole("10.0.2.0/26")];
        let start = Instant::now();
        let mut stale = StaleRoutes::adopt(
            found.iter().map(|r| r.prefix),
            start,
            Some(Duration::from_secs(120)),
        );
        let table = table(&[blackhole("10.0.1.0/26")], &found);
        for prefix in table.desired_prefixes() {
            stale.redesired(&prefix);
        }
        assert!(diff(&table, &stale).is_empty());
        assert_eq!(stale.stale_count(), 1);
        assert!(stale.converged());
        assert!(!stale.converged());
        assert_eq!(
            diff(&table, &stale),
            vec![FibChange::Delete(blackhole("10.0.2.0/26"))]
        );
    }

    #[test]
    fn nothing_adopted_means_nothing_held() {
        let stale = StaleRoutes::adopt([], Instant::now(), Some(Duration::from_secs(120)));
        assert_eq!(stale.deadline(), None);
    }

    #[test]
    fn the_timer_bounds_the_hold() {
        let found = blackhole("10.0.2.0/26").prefix;
        let start = Instant::now();
        let mut stale = StaleRoutes::adopt([found], start, Some(Duration::from_secs(120)));
        assert!(!stale.on_tick(start + Duration::from_secs(119)));
        assert!(stale.keeps(&found));
        assert_eq!(stale.deadline(), Some(start + Duration::from_secs(120)));
        assert!(stale.on_tick(start + Duration::from_secs(120)));
        assert!(!stale.keeps(&found));
        assert_eq!(stale.deadline(), None);
    }

    #[test]
    fn without_a_timer_routes_are_held_until_it_starts() {
        let found = blackhole("10.0.2.0/26").prefix;
        let start = Instant::now();
        let mut stale = StaleRoutes::adopt([found], start, None);
        assert_eq!(stale.deadline(), None);
        assert!(!stale.is_swept());
        assert!(!stale.on_tick(start + Duration::from_secs(86_400)));
        assert!(stale.keeps(&found));
        let armed = start + Duration::from_secs(600);
        stale.hold_for(armed, Duration::from_secs(30));
        assert_eq!(stale.deadline(), Some(armed + Duration::from_secs(30)));
        assert!(!stale.on_tick(armed + Duration::from_secs(29)));
        assert!(stale.on_tick(armed + Duration::from_secs(30)));
        assert!(stale.is_swept());
    }

    #[test]
    fn a_redesired_route_withdrawn_before_convergence_is_deleted() {
        let found = [blackhole("10.0.2.0/26")];
        let mut stale = StaleRoutes::adopt(
            [found[0].prefix],
            Instant::now(),
            Some(Duration::from_secs(120)),
        );
        stale.redesired(&found[0].prefix);
        let table = table(&[], &found);
        assert_eq!(diff(&table, &stale).len(), 1);
    }
}
