use std::sync::Arc;
use std::time::Duration;

use crate::handle::StoreHandle;
use crate::lock::Target;
use crate::owner::new_owner;
use crate::validate;
use crate::{Lock, LockError, LockStore, RetryConfig, SerializedLock, StoreFactory};

/// Verrou's default lock TTL.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// Defaults for the locks a [`LockFactory`] creates.
///
/// Built from [`FactoryOptions::default`] with the setters (new options may be added):
///
/// ```
/// use std::time::Duration;
/// use lock_core::{FactoryOptions, RetryConfig};
///
/// let options = FactoryOptions::default()
///     .retry(RetryConfig::default().timeout(Duration::from_secs(5)))
///     .default_ttl(Some(Duration::from_secs(10)));
/// assert_eq!(options.default_ttl, Some(Duration::from_secs(10)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FactoryOptions {
    /// Retry settings for `acquire` and `run`.
    pub retry: RetryConfig,
    /// TTL of locks created without one (`None`: never expire). Default 30 s.
    pub default_ttl: Option<Duration>,
}

impl Default for FactoryOptions {
    fn default() -> Self {
        FactoryOptions {
            retry: RetryConfig::default(),
            default_ttl: Some(DEFAULT_TTL),
        }
    }
}

impl FactoryOptions {
    /// Set the retry settings of `acquire` and `run`.
    pub const fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Set the TTL of locks created without one (`None`: they never expire).
    pub const fn default_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.default_ttl = ttl;
        self
    }
}

/// Creates locks on one store. Cheap to clone; clones share the store.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
/// use std::time::Duration;
/// use lock_core::{FactoryOptions, LockFactory, RetryConfig};
/// # let store = lock_core::testing::TestStore::default();
/// let factory = LockFactory::with_options(
///     store,
///     FactoryOptions::default()
///         .retry(RetryConfig::default().timeout(Duration::from_secs(5)))
///         .default_ttl(Some(Duration::from_secs(10))),
/// );
/// let lock = factory.create_lock("invoices.2026-11")?;
/// assert_eq!(lock.ttl(), Some(Duration::from_secs(10)));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LockFactory {
    handle: StoreHandle,
    options: FactoryOptions,
    auto_extend: bool,
}

impl std::fmt::Debug for LockFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockFactory")
            .field("store", &self.handle.slot().name)
            .field("options", &self.options)
            .field("auto_extend", &self.auto_extend)
            .finish()
    }
}

impl LockFactory {
    /// A factory with Verrou's defaults (TTL 30 s; retry forever every 250 ms).
    pub fn new<S: LockStore>(store: S) -> Self {
        Self::with_options(store, FactoryOptions::default())
    }

    /// A factory with explicit defaults.
    pub fn with_options<S: LockStore>(store: S, options: FactoryOptions) -> Self {
        Self::from_shared(Arc::new(store), options)
    }

    /// A factory over a store shared with other code.
    pub fn from_shared(store: Arc<dyn LockStore>, options: FactoryOptions) -> Self {
        LockFactory {
            handle: StoreHandle::ready(store),
            options,
            auto_extend: false,
        }
    }

    /// A factory whose store is built on first use.
    pub(crate) fn lazy(name: &str, factory: StoreFactory, options: FactoryOptions) -> Self {
        LockFactory {
            handle: StoreHandle::lazy(name.to_owned(), factory),
            options,
            auto_extend: false,
        }
    }

    /// Turn auto-extension on for every lock this factory creates (see
    /// [`Lock::with_auto_extend`]).
    pub fn auto_extend(mut self, on: bool) -> Self {
        self.auto_extend = on;
        self
    }

    /// The defaults of this factory.
    pub fn options(&self) -> &FactoryOptions {
        &self.options
    }

    /// The store's name (as configured, or as the store calls itself).
    pub fn store_name(&self) -> &str {
        &self.handle.slot().name
    }

    /// The store, built if it was not yet.
    pub async fn store(&self) -> Result<Arc<dyn LockStore>, LockError> {
        self.handle.get().await
    }

    /// The store's optional capabilities, if it was built already.
    pub fn built_store(&self) -> Option<Arc<dyn LockStore>> {
        self.handle.built().cloned()
    }

    /// A new lock on `key` with the default TTL and a fresh owner.
    /// `InvalidArgument` for an empty key, a key over 1 024 bytes or one with a NUL byte.
    pub fn create_lock(&self, key: impl Into<String>) -> Result<Lock, LockError> {
        self.create_lock_with_ttl(key, self.options.default_ttl)
    }

    /// A new lock on `key` with this TTL (`None`: never expires; zero is
    /// `InvalidArgument`).
    pub fn create_lock_with_ttl(
        &self,
        key: impl Into<String>,
        ttl: Option<Duration>,
    ) -> Result<Lock, LockError> {
        self.new_lock(key.into(), ttl, Target::Mutex)
    }

    /// A validated lock of any kind, with a fresh owner.
    pub(crate) fn new_lock(
        &self,
        key: String,
        ttl: Option<Duration>,
        target: Target,
    ) -> Result<Lock, LockError> {
        validate::key(&key)?;
        validate::ttl(ttl)?;
        self.options.retry.validate()?;
        Ok(Lock::new(
            key,
            new_owner()?,
            ttl,
            self.options.retry,
            self.auto_extend,
            self.handle.clone(),
            target,
        ))
    }

    /// A lock from [`Lock::serialize`], owned by the same owner: it can release or
    /// extend the lock acquired elsewhere. Malformed input is `InvalidArgument`.
    ///
    /// Restored in the process that serialized it (same factory or manager), while the
    /// original is alive, it *is* the original: one holding, shared with every clone.
    /// Restored in another process, it takes the holding over: the original's process
    /// should stop using its copy (the owner token is one capability; two processes
    /// using it at once are one owner racing itself). Its local deadline comes from the
    /// serializing machine's wall clock, capped at one TTL from now.
    pub fn restore_lock(&self, serialized: SerializedLock) -> Result<Lock, LockError> {
        serialized.validate()?;
        if let Some(lock) = Lock::handed_over(
            &self.handle,
            &serialized.key,
            &serialized.owner,
            self.options.retry,
            self.auto_extend,
        ) {
            return Ok(lock);
        }
        let deadline = serialized.deadline();
        let target = serialized.target();
        let lock = Lock::new(
            serialized.key,
            serialized.owner,
            serialized.ttl.map(Duration::from_millis),
            self.options.retry,
            self.auto_extend,
            self.handle.clone(),
            target,
        );
        lock.restore(deadline, serialized.fencing_token);
        lock.hand_over();
        Ok(lock)
    }
}
