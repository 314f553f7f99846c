//! [`FenceCounter`]: the fencing-token rule of the in-process stores, in one place.

use std::sync::atomic::{AtomicU64, Ordering};

/// Mints fencing tokens `max(last + 1, wall clock in µs)`. The `+ 1` makes tokens
/// strictly increase within one counter; the clock makes a new counter (a restarted
/// process) start above the tokens of the last one, assuming the wall clock has not
/// stepped back in between — so a resource that kept the last token still accepts the
/// new holder's writes.
#[derive(Debug, Default)]
pub struct FenceCounter {
    last: AtomicU64,
}

impl FenceCounter {
    /// The next token.
    pub fn next(&self) -> u64 {
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = last.saturating_add(1).max(now_us);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_strictly_increase_from_the_clock() {
        let counter = FenceCounter::default();
        let a = counter.next();
        let b = counter.next();
        assert!(b > a);
        assert!(a > 1_600_000_000_000_000, "starts at the wall clock in µs");
    }
}
