//! The Redis implementation of [`LockStore`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::{Client, Pool};
use fred::error::Error as FredError;
use fred::interfaces::{ClientLike, KeysInterface, LuaInterface};
use fred::types::config::{Config, ConnectionConfig, Options, PerformanceConfig, ReconnectPolicy};
use fred::types::scripts::Script;
use fred::types::{ClientState, Value};
use lock_core::{
    Acquisition, Capabilities, LockError, LockStore, ReleaseFuture, ReleaseHub, validate,
};

use crate::options::{Connection, RedisStoreOptions};
use crate::scripts;
use crate::subscriber::{Subscriber, SubscriberConfig};
use lock_core::redact_url;

/// A [`LockStore`] on Redis (standalone, Sentinel or Cluster), through `fred`.
///
/// Cheap to clone: clones share the connection, the scripts and the release subscriber.
///
/// * `try_acquire`/`save`: one `EVALSHA` of a script doing `SET key owner NX [PX ttl]` and,
///   on success, minting a fencing token (one round trip).
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

fn storage(error: FredError) -> LockError {
    LockError::Storage(cause(error))
}

/// A fred error as the cause of a storage error. fred words an I/O failure as the
/// `Debug` of the `io::Error` (`IO Error: Os { code: 111, kind: ConnectionRefused, … }`)
/// and keeps nothing else of it: that becomes the `io::Error` again (`Connection refused
/// (os error 111)`, its kind checkable), any other error stays fred's.
pub(crate) fn cause(error: FredError) -> lock_core::BoxError {
    if *error.kind() == fred::error::ErrorKind::IO {
        if let Some(io) = io_error(error.details()) {
            return Box::new(io);
        }
    }
    Box::new(error)
}

/// The `io::Error` whose `Debug` is `details`, when it names an OS error code or a
/// message.
fn io_error(details: &str) -> Option<std::io::Error> {
    if let Some((_, rest)) = details.split_once("Os { code: ") {
        let code = rest.split(|c: char| !c.is_ascii_digit()).next()?;
        return code.parse().ok().map(std::io::Error::from_raw_os_error);
    }
    let (_, rest) = details
        .split_once("error: \"")
        .or_else(|| details.split_once("message: \""))?;
    let (message, _) = rest.split_once('"')?;
    Some(std::io::Error::other(message.to_owned()))
}

/// Whole milliseconds, rounded up (a validated duration: 1 ms to `MAX_TTL`, so it fits).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

mod connect;
mod permits;

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
        format!("{}{{{key}}}", self.inner.prefix)
    }

    /// The Redis key of the fencing counter of `key` (same hash slot as the lock).
    pub fn fence_key(&self, key: &str) -> String {
        format!("{}{{{key}}}:fence", self.inner.prefix)
    }

    /// The Redis key marking that an acquire of `key` was denied since its last release
    /// (same hash slot as the lock): only then does a release publish.
    pub fn waiting_key(&self, key: &str) -> String {
        format!("{}{{{key}}}:waiting", self.inner.prefix)
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

    /// One acquire attempt: what both [`LockStore::save`] and [`LockStore::try_acquire`] run.
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Option<Duration>,
    ) -> Result<Acquisition, LockError> {
        validate::save_input(key, owner, ttl)?;
        // Lengths as integers (fred sends them as bulk strings, as the script reads them).
        let lock_ms = ttl.map(|ttl| int(millis(ttl)));
        let fence_ms = ttl.map(|ttl| int(millis(ttl).saturating_add(self.inner.fence_margin_ms)));
        let reply: i64 = self
            .eval(&self.inner.acquire, || {
                let keys = vec![
                    self.redis_key(key),
                    self.fence_key(key),
                    self.waiting_key(key),
                ];
                let args = match (lock_ms, fence_ms) {
                    // The counter outlives the lock by the margin.
                    (Some(lock_ms), Some(fence_ms)) => vec![
                        owner.into(),
                        Value::Integer(lock_ms),
                        Value::Integer(fence_ms),
                    ],
                    // No expiry for either while held; the release gives the counter the
                    // margin.
                    _ => vec![owner.into(), Value::Integer(0)],
                };
                (keys, args)
            })
            .await?;
        Ok(match reply {
            // A token (tokens start at 1).
            token @ 1.. => Acquisition::acquired_with_token(token.unsigned_abs()),
            // Denied: -1 = the holder's lock never expires, -2 - n = n ms left.
            -1 => Acquisition::denied(None),
            denied @ ..=-2 => {
                Acquisition::denied(Some(Duration::from_millis((-2 - denied).unsigned_abs())))
            }
            0 => {
                return Err(self.context(LockError::storage_msg(
                    "unexpected reply 0 from the redis acquire script",
                )));
            }
        })
    }

    /// `EVALSHA`; on `NOSCRIPT`, `SCRIPT LOAD` (on every primary, so later calls are one
    /// `EVALSHA` again) and then `EVAL` of the body, which cannot answer `NOSCRIPT` even if
    /// the cache is flushed again in between. Every command gets one attempt.
    /// (fred's `Script::evalsha_with_reload` cannot take per-command options.)
    ///
    /// `call` gives the keys and arguments; it runs again only on `NOSCRIPT`, so the
    /// common path builds them once and copies nothing. The whole operation, reload
    /// included, is bounded by the operation timeout.
    async fn eval<R>(
        &self,
        script: &Script,
        call: impl Fn() -> (Vec<String>, Vec<Value>),
    ) -> Result<R, LockError>
    where
        R: fred::types::FromValue,
    {
        let started = tokio::time::Instant::now();
        let timeout = self.inner.timeout;
        let (keys, args) = call();
        // The common case, one command: fred's per-command timeout (in `options`) is the
        // operation timeout, so no second timer is armed around it.
        let error = match self
            .client()
            .with_options(&self.inner.options)
            .evalsha(script.sha1().clone(), keys, Value::Array(args))
            .await
        {
            Err(error) if error.details().starts_with("NOSCRIPT") => error,
            result => return result.map_err(|e| self.context(self.command_error(e))),
        };
        let Some(lua) = script.lua() else {
            return Err(storage(error));
        };
        // Reload, then send the body: both within what is left of the operation timeout.
        let left = timeout.saturating_sub(started.elapsed());
        let options = Options {
            timeout: Some(left.max(Duration::from_millis(1))),
            ..self.inner.options.clone()
        };
        let client = self.client().with_options(&options);
        let reload = async {
            client
                .script_load_cluster::<(), _>(lua.clone())
                .await
                .map_err(storage)?;
            let (keys, args) = call();
            client
                .eval(lua.clone(), keys, Value::Array(args))
                .await
                .map_err(storage)
        };
        within_result(left, reload)
            .await
            .map_err(|error| self.context(error))
    }

    /// A failed command as a storage error; a timeout says which operation timeout ran out.
    fn command_error(&self, error: FredError) -> LockError {
        if *error.kind() == fred::error::ErrorKind::Timeout {
            LockError::storage_msg(format!(
                "redis operation timed out after {:?}",
                self.inner.timeout
            ))
        } else {
            storage(error)
        }
    }
}

/// A whole number of milliseconds as a Redis integer argument (validated durations fit).
fn int(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Bound a fred future by the operation timeout.
async fn within<T>(
    timeout: Duration,
    future: impl Future<Output = Result<T, FredError>>,
) -> Result<T, LockError> {
    within_result(timeout, async { future.await.map_err(storage) }).await
}

async fn within_result<T>(
    timeout: Duration,
    future: impl Future<Output = Result<T, LockError>>,
) -> Result<T, LockError> {
    match tokio::time::timeout(timeout, future).await {
        Ok(result) => result,
        Err(_) => Err(LockError::storage_msg(format!(
            "redis operation timed out after {timeout:?}"
        ))),
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

#[async_trait]
impl LockStore for RedisStore {
    async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError> {
        Ok(self.acquire(key, owner, ttl).await?.acquired)
    }

    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        validate::delete_input(key, owner)?;
        let deleted: i64 = self
            .eval(&self.inner.release, || {
                let keys = vec![
                    self.redis_key(key),
                    self.waiting_key(key),
                    self.fence_key(key),
                ];
                (keys, vec![owner.into()])
            })
            .await?;
        if deleted == 1 {
            // Waiters of this process need not wait for the pub/sub round trip.
            self.notify_local(key);
            Ok(())
        } else {
            Err(LockError::NotOwned)
        }
    }

    async fn force_delete(&self, key: &str) -> Result<(), LockError> {
        validate::key(key)?;
        let deleted: i64 = self
            .eval(&self.inner.force_release, || {
                let keys = vec![
                    self.redis_key(key),
                    self.waiting_key(key),
                    self.fence_key(key),
                ];
                (keys, Vec::new())
            })
            .await?;
        if deleted > 0 {
            self.notify_local(key);
        }
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, LockError> {
        validate::key(key)?;
        let redis_key = self.redis_key(key);
        let count: i64 = within(
            self.inner.timeout,
            self.client()
                .with_options(&self.inner.options)
                .exists(redis_key),
        )
        .await
        .map_err(|error| self.context(error))?;
        Ok(count > 0)
    }

    async fn extend(&self, key: &str, owner: &str, duration: Duration) -> Result<(), LockError> {
        validate::extend_input(key, owner, duration)?;
        let lock_ms = millis(duration);
        let fence_ms = lock_ms.saturating_add(self.inner.fence_margin_ms);
        let extended: i64 = self
            .eval(&self.inner.extend, || {
                let keys = vec![self.redis_key(key), self.fence_key(key)];
                let args = vec![
                    owner.into(),
                    Value::Integer(int(lock_ms)),
                    Value::Integer(int(fence_ms)),
                ];
                (keys, args)
            })
            .await?;
        if extended == 1 {
            Ok(())
        } else {
            Err(LockError::NotOwned)
        }
    }

    fn name(&self) -> &str {
        "redis"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    async fn try_acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Option<Duration>,
    ) -> Result<Acquisition, LockError> {
        self.acquire(key, owner, ttl).await
    }

    fn release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        // Register first: a release after this line is seen by this listener.
        let listener = self.inner.hub.listen(&self.redis_key(key));
        self.inner.subscriber.ensure_started();
        Some(listener)
    }

    fn permits(&self) -> Option<&dyn lock_core::PermitStore> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fred_io_errors_become_io_errors_again() {
        let refused = FredError::new(
            fred::error::ErrorKind::IO,
            r#"Os { code: 111, kind: ConnectionRefused, message: "Connection refused" }"#,
        );
        let refused = cause(refused);
        let io = refused
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
        let custom = FredError::new(
            fred::error::ErrorKind::IO,
            r#"Custom { kind: Other, error: "tls handshake eof" }"#,
        );
        assert_eq!(cause_text(custom), "tls handshake eof");
        let auth = FredError::new(fred::error::ErrorKind::Auth, "WRONGPASS invalid password");
        let auth = cause(auth);
        assert!(auth.is::<FredError>(), "{auth}");
    }

    fn cause_text(error: FredError) -> String {
        cause(error).to_string()
    }
}
