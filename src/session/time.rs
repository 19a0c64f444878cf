//! Monotonic time as a value handed in by the driver (never read inside the core).

use std::ops::{Add, Sub};
use std::time::Duration;

/// A point on the driver's monotonic clock: the time elapsed since the driver started.
///
/// The session core never reads a clock; every input carries `now` as an `Instant` and every
/// timer action carries its deadline as one. The tokio driver maps it to
/// `tokio::time::Instant` (monotonic), so wall-clock jumps never move a timer (robustness F23).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(Duration);

impl Instant {
    /// The driver's start.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// The instant `elapsed` after the driver's start.
    pub const fn from_start(elapsed: Duration) -> Self {
        Instant(elapsed)
    }

    /// Time elapsed since the driver's start.
    pub const fn since_start(self) -> Duration {
        self.0
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(rhs))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_since(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_start(Duration::from_secs(5));
        assert_eq!(
            t + Duration::from_secs(2),
            Instant::from_start(Duration::from_secs(7))
        );
        assert_eq!(
            t - Instant::from_start(Duration::from_secs(9)),
            Duration::ZERO
        );
        assert_eq!(t - Instant::ZERO, Duration::from_secs(5));
    }
}
