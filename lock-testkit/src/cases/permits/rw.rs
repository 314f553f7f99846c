//! Reader-writer locks: readers share, a writer excludes everyone, and a waiting
//! writer's reservation keeps new readers out until it is granted or lapses.

use super::*;

/// Readers share; a writer excludes readers and other writers, and readers exclude a
/// writer.
pub async fn rw_writer_excludes_everyone_and_readers_share(ctx: &Ctx) -> CaseResult {
    let locks = ctx.factory();
    let key = ctx.key("rw");
    let [a, b, c] = rw_locks(&locks, &key)?;
    acquire_free(a.read()).await?;
    acquire_free(b.read()).await?;
    ensure!(
        ok(c.readers().await, "readers")? == 2,
        "two readers are not counted as two"
    );
    refused(c.write(), "a writer got in while two readers held the lock").await?;
    ok(a.read().release().await, "release")?;
    ok(b.read().release().await, "release")?;
    acquire_free(c.write()).await?;
    ensure!(
        ok(a.is_write_locked().await, "is_write_locked")?,
        "a held write lock is not reported"
    );
    refused(a.read(), "a reader got in while a writer held the lock").await?;
    refused(
        b.write(),
        "a second writer got in while a writer held the lock",
    )
    .await?;
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
    let reader_locks = other_fast_factory(ctx).await?;
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
                    .acquire_with(fast_retry().timeout(Duration::from_millis(50)))
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
    let [reader, writer, late] = rw_locks(&locks, &key)?;
    acquire_free(reader.read()).await?;
    // Waits (and reserves) for 100 ms, then gives up.
    let retry = fast_retry().timeout(Duration::from_millis(100));
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
