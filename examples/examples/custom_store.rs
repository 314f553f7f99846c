//! A custom store: the seed's `NoopStore`, its factory function, its use in a
//! configuration, and its validation by the conformance testkit (which it fails, as a
//! store that never saves anything should — a real store passes every case).
//!
//!     cargo run -p examples --features testkit --example custom_store

use std::time::Duration;

use lock_core::{LockConfig, LockError, LockManager, LockStore, StoreFactory, async_trait};

/// Options of the custom store.
#[derive(Debug, Clone, Default)]
pub struct MyNoopStoreConfig {}

/// A store that does not do anything.
pub struct NoopStore {
    _config: MyNoopStoreConfig,
}

impl NoopStore {
    pub fn new(config: MyNoopStoreConfig) -> Self {
        NoopStore { _config: config }
    }
}

#[async_trait]
impl LockStore for NoopStore {
    /// Save the lock; `false` if `key` is already locked. `ttl: None` never expires.
    async fn save(
        &self,
        _key: &str,
        _owner: &str,
        _ttl: Option<Duration>,
    ) -> Result<bool, LockError> {
        Ok(false)
    }

    /// Delete the lock if owned by `owner`; otherwise `LockError::NotOwned`.
    async fn delete(&self, _key: &str, _owner: &str) -> Result<(), LockError> {
        Err(LockError::NotOwned)
    }

    /// Delete the lock whoever owns it.
    async fn force_delete(&self, _key: &str) -> Result<(), LockError> {
        Ok(())
    }

    /// Whether the lock exists (held and not expired).
    async fn exists(&self, _key: &str) -> Result<bool, LockError> {
        Ok(false)
    }

    /// Extend the expiry if owned by `owner`; otherwise `LockError::NotOwned`.
    async fn extend(&self, _key: &str, _owner: &str, _duration: Duration) -> Result<(), LockError> {
        Err(LockError::NotOwned)
    }
}

/// The store's factory function (the seed's `{ driver: { factory } }`).
pub fn noop_store(config: MyNoopStoreConfig) -> StoreFactory {
    StoreFactory::new(move || {
        let config = config.clone();
        async move { Ok(NoopStore::new(config)) }
    })
}

#[tokio::main]
async fn main() -> Result<(), examples::Report> {
    // The conformance cases below lose locks and break stores on purpose: their
    // warnings are shown only when asked for with RUST_LOG.
    examples::init_tracing_or("off");
    // Using the custom store.
    let locks = LockManager::new(
        LockConfig::new()
            .default_store("noop")
            .store("noop", noop_store(MyNoopStoreConfig::default())),
    )?;
    let lock = locks.create_lock("order.processing.1")?;
    println!("noop store acquired: {}", lock.acquire_immediately().await?);

    // Validating it: the same suite every bundled store passes.
    let report = lock_testkit::run_suite(lock_testkit::maker(|| async {
        NoopStore::new(MyNoopStoreConfig::default())
    }))
    .await;
    println!("conformance: {}", report.summary());
    for case in report.failures().take(3) {
        println!("  e.g. {}: {:?}", case.name, case.outcome);
    }
    assert!(
        !report.failed().is_empty(),
        "a store that never saves must fail the suite"
    );
    Ok(())
}
