//! Semaphores and reader-writer locks in memory: the [`PermitStore`] capability of
//! [`MemoryStore`], with lock-core's [`PermitSet`] rules, one critical section per
//! operation on the key's shard.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use lock_core::{
    Acquisition, LockError, PermitRequest, PermitSet, PermitStore, PermitUsage, ReleaseFuture,
    ReleaseHub, async_trait, validate,
};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::MemoryStore;

const SHARDS: usize = 32;

/// Below this many sets a shard is never swept.
const MIN_SWEEP_LEN: usize = 64;

#[derive(Default)]
struct Shard {
    sets: HashMap<String, PermitSet>,
    /// Map size after the last sweep; the next sweep happens at twice that.
    swept_at: usize,
}

/// The permit keys of one store.
pub(crate) struct Table {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    released: ReleaseHub,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            released: ReleaseHub::default(),
        }
    }
}

impl Table {
    /// Run `f` on `key`'s set under its shard's mutex; forget the set if it is idle
    /// afterwards (so memory follows the keys in use).
    fn with<T>(&self, key: &str, f: impl FnOnce(&mut PermitSet, Instant) -> T) -> T {
        let now = Instant::now();
        let hash = self.hasher.hash_one(key) as usize;
        let mut shard = self.shards[hash & (SHARDS - 1)].lock();
        let out = match shard.sets.get_mut(key) {
            Some(set) => f(set, now),
            None => {
                let mut set = PermitSet::default();
                let out = f(&mut set, now);
                if !set.is_idle(now) {
                    shard.sets.insert(key.to_owned(), set);
                }
                return out;
            }
        };
        if shard.sets.get_mut(key).is_some_and(|s| s.is_idle(now)) {
            shard.sets.remove(key);
        }
        if shard.sets.len() >= (shard.swept_at * 2).max(MIN_SWEEP_LEN) {
            shard.sets.retain(|_, s| !s.is_idle(now));
            shard.swept_at = shard.sets.len();
        }
        out
    }
}

#[async_trait]
impl PermitStore for MemoryStore {
    async fn try_acquire_permit(
        &self,
        key: &str,
        owner: &str,
        request: PermitRequest,
    ) -> Result<Acquisition, LockError> {
        validate::save_input(key, owner, request.ttl)?;
        let floor = self.next_token();
        self.permit_table()
            .with(key, |set, now| set.try_acquire(now, owner, &request, floor))
    }

    async fn release_permit(&self, key: &str, owner: &str) -> Result<(), LockError> {
        validate::delete_input(key, owner)?;
        let table = self.permit_table();
        table.with(key, |set, now| set.release(now, owner))?;
        table.released.notify(key);
        Ok(())
    }

    async fn extend_permit(
        &self,
        key: &str,
        owner: &str,
        duration: Duration,
    ) -> Result<(), LockError> {
        validate::extend_input(key, owner, duration)?;
        self.permit_table()
            .with(key, |set, now| set.extend(now, owner, duration))
    }

    async fn force_release_permits(&self, key: &str) -> Result<(), LockError> {
        validate::key(key)?;
        let table = self.permit_table();
        table.with(key, |set, _| set.clear());
        table.released.notify(key);
        Ok(())
    }

    async fn permit_usage(&self, key: &str) -> Result<PermitUsage, LockError> {
        validate::key(key)?;
        Ok(self.permit_table().with(key, |set, now| set.usage(now)))
    }

    fn permit_release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        Some(self.permit_table().released.listen(key))
    }
}
