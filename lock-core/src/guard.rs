use std::ops::Deref;

use crate::armed::Armed;
use crate::{Lock, LockError, LostLock, RetryConfig};

/// A held lock that is released when dropped (in the background, on the current tokio
/// runtime). Call [`release`](Self::release) to release it and see the result.
///
/// A guard belongs to one holding: if that holding ends (released through a clone,
/// lost and re-acquired), dropping or releasing the guard never touches the later one.
///
/// Dereferences to the [`Lock`], so `extend`, `fencing_token`, `remaining_time` … are at
/// hand; its own [`lost_signal`](Self::lost_signal) belongs to the guard's holding.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
/// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
/// let lock = factory.create_lock("k")?;
/// if let Some(_guard) = lock.acquire_guard().await? {
///     // … critical section; any early return or `?` releases the lock …
/// }
/// # tokio::task::yield_now().await;
/// # Ok(()) }
/// ```
#[must_use = "dropping the guard releases the lock"]
#[clippy::has_significant_drop]
#[derive(Debug)]
pub struct LockGuard {
    held: Armed<(Lock, u64)>,
    /// Taken when the guard was made: it belongs to the guard's holding whatever
    /// happens to the lock later.
    signal: LostLock,
}

fn release_on_drop((lock, generation): (Lock, u64)) {
    Lock::release_in_background(lock, generation);
}

impl LockGuard {
    pub(crate) fn new(lock: Lock, generation: u64) -> Self {
        let signal = lock.holding_signal(generation);
        LockGuard {
            held: Armed::new((lock, generation), release_on_drop),
            signal,
        }
    }

    /// Release the lock now. `Err(NotOwned)` if this guard's holding already ended
    /// (released through a clone, or lost); a later holding is left alone.
    ///
    /// # Cancel safety
    /// If the future is dropped before the store answered, the guard is dropped too and
    /// releases in the background.
    pub async fn release(self) -> Result<(), LockError> {
        let (lock, generation) = self.held.get();
        let result = lock.release_holding(Some(*generation)).await;
        // Only a failure to reach the store leaves it armed, for a retry on drop.
        if !matches!(result, Err(LockError::Storage(_))) {
            self.held.disarm();
        }
        result
    }

    /// The lost-lock signal of this guard's holding: it fires when that holding is lost
    /// (an extension refused, or the local deadline passed without one), also when it
    /// was lost before the guard was returned. Unlike [`Lock::lost_signal`], it never
    /// follows a later holding.
    pub fn lost_signal(&self) -> LostLock {
        self.signal.clone()
    }

    /// Give up the guard without releasing: the lock stays held (until its TTL) and can
    /// be released through the returned [`Lock`].
    pub fn into_lock(self) -> Lock {
        let lock = self.held.get().0.clone();
        self.held.disarm();
        lock
    }

    /// The lock.
    pub fn lock(&self) -> &Lock {
        self
    }
}

impl Deref for LockGuard {
    type Target = Lock;
    fn deref(&self) -> &Lock {
        &self.held.get().0
    }
}

impl Lock {
    /// Acquire (with the lock's retry settings) and return a guard that releases the
    /// lock when dropped, or `None` when not acquired. Prefer
    /// [`LockGuard::release`] to observe release errors.
    ///
    /// # Cancel safety
    /// As [`acquire`](Self::acquire).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
    /// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
    /// let lock = factory.create_lock("k")?;
    /// if let Some(guard) = lock.acquire_guard().await? {
    ///     // … critical section …
    ///     guard.release().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn acquire_guard(&self) -> Result<Option<LockGuard>, LockError> {
        self.acquire_guard_with(self.retry()).await
    }

    /// [`acquire_guard`](Self::acquire_guard) with explicit retry settings.
    ///
    /// # Cancel safety
    /// As [`acquire`](Self::acquire).
    pub async fn acquire_guard_with(
        &self,
        retry: RetryConfig,
    ) -> Result<Option<LockGuard>, LockError> {
        Ok(self
            .acquire_holding(retry)
            .await?
            .map(|generation| LockGuard::new(self.clone(), generation)))
    }
}
