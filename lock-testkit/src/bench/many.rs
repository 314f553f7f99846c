//! The many-keys throughput scenario, and the memory held by an in-process store.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lock_core::{Lock, LockError, LockStore};
use tokio::task::JoinSet;

use super::BenchConfig;
use super::baseline::Baseline;
use super::contender::lock_cycle;
use super::harness::{factory, held_elsewhere, in_turn};
use super::report::{ManyKeys, Memory};
use super::stats::{median_f64, rate};

/// One phase of the many-keys scenario: `(cycles, misses, wall time)`.
async fn many_keys_phase<F, Fut>(
    tasks: usize,
    phase: Duration,
    work: Arc<F>,
) -> Result<(u64, u64, Duration), LockError>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<bool, LockError>> + Send,
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

/// `items` dealt round-robin to `tasks` lists: task `t` gets items t, t + tasks, …
fn deal<T>(tasks: usize, items: impl Iterator<Item = T>) -> Arc<Vec<Vec<T>>> {
    let mut per_task: Vec<Vec<T>> = (0..tasks).map(|_| Vec::new()).collect();
    for (i, item) in items.enumerate() {
        per_task[i % tasks].push(item);
    }
    Arc::new(per_task)
}

/// The many-keys scenario, [`BenchConfig::runs`] times.
pub(super) async fn bench_many_keys(
    store: &Arc<dyn LockStore>,
    baseline: &Arc<dyn Baseline>,
    config: &BenchConfig,
) -> Result<ManyKeys, LockError> {
    let (tasks, n) = (config.many_tasks, config.many_keys);
    let locks = factory(store);
    let per_task: Arc<Vec<Vec<Lock>>> = deal(
        tasks,
        (0..n)
            .map(|i| {
                locks.create_lock_with_ttl(
                    format!("{}many:{i}", config.key_prefix),
                    Some(config.ttl),
                )
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter(),
    );
    let base_keys = deal(
        tasks,
        (0..n).map(|i| {
            (
                format!("{}base:many:{i}", config.key_prefix),
                format!("bench-baseline-owner-{i}"),
            )
        }),
    );
    let ttl = config.ttl;
    let store_work = Arc::new(move |task: usize, round: usize| {
        let per_task = per_task.clone();
        async move {
            let mine = &per_task[task];
            if mine.is_empty() {
                return Ok(false);
            }
            lock_cycle(&mine[round % mine.len()]).await
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
        let (st, bs) = in_turn(
            run,
            many_keys_phase(tasks, config.phase, store_work.clone()),
            many_keys_phase(tasks, config.phase, base_work.clone()),
        )
        .await?;
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

/// The memory scenario over `keys` distinct keys; `allocated` reads the process's
/// allocated bytes (the caller's counting allocator).
pub(super) async fn bench_memory(
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
