//! MySQL / MariaDB permit statements. `{table}` is the quoted permits table, `{now}`
//! the database clock in Unix ms (the lock statements' `NOW_MS`: `UTC_TIMESTAMP(6)`,
//! fixed for a statement), other markers are bound parameters ([`crate::sql::render`]),
//! each occurrence its own `?`.
//!
//! The holders are read with `JSON_TABLE` (MySQL 8.0.4+, MariaDB 10.6+). Owners are
//! compared byte for byte (`utf8mb4_bin`: a `_ci` collation would make `A` and `a` one
//! owner).

use super::PermitText;
use crate::sql::OperationSql;

/// The permit statements of this backend.
pub(crate) struct MysqlPermits;

impl OperationSql for MysqlPermits {
    /// The table: as on PostgreSQL (see [`super::postgres::PgPermits`]).
    const DDL: &'static str = "CREATE TABLE IF NOT EXISTS {table} (
    permit_key     VARBINARY(1024) NOT NULL PRIMARY KEY,
    holders        JSON            NOT NULL,
    reserved_by    VARBINARY(255)  NULL,
    reserved_until BIGINT          NULL,
    fence          BIGINT          NOT NULL DEFAULT 0
) ENGINE = InnoDB";

    /// Binds in text order; the outcome goes to `LAST_INSERT_ID`
    /// ([`Self::ACQUIRE_FOLLOWUP`]).
    ///
    /// Atomic: one `INSERT … ON DUPLICATE KEY UPDATE`, which holds the row's exclusive
    /// lock while it decides on the row's current values. A fresh key is inserted with
    /// the request as its only holder. MySQL assigns left to right, each assignment seeing
    /// the ones before, so the order matters:
    /// 1. `fence` first, from the untouched row: the new token
    ///    (`max(fence + 1, now * 1000)`) into `LAST_INSERT_ID` when granted, 0 when denied.
    /// 2. The reservation. Its "another owner's live reservation" test gives the same
    ///    answer before and after these assignments (granted or taken: none; otherwise
    ///    unchanged, or dropped when expired), so the decision does not move.
    /// 3. `holders` last, since the decision reads it: live holders, plus the request
    ///    when granted.
    const ACQUIRE: &'static str = "INSERT INTO {table} (permit_key, holders, reserved_by,
    reserved_until, fence)
VALUES ({key}, JSON_ARRAY({entry}), NULL, NULL, LAST_INSERT_ID({now} * 1000))
ON DUPLICATE KEY UPDATE
    fence = IF({grant}, LAST_INSERT_ID(GREATEST(fence + 1, {now} * 1000)),
        fence + LAST_INSERT_ID(0)),
    reserved_by = IF({grant}, NULL, IF({take}, {owner},
        IF(reserved_until > {now}, reserved_by, NULL))),
    reserved_until = IF({grant}, NULL, IF({take}, {now} + {reserve},
        IF(reserved_until > {now}, reserved_until, NULL))),
    holders = IF({grant}, JSON_ARRAY_APPEND({live}, '$', {entry}), {live})";

    /// → one row `(fence, holder_ms)`. Runs on the same connection right after
    /// [`Self::ACQUIRE`]: `LAST_INSERT_ID()` is per connection, so no other statement can
    /// interleave. `holder_ms` (the earliest live holder's remaining time) is a hint.
    const ACQUIRE_FOLLOWUP: Option<&'static str> = Some(
        "SELECT CAST(LAST_INSERT_ID() AS SIGNED) AS fence,
    (SELECT CAST(MIN(jt.e) - {now} AS SIGNED) FROM {table}, {jt}
     WHERE permit_key = {key} AND jt.e > {now}) AS holder_ms",
    );

    /// → matched rows (1 released, 0 not held). Atomic: one `UPDATE` of the key's row
    /// (a locking read of its latest version), predicated on the owner's live holding.
    const RELEASE: &'static str = "UPDATE {table} SET holders = (
        SELECT COALESCE(JSON_ARRAYAGG(JSON_OBJECT('o', jt.o, 'w', jt.w, 'e', jt.e)), JSON_ARRAY())
        FROM {jt} WHERE jt.o <> {owner} AND {alive})
    WHERE permit_key = {key} AND {mine}";

    /// → matched rows (1 extended, 0 not held). Atomic: one `UPDATE`, as [`Self::RELEASE`].
    const EXTEND: &'static str = "UPDATE {table} SET holders = (
        SELECT JSON_ARRAYAGG(JSON_OBJECT('o', jt.o, 'w', jt.w,
            'e', IF(jt.o = {owner}, {now} + {ms}, jt.e)))
        FROM {jt} WHERE {alive})
    WHERE permit_key = {key} AND {mine}";

    /// → matched rows. Atomic: one `UPDATE` emptying the row (the fence stays).
    const FORCE_RELEASE: &'static str = "UPDATE {table}
    SET holders = JSON_ARRAY(), reserved_by = NULL, reserved_until = NULL
    WHERE permit_key = {key}";
}

impl PermitText for MysqlPermits {
    type Locks = crate::sql::mysql::MysqlSql;

    /// Fragments, each expanding into the next ones. Every one reads the row's own columns
    /// (`{table}.holders` is the row being written, not a read of the table).
    const PARTS: &'static [(&'static str, &'static str)] = &[
        (
            "{grant}",
            "(NOT {mine} AND NOT {other} AND {used} + {weight} <= {limit})",
        ),
        (
            "{take}",
            "(NOT {mine} AND NOT {other} AND {reserve} IS NOT NULL)",
        ),
        (
            "{live}",
            "(SELECT COALESCE(JSON_ARRAYAGG(JSON_OBJECT('o', jt.o, 'w', jt.w, 'e', jt.e)), \
         JSON_ARRAY()) FROM {jt} WHERE {alive})",
        ),
        (
            "{mine}",
            "EXISTS (SELECT 1 FROM {jt} WHERE jt.o = {owner} AND {alive})",
        ),
        (
            "{used}",
            "(SELECT COALESCE(SUM(jt.w), 0) FROM {jt} WHERE {alive})",
        ),
        (
            "{other}",
            "COALESCE(reserved_by <> {owner} AND reserved_until > {now}, FALSE)",
        ),
        (
            "{entry}",
            "JSON_OBJECT('o', {owner}, 'w', {weight}, 'e', {now} + {ttl})",
        ),
        (
            "{jt}",
            "JSON_TABLE({table}.holders, '$[*]' COLUMNS (\
         o VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$.o', \
         w BIGINT PATH '$.w', e BIGINT PATH '$.e')) AS jt",
        ),
        ("{alive}", "(jt.e IS NULL OR jt.e > {now})"),
    ];

    /// → `(holders, used)` of the live holders. A single read.
    const USAGE: &'static str = "SELECT COUNT(*) AS holders,
        CAST(COALESCE(SUM(jt.w), 0) AS SIGNED) AS used
    FROM {table}, {jt} WHERE permit_key = {key} AND {alive}";
}
