//! SQLite permit statements. `{table}` is the quoted permits table, `{now}` the
//! machine's wall clock in Unix ms (the lock statements' `NOW_MS`: SQLite has no
//! server, see the crate docs), other markers are bound parameters
//! ([`crate::sql::render`]). JSON through the JSON1 functions (built into the bundled
//! SQLite).
//!
//! Each statement runs alone in autocommit mode under SQLite's database write lock, so
//! the read-modify-write of one statement cannot interleave with another's.

use super::PermitText;
use crate::sql::OperationSql;

/// The permit statements of this backend.
pub(crate) struct SqlitePermits;

impl OperationSql for SqlitePermits {
    /// The table: as on PostgreSQL (see [`super::postgres::PgPermits`]); `holders` is JSON text.
    const DDL: &'static str = "CREATE TABLE IF NOT EXISTS {table} (
    permit_key     BLOB    NOT NULL PRIMARY KEY,
    holders        TEXT    NOT NULL DEFAULT '[]',
    reserved_by    TEXT    NULL,
    reserved_until INTEGER NULL,
    fence          INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID";

    /// → a row `(fence, holder_ms)` when it wrote the row: `fence` when granted (the owner
    /// is among the new holders), else NULL and `holder_ms`, the earliest live holder's
    /// remaining time (a hint); no row when denied with nothing to write.
    ///
    /// Atomic: one `INSERT … ON CONFLICT DO UPDATE … WHERE … RETURNING`, deciding on the
    /// row as the database write lock leaves it; the same decision as PostgreSQL's
    /// acquire ([`super::postgres::PgPermits`]): update only when the owner holds nothing
    /// live and no other owner's reservation is live, then grant if the live weights plus
    /// the request fit the limit, else take or renew the reservation.
    const ACQUIRE: &'static str = "INSERT INTO {table} AS p (permit_key, holders, fence)
VALUES ({key}, json_array({entry}), {now} * 1000)
ON CONFLICT (permit_key) DO UPDATE SET
    (holders, reserved_by, reserved_until, fence) = (
        SELECT CASE WHEN s.fits THEN json_insert(s.live, '$[#]', {entry}) ELSE s.live END,
               CASE WHEN s.fits THEN NULL ELSE {owner} END,
               CASE WHEN s.fits THEN NULL ELSE {now} + {reserve} END,
               CASE WHEN s.fits THEN max(p.fence + 1, {now} * 1000) ELSE p.fence END
        FROM (
            SELECT json_group_array(json(h.value)) AS live,
                   coalesce(sum({w}), 0) + {weight} <= {limit} AS fits
            FROM json_each(p.holders) AS h WHERE {alive}
        ) AS s
    )
    WHERE NOT EXISTS (SELECT 1 FROM json_each(p.holders) AS h
                      WHERE {o} = {owner} AND {alive})
      AND NOT coalesce(p.reserved_by <> {owner} AND p.reserved_until > {now}, 0)
      AND ({reserve} IS NOT NULL OR (
            SELECT coalesce(sum({w}), 0) FROM json_each(p.holders) AS h WHERE {alive}
          ) + {weight} <= {limit})
RETURNING
    CASE WHEN EXISTS (SELECT 1 FROM json_each(holders) AS h WHERE {o} = {owner})
        THEN fence END AS fence,
    (SELECT min(json_extract(h.value, '$.e')) FROM json_each(holders) AS h)
        - {now} AS holder_ms";

    /// → the earliest live holder's remaining ms. Only run after an [`Self::ACQUIRE`] that
    /// returned no row, as a hint; the decision was made by [`Self::ACQUIRE`] alone.
    const ACQUIRE_FOLLOWUP: Option<&'static str> = Some(
        "SELECT min(json_extract(h.value, '$.e')) - {now} AS holder_ms
    FROM {table} AS p, json_each(p.holders) AS h WHERE p.permit_key = {key} AND {alive}",
    );

    /// → affected rows (1 released, 0 not held). Atomic: one `UPDATE`, predicated on the
    /// owner's live holding, which drops it (and expired holders).
    const RELEASE: &'static str = "UPDATE {table} AS p SET holders = (
        SELECT json_group_array(json(h.value)) FROM json_each(p.holders) AS h
        WHERE {o} <> {owner} AND {alive})
    WHERE p.permit_key = {key}
      AND EXISTS (SELECT 1 FROM json_each(p.holders) AS h WHERE {o} = {owner} AND {alive})";

    /// → affected rows (1 extended, 0 not held). Atomic: one `UPDATE`, as [`Self::RELEASE`].
    const EXTEND: &'static str = "UPDATE {table} AS p SET holders = (
        SELECT json_group_array(CASE WHEN {o} = {owner}
            THEN json_set(h.value, '$.e', {now} + {ms}) ELSE json(h.value) END)
        FROM json_each(p.holders) AS h WHERE {alive})
    WHERE p.permit_key = {key}
      AND EXISTS (SELECT 1 FROM json_each(p.holders) AS h WHERE {o} = {owner} AND {alive})";

    /// → affected rows. Atomic: one `UPDATE` emptying the row (the fence stays).
    const FORCE_RELEASE: &'static str = "UPDATE {table}
    SET holders = '[]', reserved_by = NULL, reserved_until = NULL
    WHERE permit_key = {key}";
}

impl PermitText for SqlitePermits {
    type Locks = crate::sql::sqlite::SqliteSql;

    /// Fragments: a holder `h` (a `json_each` row) that has not expired, its fields, and
    /// the new holder.
    const PARTS: &'static [(&'static str, &'static str)] = &[
        (
            "{alive}",
            "(json_extract(h.value, '$.e') IS NULL OR json_extract(h.value, '$.e') > {now})",
        ),
        (
            "{entry}",
            "json_object('o', {owner}, 'w', {weight}, 'e', {now} + {ttl})",
        ),
        ("{o}", "json_extract(h.value, '$.o')"),
        ("{w}", "json_extract(h.value, '$.w')"),
    ];

    /// → `(holders, used)` of the live holders. A single read.
    const USAGE: &'static str = "SELECT COUNT(*) AS holders, coalesce(sum({w}), 0) AS used
    FROM {table} AS p, json_each(p.holders) AS h WHERE p.permit_key = {key} AND {alive}";
}
