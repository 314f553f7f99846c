//! The conformance cases: one public async function per behaviour of the store contract.
//!
//! The first 25 are Verrou's `registerStoreTestSuite`; the rest cover what it misses, and
//! the capability cases run only on stores that declare the capability. Each returns a
//! [`CaseFailure`] that says what the store did wrong. The `store_*` cases (in
//! `direct.rs`, `races.rs`, `store_extras.rs`) call the [`LockStore`] methods directly, one rule each, so that a failure
//! names the method that broke the rule.
//!
//! Not API-stable: cases are added as the contract is pinned down.

mod beyond;
mod capability;
mod direct;
mod permits;
mod precision;
mod races;
mod store_extras;
mod verrou;
pub use beyond::*;
pub use capability::*;
pub use direct::*;
pub use permits::*;
pub use precision::*;
pub use races::*;
pub use store_extras::*;
pub use verrou::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lock_core::{
    FactoryOptions, Lock, LockError, LockFactory, LockStore, RetryConfig, async_trait,
};

use crate::harness::{CaseResult, Ctx, ok, within};
use crate::{CaseFailure, ensure};

/// Generous bound for anything that should be quick.
const QUICK: Duration = Duration::from_secs(5);

fn fast_retry() -> RetryConfig {
    RetryConfig::default()
        .delay(Duration::from_millis(10))
        .timeout(Duration::from_secs(10))
}

fn fast_factory(ctx: &Ctx) -> LockFactory {
    ctx.factory_with(FactoryOptions::default().retry(fast_retry()))
}

/// `create_lock`, failing the case on an error.
fn create(locks: &LockFactory, key: impl Into<String>) -> Result<Lock, CaseFailure> {
    ok(locks.create_lock(key), "create_lock")
}

/// `create_lock_with_ttl`, failing the case on an error.
fn create_ttl(
    locks: &LockFactory,
    key: impl Into<String>,
    ttl: Option<Duration>,
) -> Result<Lock, CaseFailure> {
    ok(locks.create_lock_with_ttl(key, ttl), "create_lock")
}

/// `is_locked`, failing the case on an error.
async fn locked(lock: &Lock) -> Result<bool, CaseFailure> {
    ok(lock.is_locked().await, "is_locked")
}

/// `acquire_immediately`, failing the case on an error.
async fn acquired(lock: &Lock) -> Result<bool, CaseFailure> {
    ok(lock.acquire_immediately().await, "acquire")
}

/// Sleep until a lock taken now with [`Ctx::ttl`] has surely expired.
async fn past_ttl(ctx: &Ctx) {
    tokio::time::sleep(ctx.ttl() + Duration::from_millis(250)).await;
}

/// A lock that acquired its key with [`Ctx::ttl`] and has since expired.
async fn expired_lock(ctx: &Ctx) -> Result<Lock, CaseFailure> {
    let lock = create_ttl(&ctx.factory(), ctx.key("k"), Some(ctx.ttl()))?;
    acquire_free(&lock).await?;
    past_ttl(ctx).await;
    Ok(lock)
}

/// Poll until `lock`'s key is free, failing with `why` if it is still held after [`QUICK`].
async fn freed_soon(lock: &Lock, why: &str) -> CaseResult {
    let started = Instant::now();
    while locked(lock).await? {
        ensure!(started.elapsed() < QUICK, "{why}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Await every task within `limit`, failing on a timeout, a panic or an error.
async fn join_tasks<E: std::fmt::Display>(
    tasks: Vec<tokio::task::JoinHandle<Result<(), E>>>,
    limit: Duration,
    what: &str,
) -> CaseResult {
    for t in tasks {
        within(limit, what, t)
            .await?
            .map_err(|e| CaseFailure(format!("task failed: {e}")))?
            .map_err(|e| CaseFailure(format!("run failed: {e}")))?;
    }
    Ok(())
}

/// Two locks on one key from one factory.
fn two_locks(ctx: &Ctx) -> Result<(Lock, Lock), CaseFailure> {
    let locks = ctx.factory();
    Ok((create(&locks, ctx.key("k"))?, create(&locks, ctx.key("k"))?))
}

/// Two locks on one key from one factory; the first holds it.
async fn held_and_rival(ctx: &Ctx) -> Result<(Lock, Lock), CaseFailure> {
    let (holder, rival) = two_locks(ctx)?;
    acquire_free(&holder).await?;
    Ok((holder, rival))
}

/// The value of a `run` inside a contention case, which must acquire in time.
fn ran<T>(got: Result<Option<T>, LockError>) -> Result<T, String> {
    got.map_err(run_error)?
        .ok_or_else(|| "a run did not acquire the lock in time".to_owned())
}

/// `loser`'s release is `NotOwned` and leaves the key held; then `holder` releases.
async fn only_holder_releases(holder: &Lock, loser: &Lock, who: &str) -> CaseResult {
    let got = loser.release().await;
    ensure!(
        not_owned(&got),
        "release by {who} returned {got:?}, expected NotOwned"
    );
    ensure!(
        locked(holder).await?,
        "release by {who} freed the holder's lock"
    );
    ok(holder.release().await, "release by the holder")
}

/// Acquire a key that must be free.
async fn acquire_free(lock: &Lock) -> CaseResult {
    ensure!(
        acquired(lock).await?,
        "acquire of a free key {:?} failed",
        lock.key()
    );
    Ok(())
}

/// What a failed `run` inside a contention case means for the store.
fn run_error(e: LockError) -> String {
    match e {
        LockError::NotOwned => "two owners held the key at once: a `run` that acquired the key \
            found it no longer its own when releasing (delete returned NotOwned), so another \
            owner's save succeeded while it was held (save is not atomic?)"
            .into(),
        other => other.to_string(),
    }
}

/// Counts how many holders are inside a critical section at once.
#[derive(Default)]
struct OverlapDetector {
    inside: AtomicUsize,
    overlaps: AtomicUsize,
    sections: AtomicUsize,
}

impl OverlapDetector {
    async fn section(&self, hold: Duration) {
        if self.inside.fetch_add(1, Ordering::SeqCst) != 0 {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        tokio::time::sleep(hold).await;
        self.inside.fetch_sub(1, Ordering::SeqCst);
        self.sections.fetch_add(1, Ordering::SeqCst);
    }

    /// Fails if two holders were ever inside at once.
    fn no_overlaps(&self) -> CaseResult {
        let overlaps = self.overlaps.load(Ordering::SeqCst);
        ensure!(
            overlaps == 0,
            "two owners held the key at once: {overlaps} critical sections overlapped"
        );
        Ok(())
    }
}
