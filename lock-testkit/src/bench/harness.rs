//! Runs the scenarios against a store and its baseline, and fills a [`BenchReport`].

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lock_core::{FactoryOptions, LockError, LockFactory, LockStore};

use super::BenchConfig;
use super::baseline::Baseline;
use super::contended::bench_contended;
use super::contender::lock_cycle;
use super::many::{bench_many_keys, bench_memory};
use super::report::{BenchReport, Contended, Uncontended};
use super::rounds::Spread;
use super::stats::{Stats, median_f64, nanos, ratio};

/// Cap on the samples kept per phase (about 40 MB).
pub(super) const MAX_SAMPLES: usize = 5_000_000;

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
    on_worker(async move { run_scenarios(store, baseline, &config).await }).await
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
    on_worker(async move {
        let mut all = Vec::with_capacity(config.contended_tasks.len());
        for &tasks in &config.contended_tasks {
            all.push(bench_contended(&store, &baseline, &config, tasks).await?);
        }
        Ok(all)
    })
    .await
}

pub(super) async fn on_worker<T: Send + 'static>(
    work: impl Future<Output = Result<T, LockError>> + Send + 'static,
) -> Result<T, LockError> {
    tokio::spawn(work)
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

/// A lock factory on `store` with default options.
pub(super) fn factory(store: &Arc<dyn LockStore>) -> LockFactory {
    LockFactory::from_shared(store.clone(), FactoryOptions::default())
}

/// A bench key was found held: another bench shares the key prefix.
pub(super) fn held_elsewhere(key: &str) -> LockError {
    LockError::storage_msg(format!(
        "bench key {key:?} is held by someone else: is another bench running with the same key prefix?"
    ))
}

/// The store's and the baseline's phase of one run, back to back: the store first in
/// even runs, the baseline first in odd ones (so neither always pays for a cold start).
pub(super) async fn in_turn<S, B>(
    run: usize,
    store: impl Future<Output = Result<S, LockError>>,
    baseline: impl Future<Output = Result<B, LockError>>,
) -> Result<(S, B), LockError> {
    if run % 2 == 0 {
        let s = store.await?;
        Ok((s, baseline.await?))
    } else {
        let b = baseline.await?;
        Ok((store.await?, b))
    }
}

/// `cycle` back to back for `phase`; a cycle that finds the key held (`false`) is an
/// error naming `key`.
pub(super) async fn time_cycles<F, Fut>(
    key: &str,
    phase: Duration,
    mut cycle: F,
) -> Result<Stats, LockError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, LockError>>,
{
    let mut samples = Vec::with_capacity(4096);
    let start = Instant::now();
    while start.elapsed() < phase && samples.len() < MAX_SAMPLES {
        let t = Instant::now();
        if !cycle().await? {
            return Err(held_elsewhere(key));
        }
        samples.push(nanos(t.elapsed()));
    }
    Ok(Stats::from_samples(samples, start.elapsed()))
}

/// [`Baseline::round_trip`] on `key` for `phase` (and at least 10 times).
pub(super) async fn time_round_trips(
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
    let base = &**baseline;
    let (uncontended, _) = uncontended_runs(
        config,
        |phase| time_cycles(lock.key(), phase, || lock_cycle(&lock)),
        |phase| {
            time_cycles(&base_key, phase, || {
                base.cycle(&base_key, base_owner, config.ttl)
            })
        },
    )
    .await?;
    Ok(uncontended)
}

/// The uncontended scenario: a warm-up of each side, then [`BenchConfig::runs`] runs
/// of `store` and `baseline` back to back ([`in_turn`]); also the spread of the
/// per-run ratios.
pub(super) async fn uncontended_runs<S, SF, B, BF>(
    config: &BenchConfig,
    store: S,
    baseline: B,
) -> Result<(Uncontended, Spread), LockError>
where
    S: Fn(Duration) -> SF,
    SF: Future<Output = Result<Stats, LockError>>,
    B: Fn(Duration) -> BF,
    BF: Future<Output = Result<Stats, LockError>>,
{
    // Warm up connections, caches and the allocator.
    let warmup = config.phase / 5;
    store(warmup).await?;
    baseline(warmup).await?;

    let (mut s, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..config.runs {
        let (store_stats, base_stats) =
            in_turn(run, store(config.phase), baseline(config.phase)).await?;
        r.push(ratio(store_stats.median, base_stats.median));
        s.push(store_stats);
        b.push(base_stats);
    }
    let spread = Spread::of(r.iter().copied());
    Ok((
        Uncontended {
            store: Stats::median_of(&s),
            baseline: Stats::median_of(&b),
            ratio: median_f64(r),
        },
        spread,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::MutexBaseline;

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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_figure_comes_from_the_callers_counter() {
        static READS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        fn counter() -> usize {
            // Grows by 100 bytes per read: each figure is a difference of two reads.
            READS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) * 100
        }
        let store: Arc<dyn LockStore> = Arc::new(lock_core::testing::TestStore::default());
        let mut config = BenchConfig::quick();
        config.phase = Duration::from_millis(10);
        config.contended_phase = Duration::from_millis(20);
        config.contended_tasks = vec![1];
        config.many_keys = 10;
        config.memory_keys = Some(10);
        config.allocated_bytes = Some(counter);
        let report = run_bench(store.clone(), Arc::new(MutexBaseline::new()), &config)
            .await
            .unwrap();
        let memory = report.memory.expect("memory measured with a counter");
        assert_eq!(
            (memory.keys, memory.cycled_bytes, memory.held_bytes),
            (10, 100, 100)
        );
        assert_eq!(memory.released_bytes, 200);
        config.allocated_bytes = None;
        let report = run_bench(store, Arc::new(MutexBaseline::new()), &config)
            .await
            .unwrap();
        assert_eq!(report.memory, None, "no counter, no memory figure");
    }
}
