//! The conformance cases: one public async function per behaviour of the store contract.
//!
//! The first 25 are Verrou's `registerStoreTestSuite`; the rest cover what it misses, and
//! the capability cases run only on stores that declare the capability. Each returns a
//! [`CaseFailure`] that says what the store did wrong. The `store_*` cases (in
//! `direct.rs`) call the [`LockStore`] methods directly, one rule each, so that a failure
//! names the method that broke the rule.
//!
//! Not API-stable: cases are added as the contract is pinned down.

mod direct;
pub use direct::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lock_core::{
    FactoryOptions, Lock, LockError, LockFactory, LockStore, RetryConfig, async_trait,
};

use crate::harness::{CaseResult, Ctx, ok, within};
use crate::{CaseFailure, ensure};

/// Generous bound for anything that should be quick.
const QUICK: Duration = Duration::from_secs(5);

fn fast_retry() -> RetryConfig {
    RetryConfig::default()
        .delay(Duration::from_millis(10))
        .timeout(Duration::from_secs(10))
}

fn fast_factory(ctx: &Ctx) -> LockFactory {
    ctx.factory_with(FactoryOptions {
        retry: fast_retry(),
        ..FactoryOptions::default()
    })
}

/// `create_lock`, failing the case on an error.
fn create(locks: &LockFactory, key: impl Into<String>) -> Result<Lock, CaseFailure> {
    ok(locks.create_lock(key), "create_lock")
}

/// Acquire a key that must be free.
async fn acquire_free(lock: &Lock) -> CaseResult {
    ensure!(
        ok(lock.acquire_immediately().await, "acquire")?,
        "acquire of a free key {:?} failed",
        lock.key()
    );
    Ok(())
}

/// What a failed `run` inside a contention case means for the store.
fn run_error(e: LockError) -> String {
    match e {
        LockError::NotOwned => "two owners held the key at once: a `run` that acquired the key \
            found it no longer its own when releasing (delete returned NotOwned), so another \
            owner's save succeeded while it was held (save is not atomic?)"
            .into(),
        other => other.to_string(),
    }
}

/// Counts how many holders are inside a critical section at once.
#[derive(Default)]
struct OverlapDetector {
    inside: AtomicUsize,
    overlaps: AtomicUsize,
    sections: AtomicUsize,
}

impl OverlapDetector {
    async fn section(&self, hold: Duration) {
        if self.inside.fetch_add(1, Ordering::SeqCst) != 0 {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        tokio::time::sleep(hold).await;
        self.inside.fetch_sub(1, Ordering::SeqCst);
        self.sections.fetch_add(1, Ordering::SeqCst);
    }
}

// ---- Verrou's registerStoreTestSuite ------------------------------------------------

/// While one lock holds the key, another waits; it gets the key once released.
pub async fn acquiring_lock_is_exclusive(ctx: &Ctx) -> CaseResult {
    let key = ctx.key("k");
    let locks = fast_factory(ctx);
    let first = create(&locks, &key)?;
    let second = create(&locks, &key)?;
    ensure!(
        ok(first.acquire().await, "acquire")?,
        "first acquire of a free key failed"
    );
    let flag = Arc::new(AtomicBool::new(false));
    let waiter = {
        let second = second.clone();
        let flag = flag.clone();
        tokio::spawn(async move {
            let got = second.acquire().await;
            flag.store(true, Ordering::SeqCst);
            got
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    ensure!(
        !flag.load(Ordering::SeqCst),
        "a second lock acquired the key while the first held it"
    );
    ok(first.release().await, "release")?;
    let got = within(QUICK, "the waiting acquire", waiter)
        .await?
        .map_err(|e| CaseFailure(format!("waiter task failed: {e}")))?;
    ensure!(
        ok(got, "acquire")?,
        "the waiter did not acquire after release"
    );
    ok(second.release().await, "release")
}

/// A lock nobody acquired is not locked.
pub async fn new_mutex_is_not_locked(ctx: &Ctx) -> CaseResult {
    let lock = create(&ctx.factory(), ctx.key("k"))?;
    ensure!(
        !ok(lock.is_locked().await, "is_locked")?,
        "a fresh key reports locked"
    );
    Ok(())
}

/// Acquiring makes the key locked.
pub async fn acquiring_lock_makes_it_locked(ctx: &Ctx) -> CaseResult {
    let lock = create(&ctx.factory(), ctx.key("k"))?;
    acquire_free(&lock).await?;
    ensure!(
        ok(lock.is_locked().await, "is_locked")?,
        "an acquired key reports not locked"
    );
    ok(lock.release().await, "release")
}

/// Two locks created on one key see each other's hold.
pub async fn creating_same_lock_twice_returns_same_lock(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let a = create(&locks, ctx.key("k"))?;
    let b = create(&locks, ctx.key("k"))?;
    ensure!(a.owner() != b.owner(), "two locks got the same owner token");
    acquire_free(&a).await?;
    ensure!(
        ok(b.is_locked().await, "is_locked")?,
        "the second lock does not see the first's hold"
    );
    ok(a.release().await, "release")
}

/// Releasing a lock held by another owner is `NotOwned` and leaves it held.
pub async fn cant_release_a_lock_that_is_not_acquired_by_you(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let holder = create(&locks, ctx.key("k"))?;
    let other = create(&locks, ctx.key("k"))?;
    acquire_free(&holder).await?;
    let released = other.release().await;
    ensure!(
        matches!(released, Err(LockError::NotOwned)),
        "release by a non-owner returned {released:?}, expected NotOwned"
    );
    ensure!(
        ok(holder.is_locked().await, "is_locked")?,
        "a non-owner's release freed the lock"
    );
    ok(holder.release().await, "release by the owner")
}

/// A bounded acquire gives up with `Ok(false)` after its timeout.
pub async fn acquire_returns_false_when_lock_is_not_acquired_in_time(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let holder = create(&locks, ctx.key("k"))?;
    let waiter = create(&locks, ctx.key("k"))?;
    acquire_free(&holder).await?;
    let started = Instant::now();
    let retry = RetryConfig::default()
        .delay(Duration::from_millis(20))
        .timeout(Duration::from_millis(200));
    let got = within(QUICK, "a bounded acquire", waiter.acquire_with(retry)).await?;
    ensure!(!ok(got, "acquire")?, "acquired a key that was held");
    ensure!(
        started.elapsed() >= Duration::from_millis(200),
        "gave up after {:?}, before its 200 ms timeout",
        started.elapsed()
    );
    ok(holder.release().await, "release")
}

/// `run` returns the closure's value and releases.
pub async fn run_passes_result(ctx: &Ctx) -> CaseResult {
    let lock = create(&ctx.factory(), ctx.key("k"))?;
    let got = ok(lock.run(|| async { "hello" }).await, "run")?;
    ensure!(got == Some("hello"), "run returned {got:?}");
    ensure!(
        !ok(lock.is_locked().await, "is_locked")?,
        "run did not release"
    );
    Ok(())
}

/// `run` returns the value of an asynchronous closure.
pub async fn run_passes_result_from_a_future(ctx: &Ctx) -> CaseResult {
    let lock = create(&ctx.factory(), ctx.key("k"))?;
    let got = ok(
        lock.run(|| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            42
        })
        .await,
        "run",
    )?;
    ensure!(got == Some(42), "run returned {got:?}");
    Ok(())
}

/// An error returned by the closure comes back to the caller, and the lock is released.
pub async fn run_passes_error(ctx: &Ctx) -> CaseResult {
    let lock = create(&ctx.factory(), ctx.key("k"))?;
    let got = ok(
        lock.run(|| async { Err::<(), _>("boom".to_string()) })
            .await,
        "run",
    )?;
    ensure!(got == Some(Err("boom".to_string())), "run returned {got:?}");
    ensure!(
        !ok(lock.is_locked().await, "is_locked")?,
        "run left the lock held after an error"
    );
    Ok(())
}

/// A panic in the closure propagates after the lock is released.
pub async fn run_passes_panic(ctx: &Ctx) -> CaseResult {
    let lock = create(&ctx.factory(), ctx.key("k"))?;
    let task = {
        let lock = lock.clone();
        tokio::spawn(async move {
            lock.run(|| async {
                panic!("boom inside run");
            })
            .await
        })
    };
    let joined = within(QUICK, "a panicking run", task).await?;
    match joined {
        Err(e) if e.is_panic() => {}
        other => {
            return Err(CaseFailure(format!(
                "the panic did not propagate: {other:?}"
            )));
        }
    }
    ensure!(
        !ok(lock.is_locked().await, "is_locked")?,
        "a panic inside run left the lock held"
    );
    Ok(())
}

async fn exclusive_runs(ctx: &Ctx, factories: &[LockFactory]) -> CaseResult {
    let detector = Arc::new(OverlapDetector::default());
    let mut tasks = Vec::new();
    for (i, locks) in factories.iter().cycle().take(4).enumerate() {
        let lock = create(locks, ctx.key("k"))?;
        let detector = detector.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..3 {
                lock.run(|| detector.section(Duration::from_millis(10 + i as u64)))
                    .await
                    .map_err(run_error)?
                    .ok_or("a run did not acquire the lock in time")?;
            }
            Ok::<_, String>(())
        }));
    }
    for t in tasks {
        within(Duration::from_secs(20), "concurrent runs", t)
            .await?
            .map_err(|e| CaseFailure(format!("run task failed: {e}")))?
            .map_err(|e| CaseFailure(format!("run failed: {e}")))?;
    }
    let overlaps = detector.overlaps.load(Ordering::SeqCst);
    ensure!(
        overlaps == 0,
        "two owners held the key at once: {overlaps} critical sections overlapped"
    );
    ensure!(
        detector.sections.load(Ordering::SeqCst) == 12,
        "not every section ran"
    );
    Ok(())
}

/// Concurrent `run`s on one key never overlap (one factory).
pub async fn run_is_exclusive(ctx: &Ctx) -> CaseResult {
    exclusive_runs(ctx, &[fast_factory(ctx)]).await
}

/// Concurrent `run`s on one key never overlap, from two independent factories (no
/// shared local queue: exclusion comes from the store alone).
pub async fn run_is_exclusive_with_two_locks(ctx: &Ctx) -> CaseResult {
    exclusive_runs(ctx, &[fast_factory(ctx), fast_factory(ctx)]).await
}

/// After an error inside `run`, the key can be acquired again.
pub async fn errors_during_run_do_not_leave_the_lock_held(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let lock = create(&locks, ctx.key("k"))?;
    let _ = ok(lock.run(|| async { Err::<(), _>("failed") }).await, "run")?;
    let again = create(&locks, ctx.key("k"))?;
    ensure!(
        ok(again.acquire_immediately().await, "acquire")?,
        "the key stayed held after an error inside run"
    );
    ok(again.release().await, "release")
}

/// A second release is `NotOwned` and harms nobody.
pub async fn multiple_calls_to_release_behave_as_expected(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let lock = create(&locks, ctx.key("k"))?;
    acquire_free(&lock).await?;
    ok(lock.release().await, "first release")?;
    let second = lock.release().await;
    ensure!(
        matches!(second, Err(LockError::NotOwned)),
        "second release returned {second:?}, expected NotOwned"
    );
    let other = create(&locks, ctx.key("k"))?;
    ensure!(
        ok(other.acquire_immediately().await, "acquire")?,
        "key not free after release"
    );
    ok(other.release().await, "release")
}

/// Owners are unguessable 128-bit tokens, distinct per lock.
pub async fn get_lock_owner(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let a = create(&locks, ctx.key("k"))?;
    let b = create(&locks, ctx.key("k"))?;
    ensure!(
        a.owner().len() == 32 && a.owner().bytes().all(|c| c.is_ascii_hexdigit()),
        "owner is not 128 bits of hex"
    );
    ensure!(a.owner() != b.owner(), "two locks share an owner");
    Ok(())
}

/// A serialized lock restored on another store instance can release it.
pub async fn restore_lock_from_another_instance(ctx: &Ctx) -> CaseResult {
    let lock = create(&ctx.factory(), ctx.key("k"))?;
    acquire_free(&lock).await?;
    let json = lock.serialize().to_json();
    let other = LockFactory::new(ctx.other_store().await?);
    let restored = ok(
        other.restore_lock(ok(
            lock_core::SerializedLock::from_json(&json),
            "from_json",
        )?),
        "restore_lock",
    )?;
    ensure!(
        restored.owner() == lock.owner(),
        "restored lock has another owner"
    );
    ensure!(
        ok(restored.is_locked().await, "is_locked")?,
        "restored lock is not locked"
    );
    ok(restored.release().await, "release of the restored lock")?;
    ensure!(
        !ok(lock.is_locked().await, "is_locked")?,
        "the release did not free the key"
    );
    Ok(())
}

/// `exists` turns false once the TTL passes.
pub async fn exists_returns_false_if_lock_is_expired(ctx: &Ctx) -> CaseResult {
    let lock = ok(
        ctx.factory()
            .create_lock_with_ttl(ctx.key("k"), Some(ctx.ttl())),
        "create_lock",
    )?;
    acquire_free(&lock).await?;
    tokio::time::sleep(ctx.ttl() + Duration::from_millis(250)).await;
    ensure!(
        !ok(lock.is_locked().await, "is_locked")?,
        "the key is still locked after its TTL"
    );
    ensure!(lock.is_expired(), "is_expired is false after the TTL");
    Ok(())
}

/// Another lock acquires the key once the holder's TTL passes.
pub async fn can_acquire_lock_after_it_expires(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let first = ok(
        locks.create_lock_with_ttl(ctx.key("k"), Some(ctx.ttl())),
        "create_lock",
    )?;
    let second = create(&locks, ctx.key("k"))?;
    acquire_free(&first).await?;
    ensure!(
        !ok(second.acquire_immediately().await, "acquire")?,
        "acquired a held key"
    );
    tokio::time::sleep(ctx.ttl() + Duration::from_millis(250)).await;
    ensure!(
        ok(second.acquire_immediately().await, "acquire")?,
        "could not acquire a key whose TTL passed"
    );
    ok(second.release().await, "release")
}

/// A lock on another store instance acquires the key once the TTL passes.
pub async fn can_acquire_with_another_instance_after_it_expires(ctx: &Ctx) -> CaseResult {
    let first = ok(
        ctx.factory()
            .create_lock_with_ttl(ctx.key("k"), Some(ctx.ttl())),
        "create_lock",
    )?;
    let other = LockFactory::new(ctx.other_store().await?);
    let second = create(&other, ctx.key("k"))?;
    acquire_free(&first).await?;
    ensure!(
        !ok(second.acquire_immediately().await, "acquire")?,
        "another instance acquired a held key"
    );
    tokio::time::sleep(ctx.ttl() + Duration::from_millis(250)).await;
    ensure!(
        ok(second.acquire_immediately().await, "acquire")?,
        "another instance could not acquire a key whose TTL passed"
    );
    ok(second.release().await, "release")
}

/// The TTL given to the lock is the one the store applies: held before, free after.
pub async fn custom_ttl_is_used(ctx: &Ctx) -> CaseResult {
    let ttl = Duration::from_millis(600);
    let lock = ok(
        ctx.factory().create_lock_with_ttl(ctx.key("k"), Some(ttl)),
        "create_lock",
    )?;
    ensure!(lock.ttl() == Some(ttl), "lock reports TTL {:?}", lock.ttl());
    acquire_free(&lock).await?;
    let left = lock.remaining_time();
    ensure!(
        left.is_some_and(|l| l <= ttl && l > ttl / 2),
        "remaining_time {left:?} is not within the TTL"
    );
    tokio::time::sleep(ttl / 3).await;
    ensure!(
        ok(lock.is_locked().await, "is_locked")?,
        "expired well before its TTL"
    );
    tokio::time::sleep(ttl).await;
    ensure!(
        !ok(lock.is_locked().await, "is_locked")?,
        "still held after its TTL"
    );
    Ok(())
}

/// The same lock can acquire again after its own hold expired.
pub async fn able_to_acquire_a_lock_that_is_expired(ctx: &Ctx) -> CaseResult {
    let lock = ok(
        ctx.factory()
            .create_lock_with_ttl(ctx.key("k"), Some(ctx.ttl())),
        "create_lock",
    )?;
    acquire_free(&lock).await?;
    tokio::time::sleep(ctx.ttl() + Duration::from_millis(250)).await;
    ensure!(
        ok(lock.acquire_immediately().await, "acquire")?,
        "could not re-acquire an expired lock"
    );
    ensure!(!lock.is_expired(), "re-acquired lock reports expired");
    ok(lock.release().await, "release")
}

/// A lock without TTL stays held.
pub async fn no_ttl_never_expires(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let lock = ok(
        locks.create_lock_with_ttl(ctx.key("k"), None),
        "create_lock",
    )?;
    acquire_free(&lock).await?;
    ensure!(
        lock.remaining_time().is_none(),
        "remaining_time of a no-TTL lock is not None"
    );
    tokio::time::sleep(ctx.ttl() * 2).await;
    ensure!(
        ok(lock.is_locked().await, "is_locked")?,
        "a lock without TTL expired"
    );
    ensure!(!lock.is_expired(), "a lock without TTL reports expired");
    let other = create(&locks, ctx.key("k"))?;
    ensure!(
        !ok(other.acquire_immediately().await, "acquire")?,
        "a no-TTL lock was taken over"
    );
    ok(lock.release().await, "release")
}

/// `force_release` frees a key held by someone else.
pub async fn force_release_releases_a_lock_held_by_another(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let holder = create(&locks, ctx.key("k"))?;
    let other = create(&locks, ctx.key("k"))?;
    acquire_free(&holder).await?;
    ok(other.force_release().await, "force_release")?;
    ensure!(
        !ok(holder.is_locked().await, "is_locked")?,
        "force_release left the key held"
    );
    ok(other.force_release().await, "force_release of a free key")
}

/// `extend` pushes the expiry to now + duration.
pub async fn extend_resets_the_ttl(ctx: &Ctx) -> CaseResult {
    let ttl = ctx.ttl();
    let lock = ok(
        ctx.factory().create_lock_with_ttl(ctx.key("k"), Some(ttl)),
        "create_lock",
    )?;
    acquire_free(&lock).await?;
    tokio::time::sleep(ttl / 2).await;
    ok(lock.extend(Some(ttl * 3)).await, "extend")?;
    tokio::time::sleep(ttl).await; // 1.5 TTL after acquire: would have expired
    ensure!(
        ok(lock.is_locked().await, "is_locked")?,
        "extend did not push the expiry"
    );
    ensure!(
        lock.remaining_time().is_some_and(|l| l > ttl / 2),
        "remaining_time {:?} did not follow the extension",
        lock.remaining_time()
    );
    tokio::time::sleep(ttl * 2 + Duration::from_millis(250)).await;
    ensure!(
        !ok(lock.is_locked().await, "is_locked")?,
        "still held after the extension ran out"
    );
    Ok(())
}

/// `extend` of a lock not held is `NotOwned`.
pub async fn extend_errors_if_not_acquired(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let lock = create(&locks, ctx.key("k"))?;
    let got = lock.extend(None).await;
    ensure!(
        matches!(got, Err(LockError::NotOwned)),
        "extend of an unheld lock returned {got:?}"
    );
    let holder = create(&locks, ctx.key("k"))?;
    acquire_free(&holder).await?;
    let got = lock.extend(None).await;
    ensure!(
        matches!(got, Err(LockError::NotOwned)),
        "extend of a lock held by another returned {got:?}"
    );
    ok(holder.release().await, "release")
}

// ---- what Verrou's suite misses -------------------------------------------------------

/// After an expiry takeover, the new holder releases; the old one gets `NotOwned`.
pub async fn release_after_expiry_takeover_belongs_to_new_holder(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let old = ok(
        locks.create_lock_with_ttl(ctx.key("k"), Some(ctx.ttl())),
        "create_lock",
    )?;
    let new = create(&locks, ctx.key("k"))?;
    acquire_free(&old).await?;
    tokio::time::sleep(ctx.ttl() + Duration::from_millis(250)).await;
    ensure!(
        ok(new.acquire_immediately().await, "acquire")?,
        "takeover after expiry failed"
    );
    let got = old.release().await;
    ensure!(
        matches!(got, Err(LockError::NotOwned)),
        "the expired holder's release returned {got:?}"
    );
    ensure!(
        ok(new.is_locked().await, "is_locked")?,
        "the old holder's release freed the new holder's lock"
    );
    ok(new.release().await, "release by the new holder")
}

/// After a force release and a new acquire, the new holder releases; the old one cannot.
pub async fn release_after_force_release_belongs_to_new_holder(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let old = create(&locks, ctx.key("k"))?;
    let new = create(&locks, ctx.key("k"))?;
    acquire_free(&old).await?;
    ok(new.force_release().await, "force_release")?;
    ensure!(
        ok(new.acquire_immediately().await, "acquire")?,
        "acquire after force release failed"
    );
    let got = old.release().await;
    ensure!(
        matches!(got, Err(LockError::NotOwned)),
        "the old holder's release returned {got:?}"
    );
    ok(new.release().await, "release by the new holder")
}

/// Releasing a key nobody holds is `NotOwned`.
pub async fn release_of_unheld_lock_is_not_owned(ctx: &Ctx) -> CaseResult {
    let got = ctx
        .store()
        .delete(&ctx.key("k"), "0123456789abcdef0123456789abcdef")
        .await;
    ensure!(
        matches!(got, Err(LockError::NotOwned)),
        "delete of an unheld key returned {got:?}"
    );
    Ok(())
}

/// Extending an expired lock is `NotOwned` and does not revive it.
pub async fn extend_of_expired_lock_is_not_owned(ctx: &Ctx) -> CaseResult {
    let lock = ok(
        ctx.factory()
            .create_lock_with_ttl(ctx.key("k"), Some(ctx.ttl())),
        "create_lock",
    )?;
    acquire_free(&lock).await?;
    tokio::time::sleep(ctx.ttl() + Duration::from_millis(250)).await;
    let got = lock.extend(None).await;
    ensure!(
        matches!(got, Err(LockError::NotOwned)),
        "extend of an expired lock returned {got:?}"
    );
    ensure!(
        !ok(lock.is_locked().await, "is_locked")?,
        "extend revived an expired lock"
    );
    Ok(())
}

/// The store says no to a second save of a held key, even by the same owner.
pub async fn locks_are_not_reentrant(ctx: &Ctx) -> CaseResult {
    let store = ctx.store();
    let key = ctx.key("k");
    let owner = "0123456789abcdef0123456789abcdef";
    ensure!(
        ok(
            store.save(&key, owner, Some(Duration::from_secs(10))).await,
            "save"
        )?,
        "save of a free key failed"
    );
    let again = ok(
        store.save(&key, owner, Some(Duration::from_secs(10))).await,
        "save",
    )?;
    let _ = store.delete(&key, owner).await;
    ensure!(
        !again,
        "a second save by the same owner succeeded: the store is re-entrant"
    );
    Ok(())
}

/// Many tasks on one key, from two factories: zero overlap, every section counted.
pub async fn many_tasks_one_key_never_overlap(ctx: &Ctx) -> CaseResult {
    let factories = [fast_factory(ctx), fast_factory(ctx)];
    let detector = Arc::new(OverlapDetector::default());
    let counter = Arc::new(AtomicUsize::new(0));
    let (tasks_n, rounds) = (16, 5);
    let mut tasks = Vec::new();
    for i in 0..tasks_n {
        let lock = ok(factories[i % 2].create_lock(ctx.key("k")), "create_lock")?;
        let detector = detector.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..rounds {
                lock.run(|| async {
                    // A read-modify-write that loses updates if two holders overlap.
                    let seen = counter.load(Ordering::SeqCst);
                    detector.section(Duration::from_millis(1)).await;
                    counter.store(seen + 1, Ordering::SeqCst);
                })
                .await
                .map_err(run_error)?
                .ok_or("a run did not acquire the lock in time")?;
            }
            Ok::<_, String>(())
        }));
    }
    for t in tasks {
        within(Duration::from_secs(25), "contending tasks", t)
            .await?
            .map_err(|e| CaseFailure(format!("task failed: {e}")))?
            .map_err(|e| CaseFailure(format!("run failed: {e}")))?;
    }
    let overlaps = detector.overlaps.load(Ordering::SeqCst);
    let count = counter.load(Ordering::SeqCst);
    ensure!(
        overlaps == 0,
        "two owners held the key at once: {overlaps} overlapping critical sections"
    );
    ensure!(
        count == tasks_n * rounds,
        "lost updates: counter {count}, expected {}",
        tasks_n * rounds
    );
    Ok(())
}

/// Holding one key does not hold another; releasing one does not release another.
pub async fn keys_are_independent(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let a = create(&locks, ctx.key("a"))?;
    let b = create(&locks, ctx.key("b"))?;
    let prefix = create(&locks, ctx.key(""))?;
    acquire_free(&a).await?;
    ensure!(
        ok(b.acquire_immediately().await, "acquire")?,
        "a second key was blocked by the first"
    );
    ensure!(
        !ok(prefix.is_locked().await, "is_locked")?,
        "a key prefix reports locked"
    );
    ok(a.release().await, "release")?;
    ensure!(
        ok(b.is_locked().await, "is_locked")?,
        "releasing one key released another"
    );
    ok(b.release().await, "release")
}

/// Long, non-ASCII and punctuation-heavy keys work and stay distinct.
pub async fn long_and_non_ascii_keys(ctx: &Ctx) -> CaseResult {
    let base = ctx.key("");
    let long = format!("{base}{}", "x".repeat(lock_core::MAX_KEY_LEN - base.len()));
    let keys = [
        long,
        format!("{base}commande.é.日本語.🔒"),
        format!("{base}quote'\"`;--/*"),
        format!("{base}glob*?[x]%_{{tag}}"),
        format!("{base}line\nbreak\ttab"),
        format!("{base}trailing space "),
    ];
    let locks = ctx.factory();
    let held: Vec<_> = keys
        .iter()
        .map(|k| locks.create_lock(k.clone()))
        .collect::<Result<_, _>>()
        .map_err(|e| CaseFailure(format!("create_lock rejected a valid key: {e}")))?;
    for lock in &held {
        ensure!(
            ok(lock.acquire_immediately().await, "acquire")?,
            "could not acquire key {:?}",
            lock.key()
        );
    }
    for (i, lock) in held.iter().enumerate() {
        let rival = create(&locks, lock.key())?;
        ensure!(
            !ok(rival.acquire_immediately().await, "acquire")?,
            "key {i} ({:?}) was not held",
            lock.key()
        );
    }
    let trimmed = create(&locks, keys[5].trim_end())?;
    ensure!(
        ok(trimmed.acquire_immediately().await, "acquire")?,
        "keys differing by a trailing space collide"
    );
    ok(trimmed.release().await, "release")?;
    for lock in &held {
        ok(lock.release().await, "release")?;
        ensure!(
            !ok(lock.is_locked().await, "is_locked")?,
            "release of {:?} failed",
            lock.key()
        );
    }
    Ok(())
}

/// A store that performs `save` and answers late, to cancel acquires mid-flight.
struct SlowAnswer {
    inner: Arc<dyn LockStore>,
    delay: Duration,
}

#[async_trait]
impl LockStore for SlowAnswer {
    async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError> {
        let saved = self.inner.save(key, owner, ttl).await;
        tokio::time::sleep(self.delay).await;
        saved
    }
    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        self.inner.delete(key, owner).await
    }
    async fn force_delete(&self, key: &str) -> Result<(), LockError> {
        self.inner.force_delete(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool, LockError> {
        self.inner.exists(key).await
    }
    async fn extend(&self, key: &str, owner: &str, duration: Duration) -> Result<(), LockError> {
        self.inner.extend(key, owner, duration).await
    }
}

/// Dropping an acquire whose `save` succeeded but has not answered leaves no orphan.
pub async fn dropped_acquire_leaves_no_orphan(ctx: &Ctx) -> CaseResult {
    let slow = SlowAnswer {
        inner: ctx.store(),
        delay: Duration::from_millis(300),
    };
    let locks = LockFactory::new(slow);
    let lock = ok(
        locks.create_lock_with_ttl(ctx.key("k"), None),
        "create_lock",
    )?;
    let cancelled = tokio::time::timeout(Duration::from_millis(100), lock.acquire()).await;
    ensure!(
        cancelled.is_err(),
        "the acquire was expected to still be in flight"
    );
    let probe = create(&ctx.factory(), ctx.key("k"))?;
    let started = Instant::now();
    while ok(probe.is_locked().await, "is_locked")? {
        ensure!(
            started.elapsed() < QUICK,
            "a cancelled acquire left a lock without TTL held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Dropping a `run` future mid-closure releases the lock.
pub async fn dropped_run_releases(ctx: &Ctx) -> CaseResult {
    let lock = ok(
        ctx.factory().create_lock_with_ttl(ctx.key("k"), None),
        "create_lock",
    )?;
    let run = lock.run(|| tokio::time::sleep(Duration::from_secs(60)));
    let _ = tokio::time::timeout(Duration::from_millis(100), run).await;
    let started = Instant::now();
    while ok(lock.is_locked().await, "is_locked")? {
        ensure!(
            started.elapsed() < QUICK,
            "a dropped run left the lock held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Dropping a `LockGuard` releases the lock.
pub async fn guard_releases_on_drop(ctx: &Ctx) -> CaseResult {
    let lock = ok(
        ctx.factory().create_lock_with_ttl(ctx.key("k"), None),
        "create_lock",
    )?;
    let guard = ok(lock.acquire_guard().await, "acquire_guard")?;
    ensure!(guard.is_some(), "acquire_guard of a free key failed");
    ensure!(
        ok(lock.is_locked().await, "is_locked")?,
        "the guard's lock is not held"
    );
    drop(guard);
    let started = Instant::now();
    while ok(lock.is_locked().await, "is_locked")? {
        ensure!(
            started.elapsed() < QUICK,
            "a dropped guard left the lock held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Auto-extension keeps a lock alive past 3× its TTL; the lost-lock signal fires
/// within one TTL of someone else's force release.
pub async fn auto_extension_keeps_lock_and_signals_loss(ctx: &Ctx) -> CaseResult {
    let ttl = ctx.ttl();
    let locks = ctx.factory();
    let lock = ok(
        locks.create_lock_with_ttl(ctx.key("k"), Some(ttl)),
        "create_lock",
    )?
    .with_auto_extend(true);
    acquire_free(&lock).await?;
    let lost = lock.lost_signal();
    tokio::time::sleep(ttl * 3 + ttl / 2).await;
    let rival = create(&locks, ctx.key("k"))?;
    ensure!(
        !ok(rival.acquire_immediately().await, "acquire")?,
        "an auto-extended lock expired after 3.5 TTL"
    );
    ensure!(
        !lost.is_lost(),
        "the lost signal fired while the lock was held"
    );
    ok(rival.force_release().await, "force_release")?;
    let fired_at = Instant::now();
    within(
        ttl + Duration::from_millis(200),
        "the lost-lock signal",
        lost.wait(),
    )
    .await?;
    ensure!(
        fired_at.elapsed() <= ttl + Duration::from_millis(200),
        "the lost signal fired late"
    );
    Ok(())
}

/// Under contention, every task gets at least half of its fair share of sections.
pub async fn contenders_are_served_fairly(ctx: &Ctx) -> CaseResult {
    let locks = fast_factory(ctx);
    let n = 8;
    let counts: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..n {
        let lock = create(&locks, ctx.key("k"))?;
        let (counts, stop) = (counts.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                lock.run(|| async {
                    counts[i].fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                })
                .await?;
            }
            Ok::<_, LockError>(())
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        within(QUICK, "contending tasks", t)
            .await?
            .map_err(|e| CaseFailure(format!("task failed: {e}")))?
            .map_err(|e| CaseFailure(format!("run failed: {e}")))?;
    }
    let per_task: Vec<usize> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    let total: usize = per_task.iter().sum();
    let fair = total / n;
    ensure!(total >= n * 2, "only {total} sections in 1 s: {per_task:?}");
    ensure!(
        per_task.iter().all(|&c| c * 2 >= fair),
        "unfair: sections per task {per_task:?} (fair share {fair})"
    );
    Ok(())
}

// ---- capability cases ---------------------------------------------------------------

/// A waiter is woken by the release, well before its retry delay.
pub async fn release_wakes_waiter_before_retry_delay(ctx: &Ctx) -> CaseResult {
    let delay = Duration::from_secs(10);
    let locks = ctx.factory_with(FactoryOptions {
        retry: RetryConfig::default().delay(delay),
        ..FactoryOptions::default()
    });
    let holder = create(&locks, ctx.key("k"))?;
    acquire_free(&holder).await?;
    // Another instance: the notification must cross connections, not only tasks.
    let other = LockFactory::with_options(
        ctx.other_store().await?,
        FactoryOptions {
            retry: RetryConfig::default().delay(delay),
            ..FactoryOptions::default()
        },
    );
    let waiter = create(&other, ctx.key("k"))?;
    let task = tokio::spawn(async move {
        let got = waiter.acquire().await;
        (got, Instant::now(), waiter)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let released_at = Instant::now();
    ok(holder.release().await, "release")?;
    let (got, acquired_at, waiter) = within(delay / 2, "the woken waiter", task)
        .await?
        .map_err(|e| CaseFailure(format!("waiter failed: {e}")))?;
    ensure!(ok(got, "acquire")?, "the waiter did not acquire");
    let latency = acquired_at.saturating_duration_since(released_at);
    ensure!(
        latency < Duration::from_secs(1),
        "wake-up took {latency:?}; the retry delay is {delay:?}"
    );
    ok(waiter.release().await, "release")
}

/// Fencing tokens strictly increase across releases, force releases, expiry and
/// two store instances.
pub async fn fencing_tokens_strictly_increase(ctx: &Ctx) -> CaseResult {
    let a = ctx.factory();
    let b = LockFactory::new(ctx.other_store().await?);
    let key = ctx.key("k");
    let short = Duration::from_millis(100);
    let mut last = 0u64;
    for round in 0..24 {
        let locks = if round % 2 == 0 { &a } else { &b };
        let ttl = if round % 6 == 5 { Some(short) } else { None };
        let lock = ok(locks.create_lock_with_ttl(&key, ttl), "create_lock")?;
        ensure!(
            ok(
                lock.acquire_with(fast_retry().timeout(QUICK)).await,
                "acquire"
            )?,
            "round {round}: acquire failed"
        );
        let token = lock
            .fencing_token()
            .ok_or_else(|| CaseFailure(format!("round {round}: no fencing token")))?;
        ensure!(token > last, "round {round}: token {token} after {last}");
        last = token;
        match ttl {
            Some(_) => tokio::time::sleep(short + Duration::from_millis(100)).await,
            None if round % 4 < 2 => ok(lock.release().await, "release")?,
            None => ok(lock.force_release().await, "force_release")?,
        }
    }
    Ok(())
}

/// A waiter never sleeps past the holder's expiry, whatever its retry delay.
pub async fn waiter_wakes_at_holder_expiry(ctx: &Ctx) -> CaseResult {
    let ttl = ctx.ttl();
    let holder = ok(
        ctx.factory().create_lock_with_ttl(ctx.key("k"), Some(ttl)),
        "create_lock",
    )?;
    acquire_free(&holder).await?;
    let started = Instant::now();
    let waiter_locks = ctx.factory_with(FactoryOptions {
        retry: RetryConfig::default().delay(Duration::from_secs(10)),
        ..FactoryOptions::default()
    });
    let waiter = create(&waiter_locks, ctx.key("k"))?;
    let got = within(Duration::from_secs(5), "the waiter", waiter.acquire()).await?;
    ensure!(ok(got, "acquire")?, "the waiter did not acquire");
    ensure!(
        started.elapsed() < ttl + Duration::from_secs(1),
        "the waiter slept {:?} past a holder TTL of {ttl:?}",
        started.elapsed()
    );
    ok(waiter.release().await, "release")
}
