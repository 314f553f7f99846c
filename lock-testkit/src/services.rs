//! How tests reach the servers (see the README): URLs from the environment, and the
//! skip-or-fail rule of `LOCK_REQUIRE_SERVICES`.

use std::fmt::Display;

/// `LOCK_REDIS_URL`, default `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    env_or("LOCK_REDIS_URL", "redis://127.0.0.1:6379")
}

/// `LOCK_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`.
pub fn postgres_url() -> String {
    env_or(
        "LOCK_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    )
}

/// `LOCK_MYSQL_URL`, default `mysql://root@127.0.0.1:3306/test`.
pub fn mysql_url() -> String {
    env_or("LOCK_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
}

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// Whether `LOCK_REQUIRE_SERVICES=1`: an unreachable server then fails the test
/// instead of skipping it.
pub fn services_required() -> bool {
    std::env::var("LOCK_REQUIRE_SERVICES").is_ok_and(|v| v == "1" || v == "true")
}

/// A test cannot run because its server is unreachable.
#[derive(Debug, Clone)]
pub struct Skip {
    reason: String,
}

impl Skip {
    /// Skip with a reason. For an unreachable server prefer [`Skip::unreachable`], so
    /// that every skip line words it the same way.
    pub fn new(reason: impl Display) -> Self {
        Skip {
            reason: reason.to_string(),
        }
    }

    /// `<service> unreachable at <redacted url>: <cause>`.
    pub fn unreachable(service: &str, url: &str, cause: impl Display) -> Self {
        Skip::new(format!(
            "{service} unreachable at {}: {cause}",
            redact_url(url)
        ))
    }

    /// The reason.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Report an unreachable server: prints one
/// `skipped: <test> — <service> unreachable at <redacted url>: <cause>` line, or panics
/// when `LOCK_REQUIRE_SERVICES=1`. Call it and return from the test.
///
/// ```no_run
/// # async fn connect(url: &str) -> Result<(), String> { Ok(()) }
/// # async fn test() {
/// let url = lock_testkit::services::redis_url();
/// let Ok(conn) = connect(&url).await else {
///     return lock_testkit::services::skip_unreachable("redis", &url, "connection refused");
/// };
/// # }
/// ```
pub fn skip_unreachable(service: &str, url: &str, cause: impl Display) {
    skip_or_fail(Skip::unreachable(service, url, cause));
}

/// Report a test that cannot run: prints one `skipped: <test> — <reason>` line, or panics
/// when `LOCK_REQUIRE_SERVICES=1`. Call it and return from the test. For an
/// unreachable server, [`skip_unreachable`] words the reason.
///
/// `<test>` is the name of the current thread, which is the test's path under the
/// standard test harness. The line is written whole, with one write, straight to the
/// process's standard error: past the test harness's output capture (so that
/// `cargo test` shows which tests did not run), so no other output splits it. (The
/// harness writes `test <name> ... ` to standard output before a test's result; where
/// both streams meet on one terminal, a skip line of another test can follow that on the
/// same line — the skip line itself stays whole.)
pub fn skip_or_fail(reason: impl Display) {
    let test = current_test_name();
    if services_required() {
        panic!("LOCK_REQUIRE_SERVICES=1 but {test} cannot run: {reason}");
    }
    write_skip(&mut std::io::stderr().lock(), &test, &reason);
}

/// The test running on this thread: the thread's name (the test's path under libtest).
pub fn current_test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned()
}

/// `skipped: <test> — <reason>` and a newline.
pub fn skip_line(test: &str, reason: &dyn Display) -> String {
    format!("skipped: {test} — {reason}\n")
}

/// The skip line, with one `write_all`: an unbuffered stream given formatting
/// arguments would receive one write per piece, which other threads' output can split.
pub(crate) fn write_skip(out: &mut impl std::io::Write, test: &str, reason: &dyn Display) {
    let _ = out.write_all(skip_line(test, reason).as_bytes());
    let _ = out.flush();
}

pub use lock_core::redact_url;

/// The innermost cause of `error` (the last of its `source` chain), for the `<cause>` of
/// a skip line: the line already names the service and the URL that a store error
/// repeats (`lock store failed: cannot connect to the redis lock store at …`).
///
/// ```
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
/// let err = lock_core::LockError::connect_failed("redis", "redis://127.0.0.1:1", io);
/// assert_eq!(lock_testkit::services::root_cause(&err), "connection refused");
/// ```
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    // A lock error's message shows its causes, so its `source` chain may be empty: start
    // from the driver's error it keeps.
    let mut innermost: &(dyn std::error::Error + 'static) =
        match error.downcast_ref::<lock_core::LockError>() {
            Some(lock @ lock_core::LockError::Storage(cause)) => match lock.store_error() {
                Some(context) => context.cause(),
                None => &**cause,
            },
            _ => error,
        };
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}

/// A loopback port that is free now, and whose Redis Cluster bus port (+10 000) is free
/// too; `None` if none was found. Both lie below 32 768, where Linux's default range of
/// ephemeral ports (32 768–60 999) begins: a port in that range, free when checked, can be
/// taken by any outgoing connection before the server binds it (a test suite makes many).
pub fn free_port() -> Option<u16> {
    for _ in 0..200 {
        let mut bytes = [0u8; 2];
        getrandom::fill(&mut bytes).ok()?;
        let port = 10_000 + u16::from_le_bytes(bytes) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
        {
            return Some(port);
        }
    }
    None
}

/// A `redis-server` child process of the test on a loopback port, for fault tests that
/// must stop a server (never the shared one). Killed when dropped.
#[derive(Debug)]
pub struct PrivateRedis {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    child: Option<std::process::Child>,
    extra: Vec<String>,
    dir: std::path::PathBuf,
}

impl PrivateRedis {
    /// Start a server on a free port with `extra` arguments; `None` after
    /// [`skip_or_fail`] when `redis-server` cannot be started.
    pub async fn start(extra: &[&str]) -> Option<PrivateRedis> {
        match free_port() {
            Some(port) => Self::start_on(port, extra).await,
            None => {
                skip_unreachable(
                    "private redis-server",
                    "redis://127.0.0.1",
                    "no free loopback port",
                );
                None
            }
        }
    }

    /// Start a server on `port`.
    pub async fn start_on(port: u16, extra: &[&str]) -> Option<PrivateRedis> {
        let mut suffix = [0u8; 8];
        let _ = getrandom::fill(&mut suffix);
        let dir = std::env::temp_dir().join(format!(
            "lock-testkit-redis-{port}-{:016x}",
            u64::from_le_bytes(suffix)
        ));
        let mut server = PrivateRedis {
            port,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            dir,
        };
        match server.spawn().await {
            Ok(()) => Some(server),
            Err(reason) => {
                skip_unreachable("private redis-server", &server.url(), reason);
                None
            }
        }
    }

    async fn spawn(&mut self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Err(format!(
            "redis-server on port {} did not listen within 5 s",
            self.port
        ))
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kill the server (SIGKILL) and wait for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port (empty: no persistence).
    pub async fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.spawn().await
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_line_names_test_service_redacted_url_and_cause() {
        let skip = Skip::unreachable("redis", "redis://u:hunter2@127.0.0.1:1", "refused");
        assert_eq!(
            skip_line("conformance::acquires", &skip),
            "skipped: conformance::acquires — redis unreachable at redis://u:***@127.0.0.1:1: refused\n"
        );
    }

    #[test]
    fn the_test_name_is_the_thread_name() {
        assert_eq!(
            current_test_name(),
            "services::tests::the_test_name_is_the_thread_name"
        );
    }

    /// Counts the `write` calls it receives.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);

    impl std::io::Write for Writes {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_skip_line_is_one_write() {
        let mut out = Writes::default();
        let skip = Skip::unreachable("postgres", "postgres://db", "down");
        write_skip(&mut out, "t", &skip);
        let line = skip_line("t", &skip);
        assert_eq!(
            out.0,
            vec![line.into_bytes()],
            "the line must reach the stream whole"
        );
    }
}
