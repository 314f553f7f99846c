//! Database URLs: which backend a URL names, checked before connecting, and the URL
//! with its password redacted for messages.

use std::path::Path;

use lock_core::LockError;

use crate::backend::Backend;

/// A URL resolved to a backend and the string its driver takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedUrl {
    pub(crate) backend: Backend,
    /// What to hand the driver (for SQLite: a path, `file:` URI or `:memory:`).
    pub(crate) target: String,
    /// `sqlite::memory:`: every connection would get its own database.
    pub(crate) memory: bool,
}

/// The accepted forms, for error messages.
const URL_FORMS: &str = "accepted schemes: postgres://… (or postgresql://…), mysql://…, \
     sqlite://PATH (or sqlite:PATH), sqlite::memory:; \
     for a SQLite file by path use DatabaseStoreOptions::sqlite_path";

/// Resolve a URL, rejecting what no backend accepts, without connecting. A string
/// without one of the accepted schemes is rejected, never taken for a file name.
pub(crate) fn parse_url(url: &str) -> Result<ParsedUrl, LockError> {
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(LockError::invalid(format!(
            "the database URL is empty ({URL_FORMS})"
        )));
    }
    let lower = trimmed.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        check_postgres_url(trimmed)?;
        return Ok(remote(Backend::Postgres, trimmed));
    }
    if lower.starts_with("mysql://") {
        check_mysql_url(trimmed)?;
        return Ok(remote(Backend::Mysql, trimmed));
    }
    if lower == "sqlite::memory:" || lower == "sqlite://:memory:" {
        return sqlite(url, ":memory:", true);
    }
    let path = strip_prefix_ignore_case(trimmed, "sqlite://")
        .or_else(|| strip_prefix_ignore_case(trimmed, "sqlite:"));
    if let Some(path) = path {
        // A SQLite URI (`file:…?mode=memory`) keeps its own semantics.
        let lower = path.to_ascii_lowercase();
        let memory = lower.starts_with("file:")
            && (lower.contains(":memory:") || lower.contains("mode=memory"));
        return sqlite(url, path, memory);
    }
    let shown = redact_url(trimmed);
    Err(LockError::invalid(match trimmed.split_once("://") {
        Some((scheme, _)) => {
            format!("unsupported database URL scheme {scheme:?} in {shown:?} ({URL_FORMS})")
        }
        // Not echoed: without a scheme, a password cannot be told apart to redact it.
        None => format!("the database URL has no supported scheme ({URL_FORMS})"),
    }))
}

fn remote(backend: Backend, url: &str) -> ParsedUrl {
    ParsedUrl {
        backend,
        target: url.to_owned(),
        memory: false,
    }
}

fn sqlite(url: &str, target: &str, memory: bool) -> Result<ParsedUrl, LockError> {
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
}

/// The driver's name for a SQLite file given by path. SQLite reads a name that starts
/// with `file:` as a URI, so such a relative path is prefixed with `./`.
pub(crate) fn sqlite_target(path: &Path) -> Result<String, LockError> {
    let Some(name) = path.to_str() else {
        return Err(LockError::invalid(format!(
            "the SQLite path {} is not valid UTF-8",
            path.display()
        )));
    };
    if name.is_empty() {
        return Err(LockError::invalid("the SQLite path is empty"));
    }
    if name
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("file:"))
    {
        return Ok(format!("./{name}"));
    }
    Ok(name.to_owned())
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// A backend this build was compiled without.
pub(crate) fn backend_disabled(backend: Backend) -> LockError {
    LockError::invalid(format!(
        "lock-store-database was compiled without the `{0}` feature, needed for {0} URLs",
        backend.name()
    ))
}

/// Checks the URL as tokio-postgres will see it, its TLS parameters (libpq's names,
/// some unknown to tokio-postgres) read and taken out first ([`crate::tls`]).
#[cfg(feature = "postgres")]
fn check_postgres_url(url: &str) -> Result<(), LockError> {
    let driver_url = crate::tls::params::postgres(url)?.driver_url;
    driver_url
        .parse::<tokio_postgres::Config>()
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

/// Checks the URL as mysql_async will see it, `ssl-mode` and `ssl-ca` read and taken
/// out first ([`crate::tls`]).
#[cfg(feature = "mysql")]
fn check_mysql_url(url: &str) -> Result<(), LockError> {
    let driver_url = crate::tls::params::mysql(url)?.driver_url;
    mysql_async::Opts::from_url(&driver_url)
        .map(|_| ())
        .map_err(|e| LockError::invalid(format!("malformed MySQL URL {:?}: {e}", redact_url(url))))
}

#[cfg(not(feature = "mysql"))]
fn check_mysql_url(_url: &str) -> Result<(), LockError> {
    Err(backend_disabled(Backend::Mysql))
}

pub(crate) use lock_core::redact_url;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DatabaseStoreOptions;

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
        let p = parse_url("sqlite:/var/lib/app/locks.db").unwrap();
        assert_eq!(
            (p.backend, p.target.as_str()),
            (Backend::Sqlite, "/var/lib/app/locks.db")
        );
        let p = parse_url("sqlite://file:locks?mode=memory&cache=shared").unwrap();
        assert!(p.memory);
    }

    /// Without a scheme nothing is taken for a SQLite file name.
    #[test]
    fn strings_without_a_scheme_are_rejected_listing_the_schemes() {
        for url in [
            "localhost:5432",
            "db.internal:3306/app",
            "/var/lib/app/locks.db",
            "locks.db",
            ":memory:",
            "file:locks.db",
            "user:hunter2@localhost/db",
        ] {
            let err = parse_url(url).expect_err(url);
            assert_eq!(err.code(), "E_INVALID_ARGUMENTS", "{url}");
            let msg = err.to_string();
            for scheme in ["postgres://", "mysql://", "sqlite://", "sqlite::memory:"] {
                assert!(msg.contains(scheme), "{url}: {msg} does not list {scheme}");
            }
            assert!(msg.contains("sqlite_path"), "{msg}");
            assert!(!msg.contains("hunter2"), "password leaked: {msg}");
        }
    }

    #[test]
    fn sqlite_paths_are_file_names_not_uris() {
        let target = |p: &str| sqlite_target(Path::new(p)).unwrap();
        assert_eq!(target("/tmp/a?b#c.db"), "/tmp/a?b#c.db");
        assert_eq!(target("file:x.db"), "./file:x.db");
        assert!(sqlite_target(Path::new("")).is_err());
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
