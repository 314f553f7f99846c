//! Cases that need an optional capability of the store.

use super::*;

/// A waiter is woken by the release, well before its retry delay.
pub async fn release_wakes_waiter_before_retry_delay(ctx: &Ctx) -> CaseResult {
    let delay = Duration::from_secs(10);
    let locks =
        ctx.factory_with(FactoryOptions::default().retry(RetryConfig::default().delay(delay)));
    let holder = create(&locks, ctx.key("k"))?;
    acquire_free(&holder).await?;
    // Another instance: the notification must cross connections, not only tasks.
    let other = LockFactory::with_options(
        ctx.other_store().await?,
        FactoryOptions::default().retry(RetryConfig::default().delay(delay)),
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
        let lock = create_ttl(locks, &key, ttl)?;
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
    let holder = create_ttl(&ctx.factory(), ctx.key("k"), Some(ttl))?;
    acquire_free(&holder).await?;
    let started = Instant::now();
    let waiter_locks = ctx.factory_with(
        FactoryOptions::default().retry(RetryConfig::default().delay(Duration::from_secs(10))),
    );
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
