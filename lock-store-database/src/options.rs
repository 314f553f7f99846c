//! How to build a store: where the database is, which table, how long an operation may
//! take.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lock_core::LockError;

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
use crate::engine::Given;
use crate::url::redact_url;

/// The default table name.
pub const DEFAULT_TABLE_NAME: &str = "locks";

/// The default operation timeout: a store call that takes longer fails with
/// [`LockError::Storage`].
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// Options of a [`DatabaseStore`](crate::DatabaseStore): where the database is, which
/// table to use, and how long an operation may take.
///
/// ```
/// use std::time::Duration;
/// use lock_store_database::DatabaseStoreOptions;
///
/// let options = DatabaseStoreOptions::new("postgres://app:secret@db.internal/app")
///     .table_name("app_locks")
///     .create_table(false)
///     .operation_timeout(Duration::from_secs(2));
/// // Debug never shows the password.
/// assert!(!format!("{options:?}").contains("secret"));
/// ```
#[derive(Clone)]
pub struct DatabaseStoreOptions {
    pub(crate) source: Source,
    pub(crate) table_name: String,
    pub(crate) create_table: bool,
    pub(crate) operation_timeout: Duration,
    pub(crate) max_connections: Option<usize>,
}

/// Where connections come from.
#[derive(Clone)]
pub(crate) enum Source {
    /// A URL, parsed when the store is built.
    Url(String),
    /// A SQLite file named by its path, never parsed as a URL.
    SqlitePath(std::path::PathBuf),
    /// The application's pool.
    Pool(Arc<dyn crate::engine::GivenPool>),
}

impl DatabaseStoreOptions {
    /// Options for a database URL; the scheme names the database:
    ///
    /// | URL | database |
    /// |---|---|
    /// | `postgres://user:pass@host:5432/db` (or `postgresql://`) | PostgreSQL |
    /// | `mysql://user:pass@host:3306/db` | MySQL / MariaDB |
    /// | `sqlite://path/to/file.db` (or `sqlite:path`; `sqlite://file:…?…` for a SQLite URI) | SQLite file |
    /// | `sqlite::memory:` | a private in-memory SQLite database (pool of one connection) |
    ///
    /// Anything else — a string without a scheme such as `localhost:5432` or a bare
    /// path included — is [`LockError::InvalidArgument`] when the store is built, and
    /// creates nothing. For a file path, use [`sqlite_path`](Self::sqlite_path).
    ///
    /// TLS is set in the URL: `?sslmode=verify-full&sslrootcert=ca.pem` on PostgreSQL,
    /// `?ssl-mode=VERIFY_IDENTITY&ssl-ca=ca.pem` on MySQL (see the crate docs, "TLS").
    pub fn new(url: impl Into<String>) -> Self {
        Self::with_source(Source::Url(url.into()))
    }

    /// Options for a SQLite file named by its path (created if missing). The path is
    /// never parsed as a URL: `?` and `#` are part of the file name.
    ///
    /// ```
    /// use lock_store_database::DatabaseStoreOptions;
    /// let options = DatabaseStoreOptions::sqlite_path("/var/lib/app/locks.db");
    /// ```
    ///
    /// Without the `sqlite` feature, building the store is `InvalidArgument`.
    pub fn sqlite_path(path: impl AsRef<std::path::Path>) -> Self {
        Self::with_source(Source::SqlitePath(path.as_ref().to_path_buf()))
    }

    /// Options that reuse the application's PostgreSQL pool (the seed's `connectionName`).
    ///
    /// Release notification takes one connection out of the pool for good (its slot is
    /// freed, so the pool opens another) to `LISTEN` on, the first time a waiter needs it;
    /// semaphores and reader-writer locks take a second one the same way.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub fn from_postgres_pool(pool: crate::PgPool) -> Self {
        Self::with_source(Source::Pool(Arc::new(Given::<
            crate::sql::postgres::Postgres,
        >(pool))))
    }

    /// Options that reuse the application's MySQL/MariaDB pool.
    #[cfg(feature = "mysql")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
    pub fn from_mysql_pool(pool: crate::MysqlPool) -> Self {
        Self::with_source(Source::Pool(Arc::new(Given::<crate::sql::mysql::Mysql>(
            pool,
        ))))
    }

    /// Options that reuse the application's SQLite pool. Its connections should set
    /// `PRAGMA busy_timeout` (and `journal_mode = WAL` for files shared by processes),
    /// as the store's own pools do.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub fn from_sqlite_pool(pool: crate::SqlitePool) -> Self {
        Self::with_source(Source::Pool(Arc::new(Given::<crate::sql::sqlite::Sqlite>(
            pool,
        ))))
    }

    fn with_source(source: Source) -> Self {
        DatabaseStoreOptions {
            source,
            table_name: DEFAULT_TABLE_NAME.to_owned(),
            create_table: true,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            max_connections: None,
        }
    }

    /// The table holding the locks (default `locks`). It must be a plain identifier,
    /// `[A-Za-z_][A-Za-z0-9_]{0,62}`, or connecting fails with
    /// [`LockError::InvalidArgument`]. The name is quoted in SQL, so it is
    /// case-sensitive on PostgreSQL and may be a reserved word.
    pub fn table_name(mut self, table_name: impl Into<String>) -> Self {
        self.table_name = table_name.into();
        self
    }

    /// Create the table if it is missing when the store connects (default `true`).
    /// Safe when many processes start at once. With `false`, a missing table is a
    /// [`LockError::Storage`] naming it; create it with [`ddl`](crate::ddl).
    pub fn create_table(mut self, create_table: bool) -> Self {
        self.create_table = create_table;
        self
    }

    /// The longest one store operation may take, waiting for a pooled connection
    /// included (default 5 s). On expiry the operation fails with
    /// [`LockError::Storage`]. Building the store (connecting, creating and checking
    /// the table) also ends within this time in total. For SQLite it is also the busy
    /// timeout.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// The size of the pool the store opens for a URL (default 10; 4 for a SQLite
    /// file; always 1 for `sqlite::memory:`). Ignored for a pool passed in.
    pub fn max_connections(mut self, max_connections: usize) -> Self {
        self.max_connections = Some(max_connections);
        self
    }

    /// The pool the store opens for these options' PostgreSQL URL (same size, timeouts
    /// and recycling), for an application that shares it with its own queries: build the
    /// store on it with [`from_postgres_pool`](Self::from_postgres_pool). Opens no
    /// connection yet. A URL of another backend, or options that reuse a pool, are
    /// [`LockError::InvalidArgument`].
    #[cfg(feature = "postgres")]
    pub fn open_postgres_pool(&self) -> Result<crate::PgPool, LockError> {
        crate::engine::own_pool::<crate::sql::postgres::Postgres>(self)
    }

    /// The pool the store opens for these options' MySQL/MariaDB URL (same size,
    /// timeouts and recycling), to share with the application's own queries and build the
    /// store on with `from_mysql_pool`. Opens no connection yet. A URL of another
    /// backend, or options that reuse a pool, are [`LockError::InvalidArgument`].
    #[cfg(feature = "mysql")]
    pub fn open_mysql_pool(&self) -> Result<crate::MysqlPool, LockError> {
        crate::engine::own_pool::<crate::sql::mysql::Mysql>(self)
    }

    /// The pool the store opens for these options' SQLite URL or path (same size and
    /// timeouts; every connection gets the store's busy timeout and WAL journal), to
    /// share with the application's own queries and build the store on with
    /// `from_sqlite_pool`. Opens no connection yet. Another backend's URL, or options
    /// that reuse a pool, are [`LockError::InvalidArgument`].
    #[cfg(feature = "sqlite")]
    pub fn open_sqlite_pool(&self) -> Result<crate::SqlitePool, LockError> {
        crate::engine::own_pool::<crate::sql::sqlite::Sqlite>(self)
    }

    /// Where the store connects, for messages: the URL without its password, the
    /// SQLite path, or the backend of a pool passed in.
    pub(crate) fn endpoint(&self) -> String {
        match &self.source {
            Source::Url(url) => redact_url(url),
            Source::SqlitePath(path) => path.display().to_string(),
            Source::Pool(pool) => format!("the application's {} pool", pool.backend()),
        }
    }
}

impl fmt::Debug for DatabaseStoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("DatabaseStoreOptions");
        match &self.source {
            Source::Url(url) => d.field("url", &redact_url(url)),
            Source::SqlitePath(path) => d.field("sqlite_path", path),
            Source::Pool(pool) => d.field("pool", &pool.backend().name()),
        };
        d.field("table_name", &self.table_name)
            .field("create_table", &self.create_table)
            .field("operation_timeout", &self.operation_timeout)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// The longest table name accepted (PostgreSQL's identifier limit is 63 bytes).
pub(crate) const MAX_TABLE_NAME_LEN: usize = 63;

/// Accept only `[A-Za-z_][A-Za-z0-9_]{0,62}`: the table name is the one identifier
/// that is put into SQL text, so nothing else may reach it.
pub(crate) fn validate_table_name(name: &str) -> Result<(), LockError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if first_ok && rest_ok && name.len() <= MAX_TABLE_NAME_LEN {
        Ok(())
    } else {
        Err(LockError::invalid(format!(
            "table name {name:?} is not a plain SQL identifier \
             (expected [A-Za-z_][A-Za-z0-9_]{{0,62}})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_plain_identifiers() {
        for ok in ["locks", "_x", "A1_b", &"a".repeat(63)] {
            assert!(validate_table_name(ok).is_ok(), "{ok} should be accepted");
        }
        for bad in [
            "",
            "1locks",
            "locks;",
            "locks; DROP TABLE users",
            "lo\"cks",
            "lo`cks",
            "lo'cks",
            "locks--",
            "schema.locks",
            "löcks",
            "lo cks",
            "lo\0cks",
            &"a".repeat(64),
        ] {
            let err = validate_table_name(bad).expect_err(bad);
            assert_eq!(err.code(), "E_INVALID_ARGUMENTS");
        }
    }
}
