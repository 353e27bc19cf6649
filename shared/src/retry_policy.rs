//! When to try a send again: exponential back-off with full jitter, bounded in delay and in the
//! number of attempts. A deployment sets the bounds (`Settings::from_env`).

use std::time::Duration;

/// The most attempts a deployment may allow: the lanes' `maxReceiveCount` is sized for this many
/// (each attempt may be received about three times), so a text still being retried never
/// reaches a DLQ.
pub const MAX_ATTEMPTS: u32 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before a text that keeps meeting retryable errors is failed (1 to
    /// [`MAX_ATTEMPTS`]).
    pub max_attempts: u32,
    /// The ceiling of the first retry's pause; it doubles with each attempt.
    pub base: Duration,
    /// The ceiling no pause grows beyond.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: MAX_ATTEMPTS, base: Duration::from_secs(2), max_delay: Duration::from_secs(300) }
    }
}

impl RetryPolicy {
    /// The pause before attempt `attempt + 1`; `unit` is a uniform random number in `[0, 1)`.
    /// A server-given `Retry-After` is a floor.
    pub fn delay(&self, attempt: u32, unit: f64, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1))).min(self.max_delay);
        let jittered = ceiling.mul_f64(unit.clamp(0.0, 1.0));
        retry_after.map_or(jittered, |floor| jittered.max(floor))
    }

    pub fn may_retry(&self, attempt: u32) -> bool {
        attempt < self.max_attempts.min(MAX_ATTEMPTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(1, 0.999_999, None).as_secs(), 1);
        assert_eq!(policy.delay(3, 0.999_999, None).as_secs(), 7);
        assert_eq!(policy.delay(30, 0.999_999, None).as_secs(), 299);
        assert_eq!(policy.delay(4, 0.0, None), Duration::ZERO);
        let quick = RetryPolicy { base: Duration::from_secs(1), max_delay: Duration::from_secs(10), ..policy };
        assert_eq!(quick.delay(3, 0.999_999, None).as_secs(), 3);
        assert_eq!(quick.delay(9, 0.999_999, None).as_secs(), 9);
    }

    #[test]
    fn retry_after_is_a_floor() {
        assert_eq!(RetryPolicy::default().delay(1, 0.0, Some(Duration::from_secs(9))), Duration::from_secs(9));
    }

    #[test]
    fn attempts_are_bounded_and_never_beyond_what_the_lanes_allow() {
        let policy = RetryPolicy::default();
        assert!(policy.may_retry(MAX_ATTEMPTS - 1));
        assert!(!policy.may_retry(MAX_ATTEMPTS));
        let fewer = RetryPolicy { max_attempts: 2, ..policy };
        assert!(fewer.may_retry(1) && !fewer.may_retry(2));
        let more = RetryPolicy { max_attempts: 50, ..policy };
        assert!(!more.may_retry(MAX_ATTEMPTS));
    }
}
