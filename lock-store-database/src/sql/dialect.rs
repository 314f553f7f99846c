//! One backend's dialect: its connection, how its pool opens connections, its
//! statement sets (lock and permit), its acquire; and what becomes of a connection
//! whose statement outlived its deadline.

use std::time::Duration;

use deadpool::managed::{Manager, Pool};
use diesel::{ConnectionResult, QueryResult};
use diesel_async::AsyncConnection;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError, RecyclingMethod,
};
use lock_core::{LockError, ReleaseFuture};

use super::SqlText;
use super::run::{AcquireRow, Bound, BoxFuture, ReadRow, Run};
use crate::backend::Backend;
use crate::options::DatabaseStoreOptions;
use crate::permits::{Listener, PermitText, UsageRow};

/// The deadpool pool of a connection type.
pub(crate) type PoolOf<C> = Pool<AsyncDieselConnectionManager<C>>;

/// Pool size for a server database when none is configured.
pub(crate) const DEFAULT_POOL_SIZE: usize = 10;

/// An acquire, of a lock or of permits, bound: the statement that decides and, where
/// the dialect needs one ([`crate::Statements::acquire_followup`]), the read that
/// follows it on the same connection.
pub(crate) struct Acquire {
    pub(crate) decide: Bound,
    /// Read by the MySQL and SQLite dialects only.
    #[cfg_attr(not(any(feature = "mysql", feature = "sqlite")), allow(dead_code))]
    pub(crate) followup: Option<Bound>,
}

impl Acquire {
    /// The follow-up read, which this dialect's statements always have.
    #[cfg_attr(not(any(feature = "mysql", feature = "sqlite")), allow(dead_code))]
    pub(crate) fn followup(&mut self) -> QueryResult<Bound> {
        self.followup.take().ok_or_else(|| {
            diesel::result::Error::QueryBuilderError("the acquire has no follow-up read".into())
        })
    }
}

/// What a dialect's acquire returns.
pub(crate) type Acquired<'c> = BoxFuture<'c, QueryResult<AcquireRow>>;

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

/// One backend: its connection type, its statement sets (lock and permit, each with
/// the order of its parameters), its acquire. The statements every backend runs alike
/// are run by [`crate::engine`]; the acquire (of locks and of permits alike) by the
/// dialect.
pub(crate) trait Dialect: Send + Sync + Sized + 'static {
    /// The pooled connection (which also runs the permit statements).
    type Conn: Abandon + Run + ReadRow<UsageRow>;

    /// Its lock statements (and the clock and quote its permit statements share).
    type Locks: SqlText;

    /// Its permit statements.
    type Permits: PermitText<Locks = Self::Locks>;

    /// How the store's own pool opens its connections.
    type Connect: Connect<Conn = Self::Conn>;

    /// The backend this dialect speaks.
    const BACKEND: Backend;

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

    /// The `NOTIFY` channel its lock releases bind ([`LockBinds`](super::LockBinds)),
    /// if this backend notifies.
    fn notify_channel(&self) -> Option<&str> {
        None
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

/// A pool whose every wait (checkout, connect, recycle) is bounded by `timeout`.
fn build_pool<C>(
    target: &str,
    config: ManagerConfig<C>,
    size: usize,
    timeout: Duration,
) -> Result<PoolOf<C>, LockError>
where
    C: AsyncConnection + 'static,
    AsyncDieselConnectionManager<C>: Manager<Type = C, Error = PoolError>,
{
    if size == 0 {
        return Err(LockError::invalid("max_connections must be at least 1"));
    }
    let manager = AsyncDieselConnectionManager::<C>::new_with_config(target, config);
    PoolOf::<C>::builder(manager)
        .max_size(size)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(LockError::storage)
}

#[cfg(test)]
mod tests {
    use super::Dialect;
    use crate::permits::PermitStatements;
    use crate::sql::TextsOf;
    use crate::statements::Statements;

    /// A store runs the statements its dialect names; the free functions render those
    /// of the backend they are given: the same text.
    fn names_its_backends_statements<D: Dialect>() {
        let texts = TextsOf::backend(D::BACKEND);
        let locks = Statements::of::<D::Locks>("locks").unwrap();
        assert_eq!(
            format!("{locks:?}"),
            format!("{:?}", (texts.locks)("locks"))
        );
        let permits = PermitStatements::of::<D::Permits>("locks_permits");
        let named = (texts.permits)("locks_permits");
        assert_eq!(format!("{permits:?}"), format!("{named:?}"));
    }

    #[test]
    fn each_dialect_names_its_backends_statements() {
        #[cfg(feature = "postgres")]
        names_its_backends_statements::<crate::sql::postgres::Postgres>();
        #[cfg(feature = "mysql")]
        names_its_backends_statements::<crate::sql::mysql::Mysql>();
        #[cfg(feature = "sqlite")]
        names_its_backends_statements::<crate::sql::sqlite::Sqlite>();
    }
}
