//! Side-by-side comparison: the project, peer libraries and raw clients doing the same
//! lock cycles, interleaved in rounds, so that every ratio compares figures measured
//! back to back under the same load.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lock_core::{Lock, LockError, LockFactory, LockStore, async_trait};
use tokio::task::JoinSet;

use super::baseline::Baseline;
use super::harness::{MAX_SAMPLES, held_elsewhere};
use super::report::fmt_duration;
use super::stats::{Stats, nanos, rate};

/// One way of taking and giving back a lock on key `i` of a fixed set of keys: the
/// project through `lock-core`, a peer library, or raw commands. Each contender has keys
/// of its own, so that contenders never meet on a key.
#[async_trait]
pub trait Contender: Send + Sync + 'static {
    /// What it is, for the report (e.g. `"rslock 0.10"`).
    fn name(&self) -> String;

    /// How many keys it cycles over.
    fn keys(&self) -> usize;

    /// Take key `i` (`i < keys()`) and give it back. `Ok(false)` when it was held.
    async fn cycle(&self, i: usize) -> Result<bool, LockError>;
}

/// The project: `acquire_immediately` + `release` of one [`Lock`] per key, through
/// `lock-core` and the store, with default options.
pub struct LockCycles {
    name: String,
    locks: Vec<Lock>,
}

impl LockCycles {
    /// One lock per key of `keys` on `store`, with `ttl`.
    pub fn new(
        name: impl Into<String>,
        store: Arc<dyn LockStore>,
        keys: &[String],
        ttl: Duration,
    ) -> Result<Self, LockError> {
        let factory = LockFactory::from_shared(store, lock_core::FactoryOptions::default());
        let locks = keys
            .iter()
            .map(|k| factory.create_lock_with_ttl(k.clone(), Some(ttl)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LockCycles {
            name: name.into(),
            locks,
        })
    }
}

#[async_trait]
impl Contender for LockCycles {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn keys(&self) -> usize {
        self.locks.len()
    }

    async fn cycle(&self, i: usize) -> Result<bool, LockError> {
        let lock = &self.locks[i];
        if lock.acquire_immediately().await? {
            lock.release().await?;
            Ok(true)
        } else {
            Ok(false)
        }
    }
}

/// A [`Baseline`]'s cycle over keys of its own, each with an owner of its own.
pub struct BaselineCycles {
    name: String,
    baseline: Arc<dyn Baseline>,
    keys: Vec<(String, String)>,
    ttl: Duration,
}

impl BaselineCycles {
    /// `baseline` cycling over `keys` (the owner of key `i` is `"owner-{i}"`).
    pub fn new(
        name: impl Into<String>,
        baseline: Arc<dyn Baseline>,
        keys: &[String],
        ttl: Duration,
    ) -> Self {
        BaselineCycles {
            name: name.into(),
            baseline,
            keys: keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k.clone(), format!("owner-{i}")))
                .collect(),
            ttl,
        }
    }
}

#[async_trait]
impl Contender for BaselineCycles {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn keys(&self) -> usize {
        self.keys.len()
    }

    async fn cycle(&self, i: usize) -> Result<bool, LockError> {
        let (key, owner) = &self.keys[i];
        self.baseline.cycle(key, owner, self.ttl).await
    }
}

/// The store alone, through the [`LockStore`] trait, without `lock-core`: `save` then
/// `delete` (the store's own validation, scripts or statements, and its connection).
/// Beside [`LockCycles`] on the same store it shows what `lock-core` adds.
pub struct StoreOnly(pub Arc<dyn LockStore>);

#[async_trait]
impl Baseline for StoreOnly {
    fn describe(&self) -> String {
        format!("{} store alone: save + delete, no lock-core", self.0.name())
    }

    async fn cycle(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, LockError> {
        if !self.0.save(key, owner, Some(ttl)).await? {
            return Ok(false);
        }
        self.0.delete(key, owner).await?;
        Ok(true)
    }

    async fn round_trip(&self, key: &str) -> Result<(), LockError> {
        self.0.exists(key).await.map(drop)
    }
}

/// What one contender did in one round.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RoundFigure {
    /// Median and p99 time of one cycle; `per_sec` = cycles per second, all tasks.
    pub stats: Stats,
    /// Cycles that found their key held.
    pub misses: u64,
    /// CPU time this process spent per completed cycle (user + system, all threads),
    /// where the platform tells (Linux); includes the harness's own small share.
    pub cpu_per_cycle: Option<Duration>,
}

/// Every round of one case: `rounds[r][c]` is contender `c` in round `r`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseRounds {
    /// What was measured (e.g. `"uncontended cycle, 1 task, 1 key"`).
    pub case: String,
    /// Tasks cycling at once.
    pub tasks: usize,
    /// The contenders' names, in the order of `rounds[r]`.
    pub contenders: Vec<String>,
    /// The figures, round by round.
    pub rounds: Vec<Vec<RoundFigure>>,
}

/// The median, least and greatest of a series.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spread {
    /// The median.
    pub median: f64,
    /// The least value.
    pub min: f64,
    /// The greatest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (all 0 for none).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let mut v: Vec<f64> = values.into_iter().collect();
        if v.is_empty() {
            return Spread::default();
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Spread {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }

    /// `1.05x (1.02–1.08)`.
    pub fn times(&self) -> String {
        format!("{:.2}x ({:.2}–{:.2})", self.median, self.min, self.max)
    }
}

impl CaseRounds {
    /// Index of the contender named `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.contenders.iter().position(|c| c == name)
    }

    /// Per round, `a`'s median cycle time over `b`'s (below 1: `a` is faster).
    pub fn time_ratio(&self, a: usize, b: usize) -> Spread {
        Spread::of(self.rounds.iter().map(|r| {
            let (x, y) = (r[a].stats.median, r[b].stats.median);
            if y.is_zero() {
                0.0
            } else {
                x.as_secs_f64() / y.as_secs_f64()
            }
        }))
    }

    /// Per round, `a`'s cycles per second over `b`'s (above 1: `a` does more).
    pub fn rate_ratio(&self, a: usize, b: usize) -> Spread {
        Spread::of(self.rounds.iter().map(|r| {
            let (x, y) = (r[a].stats.per_sec, r[b].stats.per_sec);
            if y > 0.0 { x / y } else { 0.0 }
        }))
    }

    /// Contender `c`'s median cycle time over the rounds (seconds).
    pub fn median_time(&self, c: usize) -> Spread {
        Spread::of(self.rounds.iter().map(|r| r[c].stats.median.as_secs_f64()))
    }

    /// Contender `c`'s median CPU time per cycle over the rounds (seconds), if measured.
    pub fn cpu_per_cycle(&self, c: usize) -> Option<f64> {
        let values: Vec<f64> = self
            .rounds
            .iter()
            .filter_map(|r| r[c].cpu_per_cycle.map(|d| d.as_secs_f64()))
            .collect();
        (!values.is_empty()).then(|| Spread::of(values).median)
    }

    /// Contender `c`'s cycles per second over the rounds.
    pub fn rate(&self, c: usize) -> Spread {
        Spread::of(self.rounds.iter().map(|r| r[c].stats.per_sec))
    }

    /// The case as a text table: each contender's median cycle time and cycles/s
    /// (median and min–max over rounds), then `subject`'s ratio to every other
    /// contender, per round (min–max): by cycle time with one task, by cycles/s with
    /// more. No ratios when `subject` is out of range.
    pub fn table(&self, subject: usize) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{} — {} task(s), {} interleaved round(s)",
            self.case,
            self.tasks,
            self.rounds.len()
        );
        let _ = writeln!(
            t,
            "  {:<44} {:>26} {:>30} {:>22}",
            "contender",
            "cycle time, median (min–max)",
            "cycles/s, median (min–max)",
            "client CPU per cycle"
        );
        for (c, name) in self.contenders.iter().enumerate() {
            let time = self.median_time(c);
            let rate = self.rate(c);
            let cpu = self.cpu_per_cycle(c);
            let secs = |s: f64| fmt_duration(Duration::from_secs_f64(s.max(0.0)));
            let _ = writeln!(
                t,
                "  {:<44} {:>26} {:>30} {:>22}",
                name,
                format!(
                    "{} ({}–{})",
                    secs(time.median),
                    secs(time.min),
                    secs(time.max)
                ),
                format!("{:.0} ({:.0}–{:.0})", rate.median, rate.min, rate.max),
                cpu.map_or_else(|| "-".to_owned(), secs),
            );
        }
        let by_time = self.tasks == 1;
        for (c, name) in self.contenders.iter().enumerate() {
            if c == subject || subject >= self.contenders.len() {
                continue;
            }
            let (spread, what) = if by_time {
                (self.time_ratio(subject, c), "cycle time")
            } else {
                (self.rate_ratio(subject, c), "cycles/s")
            };
            let _ = writeln!(
                t,
                "  {} / {}: {} {}",
                self.contenders[subject],
                name,
                what,
                spread.times()
            );
        }
        t
    }
}

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
    use crate::bench::MutexBaseline;

    #[test]
    fn spreads_and_ratios() {
        let s = Spread::of([3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(s.times(), "2.00x (1.00–3.00)");
        let fig = |ms: u64, per_sec: f64| RoundFigure {
            stats: Stats {
                median: Duration::from_millis(ms),
                per_sec,
                ..Stats::default()
            },
            misses: 0,
            cpu_per_cycle: None,
        };
        let case = CaseRounds {
            case: "c".into(),
            tasks: 1,
            contenders: vec!["a".into(), "b".into()],
            rounds: vec![
                vec![fig(2, 10.0), fig(1, 20.0)],
                vec![fig(3, 30.0), fig(1, 10.0)],
            ],
        };
        let t = case.time_ratio(0, 1);
        assert_eq!((t.min, t.max), (2.0, 3.0));
        let r = case.rate_ratio(0, 1);
        assert_eq!((r.min, r.max), (0.5, 3.0));
        assert!(
            case.table(0)
                .contains("a / b: cycle time 2.50x (2.00–3.00)")
        );
    }

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
