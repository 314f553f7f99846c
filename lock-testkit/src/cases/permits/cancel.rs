//! Cancelled holders and cut acquires leave no holding behind.

use super::*;

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
    let [x, y] = semaphores(&locks, &key, 2)?;
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
