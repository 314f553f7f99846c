//! Model-based check of lock-core: random programs over several locks, their clones,
//! guards, `run` calls dropped midway, re-acquires by the same lock, manual extensions
//! with auto-extension on, and lost-signal handles — on a store whose calls take random
//! time. After every step: never two holders, and every timed call ended within its
//! budget. Paused tokio clock, so hundreds of programs run in a few seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lock_core::testing::TestStore;
use lock_core::{
    Acquisition, DelegatingStore, FactoryOptions, Lock, LockError, LockFactory, LockGuard,
    LockStore, LostLock, RetryConfig, async_trait,
};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

const MS: Duration = Duration::from_millis(1);

/// xorshift64*: a tiny deterministic generator, so a failing seed replays exactly.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The reference store, with every call delayed by 0–`max` ms (before or after it is
/// applied), so background clean-ups and foreground calls interleave.
struct Jittery {
    inner: TestStore,
    seed: AtomicU64,
    max_ms: u64,
}

impl Jittery {
    async fn jitter(&self) {
        let s = self
            .seed
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        let ms = Rng(s | 1).below(self.max_ms + 1);
        sleep(MS * ms as u32).await;
    }
}

#[async_trait]
impl DelegatingStore for Jittery {
    fn inner(&self) -> &dyn LockStore {
        &self.inner
    }
    async fn try_acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Option<Duration>,
    ) -> Result<Acquisition, LockError> {
        self.jitter().await;
        let got = self.inner.try_acquire(key, owner, ttl).await;
        if std::env::var("LOCK_MODEL_TRACE").is_ok() {
            eprintln!(
                "  {:?} save {} {:?} -> {:?}",
                Instant::now(),
                &owner[..4],
                ttl,
                got.as_ref().map(|a| a.acquired)
            );
        }
        self.jitter().await;
        got
    }
    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        self.jitter().await;
        let r = self.inner.delete(key, owner).await;
        if std::env::var("LOCK_MODEL_TRACE").is_ok() {
            eprintln!("  {:?} delete {} -> {:?}", Instant::now(), &owner[..4], r);
        }
        r
    }
    async fn extend(&self, key: &str, owner: &str, duration: Duration) -> Result<(), LockError> {
        self.jitter().await;
        let r = self.inner.extend(key, owner, duration).await;
        if std::env::var("LOCK_MODEL_TRACE").is_ok() {
            eprintln!(
                "  {:?} extend {} {:?} -> {:?}",
                Instant::now(),
                &owner[..4],
                duration,
                r
            );
        }
        self.jitter().await;
        r
    }
}

/// One owner: its clones (some with auto-extension), guards, runs and signals.
struct Owner {
    clones: Vec<Lock>,
    guards: Vec<LockGuard>,
    runs: Vec<JoinHandle<()>>,
    signals: Vec<LostLock>,
}

/// Whether `lock` believes it holds the key now (every lock here has a TTL).
fn believes_held(lock: &Lock) -> bool {
    lock.remaining_time().is_some_and(|left| !left.is_zero())
}

async fn run_program(seed: u64, steps: usize) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let store = Arc::new(Jittery {
        inner: TestStore::default(),
        seed: AtomicU64::new(seed),
        max_ms: 1 + rng.below(20),
    });
    let locks = LockFactory::from_shared(store.clone(), FactoryOptions::default());
    let mut owners: Vec<Owner> = (0..3)
        .map(|_| {
            let ttl = MS * (40 + rng.below(200)) as u32;
            let lock = locks.create_lock_with_ttl("k", Some(ttl)).unwrap();
            let extending = lock.clone().with_auto_extend(rng.below(2) == 0);
            Owner {
                clones: vec![lock, extending],
                guards: Vec::new(),
                runs: Vec::new(),
                signals: Vec::new(),
            }
        })
        .collect();

    for step in 0..steps {
        let o = rng.below(owners.len() as u64) as usize;
        let c = rng.below(owners[o].clones.len() as u64) as usize;
        let lock = owners[o].clones[c].clone();
        let action = rng.below(11);
        let started = Instant::now();
        if std::env::var("LOCK_MODEL_TRACE").is_ok() {
            let view: Vec<Vec<Option<Duration>>> = owners
                .iter()
                .map(|ow| ow.clones.iter().map(|l| l.remaining_time()).collect())
                .collect();
            let names: Vec<&str> = owners.iter().map(|ow| &ow.clones[0].owner()[..4]).collect();
            eprintln!(
                "{:?} step {step}: owner {o} ({}) clone {c} action {action}; before: {view:?}",
                Instant::now(),
                names[o]
            );
        }
        match action {
            0 => {
                let _ = lock.acquire_immediately().await.unwrap();
            }
            1 => {
                let budget = MS * (1 + rng.below(100)) as u32;
                let _ = lock
                    .acquire_with(RetryConfig::default().timeout(budget).delay(MS * 10))
                    .await
                    .unwrap();
                let took = started.elapsed();
                assert!(
                    took <= budget + MS,
                    "seed {seed} step {step}: acquire_with(timeout {budget:?}) took {took:?}"
                );
            }
            2 => {
                let budget = MS * (1 + rng.below(100)) as u32;
                let retry = RetryConfig::default().timeout(budget).delay(MS * 5);
                if let Some(g) = lock.acquire_guard_with(retry).await.unwrap() {
                    owners[o].guards.push(g);
                }
                assert!(started.elapsed() <= budget + MS, "seed {seed} step {step}");
            }
            3 => {
                // Drop a guard (background release), possibly long after it expired.
                if !owners[o].guards.is_empty() {
                    let i = rng.below(owners[o].guards.len() as u64) as usize;
                    drop(owners[o].guards.swap_remove(i));
                }
            }
            4 => {
                if let Some(g) = owners[o].guards.pop() {
                    let _ = g.release().await;
                }
            }
            5 => {
                // A run whose closure takes a while; may be dropped midway (step 6).
                let hold = MS * rng.below(150) as u32;
                let retry = RetryConfig::default().timeout(MS * 50).delay(MS * 5);
                let l = lock.clone();
                owners[o].runs.push(tokio::spawn(async move {
                    let _ = l.run_with(retry, || sleep(hold)).await;
                }));
            }
            6 => {
                if let Some(r) = owners[o].runs.pop() {
                    r.abort();
                }
            }
            7 => {
                let _ = lock.release().await;
            }
            8 => {
                let d = MS * (1 + rng.below(400)) as u32;
                let _ = lock.extend(Some(d)).await;
            }
            9 => owners[o].signals.push(lock.lost_signal()),
            _ => {
                // Re-acquire by the same lock right after dropping everything it holds.
                owners[o].guards.clear();
                let _ = lock.acquire_immediately().await.unwrap();
            }
        }
        sleep(MS * rng.below(30) as u32).await;

        // Never two holders: at most one owner believes it holds `k`, and then the store
        // agrees that `k` is held.
        let believers: Vec<usize> = owners
            .iter()
            .enumerate()
            .filter(|(_, ow)| ow.clones.iter().any(believes_held))
            .map(|(i, _)| i)
            .collect();
        assert!(
            believers.len() <= 1,
            "seed {seed} step {step} (action {action}): owners {believers:?} all believe they hold `k`"
        );
        if !believers.is_empty() {
            assert!(
                store.inner.exists("k").await.unwrap(),
                "seed {seed} step {step} (action {action}): owner {believers:?} believes it holds `k`, the store says nobody does"
            );
        }
        owners[o].runs.retain(|r| !r.is_finished());
    }
    for ow in owners {
        for r in ow.runs {
            r.abort();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn random_programs_never_have_two_holders_and_keep_their_budgets() {
    let seeds: u64 = std::env::var("LOCK_MODEL_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    for seed in 1..=seeds {
        run_program(seed, 120).await;
    }
}
