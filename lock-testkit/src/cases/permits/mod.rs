//! Cases for stores with the permit capability ([`lock_core::PermitStore`]):
//! semaphores and reader-writer locks.
//!
//! * `semaphore.rs`: a semaphore's limit, counting, expiry, extension and tokens;
//! * `rw.rs`: reader-writer exclusion and the writer's reservation;
//! * `cancel.rs`: cancelled holders and acquires leave nothing behind;
//! * `direct.rs`: the [`PermitStore`] methods called directly, one rule each.

mod cancel;
mod direct;
mod rw;
mod semaphore;
pub use cancel::*;
pub use direct::*;
pub use rw::*;
pub use semaphore::*;

use lock_core::{PermitStore, RwLock, Semaphore};

use super::*;

fn semaphore(locks: &LockFactory, key: &str, permits: u32) -> Result<Semaphore, CaseFailure> {
    ok(locks.create_semaphore(key, permits), "create_semaphore")
}

/// A semaphore whose holdings last `ttl`.
fn semaphore_with_ttl(
    locks: &LockFactory,
    key: &str,
    permits: u32,
    ttl: Duration,
) -> Result<Semaphore, CaseFailure> {
    ok(
        locks.create_semaphore_with_ttl(key, permits, Some(ttl)),
        "create_semaphore",
    )
}

/// `N` semaphores of `permits` on one key, each with its own owner.
fn semaphores<const N: usize>(
    locks: &LockFactory,
    key: &str,
    permits: u32,
) -> Result<[Semaphore; N], CaseFailure> {
    let mut made = Vec::with_capacity(N);
    for _ in 0..N {
        made.push(semaphore(locks, key, permits)?);
    }
    made.try_into()
        .map_err(|_| CaseFailure("could not make the semaphores".into()))
}

fn rw_lock(locks: &LockFactory, key: &str) -> Result<RwLock, CaseFailure> {
    ok(locks.create_rw_lock(key), "create_rw_lock")
}

/// `N` reader-writer locks on one key, each with its own owner.
fn rw_locks<const N: usize>(locks: &LockFactory, key: &str) -> Result<[RwLock; N], CaseFailure> {
    let mut made = Vec::with_capacity(N);
    for _ in 0..N {
        made.push(rw_lock(locks, key)?);
    }
    made.try_into()
        .map_err(|_| CaseFailure("could not make the reader-writer locks".into()))
}

/// A factory with the fast retry settings on another instance of the store (another
/// process, as far as lock-core's in-process line is concerned).
async fn other_fast_factory(ctx: &Ctx) -> Result<LockFactory, CaseFailure> {
    Ok(LockFactory::with_options(
        ctx.other_store().await?,
        FactoryOptions::default().retry(fast_retry()),
    ))
}

/// The store's permit capability, for the cases that call it directly.
fn permit_store(store: &dyn LockStore) -> Result<&dyn PermitStore, CaseFailure> {
    store
        .permits()
        .ok_or_else(|| CaseFailure("the store offers no permits".into()))
}

/// `sem.holders()` is `n`, failing with `why` otherwise.
async fn holders_are(sem: &Semaphore, n: u32, why: &str) -> CaseResult {
    ensure!(ok(sem.holders().await, "holders")? == n, "{why}");
    Ok(())
}

/// `sem.available()` is `n`, failing with `why` otherwise.
async fn available_is(sem: &Semaphore, n: u32, why: &str) -> CaseResult {
    ensure!(ok(sem.available().await, "available")? == n, "{why}");
    Ok(())
}

/// One try of `lock` is refused, failing with `why` if it acquires.
async fn refused(lock: &Lock, why: &str) -> CaseResult {
    ensure!(!acquired(lock).await?, "{why}");
    Ok(())
}

/// `lock`'s holding is gone (expired or removed): its release is `NotOwned`, failing
/// with `why` otherwise.
async fn no_longer_held(lock: &Lock, why: &str) -> CaseResult {
    ensure!(not_owned(&lock.release().await), "{why}");
    Ok(())
}

/// Sleep until a holding taken now for `ttl` has surely expired.
async fn past(ttl: Duration) {
    tokio::time::sleep(ttl + Duration::from_millis(150)).await;
}
