use std::ops::Deref;

use crate::{Lock, LockError};

/// A held lock that is released when dropped (in the background, on the current tokio
/// runtime). Call [`release`](Self::release) to release it and see the result.
///
/// Dereferences to the [`Lock`], so `extend`, `fencing_token`, `lost_signal` … are at hand.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
/// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
/// let lock = factory.create_lock("k")?;
/// {
///     let _guard = lock.acquire_guard().await?.expect("free");
///     // … critical section; any early return or `?` releases the lock …
/// }
/// # tokio::task::yield_now().await;
/// # Ok(()) }
/// ```
#[must_use = "dropping the guard releases the lock"]
#[derive(Debug)]
pub struct LockGuard {
    lock: Lock,
    armed: bool,
}

impl LockGuard {
    pub(crate) fn new(lock: Lock) -> Self {
        LockGuard { lock, armed: true }
    }

    /// Release the lock now.
    pub async fn release(mut self) -> Result<(), LockError> {
        let result = self.lock.release().await;
        // Only a failure to reach the store leaves it armed, for a retry on drop.
        if !matches!(result, Err(LockError::Storage(_))) {
            self.armed = false;
        }
        result
    }

    /// Give up the guard without releasing: the lock stays held (until its TTL) and can
    /// be released through the returned [`Lock`].
    pub fn into_lock(mut self) -> Lock {
        self.armed = false;
        self.lock.clone()
    }

    /// The lock.
    pub fn lock(&self) -> &Lock {
        &self.lock
    }
}

impl Deref for LockGuard {
    type Target = Lock;
    fn deref(&self) -> &Lock {
        &self.lock
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.armed {
            self.lock.spawn_release();
        }
    }
}
