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
//! | memory | bytes the process holds after 1 000 000 distinct keys were acquired and released (needs a counting allocator, see [`CountingAllocator`]) | — |
//!
//! Each figure is the median of its values over [`BenchConfig::runs`] runs; a ratio is
//! the median of the per-run ratios (store and baseline of one run ran back to back,
//! alternating which goes first). Overlaps (two holders inside the critical section at
//! once) are summed over all runs and must be 0.
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

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lock_core::{
    DEFAULT_TTL, FactoryOptions, Lock, LockError, LockFactory, LockStore, async_trait,
};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The raw commands a store needs to take and give back a lock, without the library:
/// what the store is measured against.
///
/// Send them through the store's own connection (its client or pool), so that the ratio
/// shows what the store and `lock-core` add, not a difference between connections.
///
/// Implementations for this workspace: [`MutexBaseline`] (memory); the bench front end
/// (`examples/src/bin/bench.rs`) has the Redis (`SET NX PX` + owner-checked delete
/// script, on the store's fred client) and SQL (the store's acquire and release
/// statements, on the store's pool) ones.
#[async_trait]
pub trait Baseline: Send + Sync + 'static {
    /// What the baseline does, for the report (e.g. `"SET NX PX + EVALSHA delete"`).
    fn describe(&self) -> String;

    /// Take `key` for `owner` with the raw commands and give it back. `Ok(false)` when
    /// `key` was held by someone else.
    async fn cycle(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, LockError>;

    /// One raw command: the network round trip (or, in process, the synchronisation)
    /// every lock operation costs at least. `key` is not held by anyone.
    async fn round_trip(&self, key: &str) -> Result<(), LockError>;
}

/// The in-process baseline: `tokio::sync::Mutex` `try_lock` and unlock.
///
/// A key picks one of 4 096 mutexes by its hash (std's `RandomState`, as the memory
/// store's map), so the baseline pays for finding a key's lock, like any keyed lock.
pub struct MutexBaseline {
    hasher: RandomState,
    stripes: Box<[tokio::sync::Mutex<()>]>,
}

impl Default for MutexBaseline {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MutexBaseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MutexBaseline")
            .field("stripes", &self.stripes.len())
            .finish()
    }
}

impl MutexBaseline {
    /// 4 096 mutexes.
    pub fn new() -> Self {
        MutexBaseline {
            hasher: RandomState::new(),
            stripes: (0..4096).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    fn stripe(&self, key: &str) -> &tokio::sync::Mutex<()> {
        let i = self.hasher.hash_one(key) as usize % self.stripes.len();
        &self.stripes[i]
    }
}

#[async_trait]
impl Baseline for MutexBaseline {
    fn describe(&self) -> String {
        "tokio::sync::Mutex try_lock + unlock (key hashed to one of 4096 mutexes)".to_owned()
    }

    async fn cycle(&self, key: &str, _owner: &str, _ttl: Duration) -> Result<bool, LockError> {
        Ok(self.stripe(key).try_lock().is_ok())
    }

    async fn round_trip(&self, key: &str) -> Result<(), LockError> {
        drop(self.stripe(key).lock().await);
        Ok(())
    }
}

/// A global allocator that counts the bytes currently allocated, for the memory figure.
///
/// Install it in the benchmark binary and pass [`CountingAllocator::allocated`] as
/// [`BenchConfig::allocated_bytes`]:
///
/// ```no_run
/// use lock_testkit::bench::{BenchConfig, CountingAllocator};
///
/// #[global_allocator]
/// static ALLOC: CountingAllocator = CountingAllocator;
///
/// let mut config = BenchConfig::full();
/// config.allocated_bytes = Some(CountingAllocator::allocated);
/// config.memory_keys = Some(1_000_000);
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAllocator;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

impl CountingAllocator {
    /// Bytes currently allocated through this allocator (requested sizes, so the
    /// allocator's own per-block overhead is not included).
    pub fn allocated() -> usize {
        ALLOCATED.load(Ordering::Relaxed)
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is
// only bookkeeping.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
            ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

/// What to run and for how long.
#[derive(Debug, Clone)]
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
    /// Tasks of the many-keys scenario.
    pub many_tasks: usize,
    /// Keys of the many-keys scenario.
    pub many_keys: usize,
    /// Distinct keys of the memory scenario; `None` skips it (it only makes sense for
    /// a store that keeps its locks in this process).
    pub memory_keys: Option<usize>,
    /// Bytes currently allocated by the process (see [`CountingAllocator`]); without
    /// it the memory scenario reports nothing.
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

/// Median, 99th percentile and rate of a series of timed operations.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
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
    fn from_samples(mut samples: Vec<u64>, wall: Duration) -> Stats {
        samples.sort_unstable();
        let count = samples.len() as u64;
        Stats {
            median: Duration::from_nanos(percentile(&samples, 0.5)),
            p99: Duration::from_nanos(percentile(&samples, 0.99)),
            per_sec: rate(count, wall),
            count,
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

fn rate(count: u64, wall: Duration) -> f64 {
    if wall.is_zero() {
        0.0
    } else {
        count as f64 / wall.as_secs_f64()
    }
}

/// Uncontended cycle: store against baseline.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Uncontended {
    /// `acquire_immediately` + `release` through `lock-core` and the store.
    pub store: Stats,
    /// [`Baseline::cycle`].
    pub baseline: Stats,
    /// Store median / baseline median (median of the per-run ratios).
    pub ratio: f64,
}

/// Contended handoff with one task count.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
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
    /// [`Baseline::round_trip`], measured in the same run.
    pub round_trip: Stats,
    /// Handoff median / round-trip median (median of the per-run ratios).
    pub ratio: f64,
}

/// Throughput over many keys.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
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

/// Run every scenario of `config` against `store` and `baseline`.
///
/// Errors: a store or baseline error, or a bench key found held by someone else (another
/// bench on the same server with the same [`BenchConfig::key_prefix`]).
///
/// The scenarios run in a task spawned on the current runtime, so that the store, the
/// baseline and the contending tasks are all measured on worker threads (a future
/// awaited by `block_on` runs on another thread, which can be scheduled differently).
pub async fn run_bench(
    store: Arc<dyn LockStore>,
    baseline: Arc<dyn Baseline>,
    config: &BenchConfig,
) -> Result<BenchReport, LockError> {
    let config = config.clone();
    tokio::spawn(async move { run_scenarios(store, baseline, &config).await })
        .await
        .map_err(|e| LockError::storage_msg(format!("bench task failed: {e}")))?
}

/// Only the contended-handoff scenario, for each of `config.contended_tasks`: to compare
/// two views of one store in one run, e.g. with and without release notification
/// ([`crate::wrap::PollingOnly`]).
pub async fn run_contended(
    store: Arc<dyn LockStore>,
    baseline: Arc<dyn Baseline>,
    config: &BenchConfig,
) -> Result<Vec<Contended>, LockError> {
    let config = config.clone();
    tokio::spawn(async move {
        let mut all = Vec::with_capacity(config.contended_tasks.len());
        for &tasks in &config.contended_tasks {
            all.push(bench_contended(&store, &baseline, &config, tasks).await?);
        }
        Ok(all)
    })
    .await
    .map_err(|e| LockError::storage_msg(format!("bench task failed: {e}")))?
}

async fn run_scenarios(
    store: Arc<dyn LockStore>,
    baseline: Arc<dyn Baseline>,
    config: &BenchConfig,
) -> Result<BenchReport, LockError> {
    if config.runs == 0 || config.many_tasks == 0 || config.many_keys == 0 {
        return Err(LockError::invalid(
            "runs, many_tasks and many_keys must be at least 1",
        ));
    }
    let mut report = BenchReport {
        store: store.name().to_owned(),
        baseline: baseline.describe(),
        runs: config.runs,
        ..Default::default()
    };
    report.uncontended = bench_uncontended(&store, &baseline, config).await?;
    for &tasks in &config.contended_tasks {
        report
            .contended
            .push(bench_contended(&store, &baseline, config, tasks).await?);
    }
    report.many_keys = bench_many_keys(&store, &baseline, config).await?;
    if let (Some(keys), Some(allocated)) = (config.memory_keys, config.allocated_bytes) {
        report.memory = Some(bench_memory(&store, config, keys, allocated).await?);
    }
    Ok(report)
}

fn factory(store: &Arc<dyn LockStore>) -> LockFactory {
    LockFactory::from_shared(store.clone(), FactoryOptions::default())
}

fn held_elsewhere(key: &str) -> LockError {
    LockError::storage_msg(format!(
        "bench key {key:?} is held by someone else: is another bench running with the same key prefix?"
    ))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn median_f64(mut values: Vec<f64>) -> f64 {
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

fn median_stats(runs: &[Stats]) -> Stats {
    Stats {
        median: median_duration(runs.iter().map(|s| s.median)),
        p99: median_duration(runs.iter().map(|s| s.p99)),
        per_sec: median_f64(runs.iter().map(|s| s.per_sec).collect()),
        count: runs.iter().map(|s| s.count).sum(),
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    if b.is_zero() {
        0.0
    } else {
        a.as_secs_f64() / b.as_secs_f64()
    }
}

/// How long stopping contenders may take before their waits are cancelled.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Cap on the samples kept per phase (about 40 MB).
const MAX_SAMPLES: usize = 5_000_000;

async fn time_store_cycles(lock: &Lock, phase: Duration) -> Result<Stats, LockError> {
    let mut samples = Vec::with_capacity(4096);
    let start = Instant::now();
    while start.elapsed() < phase && samples.len() < MAX_SAMPLES {
        let t = Instant::now();
        if !lock.acquire_immediately().await? {
            return Err(held_elsewhere(lock.key()));
        }
        lock.release().await?;
        samples.push(nanos(t.elapsed()));
    }
    Ok(Stats::from_samples(samples, start.elapsed()))
}

async fn time_baseline_cycles(
    baseline: &dyn Baseline,
    key: &str,
    owner: &str,
    ttl: Duration,
    phase: Duration,
) -> Result<Stats, LockError> {
    let mut samples = Vec::with_capacity(4096);
    let start = Instant::now();
    while start.elapsed() < phase && samples.len() < MAX_SAMPLES {
        let t = Instant::now();
        if !baseline.cycle(key, owner, ttl).await? {
            return Err(held_elsewhere(key));
        }
        samples.push(nanos(t.elapsed()));
    }
    Ok(Stats::from_samples(samples, start.elapsed()))
}

async fn time_round_trips(
    baseline: &dyn Baseline,
    key: &str,
    phase: Duration,
) -> Result<Stats, LockError> {
    let mut samples = Vec::with_capacity(1024);
    let start = Instant::now();
    while (start.elapsed() < phase || samples.len() < 10) && samples.len() < MAX_SAMPLES {
        let t = Instant::now();
        baseline.round_trip(key).await?;
        samples.push(nanos(t.elapsed()));
    }
    Ok(Stats::from_samples(samples, start.elapsed()))
}

async fn bench_uncontended(
    store: &Arc<dyn LockStore>,
    baseline: &Arc<dyn Baseline>,
    config: &BenchConfig,
) -> Result<Uncontended, LockError> {
    let key = format!("{}uncontended", config.key_prefix);
    let base_key = format!("{}base:uncontended", config.key_prefix);
    let base_owner = "bench-baseline-owner";
    store.force_delete(&key).await?;
    let lock = factory(store).create_lock_with_ttl(key, Some(config.ttl))?;
    // Warm up connections, caches and the allocator.
    let warmup = config.phase / 5;
    time_store_cycles(&lock, warmup).await?;
    time_baseline_cycles(&**baseline, &base_key, base_owner, config.ttl, warmup).await?;

    let (mut s, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..config.runs {
        let (store_stats, base_stats) = if run % 2 == 0 {
            let st = time_store_cycles(&lock, config.phase).await?;
            let bs =
                time_baseline_cycles(&**baseline, &base_key, base_owner, config.ttl, config.phase)
                    .await?;
            (st, bs)
        } else {
            let bs =
                time_baseline_cycles(&**baseline, &base_key, base_owner, config.ttl, config.phase)
                    .await?;
            let st = time_store_cycles(&lock, config.phase).await?;
            (st, bs)
        };
        r.push(ratio(store_stats.median, base_stats.median));
        s.push(store_stats);
        b.push(base_stats);
    }
    Ok(Uncontended {
        store: median_stats(&s),
        baseline: median_stats(&b),
        ratio: median_f64(r),
    })
}

/// Shared by the tasks of one contended run.
struct Arena {
    epoch: Instant,
    inside: AtomicUsize,
    overlaps: AtomicU64,
    sections: AtomicU64,
    /// Nanoseconds since `epoch` (+1) at which the last holder called `release`; 0 = none.
    last_release: AtomicU64,
}

impl Arena {
    fn now(&self) -> u64 {
        nanos(self.epoch.elapsed()) + 1
    }
}

async fn contend(
    lock: Lock,
    arena: Arc<Arena>,
    stop: watch::Receiver<bool>,
    mut cancel: watch::Receiver<bool>,
) -> Result<Vec<u64>, LockError> {
    let mut handoffs = Vec::with_capacity(1024);
    while !*stop.borrow() {
        let acquired = tokio::select! {
            biased;
            _ = cancel.wait_for(|c| *c) => break,
            acquired = lock.acquire() => acquired?,
        };
        if !acquired {
            continue;
        }
        let now = arena.now();
        let released = arena.last_release.load(Ordering::SeqCst);
        if released != 0 && handoffs.len() < MAX_SAMPLES {
            handoffs.push(now.saturating_sub(released));
        }
        if arena.inside.fetch_add(1, Ordering::SeqCst) != 0 {
            arena.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        // The critical section: short, but it gives other tasks a chance to run.
        tokio::task::yield_now().await;
        arena.inside.fetch_sub(1, Ordering::SeqCst);
        arena.sections.fetch_add(1, Ordering::SeqCst);
        arena.last_release.store(arena.now(), Ordering::SeqCst);
        lock.release().await?;
    }
    Ok(handoffs)
}

async fn bench_contended(
    store: &Arc<dyn LockStore>,
    baseline: &Arc<dyn Baseline>,
    config: &BenchConfig,
    tasks: usize,
) -> Result<Contended, LockError> {
    let rt_key = format!("{}base:round-trip", config.key_prefix);
    let (mut handoff, mut rtt, mut sections, mut ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut overlaps = 0;
    for run in 0..config.runs {
        let key = format!("{}contended:{tasks}:{run}", config.key_prefix);
        store.force_delete(&key).await?;
        let round_trip = time_round_trips(&**baseline, &rt_key, config.phase / 4).await?;

        let locks = factory(store);
        let arena = Arc::new(Arena {
            epoch: Instant::now(),
            inside: AtomicUsize::new(0),
            overlaps: AtomicU64::new(0),
            sections: AtomicU64::new(0),
            last_release: AtomicU64::new(0),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let mut set = JoinSet::new();
        for _ in 0..tasks {
            let lock = locks.create_lock_with_ttl(key.clone(), Some(config.ttl))?;
            set.spawn(contend(
                lock,
                arena.clone(),
                stop_rx.clone(),
                cancel_rx.clone(),
            ));
        }
        let start = Instant::now();
        tokio::time::sleep(config.contended_phase).await;
        let done = arena.sections.load(Ordering::SeqCst);
        let wall = start.elapsed();
        // Stop: every task leaves after its next section. Those still waiting after a
        // grace period (a polling store hands over only every retry delay) have their
        // acquire dropped, which the store must survive (cancel safety).
        let _ = stop_tx.send(true);
        let mut samples = Vec::new();
        let mut cancelled = false;
        let grace_end = tokio::time::Instant::now() + STOP_GRACE;
        let hard_end = grace_end + Duration::from_secs(30);
        loop {
            let until = if cancelled { hard_end } else { grace_end };
            match tokio::time::timeout_at(until, set.join_next()).await {
                Ok(Some(result)) => {
                    let task =
                        result.map_err(|e| LockError::storage_msg(format!("bench task: {e}")))?;
                    samples.extend(task?);
                }
                Ok(None) => break,
                Err(_) if !cancelled => {
                    cancelled = true;
                    let _ = cancel_tx.send(true);
                }
                Err(_) => {
                    return Err(LockError::storage_msg(
                        "contended bench tasks did not stop within 30 s",
                    ));
                }
            }
        }
        store.force_delete(&key).await?;

        let stats = Stats::from_samples(samples, wall);
        overlaps += arena.overlaps.load(Ordering::SeqCst);
        ratios.push(ratio(stats.median, round_trip.median));
        sections.push(rate(done, wall));
        handoff.push(stats);
        rtt.push(round_trip);
    }
    let mut handoff = median_stats(&handoff);
    // `per_sec` of the handoff samples is not meaningful: sections/s says it.
    handoff.per_sec = median_f64(sections.clone());
    Ok(Contended {
        tasks,
        handoff,
        sections_per_sec: median_f64(sections),
        overlaps,
        round_trip: median_stats(&rtt),
        ratio: median_f64(ratios),
    })
}

/// One phase of the many-keys scenario: `(cycles, misses, wall time)`.
async fn many_keys_phase<F, Fut>(
    tasks: usize,
    phase: Duration,
    work: Arc<F>,
) -> Result<(u64, u64, Duration), LockError>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<bool, LockError>> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let mut set = JoinSet::new();
    let start = Instant::now();
    for task in 0..tasks {
        let (stop, work) = (stop.clone(), work.clone());
        set.spawn(async move {
            let (mut done, mut missed) = (0u64, 0u64);
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) {
                if work(task, round).await? {
                    done += 1;
                } else {
                    missed += 1;
                }
                round += 1;
                // A cycle that never waits (an in-process store) must still let the
                // timer that ends the phase run.
                tokio::task::coop::consume_budget().await;
            }
            Ok::<_, LockError>((done, missed))
        });
    }
    tokio::time::sleep(phase).await;
    stop.store(true, Ordering::Relaxed);
    let (mut done, mut missed) = (0, 0);
    while let Some(result) = set.join_next().await {
        let (d, m) = result.map_err(|e| LockError::storage_msg(format!("bench task: {e}")))??;
        done += d;
        missed += m;
    }
    Ok((done, missed, start.elapsed()))
}

async fn bench_many_keys(
    store: &Arc<dyn LockStore>,
    baseline: &Arc<dyn Baseline>,
    config: &BenchConfig,
) -> Result<ManyKeys, LockError> {
    let (tasks, n) = (config.many_tasks, config.many_keys);
    let locks = factory(store);
    // Task `t` works on keys t, t + tasks, t + 2·tasks, … in turn.
    let mut per_task: Vec<Vec<Lock>> = (0..tasks).map(|_| Vec::new()).collect();
    let mut base_keys: Vec<Vec<(String, String)>> = (0..tasks).map(|_| Vec::new()).collect();
    for i in 0..n {
        let key = format!("{}many:{i}", config.key_prefix);
        per_task[i % tasks].push(locks.create_lock_with_ttl(key, Some(config.ttl))?);
        base_keys[i % tasks].push((
            format!("{}base:many:{i}", config.key_prefix),
            format!("bench-baseline-owner-{i}"),
        ));
    }
    let per_task: Arc<Vec<Vec<Lock>>> = Arc::new(per_task);
    let base_keys = Arc::new(base_keys);
    let ttl = config.ttl;
    let store_work = Arc::new(move |task: usize, round: usize| {
        let per_task = per_task.clone();
        async move {
            let mine = &per_task[task];
            if mine.is_empty() {
                return Ok(false);
            }
            let lock = &mine[round % mine.len()];
            if lock.acquire_immediately().await? {
                lock.release().await?;
                Ok(true)
            } else {
                Ok(false)
            }
        }
    });
    let base = baseline.clone();
    let base_work = Arc::new(move |task: usize, round: usize| {
        let (base_keys, base) = (base_keys.clone(), base.clone());
        async move {
            let mine = &base_keys[task];
            if mine.is_empty() {
                return Ok(false);
            }
            let (key, owner) = &mine[round % mine.len()];
            base.cycle(key, owner, ttl).await
        }
    });

    // Warm up (opens the pools' connections).
    let warmup = config.phase / 5;
    many_keys_phase(tasks, warmup, store_work.clone()).await?;
    many_keys_phase(tasks, warmup, base_work.clone()).await?;

    let (mut s, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new());
    let (mut store_misses, mut baseline_misses) = (0, 0);
    for run in 0..config.runs {
        let (st, bs) = if run % 2 == 0 {
            let st = many_keys_phase(tasks, config.phase, store_work.clone()).await?;
            (
                st,
                many_keys_phase(tasks, config.phase, base_work.clone()).await?,
            )
        } else {
            let bs = many_keys_phase(tasks, config.phase, base_work.clone()).await?;
            (
                many_keys_phase(tasks, config.phase, store_work.clone()).await?,
                bs,
            )
        };
        let (store_rate, base_rate) = (rate(st.0, st.2), rate(bs.0, bs.2));
        store_misses += st.1;
        baseline_misses += bs.1;
        r.push(if base_rate > 0.0 {
            store_rate / base_rate
        } else {
            0.0
        });
        s.push(store_rate);
        b.push(base_rate);
    }
    Ok(ManyKeys {
        tasks,
        keys: n,
        store_per_sec: median_f64(s),
        baseline_per_sec: median_f64(b),
        ratio: median_f64(r),
        store_misses,
        baseline_misses,
    })
}

fn grown(before: usize, after: usize) -> i64 {
    i64::try_from(after).unwrap_or(i64::MAX) - i64::try_from(before).unwrap_or(i64::MAX)
}

async fn bench_memory(
    store: &Arc<dyn LockStore>,
    config: &BenchConfig,
    keys: usize,
    allocated: fn() -> usize,
) -> Result<Memory, LockError> {
    let locks = factory(store);
    let mut key = String::with_capacity(64);
    let mut set_key = |i: usize, what: &str| {
        key.clear();
        let _ = write!(key, "{}memory:{what}:{i}", config.key_prefix);
        key.clone()
    };

    // Each key in turn, through lock-core.
    let before = allocated();
    for i in 0..keys {
        let lock = locks.create_lock_with_ttl(set_key(i, "cycled"), Some(config.ttl))?;
        if !lock.acquire_immediately().await? {
            return Err(held_elsewhere(lock.key()));
        }
        lock.release().await?;
    }
    let cycled_bytes = grown(before, allocated());

    // All keys held at once, then all released, on the store.
    let owner = "bench-memory-owner";
    let before = allocated();
    for i in 0..keys {
        if !store
            .save(&set_key(i, "held"), owner, Some(config.ttl))
            .await?
        {
            return Err(held_elsewhere(&set_key(i, "held")));
        }
    }
    let held_bytes = grown(before, allocated());
    for i in 0..keys {
        store.delete(&set_key(i, "held"), owner).await?;
    }
    let released_bytes = grown(before, allocated());
    Ok(Memory {
        keys,
        cycled_bytes,
        held_bytes,
        released_bytes,
    })
}

// ---- reporting ------------------------------------------------------------------------

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

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_f64(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.4}")
    } else {
        "null".to_owned()
    }
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
        let _ = writeln!(
            t,
            "{:<38} {:>14} {:>14} {:>9}",
            "row", "store", "baseline", "ratio"
        );
        let u = &self.uncontended;
        let row = |t: &mut String, name: &str, a: String, b: String, r: String| {
            let _ = writeln!(t, "{name:<38} {a:>14} {b:>14} {r:>9}");
        };
        row(
            &mut t,
            "uncontended cycle, median",
            fmt_duration(u.store.median),
            fmt_duration(u.baseline.median),
            format!("{:.2}x", u.ratio),
        );
        row(
            &mut t,
            "uncontended cycle, p99",
            fmt_duration(u.store.p99),
            fmt_duration(u.baseline.p99),
            format!("{:.2}x", ratio(u.store.p99, u.baseline.p99)),
        );
        row(
            &mut t,
            "uncontended cycles/s",
            fmt_rate(u.store.per_sec),
            fmt_rate(u.baseline.per_sec),
            String::new(),
        );
        for c in &self.contended {
            row(
                &mut t,
                &format!("handoff, {} task(s), median (vs RTT)", c.tasks),
                fmt_duration(c.handoff.median),
                fmt_duration(c.round_trip.median),
                format!("{:.2}x", c.ratio),
            );
            row(
                &mut t,
                &format!("handoff, {} task(s), p99", c.tasks),
                fmt_duration(c.handoff.p99),
                fmt_duration(c.round_trip.p99),
                String::new(),
            );
            row(
                &mut t,
                &format!("sections/s, {} task(s) (overlaps)", c.tasks),
                fmt_rate(c.sections_per_sec),
                format!("({})", c.overlaps),
                String::new(),
            );
        }
        let m = &self.many_keys;
        row(
            &mut t,
            &format!("many keys: {} tasks, {} keys", m.tasks, m.keys),
            fmt_rate(m.store_per_sec),
            fmt_rate(m.baseline_per_sec),
            format!("{:.2}x", m.ratio),
        );
        if let Some(mem) = &self.memory {
            row(
                &mut t,
                &format!("memory: {} keys cycled, kept", mem.keys),
                fmt_bytes(mem.cycled_bytes),
                String::new(),
                String::new(),
            );
            row(
                &mut t,
                &format!("memory: {} keys held at once", mem.keys),
                fmt_bytes(mem.held_bytes),
                String::new(),
                String::new(),
            );
            row(
                &mut t,
                "memory: ... then released, kept",
                fmt_bytes(mem.released_bytes),
                String::new(),
                String::new(),
            );
        }
        t
    }

    /// The report as JSON lines (one object per row; durations in nanoseconds).
    pub fn json_lines(&self) -> Vec<String> {
        let store = json_string(&self.store);
        let u = &self.uncontended;
        let mut lines = vec![format!(
            "{{\"kind\":\"uncontended\",\"store\":{store},\"runs\":{},\"store_median_ns\":{},\"store_p99_ns\":{},\"store_per_sec\":{},\"baseline_median_ns\":{},\"baseline_p99_ns\":{},\"baseline_per_sec\":{},\"ratio\":{},\"baseline\":{}}}",
            self.runs,
            nanos(u.store.median),
            nanos(u.store.p99),
            json_f64(u.store.per_sec),
            nanos(u.baseline.median),
            nanos(u.baseline.p99),
            json_f64(u.baseline.per_sec),
            json_f64(u.ratio),
            json_string(&self.baseline),
        )];
        for c in &self.contended {
            lines.push(format!(
                "{{\"kind\":\"contended\",\"store\":{store},\"runs\":{},\"tasks\":{},\"handoff_median_ns\":{},\"handoff_p99_ns\":{},\"handoffs\":{},\"sections_per_sec\":{},\"overlaps\":{},\"round_trip_median_ns\":{},\"round_trip_p99_ns\":{},\"ratio\":{}}}",
                self.runs,
                c.tasks,
                nanos(c.handoff.median),
                nanos(c.handoff.p99),
                c.handoff.count,
                json_f64(c.sections_per_sec),
                c.overlaps,
                nanos(c.round_trip.median),
                nanos(c.round_trip.p99),
                json_f64(c.ratio),
            ));
        }
        let m = &self.many_keys;
        lines.push(format!(
            "{{\"kind\":\"many_keys\",\"store\":{store},\"runs\":{},\"tasks\":{},\"keys\":{},\"store_per_sec\":{},\"baseline_per_sec\":{},\"ratio\":{},\"store_misses\":{},\"baseline_misses\":{}}}",
            self.runs,
            m.tasks,
            m.keys,
            json_f64(m.store_per_sec),
            json_f64(m.baseline_per_sec),
            json_f64(m.ratio),
            m.store_misses,
            m.baseline_misses,
        ));
        if let Some(mem) = &self.memory {
            lines.push(format!(
                "{{\"kind\":\"memory\",\"store\":{store},\"keys\":{},\"cycled_bytes\":{},\"held_bytes\":{},\"released_bytes\":{},\"method\":\"counting global allocator (requested bytes)\"}}",
                mem.keys, mem.cycled_bytes, mem.held_bytes, mem.released_bytes,
            ));
        }
        lines
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

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn quick_bench_runs_on_the_test_store_without_overlaps() {
        let store: Arc<dyn LockStore> = Arc::new(lock_core::testing::TestStore::default());
        let mut config = BenchConfig::quick();
        config.phase = Duration::from_millis(20);
        config.contended_phase = Duration::from_millis(50);
        config.contended_tasks = vec![1, 4];
        config.many_keys = 100;
        config.many_tasks = 8;
        let report = run_bench(store, Arc::new(MutexBaseline::new()), &config)
            .await
            .unwrap();
        assert_eq!(report.overlaps(), 0);
        assert!(report.uncontended.store.count > 0);
        assert!(report.uncontended.baseline.count > 0);
        assert_eq!(report.contended.len(), 2);
        assert!(report.many_keys.store_per_sec > 0.0);
        assert_eq!(report.json_lines().len(), 4);
        assert!(report.table().contains("uncontended cycle"));
    }
}
