//! [`Semaphore`]: at most `n` holders of one key at a time, across processes.

use std::ops::Deref;
use std::time::Duration;

use crate::lock::Target;
use crate::permits::MAX_PERMITS;
use crate::{Lock, LockError, LockFactory, LockManager, RetryConfig, SerializedLock};

/// A counting semaphore: at most [`permits`](Self::permits) holders of its key at a
/// time, across every process sharing the store ("at most 3 imports run at once").
///
/// Each `Semaphore` is one would-be holder (one owner, like a [`Lock`]): it holds one
/// permit or none. It dereferences to a [`Lock`], so the verbs are the same, with the
/// same guarantees — `acquire`, `acquire_immediately`, `acquire_with`, `run`,
/// `run_with_signal`, `acquire_guard`, `release`, `extend`, auto-extension and the
/// lost-lock signal, fencing tokens, fair event-driven waiting, `serialize` — and
/// [`force_release`](Lock::force_release) frees *every* permit of the key. Create one
/// per task that may hold a permit; clones share one holding, as a lock's do.
///
/// Every user of a key must give it the same number of permits. The store must offer
/// the [`PermitStore`](crate::PermitStore) capability (all bundled stores do);
/// otherwise the first call answers `InvalidArgument`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
/// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
/// let a = factory.create_semaphore("imports", 2)?;
/// let b = factory.create_semaphore("imports", 2)?;
/// let c = factory.create_semaphore("imports", 2)?;
/// assert!(a.acquire_immediately().await?);
/// assert!(b.acquire_immediately().await?);
/// assert!(!c.acquire_immediately().await?, "both permits are taken");
/// assert_eq!(c.available().await?, 0);
/// a.release().await?;
/// assert_eq!(c.run(|| async { "imported" }).await?, Some("imported"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Semaphore {
    lock: Lock,
    permits: u32,
}

impl Semaphore {
    pub(crate) fn new(lock: Lock, permits: u32) -> Self {
        Semaphore { lock, permits }
    }

    /// The number of permits of the key.
    pub fn permits(&self) -> u32 {
        self.permits
    }

    /// Permits free now (a snapshot: it may change at once).
    pub async fn available(&self) -> Result<u32, LockError> {
        let usage = self.lock.permit_usage().await?;
        Ok(self.permits.saturating_sub(usage.used))
    }

    /// Holders now (a snapshot).
    pub async fn holders(&self) -> Result<u32, LockError> {
        Ok(self.lock.permit_usage().await?.holders)
    }

    /// The same semaphore with other retry settings.
    pub fn with_retry(self, retry: RetryConfig) -> Self {
        Semaphore {
            lock: self.lock.with_retry(retry),
            ..self
        }
    }

    /// The same semaphore with auto-extension on or off.
    pub fn with_auto_extend(self, on: bool) -> Self {
        Semaphore {
            lock: self.lock.with_auto_extend(on),
            ..self
        }
    }

    /// The underlying [`Lock`] (what [`Deref`] gives too).
    pub fn as_lock(&self) -> &Lock {
        &self.lock
    }
}

impl Deref for Semaphore {
    type Target = Lock;
    fn deref(&self) -> &Lock {
        &self.lock
    }
}

fn check_permits(permits: u32) -> Result<(), LockError> {
    if permits == 0 || permits > MAX_PERMITS {
        return Err(LockError::invalid(format!(
            "a semaphore needs 1 ..= {MAX_PERMITS} permits, not {permits}"
        )));
    }
    Ok(())
}

impl LockFactory {
    /// A semaphore of `permits` on `key`, with the default TTL and a fresh owner.
    /// `InvalidArgument` for 0 permits or more than [`MAX_PERMITS`], and for keys as
    /// [`create_lock`](Self::create_lock). Semaphore keys are a namespace of their own:
    /// a lock on the same key is unrelated.
    pub fn create_semaphore(
        &self,
        key: impl Into<String>,
        permits: u32,
    ) -> Result<Semaphore, LockError> {
        self.create_semaphore_with_ttl(key, permits, self.options().default_ttl)
    }

    /// A semaphore with this TTL per holding (`None`: held until released).
    pub fn create_semaphore_with_ttl(
        &self,
        key: impl Into<String>,
        permits: u32,
        ttl: Option<Duration>,
    ) -> Result<Semaphore, LockError> {
        check_permits(permits)?;
        let target = Target::Permits {
            limit: permits,
            weight: 1,
            reserve: false,
        };
        Ok(Semaphore::new(
            self.new_lock(key.into(), ttl, target)?,
            permits,
        ))
    }

    /// A semaphore from [`Lock::serialize`] of a semaphore's holding (see
    /// [`restore_lock`](Self::restore_lock)). `InvalidArgument` if it is not one.
    pub fn restore_semaphore(&self, serialized: SerializedLock) -> Result<Semaphore, LockError> {
        let Target::Permits {
            limit: limit @ 1..=MAX_PERMITS,
            weight: 1,
            reserve: false,
        } = serialized.target()
        else {
            return Err(LockError::invalid(
                "this serialized holding is not a semaphore's",
            ));
        };
        Ok(Semaphore::new(self.restore_lock(serialized)?, limit))
    }
}

impl LockManager {
    /// A semaphore on the default store (see [`LockFactory::create_semaphore`]).
    pub fn create_semaphore(
        &self,
        key: impl Into<String>,
        permits: u32,
    ) -> Result<Semaphore, LockError> {
        self.default_store().create_semaphore(key, permits)
    }
}
