//! Model-based tests: random sequences of operations by several owners on a few keys
//! (acquire_immediately, release, extend, force_release, is_locked, time passing) run
//! through `Lock` against each store and against a reference model of the contract
//! (SPEC §2, §4), compared step by step.
//!
//! * memory store and `TestStore`: tokio's paused clock (`advance`), exact, with many
//!   cases; expiry exactly at the boundary included (held while `now < expiry`).
//! * Redis, PostgreSQL, MariaDB, SQLite: real time in 300 ms units. The model keeps each
//!   expiry as an interval (request sent .. answer received, plus the TTL) and, before an
//!   operation on a key whose expiry is near, waits until it is clearly past, so that
//!   every compared answer is determined.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Kind, connect, rand_hex};
use lock_core::testing::TestStore;
use lock_core::{FactoryOptions, Lock, LockFactory, LockStore, RetryConfig};
use lock_store_memory::MemoryStore;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tokio::time::Instant;

const OWNERS: usize = 4;
const KEYS: usize = 2;

#[derive(Debug, Clone)]
enum Op {
    Acquire {
        owner: usize,
        key: usize,
    },
    Release {
        owner: usize,
        key: usize,
    },
    Extend {
        owner: usize,
        key: usize,
        units: u32,
    },
    ForceRelease {
        owner: usize,
        key: usize,
    },
    Exists {
        key: usize,
    },
    Advance {
        units: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let o = 0..OWNERS;
    let k = 0..KEYS;
    prop_oneof![
        4 => (o.clone(), k.clone()).prop_map(|(owner, key)| Op::Acquire { owner, key }),
        3 => (o.clone(), k.clone()).prop_map(|(owner, key)| Op::Release { owner, key }),
        2 => (o.clone(), k.clone(), 1u32..5).prop_map(|(owner, key, units)| Op::Extend { owner, key, units }),
        1 => (o, k.clone()).prop_map(|(owner, key)| Op::ForceRelease { owner, key }),
        2 => k.prop_map(|key| Op::Exists { key }),
        3 => (0u32..4).prop_map(|units| Op::Advance { units }),
    ]
}

/// TTL of each owner's locks, in units; the last owner's locks never expire.
fn ttl_units(owner: usize) -> Option<u32> {
    [Some(2), Some(3), Some(4), None][owner]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Clock {
    /// tokio's paused clock: exact; `unit` of virtual time.
    Paused,
    /// Real time; margins keep the compared answers away from expiry boundaries.
    Real,
}

struct Setup {
    clock: Clock,
    unit: Duration,
    /// Real clock: wait when the earliest possible expiry is closer than this.
    before: Duration,
    /// Real clock: how far past the latest possible expiry to wait.
    after: Duration,
}

/// The model's view of one key: holder and expiry (earliest, latest possible instant).
#[derive(Debug, Clone, Copy)]
struct Held {
    owner: usize,
    expiry: Option<(Instant, Instant)>,
}

async fn run_case(
    setup: &Setup,
    store: Arc<dyn LockStore>,
    ops: &[Op],
    steps: &AtomicUsize,
) -> Result<(), TestCaseError> {
    let factory = LockFactory::from_shared(
        store,
        FactoryOptions {
            retry: RetryConfig::immediately(),
            default_ttl: None,
        },
    );
    let prefix = format!("model.{}", rand_hex());
    let locks: Vec<Vec<Lock>> = (0..OWNERS)
        .map(|o| {
            (0..KEYS)
                .map(|k| {
                    factory
                        .create_lock_with_ttl(
                            format!("{prefix}.{k}"),
                            ttl_units(o).map(|u| setup.unit * u),
                        )
                        .unwrap()
                })
                .collect()
        })
        .collect();
    let mut model: HashMap<usize, Held> = HashMap::new();

    for (i, op) in ops.iter().enumerate() {
        steps.fetch_add(1, Ordering::Relaxed);
        let key = match *op {
            Op::Acquire { key, .. }
            | Op::Release { key, .. }
            | Op::Extend { key, .. }
            | Op::ForceRelease { key, .. }
            | Op::Exists { key } => Some(key),
            Op::Advance { .. } => None,
        };
        // Real clock: never ask about a key whose expiry is about to happen.
        if let (Clock::Real, Some(k)) = (setup.clock, key)
            && let Some(Held {
                expiry: Some((lo, hi)),
                ..
            }) = model.get(&k).copied()
        {
            let now = Instant::now();
            if now + setup.before >= lo && now <= hi + setup.after {
                tokio::time::sleep_until(hi + setup.after).await;
            }
        }
        let now = Instant::now();
        let live = |m: &HashMap<usize, Held>, k: usize| -> Option<usize> {
            m.get(&k).and_then(|h| match h.expiry {
                Some((lo, _)) if now >= lo => None,
                _ => Some(h.owner),
            })
        };
        let ctx = format!("step {i} {op:?} (model {model:?})");
        match *op {
            Op::Acquire { owner, key } => {
                let expected = live(&model, key).is_none();
                let sent = Instant::now();
                let got = locks[owner][key].acquire_immediately().await;
                let recv = Instant::now();
                let got = got.map_err(|e| TestCaseError::fail(format!("{ctx}: {e:?}")))?;
                prop_assert_eq!(got, expected, "{}: acquire", ctx);
                if got {
                    let ttl = locks[owner][key].ttl();
                    model.insert(
                        key,
                        Held {
                            owner,
                            expiry: ttl.map(|t| (sent + t, recv + t)),
                        },
                    );
                    if let Some(t) = ttl {
                        let left = locks[owner][key].remaining_time().unwrap();
                        prop_assert!(left <= t, "{}: remaining {:?} > ttl", ctx, left);
                    }
                }
            }
            Op::Release { owner, key } => {
                let expected_ok = live(&model, key) == Some(owner);
                let got = locks[owner][key].release().await;
                match got {
                    Ok(()) => prop_assert!(expected_ok, "{}: release succeeded", ctx),
                    Err(e) if e.is_not_owned() => {
                        prop_assert!(!expected_ok, "{}: release refused", ctx)
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("{ctx}: {e:?}"))),
                }
                if expected_ok {
                    model.remove(&key);
                    prop_assert_eq!(locks[owner][key].remaining_time(), None);
                }
            }
            Op::Extend { owner, key, units } => {
                let expected_ok = live(&model, key) == Some(owner);
                let d = setup.unit * units;
                let sent = Instant::now();
                let got = locks[owner][key].extend(Some(d)).await;
                let recv = Instant::now();
                match got {
                    Ok(()) => prop_assert!(expected_ok, "{}: extend succeeded", ctx),
                    Err(e) if e.is_not_owned() => {
                        prop_assert!(!expected_ok, "{}: extend refused", ctx)
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("{ctx}: {e:?}"))),
                }
                if expected_ok {
                    model.insert(
                        key,
                        Held {
                            owner,
                            expiry: Some((sent + d, recv + d)),
                        },
                    );
                }
            }
            Op::ForceRelease { owner, key } => {
                locks[owner][key]
                    .force_release()
                    .await
                    .map_err(|e| TestCaseError::fail(format!("{ctx}: {e:?}")))?;
                model.remove(&key);
            }
            Op::Exists { key } => {
                let expected = live(&model, key).is_some();
                let got = locks[0][key]
                    .is_locked()
                    .await
                    .map_err(|e| TestCaseError::fail(format!("{ctx}: {e:?}")))?;
                prop_assert_eq!(got, expected, "{}: is_locked", ctx);
            }
            Op::Advance { units } => match setup.clock {
                Clock::Paused => tokio::time::advance(setup.unit * units).await,
                Clock::Real => tokio::time::sleep(setup.unit * units).await,
            },
        }
        // Paused clock: the local view agrees exactly with the model for live holders.
        if setup.clock == Clock::Paused {
            let now = Instant::now();
            for (&k, h) in &model {
                if let Some((lo, _)) = h.expiry
                    && now < lo
                {
                    let lock = &locks[h.owner][k];
                    prop_assert!(!lock.is_expired(), "{}: holder's local view expired", ctx);
                    prop_assert_eq!(lock.remaining_time(), Some(lo - now), "{}", ctx);
                }
            }
        }
    }
    // Leave nothing behind on shared servers.
    for lock in &locks[0] {
        let _ = lock.force_release().await;
    }
    Ok(())
}

fn paused_model(name: &str, make: fn() -> Arc<dyn LockStore>) {
    let steps = AtomicUsize::new(0);
    let setup = Setup {
        clock: Clock::Paused,
        unit: Duration::from_millis(100),
        before: Duration::ZERO,
        after: Duration::ZERO,
    };
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 1..60), |ops| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap();
            rt.block_on(run_case(&setup, make(), &ops, &steps))
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    println!("{name}: model steps run: {}", steps.load(Ordering::Relaxed));
}

#[test]
fn memory_store_matches_the_model_under_a_paused_clock() {
    paused_model("memory", || Arc::new(MemoryStore::new()));
}

#[test]
fn test_store_matches_the_model_under_a_paused_clock() {
    paused_model("TestStore", || Arc::new(TestStore::default()));
}

fn real_model(kind: Kind) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = kind.url();
    let Some(store) = rt.block_on(connect(kind, &url)) else {
        return;
    };
    let steps = AtomicUsize::new(0);
    let setup = Setup {
        clock: Clock::Real,
        unit: Duration::from_millis(300),
        before: Duration::from_millis(250),
        after: Duration::from_millis(80),
    };
    let mut runner = TestRunner::new(Config {
        cases: 6,
        max_shrink_iters: 16,
        failure_persistence: None,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    runner
        .run(&proptest::collection::vec(op(), 1..25), |ops| {
            rt.block_on(run_case(&setup, store.clone(), &ops, &steps))
        })
        .unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
    println!(
        "{}: model steps run: {} in {:?}",
        kind.name(),
        steps.load(Ordering::Relaxed),
        started.elapsed()
    );
}

#[test]
fn redis_store_matches_the_model_in_real_time() {
    real_model(Kind::Redis);
}

#[test]
fn postgres_store_matches_the_model_in_real_time() {
    real_model(Kind::Postgres);
}

#[test]
fn mysql_store_matches_the_model_in_real_time() {
    real_model(Kind::Mysql);
}

#[test]
fn sqlite_store_matches_the_model_in_real_time() {
    real_model(Kind::Sqlite);
}

/// The comparison bites: a store that never expires anything disagrees with the model
/// as soon as time passes beyond a TTL.
#[test]
fn control_a_store_that_never_expires_is_caught() {
    #[derive(Default)]
    struct NeverExpires(TestStore);
    #[lock_core::async_trait]
    impl LockStore for NeverExpires {
        async fn save(
            &self,
            k: &str,
            o: &str,
            _ttl: Option<Duration>,
        ) -> Result<bool, lock_core::LockError> {
            self.0.save(k, o, None).await
        }
        async fn delete(&self, k: &str, o: &str) -> Result<(), lock_core::LockError> {
            self.0.delete(k, o).await
        }
        async fn force_delete(&self, k: &str) -> Result<(), lock_core::LockError> {
            self.0.force_delete(k).await
        }
        async fn exists(&self, k: &str) -> Result<bool, lock_core::LockError> {
            self.0.exists(k).await
        }
        async fn extend(&self, k: &str, o: &str, _d: Duration) -> Result<(), lock_core::LockError> {
            self.0.extend(k, o, Duration::from_secs(1_000_000)).await
        }
    }
    let result = std::panic::catch_unwind(|| {
        paused_model("never-expires", || Arc::new(NeverExpires::default()))
    });
    assert!(
        result.is_err(),
        "the model did not notice a store that never expires"
    );
}

/// Regression (found by the model): extending a lock held without TTL makes the store
/// expire it; the local view (`remaining_time`, `is_expired`, the lost-lock signal) must
/// follow instead of still saying "never expires".
#[tokio::test(start_paused = true)]
async fn extending_a_lock_without_ttl_gives_it_a_local_deadline() {
    let factory = LockFactory::new(MemoryStore::new());
    let lock = factory.create_lock_with_ttl("k", None).unwrap();
    assert!(lock.acquire_immediately().await.unwrap());
    assert_eq!(lock.remaining_time(), None);
    let lost = lock.lost_signal();
    lock.extend(Some(Duration::from_millis(100))).await.unwrap();
    assert_eq!(lock.remaining_time(), Some(Duration::from_millis(100)));
    tokio::time::advance(Duration::from_millis(100)).await;
    assert!(!lock.is_locked().await.unwrap(), "the store expired it");
    assert!(lock.is_expired(), "the local view must agree");
    tokio::time::timeout(Duration::from_millis(1), lost.wait())
        .await
        .expect("the lost-lock signal fires at the new deadline");
}
