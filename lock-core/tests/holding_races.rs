//! Races and waits in lock-core: each test reproduces a way two holders could overlap, a
//! call could outlive its budget, or a signal could lie — and fails on the code that had
//! the flaw. Paused tokio clock on the reference `TestStore` unless said otherwise.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use lock_core::testing::TestStore;
use lock_core::{
    Acquisition, DelegatingStore, FactoryOptions, LockConfig, LockError, LockFactory, LockManager,
    LockStore, RetryConfig, StoreFactory, async_trait,
};
use tokio::time::{Instant, sleep};

const MS: Duration = Duration::from_millis(1);

/// A `TestStore` whose operations can be made slow, and which counts calls.
#[derive(Default)]
struct Slow {
    inner: TestStore,
    /// Delay before a `delete` reaches the store.
    delete_delay_ms: AtomicU64,
    /// Delay after a `try_acquire` was applied, before its answer arrives.
    answer_delay_ms: AtomicU64,
    extends: AtomicUsize,
}

#[async_trait]
impl DelegatingStore for Slow {
    fn inner(&self) -> &dyn LockStore {
        &self.inner
    }
    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        sleep(MS * self.delete_delay_ms.load(Ordering::SeqCst) as u32).await;
        self.inner.delete(key, owner).await
    }
    async fn try_acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Option<Duration>,
    ) -> Result<Acquisition, LockError> {
        let got = self.inner.try_acquire(key, owner, ttl).await;
        sleep(MS * self.answer_delay_ms.load(Ordering::SeqCst) as u32).await;
        got
    }
    async fn extend(&self, key: &str, owner: &str, duration: Duration) -> Result<(), LockError> {
        self.extends.fetch_add(1, Ordering::SeqCst);
        self.inner.extend(key, owner, duration).await
    }
}

fn factory(store: &Arc<Slow>) -> LockFactory {
    LockFactory::from_shared(store.clone(), FactoryOptions::default())
}

/// Both `a` and a rival believe they hold `k`: the overlap every test here must rule out.
async fn assert_single_holder(locks: &LockFactory, holder: &lock_core::Lock) {
    let rival = locks.create_lock("k").unwrap();
    assert!(
        !rival.acquire_immediately().await.unwrap(),
        "two holders: the rival acquired `k` while the first lock still holds it (remaining {:?})",
        holder.remaining_time()
    );
    holder.release().await.expect("the holder still holds `k`");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_guard_never_releases_a_later_acquisition() {
    let store = Arc::new(Slow::default());
    let locks = factory(&store);
    let lock = locks.create_lock_with_ttl("k", Some(MS * 100)).unwrap();
    let guard = lock.acquire_guard().await.unwrap().expect("free");
    sleep(MS * 150).await; // expired in the store; nobody noticed
    store.delete_delay_ms.store(50, Ordering::SeqCst);
    drop(guard); // background delete starts, and is slow to arrive
    sleep(MS).await;
    assert!(
        lock.acquire_immediately().await.unwrap(),
        "the same lock re-acquires"
    );
    sleep(MS * 60).await; // the background delete of the old holding has run
    store.delete_delay_ms.store(0, Ordering::SeqCst);
    assert_single_holder(&locks, &lock).await;
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_run_never_releases_a_later_acquisition() {
    let store = Arc::new(Slow::default());
    let locks = factory(&store);
    let lock = locks.create_lock_with_ttl("k", Some(MS * 100)).unwrap();
    let run = lock.run(|| sleep(Duration::from_secs(10)));
    assert!(tokio::time::timeout(MS * 150, run).await.is_err());
    // The run future was dropped after its holding expired: its release is in flight.
    store.delete_delay_ms.store(50, Ordering::SeqCst);
    assert!(lock.acquire_immediately().await.unwrap());
    sleep(MS * 60).await;
    store.delete_delay_ms.store(0, Ordering::SeqCst);
    assert_single_holder(&locks, &lock).await;
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_attempt_of_a_clone_never_releases_the_holding() {
    let store = Arc::new(Slow::default());
    let locks = factory(&store);
    let lock = locks.create_lock_with_ttl("k", None).unwrap();
    assert!(lock.acquire().await.unwrap());
    store.answer_delay_ms.store(100, Ordering::SeqCst);
    let clone = lock.clone();
    // Denied (not re-entrant), but cancelled before the answer arrives.
    assert!(
        tokio::time::timeout(MS * 50, clone.acquire_immediately())
            .await
            .is_err()
    );
    sleep(MS * 200).await; // any clean-up has run
    store.answer_delay_ms.store(0, Ordering::SeqCst);
    assert_single_holder(&locks, &lock).await;
}

#[tokio::test(start_paused = true)]
async fn a_guard_of_an_ended_holding_releases_nothing() {
    let store = Arc::new(Slow::default());
    let locks = factory(&store);
    let lock = locks.create_lock_with_ttl("k", Some(MS * 100)).unwrap();
    let guard = lock.acquire_guard().await.unwrap().expect("free");
    sleep(MS * 150).await;
    assert!(lock.clone().acquire_immediately().await.unwrap());
    assert!(
        guard.release().await.unwrap_err().is_not_owned(),
        "the guard's holding ended; releasing it must not release the later one"
    );
    assert_single_holder(&locks, &lock).await;
}

#[tokio::test(start_paused = true)]
async fn a_clone_does_not_wait_behind_another_clones_acquire() {
    let store = Arc::new(Slow::default());
    let locks = factory(&store);
    let holder = locks.create_lock_with_ttl("k", None).unwrap();
    assert!(holder.acquire().await.unwrap());
    let lock = locks.create_lock("k").unwrap();
    let waiting = lock.clone();
    let waiter = tokio::spawn(async move { waiting.acquire().await });
    sleep(MS * 10).await;
    let quick = tokio::time::timeout(MS * 100, lock.acquire_immediately()).await;
    let got = quick
        .expect("acquire_immediately waited behind a clone's acquire")
        .unwrap();
    assert!(!got, "held by another owner");
    holder.release().await.unwrap();
    assert!(waiter.await.unwrap().unwrap());
}

#[tokio::test(start_paused = true)]
async fn huge_retry_settings_saturate_instead_of_panicking() {
    let locks = LockFactory::new(TestStore::default());
    let holder = locks.create_lock_with_ttl("k", None).unwrap();
    assert!(holder.acquire().await.unwrap());
    let mut tasks = Vec::new();
    for retry in [
        RetryConfig::default().timeout(Duration::MAX),
        RetryConfig::default()
            .attempts(u32::MAX)
            .delay(Duration::MAX),
        RetryConfig::default()
            .delay(Duration::MAX)
            .timeout(Duration::MAX),
    ] {
        let lock = locks.create_lock("k").unwrap();
        tasks.push(tokio::spawn(async move {
            lock.acquire_with(retry.delay(retry.delay.min(Duration::from_secs(1))))
                .await
        }));
    }
    let lock = locks.create_lock("k").unwrap();
    let slowest = tokio::spawn(async move {
        lock.acquire_with(
            RetryConfig::default()
                .attempts(u32::MAX)
                .delay(Duration::MAX),
        )
        .await
    });
    sleep(Duration::from_secs(3600)).await;
    for t in &tasks {
        assert!(!t.is_finished(), "a waiter gave up or panicked");
    }
    assert!(!slowest.is_finished(), "a waiter gave up or panicked");
    holder.release().await.unwrap();
    let mut acquired = 0;
    for t in tasks {
        if t.await.expect("no panic").unwrap() {
            acquired += 1;
        }
    }
    assert!(acquired >= 1);
    slowest.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_delay_and_zero_timeout_are_rejected_not_spun() {
    let locks = LockFactory::new(TestStore::default());
    let holder = locks.create_lock_with_ttl("k", None).unwrap();
    assert!(holder.acquire().await.unwrap());
    for retry in [
        RetryConfig::default().delay(Duration::ZERO),
        RetryConfig::default().timeout(Duration::ZERO),
    ] {
        let lock = locks.create_lock("k").unwrap();
        let task = tokio::spawn(async move { lock.acquire_with(retry).await });
        let outcome = tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("the acquire spun instead of answering")
            .unwrap();
        assert_eq!(outcome.unwrap_err().code(), "E_INVALID_ARGUMENTS");
    }
}

#[tokio::test(start_paused = true)]
async fn a_lost_signal_does_not_keep_a_dropped_lock_alive() {
    let store = Arc::new(Slow::default());
    let locks = factory(&store).auto_extend(true);
    let ttl = MS * 300;
    let lock = locks.create_lock_with_ttl("k", Some(ttl)).unwrap();
    assert!(lock.acquire().await.unwrap());
    let lost = lock.lost_signal();
    sleep(ttl * 2).await;
    assert!(
        store.extends.load(Ordering::SeqCst) >= 2,
        "auto-extension runs"
    );
    drop(lock);
    let at_drop = store.extends.load(Ordering::SeqCst);
    sleep(ttl * 3).await;
    assert!(
        store.extends.load(Ordering::SeqCst) <= at_drop + 1,
        "the extender kept extending a lock whose every clone was dropped"
    );
    assert!(
        !locks.create_lock("k").unwrap().is_locked().await.unwrap(),
        "the abandoned lock must expire within a TTL"
    );
    assert!(lost.is_lost(), "the abandoned holding's signal fires");
}

#[tokio::test(start_paused = true)]
async fn auto_extension_never_shortens_a_longer_manual_extension() {
    let store = Arc::new(Slow::default());
    let locks = factory(&store).auto_extend(true);
    let lock = locks.create_lock_with_ttl("k", Some(MS * 300)).unwrap();
    assert!(lock.acquire().await.unwrap());
    lock.extend(Some(Duration::from_secs(10))).await.unwrap();
    sleep(Duration::from_secs(1)).await;
    let left = lock.remaining_time().unwrap();
    assert!(left > Duration::from_secs(8), "shortened to {left:?}");
    drop(lock); // no more auto-extension: only the manual extension keeps it
    sleep(Duration::from_secs(2)).await;
    assert!(
        locks.create_lock("k").unwrap().is_locked().await.unwrap(),
        "the store's expiry was shortened back to the TTL"
    );
}

#[tokio::test(start_paused = true)]
async fn configured_copies_share_one_holding() {
    let locks = LockFactory::new(TestStore::default());
    let lock = locks
        .create_lock_with_ttl("k", Some(Duration::from_secs(5)))
        .unwrap();
    let patient = lock.clone().with_retry(RetryConfig::default().attempts(3));
    let extending = lock.clone().with_auto_extend(true);
    assert!(patient.acquire().await.unwrap());
    assert!(
        lock.remaining_time().is_some(),
        "the original does not see the holding"
    );
    assert!(extending.remaining_time().is_some());
    let lost = lock.lost_signal();
    extending.release().await.unwrap();
    assert_eq!(patient.remaining_time(), None, "released through a copy");
    assert!(!lost.is_lost());
}

#[tokio::test(start_paused = true)]
async fn a_lost_signal_taken_before_acquiring_follows_the_next_holding() {
    let locks = LockFactory::new(TestStore::default());
    let lock = locks.create_lock_with_ttl("k", Some(MS * 50)).unwrap();
    let lost = lock.lost_signal();
    assert!(!lost.is_lost());
    assert!(lock.acquire().await.unwrap());
    tokio::time::timeout(Duration::from_secs(5), lost.wait())
        .await
        .expect("the signal taken before acquiring never fired");
    assert!(lost.is_lost());
}

#[tokio::test(start_paused = true)]
async fn run_reports_a_lock_lost_during_the_closure_and_drops_the_value() {
    #[derive(Debug)]
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let locks = LockFactory::new(TestStore::default());
    let lock = locks.create_lock("k").unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let rival = locks.create_lock("k").unwrap();
    let outcome = lock
        .run(|| async move {
            rival.force_release().await.unwrap();
            assert!(rival.acquire_immediately().await.unwrap());
            Counted(d)
        })
        .await;
    assert!(
        outcome.unwrap_err().is_not_owned(),
        "run must report that the section was not exclusive throughout"
    );
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the value is dropped");
}

#[tokio::test(start_paused = true)]
async fn the_retry_timeout_bounds_a_lazy_store_build() {
    let built = Arc::new(AtomicBool::new(false));
    let flag = built.clone();
    let slow_build = StoreFactory::new(move || {
        let flag = flag.clone();
        async move {
            sleep(Duration::from_secs(10)).await;
            flag.store(true, Ordering::SeqCst);
            Ok(TestStore::default())
        }
    });
    let locks =
        LockManager::new(LockConfig::new().default_store("s").store("s", slow_build)).unwrap();
    let lock = locks.create_lock("k").unwrap();
    let started = Instant::now();
    let got = lock
        .acquire_with(RetryConfig::default().timeout(Duration::from_secs(3)))
        .await
        .unwrap();
    assert!(!got);
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(3100),
        "acquire_with(timeout 3 s) took {took:?}"
    );
    assert!(!built.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn the_retry_timeout_cuts_a_slow_attempt_and_leaves_nothing_held() {
    let store = Arc::new(Slow::default());
    let locks = factory(&store);
    store.answer_delay_ms.store(5_000, Ordering::SeqCst);
    let lock = locks.create_lock_with_ttl("k", None).unwrap();
    let started = Instant::now();
    let got = lock
        .acquire_with(RetryConfig::default().timeout(Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(!got);
    assert!(started.elapsed() < Duration::from_millis(1100));
    sleep(Duration::from_secs(6)).await; // the undo has run
    store.answer_delay_ms.store(0, Ordering::SeqCst);
    assert!(
        !locks.create_lock("k").unwrap().is_locked().await.unwrap(),
        "the cut attempt's save was left held"
    );
}

#[tokio::test(start_paused = true)]
async fn the_undo_of_a_cut_attempt_never_removes_a_later_acquisition() {
    let store = Arc::new(Slow::default());
    let locks = factory(&store);
    let holder = locks.create_lock_with_ttl("k", Some(MS * 100)).unwrap();
    assert!(holder.acquire().await.unwrap());
    let lock = locks
        .create_lock_with_ttl("k", Some(Duration::from_secs(5)))
        .unwrap();
    store.answer_delay_ms.store(100, Ordering::SeqCst);
    store.delete_delay_ms.store(80, Ordering::SeqCst);
    // Denied (held), and cut at 50 ms before the answer: its undo is slow to arrive.
    let retry = RetryConfig::default().timeout(MS * 50);
    assert!(!lock.acquire_with(retry).await.unwrap());
    store.answer_delay_ms.store(0, Ordering::SeqCst);
    sleep(MS * 51).await; // the holder's lock has expired
    assert!(lock.clone().acquire_immediately().await.unwrap());
    sleep(MS * 100).await; // the undo has run
    store.delete_delay_ms.store(0, Ordering::SeqCst);
    assert_single_holder(&locks, &lock).await;
}

/// An acquisition whose answer arrives after its TTL ran out (a stalled process, a slow
/// network) is no holding: the store's copy has expired too. `acquire` must not report
/// it acquired, nor `run` call its closure on it; a try after that succeeds.
#[tokio::test(start_paused = true)]
async fn an_acquisition_answered_after_its_ttl_is_not_a_holding() {
    let store = Arc::new(Slow::default());
    store.answer_delay_ms.store(1_500, Ordering::SeqCst);
    let locks = factory(&store);
    let lock = locks.create_lock_with_ttl("k", Some(MS * 1_000)).unwrap();
    assert!(
        !lock.acquire_immediately().await.unwrap(),
        "reported acquired, yet the TTL ran out before the answer arrived"
    );
    assert!(
        !lock.is_locked().await.unwrap(),
        "the late holding was left behind"
    );
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let outcome = lock
        .run_with(RetryConfig::default().attempts(3), || async move {
            r.store(true, Ordering::SeqCst)
        })
        .await;
    assert_eq!(outcome.unwrap(), None);
    assert!(
        !ran.load(Ordering::SeqCst),
        "run called `f` on an expired holding"
    );
    store.answer_delay_ms.store(10, Ordering::SeqCst);
    assert!(
        lock.acquire().await.unwrap(),
        "a timely answer is a holding"
    );
    assert_single_holder(&locks, &lock).await;
}

/// A guard's signal belongs to the guard's holding: taken after that holding was lost,
/// it reports it lost (and does not follow some later holding, silent meanwhile).
#[tokio::test(start_paused = true)]
async fn a_guard_signal_taken_after_the_loss_reports_it() {
    let locks = LockFactory::new(TestStore::default());
    let lock = locks.create_lock_with_ttl("k", Some(MS * 1_000)).unwrap();
    let guard = lock.acquire_guard().await.unwrap().expect("acquired");
    sleep(MS * 1_500).await; // a stall past the TTL, no auto-extension
    let lost = guard.lost_signal();
    assert!(
        lost.is_lost(),
        "the guard's signal says the lock is held, yet its TTL ran out"
    );
    tokio::time::timeout(Duration::from_secs(1), lost.wait())
        .await
        .expect("the guard's signal never fired");
    assert!(guard.release().await.unwrap_err().is_not_owned());
}

/// A lost holding's signal stays lost after later holdings of the same lock (a clone
/// re-acquires, and that holding is lost too): it never un-fires.
#[tokio::test(start_paused = true)]
async fn a_lost_signal_stays_lost_through_later_lost_holdings() {
    let locks = LockFactory::new(TestStore::default());
    let lock = locks.create_lock_with_ttl("k", Some(MS * 100)).unwrap();
    let guard = lock.acquire_guard().await.unwrap().expect("acquired");
    let by_guard = guard.lost_signal();
    let by_lock = lock.lost_signal();
    sleep(MS * 150).await;
    assert!(by_guard.is_lost() && by_lock.is_lost(), "holding 1 expired");
    for round in 2..5 {
        // A clone (same owner) takes the expired key again, and loses it again.
        assert!(lock.clone().acquire_immediately().await.unwrap());
        sleep(MS * 150).await;
        assert!(
            by_guard.is_lost() && by_lock.is_lost(),
            "round {round}: the signal of lost holding 1 un-fired"
        );
    }
    tokio::time::timeout(MS * 10, by_guard.wait())
        .await
        .expect("wait() of a lost holding's signal must return");
    drop(guard);
}
