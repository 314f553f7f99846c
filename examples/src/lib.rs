//! Shared pieces of the examples: the lock configuration an application would keep in
//! its `config/lock.rs`, built from the environment; logging set up from `RUST_LOG`; and
//! a `main` error type that prints an error's message and causes.

use std::error::Error;
use std::fmt;

use lock_core::{LockConfig, LockError, LockManager};
#[cfg(feature = "database")]
use lock_store_database::{DatabaseStoreOptions, database};
use lock_store_memory::memory;
#[cfg(feature = "redis")]
use lock_store_redis::{RedisStoreOptions, redis};

/// The seed's `config/lock.ts`: three stores, the default chosen by `LOCK_STORE`
/// (`memory` when unset), and the URLs taken from the environment.
///
/// * `redis` (feature `redis`): `LOCK_REDIS_URL` (default `redis://127.0.0.1:6379`);
/// * `database` (feature `database`): `LOCK_DATABASE_URL` (default: a SQLite file
///   `locks.sqlite` in the system temp folder, so that several processes on this
///   machine share locks);
/// * `memory`: this process only.
pub fn lock_config() -> LockConfig {
    let config = LockConfig::new().default_store_from_env_or("LOCK_STORE", "memory");
    #[cfg(feature = "redis")]
    let config = config.store("redis", redis(RedisStoreOptions::from_url(redis_url())));
    #[cfg(feature = "database")]
    let config = config.store(
        "database",
        database(DatabaseStoreOptions::new(database_url())),
    );
    config.store("memory", memory())
}

/// The lock service of the examples (the seed's `locks`).
pub fn locks() -> Result<LockManager, LockError> {
    locks_with(lock_config())
}

/// The lock service of `config`. A store of the examples that this build leaves out
/// (`LOCK_STORE=redis` without the `redis` feature) is an error that says how to build it.
pub fn locks_with(config: LockConfig) -> Result<LockManager, LockError> {
    LockManager::new(config).map_err(|error| match &error {
        LockError::UnknownStore { name, .. } if ["redis", "database"].contains(&name.as_str()) => {
            LockError::invalid(format!(
                "{error}: the {name} store is a feature of the examples, \
                 run with `--features {name}`"
            ))
        }
        _ => error,
    })
}

/// `LOCK_REDIS_URL`, or a Redis server on this machine.
pub fn redis_url() -> String {
    env_or("LOCK_REDIS_URL", || "redis://127.0.0.1:6379".to_owned())
}

/// `LOCK_DATABASE_URL`, or a SQLite file shared by the processes of this machine.
pub fn database_url() -> String {
    env_or("LOCK_DATABASE_URL", || {
        let path = std::env::temp_dir().join("atomic-locks-examples.sqlite");
        format!("sqlite://{}", path.display())
    })
}

/// The variable `name`, or `default()` when it is unset or empty.
fn env_or(name: &str, default: impl FnOnce() -> String) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(default)
}

/// Log lock events to standard error, filtered by `RUST_LOG` (default `info`: store
/// errors and lost locks; `RUST_LOG=lock_core=debug` adds every acquire and release).
/// The drivers' `log` records (fred's) become events too.
pub fn init_tracing() {
    init_tracing_or("info");
}

/// [`init_tracing`] with another filter when `RUST_LOG` is unset.
pub fn init_tracing_or(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// The error of an example's `main`: any error, printed as its message and then each
/// cause that the message does not already include (not as `Debug`, which is what a
/// `main` returning `Result` prints).
///
/// ```
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
/// let report = examples::Report::from(lock_core::LockError::store_failed(
///     "redis",
///     "redis://127.0.0.1:6379",
///     io,
/// ));
/// assert_eq!(
///     format!("{report:?}"),
///     "lock store failed: redis lock store at redis://127.0.0.1:6379: connection refused"
/// );
/// ```
pub struct Report(Box<dyn Error>);

impl<E: Into<Box<dyn Error>>> From<E> for Report {
    fn from(error: E) -> Self {
        Report(error.into())
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.0.to_string();
        write!(f, "{message}")?;
        let causes = std::iter::successors(self.0.source(), |e| (*e).source())
            .map(|cause| cause.to_string())
            .filter(|cause| !message.contains(cause.as_str()));
        for (n, cause) in causes.enumerate() {
            if n == 0 {
                write!(f, "\n\nCaused by:")?;
            }
            write!(f, "\n    {cause}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The README of each published crate (what crates.io shows): its code blocks are
/// compiled and run as doctests here, where every crate is a dependency.
#[cfg(all(doctest, feature = "full"))]
mod readmes {
    #[doc = include_str!("../../lock-core/README.md")]
    mod lock_core {}
    #[doc = include_str!("../../lock-store-memory/README.md")]
    mod lock_store_memory {}
    #[doc = include_str!("../../lock-store-redis/README.md")]
    mod lock_store_redis {}
    #[doc = include_str!("../../lock-store-database/README.md")]
    mod lock_store_database {}
    #[doc = include_str!("../../lock-testkit/README.md")]
    mod testkit {}
}

pub mod fs_store;
#[cfg(feature = "http")]
pub mod http;

#[cfg(test)]
mod tests {
    /// The configuration above is what applications copy: it must build on the
    /// library crates alone, not on the test kit.
    #[test]
    fn app_configuration_does_not_use_the_test_kit() {
        let testkit = concat!("lock_", "testkit");
        for (file, source) in [
            ("lib.rs", include_str!("lib.rs")),
            ("http.rs", include_str!("http.rs")),
        ] {
            assert!(!source.contains(testkit), "{file} uses {testkit}");
        }
    }

    /// An error whose message leaves its cause out.
    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("cannot load the orders")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    /// `main` prints the report's `Debug`: the message, then the causes it lacks.
    #[test]
    fn a_report_shows_the_message_and_the_missing_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "orders.json is missing");
        let report = super::Report::from(Outer(io));
        assert_eq!(
            format!("{report:?}"),
            "cannot load the orders\n\nCaused by:\n    orders.json is missing"
        );
    }
}
