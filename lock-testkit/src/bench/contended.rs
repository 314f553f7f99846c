//! The contended-handoff scenario: N tasks on one key, each doing a short critical
//! section; timed from a holder calling `release` to the next holder's `acquire`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lock_core::{Lock, LockError, LockStore};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::BenchConfig;
use super::baseline::Baseline;
use super::harness::{MAX_SAMPLES, factory, time_round_trips};
use super::report::Contended;
use super::stats::{Stats, median_f64, nanos, rate, ratio};

/// How long stopping contenders may take before their waits are cancelled.
const STOP_GRACE: Duration = Duration::from_secs(1);

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
    fn new() -> Arena {
        Arena {
            epoch: Instant::now(),
            inside: AtomicUsize::new(0),
            overlaps: AtomicU64::new(0),
            sections: AtomicU64::new(0),
            last_release: AtomicU64::new(0),
        }
    }

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

/// Stop the contenders: every task leaves after its next section. Those still waiting
/// after a grace period (a polling store hands over only every retry delay) have their
/// acquire dropped, which the store must survive (cancel safety). Returns the handoff
/// samples of all tasks.
async fn stop_contenders(
    mut set: JoinSet<Result<Vec<u64>, LockError>>,
    stop: watch::Sender<bool>,
    cancel: watch::Sender<bool>,
) -> Result<Vec<u64>, LockError> {
    let _ = stop.send(true);
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
            Ok(None) => return Ok(samples),
            Err(_) if !cancelled => {
                cancelled = true;
                let _ = cancel.send(true);
            }
            Err(_) => {
                return Err(LockError::storage_msg(
                    "contended bench tasks did not stop within 30 s",
                ));
            }
        }
    }
}

/// The contended scenario with `tasks` tasks, [`BenchConfig::runs`] times.
pub(super) async fn bench_contended(
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
        let arena = Arc::new(Arena::new());
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
        let samples = stop_contenders(set, stop_tx, cancel_tx).await?;
        store.force_delete(&key).await?;

        let stats = Stats::from_samples(samples, wall);
        overlaps += arena.overlaps.load(Ordering::SeqCst);
        ratios.push(ratio(stats.median, round_trip.median));
        sections.push(rate(done, wall));
        handoff.push(stats);
        rtt.push(round_trip);
    }
    let mut handoff = Stats::median_of(&handoff);
    // `per_sec` of the handoff samples is not meaningful: sections/s says it.
    handoff.per_sec = median_f64(sections.clone());
    Ok(Contended {
        tasks,
        handoff,
        sections_per_sec: median_f64(sections),
        overlaps,
        round_trip: Stats::median_of(&rtt),
        ratio_min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
        ratio_max: ratios.iter().copied().fold(0.0, f64::max),
        ratio: median_f64(ratios),
    })
}
