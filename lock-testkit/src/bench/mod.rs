//! The benchmark harness: how much a store adds to its own raw commands, and how fast a
//! lock passes from one holder to the next.
//!
//! [`run_bench`] measures any store (`Arc<dyn LockStore>`) against a [`Baseline`] the
//! caller supplies: the raw commands the store needs for the same work, sent through the
//! *same* connection, measured in the same run. Every timed figure is therefore reported
//! next to the baseline's and as a ratio, which is what stays meaningful on a noisy
//! machine.
//!
//! | scenario | what is timed | compared with |
//! |---|---|---|
//! | uncontended cycle | one task: `acquire_immediately` + `release` of one key, back to back | [`Baseline::cycle`] on another key |
//! | contended handoff | N tasks on one key with default options (retry delay 250 ms, woken by release notification where the store has it), each doing a short critical section: time from a holder calling `release` to the next holder's `acquire` returning | [`Baseline::round_trip`] (one raw command) |
//! | many keys | 64 tasks over 10 000 keys, `acquire_immediately` + `release`, cycles/s | the same with [`Baseline::cycle`] |
//! | semaphore / read-lock cycle ([`run_permit_bench`]) | one task: `acquire_immediately` + `release` of a semaphore of `k` permits, and of a read lock | a [`PermitBaseline`]: the same store work without `lock-core` |
//! | semaphore / reader-writer handoff ([`run_permit_bench`]) | a semaphore of 1 permit with N tasks, of `k` permits with `k + N` tasks, a reader-writer lock with N readers and `max(1, N / 4)` writers: from a release to the acquire it let in; a counter of the holders inside must never pass the limit | [`Baseline::round_trip`] |
//! | memory | bytes the process holds after 1 000 000 distinct keys were acquired and released (needs an allocation counter, see [`BenchConfig::allocated_bytes`]) | — |
//!
//! Each figure is the median of its values over [`BenchConfig::runs`] runs; a ratio is
//! the median of the per-run ratios (store and baseline of one run ran back to back,
//! alternating which goes first). Overlaps (two holders inside the critical section at
//! once) are summed over all runs and must be 0.
//!
//! The harness runs the scenarios and fills a [`BenchReport`]; the report renders itself as a table ([`BenchReport::table`]) or JSON lines
//! ([`BenchReport::json_lines`]). Nothing here is process-global: a front end that wants
//! the memory figure installs its own counting allocator and hands its counter over.
//!
//! ```no_run
//! # async fn example() -> Result<(), lock_core::LockError> {
//! use std::sync::Arc;
//! use lock_testkit::bench::{BenchConfig, MutexBaseline, run_bench};
//!
//! # let my_store: Arc<dyn lock_core::LockStore> = Arc::new(lock_core::testing::TestStore::default());
//! // Your store, and the raw commands it is built on (here: an in-process mutex).
//! let report = run_bench(my_store, Arc::new(MutexBaseline::new()), &BenchConfig::quick()).await?;
//! println!("{}", report.table());
//! assert_eq!(report.overlaps(), 0);
//! # Ok(()) }
//! ```

mod baseline;
mod compare;
mod contended;
mod contender;
mod harness;
mod json;
mod many;
mod permit_report;
mod permits;
mod report;
mod rounds;
mod stats;

use std::time::Duration;

use lock_core::DEFAULT_TTL;

pub use baseline::{Baseline, MutexBaseline};
pub use compare::compare_cycles;
pub use contender::{
    BaselineCycles, BaselineKey, Contender, KeyCycle, KeyedCycles, LockCycles, StoreOnly,
};
pub use harness::{run_bench, run_contended};
pub use permit_report::{PermitContended, PermitReport, PermitUncontended};
pub use permits::{PermitBaseline, PermitTableBaseline, StorePermitsOnly, run_permit_bench};
pub use report::{BenchReport, Contended, ManyKeys, Memory, Uncontended, fmt_duration, fmt_rate};
pub use rounds::{CaseRounds, RoundFigure, Spread};
pub use stats::Stats;

/// What to run and for how long.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BenchConfig {
    /// Runs of every timed scenario; each figure is the median over them. At least 1.
    pub runs: usize,
    /// How long each timed phase (store or baseline) of the uncontended and many-keys
    /// scenarios runs.
    pub phase: Duration,
    /// How long each contended run lasts (per task count).
    pub contended_phase: Duration,
    /// Task counts of the contended scenario.
    pub contended_tasks: Vec<usize>,
    /// Permits `k` of the semaphore rows of [`run_permit_bench`] (its uncontended
    /// cycle, and its contended runs with `k + N` tasks). At least 1.
    pub semaphore_permits: u32,
    /// Tasks of the many-keys scenario.
    pub many_tasks: usize,
    /// Keys of the many-keys scenario.
    pub many_keys: usize,
    /// Distinct keys of the memory scenario; `None` skips it (it only makes sense for
    /// a store that keeps its locks in this process).
    pub memory_keys: Option<usize>,
    /// Bytes currently allocated by the process, read before and after each step of
    /// the memory scenario; without it the memory scenario reports nothing.
    ///
    /// The harness keeps no allocator of its own: the program that runs it installs a
    /// counting `#[global_allocator]` and passes its counter here (the bench front end
    /// `examples/src/bin/bench` does).
    pub allocated_bytes: Option<fn() -> usize>,
    /// Prefix of every key the bench uses (the store's and the baseline's).
    pub key_prefix: String,
    /// TTL of the locks taken.
    pub ttl: Duration,
}

impl BenchConfig {
    /// The full benchmark: 3 runs, 1 s phases, 2 s contended runs with 1, 8 and 64
    /// tasks, 64 tasks over 10 000 keys.
    pub fn full() -> Self {
        BenchConfig {
            runs: 3,
            phase: Duration::from_secs(1),
            contended_phase: Duration::from_secs(2),
            contended_tasks: vec![1, 8, 64],
            semaphore_permits: 4,
            many_tasks: 64,
            many_keys: 10_000,
            memory_keys: None,
            allocated_bytes: None,
            key_prefix: "bench:".to_owned(),
            ttl: DEFAULT_TTL,
        }
    }

    /// A smoke run: one short run of everything (100 ms phases, 300 ms contended runs,
    /// 1 000 keys). Proves the harness and the store work; its timings mean little.
    pub fn quick() -> Self {
        BenchConfig {
            runs: 1,
            phase: Duration::from_millis(100),
            contended_phase: Duration::from_millis(300),
            many_keys: 1_000,
            ..Self::full()
        }
    }
}
