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

/// The default in-flight limit of the store's acquires and releases, beyond which they are
/// sent in batches ([`RedisStoreOptions::with_max_in_flight`]).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;

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
    pub(crate) max_in_flight: usize,
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
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
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
    /// A query parameter fred would not read for the scheme (anything but `node` on a
    /// cluster URL; `sentinelServiceName`, `node`, `sentinelUsername`, `sentinelPassword` on
    /// a sentinel URL) is refused rather than ignored. The last two take effect only with
    /// fred's `sentinel-auth` feature.
    ///
    /// A malformed URL is reported as [`LockError::InvalidArgument`] by
    /// [`RedisStore::connect`](crate::RedisStore::connect).
    ///
    /// With a single sentinel, fred logs the warning "Failed to read any known sentinel
    /// nodes." on every connect (the sentinel knows no other sentinel): harmless, and gone
    /// with two or more sentinels. fred has no setting for it; filter its log target
    /// `fred::router::sentinel` if it is noise.
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

    /// How many commands carrying the store's acquires and releases may be on the wire at
    /// once (default [`DEFAULT_MAX_IN_FLIGHT`]); `0` = no limit and no batching: every
    /// operation is its own command.
    ///
    /// An operation that comes while none is in flight is sent at once, as its own script:
    /// a lone task never waits. Operations that come while others are in flight are
    /// collected and sent together, as one script call that runs each of them exactly as
    /// its own script would (each one atomic, with its own reply, its own fencing token and
    /// owner check); when this many commands are in flight, the collected operations wait
    /// for one to return. With many concurrent tasks this is what keeps the store fast:
    /// the server runs one script call, and the client sends and reads one command, for
    /// many operations. A queued operation stays within the operation timeout: when its
    /// time runs out before it could go, it is answered with the timeout error, unsent.
    ///
    /// On Redis Cluster the store never batches (a script may only touch one slot).
    pub fn with_max_in_flight(mut self, limit: usize) -> Self {
        self.max_in_flight = limit;
        self
    }

    /// The in-flight limit (see [`Self::with_max_in_flight`]).
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
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
            check_scheme(url)?;
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
            .field("max_in_flight", &self.max_in_flight)
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

/// A URL's scheme must be one of [`REDIS_SCHEMES`], followed by `://`.
fn check_scheme(url: &str) -> Result<(), LockError> {
    if let Some((scheme, _)) = url.split_once("://") {
        if REDIS_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
            return Ok(());
        }
        return Err(LockError::invalid(format!(
            "invalid redis URL {}: the scheme must be one of {}",
            redact_url(url),
            REDIS_SCHEMES.map(|s| format!("{s}://")).join(", ")
        )));
    }
    // Not a URL: shown only when it cannot hold a password (a known scheme, no user
    // info); anything else may be a secret pasted in the wrong place.
    let scheme = url
        .split_once(':')
        .map(|(scheme, _)| scheme.to_ascii_lowercase())
        .filter(|scheme| REDIS_SCHEMES.contains(&scheme.as_str()) && !url.contains('@'));
    Err(LockError::invalid(match scheme {
        Some(scheme) => {
            let shown = match redact_url(url) {
                redacted if redacted == "<unparsable url>" => url.to_owned(),
                redacted => redacted,
            };
            format!(
                "invalid redis URL {shown}: the scheme must be followed by \"://\" \
                 (expected {})",
                expected_form(&scheme)
            )
        }
        None => format!(
            "invalid redis URL: not a URL (expected {})",
            expected_form("redis")
        ),
    }))
}

/// The kinds of server a URL scheme names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Topology {
    Standalone,
    Cluster,
    Sentinel,
    Unix,
}

impl Topology {
    /// The topology of a (lowercase) scheme.
    fn of(scheme: &str) -> Self {
        if scheme.ends_with("-cluster") {
            Topology::Cluster
        } else if scheme.ends_with("-sentinel") {
            Topology::Sentinel
        } else if scheme == "unix" || scheme.ends_with("+unix") {
            Topology::Unix
        } else {
            Topology::Standalone
        }
    }

    /// The query parameters fred reads for this topology (`sentinelUsername` and
    /// `sentinelPassword` only when fred's `sentinel-auth` feature is on).
    fn parameters(self) -> &'static [&'static str] {
        match self {
            Topology::Standalone | Topology::Unix => &[],
            Topology::Cluster => &["node"],
            Topology::Sentinel => &[
                "sentinelServiceName",
                "node",
                "sentinelUsername",
                "sentinelPassword",
            ],
        }
    }
}

/// The form of a URL with this (lowercase) scheme, for messages.
pub(crate) fn expected_form(scheme: &str) -> String {
    match Topology::of(scheme) {
        Topology::Standalone => format!("{scheme}://[[user]:password@]host[:port][/db]"),
        Topology::Cluster => {
            format!("{scheme}://[[user]:password@]host:port[?node=host:port&node=…]")
        }
        Topology::Sentinel => format!(
            "{scheme}://[[user]:password@]host[:port][/db]?sentinelServiceName=name\
             [&node=host:port…], e.g. {scheme}://127.0.0.1:26379/0?sentinelServiceName=mymaster"
        ),
        Topology::Unix => format!("{scheme}:///path/to/redis.sock"),
    }
}

/// Every query parameter of a URL must be one fred reads for its scheme: fred ignores the
/// others silently (a misspelt `sentinelServiceName`, a `node` on a standalone URL).
/// The message shows the URL without its query, whose values may be secrets.
pub(crate) fn check_query(url: &str, scheme: &str) -> Result<(), LockError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok(());
    };
    // A `?` in an unencoded password starts no query (`redis://:p?w@host`): an `@`
    // followed by what reads as a host is user info; fred's parse reports such a URL.
    if query
        .rfind('@')
        .is_some_and(|at| !query[at + 1..].contains(['=', '&']))
    {
        return Ok(());
    }
    let query = query.split('#').next().unwrap_or_default();
    let accepted = Topology::of(scheme).parameters();
    let Some(name) = query
        .split('&')
        .map(|pair| pair.split('=').next().unwrap_or_default())
        .find(|name| !name.is_empty() && !accepted.contains(name))
    else {
        return Ok(());
    };
    let takes = if accepted.is_empty() {
        format!("{scheme}:// URLs take no query parameters")
    } else {
        format!("{scheme}:// URLs take {}", accepted.join(", "))
    };
    let problem = match name {
        "node" => format!("query parameter {name:?} is for cluster and sentinel URLs only"),
        "sentinelServiceName" | "sentinelUsername" | "sentinelPassword" => {
            format!("query parameter {name:?} is for sentinel URLs only")
        }
        _ => format!("unknown query parameter {name:?}"),
    };
    Err(LockError::invalid(format!(
        "invalid redis URL {}?…: {problem} ({takes})",
        redact_url(base)
    )))
}

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

    fn scheme_error(url: &str) -> String {
        match RedisStoreOptions::from_url(url).validate() {
            Err(LockError::InvalidArgument(text)) => text,
            other => panic!("{url}: expected an InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn a_url_without_slashes_is_shown_unless_it_may_hold_a_secret() {
        assert_eq!(
            scheme_error("redis:/127.0.0.1"),
            "invalid redis URL redis:/127.0.0.1: the scheme must be followed by \"://\" \
             (expected redis://[[user]:password@]host[:port][/db])"
        );
        assert!(scheme_error("redis:/127.0.0.1?password=x").contains("password=***"));
        for secret in ["hunter2", "redis:/:hunter2@127.0.0.1", "localhost:6379"] {
            let text = scheme_error(secret);
            assert_eq!(
                text,
                "invalid redis URL: not a URL (expected redis://[[user]:password@]host[:port][/db])"
            );
        }
        assert!(scheme_error("http://h").contains("the scheme must be one of redis://"));
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
