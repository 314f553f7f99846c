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

/// A fred error as the cause of a storage error. fred words an I/O failure as the
/// `Debug` of the `io::Error` (`IO Error: Os { code: 111, kind: ConnectionRefused, … }`)
/// and keeps nothing else of it: that becomes the `io::Error` again (`Connection refused
/// (os error 111)`, its kind checkable), any other error stays fred's.
pub(crate) fn cause(error: FredError) -> lock_core::BoxError {
    if *error.kind() == fred::error::ErrorKind::IO {
        if let Some(io) = io_error(error.details()) {
            return Box::new(io);
        }
    }
    Box::new(error)
}

/// The `io::Error` whose `Debug` is `details`, when it names an OS error code or a
/// message.
fn io_error(details: &str) -> Option<std::io::Error> {
    if let Some((_, rest)) = details.split_once("Os { code: ") {
        let code = rest.split(|c: char| !c.is_ascii_digit()).next()?;
        return code.parse().ok().map(std::io::Error::from_raw_os_error);
    }
    let (_, rest) = details
        .split_once("error: \"")
        .or_else(|| details.split_once("message: \""))?;
    let (message, _) = rest.split_once('"')?;
    Some(std::io::Error::other(message.to_owned()))
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
        let started = tokio::time::Instant::now();
        let timeout = self.inner.timeout;
        let (keys, args) = call();
        // The common case, one command: fred's per-command timeout (in `options`) is the
        // operation timeout, so no second timer is armed around it.
        let error = match self
            .client()
            .with_options(&self.inner.options)
            .evalsha(script.sha1().clone(), keys, Value::Array(args))
            .await
        {
            Err(error) if error.details().starts_with("NOSCRIPT") => error,
            result => return result.map_err(|e| self.context(self.command_error(e))),
        };
        let Some(lua) = script.lua() else {
            return Err(storage(error));
        };
        // Reload, then send the body: both within what is left of the operation timeout.
        let left = timeout.saturating_sub(started.elapsed());
        let options = Options {
            timeout: Some(left.max(Duration::from_millis(1))),
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

    fn cause_text(error: FredError) -> String {
        cause(error).to_string()
    }
}
