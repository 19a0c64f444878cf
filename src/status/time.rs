//! Points in time as plain values (milliseconds since the Unix epoch, UTC).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A point in time, milliseconds since the Unix epoch (UTC). A value: status snapshots carry it,
/// pure functions compare it; only `io` code reads the clock to make one.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// From a [`SystemTime`] (times before the epoch become the epoch).
    pub fn from_system_time(t: SystemTime) -> Self {
        let ms = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// As a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }

    /// This time plus `d` (saturating).
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// How long after `earlier` this time is (zero when it is not after it).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// RFC 3339 in UTC with seconds, e.g. `2026-11-22T16:35:43Z`.
    pub fn rfc3339(self) -> String {
        humantime::format_rfc3339_seconds(self.to_system_time()).to_string()
    }

    /// `YYYY-MM-DD HH:MM:SS` in UTC, the form BIRD's `show status` uses.
    pub fn date_time(self) -> String {
        let s = self.rfc3339();
        // "YYYY-MM-DDTHH:MM:SSZ": 20 ASCII characters.
        format!("{} {}", &s[..10], &s[11..19])
    }

    /// `HH:MM:SS` in UTC.
    pub fn time_of_day(self) -> String {
        let secs = (self.0 / 1000) % 86_400;
        format!(
            "{:02}:{:02}:{:02}",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        )
    }

    /// `YYYY-MM-DD` in UTC.
    pub fn date(self) -> String {
        self.rfc3339()[..10].to_owned()
    }
}

/// A duration in whole seconds for humans: `45s`, `3m12s`, `2h05m`, `3d04h`.
pub fn format_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, (s / 60) % 60),
        _ => format!("{}d{:02}h", s / 86_400, (s / 3600) % 24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_utc() {
        // 2026-11-22T16:35:43.537Z
        let t = Timestamp(1_795_365_343_537);
        assert_eq!(t.rfc3339(), "2026-11-22T16:35:43Z");
        assert_eq!(t.date_time(), "2026-11-22 16:35:43");
        assert_eq!(t.time_of_day(), "16:35:43");
        assert_eq!(t.date(), "2026-11-22");
        assert_eq!(Timestamp::from_system_time(t.to_system_time()), t);
    }

    #[test]
    fn ages() {
        assert_eq!(format_age(Duration::from_secs(5)), "5s");
        assert_eq!(format_age(Duration::from_secs(192)), "3m12s");
        assert_eq!(format_age(Duration::from_secs(7500)), "2h05m");
        assert_eq!(
            format_age(Duration::from_secs(3 * 86_400 + 4 * 3600)),
            "3d04h"
        );
        assert_eq!(Timestamp(5).since(Timestamp(10)), Duration::ZERO);
    }
}
