//! Redis lock store for [`lock_core`], on [`fred`].
//!
//! Locks shared by every process that talks to the same Redis: standalone, Sentinel or
//! Cluster (through fred's own configuration or URL schemes).
//!
//! * **One round trip per operation.** Acquire is one `EVALSHA` of a script doing
//!   `SET key owner NX [PX ttl]` plus the fencing token update; release, extend and force
//!   release are one `EVALSHA` each; `exists` is one `EXISTS`. Scripts are loaded once and
//!   reloaded transparently after `NOSCRIPT`.
//! * **Batches under load.** Acquires and releases that come while another of the store's
//!   commands is in flight are sent together, as one script call that runs each of them
//!   as its own script would (each atomic, with its own reply, error and token): many
//!   tasks pay the per-command costs once per batch. A lone task's operation goes at once;
//!   a queued one waits for a command in flight first, then takes one round trip with
//!   its batch. (Redis checks `maxmemory` before a script's first write only, so on a full
//!   `noeviction` server an acquire batched after a release may be granted where it would
//!   have been refused on its own.)
//!   [`RedisStoreOptions::with_max_in_flight`] is the knob (`0` turns batching off); no
//!   batching on Cluster.
//! * **Expiry by Redis's clock** (`PX`), never the application's. A lock without TTL has no
//!   expiry in Redis (`PTTL` = -1).
//! * **Fencing tokens**: every successful acquire returns a number strictly greater than every
//!   token minted before for that key by any process sharing the Redis, also after a Redis
//!   restart without persistence or a failover to a replica that lost the counter. See
//!   [Fencing tokens](#fencing-tokens).
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
//!   fencing counter is `lock:{orders.1}:fence`. The prefix may not contain braces.
//! * Every [`LockStore`](lock_core::LockStore) method checks its input first with
//!   [`lock_core::validate`] (key, owner, TTL and extension in range) and answers
//!   `InvalidArgument` before sending anything.
//! * Releasing or extending a key that is absent (never taken, expired, released) is
//!   `NotOwned`.
//! * Pub/sub is at-most-once: after a reconnect or a lagging message feed, every waiter of
//!   the store is woken to try again, and waiters keep polling at their retry `delay`.
//! * Needs Redis 5 or newer (or a compatible server such as Valkey): the acquire script
//!   reads `TIME` before it writes, which needs script effects replication, the default
//!   since Redis 5.
//! * TLS: a `rediss://` (or `valkeys://`, `rediss-cluster://`, …) URL connects with TLS,
//!   checking the server's certificate chain against the system's trusted roots and its
//!   name against the URL's host. It needs this crate's `rustls` feature (rustls with
//!   ring; `tls` is its former name) or `native-tls` (the platform's library); without
//!   one it is `InvalidArgument` instead of silently connecting in clear text. For a
//!   private CA or a client certificate, give a fred `Config` with its `TlsConfig` to
//!   [`RedisStoreOptions::from_config`].
//! * URLs: `redis://`, `rediss://`, `redis-cluster://`, `redis-sentinel://` and, with the
//!   `unix-sockets` feature (Unix only), `redis+unix:///path` or `unix:///path`; each
//!   scheme also as `valkey…` (`valkey://`, `valkeys://`, …). See
//!   [`RedisStoreOptions::from_url`]. Sentinel and Unix sockets are tested against real
//!   servers the tests start (`tests/redis_sentinel.rs`, `tests/redis_unix_socket.rs`).
//!
//! # Fencing tokens
//!
//! The acquire script mints `token = max(counter + 1, server time in microseconds)` from
//! Redis's `TIME` and stores it in the key's counter (`lock:{orders.1}:fence`, in the lock's
//! Cluster slot). The counter expires [a margin](RedisStoreOptions::with_fence_margin)
//! (default 10 s) after its lock's expiry or release; a lock without TTL keeps its counter
//! without expiry while held. So nothing stays in Redis per lock key forever, and tokens keep
//! increasing when the counter is gone: expired, flushed, lost in a restart without
//! persistence or in a failover to a replica that never received it.
//!
//! **The assumption that remains: the Redis server's clock does not step back** (by more
//! than the time since the key's last acquisition; after a failover, the new primary's clock
//! must not be behind the old primary's by more than that). While the counter lives, a clock
//! step does not matter; two acquisitions within one microsecond still get increasing tokens
//! (the counter). Tokens are microseconds since 1970, about 1.8 × 10¹⁵: exact in an `f64`
//! or a JavaScript number, and a consumer comparing them needs no other change.
//!
//! Upgrading from a version that counted tokens from 1: the first token per key jumps to the
//! clock value, which is greater, so tokens keep increasing. Do not run the old and the new
//! version against the same keys at once: the old one's counter restarts at 1 once the new
//! one's counter has expired.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod options;
mod scripts;
mod store;
mod subscriber;

use lock_core::StoreFactory;

pub use fred;
pub use options::{
    DEFAULT_FENCE_MARGIN, DEFAULT_MAX_IN_FLIGHT, DEFAULT_PREFIX, DEFAULT_TIMEOUT, DEFAULT_URL,
    RedisStoreOptions,
};
pub use scripts::LockScripts;
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
