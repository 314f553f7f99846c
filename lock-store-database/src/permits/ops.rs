//! Running the permit statements through the store's engine: the same pool, the same
//! deadline-bounded checkout ([`Engine::run`]) and the same runner ([`Run`]) as the
//! lock statements, and the dialect's acquire for the permits' acquire.

use async_trait::async_trait;
use deadpool::managed::Manager;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, PoolError};
use lock_core::{LockError, ReleaseFuture};
use tokio::time::Instant;

use super::{PermitSql, UsageRow};
use crate::engine::Engine;
use crate::sql::render::Values;
use crate::sql::{Acquire, AcquireRow, Dialect, ReadRow, Run};

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
    async fn acquire(&self, deadline: Instant, values: Values) -> Result<AcquireRow, LockError>;
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
        let ddl = sql(self).statements.ddl.bound(&Values::default());
        self.run(deadline, |_, c| c.execute_with(ddl))
            .await
            .map(drop)
    }

    async fn probe(&self, deadline: Instant) -> Result<(), LockError> {
        let probe = sql(self).statements.probe.bound(&Values::default());
        self.run(deadline, |_, c| c.count(probe)).await.map(drop)
    }

    async fn acquire(&self, deadline: Instant, values: Values) -> Result<AcquireRow, LockError> {
        let statements = &sql(self).statements;
        let a = Acquire {
            decide: statements.acquire.bound(&values),
            followup: (statements.acquire_followup.as_ref()).map(|read| read.bound(&values)),
        };
        self.run(deadline, |d, c| d.acquire(c, a)).await
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
        let q = statement.bound(&values);
        self.run(deadline, |_, c| c.execute_with(q)).await
    }

    async fn usage(&self, deadline: Instant, values: Values) -> Result<UsageRow, LockError> {
        let q = sql(self).statements.usage.bound(&values);
        self.run(deadline, |_, c| c.read_row(q)).await
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
