//! One dialect per backend. Each module holds its SQL (named constants, each with why it
//! is atomic), and, when its cargo feature is on, a [`Dialect`] type that owns the
//! rendered statements, binds their parameters in its own order and decodes its rows.
//! The store runs any dialect through one path ([`crate::engine`]).
//!
//! The SQL text is compiled whatever the features, so that [`crate::statements`] and
//! [`crate::ddl`] render every backend's statements.
//!
//! # Fencing tokens: the rule every dialect's acquire follows
//!
//! The acquiring statement writes `fence = max(fence + 1, now_ms * 1000)` when it takes
//! over a row, and `fence = now_ms * 1000` when it inserts one; the value written is the
//! token. `now_ms` is the dialect's clock in Unix milliseconds (`{now}`), read in the
//! same statement; the factor 1000 leaves room for 1000 acquires of one key per
//! millisecond before the counter runs ahead of the clock.
//!
//! * While the key's row exists, each token exceeds the previous one by the `+ 1`,
//!   whatever the clock: releases and force releases keep the row (they clear `owner`
//!   and set `expires_at = 0`), and takeovers after expiry update it in place, under
//!   the row's lock, whichever store instance or process runs them.
//! * When the row is gone — released rows purged by an operator, the table dropped and
//!   re-created — the counter is lost and the token is `now_ms * 1000`. It exceeds
//!   every earlier token of the key **assuming the clock has not stepped back** since
//!   then **and at least one millisecond has passed** since the key's last acquisition
//!   (an earlier token is its own `now_ms * 1000`, or more only if the key was acquired
//!   over 1000 times in one millisecond; within the same millisecond the token repeats). PostgreSQL and MySQL read the
//!   server's clock; SQLite the machine's wall clock.

pub(crate) mod mysql;
pub(crate) mod postgres;
pub(crate) mod sqlite;

use crate::backend::Backend;

/// The statements of one backend, with `{table}` (the quoted table name) and `{now}`
/// (the clock in Unix milliseconds) still to be filled in.
pub(crate) struct Templates {
    pub(crate) now_ms: &'static str,
    /// The identifier quote of the backend.
    pub(crate) quote: char,
    pub(crate) ddl: &'static str,
    pub(crate) probe: &'static str,
    pub(crate) acquire: &'static str,
    pub(crate) acquire_followup: Option<&'static str>,
    pub(crate) release: &'static str,
    pub(crate) force_release: &'static str,
    pub(crate) extend: &'static str,
    pub(crate) exists: &'static str,
}

impl Templates {
    /// The templates of `backend`.
    pub(crate) fn of(backend: Backend) -> &'static Templates {
        match backend {
            Backend::Postgres => &postgres::TEMPLATES,
            Backend::Mysql => &mysql::TEMPLATES,
            Backend::Sqlite => &sqlite::TEMPLATES,
        }
    }
}

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
pub(crate) use driver::*;

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod driver {
    use std::future::Future;
    use std::pin::Pin;

    use deadpool::managed::{Manager, Pool};
    use diesel::QueryResult;
    use diesel::QueryableByName;
    use diesel::sql_types::{BigInt, Nullable};
    use diesel_async::pooled_connection::{AsyncDieselConnectionManager, PoolError};
    use lock_core::{LockError, ReleaseFuture};

    use crate::backend::Backend;
    use crate::options::DatabaseStoreOptions;
    use crate::statements::Statements;

    /// A boxed future borrowing a connection.
    pub(crate) type BoxFuture<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

    /// The deadpool pool of a connection type.
    pub(crate) type PoolOf<C> = Pool<AsyncDieselConnectionManager<C>>;

    /// What an acquire statement reports, before interpretation: the new fencing token
    /// (`None` = denied) and the holder's remaining milliseconds (a hint).
    #[derive(Debug, QueryableByName)]
    pub(crate) struct AcquireRow {
        #[diesel(sql_type = Nullable<BigInt>)]
        pub(crate) fence: Option<i64>,
        #[diesel(sql_type = Nullable<BigInt>)]
        pub(crate) holder_ms: Option<i64>,
    }

    /// A one-column `n` result (counts).
    #[derive(QueryableByName)]
    pub(crate) struct CountRow {
        #[diesel(sql_type = BigInt)]
        pub(crate) n: i64,
    }

    /// One backend: its connection type, its statements, its binds, its rows.
    ///
    /// Each method builds its query synchronously (binding owned parameters) and returns
    /// a future that borrows only the connection, so that the caller can bound it with
    /// the operation deadline and abandon the connection if it runs out.
    pub(crate) trait Dialect: Send + Sync + Sized + 'static {
        /// The pooled connection (which also runs the permit statements).
        type Conn: Abandon + crate::permits::PermitConn + Send + 'static;

        /// The backend this dialect speaks.
        const BACKEND: Backend;

        /// Open the store's own pool for a parsed URL.
        fn open_pool(
            target: &str,
            memory: bool,
            options: &DatabaseStoreOptions,
        ) -> Result<PoolOf<Self::Conn>, LockError>
        where
            AsyncDieselConnectionManager<Self::Conn>: Manager<Type = Self::Conn, Error = PoolError>;

        /// The dialect for `pool` and the rendered statements of its table.
        fn new(pool: &PoolOf<Self::Conn>, sql: Statements, options: &DatabaseStoreOptions) -> Self
        where
            AsyncDieselConnectionManager<Self::Conn>: Manager<Type = Self::Conn, Error = PoolError>;

        /// The rendered statements.
        fn sql(&self) -> &Statements;

        /// `CREATE TABLE IF NOT EXISTS`.
        fn create_table<'c>(&self, c: &'c mut Self::Conn) -> BoxFuture<'c, QueryResult<()>>;

        /// Fails when the table is missing or lacks a column.
        fn probe<'c>(&self, c: &'c mut Self::Conn) -> BoxFuture<'c, QueryResult<()>>;

        /// Insert, or take over an expired row, minting the fencing token.
        fn acquire<'c>(
            &self,
            c: &'c mut Self::Conn,
            key: Vec<u8>,
            owner: Vec<u8>,
            ttl_ms: Option<i64>,
        ) -> BoxFuture<'c, QueryResult<AcquireRow>>;

        /// Release by owner → rows released (0 or 1).
        fn release<'c>(
            &self,
            c: &'c mut Self::Conn,
            key: Vec<u8>,
            owner: Vec<u8>,
        ) -> BoxFuture<'c, QueryResult<usize>>;

        /// Release whoever holds it → rows released (0 or 1).
        fn force_release<'c>(
            &self,
            c: &'c mut Self::Conn,
            key: Vec<u8>,
        ) -> BoxFuture<'c, QueryResult<usize>>;

        /// Extend by owner → rows extended (0 or 1).
        fn extend<'c>(
            &self,
            c: &'c mut Self::Conn,
            key: Vec<u8>,
            owner: Vec<u8>,
            ms: i64,
        ) -> BoxFuture<'c, QueryResult<usize>>;

        /// Held and not expired → 0 or 1.
        fn exists<'c>(
            &self,
            c: &'c mut Self::Conn,
            key: Vec<u8>,
        ) -> BoxFuture<'c, QueryResult<i64>>;

        /// A listener woken when `key` may have been released, if this backend notifies.
        fn release_listener(&self, key: &str) -> Option<ReleaseFuture> {
            let _ = key;
            None
        }

        /// After one of this process's own releases: wake its local waiters at once.
        fn released_locally(&self, key: &str) {
            let _ = key;
        }
    }

    /// What becomes of a connection whose statement outlived the operation deadline
    /// (or whose operation future was dropped).
    pub(crate) trait Abandon: Sized {
        /// Return it to the pool (its statement finishes on its own).
        const REUSE_AFTER_TIMEOUT: bool;
        /// Otherwise: close it (its protocol state is unknown).
        fn abandon(self) {}
    }
}
