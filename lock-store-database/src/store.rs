use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lock_core::{
    AcquireResult, Acquisition, Capabilities, LockError, LockStore, PermitStore, ReleaseFuture,
    StoreFactory, validate,
};
use tokio::time::Instant;

use crate::backend::Backend;
use crate::engine::{self, Operations};
use crate::error::TableError;
use crate::options::DatabaseStoreOptions;
use crate::sql::AcquireRow;

#[cfg(not(any(feature = "postgres", feature = "mysql", feature = "sqlite")))]
compile_error!(
    "lock-store-database needs at least one of the features `postgres`, `mysql`, `sqlite`"
);

/// The longest key accepted, in bytes of UTF-8 (the key column is `VARBINARY(1024)` on
/// MySQL; PostgreSQL and SQLite use the same limit so a key works everywhere). Longer
/// keys are [`LockError::InvalidArgument`]. The same as [`lock_core::MAX_KEY_LEN`].
pub const MAX_KEY_BYTES: usize = lock_core::MAX_KEY_LEN;

/// The longest owner token accepted, in bytes (the column is `VARBINARY(255)` on
/// MySQL); the same as [`lock_core::MAX_OWNER_LEN`]. Owner tokens made by `lock-core`
/// are 32 characters.
pub const MAX_OWNER_BYTES: usize = lock_core::MAX_OWNER_LEN;

/// A lock store in a SQL table: PostgreSQL, MySQL/MariaDB or SQLite.
///
/// Built with [`DatabaseStore::connect`] (or lazily through [`database`]). Cheap to
/// clone: clones share the pool and, on PostgreSQL, the release listener.
///
/// Every operation is one atomic statement judged by one clock per backend (see the
/// crate docs for the SQL, the clock and the round trips per operation). Each call is
/// bounded by the operation timeout.
///
/// **Cancel safety:** dropping an operation's future cannot leave a half-done write
/// (each write is one statement), but a statement already sent may still commit: an
/// acquire cancelled or timed out may have taken the lock, which then stays held until
/// its TTL runs out or it is force-released.
#[derive(Clone)]
pub struct DatabaseStore {
    inner: Arc<Inner>,
}

struct Inner {
    ops: Arc<dyn Operations>,
    table: String,
    timeout: Duration,
    /// Redacted, for `Debug` only.
    endpoint: String,
}

impl fmt::Debug for DatabaseStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseStore")
            .field("backend", &self.inner.ops.backend())
            .field("url", &self.inner.endpoint)
            .field("table", &self.inner.table)
            .field("operation_timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// A [`StoreFactory`] for a [`DatabaseStore`]: the `database` driver of a
/// [`LockManager`](lock_core::LockManager) configuration. The store connects (and
/// creates its table) on first use; a failed connect is retried on the next use.
///
/// ```no_run
/// use lock_store_database::{database, DatabaseStoreOptions};
/// let factory = database(DatabaseStoreOptions::new("sqlite://locks.db"));
/// ```
pub fn database(options: DatabaseStoreOptions) -> StoreFactory {
    StoreFactory::new(move || DatabaseStore::connect(options.clone()))
}

impl DatabaseStore {
    /// Connect (opening a pool for a URL), check the table name, and create the table
    /// if it is missing and [`create_table`](DatabaseStoreOptions::create_table) is on.
    /// The whole build ends within one
    /// [`operation_timeout`](DatabaseStoreOptions::operation_timeout).
    ///
    /// Errors: [`LockError::InvalidArgument`] for a malformed URL or table name;
    /// [`LockError::Storage`] when the database cannot be reached in time or the table
    /// is missing (the message names the store, the endpoint without its password, and
    /// the table when it is missing).
    pub async fn connect(options: DatabaseStoreOptions) -> Result<DatabaseStore, LockError> {
        let timeout = options.operation_timeout;
        if timeout.is_zero() {
            return Err(LockError::invalid(
                "operation_timeout must be greater than zero",
            ));
        }
        let deadline = Instant::now() + timeout;
        let ops = engine::open(&options)?;
        let store = DatabaseStore {
            inner: Arc::new(Inner {
                ops,
                table: options.table_name.clone(),
                timeout,
                endpoint: options.endpoint(),
            }),
        };
        // The lock table, then the permits table (`crate::permits`).
        let prepared = async {
            store.prepare_table(options.create_table, deadline).await?;
            store
                .prepare_permit_table(options.create_table, deadline)
                .await
        }
        .await;
        match prepared {
            Ok(()) => Ok(store),
            // The table is missing or wrong: the connection itself worked.
            Err(LockError::Storage(source)) if source.is::<TableError>() => {
                Err(store.context(LockError::Storage(source)))
            }
            Err(LockError::Storage(source)) => Err(LockError::connect_failed(
                store.backend().name(),
                store.inner.endpoint.as_str(),
                crate::error::tidy(source),
            )),
            Err(other) => Err(other),
        }
    }

    /// The database this store talks to.
    pub fn backend(&self) -> Backend {
        self.inner.ops.backend()
    }

    /// The table holding the locks.
    pub fn table_name(&self) -> &str {
        &self.inner.table
    }

    /// The `CREATE TABLE` statement of this store's table (as [`crate::ddl`]).
    pub fn ddl(&self) -> &str {
        &self.inner.ops.statements().ddl
    }

    /// Create the table (or, with `create` off, check it), all before `deadline`.
    async fn prepare_table(&self, create: bool, deadline: Instant) -> Result<(), LockError> {
        let ops = &self.inner.ops;
        if create {
            // `IF NOT EXISTS` can still fail when processes race to create the table
            // (PostgreSQL's catalog uniqueness check): then the table exists, and the
            // probe says so — if time is left; a timeout is not retried.
            return match ops.create_table(deadline).await {
                Ok(()) => Ok(()),
                Err(create_error) if Instant::now() >= deadline => Err(create_error),
                Err(create_error) => ops.probe(deadline).await.map_err(|_| create_error),
            };
        }
        // A statement that ran and failed means the table is missing or wrong; a
        // connection that could not be had says nothing about the table.
        ops.probe(deadline).await.map_err(|e| match e {
            LockError::Storage(source) if source.is::<diesel::result::Error>() => {
                LockError::storage(TableError {
                    table: self.inner.table.clone(),
                    source,
                })
            }
            other => other,
        })
    }

    /// The engine (lock and permit statements).
    pub(crate) fn ops(&self) -> &dyn Operations {
        self.inner.ops.as_ref()
    }

    /// Where the store connects, without the password (a URL, a SQLite path, or "the
    /// application's … pool").
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// A storage error with this store's name and endpoint.
    pub(crate) fn context(&self, error: LockError) -> LockError {
        match error {
            LockError::Storage(source) => LockError::store_failed(
                self.backend().name(),
                self.inner.endpoint.as_str(),
                crate::error::tidy(source),
            ),
            other => other,
        }
    }

    /// The deadline of an operation starting now.
    pub(crate) fn deadline(&self) -> Instant {
        Instant::now() + self.inner.timeout
    }

    /// One acquire attempt: what both [`LockStore::save`] and
    /// [`LockStore::try_acquire`] run (neither calls the other).
    async fn acquire_once(&self, key: &str, owner: &str, ttl: Option<Duration>) -> AcquireResult {
        validate::save_input(key, owner, ttl)?;
        let row = self.inner.ops.acquire(key, owner, ttl.map(hold_ms)).await;
        self.acquisition(row)
    }

    /// What an acquire (of a lock or of permits) answers, from the row it read.
    pub(crate) fn acquisition(&self, row: Result<AcquireRow, LockError>) -> AcquireResult {
        let row = row.map_err(|e| self.context(e))?;
        let Some(fence) = row.fence else {
            let holder = row.holder_ms.map(|ms| u64::try_from(ms).unwrap_or(0));
            return Ok(Acquisition::denied(holder.map(Duration::from_millis)));
        };
        let token = u64::try_from(fence).map_err(|_| {
            self.context(LockError::storage_msg(format!(
                "fence column holds a negative value ({fence})"
            )))
        })?;
        Ok(Acquisition::acquired_with_token(token))
    }

    /// The rows an operation changed (its storage error with this store's context).
    pub(crate) fn changed(&self, rows: Result<usize, LockError>) -> Result<usize, LockError> {
        rows.map_err(|e| self.context(e))
    }

    /// An owner's release or extend (of a lock or of permits): `NotOwned` when it
    /// changed no row.
    pub(crate) fn owned(&self, rows: Result<usize, LockError>) -> Result<(), LockError> {
        match self.changed(rows)? {
            0 => Err(LockError::NotOwned),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl LockStore for DatabaseStore {
    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        validate::delete_input(key, owner)?;
        let ops = &self.inner.ops;
        self.owned(ops.release(key, owner).await)?;
        ops.released_locally(key);
        Ok(())
    }

    async fn force_delete(&self, key: &str) -> Result<(), LockError> {
        validate::key(key)?;
        let ops = &self.inner.ops;
        if self.changed(ops.force_release(key).await)? > 0 {
            ops.released_locally(key);
        }
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, LockError> {
        validate::key(key)?;
        let count = self.inner.ops.exists(key).await;
        Ok(count.map_err(|e| self.context(e))? > 0)
    }

    async fn extend(&self, key: &str, owner: &str, duration: Duration) -> Result<(), LockError> {
        validate::extend_input(key, owner, duration)?;
        self.owned(self.inner.ops.extend(key, owner, hold_ms(duration)).await)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_fencing_tokens(true)
            .with_holder_ttl(true)
            .with_release_notification(self.backend() == Backend::Postgres)
    }

    async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError> {
        Ok(self.acquire_once(key, owner, ttl).await?.acquired)
    }

    async fn try_acquire(&self, key: &str, owner: &str, ttl: Option<Duration>) -> AcquireResult {
        self.acquire_once(key, owner, ttl).await
    }

    fn release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        self.inner.ops.release_listener(key)
    }

    fn name(&self) -> &str {
        self.backend().name()
    }

    /// Semaphores and reader-writer locks, on every backend (`crate::permits`).
    fn permits(&self) -> Option<&dyn PermitStore> {
        Some(self)
    }
}

/// Keeps `now + ttl` far inside `BIGINT` (about 3 million years); validated input stays
/// far below it anyway.
const MAX_TTL_MS: i64 = 100_000_000_000_000_000;

/// How much longer than its TTL a holding is kept in the table. The database clock is
/// read to the millisecond (PostgreSQL rounds to it, MySQL/MariaDB and SQLite cut), so
/// `now + TTL` could end a holding up to a millisecond before the holder's local
/// deadline (measured from before its request was sent); two milliseconds more make
/// sure it never does.
pub(crate) const CLOCK_SLACK_MS: i64 = 2;

/// The lifetime to store for a holding of `ttl` (acquire, extend): [`ttl_ms`] plus
/// [`CLOCK_SLACK_MS`].
pub(crate) fn hold_ms(ttl: Duration) -> i64 {
    ttl_ms(ttl).saturating_add(CLOCK_SLACK_MS)
}

/// Whole milliseconds, rounded up so a sub-millisecond remainder does not shorten it.
pub(crate) fn ttl_ms(ttl: Duration) -> i64 {
    let ms = ttl.as_nanos().div_ceil(1_000_000);
    i64::try_from(ms).unwrap_or(MAX_TTL_MS).min(MAX_TTL_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_and_saturates() {
        assert_eq!(ttl_ms(Duration::from_micros(1)), 1);
        assert_eq!(ttl_ms(Duration::from_millis(1500)), 1500);
        assert_eq!(ttl_ms(Duration::from_nanos(1_000_001)), 2);
        assert_eq!(ttl_ms(Duration::MAX), MAX_TTL_MS);
    }

    #[test]
    fn key_and_owner_limits() {
        assert!(validate::key(&"k".repeat(MAX_KEY_BYTES)).is_ok());
        let err = validate::key(&"k".repeat(MAX_KEY_BYTES + 1)).unwrap_err();
        assert_eq!(err.code(), "E_INVALID_ARGUMENTS");
        // The limit counts bytes, not characters.
        assert!(validate::key(&"é".repeat(MAX_KEY_BYTES / 2 + 1)).is_err());
        assert!(validate::owner(&"o".repeat(MAX_OWNER_BYTES + 1)).is_err());
    }
}
