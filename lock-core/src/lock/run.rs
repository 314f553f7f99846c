//! Closures under the lock: acquire, run, release — also on panic and cancellation.

use std::future::Future;

use tracing::Instrument;

use super::Lock;
use crate::armed::Armed;
use crate::unwind::CatchUnwind;
use crate::{LockError, LostLock, RetryConfig};

impl Lock {
    /// Acquire (with the lock's retry settings), run `f`, release. `Ok(Some(value))`,
    /// or `Ok(None)` when the lock was not acquired. The first choice for a critical
    /// section: it cannot run `f` without the lock, nor forget to release it.
    ///
    /// The lock is released when `f` completes, when it panics (the panic is resumed
    /// after the release) and when the `run` future is dropped (in the background).
    ///
    /// If the release after `f` fails, that error is returned and `f`'s value is
    /// dropped: `NotOwned` means the lock was lost while `f` ran (it expired, or was
    /// force-released), so `f` did not run under exclusion throughout; `Storage` means
    /// the release is unknown (the lock then expires with its TTL). Callers that want
    /// the value whatever happens use [`acquire_guard`](Self::acquire_guard) and
    /// [`LockGuard::release`](crate::LockGuard::release).
    ///
    /// # Cancel safety
    /// Dropping the future releases the lock in the background (only the holding this
    /// call acquired; never a later one), on the tokio runtime: if the runtime shuts
    /// down first, the lock expires with its TTL.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
    /// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
    /// let lock = factory.create_lock("k")?;
    /// let total = lock.run(|| async { 40 + 2 }).await?;
    /// assert_eq!(total, Some(42));
    /// assert!(!lock.is_locked().await?);
    /// # Ok(()) }
    /// ```
    pub async fn run<F, Fut, T>(&self, f: F) -> Result<Option<T>, LockError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        self.run_inner(self.retry, |_| f()).await
    }

    /// [`run`](Self::run) with one acquire try.
    ///
    /// # Cancel safety
    /// As [`run`](Self::run).
    pub async fn run_immediately<F, Fut, T>(&self, f: F) -> Result<Option<T>, LockError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        self.run_inner(RetryConfig::immediately(), |_| f()).await
    }

    /// [`run`](Self::run) with explicit retry settings.
    ///
    /// # Cancel safety
    /// As [`run`](Self::run).
    pub async fn run_with<F, Fut, T>(
        &self,
        retry: RetryConfig,
        f: F,
    ) -> Result<Option<T>, LockError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        self.run_inner(retry, |_| f()).await
    }

    /// [`run`](Self::run), handing `f` the [lost-lock signal](Self::lost_signal) so
    /// that it can stop when the lock is lost. Combine with
    /// [`with_auto_extend`](Self::with_auto_extend) for long sections.
    ///
    /// # Cancel safety
    /// As [`run`](Self::run).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
    /// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
    /// let lock = factory.create_lock("import.catalog")?.with_auto_extend(true);
    /// let done = lock
    ///     .run_with_signal(|lost| async move {
    ///         tokio::select! {
    ///             _ = lost.wait() => false, // stop: someone else may hold it now
    ///             _ = async { /* long import */ } => true,
    ///         }
    ///     })
    ///     .await?;
    /// assert_eq!(done, Some(true));
    /// # Ok(()) }
    /// ```
    pub async fn run_with_signal<F, Fut, T>(&self, f: F) -> Result<Option<T>, LockError>
    where
        F: FnOnce(LostLock) -> Fut,
        Fut: Future<Output = T>,
    {
        self.run_inner(self.retry, f).await
    }

    async fn run_inner<F, Fut, T>(&self, retry: RetryConfig, f: F) -> Result<Option<T>, LockError>
    where
        F: FnOnce(LostLock) -> Fut,
        Fut: Future<Output = T>,
    {
        let Some(generation) = self.acquire_holding(retry).await? else {
            return Ok(None);
        };
        // Armed until the release below completes: a drop anywhere before that
        // releases this holding in the background.
        let release_on_drop = Armed::new((self.clone(), generation), |(lock, generation)| {
            Lock::release_in_background(lock, generation)
        });
        let span = tracing::debug_span!("lock.run", store = %self.store_name(), key = %self.key());
        let outcome = CatchUnwind::new(f(self.holding_signal(generation)))
            .instrument(span)
            .await;
        let released = self.release_holding(Some(generation)).await;
        release_on_drop.disarm();
        match outcome {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(value) => released.map(|()| Some(value)),
        }
    }
}
