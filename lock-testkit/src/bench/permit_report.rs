//! What the semaphore and reader-writer lock rows measured, as a text table and as
//! JSON lines (durations in nanoseconds).

use std::fmt::Write as _;

use serde::Serialize;

use super::report::{Contended, Uncontended, fmt_duration, fmt_rate};
use super::rounds::Spread;
use super::stats::nanos;

/// An uncontended permit cycle: `acquire_immediately` + `release` of a semaphore or a
/// read lock, against the permit baseline.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct PermitUncontended {
    /// What was cycled (e.g. `"semaphore (4 permits)"`, `"read lock"`).
    pub what: String,
    /// Medians over the runs; `ratio` is the median of the per-run ratios.
    pub cycle: Uncontended,
    /// The per-run ratios: median, least, greatest.
    pub ratio: Spread,
}

/// A contended permit run: tasks on one semaphore or reader-writer lock.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct PermitContended {
    /// What contended (e.g. `"semaphore (4 permits), 4+8 tasks"`).
    pub what: String,
    /// The key's limit: permits, or [`RW_LIMIT`](lock_core::permits::RW_LIMIT) for a
    /// reader-writer lock (a writer holds all of it).
    pub limit: u32,
    /// The figures; `overlaps` counts the entries that took the holders inside over
    /// the limit (must be 0).
    pub contended: Contended,
}

/// The semaphore and reader-writer lock rows of one store.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct PermitReport {
    /// The store's name.
    pub store: String,
    /// What the permit baseline does.
    pub baseline: String,
    /// Runs per figure.
    pub runs: usize,
    /// Uncontended cycles.
    pub uncontended: Vec<PermitUncontended>,
    /// Contended runs.
    pub contended: Vec<PermitContended>,
}

/// One JSON line; `kind` names the row.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Line<'a> {
    PermitUncontended {
        store: &'a str,
        runs: usize,
        what: &'a str,
        store_median_ns: u64,
        store_p99_ns: u64,
        store_per_sec: f64,
        baseline_median_ns: u64,
        baseline_per_sec: f64,
        ratio: f64,
        ratio_min: f64,
        ratio_max: f64,
        baseline: &'a str,
    },
    PermitContended {
        store: &'a str,
        runs: usize,
        what: &'a str,
        limit: u32,
        tasks: usize,
        handoff_median_ns: u64,
        handoff_p99_ns: u64,
        handoffs: u64,
        sections_per_sec: f64,
        over_limit: u64,
        round_trip_median_ns: u64,
        ratio: f64,
        ratio_min: f64,
        ratio_max: f64,
    },
}

/// Four decimals (a non-finite value becomes `null`).
fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

fn spread(median: f64, min: f64, max: f64) -> String {
    format!("{median:.2}x ({min:.2}–{max:.2})")
}

impl PermitReport {
    /// Entries over the limit in every contended run (must be 0).
    pub fn over_limit(&self) -> u64 {
        self.contended.iter().map(|c| c.contended.overlaps).sum()
    }

    /// The rows as a text table: what, the project's figure, the baseline's (or the
    /// raw round trip's), and the ratio, median (min–max over the runs).
    pub fn table(&self) -> String {
        let mut rows = vec![["row", "project", "baseline", "ratio (min–max)"].map(str::to_owned)];
        for u in &self.uncontended {
            let c = &u.cycle;
            rows.push([
                format!("{} cycle, median", u.what),
                fmt_duration(c.store.median),
                fmt_duration(c.baseline.median),
                spread(u.ratio.median, u.ratio.min, u.ratio.max),
            ]);
        }
        for p in &self.contended {
            let c = &p.contended;
            rows.push([
                format!("{}, handoff (vs RTT)", p.what),
                fmt_duration(c.handoff.median),
                fmt_duration(c.round_trip.median),
                spread(c.ratio, c.ratio_min, c.ratio_max),
            ]);
            rows.push([
                "  sections/s (over limit)".to_owned(),
                fmt_rate(c.sections_per_sec),
                format!("({})", c.overlaps),
                String::new(),
            ]);
        }
        let mut t = format!(
            "semaphores and reader-writer locks: {}  (median of {} run(s); baseline: {})\n",
            self.store, self.runs, self.baseline
        );
        for [name, project, baseline, ratio] in rows {
            let line = format!("{name:<56} {project:>12} {baseline:>12} {ratio:>22}");
            let _ = writeln!(t, "{}", line.trim_end());
        }
        t
    }

    /// The rows as JSON lines (durations in nanoseconds).
    pub fn json_lines(&self) -> Vec<String> {
        let uncontended = self.uncontended.iter().map(|u| Line::PermitUncontended {
            store: &self.store,
            runs: self.runs,
            what: &u.what,
            store_median_ns: nanos(u.cycle.store.median),
            store_p99_ns: nanos(u.cycle.store.p99),
            store_per_sec: round4(u.cycle.store.per_sec),
            baseline_median_ns: nanos(u.cycle.baseline.median),
            baseline_per_sec: round4(u.cycle.baseline.per_sec),
            ratio: round4(u.ratio.median),
            ratio_min: round4(u.ratio.min),
            ratio_max: round4(u.ratio.max),
            baseline: &self.baseline,
        });
        let contended = self.contended.iter().map(|p| {
            let c = &p.contended;
            Line::PermitContended {
                store: &self.store,
                runs: self.runs,
                what: &p.what,
                limit: p.limit,
                tasks: c.tasks,
                handoff_median_ns: nanos(c.handoff.median),
                handoff_p99_ns: nanos(c.handoff.p99),
                handoffs: c.handoff.count,
                sections_per_sec: round4(c.sections_per_sec),
                over_limit: c.overlaps,
                round_trip_median_ns: nanos(c.round_trip.median),
                ratio: round4(c.ratio),
                ratio_min: round4(c.ratio_min),
                ratio_max: round4(c.ratio_max),
            }
        });
        uncontended
            .chain(contended)
            .map(|line| serde_json::to_string(&line).unwrap_or_default())
            .collect()
    }
}
