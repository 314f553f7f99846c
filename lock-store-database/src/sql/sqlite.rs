//! SQLite statements. `{table}` is replaced by the validated, quoted table name and
//! `{now}` by [`NOW_MS`]. Parameters are bound (`?1`, `?2`, …), never interpolated.
//!
//! Every statement runs alone in autocommit mode: a single write statement takes the
//! database write lock before it reads, and the busy timeout retries it as a whole, so
//! there is no read-then-upgrade deadlock between processes sharing the file.

/// The database clock in Unix milliseconds. SQLite fixes `'now'` for one statement.
pub(crate) const NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

/// The table. `expires_at`: Unix ms by the database clock; `NULL` = held with no
/// expiry; `0` = released. BLOB keys compare byte for byte.
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
/// executed under SQLite's database write lock.
pub(crate) const ACQUIRE: &str = "INSERT INTO {table} (lock_key, owner, expires_at, fence)
VALUES (?1, ?2, {now} + ?3, 1)
ON CONFLICT (lock_key) DO UPDATE
    SET owner = excluded.owner, expires_at = excluded.expires_at, fence = fence + 1
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
