//! The one path every dialect runs through: check out a pooled connection and run the
//! dialect's statement on it, both before one deadline; a connection whose statement
//! did not complete is abandoned, never reused.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool::managed::{Manager, Object};
use diesel::QueryResult;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, PoolError};
use lock_core::{LockError, ReleaseFuture};
use tokio::time::{Instant, timeout_at};

use crate::backend::Backend;
use crate::error::TimedOut;
use crate::options::{DatabaseStoreOptions, Source};
use crate::permits::{PermitOps, PermitSql};
use crate::sql::render::Values;
use crate::sql::{
    Abandon, Acquire, AcquireRow, Bound, BoxFuture, Dialect, LockStatements, PoolOf, Run,
};
use crate::statements::Statements;
use crate::tls::CancelTls;
use crate::url::{backend_disabled, parse_url, sqlite_target};

/// The store's operations, whatever the backend (a dialect behind its pool). The lock
/// operations end within the operation timeout; building the store shares one deadline.
#[async_trait]
pub(crate) trait Operations: Send + Sync {
    fn backend(&self) -> Backend;
    fn statements(&self) -> &Statements;
    async fn create_table(&self, deadline: Instant) -> Result<(), LockError>;
    async fn probe(&self, deadline: Instant) -> Result<(), LockError>;
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Option<i64>,
    ) -> Result<AcquireRow, LockError>;
    async fn release(&self, key: &str, owner: &str) -> Result<usize, LockError>;
    async fn force_release(&self, key: &str) -> Result<usize, LockError>;
    async fn extend(&self, key: &str, owner: &str, ms: i64) -> Result<usize, LockError>;
    async fn exists(&self, key: &str) -> Result<i64, LockError>;
    fn release_listener(&self, key: &str) -> Option<ReleaseFuture>;
    fn released_locally(&self, key: &str);
    /// Semaphores and reader-writer locks, on the same pool (`crate::permits`).
    fn permits(&self) -> &dyn PermitOps;
}

/// A dialect and the pool it runs on.
pub(crate) struct Engine<D: Dialect>
where
    AsyncDieselConnectionManager<D::Conn>: Manager<Type = D::Conn, Error = PoolError>,
{
    dialect: D,
    /// The dialect's statements, rendered for the store's table.
    sql: Statements,
    /// The same, each with the order of its parameters.
    locks: LockStatements,
    pool: PoolOf<D::Conn>,
    /// The operation timeout.
    timeout: Duration,
    /// The permits table's statements and listener.
    pub(crate) permits: PermitSql,
    /// How abandoned statements are cancelled (PostgreSQL: over the connections' TLS).
    cancel: CancelTls,
}

impl<D: Dialect> Engine<D>
where
    AsyncDieselConnectionManager<D::Conn>: Manager<Type = D::Conn, Error = PoolError>,
{
    /// The engine on the store's own pool for a parsed URL.
    pub(crate) fn open(
        target: &str,
        memory: bool,
        options: &DatabaseStoreOptions,
    ) -> Result<Arc<dyn Operations>, LockError> {
        let pool = D::open_pool(target, memory, options)?;
        Self::on_pool(pool, options)
    }

    /// The engine on a pool (the application's, or the store's own).
    pub(crate) fn on_pool(
        pool: PoolOf<D::Conn>,
        options: &DatabaseStoreOptions,
    ) -> Result<Arc<dyn Operations>, LockError> {
        let sql = Statements::of::<D::Locks>(&options.table_name)?;
        let locks = LockStatements::of::<D::Locks>(&sql);
        let dialect = D::new(&pool, options);
        let timeout = options.operation_timeout;
        let permits = PermitSql::new::<D>(&pool, options);
        let cancel = CancelTls::new(D::BACKEND, options)?;
        Ok(Arc::new(Engine {
            dialect,
            sql,
            locks,
            pool,
            timeout,
            permits,
            cancel,
        }))
    }

    /// Check out a connection and run the dialect's `op` on it, all before `deadline`.
    pub(crate) async fn run<T>(
        &self,
        deadline: Instant,
        op: impl for<'c> FnOnce(&D, &'c mut D::Conn) -> BoxFuture<'c, QueryResult<T>>,
    ) -> Result<T, LockError> {
        let mut checkout = match timeout_at(deadline, self.pool.get()).await {
            Ok(Ok(conn)) => Checkout(Some(conn), &self.cancel),
            // The pool's own timeouts are the operation timeout too.
            Ok(Err(deadpool::managed::PoolError::Timeout(_))) | Err(_) => {
                return Err(LockError::storage(TimedOut(
                    self.timeout,
                    "waiting for a connection",
                )));
            }
            // The backend's own error, without deadpool's "while creating a new object".
            Ok(Err(deadpool::managed::PoolError::Backend(e))) => {
                return Err(LockError::storage(e));
            }
            Ok(Err(e)) => return Err(LockError::storage(e)),
        };
        let Some(conn) = checkout.0.as_mut() else {
            return Err(LockError::storage_msg(
                "connection checkout lost its connection",
            ));
        };
        match timeout_at(deadline, op(&self.dialect, conn)).await {
            Ok(result) => {
                checkout.completed();
                result.map_err(LockError::storage)
            }
            // Dropping the checkout abandons the connection.
            Err(_) => Err(LockError::storage(TimedOut(
                self.timeout,
                "running a statement",
            ))),
        }
    }

    /// The rendered statements.
    fn sql(&self) -> &Statements {
        &self.sql
    }

    /// The deadline of a lock operation starting now.
    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// Run `q` → affected rows.
    async fn execute(&self, deadline: Instant, q: Bound) -> Result<usize, LockError> {
        self.run(deadline, |_, c| c.execute_with(q)).await
    }

    /// Run `q` → the `n` of its one row.
    async fn count(&self, deadline: Instant, q: Bound) -> Result<i64, LockError> {
        self.run(deadline, |_, c| c.count(q)).await
    }

    /// The values of a lock operation on `key` by `owner` (and the `NOTIFY` channel).
    fn values(&self, key: &str, owner: &str) -> Values {
        Values {
            key: key.as_bytes().to_vec(),
            owner: owner.to_owned(),
            channel: self.dialect.notify_channel().unwrap_or_default().to_owned(),
            ..Values::default()
        }
    }

    /// Run a release statement → rows released.
    async fn released(&self, q: Bound) -> Result<usize, LockError> {
        self.execute(self.deadline(), q).await
    }
}

#[async_trait]
impl<D: Dialect> Operations for Engine<D>
where
    AsyncDieselConnectionManager<D::Conn>: Manager<Type = D::Conn, Error = PoolError>,
{
    fn backend(&self) -> Backend {
        D::BACKEND
    }

    fn statements(&self) -> &Statements {
        self.sql()
    }

    async fn create_table(&self, deadline: Instant) -> Result<(), LockError> {
        let q = Bound::new(&self.sql().ddl, Vec::new());
        self.execute(deadline, q).await.map(drop)
    }

    async fn probe(&self, deadline: Instant) -> Result<(), LockError> {
        let q = Bound::new(&self.sql().probe, Vec::new());
        self.count(deadline, q).await.map(drop)
    }

    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Option<i64>,
    ) -> Result<AcquireRow, LockError> {
        let mut values = self.values(key, owner);
        values.ttl = ttl;
        let a = Acquire {
            decide: self.locks.acquire.bound(&values),
            followup: (self.locks.acquire_followup.as_ref()).map(|read| read.bound(&values)),
        };
        self.run(self.deadline(), |d, c| d.acquire(c, a)).await
    }

    async fn release(&self, key: &str, owner: &str) -> Result<usize, LockError> {
        let q = self.locks.release.bound(&self.values(key, owner));
        self.released(q).await
    }

    async fn force_release(&self, key: &str) -> Result<usize, LockError> {
        let q = self.locks.force_release.bound(&self.values(key, ""));
        self.released(q).await
    }

    async fn extend(&self, key: &str, owner: &str, ms: i64) -> Result<usize, LockError> {
        let mut values = self.values(key, owner);
        values.ms = ms;
        let q = self.locks.extend.bound(&values);
        self.execute(self.deadline(), q).await
    }

    async fn exists(&self, key: &str) -> Result<i64, LockError> {
        let q = self.locks.exists.bound(&self.values(key, ""));
        self.count(self.deadline(), q).await
    }

    fn release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        self.dialect.release_listener(key)
    }

    fn released_locally(&self, key: &str) {
        self.dialect.released_locally(key);
    }

    fn permits(&self) -> &dyn PermitOps {
        self
    }
}

/// A checked-out connection that goes back to the pool only once its statement has
/// completed. Dropped earlier — a timeout, or the caller dropping the operation's
/// future — it is abandoned instead, since its protocol state is unknown (MySQL would
/// answer the next statement with "packet out of order").
struct Checkout<'a, C>(
    Option<Object<AsyncDieselConnectionManager<C>>>,
    &'a CancelTls,
)
where
    C: Abandon + Send + 'static,
    AsyncDieselConnectionManager<C>: Manager<Type = C, Error = PoolError>;

impl<C> Checkout<'_, C>
where
    C: Abandon + Send + 'static,
    AsyncDieselConnectionManager<C>: Manager<Type = C, Error = PoolError>,
{
    /// The statement completed: back to the pool.
    fn completed(mut self) {
        drop(self.0.take());
    }
}

impl<C> Drop for Checkout<'_, C>
where
    C: Abandon + Send + 'static,
    AsyncDieselConnectionManager<C>: Manager<Type = C, Error = PoolError>,
{
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            if !C::REUSE_AFTER_TIMEOUT {
                Object::take(conn).abandon(self.1);
            }
        }
    }
}

/// A pool passed in by the application, of any dialect.
pub(crate) trait GivenPool: Send + Sync {
    fn backend(&self) -> Backend;
    fn open(&self, options: &DatabaseStoreOptions) -> Result<Arc<dyn Operations>, LockError>;
}

/// The application's pool of dialect `D`.
pub(crate) struct Given<D: Dialect>(pub(crate) PoolOf<D::Conn>)
where
    AsyncDieselConnectionManager<D::Conn>: Manager<Type = D::Conn, Error = PoolError>;

impl<D: Dialect> GivenPool for Given<D>
where
    AsyncDieselConnectionManager<D::Conn>: Manager<Type = D::Conn, Error = PoolError>,
{
    fn backend(&self) -> Backend {
        D::BACKEND
    }

    fn open(&self, options: &DatabaseStoreOptions) -> Result<Arc<dyn Operations>, LockError> {
        Engine::<D>::on_pool(self.0.clone(), options)
    }
}

/// The engine the options name: a pool opened for a URL or a SQLite path, or the
/// application's pool. Opens no connection (pools connect lazily).
pub(crate) fn open(options: &DatabaseStoreOptions) -> Result<Arc<dyn Operations>, LockError> {
    let (backend, target, memory) = match &options.source {
        Source::Pool(pool) => return pool.open(options),
        source => target_of(source)?,
    };
    match backend {
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            Engine::<crate::sql::postgres::Postgres>::open(&target, memory, options)
        }
        #[cfg(feature = "mysql")]
        Backend::Mysql => Engine::<crate::sql::mysql::Mysql>::open(&target, memory, options),
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => Engine::<crate::sql::sqlite::Sqlite>::open(&target, memory, options),
        #[allow(unreachable_patterns)]
        other => Err(backend_disabled(other)),
    }
}

/// The backend, the driver's target and whether it is `sqlite::memory:`, for a URL or a
/// SQLite path.
fn target_of(source: &Source) -> Result<(Backend, String, bool), LockError> {
    match source {
        Source::Url(url) => {
            let parsed = parse_url(url)?;
            Ok((parsed.backend, parsed.target, parsed.memory))
        }
        Source::SqlitePath(path) => Ok((Backend::Sqlite, sqlite_target(path)?, false)),
        Source::Pool(_) => Err(LockError::invalid(
            "these options reuse a pool: they name no URL to open one for",
        )),
    }
}

/// The pool the store of dialect `D` opens for `options`' URL or path.
pub(crate) fn own_pool<D: Dialect>(
    options: &DatabaseStoreOptions,
) -> Result<PoolOf<D::Conn>, LockError>
where
    AsyncDieselConnectionManager<D::Conn>: Manager<Type = D::Conn, Error = PoolError>,
{
    let (backend, target, memory) = target_of(&options.source)?;
    if backend != D::BACKEND {
        return Err(LockError::invalid(format!(
            "the options name a {} database, not {}",
            backend.name(),
            D::BACKEND.name()
        )));
    }
    D::open_pool(&target, memory, options)
}

#[cfg(all(test, feature = "postgres", feature = "sqlite"))]
mod tests {
    use crate::DatabaseStoreOptions;

    #[tokio::test]
    async fn own_pools_follow_the_url_and_refuse_another_backend() {
        let sqlite = DatabaseStoreOptions::new("sqlite::memory:");
        let pool = sqlite.open_sqlite_pool().unwrap();
        assert_eq!(
            pool.status().max_size,
            1,
            "sqlite::memory: is one connection"
        );
        let other = sqlite.open_postgres_pool().err().map(|e| e.code());
        assert_eq!(
            other,
            Some("E_INVALID_ARGUMENTS"),
            "a pool of another backend"
        );
        let reused = DatabaseStoreOptions::from_sqlite_pool(pool);
        let given = reused.open_sqlite_pool().err().map(|e| e.code());
        assert_eq!(
            given,
            Some("E_INVALID_ARGUMENTS"),
            "options that name no URL"
        );
        let path = DatabaseStoreOptions::sqlite_path("/tmp/x.db").max_connections(3);
        assert_eq!(path.open_sqlite_pool().unwrap().status().max_size, 3);
    }
}
