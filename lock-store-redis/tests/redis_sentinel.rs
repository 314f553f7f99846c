//! The store behind a real Redis Sentinel: a private `redis-server` primary and a
//! `redis-server --sentinel` monitoring it, both started by the test.

mod common;

use std::time::{Duration, Instant};

use common::process::redis_server;
use common::{PrivateRedis, free_port, temp_dir, unique};
use fred::prelude::*;
use lock_core::{LockFactory, LockStore};
use lock_store_redis::{RedisStore, RedisStoreOptions};

const TTL: Option<Duration> = Some(Duration::from_secs(30));

#[tokio::test]
async fn a_primary_behind_a_sentinel_serves_every_operation_and_release_notification() {
    let Some(primary) = PrivateRedis::start(&[]).await else {
        return;
    };
    let sentinel_port = free_port();
    let url = format!("redis-sentinel://127.0.0.1:{sentinel_port}/0?sentinelServiceName=locks");
    let dir = temp_dir("sentinel");
    let config = dir.join("sentinel.conf");
    std::fs::write(
        &config,
        format!(
            "port {sentinel_port}\nbind 127.0.0.1\ndir {}\n\
             sentinel monitor locks 127.0.0.1 {} 1\n\
             sentinel down-after-milliseconds locks 60000\n",
            dir.display(),
            primary.port
        ),
    )
    .expect("write the sentinel configuration");
    let args = [config.as_os_str(), "--sentinel".as_ref()];
    let Some(_sentinel) = redis_server("redis sentinel", &url, args) else {
        return;
    };

    // The sentinel answers once it listens and has looked at the primary.
    let deadline = Instant::now() + Duration::from_secs(10);
    let store = loop {
        match RedisStore::connect(
            RedisStoreOptions::from_url(url.clone()).with_timeout(Duration::from_secs(2)),
        )
        .await
        {
            Ok(store) => break store,
            Err(e) if Instant::now() > deadline => {
                return lock_testkit::services::skip_unreachable(
                    "redis sentinel",
                    &url,
                    format!(
                        "no primary within 10 s: {}",
                        lock_testkit::services::root_cause(&e)
                    ),
                );
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    assert_eq!(store.endpoint(), url);

    // Every operation, on the primary the sentinel named.
    let key = unique("sentinel");
    let first = store.try_acquire(&key, "o1", TTL).await.unwrap();
    assert!(first.acquired);
    assert!(!store.save(&key, "o2", TTL).await.unwrap());
    assert!(store.exists(&key).await.unwrap());
    store
        .extend(&key, "o1", Duration::from_secs(60))
        .await
        .unwrap();
    let direct = Builder::from_config(Config::from_url(&primary.url()).unwrap())
        .build()
        .unwrap();
    direct.init().await.expect("connect to the primary");
    let holder: Option<String> = direct.get(store.redis_key(&key)).await.unwrap();
    assert_eq!(
        holder.as_deref(),
        Some("o1"),
        "the lock lives on the primary"
    );
    store.delete(&key, "o1").await.unwrap();
    let second = store.try_acquire(&key, "o2", TTL).await.unwrap();
    assert!(
        second.fencing_token > first.fencing_token,
        "{second:?} after {first:?}"
    );
    store.force_delete(&key).await.unwrap();

    // Release notification: the subscriber also finds the primary through the sentinel.
    let locks = LockFactory::new(store.clone());
    let holder = locks.create_lock(&key).unwrap();
    assert!(holder.acquire_immediately().await.unwrap());
    common::assert_release_wakes_a_waiter(&locks, holder, &key).await;
    drop(direct);
    let _ = std::fs::remove_dir_all(dir);
}
