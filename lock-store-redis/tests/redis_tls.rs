//! `rediss://` failures told in words: a server certificate the client does not trust (a
//! private `redis-server` with TLS and a certificate made by `openssl`), and a TLS client
//! talking to a server that does not speak TLS.
#![cfg(any(feature = "rustls", feature = "native-tls"))]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{PrivateRedis, free_port, skip_or_fail, temp_dir};
use lock_core::LockError;
use lock_store_redis::{RedisStore, RedisStoreOptions};
use tokio::net::TcpListener;

async fn connect_error(url: &str, timeout: Duration) -> LockError {
    let options = RedisStoreOptions::from_url(url).with_timeout(timeout);
    match RedisStore::connect(options).await {
        Ok(_) => panic!("{url}: connected"),
        Err(error) => error,
    }
}

/// A CA and a certificate it signed for `localhost`, in `dir`; `Err` when `openssl` fails.
fn make_certificates(dir: &Path) -> Result<(), String> {
    let run = |args: &[&str]| -> Result<(), String> {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("openssl: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("openssl {}: {status}", args.join(" ")))
        }
    };
    std::fs::write(dir.join("ext"), "subjectAltName=DNS:localhost\n").map_err(|e| e.to_string())?;
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=lock test CA",
    ])?;
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ])?;
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext",
    ])
}

#[tokio::test]
async fn an_untrusted_server_certificate_is_told_in_words() {
    let dir = temp_dir("tls");
    if let Err(reason) = make_certificates(&dir) {
        skip_or_fail(reason);
        return;
    }
    let tls_port = free_port().to_string();
    let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let (cert, key, ca) = (file("server.crt"), file("server.key"), file("ca.crt"));
    let Some(_server) = PrivateRedis::start(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
    ])
    .await
    else {
        return;
    };
    // The private server's plain port listens; the TLS port too unless redis-server was
    // built without TLS.
    if tokio::net::TcpStream::connect(("127.0.0.1", tls_port.parse::<u16>().unwrap()))
        .await
        .is_err()
    {
        skip_or_fail("redis-server does not listen on its --tls-port (built without TLS?)");
        return;
    }

    let error = connect_error(
        &format!("rediss://localhost:{tls_port}"),
        Duration::from_secs(3),
    )
    .await;
    assert!(matches!(error, LockError::Storage(_)), "{error:?}");
    let text = error.to_string();
    // rustls: "invalid peer certificate: UnknownIssuer"; native-tls: "certificate verify
    // failed (self-signed certificate in certificate chain)".
    assert!(
        text.contains(": TLS handshake failed: ") && text.contains("certificate"),
        "{text}"
    );
    for dump in [
        "Custom {",
        "Ssl(",
        "ErrorCode",
        "kind:",
        "IO Error",
        "TLS Error",
    ] {
        assert!(!text.contains(dump), "a Debug dump in {text}");
    }
}

#[tokio::test]
async fn a_tls_url_to_a_server_that_never_answers_the_handshake_asks_whether_it_speaks_tls() {
    // A server that accepts connections and never writes, like a plain Redis reading a
    // TLS ClientHello as the start of an inline command.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let error = connect_error(
        &format!("rediss://127.0.0.1:{port}"),
        Duration::from_millis(500),
    )
    .await;
    server.abort();
    assert!(matches!(error, LockError::Storage(_)), "{error:?}");
    assert!(
        error.to_string().ends_with(
            "no connection within the operation timeout of 500ms (is the server speaking TLS?)"
        ),
        "{error}"
    );
}
