//! MySQL / MariaDB: its statements, and (with the `mysql` feature) the dialect that
//! binds and decodes them. `{table}` is replaced by the validated, quoted table name
//! and `{now}` by [`MysqlSql::NOW_MS`]. Parameters are bound (`?`, in order), never
//! interpolated.

use super::LockBinds;
use super::render::Param;

/// The statements of this backend.
pub(crate) struct MysqlSql;

impl super::OperationSql for MysqlSql {
    /// The table. Keys and owners are `VARBINARY`: compared byte for byte (a `_ci`
    /// collation would make `A` and `a` the same lock). `expires_at`: Unix ms by the
    /// database clock; `NULL` = held with no expiry; `0` = released. `fence`: the last
    /// fencing token.
    const DDL: &'static str = "CREATE TABLE IF NOT EXISTS {table} (
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
    /// fresh insert and a denied upsert both report 1). [`Self::ACQUIRE_FOLLOWUP`] reads it back.
    const ACQUIRE: &'static str = "INSERT INTO {table} (lock_key, owner, expires_at, fence)
VALUES (?, ?, {now} + ?, LAST_INSERT_ID({now} * 1000))
ON DUPLICATE KEY UPDATE
    owner = IF(expires_at <= {now}, ?, owner),
    fence = IF(expires_at <= {now},
        LAST_INSERT_ID(GREATEST(fence + 1, {now} * 1000)), fence + LAST_INSERT_ID(0)),
    expires_at = IF(expires_at <= {now}, {now} + ?, expires_at)";

    /// Binds: key → one row `(fence, holder_ms)`. Runs on the same connection right after
    /// [`Self::ACQUIRE`]: `LAST_INSERT_ID()` is per connection, so no transaction is needed and
    /// no other statement can interleave. `holder_ms` is only a hint.
    const ACQUIRE_FOLLOWUP: Option<&'static str> = Some(
        "SELECT CAST(LAST_INSERT_ID() AS SIGNED) AS fence,
    (SELECT CAST(expires_at - {now} AS SIGNED) FROM {table} WHERE lock_key = ?) AS holder_ms",
    );

    /// Binds: key, owner → affected rows. Atomic: one `UPDATE` predicated on owner and
    /// not-expired. With `CLIENT_FOUND_ROWS` the count is the number of matched rows,
    /// which is exactly "was released".
    const RELEASE: &'static str = "UPDATE {table} SET owner = NULL, expires_at = 0
    WHERE lock_key = ? AND owner = ? AND (expires_at IS NULL OR expires_at > {now})";

    /// Binds: key. Atomic: one `UPDATE`.
    const FORCE_RELEASE: &'static str =
        "UPDATE {table} SET owner = NULL, expires_at = 0 WHERE lock_key = ? AND owner IS NOT NULL";

    /// Binds: duration ms, key, owner → matched rows (1, or 0 = not owned). Atomic: one
    /// `UPDATE`; matched (not changed) rows are counted, so an extend that happens to
    /// write the same value still counts.
    const EXTEND: &'static str = "UPDATE {table} SET expires_at = {now} + ?
    WHERE lock_key = ? AND owner = ? AND (expires_at IS NULL OR expires_at > {now})";
}

impl super::SqlText for MysqlSql {
    const BACKEND: crate::backend::Backend = crate::backend::Backend::Mysql;
    /// One `?` per occurrence: the acquire's update clause takes the owner and the TTL
    /// again; the extend's duration comes first, in its `SET` clause.
    const BINDS: LockBinds = LockBinds {
        acquire: &[
            Param::Key,
            Param::LockOwner,
            Param::Ttl,
            Param::LockOwner,
            Param::Ttl,
        ],
        extend: &[Param::Ms, Param::Key, Param::LockOwner],
        ..LockBinds::USUAL
    };
    const QUOTE: char = '`';

    /// The database clock in Unix milliseconds, independent of the session time zone
    /// (`UTC_TIMESTAMP`, not `NOW()`, so a DST change cannot move it). MySQL fixes it for
    /// the whole statement.
    const NOW_MS: &'static str =
        "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000)";

    /// Binds: key → `n` (1 held, 0 not). A single read.
    const EXISTS: &'static str = "SELECT COUNT(*) AS n FROM {table}
    WHERE lock_key = ? AND (expires_at IS NULL OR expires_at > {now})";
}

#[cfg(feature = "mysql")]
pub(crate) use driver::Mysql;
#[cfg(feature = "mysql")]
pub use driver::MysqlPool;

#[cfg(feature = "mysql")]
mod driver {
    use diesel_async::AsyncMysqlConnection;

    use crate::backend::Backend;
    use crate::options::DatabaseStoreOptions;
    use crate::sql::{Abandon, Acquire, AcquireRow, Acquired, Dialect, PoolOf, ReadRow, Run};
    use crate::tls::MysqlTls;

    /// A diesel-async MySQL/MariaDB connection pool (deadpool), as an application may
    /// already have.
    pub type MysqlPool = PoolOf<AsyncMysqlConnection>;

    /// MySQL / MariaDB: the acquire is an upsert plus a read of its outcome on the same
    /// connection; the other operations are one statement, counted by matched rows.
    pub(crate) struct Mysql;

    impl Dialect for Mysql {
        type Conn = AsyncMysqlConnection;
        type Locks = super::MysqlSql;
        type Permits = crate::permits::mysql::MysqlPermits;
        /// Connections use the URL's TLS settings (the driver gets the URL without
        /// them).
        type Connect = MysqlTls;
        const BACKEND: Backend = Backend::Mysql;

        fn new(_pool: &MysqlPool, _options: &DatabaseStoreOptions) -> Self {
            Mysql
        }

        /// The upsert decides and leaves the token (or 0) in `LAST_INSERT_ID()`; the
        /// follow-up (`OperationSql::ACQUIRE_FOLLOWUP`, of locks or permits) reads it.
        fn acquire<'c>(&self, c: &'c mut AsyncMysqlConnection, mut a: Acquire) -> Acquired<'c> {
            Box::pin(async move {
                let outcome = a.followup()?;
                c.execute_with(a.decide).await?;
                let mut row: AcquireRow = c.read_row(outcome).await?;
                // LAST_INSERT_ID() is 0 when denied.
                row.fence = row.fence.filter(|&fence| fence > 0);
                Ok(row)
            })
        }
    }

    impl Abandon for AsyncMysqlConnection {
        /// A dropped statement leaves the protocol mid-exchange ("packet out of order").
        const REUSE_AFTER_TIMEOUT: bool = false;
    }
}
