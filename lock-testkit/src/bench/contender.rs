//! What [`compare_cycles`](super::compare_cycles) runs side by side: contenders, each
//! cycling over keys of its own.

use std::sync::Arc;
use std::time::Duration;

use lock_core::{Lock, LockError, LockFactory, LockStore, async_trait};

use super::baseline::Baseline;

/// One way of taking and giving back a lock on key `i` of a fixed set of keys: the
/// project through `lock-core`, a peer library, or raw commands. Each contender has keys
/// of its own, so that contenders never meet on a key.
#[async_trait]
pub trait Contender: Send + Sync + 'static {
    /// What it is, for the report (e.g. `"rslock 0.10"`).
    fn name(&self) -> String;

    /// How many keys it cycles over.
    fn keys(&self) -> usize;

    /// Take key `i` (`i < keys()`) and give it back. `Ok(false)` when it was held.
    async fn cycle(&self, i: usize) -> Result<bool, LockError>;
}

/// One key of a [`KeyedCycles`]: what taking it and giving it back is.
#[async_trait]
pub trait KeyCycle: Send + Sync + 'static {
    /// Take the key and give it back. `Ok(false)` when it was held.
    async fn cycle(&self) -> Result<bool, LockError>;
}

/// `acquire_immediately` + `release`: the project's cycle, for a mutex, a semaphore or
/// one side of a reader-writer lock (each is a [`Lock`]).
pub(super) async fn lock_cycle(lock: &Lock) -> Result<bool, LockError> {
    if lock.acquire_immediately().await? {
        lock.release().await?;
        Ok(true)
    } else {
        Ok(false)
    }
}

#[async_trait]
impl KeyCycle for Lock {
    async fn cycle(&self) -> Result<bool, LockError> {
        lock_cycle(self).await
    }
}

/// A key of a [`Baseline`]: the key, its owner, and the TTL to take it for.
pub struct BaselineKey {
    baseline: Arc<dyn Baseline>,
    key: String,
    owner: String,
    ttl: Duration,
}

#[async_trait]
impl KeyCycle for BaselineKey {
    async fn cycle(&self) -> Result<bool, LockError> {
        self.baseline.cycle(&self.key, &self.owner, self.ttl).await
    }
}

/// A named contender cycling over keys of its own, each a [`KeyCycle`].
pub struct KeyedCycles<K> {
    name: String,
    keys: Vec<K>,
}

impl<K: KeyCycle> KeyedCycles<K> {
    /// `keys` under `name`.
    pub fn from_keys(name: impl Into<String>, keys: Vec<K>) -> Self {
        KeyedCycles {
            name: name.into(),
            keys,
        }
    }

    /// One `K` per key name, made by `make(i, key)`.
    fn over<E>(
        name: impl Into<String>,
        keys: &[String],
        make: impl FnMut((usize, &String)) -> Result<K, E>,
    ) -> Result<Self, E> {
        let keys = keys
            .iter()
            .enumerate()
            .map(make)
            .collect::<Result<_, E>>()?;
        Ok(Self::from_keys(name, keys))
    }
}

#[async_trait]
impl<K: KeyCycle> Contender for KeyedCycles<K> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn keys(&self) -> usize {
        self.keys.len()
    }

    async fn cycle(&self, i: usize) -> Result<bool, LockError> {
        self.keys[i].cycle().await
    }
}

/// The project: `acquire_immediately` + `release` of one [`Lock`] per key, through
/// `lock-core` and the store, with default options.
pub type LockCycles = KeyedCycles<Lock>;

impl KeyedCycles<Lock> {
    /// One lock per key of `keys` on `store`, with `ttl`.
    pub fn new(
        name: impl Into<String>,
        store: Arc<dyn LockStore>,
        keys: &[String],
        ttl: Duration,
    ) -> Result<Self, LockError> {
        let factory = LockFactory::from_shared(store, lock_core::FactoryOptions::default());
        Self::over(name, keys, |(_, k)| {
            factory.create_lock_with_ttl(k.clone(), Some(ttl))
        })
    }
}

/// A [`Baseline`]'s cycle over keys of its own, each with an owner of its own.
pub type BaselineCycles = KeyedCycles<BaselineKey>;

impl KeyedCycles<BaselineKey> {
    /// `baseline` cycling over `keys` (the owner of key `i` is `"owner-{i}"`).
    pub fn new(
        name: impl Into<String>,
        baseline: Arc<dyn Baseline>,
        keys: &[String],
        ttl: Duration,
    ) -> Self {
        let Ok(cycles) = Self::over(name, keys, |(i, k)| {
            Ok::<_, std::convert::Infallible>(BaselineKey {
                baseline: baseline.clone(),
                key: k.clone(),
                owner: format!("owner-{i}"),
                ttl,
            })
        });
        cycles
    }
}

/// The store alone, through the [`LockStore`] trait, without `lock-core`: `save` then
/// `delete` (the store's own validation, scripts or statements, and its connection).
/// Beside [`LockCycles`] on the same store it shows what `lock-core` adds.
pub struct StoreOnly(pub Arc<dyn LockStore>);

#[async_trait]
impl Baseline for StoreOnly {
    fn describe(&self) -> String {
        format!("{} store alone: save + delete, no lock-core", self.0.name())
    }

    async fn cycle(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, LockError> {
        if !self.0.save(key, owner, Some(ttl)).await? {
            return Ok(false);
        }
        self.0.delete(key, owner).await?;
        Ok(true)
    }

    async fn round_trip(&self, key: &str) -> Result<(), LockError> {
        self.0.exists(key).await.map(drop)
    }
}
