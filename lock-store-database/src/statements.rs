//! The statements a store runs, rendered for one backend and table. The table name is
//! the only interpolated identifier, and it is validated
//! ([`crate::options::validate_table_name`]) and quoted first.

use lock_core::LockError;

use crate::backend::Backend;
use crate::options::validate_table_name;
use crate::sql::{SqlText, TextsOf, render_locks};

/// The statements a store runs, rendered for one backend and table: what to audit, or
/// to run yourself (benchmarks, migrations). Bind parameters in the order the comment
/// of each statement gives (PostgreSQL `$n`, SQLite `?n`, MySQL `?` in order).
///
/// ```
/// use lock_store_database::{statements, Backend};
/// let sql = statements(Backend::Sqlite, "locks").unwrap();
/// assert!(sql.acquire.contains("ON CONFLICT"));
/// assert!(statements(Backend::Postgres, "locks").unwrap().acquire_followup.is_none());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Statements {
    /// `CREATE TABLE IF NOT EXISTS …`.
    pub ddl: String,
    /// A read that fails when the table is missing.
    pub probe: String,
    /// Acquire: insert, or take over an expired row, minting the fencing token.
    pub acquire: String,
    /// A second statement of the acquire, on the same connection. MySQL: the read of
    /// the outcome (`LAST_INSERT_ID()`), always run; SQLite: the holder's remaining
    /// time, run only when denied; PostgreSQL: none (one statement does both).
    pub acquire_followup: Option<String>,
    /// Release by owner (PostgreSQL: with `pg_notify`, and, for a lock with an expiry,
    /// `synchronous_commit = off` for the transaction it runs in: run inside a
    /// transaction of your own, it makes that whole transaction's commit lazy — possibly
    /// even when it released nothing, as PostgreSQL may evaluate the setting before the
    /// owner and expiry checks; see
    /// [the crate docs](crate#durability-and-lazy-releases-on-postgresql)).
    pub release: String,
    /// Release whoever holds it (PostgreSQL: lazy as [`Self::release`]).
    pub force_release: String,
    /// Extend by owner.
    pub extend: String,
    /// Held and not expired.
    pub exists: String,
}

/// The statements for `backend` and `table` (a plain identifier, otherwise
/// `InvalidArgument`).
pub fn statements(backend: Backend, table: &str) -> Result<Statements, LockError> {
    Statements::new(backend, table)
}

impl Statements {
    /// Render every statement of `backend` (named at run time: [`TextsOf`]) for
    /// `table` (validated here).
    pub(crate) fn new(backend: Backend, table: &str) -> Result<Self, LockError> {
        validate_table_name(table)?;
        Ok((TextsOf::backend(backend).locks)(table))
    }

    /// Render every statement of `S` for `table` (validated here).
    pub(crate) fn of<S: SqlText>(table: &str) -> Result<Self, LockError> {
        validate_table_name(table)?;
        Ok(render_locks::<S>(table))
    }
}

/// The `CREATE TABLE IF NOT EXISTS` statement for `backend` and `table`, for users who
/// run their own migrations (the store runs the same statement when
/// [`create_table`](crate::DatabaseStoreOptions::create_table) is on).
///
/// `table` must be a plain identifier (`[A-Za-z_][A-Za-z0-9_]{0,62}`), otherwise
/// [`LockError::InvalidArgument`].
///
/// ```
/// use lock_store_database::{ddl, Backend};
/// let sql = ddl(Backend::Postgres, "locks").unwrap();
/// assert!(sql.starts_with("CREATE TABLE IF NOT EXISTS \"locks\""));
/// assert!(ddl(Backend::Sqlite, "locks; DROP TABLE users").is_err());
/// ```
pub fn ddl(backend: Backend, table: &str) -> Result<String, LockError> {
    Ok(Statements::new(backend, table)?.ddl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_rendered() {
        for backend in [Backend::Postgres, Backend::Mysql, Backend::Sqlite] {
            let s = Statements::new(backend, "locks").unwrap();
            for sql in [
                &s.ddl,
                &s.probe,
                &s.acquire,
                s.acquire_followup.as_ref().unwrap_or(&s.ddl),
                &s.release,
                &s.force_release,
                &s.extend,
                &s.exists,
            ] {
                assert!(
                    !sql.contains('{'),
                    "{backend:?}: unrendered placeholder in {sql}"
                );
            }
        }
    }

    #[test]
    fn ddl_quotes_the_table_per_backend() {
        assert!(
            ddl(Backend::Mysql, "my_locks")
                .unwrap()
                .contains("`my_locks`")
        );
        assert!(
            ddl(Backend::Sqlite, "my_locks")
                .unwrap()
                .contains("\"my_locks\"")
        );
    }
}
