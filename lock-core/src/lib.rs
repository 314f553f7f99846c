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
//! * Expiry is judged by the store's clock (for SQLite, the machine's wall clock);
//!   [`Lock::remaining_time`] is the local view,
//!   measured from *before* the acquiring request was sent, so it errs on the early side.
//! * Locks are not re-entrant.
//! * Dropping an in-flight `acquire` or `run`, or a guard, never leaves a lock held with
//!   nobody able to release it, as long as the tokio runtime keeps running: the clean-up
//!   is a background task. If the runtime shuts down first, a lock with a TTL expires by
//!   itself; a lock without TTL stays held — prefer TTLs (with auto-extension for long
//!   sections), or release before shutting down.
//! * Owner tokens and serialized locks are capabilities: they are never logged.
//!
//! # Observability
//!
//! Every `acquire`, `run`, `release`, `force_release` and `extend` runs in a `tracing`
//! span (`lock.acquire`, …) with the `store` and the `key` — never the owner token. A
//! `debug` event marks acquisitions (waited time, attempts, fencing token) and releases
//! (`held_ms`, the hold time); every store error (also a failed store build) and every
//! loss lock-core notices (a refused extension, an auto-extension that failed until the
//! deadline) is a `warn` event. A lock without auto-extension that simply outlives its
//! TTL is noticed by its [`LostLock`] signal, not logged.
//!
//! With the `metrics` feature, lock-core also records through the
//! [`metrics`](https://docs.rs/metrics) facade (install any recorder, e.g. a Prometheus
//! exporter):
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `lock_acquired_total` | counter | `store` | acquisitions |
//! | `lock_denied_total` | counter | `store` | acquires that ran out of attempts or time |
//! | `lock_released_total` | counter | `store` | releases by the owner (`release`, guards, `run`) |
//! | `lock_lost_total` | counter | `store` | holdings lost (extension refused, or deadline passed while extending failed) |
//! | `lock_errors_total` | counter | `store`, `operation`, `code` | store errors, by operation and [`LockError::code`](crate::LockError::code) |
//! | `lock_wait_seconds` | histogram | `store` | from the start of an acquire to its success |
//! | `lock_hold_seconds` | histogram | `store` | from an acquisition to its release |
//!
//!
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod armed;
mod config;
mod delegate;
mod error;
mod factory;
mod fence;
mod guard;
mod handle;
mod holding;
mod immediate;
mod lock;
mod lost;
mod manager;
mod notify;
mod observe;
mod outcome;
mod owner;
pub mod permits;
mod queue;
mod redact;
mod retry;
mod rw_lock;
mod semaphore;
mod serialized;
mod store;
mod store_factory;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;
mod unwind;
pub mod validate;

pub use async_trait::async_trait;
pub use config::LockConfig;
pub use delegate::DelegatingStore;
pub use error::{BoxError, LockError, StoreError};
pub use factory::{DEFAULT_TTL, FactoryOptions, LockFactory};
pub use fence::FenceCounter;
pub use guard::LockGuard;
pub use immediate::{Checked, ImmediateStore};
pub use lock::Lock;
pub use lost::LostLock;
pub use manager::LockManager;
pub use notify::ReleaseHub;
pub use outcome::{AcquireResult, Acquisition, ReleaseFuture};
pub use permits::{PermitRequest, PermitSet, PermitStore, PermitTable, PermitUsage};
pub use redact::redact_url;
pub use retry::{DEFAULT_RETRY_DELAY, RetryConfig};
pub use rw_lock::RwLock;
pub use semaphore::Semaphore;
pub use serialized::{SerializedLock, SerializedShare};
pub use store::{Capabilities, LockStore};
pub use store_factory::StoreFactory;
pub use validate::{MAX_KEY_LEN, MAX_OWNER_LEN, MAX_TTL};
