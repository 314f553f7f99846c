//! MySQL / MariaDB connections with the URL's `ssl-mode` and `ssl-ca` (mysql_async's
//! `SslOpts`, with rustls).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use diesel::{ConnectionError, ConnectionResult};
use diesel_async::AsyncMysqlConnection;
use lock_core::LockError;

use crate::options::DatabaseStoreOptions;
use mysql_async::{Opts, OptsBuilder, SslOpts};

use super::params::{self, MySslMode};
use crate::sql::{BoxFuture, Connect};

/// How connections to one MySQL server are secured.
#[derive(Clone)]
pub(crate) struct MysqlTls {
    mode: Option<MySslMode>,
    /// The `ssl-ca` file's content, read when the store is built.
    ca: Option<Arc<Vec<u8>>>,
    /// `PREFERRED` found the server without TLS: later connections go plain at once.
    server_lacks_tls: Arc<AtomicBool>,
}

impl MysqlTls {
    /// mysql_async's TLS options for the mode (`None`: no TLS).
    fn ssl_opts(&self, mode: MySslMode) -> Option<SslOpts> {
        let opts = SslOpts::default();
        let opts = match mode {
            MySslMode::Disabled => return None,
            MySslMode::Preferred if !cfg!(feature = "rustls") => return None,
            MySslMode::Preferred | MySslMode::Required => opts
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
            MySslMode::VerifyCa => opts.with_danger_skip_domain_validation(true),
            MySslMode::VerifyIdentity => opts,
        };
        Some(match &self.ca {
            Some(pem) => opts
                .with_root_certs(vec![pem.to_vec().into()])
                .with_disable_built_in_roots(true),
            None => opts,
        })
    }
}

impl Connect for MysqlTls {
    type Conn = AsyncMysqlConnection;

    /// The URL for mysql_async and the TLS settings its `ssl-mode` and `ssl-ca` ask for
    /// (reading the CA file). Errors are `InvalidArgument`.
    fn for_url(
        url: &str,
        _options: &DatabaseStoreOptions,
    ) -> Result<(String, MysqlTls), LockError> {
        let params = params::mysql(url)?;
        if cfg!(not(feature = "rustls")) {
            if let Some(
                mode @ (MySslMode::Required | MySslMode::VerifyCa | MySslMode::VerifyIdentity),
            ) = params.mode
            {
                return Err(LockError::invalid(format!(
                    "the MySQL URL asks for TLS (`ssl-mode={mode:?}`), but lock-store-database \
                     was compiled without the `rustls` feature (MySQL TLS uses rustls)"
                )));
            }
        }
        let ca = match &params.ca {
            Some(path) => {
                let pem = super::read_ca_file(path, "ssl-ca")?;
                if super::pem_blocks(&pem).is_empty() {
                    return Err(LockError::invalid(format!(
                        "the URL parameter `ssl-ca` names {}, which holds no PEM certificate",
                        path.display()
                    )));
                }
                Some(Arc::new(pem))
            }
            None => None,
        };
        let tls = MysqlTls {
            mode: params.mode,
            ca,
            server_lacks_tls: Arc::new(AtomicBool::new(false)),
        };
        Ok((params.driver_url, tls))
    }

    /// Open a connection to `url` (the driver's URL from [`for_url`](Self::for_url))
    /// as diesel-async's `establish` does (its found-rows mode included), with these
    /// TLS settings.
    fn connect<'a>(
        &'a self,
        url: &'a str,
    ) -> BoxFuture<'a, ConnectionResult<AsyncMysqlConnection>> {
        Box::pin(async move {
            let opts = Opts::from_url(url)
                .map_err(|e| ConnectionError::InvalidConnectionUrl(e.to_string()))?;
            // The store counts matched rows, as diesel-async's own connections do.
            let builder = OptsBuilder::from_opts(opts)
                .stmt_cache_size(0)
                .client_found_rows(true);
            let conn = match self.mode {
                None => mysql_async::Conn::new(builder).await,
                Some(MySslMode::Preferred) if !self.server_lacks_tls.load(Ordering::Relaxed) => {
                    let with_tls = builder
                        .clone()
                        .ssl_opts(self.ssl_opts(MySslMode::Preferred));
                    match mysql_async::Conn::new(with_tls).await {
                        Err(mysql_async::Error::Driver(
                            mysql_async::DriverError::NoClientSslFlagFromServer,
                        )) => {
                            self.server_lacks_tls.store(true, Ordering::Relaxed);
                            mysql_async::Conn::new(builder.ssl_opts(None)).await
                        }
                        other => other,
                    }
                }
                Some(MySslMode::Preferred) => mysql_async::Conn::new(builder.ssl_opts(None)).await,
                Some(mode) => {
                    let builder = builder.ssl_opts(self.ssl_opts(mode));
                    // A connection asked to be encrypted must not move to the server's Unix
                    // socket, which mysql_async does for a local server and never encrypts.
                    let builder = if mode == MySslMode::Disabled {
                        builder
                    } else {
                        builder.prefer_socket(false)
                    };
                    mysql_async::Conn::new(builder).await
                }
            }
            .map_err(|error| ConnectionError::BadConnection(super::with_causes(&error)))?;
            AsyncMysqlConnection::try_from(conn).await
        })
    }
}
