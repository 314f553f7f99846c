//! PostgreSQL statements. `{table}` is replaced by the validated, quoted table name
//! and `{now}` by [`NOW_MS`]. Parameters are bound, never interpolated.

/// The database clock in Unix milliseconds. `statement_timestamp()` is read once per
/// statement, so the expiry check and the new expiry of one statement agree (and,
/// unlike `now()`, it is not frozen at the start of a longer transaction).
pub(crate) const NOW_MS: &str = "(extract(epoch FROM statement_timestamp()) * 1000)::bigint";

/// The table. `expires_at`: Unix ms by the database clock; `NULL` = held with no
/// expiry; `0` = released. The row (and its `fence` counter) outlives releases.
pub(crate) const DDL: &str = "CREATE TABLE IF NOT EXISTS {table} (
    lock_key   BYTEA  NOT NULL PRIMARY KEY,
    owner      BYTEA  NULL,
    expires_at BIGINT NULL,
    fence      BIGINT NOT NULL DEFAULT 0
)";

/// `$1` key, `$2` owner, `$3` ttl ms (NULL = no expiry) → one row `(fence, holder_ms)`.
///
/// Atomic: a single `INSERT … ON CONFLICT DO UPDATE … WHERE expired`. PostgreSQL locks
/// the conflicting row and re-checks the `WHERE` on its latest version, so of two
/// racing acquirers exactly one inserts or takes over; the fencing counter is bumped
/// in the same row write. `fence` is NULL when denied; `holder_ms` (read from the
/// statement's snapshot, only a hint) is the holder's remaining time.
pub(crate) const ACQUIRE: &str = "WITH acquired AS (
    INSERT INTO {table} AS l (lock_key, owner, expires_at, fence)
    VALUES ($1, $2, {now} + $3, 1)
    ON CONFLICT (lock_key) DO UPDATE
        SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at, fence = l.fence + 1
        WHERE l.expires_at <= {now}
    RETURNING l.fence
)
SELECT (SELECT fence FROM acquired) AS fence,
       (SELECT expires_at - {now} FROM {table} WHERE lock_key = $1) AS holder_ms";

/// `$1` key, `$2` owner, `$3` channel → `n` = 1 when released, 0 when not owned.
///
/// Atomic: one `UPDATE` predicated on owner and not-expired; the `pg_notify` runs in
/// the same statement (a data-modifying CTE referenced by the outer query), so the
/// notification is sent exactly when the release commits.
pub(crate) const RELEASE: &str = "WITH released AS (
    UPDATE {table} SET owner = NULL, expires_at = 0
    WHERE lock_key = $1 AND owner = $2 AND (expires_at IS NULL OR expires_at > {now})
    RETURNING lock_key
)
SELECT COUNT(*) AS n FROM released
CROSS JOIN LATERAL pg_notify($3, encode(released.lock_key, 'hex')) AS notified";

/// `$1` key, `$2` channel → `n`. Atomic: one `UPDATE` plus its `pg_notify`, as [`RELEASE`].
pub(crate) const FORCE_RELEASE: &str = "WITH released AS (
    UPDATE {table} SET owner = NULL, expires_at = 0
    WHERE lock_key = $1 AND owner IS NOT NULL
    RETURNING lock_key
)
SELECT COUNT(*) AS n FROM released
CROSS JOIN LATERAL pg_notify($2, encode(released.lock_key, 'hex')) AS notified";

/// `$1` key, `$2` owner, `$3` duration ms → affected rows (1, or 0 = not owned).
/// Atomic: one `UPDATE` predicated on owner and not-expired.
pub(crate) const EXTEND: &str = "UPDATE {table} SET expires_at = {now} + $3
    WHERE lock_key = $1 AND owner = $2 AND (expires_at IS NULL OR expires_at > {now})";

/// `$1` key → `n` (1 held, 0 not). A single read.
pub(crate) const EXISTS: &str = "SELECT COUNT(*) AS n FROM {table}
    WHERE lock_key = $1 AND (expires_at IS NULL OR expires_at > {now})";

/// Checks that the table exists with the expected columns, touching no row.
pub(crate) const PROBE: &str = "SELECT COUNT(*) AS n FROM (
    SELECT lock_key, owner, expires_at, fence FROM {table} WHERE 1 = 0
) AS probe";
