//! What a store is measured against: its raw commands, without the library.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

use lock_core::{LockError, async_trait};

/// The raw commands a store needs to take and give back a lock, without the library:
/// what the store is measured against.
///
/// Send them through the store's own connection (its client or pool), so that the ratio
/// shows what the store and `lock-core` add, not a difference between connections.
///
/// Implementations for this workspace: [`MutexBaseline`] (memory); the bench front end
/// (`examples/src/bin/bench/`) has the Redis (`SET NX PX` + owner-checked delete
/// script, on the store's fred client) and SQL (the store's acquire and release
/// statements, on the store's pool) ones.
#[async_trait]
pub trait Baseline: Send + Sync + 'static {
    /// What the baseline does, for the report (e.g. `"SET NX PX + EVALSHA delete"`).
    fn describe(&self) -> String;

    /// Take `key` for `owner` with the raw commands and give it back. `Ok(false)` when
    /// `key` was held by someone else.
    async fn cycle(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, LockError>;

    /// One raw command: the network round trip (or, in process, the synchronisation)
    /// every lock operation costs at least. `key` is not held by anyone.
    async fn round_trip(&self, key: &str) -> Result<(), LockError>;
}

/// The in-process baseline: `tokio::sync::Mutex` `try_lock` and unlock.
///
/// A key picks one of 4 096 mutexes by its hash (std's `RandomState`, as the memory
/// store's map), so the baseline pays for finding a key's lock, like any keyed lock.
pub struct MutexBaseline {
    hasher: RandomState,
    stripes: Box<[tokio::sync::Mutex<()>]>,
}

impl Default for MutexBaseline {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MutexBaseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MutexBaseline")
            .field("stripes", &self.stripes.len())
            .finish()
    }
}

impl MutexBaseline {
    /// 4 096 mutexes.
    pub fn new() -> Self {
        MutexBaseline {
            hasher: RandomState::new(),
            stripes: (0..4096).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    fn stripe(&self, key: &str) -> &tokio::sync::Mutex<()> {
        let i = self.hasher.hash_one(key) as usize % self.stripes.len();
        &self.stripes[i]
    }
}

#[async_trait]
impl Baseline for MutexBaseline {
    fn describe(&self) -> String {
        "tokio::sync::Mutex try_lock + unlock (key hashed to one of 4096 mutexes)".to_owned()
    }

    async fn cycle(&self, key: &str, _owner: &str, _ttl: Duration) -> Result<bool, LockError> {
        Ok(self.stripe(key).try_lock().is_ok())
    }

    async fn round_trip(&self, key: &str) -> Result<(), LockError> {
        drop(self.stripe(key).lock().await);
        Ok(())
    }
}
