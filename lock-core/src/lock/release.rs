//! Releasing: explicitly (`release`, `force_release`), and in the background on drop,
//! bound to the one holding the dropped guard or `run` owned.

use tokio::time::Instant;
use tracing::Instrument;

use super::Lock;
use crate::observe;
use crate::{LockError, LockStore};

impl Lock {
    /// Release the lock. `Err(NotOwned)` unless this owner holds it (also after it
    /// expired and someone else took it).
    ///
    /// From the moment it is called, this process no longer considers the lock held and
    /// stops extending it; if the release fails (`Storage`) or its future is dropped, the
    /// store may still hold it until released again or until its TTL.
    ///
    /// # Cancel safety
    /// If the future is dropped, the delete may or may not have reached the store (see
    /// above); call `release` again to be sure.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
    /// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
    /// let lock = factory.create_lock("k")?;
    /// assert!(lock.release().await.unwrap_err().is_not_owned());
    /// assert!(lock.acquire().await?);
    /// lock.release().await?;
    /// # Ok(()) }
    /// ```
    pub async fn release(&self) -> Result<(), LockError> {
        // In place when it can be (see `release_holding`), without the layer between.
        if let Some(done) = self.release_in_place(None) {
            return done;
        }
        self.release_holding(None).await
    }

    /// Release holding `generation` only (`None`: whatever this owner holds). A holding
    /// that already ended is `Err(NotOwned)`, and a later holding is left alone.
    pub(crate) async fn release_holding(&self, generation: Option<u64>) -> Result<(), LockError> {
        // On a store that answers in place: no future at all (see `in_place`).
        if let Some(done) = self.release_in_place(generation) {
            return done;
        }
        let span =
            tracing::debug_span!("lock.release", store = %self.store_name(), key = %self.key());
        // Boxed: the in-place path above keeps this future small.
        Box::pin(self.release_traced(generation).instrument(span)).await
    }

    async fn release_traced(&self, generation: Option<u64>) -> Result<(), LockError> {
        let store = self.store().await?;
        let _op = self.shared.op.lock().await;
        // One clock reading: the release begins (and the hold time ends) now.
        let now = Instant::now();
        if !self.shared.holding.releasing(generation, now) {
            return Err(LockError::NotOwned);
        }
        let result = self.shared.delete_on(store.as_ref()).await;
        self.release_answered(store.as_ref(), result, now)
    }

    /// Settle a release that began `now` (`Holding::releasing`) with the store's answer
    /// to its delete (call it under the operation mutex).
    pub(super) fn release_answered(
        &self,
        store: &dyn LockStore,
        result: Result<(), LockError>,
        now: Instant,
    ) -> Result<(), LockError> {
        let holding = &self.shared.holding;
        match &result {
            Ok(()) => {
                let held = holding.released(now);
                observe::released(store.name(), held);
                tracing::debug!(
                    store = store.name(),
                    key = %self.key(),
                    held_ms = held.map(|d| d.as_millis() as u64),
                    "lock released"
                );
            }
            Err(LockError::NotOwned) => {
                holding.released(now);
            }
            Err(error) => observe::error(store.name(), self.key(), "release", error),
        }
        result
    }

    /// Release holding `generation` in the background (a dropped guard or `run`);
    /// errors are logged. A later holding of this lock is never released by it.
    pub(crate) fn release_in_background(lock: Lock, generation: u64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                key = %lock.key(),
                "no tokio runtime to release the lock on drop; it expires with its TTL"
            );
            return;
        };
        runtime.spawn(async move {
            let _ = lock.release_holding(Some(generation)).await;
        });
    }

    /// Release the lock whoever holds it. As with [`release`](Self::release), this
    /// lock's own holding (if any) counts as ended from the call on.
    ///
    /// # Cancel safety
    /// As [`release`](Self::release).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
    /// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
    /// let holder = factory.create_lock("k")?;
    /// assert!(holder.acquire().await?);
    /// factory.create_lock("k")?.force_release().await?;
    /// assert!(!holder.is_locked().await?);
    /// # Ok(()) }
    /// ```
    pub async fn force_release(&self) -> Result<(), LockError> {
        let span = tracing::debug_span!("lock.force_release", store = %self.store_name(), key = %self.key());
        self.force_release_traced().instrument(span).await
    }

    async fn force_release_traced(&self) -> Result<(), LockError> {
        let store = self.store().await?;
        let _op = self.shared.op.lock().await;
        let now = Instant::now();
        self.shared.holding.releasing(None, now);
        let result = self.shared.force_delete_on(store.as_ref()).await;
        match &result {
            Ok(()) => {
                self.shared.holding.released(now);
                tracing::debug!(store = store.name(), key = %self.key(), "lock force released");
            }
            Err(error) => observe::error(store.name(), self.key(), "force_release", error),
        }
        result
    }
}
