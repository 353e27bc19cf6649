//! When to try a send again: exponential back-off with full jitter, bounded in delay and in the
//! number of attempts.

use std::time::Duration;

/// Attempts before a text that keeps meeting retryable errors is failed.
pub const MAX_ATTEMPTS: u32 = 6;
const BASE: Duration = Duration::from_secs(2);
const CAP: Duration = Duration::from_secs(300);

/// The pause before attempt `attempt + 1`; `unit` is a uniform random number in `[0, 1)`.
/// A server-given `Retry-After` is a floor.
pub fn delay(attempt: u32, unit: f64, retry_after: Option<Duration>) -> Duration {
    let ceiling = BASE.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1))).min(CAP);
    let jittered = ceiling.mul_f64(unit.clamp(0.0, 1.0));
    retry_after.map_or(jittered, |floor| jittered.max(floor))
}

pub fn may_retry(attempt: u32) -> bool {
    attempt < MAX_ATTEMPTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        assert_eq!(delay(1, 0.999_999, None).as_secs(), 1);
        assert_eq!(delay(3, 0.999_999, None).as_secs(), 7);
        assert_eq!(delay(30, 0.999_999, None).as_secs(), 299);
        assert_eq!(delay(4, 0.0, None), Duration::ZERO);
    }

    #[test]
    fn retry_after_is_a_floor() {
        assert_eq!(delay(1, 0.0, Some(Duration::from_secs(9))), Duration::from_secs(9));
    }

    #[test]
    fn attempts_are_bounded() {
        assert!(may_retry(MAX_ATTEMPTS - 1));
        assert!(!may_retry(MAX_ATTEMPTS));
    }
}
