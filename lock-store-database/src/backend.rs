use std::fmt;

/// A SQL database this crate can keep locks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// PostgreSQL (any supported version; `ON CONFLICT` needs 9.5+).
    Postgres,
    /// MySQL 5.7+ or MariaDB 10.2+ (InnoDB, `DYNAMIC` row format for 1 KB keys).
    Mysql,
    /// SQLite 3.35+ (`RETURNING`); the bundled library is always recent enough.
    Sqlite,
}

impl Backend {
    /// The store name reported by [`LockStore::name`](lock_core::LockStore::name):
    /// `"postgres"`, `"mysql"` or `"sqlite"`.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
            Backend::Sqlite => "sqlite",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
