//! Waiting on conditions: the only way a scenario waits (no fixed sleeps).

use std::fmt::Display;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

/// What one poll of a condition reports: ready with a value, or not yet with what was seen.
#[derive(Debug)]
pub enum Check<T> {
    /// The condition holds; the value is handed back to the caller.
    Ready(T),
    /// The condition does not hold yet; the text describes what was observed instead.
    Pending(String),
}

/// Conversion of a poll result into a [`Check`], so that conditions may return `bool`,
/// `Option<T>` or a [`Check`] with an observation.
pub trait IntoCheck {
    /// The value handed back when the condition holds.
    type Value;
    /// Converts into a [`Check`].
    fn into_check(self) -> Check<Self::Value>;
}

impl IntoCheck for bool {
    type Value = ();
    fn into_check(self) -> Check<()> {
        if self {
            Check::Ready(())
        } else {
            Check::Pending("condition was false".to_owned())
        }
    }
}

impl<T> IntoCheck for Option<T> {
    type Value = T;
    fn into_check(self) -> Check<T> {
        match self {
            Some(value) => Check::Ready(value),
            None => Check::Pending("condition returned nothing yet".to_owned()),
        }
    }
}

impl<T> IntoCheck for Check<T> {
    type Value = T;
    fn into_check(self) -> Check<T> {
        self
    }
}

/// A [`Check::Pending`] built from anything displayable (a convenience for conditions).
pub fn pending<T>(observation: impl Display) -> Check<T> {
    Check::Pending(observation.to_string())
}

/// Polls `condition` with a short backoff (50 ms doubling up to 500 ms) until it holds or
/// `timeout` passes.
///
/// An `Err` from the condition does not stop the wait (daemons refuse CLI connections while
/// starting); it is kept as the last observation. On timeout the error names `description`
/// and the last observation.
pub fn wait_until<C, F>(description: &str, timeout: Duration, mut condition: F) -> Result<C::Value>
where
    C: IntoCheck,
    F: FnMut() -> Result<C>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(50);
    let mut last: String;
    loop {
        match condition() {
            Ok(outcome) => match outcome.into_check() {
                Check::Ready(value) => return Ok(value),
                Check::Pending(observation) => last = observation,
            },
            Err(error) => last = format!("error: {error:#}"),
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            bail!(
                "timed out after {:.1?} waiting for: {description}; last observation: {last}",
                elapsed
            );
        }
        std::thread::sleep(delay.min(timeout - elapsed));
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_value_once_ready() {
        let mut polls = 0;
        let value = wait_until("third poll", Duration::from_secs(10), || {
            polls += 1;
            Ok(if polls >= 3 { Some(polls) } else { None })
        })
        .unwrap();
        assert_eq!(value, 3);
    }

    #[test]
    fn timeout_names_the_condition_and_last_observation() {
        let error = wait_until("never true", Duration::from_millis(120), || {
            Ok(pending::<()>("saw 42"))
        })
        .unwrap_err()
        .to_string();
        assert!(error.contains("never true"), "{error}");
        assert!(error.contains("saw 42"), "{error}");
    }

    #[test]
    fn errors_are_kept_as_observations() {
        let error = wait_until("fails", Duration::from_millis(120), || -> Result<bool> {
            bail!("socket refused")
        })
        .unwrap_err()
        .to_string();
        assert!(error.contains("socket refused"), "{error}");
    }
}
