//! The report as JSON lines, one object per row (durations in nanoseconds), through
//! serde_json.

use serde::Serialize;

use super::report::{BenchReport, Contended, ManyKeys, Memory, Uncontended};
use super::stats::nanos;

/// One JSON line; `kind` names the row.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Line<'a> {
    Uncontended {
        store: &'a str,
        runs: usize,
        store_median_ns: u64,
        store_p99_ns: u64,
        store_per_sec: f64,
        baseline_median_ns: u64,
        baseline_p99_ns: u64,
        baseline_per_sec: f64,
        ratio: f64,
        baseline: &'a str,
    },
    Contended {
        store: &'a str,
        runs: usize,
        tasks: usize,
        handoff_median_ns: u64,
        handoff_p99_ns: u64,
        handoffs: u64,
        sections_per_sec: f64,
        overlaps: u64,
        round_trip_median_ns: u64,
        round_trip_p99_ns: u64,
        ratio: f64,
    },
    ManyKeys {
        store: &'a str,
        runs: usize,
        tasks: usize,
        keys: usize,
        store_per_sec: f64,
        baseline_per_sec: f64,
        ratio: f64,
        store_misses: u64,
        baseline_misses: u64,
    },
    Memory {
        store: &'a str,
        keys: usize,
        cycled_bytes: i64,
        held_bytes: i64,
        released_bytes: i64,
        method: &'static str,
    },
}

/// Four decimals are plenty for rates and ratios (a non-finite value becomes `null`).
fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

impl BenchReport {
    /// The report as JSON lines (one object per row; durations in nanoseconds).
    pub fn json_lines(&self) -> Vec<String> {
        let mut lines = vec![self.uncontended_line(&self.uncontended)];
        lines.extend(self.contended.iter().map(|c| self.contended_line(c)));
        lines.push(self.many_keys_line(&self.many_keys));
        lines.extend(self.memory.as_ref().map(|m| self.memory_line(m)));
        lines
            .iter()
            .map(|line| serde_json::to_string(line).unwrap_or_default())
            .collect()
    }

    fn uncontended_line(&self, u: &Uncontended) -> Line<'_> {
        Line::Uncontended {
            store: &self.store,
            runs: self.runs,
            store_median_ns: nanos(u.store.median),
            store_p99_ns: nanos(u.store.p99),
            store_per_sec: round4(u.store.per_sec),
            baseline_median_ns: nanos(u.baseline.median),
            baseline_p99_ns: nanos(u.baseline.p99),
            baseline_per_sec: round4(u.baseline.per_sec),
            ratio: round4(u.ratio),
            baseline: &self.baseline,
        }
    }

    fn contended_line(&self, c: &Contended) -> Line<'_> {
        Line::Contended {
            store: &self.store,
            runs: self.runs,
            tasks: c.tasks,
            handoff_median_ns: nanos(c.handoff.median),
            handoff_p99_ns: nanos(c.handoff.p99),
            handoffs: c.handoff.count,
            sections_per_sec: round4(c.sections_per_sec),
            overlaps: c.overlaps,
            round_trip_median_ns: nanos(c.round_trip.median),
            round_trip_p99_ns: nanos(c.round_trip.p99),
            ratio: round4(c.ratio),
        }
    }

    fn many_keys_line(&self, m: &ManyKeys) -> Line<'_> {
        Line::ManyKeys {
            store: &self.store,
            runs: self.runs,
            tasks: m.tasks,
            keys: m.keys,
            store_per_sec: round4(m.store_per_sec),
            baseline_per_sec: round4(m.baseline_per_sec),
            ratio: round4(m.ratio),
            store_misses: m.store_misses,
            baseline_misses: m.baseline_misses,
        }
    }

    fn memory_line(&self, m: &Memory) -> Line<'_> {
        Line::Memory {
            store: &self.store,
            keys: m.keys,
            cycled_bytes: m.cycled_bytes,
            held_bytes: m.held_bytes,
            released_bytes: m.released_bytes,
            method: "counting global allocator (requested bytes)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_json_with_escaped_strings_and_no_nan() {
        let report = BenchReport {
            store: "a\"b\\c\n".to_owned(),
            baseline: "tab\there".to_owned(),
            runs: 1,
            uncontended: Uncontended {
                ratio: f64::NAN,
                ..Default::default()
            },
            contended: vec![Contended {
                tasks: 8,
                ratio: 1.234_56,
                ..Default::default()
            }],
            ..Default::default()
        };
        let lines = report.json_lines();
        assert_eq!(lines.len(), 3, "{lines:?}");
        let values: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).expect("valid JSON"))
            .collect();
        assert!(lines[0].starts_with("{\"kind\":\"uncontended\",\"store\":\"a\\\"b\\\\c\\n\""));
        assert_eq!(values[0]["store"], "a\"b\\c\n");
        assert_eq!(values[0]["baseline"], "tab\there");
        assert!(values[0]["ratio"].is_null(), "NaN must become null");
        assert_eq!(values[1]["kind"], "contended");
        assert_eq!(values[1]["ratio"], 1.2346);
        assert_eq!(values[2]["kind"], "many_keys");
    }
}
