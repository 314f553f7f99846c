use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use lock_core::{
    AcquireResult, Acquisition, Capabilities, Checked, FenceCounter, ImmediateStore, LockError,
    LockStore, PermitStore, PermitTable, ReleaseFuture, ReleaseHub, async_trait, validate,
};
use parking_lot::{Mutex, MutexGuard};

use crate::key::{ByStoreHash, OwnerText, Probe, StoredKey, shard_of};
use tokio::time::Instant;

/// Below this many entries a shard's map is never swept.
const MIN_SWEEP_LEN: usize = 64;

/// Shards of the table: independent keys rarely meet on one mutex (a power of two).
const SHARDS: usize = 32;

/// An in-process lock store: locks are shared by the tasks of one process only.
///
/// * Every operation is one critical section on the mutex of the key's shard (one of 32):
///   correct under contention, and independent keys rarely wait for each other.
/// * Released entries are removed at once and expired ones are reclaimed as the map
///   grows (a sweep whenever it doubles), so memory follows the number of locks held,
///   not the number of keys ever used.
/// * Capabilities: release notification (waiters wake on release), fencing tokens (one
///   counter per store, folded with the wall clock in microseconds — read when the store
///   is made, carried forward by the monotonic clock —, so tokens grow across keys and
///   stay above those of a previous store or process on the machine; under tokio's
///   paused test clock they follow the virtual time, see
///   [`FenceCounter`](lock_core::FenceCounter)) and the holder's remaining TTL.
/// * One SipHash of the key per operation (keyed at random per store): it picks the
///   shard and places the key in the shard's map. Owners of up to 32 bytes (lock-core
///   mints 32) are kept inline.
/// * Expiry follows tokio's clock, so `tokio::time::pause` drives it in tests.
///
/// Clones share the same locks.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
/// use lock_core::LockFactory;
/// use lock_store_memory::MemoryStore;
///
/// let locks = LockFactory::new(MemoryStore::new());
/// let lock = locks.create_lock("order.processing.1")?;
/// assert!(lock.acquire_immediately().await?);
/// assert!(lock.fencing_token().is_some());
/// lock.release().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Box<[Mutex<State>]>,
    hasher: RandomState,
    /// The fencing counter (one per store: tokens grow across keys).
    tokens: FenceCounter,
    released: ReleaseHub,
    /// Semaphores and reader-writer locks.
    permits: PermitTable,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            tokens: FenceCounter::default(),
            released: ReleaseHub::default(),
            permits: PermitTable::default(),
        }
    }
}

impl Inner {
    /// `key`'s shard, locked, and the key as its map looks it up (hashed once).
    fn shard<'k>(&self, key: &'k str) -> (MutexGuard<'_, State>, Probe<'k>) {
        let hash = self.hasher.hash_one(key);
        let shard = self.shards[shard_of(hash, SHARDS)].lock();
        (shard, Probe { hash, text: key })
    }
}

#[derive(Default)]
struct State {
    locks: HashMap<StoredKey, Entry, ByStoreHash>,
    /// Map size after the last sweep; the next sweep happens at twice that.
    swept_at: usize,
}

struct Entry {
    owner: OwnerText,
    expires_at: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

impl State {
    /// The entry for `key` if it is held and not expired.
    fn live(&mut self, key: Probe<'_>, now: Instant) -> Option<&mut Entry> {
        self.locks.get_mut(key.view()).filter(|e| e.live(now))
    }

    fn maybe_sweep(&mut self, now: Instant) {
        if self.locks.len() >= (self.swept_at * 2).max(MIN_SWEEP_LEN) {
            self.locks.retain(|_, e| e.live(now));
            self.swept_at = self.locks.len();
            self.maybe_shrink();
        }
    }

    /// Give table memory back once the map is down to a quarter of its capacity
    /// (halving at most, so that shrinking stays amortized O(1) per operation). The
    /// smallest table (3 entries) is kept, so one key locked and released in turn
    /// never reallocates.
    fn maybe_shrink(&mut self) {
        let (len, capacity) = (self.locks.len(), self.locks.capacity());
        if capacity > 3 && len * 4 < capacity {
            self.locks.shrink_to(len * 2);
            self.swept_at = self.swept_at.min(len);
        }
    }

    fn remove(&mut self, key: Probe<'_>) -> Option<Entry> {
        let removed = self.locks.remove(key.view());
        if removed.is_some() {
            self.maybe_shrink();
        }
        removed
    }
}

/// `now + ttl`, or `InvalidArgument` when the clock cannot represent it.
fn deadline(now: Instant, ttl: Duration) -> Result<Instant, LockError> {
    now.checked_add(ttl).ok_or_else(|| {
        LockError::invalid(format!(
            "TTL of {ttl:?} is beyond what the memory store's clock can represent"
        ))
    })
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries in memory, expired ones not yet reclaimed included.
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| s.lock().locks.len()).sum()
    }

    /// Whether no entry is in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reclaim every expired entry now (it also happens by itself as the map grows).
    pub fn purge_expired(&self) {
        let now = Instant::now();
        for shard in self.inner.shards.iter() {
            let mut st = shard.lock();
            st.locks.retain(|_, e| e.live(now));
            st.swept_at = st.locks.len();
            st.maybe_shrink();
        }
    }

    /// Capacity of the table, all shards together (for memory measurements).
    pub fn capacity(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| s.lock().locks.capacity())
            .sum()
    }

    /// Keys that have a waiter listening for their release.
    pub fn waiting_keys(&self) -> usize {
        self.inner.released.waiting_keys()
    }

    /// One acquire attempt on checked input: what `save`, `try_acquire` and
    /// `try_acquire_now` report.
    fn acquire_once(
        &self,
        key: &str,
        owner: &str,
        ttl: Option<Duration>,
        now: Instant,
    ) -> Result<Acquisition, LockError> {
        let expires_at = ttl.map(|t| deadline(now, t)).transpose()?;
        let (mut st, key) = self.inner.shard(key);
        if let Some(entry) = st.locks.get_mut(key.view()) {
            if entry.live(now) {
                let left = entry.expires_at.map(|at| at - now);
                return Ok(Acquisition::denied(left));
            }
            // Expired: taken over in place (the key is already in the map).
            // Under the shard's lock: the key's tokens are issued in order.
            let token = self.inner.tokens.next_at(now);
            entry.owner = OwnerText::new(owner);
            entry.expires_at = expires_at;
            return Ok(Acquisition::acquired_with_token(token));
        }
        st.maybe_sweep(now);
        let token = self.inner.tokens.next_at(now);
        st.locks.insert(
            key.to_stored(),
            Entry {
                owner: OwnerText::new(owner),
                expires_at,
            },
        );
        Ok(Acquisition::acquired_with_token(token))
    }

    /// `delete` on checked input.
    fn delete_once(&self, key: &str, owner: &str, now: Instant) -> Result<(), LockError> {
        {
            let (mut st, probe) = self.inner.shard(key);
            match st.live(probe, now) {
                Some(e) if e.owner.is(owner) => st.remove(probe),
                _ => return Err(LockError::NotOwned),
            };
        }
        self.inner.released.notify(key);
        Ok(())
    }
}

impl ImmediateStore for MemoryStore {
    fn try_acquire_now(
        &self,
        lock: Checked<'_>,
        ttl: Option<Duration>,
        now: Instant,
    ) -> AcquireResult {
        validate::ttl(ttl)?;
        self.acquire_once(lock.key(), lock.owner(), ttl, now)
    }

    fn delete_now(&self, lock: Checked<'_>, now: Instant) -> Result<(), LockError> {
        self.delete_once(lock.key(), lock.owner(), now)
    }
}

#[async_trait]
impl LockStore for MemoryStore {
    async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError> {
        validate::save_input(key, owner, ttl)?;
        Ok(self.acquire_once(key, owner, ttl, Instant::now())?.acquired)
    }

    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        validate::delete_input(key, owner)?;
        self.delete_once(key, owner, Instant::now())
    }

    async fn force_delete(&self, key: &str) -> Result<(), LockError> {
        validate::key(key)?;
        let (mut st, probe) = self.inner.shard(key);
        let removed = st.remove(probe);
        drop(st);
        if removed.is_some() {
            self.inner.released.notify(key);
        }
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, LockError> {
        validate::key(key)?;
        let (mut st, probe) = self.inner.shard(key);
        Ok(st.live(probe, Instant::now()).is_some())
    }

    async fn extend(&self, key: &str, owner: &str, duration: Duration) -> Result<(), LockError> {
        validate::extend_input(key, owner, duration)?;
        let now = Instant::now();
        let expires_at = deadline(now, duration)?;
        let (mut st, probe) = self.inner.shard(key);
        match st.live(probe, now) {
            Some(e) if e.owner.is(owner) => {
                e.expires_at = Some(expires_at);
                Ok(())
            }
            _ => Err(LockError::NotOwned),
        }
    }

    fn name(&self) -> &str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    async fn try_acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Option<Duration>,
    ) -> Result<Acquisition, LockError> {
        validate::save_input(key, owner, ttl)?;
        self.acquire_once(key, owner, ttl, Instant::now())
    }

    fn release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        Some(self.inner.released.listen(key))
    }

    fn permits(&self) -> Option<&dyn PermitStore> {
        Some(&self.inner.permits)
    }

    fn immediate(&self) -> Option<&dyn ImmediateStore> {
        Some(self)
    }
}
