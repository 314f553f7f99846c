//! [`RwLock`]: many readers or one writer, across processes.

use std::time::Duration;

use crate::lock::Target;
use crate::permits::RW_LIMIT;
use crate::{Lock, LockError, LockFactory, LockManager, RetryConfig};

/// A reader-writer lock: many holders for reading, or one for writing, across every
/// process sharing the store ("readers of a configuration, and a rare writer").
///
/// [`read`](Self::read) and [`write`](Self::write) are two [`Lock`]s on the key, each
/// with its own owner, so every verb and guarantee of a lock applies to each: `run`,
/// guards, TTL and auto-extension with the lost-lock signal, fencing tokens (one
/// counter per key, shared by readers and writers), fair event-driven waiting,
/// `serialize`. A `RwLock` is one would-be reader and one would-be writer: create one
/// per task. `force_release` (on either) frees the key of every reader and writer.
///
/// **Writers are not starved.** A writer that is refused and will wait *reserves* the
/// key: from then on no new holder, reader or writer, gets in until that writer has
/// acquired (the readers already in finish first) or its reservation lapses (three
/// retry delays plus a second without a renewed try: a writer that gave up or died
/// stops blocking readers within that). Readers that find a writer holding or waiting
/// wait for it. `write().acquire_immediately()` never reserves (it will not wait).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
/// # let factory = lock_core::LockFactory::new(lock_core::testing::TestStore::default());
/// let (a, b) = (factory.create_rw_lock("config")?, factory.create_rw_lock("config")?);
/// assert!(a.read().acquire_immediately().await?);
/// assert!(b.read().acquire_immediately().await?, "readers share");
/// assert!(!b.write().acquire_immediately().await?, "a writer waits for the readers");
/// a.read().release().await?;
/// b.read().release().await?;
/// let written = b.write().run(|| async { "v2" }).await?;
/// assert_eq!(written, Some("v2"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct RwLock {
    read: Lock,
    write: Lock,
}

impl RwLock {
    /// Holdings for reading: shared with other readers, excluded by a writer.
    pub fn read(&self) -> &Lock {
        &self.read
    }

    /// Holdings for writing: exclusive.
    pub fn write(&self) -> &Lock {
        &self.write
    }

    /// The key.
    pub fn key(&self) -> &str {
        self.read.key()
    }

    /// Readers holding now (a snapshot).
    pub async fn readers(&self) -> Result<u32, LockError> {
        let usage = self.read.permit_usage().await?;
        Ok(if usage.used >= RW_LIMIT {
            0
        } else {
            usage.holders
        })
    }

    /// Whether a writer holds the key now (a snapshot).
    pub async fn is_write_locked(&self) -> Result<bool, LockError> {
        Ok(self.read.permit_usage().await?.used >= RW_LIMIT)
    }

    /// The same lock with other retry settings (for both kinds of holding).
    pub fn with_retry(self, retry: RetryConfig) -> Self {
        RwLock {
            read: self.read.with_retry(retry),
            write: self.write.with_retry(retry),
        }
    }

    /// The same lock with auto-extension on or off (for both kinds of holding).
    pub fn with_auto_extend(self, on: bool) -> Self {
        RwLock {
            read: self.read.with_auto_extend(on),
            write: self.write.with_auto_extend(on),
        }
    }
}

impl LockFactory {
    /// A reader-writer lock on `key` with the default TTL. Its keys are the
    /// semaphores' namespace (a semaphore on the same key would share its holders: use
    /// distinct keys); a mutex on the same key is unrelated.
    pub fn create_rw_lock(&self, key: impl Into<String>) -> Result<RwLock, LockError> {
        self.create_rw_lock_with_ttl(key, self.options().default_ttl)
    }

    /// A reader-writer lock with this TTL per holding (`None`: held until released).
    pub fn create_rw_lock_with_ttl(
        &self,
        key: impl Into<String>,
        ttl: Option<Duration>,
    ) -> Result<RwLock, LockError> {
        let key = key.into();
        let read = Target::Permits {
            limit: RW_LIMIT,
            weight: 1,
            reserve: false,
        };
        let write = Target::Permits {
            limit: RW_LIMIT,
            weight: RW_LIMIT,
            reserve: true,
        };
        Ok(RwLock {
            read: self.new_lock(key.clone(), ttl, read)?,
            write: self.new_lock(key, ttl, write)?,
        })
    }
}

impl LockManager {
    /// A reader-writer lock on the default store (see [`LockFactory::create_rw_lock`]).
    pub fn create_rw_lock(&self, key: impl Into<String>) -> Result<RwLock, LockError> {
        self.default_store().create_rw_lock(key)
    }
}
