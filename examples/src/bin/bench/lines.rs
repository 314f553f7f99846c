//! What the bench prints: text for people, JSON lines (through serde_json) for tools.

use serde::Serialize;

/// One JSON line of the front end (the report's own rows come from
/// `BenchReport::json_lines`); `kind` names it.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Line<'a> {
    Machine {
        cpus: usize,
        cpu_model: &'a str,
        load_average: &'a str,
        rustc: &'a str,
        release: bool,
    },
    Skipped {
        store: &'a str,
        reason: &'a str,
    },
    Store {
        store: &'a str,
        server_version: &'a str,
    },
    Error {
        store: &'a str,
        error: String,
    },
    Target {
        store: &'a str,
        target: &'a str,
        measured: &'a str,
        met: bool,
    },
    PollingVsNotified {
        store: &'a str,
        tasks: usize,
        polling_median_ns: u128,
        notified_median_ns: u128,
        polling_overlaps: u64,
    },
}

/// Prints to stdout, or to stderr when stdout carries JSON.
pub struct Out {
    pub json: bool,
}

impl Out {
    pub fn text(&self, s: &str) {
        if self.json {
            eprintln!("{s}");
        } else {
            println!("{s}");
        }
    }

    /// A JSON line already rendered.
    pub fn json(&self, line: &str) {
        if self.json {
            println!("{line}");
        }
    }

    pub fn line(&self, line: &Line<'_>) {
        if self.json {
            match serde_json::to_string(line) {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("cannot render a JSON line: {e}"),
            }
        }
    }
}

/// The load average (1, 5, 15 minutes), or `unknown`.
pub fn load_average() -> String {
    or_unknown(
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")),
    )
}

/// The machine the figures were measured on.
pub struct Machine {
    cpus: usize,
    cpu_model: String,
    load: String,
    rustc: String,
}

fn or_unknown(value: Option<String>) -> String {
    value.unwrap_or_else(|| "unknown".to_owned())
}

impl Machine {
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_owned());
        let rustc = std::process::Command::new(std::env::var("RUSTC").unwrap_or("rustc".into()))
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned());
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: or_unknown(cpu_model),
            load: load_average(),
            rustc: or_unknown(rustc),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "machine: {} CPU(s), {}; load average {}; {}; build: {}",
            self.cpus,
            self.cpu_model,
            self.load,
            self.rustc,
            if cfg!(debug_assertions) {
                "debug (timings meaningless)"
            } else {
                "release"
            }
        )
    }

    pub fn line(&self) -> Line<'_> {
        Line::Machine {
            cpus: self.cpus,
            cpu_model: &self.cpu_model,
            load_average: &self.load,
            rustc: &self.rustc,
            release: !cfg!(debug_assertions),
        }
    }
}
