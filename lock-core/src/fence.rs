//! [`FenceCounter`]: the fencing-token rule of the in-process stores, in one place.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

/// Mints fencing tokens `max(last + 1, wall clock in µs)`. The `+ 1` makes tokens
/// strictly increase within one counter; the clock makes a new counter (a restarted
/// process) start above the tokens of the last one, assuming the wall clock has not
/// stepped back in between — so a resource that kept the last token still accepts the
/// new holder's writes.
///
/// The wall clock is read once, when the counter is made, and carried forward by
/// tokio's monotonic clock: [`next_at`](Self::next_at) takes a reading of it the caller
/// already has. (A wall clock stepped forward later is not followed, which only keeps
/// this counter's tokens lower than the next counter's first ones.) Under tokio's
/// paused test clock (`tokio::time::pause`, `advance`), tokens follow the virtual time:
/// each counter's tokens still increase, but a counter made after the virtual clock was
/// advanced starts from the real wall clock, below an earlier counter's latest tokens.
#[derive(Debug)]
pub struct FenceCounter {
    last: AtomicU64,
    /// The wall clock when the counter was made (µs since the Unix epoch), and tokio's
    /// clock then.
    origin: (u64, Instant),
}

impl Default for FenceCounter {
    fn default() -> Self {
        let wall_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        FenceCounter {
            last: AtomicU64::new(0),
            origin: (wall_us, Instant::now()),
        }
    }
}

impl FenceCounter {
    /// The next token.
    pub fn next(&self) -> u64 {
        self.next_at(Instant::now())
    }

    /// The next token, `now` being a reading of tokio's clock taken for this call.
    pub fn next_at(&self, now: Instant) -> u64 {
        let (wall_us, at) = self.origin;
        let since =
            u64::try_from(now.saturating_duration_since(at).as_micros()).unwrap_or(u64::MAX);
        let now_us = wall_us.saturating_add(since);
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

    #[tokio::test(start_paused = true)]
    async fn tokens_follow_the_clock_reading_given() {
        let counter = FenceCounter::default();
        let a = counter.next();
        let later = Instant::now() + std::time::Duration::from_secs(10);
        let b = counter.next_at(later);
        assert!(b >= a + 10_000_000, "10 s later, {b} is not 10 s above {a}");
        assert!(
            counter.next() > b,
            "an earlier reading still gives a greater token"
        );
    }
}
