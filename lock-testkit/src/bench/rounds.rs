//! What one contender did in each round of a case, and how those figures compare.

use std::time::Duration;

use super::stats::Stats;

/// What one contender did in one round.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct RoundFigure {
    /// Median and p99 time of one cycle; `per_sec` = cycles per second, all tasks.
    pub stats: Stats,
    /// Cycles that found their key held.
    pub misses: u64,
    /// CPU time this process spent per completed cycle (user + system, all threads),
    /// where the platform tells (Linux); includes the harness's own small share.
    pub cpu_per_cycle: Option<Duration>,
}

/// Every round of one case: `rounds[r][c]` is contender `c` in round `r`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CaseRounds {
    /// What was measured (e.g. `"uncontended cycle, 1 task, 1 key"`).
    pub case: String,
    /// Tasks cycling at once.
    pub tasks: usize,
    /// The contenders' names, in the order of `rounds[r]`.
    pub contenders: Vec<String>,
    /// The figures, round by round.
    pub rounds: Vec<Vec<RoundFigure>>,
}

/// The median, least and greatest of a series.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct Spread {
    /// The median.
    pub median: f64,
    /// The least value.
    pub min: f64,
    /// The greatest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (all 0 for none).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let mut v: Vec<f64> = values.into_iter().collect();
        if v.is_empty() {
            return Spread::default();
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Spread {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }

    /// `1.05x (1.02–1.08)`.
    pub fn times(&self) -> String {
        format!("{:.2}x ({:.2}–{:.2})", self.median, self.min, self.max)
    }
}

impl CaseRounds {
    /// Index of the contender named `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.contenders.iter().position(|c| c == name)
    }

    /// Per round, `a`'s median cycle time over `b`'s (below 1: `a` is faster).
    pub fn time_ratio(&self, a: usize, b: usize) -> Spread {
        Spread::of(self.rounds.iter().map(|r| {
            let (x, y) = (r[a].stats.median, r[b].stats.median);
            if y.is_zero() {
                0.0
            } else {
                x.as_secs_f64() / y.as_secs_f64()
            }
        }))
    }

    /// Per round, `a`'s cycles per second over `b`'s (above 1: `a` does more).
    pub fn rate_ratio(&self, a: usize, b: usize) -> Spread {
        Spread::of(self.rounds.iter().map(|r| {
            let (x, y) = (r[a].stats.per_sec, r[b].stats.per_sec);
            if y > 0.0 { x / y } else { 0.0 }
        }))
    }

    /// Contender `c`'s median cycle time over the rounds (seconds).
    pub fn median_time(&self, c: usize) -> Spread {
        Spread::of(self.rounds.iter().map(|r| r[c].stats.median.as_secs_f64()))
    }

    /// Contender `c`'s median CPU time per cycle over the rounds (seconds), if measured.
    pub fn cpu_per_cycle(&self, c: usize) -> Option<f64> {
        let values: Vec<f64> = self
            .rounds
            .iter()
            .filter_map(|r| r[c].cpu_per_cycle.map(|d| d.as_secs_f64()))
            .collect();
        (!values.is_empty()).then(|| Spread::of(values).median)
    }

    /// Contender `c`'s cycles per second over the rounds.
    pub fn rate(&self, c: usize) -> Spread {
        Spread::of(self.rounds.iter().map(|r| r[c].stats.per_sec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_and_ratios() {
        let s = Spread::of([3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(s.times(), "2.00x (1.00–3.00)");
        let fig = |ms: u64, per_sec: f64| RoundFigure {
            stats: Stats {
                median: Duration::from_millis(ms),
                per_sec,
                ..Stats::default()
            },
            misses: 0,
            cpu_per_cycle: None,
        };
        let case = CaseRounds {
            case: "c".into(),
            tasks: 1,
            contenders: vec!["a".into(), "b".into()],
            rounds: vec![
                vec![fig(2, 10.0), fig(1, 20.0)],
                vec![fig(3, 30.0), fig(1, 10.0)],
            ],
        };
        let t = case.time_ratio(0, 1);
        assert_eq!((t.min, t.max), (2.0, 3.0));
        let r = case.rate_ratio(0, 1);
        assert_eq!((r.min, r.max), (0.5, 3.0));
        assert!(
            case.table(0)
                .contains("a / b: cycle time 2.50x (2.00–3.00)")
        );
    }
}
