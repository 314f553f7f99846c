//! Extending: manually (`extend`) and automatically (the extender task of a holding).

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use super::{Lock, Shared};
use crate::holding::Deadline;
use crate::{LockError, LockStore, observe, validate};

impl Lock {
    /// Reset the expiry to now + `duration` (default: the lock's TTL).
    /// `InvalidArgument` if neither exists; `NotOwned` if this owner does not hold it
    /// (which also fires the lost-lock signal).
    ///
    /// # Cancel safety
    /// If the future is dropped, the extension may or may not have reached the store;
    /// the local deadline is then left as it was (the earlier, safer one).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
    /// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
    /// use std::time::Duration;
    /// let lock = factory.create_lock_with_ttl("k", Some(Duration::from_secs(1)))?;
    /// assert!(lock.acquire().await?);
    /// lock.extend(Some(Duration::from_secs(60))).await?;
    /// assert!(lock.remaining_time().unwrap() > Duration::from_secs(50));
    /// # Ok(()) }
    /// ```
    pub async fn extend(&self, duration: Option<Duration>) -> Result<(), LockError> {
        let duration = duration.or(self.ttl()).ok_or_else(|| {
            LockError::invalid("extend needs a duration: this lock has no TTL to default to")
        })?;
        validate::duration("extension", duration)?;
        let span =
            tracing::debug_span!("lock.extend", store = %self.store_name(), key = %self.key());
        async {
            let store = self.store().await?;
            let _op = self.shared.op.lock().await;
            let generation = self.shared.holding.generation();
            extend_once(&self.shared, store.as_ref(), generation, duration).await
        }
        .instrument(span)
        .await
    }
}

/// One extension of holding `generation`, under the operation mutex.
async fn extend_once(
    shared: &Shared,
    store: &dyn LockStore,
    generation: u64,
    duration: Duration,
) -> Result<(), LockError> {
    let sent_at = Instant::now();
    match store.extend(&shared.key, &shared.owner, duration).await {
        Ok(()) => {
            if let Deadline::At(t) = Deadline::after(sent_at, Some(duration)) {
                shared.holding.extended(generation, t);
            }
            tracing::debug!(store = store.name(), key = %shared.key, extended_ms = duration.as_millis() as u64, "lock extended");
            Ok(())
        }
        Err(LockError::NotOwned) => {
            if shared.holding.mark_lost(generation) {
                observe::lost(store.name(), &shared.key, "extension refused");
            }
            Err(LockError::NotOwned)
        }
        Err(error) => {
            observe::error(store.name(), &shared.key, "extend", &error);
            Err(error)
        }
    }
}

/// Keeps holding `generation` alive: whenever less than two thirds of `ttl` is left, it
/// extends by `ttl` — so a longer manual extension is never shortened. Stops on release,
/// re-acquire, loss, or when the last `Lock` clone is dropped (it holds the lock only
/// weakly, and `Shared`'s drop aborts it).
pub(super) fn spawn_extender(
    lock: Weak<Shared>,
    generation: u64,
    ttl: Duration,
    store: Arc<dyn LockStore>,
) -> JoinHandle<()> {
    let keep = ttl.saturating_sub(ttl / 3);
    let retry_gap = (ttl / 12).max(Duration::from_millis(5));
    tokio::spawn(async move {
        let mut retry_at: Option<Instant> = None;
        loop {
            let wake = {
                let Some(shared) = lock.upgrade() else { return };
                let Deadline::At(deadline) = shared.holding.deadline() else {
                    return;
                };
                retry_at.unwrap_or_else(|| deadline.checked_sub(keep).unwrap_or(deadline))
            };
            tokio::time::sleep_until(wake).await;
            let Some(shared) = lock.upgrade() else { return };
            let _op = shared.op.lock().await;
            let (current, held) = shared.holding.current();
            if current != generation || !held {
                return;
            }
            let Deadline::At(deadline) = shared.holding.deadline() else {
                return;
            };
            let now = Instant::now();
            if retry_at.is_none() && deadline.saturating_duration_since(now) > keep {
                // Extended by hand meanwhile: sleep until that deadline comes near.
                continue;
            }
            match extend_once(&shared, store.as_ref(), generation, ttl).await {
                Ok(()) => retry_at = None,
                Err(LockError::NotOwned) => return,
                Err(_) if now >= deadline => {
                    if shared.holding.mark_lost(generation) {
                        observe::lost(
                            store.name(),
                            &shared.key,
                            "auto-extension failed until the deadline passed",
                        );
                    }
                    return;
                }
                // Retry soon, but not in a tight loop, and not past the deadline.
                Err(_) => retry_at = Some(now + retry_gap.min(deadline - now)),
            }
        }
    })
}
