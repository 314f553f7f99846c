//! How a [`RedisStore`](crate::RedisStore) reaches Redis, and how it names its keys.

use std::fmt;
use std::time::Duration;

use fred::clients::{Client, Pool};
use fred::interfaces::ClientLike;
use fred::types::config::Config;
use lock_core::LockError;
use lock_core::redact_url;

/// The default key prefix: lock keys look like `lock:{orders.1}`.
pub const DEFAULT_PREFIX: &str = "lock:";

/// The default operation timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The default fence margin: how long a key's fencing counter outlives its lock.
pub const DEFAULT_FENCE_MARGIN: Duration = Duration::from_secs(10);

/// The default URL, a Redis server on this machine.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// Where the store's connections come from.
#[derive(Clone)]
pub(crate) enum Connection {
    /// A URL; the store builds and owns its client.
    Url(String),
    /// A fred configuration (Sentinel, Cluster, TLS, …); the store builds and owns its client.
    Config(Box<Config>),
    /// A client the application already has; the store shares it and never closes it.
    Client(Client),
    /// A pool the application already has; the store shares it and never closes it.
    Pool(Pool),
}

/// Options of the Redis store: a connection source, a key prefix and an operation timeout.
///
/// Builder style: start from a connection source, then chain setters.
///
/// ```
/// use std::time::Duration;
/// use lock_store_redis::RedisStoreOptions;
///
/// let options = RedisStoreOptions::from_url("redis://:secret@127.0.0.1:6379/2")
///     .with_prefix("myapp:lock:")
///     .with_timeout(Duration::from_secs(2));
/// assert_eq!(options.prefix(), "myapp:lock:");
/// // `Debug` never shows the password.
/// assert!(!format!("{options:?}").contains("secret"));
/// ```
#[derive(Clone)]
pub struct RedisStoreOptions {
    pub(crate) connection: Connection,
    pub(crate) prefix: String,
    pub(crate) timeout: Duration,
    pub(crate) fence_margin: Duration,
}

impl Default for RedisStoreOptions {
    /// [`DEFAULT_URL`], prefix [`DEFAULT_PREFIX`], timeout [`DEFAULT_TIMEOUT`].
    fn default() -> Self {
        Self::from_url(DEFAULT_URL)
    }
}

impl RedisStoreOptions {
    fn with_connection(connection: Connection) -> Self {
        RedisStoreOptions {
            connection,
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            fence_margin: DEFAULT_FENCE_MARGIN,
        }
    }

    /// Connect from a URL, parsed by fred when the store connects:
    ///
    /// * `redis://[[user]:password@]host[:port][/db]`;
    /// * `rediss://…` (TLS: needs the `rustls` or `native-tls` feature of this crate);
    /// * `redis-cluster://host:port?node=host:port&node=…`;
    /// * `redis-sentinel://host:port/db?sentinelServiceName=name&node=host:port` (the
    ///   hosts are the sentinels; the store connects to the primary they name);
    /// * `redis+unix:///path/to/redis.sock` or `unix:///path/to/redis.sock` (needs the
    ///   `unix-sockets` feature, Unix only);
    /// * each also with `valkey` for `redis` (`valkey://`, `valkeys://`,
    ///   `valkey-cluster://`, `valkey-sentinel://`, `valkey+unix://`).
    ///
    /// A malformed URL is reported as [`LockError::InvalidArgument`] by
    /// [`RedisStore::connect`](crate::RedisStore::connect).
    pub fn from_url(url: impl Into<String>) -> Self {
        Self::with_connection(Connection::Url(url.into()))
    }

    /// Connect with a fred [`Config`] (any topology or TLS setting fred supports).
    ///
    /// The store's own connection always fails fast on its first connection (one attempt,
    /// bounded by the operation timeout), whatever `fail_fast` says; the reconnect policy
    /// applies to connections lost later.
    pub fn from_config(config: Config) -> Self {
        Self::with_connection(Connection::Config(Box::new(config)))
    }

    /// Share a client the application already has (the seed's `connectionName` idea).
    ///
    /// The store never closes it. If it was never connected, [`RedisStore::connect`](crate::RedisStore::connect)
    /// connects it. The subscriber used for release notification is a separate connection
    /// built from the same configuration.
    pub fn from_client(client: Client) -> Self {
        Self::with_connection(Connection::Client(client))
    }

    /// Share a pool the application already has; each operation uses the pool's next client.
    ///
    /// The store never closes it. If it was never connected, [`RedisStore::connect`](crate::RedisStore::connect)
    /// connects it.
    pub fn from_pool(pool: Pool) -> Self {
        Self::with_connection(Connection::Pool(pool))
    }

    /// Prefix of every key the store writes (default [`DEFAULT_PREFIX`]), so lock keys never
    /// collide with the application's own keys. The release channel is `{prefix}released`.
    ///
    /// Must not contain `{` or `}`: the store wraps the lock key in a hash tag so that a
    /// lock and its fencing counter live in one Cluster slot. Checked when the store is built.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one store operation may take before it fails with
    /// [`LockError::Storage`] (default [`DEFAULT_TIMEOUT`]). Also the connect timeout of
    /// connections the store opens itself. Must not be zero.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a key's fencing counter outlives its lock (default [`DEFAULT_FENCE_MARGIN`]);
    /// 1 ms to [`MAX_TTL`](lock_core::validate::MAX_TTL).
    ///
    /// A fencing token is the greater of "counter + 1" and the Redis server's time in
    /// microseconds. The counter only matters while the clock alone could repeat a token:
    /// for acquisitions within one microsecond, and if the server clock steps back. It
    /// expires this long after its lock's expiry (or release), so no key per lock key stays in
    /// Redis forever. A longer margin also covers larger backward steps of the server clock,
    /// at the cost of keeping recently used counters longer.
    pub fn with_fence_margin(mut self, margin: Duration) -> Self {
        self.fence_margin = margin;
        self
    }

    /// The fence margin.
    pub fn fence_margin(&self) -> Duration {
        self.fence_margin
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The operation timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Check what can be checked without a server.
    pub(crate) fn validate(&self) -> Result<(), LockError> {
        if self.prefix.contains(['{', '}']) {
            return Err(LockError::invalid(format!(
                "redis key prefix {:?} must not contain '{{' or '}}': the store uses a hash tag \
                 to keep a lock and its fencing counter in one cluster slot",
                self.prefix
            )));
        }
        if self.timeout.is_zero() {
            return Err(LockError::invalid(
                "redis store timeout must be greater than zero",
            ));
        }
        lock_core::validate::duration("redis fence margin", self.fence_margin)?;
        if let Connection::Url(url) = &self.connection {
            let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
            if !scheme
                .as_deref()
                .is_some_and(|s| REDIS_SCHEMES.contains(&s))
            {
                return Err(LockError::invalid(format!(
                    "invalid redis URL {}: the scheme must be one of {}",
                    redact_url(url),
                    REDIS_SCHEMES.map(|s| format!("{s}://")).join(", ")
                )));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for RedisStoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreOptions")
            .field("connection", &self.connection)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("fence_margin", &self.fence_margin)
            .finish()
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Connection::Url(url) => f.debug_tuple("Url").field(&redact_url(url)).finish(),
            // fred's own `Debug` of a `Config` prints the password: show the servers only.
            Connection::Config(config) => f
                .debug_struct("Config")
                .field("hosts", &config.server.hosts())
                .field("database", &config.database)
                .finish_non_exhaustive(),
            Connection::Client(client) => f.debug_tuple("Client").field(&client.id()).finish(),
            Connection::Pool(pool) => f.debug_tuple("Pool").field(&pool.size()).finish(),
        }
    }
}

/// The URL schemes the store accepts: standalone, TLS, Cluster, Sentinel (each also as
/// `valkey…`), and a Unix socket (`redis+unix`, `valkey+unix`, `unix`).
const REDIS_SCHEMES: [&str; 15] = [
    "redis",
    "rediss",
    "redis-cluster",
    "rediss-cluster",
    "redis-sentinel",
    "rediss-sentinel",
    "valkey",
    "valkeys",
    "valkey-cluster",
    "valkeys-cluster",
    "valkey-sentinel",
    "valkeys-sentinel",
    "redis+unix",
    "valkey+unix",
    "unix",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_with_braces_is_rejected() {
        let err = RedisStoreOptions::default()
            .with_prefix("a{b}:")
            .validate()
            .unwrap_err();
        assert!(matches!(err, LockError::InvalidArgument(_)), "{err:?}");
    }

    #[test]
    fn fence_margin_out_of_range_is_rejected() {
        for margin in [Duration::ZERO, Duration::from_micros(999), Duration::MAX] {
            let err = RedisStoreOptions::default()
                .with_fence_margin(margin)
                .validate()
                .unwrap_err();
            assert!(matches!(err, LockError::InvalidArgument(_)), "{err:?}");
        }
        assert!(
            RedisStoreOptions::default()
                .with_fence_margin(Duration::from_millis(1))
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn zero_timeout_is_rejected() {
        let err = RedisStoreOptions::default()
            .with_timeout(Duration::ZERO)
            .validate()
            .unwrap_err();
        assert!(matches!(err, LockError::InvalidArgument(_)), "{err:?}");
    }
}
