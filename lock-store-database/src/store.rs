use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool::managed::{Manager, Object, Pool};
#[cfg(feature = "sqlite")]
use diesel::OptionalExtension;
use diesel::sql_types::{BigInt, Binary, Nullable};
use diesel::{QueryResult, QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, PoolError};
use lock_core::{Acquisition, Capabilities, LockError, LockStore, ReleaseFuture, StoreFactory};
use tokio::time::{Instant, timeout_at};

use crate::backend::Backend;
use crate::options::{DatabaseStoreOptions, Source, parse_url, redact_url};
use crate::sql::Statements;

#[cfg(feature = "mysql")]
use crate::options::MysqlPool;
#[cfg(feature = "postgres")]
use crate::options::PgPool;
#[cfg(feature = "sqlite")]
use crate::options::SqlitePool;

#[cfg(not(any(feature = "postgres", feature = "mysql", feature = "sqlite")))]
compile_error!(
    "lock-store-database needs at least one of the features `postgres`, `mysql`, `sqlite`"
);

/// The longest key accepted, in bytes of UTF-8 (the key column is `VARBINARY(1024)` on
/// MySQL; PostgreSQL and SQLite use the same limit so a key works everywhere). Longer
/// keys are [`LockError::InvalidArgument`].
pub const MAX_KEY_BYTES: usize = 1024;

/// The longest owner token accepted, in bytes (`VARBINARY(255)` on MySQL). Owner tokens
/// made by `lock-core` are 32 characters.
pub const MAX_OWNER_BYTES: usize = 255;

/// Pool size for a URL when none is configured.
#[cfg(any(feature = "postgres", feature = "mysql"))]
const DEFAULT_POOL_SIZE: usize = 10;
/// Pool size for a SQLite file: SQLite has one writer at a time anyway.
#[cfg(feature = "sqlite")]
const DEFAULT_SQLITE_POOL_SIZE: usize = 4;
/// Keeps `now + ttl` far inside `BIGINT` (about 3 million years).
const MAX_TTL_MS: i64 = 100_000_000_000_000_000;

/// A lock store in a SQL table: PostgreSQL, MySQL/MariaDB or SQLite.
///
/// Built with [`DatabaseStore::connect`] (or lazily through [`database`]). Cheap to
/// clone: clones share the pool and, on PostgreSQL, the release listener.
///
/// Every operation is one atomic statement judged by the database clock (see the
/// crate docs for the SQL and the round trips per operation). Each call is bounded by
/// the operation timeout.
///
/// **Cancel safety:** dropping an operation's future cannot leave a half-done write
/// (each write is one statement), but a statement already sent may still commit: an
/// acquire cancelled or timed out may have taken the lock, which then stays held until
/// its TTL runs out or it is force-released.
#[derive(Clone)]
pub struct DatabaseStore {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    pools: Pools,
    sql: Statements,
    table: String,
    timeout: Duration,
    /// Redacted, for `Debug` only.
    url: Option<String>,
    #[cfg(feature = "postgres")]
    listener: Option<crate::listener::PgListener>,
}

enum Pools {
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
    #[cfg(feature = "mysql")]
    Mysql(MysqlPool),
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
}

impl fmt::Debug for DatabaseStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseStore")
            .field("backend", &self.inner.backend)
            .field("url", &self.inner.url)
            .field("table", &self.inner.table)
            .field("operation_timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// A [`StoreFactory`] for a [`DatabaseStore`]: the `database` driver of a
/// [`LockManager`](lock_core::LockManager) configuration. The store connects (and
/// creates its table) on first use; a failed connect is retried on the next use.
///
/// ```no_run
/// use lock_store_database::{database, DatabaseStoreOptions};
/// let factory = database(DatabaseStoreOptions::new("sqlite://locks.db"));
/// ```
pub fn database(options: DatabaseStoreOptions) -> StoreFactory {
    StoreFactory::new(move || DatabaseStore::connect(options.clone()))
}

impl DatabaseStore {
    /// Connect (opening a pool for a URL), check the table name, and create the table
    /// if it is missing and [`create_table`](DatabaseStoreOptions::create_table) is on.
    ///
    /// Errors: [`LockError::InvalidArgument`] for a malformed URL or table name;
    /// [`LockError::Storage`] when the database cannot be reached or the table is
    /// missing (the message names it).
    pub async fn connect(options: DatabaseStoreOptions) -> Result<DatabaseStore, LockError> {
        let timeout = options.operation_timeout;
        if timeout.is_zero() {
            return Err(LockError::invalid(
                "operation_timeout must be greater than zero",
            ));
        }
        let (backend, pools, url) = match &options.source {
            Source::Url(url) => {
                let parsed = parse_url(url)?;
                let pools = open_pools(&parsed, &options)?;
                (parsed.backend, pools, Some(redact_url(url)))
            }
            #[cfg(feature = "postgres")]
            Source::Postgres(pool) => (Backend::Postgres, Pools::Postgres(pool.clone()), None),
            #[cfg(feature = "mysql")]
            Source::Mysql(pool) => (Backend::Mysql, Pools::Mysql(pool.clone()), None),
            #[cfg(feature = "sqlite")]
            Source::Sqlite(pool) => (Backend::Sqlite, Pools::Sqlite(pool.clone()), None),
        };
        let sql = Statements::new(backend, &options.table_name)?;
        #[cfg(feature = "postgres")]
        let listener = match &pools {
            Pools::Postgres(pool) => Some(crate::listener::PgListener::new(
                pool.clone(),
                notify_channel(&options.table_name),
                timeout,
            )),
            #[allow(unreachable_patterns)]
            _ => None,
        };
        let store = DatabaseStore {
            inner: Arc::new(Inner {
                backend,
                pools,
                sql,
                table: options.table_name.clone(),
                timeout,
                url,
                #[cfg(feature = "postgres")]
                listener,
            }),
        };
        store.prepare_table(options.create_table).await?;
        Ok(store)
    }

    /// The database this store talks to.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The table holding the locks.
    pub fn table_name(&self) -> &str {
        &self.inner.table
    }

    /// The `CREATE TABLE` statement of this store's table (as [`crate::ddl`]).
    pub fn ddl(&self) -> &str {
        &self.inner.sql.ddl
    }

    async fn prepare_table(&self, create: bool) -> Result<(), LockError> {
        if create {
            // `IF NOT EXISTS` can still fail when processes race to create the table
            // (PostgreSQL's catalog uniqueness check): then the table exists, and the
            // probe below says so.
            let created = self.execute(&self.inner.sql.ddl).await;
            match created {
                Ok(_) => return Ok(()),
                Err(create_error) => {
                    return match self.probe().await {
                        Ok(()) => Ok(()),
                        Err(_) => Err(create_error),
                    };
                }
            }
        }
        self.probe().await.map_err(|e| match e {
            LockError::Storage(source) => LockError::storage(TableError {
                table: self.inner.table.clone(),
                source,
            }),
            other => other,
        })
    }

    async fn probe(&self) -> Result<(), LockError> {
        self.count(&self.inner.sql.probe, Vec::new())
            .await
            .map(|_| ())
    }

    /// Run a statement without parameters (the DDL).
    async fn execute(&self, statement: &str) -> Result<usize, LockError> {
        let sql = statement.to_owned();
        let t = self.inner.timeout;
        match &self.inner.pools {
            #[cfg(feature = "postgres")]
            Pools::Postgres(pool) => {
                run(pool, t, move |c| Box::pin(sql_query(sql).execute(c))).await
            }
            #[cfg(feature = "mysql")]
            Pools::Mysql(pool) => run(pool, t, move |c| Box::pin(sql_query(sql).execute(c))).await,
            #[cfg(feature = "sqlite")]
            Pools::Sqlite(pool) => run(pool, t, move |c| Box::pin(sql_query(sql).execute(c))).await,
        }
    }

    /// Run a `SELECT COUNT(*) AS n` statement whose parameters are all byte strings.
    async fn count(&self, statement: &str, binds: Vec<Vec<u8>>) -> Result<i64, LockError> {
        let sql = statement.to_owned();
        let t = self.inner.timeout;
        macro_rules! count_on {
            ($pool:expr, $db:ty) => {{
                let mut query = sql_query(sql).into_boxed::<$db>();
                for bind in binds {
                    query = query.bind::<Binary, _>(bind);
                }
                run($pool, t, move |c| {
                    Box::pin(async move { query.get_result::<CountRow>(c).await.map(|r| r.n) })
                })
                .await
            }};
        }
        match &self.inner.pools {
            #[cfg(feature = "postgres")]
            Pools::Postgres(pool) => count_on!(pool, diesel::pg::Pg),
            #[cfg(feature = "mysql")]
            Pools::Mysql(pool) => count_on!(pool, diesel::mysql::Mysql),
            #[cfg(feature = "sqlite")]
            Pools::Sqlite(pool) => count_on!(pool, diesel::sqlite::Sqlite),
        }
    }

    #[cfg(feature = "postgres")]
    fn channel(&self) -> String {
        self.inner
            .listener
            .as_ref()
            .map(|l| l.channel().to_owned())
            .unwrap_or_default()
    }

    /// Wake this process's waiters at once after one of its own releases (other
    /// processes hear of it through `NOTIFY`).
    fn released_locally(&self, key: &str) {
        #[cfg(feature = "postgres")]
        if let Some(listener) = &self.inner.listener {
            listener.hub().notify(key);
        }
        #[cfg(not(feature = "postgres"))]
        let _ = key;
    }
}

#[async_trait]
impl LockStore for DatabaseStore {
    async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError> {
        Ok(self.try_acquire(key, owner, ttl).await?.acquired)
    }

    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        let (k, o) = (check_key(key)?, check_owner(owner)?);
        let sql = self.inner.sql.release.clone();
        let t = self.inner.timeout;
        let released = match &self.inner.pools {
            #[cfg(feature = "postgres")]
            Pools::Postgres(pool) => {
                let q = sql_query(sql)
                    .bind::<Binary, _>(k)
                    .bind::<Binary, _>(o)
                    .bind::<diesel::sql_types::Text, _>(self.channel());
                run(pool, t, move |c| {
                    Box::pin(async move { q.get_result::<CountRow>(c).await.map(|r| r.n as usize) })
                })
                .await?
            }
            #[cfg(feature = "mysql")]
            Pools::Mysql(pool) => {
                let q = sql_query(sql).bind::<Binary, _>(k).bind::<Binary, _>(o);
                run(pool, t, move |c| Box::pin(q.execute(c))).await?
            }
            #[cfg(feature = "sqlite")]
            Pools::Sqlite(pool) => {
                let q = sql_query(sql).bind::<Binary, _>(k).bind::<Binary, _>(o);
                run(pool, t, move |c| Box::pin(q.execute(c))).await?
            }
        };
        if released == 0 {
            return Err(LockError::NotOwned);
        }
        self.released_locally(key);
        Ok(())
    }

    async fn force_delete(&self, key: &str) -> Result<(), LockError> {
        let k = check_key(key)?;
        let sql = self.inner.sql.force_release.clone();
        let t = self.inner.timeout;
        let released = match &self.inner.pools {
            #[cfg(feature = "postgres")]
            Pools::Postgres(pool) => {
                let q = sql_query(sql)
                    .bind::<Binary, _>(k)
                    .bind::<diesel::sql_types::Text, _>(self.channel());
                run(pool, t, move |c| {
                    Box::pin(async move { q.get_result::<CountRow>(c).await.map(|r| r.n as usize) })
                })
                .await?
            }
            #[cfg(feature = "mysql")]
            Pools::Mysql(pool) => {
                let q = sql_query(sql).bind::<Binary, _>(k);
                run(pool, t, move |c| Box::pin(q.execute(c))).await?
            }
            #[cfg(feature = "sqlite")]
            Pools::Sqlite(pool) => {
                let q = sql_query(sql).bind::<Binary, _>(k);
                run(pool, t, move |c| Box::pin(q.execute(c))).await?
            }
        };
        if released > 0 {
            self.released_locally(key);
        }
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, LockError> {
        let k = check_key(key)?;
        Ok(self.count(&self.inner.sql.exists, vec![k]).await? > 0)
    }

    async fn extend(&self, key: &str, owner: &str, duration: Duration) -> Result<(), LockError> {
        let (k, o) = (check_key(key)?, check_owner(owner)?);
        let ms = ttl_ms(duration);
        let sql = self.inner.sql.extend.clone();
        let t = self.inner.timeout;
        let extended = match &self.inner.pools {
            #[cfg(feature = "postgres")]
            Pools::Postgres(pool) => {
                let q = sql_query(sql)
                    .bind::<Binary, _>(k)
                    .bind::<Binary, _>(o)
                    .bind::<BigInt, _>(ms);
                run(pool, t, move |c| Box::pin(q.execute(c))).await?
            }
            #[cfg(feature = "mysql")]
            Pools::Mysql(pool) => {
                let q = sql_query(sql)
                    .bind::<BigInt, _>(ms)
                    .bind::<Binary, _>(k)
                    .bind::<Binary, _>(o);
                run(pool, t, move |c| Box::pin(q.execute(c))).await?
            }
            #[cfg(feature = "sqlite")]
            Pools::Sqlite(pool) => {
                let q = sql_query(sql)
                    .bind::<Binary, _>(k)
                    .bind::<Binary, _>(o)
                    .bind::<BigInt, _>(ms);
                run(pool, t, move |c| Box::pin(q.execute(c))).await?
            }
        };
        if extended == 0 {
            Err(LockError::NotOwned)
        } else {
            Ok(())
        }
    }

    fn name(&self) -> &str {
        self.inner.backend.name()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_fencing_tokens(true)
            .with_holder_ttl(true)
            .with_release_notification(self.inner.backend == Backend::Postgres)
    }

    async fn try_acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Option<Duration>,
    ) -> Result<Acquisition, LockError> {
        let (k, o) = (check_key(key)?, check_owner(owner)?);
        let ms = ttl.map(ttl_ms);
        let sql = self.inner.sql.acquire.clone();
        let t = self.inner.timeout;
        let row: AcquireRow = match &self.inner.pools {
            #[cfg(feature = "postgres")]
            Pools::Postgres(pool) => {
                let q = sql_query(sql)
                    .bind::<Binary, _>(k)
                    .bind::<Binary, _>(o)
                    .bind::<Nullable<BigInt>, _>(ms);
                run(pool, t, move |c| Box::pin(q.get_result::<AcquireRow>(c))).await?
            }
            #[cfg(feature = "mysql")]
            Pools::Mysql(pool) => {
                let insert = sql_query(sql)
                    .bind::<Binary, _>(k.clone())
                    .bind::<Binary, _>(o.clone())
                    .bind::<Nullable<BigInt>, _>(ms)
                    .bind::<Binary, _>(o)
                    .bind::<Nullable<BigInt>, _>(ms);
                let result =
                    sql_query(self.inner.sql.acquire_followup.clone()).bind::<Binary, _>(k);
                run(pool, t, move |c| {
                    Box::pin(async move {
                        insert.execute(&mut *c).await?;
                        let mut row = result.get_result::<AcquireRow>(c).await?;
                        // LAST_INSERT_ID() is 0 when denied.
                        row.fence = row.fence.filter(|&fence| fence > 0);
                        Ok(row)
                    })
                })
                .await?
            }
            #[cfg(feature = "sqlite")]
            Pools::Sqlite(pool) => {
                let insert = sql_query(sql)
                    .bind::<Binary, _>(k.clone())
                    .bind::<Binary, _>(o)
                    .bind::<Nullable<BigInt>, _>(ms);
                let holder =
                    sql_query(self.inner.sql.acquire_followup.clone()).bind::<Binary, _>(k);
                run(pool, t, move |c| {
                    Box::pin(async move {
                        let fences = insert.load::<FenceRow>(&mut *c).await?;
                        if let Some(row) = <[FenceRow]>::first(&fences) {
                            return Ok(AcquireRow {
                                fence: Some(row.fence),
                                holder_ms: None,
                            });
                        }
                        let holder = holder.get_result::<HolderRow>(c).await.optional()?;
                        Ok(AcquireRow {
                            fence: None,
                            holder_ms: holder.and_then(|h| h.holder_ms),
                        })
                    })
                })
                .await?
            }
        };
        Ok(match row.fence {
            Some(fence) => {
                Acquisition::acquired_with_token(u64::try_from(fence).map_err(|_| {
                    LockError::storage_msg(format!("fence column holds a negative value ({fence})"))
                })?)
            }
            None => Acquisition::denied(
                row.holder_ms
                    .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
            ),
        })
    }

    fn release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        #[cfg(feature = "postgres")]
        if let Some(listener) = &self.inner.listener {
            return Some(listener.listen(key));
        }
        let _ = key;
        None
    }
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct AcquireRow {
    #[diesel(sql_type = Nullable<BigInt>)]
    fence: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    holder_ms: Option<i64>,
}

#[cfg(feature = "sqlite")]
#[derive(QueryableByName)]
struct FenceRow {
    #[diesel(sql_type = BigInt)]
    fence: i64,
}

#[cfg(feature = "sqlite")]
#[derive(QueryableByName)]
struct HolderRow {
    #[diesel(sql_type = Nullable<BigInt>)]
    holder_ms: Option<i64>,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What becomes of a connection whose statement outlived the operation timeout.
trait Abandon: Sized {
    /// Return it to the pool (its statement finishes on its own).
    const REUSE_AFTER_TIMEOUT: bool;
    /// Otherwise: close it (its protocol state is unknown).
    fn abandon(self) {}
}

#[cfg(feature = "postgres")]
impl Abandon for diesel_async::AsyncPgConnection {
    const REUSE_AFTER_TIMEOUT: bool = false;
    /// Ask the server to cancel the statement (so that, say, an acquire stuck behind
    /// a row lock does not commit later), then close the connection.
    fn abandon(self) {
        let token = self.cancel_token();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = token.cancel_query(tokio_postgres::NoTls).await;
                drop(self);
            });
        }
    }
}

#[cfg(feature = "mysql")]
impl Abandon for diesel_async::AsyncMysqlConnection {
    const REUSE_AFTER_TIMEOUT: bool = false;
}

#[cfg(feature = "sqlite")]
impl Abandon for crate::options::AsyncSqliteConnection {
    /// The blocking call runs to completion (bounded by `busy_timeout`) and the
    /// connection stays consistent; for `sqlite::memory:` it *is* the database.
    const REUSE_AFTER_TIMEOUT: bool = true;
}

/// A checked-out connection that goes back to the pool only once its statement has
/// completed. Dropped earlier — a timeout, or the caller dropping the operation's
/// future — it is abandoned instead, since its protocol state is unknown (MySQL would
/// answer the next statement with "packet out of order").
struct Checkout<C>(Option<Object<AsyncDieselConnectionManager<C>>>)
where
    C: Abandon + Send + 'static,
    AsyncDieselConnectionManager<C>: Manager<Type = C, Error = PoolError>;

impl<C> Checkout<C>
where
    C: Abandon + Send + 'static,
    AsyncDieselConnectionManager<C>: Manager<Type = C, Error = PoolError>,
{
    /// The statement completed: back to the pool.
    fn completed(mut self) {
        drop(self.0.take());
    }
}

impl<C> Drop for Checkout<C>
where
    C: Abandon + Send + 'static,
    AsyncDieselConnectionManager<C>: Manager<Type = C, Error = PoolError>,
{
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            if !C::REUSE_AFTER_TIMEOUT {
                Object::take(conn).abandon();
            }
        }
    }
}

/// Check out a connection and run `op` on it, all within `timeout`.
async fn run<C, T>(
    pool: &Pool<AsyncDieselConnectionManager<C>>,
    timeout: Duration,
    op: impl for<'c> FnOnce(&'c mut C) -> BoxFuture<'c, QueryResult<T>>,
) -> Result<T, LockError>
where
    C: Abandon + Send + 'static,
    AsyncDieselConnectionManager<C>: Manager<Type = C, Error = PoolError>,
{
    let deadline = Instant::now() + timeout;
    let mut checkout = match timeout_at(deadline, pool.get()).await {
        Ok(Ok(conn)) => Checkout(Some(conn)),
        Ok(Err(e)) => return Err(LockError::storage(e)),
        Err(_) => {
            return Err(LockError::storage(TimedOut(
                timeout,
                "waiting for a connection",
            )));
        }
    };
    let Some(conn) = checkout.0.as_mut() else {
        return Err(LockError::storage_msg(
            "connection checkout lost its connection",
        ));
    };
    match timeout_at(deadline, op(conn)).await {
        Ok(result) => {
            checkout.completed();
            result.map_err(LockError::storage)
        }
        // Dropping the checkout abandons the connection.
        Err(_) => Err(LockError::storage(TimedOut(timeout, "running a statement"))),
    }
}

/// Open the store's own pool for a URL.
fn open_pools(
    parsed: &crate::options::ParsedUrl,
    options: &DatabaseStoreOptions,
) -> Result<Pools, LockError> {
    let timeout = options.operation_timeout;
    match parsed.backend {
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let mut config = diesel_async::pooled_connection::ManagerConfig::default();
            // `Verified` would add a `SELECT 1` round trip to every checkout.
            config.recycling_method = diesel_async::pooled_connection::RecyclingMethod::Fast;
            let manager =
                AsyncDieselConnectionManager::<diesel_async::AsyncPgConnection>::new_with_config(
                    parsed.target.clone(),
                    config,
                );
            let size = options.max_connections.unwrap_or(DEFAULT_POOL_SIZE);
            Ok(Pools::Postgres(build_pool(manager, size, timeout)?))
        }
        #[cfg(feature = "mysql")]
        Backend::Mysql => {
            let mut config = diesel_async::pooled_connection::ManagerConfig::default();
            config.recycling_method = diesel_async::pooled_connection::RecyclingMethod::Fast;
            let manager =
                AsyncDieselConnectionManager::<diesel_async::AsyncMysqlConnection>::new_with_config(
                    parsed.target.clone(),
                    config,
                );
            let size = options.max_connections.unwrap_or(DEFAULT_POOL_SIZE);
            Ok(Pools::Mysql(build_pool(manager, size, timeout)?))
        }
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => {
            let manager = crate::sqlite::manager(&parsed.target, timeout);
            // Each `:memory:` connection is a database of its own: one connection only.
            let size = if parsed.memory {
                1
            } else {
                options.max_connections.unwrap_or(DEFAULT_SQLITE_POOL_SIZE)
            };
            Ok(Pools::Sqlite(build_pool(manager, size, timeout)?))
        }
        #[allow(unreachable_patterns)]
        other => Err(LockError::invalid(format!(
            "lock-store-database was compiled without the `{}` feature",
            other.name()
        ))),
    }
}

fn build_pool<C>(
    manager: AsyncDieselConnectionManager<C>,
    size: usize,
    timeout: Duration,
) -> Result<Pool<AsyncDieselConnectionManager<C>>, LockError>
where
    AsyncDieselConnectionManager<C>: Manager<Type = C, Error = PoolError>,
{
    if size == 0 {
        return Err(LockError::invalid("max_connections must be at least 1"));
    }
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(LockError::storage)
}

/// The `NOTIFY` channel of a table: an identifier (the table name is one), at most 63 bytes.
#[cfg(feature = "postgres")]
fn notify_channel(table: &str) -> String {
    let mut channel = format!("{table}_lock_released");
    channel.truncate(crate::options::MAX_TABLE_NAME_LEN);
    channel
}

fn check_key(key: &str) -> Result<Vec<u8>, LockError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(LockError::invalid(format!(
            "lock key is {} bytes long; the database store accepts at most {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(key.as_bytes().to_vec())
}

fn check_owner(owner: &str) -> Result<Vec<u8>, LockError> {
    if owner.len() > MAX_OWNER_BYTES {
        return Err(LockError::invalid(format!(
            "lock owner is {} bytes long; the database store accepts at most {MAX_OWNER_BYTES}",
            owner.len()
        )));
    }
    Ok(owner.as_bytes().to_vec())
}

/// Whole milliseconds, rounded up so a sub-millisecond TTL does not expire at once.
fn ttl_ms(ttl: Duration) -> i64 {
    let ms = ttl.as_nanos().div_ceil(1_000_000);
    i64::try_from(ms).unwrap_or(MAX_TTL_MS).min(MAX_TTL_MS)
}

/// An operation ran out of time.
#[derive(Debug)]
struct TimedOut(Duration, &'static str);

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "database operation timed out after {:?} ({})",
            self.0, self.1
        )
    }
}

impl std::error::Error for TimedOut {}

/// The lock table is missing or has the wrong columns.
#[derive(Debug)]
struct TableError {
    table: String,
    source: lock_core::BoxError,
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lock table `{}` is missing or lacks the columns lock_key, owner, expires_at, fence \
             (create_table is off: create it with lock_store_database::ddl): {}",
            self.table, self.source
        )
    }
}

impl std::error::Error for TableError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_and_saturates() {
        assert_eq!(ttl_ms(Duration::from_micros(1)), 1);
        assert_eq!(ttl_ms(Duration::from_millis(1500)), 1500);
        assert_eq!(ttl_ms(Duration::from_nanos(1_000_001)), 2);
        assert_eq!(ttl_ms(Duration::MAX), MAX_TTL_MS);
    }

    #[test]
    fn key_and_owner_limits() {
        assert!(check_key(&"k".repeat(MAX_KEY_BYTES)).is_ok());
        let err = check_key(&"k".repeat(MAX_KEY_BYTES + 1)).unwrap_err();
        assert_eq!(err.code(), "E_INVALID_ARGUMENTS");
        // The limit counts bytes, not characters.
        assert!(check_key(&"é".repeat(MAX_KEY_BYTES / 2 + 1)).is_err());
        assert!(check_owner(&"o".repeat(MAX_OWNER_BYTES + 1)).is_err());
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn notify_channel_fits_an_identifier() {
        assert_eq!(notify_channel("locks"), "locks_lock_released");
        assert_eq!(notify_channel(&"a".repeat(63)).len(), 63);
    }
}
