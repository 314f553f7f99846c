//! The SQL, one module per backend. Each statement is a named constant with a comment
//! saying why it is atomic. The table name is the only interpolated identifier, and it
//! is validated ([`crate::options::validate_table_name`]) and quoted first.

pub(crate) mod mysql;
pub(crate) mod postgres;
pub(crate) mod sqlite;

use lock_core::LockError;

use crate::backend::Backend;
use crate::options::validate_table_name;

/// The statements a store runs, rendered for one backend and table: what to audit, or
/// to run yourself (benchmarks, migrations). Bind parameters in the order the crate docs
/// give for each backend.
///
/// ```
/// use lock_store_database::{statements, Backend};
/// let sql = statements(Backend::Sqlite, "locks").unwrap();
/// assert!(sql.acquire.contains("ON CONFLICT"));
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
    /// MySQL: the follow-up read of `LAST_INSERT_ID()`; SQLite: the holder hint.
    pub acquire_followup: String,
    /// Release by owner (PostgreSQL: with `pg_notify`).
    pub release: String,
    /// Release whoever holds it.
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
    /// Render every statement for `table` (validated here).
    pub(crate) fn new(backend: Backend, table: &str) -> Result<Self, LockError> {
        validate_table_name(table)?;
        let quoted = quote(backend, table);
        let (now, t) = match backend {
            Backend::Postgres => (postgres::NOW_MS, PG),
            Backend::Mysql => (mysql::NOW_MS, MYSQL),
            Backend::Sqlite => (sqlite::NOW_MS, SQLITE),
        };
        let render = |template: &str| template.replace("{table}", &quoted).replace("{now}", now);
        Ok(Statements {
            ddl: render(t.ddl),
            probe: render(t.probe),
            acquire: render(t.acquire),
            acquire_followup: render(t.acquire_followup),
            release: render(t.release),
            force_release: render(t.force_release),
            extend: render(t.extend),
            exists: render(t.exists),
        })
    }
}

struct Templates {
    ddl: &'static str,
    probe: &'static str,
    acquire: &'static str,
    acquire_followup: &'static str,
    release: &'static str,
    force_release: &'static str,
    extend: &'static str,
    exists: &'static str,
}

const PG: Templates = Templates {
    ddl: postgres::DDL,
    probe: postgres::PROBE,
    acquire: postgres::ACQUIRE,
    acquire_followup: "",
    release: postgres::RELEASE,
    force_release: postgres::FORCE_RELEASE,
    extend: postgres::EXTEND,
    exists: postgres::EXISTS,
};

const MYSQL: Templates = Templates {
    ddl: mysql::DDL,
    probe: mysql::PROBE,
    acquire: mysql::ACQUIRE,
    acquire_followup: mysql::ACQUIRE_RESULT,
    release: mysql::RELEASE,
    force_release: mysql::FORCE_RELEASE,
    extend: mysql::EXTEND,
    exists: mysql::EXISTS,
};

const SQLITE: Templates = Templates {
    ddl: sqlite::DDL,
    probe: sqlite::PROBE,
    acquire: sqlite::ACQUIRE,
    acquire_followup: sqlite::HOLDER,
    release: sqlite::RELEASE,
    force_release: sqlite::FORCE_RELEASE,
    extend: sqlite::EXTEND,
    exists: sqlite::EXISTS,
};

/// Quote a validated identifier. Quoting keeps reserved words usable as table names
/// (and makes the name case-sensitive on PostgreSQL).
fn quote(backend: Backend, table: &str) -> String {
    match backend {
        Backend::Mysql => format!("`{table}`"),
        Backend::Postgres | Backend::Sqlite => format!("\"{table}\""),
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
                &s.acquire_followup,
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
