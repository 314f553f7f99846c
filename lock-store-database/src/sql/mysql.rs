//! MySQL / MariaDB: its statements, and (with the `mysql` feature) the dialect that
//! binds and decodes them. `{table}` is replaced by the validated, quoted table name
//! and `{now}` by [`NOW_MS`]. Parameters are bound (`?`, in order), never
//! interpolated.

/// The database clock in Unix milliseconds, independent of the session time zone
/// (`UTC_TIMESTAMP`, not `NOW()`, so a DST change cannot move it). MySQL fixes it for
/// the whole statement.
pub(crate) const NOW_MS: &str =
    "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000)";

/// The table. Keys and owners are `VARBINARY`: compared byte for byte (a `_ci`
/// collation would make `A` and `a` the same lock). `expires_at`: Unix ms by the
/// database clock; `NULL` = held with no expiry; `0` = released. `fence`: the last
/// fencing token.
pub(crate) const DDL: &str = "CREATE TABLE IF NOT EXISTS {table} (
    lock_key   VARBINARY(1024) NOT NULL PRIMARY KEY,
    owner      VARBINARY(255)  NULL,
    expires_at BIGINT          NULL,
    fence      BIGINT          NOT NULL DEFAULT 0
) ENGINE = InnoDB";

/// Binds: key, owner, ttl ms (NULL = no expiry), owner, ttl ms.
///
/// Atomic: a single `INSERT … ON DUPLICATE KEY UPDATE`, which holds the row's
/// exclusive lock while it decides. MySQL applies the assignments left to right, each
/// seeing the previous ones, so `expires_at` (the column every condition reads) is
/// assigned last. The outcome goes into the connection's `LAST_INSERT_ID`: the new
/// fencing token when acquired (`now * 1000` on insert, `max(fence + 1, now * 1000)` on
/// takeover: see [`super`]'s token rule), 0 when denied —
/// the affected-row count cannot tell (diesel-async sets `CLIENT_FOUND_ROWS`, so a
/// fresh insert and a denied upsert both report 1). [`ACQUIRE_RESULT`] reads it back.
pub(crate) const ACQUIRE: &str = "INSERT INTO {table} (lock_key, owner, expires_at, fence)
VALUES (?, ?, {now} + ?, LAST_INSERT_ID({now} * 1000))
ON DUPLICATE KEY UPDATE
    owner = IF(expires_at <= {now}, ?, owner),
    fence = IF(expires_at <= {now},
        LAST_INSERT_ID(GREATEST(fence + 1, {now} * 1000)), fence + LAST_INSERT_ID(0)),
    expires_at = IF(expires_at <= {now}, {now} + ?, expires_at)";

/// Binds: key → one row `(fence, holder_ms)`. Runs on the same connection right after
/// [`ACQUIRE`]: `LAST_INSERT_ID()` is per connection, so no transaction is needed and
/// no other statement can interleave. `holder_ms` is only a hint.
pub(crate) const ACQUIRE_RESULT: &str = "SELECT CAST(LAST_INSERT_ID() AS SIGNED) AS fence,
    (SELECT CAST(expires_at - {now} AS SIGNED) FROM {table} WHERE lock_key = ?) AS holder_ms";

/// Binds: key, owner → affected rows. Atomic: one `UPDATE` predicated on owner and
/// not-expired. With `CLIENT_FOUND_ROWS` the count is the number of matched rows,
/// which is exactly "was released".
pub(crate) const RELEASE: &str = "UPDATE {table} SET owner = NULL, expires_at = 0
    WHERE lock_key = ? AND owner = ? AND (expires_at IS NULL OR expires_at > {now})";

/// Binds: key. Atomic: one `UPDATE`.
pub(crate) const FORCE_RELEASE: &str =
    "UPDATE {table} SET owner = NULL, expires_at = 0 WHERE lock_key = ? AND owner IS NOT NULL";

/// Binds: duration ms, key, owner → matched rows (1, or 0 = not owned). Atomic: one
/// `UPDATE`; matched (not changed) rows are counted, so an extend that happens to
/// write the same value still counts.
pub(crate) const EXTEND: &str = "UPDATE {table} SET expires_at = {now} + ?
    WHERE lock_key = ? AND owner = ? AND (expires_at IS NULL OR expires_at > {now})";

/// Binds: key → `n` (1 held, 0 not). A single read.
pub(crate) const EXISTS: &str = "SELECT COUNT(*) AS n FROM {table}
    WHERE lock_key = ? AND (expires_at IS NULL OR expires_at > {now})";

/// Checks that the table exists with the expected columns, touching no row.
pub(crate) const PROBE: &str = "SELECT COUNT(*) AS n FROM (
    SELECT lock_key, owner, expires_at, fence FROM {table} WHERE 1 = 0
) AS probe";

pub(super) const TEMPLATES: super::Templates = super::Templates {
    now_ms: NOW_MS,
    quote: '`',
    ddl: DDL,
    probe: PROBE,
    acquire: ACQUIRE,
    acquire_followup: Some(ACQUIRE_RESULT),
    release: RELEASE,
    force_release: FORCE_RELEASE,
    extend: EXTEND,
    exists: EXISTS,
};

#[cfg(feature = "mysql")]
pub(crate) use driver::Mysql;
#[cfg(feature = "mysql")]
pub use driver::MysqlPool;

#[cfg(feature = "mysql")]
mod driver {
    use diesel::sql_types::{BigInt, Binary, Nullable};
    use diesel::{QueryResult, sql_query};
    use diesel_async::pooled_connection::{ManagerConfig, RecyclingMethod};
    use diesel_async::{AsyncMysqlConnection, RunQueryDsl};
    use lock_core::LockError;

    use crate::backend::Backend;
    use crate::engine::{DEFAULT_POOL_SIZE, build_pool};
    use crate::options::DatabaseStoreOptions;
    use crate::prepared::prepared;
    use crate::sql::{Abandon, AcquireRow, BoxFuture, CountRow, Dialect, PoolOf};
    use crate::statements::Statements;

    /// A diesel-async MySQL/MariaDB connection pool (deadpool), as an application may
    /// already have.
    pub type MysqlPool = PoolOf<AsyncMysqlConnection>;

    /// MySQL / MariaDB: the acquire is an upsert plus a read of its outcome on the same
    /// connection; the other operations are one statement, counted by matched rows.
    pub(crate) struct Mysql {
        sql: Statements,
        /// [`super::ACQUIRE_RESULT`], rendered.
        acquire_result: String,
    }

    impl Dialect for Mysql {
        type Conn = AsyncMysqlConnection;
        const BACKEND: Backend = Backend::Mysql;

        fn open_pool(
            target: &str,
            _memory: bool,
            options: &DatabaseStoreOptions,
        ) -> Result<MysqlPool, LockError> {
            let mut config = ManagerConfig::default();
            config.recycling_method = RecyclingMethod::Fast;
            let size = options.max_connections.unwrap_or(DEFAULT_POOL_SIZE);
            build_pool(target, config, size, options.operation_timeout)
        }

        fn new(_pool: &MysqlPool, sql: Statements, _options: &DatabaseStoreOptions) -> Self {
            let acquire_result = sql.acquire_followup.clone().unwrap_or_default();
            Mysql {
                sql,
                acquire_result,
            }
        }

        fn sql(&self) -> &Statements {
            &self.sql
        }

        fn create_table<'c>(
            &self,
            c: &'c mut AsyncMysqlConnection,
        ) -> BoxFuture<'c, QueryResult<()>> {
            let q = sql_query(self.sql.ddl.clone());
            Box::pin(async move { q.execute(c).await.map(drop) })
        }

        fn probe<'c>(&self, c: &'c mut AsyncMysqlConnection) -> BoxFuture<'c, QueryResult<()>> {
            let q = sql_query(self.sql.probe.clone());
            Box::pin(async move { q.get_result::<CountRow>(c).await.map(drop) })
        }

        fn acquire<'c>(
            &self,
            c: &'c mut AsyncMysqlConnection,
            key: Vec<u8>,
            owner: Vec<u8>,
            ttl_ms: Option<i64>,
        ) -> BoxFuture<'c, QueryResult<AcquireRow>> {
            let insert = prepared(self.sql.acquire.clone())
                .bind::<Binary, _>(key.clone())
                .bind::<Binary, _>(owner.clone())
                .bind::<Nullable<BigInt>, _>(ttl_ms)
                .bind::<Binary, _>(owner)
                .bind::<Nullable<BigInt>, _>(ttl_ms);
            let result = prepared(self.acquire_result.clone()).bind::<Binary, _>(key);
            Box::pin(async move {
                insert.execute(&mut *c).await?;
                let mut row = result.get_result::<AcquireRow>(c).await?;
                // LAST_INSERT_ID() is 0 when denied.
                row.fence = row.fence.filter(|&fence| fence > 0);
                Ok(row)
            })
        }

        fn release<'c>(
            &self,
            c: &'c mut AsyncMysqlConnection,
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
            c: &'c mut AsyncMysqlConnection,
            key: Vec<u8>,
        ) -> BoxFuture<'c, QueryResult<usize>> {
            let q = prepared(self.sql.force_release.clone()).bind::<Binary, _>(key);
            Box::pin(q.execute(c))
        }

        fn extend<'c>(
            &self,
            c: &'c mut AsyncMysqlConnection,
            key: Vec<u8>,
            owner: Vec<u8>,
            ms: i64,
        ) -> BoxFuture<'c, QueryResult<usize>> {
            let q = prepared(self.sql.extend.clone())
                .bind::<BigInt, _>(ms)
                .bind::<Binary, _>(key)
                .bind::<Binary, _>(owner);
            Box::pin(q.execute(c))
        }

        fn exists<'c>(
            &self,
            c: &'c mut AsyncMysqlConnection,
            key: Vec<u8>,
        ) -> BoxFuture<'c, QueryResult<i64>> {
            let q = prepared(self.sql.exists.clone()).bind::<Binary, _>(key);
            Box::pin(async move { q.get_result::<CountRow>(c).await.map(|r| r.n) })
        }
    }

    impl Abandon for AsyncMysqlConnection {
        /// A dropped statement leaves the protocol mid-exchange ("packet out of order").
        const REUSE_AFTER_TIMEOUT: bool = false;
    }
}
