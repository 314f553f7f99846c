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
    /// Skip with a reason, e.g. `"redis unreachable at redis://127.0.0.1:6379: …"`.
    pub fn new(reason: impl Display) -> Self {
        Skip {
            reason: reason.to_string(),
        }
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

/// Report an unreachable server: prints one `skipped: …` line, or panics when
/// `LOCK_REQUIRE_SERVICES=1`. Call it and return from the test.
///
/// The line goes straight to the process's standard error, past the test harness's
/// output capture, so that `cargo test` shows which tests did not run.
///
/// ```no_run
/// # async fn connect() -> Result<(), String> { Ok(()) }
/// # async fn test() {
/// let Ok(conn) = connect().await else {
///     return lock_testkit::services::skip_or_fail("redis unreachable");
/// };
/// # }
/// ```
pub fn skip_or_fail(reason: impl Display) {
    if services_required() {
        panic!("LOCK_REQUIRE_SERVICES=1 but the service is unavailable: {reason}");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "skipped: {reason}");
}
