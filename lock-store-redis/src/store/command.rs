//! Running one script or command: one attempt, bounded by the operation timeout, the
//! script body sent again only on `NOSCRIPT`; fred's errors and the scripts' replies read
//! into [`LockError`]s and [`Acquisition`]s.

use std::time::Duration;

use fred::error::Error as FredError;
use fred::interfaces::{ClientLike, LuaInterface};
use fred::types::Value;
use fred::types::config::Options;
use fred::types::scripts::Script;
use lock_core::{Acquisition, LockError};

use super::RedisStore;

fn storage(error: FredError) -> LockError {
    LockError::Storage(cause(error))
}

/// A fred error as the cause of a storage error. fred keeps only the `Debug` text of an
/// I/O or TLS failure (`IO Error: Os { code: 111, kind: ConnectionRefused, … }`,
/// `IO Error: Custom { kind: InvalidData, error: InvalidCertificate(UnknownIssuer) }`,
/// `TLS Error: Ssl(Error { … }, X509VerifyResult { … })`): such a text becomes an
/// `io::Error` again (`Connection refused (os error 111)`, its kind checkable) or a
/// [`TlsError`] in words (`TLS handshake failed: invalid peer certificate: UnknownIssuer`);
/// any other error stays fred's.
pub(crate) fn cause(error: FredError) -> lock_core::BoxError {
    if *error.kind() == fred::error::ErrorKind::IO {
        if let Some(io) = io_error(error.details()) {
            return Box::new(io);
        }
    }
    // `ErrorKind::Tls` exists only when fred is built with TLS (perhaps by another crate).
    if error.kind().to_str() == "TLS Error" {
        if let Some(tls) = native_tls_error(error.details()) {
            return Box::new(tls);
        }
    }
    Box::new(error)
}

/// The `io::Error` whose `Debug` is `details`: an OS error code, a kind alone, a kind with
/// a message, or a kind with an inner error (rustls' errors are read into words).
fn io_error(details: &str) -> Option<std::io::Error> {
    use std::io::Error;
    if let Some((_, rest)) = details.split_once("Os { code: ") {
        let code = rest.split(|c: char| !c.is_ascii_digit()).next()?;
        return code.parse().ok().map(Error::from_raw_os_error);
    }
    if let Some(kind) = details
        .strip_prefix("Kind(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        return Some(Error::from(io_kind(kind)));
    }
    let kind = details
        .split_once("kind: ")
        .map(|(_, rest)| io_kind(rest.split([',', ' ', '}']).next().unwrap_or("")))
        .unwrap_or(std::io::ErrorKind::Other);
    if let Some((_, rest)) = details
        .split_once("error: \"")
        .or_else(|| details.split_once("message: \""))
    {
        let (message, _) = rest.split_once('"')?;
        return Some(Error::new(kind, message.to_owned()));
    }
    // `Custom { kind: InvalidData, error: InvalidCertificate(UnknownIssuer) }`: the inner
    // error is rustls' (the one other inner error fred's connections produce).
    let inner = details
        .strip_prefix("Custom {")?
        .split_once("error: ")?
        .1
        .trim_end()
        .strip_suffix('}')?
        .trim_end();
    let tls = rustls_error(inner).unwrap_or_else(|| TlsError {
        words: format!("{kind}: {}", leading_name(inner)),
        handshake: false,
    });
    Some(Error::new(kind, tls))
}

/// An `io::ErrorKind` from its `Debug` name (`Other` for a name not listed).
fn io_kind(name: &str) -> std::io::ErrorKind {
    use std::io::ErrorKind::*;
    match name {
        "NotFound" => NotFound,
        "PermissionDenied" => PermissionDenied,
        "ConnectionRefused" => ConnectionRefused,
        "ConnectionReset" => ConnectionReset,
        "ConnectionAborted" => ConnectionAborted,
        "HostUnreachable" => HostUnreachable,
        "NetworkUnreachable" => NetworkUnreachable,
        "NotConnected" => NotConnected,
        "AddrInUse" => AddrInUse,
        "AddrNotAvailable" => AddrNotAvailable,
        "NetworkDown" => NetworkDown,
        "BrokenPipe" => BrokenPipe,
        "AlreadyExists" => AlreadyExists,
        "WouldBlock" => WouldBlock,
        "InvalidInput" => InvalidInput,
        "InvalidData" => InvalidData,
        "TimedOut" => TimedOut,
        "WriteZero" => WriteZero,
        "Interrupted" => Interrupted,
        "Unsupported" => Unsupported,
        "UnexpectedEof" => UnexpectedEof,
        "OutOfMemory" => OutOfMemory,
        _ => Other,
    }
}

/// A TLS failure in words, read from the `Debug` text fred kept of it.
#[derive(Debug)]
pub(crate) struct TlsError {
    words: String,
    /// Whether the failure can only happen in a handshake.
    handshake: bool,
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.handshake {
            write!(f, "TLS handshake failed: {}", self.words)
        } else {
            write!(f, "TLS error: {}", self.words)
        }
    }
}

impl std::error::Error for TlsError {}

/// rustls' error whose `Debug` is `debug`, in the words of its `Display`
/// (`InvalidCertificate(UnknownIssuer)` is `invalid peer certificate: UnknownIssuer`).
fn rustls_error(debug: &str) -> Option<TlsError> {
    let (variant, arg) = match debug.split_once(['(', ' ']) {
        Some((variant, rest)) => (variant, parenthesized(rest).unwrap_or(rest)),
        None => (debug, ""),
    };
    let arg = leading_name(arg);
    let (words, handshake) = match variant {
        "InvalidCertificate" => (format!("invalid peer certificate: {arg}"), true),
        "AlertReceived" => (format!("received fatal alert: {arg}"), true),
        "PeerIncompatible" => (format!("peer is incompatible: {arg}"), true),
        "PeerMisbehaved" => (format!("peer misbehaved: {arg}"), true),
        "NoCertificatesPresented" => ("peer sent no certificates".to_owned(), true),
        "UnsupportedNameType" => (
            "presented server name type wasn't supported".to_owned(),
            true,
        ),
        "InappropriateHandshakeMessage" => {
            ("received unexpected handshake message".to_owned(), true)
        }
        "InappropriateMessage" => ("received unexpected message".to_owned(), false),
        "InvalidMessage" => (format!("received corrupt message of type {arg}"), false),
        "DecryptError" => ("cannot decrypt peer's message".to_owned(), false),
        "PeerSentOversizedRecord" => ("peer sent excess record size".to_owned(), false),
        "HandshakeNotComplete" => ("handshake not complete".to_owned(), false),
        "General" => (format!("unexpected error: {arg}"), false),
        "Other" => (format!("other error: {arg}"), false),
        _ => return None,
    };
    Some(TlsError { words, handshake })
}

/// The name that says what a `Debug` text is: a quoted string unquoted, wrappers such as
/// `Other(OtherError(…))` removed, a struct's name without its fields and without
/// rustls' `Context` suffix (`NotValidForNameContext { … }` is `NotValidForName`).
fn leading_name(debug: &str) -> &str {
    let mut text = debug.trim();
    while let Some((wrapper, rest)) = text.split_once('(') {
        if wrapper.contains([' ', '{', '"']) {
            break;
        }
        text = parenthesized(rest).unwrap_or(rest).trim();
    }
    if let Some(quoted) = text.strip_prefix('"') {
        return quoted.split('"').next().unwrap_or(quoted);
    }
    let name = text.split([' ', '{', ',', ')']).next().unwrap_or(text);
    if name.len() > "Context".len() {
        name.strip_suffix("Context").unwrap_or(name)
    } else {
        name
    }
}

/// The text before the `)` that closes a parenthesis opened just before `text`
/// (parentheses and braces nest; quoted strings are skipped).
fn parenthesized(text: &str) -> Option<&str> {
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ if quoted => {}
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' if depth > 0 => depth -= 1,
            ')' => return Some(&text[..at]),
            _ => {}
        }
    }
    None
}

/// native-tls' error whose `Debug` is `debug`, in words: OpenSSL's reasons and the
/// certificate verification result (`certificate verify failed (self-signed certificate)`).
fn native_tls_error(debug: &str) -> Option<TlsError> {
    let quoted_after = |text: &str, marker: &str| -> Vec<String> {
        text.split(marker)
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let mut reasons = quoted_after(debug, "reason: \"");
    reasons.dedup();
    let verify = debug
        .split_once("X509VerifyResult { code: ")
        .filter(|(_, rest)| !rest.starts_with("0,"))
        .and_then(|(_, rest)| quoted_after(rest, "error: \"").into_iter().next());
    let handshake = debug.starts_with("Ssl(");
    let mut words = if !reasons.is_empty() {
        reasons.join("; ")
    } else if let Some((_, io)) = debug.split_once("Io(") {
        io_error(parenthesized(io)?)?.to_string()
    } else if debug.contains("ErrorCode(5)") || debug.contains("ErrorCode(6)") {
        "the server closed the connection".to_owned()
    } else {
        verify.clone()?
    };
    if let Some(verify) = verify.filter(|v| *v != words) {
        words = format!("{words} ({verify})");
    }
    Some(TlsError { words, handshake })
}

/// The time an operation may still take, at least 1 ms (fred's timeout of 0 is none).
fn at_least_a_millisecond(left: Duration) -> Duration {
    left.max(Duration::from_millis(1))
}

/// Whole milliseconds, rounded up (a validated duration: 1 ms to `MAX_TTL`, so it fits).
pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

impl RedisStore {
    /// `EVALSHA`; on `NOSCRIPT`, `SCRIPT LOAD` (on every primary, so later calls are one
    /// `EVALSHA` again) and then `EVAL` of the body, which cannot answer `NOSCRIPT` even if
    /// the cache is flushed again in between. Every command gets one attempt.
    /// (fred's `Script::evalsha_with_reload` cannot take per-command options.)
    ///
    /// `call` gives the keys and arguments; it runs again only on `NOSCRIPT`, so the
    /// common path builds them once and copies nothing. The whole operation, reload
    /// included, is bounded by the operation timeout.
    pub(super) async fn eval<R>(
        &self,
        script: &Script,
        call: impl Fn() -> (Vec<String>, Vec<Value>),
    ) -> Result<R, LockError>
    where
        R: fred::types::FromValue,
    {
        self.eval_within(script, None, call).await
    }

    /// [`Self::eval`] with `left` of the operation timeout instead of all of it (`None`).
    pub(super) async fn eval_within<R>(
        &self,
        script: &Script,
        left: Option<Duration>,
        call: impl Fn() -> (Vec<String>, Vec<Value>),
    ) -> Result<R, LockError>
    where
        R: fred::types::FromValue,
    {
        let started = tokio::time::Instant::now();
        let timeout = left.unwrap_or(self.inner.timeout);
        let shorter;
        let options = match left {
            None => &self.inner.options,
            Some(left) => {
                shorter = Options {
                    timeout: Some(at_least_a_millisecond(left)),
                    ..self.inner.options.clone()
                };
                &shorter
            }
        };
        let (keys, args) = call();
        let client = self.client().with_options(options);
        let command = client.evalsha(script.sha1().clone(), keys, Value::Array(args));
        // The common case, one command: on the store's own connection, fred's per-command
        // timeout (in `options`) is the operation timeout, so no second timer is armed. On
        // a client or pool the application gave, fred may hold the command back, outside
        // its timeout, while a blocking command of the application (`BLPOP` …) has the
        // connection: there a timer bounds the whole wait.
        let result = if self.inner.owned {
            command.await
        } else {
            match tokio::time::timeout(timeout, command).await {
                Ok(result) => result,
                Err(_) => return Err(self.timed_out()),
            }
        };
        let error = match result {
            Err(error) if error.details().starts_with("NOSCRIPT") => error,
            result => return result.map_err(|e| self.context(self.command_error(e))),
        };
        let Some(lua) = script.lua() else {
            return Err(storage(error));
        };
        // Reload, then send the body: both within what is left of the operation timeout.
        let left = timeout.saturating_sub(started.elapsed());
        let options = Options {
            timeout: Some(at_least_a_millisecond(left)),
            ..self.inner.options.clone()
        };
        let client = self.client().with_options(&options);
        let reload = async {
            client
                .script_load_cluster::<(), _>(lua.clone())
                .await
                .map_err(storage)?;
            let (keys, args) = call();
            client
                .eval(lua.clone(), keys, Value::Array(args))
                .await
                .map_err(storage)
        };
        within_result(left, reload)
            .await
            .map_err(|error| self.context(error))
    }

    /// The error of an operation that ran out of its operation timeout.
    pub(super) fn timed_out(&self) -> LockError {
        self.context(LockError::storage_msg(format!(
            "redis operation timed out after {:?}",
            self.inner.timeout
        )))
    }

    /// A failed command as a storage error; a timeout says which operation timeout ran out.
    fn command_error(&self, error: FredError) -> LockError {
        if *error.kind() == fred::error::ErrorKind::Timeout {
            LockError::storage_msg(format!(
                "redis operation timed out after {:?}",
                self.inner.timeout
            ))
        } else {
            storage(error)
        }
    }

    /// The reply of an acquire script (a mutex's or a permit key's) as an [`Acquisition`]:
    /// a token (tokens start at 1), or a denial: `-1` = the holder's lock never expires,
    /// `-2 - n` = the earliest holder expires in `n` ms. `script` names it in the error
    /// for any other reply.
    pub(super) fn acquisition(&self, reply: i64, script: &str) -> Result<Acquisition, LockError> {
        Ok(match reply {
            token @ 1.. => Acquisition::acquired_with_token(token.unsigned_abs()),
            -1 => Acquisition::denied(None),
            denied @ ..=-2 => {
                Acquisition::denied(Some(Duration::from_millis((-2 - denied).unsigned_abs())))
            }
            0 => {
                return Err(self.context(LockError::storage_msg(format!(
                    "unexpected reply 0 from the redis {script} script"
                ))));
            }
        })
    }
}

/// The reply of an owner-checked script (release, extend): `1` when `owner` held the
/// key, anything else [`LockError::NotOwned`].
pub(super) fn owned(reply: i64) -> Result<(), LockError> {
    if reply == 1 {
        Ok(())
    } else {
        Err(LockError::NotOwned)
    }
}

/// A whole number of milliseconds as a Redis integer argument (validated durations fit).
pub(super) fn int(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Bound a fred future by the operation timeout.
pub(super) async fn within<T>(
    timeout: Duration,
    future: impl Future<Output = Result<T, FredError>>,
) -> Result<T, LockError> {
    within_result(timeout, async { future.await.map_err(storage) }).await
}

async fn within_result<T>(
    timeout: Duration,
    future: impl Future<Output = Result<T, LockError>>,
) -> Result<T, LockError> {
    match tokio::time::timeout(timeout, future).await {
        Ok(result) => result,
        Err(_) => Err(LockError::storage_msg(format!(
            "redis operation timed out after {timeout:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fred_io_errors_become_io_errors_again() {
        let refused = FredError::new(
            fred::error::ErrorKind::IO,
            r#"Os { code: 111, kind: ConnectionRefused, message: "Connection refused" }"#,
        );
        let refused = cause(refused);
        let io = refused
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
        let custom = FredError::new(
            fred::error::ErrorKind::IO,
            r#"Custom { kind: Other, error: "tls handshake eof" }"#,
        );
        assert_eq!(cause_text(custom), "tls handshake eof");
        let auth = FredError::new(fred::error::ErrorKind::Auth, "WRONGPASS invalid password");
        let auth = cause(auth);
        assert!(auth.is::<FredError>(), "{auth}");
    }

    #[test]
    fn rustls_certificate_faults_are_told_in_words() {
        for (details, words) in [
            (
                "Custom { kind: InvalidData, error: InvalidCertificate(UnknownIssuer) }",
                "TLS handshake failed: invalid peer certificate: UnknownIssuer",
            ),
            (
                "Custom { kind: InvalidData, error: \
                 InvalidCertificate(Other(OtherError(CaUsedAsEndEntity))) }",
                "TLS handshake failed: invalid peer certificate: CaUsedAsEndEntity",
            ),
            (
                "Custom { kind: InvalidData, error: InvalidCertificate(NotValidForNameContext \
                 { expected: IpAddress(V4(Ipv4Addr([127, 0, 0, 1]))), presented: \
                 [\"DnsName(\\\"localhost\\\")\"] }) }",
                "TLS handshake failed: invalid peer certificate: NotValidForName",
            ),
            (
                "Custom { kind: InvalidData, error: AlertReceived(HandshakeFailure) }",
                "TLS handshake failed: received fatal alert: HandshakeFailure",
            ),
            (
                "Custom { kind: InvalidData, error: InvalidMessage(InvalidContentType) }",
                "TLS error: received corrupt message of type InvalidContentType",
            ),
            (
                "Custom { kind: InvalidData, error: SomethingNew { field: 1 } }",
                "TLS error: invalid data: SomethingNew",
            ),
        ] {
            let error = cause(FredError::new(fred::error::ErrorKind::IO, details));
            assert_eq!(error.to_string(), words, "{details}");
            let io = error
                .downcast_ref::<std::io::Error>()
                .expect("an io::Error");
            assert_eq!(io.kind(), std::io::ErrorKind::InvalidData);
            assert!(
                io.get_ref().is_some_and(|e| e.is::<TlsError>()),
                "{details}"
            );
        }
    }

    #[test]
    fn native_tls_certificate_faults_are_told_in_words() {
        let details = r#"Ssl(Error { code: ErrorCode(1), cause: Some(Ssl(ErrorStack([Error { code: 167772294, library: "SSL routines", function: "tls_post_process_server_certificate", reason: "certificate verify failed", file: "../ssl/statem/statem_clnt.c", line: 1889 }]))) }, X509VerifyResult { code: 19, error: "self-signed certificate in certificate chain" })"#;
        let error = native_tls_error(details).expect("words");
        assert_eq!(
            error.to_string(),
            "TLS handshake failed: certificate verify failed \
             (self-signed certificate in certificate chain)"
        );
        #[cfg(any(feature = "rustls", feature = "native-tls"))]
        assert!(cause(FredError::new(fred::error::ErrorKind::Tls, details)).is::<TlsError>());
        let eof = r#"Ssl(Error { code: ErrorCode(5), cause: Some(Io(Kind(UnexpectedEof))) }, X509VerifyResult { code: 0, error: "ok" })"#;
        let error = native_tls_error(eof).expect("words");
        assert_eq!(
            error.to_string(),
            format!(
                "TLS handshake failed: {}",
                std::io::Error::from(std::io::ErrorKind::UnexpectedEof)
            )
        );
    }

    #[test]
    fn io_errors_keep_their_kind() {
        let eof = cause(FredError::new(
            fred::error::ErrorKind::IO,
            "Kind(UnexpectedEof)",
        ));
        let io = eof.downcast_ref::<std::io::Error>().expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof);
        let message = cause(FredError::new(
            fred::error::ErrorKind::IO,
            r#"Custom { kind: ConnectionReset, error: "peer closed" }"#,
        ));
        let io = message
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionReset);
        assert_eq!(io.to_string(), "peer closed");
    }

    fn cause_text(error: FredError) -> String {
        cause(error).to_string()
    }
}
