//! Cases that call the [`LockStore`] methods directly, one rule each, so that a failure
//! names the method that broke the rule. The rules are stated in the documentation of
//! each trait method, which names the case that checks it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use lock_core::{LockError, LockStore};

use crate::harness::{CaseResult, Ctx, ok, within};
use crate::{CaseFailure, ensure};

/// Two owners whose tokens differ only in their last character, so that a store that
/// compares a prefix of the owner is caught.
const A: &str = "owner-000000000000000000000000000a";
const B: &str = "owner-000000000000000000000000000b";
const C: &str = "owner-000000000000000000000000000c";
/// A TTL that does not run out during a case.
const LONG: Duration = Duration::from_secs(60);

/// Poll `exists(key)` until it is false; `Ok(None)` if it still holds after `limit`,
/// otherwise how long it took from `since`.
async fn until_free(
    store: &dyn LockStore,
    key: &str,
    since: Instant,
    limit: Duration,
) -> Result<Option<Duration>, CaseFailure> {
    loop {
        if !ok(store.exists(key).await, "exists")? {
            return Ok(Some(since.elapsed()));
        }
        if since.elapsed() > limit {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn not_owned(got: &Result<(), LockError>) -> bool {
    matches!(got, Err(LockError::NotOwned))
}

/// The case's second instance must see the first one's locks, and the other way round.
pub async fn instances_of_one_case_share_state(ctx: &Ctx) -> CaseResult {
    let a = ctx.store();
    let b = ctx.other_store().await?;
    ctx.check_shared(&*b, &*a).await?;
    let key = ctx.key("k");
    ensure!(
        ok(a.save(&key, A, Some(LONG)).await, "save")?,
        "save: a free key {key:?} was refused"
    );
    let denied = ok(
        b.save(&key, B, Some(LONG)).await,
        "save on a second instance",
    )?;
    let _ = a.force_delete(&key).await;
    ensure!(
        !denied,
        "{} (a second instance's save took {key:?} while the first instance held it)",
        crate::WIRING_RULE
    );
    Ok(())
}

/// `save` of a held key is `false` for any other owner, and changes nothing.
pub async fn store_save_refuses_a_held_key(ctx: &Ctx) -> CaseResult {
    let s = ctx.store();
    let k = ctx.key("k");
    ensure!(
        ok(s.save(&k, A, Some(LONG)).await, "save")?,
        "save: a free key {k:?} was refused"
    );
    ensure!(
        ok(s.exists(&k).await, "exists")?,
        "exists: false right after save returned true"
    );
    let second = ok(s.save(&k, B, Some(LONG)).await, "save")?;
    let third = ok(s.try_acquire(&k, B, Some(LONG)).await, "try_acquire")?;
    let by_holder = s.delete(&k, A).await;
    let _ = s.force_delete(&k).await;
    ensure!(
        !second,
        "save: two owners held {k:?} at once (save by a second owner returned true while the first held it)"
    );
    ensure!(
        !third.acquired,
        "try_acquire: two owners held {k:?} at once (try_acquire by a second owner succeeded while the first held it)"
    );
    ensure!(
        third.fencing_token.is_none(),
        "try_acquire: a denied acquire carried a fencing token"
    );
    ensure!(
        by_holder.is_ok(),
        "delete: the holder's delete returned {by_holder:?} after another owner's denied save (the denied save replaced the owner)"
    );
    Ok(())
}

/// A denied `save` does not change the holder's expiry.
pub async fn store_denied_save_keeps_the_holders_expiry(ctx: &Ctx) -> CaseResult {
    let s = ctx.store();
    let k = ctx.key("k");
    let ttl = Duration::from_millis(300);
    let started = Instant::now();
    ensure!(
        ok(s.save(&k, A, Some(ttl)).await, "save")?,
        "save: a free key {k:?} was refused"
    );
    let denied = ok(s.save(&k, B, Some(LONG)).await, "save")?;
    ensure!(!denied, "save: two owners held {k:?} at once");
    let free = until_free(&*s, &k, started, ttl + Duration::from_secs(2)).await?;
    let _ = s.force_delete(&k).await;
    ensure!(
        free.is_some(),
        "save: a denied save by another owner pushed the holder's expiry (the {ttl:?} lock on {k:?} is still held 2 s after its TTL)"
    );
    Ok(())
}

/// `delete` by the holder frees the key for anyone.
pub async fn store_delete_by_the_holder_frees_the_key(ctx: &Ctx) -> CaseResult {
    let s = ctx.store();
    let k = ctx.key("k");
    ensure!(
        ok(s.save(&k, A, Some(LONG)).await, "save")?,
        "save: a free key {k:?} was refused"
    );
    ensure!(
        ok(s.exists(&k).await, "exists")?,
        "exists: false right after save returned true"
    );
    ok(s.delete(&k, A).await, "delete by the holder")?;
    ensure!(
        !ok(s.exists(&k).await, "exists")?,
        "delete: the holder's delete returned Ok but exists({k:?}) is still true (exists answering from a cache?)"
    );
    let again = ok(s.save(&k, B, Some(LONG)).await, "save")?;
    let _ = s.force_delete(&k).await;
    ensure!(
        again,
        "delete: the holder's delete returned Ok but another owner's save was refused"
    );
    Ok(())
}

/// `delete` by an owner that does not hold the key is `NotOwned` and changes nothing.
pub async fn store_delete_by_another_owner_is_not_owned(ctx: &Ctx) -> CaseResult {
    let s = ctx.store();
    let k = ctx.key("k");
    let unheld = s.delete(&k, A).await;
    ensure!(
        not_owned(&unheld),
        "delete: delete of a key nobody holds returned {unheld:?}, expected NotOwned"
    );
    ensure!(
        ok(s.save(&k, A, Some(LONG)).await, "save")?,
        "save: a free key {k:?} was refused"
    );
    let other = s.delete(&k, B).await;
    let still = ok(s.exists(&k).await, "exists")?;
    let _ = s.force_delete(&k).await;
    ensure!(
        not_owned(&other),
        "delete: an owner that does not hold {k:?} got {other:?}, expected NotOwned (owners differ only in their last character)"
    );
    ensure!(
        still,
        "delete: a non-owner's delete freed the holder's lock"
    );
    Ok(())
}

/// Owners are compared in full, byte for byte: an owner that differs only in letter
/// case, or only in the last of 128 characters, holds nothing (`delete` and `extend`
/// are `NotOwned`, and the holder keeps the lock).
pub async fn store_owners_are_compared_in_full(ctx: &Ctx) -> CaseResult {
    let s = ctx.store();
    let long = |last: char| format!("{}{last}", "o".repeat(127));
    let pairs = [
        (A.to_owned(), A.to_uppercase(), "only in letter case"),
        (long('a'), long('b'), "only in the last of 128 characters"),
    ];
    for (i, (holder, other, how)) in pairs.iter().enumerate() {
        let k = ctx.key(&format!("owners{i}"));
        ensure!(
            ok(s.save(&k, holder, Some(LONG)).await, "save")?,
            "save: a free key {k:?} was refused"
        );
        let deleted = s.delete(&k, other).await;
        let extended = s.extend(&k, other, LONG).await;
        let still = ok(s.exists(&k).await, "exists")?;
        let mine = s.delete(&k, holder).await;
        let _ = s.force_delete(&k).await;
        ensure!(
            not_owned(&deleted),
            "delete: an owner that differs from the holder {how} got {deleted:?}, expected NotOwned (owners are compared in full, byte for byte)"
        );
        ensure!(
            not_owned(&extended),
            "extend: an owner that differs from the holder {how} got {extended:?}, expected NotOwned (owners are compared in full, byte for byte)"
        );
        ensure!(
            still,
            "delete: a non-owner's delete freed the holder's lock"
        );
        ensure!(
            mine.is_ok(),
            "delete: the holder's own delete returned {mine:?} after a near-miss owner's calls"
        );
    }
    Ok(())
}

/// `extend` of a lock saved without TTL gives it one: it expires `duration` from now.
pub async fn store_extend_gives_a_lock_without_ttl_an_expiry(ctx: &Ctx) -> CaseResult {
    let s = ctx.store();
    let k = ctx.key("k");
    ensure!(
        ok(s.save(&k, A, None).await, "save")?,
        "save: a free key {k:?} was refused"
    );
    let started = Instant::now();
    ok(s.extend(&k, A, Duration::from_millis(200)).await, "extend")?;
    let free = until_free(&*s, &k, started, Duration::from_secs(3)).await?;
    let _ = s.force_delete(&k).await;
    ensure!(
        free.is_some(),
        "extend: a lock saved without TTL and extended by 200 ms was still held 3 s later (extend must set the expiry to now + duration, also on a lock that had none)"
    );
    Ok(())
}

/// `delete` of one's own expired lock is `NotOwned`: an expired lock is not held.
pub async fn store_delete_of_own_expired_lock_is_not_owned(ctx: &Ctx) -> CaseResult {
    let s = ctx.store();
    let k = ctx.key("k");
    let started = Instant::now();
    ensure!(
        ok(
            s.save(&k, A, Some(Duration::from_millis(100))).await,
            "save"
        )?,
        "save: a free key {k:?} was refused"
    );
    if until_free(&*s, &k, started, Duration::from_secs(3))
        .await?
        .is_none()
    {
        let _ = s.force_delete(&k).await;
        return Err(CaseFailure(format!(
            "exists: a 100 ms lock on {k:?} is still held after 3 s"
        )));
    }
    let got = s.delete(&k, A).await;
    let _ = s.force_delete(&k).await;
    ensure!(
        not_owned(&got),
        "delete: the owner of an expired lock got {got:?}, expected NotOwned (an expired lock is not held by anyone)"
    );
    Ok(())
}

/// `force_delete` frees a key whoever holds it, and is `Ok` on a free key.
pub async fn store_force_delete_frees_any_holder(ctx: &Ctx) -> CaseResult {
    let s = ctx.store();
    let k = ctx.key("k");
    let free = s.force_delete(&k).await;
    ensure!(
        free.is_ok(),
        "force_delete: a key nobody holds returned {free:?}, expected Ok"
    );
    ensure!(
        ok(s.save(&k, A, Some(LONG)).await, "save")?,
        "save: a free key {k:?} was refused"
    );
    ok(s.force_delete(&k).await, "force_delete of a held key")?;
    ensure!(
        !ok(s.exists(&k).await, "exists")?,
        "force_delete: returned Ok but {k:?} is still held"
    );
    ensure!(
        ok(s.save(&k, B, Some(LONG)).await, "save")?,
        "force_delete: returned Ok but another owner's save was refused"
    );
    let old = s.delete(&k, A).await;
    let _ = s.force_delete(&k).await;
    ensure!(
        not_owned(&old),
        "delete: the holder removed by force_delete could still delete the new holder's lock ({old:?})"
    );
    Ok(())
}

/// `exists` is true until the TTL passes (measured from the save), false after.
pub async fn store_exists_follows_the_ttl(ctx: &Ctx) -> CaseResult {
    let s = ctx.store();
    let k = ctx.key("k");
    let ttl = Duration::from_millis(700);
    let started = Instant::now();
    ensure!(
        ok(s.save(&k, A, Some(ttl)).await, "save")?,
        "save: a free key {k:?} was refused"
    );
    let free = until_free(&*s, &k, started, ttl + Duration::from_millis(600)).await?;
    let _ = s.force_delete(&k).await;
    match free {
        None => Err(CaseFailure(format!(
            "exists: a lock saved with a TTL of {ttl:?} is still held 600 ms after it (TTL rounded up, e.g. to whole seconds?)"
        ))),
        Some(at) if at < ttl => Err(CaseFailure(format!(
            "exists: a lock saved with a TTL of {ttl:?} expired after {at:?} (TTL rounded down, e.g. to whole seconds?)"
        ))),
        Some(_) => Ok(()),
    }
}

/// `save` with `ttl: None` never expires.
pub async fn store_save_without_ttl_never_expires(ctx: &Ctx) -> CaseResult {
    let s = ctx.store();
    let k = ctx.key("k");
    ensure!(
        ok(s.save(&k, A, None).await, "save")?,
        "save: a free key {k:?} was refused"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = ok(s.exists(&k).await, "exists")?;
    let taken = ok(s.save(&k, B, Some(LONG)).await, "save")?;
    let _ = s.force_delete(&k).await;
    ensure!(held, "save: a lock saved with ttl None expired");
    ensure!(
        !taken,
        "save: a lock saved with ttl None was taken over by another owner"
    );
    Ok(())
}

/// `extend` sets the expiry to now + duration: shorter or longer than before.
pub async fn store_extend_is_measured_from_now(ctx: &Ctx) -> CaseResult {
    let s = ctx.store();
    let (k1, k2) = (ctx.key("shortened"), ctx.key("lengthened"));
    let shortened = async {
        // A 5 s lock extended by 300 ms is free well before the 5 s.
        ensure!(
            ok(s.save(&k1, A, Some(Duration::from_secs(5))).await, "save")?,
            "save: a free key {k1:?} was refused"
        );
        ok(
            s.extend(&k1, A, Duration::from_millis(300)).await,
            "extend by the holder",
        )?;
        let extended = Instant::now();
        let free = until_free(&*s, &k1, extended, Duration::from_millis(1500)).await?;
        let _ = s.force_delete(&k1).await;
        ensure!(
            free.is_some(),
            "extend: a 5 s lock extended by 300 ms is still held 1.5 s later: extend must set the expiry to now + duration (not add it to the old expiry, nor keep the later one)"
        );
        Ok(())
    };
    let lengthened = async {
        // A 300 ms lock extended by 5 s is held after its first TTL.
        ensure!(
            ok(
                s.save(&k2, A, Some(Duration::from_millis(300))).await,
                "save"
            )?,
            "save: a free key {k2:?} was refused"
        );
        ok(
            s.extend(&k2, A, Duration::from_secs(5)).await,
            "extend by the holder",
        )?;
        // The old expiry is at most 300 ms after the save returned, so 400 ms after the
        // extend returned it has passed whatever the scheduling delays.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let held = ok(s.exists(&k2).await, "exists")?;
        let _ = s.force_delete(&k2).await;
        ensure!(
            held,
            "extend: returned Ok but the lock expired at its old expiry"
        );
        Ok(())
    };
    let (a, b) = tokio::join!(shortened, lengthened);
    a.and(b)
}

/// `extend` of an expired lock is `NotOwned` and does not revive it.
pub async fn store_extend_does_not_revive_an_expired_lock(ctx: &Ctx) -> CaseResult {
    let s = ctx.store();
    let k = ctx.key("k");
    let started = Instant::now();
    ensure!(
        ok(
            s.save(&k, A, Some(Duration::from_millis(100))).await,
            "save"
        )?,
        "save: a free key {k:?} was refused"
    );
    if until_free(&*s, &k, started, Duration::from_secs(3))
        .await?
        .is_none()
    {
        let _ = s.force_delete(&k).await;
        return Err(CaseFailure(format!(
            "exists: a 100 ms lock on {k:?} is still held after 3 s"
        )));
    }
    let got = s.extend(&k, A, LONG).await;
    let revived = ok(s.exists(&k).await, "exists")?;
    let _ = s.force_delete(&k).await;
    ensure!(
        !revived,
        "extend revived an expired lock ({k:?} is held again after extend returned {got:?})"
    );
    ensure!(
        not_owned(&got),
        "extend: extend of one's own expired lock returned {got:?}, expected NotOwned"
    );
    Ok(())
}

/// `extend` by an owner that does not hold the key is `NotOwned` and changes nothing.
pub async fn store_extend_by_another_owner_is_not_owned(ctx: &Ctx) -> CaseResult {
    let s = ctx.store();
    let k = ctx.key("k");
    let unheld = s.extend(&k, A, LONG).await;
    ensure!(
        not_owned(&unheld),
        "extend: extend of a key nobody holds returned {unheld:?}, expected NotOwned"
    );
    ensure!(
        !ok(s.exists(&k).await, "exists")?,
        "extend: extend of a key nobody holds created a lock"
    );
    let started = Instant::now();
    ensure!(
        ok(
            s.save(&k, A, Some(Duration::from_millis(300))).await,
            "save"
        )?,
        "save: a free key {k:?} was refused"
    );
    let other = s.extend(&k, B, LONG).await;
    let free = until_free(&*s, &k, started, Duration::from_secs(2)).await?;
    let _ = s.force_delete(&k).await;
    ensure!(
        not_owned(&other),
        "extend: an owner that does not hold {k:?} got {other:?}, expected NotOwned"
    );
    ensure!(
        free.is_some(),
        "extend: a non-owner's extend pushed the holder's expiry"
    );
    Ok(())
}

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
const SETTLE: Duration = Duration::from_millis(100);

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

/// Keys are compared byte for byte: case, Unicode normalization, surrounding whitespace
/// and every byte of a long key make distinct keys.
pub async fn store_keys_are_byte_exact(ctx: &Ctx) -> CaseResult {
    let s = ctx.store();
    let base = ctx.key("");
    let fill = lock_core::MAX_KEY_LEN - base.len() - 1;
    let variants = [
        format!("{base}Order"),
        format!("{base}order"),
        format!("{base}ORDER"),
        format!("{base}caf\u{e9}"),
        format!("{base}cafe\u{301}"),
        format!("{base}k"),
        format!("{base} k"),
        format!("{base}k "),
        format!("{base}k\t"),
        format!("{base}k\n"),
        format!("{base}{}1", "x".repeat(fill)),
        format!("{base}{}2", "x".repeat(fill)),
    ];
    let mut result = Ok(());
    for (i, k) in variants.iter().enumerate() {
        match s.save(k, A, Some(LONG)).await {
            Ok(true) => {}
            Ok(false) => {
                result = Err(CaseFailure(format!(
                    "save: key {k:?} collided with one saved before it ({:?}); keys must be compared byte for byte (case, Unicode normalization, whitespace and every byte of a {}-byte key count)",
                    &variants[..i],
                    k.len()
                )));
                break;
            }
            Err(e) => {
                result = Err(CaseFailure(format!(
                    "save: refused the valid key {k:?} with {e} ({})",
                    e.code()
                )));
                break;
            }
        }
    }
    if result.is_ok() {
        // Deleting one variant must leave the others held.
        ok(s.delete(&variants[0], A).await, "delete")?;
        for k in &variants[1..] {
            if !ok(s.exists(k).await, "exists")? {
                result = Err(CaseFailure(format!(
                    "delete: deleting {:?} also freed {k:?}; keys must be compared byte for byte",
                    variants[0]
                )));
                break;
            }
        }
    }
    for k in &variants {
        let _ = s.force_delete(k).await;
    }
    result
}

/// Fencing tokens strictly increase across two instances, deletes and force deletes.
pub async fn store_fencing_tokens_increase_across_instances(ctx: &Ctx) -> CaseResult {
    let stores = [ctx.store(), ctx.other_store().await?];
    let k = ctx.key("k");
    let mut last = 0;
    for round in 0..8 {
        let s = &stores[round % 2];
        let owner = format!("fencing{round}");
        let got = ok(s.try_acquire(&k, &owner, Some(LONG)).await, "try_acquire")?;
        ensure!(
            got.acquired,
            "try_acquire: round {round}: the free key {k:?} was refused"
        );
        let token = got.fencing_token.ok_or_else(|| {
            CaseFailure(format!(
                "try_acquire: round {round}: no fencing token, although the store declares fencing_tokens"
            ))
        })?;
        ensure!(
            token > last,
            "try_acquire: fencing token {token} after {last} (round {round}, instance {}): tokens must strictly increase per key across instances, deletes and force deletes",
            round % 2
        );
        last = token;
        let other = &stores[(round + 1) % 2];
        if round % 2 == 0 {
            ok(other.force_delete(&k).await, "force_delete")?;
        } else {
            ok(s.delete(&k, &owner).await, "delete")?;
        }
    }
    Ok(())
}

/// A denied `try_acquire` reports the holder's *remaining* time (never more), and none
/// for a lock that never expires.
pub async fn store_holder_expires_in_is_the_remaining_time(ctx: &Ctx) -> CaseResult {
    let s = ctx.store();
    let k = ctx.key("k");
    let ttl = Duration::from_millis(1000);
    ensure!(
        ok(s.save(&k, A, Some(ttl)).await, "save")?,
        "save: a free key {k:?} was refused"
    );
    // The lock expires at most `ttl` after the save returned.
    let saved = Instant::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let asked = Instant::now();
    let got = ok(s.try_acquire(&k, B, Some(LONG)).await, "try_acquire")?;
    let _ = s.force_delete(&k).await;
    ensure!(!got.acquired, "try_acquire: two owners held {k:?} at once");
    let bound = ttl.saturating_sub(asked - saved) + Duration::from_millis(20);
    match got.holder_expires_in {
        Some(left) => ensure!(
            left <= bound,
            "try_acquire: reported {left:?} left on the holder's lock, but at most {bound:?} can be left of its {ttl:?} TTL (the full TTL instead of the remaining time?)"
        ),
        None => {
            return Err(CaseFailure(
                "try_acquire: no holder_expires_in for a holder with a TTL, although the store declares holder_ttl".into(),
            ));
        }
    }
    ensure!(
        ok(s.save(&k, A, None).await, "save")?,
        "save: a free key {k:?} was refused"
    );
    let forever = ok(s.try_acquire(&k, B, Some(LONG)).await, "try_acquire")?;
    let _ = s.force_delete(&k).await;
    ensure!(
        forever.holder_expires_in.is_none(),
        "try_acquire: reported {:?} left on a lock that never expires (expected None)",
        forever.holder_expires_in
    );
    Ok(())
}

async fn listener_fires(ctx: &Ctx, release: &str) -> CaseResult {
    let a = ctx.store();
    let b = ctx.other_store().await?;
    let k = ctx.key("k");
    ensure!(
        ok(a.save(&k, A, Some(LONG)).await, "save")?,
        "save: a free key {k:?} was refused"
    );
    // Two waiters, each doing what lock-core does: register a listener, try (denied),
    // await the listener, look again. A listener may complete early (spuriously); the
    // waiter then registers again and retries, and the removal must still wake it — so
    // wake-ups must follow the removal, and reach every waiter of the key.
    if b.release_listener(&k).is_none() {
        return Err(CaseFailure(
            "release_listener: returned None, although the store declares release_notification"
                .into(),
        ));
    }
    let mut tasks = Vec::new();
    for waiter in [B, C] {
        let (b, k) = (b.clone(), k.clone());
        tasks.push(tokio::spawn(async move {
            let mut early = 0u32;
            loop {
                let Some(listener) = b.release_listener(&k) else {
                    return Ok(early);
                };
                if b.save(&k, waiter, Some(LONG)).await? {
                    // Free already (the other waiter's turn came first): pass it on.
                    b.delete(&k, waiter).await?;
                    return Ok(early);
                }
                listener.await;
                if !b.exists(&k).await? {
                    return Ok(early);
                }
                early += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let done = match release {
        "delete" => a.delete(&k, A).await,
        _ => a.force_delete(&k).await,
    };
    ok(done, release)?;
    for (i, task) in tasks.into_iter().enumerate() {
        let Ok(joined) = within(Duration::from_secs(3), "the listener", task).await else {
            return Err(CaseFailure(format!(
                "{release}: did not wake waiter {} of 2 of {k:?} within 3 s (a listener registered before a denied save must be woken by the next {release} of the key, on every instance, after the key is removed — also when the waiter was woken early and registered again)",
                i + 1
            )));
        };
        ok(
            joined.unwrap_or_else(|e| Err(LockError::storage_msg(e.to_string()))),
            "exists",
        )?;
    }
    Ok(())
}

/// `delete` wakes the key's release listeners, on another instance too.
pub async fn delete_wakes_release_listeners(ctx: &Ctx) -> CaseResult {
    listener_fires(ctx, "delete").await
}

/// `force_delete` wakes the key's release listeners, on another instance too.
pub async fn force_delete_wakes_release_listeners(ctx: &Ctx) -> CaseResult {
    listener_fires(ctx, "force_delete").await
}

/// A release listener is registered when created: a release between its creation and
/// its first poll is not missed.
pub async fn release_listener_is_registered_at_creation(ctx: &Ctx) -> CaseResult {
    let a = ctx.store();
    let b = ctx.other_store().await?;
    let k = ctx.key("k");
    ensure!(
        ok(a.save(&k, A, Some(LONG)).await, "save")?,
        "save: a free key {k:?} was refused"
    );
    let listener = b.release_listener(&k).ok_or_else(|| {
        CaseFailure(
            "release_listener: returned None, although the store declares release_notification"
                .into(),
        )
    })?;
    ok(a.delete(&k, A).await, "delete")?;
    // Give a cross-process notification time to arrive before the first poll.
    tokio::time::sleep(Duration::from_millis(200)).await;
    ensure!(
        within(Duration::from_secs(3), "the listener", listener)
            .await
            .is_ok(),
        "release_listener: a delete between the listener's creation and its first poll was missed (the listener must register when it is created, not when first polled)"
    );
    Ok(())
}

/// Input outside `lock_core::validate`'s domain is rejected with `InvalidArgument` or
/// handled correctly; never a panic, a hang, another error or a wrong `Ok`
/// ([`crate::bad_input::TABLE`]).
pub async fn store_input_domain_is_rejected_or_handled(ctx: &Ctx) -> CaseResult {
    let problems = crate::bad_input::check_store(ctx.store(), &ctx.key("")).await;
    ensure!(
        problems.is_empty(),
        "out-of-domain input must be rejected with InvalidArgument (see lock_core::validate) or handled correctly: {}",
        problems.join("; ")
    );
    Ok(())
}

/// Odd but valid keys (SQL quotes, `LIKE` and glob patterns, hash tags, protocol line
/// breaks, non-ASCII) are data: each works and matches no other key
/// ([`crate::bad_input::ODD_KEYS`]).
pub async fn odd_keys_are_data_not_patterns(ctx: &Ctx) -> CaseResult {
    let base = ctx.key("");
    for (odd, sibling) in crate::bad_input::ODD_KEYS {
        crate::bad_input::odd_key_works(ctx.store(), &base, odd, sibling).await?;
    }
    Ok(())
}
