//! Shared pieces of the examples: the lock configuration an application would keep in
//! its `config/lock.rs`, built from the environment.

use lock_core::{LockConfig, LockError, LockManager};
use lock_store_database::{DatabaseStoreOptions, database};
use lock_store_memory::memory;
use lock_store_redis::{RedisStoreOptions, redis};

/// The seed's `config/lock.ts`: three stores, the default chosen by `LOCK_STORE`
/// (`memory` when unset), and the URLs taken from the environment.
///
/// * `redis`: `LOCK_REDIS_URL` (default `redis://127.0.0.1:6379`);
/// * `database`: `LOCK_DATABASE_URL` (default: a SQLite file `locks.sqlite` in the
///   system temp folder, so that several processes on this machine share locks);
/// * `memory`: this process only.
pub fn lock_config() -> LockConfig {
    LockConfig::new()
        .default_store_from_env_or("LOCK_STORE", "memory")
        .store("redis", redis(RedisStoreOptions::from_url(redis_url())))
        .store(
            "database",
            database(DatabaseStoreOptions::new(database_url())),
        )
        .store("memory", memory())
}

/// The lock service of the examples (the seed's `locks`).
pub fn locks() -> Result<LockManager, LockError> {
    LockManager::new(lock_config())
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

/// Log lock events (`RUST_LOG`-style filtering is left to applications).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .try_init();
}

pub mod fs_store;
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
}
