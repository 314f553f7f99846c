//! Running the permit statements through the store's engine: the same pool and the
//! same deadline-bounded checkout as the lock statements ([`Engine::run`]).

use async_trait::async_trait;
use deadpool::managed::Manager;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, PoolError};
use lock_core::{LockError, ReleaseFuture};
use tokio::time::Instant;

use super::render::Values;
use super::{GrantRow, PermitConn, PermitSql, UsageRow};
use crate::engine::Engine;
use crate::sql::Dialect;

/// A write to a permit key's row.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Write {
    Release,
    Extend,
    ForceRelease,
}

/// The permit operations of a store, whatever the backend.
#[async_trait]
pub(crate) trait PermitOps: Send + Sync {
    /// The permits table, or `InvalidArgument` when there can be none.
    fn table(&self) -> Result<&str, LockError>;
    async fn create_table(&self, deadline: Instant) -> Result<(), LockError>;
    async fn probe(&self, deadline: Instant) -> Result<(), LockError>;
    async fn acquire(&self, deadline: Instant, values: Values) -> Result<GrantRow, LockError>;
    /// → affected rows.
    async fn write(
        &self,
        deadline: Instant,
        write: Write,
        values: Values,
    ) -> Result<usize, LockError>;
    async fn usage(&self, deadline: Instant, values: Values) -> Result<UsageRow, LockError>;
    /// A waiter for the next release of `key`'s permits, if the backend notifies.
    fn listen(&self, key: &str) -> Option<ReleaseFuture>;
    /// After one of this process's own releases: wake its local waiters at once.
    fn released_locally(&self, key: &str);
}

fn sql<D: Dialect>(engine: &Engine<D>) -> &PermitSql
where
    AsyncDieselConnectionManager<D::Conn>: Manager<Type = D::Conn, Error = PoolError>,
{
    &engine.permits
}

#[async_trait]
impl<D: Dialect> PermitOps for Engine<D>
where
    AsyncDieselConnectionManager<D::Conn>: Manager<Type = D::Conn, Error = PoolError>,
{
    fn table(&self) -> Result<&str, LockError> {
        sql(self).table()
    }

    async fn create_table(&self, deadline: Instant) -> Result<(), LockError> {
        let ddl = &sql(self).statements.ddl;
        let none = Values::default();
        self.run(deadline, |_, c| PermitConn::execute(c, ddl, &none))
            .await
            .map(drop)
    }

    async fn probe(&self, deadline: Instant) -> Result<(), LockError> {
        let probe = &sql(self).statements.probe;
        self.run(deadline, |_, c| PermitConn::probe(c, probe)).await
    }

    async fn acquire(&self, deadline: Instant, values: Values) -> Result<GrantRow, LockError> {
        let statements = &sql(self).statements;
        self.run(deadline, |_, c| PermitConn::acquire(c, statements, &values))
            .await
    }

    async fn write(
        &self,
        deadline: Instant,
        write: Write,
        mut values: Values,
    ) -> Result<usize, LockError> {
        let permits = sql(self);
        let statement = match write {
            Write::Release => &permits.statements.release,
            Write::Extend => &permits.statements.extend,
            Write::ForceRelease => &permits.statements.force_release,
        };
        if let Some(listener) = &permits.listener {
            values.channel = listener.channel().to_owned();
        }
        self.run(deadline, |_, c| PermitConn::execute(c, statement, &values))
            .await
    }

    async fn usage(&self, deadline: Instant, values: Values) -> Result<UsageRow, LockError> {
        let usage = &sql(self).statements.usage;
        self.run(deadline, |_, c| PermitConn::usage(c, usage, &values))
            .await
    }

    fn listen(&self, key: &str) -> Option<ReleaseFuture> {
        sql(self).listener.as_ref().map(|l| l.listen(key))
    }

    fn released_locally(&self, key: &str) {
        if let Some(listener) = &sql(self).listener {
            listener.released_locally(key);
        }
    }
}
