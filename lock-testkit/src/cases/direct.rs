//! Cases that call the [`LockStore`] methods directly, one rule each, so that a failure
//! names the method that broke the rule. The rules are stated in the documentation of
//! each trait method, which names the case that checks it.

use std::time::{Duration, Instant};

use lock_core::{LockError, LockStore};

use crate::harness::{CaseResult, Ctx, ok};
use crate::{CaseFailure, ensure};

/// Two owners whose tokens differ only in their last character, so that a store that
/// compares a prefix of the owner is caught.
pub(super) const A: &str = "owner-000000000000000000000000000a";
pub(super) const B: &str = "owner-000000000000000000000000000b";
pub(super) const C: &str = "owner-000000000000000000000000000c";
/// A TTL that does not run out during a case.
pub(super) const LONG: Duration = Duration::from_secs(60);

/// Poll `exists(key)` until it is false; `Ok(None)` if it still holds after `limit`,
/// otherwise how long it took from `since`.
pub(super) async fn until_free(
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

/// The answer is `NotOwned`.
pub(super) fn not_owned<T>(got: &Result<T, LockError>) -> bool {
    matches!(got, Err(LockError::NotOwned))
}

/// `save` of a key that must be free.
pub(super) async fn save_free(
    s: &dyn LockStore,
    k: &str,
    owner: &str,
    ttl: Option<Duration>,
) -> CaseResult {
    ensure!(
        ok(s.save(k, owner, ttl).await, "save")?,
        "save: a free key {k:?} was refused"
    );
    Ok(())
}

/// `save` of a key that must be free by [`A`] for [`LONG`], which `exists` then sees.
async fn save_seen(s: &dyn LockStore, k: &str) -> CaseResult {
    save_free(s, k, A, Some(LONG)).await?;
    ensure!(
        held(s, k).await?,
        "exists: false right after save returned true"
    );
    Ok(())
}

/// `save` of a free key by [`A`] for 100 ms, then wait until `exists` sees it expire.
async fn save_and_let_expire(s: &dyn LockStore, k: &str) -> CaseResult {
    let started = Instant::now();
    save_free(s, k, A, Some(Duration::from_millis(100))).await?;
    if until_free(s, k, started, Duration::from_secs(3))
        .await?
        .is_none()
    {
        let _ = s.force_delete(k).await;
        return Err(CaseFailure(format!(
            "exists: a 100 ms lock on {k:?} is still held after 3 s"
        )));
    }
    Ok(())
}

/// `save` of a free key by [`A`] for `ttl`, then `extend` by `by`.
async fn save_and_extend(s: &dyn LockStore, k: &str, ttl: Duration, by: Duration) -> CaseResult {
    save_free(s, k, A, Some(ttl)).await?;
    ok(s.extend(k, A, by).await, "extend by the holder")
}

/// Poll until `k` is free within `limit` of `since`, failing with `why` otherwise; the
/// key is force-deleted either way.
async fn expires_within(
    s: &dyn LockStore,
    k: &str,
    since: Instant,
    limit: Duration,
    why: &str,
) -> CaseResult {
    let free = until_free(s, k, since, limit).await?;
    let _ = s.force_delete(k).await;
    ensure!(free.is_some(), "{why}");
    Ok(())
}

/// [`A`]'s delete of `k` is `NotOwned` (failing with `why` otherwise); `k` is
/// force-deleted either way.
async fn delete_refused(s: &dyn LockStore, k: &str, why: &str) -> CaseResult {
    let got = s.delete(k, A).await;
    let _ = s.force_delete(k).await;
    ensure!(not_owned(&got), "{why} (delete returned {got:?})");
    Ok(())
}

/// `exists`, failing the case on an error.
pub(super) async fn held(s: &dyn LockStore, k: &str) -> Result<bool, CaseFailure> {
    ok(s.exists(k).await, "exists")
}

/// The case's second instance must see the first one's locks, and the other way round.
pub async fn instances_of_one_case_share_state(ctx: &Ctx) -> CaseResult {
    let a = ctx.store();
    let b = ctx.other_store().await?;
    ctx.check_shared(&*b, &*a).await?;
    let key = ctx.key("k");
    save_free(&*a, &key, A, Some(LONG)).await?;
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
    let (s, k) = (ctx.store(), ctx.key("k"));
    save_seen(&*s, &k).await?;
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
    let (s, k) = (ctx.store(), ctx.key("k"));
    let ttl = Duration::from_millis(300);
    let started = Instant::now();
    save_free(&*s, &k, A, Some(ttl)).await?;
    let denied = ok(s.save(&k, B, Some(LONG)).await, "save")?;
    ensure!(!denied, "save: two owners held {k:?} at once");
    expires_within(
        &*s,
        &k,
        started,
        ttl + Duration::from_secs(2),
        &format!("save: a denied save by another owner pushed the holder's expiry (the {ttl:?} lock on {k:?} is still held 2 s after its TTL)"),
    )
    .await
}

/// `delete` by the holder frees the key for anyone.
pub async fn store_delete_by_the_holder_frees_the_key(ctx: &Ctx) -> CaseResult {
    let (s, k) = (ctx.store(), ctx.key("k"));
    save_seen(&*s, &k).await?;
    ok(s.delete(&k, A).await, "delete by the holder")?;
    ensure!(
        !held(&*s, &k).await?,
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
    let (s, k) = (ctx.store(), ctx.key("k"));
    let unheld = s.delete(&k, A).await;
    ensure!(
        not_owned(&unheld),
        "delete: delete of a key nobody holds returned {unheld:?}, expected NotOwned"
    );
    save_free(&*s, &k, A, Some(LONG)).await?;
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
        save_free(&*s, &k, holder, Some(LONG)).await?;
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
    let (s, k) = (ctx.store(), ctx.key("k"));
    save_free(&*s, &k, A, None).await?;
    let started = Instant::now();
    ok(s.extend(&k, A, Duration::from_millis(200)).await, "extend")?;
    expires_within(
        &*s,
        &k,
        started,
        Duration::from_secs(3),
        "extend: a lock saved without TTL and extended by 200 ms was still held 3 s later (extend must set the expiry to now + duration, also on a lock that had none)",
    )
    .await
}

/// `delete` of one's own expired lock is `NotOwned`: an expired lock is not held.
pub async fn store_delete_of_own_expired_lock_is_not_owned(ctx: &Ctx) -> CaseResult {
    let (s, k) = (ctx.store(), ctx.key("k"));
    save_and_let_expire(&*s, &k).await?;
    let why = "delete: the owner of an expired lock was not refused with NotOwned (an expired lock is not held by anyone)";
    delete_refused(&*s, &k, why).await
}

/// `force_delete` frees a key whoever holds it, and is `Ok` on a free key.
pub async fn store_force_delete_frees_any_holder(ctx: &Ctx) -> CaseResult {
    let (s, k) = (ctx.store(), ctx.key("k"));
    let free = s.force_delete(&k).await;
    ensure!(
        free.is_ok(),
        "force_delete: a key nobody holds returned {free:?}, expected Ok"
    );
    save_free(&*s, &k, A, Some(LONG)).await?;
    ok(s.force_delete(&k).await, "force_delete of a held key")?;
    ensure!(
        !held(&*s, &k).await?,
        "force_delete: returned Ok but {k:?} is still held"
    );
    ensure!(
        ok(s.save(&k, B, Some(LONG)).await, "save")?,
        "force_delete: returned Ok but another owner's save was refused"
    );
    let why = "delete: the holder removed by force_delete could still delete the new holder's lock";
    delete_refused(&*s, &k, why).await
}

/// `exists` is true until the TTL passes (measured from the save), false after.
pub async fn store_exists_follows_the_ttl(ctx: &Ctx) -> CaseResult {
    let (s, k) = (ctx.store(), ctx.key("k"));
    let ttl = Duration::from_millis(700);
    let started = Instant::now();
    save_free(&*s, &k, A, Some(ttl)).await?;
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
    let (s, k) = (ctx.store(), ctx.key("k"));
    save_free(&*s, &k, A, None).await?;
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
        save_and_extend(&*s, &k1, Duration::from_secs(5), Duration::from_millis(300)).await?;
        let extended = Instant::now();
        expires_within(
            &*s,
            &k1,
            extended,
            Duration::from_millis(1500),
            "extend: a 5 s lock extended by 300 ms is still held 1.5 s later: extend must set the expiry to now + duration (not add it to the old expiry, nor keep the later one)",
        )
        .await
    };
    let lengthened = async {
        // A 300 ms lock extended by 5 s is held after its first TTL.
        save_and_extend(&*s, &k2, Duration::from_millis(300), Duration::from_secs(5)).await?;
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
    let (s, k) = (ctx.store(), ctx.key("k"));
    save_and_let_expire(&*s, &k).await?;
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
    let (s, k) = (ctx.store(), ctx.key("k"));
    let unheld = s.extend(&k, A, LONG).await;
    ensure!(
        not_owned(&unheld),
        "extend: extend of a key nobody holds returned {unheld:?}, expected NotOwned"
    );
    ensure!(
        !held(&*s, &k).await?,
        "extend: extend of a key nobody holds created a lock"
    );
    let started = Instant::now();
    save_free(&*s, &k, A, Some(Duration::from_millis(300))).await?;
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
