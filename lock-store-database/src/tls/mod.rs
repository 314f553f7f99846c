//! TLS to the database servers, set by the URL as libpq and MySQL's clients set it
//! (see the crate docs, "TLS"): the parameters are read and taken out of the URL
//! ([`params`]), the rest of the URL goes to the driver unchanged, and every
//! connection the store opens — pooled, `LISTEN`, query-cancel — uses the settings.

#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) mod params;

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(all(feature = "postgres", feature = "rustls", not(feature = "native-tls")))]
mod pg_rustls;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(all(feature = "postgres", feature = "rustls", not(feature = "native-tls")))]
mod verify;

#[cfg(feature = "mysql")]
pub(crate) use mysql::MysqlTls;
#[cfg(feature = "postgres")]
pub(crate) use postgres::PgTls;

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
use lock_core::LockError;

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
use crate::backend::Backend;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
use crate::options::DatabaseStoreOptions;
#[cfg(feature = "postgres")]
use crate::options::Source;
#[cfg(feature = "postgres")]
use crate::sql::Connect;

/// What an abandoned connection needs to cancel its statement: on PostgreSQL, the
/// TLS settings of the store's connections (the cancel request is a connection of its
/// own); nothing on the other backends.
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
#[derive(Clone)]
pub(crate) struct CancelTls {
    #[cfg(feature = "postgres")]
    pub(crate) postgres: PgTls,
}

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
impl CancelTls {
    /// The settings of the store's connections for `backend`: from the URL, or, for a
    /// pool the application built, TLS without checking the server when its
    /// connections asked for TLS.
    pub(crate) fn new(
        backend: Backend,
        options: &DatabaseStoreOptions,
    ) -> Result<CancelTls, LockError> {
        let _ = (backend, options);
        Ok(CancelTls {
            #[cfg(feature = "postgres")]
            postgres: match &options.source {
                Source::Url(url) if backend == Backend::Postgres => {
                    PgTls::for_url(url.trim(), options)?.1
                }
                _ => PgTls::for_given_pool(),
            },
        })
    }
}

/// The content of a CA file named by the URL parameter `param`.
#[cfg(any(
    feature = "mysql",
    all(feature = "postgres", any(feature = "rustls", feature = "native-tls"))
))]
fn read_ca_file(path: &std::path::Path, param: &str) -> Result<Vec<u8>, lock_core::LockError> {
    std::fs::read(path).map_err(|e| {
        lock_core::LockError::invalid(format!(
            "the URL parameter `{param}` names {}, which cannot be read: {e}",
            path.display()
        ))
    })
}

/// The `-----BEGIN CERTIFICATE-----` … `-----END CERTIFICATE-----` blocks of a PEM file.
#[cfg(any(feature = "postgres", feature = "mysql"))]
#[cfg_attr(
    all(
        feature = "postgres",
        not(feature = "mysql"),
        not(feature = "native-tls")
    ),
    allow(dead_code)
)]
fn pem_blocks(pem: &[u8]) -> Vec<&[u8]> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let mut blocks = Vec::new();
    let mut rest = pem;
    while let Some(start) = find(rest, BEGIN) {
        let Some(len) = find(&rest[start..], END) else {
            break;
        };
        let end = start + len + END.len();
        blocks.push(&rest[start..end]);
        rest = &rest[end..];
    }
    blocks
}

/// `error: cause: cause of the cause…`
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(all(test, any(feature = "postgres", feature = "mysql")))]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_are_the_certificates_of_a_file() {
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n\
            -----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\n";
        let blocks = pem_blocks(pem);
        assert_eq!(blocks.len(), 2);
        assert!(blocks[0].ends_with(b"-----END CERTIFICATE-----"));
        assert!(blocks[1].windows(3).any(|w| w == b"BBB"));
        assert!(pem_blocks(b"no certificate").is_empty());
    }
}
