//! Redis lock store for [`lock_core`], on [`fred`].
//!
//! Locks shared by every process that talks to the same Redis: standalone, Sentinel or
//! Cluster (through fred's own configuration or URL schemes).
//!
//! * **One round trip per operation.** Acquire is one `EVALSHA` of a script doing
//!   `SET key owner NX [PX ttl]` plus the fencing counter `INCR`; release, extend and force
//!   release are one `EVALSHA` each; `exists` is one `EXISTS`. Scripts are loaded once and
//!   reloaded transparently after `NOSCRIPT`.
//! * **Expiry by Redis's clock** (`PX`), never the application's. A lock without TTL has no
//!   expiry in Redis (`PTTL` = -1).
//! * **Fencing tokens**: every successful acquire returns a number strictly greater than every
//!   token minted before for that key by any process sharing the Redis (a counter key beside
//!   the lock that is never deleted).
//! * **Release notification**: releases are published on `{prefix}released`; one subscriber
//!   connection per store (started on first need) wakes the waiters of this process.
//! * **Holder TTL**: a denied acquire reports the holder's remaining time.
//! * **No false "denied" after a reconnect**: lock commands are never re-sent by fred; a lost
//!   connection surfaces as [`LockError::Storage`](lock_core::LockError::Storage).
//! * **Bounded**: every operation fails with `Storage` after the operation timeout
//!   (default 5 s).
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use lock_core::LockStore;
//! use lock_store_redis::{RedisStore, RedisStoreOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), lock_core::LockError> {
//! let store = RedisStore::connect(
//!     RedisStoreOptions::from_url("redis://127.0.0.1:6379")
//!         .with_prefix("myapp:lock:")
//!         .with_timeout(Duration::from_secs(2)),
//! )
//! .await?;
//!
//! let got = store.try_acquire("orders.1", "owner-token", Some(Duration::from_secs(30))).await?;
//! if got.acquired {
//!     let token = got.fencing_token; // pass it along to the resource you protect
//!     # let _ = token;
//!     // ... critical section ...
//!     store.delete("orders.1", "owner-token").await?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! In an application, hand the store to `lock_core::LockFactory`, or register
//! [`redis(options)`](redis) as a named store of a `LockManager`; the store is then built on
//! first use.
//!
//! # Sharing the application's connection
//!
//! ```no_run
//! use fred::prelude::*;
//! use lock_store_redis::{RedisStore, RedisStoreOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let client = Builder::from_config(Config::from_url("redis://127.0.0.1:6379")?).build()?;
//! client.init().await?;
//! let store = RedisStore::connect(RedisStoreOptions::from_client(client.clone())).await?;
//! # let _ = store;
//! # Ok(())
//! # }
//! ```
//!
//! # Choices
//!
//! * Keys are `{prefix}{key}` with the key as a Cluster hash tag (`lock:{orders.1}`); the
//!   fencing counter is `lock:{orders.1}:fence`. The prefix may not contain braces. Empty
//!   keys and zero TTLs are rejected with `InvalidArgument`.
//! * Releasing or extending a key that is absent (never taken, expired, released) is
//!   `NotOwned`.
//! * Pub/sub is at-most-once: after a reconnect or a lagging message feed, every waiter of
//!   the store is woken to try again, and waiters keep polling at their retry `delay`.
//! * A `rediss://` URL needs this crate's `tls` (rustls) or `native-tls` feature; without one
//!   it is rejected instead of silently connecting in clear text.
#![warn(missing_docs)]

mod options;
mod scripts;
mod store;
mod subscriber;

use lock_core::StoreFactory;

pub use fred;
pub use options::{DEFAULT_PREFIX, DEFAULT_TIMEOUT, DEFAULT_URL, RedisStoreOptions};
pub use store::RedisStore;

/// The Redis store factory for a `LockManager` configuration: the store connects on first use.
///
/// ```
/// use lock_store_redis::{redis, RedisStoreOptions};
/// let factory = redis(RedisStoreOptions::from_url("redis://127.0.0.1:6379"));
/// # let _ = factory;
/// ```
pub fn redis(options: RedisStoreOptions) -> StoreFactory {
    StoreFactory::new(move || RedisStore::connect(options.clone()))
}
