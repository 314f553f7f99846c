//! Semaphores and reader-writer locks in SQL: the [`PermitStore`](lock_core::PermitStore)
//! capability of [`DatabaseStore`](crate::DatabaseStore), under lock-core's
//! [`PermitSet`](lock_core::PermitSet) rules, one statement per operation.
//!
//! Each store keeps its permit keys in a table of their own, `<table>_permits` (so a
//! semaphore and a lock on one key never meet), one row per key: the holders in a JSON
//! column, the reservation, and the key's fencing counter. Every write is one
//! statement on that row, computing the new row from the row's own columns under its
//! row lock (PostgreSQL, MySQL) or the database write lock (SQLite): see each
//! backend's module for why its statements are atomic.
//!
//! * [`crate::sql::render`]: named parameters for the statements;
//! * [`postgres`], [`mysql`], [`sqlite`]: each backend's SQL;
//! * `ops`: running them through the store's engine (pool, deadline) as any other
//!   statement: the acquire by the backend's dialect, as the lock acquire;
//! * `store`: the [`PermitStore`](lock_core::PermitStore) methods.

use deadpool::managed::Manager;
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, PoolError};
use lock_core::LockError;

use crate::backend::Backend;
use crate::options::{DatabaseStoreOptions, MAX_TABLE_NAME_LEN, validate_table_name};
use crate::sql::render::{Rendered, render};
use crate::sql::{Dialect, OperationSql, PoolOf, SqlText, TextsOf};

pub(crate) mod mysql;
mod ops;
pub(crate) mod postgres;
pub(crate) mod sqlite;
mod store;

pub(crate) use ops::PermitOps;

/// The permit statements of one backend, before rendering: `{table}`, `{now}` and the
/// parameter markers of [`render()`] still to be filled in; the clock and the identifier
/// quote are those of the backend's lock statements. Each statement's comment says why
/// it is atomic.
pub(crate) trait PermitText: OperationSql {
    /// The backend's lock statements (its clock, its quote).
    type Locks: SqlText;
    /// Shared fragments, expanded first (see [`render()`]).
    const PARTS: &'static [(&'static str, &'static str)];
    /// Live holders and their weight.
    const USAGE: &'static str;
}

/// Checks that the permits table exists with the expected columns, touching no row
/// (the same on every backend).
const PROBE: &str = "SELECT COUNT(*) AS n FROM (
    SELECT permit_key, holders, reserved_by, reserved_until, fence FROM {table} WHERE 1 = 0
) AS probe";

/// The permit statements of one backend and table, rendered.
#[derive(Debug, Clone)]
pub(crate) struct PermitStatements {
    pub(crate) ddl: Rendered,
    pub(crate) probe: Rendered,
    pub(crate) acquire: Rendered,
    /// Run by the MySQL and SQLite acquires only.
    pub(crate) acquire_followup: Option<Rendered>,
    pub(crate) release: Rendered,
    pub(crate) extend: Rendered,
    pub(crate) force_release: Rendered,
    pub(crate) usage: Rendered,
}

impl PermitStatements {
    /// The statements of `backend` (named at run time: [`crate::sql::TextsOf`]).
    /// `permits_table` is a checked identifier ([`permits_table`]).
    fn new(backend: Backend, permits_table: &str) -> Self {
        (TextsOf::backend(backend).permits)(permits_table)
    }

    /// The statements of `T`, rendered for its backend's placeholders.
    /// `permits_table` is a checked identifier ([`permits_table`]).
    pub(crate) fn of<T: PermitText>(permits_table: &str) -> Self {
        let quoted = format!("{q}{permits_table}{q}", q = T::Locks::QUOTE);
        let backend = T::Locks::BACKEND;
        let r = |template: &str| render(backend, template, T::PARTS, T::Locks::NOW_MS, &quoted);
        PermitStatements {
            ddl: r(T::DDL),
            probe: r(PROBE),
            acquire: r(T::ACQUIRE),
            acquire_followup: T::ACQUIRE_FOLLOWUP.map(r),
            release: r(T::RELEASE),
            extend: r(T::EXTEND),
            force_release: r(T::FORCE_RELEASE),
            usage: r(T::USAGE),
        }
    }
}

/// The permits table of the lock table `table`: `<table>_permits`, which must fit an
/// identifier (63 bytes: PostgreSQL's limit, applied on every backend so a name works
/// everywhere), otherwise `InvalidArgument`.
pub(crate) fn permits_table(table: &str) -> Result<String, LockError> {
    let name = format!("{table}_permits");
    if name.len() > MAX_TABLE_NAME_LEN {
        return Err(LockError::invalid(format!(
            "semaphores and reader-writer locks need the table `{name}`, longer than \
             {MAX_TABLE_NAME_LEN} bytes: use a lock table name of at most {} bytes",
            MAX_TABLE_NAME_LEN - "_permits".len()
        )));
    }
    Ok(name)
}

/// The `CREATE TABLE IF NOT EXISTS` of the permits table (semaphores and
/// reader-writer locks) that goes with the lock table `table`: `<table>_permits`.
/// For users who run their own migrations; the store runs the same statement when
/// [`create_table`](crate::DatabaseStoreOptions::create_table) is on.
///
/// `InvalidArgument` if `table` is not a plain identifier, or longer than 55 bytes
/// (the permits table's name must fit 63).
///
/// ```
/// use lock_store_database::{permits_ddl, Backend};
/// let sql = permits_ddl(Backend::Postgres, "locks").unwrap();
/// assert!(sql.starts_with("CREATE TABLE IF NOT EXISTS \"locks_permits\""));
/// assert!(permits_ddl(Backend::Mysql, &"t".repeat(56)).is_err());
/// ```
pub fn permits_ddl(backend: Backend, table: &str) -> Result<String, LockError> {
    validate_table_name(table)?;
    let name = permits_table(table)?;
    Ok(PermitStatements::new(backend, &name).ddl.sql)
}

/// The `NOTIFY` channel of a permits table (PostgreSQL): never the lock table's
/// (`<table>_lock_released`), so permit releases and lock releases wake only their own
/// waiters.
fn notify_channel(permits_table: &str) -> String {
    let mut channel = format!("{permits_table}_released");
    channel.truncate(MAX_TABLE_NAME_LEN);
    channel
}

/// Release notification: PostgreSQL's `LISTEN` connection, when compiled in.
#[cfg(feature = "postgres")]
pub(crate) use crate::listener::PgListener as Listener;

/// Release notification: none without PostgreSQL.
#[cfg(not(feature = "postgres"))]
pub(crate) enum Listener {}

#[cfg(not(feature = "postgres"))]
impl Listener {
    fn listen(&self, _key: &str) -> lock_core::ReleaseFuture {
        match *self {}
    }
    fn channel(&self) -> &str {
        match *self {}
    }
    fn released_locally(&self, _key: &str) {
        match *self {}
    }
}

/// What an engine keeps for permits: the table, its statements, its listener.
pub(crate) struct PermitSql {
    /// `<table>_permits`, or why there is none.
    table: Result<String, String>,
    statements: PermitStatements,
    listener: Option<Listener>,
}

impl PermitSql {
    /// For the engine of dialect `D` on `pool` (its lock table already validated).
    pub(crate) fn new<D: Dialect>(pool: &PoolOf<D::Conn>, options: &DatabaseStoreOptions) -> Self
    where
        AsyncDieselConnectionManager<D::Conn>: Manager<Type = D::Conn, Error = PoolError>,
    {
        let table = permits_table(&options.table_name).map_err(|e| e.to_string());
        let name = table.as_deref().unwrap_or(&options.table_name);
        PermitSql {
            statements: PermitStatements::of::<D::Permits>(name),
            listener: D::listener(pool, notify_channel(name), options),
            table,
        }
    }

    /// The permits table, or `InvalidArgument` when the lock table's name leaves no
    /// room for it.
    fn table(&self) -> Result<&str, LockError> {
        self.table
            .as_deref()
            .map_err(|e| LockError::invalid(e.clone()))
    }
}

/// Live holders and the weight they hold.
#[derive(Debug, QueryableByName)]
pub(crate) struct UsageRow {
    #[diesel(sql_type = BigInt)]
    holders: i64,
    #[diesel(sql_type = BigInt)]
    used: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::render;

    const BACKENDS: [Backend; 3] = [Backend::Postgres, Backend::Mysql, Backend::Sqlite];

    #[test]
    fn every_marker_is_rendered() {
        for backend in BACKENDS {
            let s = PermitStatements::new(backend, "locks_permits");
            let followup = s.acquire_followup.clone();
            for r in [
                &s.ddl,
                &s.probe,
                &s.acquire,
                &s.release,
                &s.extend,
                &s.force_release,
                &s.usage,
            ]
            .into_iter()
            .chain(followup.as_ref())
            {
                assert!(
                    !r.sql.contains('{'),
                    "{backend}: unrendered marker in {}",
                    r.sql
                );
            }
            assert!(s.acquire.binds.contains(&render::Param::Owner));
        }
    }

    #[test]
    fn the_permits_table_name_must_fit_an_identifier() {
        assert_eq!(permits_table("locks").unwrap(), "locks_permits");
        assert!(permits_table(&"t".repeat(55)).is_ok());
        let err = permits_table(&"t".repeat(56)).unwrap_err();
        assert_eq!(err.code(), "E_INVALID_ARGUMENTS");
        assert!(err.to_string().contains("at most 55 bytes"), "{err}");
        assert!(permits_ddl(Backend::Sqlite, "bad name").is_err());
    }

    #[test]
    fn permit_and_lock_channels_differ_even_when_truncated() {
        for table in ["locks", &"t".repeat(55)] {
            let permits = notify_channel(&permits_table(table).unwrap());
            let mut locks = format!("{table}_lock_released");
            locks.truncate(MAX_TABLE_NAME_LEN);
            assert_ne!(permits, locks);
            assert!(permits.len() <= MAX_TABLE_NAME_LEN);
        }
    }

    /// The DDL shown in the crate docs is the DDL the code runs.
    #[test]
    fn documented_permits_ddl_matches_the_code() {
        crate::tests::assert_documented("permits DDL", permits_ddl);
    }
}
