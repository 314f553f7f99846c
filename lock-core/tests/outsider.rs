//! Probes written by an outside review, each attacking one claim of the docs. Every
//! finding was fixed (or, for F6 and F8, the docs now say what happens); the tests stay
//! as regression tests.
//! Paused tokio clock on the reference `TestStore` unless said otherwise.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use lock_core::testing::TestStore;
use lock_core::{
    Acquisition, DelegatingStore, FactoryOptions, LockConfig, LockError, LockFactory, LockManager,
    LockStore, ReleaseFuture, RetryConfig, SerializedLock, StoreFactory, async_trait,
};
use tokio::time::{Instant, sleep, timeout};

const MS: Duration = Duration::from_millis(1);

/// A `TestStore` with knobs: answers that arrive late *after* the operation was applied
/// (so a caller that gives up does not know it happened), applies that happen late,
/// failing extensions, a listener that is always ready.
#[derive(Default)]
struct Probe {
    inner: TestStore,
    /// `delete` is applied, then its answer takes this long.
    delete_answer_ms: AtomicU64,
    /// `extend` is applied, then its answer takes this long.
    extend_answer_ms: AtomicU64,
    /// `try_acquire` is applied, then its answer takes this long.
    acquire_answer_ms: AtomicU64,
    /// `try_acquire` takes this long before it is applied.
    acquire_apply_ms: AtomicU64,
    /// `extend` fails with `Storage` (without touching the store).
    extend_fails: AtomicBool,
    /// `delete` fails with `Storage` (without touching the store).
    delete_fails: AtomicBool,
    /// `release_listener` returns an already-completed future.
    listener_ready: AtomicBool,
    tries: AtomicUsize,
}

fn ms(a: &AtomicU64) -> Duration {
    MS * a.load(Ordering::SeqCst) as u32
}

#[async_trait]
impl DelegatingStore for Probe {
    fn inner(&self) -> &dyn LockStore {
        &self.inner
    }
    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        if self.delete_fails.load(Ordering::SeqCst) {
            return Err(LockError::storage_msg("delete: connection reset"));
        }
        let r = self.inner.delete(key, owner).await;
        sleep(ms(&self.delete_answer_ms)).await;
        r
    }
    async fn extend(&self, key: &str, owner: &str, d: Duration) -> Result<(), LockError> {
        if self.extend_fails.load(Ordering::SeqCst) {
            return Err(LockError::storage_msg("extend: connection reset"));
        }
        let r = self.inner.extend(key, owner, d).await;
        sleep(ms(&self.extend_answer_ms)).await;
        r
    }
    async fn try_acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Option<Duration>,
    ) -> Result<Acquisition, LockError> {
        let n = self.tries.fetch_add(1, Ordering::SeqCst);
        if n > 100_000 {
            return Err(LockError::storage_msg("probe: too many tries (hot loop)"));
        }
        sleep(ms(&self.acquire_apply_ms)).await;
        let r = self.inner.try_acquire(key, owner, ttl).await;
        sleep(ms(&self.acquire_answer_ms)).await;
        r
    }
    fn release_listener(&self, _key: &str) -> Option<ReleaseFuture> {
        if self.listener_ready.load(Ordering::SeqCst) {
            Some(Box::pin(async {}))
        } else {
            None
        }
    }
}

fn factory(store: &Arc<Probe>) -> LockFactory {
    LockFactory::from_shared(store.clone(), FactoryOptions::default())
}

/// "Two believers": `a` says it holds (remaining time > 0, not lost) while `b` acquired.
fn assert_not_two_believers(what: &str, a: &lock_core::Lock, b_acquired: bool) {
    let a_believes = a.remaining_time().is_some_and(|d| d > Duration::ZERO)
        && !a.lost_signal().is_lost()
        && !a.is_expired();
    assert!(
        !(a_believes && b_acquired),
        "{what}: TWO HOLDERS — a still believes it holds (remaining {:?}, lost {}) while b acquired the key",
        a.remaining_time(),
        a.lost_signal().is_lost()
    );
}

// ---------------------------------------------------------------------------------
// 1. Never two holders
// ---------------------------------------------------------------------------------

/// `extend` docs: "If the future is dropped, the extension may or may not have reached
/// the store; the local deadline is then left as it was (the earlier, safer one)."
/// Not when the extension was *shorter* than what is left: the store then expires the
/// key early while the local deadline still shows the long one.
#[tokio::test(start_paused = true)]
async fn f1_cancelled_shortening_extend_leaves_a_stale_long_deadline() {
    let store = Arc::new(Probe::default());
    let locks = factory(&store);
    let a = locks
        .create_lock_with_ttl("k", Some(Duration::from_secs(10)))
        .unwrap();
    assert!(a.acquire_immediately().await.unwrap());
    store.extend_answer_ms.store(100, Ordering::SeqCst);
    // Applied in the store (expires in 50 ms), but the caller gives up before the answer.
    assert!(timeout(MS * 10, a.extend(Some(MS * 50))).await.is_err());
    sleep(MS * 100).await;
    let b = locks.create_lock("k").unwrap();
    let b_got = b.acquire_immediately().await.unwrap();
    assert_not_two_believers("cancelled shortening extend", &a, b_got);
}

/// `release` docs: "If the future is dropped, the delete may or may not have reached the
/// store; the lock then stays held until released again or until its TTL." When the
/// delete did reach the store, the lock is free but the local view still says held (and
/// the auto-extender was already stopped, so nothing ever notices before the deadline).
#[tokio::test(start_paused = true)]
async fn f2_cancelled_release_that_reached_the_store_leaves_a_believer() {
    let store = Arc::new(Probe::default());
    let locks = factory(&store);
    let a = locks
        .create_lock_with_ttl("k", Some(Duration::from_secs(10)))
        .unwrap()
        .with_auto_extend(true);
    assert!(a.acquire_immediately().await.unwrap());
    store.delete_answer_ms.store(100, Ordering::SeqCst);
    assert!(timeout(MS * 10, a.release()).await.is_err());
    store.delete_answer_ms.store(0, Ordering::SeqCst);
    let b = locks.create_lock("k").unwrap();
    let b_got = b.acquire_immediately().await.unwrap();
    assert_not_two_believers("cancelled release", &a, b_got);
}

/// `Holding::extended` sets a new deadline but keeps `lost`; `current()` then says "not
/// held" while `remaining_time()` says held. An acquire attempt of a clone cut in that
/// state is "undone" (its `held` flag was false), deleting the live holding: two holders.
/// How `lost` is reached while the store still holds the key: auto-extension fails
/// (store errors) until the *local* deadline passes; the store's expiry is later than the
/// local one (the local one is measured from before the request was sent).
#[tokio::test(start_paused = true)]
async fn f3_lost_then_extended_holding_is_deleted_by_a_clones_cut_attempt() {
    let store = Arc::new(Probe::default());
    let locks = factory(&store);
    let a = locks
        .create_lock_with_ttl("k", Some(MS * 300))
        .unwrap()
        .with_auto_extend(true);
    store.acquire_apply_ms.store(40, Ordering::SeqCst); // store expiry = local deadline + 40 ms
    assert!(a.acquire_immediately().await.unwrap());
    store.acquire_apply_ms.store(0, Ordering::SeqCst);
    let lost = a.lost_signal();
    store.extend_fails.store(true, Ordering::SeqCst);
    timeout(Duration::from_secs(1), lost.wait())
        .await
        .expect("lost at the local deadline");
    sleep(MS * 5).await; // the extender's own retry at the deadline marks it lost
    // The store still holds it for `a` for a few ms: the owner extends by hand, successfully.
    store.extend_fails.store(false, Ordering::SeqCst);
    a.extend(Some(Duration::from_secs(10)))
        .await
        .expect("still ours in the store");
    let remaining = a.remaining_time();
    let is_lost = a.lost_signal().is_lost();
    // A clone tries to acquire (denied: not re-entrant) on a slow answer, and is cut.
    store.acquire_answer_ms.store(100, Ordering::SeqCst);
    let clone = a.clone();
    assert!(
        !clone
            .acquire_with(RetryConfig::default().timeout(MS * 10))
            .await
            .unwrap()
    );
    sleep(MS * 200).await;
    store.acquire_answer_ms.store(0, Ordering::SeqCst);
    let b = locks.create_lock("k").unwrap();
    let b_got = b.acquire_immediately().await.unwrap();
    assert!(
        !(b_got && remaining.is_some_and(|d| d > Duration::from_secs(5))),
        "TWO HOLDERS: after a successful extend, a reported remaining {remaining:?} \
         (lost flag {is_lost}), yet a clone's cut (denied) attempt deleted the key and b acquired it; \
         a.remaining_time() now {:?}",
        a.remaining_time()
    );
}

/// A lock restored from a serialized one (same owner, separate holding and operation
/// mutex) whose cut acquire attempt removes the original's holding. Serialized before
/// acquiring = the restored copy starts "not held".
#[tokio::test(start_paused = true)]
async fn f4_restored_copys_cut_attempt_removes_the_originals_holding() {
    let store = Arc::new(Probe::default());
    let locks = factory(&store);
    let a = locks
        .create_lock_with_ttl("k", Some(Duration::from_secs(10)))
        .unwrap();
    let copy = locks
        .restore_lock(SerializedLock::from_json(&a.serialize().to_json()).unwrap())
        .unwrap();
    assert!(a.acquire_immediately().await.unwrap());
    store.acquire_answer_ms.store(100, Ordering::SeqCst);
    assert!(
        !copy
            .acquire_with(RetryConfig::default().timeout(MS * 10))
            .await
            .unwrap()
    );
    sleep(MS * 200).await;
    store.acquire_answer_ms.store(0, Ordering::SeqCst);
    let b = locks.create_lock("k").unwrap();
    let b_got = b.acquire_immediately().await.unwrap();
    assert_not_two_believers("restored copy's cut attempt", &a, b_got);
}

/// `acquire_with` docs: "an attempt still in flight is undone in the background";
/// RELIABILITY: "the cut attempt leaves nothing held". Not when this lock's previous
/// holding had merely expired (locally still `Deadline::At`, not marked lost): the undo is
/// skipped (`held == true`) and the re-save stays in the store for a full TTL, while the
/// lock itself says it is expired and every other owner is refused.
#[tokio::test(start_paused = true)]
async fn f5_cut_attempt_after_an_expired_holding_leaves_the_key_held() {
    let store = Arc::new(Probe::default());
    let locks = factory(&store);
    let a = locks
        .create_lock_with_ttl("k", Some(Duration::from_secs(10)))
        .unwrap();
    assert!(a.acquire_immediately().await.unwrap());
    sleep(Duration::from_secs(11)).await; // expired everywhere; nobody released
    store.acquire_answer_ms.store(100, Ordering::SeqCst);
    assert!(
        !a.acquire_with(RetryConfig::default().timeout(MS * 10))
            .await
            .unwrap(),
        "cut"
    );
    sleep(MS * 500).await; // any undo has run
    store.acquire_answer_ms.store(0, Ordering::SeqCst);
    assert!(a.is_expired(), "a believes its holding expired");
    let b = locks.create_lock("k").unwrap();
    assert!(
        b.acquire_immediately().await.unwrap(),
        "the cut attempt left `k` held for `a` (a TTL of 10 s) although `a` reports expired \
         and acquire returned Ok(false); is_locked = {}",
        b.is_locked().await.unwrap()
    );
}

/// Background clean-ups (the release of a dropped `run` or guard, the undo of a cut
/// attempt) are tasks on the runtime: when the runtime shuts down right after, they do
/// not run. As documented (lib.rs, `Lock::run`), a lock with a TTL then expires by itself;
/// a lock without TTL stays held (the docs say to prefer TTLs, or release before shutdown).
#[test]
fn f6_run_dropped_at_runtime_shutdown_leaves_a_ttl_lock_to_expire() {
    let store = Arc::new(Probe::default());
    let locks = factory(&store);
    let lock = locks.create_lock_with_ttl("k", Some(MS * 100)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let run = lock.run(std::future::pending::<()>);
        let _ = timeout(MS * 10, run).await; // dropped midway, e.g. shutdown signal
    });
    drop(rt); // process exit / runtime shutdown
    drop(lock);
    let rt2 = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let held = rt2.block_on(async {
        sleep(MS * 150).await;
        store.exists("k").await.unwrap()
    });
    assert!(!held, "the abandoned lock did not expire with its TTL");
}

// ---------------------------------------------------------------------------------
// 2. Budgets
// ---------------------------------------------------------------------------------

/// A lazily built store slower than the callers' timeouts is never built: each cut call
/// drops the build, the next one starts over. Every call answers `Ok(false)` ("held by
/// someone else") for a key nobody holds, forever.
#[tokio::test(start_paused = true)]
async fn f7_a_slow_lazy_build_never_completes_under_short_timeouts() {
    let builds = Arc::new(AtomicUsize::new(0));
    let counter = builds.clone();
    let slow_build = StoreFactory::new(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            sleep(Duration::from_secs(4)).await;
            Ok(TestStore::default())
        }
    });
    let locks =
        LockManager::new(LockConfig::new().default_store("s").store("s", slow_build)).unwrap();
    let lock = locks.create_lock("k").unwrap();
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(
            lock.acquire_with(RetryConfig::default().timeout(Duration::from_secs(3)))
                .await,
        );
    }
    let started_builds = builds.load(Ordering::SeqCst);
    assert!(
        locks.default_store().built_store().is_some() || answers.iter().any(|a| a.is_err()),
        "15 s of calls, a 4 s build started {started_builds} times and never finished; \
         every call said Ok(false) for a free key: {answers:?}"
    );
}

/// `acquire_immediately` docs: one try, no waiting for the lock — but the first call on
/// a lazily configured store builds the store first (bounded by the store's own
/// operation timeout, or by `acquire_with`'s timeout). It waits for the build, then tries.
#[tokio::test(start_paused = true)]
async fn f8_acquire_immediately_builds_a_lazy_store_then_tries_once() {
    let slow_build = StoreFactory::new(|| async {
        sleep(Duration::from_secs(60)).await;
        Ok(TestStore::default())
    });
    let locks =
        LockManager::new(LockConfig::new().default_store("s").store("s", slow_build)).unwrap();
    let lock = locks.create_lock("k").unwrap();
    let started = Instant::now();
    assert!(lock.acquire_immediately().await.unwrap());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(60) && took < Duration::from_secs(61),
        "{took:?}"
    );
    let clone = lock.clone();
    let started = Instant::now();
    let quick = clone
        .acquire_with(RetryConfig::immediately().timeout(Duration::from_secs(1)))
        .await;
    assert!(!quick.unwrap(), "held by this owner: not re-entrant");
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// Budgets that should hold: a queue of waiters, a slow store, a busy operation mutex.
#[tokio::test(start_paused = true)]
async fn ok_timeouts_hold_with_a_queue_a_slow_store_and_a_busy_mutex() {
    let store = Arc::new(Probe::default());
    let locks = factory(&store);
    let holder = locks.create_lock("k").unwrap();
    assert!(holder.acquire().await.unwrap());
    // A queue of 5 waiters without timeout in front.
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let w = locks.create_lock("k").unwrap();
        tasks.push(tokio::spawn(async move { w.acquire().await }));
    }
    sleep(MS * 5).await;
    store.acquire_answer_ms.store(700, Ordering::SeqCst);
    let w = locks.create_lock("k").unwrap();
    for t in [1u64, 50, 300, 1000] {
        let started = Instant::now();
        let got = w
            .acquire_with(RetryConfig::default().timeout(MS * t as u32))
            .await
            .unwrap();
        let took = started.elapsed();
        assert!(!got);
        assert!(took <= MS * (t as u32 + 2), "timeout {t} ms took {took:?}");
    }
    // The holder's clone with a timeout, while the holder's own extend is stuck.
    store.extend_answer_ms.store(5_000, Ordering::SeqCst);
    let h2 = holder.clone();
    let ext = tokio::spawn(async move { h2.extend(None).await });
    sleep(MS).await;
    let started = Instant::now();
    let got = holder
        .clone()
        .acquire_with(RetryConfig::default().timeout(MS * 100))
        .await
        .unwrap();
    assert!(!got);
    assert!(started.elapsed() <= MS * 102);
    let _ = ext.await;
    for t in tasks {
        t.abort();
    }
}

/// Extreme retry settings: rejected or working, never a panic or overflow.
#[tokio::test(start_paused = true)]
async fn ok_extreme_retry_settings() {
    let store = Arc::new(Probe::default());
    let locks = factory(&store);
    let holder = locks
        .create_lock_with_ttl("k", Some(Duration::from_secs(2)))
        .unwrap();
    assert!(holder.acquire().await.unwrap());
    let w = locks.create_lock("k").unwrap();
    let configs = [
        RetryConfig::default()
            .attempts(u32::MAX)
            .delay(Duration::MAX)
            .timeout(Duration::MAX),
        RetryConfig::default().attempts(u32::MAX).delay(MS),
        RetryConfig::default().delay(Duration::from_secs(u64::MAX)),
        RetryConfig::default().timeout(Duration::from_secs(u64::MAX / 2)),
        RetryConfig::default().attempts(2).delay(Duration::MAX),
        RetryConfig::default()
            .attempts(1)
            .delay(Duration::MAX)
            .timeout(Duration::MAX),
    ];
    for retry in configs {
        // A `Duration::MAX` delay on a store without notification or holder TTL never
        // retries: waiting out the 30 s is fine; a panic or an error is not.
        if let Ok(got) = timeout(Duration::from_secs(30), w.acquire_with(retry)).await {
            if got.unwrap_or_else(|e| panic!("{retry:?}: {e}")) {
                w.release().await.unwrap();
                assert!(holder.acquire().await.unwrap());
            }
        }
    }
    for bad in [
        RetryConfig::default().attempts(0),
        RetryConfig::default().delay(Duration::ZERO),
        RetryConfig::default().timeout(Duration::ZERO),
        RetryConfig::default().timeout(Duration::from_nanos(999_999)),
    ] {
        assert_eq!(
            w.acquire_with(bad).await.unwrap_err().code(),
            "E_INVALID_ARGUMENTS"
        );
    }
    // Through the factory too.
    let f = LockFactory::with_options(
        TestStore::default(),
        FactoryOptions::default()
            .retry(RetryConfig::default().delay(Duration::ZERO))
            .default_ttl(None),
    );
    assert!(f.create_lock("k").is_err());
}

/// A listener that completes at once (spurious; `ReleaseFuture` says "harmless") turns a
/// default `acquire` into a hot loop of store calls with no sleep in between.
#[tokio::test(start_paused = true)]
async fn f9_an_always_ready_listener_makes_acquire_spin() {
    let store = Arc::new(Probe::default());
    let locks = factory(&store);
    let holder = locks.create_lock("k").unwrap();
    assert!(holder.acquire().await.unwrap());
    store.listener_ready.store(true, Ordering::SeqCst);
    let w = locks.create_lock("k").unwrap();
    let before = store.tries.load(Ordering::SeqCst);
    let got = w
        .acquire_with(RetryConfig::default().timeout(Duration::from_secs(1)))
        .await;
    let tries = store.tries.load(Ordering::SeqCst) - before;
    assert!(
        tries < 100,
        "{tries} store calls in 1 s with a 250 ms delay (result {got:?}): a spurious wake is not rate-limited"
    );
}

// ---------------------------------------------------------------------------------
// 3. LostLock
// ---------------------------------------------------------------------------------

/// A signal that fired (deadline passed) "un-fires" once the lock is released with
/// `NotOwned` (a dropped guard does that in the background): `is_lost()` turns false and
/// `wait()` pends forever.
#[tokio::test(start_paused = true)]
async fn f10_a_fired_lost_signal_unfires_after_a_not_owned_release() {
    let store = Arc::new(Probe::default());
    let locks = factory(&store);
    let a = locks.create_lock_with_ttl("k", Some(MS * 100)).unwrap();
    let guard = a.acquire_guard().await.unwrap().unwrap();
    let lost = a.lost_signal();
    sleep(MS * 150).await;
    assert!(lost.is_lost(), "lost at the deadline");
    drop(guard); // background release: NotOwned
    sleep(MS * 10).await;
    assert!(
        lost.is_lost(),
        "the signal of a lost holding was reset by a NotOwned release"
    );
    assert!(
        timeout(Duration::from_secs(1), lost.wait()).await.is_ok(),
        "wait() on a lost holding pends forever"
    );
}

/// "Taken while it is not held, it follows the next one." Not when the previous holding
/// merely expired (or was lost) without a release: the signal binds to that dead holding,
/// says `is_lost()` before anything was acquired, and never fires for the next holding.
#[tokio::test(start_paused = true)]
async fn f11_a_signal_taken_after_expiry_does_not_follow_the_next_holding() {
    let store = Arc::new(Probe::default());
    let locks = factory(&store);
    let a = locks.create_lock_with_ttl("k", Some(MS * 100)).unwrap();
    assert!(a.acquire_immediately().await.unwrap());
    sleep(MS * 150).await; // expired, not released
    let lost = a.lost_signal(); // not held: should follow the next holding
    let early = lost.is_lost();
    assert!(
        a.acquire_immediately().await.unwrap(),
        "the key expired: re-acquired"
    );
    sleep(MS * 150).await; // the new holding expires too
    assert!(
        !early && lost.is_lost(),
        "signal taken while not held: is_lost before acquiring = {early}, \
         after the next holding expired = {}",
        lost.is_lost()
    );
}

/// Auto-extension stops within one TTL after the last clone is dropped, even with a
/// `LostLock` kept (claim holds?).
#[tokio::test(start_paused = true)]
async fn ok_signal_does_not_keep_a_dropped_lock_alive() {
    let store = Arc::new(Probe::default());
    let locks = factory(&store);
    let a = locks
        .create_lock_with_ttl("k", Some(MS * 300))
        .unwrap()
        .with_auto_extend(true);
    let guard = a.acquire_guard().await.unwrap().unwrap();
    let lost = a.lost_signal();
    let kept = guard.into_lock();
    drop(a);
    sleep(MS * 1000).await;
    assert!(!lost.is_lost(), "still alive while a clone exists");
    drop(kept);
    timeout(MS * 301, lost.wait())
        .await
        .expect("fires within one TTL");
    assert!(!store.exists("k").await.unwrap());
}

// ---------------------------------------------------------------------------------
// 4. Auto-extension
// ---------------------------------------------------------------------------------

/// `with_auto_extend`: "it extends itself whenever less than two thirds of its TTL is
/// left". After a manual `extend` *shorter* than the time left, the extender keeps
/// sleeping until the old wake-up time and the lock expires in between.
#[tokio::test(start_paused = true)]
async fn f12_a_shorter_manual_extend_defeats_auto_extension() {
    let store = Arc::new(Probe::default());
    let locks = factory(&store);
    let a = locks
        .create_lock_with_ttl("k", Some(Duration::from_secs(3)))
        .unwrap()
        .with_auto_extend(true);
    assert!(a.acquire_immediately().await.unwrap());
    sleep(MS * 10).await; // the extender is asleep until a third of the TTL
    a.extend(Some(MS * 300)).await.unwrap();
    let lost = a.lost_signal();
    sleep(MS * 900).await;
    let b_got = locks
        .create_lock("k")
        .unwrap()
        .acquire_immediately()
        .await
        .unwrap();
    assert!(
        !lost.is_lost() && !b_got,
        "auto-extending lock lost after a short manual extend (lost {}, taken by b {b_got})",
        lost.is_lost()
    );
}

/// A restored lock on a manager with auto-extension on reports `auto_extends() == true`
/// but never extends.
#[tokio::test(start_paused = true)]
async fn f13_a_restored_lock_reports_auto_extend_but_does_not_extend() {
    let locks = LockManager::new(
        LockConfig::new()
            .default_store("m")
            .store("m", StoreFactory::from_store(TestStore::default()))
            .default_ttl(Some(MS * 300))
            .auto_extend(true),
    )
    .unwrap();
    let a = locks.create_lock("k").unwrap();
    assert!(a.acquire().await.unwrap());
    let r = locks
        .restore_lock(SerializedLock::from_json(&a.serialize().to_json()).unwrap())
        .unwrap();
    drop(a); // handed over to the job
    assert!(r.auto_extends());
    let lost = r.lost_signal();
    sleep(MS * 1000).await;
    assert!(
        !lost.is_lost(),
        "the restored, auto-extending lock was lost after one TTL"
    );
}

/// `with_retry` / `with_auto_extend` share the holding (claim holds?).
#[tokio::test(start_paused = true)]
async fn ok_configured_copies_share_one_holding() {
    let store = Arc::new(Probe::default());
    let locks = factory(&store);
    let a = locks.create_lock_with_ttl("k", Some(MS * 300)).unwrap();
    let b = a
        .clone()
        .with_auto_extend(true)
        .with_retry(RetryConfig::immediately());
    assert!(b.acquire().await.unwrap());
    assert!(a.remaining_time().is_some());
    sleep(MS * 1000).await;
    assert!(!a.lost_signal().is_lost(), "b's extender keeps a's holding");
    a.release().await.unwrap();
    assert!(b.remaining_time().is_none());
    assert!(!store.exists("k").await.unwrap());
}

// ---------------------------------------------------------------------------------
// 5. Docs
// ---------------------------------------------------------------------------------

/// "Auto-extension never shortens a longer manual extend" (claim holds?) and "extends
/// itself once a third of its TTL has passed".
#[tokio::test(start_paused = true)]
async fn ok_auto_extension_timing_and_longer_manual_extend() {
    let store = Arc::new(Probe::default());
    let locks = factory(&store);
    let a = locks
        .create_lock_with_ttl("k", Some(MS * 300))
        .unwrap()
        .with_auto_extend(true);
    assert!(a.acquire_immediately().await.unwrap());
    sleep(MS * 99).await;
    assert!(
        a.remaining_time().unwrap() <= MS * 201,
        "not extended before a third"
    );
    sleep(MS * 2).await;
    assert!(
        a.remaining_time().unwrap() >= MS * 298,
        "extended once a third passed"
    );
    a.extend(Some(Duration::from_secs(10))).await.unwrap();
    sleep(Duration::from_secs(5)).await;
    let left = a.remaining_time().unwrap();
    assert!(
        left >= Duration::from_secs(4),
        "manual 10 s extension shortened: {left:?}"
    );
}

/// A `release` that fails with `Storage` leaves the lock held (the caller is told the
/// release is unknown) but has already stopped auto-extension: the lock that is still
/// ours silently expires one TTL later and the lost signal fires.
#[tokio::test(start_paused = true)]
async fn f14_a_failed_release_silently_stops_auto_extension() {
    let store = Arc::new(Probe::default());
    let locks = factory(&store);
    let a = locks
        .create_lock_with_ttl("k", Some(MS * 300))
        .unwrap()
        .with_auto_extend(true);
    assert!(a.acquire_immediately().await.unwrap());
    let lost = a.lost_signal();
    store.delete_fails.store(true, Ordering::SeqCst);
    assert!(a.release().await.unwrap_err().is_storage());
    store.delete_fails.store(false, Ordering::SeqCst);
    sleep(MS * 1000).await;
    assert!(
        !lost.is_lost(),
        "after a failed release the still-held, auto-extending lock was no longer extended and is lost"
    );
}

/// An extension whose answer arrives after the local deadline: the signal says lost
/// (a `wait()` returns), then the answer lands and `is_lost()` goes back to false; the
/// lock was never lost in the store.
#[tokio::test(start_paused = true)]
async fn f15_a_slow_extension_makes_the_signal_flap() {
    let store = Arc::new(Probe::default());
    let locks = factory(&store);
    let a = locks
        .create_lock_with_ttl("k", Some(MS * 300))
        .unwrap()
        .with_auto_extend(true);
    assert!(a.acquire_immediately().await.unwrap());
    store.extend_answer_ms.store(250, Ordering::SeqCst); // applied at once, answered late
    let lost = a.lost_signal();
    let fired = timeout(MS * 400, lost.wait()).await.is_ok(); // at the local deadline, 300 ms
    sleep(MS * 60).await; // the late answer (sent at 100 ms) has landed at 350 ms
    let later = lost.is_lost();
    let b_got = locks
        .create_lock("k")
        .unwrap()
        .acquire_immediately()
        .await
        .unwrap();
    assert!(
        fired == later,
        "lost signal fired = {fired}, is_lost afterwards = {later}, key still ours = {}",
        !b_got
    );
}
