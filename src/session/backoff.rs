//! Error-wait backoff between automatic restarts (BIRD's `error wait time`, as Calico runs it).

use std::time::Duration;

use super::time::Instant;

/// Exponential backoff before an automatic restart after a session error.
///
/// Like BIRD's `error wait time 5, 30` in Calico's configuration: the first wait after an error is
/// `min`, each further consecutive error doubles it up to `max`. A session that then stays
/// Established for at least `forget` (BIRD's `error forget time`) resets the wait to `min`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorWait {
    min: Duration,
    max: Duration,
    forget: Duration,
    next: Duration,
    established_at: Option<Instant>,
}

impl ErrorWait {
    /// A backoff from `min` to `max`, forgotten after `forget` of stable Established time.
    pub fn new(min: Duration, max: Duration, forget: Duration) -> Self {
        let max = max.max(min);
        ErrorWait {
            min,
            max,
            forget,
            next: min,
            established_at: None,
        }
    }

    /// Records that the session reached Established at `now`.
    pub fn on_established(&mut self, now: Instant) {
        self.established_at = Some(now);
    }

    /// Records a session error at `now` and returns how long to wait before restarting.
    pub fn on_error(&mut self, now: Instant) -> Duration {
        if let Some(since) = self.established_at.take()
            && now - since >= self.forget
        {
            self.next = self.min;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// Forgets past errors (an administrative restart starts afresh).
    pub fn reset(&mut self) {
        self.next = self.min;
        self.established_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn doubles_up_to_max_then_forgets_after_stable_time() {
        let mut b = ErrorWait::new(secs(5), secs(30), secs(300));
        let t = Instant::ZERO;
        assert_eq!(b.on_error(t), secs(5));
        assert_eq!(b.on_error(t), secs(10));
        assert_eq!(b.on_error(t), secs(20));
        assert_eq!(b.on_error(t), secs(30));
        assert_eq!(b.on_error(t), secs(30));
        // Established but not for long enough: keeps backing off.
        b.on_established(Instant::from_start(secs(100)));
        assert_eq!(b.on_error(Instant::from_start(secs(200))), secs(30));
        // Stable for `forget`: back to min.
        b.on_established(Instant::from_start(secs(1000)));
        assert_eq!(b.on_error(Instant::from_start(secs(1300))), secs(5));
        assert_eq!(b.on_error(Instant::from_start(secs(1301))), secs(10));
        b.reset();
        assert_eq!(b.on_error(Instant::from_start(secs(1302))), secs(5));
    }
}
