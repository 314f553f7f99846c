//! Helpers shared by the Redis store's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use lock_store_redis::{RedisStore, RedisStoreOptions};

pub mod process;

#[allow(unused_imports)]
pub use lock_testkit::services::{redis_url, skip_or_fail};

/// A random suffix so parallel tests never share a key.
pub fn unique(name: &str) -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random bytes");
    format!("test.{name}.{:016x}", u64::from_le_bytes(bytes))
}

/// A store on the shared Redis, or `None` (after printing `skipped: …`) when unreachable.
pub async fn shared_store() -> Option<RedisStore> {
    shared_store_with(|o| o).await
}

/// Like [`shared_store`], with options adjusted by `f`.
pub async fn shared_store_with(
    f: impl FnOnce(RedisStoreOptions) -> RedisStoreOptions,
) -> Option<RedisStore> {
    let url = redis_url();
    let options = f(RedisStoreOptions::from_url(url.clone()).with_timeout(Duration::from_secs(3)));
    match RedisStore::connect(options).await {
        Ok(store) => Some(store),
        Err(error) => {
            lock_testkit::services::skip_unreachable(
                "redis",
                &url,
                lock_testkit::services::root_cause(&error),
            );
            None
        }
    }
}

/// A loopback port that is free now (its cluster bus port, +10 000, too).
pub fn free_port() -> u16 {
    lock_testkit::services::free_port().expect("a free loopback port")
}

/// A fresh temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

#[allow(unused_imports)]
pub use lock_testkit::services::PrivateRedis;

/// A waiter on `key` (held by `holder`, of `locks`) wakes on the holder's release, long
/// before its 30 s retry delay: the store's release notification reaches it.
pub async fn assert_release_wakes_a_waiter(
    locks: &lock_core::LockFactory,
    holder: lock_core::Lock,
    key: &str,
) {
    let waiter = locks.create_lock(key).unwrap();
    let waiting = tokio::spawn(async move {
        let retry = lock_core::RetryConfig::default()
            .delay(Duration::from_secs(30))
            .timeout(Duration::from_secs(10));
        let started = std::time::Instant::now();
        let acquired = waiter.acquire_with(retry).await.unwrap();
        waiter.release().await.unwrap();
        (acquired, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    holder.release().await.unwrap();
    let (acquired, waited) = waiting.await.unwrap();
    assert!(acquired);
    assert!(
        waited < Duration::from_secs(5),
        "the waiter slept {waited:?}: the release was not notified"
    );
}
