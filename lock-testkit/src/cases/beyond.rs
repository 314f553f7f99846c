//! What Verrou's suite misses, through the `Lock` API: takeovers, re-entrancy,
//! contention, odd keys, cancellation, auto-extension, fairness.

use super::*;
use lock_core::{AcquireResult, DelegatingStore};

/// After an expiry takeover, the new holder releases; the old one gets `NotOwned`.
pub async fn release_after_expiry_takeover_belongs_to_new_holder(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let old = create_ttl(&locks, ctx.key("k"), Some(ctx.ttl()))?;
    let new = create(&locks, ctx.key("k"))?;
    acquire_free(&old).await?;
    past_ttl(ctx).await;
    ensure!(acquired(&new).await?, "takeover after expiry failed");
    only_holder_releases(&new, &old, "the expired holder").await
}

/// After a force release and a new acquire, the new holder releases; the old one cannot.
pub async fn release_after_force_release_belongs_to_new_holder(ctx: &Ctx) -> CaseResult {
    let (old, new) = held_and_rival(ctx).await?;
    ok(new.force_release().await, "force_release")?;
    ensure!(acquired(&new).await?, "acquire after force release failed");
    let got = old.release().await;
    ensure!(not_owned(&got), "the old holder's release returned {got:?}");
    ok(new.release().await, "release by the new holder")
}

/// Releasing a key nobody holds is `NotOwned`.
pub async fn release_of_unheld_lock_is_not_owned(ctx: &Ctx) -> CaseResult {
    let got = ctx
        .store()
        .delete(&ctx.key("k"), "0123456789abcdef0123456789abcdef")
        .await;
    ensure!(not_owned(&got), "delete of an unheld key returned {got:?}");
    Ok(())
}

/// Extending an expired lock is `NotOwned` and does not revive it.
pub async fn extend_of_expired_lock_is_not_owned(ctx: &Ctx) -> CaseResult {
    let lock = expired_lock(ctx).await?;
    let got = lock.extend(None).await;
    ensure!(
        not_owned(&got),
        "extend of an expired lock returned {got:?}"
    );
    ensure!(!locked(&lock).await?, "extend revived an expired lock");
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
                ran(lock
                    .run(|| async {
                        // A read-modify-write that loses updates if two holders overlap.
                        let seen = counter.load(Ordering::SeqCst);
                        detector.section(Duration::from_millis(1)).await;
                        counter.store(seen + 1, Ordering::SeqCst);
                    })
                    .await)?;
            }
            Ok::<_, String>(())
        }));
    }
    join_tasks(tasks, Duration::from_secs(25), "contending tasks").await?;
    let count = counter.load(Ordering::SeqCst);
    detector.no_overlaps()?;
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
    ensure!(acquired(&b).await?, "a second key was blocked by the first");
    ensure!(!locked(&prefix).await?, "a key prefix reports locked");
    ok(a.release().await, "release")?;
    ensure!(locked(&b).await?, "releasing one key released another");
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
            acquired(lock).await?,
            "could not acquire key {:?}",
            lock.key()
        );
    }
    for (i, lock) in held.iter().enumerate() {
        let rival = create(&locks, lock.key())?;
        ensure!(
            !acquired(&rival).await?,
            "key {i} ({:?}) was not held",
            lock.key()
        );
    }
    let trimmed = create(&locks, keys[5].trim_end())?;
    ensure!(
        acquired(&trimmed).await?,
        "keys differing by a trailing space collide"
    );
    ok(trimmed.release().await, "release")?;
    for lock in &held {
        ok(lock.release().await, "release")?;
        ensure!(!locked(lock).await?, "release of {:?} failed", lock.key());
    }
    Ok(())
}

/// A store that performs an acquire and answers late, to cancel acquires mid-flight.
struct SlowAnswer {
    inner: Arc<dyn LockStore>,
    delay: Duration,
}

#[async_trait]
impl DelegatingStore for SlowAnswer {
    fn inner(&self) -> &dyn LockStore {
        &*self.inner
    }
    async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError> {
        let saved = self.inner.save(key, owner, ttl).await;
        tokio::time::sleep(self.delay).await;
        saved
    }
    async fn try_acquire(&self, key: &str, owner: &str, ttl: Option<Duration>) -> AcquireResult {
        let acquired = self.inner.try_acquire(key, owner, ttl).await;
        tokio::time::sleep(self.delay).await;
        acquired
    }
}

/// Dropping an acquire whose `save` succeeded but has not answered leaves no orphan.
pub async fn dropped_acquire_leaves_no_orphan(ctx: &Ctx) -> CaseResult {
    let slow = SlowAnswer {
        inner: ctx.store(),
        delay: Duration::from_millis(300),
    };
    let locks = LockFactory::new(slow);
    let lock = create_ttl(&locks, ctx.key("k"), None)?;
    let cancelled = tokio::time::timeout(Duration::from_millis(100), lock.acquire()).await;
    ensure!(
        cancelled.is_err(),
        "the acquire was expected to still be in flight"
    );
    let probe = create(&ctx.factory(), ctx.key("k"))?;
    freed_soon(&probe, "a cancelled acquire left a lock without TTL held").await?;
    Ok(())
}

/// Dropping a `run` future mid-closure releases the lock.
pub async fn dropped_run_releases(ctx: &Ctx) -> CaseResult {
    let lock = create_ttl(&ctx.factory(), ctx.key("k"), None)?;
    let run = lock.run(|| tokio::time::sleep(Duration::from_secs(60)));
    let _ = tokio::time::timeout(Duration::from_millis(100), run).await;
    freed_soon(&lock, "a dropped run left the lock held").await?;
    Ok(())
}

/// Dropping a `LockGuard` releases the lock.
pub async fn guard_releases_on_drop(ctx: &Ctx) -> CaseResult {
    let lock = create_ttl(&ctx.factory(), ctx.key("k"), None)?;
    let guard = ok(lock.acquire_guard().await, "acquire_guard")?;
    ensure!(guard.is_some(), "acquire_guard of a free key failed");
    ensure!(locked(&lock).await?, "the guard's lock is not held");
    drop(guard);
    freed_soon(&lock, "a dropped guard left the lock held").await?;
    Ok(())
}

/// Auto-extension keeps a lock alive past 3× its TTL; the lost-lock signal fires
/// within one TTL of someone else's force release.
pub async fn auto_extension_keeps_lock_and_signals_loss(ctx: &Ctx) -> CaseResult {
    let ttl = ctx.ttl();
    let locks = ctx.factory();
    let lock = create_ttl(&locks, ctx.key("k"), Some(ttl))?.with_auto_extend(true);
    acquire_free(&lock).await?;
    let lost = lock.lost_signal();
    tokio::time::sleep(ttl * 3 + ttl / 2).await;
    let rival = create(&locks, ctx.key("k"))?;
    ensure!(
        !acquired(&rival).await?,
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
    join_tasks(tasks, QUICK, "contending tasks").await?;
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
