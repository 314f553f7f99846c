//! Medians, percentiles and rates of timed samples.

use std::time::Duration;

/// Median, 99th percentile and rate of a series of timed operations.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Median duration.
    pub median: Duration,
    /// 99th percentile duration.
    pub p99: Duration,
    /// Operations per second over the phase's wall time.
    pub per_sec: f64,
    /// Operations timed.
    pub count: u64,
}

impl Stats {
    /// The figures of `samples` (nanoseconds), timed over `wall`.
    pub(crate) fn from_samples(mut samples: Vec<u64>, wall: Duration) -> Stats {
        samples.sort_unstable();
        let count = samples.len() as u64;
        Stats {
            median: Duration::from_nanos(percentile(&samples, 0.5)),
            p99: Duration::from_nanos(percentile(&samples, 0.99)),
            per_sec: rate(count, wall),
            count,
        }
    }

    /// The median of each figure over runs (counts are summed).
    pub(crate) fn median_of(runs: &[Stats]) -> Stats {
        Stats {
            median: median_duration(runs.iter().map(|s| s.median)),
            p99: median_duration(runs.iter().map(|s| s.p99)),
            per_sec: median_f64(runs.iter().map(|s| s.per_sec).collect()),
            count: runs.iter().map(|s| s.count).sum(),
        }
    }
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Operations per second.
pub(crate) fn rate(count: u64, wall: Duration) -> f64 {
    if wall.is_zero() {
        0.0
    } else {
        count as f64 / wall.as_secs_f64()
    }
}

/// A duration in whole nanoseconds (saturating).
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The median (the mean of the middle two for an even count); 0 for none.
pub(crate) fn median_f64(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn median_duration(values: impl Iterator<Item = Duration>) -> Duration {
    Duration::from_secs_f64(median_f64(values.map(|d| d.as_secs_f64()).collect()))
}

/// `a / b`, 0 when `b` is zero.
pub(crate) fn ratio(a: Duration, b: Duration) -> f64 {
    if b.is_zero() {
        0.0
    } else {
        a.as_secs_f64() / b.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_right_rank() {
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&samples, 0.5), 50);
        assert_eq!(percentile(&samples, 0.99), 99);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn medians_of_runs() {
        assert_eq!(median_f64(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_f64(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
