//! What a bench run measured, and its rendering as a text table.

use std::fmt::Write as _;
use std::time::Duration;

use super::stats::{Stats, ratio};

/// Uncontended cycle: store against baseline.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct Uncontended {
    /// `acquire_immediately` + `release` through `lock-core` and the store.
    pub store: Stats,
    /// [`Baseline::cycle`](super::Baseline::cycle).
    pub baseline: Stats,
    /// Store median / baseline median (median of the per-run ratios).
    pub ratio: f64,
}

/// Contended handoff with one task count.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct Contended {
    /// Tasks contending for the key.
    pub tasks: usize,
    /// From a holder calling `release` to the next holder's `acquire` returning.
    pub handoff: Stats,
    /// Critical sections completed per second.
    pub sections_per_sec: f64,
    /// Times two tasks were inside the critical section at once (summed over runs;
    /// must be 0).
    pub overlaps: u64,
    /// [`Baseline::round_trip`](super::Baseline::round_trip), measured in the same run.
    pub round_trip: Stats,
    /// Handoff median / round-trip median (median of the per-run ratios).
    pub ratio: f64,
    /// The least per-run ratio.
    pub ratio_min: f64,
    /// The greatest per-run ratio.
    pub ratio_max: f64,
}

/// Throughput over many keys.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct ManyKeys {
    /// Tasks.
    pub tasks: usize,
    /// Keys.
    pub keys: usize,
    /// Store cycles (acquired and released) per second.
    pub store_per_sec: f64,
    /// Baseline cycles per second.
    pub baseline_per_sec: f64,
    /// Store / baseline (median of the per-run ratios).
    pub ratio: f64,
    /// Store acquires that found the key held (another task had it), summed over runs.
    pub store_misses: u64,
    /// Baseline cycles that found the key held, summed over runs.
    pub baseline_misses: u64,
}

/// Memory held by an in-process store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Memory {
    /// Distinct keys.
    pub keys: usize,
    /// Growth of allocated bytes after each key was acquired and released in turn,
    /// through `lock-core` (`create_lock`, `acquire_immediately`, `release`).
    pub cycled_bytes: i64,
    /// Growth of allocated bytes with every key held at once (`save` on the store).
    pub held_bytes: i64,
    /// Growth of allocated bytes after all those were released (`delete`): what the
    /// store keeps after a burst.
    pub released_bytes: i64,
}

/// Everything measured for one store.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct BenchReport {
    /// The store's name.
    pub store: String,
    /// What the baseline does.
    pub baseline: String,
    /// Runs per figure.
    pub runs: usize,
    /// Uncontended cycle.
    pub uncontended: Uncontended,
    /// Contended handoff, one entry per task count.
    pub contended: Vec<Contended>,
    /// Many keys.
    pub many_keys: ManyKeys,
    /// Memory, when measured.
    pub memory: Option<Memory>,
}

/// One row of the table: name, store, baseline, ratio.
type Row = [String; 4];

fn row(name: impl Into<String>, store: String, baseline: String, ratio: String) -> Row {
    [name.into(), store, baseline, ratio]
}

fn times(r: f64) -> String {
    format!("{r:.2}x")
}

impl BenchReport {
    /// Overlaps seen in every contended run (must be 0).
    pub fn overlaps(&self) -> u64 {
        self.contended.iter().map(|c| c.overlaps).sum()
    }

    /// The report as a text table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "store: {}  (median of {} run{}; baseline: {})",
            self.store,
            self.runs,
            if self.runs == 1 { "" } else { "s" },
            self.baseline
        );
        let header = ["row", "store", "baseline", "ratio"].map(str::to_owned);
        for [name, a, b, r] in std::iter::once(header).chain(self.rows()) {
            let _ = writeln!(t, "{name:<38} {a:>14} {b:>14} {r:>9}");
        }
        t
    }

    fn rows(&self) -> Vec<Row> {
        let u = &self.uncontended;
        let mut rows = vec![
            row(
                "uncontended cycle, median",
                fmt_duration(u.store.median),
                fmt_duration(u.baseline.median),
                times(u.ratio),
            ),
            row(
                "uncontended cycle, p99",
                fmt_duration(u.store.p99),
                fmt_duration(u.baseline.p99),
                times(ratio(u.store.p99, u.baseline.p99)),
            ),
            row(
                "uncontended cycles/s",
                fmt_rate(u.store.per_sec),
                fmt_rate(u.baseline.per_sec),
                String::new(),
            ),
        ];
        for c in &self.contended {
            let n = c.tasks;
            rows.push(row(
                format!("handoff, {n} task(s), median (vs RTT)"),
                fmt_duration(c.handoff.median),
                fmt_duration(c.round_trip.median),
                times(c.ratio),
            ));
            rows.push(row(
                format!("handoff, {n} task(s), p99"),
                fmt_duration(c.handoff.p99),
                fmt_duration(c.round_trip.p99),
                String::new(),
            ));
            rows.push(row(
                format!("sections/s, {n} task(s) (overlaps)"),
                fmt_rate(c.sections_per_sec),
                format!("({})", c.overlaps),
                String::new(),
            ));
        }
        let m = &self.many_keys;
        rows.push(row(
            format!("many keys: {} tasks, {} keys", m.tasks, m.keys),
            fmt_rate(m.store_per_sec),
            fmt_rate(m.baseline_per_sec),
            times(m.ratio),
        ));
        if let Some(mem) = &self.memory {
            let bytes = [
                (
                    format!("memory: {} keys cycled, kept", mem.keys),
                    mem.cycled_bytes,
                ),
                (
                    format!("memory: {} keys held at once", mem.keys),
                    mem.held_bytes,
                ),
                (
                    "memory: ... then released, kept".to_owned(),
                    mem.released_bytes,
                ),
            ];
            for (name, b) in bytes {
                rows.push(row(name, fmt_bytes(b), String::new(), String::new()));
            }
        }
        rows
    }
}

/// `1.23 µs`-style rendering of a duration.
pub fn fmt_duration(d: Duration) -> String {
    let ns = d.as_secs_f64() * 1e9;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// `1 234 567/s`-style rendering of a rate.
pub fn fmt_rate(r: f64) -> String {
    let n = r.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out + "/s"
}

fn fmt_bytes(b: i64) -> String {
    let abs = b.unsigned_abs() as f64;
    let sign = if b < 0 { "-" } else { "" };
    if abs < 1024.0 {
        format!("{b} B")
    } else if abs < 1024.0 * 1024.0 {
        format!("{sign}{:.1} KiB", abs / 1024.0)
    } else {
        format!("{sign}{:.1} MiB", abs / (1024.0 * 1024.0))
    }
}

/// The rendering of a case's rounds (the figures themselves are in `rounds`).
impl super::rounds::CaseRounds {
    /// The case as a text table: each contender's median cycle time and cycles/s
    /// (median and min–max over rounds), then `subject`'s ratio to every other
    /// contender, per round (min–max): by cycle time with one task, by cycles/s with
    /// more. No ratios when `subject` is out of range.
    pub fn table(&self, subject: usize) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{} — {} task(s), {} interleaved round(s)",
            self.case,
            self.tasks,
            self.rounds.len()
        );
        let _ = writeln!(
            t,
            "  {:<44} {:>26} {:>30} {:>22}",
            "contender",
            "cycle time, median (min–max)",
            "cycles/s, median (min–max)",
            "client CPU per cycle"
        );
        for (c, name) in self.contenders.iter().enumerate() {
            let time = self.median_time(c);
            let rate = self.rate(c);
            let cpu = self.cpu_per_cycle(c);
            let secs = |s: f64| fmt_duration(Duration::from_secs_f64(s.max(0.0)));
            let _ = writeln!(
                t,
                "  {:<44} {:>26} {:>30} {:>22}",
                name,
                format!(
                    "{} ({}–{})",
                    secs(time.median),
                    secs(time.min),
                    secs(time.max)
                ),
                format!("{:.0} ({:.0}–{:.0})", rate.median, rate.min, rate.max),
                cpu.map_or_else(|| "-".to_owned(), secs),
            );
        }
        let by_time = self.tasks == 1;
        for (c, name) in self.contenders.iter().enumerate() {
            if c == subject || subject >= self.contenders.len() {
                continue;
            }
            let (spread, what) = if by_time {
                (self.time_ratio(subject, c), "cycle time")
            } else {
                (self.rate_ratio(subject, c), "cycles/s")
            };
            let _ = writeln!(
                t,
                "  {} / {}: {} {}",
                self.contenders[subject],
                name,
                what,
                spread.times()
            );
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_rendered_readably() {
        assert_eq!(fmt_duration(Duration::from_nanos(850)), "850 ns");
        assert_eq!(fmt_duration(Duration::from_micros(1_234)), "1.23 ms");
        assert_eq!(fmt_rate(1_234_567.4), "1 234 567/s");
        assert_eq!(fmt_bytes(-2048), "-2.0 KiB");
    }

    #[test]
    fn table_has_one_line_per_row() {
        let report = BenchReport {
            store: "test".to_owned(),
            runs: 1,
            contended: vec![Contended::default(); 2],
            memory: Some(Memory::default()),
            ..Default::default()
        };
        let table = report.table();
        // Title, header, 3 uncontended, 3 per task count, many keys, 3 memory.
        assert_eq!(table.lines().count(), 2 + 3 + 2 * 3 + 1 + 3, "{table}");
        assert!(table.starts_with("store: test  (median of 1 run; baseline: )"));
    }
}
