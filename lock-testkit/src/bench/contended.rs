//! The contended-handoff scenario: N tasks on one key, each doing a short critical
//! section; timed from a holder calling `release` to the next holder's `acquire`.
//!
//! One runner serves the mutex and the permit keys: every task holds a weight (1, or a
//! writer's whole limit) and a counter of the weight inside must never pass the limit
//! (1 for a mutex, `k` for a semaphore of `k` permits). A release that leaves room
//! for the heaviest request is queued; the next entry into such room is timed from the
//! oldest queued release (with one holder at a time: from the release just before).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

/// One contending task: its lock (a mutex, a semaphore, one side of a reader-writer
/// lock) and the weight it holds, as the store counts it (1, or a writer's
/// [`RW_LIMIT`](lock_core::permits::RW_LIMIT)).
pub(super) type Contestant = (Lock, u64);

/// Shared by the tasks of one contended run.
struct Arena {
    epoch: Instant,
    /// The weight held inside the critical section now (a counter of holders).
    used: AtomicU64,
    /// The most `used` may be: 1 for a mutex, the permits of a semaphore.
    limit: u64,
    /// The heaviest weight a task asks for.
    heaviest: u64,
    /// Entries that took `used` over `limit`: must be 0.
    overlaps: AtomicU64,
    sections: AtomicU64,
    /// Nanoseconds since `epoch` (+1) of the releases not yet followed by an entry,
    /// oldest first: each entry is timed from the oldest one.
    releases: Mutex<VecDeque<u64>>,
}

impl Arena {
    fn new(limit: u64, heaviest: u64) -> Arena {
        Arena {
            epoch: Instant::now(),
            used: AtomicU64::new(0),
            limit,
            heaviest,
            overlaps: AtomicU64::new(0),
            sections: AtomicU64::new(0),
            releases: Mutex::new(VecDeque::new()),
        }
    }

    fn now(&self) -> u64 {
        nanos(self.epoch.elapsed()) + 1
    }

    fn releases(&self) -> std::sync::MutexGuard<'_, VecDeque<u64>> {
        self.releases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `used` leaves room for the heaviest request: then a release is what
    /// the next entry waited for, and an entry is one a release let in (a reader
    /// joining readers already inside was let in by none).
    fn open(&self, used: u64) -> bool {
        used + self.heaviest <= self.limit
    }

    /// Enter with `weight`; the handoff time, if a release let this entry in.
    fn enter(&self, weight: u64) -> Option<u64> {
        let now = self.now();
        let before = self.used.fetch_add(weight, Ordering::SeqCst);
        if before + weight > self.limit {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        let released = if self.open(before) {
            self.releases().pop_front()
        } else {
            None
        };
        released.map(|r| now.saturating_sub(r))
    }

    /// Leave with `weight`, just before calling `release`.
    fn leave(&self, weight: u64) {
        let before = self.used.fetch_sub(weight, Ordering::SeqCst);
        self.sections.fetch_add(1, Ordering::SeqCst);
        if self.open(before - weight) {
            let now = self.now();
            self.releases().push_back(now);
        }
    }
}

async fn contend(
    (lock, weight): Contestant,
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
        let handoff = arena.enter(weight);
        if let Some(h) = handoff.filter(|_| handoffs.len() < MAX_SAMPLES) {
            handoffs.push(h);
        }
        // The critical section: short, but it gives other tasks a chance to run.
        tokio::task::yield_now().await;
        arena.leave(weight);
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

/// The contended scenario with `tasks` tasks on one mutex key, [`BenchConfig::runs`]
/// times.
pub(super) async fn bench_contended(
    store: &Arc<dyn LockStore>,
    baseline: &Arc<dyn Baseline>,
    config: &BenchConfig,
    tasks: usize,
) -> Result<Contended, LockError> {
    let locks = factory(store);
    let mutexes = |key: &str| {
        (0..tasks)
            .map(|_| Ok((locks.create_lock_with_ttl(key, Some(config.ttl))?, 1)))
            .collect()
    };
    contended_runs(baseline, config, &format!("contended:{tasks}"), 1, mutexes).await
}

/// [`BenchConfig::runs`] contended runs of the tasks `contestants(key)` makes, each
/// run on a key of its own (`{prefix}{tag}:{run}`); `limit` is the most weight that
/// may be held at once.
pub(super) async fn contended_runs(
    baseline: &Arc<dyn Baseline>,
    config: &BenchConfig,
    tag: &str,
    limit: u64,
    contestants: impl Fn(&str) -> Result<Vec<Contestant>, LockError>,
) -> Result<Contended, LockError> {
    let rt_key = format!("{}base:round-trip", config.key_prefix);
    let (mut handoff, mut rtt, mut sections, mut ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut overlaps, mut tasks) = (0, 0);
    for run in 0..config.runs {
        let key = format!("{}{tag}:{run}", config.key_prefix);
        let all = contestants(&key)?;
        // Any task's lock frees the key of every holder (none with no task).
        let clean = all.first().map(|(lock, _)| lock.clone());
        if let Some(lock) = &clean {
            lock.force_release().await?;
        }
        let round_trip = time_round_trips(&**baseline, &rt_key, config.phase / 4).await?;

        tasks = all.len();
        let heaviest = all.iter().map(|(_, w)| *w).max().unwrap_or(1);
        let arena = Arc::new(Arena::new(limit, heaviest));
        let (stop_tx, stop_rx) = watch::channel(false);
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let mut set = JoinSet::new();
        for contestant in all {
            set.spawn(contend(
                contestant,
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
        if let Some(lock) = &clean {
            lock.force_release().await?;
        }

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
