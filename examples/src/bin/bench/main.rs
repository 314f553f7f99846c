//! The benchmark front end: every store against its raw baseline, in one run.
//!
//! ```text
//! cargo run --release -p examples --features full --bin bench -- --store memory|redis|postgres|mysql|sqlite|all [--json] [--quick]
//! ```
//!
//! * `--store` (repeatable, or comma-separated; default `all`);
//! * `--json`: JSON lines on stdout (the table goes to stderr);
//! * `--quick`: one short run of everything (the smoke mode CI runs);
//! * `--compare-polling`: also measure the contended handoff with the store's release
//!   notification and holder TTL hidden (waiters poll every 250 ms, as Verrou's do), in
//!   the same run;
//! * `--compare`: instead of the table against the store's own baseline, the project
//!   beside peer libraries and raw clients (memory, redis, postgres), in interleaved
//!   rounds, with min–max ratios and the servers' own limits (see `compare.rs`); peers
//!   and raw clients other than fred need `--features bench`; `--only A|B` keeps the
//!   contenders whose name contains A or B (and skips the server tools and the handoff),
//!   to profile one of them;
//! * `--runs N`: runs per figure (default 3; `--quick`: 1), rounds with `--compare`;
//! * `--prefix P`: key prefix (default `bench:`), so two benches can share a server.
//!
//! Servers: `LOCK_REDIS_URL`, `LOCK_POSTGRES_URL`, `LOCK_MYSQL_URL` (see the README);
//! SQLite uses a file in the system temp folder. An unreachable server is reported as
//! `skipped` (a JSON line `{"kind":"skipped",…}`) and the others still run.
//!
//! The baselines send the raw commands through the store's own connection:
//! * memory: `tokio::sync::Mutex` try_lock + unlock;
//! * Redis: `SET key owner NX PX ttl` + `EVALSHA` of the owner-checked delete script
//!   (`GET` = owner → `DEL`), on the store's fred client;
//! * SQL: the store's own acquire and release statements
//!   (`lock_store_database::statements`), on the pool the store was given.
//!
//! Beside the mutex rows, each store gets semaphore and reader-writer lock rows
//! (`lock_testkit::bench::run_permit_bench`): the uncontended cycle of a semaphore and
//! of a read lock against a permit baseline, and contended handoffs where the holders
//! inside must never pass the limit (a run over it fails the bench). Permit baselines:
//! * memory: lock-core's `PermitTable` called directly;
//! * Redis: the store's own permit acquire and release scripts as raw `EVALSHA` on the
//!   store's fred client (read off `MONITOR` once, see `redis_permits.rs`);
//! * SQL: the store alone through its `PermitStore` (its own statements on its pool,
//!   no lock-core): the permit statements are not public API.
//!
//! The "raw round trip" of the handoff ratio is one baseline command: for memory a
//! mutex lock + unlock; for Redis the delete script on an absent key; for SQL one
//! committed single-row upsert (a no-op statement would skip the commit's WAL flush,
//! which every lock state change pays and a handoff pays twice).
//!
//! The memory figure counts allocations with this program's own global allocator
//! ([`alloc::CountingAllocator`]); the harness only reads the counter it is handed.

mod alloc;
mod args;
mod compare;
mod lines;
mod peers;
mod prepare;
mod redis;
mod redis_permits;
mod sql;
mod targets;

use std::process::ExitCode;
use std::sync::Arc;

use lock_core::LockStore;
use lock_testkit::bench::{
    Baseline, BenchConfig, BenchReport, PermitBaseline, run_bench, run_contended, run_permit_bench,
};

use args::Args;
use lines::{Line, Out};
use prepare::{Prep, prepare};

#[global_allocator]
static ALLOC: alloc::CountingAllocator = alloc::CountingAllocator;

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

fn config(args: &Args) -> BenchConfig {
    let mut config = if args.quick {
        BenchConfig::quick()
    } else {
        BenchConfig::full()
    };
    if let Some(runs) = args.runs {
        config.runs = runs;
    }
    config.key_prefix = args.prefix.clone();
    config
}

async fn run(args: Args) -> ExitCode {
    let out = Out { json: args.json };
    let machine = lines::Machine::detect();
    out.text(&machine.describe());
    out.line(&machine.line());
    let mut failed = false;
    if args.compare {
        let config = config(&args);
        for name in &args.stores {
            failed |= !compare::compare_store(&out, name, &config, args.only.as_deref()).await;
        }
        out.text(&format!(
            "load average at the end: {}",
            lines::load_average()
        ));
        return if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    for name in &args.stores {
        failed |= !bench_store(&out, &args, name).await;
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Bench one store; `false` when something failed (a skip is no failure).
async fn bench_store(out: &Out, args: &Args, name: &str) -> bool {
    let mut config = config(args);
    let prepared = match prepare(name, &mut config, args.quick).await {
        Ok(p) => p,
        Err(Prep::Skip(reason)) => {
            out.text(&format!("\n{name}: skipped: {reason}"));
            out.line(&Line::Skipped {
                store: name,
                reason: &reason,
            });
            return true;
        }
        Err(Prep::Fail(error)) => {
            out.text(&format!("\n{name}: failed to set up: {error}"));
            out.line(&Line::Error { store: name, error });
            return false;
        }
    };
    out.text(&format!("\n{name} — server: {}", prepared.version));
    out.line(&Line::Store {
        store: name,
        server_version: &prepared.version,
    });
    let polling_view = args.compare_polling.then(|| {
        (
            Arc::new(lock_testkit::wrap::PollingOnly(prepared.store.clone())) as Arc<dyn LockStore>,
            prepared.baseline.clone(),
        )
    });
    let prepared_permits: PermitSubjects = (
        prepared.store.clone(),
        prepared.baseline.clone(),
        prepared.permit_baseline,
    );
    let report = match run_bench(prepared.store, prepared.baseline, &config).await {
        Ok(report) => report,
        Err(error) => {
            out.text(&format!("{name}: bench failed: {error}"));
            out.line(&Line::Error {
                store: name,
                error: error.to_string(),
            });
            return false;
        }
    };
    out.text(&report.table());
    for line in report.json_lines() {
        out.json(&line);
    }
    for target in targets::targets(name, &report) {
        out.text(&target.text());
        out.line(&target.line(name));
    }
    let mut ok = report.overlaps() == 0;
    ok &= bench_permits(out, name, &prepared_permits, &config).await;
    if let Some((polling, baseline)) = polling_view {
        ok &= compare_polling(out, name, &report, polling, baseline, &config).await;
    }
    ok
}

/// The semaphore and read-lock rows, beside the mutex's; `false` when they failed or a
/// run went over a limit.
async fn bench_permits(
    out: &Out,
    name: &str,
    (store, baseline, permit_baseline): &PermitSubjects,
    config: &BenchConfig,
) -> bool {
    let run = run_permit_bench(
        store.clone(),
        baseline.clone(),
        permit_baseline.clone(),
        config,
    );
    match run.await {
        Ok(report) => {
            out.text(&report.table());
            for line in report.json_lines() {
                out.json(&line);
            }
            let over = report.over_limit();
            if over > 0 {
                out.text(&format!(
                    "{name}: {over} entries went over a semaphore's or lock's limit"
                ));
            }
            over == 0
        }
        Err(error) => {
            out.text(&format!("{name}: permit bench failed: {error}"));
            out.line(&Line::Error {
                store: name,
                error: error.to_string(),
            });
            false
        }
    }
}

/// What the permit rows run on: the store, its mutex baseline (for the round trip)
/// and its permit baseline.
type PermitSubjects = (
    Arc<dyn LockStore>,
    Arc<dyn Baseline>,
    Arc<dyn PermitBaseline>,
);

/// The contended handoff again with notification hidden (Verrou-style polling), beside
/// the event-driven figures of the same run. Returns whether it succeeded.
async fn compare_polling(
    out: &Out,
    name: &str,
    report: &BenchReport,
    polling: Arc<dyn LockStore>,
    baseline: Arc<dyn Baseline>,
    config: &BenchConfig,
) -> bool {
    match run_contended(polling, baseline, config).await {
        Ok(before) => {
            out.text("handoff median: polling (before) -> event-driven (after), same run");
            for (b, a) in before.iter().zip(&report.contended) {
                let gain =
                    b.handoff.median.as_secs_f64() / a.handoff.median.as_secs_f64().max(1e-12);
                out.text(&format!(
                    "  {:>3} task(s): {:>12?} -> {:>12?}  ({gain:.0}x faster; overlaps {} / {})",
                    a.tasks, b.handoff.median, a.handoff.median, b.overlaps, a.overlaps
                ));
                out.line(&Line::PollingVsNotified {
                    store: name,
                    tasks: a.tasks,
                    polling_median_ns: b.handoff.median.as_nanos(),
                    notified_median_ns: a.handoff.median.as_nanos(),
                    polling_overlaps: b.overlaps,
                });
            }
            before.iter().all(|b| b.overlaps == 0)
        }
        Err(error) => {
            out.text(&format!("{name}: polling comparison failed: {error}"));
            false
        }
    }
}
