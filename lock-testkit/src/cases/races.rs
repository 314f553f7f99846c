//! Store-level cases about races and cancellation: many contenders on one expired
//! lock, store futures dropped mid-operation.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use lock_core::LockStore;

use super::direct::{A, B, LONG, until_free};
use crate::harness::{CaseResult, Ctx, ok, within};
use crate::{CaseFailure, ensure};

/// Many contenders on one expired lock: exactly one takes it over, every round.
pub async fn expired_lock_is_taken_over_by_exactly_one_contender(ctx: &Ctx) -> CaseResult {
    let (contenders, rounds) = (16, 6);
    let other = ctx.other_store().await?;
    let stores = [ctx.store(), other];
    let k = ctx.key("k");
    for round in 0..rounds {
        let s = &stores[round % 2];
        let started = Instant::now();
        ensure!(
            ok(s.save(&k, A, Some(Duration::from_millis(40))).await, "save")?,
            "save: round {round}: the free key {k:?} was refused"
        );
        if until_free(&**s, &k, started, Duration::from_secs(3))
            .await?
            .is_none()
        {
            return Err(CaseFailure(format!(
                "exists: a 40 ms lock on {k:?} is still held after 3 s"
            )));
        }
        let gate = Arc::new(tokio::sync::Barrier::new(contenders));
        let tasks: Vec<_> = (0..contenders)
            .map(|i| {
                let store = stores[i % 2].clone();
                let (gate, k) = (gate.clone(), k.clone());
                tokio::spawn(async move {
                    gate.wait().await;
                    let owner = format!("contender{i:02}");
                    store
                        .save(&k, &owner, Some(LONG))
                        .await
                        .map(|won| (owner, won))
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            let (owner, won) = ok(
                within(Duration::from_secs(10), "a contender's save", t)
                    .await?
                    .map_err(|e| CaseFailure(format!("contender task failed: {e}")))?,
                "save",
            )?;
            if won {
                winners.push(owner);
            }
        }
        let _ = s.force_delete(&k).await;
        ensure!(
            winners.len() == 1,
            "save: {} owners held {k:?} at once: in round {round}, {contenders} contenders took over one expired lock and save returned true for {winners:?} (exactly one may win)",
            winners.len()
        );
    }
    Ok(())
}

/// Poll `fut` up to `polls` times (yielding between polls), then drop it.
async fn poll_then_drop<T>(mut fut: Pin<Box<dyn Future<Output = T> + Send + '_>>, polls: usize) {
    for _ in 0..polls {
        let done = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx).is_ready())).await;
        if done {
            return;
        }
        tokio::task::yield_now().await;
    }
}

/// A `save` whose future is dropped mid-flight leaves nothing held beyond its TTL.
pub async fn store_cancelled_save_leaves_no_lock_without_expiry(ctx: &Ctx) -> CaseResult {
    let s = ctx.store();
    let ttl = Duration::from_millis(300);
    let polls = [1usize, 2, 3, 5, 8];
    let keys: Vec<String> = polls
        .iter()
        .map(|p| ctx.key(&format!("polls{p}")))
        .collect();
    let started = Instant::now();
    for (k, &p) in keys.iter().zip(&polls) {
        poll_then_drop(s.save(k, A, Some(ttl)), p).await;
    }
    // A dropped save may still land within SETTLE (the contract): judge only after it
    // would have expired, so that a late landing is not mistaken for a free key.
    tokio::time::sleep(ttl + SETTLE).await;
    for (k, p) in keys.iter().zip(polls) {
        let free = until_free(&*s, k, started, ttl + Duration::from_secs(3)).await?;
        ensure!(
            free.is_some(),
            "save: a save with a {ttl:?} TTL, dropped after {p} polls, left {k:?} held 3 s past its TTL: a lock without expiry (was the lock written first and its expiry set after an await?)"
        );
        let after = ok(s.save(k, B, Some(LONG)).await, "save")?;
        let _ = s.force_delete(k).await;
        ensure!(
            after,
            "save: after a cancelled save expired, another owner's save of {k:?} was refused"
        );
    }
    Ok(())
}

/// How long a dropped store operation may take to land (or not).
pub(super) const SETTLE: Duration = Duration::from_millis(100);

/// A store operation whose future is dropped takes effect within 100 ms or not at
/// all: never later, over a lock acquired after it.
pub async fn store_cancelled_operations_do_not_undo_later_ones(ctx: &Ctx) -> CaseResult {
    let s = ctx.store();
    let ops = ["save", "delete", "force_delete", "extend"];
    let keys: Vec<String> = ops.iter().map(|op| ctx.key(op)).collect();
    for (op, k) in ops.iter().zip(&keys) {
        if *op != "save" {
            ensure!(
                ok(s.save(k, A, Some(LONG)).await, "save")?,
                "save: a free key {k:?} was refused"
            );
        }
        match *op {
            "save" => poll_then_drop(s.save(k, A, Some(LONG)), 1).await,
            "delete" => poll_then_drop(s.delete(k, A), 1).await,
            "force_delete" => poll_then_drop(s.force_delete(k), 1).await,
            _ => poll_then_drop(s.extend(k, A, LONG), 1).await,
        }
    }
    // A request already on its way may still land (a server runs what it received): it
    // must do so promptly, not after later operations.
    tokio::time::sleep(SETTLE).await;
    for k in &keys {
        ok(s.force_delete(k).await, "force_delete")?;
        ensure!(
            ok(s.save(k, B, Some(LONG)).await, "save")?,
            "save: {k:?} was refused after force_delete"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (op, k) in ops.iter().zip(&keys) {
        let held = ok(s.exists(k).await, "exists")?;
        let mine = s.delete(k, B).await;
        let _ = s.force_delete(k).await;
        ensure!(
            held && mine.is_ok(),
            "{op}: a {op} by A whose future was dropped took effect later, over B's lock on {k:?} (held: {held}, B's delete: {mine:?}); a dropped operation must take effect within {SETTLE:?} or not at all"
        );
    }
    Ok(())
}
