//! The Redis implementation of [`LockStore`](lock_core::LockStore): the store, its keys and how it is shared.
//!
//! * `connect.rs`: building a store (a URL, a fred configuration, a client or a pool);
//! * `command.rs`: running one script or command (one attempt, the operation timeout,
//!   the reload on `NOSCRIPT`) and reading fred's errors and the scripts' replies;
//! * `batch.rs`: acquires and releases sent together while the in-flight limit is reached;
//! * `locks.rs`: the [`LockStore`](lock_core::LockStore) methods (one key per lock);
//! * `permits.rs`: the [`PermitStore`](lock_core::PermitStore) methods (one hash per key).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fred::clients::{Client, Pool};
use fred::error::Error as FredError;
use fred::interfaces::ClientLike;
use fred::types::ClientState;
use fred::types::config::{Config, ConnectionConfig, Options, PerformanceConfig, ReconnectPolicy};
use fred::types::scripts::Script;
use lock_core::{LockError, ReleaseFuture, ReleaseHub};

use crate::options::{Connection, RedisStoreOptions};
use crate::scripts;
use crate::subscriber::{Subscriber, SubscriberConfig};
use lock_core::redact_url;

mod batch;
mod command;
mod connect;
mod locks;
mod permits;

pub(crate) use command::cause;
use command::millis;

/// A [`LockStore`](lock_core::LockStore) on Redis (standalone, Sentinel or Cluster), through `fred`.
///
/// Cheap to clone: clones share the connection, the scripts and the release subscriber.
///
/// * `try_acquire`/`save`: one `EVALSHA` of a script doing `SET key owner NX [PX ttl]` and,
///   on success, minting a fencing token (one round trip). While other operations of the
///   store are in flight, acquires and releases go together in one batch script instead
///   ([`RedisStoreOptions::with_max_in_flight`](crate::RedisStoreOptions::with_max_in_flight)),
///   still one round trip each.
/// * `delete`/`extend`: one `EVALSHA` of an owner-checked script; a key that is absent or
///   held by another owner is [`LockError::NotOwned`].
/// * `force_delete`: one `EVALSHA` (`DEL`, and `PUBLISH` when something was deleted).
/// * `exists`: `EXISTS`.
///
/// A script body is sent only when the server answers `NOSCRIPT` (a flushed script cache, a
/// failover): that one operation then takes three round trips (`EVALSHA`, `SCRIPT LOAD`,
/// `EVAL`), and the next ones are one `EVALSHA` again.
///
/// # Reconnects
///
/// Lock commands are sent with at most one attempt: fred never re-sends them after a
/// reconnect. (A re-sent `SET NX` that had already succeeded would answer "held" while the
/// lock is ours.) A connection lost mid-command therefore surfaces as
/// [`LockError::Storage`], and the outcome on the server is unknown: after a failed
/// acquire the caller should release with its owner token (lock-core does this).
///
/// # Keys
///
/// A lock on `key` is the Redis string `{prefix}{key}` with the key wrapped in a hash tag
/// (`lock:{orders.1}`); its fencing counter is `lock:{orders.1}:fence` in the same Cluster
/// slot. The counter expires a margin after its lock ends
/// ([`RedisStoreOptions::with_fence_margin`]), so Redis keeps no key per lock key forever.
/// On Cluster, a key whose first character is `}` has an empty hash tag and cannot be used
/// (the two keys would hash apart).
///
/// # Fencing tokens
///
/// A token is `max(counter + 1, server time in microseconds)`, computed in the acquire
/// script from Redis's `TIME`. Tokens therefore keep increasing after the counter has
/// expired, after a restart without persistence and after a failover to a replica that lost
/// the counter, as long as the server clock does not step back (see the crate docs).
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    commands: Commands,
    /// Whether the store opened the connection itself (and closes it when dropped).
    owned: bool,
    prefix: String,
    channel: String,
    timeout: Duration,
    /// Where the store connects, without the password (for errors and log events).
    endpoint: String,
    /// How long a fence counter outlives its lock, in milliseconds.
    fence_margin_ms: u64,
    /// Per-command options: one attempt, the operation timeout.
    options: Options,
    acquire: Script,
    release: Script,
    force_release: Script,
    extend: Script,
    /// Acquires and releases sent together (`batch.rs`).
    batch: Script,
    batcher: batch::Batcher,
    hub: ReleaseHub,
    subscriber: Subscriber,
}

#[derive(Clone)]
enum Commands {
    Client(Client),
    Pool(Pool),
}

impl Commands {
    fn client(&self) -> &Client {
        match self {
            Commands::Client(client) => client,
            Commands::Pool(pool) => pool.next_connected(),
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let connection = match &self.inner.commands {
            Commands::Client(client) => format!("client {}", client.id()),
            Commands::Pool(pool) => format!("pool of {}", pool.size()),
        };
        f.debug_struct("RedisStore")
            .field("connection", &connection)
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// The reconnect policy of connections the store opens: forever, 100 ms doubling to 2 s.
fn default_policy() -> ReconnectPolicy {
    ReconnectPolicy::new_exponential(0, 100, 2_000, 2)
}

impl RedisStore {
    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The operation timeout.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The Redis key holding the lock on `key`: `{prefix}{key}` with the key as hash tag.
    ///
    /// ```
    /// use lock_store_redis::{fred::prelude::Client, RedisStore};
    /// let store = RedisStore::from_client(Client::default());
    /// assert_eq!(store.redis_key("orders.1"), "lock:{orders.1}");
    /// assert_eq!(store.fence_key("orders.1"), "lock:{orders.1}:fence");
    /// ```
    pub fn redis_key(&self, key: &str) -> String {
        self.key_with(key, "")
    }

    /// The Redis key of the fencing counter of `key` (same hash slot as the lock).
    pub fn fence_key(&self, key: &str) -> String {
        self.key_with(key, ":fence")
    }

    /// The Redis key marking that an acquire of `key` was denied since its last release
    /// (same hash slot as the lock): only then does a release publish.
    pub fn waiting_key(&self, key: &str) -> String {
        self.key_with(key, ":waiting")
    }

    /// `{prefix}{key}{suffix}`, built in one allocation of the right size (`format!`
    /// costs about ten times as much, and every operation builds three keys).
    fn key_with(&self, key: &str, suffix: &str) -> String {
        let prefix = &self.inner.prefix;
        let mut name = String::with_capacity(prefix.len() + key.len() + 2 + suffix.len());
        name.push_str(prefix);
        name.push('{');
        name.push_str(key);
        name.push('}');
        name.push_str(suffix);
        name
    }

    /// The Lua text of this store's lock acquire and release scripts, as it sends them.
    pub fn lock_scripts(&self) -> crate::LockScripts {
        crate::LockScripts {
            acquire: scripts::acquire(),
            release: scripts::release(&self.inner.channel, self.inner.fence_margin_ms),
        }
    }

    /// The pub/sub channel on which releases are published (payload: the Redis key).
    pub fn release_channel(&self) -> &str {
        &self.inner.channel
    }

    /// Where the store connects (its servers), without the password.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// A storage error with this store's name and endpoint.
    fn context(&self, error: LockError) -> LockError {
        match error {
            LockError::Storage(source) => {
                LockError::store_failed("redis", self.inner.endpoint.as_str(), source)
            }
            other => other,
        }
    }

    /// Wake this process's waiters for `key` (nothing to do, and no key built, when
    /// nobody in this process waits).
    fn notify_local(&self, key: &str) {
        if self.inner.hub.has_listeners() {
            self.inner.hub.notify(&self.redis_key(key));
        }
    }

    /// The client lock commands go through (a pool's next client for a pool).
    pub fn client(&self) -> &Client {
        self.inner.commands.client()
    }

    /// The Redis keys a release of `key` touches: the lock, its waiting mark and its
    /// fencing counter (the order the release scripts read them in).
    fn release_keys(&self, key: &str) -> Vec<String> {
        vec![
            self.redis_key(key),
            self.waiting_key(key),
            self.fence_key(key),
        ]
    }

    /// A listener for the release of the Redis key (or hash) `redis_key`: registered
    /// first, so a release after this call is seen, and the subscriber is started.
    fn listen(&self, redis_key: &str) -> ReleaseFuture {
        let listener = self.inner.hub.listen(redis_key);
        self.inner.subscriber.ensure_started();
        listener
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        if let (Commands::Client(client), Ok(runtime)) =
            (&self.commands, tokio::runtime::Handle::try_current())
        {
            let client = client.clone();
            runtime.spawn(async move {
                let _ = client.quit().await;
            });
        }
    }
}
