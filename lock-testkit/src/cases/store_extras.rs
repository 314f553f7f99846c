//! Store-level cases about keys, fencing tokens, the holder's TTL, release listeners and
//! the input domain.

use std::time::{Duration, Instant};

use lock_core::{LockError, LockStore};

use super::direct::{A, B, C, LONG, save_free};
use crate::harness::{CaseResult, Ctx, ok, within};
use crate::{CaseFailure, ensure};

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
    let (s, k) = (ctx.store(), ctx.key("k"));
    let ttl = Duration::from_millis(1000);
    save_free(&*s, &k, A, Some(ttl)).await?;
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
    save_free(&*s, &k, A, None).await?;
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
    save_free(&*a, &k, A, Some(LONG)).await?;
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
    save_free(&*a, &k, A, Some(LONG)).await?;
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
