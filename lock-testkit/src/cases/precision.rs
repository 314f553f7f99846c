//! A holding never ends in the store before its holder's local deadline.
//!
//! lock-core measures a holder's deadline from before its request was sent, so the
//! store's copy must last at least that long: a store whose clock is read coarsely
//! (to the millisecond, or to the second) and ends holdings a little early gives two
//! owners who both believe they hold the key. Each round takes a short holding through
//! lock-core, then a rival tries through the store directly, from 3 ms before the
//! holder's deadline on; a rival whose answer came back *before* that deadline, and
//! acquired, is the failure.

use lock_core::PermitRequest;

use super::*;

const ROUNDS: usize = 60;
const TTL: Duration = Duration::from_millis(40);

/// The mutex's holdings never end before the holder's local deadline.
pub async fn store_lock_never_ends_before_the_holders_deadline(ctx: &Ctx) -> CaseResult {
    rounds(ctx, false).await
}

/// The same for permit holdings.
pub async fn permit_never_ends_before_the_holders_deadline(ctx: &Ctx) -> CaseResult {
    rounds(ctx, true).await
}

async fn rounds(ctx: &Ctx, permits: bool) -> CaseResult {
    let locks = ctx.factory();
    let store = ctx.store();
    let mut late = 0;
    for round in 0..ROUNDS {
        let key = ctx.key(&format!("p{round}"));
        let holder = if permits {
            ok(
                locks.create_semaphore_with_ttl(&key, 1, Some(TTL)),
                "create_semaphore",
            )?
            .as_lock()
            .clone()
        } else {
            ok(locks.create_lock_with_ttl(&key, Some(TTL)), "create_lock")?
        };
        // A different sub-millisecond phase each round.
        tokio::time::sleep(Duration::from_micros((round as u64 * 137) % 1000)).await;
        // On a loaded machine an answer may come after the TTL: lock-core then does not
        // count it as a holding. Such a round proves nothing; most rounds must run.
        if !ok(holder.acquire_immediately().await, "acquire")? {
            late += 1;
            continue;
        }
        // The clock is read before `remaining_time` reads it: `before + left` is the
        // holder's deadline, not later by the time between two clock reads (a store that
        // answers within microseconds would land in that gap).
        let before = tokio::time::Instant::now();
        let Some(left) = holder.remaining_time() else {
            return Err(CaseFailure(
                "a holding with a TTL has no remaining time".into(),
            ));
        };
        let deadline = before + left;
        tokio::time::sleep_until(deadline - Duration::from_millis(3).min(left)).await;
        let rival = format!("rival{round:027}");
        while tokio::time::Instant::now() < deadline {
            let got = if permits {
                let Some(p) = store.permits() else {
                    return Err(CaseFailure("the store offers no permits".into()));
                };
                ok(
                    p.try_acquire_permit(&key, &rival, PermitRequest::new(1, 1, Some(TTL)))
                        .await,
                    "try_acquire_permit",
                )?
                .acquired
            } else {
                ok(store.save(&key, &rival, Some(TTL)).await, "save")?
            };
            let answered = tokio::time::Instant::now();
            if got {
                ensure!(
                    answered >= deadline,
                    "round {round}: a rival acquired {key:?} and had its answer {:?} before \
                     the holder's local deadline (TTL {TTL:?}): the store ends holdings early \
                     (a clock read coarsely, or `expiry <= now` on a cut clock?)",
                    deadline - answered
                );
                break;
            }
        }
    }
    ensure!(
        late < ROUNDS / 2,
        "{late} of {ROUNDS} acquires of a free key with a TTL of {TTL:?} were refused"
    );
    Ok(())
}
