//! rustls client configurations for the three levels of checking the modes ask for:
//! none (encryption only), the chain, the chain and the host name. The crypto
//! provider is ring, chosen here rather than taken from the process default, so that
//! an application whose dependencies enable a second provider still builds a config.

use std::path::Path;
use std::sync::Arc;

use lock_core::LockError;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::params::Roots;

/// What the server's certificate must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Nothing (libpq's `require`, MySQL's `REQUIRED`): encrypted, not authenticated.
    Nothing,
    /// A chain to a trusted root, whatever host it names (`verify-ca`, `VERIFY_CA`).
    Chain,
    /// A chain to a trusted root, naming the host (`verify-full`, `VERIFY_IDENTITY`).
    ChainAndName,
}

/// A client configuration that checks the server as `check` says, against `roots`.
/// `param` names the URL parameter that gave the root file, for errors.
pub(crate) fn client_config(
    check: Check,
    roots: &Roots,
    param: &str,
) -> Result<ClientConfig, LockError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| LockError::invalid(format!("cannot set up TLS (rustls): {e}")))?;
    let algorithms = provider.signature_verification_algorithms;
    let chain = match check {
        Check::Nothing => None,
        Check::Chain | Check::ChainAndName => {
            let store = root_store(roots, param)?;
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
                .build()
                .map_err(|e| {
                    LockError::invalid(format!("cannot verify server certificates: {e}"))
                })?;
            Some(webpki)
        }
    };
    let config = match (check, chain) {
        (Check::ChainAndName, Some(webpki)) => builder.with_webpki_verifier(webpki),
        (_, chain) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Lenient { chain, algorithms })),
    };
    Ok(config.with_no_client_auth())
}

/// The trusted roots: the system's, or the certificates of a PEM file.
fn root_store(roots: &Roots, param: &str) -> Result<RootCertStore, LockError> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::debug!(%error, "a system root certificate could not be loaded");
            }
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(LockError::invalid(format!(
                    "no trusted root certificates found on this system: name a CA file with \
                     the URL parameter `{param}`"
                )));
            }
        }
        Roots::File(path) => {
            for cert in pem_certificates(path, param)? {
                store.add(cert).map_err(|e| {
                    LockError::invalid(format!(
                        "the URL parameter `{param}` names {}: a certificate in it is not a \
                         usable root: {e}",
                        path.display()
                    ))
                })?;
            }
        }
    }
    Ok(store)
}

/// The certificates of a PEM file; none, or an unreadable file, is `InvalidArgument`.
fn pem_certificates(path: &Path, param: &str) -> Result<Vec<CertificateDer<'static>>, LockError> {
    let bytes = super::read_ca_file(path, param)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            LockError::invalid(format!(
                "the URL parameter `{param}` names {}, which is not a PEM file: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(LockError::invalid(format!(
            "the URL parameter `{param}` names {}, which holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// The checks of the modes short of the full one: no certificate check at all
/// (`chain: None`), or webpki's full check less the host name (webpki checks the
/// chain first and the name last, so a name mismatch means the chain was good). The
/// handshake signatures are always checked, with the certificate's own key and the
/// provider's algorithms (as webpki's verifier does), so the session is encrypted to
/// whoever holds that key.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
