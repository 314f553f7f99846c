//! Side-by-side comparison: the project, peer libraries and raw clients doing the same
//! lock cycles, interleaved in rounds, so that every ratio compares figures measured
//! back to back under the same load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lock_core::LockError;
use tokio::task::JoinSet;

use super::contender::Contender;
use super::harness::{MAX_SAMPLES, held_elsewhere};
use super::rounds::{CaseRounds, RoundFigure};
use super::stats::{Stats, nanos, rate};

/// Run `contenders` side by side: `rounds` rounds, each running every contender for
/// `phase` with `tasks` tasks (task `t` cycles keys t, t + tasks, …), in an order that
/// rotates from round to round. A short warm-up of each comes first.
///
/// Errors: a contender's error, or a key found held with one task (another bench is
/// using the same keys).
pub async fn compare_cycles(
    case: impl Into<String>,
    contenders: &[Arc<dyn Contender>],
    tasks: usize,
    phase: Duration,
    rounds: usize,
) -> Result<CaseRounds, LockError> {
    if tasks == 0 || rounds == 0 || contenders.iter().any(|c| c.keys() == 0) {
        return Err(LockError::invalid(
            "tasks, rounds and every contender's keys must be at least 1",
        ));
    }
    for c in contenders {
        run_phase(c.clone(), tasks, phase / 5).await?;
    }
    let n = contenders.len();
    let mut all = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let mut figures = vec![RoundFigure::default(); n];
        for k in 0..n {
            let c = (round + k) % n;
            figures[c] = run_phase(contenders[c].clone(), tasks, phase).await?;
        }
        all.push(figures);
    }
    Ok(CaseRounds {
        case: case.into(),
        tasks,
        contenders: contenders.iter().map(|c| c.name()).collect(),
        rounds: all,
    })
}

/// One contender for `phase` with `tasks` tasks.
async fn run_phase(
    contender: Arc<dyn Contender>,
    tasks: usize,
    phase: Duration,
) -> Result<RoundFigure, LockError> {
    let stop = Arc::new(AtomicBool::new(false));
    let keys = contender.keys();
    let cpu_before = process_cpu_time();
    let per_task_cap = MAX_SAMPLES / tasks;
    let mut set = JoinSet::new();
    let start = Instant::now();
    for task in 0..tasks {
        let (stop, contender) = (stop.clone(), contender.clone());
        set.spawn(async move {
            let mut samples = Vec::with_capacity(4096);
            let (mut done, mut misses) = (0u64, 0u64);
            let mut i = task % keys;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                if contender.cycle(i).await? {
                    done += 1;
                    if samples.len() < per_task_cap {
                        samples.push(nanos(t.elapsed()));
                    }
                } else {
                    misses += 1;
                    if tasks == 1 {
                        return Err(held_elsewhere(&format!("key {i} of {}", contender.name())));
                    }
                }
                i += tasks;
                if i >= keys {
                    i = task % keys;
                }
                // A cycle that never waits (in process) must still let the timer run.
                tokio::task::coop::consume_budget().await;
            }
            Ok::<_, LockError>((samples, done, misses))
        });
    }
    tokio::time::sleep(phase).await;
    stop.store(true, Ordering::Relaxed);
    let (mut samples, mut done, mut misses) = (Vec::new(), 0, 0);
    while let Some(result) = set.join_next().await {
        let (s, d, m) =
            result.map_err(|e| LockError::storage_msg(format!("bench task: {e}")))??;
        samples.extend(s);
        done += d;
        misses += m;
    }
    let wall = start.elapsed();
    let cpu_per_cycle = match (cpu_before, process_cpu_time()) {
        (Some(a), Some(b)) if done > 0 => {
            Some(b.saturating_sub(a) / done.min(u32::MAX as u64) as u32)
        }
        _ => None,
    };
    let mut stats = Stats::from_samples(samples, wall);
    stats.per_sec = rate(done, wall);
    Ok(RoundFigure {
        stats,
        misses,
        cpu_per_cycle,
    })
}

/// User + system CPU time of this process so far (Linux: `/proc/self/stat`, in clock
/// ticks of 10 ms); `None` elsewhere.
fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) closed by ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{BaselineCycles, LockCycles, MutexBaseline};
    use lock_core::LockStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn contenders_run_side_by_side() {
        let store: Arc<dyn LockStore> = Arc::new(lock_core::testing::TestStore::default());
        let keys: Vec<String> = (0..16).map(|i| format!("cmp:{i}")).collect();
        let base_keys: Vec<String> = (0..16).map(|i| format!("cmp:base:{i}")).collect();
        let ttl = Duration::from_secs(30);
        let contenders: Vec<Arc<dyn Contender>> = vec![
            Arc::new(LockCycles::new("project", store, &keys, ttl).unwrap()),
            Arc::new(BaselineCycles::new(
                "mutex",
                Arc::new(MutexBaseline::new()),
                &base_keys,
                ttl,
            )),
        ];
        let case = compare_cycles("many", &contenders, 4, Duration::from_millis(20), 2)
            .await
            .unwrap();
        assert_eq!(case.rounds.len(), 2);
        assert_eq!(case.contenders, ["project", "mutex"]);
        for round in &case.rounds {
            assert!(round.iter().all(|f| f.stats.count > 0), "{round:?}");
        }
        let one = compare_cycles("one", &contenders[..1], 1, Duration::from_millis(10), 1)
            .await
            .unwrap();
        assert!(one.rounds[0][0].stats.median > Duration::ZERO);
    }
}
