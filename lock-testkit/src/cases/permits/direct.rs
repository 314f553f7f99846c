//! The [`PermitStore`] methods called directly, one rule each, so that a failure names
//! the method that broke it.

use lock_core::PermitRequest;

use super::*;

/// `try_acquire_permit`, failing the case on an error: whether it granted.
async fn granted(
    permits: &dyn PermitStore,
    key: &str,
    owner: &str,
    request: PermitRequest,
) -> Result<bool, CaseFailure> {
    ok(
        permits.try_acquire_permit(key, owner, request).await,
        "try_acquire_permit",
    )
    .map(|got| got.acquired)
}

/// Release and extend are owner-checked: a non-holder gets `NotOwned` and changes
/// nothing; so does the holder once its holding expired.
pub async fn permit_release_and_extend_are_owner_checked(ctx: &Ctx) -> CaseResult {
    let store = ctx.store();
    let permits = permit_store(&*store)?;
    let key = ctx.key("sem");
    let ttl = ctx.ttl();
    let request = PermitRequest::new(2, 1, Some(ttl));
    ensure!(
        granted(permits, &key, "owner-a", request).await?,
        "a free permit key refused its first holder"
    );
    let other = permits.release_permit(&key, "owner-b").await;
    ensure!(
        not_owned(&other),
        "release_permit by a non-holder answered {other:?}, not NotOwned"
    );
    let other = permits.extend_permit(&key, "owner-b", ttl).await;
    ensure!(
        not_owned(&other),
        "extend_permit by a non-holder answered {other:?}, not NotOwned"
    );
    let usage = ok(permits.permit_usage(&key).await, "permit_usage")?;
    ensure!(
        usage.holders == 1,
        "a refused release changed the holders: {usage:?}"
    );
    past(ttl).await;
    let late = permits.extend_permit(&key, "owner-a", ttl).await;
    ensure!(
        not_owned(&late),
        "extend_permit of an expired holding answered {late:?}, not NotOwned"
    );
    let late = permits.release_permit(&key, "owner-a").await;
    ensure!(
        not_owned(&late),
        "release_permit of an expired holding answered {late:?}, not NotOwned"
    );
    Ok(())
}

/// Bad permit requests are `InvalidArgument` from the store itself (not a panic, not a
/// grant): weight 0, weight over the limit, limit 0.
pub async fn permit_bad_requests_are_invalid(ctx: &Ctx) -> CaseResult {
    let store = ctx.store();
    let permits = permit_store(&*store)?;
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

/// The reservation rules, one store call at a time: a denied writer's reservation keeps
/// readers and other writers out, its grant clears it, `force_release_permits` clears
/// it; an extension moves the extending holder's expiry only.
pub async fn store_permit_reservations_and_extensions_follow_the_rules(ctx: &Ctx) -> CaseResult {
    use lock_core::permits::RW_LIMIT;
    let store = ctx.store();
    let p = permit_store(&*store)?;
    let k = ctx.key("rw");
    let long = Some(Duration::from_secs(10));
    let read = PermitRequest::new(RW_LIMIT, 1, long);
    let write = PermitRequest::new(RW_LIMIT, RW_LIMIT, long);
    let reserving = write.reserving(Some(Duration::from_secs(10)));
    ensure!(
        granted(p, &k, "reader-r", read).await?,
        "a free key refused a reader"
    );
    ensure!(
        !granted(p, &k, "writer-a", reserving).await?,
        "a writer got in beside a reader"
    );
    ensure!(
        !granted(p, &k, "reader-c", read).await?,
        "a new reader got in while a writer's reservation was live"
    );
    ensure!(
        !granted(p, &k, "writer-b", reserving).await?,
        "a second writer got in beside a reader"
    );
    ok(p.release_permit(&k, "reader-r").await, "release_permit")?;
    ensure!(
        !granted(p, &k, "writer-b", write).await?,
        "writer B got in ahead of writer A, whose reservation was live (and came first)"
    );
    ensure!(
        granted(p, &k, "writer-a", reserving).await?,
        "the reserving writer did not get the free key"
    );
    ok(p.release_permit(&k, "writer-a").await, "release_permit")?;
    ensure!(
        granted(p, &k, "reader-c", read).await?,
        "after the reserving writer was granted and released, a reader was still kept out: \
         a grant must clear the writer's reservation"
    );
    ok(p.release_permit(&k, "reader-c").await, "release_permit")?;
    // A reservation, then a force release: nothing may keep readers out afterwards.
    ensure!(
        granted(p, &k, "reader-r2", read).await?,
        "a free key refused a reader"
    );
    ensure!(
        !granted(p, &k, "writer-a2", reserving).await?,
        "a writer got in beside a reader"
    );
    ok(p.force_release_permits(&k).await, "force_release_permits")?;
    ensure!(
        granted(p, &k, "reader-c2", read).await?,
        "after force_release_permits a reader was kept out: the reservation must go too"
    );
    ok(p.force_release_permits(&k).await, "force_release_permits")?;
    // Extensions: X's extension must not keep Y alive.
    let s = ctx.key("sem");
    let ttl = ctx.ttl();
    let short = PermitRequest::new(2, 1, Some(ttl));
    for owner in ["holder-x", "holder-y"] {
        ensure!(
            granted(p, &s, owner, short).await?,
            "a semaphore of 2 refused its first two holders"
        );
    }
    ok(
        p.extend_permit(&s, "holder-x", ttl * 10).await,
        "extend_permit",
    )?;
    past(ttl).await;
    let usage = ok(p.permit_usage(&s).await, "permit_usage")?;
    ensure!(
        usage.holders == 1,
        "one holder extended, the other's TTL ran out, yet {} holders remain: an extension \
         moved more than its owner's expiry",
        usage.holders
    );
    ok(p.force_release_permits(&s).await, "force_release_permits")
}
