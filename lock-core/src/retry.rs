use std::time::Duration;

use crate::LockError;

/// How [`Lock::acquire`](crate::Lock::acquire) retries. Defaults as Verrou: unlimited
/// attempts, 250 ms between tries, no timeout.
///
/// ```
/// use std::time::Duration;
/// use lock_core::RetryConfig;
///
/// let retry = RetryConfig::default()
///     .attempts(5)
///     .delay(Duration::from_millis(100))
///     .timeout(Duration::from_secs(2));
/// assert_eq!(retry.max_attempts(), Some(5));
/// ```
///
/// The fields can be read; build a value with [`RetryConfig::default`] or
/// [`RetryConfig::immediately`] and the setters (new settings may be added).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// How many `save` calls at most; `None` = unlimited. `Some(0)` is invalid.
    pub attempts: Option<u32>,
    /// The longest a waiter sleeps between two tries. A store with release
    /// notification wakes waiters earlier.
    pub delay: Duration,
    /// Give up (returning `Ok(false)`) once this much time has passed; `None` = never.
    pub timeout: Option<Duration>,
}

/// Verrou's default delay between two tries.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(250);

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: None,
            delay: DEFAULT_RETRY_DELAY,
            timeout: None,
        }
    }
}

impl RetryConfig {
    /// One try, no waiting (what [`Lock::acquire_immediately`](crate::Lock::acquire_immediately) uses).
    pub const fn immediately() -> Self {
        RetryConfig {
            attempts: Some(1),
            delay: DEFAULT_RETRY_DELAY,
            timeout: None,
        }
    }

    /// Set the maximum number of `save` calls (must be at least 1).
    pub const fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = Some(attempts);
        self
    }

    /// Retry without a limit on the number of attempts.
    pub const fn unlimited_attempts(mut self) -> Self {
        self.attempts = None;
        self
    }

    /// Set the longest sleep between two tries.
    pub const fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Give up after `timeout`.
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Never give up on time.
    pub const fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// The attempt limit, `None` when unlimited.
    pub const fn max_attempts(&self) -> Option<u32> {
        self.attempts
    }

    /// Check the configuration: `attempts: Some(0)` is `InvalidArgument` (Verrou would
    /// report success without acquiring anything), and so are a `delay` or a `timeout`
    /// under 1 ms (a zero delay would retry in a tight loop; use
    /// [`immediately`](Self::immediately) for a single try). Large values saturate:
    /// `Duration::MAX` as a timeout or delay means "practically never".
    pub fn validate(&self) -> Result<(), LockError> {
        if self.attempts == Some(0) {
            return Err(LockError::invalid(
                "retry attempts must be at least 1 (use None for unlimited attempts)",
            ));
        }
        if self.delay < Duration::from_millis(1) {
            return Err(LockError::invalid(format!(
                "retry delay must be at least 1 ms (got {:?}); a zero delay would retry in a tight loop",
                self.delay
            )));
        }
        if self.timeout.is_some_and(|t| t < Duration::from_millis(1)) {
            return Err(LockError::invalid(format!(
                "retry timeout must be at least 1 ms (got {:?}); use RetryConfig::immediately() for one try",
                self.timeout.unwrap_or_default()
            )));
        }
        Ok(())
    }

    /// How long polling takes to use up the attempts (`delay × (attempts − 1)`,
    /// saturating), if they are limited.
    pub(crate) fn attempts_budget(&self) -> Option<Duration> {
        self.attempts
            .map(|n| self.delay.saturating_mul(n.saturating_sub(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_verrous() {
        let d = RetryConfig::default();
        assert_eq!(d.attempts, None);
        assert_eq!(d.delay, Duration::from_millis(250));
        assert_eq!(d.timeout, None);
    }

    #[test]
    fn zero_attempts_is_invalid() {
        let err = RetryConfig::default().attempts(0).validate().unwrap_err();
        assert_eq!(err.code(), "E_INVALID_ARGUMENTS");
        assert!(RetryConfig::default().attempts(1).validate().is_ok());
    }

    #[test]
    fn attempts_budget_saturates() {
        let r = RetryConfig::default()
            .attempts(3)
            .delay(Duration::from_millis(100));
        assert_eq!(r.attempts_budget(), Some(Duration::from_millis(200)));
        assert_eq!(RetryConfig::default().attempts_budget(), None);
        let huge = RetryConfig::default()
            .attempts(u32::MAX)
            .delay(Duration::MAX);
        assert_eq!(huge.attempts_budget(), Some(Duration::MAX));
        assert!(huge.validate().is_ok());
    }

    #[test]
    fn zero_delay_and_zero_timeout_are_invalid() {
        for bad in [
            RetryConfig::default().delay(Duration::ZERO),
            RetryConfig::default().delay(Duration::from_micros(999)),
            RetryConfig::default().timeout(Duration::ZERO),
        ] {
            assert_eq!(
                bad.validate().unwrap_err().code(),
                "E_INVALID_ARGUMENTS",
                "{bad:?}"
            );
        }
        assert!(
            RetryConfig::default()
                .timeout(Duration::MAX)
                .validate()
                .is_ok()
        );
    }
}
