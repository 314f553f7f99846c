//! The operation mutex of a lock (see `Shared::op`): one store call that changes this
//! owner's holding at a time, across all clones, in FIFO order.

use std::sync::Arc;

use tokio::sync::{Semaphore, SemaphorePermit};

use super::Shared;

/// A fair async mutex that is taken without a future when it is free, and whose guard
/// can be handed to a background task without the hot path cloning any `Arc`.
pub(super) struct OpMutex(Semaphore);

/// The mutex, held for the borrow of the lock.
pub(super) struct OpGuard<'a>(SemaphorePermit<'a>);

/// The mutex, held by a background task (a clean-up) until it drops this.
pub(super) struct DetachedOp(Arc<Shared>);

impl OpMutex {
    pub(super) fn new() -> Self {
        OpMutex(Semaphore::new(1))
    }

    /// The mutex if it is free now. Never ahead of a waiter: a release hands the permit
    /// to the first queued waiter, so it is free only when nobody waits.
    pub(super) fn try_lock(&self) -> Option<OpGuard<'_>> {
        self.0.try_acquire().ok().map(OpGuard)
    }

    /// The mutex: at once when free, otherwise after the callers queued before.
    pub(super) async fn lock(&self) -> OpGuard<'_> {
        if let Some(guard) = self.try_lock() {
            return guard;
        }
        match self.0.acquire().await {
            Ok(permit) => OpGuard(permit),
            // The semaphore is never closed.
            Err(_) => unreachable!("the operation mutex is never closed"),
        }
    }
}

impl OpGuard<'_> {
    /// Keep the mutex held beyond this borrow, by `lock` (whose mutex this is), until
    /// the returned value is dropped.
    pub(super) fn detach(self, lock: Arc<Shared>) -> DetachedOp {
        self.0.forget();
        DetachedOp(lock)
    }
}

impl DetachedOp {
    /// The lock whose mutex this holds.
    pub(super) fn lock(&self) -> &Arc<Shared> {
        &self.0
    }
}

impl Drop for DetachedOp {
    fn drop(&mut self) {
        // The permit `detach` forgot, given back (also when the task holding this is
        // dropped by a runtime shutting down).
        self.0.op.0.add_permits(1);
    }
}
