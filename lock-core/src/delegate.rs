//! One reusable way to wrap a store: implement [`DelegatingStore`], override what differs.

use std::time::Duration;

use async_trait::async_trait;

use crate::{AcquireResult, Capabilities, LockError, LockStore, PermitStore, ReleaseFuture};

/// A store that wraps another and forwards every method it does not override.
///
/// Implementing it makes the type a [`LockStore`] (through a blanket impl), so a
/// wrapper that only changes one behaviour — hides a capability, delays an answer,
/// counts calls — is a few lines instead of a hand-written forwarder of every method.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::time::Duration;
/// use lock_core::{async_trait, DelegatingStore, LockError, LockStore};
///
/// /// Counts acquire attempts, forwards everything else.
/// struct CountingSaves {
///     inner: Arc<dyn LockStore>,
///     saves: AtomicU64,
/// }
///
/// #[async_trait]
/// impl DelegatingStore for CountingSaves {
///     fn inner(&self) -> &dyn LockStore {
///         &*self.inner
///     }
///     async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError> {
///         self.saves.fetch_add(1, Ordering::Relaxed);
///         self.inner.save(key, owner, ttl).await
///     }
/// }
///
/// fn assert_store<S: LockStore>() {}
/// assert_store::<CountingSaves>();
/// ```
#[async_trait]
pub trait DelegatingStore: Send + Sync + 'static {
    /// The wrapped store.
    fn inner(&self) -> &dyn LockStore;

    /// [`LockStore::save`]; forwards by default.
    async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError> {
        self.inner().save(key, owner, ttl).await
    }
    /// [`LockStore::delete`]; forwards by default.
    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        self.inner().delete(key, owner).await
    }
    /// [`LockStore::force_delete`]; forwards by default.
    async fn force_delete(&self, key: &str) -> Result<(), LockError> {
        self.inner().force_delete(key).await
    }
    /// [`LockStore::exists`]; forwards by default.
    async fn exists(&self, key: &str) -> Result<bool, LockError> {
        self.inner().exists(key).await
    }
    /// [`LockStore::extend`]; forwards by default.
    async fn extend(&self, key: &str, owner: &str, duration: Duration) -> Result<(), LockError> {
        self.inner().extend(key, owner, duration).await
    }
    /// [`LockStore::name`]; forwards by default.
    fn name(&self) -> &str {
        self.inner().name()
    }
    /// [`LockStore::capabilities`]; forwards by default.
    fn capabilities(&self) -> Capabilities {
        self.inner().capabilities()
    }
    /// [`LockStore::try_acquire`]; forwards by default.
    ///
    /// A wrapper that overrides [`save`](Self::save) to change acquiring must override
    /// this too (or hide the capabilities `try_acquire` reports), since lock-core
    /// acquires through `try_acquire`.
    async fn try_acquire(&self, key: &str, owner: &str, ttl: Option<Duration>) -> AcquireResult {
        self.inner().try_acquire(key, owner, ttl).await
    }
    /// [`LockStore::release_listener`]; forwards by default.
    fn release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        self.inner().release_listener(key)
    }
    /// [`LockStore::permits`]; forwards by default.
    fn permits(&self) -> Option<&dyn PermitStore> {
        self.inner().permits()
    }
}

#[async_trait]
impl<W: DelegatingStore> LockStore for W {
    async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError> {
        DelegatingStore::save(self, key, owner, ttl).await
    }
    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        DelegatingStore::delete(self, key, owner).await
    }
    async fn force_delete(&self, key: &str) -> Result<(), LockError> {
        DelegatingStore::force_delete(self, key).await
    }
    async fn exists(&self, key: &str) -> Result<bool, LockError> {
        DelegatingStore::exists(self, key).await
    }
    async fn extend(&self, key: &str, owner: &str, duration: Duration) -> Result<(), LockError> {
        DelegatingStore::extend(self, key, owner, duration).await
    }
    fn name(&self) -> &str {
        DelegatingStore::name(self)
    }
    fn capabilities(&self) -> Capabilities {
        DelegatingStore::capabilities(self)
    }
    async fn try_acquire(&self, key: &str, owner: &str, ttl: Option<Duration>) -> AcquireResult {
        DelegatingStore::try_acquire(self, key, owner, ttl).await
    }
    fn release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        DelegatingStore::release_listener(self, key)
    }
    fn permits(&self) -> Option<&dyn PermitStore> {
        DelegatingStore::permits(self)
    }
}
