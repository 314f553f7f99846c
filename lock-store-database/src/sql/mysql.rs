//! MySQL / MariaDB statements. `{table}` is replaced by the validated, quoted table
//! name and `{now}` by [`NOW_MS`]. Parameters are bound (`?`, in order), never
//! interpolated.

/// The database clock in Unix milliseconds, independent of the session time zone
/// (`UTC_TIMESTAMP`, not `NOW()`, so a DST change cannot move it). MySQL fixes it for
/// the whole statement.
pub(crate) const NOW_MS: &str =
    "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000)";

/// The table. Keys and owners are `VARBINARY`: compared byte for byte (a `_ci`
/// collation would make `A` and `a` the same lock). `expires_at`: Unix ms by the
/// database clock; `NULL` = held with no expiry; `0` = released.
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
/// fencing token when acquired (1 on insert, `fence + 1` on takeover), 0 when denied —
/// the affected-row count cannot tell (diesel-async sets `CLIENT_FOUND_ROWS`, so a
/// fresh insert and a denied upsert both report 1). [`ACQUIRE_RESULT`] reads it back.
pub(crate) const ACQUIRE: &str = "INSERT INTO {table} (lock_key, owner, expires_at, fence)
VALUES (?, ?, {now} + ?, LAST_INSERT_ID(1))
ON DUPLICATE KEY UPDATE
    owner = IF(expires_at <= {now}, ?, owner),
    fence = IF(expires_at <= {now}, LAST_INSERT_ID(fence + 1), fence + LAST_INSERT_ID(0)),
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
