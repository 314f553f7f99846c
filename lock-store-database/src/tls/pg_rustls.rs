//! tokio-postgres over rustls: the connector (a rustls client configuration per store)
//! and the stream, which offers SCRAM channel binding (`tls-server-end-point`, the hash
//! of the server's certificate, RFC 5929) so that `SCRAM-SHA-256-PLUS` works.
//!
//! Written here rather than taken from a crate so that the `rustls` feature compiles
//! tokio-postgres only for PostgreSQL, and no X.509 parser: the one field needed, the
//! certificate's signature algorithm, is read with a few lines of DER.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::Socket;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_rustls::TlsConnector;

/// Makes a TLS connector per host, all sharing one client configuration.
#[derive(Clone)]
pub(crate) struct MakeRustls {
    config: Arc<ClientConfig>,
}

impl MakeRustls {
    pub(crate) fn new(config: ClientConfig) -> Self {
        MakeRustls {
            config: Arc::new(config),
        }
    }
}

impl MakeTlsConnect<Socket> for MakeRustls {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> io::Result<RustlsConnect> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsConnect {
            name,
            connector: TlsConnector::from(self.config.clone()),
        })
    }
}

/// The TLS handshake with one host.
pub(crate) struct RustlsConnect {
    name: ServerName<'static>,
    connector: TlsConnector,
}

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let stream = self.connector.connect(self.name, stream).await?;
            Ok(RustlsStream(stream))
        })
    }
}

/// A TLS connection to the server.
pub(crate) struct RustlsStream(tokio_rustls::client::TlsStream<Socket>);

impl TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        session
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|cert| tls_server_end_point(cert))
            .map_or_else(ChannelBinding::none, ChannelBinding::tls_server_end_point)
    }
}

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// RFC 5929's `tls-server-end-point`: the certificate hashed with its signature's hash
/// (SHA-1 and MD5 raised to SHA-256). `None` for algorithms without one (Ed25519,
/// RSA-PSS, whose hash sits in parameters): the channel then offers no binding.
fn tls_server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    use ring::digest::{SHA256, SHA384, SHA512, digest};
    // The DER of the OIDs (after the tag and length).
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    let oid = signature_algorithm(cert)?;
    let algorithm = match oid.split_last()? {
        // md5 (4), sha1 (5), sha256 (11) WithRSAEncryption; ecdsa-with-SHA256 (2).
        (4 | 5 | 11, RSA) | (2, ECDSA) => &SHA256,
        (12, RSA) | (3, ECDSA) => &SHA384,
        (13, RSA) | (4, ECDSA) => &SHA512,
        _ => return None,
    };
    Some(digest(algorithm, cert).as_ref().to_vec())
}

/// The OID of `signatureAlgorithm` in `Certificate ::= SEQUENCE { tbsCertificate,
/// signatureAlgorithm AlgorithmIdentifier, signatureValue }`.
fn signature_algorithm(cert: &[u8]) -> Option<&[u8]> {
    let (certificate, _) = der(cert, 0x30)?;
    let (_, after_tbs) = der(certificate, 0x30)?;
    let (algorithm, _) = der(after_tbs, 0x30)?;
    let (oid, _) = der(algorithm, 0x06)?;
    Some(oid)
}

/// One DER element with tag `tag` at the start of `input`: `(contents, the rest)`.
fn der(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len, mut rest) = rest.split_first()?;
    let len = if len < 0x80 {
        usize::from(len)
    } else {
        let count = usize::from(len & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b))
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal certificate-shaped DER: `SEQUENCE { SEQUENCE {}, SEQUENCE { OID }, BIT
    /// STRING }`, with a long-form length on the outer sequence.
    fn cert_with(oid: &[u8]) -> Vec<u8> {
        let mut algorithm = vec![0x06, oid.len() as u8];
        algorithm.extend_from_slice(oid);
        algorithm.extend_from_slice(&[0x05, 0x00]);
        let mut body = vec![0x30, 0x00, 0x30, algorithm.len() as u8];
        body.extend_from_slice(&algorithm);
        body.extend_from_slice(&[0x03, 0x01, 0x00]);
        let mut cert = vec![0x30, 0x81, body.len() as u8];
        cert.extend_from_slice(&body);
        cert
    }

    #[test]
    fn channel_binding_hashes_the_certificate_with_its_signature_hash() {
        let sha256_rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
        let sha384_ecdsa = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
        let sha1_rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
        let ed25519 = [0x2b, 0x65, 0x70];
        let rsa_pss = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
        for (oid, len) in [(&sha256_rsa[..], Some(32)), (&sha384_ecdsa[..], Some(48))] {
            let cert = cert_with(oid);
            assert_eq!(signature_algorithm(&cert), Some(oid));
            assert_eq!(tls_server_end_point(&cert).map(|h| h.len()), len);
        }
        // SHA-1 is raised to SHA-256 (RFC 5929 §4.1).
        assert_eq!(
            tls_server_end_point(&cert_with(&sha1_rsa)).map(|h| h.len()),
            Some(32)
        );
        assert_eq!(tls_server_end_point(&cert_with(&ed25519)), None);
        assert_eq!(tls_server_end_point(&cert_with(&rsa_pss)), None);
        assert_eq!(tls_server_end_point(b"not der"), None);
        assert_eq!(tls_server_end_point(&[0x30, 0x85, 1, 2, 3, 4, 5]), None);
        assert_eq!(tls_server_end_point(&[]), None);
    }

    /// A real certificate (ECDSA P-384 with SHA-384), against
    /// `openssl x509 -outform der | sha384sum`.
    #[test]
    fn channel_binding_of_a_real_certificate() {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        const PEM: &str = "-----BEGIN CERTIFICATE-----\n\
MIIB0jCCAVigAwIBAgIUB4sDndPp4koMZiCvX3s2Ano1FW8wCgYIKoZIzj0EAwMw\n\
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNzEyNDEzMVoYDzIxMjYxMTAz\n\
MTI0MTMxWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwdjAQBgcqhkjOPQIBBgUrgQQA\n\
IgNiAAS3WdDQ1kJ5QYVh1Vj6dCYLSLnCkT0xAOsrACdKN6Q8j+sdRh9dz1yKI/S5\n\
ijHIXl8NTqdlj3I2Favi9uDGZiy3LJGFZ51mOZlKe6agLzBgdXmEevl2OPmsrzNc\n\
eOao2ySjaTBnMB0GA1UdDgQWBBRTtNOTg/XUbZPcmi0wBJBqY863WTAfBgNVHSME\n\
GDAWgBRTtNOTg/XUbZPcmi0wBJBqY863WTAPBgNVHRMBAf8EBTADAQH/MBQGA1Ud\n\
EQQNMAuCCWxvY2FsaG9zdDAKBggqhkjOPQQDAwNoADBlAjEAuaB9n1wk2ZCb2v8I\n\
dTTYjyI4tudVeOohGyQ54ARZWtTEpdHSuNy94kKBtGN2J6WJAjAUGAh5j0LNyANv\n\
VSH6pD334kEQA2kdUouFF9or9rmHyA6VRhw7XuK06XZ6Y7QBG/k=\n\
-----END CERTIFICATE-----\n";
        let cert = CertificateDer::from_pem_slice(PEM.as_bytes()).unwrap();
        let hash: String = tls_server_end_point(&cert)
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hash,
            "99774ffb1e0a872afaed3c92d58943f4951de6eb16a7995d365c68833b092923f2e9e31dc2ab093898f2810bdaf8b075"
        );
    }
}
