//! SQLite: its statements, its pool setup, and (with the `sqlite` feature) the dialect
//! that binds and decodes them. `{table}` is replaced by the validated, quoted table
//! name and `{now}` by [`SqliteSql::NOW_MS`]. Parameters are bound (`?1`, `?2`, …), never
//! interpolated.
//!
//! Every statement runs alone in autocommit mode: a single write statement takes the
//! database write lock before it reads, and the busy timeout retries it as a whole, so
//! there is no read-then-upgrade deadlock between processes sharing the file.

/// The statements of this backend.
pub(crate) struct SqliteSql;

impl super::OperationSql for SqliteSql {
    /// The table. `expires_at`: Unix ms by the machine's wall clock; `NULL` = held with no
    /// expiry; `0` = released. `fence`: the last fencing token. BLOB keys compare byte for
    /// byte.
    const DDL: &'static str = "CREATE TABLE IF NOT EXISTS {table} (
    lock_key   BLOB    NOT NULL PRIMARY KEY,
    owner      BLOB    NULL,
    expires_at INTEGER NULL,
    fence      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID";

    /// `?1` key, `?2` owner, `?3` ttl ms (NULL = no expiry) → one row `(fence, holder_ms)`
    /// when acquired (`holder_ms` NULL), no row when denied.
    ///
    /// Atomic: a single `INSERT … ON CONFLICT DO UPDATE … WHERE expired … RETURNING`,
    /// executed under SQLite's database write lock. The token: `now * 1000` on insert,
    /// `max(fence + 1, now * 1000)` on takeover (see [`super`]'s token rule).
    const ACQUIRE: &'static str = "INSERT INTO {table} (lock_key, owner, expires_at, fence)
VALUES (?1, ?2, {now} + ?3, {now} * 1000)
ON CONFLICT (lock_key) DO UPDATE
    SET owner = excluded.owner, expires_at = excluded.expires_at,
        fence = max(fence + 1, excluded.fence)
    WHERE expires_at <= {now}
RETURNING fence, NULL AS holder_ms";

    /// `?1` key → the holder's remaining ms. Only run after a denied [`Self::ACQUIRE`], as a
    /// hint for the waiter; the decision was made by [`Self::ACQUIRE`] alone.
    const ACQUIRE_FOLLOWUP: Option<&'static str> =
        Some("SELECT expires_at - {now} AS holder_ms FROM {table} WHERE lock_key = ?1");

    /// `?1` key, `?2` owner → affected rows. Atomic: one `UPDATE` predicated on owner and
    /// not-expired.
    const RELEASE: &'static str = "UPDATE {table} SET owner = NULL, expires_at = 0
    WHERE lock_key = ?1 AND owner = ?2 AND (expires_at IS NULL OR expires_at > {now})";

    /// `?1` key. Atomic: one `UPDATE`.
    const FORCE_RELEASE: &'static str =
        "UPDATE {table} SET owner = NULL, expires_at = 0 WHERE lock_key = ?1 AND owner IS NOT NULL";

    /// `?1` key, `?2` owner, `?3` duration ms → affected rows (1, or 0 = not owned).
    /// Atomic: one `UPDATE` predicated on owner and not-expired.
    const EXTEND: &'static str = "UPDATE {table} SET expires_at = {now} + ?3
    WHERE lock_key = ?1 AND owner = ?2 AND (expires_at IS NULL OR expires_at > {now})";
}

impl super::SqlText for SqliteSql {
    const BACKEND: crate::backend::Backend = crate::backend::Backend::Sqlite;
    const QUOTE: char = '"';

    /// "Now" in Unix milliseconds. SQLite has no server: `julianday('now')` is computed
    /// inside the calling process, from the machine's wall clock (shared by every process
    /// on the machine, so they agree). SQLite fixes `'now'` for one statement.
    const NOW_MS: &'static str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

    /// `?1` key → `n` (1 held, 0 not). A single read.
    const EXISTS: &'static str = "SELECT COUNT(*) AS n FROM {table}
    WHERE lock_key = ?1 AND (expires_at IS NULL OR expires_at > {now})";
}

#[cfg(feature = "sqlite")]
pub(crate) use driver::Sqlite;
#[cfg(feature = "sqlite")]
pub use driver::{AsyncSqliteConnection, SqlitePool};

#[cfg(feature = "sqlite")]
mod driver {
    use diesel::sql_types::{BigInt, Nullable};
    use diesel::{ConnectionError, ConnectionResult, QueryableByName};
    use diesel_async::{AsyncConnection, SimpleAsyncConnection};
    use lock_core::LockError;

    use crate::backend::Backend;
    use crate::options::DatabaseStoreOptions;
    use crate::sql::{
        Abandon, Acquire, AcquireRow, Acquired, BoxFuture, Connect, Dialect, PoolOf, Run,
    };

    /// The async SQLite connection of diesel-async: diesel's synchronous connection run
    /// on tokio's blocking pool.
    pub type AsyncSqliteConnection = diesel_async::sync_connection_wrapper::SyncConnectionWrapper<
        diesel::sqlite::SqliteConnection,
    >;

    /// A diesel-async SQLite connection pool (deadpool), as an application may already
    /// have.
    pub type SqlitePool = PoolOf<AsyncSqliteConnection>;

    /// Pool size for a SQLite file: SQLite has one writer at a time anyway.
    const DEFAULT_SQLITE_POOL_SIZE: usize = 4;

    /// SQLite: one statement per operation, plus a read of the holder's remaining time
    /// after a denied acquire.
    pub(crate) struct Sqlite;

    /// How every connection is set up: it waits up to the operation timeout for another
    /// connection's (or process's) write lock, and uses WAL so that readers never block
    /// the writer.
    #[derive(Clone)]
    pub(crate) struct Pragmas {
        busy_ms: u128,
    }

    impl Connect for Pragmas {
        type Conn = AsyncSqliteConnection;

        fn for_url(url: &str, options: &DatabaseStoreOptions) -> Result<(String, Self), LockError> {
            let busy_ms = options.operation_timeout.as_millis().min(i32::MAX as u128);
            Ok((url.to_owned(), Pragmas { busy_ms }))
        }

        /// The busy timeout is set first: switching a shared file to WAL needs a lock.
        fn connect<'a>(&'a self, url: &'a str) -> BoxFuture<'a, ConnectionResult<Self::Conn>> {
            Box::pin(async move {
                let mut conn = AsyncSqliteConnection::establish(url).await?;
                let pragmas = format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL;",
                    self.busy_ms
                );
                conn.batch_execute(&pragmas)
                    .await
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
                Ok(conn)
            })
        }
    }

    /// The follow-up read of a denied acquire.
    #[derive(QueryableByName)]
    struct HolderRow {
        #[diesel(sql_type = Nullable<BigInt>)]
        holder_ms: Option<i64>,
    }

    impl Dialect for Sqlite {
        type Conn = AsyncSqliteConnection;
        type Locks = super::SqliteSql;
        type Permits = crate::permits::sqlite::SqlitePermits;
        type Connect = Pragmas;
        const BACKEND: Backend = Backend::Sqlite;

        /// Each `:memory:` connection is a database of its own: one connection only.
        fn pool_size(memory: bool, options: &DatabaseStoreOptions) -> usize {
            if memory {
                1
            } else {
                options.max_connections.unwrap_or(DEFAULT_SQLITE_POOL_SIZE)
            }
        }

        fn new(_pool: &SqlitePool, _options: &DatabaseStoreOptions) -> Self {
            Sqlite
        }

        /// The statement returns a row when it wrote one; otherwise (denied) the
        /// follow-up (`OperationSql::ACQUIRE_FOLLOWUP`, of locks or permits) reads the
        /// holder's remaining time, as a hint.
        fn acquire<'c>(&self, c: &'c mut AsyncSqliteConnection, mut a: Acquire) -> Acquired<'c> {
            Box::pin(async move {
                let holder = a.followup()?;
                if let Some(row) = c.first_row::<AcquireRow>(a.decide).await? {
                    return Ok(row);
                }
                let holder = c.first_row::<HolderRow>(holder).await?;
                Ok(AcquireRow {
                    fence: None,
                    holder_ms: holder.and_then(|h| h.holder_ms),
                })
            })
        }
    }

    impl Abandon for AsyncSqliteConnection {
        /// The blocking call runs to completion (bounded by `busy_timeout`) and the
        /// connection stays consistent; for `sqlite::memory:` it *is* the database.
        const REUSE_AFTER_TIMEOUT: bool = true;
    }
}
