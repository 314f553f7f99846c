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

/// Acquire a key that must be free.
async fn acquire_free(lock: &Lock) -> CaseResult {
    ensure!(
        ok(lock.acquire_immediately().await, "acquire")?,
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
}
