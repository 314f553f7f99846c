//! Cases for stores with the permit capability ([`lock_core::PermitStore`]):
//! semaphores and reader-writer locks.

use lock_core::{PermitRequest, RwLock, Semaphore};

use super::*;

fn semaphore(locks: &LockFactory, key: &str, permits: u32) -> Result<Semaphore, CaseFailure> {
    ok(locks.create_semaphore(key, permits), "create_semaphore")
}

fn rw_lock(locks: &LockFactory, key: &str) -> Result<RwLock, CaseFailure> {
    ok(locks.create_rw_lock(key), "create_rw_lock")
}

/// Tracks how many holders are inside at once, and the most ever seen.
#[derive(Default)]
struct Occupancy {
    inside: AtomicUsize,
    most: AtomicUsize,
}

impl Occupancy {
    async fn section(&self, hold: Duration) {
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(hold).await;
        self.inside.fetch_sub(1, Ordering::SeqCst);
    }
}

/// 12 tasks on two store instances share a semaphore of 3: never more than 3 inside,
/// and 3 are let in (a semaphore that admits one at a time is a mutex, not a
/// semaphore).
pub async fn semaphore_never_admits_more_than_its_permits(ctx: &Ctx) -> CaseResult {
    let key = ctx.key("sem");
    let a = fast_factory(ctx);
    let b = LockFactory::with_options(
        ctx.other_store().await?,
        FactoryOptions::default().retry(fast_retry()),
    );
    let occupancy = Arc::new(Occupancy::default());
    let mut tasks = Vec::new();
    for i in 0..12 {
        let sem = semaphore(if i % 2 == 0 { &a } else { &b }, &key, 3)?;
        let occupancy = occupancy.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..3 {
                let ran = sem
                    .run(|| occupancy.section(Duration::from_millis(40)))
                    .await?;
                if ran.is_none() {
                    return Ok(false);
                }
            }
            Ok::<_, LockError>(true)
        }));
    }
    for task in tasks {
        let done = within(QUICK * 4, "a semaphore task", task)
            .await?
            .map_err(|e| CaseFailure(format!("a semaphore task panicked: {e}")))?
            .map_err(|e| CaseFailure(run_error(e)))?;
        ensure!(done, "a task did not get a permit within its retry timeout");
    }
    let most = occupancy.most.load(Ordering::SeqCst);
    ensure!(
        most <= 3,
        "{most} holders of a semaphore of 3 were inside at once"
    );
    ensure!(
        most == 3,
        "at most {most} of 3 permits were ever held at once: the store admits fewer than the limit"
    );
    Ok(())
}

/// Permits are counted: 2 of 2 taken, the third is refused, a release lets it in, and
/// `available` / `holders` follow.
pub async fn semaphore_counts_permits_and_release_frees_one(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let key = ctx.key("sem");
    let [a, b, c] = [
        semaphore(&locks, &key, 2)?,
        semaphore(&locks, &key, 2)?,
        semaphore(&locks, &key, 2)?,
    ];
    ensure!(
        ok(a.available().await, "available")? == 2,
        "a fresh semaphore of 2 does not have 2 available"
    );
    acquire_free(&a).await?;
    acquire_free(&b).await?;
    ensure!(
        !ok(c.acquire_immediately().await, "acquire")?,
        "a third holder got into a semaphore of 2"
    );
    ensure!(
        ok(c.holders().await, "holders")? == 2,
        "holders is not 2 with two holding"
    );
    ensure!(
        ok(c.available().await, "available")? == 0,
        "available is not 0 when full"
    );
    ok(a.release().await, "release")?;
    ensure!(
        ok(c.available().await, "available")? == 1,
        "a release did not free a permit"
    );
    acquire_free(&c).await?;
    ok(b.release().await, "release")?;
    ok(c.release().await, "release")?;
    ensure!(
        ok(c.holders().await, "holders")? == 0,
        "holders left after every release"
    );
    Ok(())
}

/// A holding that expires frees its permit for the next one.
pub async fn semaphore_expiry_frees_a_permit(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let key = ctx.key("sem");
    let ttl = ctx.ttl();
    let a = ok(
        locks.create_semaphore_with_ttl(&key, 1, Some(ttl)),
        "create_semaphore",
    )?;
    let b = semaphore(&locks, &key, 1)?;
    acquire_free(&a).await?;
    ensure!(
        !ok(b.acquire_immediately().await, "acquire")?,
        "a semaphore of 1 admitted two"
    );
    tokio::time::sleep(ttl + Duration::from_millis(150)).await;
    ensure!(
        ok(b.available().await, "available")? == 1,
        "an expired holding still counts against the limit"
    );
    ensure!(
        ok(b.acquire_immediately().await, "acquire")?,
        "the permit of an expired holding was not freed"
    );
    ensure!(
        matches!(a.release().await, Err(LockError::NotOwned)),
        "the expired holding could still be released"
    );
    ok(b.release().await, "release")
}

/// Release and extend are owner-checked: a non-holder gets `NotOwned` and changes
/// nothing; so does the holder once its holding expired.
pub async fn permit_release_and_extend_are_owner_checked(ctx: &Ctx) -> CaseResult {
    let store = ctx.store();
    let Some(permits) = store.permits() else {
        return Err(CaseFailure("the store offers no permits".into()));
    };
    let key = ctx.key("sem");
    let ttl = ctx.ttl();
    let request = PermitRequest::new(2, 1, Some(ttl));
    let got = ok(
        permits.try_acquire_permit(&key, "owner-a", request).await,
        "try_acquire_permit",
    )?;
    ensure!(got.acquired, "a free permit key refused its first holder");
    let other = permits.release_permit(&key, "owner-b").await;
    ensure!(
        matches!(other, Err(LockError::NotOwned)),
        "release_permit by a non-holder answered {other:?}, not NotOwned"
    );
    let other = permits.extend_permit(&key, "owner-b", ttl).await;
    ensure!(
        matches!(other, Err(LockError::NotOwned)),
        "extend_permit by a non-holder answered {other:?}, not NotOwned"
    );
    let usage = ok(permits.permit_usage(&key).await, "permit_usage")?;
    ensure!(
        usage.holders == 1,
        "a refused release changed the holders: {usage:?}"
    );
    tokio::time::sleep(ttl + Duration::from_millis(150)).await;
    let late = permits.extend_permit(&key, "owner-a", ttl).await;
    ensure!(
        matches!(late, Err(LockError::NotOwned)),
        "extend_permit of an expired holding answered {late:?}, not NotOwned"
    );
    let late = permits.release_permit(&key, "owner-a").await;
    ensure!(
        matches!(late, Err(LockError::NotOwned)),
        "release_permit of an expired holding answered {late:?}, not NotOwned"
    );
    Ok(())
}

/// One owner holds at most one permit: a second acquire by the holder is refused.
pub async fn permit_holdings_are_not_reentrant(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let sem = semaphore(&locks, &ctx.key("sem"), 5)?;
    acquire_free(&sem).await?;
    ensure!(
        !ok(sem.acquire_immediately().await, "acquire")?,
        "the holder of a permit got a second one"
    );
    ensure!(
        ok(sem.holders().await, "holders")? == 1,
        "one owner counts as two holders"
    );
    ok(sem.release().await, "release")?;
    ensure!(
        ok(sem.holders().await, "holders")? == 0,
        "a release left a holding behind"
    );
    Ok(())
}

/// Extension moves the holder's expiry: a short holding extended outlives its TTL.
pub async fn permit_extend_keeps_the_holding(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let key = ctx.key("sem");
    // Long enough that a loaded machine does not let it expire before the extension.
    let ttl = Duration::from_secs(1);
    let a = ok(
        locks.create_semaphore_with_ttl(&key, 1, Some(ttl)),
        "create_semaphore",
    )?;
    let b = semaphore(&locks, &key, 1)?;
    acquire_free(&a).await?;
    ok(a.extend(Some(ttl * 4)).await, "extend")?;
    tokio::time::sleep(ttl + Duration::from_millis(150)).await;
    ensure!(
        !ok(b.acquire_immediately().await, "acquire")?,
        "an extended holding expired at its first TTL"
    );
    ok(a.release().await, "release")
}

/// `force_release` frees every permit of the key, whoever holds them.
pub async fn permit_force_release_frees_every_holder(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let key = ctx.key("sem");
    let [a, b, c] = [
        semaphore(&locks, &key, 2)?,
        semaphore(&locks, &key, 2)?,
        semaphore(&locks, &key, 2)?,
    ];
    acquire_free(&a).await?;
    acquire_free(&b).await?;
    ok(c.force_release().await, "force_release")?;
    ensure!(
        ok(c.holders().await, "holders")? == 0,
        "force_release left holders"
    );
    acquire_free(&c).await?;
    ensure!(
        matches!(a.release().await, Err(LockError::NotOwned)),
        "a holding removed by force_release could still be released"
    );
    ok(c.release().await, "release")
}

/// Permit keys and lock keys are separate namespaces.
pub async fn permit_keys_are_separate_from_lock_keys(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let key = ctx.key("k");
    let lock = create(&locks, &key)?;
    let sem = semaphore(&locks, &key, 1)?;
    acquire_free(&lock).await?;
    ensure!(
        ok(sem.acquire_immediately().await, "acquire")?,
        "a held lock on a key kept the semaphore of that key from being acquired"
    );
    ensure!(
        ok(lock.is_locked().await, "is_locked")?,
        "acquiring a semaphore changed the lock of the same key"
    );
    ok(lock.release().await, "release")?;
    ensure!(
        ok(sem.holders().await, "holders")? == 1,
        "releasing a lock changed the semaphore of the same key"
    );
    ok(sem.release().await, "release")
}

/// Readers share; a writer excludes readers and other writers, and readers exclude a
/// writer.
pub async fn rw_writer_excludes_everyone_and_readers_share(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let key = ctx.key("rw");
    let [a, b, c] = [
        rw_lock(&locks, &key)?,
        rw_lock(&locks, &key)?,
        rw_lock(&locks, &key)?,
    ];
    acquire_free(a.read()).await?;
    acquire_free(b.read()).await?;
    ensure!(
        ok(c.readers().await, "readers")? == 2,
        "two readers are not counted as two"
    );
    ensure!(
        !ok(c.write().acquire_immediately().await, "acquire")?,
        "a writer got in while two readers held the lock"
    );
    ok(a.read().release().await, "release")?;
    ok(b.read().release().await, "release")?;
    acquire_free(c.write()).await?;
    ensure!(
        ok(a.is_write_locked().await, "is_write_locked")?,
        "a held write lock is not reported"
    );
    ensure!(
        !ok(a.read().acquire_immediately().await, "acquire")?,
        "a reader got in while a writer held the lock"
    );
    ensure!(
        !ok(b.write().acquire_immediately().await, "acquire")?,
        "a second writer got in while a writer held the lock"
    );
    ok(c.write().release().await, "release")?;
    acquire_free(a.read()).await?;
    ok(a.read().release().await, "release")
}

/// A waiting writer is not starved by a stream of overlapping readers: once it asks,
/// no new reader gets in, and it acquires when the readers already in are done. The
/// readers use another store instance (another process, as far as lock-core's
/// in-process line is concerned), so only the store can hold them back.
pub async fn rw_waiting_writer_is_not_starved_by_readers(ctx: &Ctx) -> CaseResult {
    let locks = fast_factory(ctx);
    let reader_locks = LockFactory::with_options(
        ctx.other_store().await?,
        FactoryOptions::default().retry(fast_retry()),
    );
    let key = ctx.key("rw");
    let stop = Arc::new(AtomicBool::new(false));
    let hold = Duration::from_millis(120);
    // Readers in relay: each starts before the previous one ends, so without a
    // reservation the key is never free of readers.
    let mut readers = Vec::new();
    for i in 0..3u64 {
        let rw = rw_lock(&reader_locks, &key)?;
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(40 * i)).await;
            while !stop.load(Ordering::SeqCst) {
                let got = rw
                    .read()
                    .acquire_with(
                        RetryConfig::default()
                            .delay(Duration::from_millis(10))
                            .timeout(Duration::from_millis(50)),
                    )
                    .await?;
                if got {
                    tokio::time::sleep(hold).await;
                    rw.read().release().await?;
                } else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            Ok::<_, LockError>(())
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let writer = rw_lock(&locks, &key)?;
    let asked = Instant::now();
    let got = writer
        .write()
        .acquire_with(fast_retry().timeout(Duration::from_secs(3)))
        .await;
    let waited = asked.elapsed();
    stop.store(true, Ordering::SeqCst);
    let readers_now = ok(writer.readers().await, "readers");
    if matches!(got, Ok(true)) {
        ok(writer.write().release().await, "release")?;
    }
    for reader in readers {
        within(QUICK, "a reader", reader)
            .await?
            .map_err(|e| CaseFailure(format!("a reader panicked: {e}")))?
            .map_err(|e| CaseFailure(format!("a reader failed: {e}")))?;
    }
    ensure!(
        ok(got, "write acquire")?,
        "a writer waited 3 s behind a stream of readers, each holding {hold:?}: writers starve"
    );
    ensure!(
        readers_now? == 0,
        "readers were counted while the writer held the lock"
    );
    ensure!(
        waited < Duration::from_secs(1),
        "the writer waited {waited:?} behind readers holding {hold:?} each"
    );
    Ok(())
}

/// A writer that gives up stops blocking readers: its reservation lapses.
pub async fn rw_abandoned_writer_reservation_lapses(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let key = ctx.key("rw");
    let [reader, writer, late] = [
        rw_lock(&locks, &key)?,
        rw_lock(&locks, &key)?,
        rw_lock(&locks, &key)?,
    ];
    acquire_free(reader.read()).await?;
    // Waits (and reserves) for 100 ms, then gives up.
    let retry = RetryConfig::default()
        .delay(Duration::from_millis(10))
        .timeout(Duration::from_millis(100));
    ensure!(
        !ok(writer.write().acquire_with(retry).await, "acquire")?,
        "a writer got in while a reader held the lock"
    );
    ok(reader.read().release().await, "release")?;
    // The reservation lasts 3 delays + 1 s: within 2 s a reader gets in again.
    let got = late
        .read()
        .acquire_with(fast_retry().timeout(Duration::from_secs(3)))
        .await;
    ensure!(
        ok(got, "acquire")?,
        "a writer that gave up kept readers out for more than 3 s"
    );
    ok(late.read().release().await, "release")
}

/// A dropped `run` (cancelled while holding) leaves no holding behind, and a cut
/// acquire leaves none either.
pub async fn permit_cancellation_leaves_nothing_behind(ctx: &Ctx) -> CaseResult {
    let locks = fast_factory(ctx);
    let key = ctx.key("sem");
    let sem = semaphore(&locks, &key, 2)?;
    let entered = Arc::new(tokio::sync::Notify::new());
    let e = entered.clone();
    let runner = sem.clone();
    let task = tokio::spawn(async move {
        runner
            .run(|| async move {
                e.notify_one();
                std::future::pending::<()>().await
            })
            .await
    });
    within(QUICK, "the run to start", async move {
        entered.notified().await;
        Ok::<_, LockError>(())
    })
    .await?
    .map_err(|e| CaseFailure(e.to_string()))?;
    task.abort();
    let _ = task.await;
    let probe = semaphore(&locks, &key, 2)?;
    let deadline = Instant::now() + QUICK;
    loop {
        if ok(probe.holders().await, "holders")? == 0 {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "a dropped run left its permit held for 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Cut acquires: many short timeouts against a full semaphore leave nothing.
    let [x, y] = [semaphore(&locks, &key, 2)?, semaphore(&locks, &key, 2)?];
    acquire_free(&x).await?;
    acquire_free(&y).await?;
    for _ in 0..10 {
        let z = semaphore(&locks, &key, 2)?;
        let cut = tokio::time::timeout(Duration::from_millis(3), z.acquire()).await;
        ensure!(
            !matches!(cut, Ok(Ok(true))),
            "a third holder got into a semaphore of 2"
        );
    }
    // A dropped operation may still land within the settle window (the contract, as in
    // `races.rs`): let the cut acquires land or not before the permits free up.
    tokio::time::sleep(super::races::SETTLE).await;
    ok(x.release().await, "release")?;
    ok(y.release().await, "release")?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let left = ok(probe.holders().await, "holders")?;
    ensure!(left == 0, "{left} holdings left behind by cut acquires");
    Ok(())
}

/// Bad permit requests are `InvalidArgument` from the store itself (not a panic, not a
/// grant): weight 0, weight over the limit, limit 0.
pub async fn permit_bad_requests_are_invalid(ctx: &Ctx) -> CaseResult {
    let store = ctx.store();
    let Some(permits) = store.permits() else {
        return Err(CaseFailure("the store offers no permits".into()));
    };
    let key = ctx.key("sem");
    for (limit, weight) in [(2, 0), (2, 3), (0, 1)] {
        let got = permits
            .try_acquire_permit(&key, "owner-a", PermitRequest::new(limit, weight, None))
            .await;
        ensure!(
            matches!(got, Err(LockError::InvalidArgument(_))),
            "try_acquire_permit with limit {limit}, weight {weight} answered {got:?}, not InvalidArgument"
        );
    }
    let usage = ok(permits.permit_usage(&key).await, "permit_usage")?;
    ensure!(usage.holders == 0, "a bad request left a holder: {usage:?}");
    // The input domain of the mutex methods applies too: an empty key, a bad owner, a
    // zero TTL, an extension beyond the clock — `InvalidArgument` (or, for the
    // extension of a holding, success), never a panic.
    let bad = PermitRequest::new(2, 1, None);
    for (what, got) in [
        (
            "an empty key",
            permits.try_acquire_permit("", "owner-a", bad).await,
        ),
        (
            "an empty owner",
            permits.try_acquire_permit(&key, "", bad).await,
        ),
        (
            "a zero TTL",
            permits
                .try_acquire_permit(
                    &key,
                    "owner-a",
                    PermitRequest::new(2, 1, Some(Duration::ZERO)),
                )
                .await,
        ),
    ] {
        ensure!(
            matches!(got, Err(LockError::InvalidArgument(_))),
            "try_acquire_permit with {what} answered {got:?}, not InvalidArgument"
        );
    }
    let got = permits.extend_permit(&key, "owner-a", Duration::MAX).await;
    ensure!(
        matches!(
            got,
            Err(LockError::InvalidArgument(_) | LockError::NotOwned)
        ),
        "extend_permit by Duration::MAX answered {got:?}"
    );
    let got = permits.permit_usage("").await;
    ensure!(
        matches!(got, Err(LockError::InvalidArgument(_))),
        "permit_usage of an empty key answered {got:?}"
    );
    Ok(())
}

/// Fencing tokens of permit holdings, when given, strictly increase.
pub async fn permit_fencing_tokens_increase(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let key = ctx.key("sem");
    let mut last = 0u64;
    for round in 0..12 {
        let sem = semaphore(&locks, &key, 2)?;
        acquire_free(&sem).await?;
        if let Some(token) = sem.fencing_token() {
            ensure!(
                token > last,
                "round {round}: permit token {token} after {last}"
            );
            last = token;
        }
        ok(sem.release().await, "release")?;
    }
    Ok(())
}

/// The reservation rules, one store call at a time: a denied writer's reservation keeps
/// readers and other writers out, its grant clears it, `force_release_permits` clears
/// it; an extension moves the extending holder's expiry only.
pub async fn store_permit_reservations_and_extensions_follow_the_rules(ctx: &Ctx) -> CaseResult {
    use lock_core::permits::RW_LIMIT;
    let store = ctx.store();
    let Some(p) = store.permits() else {
        return Err(CaseFailure("the store offers no permits".into()));
    };
    let k = ctx.key("rw");
    let long = Some(Duration::from_secs(10));
    let read = PermitRequest::new(RW_LIMIT, 1, long);
    let write = PermitRequest::new(RW_LIMIT, RW_LIMIT, long);
    let reserving = write.reserving(Some(Duration::from_secs(10)));
    let try_as = |owner: &'static str, request: PermitRequest| {
        let (p, k) = (p, k.clone());
        async move {
            ok(
                p.try_acquire_permit(&k, owner, request).await,
                "try_acquire_permit",
            )
            .map(|a| a.acquired)
        }
    };
    ensure!(
        try_as("reader-r", read).await?,
        "a free key refused a reader"
    );
    ensure!(
        !try_as("writer-a", reserving).await?,
        "a writer got in beside a reader"
    );
    ensure!(
        !try_as("reader-c", read).await?,
        "a new reader got in while a writer's reservation was live"
    );
    ensure!(
        !try_as("writer-b", reserving).await?,
        "a second writer got in beside a reader"
    );
    ok(p.release_permit(&k, "reader-r").await, "release_permit")?;
    ensure!(
        !try_as("writer-b", write).await?,
        "writer B got in ahead of writer A, whose reservation was live (and came first)"
    );
    ensure!(
        try_as("writer-a", reserving).await?,
        "the reserving writer did not get the free key"
    );
    ok(p.release_permit(&k, "writer-a").await, "release_permit")?;
    ensure!(
        try_as("reader-c", read).await?,
        "after the reserving writer was granted and released, a reader was still kept out: \
         a grant must clear the writer's reservation"
    );
    ok(p.release_permit(&k, "reader-c").await, "release_permit")?;
    // A reservation, then a force release: nothing may keep readers out afterwards.
    ensure!(
        try_as("reader-r2", read).await?,
        "a free key refused a reader"
    );
    ensure!(
        !try_as("writer-a2", reserving).await?,
        "a writer got in beside a reader"
    );
    ok(p.force_release_permits(&k).await, "force_release_permits")?;
    ensure!(
        try_as("reader-c2", read).await?,
        "after force_release_permits a reader was kept out: the reservation must go too"
    );
    ok(p.force_release_permits(&k).await, "force_release_permits")?;
    // Extensions: X's extension must not keep Y alive.
    let s = ctx.key("sem");
    let ttl = ctx.ttl();
    let short = PermitRequest::new(2, 1, Some(ttl));
    for owner in ["holder-x", "holder-y"] {
        let got = ok(
            p.try_acquire_permit(&s, owner, short).await,
            "try_acquire_permit",
        )?;
        ensure!(
            got.acquired,
            "a semaphore of 2 refused its first two holders"
        );
    }
    ok(
        p.extend_permit(&s, "holder-x", ttl * 10).await,
        "extend_permit",
    )?;
    tokio::time::sleep(ttl + Duration::from_millis(150)).await;
    let usage = ok(p.permit_usage(&s).await, "permit_usage")?;
    ensure!(
        usage.holders == 1,
        "one holder extended, the other's TTL ran out, yet {} holders remain: an extension \
         moved more than its owner's expiry",
        usage.holders
    );
    ok(p.force_release_permits(&s).await, "force_release_permits")
}
