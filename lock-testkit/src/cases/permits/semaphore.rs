//! A semaphore's limit and counting, its holdings' expiry and extension, and its
//! fencing tokens.

use super::*;

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
    let b = other_fast_factory(ctx).await?;
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
    let [a, b, c] = semaphores(&locks, &key, 2)?;
    available_is(&a, 2, "a fresh semaphore of 2 does not have 2 available").await?;
    acquire_free(&a).await?;
    acquire_free(&b).await?;
    refused(&c, "a third holder got into a semaphore of 2").await?;
    holders_are(&c, 2, "holders is not 2 with two holding").await?;
    available_is(&c, 0, "available is not 0 when full").await?;
    ok(a.release().await, "release")?;
    available_is(&c, 1, "a release did not free a permit").await?;
    acquire_free(&c).await?;
    ok(b.release().await, "release")?;
    ok(c.release().await, "release")?;
    holders_are(&c, 0, "holders left after every release").await?;
    Ok(())
}

/// A holding that expires frees its permit for the next one.
pub async fn semaphore_expiry_frees_a_permit(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let key = ctx.key("sem");
    let ttl = ctx.ttl();
    let a = semaphore_with_ttl(&locks, &key, 1, ttl)?;
    let b = semaphore(&locks, &key, 1)?;
    acquire_free(&a).await?;
    refused(&b, "a semaphore of 1 admitted two").await?;
    past(ttl).await;
    available_is(&b, 1, "an expired holding still counts against the limit").await?;
    ensure!(
        acquired(&b).await?,
        "the permit of an expired holding was not freed"
    );
    no_longer_held(&a, "the expired holding could still be released").await?;
    ok(b.release().await, "release")
}

/// One owner holds at most one permit: a second acquire by the holder is refused.
pub async fn permit_holdings_are_not_reentrant(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let sem = semaphore(&locks, &ctx.key("sem"), 5)?;
    acquire_free(&sem).await?;
    refused(&sem, "the holder of a permit got a second one").await?;
    holders_are(&sem, 1, "one owner counts as two holders").await?;
    ok(sem.release().await, "release")?;
    holders_are(&sem, 0, "a release left a holding behind").await?;
    Ok(())
}

/// Extension moves the holder's expiry: a short holding extended outlives its TTL.
pub async fn permit_extend_keeps_the_holding(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let key = ctx.key("sem");
    // Long enough that a loaded machine does not let it expire before the extension.
    let ttl = Duration::from_secs(1);
    let a = semaphore_with_ttl(&locks, &key, 1, ttl)?;
    let b = semaphore(&locks, &key, 1)?;
    acquire_free(&a).await?;
    ok(a.extend(Some(ttl * 4)).await, "extend")?;
    past(ttl).await;
    refused(&b, "an extended holding expired at its first TTL").await?;
    ok(a.release().await, "release")
}

/// `force_release` frees every permit of the key, whoever holds them.
pub async fn permit_force_release_frees_every_holder(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let key = ctx.key("sem");
    let [a, b, c] = semaphores(&locks, &key, 2)?;
    acquire_free(&a).await?;
    acquire_free(&b).await?;
    ok(c.force_release().await, "force_release")?;
    holders_are(&c, 0, "force_release left holders").await?;
    acquire_free(&c).await?;
    no_longer_held(
        &a,
        "a holding removed by force_release could still be released",
    )
    .await?;
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
        acquired(&sem).await?,
        "a held lock on a key kept the semaphore of that key from being acquired"
    );
    ensure!(
        locked(&lock).await?,
        "acquiring a semaphore changed the lock of the same key"
    );
    ok(lock.release().await, "release")?;
    holders_are(
        &sem,
        1,
        "releasing a lock changed the semaphore of the same key",
    )
    .await?;
    ok(sem.release().await, "release")
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
