//! SQLite: its statements, its pool setup, and (with the `sqlite` feature) the dialect
//! that binds and decodes them. `{table}` is replaced by the validated, quoted table
//! name and `{now}` by [`NOW_MS`]. Parameters are bound (`?1`, `?2`, …), never
//! interpolated.
//!
//! Every statement runs alone in autocommit mode: a single write statement takes the
//! database write lock before it reads, and the busy timeout retries it as a whole, so
//! there is no read-then-upgrade deadlock between processes sharing the file.

/// "Now" in Unix milliseconds. SQLite has no server: `julianday('now')` is computed
/// inside the calling process, from the machine's wall clock (shared by every process
/// on the machine, so they agree). SQLite fixes `'now'` for one statement.
pub(crate) const NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

/// The table. `expires_at`: Unix ms by the machine's wall clock; `NULL` = held with no
/// expiry; `0` = released. `fence`: the last fencing token. BLOB keys compare byte for
/// byte.
pub(crate) const DDL: &str = "CREATE TABLE IF NOT EXISTS {table} (
    lock_key   BLOB    NOT NULL PRIMARY KEY,
    owner      BLOB    NULL,
    expires_at INTEGER NULL,
    fence      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID";

/// `?1` key, `?2` owner, `?3` ttl ms (NULL = no expiry) → the new fence, or no row
/// when denied.
///
/// Atomic: a single `INSERT … ON CONFLICT DO UPDATE … WHERE expired … RETURNING`,
/// executed under SQLite's database write lock. The token: `now * 1000` on insert,
/// `max(fence + 1, now * 1000)` on takeover (see [`super`]'s token rule).
pub(crate) const ACQUIRE: &str = "INSERT INTO {table} (lock_key, owner, expires_at, fence)
VALUES (?1, ?2, {now} + ?3, {now} * 1000)
ON CONFLICT (lock_key) DO UPDATE
    SET owner = excluded.owner, expires_at = excluded.expires_at,
        fence = max(fence + 1, excluded.fence)
    WHERE expires_at <= {now}
RETURNING fence";

/// `?1` key → the holder's remaining ms. Only run after a denied [`ACQUIRE`], as a
/// hint for the waiter; the decision was made by [`ACQUIRE`] alone.
pub(crate) const HOLDER: &str =
    "SELECT expires_at - {now} AS holder_ms FROM {table} WHERE lock_key = ?1";

/// `?1` key, `?2` owner → affected rows. Atomic: one `UPDATE` predicated on owner and
/// not-expired.
pub(crate) const RELEASE: &str = "UPDATE {table} SET owner = NULL, expires_at = 0
    WHERE lock_key = ?1 AND owner = ?2 AND (expires_at IS NULL OR expires_at > {now})";

/// `?1` key. Atomic: one `UPDATE`.
pub(crate) const FORCE_RELEASE: &str =
    "UPDATE {table} SET owner = NULL, expires_at = 0 WHERE lock_key = ?1 AND owner IS NOT NULL";

/// `?1` key, `?2` owner, `?3` duration ms → affected rows (1, or 0 = not owned).
/// Atomic: one `UPDATE` predicated on owner and not-expired.
pub(crate) const EXTEND: &str = "UPDATE {table} SET expires_at = {now} + ?3
    WHERE lock_key = ?1 AND owner = ?2 AND (expires_at IS NULL OR expires_at > {now})";

/// `?1` key → `n` (1 held, 0 not). A single read.
pub(crate) const EXISTS: &str = "SELECT COUNT(*) AS n FROM {table}
    WHERE lock_key = ?1 AND (expires_at IS NULL OR expires_at > {now})";

/// Checks that the table exists with the expected columns, touching no row.
pub(crate) const PROBE: &str = "SELECT COUNT(*) AS n FROM (
    SELECT lock_key, owner, expires_at, fence FROM {table} WHERE 1 = 0
) AS probe";

pub(super) const TEMPLATES: super::Templates = super::Templates {
    now_ms: NOW_MS,
    quote: '"',
    ddl: DDL,
    probe: PROBE,
    acquire: ACQUIRE,
    acquire_followup: Some(HOLDER),
    release: RELEASE,
    force_release: FORCE_RELEASE,
    extend: EXTEND,
    exists: EXISTS,
};

#[cfg(feature = "sqlite")]
pub(crate) use driver::Sqlite;
#[cfg(feature = "sqlite")]
pub use driver::{AsyncSqliteConnection, SqlitePool};

#[cfg(feature = "sqlite")]
mod driver {
    use diesel::sql_types::{BigInt, Binary, Nullable};
    use diesel::{ConnectionError, OptionalExtension, QueryResult, QueryableByName, sql_query};
    use diesel_async::pooled_connection::{ManagerConfig, RecyclingMethod};
    use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
    use lock_core::LockError;

    use crate::backend::Backend;
    use crate::engine::build_pool;
    use crate::options::DatabaseStoreOptions;
    use crate::prepared::prepared;
    use crate::sql::{Abandon, AcquireRow, BoxFuture, CountRow, Dialect, PoolOf};
    use crate::statements::Statements;

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
    pub(crate) struct Sqlite {
        sql: Statements,
        /// [`super::HOLDER`], rendered.
        holder: String,
    }

    #[derive(QueryableByName)]
    struct FenceRow {
        #[diesel(sql_type = BigInt)]
        fence: i64,
    }

    #[derive(QueryableByName)]
    struct HolderRow {
        #[diesel(sql_type = Nullable<BigInt>)]
        holder_ms: Option<i64>,
    }

    impl Dialect for Sqlite {
        type Conn = AsyncSqliteConnection;
        const BACKEND: Backend = Backend::Sqlite;

        /// Every connection waits up to the operation timeout for another connection's
        /// (or process's) write lock, and uses WAL so that readers never block the
        /// writer. The busy timeout is set first: switching a shared file to WAL needs
        /// a lock.
        fn open_pool(
            target: &str,
            memory: bool,
            options: &DatabaseStoreOptions,
        ) -> Result<SqlitePool, LockError> {
            let busy_ms = options.operation_timeout.as_millis().min(i32::MAX as u128);
            let mut config = ManagerConfig::<AsyncSqliteConnection>::default();
            // A local database: checking a connection is cheap, but not needed either.
            config.recycling_method = RecyclingMethod::Fast;
            config.custom_setup = Box::new(move |url| {
                let url = url.to_owned();
                Box::pin(async move {
                    let mut conn = AsyncSqliteConnection::establish(&url).await?;
                    conn.batch_execute(&format!(
                        "PRAGMA busy_timeout = {busy_ms}; PRAGMA journal_mode = WAL;"
                    ))
                    .await
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
                    Ok(conn)
                })
            });
            // Each `:memory:` connection is a database of its own: one connection only.
            let size = if memory {
                1
            } else {
                options.max_connections.unwrap_or(DEFAULT_SQLITE_POOL_SIZE)
            };
            build_pool(target, config, size, options.operation_timeout)
        }

        fn new(_pool: &SqlitePool, sql: Statements, _options: &DatabaseStoreOptions) -> Self {
            let holder = sql.acquire_followup.clone().unwrap_or_default();
            Sqlite { sql, holder }
        }

        fn sql(&self) -> &Statements {
            &self.sql
        }

        fn create_table<'c>(
            &self,
            c: &'c mut AsyncSqliteConnection,
        ) -> BoxFuture<'c, QueryResult<()>> {
            let q = sql_query(self.sql.ddl.clone());
            Box::pin(async move { q.execute(c).await.map(drop) })
        }

        fn probe<'c>(&self, c: &'c mut AsyncSqliteConnection) -> BoxFuture<'c, QueryResult<()>> {
            let q = sql_query(self.sql.probe.clone());
            Box::pin(async move { q.get_result::<CountRow>(c).await.map(drop) })
        }

        fn acquire<'c>(
            &self,
            c: &'c mut AsyncSqliteConnection,
            key: Vec<u8>,
            owner: Vec<u8>,
            ttl_ms: Option<i64>,
        ) -> BoxFuture<'c, QueryResult<AcquireRow>> {
            let insert = prepared(self.sql.acquire.clone())
                .bind::<Binary, _>(key.clone())
                .bind::<Binary, _>(owner)
                .bind::<Nullable<BigInt>, _>(ttl_ms);
            let holder = prepared(self.holder.clone()).bind::<Binary, _>(key);
            Box::pin(async move {
                let fences = insert.load::<FenceRow>(&mut *c).await?;
                if let Some(row) = fences.into_iter().next() {
                    return Ok(AcquireRow {
                        fence: Some(row.fence),
                        holder_ms: None,
                    });
                }
                let holder = holder.get_result::<HolderRow>(c).await.optional()?;
                Ok(AcquireRow {
                    fence: None,
                    holder_ms: holder.and_then(|h| h.holder_ms),
                })
            })
        }

        fn release<'c>(
            &self,
            c: &'c mut AsyncSqliteConnection,
            key: Vec<u8>,
            owner: Vec<u8>,
        ) -> BoxFuture<'c, QueryResult<usize>> {
            let q = prepared(self.sql.release.clone())
                .bind::<Binary, _>(key)
                .bind::<Binary, _>(owner);
            Box::pin(q.execute(c))
        }

        fn force_release<'c>(
            &self,
            c: &'c mut AsyncSqliteConnection,
            key: Vec<u8>,
        ) -> BoxFuture<'c, QueryResult<usize>> {
            let q = prepared(self.sql.force_release.clone()).bind::<Binary, _>(key);
            Box::pin(q.execute(c))
        }

        fn extend<'c>(
            &self,
            c: &'c mut AsyncSqliteConnection,
            key: Vec<u8>,
            owner: Vec<u8>,
            ms: i64,
        ) -> BoxFuture<'c, QueryResult<usize>> {
            let q = prepared(self.sql.extend.clone())
                .bind::<Binary, _>(key)
                .bind::<Binary, _>(owner)
                .bind::<BigInt, _>(ms);
            Box::pin(q.execute(c))
        }

        fn exists<'c>(
            &self,
            c: &'c mut AsyncSqliteConnection,
            key: Vec<u8>,
        ) -> BoxFuture<'c, QueryResult<i64>> {
            let q = prepared(self.sql.exists.clone()).bind::<Binary, _>(key);
            Box::pin(async move { q.get_result::<CountRow>(c).await.map(|r| r.n) })
        }
    }

    impl Abandon for AsyncSqliteConnection {
        /// The blocking call runs to completion (bounded by `busy_timeout`) and the
        /// connection stays consistent; for `sqlite::memory:` it *is* the database.
        const REUSE_AFTER_TIMEOUT: bool = true;
    }
}
