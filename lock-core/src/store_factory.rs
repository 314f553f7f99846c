use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::{LockError, LockStore};

type BuildFuture = Pin<Box<dyn Future<Output = Result<Arc<dyn LockStore>, LockError>> + Send>>;

/// How to build a store: the seed's `{ driver: { factory } }`.
///
/// Each store crate exposes one function returning a `StoreFactory`
/// (`lock_store_memory::memory()`, `lock_store_redis::redis(options)`, …). A
/// [`LockManager`](crate::LockManager) calls it once, on the store's first use.
///
/// A custom store gets its own in three lines:
///
/// ```
/// # use std::time::Duration;
/// # use lock_core::{async_trait, LockError, LockStore};
/// # #[derive(Clone, Default)] pub struct MyNoopStoreConfig;
/// # pub struct NoopStore;
/// # impl NoopStore { fn new(_: MyNoopStoreConfig) -> Self { NoopStore } }
/// # #[async_trait] impl LockStore for NoopStore {
/// #   async fn save(&self, _: &str, _: &str, _: Option<Duration>) -> Result<bool, LockError> { Ok(false) }
/// #   async fn delete(&self, _: &str, _: &str) -> Result<(), LockError> { Err(LockError::NotOwned) }
/// #   async fn force_delete(&self, _: &str) -> Result<(), LockError> { Ok(()) }
/// #   async fn exists(&self, _: &str) -> Result<bool, LockError> { Ok(false) }
/// #   async fn extend(&self, _: &str, _: &str, _: Duration) -> Result<(), LockError> { Err(LockError::NotOwned) }
/// # }
/// use lock_core::StoreFactory;
///
/// pub fn noop_store(options: MyNoopStoreConfig) -> StoreFactory {
///     StoreFactory::new(move || {
///         let options = options.clone();
///         async move { Ok(NoopStore::new(options)) }
///     })
/// }
/// ```
#[derive(Clone)]
pub struct StoreFactory {
    build: Arc<dyn Fn() -> BuildFuture + Send + Sync>,
}

impl std::fmt::Debug for StoreFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreFactory").finish_non_exhaustive()
    }
}

impl StoreFactory {
    /// A factory from an async constructor. It may be called again after it failed.
    pub fn new<F, Fut, S>(build: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, LockError>> + Send + 'static,
        S: LockStore,
    {
        StoreFactory {
            build: Arc::new(move || {
                let fut = build();
                Box::pin(async move { fut.await.map(|s| Arc::new(s) as Arc<dyn LockStore>) })
            }),
        }
    }

    /// A factory that hands out an already-built store.
    pub fn from_store<S: LockStore>(store: S) -> Self {
        Self::from_shared(Arc::new(store))
    }

    /// A factory that hands out an already-built, shared store.
    pub fn from_shared(store: Arc<dyn LockStore>) -> Self {
        StoreFactory {
            build: Arc::new(move || {
                let store = store.clone();
                Box::pin(async move { Ok(store) })
            }),
        }
    }

    /// Build the store.
    pub async fn build(&self) -> Result<Arc<dyn LockStore>, LockError> {
        (self.build)().await
    }
}
