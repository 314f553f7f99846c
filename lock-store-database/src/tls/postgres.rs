//! PostgreSQL connections with the URL's TLS settings: the pool's connections (the
//! release listener takes its own from the pool) and the query-cancel requests.

use diesel::{ConnectionError, ConnectionResult};
use diesel_async::AsyncPgConnection;
use lock_core::LockError;

use crate::options::DatabaseStoreOptions;
use tokio_postgres::tls::{MakeTlsConnect, TlsStream};
use tokio_postgres::{CancelToken, NoTls, Socket};

use super::params::{self, PgSslMode, Roots};
use crate::sql::{BoxFuture, Connect};

/// How connections to one PostgreSQL server are secured.
#[derive(Clone)]
pub(crate) enum PgTls {
    /// No TLS (`sslmode=disable`, or a build without a TLS feature).
    Plain,
    /// rustls, checking the server as the mode asks.
    #[cfg(all(feature = "rustls", not(feature = "native-tls")))]
    Rustls(super::pg_rustls::MakeRustls),
    /// native-tls, checking the server as the mode asks.
    #[cfg(feature = "native-tls")]
    Native(postgres_native_tls::MakeTlsConnector),
}

impl PgTls {
    /// For the cancel requests of a pool the application built, whose TLS settings are
    /// not known here: TLS without checking the server when the connection's `sslmode`
    /// asks for TLS (plain TLS-less cancel requests would fail with `require`).
    pub(crate) fn for_given_pool() -> PgTls {
        Self::connector(PgSslMode::Prefer, &Roots::System).unwrap_or(PgTls::Plain)
    }

    #[cfg(feature = "native-tls")]
    fn connector(mode: PgSslMode, roots: &Roots) -> Result<PgTls, LockError> {
        let mut builder = native_tls::TlsConnector::builder();
        match mode {
            PgSslMode::Disable | PgSslMode::Prefer | PgSslMode::Require => {
                builder
                    .danger_accept_invalid_certs(true)
                    .danger_accept_invalid_hostnames(true);
            }
            PgSslMode::VerifyCa => {
                builder.danger_accept_invalid_hostnames(true);
            }
            PgSslMode::VerifyFull => {}
        }
        if let (PgSslMode::VerifyCa | PgSslMode::VerifyFull, Roots::File(path)) = (mode, roots) {
            builder.disable_built_in_roots(true);
            let pem = super::read_ca_file(path, "sslrootcert")?;
            let certs = super::pem_blocks(&pem);
            if certs.is_empty() {
                return Err(LockError::invalid(format!(
                    "the URL parameter `sslrootcert` names {}, which holds no PEM certificate",
                    path.display()
                )));
            }
            for block in certs {
                let cert = native_tls::Certificate::from_pem(block).map_err(|e| {
                    LockError::invalid(format!(
                        "the URL parameter `sslrootcert` names {}: a certificate in it cannot \
                         be read: {e}",
                        path.display()
                    ))
                })?;
                builder.add_root_certificate(cert);
            }
        }
        let connector = builder
            .build()
            .map_err(|e| LockError::invalid(format!("cannot set up TLS (native-tls): {e}")))?;
        Ok(PgTls::Native(postgres_native_tls::MakeTlsConnector::new(
            connector,
        )))
    }

    #[cfg(all(feature = "rustls", not(feature = "native-tls")))]
    fn connector(mode: PgSslMode, roots: &Roots) -> Result<PgTls, LockError> {
        use super::verify::{Check, client_config};
        let check = match mode {
            PgSslMode::Disable | PgSslMode::Prefer | PgSslMode::Require => Check::Nothing,
            PgSslMode::VerifyCa => Check::Chain,
            PgSslMode::VerifyFull => Check::ChainAndName,
        };
        let config = client_config(check, roots, "sslrootcert")?;
        Ok(PgTls::Rustls(super::pg_rustls::MakeRustls::new(config)))
    }

    #[cfg(not(any(feature = "rustls", feature = "native-tls")))]
    fn connector(mode: PgSslMode, _roots: &Roots) -> Result<PgTls, LockError> {
        if mode == PgSslMode::Prefer {
            return Ok(PgTls::Plain);
        }
        Err(LockError::invalid(format!(
            "the PostgreSQL URL asks for TLS (`sslmode={}`), but lock-store-database was \
             compiled without the `rustls` and `native-tls` features",
            match mode {
                PgSslMode::Require => "require",
                PgSslMode::VerifyCa => "verify-ca",
                _ => "verify-full",
            }
        )))
    }

    /// Ask the server to cancel the statement running on `token`'s connection, over
    /// TLS as that connection was.
    pub(crate) async fn cancel(&self, token: CancelToken) {
        let _ = match self {
            PgTls::Plain => token.cancel_query(NoTls).await,
            #[cfg(all(feature = "rustls", not(feature = "native-tls")))]
            PgTls::Rustls(tls) => token.cancel_query(tls.clone()).await,
            #[cfg(feature = "native-tls")]
            PgTls::Native(tls) => token.cancel_query(tls.clone()).await,
        };
    }
}

impl Connect for PgTls {
    type Conn = AsyncPgConnection;

    /// The URL for tokio-postgres and the connector its `sslmode` and `sslrootcert` ask
    /// for (reading the root file). Errors are `InvalidArgument`.
    fn for_url(url: &str, _options: &DatabaseStoreOptions) -> Result<(String, PgTls), LockError> {
        let params = params::postgres(url)?;
        let tls = match params.mode {
            PgSslMode::Disable => PgTls::Plain,
            mode => Self::connector(mode, &params.roots)?,
        };
        Ok((params.driver_url, tls))
    }

    /// Open a connection to `url` (the driver's URL from [`for_url`](Self::for_url)),
    /// as diesel-async's own `establish` does, but keeping the cause of a failure:
    /// tokio-postgres's `Display` of a failed connect is only "error connecting to
    /// server" (the cause, such as "connection refused" or the certificate's fault, is
    /// its `source`), and diesel-async keeps only that text.
    fn connect<'a>(&'a self, url: &'a str) -> BoxFuture<'a, ConnectionResult<AsyncPgConnection>> {
        Box::pin(async move {
            match self {
                PgTls::Plain => establish(url, NoTls).await,
                #[cfg(all(feature = "rustls", not(feature = "native-tls")))]
                PgTls::Rustls(tls) => establish(url, tls.clone()).await,
                #[cfg(feature = "native-tls")]
                PgTls::Native(tls) => establish(url, tls.clone()).await,
            }
        })
    }
}

async fn establish<T>(url: &str, tls: T) -> ConnectionResult<AsyncPgConnection>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: TlsStream + Unpin + Send + 'static,
{
    let (client, connection) = tokio_postgres::connect(url, tls)
        .await
        .map_err(|error| ConnectionError::BadConnection(super::with_causes(&error)))?;
    AsyncPgConnection::try_from_client_and_connection(client, connection).await
}
