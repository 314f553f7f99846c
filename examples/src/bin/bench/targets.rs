//! The performance targets of the design, checked against a report.

use std::time::Duration;

use lock_testkit::bench::{BenchReport, fmt_duration};

use crate::lines::Line;

pub struct Target {
    what: String,
    measured: String,
    met: bool,
}

impl Target {
    pub fn text(&self) -> String {
        format!(
            "target {:<46} measured {:<12} {}",
            self.what,
            self.measured,
            if self.met { "met" } else { "NOT MET" }
        )
    }

    pub fn line<'a>(&'a self, store: &'a str) -> Line<'a> {
        Line::Target {
            store,
            target: &self.what,
            measured: &self.measured,
            met: self.met,
        }
    }
}

pub fn targets(store: &str, r: &BenchReport) -> Vec<Target> {
    let mut t = Vec::new();
    let cycle_ratio = match store {
        "redis" => Some(1.15),
        "postgres" => Some(1.2),
        _ => None,
    };
    if let Some(max) = cycle_ratio {
        t.push(Target {
            what: format!("uncontended cycle <= {max}x baseline"),
            measured: format!("{:.2}x", r.uncontended.ratio),
            met: r.uncontended.ratio <= max,
        });
    }
    if store == "memory" {
        t.push(Target {
            what: "uncontended cycle <= 1 µs".to_owned(),
            measured: fmt_duration(r.uncontended.store.median),
            met: r.uncontended.store.median <= Duration::from_micros(1),
        });
    }
    for c in &r.contended {
        match store {
            "redis" | "postgres" => t.push(Target {
                what: format!("handoff ({} tasks) <= 3x round trip", c.tasks),
                measured: format!("{:.2}x", c.ratio),
                met: c.ratio <= 3.0,
            }),
            "memory" => t.push(Target {
                what: format!("handoff ({} tasks) <= 10 µs", c.tasks),
                measured: fmt_duration(c.handoff.median),
                met: c.handoff.median <= Duration::from_micros(10),
            }),
            _ => {}
        }
        t.push(Target {
            what: format!("overlaps ({} tasks) = 0", c.tasks),
            measured: c.overlaps.to_string(),
            met: c.overlaps == 0,
        });
    }
    t.push(Target {
        what: "many keys >= 0.8x baseline cycles/s".to_owned(),
        measured: format!("{:.2}x", r.many_keys.ratio),
        met: r.many_keys.ratio >= 0.8,
    });
    t
}
