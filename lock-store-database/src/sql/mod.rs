//! One dialect per backend. Each module holds its SQL text (a type whose
//! [`OperationSql`] and [`SqlText`] constants say why each statement is atomic; the
//! permit statements have the same shape, in `crate::permits`), and, when its cargo
//! feature is on, a
//! `Dialect` type that orders the parameters of its statements and runs its acquire
//! (the one operation whose statements and rows differ between backends). A bound
//! statement runs the same way on every backend's connection (`Run`); the store runs
//! any dialect through one path ([`crate::engine`]).
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
use crate::statements::Statements;

/// The statements of one kind of key (locks, or permits) on one backend, before
/// rendering: the operations every kind has. Each statement's comment gives its
/// parameters, in the order they are bound, and why it is atomic.
pub(crate) trait OperationSql {
    /// `CREATE TABLE IF NOT EXISTS`.
    const DDL: &'static str;
    /// Take the key (insert, or take over an expired row; for permits: grant, or
    /// reserve), minting the fencing token.
    const ACQUIRE: &'static str;
    /// A second statement of the acquire, on the same connection, if any.
    const ACQUIRE_FOLLOWUP: Option<&'static str> = None;
    /// Release by owner.
    const RELEASE: &'static str;
    /// Release whoever holds it.
    const FORCE_RELEASE: &'static str;
    /// Extend by owner.
    const EXTEND: &'static str;
}

/// The lock statements of one backend, with `{table}` (the quoted table name) and
/// `{now}` (the clock in Unix milliseconds) still to be filled in; its clock and quote
/// serve its permit statements too.
pub(crate) trait SqlText: OperationSql {
    /// The identifier quote.
    const QUOTE: char;
    /// The clock in Unix milliseconds, read once per statement.
    const NOW_MS: &'static str;
    /// Held and not expired → `n`.
    const EXISTS: &'static str;
}

/// Checks that the table exists with the expected columns, touching no row (the same on
/// every backend).
pub(crate) const PROBE: &str = "SELECT COUNT(*) AS n FROM (
    SELECT lock_key, owner, expires_at, fence FROM {table} WHERE 1 = 0
) AS probe";

/// Render the statements of `S` for `table` (already validated).
fn render<S: SqlText>(table: &str) -> Statements {
    let quoted = format!("{q}{table}{q}", q = S::QUOTE);
    let fill = |template: &str| {
        template
            .replace("{table}", &quoted)
            .replace("{now}", S::NOW_MS)
    };
    Statements {
        ddl: fill(S::DDL),
        probe: fill(PROBE),
        acquire: fill(S::ACQUIRE),
        acquire_followup: S::ACQUIRE_FOLLOWUP.map(fill),
        release: fill(S::RELEASE),
        force_release: fill(S::FORCE_RELEASE),
        extend: fill(S::EXTEND),
        exists: fill(S::EXISTS),
    }
}

/// The statements of `backend` for `table` (already validated).
pub(crate) fn statements_of(backend: Backend, table: &str) -> Statements {
    match backend {
        Backend::Postgres => render::<postgres::PgSql>(table),
        Backend::Mysql => render::<mysql::MysqlSql>(table),
        Backend::Sqlite => render::<sqlite::SqliteSql>(table),
    }
}

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
pub(crate) use driver::*;

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod driver {
    use std::future::Future;
    use std::pin::Pin;

    use deadpool::managed::{Manager, Pool};
    use diesel::deserialize::FromSql;
    use diesel::query_builder::{BoxedSqlQuery, QueryFragment, QueryId, SqlQuery};
    use diesel::serialize::ToSql;
    use diesel::sql_types::{BigInt, Binary, Nullable, Text};
    use diesel::{ConnectionResult, OptionalExtension, QueryResult, QueryableByName};
    use diesel_async::pooled_connection::{
        AsyncDieselConnectionManager, ManagerConfig, PoolError, RecyclingMethod,
    };
    use diesel_async::{AsyncConnection, RunQueryDsl};
    use lock_core::{LockError, ReleaseFuture};

    use crate::backend::Backend;
    use crate::engine::build_pool;
    use crate::options::DatabaseStoreOptions;
    use crate::permits::{Listener, UsageRow};
    use crate::prepared::{Prepared, prepared};

    /// A boxed future borrowing a connection.
    pub(crate) type BoxFuture<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

    /// The deadpool pool of a connection type.
    pub(crate) type PoolOf<C> = Pool<AsyncDieselConnectionManager<C>>;

    /// Pool size for a server database when none is configured.
    pub(crate) const DEFAULT_POOL_SIZE: usize = 10;

    /// What an acquire (of a lock or of permits) reports, before interpretation: the new
    /// fencing token (`None` = denied) and the holder's remaining milliseconds (a hint,
    /// read only when denied).
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

    /// One bound parameter of a statement.
    pub(crate) enum Param {
        /// A key or a lock's owner (`BYTEA`, `VARBINARY`, `BLOB`).
        Bytes(Vec<u8>),
        /// Milliseconds, a weight, a limit.
        Int(i64),
        /// A TTL in milliseconds; `None` = no expiry.
        OptInt(Option<i64>),
        /// A permit owner (it goes into JSON), a `NOTIFY` channel.
        Text(String),
    }

    /// A statement and its parameters, in the order of its placeholders.
    pub(crate) struct Bound {
        sql: String,
        params: Vec<Param>,
    }

    impl Bound {
        pub(crate) fn new(sql: &str, params: Vec<Param>) -> Self {
            Bound {
                sql: sql.to_owned(),
                params,
            }
        }

        /// As a diesel query the connection may keep prepared (see `crate::prepared`:
        /// `sql_query` alone would prepare it again on every call, one more round trip).
        fn query<DB>(self) -> Prepared<BoxedSqlQuery<'static, DB, SqlQuery>>
        where
            DB: diesel::backend::Backend
                + diesel::sql_types::HasSqlType<Binary>
                + diesel::sql_types::HasSqlType<BigInt>
                + diesel::sql_types::HasSqlType<Text>,
            Vec<u8>: ToSql<Binary, DB>,
            i64: ToSql<BigInt, DB>,
            String: ToSql<Text, DB>,
        {
            let query = prepared::<DB>(self.sql);
            self.params.into_iter().fold(query, |q, param| match param {
                Param::Bytes(v) => q.bind::<Binary, _>(v),
                Param::Int(v) => q.bind::<BigInt, _>(v),
                Param::OptInt(v) => q.bind::<Nullable<BigInt>, _>(v),
                Param::Text(v) => q.bind::<Text, _>(v),
            })
        }
    }

    /// Runs a [`Bound`] statement on a connection. Implemented once, for the connection
    /// of every backend.
    ///
    /// Each method builds its query synchronously and returns a future that borrows only
    /// the connection, so that the caller can bound it with the operation deadline and
    /// abandon the connection if it runs out.
    pub(crate) trait Run: AsyncConnection + 'static {
        /// → affected (with MySQL's `CLIENT_FOUND_ROWS`: matched) rows.
        fn execute_with(&mut self, q: Bound) -> BoxFuture<'_, QueryResult<usize>>;

        /// → the first row, if any.
        fn first_row<U>(&mut self, q: Bound) -> BoxFuture<'_, QueryResult<Option<U>>>
        where
            U: QueryableByName<Self::Backend> + Send + 'static;

        /// → the `n` of its one row.
        fn count(&mut self, q: Bound) -> BoxFuture<'_, QueryResult<i64>>;
    }

    impl<C> Run for C
    where
        C: AsyncConnection + 'static,
        C::Backend: diesel::sql_types::HasSqlType<Binary>
            + diesel::sql_types::HasSqlType<BigInt>
            + diesel::sql_types::HasSqlType<Text>,
        BoxedSqlQuery<'static, C::Backend, SqlQuery>: QueryFragment<C::Backend> + QueryId,
        Vec<u8>: ToSql<Binary, C::Backend>,
        i64: ToSql<BigInt, C::Backend>,
        String: ToSql<Text, C::Backend>,
        i64: FromSql<BigInt, C::Backend>,
    {
        fn execute_with(&mut self, q: Bound) -> BoxFuture<'_, QueryResult<usize>> {
            Box::pin(q.query::<C::Backend>().execute(self))
        }

        fn first_row<U>(&mut self, q: Bound) -> BoxFuture<'_, QueryResult<Option<U>>>
        where
            U: QueryableByName<C::Backend> + Send + 'static,
        {
            let q = q.query::<C::Backend>();
            Box::pin(async move { q.get_result::<U>(self).await.optional() })
        }

        fn count(&mut self, q: Bound) -> BoxFuture<'_, QueryResult<i64>> {
            let row = self.first_row::<CountRow>(q);
            Box::pin(async move { one(row.await?).map(|r| r.n) })
        }
    }

    /// Reads the one row of a statement as `U`, on any connection whose backend decodes
    /// `U` (what code generic over the dialect needs: [`Run::first_row`] names the
    /// backend).
    pub(crate) trait ReadRow<U>: Run {
        /// → the one row (none is diesel's `NotFound`).
        fn read_row(&mut self, q: Bound) -> BoxFuture<'_, QueryResult<U>>;
    }

    impl<C, U> ReadRow<U> for C
    where
        C: Run,
        U: QueryableByName<C::Backend> + Send + 'static,
    {
        fn read_row(&mut self, q: Bound) -> BoxFuture<'_, QueryResult<U>> {
            let row = self.first_row::<U>(q);
            Box::pin(async move { one(row.await?) })
        }
    }

    /// An acquire, of a lock or of permits, bound: the statement that decides and, where
    /// the dialect needs one ([`crate::Statements::acquire_followup`]), the read that
    /// follows it on the same connection.
    pub(crate) struct Acquire {
        pub(crate) decide: Bound,
        pub(crate) followup: Option<Bound>,
    }

    impl Acquire {
        /// The follow-up read, which this dialect's statements always have.
        pub(crate) fn followup(&mut self) -> QueryResult<Bound> {
            self.followup.take().ok_or_else(|| {
                diesel::result::Error::QueryBuilderError("the acquire has no follow-up read".into())
            })
        }
    }

    /// What a dialect's acquire returns.
    pub(crate) type Acquired<'c> = BoxFuture<'c, QueryResult<AcquireRow>>;

    /// The one row a statement must return (as diesel's `get_result`).
    pub(crate) fn one<U>(row: Option<U>) -> QueryResult<U> {
        row.ok_or(diesel::result::Error::NotFound)
    }

    /// How the store's own pool opens its connections: the TLS settings of a URL, or
    /// SQLite's set-up.
    pub(crate) trait Connect: Clone + Send + Sync + Sized + 'static {
        /// The connection it opens.
        type Conn: AsyncConnection + 'static;
        /// The driver's URL for a parsed `url`, and how to connect to it. Errors are
        /// `InvalidArgument`.
        fn for_url(url: &str, options: &DatabaseStoreOptions) -> Result<(String, Self), LockError>;
        /// Open a connection to the driver's `url`.
        fn connect<'a>(&'a self, url: &'a str) -> BoxFuture<'a, ConnectionResult<Self::Conn>>;
    }

    /// One backend: its connection type, its statements, the order of their parameters,
    /// its acquire. The statements every backend runs alike are run by
    /// [`crate::engine`]; the acquire (of locks and of permits alike) by the dialect.
    pub(crate) trait Dialect: Send + Sync + Sized + 'static {
        /// The pooled connection (which also runs the permit statements).
        type Conn: Abandon + Run + ReadRow<UsageRow>;

        /// How the store's own pool opens its connections.
        type Connect: Connect<Conn = Self::Conn>;

        /// The backend this dialect speaks.
        const BACKEND: Backend;

        /// Whether the release statements answer with a row `n` (rows released) rather
        /// than an affected-row count.
        const RELEASE_READS_COUNT: bool = false;

        /// The size of the store's own pool: [`DEFAULT_POOL_SIZE`] unless configured.
        fn pool_size(memory: bool, options: &DatabaseStoreOptions) -> usize {
            let _ = memory;
            options.max_connections.unwrap_or(DEFAULT_POOL_SIZE)
        }

        /// Open the store's own pool for a parsed URL: connections opened by
        /// [`Self::Connect`], recycled without a check (`Verified` would add a
        /// `SELECT 1` round trip to every checkout), [`Self::pool_size`] of them.
        fn open_pool(
            target: &str,
            memory: bool,
            options: &DatabaseStoreOptions,
        ) -> Result<PoolOf<Self::Conn>, LockError>
        where
            AsyncDieselConnectionManager<Self::Conn>: Manager<Type = Self::Conn, Error = PoolError>,
        {
            let (target, connect) = Self::Connect::for_url(target, options)?;
            let mut config = ManagerConfig::default();
            config.recycling_method = RecyclingMethod::Fast;
            config.custom_setup = Box::new(move |url| {
                let connect = connect.clone();
                Box::pin(async move { connect.connect(url).await })
            });
            let size = Self::pool_size(memory, options);
            build_pool(&target, config, size, options.operation_timeout)
        }

        /// The dialect for `pool`.
        fn new(pool: &PoolOf<Self::Conn>, options: &DatabaseStoreOptions) -> Self
        where
            AsyncDieselConnectionManager<Self::Conn>: Manager<Type = Self::Conn, Error = PoolError>;

        /// A release listener on the `NOTIFY` channel `channel`, if this backend
        /// notifies.
        fn listener(
            pool: &PoolOf<Self::Conn>,
            channel: String,
            options: &DatabaseStoreOptions,
        ) -> Option<Listener>
        where
            AsyncDieselConnectionManager<Self::Conn>: Manager<Type = Self::Conn, Error = PoolError>,
        {
            let _ = (pool, channel, options);
            None
        }

        /// Run an acquire: decide (insert, or take over, minting the fencing token) and
        /// read the outcome.
        fn acquire<'c>(&self, c: &'c mut Self::Conn, a: Acquire) -> Acquired<'c>;

        /// The parameters of [`Statements::acquire`](crate::Statements::acquire), in the
        /// order of its placeholders: key, owner, TTL.
        fn acquire_params(&self, key: Vec<u8>, owner: Vec<u8>, ttl: Option<i64>) -> Vec<Param> {
            vec![Param::Bytes(key), Param::Bytes(owner), Param::OptInt(ttl)]
        }

        /// The parameters of [`Statements::release`](crate::Statements::release).
        fn release_params(&self, key: Vec<u8>, owner: Vec<u8>) -> Vec<Param> {
            vec![Param::Bytes(key), Param::Bytes(owner)]
        }

        /// The parameters of [`Statements::force_release`](crate::Statements::force_release).
        fn force_release_params(&self, key: Vec<u8>) -> Vec<Param> {
            vec![Param::Bytes(key)]
        }

        /// The parameters of [`Statements::extend`](crate::Statements::extend).
        fn extend_params(&self, key: Vec<u8>, owner: Vec<u8>, ms: i64) -> Vec<Param> {
            vec![Param::Bytes(key), Param::Bytes(owner), Param::Int(ms)]
        }

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
        /// Otherwise: close it (its protocol state is unknown). `tls`: how the store's
        /// connections are secured, for a cancel request.
        fn abandon(self, tls: &crate::tls::CancelTls) {
            let _ = tls;
        }
    }
}
