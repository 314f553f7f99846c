use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::{Lock, LockConfig, LockError, LockFactory, SerializedLock};

/// The application's lock service (the seed's `locks`): a default store and named
/// ones, each built once on first use and shared. Cheap to clone; use it from any task.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
/// use lock_core::{LockConfig, LockManager, StoreFactory};
/// # let memory = || StoreFactory::from_store(lock_core::testing::TestStore::default());
/// let locks = LockManager::new(
///     LockConfig::new()
///         .default_store("memory")
///         .store("memory", memory())
///         .store("other", memory()),
/// )?;
/// let lock = locks.create_lock("order.processing.1")?;
/// let elsewhere = locks.use_store("other")?.create_lock("order.processing.1")?;
/// assert!(lock.acquire_immediately().await?);
/// assert!(elsewhere.acquire_immediately().await?); // another store, another lock
/// assert_eq!(locks.use_store("redis").unwrap_err().code(), "E_UNKNOWN_STORE");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LockManager {
    inner: Arc<Inner>,
}

struct Inner {
    default: String,
    stores: BTreeMap<String, LockFactory>,
}

impl std::fmt::Debug for LockManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockManager")
            .field("default", &self.inner.default)
            .field("stores", &self.inner.stores.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl LockManager {
    /// Check the configuration and build the manager. Stores are not connected yet.
    pub fn new(config: LockConfig) -> Result<Self, LockError> {
        let default = config.resolve_default()?;
        let stores = config
            .stores
            .iter()
            .map(|(name, factory)| {
                let lock_factory = LockFactory::lazy(name, factory.clone(), config.options)
                    .auto_extend(config.auto_extend);
                (name.clone(), lock_factory)
            })
            .collect();
        Ok(LockManager {
            inner: Arc::new(Inner { default, stores }),
        })
    }

    /// The name of the default store.
    pub fn default_store_name(&self) -> &str {
        &self.inner.default
    }

    /// The configured store names.
    pub fn store_names(&self) -> impl Iterator<Item = &str> {
        self.inner.stores.keys().map(String::as_str)
    }

    /// Another configured store (the seed's `locks.use('redis')`).
    pub fn use_store(&self, name: &str) -> Result<&LockFactory, LockError> {
        self.inner
            .stores
            .get(name)
            .ok_or_else(|| LockError::UnknownStore {
                name: name.to_owned(),
                configured: self.inner.stores.keys().cloned().collect(),
            })
    }

    /// The default store's factory.
    pub fn default_store(&self) -> &LockFactory {
        // `new` checked that the default names a configured store.
        &self.inner.stores[&self.inner.default]
    }

    /// A lock on the default store (see [`LockFactory::create_lock`]).
    pub fn create_lock(&self, key: impl Into<String>) -> Result<Lock, LockError> {
        self.default_store().create_lock(key)
    }

    /// A lock with this TTL on the default store.
    pub fn create_lock_with_ttl(
        &self,
        key: impl Into<String>,
        ttl: Option<Duration>,
    ) -> Result<Lock, LockError> {
        self.default_store().create_lock_with_ttl(key, ttl)
    }

    /// Restore a serialized lock on the default store.
    pub fn restore_lock(&self, serialized: SerializedLock) -> Result<Lock, LockError> {
        self.default_store().restore_lock(serialized)
    }
}
