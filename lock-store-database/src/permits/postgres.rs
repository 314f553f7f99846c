//! PostgreSQL permit statements. `{table}` is the quoted permits table, `{now}` the
//! database clock in Unix ms (the lock statements' `NOW_MS`: `statement_timestamp()`),
//! other markers are bound parameters ([`crate::sql::render`]).
//!
//! Every write is one statement on the key's one row, and computes the new row from
//! that row's own columns only: PostgreSQL locks the row and evaluates
//! `ON CONFLICT … DO UPDATE` (and re-checks an `UPDATE`'s `WHERE` in READ COMMITTED)
//! against its latest committed version, so two racing requests are serialized by the
//! row lock and the second one decides on the first one's result. A subquery over the
//! table itself would read the statement's older snapshot instead: none is used to
//! decide.

use super::PermitText;
use crate::sql::OperationSql;

/// The permit statements of this backend.
pub(crate) struct PgPermits;

impl OperationSql for PgPermits {
    /// The table: one row per permit key ever used. `holders`: a JSON array of
    /// `{"o": owner, "w": weight, "e": expiry in Unix ms or null}`; `reserved_by` /
    /// `reserved_until`: a waiting writer's reservation; `fence`: the last fencing token.
    const DDL: &'static str = "CREATE TABLE IF NOT EXISTS {table} (
    permit_key     BYTEA  NOT NULL PRIMARY KEY,
    holders        JSONB  NOT NULL DEFAULT '[]',
    reserved_by    TEXT   NULL,
    reserved_until BIGINT NULL,
    fence          BIGINT NOT NULL DEFAULT 0
)";

    /// → one row `(fence, holder_ms)`: `fence` when granted, else `holder_ms`, the
    /// earliest live holder's remaining time (a hint).
    ///
    /// Atomic: one `INSERT … ON CONFLICT DO UPDATE … WHERE`, deciding on the locked row.
    /// A fresh key is inserted with the request as its only holder. Otherwise the `WHERE`
    /// lets the update happen only when the owner holds nothing live, no other owner's
    /// reservation is live, and either the live weights plus the request fit the limit
    /// (grant: live holders + the request, reservation cleared, token
    /// `max(fence + 1, now * 1000)`) or the request reserves (live holders, reservation
    /// taken or renewed for the owner). The returned row tells which: the owner is among
    /// the new holders only when granted. With no row returned (denied, nothing to write),
    /// the hint comes from the statement's snapshot.
    const ACQUIRE: &'static str = "WITH acquired AS (
    INSERT INTO {table} AS p (permit_key, holders, fence)
    VALUES ({key}, jsonb_build_array({entry}), {now} * 1000)
    ON CONFLICT (permit_key) DO UPDATE
    SET (holders, reserved_by, reserved_until, fence) = (
        SELECT CASE WHEN s.fits THEN s.live || EXCLUDED.holders ELSE s.live END,
               CASE WHEN s.fits THEN NULL ELSE {owner} END,
               CASE WHEN s.fits THEN NULL ELSE {now} + {reserve} END,
               CASE WHEN s.fits THEN GREATEST(p.fence + 1, EXCLUDED.fence) ELSE p.fence END
        FROM (
            SELECT COALESCE(jsonb_agg(h), '[]') AS live,
                   COALESCE(sum((h ->> 'w')::bigint), 0) + {weight} <= {limit} AS fits
            FROM jsonb_array_elements(p.holders) AS h WHERE {alive}
        ) AS s
    )
    WHERE NOT EXISTS (SELECT FROM jsonb_array_elements(p.holders) AS h
                      WHERE h ->> 'o' = {owner} AND {alive})
      AND NOT COALESCE(p.reserved_by <> {owner} AND p.reserved_until > {now}, false)
      AND ({reserve} IS NOT NULL OR (
            SELECT COALESCE(sum((h ->> 'w')::bigint), 0)
            FROM jsonb_array_elements(p.holders) AS h WHERE {alive}
          ) + {weight} <= {limit})
    RETURNING p.fence,
        p.holders @> jsonb_build_array(jsonb_build_object('o', {owner})) AS granted,
        (SELECT min((h ->> 'e')::bigint) FROM jsonb_array_elements(p.holders) AS h)
            - {now} AS holder_ms
)
SELECT CASE WHEN a.granted THEN a.fence END AS fence,
       CASE WHEN a.granted IS NULL THEN (
                SELECT min((h ->> 'e')::bigint) - {now}
                FROM {table} AS t CROSS JOIN LATERAL jsonb_array_elements(t.holders) AS h
                WHERE t.permit_key = {key} AND {alive})
            WHEN NOT a.granted THEN a.holder_ms END AS holder_ms
FROM (SELECT) AS one LEFT JOIN acquired AS a ON true";

    /// → affected rows (1 released, 0 not held). Atomic: one `UPDATE` of the key's row,
    /// predicated on the owner's live holding (re-checked on the latest version), which
    /// drops it (and expired holders); `pg_notify` runs for the updated row in the same
    /// statement, so the notification is sent exactly when the release commits. Lazy
    /// (`synchronous_commit = off`) unless the owner's holding has no expiry: see
    /// `crate::sql`'s note on lazy releases.
    const RELEASE: &'static str = "UPDATE {table} AS p SET holders = (
        SELECT COALESCE(jsonb_agg(h), '[]') FROM jsonb_array_elements(p.holders) AS h
        WHERE h ->> 'o' <> {owner} AND {alive})
    WHERE p.permit_key = {key}
      AND EXISTS (SELECT FROM jsonb_array_elements(p.holders) AS h
                  WHERE h ->> 'o' = {owner} AND {alive})
      AND set_config('synchronous_commit',
            CASE WHEN EXISTS (SELECT FROM jsonb_array_elements(p.holders) AS h
                              WHERE h ->> 'o' = {owner} AND (h ->> 'e') IS NULL)
                 THEN current_setting('synchronous_commit') ELSE 'off' END, true) <> ''
    RETURNING pg_notify({channel}, encode(p.permit_key, 'hex'))";

    /// → affected rows (1 extended, 0 not held). Atomic: one `UPDATE`, as [`Self::RELEASE`].
    const EXTEND: &'static str = "UPDATE {table} AS p SET holders = (
        SELECT jsonb_agg(CASE WHEN h ->> 'o' = {owner}
                              THEN h || jsonb_build_object('e', {now} + {ms}) ELSE h END)
        FROM jsonb_array_elements(p.holders) AS h WHERE {alive})
    WHERE p.permit_key = {key}
      AND EXISTS (SELECT FROM jsonb_array_elements(p.holders) AS h
                  WHERE h ->> 'o' = {owner} AND {alive})";

    /// → affected rows. Atomic: one `UPDATE` emptying the row (the fence stays), with its
    /// `pg_notify`, as [`Self::RELEASE`]; lazy unless some holding has no expiry.
    const FORCE_RELEASE: &'static str = "UPDATE {table}
    SET holders = '[]', reserved_by = NULL, reserved_until = NULL
    WHERE permit_key = {key} AND (holders <> '[]' OR reserved_by IS NOT NULL)
      AND set_config('synchronous_commit',
            CASE WHEN EXISTS (SELECT FROM jsonb_array_elements(holders) AS h
                              WHERE (h ->> 'e') IS NULL)
                 THEN current_setting('synchronous_commit') ELSE 'off' END, true) <> ''
    RETURNING pg_notify({channel}, encode(permit_key, 'hex'))";
}

impl PermitText for PgPermits {
    type Locks = crate::sql::postgres::PgSql;

    /// Fragments: a holder `h` that has not expired, and the new holder.
    const PARTS: &'static [(&'static str, &'static str)] = &[
        (
            "{alive}",
            "((h ->> 'e') IS NULL OR (h ->> 'e')::bigint > {now})",
        ),
        (
            "{entry}",
            "jsonb_build_object('o', {owner}, 'w', {weight}, 'e', {now} + {ttl})",
        ),
    ];

    /// → `(holders, used)` of the live holders. A single read.
    const USAGE: &'static str = "SELECT COUNT(*) AS holders,
        COALESCE(sum((h ->> 'w')::bigint), 0)::bigint AS used
    FROM {table} AS p CROSS JOIN LATERAL jsonb_array_elements(p.holders) AS h
    WHERE p.permit_key = {key} AND {alive}";
}
