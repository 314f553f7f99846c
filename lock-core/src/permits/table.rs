//! [`PermitTable`]: the permit keys of an in-process store, ready to use.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{PermitRequest, PermitSet, PermitStore, PermitUsage};
use crate::notify::ReleaseHub;
use crate::outcome::{Acquisition, ReleaseFuture};
use crate::{FenceCounter, LockError, validate};

const SHARDS: usize = 32;

/// Below this many sets a shard is never swept.
const MIN_SWEEP_LEN: usize = 64;

#[derive(Default)]
struct Shard {
    sets: HashMap<String, PermitSet>,
    /// Map size after the last sweep; the next sweep happens at twice that.
    swept_at: usize,
}

/// The permit keys of one in-process store: [`PermitSet`]s in 32 shards, one critical
/// section per operation, release notification through a [`ReleaseHub`], fencing
/// tokens `max(last + 1, wall clock in µs)` (increasing across keys, and above those of
/// an earlier table on this machine). A store offers it as its capability with
/// `fn permits(&self) -> Option<&dyn PermitStore> { Some(&self.permits) }`.
///
/// Idle keys are forgotten, so memory follows the keys in use. Expiry follows tokio's
/// clock.
pub struct PermitTable {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    released: ReleaseHub,
    tokens: FenceCounter,
}

impl Default for PermitTable {
    fn default() -> Self {
        PermitTable {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            released: ReleaseHub::default(),
            tokens: FenceCounter::default(),
        }
    }
}

impl std::fmt::Debug for PermitTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PermitTable").finish_non_exhaustive()
    }
}

impl PermitTable {
    /// Run `f` on `key`'s set under its shard's mutex; forget the set if it is idle
    /// afterwards.
    fn with<T>(&self, key: &str, f: impl FnOnce(&mut PermitSet, Instant) -> T) -> T {
        let now = Instant::now();
        let hash = self.hasher.hash_one(key) as usize;
        let mut shard = self.shards[hash & (SHARDS - 1)]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let Some(set) = shard.sets.get_mut(key) else {
            let mut set = PermitSet::default();
            let out = f(&mut set, now);
            if !set.is_idle(now) {
                shard.sets.insert(key.to_owned(), set);
            }
            return out;
        };
        let out = f(set, now);
        if set.is_idle(now) {
            shard.sets.remove(key);
        }
        if shard.sets.len() >= (shard.swept_at * 2).max(MIN_SWEEP_LEN) {
            shard.sets.retain(|_, s| !s.is_idle(now));
            shard.swept_at = shard.sets.len();
        }
        out
    }
}

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
impl PermitTable {
    /// Run `f` on `key`'s [`PermitSet`] (with the time of the call) under its shard's
    /// mutex, as every method of the table does; the set is forgotten if it is idle
    /// afterwards. For a store that bends one rule of the table on purpose (the
    /// testkit's flawed stores) and otherwise forwards to it.
    pub fn with_set<T>(&self, key: &str, f: impl FnOnce(&mut PermitSet, Instant) -> T) -> T {
        self.with(key, f)
    }
}

#[async_trait]
impl PermitStore for PermitTable {
    async fn try_acquire_permit(
        &self,
        key: &str,
        owner: &str,
        request: PermitRequest,
    ) -> Result<Acquisition, LockError> {
        validate::save_input(key, owner, request.ttl)?;
        let floor = self.tokens.next();
        self.with(key, |set, now| set.try_acquire(now, owner, &request, floor))
    }

    async fn release_permit(&self, key: &str, owner: &str) -> Result<(), LockError> {
        validate::delete_input(key, owner)?;
        self.with(key, |set, now| set.release(now, owner))?;
        self.released.notify(key);
        Ok(())
    }

    async fn extend_permit(
        &self,
        key: &str,
        owner: &str,
        duration: Duration,
    ) -> Result<(), LockError> {
        validate::extend_input(key, owner, duration)?;
        self.with(key, |set, now| set.extend(now, owner, duration))
    }

    async fn force_release_permits(&self, key: &str) -> Result<(), LockError> {
        validate::key(key)?;
        self.with(key, |set, _| set.clear());
        self.released.notify(key);
        Ok(())
    }

    async fn permit_usage(&self, key: &str) -> Result<PermitUsage, LockError> {
        validate::key(key)?;
        Ok(self.with(key, |set, now| set.usage(now)))
    }

    fn permit_release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        Some(self.released.listen(key))
    }
}
