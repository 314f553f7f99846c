//! The store's own SQLite pool: every connection gets a busy timeout and WAL.

use std::time::Duration;

use diesel::ConnectionError;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, SimpleAsyncConnection};

use crate::options::AsyncSqliteConnection;

/// A connection manager whose connections wait up to `busy_timeout` for another
/// connection's (or process's) write lock, and use WAL so that readers never block the
/// writer. The busy timeout is set first: switching a shared file to WAL needs a lock.
pub(crate) fn manager(
    target: &str,
    busy_timeout: Duration,
) -> AsyncDieselConnectionManager<AsyncSqliteConnection> {
    let busy_ms = busy_timeout.as_millis().min(i32::MAX as u128);
    let mut config = ManagerConfig::<AsyncSqliteConnection>::default();
    // A local database: checking a connection is cheap, but not needed either.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        Box::pin(async move {
            let mut conn = AsyncSqliteConnection::establish(&url).await?;
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = {busy_ms}; PRAGMA journal_mode = WAL;"
            ))
            .await
            .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    AsyncDieselConnectionManager::new_with_config(target.to_owned(), config)
}
