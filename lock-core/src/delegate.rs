//! One reusable way to wrap a store: implement [`DelegatingStore`], override what differs.

use std::time::Duration;

use async_trait::async_trait;

use crate::{
    AcquireResult, Capabilities, ImmediateStore, LockError, LockStore, PermitStore, ReleaseFuture,
};

/// A store that wraps another and forwards every method it does not override.
///
/// Implementing it makes the type a [`LockStore`] (through a blanket impl), so a
/// wrapper that only changes one behaviour — hides a capability, delays an answer,
/// counts calls — is a few lines instead of a hand-written forwarder of every method.
///
/// Every method forwards to [`inner`](Self::inner) by default; the six async ones hand on
/// the inner store's future as it is (no second boxed future per call). Override a method
/// with `async fn` under `#[async_trait]`, as the example does. A wrapper that changes
/// acquiring overrides [`try_acquire`](LockStore::try_acquire) (what a `Lock` calls),
/// and [`save`](LockStore::save) too if direct callers of `save` should see the change.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::time::Duration;
/// use lock_core::{async_trait, AcquireResult, DelegatingStore, LockFactory, LockStore};
///
/// /// Counts acquire attempts, forwards everything else. (A `Lock` acquires through
/// /// `try_acquire`; `save` is the seed's form of it, for direct callers.)
/// struct CountingAttempts {
///     inner: Arc<dyn LockStore>,
///     attempts: AtomicU64,
/// }
///
/// #[async_trait]
/// impl DelegatingStore for CountingAttempts {
///     fn inner(&self) -> &dyn LockStore {
///         &*self.inner
///     }
///     async fn try_acquire(&self, key: &str, owner: &str, ttl: Option<Duration>) -> AcquireResult {
///         self.attempts.fetch_add(1, Ordering::Relaxed);
///         self.inner.try_acquire(key, owner, ttl).await
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
/// let counting = Arc::new(CountingAttempts {
///     inner: Arc::new(lock_core::testing::TestStore::default()),
///     attempts: AtomicU64::new(0),
/// });
/// let locks = LockFactory::from_shared(counting.clone(), Default::default());
/// let lock = locks.create_lock("k")?;
/// assert!(lock.acquire_immediately().await?);
/// assert_eq!(counting.attempts.load(Ordering::Relaxed), 1);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait DelegatingStore: Send + Sync + 'static {
    /// The wrapped store.
    fn inner(&self) -> &dyn LockStore;

    crate::store::forward_store_futures!(LockStore, |this| this.inner());
    /// [`LockStore::name`]; forwards by default.
    fn name(&self) -> &str {
        self.inner().name()
    }
    /// [`LockStore::capabilities`]; forwards by default.
    fn capabilities(&self) -> Capabilities {
        self.inner().capabilities()
    }
    /// [`LockStore::release_listener`]; forwards by default.
    fn release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        self.inner().release_listener(key)
    }
    /// [`LockStore::permits`]; forwards by default.
    fn permits(&self) -> Option<&dyn PermitStore> {
        self.inner().permits()
    }
    /// [`LockStore::immediate`]; `None` by default, **not** forwarded: a wrapper that
    /// changes `try_acquire` or `delete` would otherwise be bypassed by every `Lock`.
    /// A wrapper that changes neither may return `self.inner().immediate()`.
    fn immediate(&self) -> Option<&dyn ImmediateStore> {
        None
    }
}

/// Hands on each future of the [`DelegatingStore`] method as it is (no second box).
impl<W: DelegatingStore> LockStore for W {
    crate::store::forward_store_futures!(DelegatingStore, |this| this);
    fn name(&self) -> &str {
        DelegatingStore::name(self)
    }
    fn capabilities(&self) -> Capabilities {
        DelegatingStore::capabilities(self)
    }
    fn release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        DelegatingStore::release_listener(self, key)
    }
    fn permits(&self) -> Option<&dyn PermitStore> {
        DelegatingStore::permits(self)
    }
    fn immediate(&self) -> Option<&dyn ImmediateStore> {
        DelegatingStore::immediate(self)
    }
}
