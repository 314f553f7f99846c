//! Extending: manually (`extend`) and automatically (the extender task of a holding).

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use super::{Lock, Shared};
use crate::holding::{Deadline, Holding};
use crate::{LockError, LockStore, observe, validate};

impl Lock {
    /// Reset the expiry to now + `duration` (default: the lock's TTL).
    /// `InvalidArgument` if neither exists; `NotOwned` if this owner does not hold it
    /// (which also fires the lost-lock signal).
    ///
    /// # Cancel safety
    /// If the future is dropped, the extension may or may not have reached the store;
    /// the local deadline is then the earlier of the old one and the requested one.
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

    /// Start auto-extending holding `generation`, if this lock value auto-extends and
    /// has a TTL.
    pub(super) fn start_extender(&self, generation: u64) {
        let (true, Some(ttl)) = (self.auto_extend, self.ttl()) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let extender = runtime.spawn(extend_while_held(
            Arc::downgrade(&self.shared),
            self.shared.holding.clone(),
            generation,
            ttl,
        ));
        self.shared.holding.set_extender(generation, extender);
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
    let Deadline::At(until) = Deadline::after(sent_at, Some(duration)) else {
        return Err(LockError::invalid(
            "extension beyond what the clock can represent",
        ));
    };
    // Until the store confirms, the earlier deadline holds: a cancelled extension may
    // have been applied, also a shorter one.
    shared.holding.extending(generation, until);
    match shared.extend_on(store, duration).await {
        Ok(()) => {
            shared.holding.extended(generation, until);
            tracing::debug!(store = store.name(), key = %shared.key(), extended_ms = duration.as_millis() as u64, "lock extended");
            Ok(())
        }
        Err(LockError::NotOwned) => {
            if shared.holding.mark_lost(generation) {
                observe::lost(store.name(), shared.key(), "extension refused");
            }
            Err(LockError::NotOwned)
        }
        Err(error) => {
            observe::error(store.name(), shared.key(), "extend", &error);
            Err(error)
        }
    }
}

/// When the extender of holding `generation` should act next, or `None` to stop.
fn next_extension(
    holding: &Holding,
    generation: u64,
    keep: Duration,
    retry_at: Option<Instant>,
) -> Option<Instant> {
    if !holding.is_open(generation) {
        return None;
    }
    let Deadline::At(deadline) = holding.deadline() else {
        // Released, being released, or held without TTL: nothing to extend.
        return None;
    };
    Some(retry_at.unwrap_or_else(|| deadline.checked_sub(keep).unwrap_or(deadline)))
}

/// Keeps holding `generation` alive: whenever less than two thirds of `ttl` is left, it
/// extends by `ttl` — so a longer manual extension is never shortened, and a shorter one
/// is caught up at once (it wakes on every change of the holding). Stops on release,
/// re-acquire, loss, or when the last `Lock` clone is dropped (it holds the lock only
/// weakly, and `Shared`'s drop aborts it).
async fn extend_while_held(
    lock: Weak<Shared>,
    holding: Arc<Holding>,
    generation: u64,
    ttl: Duration,
) {
    let keep = ttl.saturating_sub(ttl / 3);
    let retry_gap = (ttl / 12).max(Duration::from_millis(5));
    let mut retry_at: Option<Instant> = None;
    loop {
        let changed = holding.changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let Some(wake) = next_extension(&holding, generation, keep, retry_at) else {
            return;
        };
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = changed => continue,
        }
        let Some(shared) = lock.upgrade() else { return };
        let Ok(store) = shared.handle.get().await else {
            return;
        };
        let _op = shared.op.lock().await;
        if !holding.is_open(generation) {
            return;
        }
        let Deadline::At(deadline) = holding.deadline() else {
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
                if holding.mark_lost(generation) {
                    observe::lost(
                        store.name(),
                        shared.key(),
                        "auto-extension failed until the deadline passed",
                    );
                }
                return;
            }
            // Retry soon, but not in a tight loop, and not past the deadline.
            Err(_) => retry_at = Some(now + retry_gap.min(deadline - now)),
        }
    }
}
