use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::{Notify, OwnedMutexGuard};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::handle::StoreHandle;
use crate::serialized::{unix_ms_in, until_unix_ms};
use crate::unwind::CatchUnwind;
use crate::validate;
use crate::{LockError, LockGuard, LockStore, LostLock, RetryConfig, SerializedLock};

/// An atomic lock (mutex) on one key of a store.
///
/// Create one with [`LockFactory::create_lock`](crate::LockFactory::create_lock) or
/// [`LockManager::create_lock`](crate::LockManager::create_lock). Each `Lock` has its own
/// random owner token; clones of a `Lock` share it (they are the same lock), so a lock can
/// be handed to another task. Locks are not re-entrant: a second `acquire` by the same
/// owner waits like anyone else's.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
/// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
/// let lock = factory.create_lock("order.processing.42")?;
/// if lock.acquire_immediately().await? {
///     // … critical section …
///     lock.release().await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Lock {
    pub(crate) inner: Arc<LockInner>,
}

pub(crate) struct LockInner {
    pub(crate) key: String,
    pub(crate) owner: String,
    pub(crate) ttl: Option<Duration>,
    pub(crate) retry: RetryConfig,
    pub(crate) auto_extend: bool,
    pub(crate) handle: StoreHandle,
    /// Serializes acquires of this lock with the clean-up of a cancelled acquire.
    op: Arc<tokio::sync::Mutex<()>>,
    state: Mutex<State>,
    /// Woken on every state change (acquired, extended, lost, released).
    pub(crate) changed: Notify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// Not held by this owner as far as this process knows.
    NotHeld,
    /// Held without a TTL.
    Never,
    /// Held until this instant (measured from before the acquiring request was sent).
    At(Instant),
}

pub(crate) struct State {
    pub(crate) deadline: Deadline,
    pub(crate) fencing_token: Option<u64>,
    /// Bumped on every acquire and release: identifies one holding of the lock.
    pub(crate) generation: u64,
    pub(crate) lost: bool,
    extender: Option<JoinHandle<()>>,
}

impl Drop for LockInner {
    fn drop(&mut self) {
        if let Some(extender) = self.state_mut().extender.take() {
            extender.abort();
        }
    }
}

impl LockInner {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state_mut(&mut self) -> &mut State {
        self.state.get_mut().unwrap_or_else(|p| p.into_inner())
    }

    fn store_name(&self) -> &str {
        &self.handle.slot().name
    }
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.inner.state();
        f.debug_struct("Lock")
            .field("key", &self.inner.key)
            .field("owner", &"<redacted>")
            .field("ttl", &self.inner.ttl)
            .field("store", &self.inner.store_name())
            .field("deadline", &st.deadline)
            .field("fencing_token", &st.fencing_token)
            .finish()
    }
}

/// A pending `save` whose answer has not arrived. If it is dropped (the acquire was
/// cancelled) or failed, the store may hold the lock for us without anyone knowing;
/// a background owner-checked delete then removes it. The clean-up keeps the lock's
/// operation mutex, so a later acquire of the same lock cannot be undone by it.
struct InFlight {
    op: Option<OwnedMutexGuard<()>>,
    store: Arc<dyn LockStore>,
    /// Key and owner are copied only if a clean-up is needed (not on every acquire).
    lock: Arc<LockInner>,
    armed: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let op = self.op.take();
        let store = self.store.clone();
        let key = self.lock.key.clone();
        let owner = self.lock.owner.clone();
        runtime.spawn(async move {
            let _op = op;
            match store.delete(&key, &owner).await {
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

/// Releases the lock in the background if dropped while armed (a cancelled `run`).
struct ReleaseOnDrop<'a> {
    lock: &'a Lock,
    armed: bool,
}

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.lock.spawn_release();
        }
    }
}

impl Lock {
    pub(crate) fn from_parts(
        key: String,
        owner: String,
        ttl: Option<Duration>,
        retry: RetryConfig,
        auto_extend: bool,
        handle: StoreHandle,
    ) -> Self {
        Lock {
            inner: Arc::new(LockInner {
                key,
                owner,
                ttl,
                retry,
                auto_extend,
                handle,
                op: Arc::new(tokio::sync::Mutex::new(())),
                state: Mutex::new(State {
                    deadline: Deadline::NotHeld,
                    fencing_token: None,
                    generation: 0,
                    lost: false,
                    extender: None,
                }),
                changed: Notify::new(),
            }),
        }
    }

    pub(crate) fn restore_state(&self, deadline: Deadline, fencing_token: Option<u64>) {
        let mut st = self.inner.state();
        st.deadline = deadline;
        st.fencing_token = fencing_token;
        st.generation += 1;
    }

    /// A copy of this lock (same key and owner) with other retry settings for
    /// [`acquire`](Self::acquire) and [`run`](Self::run). Do it before sharing the lock.
    pub fn with_retry(self, retry: RetryConfig) -> Lock {
        self.rebuilt(retry, self.inner.auto_extend)
    }

    /// A copy of this lock (same key and owner) that, once acquired, extends itself every
    /// TTL/3 until released or dropped; a refused extension fires the
    /// [lost-lock signal](Self::lost_signal). No effect on a lock without TTL.
    pub fn with_auto_extend(self, on: bool) -> Lock {
        self.rebuilt(self.inner.retry, on)
    }

    fn rebuilt(&self, retry: RetryConfig, auto_extend: bool) -> Lock {
        let i = &self.inner;
        let lock = Lock::from_parts(
            i.key.clone(),
            i.owner.clone(),
            i.ttl,
            retry,
            auto_extend,
            i.handle.clone(),
        );
        let (deadline, token) = {
            let st = i.state();
            (st.deadline, st.fencing_token)
        };
        lock.restore_state(deadline, token);
        lock
    }

    /// The lock key.
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    /// The owner token: 128 random bits as 32 hex digits.
    ///
    /// It is a capability to release the lock: never log it.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// The TTL used by `acquire` (`None`: never expires).
    pub fn ttl(&self) -> Option<Duration> {
        self.inner.ttl
    }

    /// The retry settings used by `acquire` and `run`.
    pub fn retry(&self) -> RetryConfig {
        self.inner.retry
    }

    /// The fencing token of the current acquisition, on stores that mint them
    /// ([`Capabilities::fencing_tokens`](crate::Capabilities)). It is strictly greater
    /// than every token issued before for this key by the store: pass it to the
    /// resource you protect and have it reject writes carrying a smaller token.
    pub fn fencing_token(&self) -> Option<u64> {
        self.inner.state().fencing_token
    }

    async fn store(&self) -> Result<Arc<dyn LockStore>, LockError> {
        self.inner.handle.get().await.cloned()
    }

    // ---- acquiring ----------------------------------------------------------------

    /// Acquire the lock, retrying with the lock's [`RetryConfig`] (by default: forever,
    /// every 250 ms at most, woken early by the store's release notification where it
    /// has one). `Ok(true)` when acquired, `Ok(false)` when attempts or the timeout ran
    /// out.
    ///
    /// Waiters of one process on the same key queue in arrival order, and only the head
    /// of the queue contends in the store: nobody starves.
    ///
    /// **Cancel safety:** dropping the future never leaves the lock held with nobody
    /// able to release it: a `save` in flight at that moment is undone in the
    /// background (owner-checked).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
    /// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
    /// let lock = factory.create_lock("report.daily")?;
    /// assert!(lock.acquire().await?);
    /// lock.release().await?;
    /// # Ok(()) }
    /// ```
    pub async fn acquire(&self) -> Result<bool, LockError> {
        self.acquire_with(self.inner.retry).await
    }

    /// One try, no waiting.
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
        self.acquire_with(RetryConfig::immediately()).await
    }

    /// Acquire with explicit retry settings. `attempts` counts `save` calls;
    /// `attempts: Some(0)` is `InvalidArgument`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
    /// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
    /// use std::time::Duration;
    /// use lock_core::RetryConfig;
    /// let holder = factory.create_lock("k")?;
    /// holder.acquire().await?;
    /// let waiter = factory.create_lock("k")?;
    /// let retry = RetryConfig::default().timeout(Duration::from_millis(50));
    /// assert!(!waiter.acquire_with(retry).await?);
    /// # Ok(()) }
    /// ```
    pub async fn acquire_with(&self, retry: RetryConfig) -> Result<bool, LockError> {
        retry.validate()?;
        let started = Instant::now();
        let store = self.store().await?;
        let key = self.inner.key.as_str();
        let op = self.inner.op.clone().lock_owned().await;

        // Join this process's line for the key, within the time the caller allows.
        let single_try = retry.attempts == Some(1);
        let mut turn = None;
        let mut last_try = single_try;
        if !single_try {
            let enter = self.inner.handle.slot().queues.enter(key);
            match retry.time_budget() {
                None => turn = Some(enter.await),
                Some(budget) => match tokio::time::timeout_at(started + budget, enter).await {
                    Ok(t) => turn = Some(t),
                    Err(_) => last_try = true,
                },
            }
        }
        let timeout_at = retry.timeout.map(|t| started + t);

        let mut in_flight = InFlight {
            op: Some(op),
            store: store.clone(),
            lock: self.inner.clone(),
            armed: false,
        };
        let mut attempts: u32 = 0;
        loop {
            attempts += 1;
            // Registered before the try (so a release in between is not missed), but
            // only when a wait can follow it: a last try never waits.
            let final_try = last_try || retry.attempts.is_some_and(|max| attempts >= max);
            let listener = if final_try {
                None
            } else {
                store.release_listener(key)
            };
            let sent_at = Instant::now();
            in_flight.armed = true;
            let outcome = match store
                .try_acquire(key, &self.inner.owner, self.inner.ttl)
                .await
            {
                Ok(outcome) => outcome,
                Err(error) => {
                    tracing::warn!(store = store.name(), key = %key, %error, "acquire failed");
                    return Err(error);
                }
            };
            in_flight.armed = false;
            if outcome.acquired {
                drop(turn);
                self.on_acquired(sent_at, outcome.fencing_token, &store);
                tracing::debug!(
                    store = store.name(),
                    key = %key,
                    waited_ms = started.elapsed().as_millis() as u64,
                    attempts,
                    fencing_token = outcome.fencing_token,
                    "lock acquired"
                );
                return Ok(true);
            }
            let now = Instant::now();
            let out_of_attempts = retry.attempts.is_some_and(|max| attempts >= max);
            if last_try || out_of_attempts || timeout_at.is_some_and(|t| now >= t) {
                tracing::debug!(
                    store = store.name(),
                    key = %key,
                    waited_ms = started.elapsed().as_millis() as u64,
                    attempts,
                    "lock not acquired"
                );
                return Ok(false);
            }
            let mut wait = retry.delay;
            if let Some(left) = outcome.holder_expires_in {
                // Never sleep past the holder's expiry.
                wait = wait.min(left + Duration::from_millis(1));
            }
            if let Some(t) = timeout_at {
                wait = wait.min(t - now);
            }
            match listener {
                Some(released) => {
                    tokio::select! {
                        _ = released => {}
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                None => tokio::time::sleep(wait).await,
            }
        }
    }

    fn on_acquired(
        &self,
        sent_at: Instant,
        fencing_token: Option<u64>,
        store: &Arc<dyn LockStore>,
    ) {
        let mut st = self.inner.state();
        st.deadline = match self.inner.ttl {
            Some(ttl) => Deadline::At(sent_at + ttl),
            None => Deadline::Never,
        };
        st.fencing_token = fencing_token;
        st.generation += 1;
        st.lost = false;
        if let Some(old) = st.extender.take() {
            old.abort();
        }
        if let (true, Some(ttl)) = (self.inner.auto_extend, self.inner.ttl) {
            st.extender = Some(crate::extend::spawn_extender(
                Arc::downgrade(&self.inner),
                st.generation,
                ttl,
                store.clone(),
            ));
        }
        drop(st);
        self.inner.changed.notify_waiters();
    }

    /// Stop auto-extension and wait until no extension is in flight.
    async fn stop_extender(&self) {
        let extender = self.inner.state().extender.take();
        if let Some(extender) = extender {
            extender.abort();
            let _ = extender.await;
        }
    }

    fn on_released(&self) {
        let mut st = self.inner.state();
        st.deadline = Deadline::NotHeld;
        st.generation += 1;
        drop(st);
        self.inner.changed.notify_waiters();
    }

    pub(crate) fn mark_lost(inner: &LockInner, generation: u64, why: &str) {
        let mut st = inner.state();
        if st.generation != generation || st.lost {
            return;
        }
        st.lost = true;
        drop(st);
        tracing::warn!(store = inner.store_name(), key = %inner.key, reason = why, "lock lost");
        inner.changed.notify_waiters();
    }

    // ---- releasing --------------------------------------------------------------

    /// Release the lock. `Err(NotOwned)` unless this owner holds it (also after it
    /// expired and someone else took it).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
    /// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
    /// let lock = factory.create_lock("k")?;
    /// assert!(lock.release().await.unwrap_err().is_not_owned());
    /// lock.acquire().await?;
    /// lock.release().await?;
    /// # Ok(()) }
    /// ```
    pub async fn release(&self) -> Result<(), LockError> {
        let store = self.store().await?;
        self.stop_extender().await;
        let result = store.delete(&self.inner.key, &self.inner.owner).await;
        match &result {
            Ok(()) => {
                self.on_released();
                tracing::debug!(store = store.name(), key = %self.inner.key, "lock released");
            }
            Err(LockError::NotOwned) => self.on_released(),
            Err(error) => {
                tracing::warn!(store = store.name(), key = %self.inner.key, %error, "release failed")
            }
        }
        result
    }

    /// Release in the background (used on drop); errors are logged.
    pub(crate) fn spawn_release(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                key = %self.inner.key,
                "no tokio runtime to release the lock on drop; it expires with its TTL"
            );
            return;
        };
        let lock = self.clone();
        runtime.spawn(async move {
            let _ = lock.release().await;
        });
    }

    /// Release the lock whoever holds it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
    /// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
    /// let holder = factory.create_lock("k")?;
    /// holder.acquire().await?;
    /// factory.create_lock("k")?.force_release().await?;
    /// assert!(!holder.is_locked().await?);
    /// # Ok(()) }
    /// ```
    pub async fn force_release(&self) -> Result<(), LockError> {
        let store = self.store().await?;
        self.stop_extender().await;
        let result = store.force_delete(&self.inner.key).await;
        match &result {
            Ok(()) => {
                self.on_released();
                tracing::debug!(store = store.name(), key = %self.inner.key, "lock force released");
            }
            Err(error) => {
                tracing::warn!(store = store.name(), key = %self.inner.key, %error, "force release failed")
            }
        }
        result
    }

    // ---- inspecting ---------------------------------------------------------------

    /// Whether anyone (not only this owner) holds the lock, asked of the store.
    pub async fn is_locked(&self) -> Result<bool, LockError> {
        let store = self.store().await?;
        store.exists(&self.inner.key).await.inspect_err(|error| {
            tracing::warn!(store = store.name(), key = %self.inner.key, %error, "exists failed")
        })
    }

    /// Whether this owner's hold has passed its deadline, by this process's monotonic
    /// clock (measured from before the acquiring request was sent, so it errs early).
    /// `false` for a lock without TTL or not held.
    pub fn is_expired(&self) -> bool {
        match self.inner.state().deadline {
            Deadline::At(t) => Instant::now() >= t,
            Deadline::Never | Deadline::NotHeld => false,
        }
    }

    /// Time left before this owner's hold expires (local view, never negative);
    /// `None` for a lock without TTL or not held.
    pub fn remaining_time(&self) -> Option<Duration> {
        match self.inner.state().deadline {
            Deadline::At(t) => Some(t.saturating_duration_since(Instant::now())),
            Deadline::Never | Deadline::NotHeld => None,
        }
    }

    // ---- extending ----------------------------------------------------------------

    /// Reset the expiry to now + `duration` (default: the lock's TTL).
    /// `InvalidArgument` if neither exists; `NotOwned` if this owner does not hold it
    /// (which also fires the lost-lock signal).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
    /// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
    /// use std::time::Duration;
    /// let lock = factory.create_lock_with_ttl("k", Some(Duration::from_secs(1)))?;
    /// lock.acquire().await?;
    /// lock.extend(Some(Duration::from_secs(60))).await?;
    /// assert!(lock.remaining_time().unwrap() > Duration::from_secs(50));
    /// # Ok(()) }
    /// ```
    pub async fn extend(&self, duration: Option<Duration>) -> Result<(), LockError> {
        let duration = duration.or(self.inner.ttl).ok_or_else(|| {
            LockError::invalid("extend needs a duration: this lock has no TTL to default to")
        })?;
        validate::duration("extension", duration)?;
        let store = self.store().await?;
        let generation = self.inner.state().generation;
        let sent_at = Instant::now();
        match store
            .extend(&self.inner.key, &self.inner.owner, duration)
            .await
        {
            Ok(()) => {
                self.on_extended(generation, sent_at + duration);
                tracing::debug!(store = store.name(), key = %self.inner.key, extended_ms = duration.as_millis() as u64, "lock extended");
                Ok(())
            }
            Err(LockError::NotOwned) => {
                Lock::mark_lost(&self.inner, generation, "extension refused");
                Err(LockError::NotOwned)
            }
            Err(error) => {
                tracing::warn!(store = store.name(), key = %self.inner.key, %error, "extend failed");
                Err(error)
            }
        }
    }

    pub(crate) fn on_extended(&self, generation: u64, deadline: Instant) {
        extended(&self.inner, generation, deadline);
    }

    /// A signal that fires when this holding of the lock is lost: an extension was
    /// refused, or the local deadline passed without a successful extension. It never
    /// fires after a normal release. Take it after acquiring.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
    /// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
    /// use std::time::Duration;
    /// let lock = factory.create_lock_with_ttl("k", Some(Duration::from_millis(20)))?;
    /// lock.acquire().await?;
    /// let lost = lock.lost_signal();
    /// tokio::select! {
    ///     _ = lost.wait() => { /* stop writing: the lock expired */ }
    ///     _ = tokio::time::sleep(Duration::from_secs(5)) => unreachable!(),
    /// }
    /// assert!(lost.is_lost());
    /// # Ok(()) }
    /// ```
    pub fn lost_signal(&self) -> LostLock {
        let generation = self.inner.state().generation;
        LostLock::new(self.inner.clone(), generation)
    }

    // ---- guards and closures ----------------------------------------------------

    /// Acquire (with the lock's retry settings) and return a guard that releases the
    /// lock when dropped, or `None` when not acquired. Prefer
    /// [`LockGuard::release`] to observe release errors.
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
        self.acquire_guard_with(self.inner.retry).await
    }

    /// [`acquire_guard`](Self::acquire_guard) with explicit retry settings.
    pub async fn acquire_guard_with(
        &self,
        retry: RetryConfig,
    ) -> Result<Option<LockGuard>, LockError> {
        Ok(self
            .acquire_with(retry)
            .await?
            .then(|| LockGuard::new(self.clone())))
    }

    /// Acquire (with the lock's retry settings), run `f`, release. `Ok(Some(value))`,
    /// or `Ok(None)` when the lock was not acquired.
    ///
    /// The lock is released when `f` completes, when it panics (the panic is resumed
    /// after the release) and when the `run` future is dropped (in the background). A
    /// failed release after `f` is returned as the error.
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
        self.run_inner(self.inner.retry, |_| f()).await
    }

    /// [`run`](Self::run) with one acquire try.
    pub async fn run_immediately<F, Fut, T>(&self, f: F) -> Result<Option<T>, LockError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        self.run_inner(RetryConfig::immediately(), |_| f()).await
    }

    /// [`run`](Self::run) with explicit retry settings.
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
        self.run_inner(self.inner.retry, f).await
    }

    async fn run_inner<F, Fut, T>(&self, retry: RetryConfig, f: F) -> Result<Option<T>, LockError>
    where
        F: FnOnce(LostLock) -> Fut,
        Fut: Future<Output = T>,
    {
        if !self.acquire_with(retry).await? {
            return Ok(None);
        }
        let mut guard = ReleaseOnDrop {
            lock: self,
            armed: true,
        };
        let outcome = CatchUnwind::new(f(self.lost_signal())).await;
        let released = self.release().await;
        guard.armed = false;
        match outcome {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(value) => released.map(|()| Some(value)),
        }
    }

    // ---- moving between processes ---------------------------------------------------

    /// The lock as data, to be restored elsewhere with
    /// [`LockFactory::restore_lock`](crate::LockFactory::restore_lock).
    ///
    /// **The result is a capability**: whoever has it can release the lock. Treat it
    /// like a secret.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
    /// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
    /// let lock = factory.create_lock("order.processing.7")?;
    /// lock.acquire().await?;
    /// let json = lock.serialize().to_json(); // send it through your queue
    ///
    /// let restored = factory.restore_lock(lock_core::SerializedLock::from_json(&json)?)?;
    /// restored.release().await?;
    /// # Ok(()) }
    /// ```
    pub fn serialize(&self) -> SerializedLock {
        let st = self.inner.state();
        let expiration = match st.deadline {
            Deadline::At(t) => Some(unix_ms_in(t.saturating_duration_since(Instant::now()))),
            Deadline::Never | Deadline::NotHeld => None,
        };
        SerializedLock {
            key: self.inner.key.clone(),
            owner: self.inner.owner.clone(),
            ttl: self
                .inner
                .ttl
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            expiration,
            fencing_token: st.fencing_token,
        }
    }

    pub(crate) fn deadline_from_serialized(s: &SerializedLock) -> Deadline {
        match (s.ttl, s.expiration) {
            (None, _) => Deadline::Never,
            // Never later than a full TTL from now, whatever the payload claims.
            (Some(ttl), Some(at)) => {
                Deadline::At(Instant::now() + until_unix_ms(at).min(Duration::from_millis(ttl)))
            }
            (Some(_), None) => Deadline::NotHeld,
        }
    }
}

pub(crate) fn extended(inner: &LockInner, generation: u64, deadline: Instant) {
    let mut st = inner.state();
    if st.generation != generation {
        return;
    }
    // The store accepted the extension: this owner holds the lock until `deadline`,
    // also when it was held without a TTL (the store now expires it) or restored
    // without a known expiration.
    st.deadline = Deadline::At(deadline);
    drop(st);
    inner.changed.notify_waiters();
}

pub(crate) type WeakInner = Weak<LockInner>;
