//! Deadlines from caller-supplied durations.
//!
//! `Instant + Duration` panics when the sum does not fit, and callers pass
//! "forever" as `u64::MAX` seconds (CLI flags, Python floats, Node numbers).
//! A [`Deadline`] saturates instead: a timeout too large to represent never
//! expires.

use std::time::{Duration, Instant};

/// A point in time after which a wait gives up, or never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// `timeout` from now; a timeout past what the clock can represent
    /// means no deadline.
    pub fn after(timeout: Duration) -> Self {
        Deadline(Instant::now().checked_add(timeout))
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        self.0.is_some_and(|d| Instant::now() >= d)
    }

    /// Time left (zero once expired, `Duration::MAX` without a deadline).
    pub fn remaining(&self) -> Duration {
        match self.0 {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::MAX,
        }
    }

    /// The earlier of this deadline and `step` from now: one bounded slice
    /// of a longer wait.
    pub fn step(&self, step: Duration) -> Deadline {
        let slice = Deadline::after(step);
        match (self.0, slice.0) {
            (Some(a), Some(b)) => Deadline(Some(a.min(b))),
            (a, b) => Deadline(a.or(b)),
        }
    }

    /// Sleeps until the deadline (forever without one).
    pub async fn sleep(&self) {
        match self.0 {
            Some(d) => tokio::time::sleep_until(d.into()).await,
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_timeouts_saturate_instead_of_panicking() {
        for t in [
            Duration::MAX,
            Duration::from_secs(u64::MAX),
            Duration::from_millis(u64::MAX),
        ] {
            let d = Deadline::after(t);
            assert!(!d.expired());
            assert!(d.remaining() > Duration::from_secs(1 << 40));
            let s = d.step(Duration::from_millis(5));
            assert!(s.remaining() <= Duration::from_millis(5));
        }
        let zero = Deadline::after(Duration::ZERO);
        assert!(zero.expired());
        assert_eq!(zero.remaining(), Duration::ZERO);
        assert!(zero.step(Duration::MAX).expired());
    }

    #[tokio::test]
    async fn sleep_ends_at_the_deadline() {
        let t = Instant::now();
        Deadline::after(Duration::from_millis(30)).sleep().await;
        assert!(t.elapsed() >= Duration::from_millis(30));
    }
}
