//! The cases of Verrou's `registerStoreTestSuite`, through the `Lock` API.

use super::*;

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
    ensure!(!locked(&lock).await?, "a fresh key reports locked");
    Ok(())
}

/// Acquiring makes the key locked.
pub async fn acquiring_lock_makes_it_locked(ctx: &Ctx) -> CaseResult {
    let lock = create(&ctx.factory(), ctx.key("k"))?;
    acquire_free(&lock).await?;
    ensure!(locked(&lock).await?, "an acquired key reports not locked");
    ok(lock.release().await, "release")
}

/// Two locks created on one key see each other's hold.
pub async fn creating_same_lock_twice_returns_same_lock(ctx: &Ctx) -> CaseResult {
    let (a, b) = two_locks(ctx)?;
    ensure!(a.owner() != b.owner(), "two locks got the same owner token");
    acquire_free(&a).await?;
    ensure!(
        locked(&b).await?,
        "the second lock does not see the first's hold"
    );
    ok(a.release().await, "release")
}

/// Releasing a lock held by another owner is `NotOwned` and leaves it held.
pub async fn cant_release_a_lock_that_is_not_acquired_by_you(ctx: &Ctx) -> CaseResult {
    let (holder, other) = held_and_rival(ctx).await?;
    only_holder_releases(&holder, &other, "a non-owner").await
}

/// A bounded acquire gives up with `Ok(false)` after its timeout.
pub async fn acquire_returns_false_when_lock_is_not_acquired_in_time(ctx: &Ctx) -> CaseResult {
    let (holder, waiter) = held_and_rival(ctx).await?;
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
    ensure!(!locked(&lock).await?, "run did not release");
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
        !locked(&lock).await?,
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
        !locked(&lock).await?,
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
                ran(lock
                    .run(|| detector.section(Duration::from_millis(10 + i as u64)))
                    .await)?;
            }
            Ok::<_, String>(())
        }));
    }
    join_tasks(tasks, Duration::from_secs(20), "concurrent runs").await?;
    detector.no_overlaps()?;
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
        acquired(&again).await?,
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
        not_owned(&second),
        "second release returned {second:?}, expected NotOwned"
    );
    let other = create(&locks, ctx.key("k"))?;
    ensure!(acquired(&other).await?, "key not free after release");
    ok(other.release().await, "release")
}

/// Owners are unguessable 128-bit tokens, distinct per lock.
pub async fn get_lock_owner(ctx: &Ctx) -> CaseResult {
    let (a, b) = two_locks(ctx)?;
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
    ensure!(locked(&restored).await?, "restored lock is not locked");
    ok(restored.release().await, "release of the restored lock")?;
    ensure!(!locked(&lock).await?, "the release did not free the key");
    Ok(())
}

/// `exists` turns false once the TTL passes.
pub async fn exists_returns_false_if_lock_is_expired(ctx: &Ctx) -> CaseResult {
    let lock = expired_lock(ctx).await?;
    ensure!(
        !locked(&lock).await?,
        "the key is still locked after its TTL"
    );
    ensure!(lock.is_expired(), "is_expired is false after the TTL");
    Ok(())
}

/// Another lock acquires the key once the holder's TTL passes.
pub async fn can_acquire_lock_after_it_expires(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let second = create(&locks, ctx.key("k"))?;
    taken_after_expiry(ctx, &locks, &second, "a second lock").await
}

/// A lock on another store instance acquires the key once the TTL passes.
pub async fn can_acquire_with_another_instance_after_it_expires(ctx: &Ctx) -> CaseResult {
    let other = LockFactory::new(ctx.other_store().await?);
    let second = create(&other, ctx.key("k"))?;
    taken_after_expiry(ctx, &ctx.factory(), &second, "another instance").await
}

/// A lock of `locks` acquires the key with [`Ctx::ttl`]; `second` cannot take it until
/// the TTL passes, then can.
async fn taken_after_expiry(
    ctx: &Ctx,
    locks: &LockFactory,
    second: &Lock,
    who: &str,
) -> CaseResult {
    let first = create_ttl(locks, ctx.key("k"), Some(ctx.ttl()))?;
    acquire_free(&first).await?;
    ensure!(!acquired(second).await?, "{who} acquired a held key");
    past_ttl(ctx).await;
    ensure!(
        acquired(second).await?,
        "{who} could not acquire a key whose TTL passed"
    );
    ok(second.release().await, "release")
}

/// The TTL given to the lock is the one the store applies: held before, free after.
pub async fn custom_ttl_is_used(ctx: &Ctx) -> CaseResult {
    let ttl = Duration::from_millis(600);
    let lock = create_ttl(&ctx.factory(), ctx.key("k"), Some(ttl))?;
    ensure!(lock.ttl() == Some(ttl), "lock reports TTL {:?}", lock.ttl());
    acquire_free(&lock).await?;
    let left = lock.remaining_time();
    ensure!(
        left.is_some_and(|l| l <= ttl && l > ttl / 2),
        "remaining_time {left:?} is not within the TTL"
    );
    tokio::time::sleep(ttl / 3).await;
    ensure!(locked(&lock).await?, "expired well before its TTL");
    tokio::time::sleep(ttl).await;
    ensure!(!locked(&lock).await?, "still held after its TTL");
    Ok(())
}

/// The same lock can acquire again after its own hold expired.
pub async fn able_to_acquire_a_lock_that_is_expired(ctx: &Ctx) -> CaseResult {
    let lock = expired_lock(ctx).await?;
    ensure!(
        acquired(&lock).await?,
        "could not re-acquire an expired lock"
    );
    ensure!(!lock.is_expired(), "re-acquired lock reports expired");
    ok(lock.release().await, "release")
}

/// A lock without TTL stays held.
pub async fn no_ttl_never_expires(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let lock = create_ttl(&locks, ctx.key("k"), None)?;
    acquire_free(&lock).await?;
    ensure!(
        lock.remaining_time().is_none(),
        "remaining_time of a no-TTL lock is not None"
    );
    tokio::time::sleep(ctx.ttl() * 2).await;
    ensure!(locked(&lock).await?, "a lock without TTL expired");
    ensure!(!lock.is_expired(), "a lock without TTL reports expired");
    let other = create(&locks, ctx.key("k"))?;
    ensure!(!acquired(&other).await?, "a no-TTL lock was taken over");
    ok(lock.release().await, "release")
}

/// `force_release` frees a key held by someone else.
pub async fn force_release_releases_a_lock_held_by_another(ctx: &Ctx) -> CaseResult {
    let (holder, other) = held_and_rival(ctx).await?;
    ok(other.force_release().await, "force_release")?;
    ensure!(!locked(&holder).await?, "force_release left the key held");
    ok(other.force_release().await, "force_release of a free key")
}

/// `extend` pushes the expiry to now + duration.
pub async fn extend_resets_the_ttl(ctx: &Ctx) -> CaseResult {
    let ttl = ctx.ttl();
    let lock = create_ttl(&ctx.factory(), ctx.key("k"), Some(ttl))?;
    acquire_free(&lock).await?;
    tokio::time::sleep(ttl / 2).await;
    ok(lock.extend(Some(ttl * 3)).await, "extend")?;
    tokio::time::sleep(ttl).await; // 1.5 TTL after acquire: would have expired
    ensure!(locked(&lock).await?, "extend did not push the expiry");
    ensure!(
        lock.remaining_time().is_some_and(|l| l > ttl / 2),
        "remaining_time {:?} did not follow the extension",
        lock.remaining_time()
    );
    tokio::time::sleep(ttl * 2 + Duration::from_millis(250)).await;
    ensure!(
        !locked(&lock).await?,
        "still held after the extension ran out"
    );
    Ok(())
}

/// `extend` of a lock not held is `NotOwned`.
pub async fn extend_errors_if_not_acquired(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let lock = create(&locks, ctx.key("k"))?;
    let got = lock.extend(None).await;
    ensure!(not_owned(&got), "extend of an unheld lock returned {got:?}");
    let holder = create(&locks, ctx.key("k"))?;
    acquire_free(&holder).await?;
    let got = lock.extend(None).await;
    ensure!(
        not_owned(&got),
        "extend of a lock held by another returned {got:?}"
    );
    ok(holder.release().await, "release")
}
