//! PostgreSQL: its statements, and (with the `postgres` feature) the dialect that binds
//! and decodes them. `{table}` is replaced by the validated, quoted table name and
//! `{now}` by [`PgSql::NOW_MS`]. Parameters are bound, never interpolated.

use super::LockBinds;
use super::render::Param;

/// The statements of this backend.
pub(crate) struct PgSql;

impl super::OperationSql for PgSql {
    /// The table. `expires_at`: Unix ms by the database clock; `NULL` = held with no
    /// expiry; `0` = released. `fence`: the last fencing token. The row outlives releases.
    const DDL: &'static str = "CREATE TABLE IF NOT EXISTS {table} (
    lock_key   BYTEA  NOT NULL PRIMARY KEY,
    owner      BYTEA  NULL,
    expires_at BIGINT NULL,
    fence      BIGINT NOT NULL DEFAULT 0
)";

    /// `$1` key, `$2` owner, `$3` ttl ms (NULL = no expiry) → one row `(fence, holder_ms)`.
    ///
    /// Atomic: a single statement. When the statement's snapshot shows the key held and
    /// not expired, it is denied there and then: the key was held at that moment of the
    /// call, so the answer is true, and the denial reads only — it takes no row lock,
    /// writes no WAL and commits without a disk flush, so a waiter's try never delays the
    /// holder's release (which would otherwise wait for the denial's row lock). Otherwise
    /// the `INSERT … ON CONFLICT DO UPDATE … WHERE expired` decides: PostgreSQL locks the
    /// conflicting row and re-checks the `WHERE` on its latest version, so of two racing
    /// acquirers exactly one inserts or takes over; the fencing counter is bumped in the
    /// same row write (see [`super`]'s token rule: `max(fence + 1, now * 1000)`).
    /// `fence` is NULL when denied; `holder_ms` (from the snapshot, only a hint) is the
    /// holder's remaining time: NULL only for a holder without expiry, and `0` when the
    /// snapshot has no row yet (the key's first acquire by another transaction, which
    /// this one waited for and lost to): "try again now" rather than "never expires".
    const ACQUIRE: &'static str = "WITH current AS (
    SELECT expires_at FROM {table} WHERE lock_key = $1
), acquired AS (
    INSERT INTO {table} AS l (lock_key, owner, expires_at, fence)
    SELECT $1, $2, {now} + $3, {now} * 1000
    WHERE NOT EXISTS (SELECT FROM current WHERE expires_at IS NULL OR expires_at > {now})
    ON CONFLICT (lock_key) DO UPDATE
        SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at,
            fence = GREATEST(l.fence + 1, EXCLUDED.fence)
        WHERE l.expires_at <= {now}
    RETURNING l.fence
)
SELECT (SELECT fence FROM acquired) AS fence,
       CASE WHEN EXISTS (SELECT FROM current) THEN (SELECT expires_at - {now} FROM current)
            ELSE 0 END AS holder_ms";

    /// `$1` key, `$2` owner, `$3` channel → affected rows (1 released, 0 not owned).
    ///
    /// Atomic: one `UPDATE` predicated on owner and not-expired; the `pg_notify` is its
    /// `RETURNING` expression, evaluated for the updated row only, so the notification
    /// is sent exactly when the release commits.
    ///
    /// The release of a lock that has an expiry commits without waiting for its disk
    /// flush (`synchronous_commit = off` for this transaction only, set by a condition of
    /// the `WHERE`, evaluated on the row as it was: see [`super`]'s note on lazy
    /// releases). A lock without expiry keeps the session's own setting.
    const RELEASE: &'static str = "UPDATE {table} SET owner = NULL, expires_at = 0
    WHERE lock_key = $1 AND owner = $2 AND (expires_at IS NULL OR expires_at > {now})
      AND set_config('synchronous_commit', CASE WHEN expires_at IS NULL
                     THEN current_setting('synchronous_commit') ELSE 'off' END, true) <> ''
    RETURNING pg_notify($3, encode(lock_key, 'hex'))";

    /// `$1` key, `$2` channel → affected rows. Atomic: one `UPDATE` plus its `pg_notify`,
    /// and lazy for a lock with an expiry, as [`Self::RELEASE`].
    const FORCE_RELEASE: &'static str = "UPDATE {table} SET owner = NULL, expires_at = 0
    WHERE lock_key = $1 AND owner IS NOT NULL
      AND set_config('synchronous_commit', CASE WHEN expires_at IS NULL
                     THEN current_setting('synchronous_commit') ELSE 'off' END, true) <> ''
    RETURNING pg_notify($2, encode(lock_key, 'hex'))";

    /// `$1` key, `$2` owner, `$3` duration ms → affected rows (1, or 0 = not owned).
    /// Atomic: one `UPDATE` predicated on owner and not-expired.
    const EXTEND: &'static str = "UPDATE {table} SET expires_at = {now} + $3
    WHERE lock_key = $1 AND owner = $2 AND (expires_at IS NULL OR expires_at > {now})";
}

impl super::SqlText for PgSql {
    const BACKEND: crate::backend::Backend = crate::backend::Backend::Postgres;
    /// The releases bind the `NOTIFY` channel last.
    const BINDS: LockBinds = LockBinds {
        release: &[Param::Key, Param::LockOwner, Param::Channel],
        force_release: &[Param::Key, Param::Channel],
        ..LockBinds::USUAL
    };
    const QUOTE: char = '"';

    /// The database clock in Unix milliseconds. `statement_timestamp()` is read once per
    /// statement, so the expiry check and the new expiry of one statement agree (and,
    /// unlike `now()`, it is not frozen at the start of a longer transaction).
    const NOW_MS: &'static str = "(extract(epoch FROM statement_timestamp()) * 1000)::bigint";

    /// `$1` key → `n` (1 held, 0 not). A single read.
    const EXISTS: &'static str = "SELECT COUNT(*) AS n FROM {table}
    WHERE lock_key = $1 AND (expires_at IS NULL OR expires_at > {now})";
}

#[cfg(feature = "postgres")]
pub use driver::PgPool;
#[cfg(feature = "postgres")]
pub(crate) use driver::Postgres;

#[cfg(feature = "postgres")]
mod driver {
    use diesel_async::AsyncPgConnection;
    use lock_core::ReleaseFuture;

    use crate::backend::Backend;
    use crate::listener::PgListener;
    use crate::options::{DatabaseStoreOptions, MAX_TABLE_NAME_LEN};
    use crate::sql::{Abandon, Acquire, Acquired, Dialect, PoolOf, ReadRow};
    use crate::tls::{CancelTls, PgTls};

    /// A diesel-async PostgreSQL connection pool (deadpool), as an application may
    /// already have.
    pub type PgPool = PoolOf<AsyncPgConnection>;

    /// PostgreSQL: one statement per operation; releases `pg_notify` the table's channel.
    pub(crate) struct Postgres {
        listener: PgListener,
    }

    impl Dialect for Postgres {
        type Conn = AsyncPgConnection;
        type Locks = super::PgSql;
        type Permits = crate::permits::postgres::PgPermits;
        /// Connections use the URL's TLS settings (the driver gets the URL without
        /// them).
        type Connect = PgTls;
        const BACKEND: Backend = Backend::Postgres;

        fn new(pool: &PgPool, options: &DatabaseStoreOptions) -> Self {
            let channel = notify_channel(&options.table_name);
            Postgres {
                listener: listen(pool, channel, options),
            }
        }

        fn listener(
            pool: &PgPool,
            channel: String,
            options: &DatabaseStoreOptions,
        ) -> Option<PgListener> {
            Some(listen(pool, channel, options))
        }

        /// One statement decides and reports.
        fn acquire<'c>(&self, c: &'c mut AsyncPgConnection, a: Acquire) -> Acquired<'c> {
            c.read_row(a.decide)
        }

        fn notify_channel(&self) -> Option<&str> {
            Some(self.listener.channel())
        }

        fn release_listener(&self, key: &str) -> Option<ReleaseFuture> {
            Some(self.listener.listen(key))
        }

        fn released_locally(&self, key: &str) {
            self.listener.released_locally(key);
        }
    }

    /// The `LISTEN` connection of a store on `channel`.
    fn listen(pool: &PgPool, channel: String, options: &DatabaseStoreOptions) -> PgListener {
        PgListener::new(
            pool.clone(),
            channel,
            options.operation_timeout,
            options.endpoint(),
        )
    }

    impl Abandon for AsyncPgConnection {
        const REUSE_AFTER_TIMEOUT: bool = false;
        /// Ask the server to cancel the statement (so that, say, an acquire stuck
        /// behind a row lock does not commit later), then close the connection.
        fn abandon(self, tls: &CancelTls) {
            let token = self.cancel_token();
            let tls = tls.postgres.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    tls.cancel(token).await;
                    drop(self);
                });
            }
        }
    }

    /// The `NOTIFY` channel of a table: an identifier (the table name is one), at most
    /// 63 bytes.
    fn notify_channel(table: &str) -> String {
        let mut channel = format!("{table}_lock_released");
        channel.truncate(MAX_TABLE_NAME_LEN);
        channel
    }

    #[cfg(test)]
    mod tests {
        use super::notify_channel;

        #[test]
        fn notify_channel_fits_an_identifier() {
            assert_eq!(notify_channel("locks"), "locks_lock_released");
            assert_eq!(notify_channel(&"a".repeat(63)).len(), 63);
        }
    }
}
