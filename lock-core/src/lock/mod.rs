//! [`Lock`]: one key of one store, held by one owner. Each concern has its own file:
//! `acquire` (queue, attempt, wait), `release` (explicit and background releases bound
//! to one holding), `extend` (manual and automatic extension), `run` (closures).
//! The holding state lives in [`crate::holding`].

mod acquire;
mod extend;
mod in_place;
mod op;
mod release;
mod run;
mod target;

pub(crate) use target::Target;

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use crate::handle::StoreHandle;
use crate::holding::{Deadline, Holding};
use crate::{LockError, LockStore, LostLock, RetryConfig};

/// An atomic lock (mutex) on one key of a store.
///
/// Create one with [`LockFactory::create_lock`](crate::LockFactory::create_lock) or
/// [`LockManager::create_lock`](crate::LockManager::create_lock). Each `Lock` has its own
/// random owner token; clones of a `Lock` share it and share one holding state (they are
/// the same lock), so a lock can be handed to another task. Locks are not re-entrant: a
/// second `acquire` by the same owner waits like anyone else's.
///
/// The forms that cannot be misused come first: [`run`](Self::run) releases for you,
/// and [`acquire_guard`](Self::acquire_guard) returns `None` when the lock was not
/// acquired, so the critical section cannot run unprotected by mistake.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
/// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
/// let lock = factory.create_lock("order.processing.42")?;
/// let outcome = lock.run_immediately(|| async { "processed" }).await?;
/// match outcome {
///     Some(done) => assert_eq!(done, "processed"),
///     None => { /* someone else is processing this order */ }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Lock {
    shared: Arc<Shared>,
    retry: RetryConfig,
    auto_extend: bool,
}

/// What every clone of one lock shares.
struct Shared {
    /// The key, then the owner, in one allocation (a cycle reads both: one place in
    /// memory rather than two); `key_len` bytes of key.
    text: Box<str>,
    key_len: usize,
    ttl: Option<Duration>,
    handle: StoreHandle,
    /// One store call that changes this owner's holding at a time (acquire attempts,
    /// releases, extensions, and their background clean-ups), across all clones. It is
    /// held for one store call, never across a wait, so a clone's call waits at most one
    /// store round trip. It is what makes a background clean-up unable to undo a later
    /// acquisition: the clean-up checks the holding's generation under it.
    op: op::OpMutex,
    holding: Arc<Holding>,
    /// Serialized at least once: registered for restores in this process.
    handed_over: AtomicBool,
    target: Target,
}

impl Shared {
    fn key(&self) -> &str {
        &self.text[..self.key_len]
    }

    fn owner(&self) -> &str {
        &self.text[self.key_len..]
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last clone is gone: nobody can release or use the lock any more, so stop
        // extending it; it expires with its TTL.
        self.holding.stop_extender();
        if *self.handed_over.get_mut() {
            self.handle.forget(self.key(), self.owner());
        }
    }
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock")
            .field("key", &self.shared.key())
            .field("owner", &"<redacted>")
            .field("ttl", &self.shared.ttl)
            .field("store", &self.store_name())
            .field("deadline", &self.shared.holding.deadline())
            .field("fencing_token", &self.fencing_token())
            .finish()
    }
}

impl Lock {
    pub(crate) fn new(
        key: String,
        owner: String,
        ttl: Option<Duration>,
        retry: RetryConfig,
        auto_extend: bool,
        handle: StoreHandle,
        target: Target,
    ) -> Self {
        Lock {
            shared: Arc::new(Shared {
                key_len: key.len(),
                text: (key + &owner).into_boxed_str(),
                ttl,
                handle,
                op: op::OpMutex::new(),
                holding: Arc::new(Holding::default()),
                handed_over: AtomicBool::new(false),
                target,
            }),
            retry,
            auto_extend,
        }
    }

    /// This process's own lock with `key` and `owner`, if it was serialized and is still
    /// alive: restoring it gives back the same lock, with these settings.
    pub(crate) fn handed_over(
        handle: &StoreHandle,
        key: &str,
        owner: &str,
        retry: RetryConfig,
        auto_extend: bool,
    ) -> Option<Lock> {
        let shared = handle.handed_over(key, owner)?.downcast::<Shared>().ok()?;
        Some(Lock {
            shared,
            retry,
            auto_extend,
        })
    }

    /// Register this lock for restores in this process (done by `serialize`).
    pub(crate) fn hand_over(&self) {
        if !self.shared.handed_over.swap(true, Ordering::SeqCst) {
            let weak: Weak<dyn Any + Send + Sync> = Arc::downgrade(&self.shared) as _;
            self.shared.handle.hand_over(self.key(), self.owner(), weak);
        }
    }

    /// Restore a holding (from a serialized lock), auto-extended if this lock value
    /// auto-extends.
    pub(crate) fn restore(&self, deadline: Deadline, fencing_token: Option<u64>) {
        let generation = self.shared.holding.restore(deadline, fencing_token);
        self.start_extender(generation);
    }

    /// This lock with other retry settings for [`acquire`](Self::acquire) and
    /// [`run`](Self::run). It is the same lock: it shares the owner and the holding with
    /// every clone (acquiring through one is holding through all).
    pub fn with_retry(self, retry: RetryConfig) -> Lock {
        Lock { retry, ..self }
    }

    /// This lock, with auto-extension on or off for its next acquisitions: once acquired,
    /// it extends itself whenever less than two thirds of its TTL is left, until released
    /// or until every clone is dropped; a refused extension fires the
    /// [lost-lock signal](Self::lost_signal). A longer manual [`extend`](Self::extend)
    /// is never shortened by it. No effect on a lock without TTL. It is the same lock: it
    /// shares the owner and the holding with every clone.
    pub fn with_auto_extend(self, on: bool) -> Lock {
        Lock {
            auto_extend: on,
            ..self
        }
    }

    /// The lock key.
    pub fn key(&self) -> &str {
        self.shared.key()
    }

    /// The owner token: 128 random bits as 32 hex digits.
    ///
    /// It is a capability to release the lock: never log it.
    pub fn owner(&self) -> &str {
        self.shared.owner()
    }

    /// The TTL used by `acquire` (`None`: never expires).
    pub fn ttl(&self) -> Option<Duration> {
        self.shared.ttl
    }

    /// The retry settings used by `acquire` and `run`.
    pub fn retry(&self) -> RetryConfig {
        self.retry
    }

    /// Whether this lock value extends itself once acquired (see
    /// [`with_auto_extend`](Self::with_auto_extend)).
    pub fn auto_extends(&self) -> bool {
        self.auto_extend
    }

    /// The fencing token of the current acquisition, on stores that mint them
    /// ([`Capabilities::fencing_tokens`](crate::Capabilities)). It is strictly greater
    /// than every token issued before for this key by the store: pass it to the
    /// resource you protect and have it reject writes carrying a smaller token.
    pub fn fencing_token(&self) -> Option<u64> {
        self.shared.holding.fencing_token()
    }

    fn store_name(&self) -> &str {
        &self.shared.handle.slot().name
    }

    /// The store, built on first use. Borrowed from the lock's handle: the hot path
    /// touches no reference count shared by every lock of the store.
    async fn store(&self) -> Result<&Arc<dyn LockStore>, LockError> {
        if let Some(store) = self.shared.handle.built() {
            return Ok(store);
        }
        self.shared.handle.get().await?;
        self.shared
            .handle
            .built()
            .ok_or_else(|| LockError::storage_msg("lock store is not configured"))
    }

    // ---- inspecting ---------------------------------------------------------------

    /// Whether anyone (not only this owner) holds the lock, asked of the store.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn is_locked(&self) -> Result<bool, LockError> {
        let store = self.store().await?;
        self.shared
            .exists_on(store.as_ref())
            .await
            .inspect_err(|error| crate::observe::error(store.name(), self.key(), "exists", error))
    }

    /// Whether this owner's hold has passed its deadline, by this process's monotonic
    /// clock (measured from before the acquiring request was sent, so it errs early).
    /// `false` for a lock without TTL or not held.
    pub fn is_expired(&self) -> bool {
        match self.shared.holding.deadline() {
            Deadline::At(t) => Instant::now() >= t,
            Deadline::Never | Deadline::NotHeld => false,
        }
    }

    /// Time left before this owner's hold expires (local view, never negative);
    /// `None` for a lock without TTL or not held.
    pub fn remaining_time(&self) -> Option<Duration> {
        match self.shared.holding.deadline() {
            Deadline::At(t) => Some(t.saturating_duration_since(Instant::now())),
            Deadline::Never | Deadline::NotHeld => None,
        }
    }

    /// A signal that fires when this holding of the lock is lost: an extension was
    /// refused, or the local deadline passed without a successful extension. It never
    /// fires after a normal release, nor for a later holding.
    ///
    /// Taken while the lock is held, it follows that holding; taken while it is not
    /// held (also once a holding is lost), it follows the next one. To watch one
    /// holding whatever happens, use the signal [`run_with_signal`](Self::run_with_signal)
    /// hands its closure, or [`LockGuard::lost_signal`](crate::LockGuard::lost_signal).
    /// It does not keep the lock alive (see [`LostLock`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
    /// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
    /// use std::time::Duration;
    /// let lock = factory.create_lock_with_ttl("k", Some(Duration::from_millis(20)))?;
    /// let lost = lock.lost_signal(); // follows the next holding
    /// assert!(lock.acquire().await?, "free, so acquired");
    /// tokio::select! {
    ///     _ = lost.wait() => { /* stop writing: the lock expired */ }
    ///     _ = tokio::time::sleep(Duration::from_secs(5)) => unreachable!(),
    /// }
    /// assert!(lost.is_lost());
    /// # Ok(()) }
    /// ```
    pub fn lost_signal(&self) -> LostLock {
        LostLock::new(self.shared.holding.clone())
    }

    /// The lost-lock signal of holding `generation` (see [`LostLock::of`]).
    pub(crate) fn holding_signal(&self, generation: u64) -> LostLock {
        LostLock::of(self.shared.holding.clone(), generation)
    }

    pub(crate) fn holding_deadline(&self) -> Deadline {
        self.shared.holding.deadline()
    }
}
