//! A store to bench, with its baseline on the same connection.

use std::fmt::Display;
use std::sync::Arc;

use lock_core::{LockError, LockStore};
use lock_store_memory::MemoryStore;
use lock_testkit::bench::{
    Baseline, BenchConfig, MutexBaseline, PermitBaseline, PermitTableBaseline, StorePermitsOnly,
};
use lock_testkit::services::Skip;

use crate::alloc::CountingAllocator;

pub struct Prepared {
    pub store: Arc<dyn LockStore>,
    pub baseline: Arc<dyn Baseline>,
    /// What the semaphore and read-lock cycles are measured against.
    pub permit_baseline: Arc<dyn PermitBaseline>,
    pub version: String,
}

impl Prepared {
    /// `store` with its mutex `baseline`; its permit cycles against the store alone
    /// (its own permit scripts or statements through its `PermitStore`, no lock-core).
    pub fn new(store: Arc<dyn LockStore>, baseline: Arc<dyn Baseline>, version: String) -> Self {
        Prepared {
            permit_baseline: Arc::new(StorePermitsOnly(store.clone())),
            store,
            baseline,
            version,
        }
    }
}

pub enum Prep {
    /// The server is unreachable.
    Skip(String),
    /// Reachable, but something else went wrong.
    Fail(String),
}

impl Prep {
    /// `<service> unreachable at <redacted url>: <cause>`, worded as every skip line.
    pub fn unreachable(service: &str, url: &str, cause: impl Display) -> Prep {
        Prep::Skip(Skip::unreachable(service, url, cause).to_string())
    }
}

pub async fn prepare(name: &str, config: &mut BenchConfig, quick: bool) -> Result<Prepared, Prep> {
    match name {
        "memory" => {
            config.memory_keys = Some(if quick { 100_000 } else { 1_000_000 });
            config.allocated_bytes = Some(CountingAllocator::allocated);
            Ok(Prepared {
                store: Arc::new(MemoryStore::new()),
                baseline: Arc::new(MutexBaseline::new()),
                permit_baseline: Arc::new(PermitTableBaseline::default()),
                version: "in process".to_owned(),
            })
        }
        "redis" => crate::redis::prepare().await,
        "postgres" => crate::sql::prepare_postgres().await,
        "mysql" => crate::sql::prepare_mysql().await,
        "sqlite" => crate::sql::prepare_sqlite().await,
        other => Err(Prep::Fail(format!("unknown store {other}"))),
    }
}

/// A driver error as a storage error.
pub fn storage(e: impl std::error::Error + Send + Sync + 'static) -> LockError {
    LockError::storage(e)
}
