use std::fmt;
use std::time::Duration;

use lock_core::LockError;

use crate::backend::Backend;

/// A diesel-async PostgreSQL connection pool (deadpool), as an application may already have.
#[cfg(feature = "postgres")]
pub type PgPool = diesel_async::pooled_connection::deadpool::Pool<diesel_async::AsyncPgConnection>;

/// A diesel-async MySQL/MariaDB connection pool (deadpool), as an application may already have.
#[cfg(feature = "mysql")]
pub type MysqlPool =
    diesel_async::pooled_connection::deadpool::Pool<diesel_async::AsyncMysqlConnection>;

/// The async SQLite connection of diesel-async: diesel's synchronous connection run on
/// tokio's blocking pool.
#[cfg(feature = "sqlite")]
pub type AsyncSqliteConnection =
    diesel_async::sync_connection_wrapper::SyncConnectionWrapper<diesel::sqlite::SqliteConnection>;

/// A diesel-async SQLite connection pool (deadpool), as an application may already have.
#[cfg(feature = "sqlite")]
pub type SqlitePool = diesel_async::pooled_connection::deadpool::Pool<AsyncSqliteConnection>;

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
    Url(String),
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
    #[cfg(feature = "mysql")]
    Mysql(MysqlPool),
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
}

impl DatabaseStoreOptions {
    /// Options for a database URL:
    ///
    /// | URL | database |
    /// |---|---|
    /// | `postgres://user:pass@host:5432/db` (or `postgresql://`) | PostgreSQL |
    /// | `mysql://user:pass@host:3306/db` | MySQL / MariaDB |
    /// | `sqlite://path/to/file.db`, `sqlite:path`, `file:…` (SQLite URI), or a plain path | SQLite file |
    /// | `sqlite::memory:` | a private in-memory SQLite database (pool of one connection) |
    ///
    /// The URL is checked when the store connects: a malformed one is
    /// [`LockError::InvalidArgument`].
    pub fn new(url: impl Into<String>) -> Self {
        Self::with_source(Source::Url(url.into()))
    }

    /// Options that reuse the application's PostgreSQL pool (the seed's `connectionName`).
    ///
    /// Release notification takes one connection out of the pool for good (its slot is
    /// freed, so the pool opens another) to `LISTEN` on, the first time a waiter needs it.
    #[cfg(feature = "postgres")]
    pub fn from_postgres_pool(pool: PgPool) -> Self {
        Self::with_source(Source::Postgres(pool))
    }

    /// Options that reuse the application's MySQL/MariaDB pool.
    #[cfg(feature = "mysql")]
    pub fn from_mysql_pool(pool: MysqlPool) -> Self {
        Self::with_source(Source::Mysql(pool))
    }

    /// Options that reuse the application's SQLite pool. Its connections should set
    /// `PRAGMA busy_timeout` (and `journal_mode = WAL` for files shared by processes),
    /// as the store's own pools do.
    #[cfg(feature = "sqlite")]
    pub fn from_sqlite_pool(pool: SqlitePool) -> Self {
        Self::with_source(Source::Sqlite(pool))
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
    /// [`LockError::Storage`]; for SQLite it is also the busy timeout.
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
}

impl fmt::Debug for DatabaseStoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("DatabaseStoreOptions");
        match &self.source {
            Source::Url(url) => d.field("url", &redact_url(url)),
            #[cfg(feature = "postgres")]
            Source::Postgres(_) => d.field("pool", &"postgres"),
            #[cfg(feature = "mysql")]
            Source::Mysql(_) => d.field("pool", &"mysql"),
            #[cfg(feature = "sqlite")]
            Source::Sqlite(_) => d.field("pool", &"sqlite"),
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

/// A URL resolved to a backend and the string its driver takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedUrl {
    pub(crate) backend: Backend,
    /// What to hand the driver (for SQLite: a path, `file:` URI or `:memory:`).
    pub(crate) target: String,
    /// `sqlite::memory:`: every connection would get its own database.
    pub(crate) memory: bool,
}

const URL_FORMS: &str =
    "expected postgres://…, mysql://…, sqlite://PATH, sqlite::memory: or a file path";

/// Resolve a URL, rejecting what no backend accepts, without connecting.
pub(crate) fn parse_url(url: &str) -> Result<ParsedUrl, LockError> {
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(LockError::invalid(format!(
            "the database URL is empty ({URL_FORMS})"
        )));
    }
    let lower = trimmed.to_ascii_lowercase();
    let sqlite = |target: &str, memory: bool| -> Result<ParsedUrl, LockError> {
        if target.is_empty() {
            return Err(LockError::invalid(format!(
                "the SQLite URL {:?} names no file ({URL_FORMS})",
                redact_url(url)
            )));
        }
        Ok(ParsedUrl {
            backend: Backend::Sqlite,
            target: target.to_owned(),
            memory,
        })
    };
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        check_postgres_url(trimmed)?;
        return Ok(ParsedUrl {
            backend: Backend::Postgres,
            target: trimmed.to_owned(),
            memory: false,
        });
    }
    if lower.starts_with("mysql://") {
        check_mysql_url(trimmed)?;
        return Ok(ParsedUrl {
            backend: Backend::Mysql,
            target: trimmed.to_owned(),
            memory: false,
        });
    }
    if lower == "sqlite::memory:" || lower == "sqlite://:memory:" || lower == ":memory:" {
        return sqlite(":memory:", true);
    }
    if let Some(path) = strip_prefix_ignore_case(trimmed, "sqlite://") {
        return sqlite(path, false);
    }
    if let Some(path) = strip_prefix_ignore_case(trimmed, "sqlite:") {
        return sqlite(path, false);
    }
    if lower.starts_with("file:") {
        return sqlite(
            trimmed,
            lower.contains(":memory:") || lower.contains("mode=memory"),
        );
    }
    if let Some((scheme, _)) = trimmed.split_once("://") {
        return Err(LockError::invalid(format!(
            "unsupported database URL scheme {scheme:?} ({URL_FORMS})"
        )));
    }
    // A plain path is a SQLite file.
    sqlite(trimmed, false)
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn backend_disabled(backend: Backend) -> LockError {
    LockError::invalid(format!(
        "lock-store-database was compiled without the `{}` feature, needed for {} URLs",
        backend.feature(),
        backend.name()
    ))
}

#[cfg(feature = "postgres")]
fn check_postgres_url(url: &str) -> Result<(), LockError> {
    url.parse::<tokio_postgres::Config>()
        .map(|_| ())
        .map_err(|e| {
            LockError::invalid(format!(
                "malformed PostgreSQL URL {:?}: {e}",
                redact_url(url)
            ))
        })
}

#[cfg(not(feature = "postgres"))]
fn check_postgres_url(_url: &str) -> Result<(), LockError> {
    Err(backend_disabled(Backend::Postgres))
}

#[cfg(feature = "mysql")]
fn check_mysql_url(url: &str) -> Result<(), LockError> {
    mysql_async::Opts::from_url(url)
        .map(|_| ())
        .map_err(|e| LockError::invalid(format!("malformed MySQL URL {:?}: {e}", redact_url(url))))
}

#[cfg(not(feature = "mysql"))]
fn check_mysql_url(_url: &str) -> Result<(), LockError> {
    Err(backend_disabled(Backend::Mysql))
}

/// Used when the `sqlite` feature is off but a SQLite URL was given.
#[allow(dead_code)]
pub(crate) fn sqlite_disabled() -> LockError {
    backend_disabled(Backend::Sqlite)
}

/// The URL with any password replaced by `***`, for `Debug` and error messages.
pub(crate) fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    // user:password@ in the authority.
    if let Some(scheme_end) = out.find("://") {
        let start = scheme_end + 3;
        let rest = &out[start..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            if let Some(colon) = userinfo.find(':') {
                let from = start + colon + 1;
                let to = start + at;
                out.replace_range(from..to, "***");
            }
        }
    }
    // password=… in a query string or key/value string.
    let mut search_from = 0;
    while let Some(found) = out[search_from..].to_ascii_lowercase().find("password=") {
        let value_start = search_from + found + "password=".len();
        let value_len = out[value_start..]
            .find(['&', ' ', ';', '#'])
            .unwrap_or(out.len() - value_start);
        out.replace_range(value_start..value_start + value_len, "***");
        search_from = value_start + 3;
    }
    out
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

    #[test]
    fn urls_resolve_to_backends() {
        let p = parse_url("postgres://postgres@127.0.0.1:5432/test").unwrap();
        assert_eq!(p.backend, Backend::Postgres);
        let p = parse_url("postgresql://u:p@h/db").unwrap();
        assert_eq!(p.backend, Backend::Postgres);
        let p = parse_url("mysql://root@127.0.0.1:3306/test").unwrap();
        assert_eq!(p.backend, Backend::Mysql);
        let p = parse_url("sqlite::memory:").unwrap();
        assert_eq!(
            (p.backend, p.target.as_str(), p.memory),
            (Backend::Sqlite, ":memory:", true)
        );
        let p = parse_url("sqlite:///tmp/locks.db").unwrap();
        assert_eq!((p.target.as_str(), p.memory), ("/tmp/locks.db", false));
        let p = parse_url("sqlite://locks.db").unwrap();
        assert_eq!(p.target, "locks.db");
        let p = parse_url("/var/lib/app/locks.db").unwrap();
        assert_eq!(
            (p.backend, p.target.as_str()),
            (Backend::Sqlite, "/var/lib/app/locks.db")
        );
    }

    #[test]
    fn malformed_urls_are_invalid_arguments_with_a_reason() {
        for (url, needle) in [
            ("", "empty"),
            ("   ", "empty"),
            (
                "http://example.com",
                "unsupported database URL scheme \"http\"",
            ),
            ("redis://127.0.0.1", "unsupported"),
            ("sqlite://", "names no file"),
            (
                "postgres://u:hunter2@host:notaport/db",
                "malformed PostgreSQL URL",
            ),
            ("mysql://u:hunter2@host:notaport/db", "malformed MySQL URL"),
        ] {
            let err = parse_url(url).expect_err(url);
            assert_eq!(err.code(), "E_INVALID_ARGUMENTS", "{url}");
            let msg = err.to_string();
            assert!(msg.contains(needle), "{url}: {msg}");
            assert!(!msg.contains("hunter2"), "password leaked: {msg}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:s3cr%40t@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(
            redact_url("mysql://root@127.0.0.1/test"),
            "mysql://root@127.0.0.1/test"
        );
        assert_eq!(
            redact_url("postgres://db/app?user=a&password=hunter2&sslmode=disable"),
            "postgres://db/app?user=a&password=***&sslmode=disable"
        );
        let options = DatabaseStoreOptions::new("mysql://root:hunter2@db/app?PASSWORD=hunter3");
        let debug = format!("{options:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("hunter3"),
            "{debug}"
        );
        assert!(debug.contains("root:***@db"), "{debug}");
    }
}
