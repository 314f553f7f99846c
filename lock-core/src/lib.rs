//! Atomic locks (mutexes) that keep several processes, or several tasks, out of the
//! same critical section, with pluggable stores.
//!
//! This crate holds the API every store shares:
//!
//! * [`LockStore`]: the five operations a store implements (plus optional capabilities);
//! * [`Lock`]: acquire / release / extend / run, with retry, fair local queueing,
//!   fencing tokens, auto-extension and a lost-lock signal;
//! * [`LockFactory`], [`LockManager`], [`LockConfig`], [`StoreFactory`]: creating locks on
//!   one store or on named stores chosen by configuration;
//! * [`LockError`]: one error enum with stable codes.
//!
//! Stores live in their own crates: `lock-store-memory`, `lock-store-redis`,
//! `lock-store-database`. `lock-testkit` checks any store against the contract.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), lock_core::LockError> {
//! use lock_core::LockFactory;
//! # let store = lock_core::testing::TestStore::default();
//! let locks = LockFactory::new(store);
//! let lock = locks.create_lock("order.processing.1")?;
//! let processed = lock.run(|| async { "processed" }).await?;
//! assert_eq!(processed, Some("processed"));
//! # Ok(()) }
//! ```
//!
//! # Semantics worth knowing
//!
//! * Expiry is judged by the store's clock; [`Lock::remaining_time`] is the local view,
//!   measured from *before* the acquiring request was sent, so it errs on the early side.
//! * Locks are not re-entrant.
//! * Dropping an in-flight `acquire` or `run` never leaves a lock held with nobody able
//!   to release it.
//! * Owner tokens and serialized locks are capabilities: they are never logged.
#![warn(missing_docs)]

mod armed;
mod config;
mod delegate;
mod error;
mod factory;
mod guard;
mod handle;
mod holding;
mod lock;
mod lost;
mod manager;
mod notify;
mod owner;
mod queue;
mod retry;
mod serialized;
mod store;
mod store_factory;
pub mod testing;
mod unwind;
pub mod validate;

pub use async_trait::async_trait;
pub use config::LockConfig;
pub use delegate::DelegatingStore;
pub use error::{BoxError, LockError};
pub use factory::{DEFAULT_TTL, FactoryOptions, LockFactory};
pub use guard::LockGuard;
pub use lock::Lock;
pub use lost::LostLock;
pub use manager::LockManager;
pub use notify::ReleaseHub;
pub use retry::{DEFAULT_RETRY_DELAY, RetryConfig};
pub use serialized::SerializedLock;
pub use store::{Acquisition, Capabilities, LockStore, ReleaseFuture};
pub use store_factory::StoreFactory;
pub use validate::{MAX_KEY_LEN, MAX_OWNER_LEN, MAX_TTL};
