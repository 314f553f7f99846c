//! Acquiring: join this process's line for the key (queue), try the store once under
//! the lock's operation mutex (attempt), sleep until a release or the retry delay
//! (wait) — all within the caller's timeout.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use super::op::OpGuard;
use super::{Lock, Shared};
use crate::armed::Armed;
use crate::holding::Deadline;
use crate::queue::QueueTurn;
use crate::{Acquisition, LockError, LockStore, ReleaseFuture, RetryConfig};

/// A place in this process's line for the key, or the right to one last try.
struct Line {
    _turn: Option<QueueTurn>,
    last_try: bool,
}

/// `f`, cut off at `deadline` (`None` when it passed first).
async fn until<F: Future>(deadline: Option<Instant>, f: F) -> Option<F::Output> {
    match deadline {
        None => Some(f.await),
        Some(t) => tokio::time::timeout_at(t, f).await.ok(),
    }
}

/// `now + d`, saturating far in the future instead of overflowing the clock.
fn later(now: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);
    now.checked_add(d.min(FAR))
        .or_else(|| now.checked_add(Duration::from_secs(24 * 60 * 60)))
        .unwrap_or(now)
}

impl Lock {
    /// Acquire the lock, retrying with the lock's [`RetryConfig`] (by default: forever,
    /// every 250 ms at most, woken early by the store's release notification where it
    /// has one). `Ok(true)` when acquired, `Ok(false)` when attempts or the timeout ran
    /// out.
    ///
    /// **Check the result.** `Ok(false)` means you do *not* hold the lock; writing
    /// `lock.acquire().await?;` and going on runs the critical section unprotected.
    /// [`run`](Self::run) and [`acquire_guard`](Self::acquire_guard) cannot be misused
    /// that way.
    ///
    /// Waiters of one process on the same key queue in arrival order, and only the head
    /// of the queue contends in the store: nobody starves.
    ///
    /// **Errors fail fast.** A store error (`Storage`) ends the call at once, also an
    /// acquire without timeout: the caller decides whether an outage is worth waiting
    /// through (retry the call), rather than a lock silently spinning against a down
    /// server. Nothing is left held by the failed attempt.
    ///
    /// # Cancel safety
    /// Dropping the future never leaves the lock held with nobody able to release it: a
    /// `save` in flight at that moment is undone in the background (owner-checked, and
    /// never undoing a later acquisition of this lock).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
    /// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
    /// let lock = factory.create_lock("report.daily")?;
    /// if lock.acquire().await? {
    ///     // … critical section …
    ///     lock.release().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn acquire(&self) -> Result<bool, LockError> {
        self.acquire_with(self.retry).await
    }

    /// One try, no waiting for the lock. `Ok(false)` if anyone (this owner included)
    /// holds it. The first call on a lazily configured store builds the store first
    /// (bounded by the store's own operation timeout; `acquire_with` with a timeout
    /// bounds it by yours).
    ///
    /// # Cancel safety
    /// As [`acquire`](Self::acquire).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
    /// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
    /// let a = factory.create_lock("k")?;
    /// let b = factory.create_lock("k")?;
    /// assert!(a.acquire_immediately().await?);
    /// assert!(!b.acquire_immediately().await?);
    /// # Ok(()) }
    /// ```
    pub async fn acquire_immediately(&self) -> Result<bool, LockError> {
        // In place when it can be (see `acquire_holding`), without the layers between.
        if let Some(done) = self.try_acquire_in_place() {
            return Ok(done?.is_some());
        }
        self.acquire_with(RetryConfig::immediately()).await
    }

    /// Acquire with explicit retry settings. `attempts` counts `save` calls;
    /// `attempts: Some(0)`, a zero `delay` or a zero `timeout` is `InvalidArgument`.
    ///
    /// The `timeout` bounds the whole call — building a lazily configured store, the
    /// wait in the local queue and every store attempt: when it passes, the call
    /// returns `Ok(false)` and an attempt still in flight is undone in the background.
    ///
    /// # Cancel safety
    /// As [`acquire`](Self::acquire).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
    /// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
    /// use std::time::Duration;
    /// use lock_core::RetryConfig;
    /// let holder = factory.create_lock("k")?;
    /// assert!(holder.acquire().await?);
    /// let waiter = factory.create_lock("k")?;
    /// let retry = RetryConfig::default().timeout(Duration::from_millis(50));
    /// assert!(!waiter.acquire_with(retry).await?, "held by someone else");
    /// # Ok(()) }
    /// ```
    pub async fn acquire_with(&self, retry: RetryConfig) -> Result<bool, LockError> {
        Ok(self.acquire_holding(retry).await?.is_some())
    }

    /// Acquire; `Some(generation)` of the new holding when acquired.
    pub(crate) async fn acquire_holding(
        &self,
        retry: RetryConfig,
    ) -> Result<Option<u64>, LockError> {
        // One try on a store that answers in place: no future at all (see `in_place`).
        if retry.attempts == Some(1) && retry.validate().is_ok() {
            if let Some(done) = self.try_acquire_in_place() {
                return done;
            }
        }
        let span =
            tracing::debug_span!("lock.acquire", store = %self.store_name(), key = %self.key());
        // Boxed: the in-place path above keeps this future small.
        Box::pin(self.acquire_traced(retry).instrument(span)).await
    }

    async fn acquire_traced(&self, retry: RetryConfig) -> Result<Option<u64>, LockError> {
        retry.validate()?;
        let started = Instant::now();
        let deadline = retry.timeout.and_then(|t| started.checked_add(t));
        let Some(store) = until(deadline, self.store()).await else {
            return Ok(self.not_acquired(started, 0));
        };
        let store = store?;
        let Some(line) = self.queue(&retry, started, deadline).await else {
            return Ok(self.not_acquired(started, 0));
        };
        let mut attempts: u32 = 0;
        // Release wakes in a row that were followed by a denial (see `wait`).
        let mut fruitless_wakes: u32 = 0;
        let mut woken_by_release = false;
        loop {
            attempts = attempts.saturating_add(1);
            // Registered before the try (so a release in between is not missed), but
            // only when a wait can follow it: a last try never waits.
            let final_try = line.last_try || retry.attempts.is_some_and(|max| attempts >= max);
            let listener = if final_try {
                None
            } else {
                self.shared.release_listener_on(store.as_ref())
            };
            // A writer that may wait reserves the key meanwhile, for longer than it can
            // take to come back (see `crate::permits`).
            let reserve = (!final_try).then(|| reservation(&retry));
            let Some(outcome) = until(deadline, self.attempt(store, reserve)).await else {
                return Ok(self.not_acquired(started, attempts));
            };
            let outcome = outcome?;
            if let Some(generation) = outcome.generation {
                self.acquired_after(store.name(), &outcome, started, attempts);
                return Ok(Some(generation));
            }
            if final_try || deadline.is_some_and(|t| Instant::now() >= t) {
                return Ok(self.not_acquired(started, attempts));
            }
            if outcome.late {
                continue;
            }
            fruitless_wakes = if woken_by_release {
                fruitless_wakes.saturating_add(1)
            } else {
                0
            };
            woken_by_release = wait(
                &retry,
                outcome.acquisition.holder_expires_in,
                deadline,
                listener,
                fruitless_wakes,
            )
            .await;
        }
    }

    /// Report an acquisition `outcome` after `attempts` tries since `started`.
    pub(super) fn acquired_after(
        &self,
        store: &str,
        outcome: &Attempt,
        started: Instant,
        attempts: u32,
    ) {
        let waited = outcome.answered_at.saturating_duration_since(started);
        crate::observe::acquired(store, waited);
        tracing::debug!(
            store,
            key = %self.key(),
            waited_ms = waited.as_millis() as u64,
            attempts,
            fencing_token = outcome.acquisition.fencing_token,
            "lock acquired"
        );
    }

    pub(super) fn not_acquired(&self, started: Instant, attempts: u32) -> Option<u64> {
        crate::observe::denied(self.store_name());
        tracing::debug!(
            store = %self.store_name(),
            key = %self.key(),
            waited_ms = started.elapsed().as_millis() as u64,
            attempts,
            "lock not acquired"
        );
        None
    }

    /// Join this process's line for the key. `None` when the caller's timeout passed
    /// in line; a line whose attempts budget ran out grants one last try.
    async fn queue(
        &self,
        retry: &RetryConfig,
        started: Instant,
        deadline: Option<Instant>,
    ) -> Option<Line> {
        if retry.attempts == Some(1) {
            return Some(Line {
                _turn: None,
                last_try: true,
            });
        }
        let queue_key = self.shared.queue_key();
        let enter = self.shared.handle.slot().queues.enter(&queue_key);
        let budget_end = retry.attempts_budget().and_then(|b| started.checked_add(b));
        let give_up = match (deadline, budget_end) {
            (Some(d), Some(b)) => Some(d.min(b)),
            (d, b) => d.or(b),
        };
        match until(give_up, enter).await {
            Some(turn) => Some(Line {
                _turn: Some(turn),
                last_try: false,
            }),
            // The caller's timeout passed: nothing more to try.
            None if deadline.is_some_and(|d| Instant::now() >= d) => None,
            // Only the attempts budget ran out: one last try, as polling would have had.
            None => Some(Line {
                _turn: None,
                last_try: true,
            }),
        }
    }

    /// One `try_acquire`, under the operation mutex. If it does not complete (the future
    /// is dropped, or the store errs after possibly saving), the [`PendingSave`] guard
    /// undoes it in the background.
    async fn attempt(
        &self,
        store: &Arc<dyn LockStore>,
        reserve: Option<Duration>,
    ) -> Result<Attempt, LockError> {
        let pending = Armed::new(
            PendingSave {
                op: self.shared.op.lock().await,
                lock: &self.shared,
            },
            PendingSave::undo_in_background,
        );
        let sent_at = Instant::now();
        let acquisition = self
            .shared
            .try_acquire_on(store.as_ref(), reserve)
            .await
            .inspect_err(|error| {
                crate::observe::error(store.name(), self.key(), "acquire", error)
            })?;
        // Still under the operation mutex (the payload holds it) until the end.
        let _op = pending.disarm();
        Ok(match self.answered(acquisition, sent_at) {
            Ok(outcome) => outcome,
            Err(answered_at) => {
                // Owner-checked, still under the mutex.
                let _ = self.shared.delete_on(store.as_ref()).await;
                self.late(store.name(), answered_at)
            }
        })
    }

    /// What the store's answer to a try sent at `sent_at` makes of this lock (call it
    /// under the operation mutex): a new holding, a denial, or `Err(answered_at)` for an
    /// acquisition answered after its TTL ran out (a stalled process, a slow network) —
    /// the store's holding has expired too, so it is no holding to hand out: the caller
    /// removes what is left of it and reports [`late`](Self::late).
    pub(super) fn answered(
        &self,
        acquisition: Acquisition,
        sent_at: Instant,
    ) -> Result<Attempt, Instant> {
        if !acquisition.acquired {
            return Ok(Attempt {
                acquisition,
                generation: None,
                late: false,
                answered_at: sent_at,
            });
        }
        // One clock reading serves the late check, the holding's start and the wait time.
        let answered_at = Instant::now();
        let deadline = Deadline::after(sent_at, self.ttl());
        if matches!(deadline, Deadline::At(t) if answered_at >= t) {
            return Err(answered_at);
        }
        let generation = Some(self.on_acquired(deadline, acquisition.fencing_token, answered_at));
        Ok(Attempt {
            acquisition,
            generation,
            late: false,
            answered_at,
        })
    }

    /// A try whose acquisition came too late (see [`answered`](Self::answered)), once
    /// what was left of it was removed: the caller tries again.
    pub(super) fn late(&self, store: &str, answered_at: Instant) -> Attempt {
        tracing::debug!(
            store,
            key = %self.key(),
            "acquired, but the answer arrived after the TTL ran out: not a holding"
        );
        Attempt {
            acquisition: Acquisition::denied(None),
            generation: None,
            late: true,
            answered_at,
        }
    }

    fn on_acquired(&self, deadline: Deadline, fencing_token: Option<u64>, now: Instant) -> u64 {
        let generation = self.shared.holding.acquired(deadline, fencing_token, now);
        self.start_extender(generation);
        generation
    }
}

pub(super) struct Attempt {
    pub(super) acquisition: Acquisition,
    /// The new holding's generation when acquired.
    pub(super) generation: Option<u64>,
    /// Acquired, but answered after the TTL ran out: try again at once.
    pub(super) late: bool,
    /// When the answer was read (for an acquisition; the send time for a denial).
    pub(super) answered_at: Instant,
}

/// A `try_acquire` whose answer has not arrived (the future was dropped, or the store
/// erred after possibly saving). The store may hold the lock for us without anyone
/// knowing; the undo removes it, owner-checked — unless this owner believes it holds the
/// lock at that moment (a clone's holding: then the save was denied, and the holder
/// releases it). It keeps the operation mutex until done, so no later attempt, release or
/// extension of this lock runs in between, and the check cannot go stale.
struct PendingSave<'a> {
    op: OpGuard<'a>,
    /// The lock, and through its handle the store (built: the attempt used it).
    lock: &'a Arc<Shared>,
}

impl PendingSave<'_> {
    fn undo_in_background(self) {
        let PendingSave { op, lock } = self;
        let Some(store) = lock.handle.built().cloned() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // The mutex stays held, by the task, until the delete is done.
        let op = op.detach(lock.clone());
        runtime.spawn(async move {
            let lock = op.lock();
            if lock.holding.believed_held() {
                return;
            }
            let (store, key) = (store.as_ref(), lock.key());
            match lock.delete_on(store).await {
                Ok(()) => tracing::debug!(
                    store = store.name(),
                    key = %key,
                    "removed a lock saved by an acquire that did not complete"
                ),
                Err(LockError::NotOwned) => {}
                Err(error) => tracing::warn!(
                    store = store.name(),
                    key = %key,
                    %error,
                    "could not clean up after an acquire that did not complete; the lock expires with its TTL"
                ),
            }
        });
    }
}

/// How long a denied writer of a reader-writer lock reserves the key: three retry
/// delays plus a second, so that it renews the reservation before it lapses even when
/// it waits a whole delay between tries (a writer that gave up stops blocking readers
/// within that). Not capped: a cap below the delay would let readers starve the writer.
fn reservation(retry: &RetryConfig) -> Duration {
    retry
        .delay
        .saturating_mul(3)
        .saturating_add(Duration::from_secs(1))
        .min(crate::MAX_TTL)
}

/// After this many release wakes in a row that each led to a denial (another process
/// won, or a store's listener fires spuriously), waiting backs off: 1 ms more per extra
/// wake, up to the retry delay, so a listener that is always ready cannot make a waiter
/// spin against the store.
const FRUITLESS_WAKES_BEFORE_BACKOFF: u32 = 32;

/// Sleep until the retry delay, the holder's expiry or the caller's deadline, whichever
/// comes first — or until the store says the key may have been released (`true`).
async fn wait(
    retry: &RetryConfig,
    holder_expires_in: Option<Duration>,
    deadline: Option<Instant>,
    listener: Option<ReleaseFuture>,
    fruitless_wakes: u32,
) -> bool {
    let now = Instant::now();
    let mut wake = later(now, retry.delay);
    if let Some(left) = holder_expires_in {
        // Never sleep past the holder's expiry.
        wake = wake.min(later(now, left.saturating_add(Duration::from_millis(1))));
    }
    if let Some(t) = deadline {
        wake = wake.min(t);
    }
    let Some(released) = listener else {
        tokio::time::sleep_until(wake).await;
        return false;
    };
    if let Some(extra) = fruitless_wakes.checked_sub(FRUITLESS_WAKES_BEFORE_BACKOFF) {
        let backoff = Duration::from_millis(u64::from(extra) + 1).min(retry.delay);
        tokio::time::sleep_until(wake.min(later(now, backoff))).await;
    }
    tokio::select! {
        _ = released => true,
        _ = tokio::time::sleep_until(wake) => false,
    }
}
