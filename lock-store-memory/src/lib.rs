//! The in-process store for [`lock_core`] locks: for tests, and for locks that only
//! need to keep the tasks of one process apart.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
//! use lock_core::{LockConfig, LockManager};
//! use lock_store_memory::memory;
//!
//! let locks = LockManager::new(LockConfig::new().default_store("memory").store("memory", memory()))?;
//! let done = locks.create_lock("cache.rebuild")?.run(|| async { "rebuilt" }).await?;
//! assert_eq!(done, Some("rebuilt"));
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod key;
mod store;

pub use store::MemoryStore;

/// The memory store's factory, for [`lock_core::LockConfig::store`] (the seed's
/// `stores.memory()`). Each configured memory store is its own set of locks.
pub fn memory() -> lock_core::StoreFactory {
    lock_core::StoreFactory::new(|| async { Ok(MemoryStore::new()) })
}
