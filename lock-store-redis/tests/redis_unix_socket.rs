//! The store on a `redis-server` listening on a Unix socket only (feature
//! `unix-sockets`), started by the test.
#![cfg(all(unix, feature = "unix-sockets"))]

mod common;

use std::time::{Duration, Instant};

use common::process::redis_server;
use common::{temp_dir, unique};
use lock_core::{LockFactory, LockStore};
use lock_store_redis::{RedisStore, RedisStoreOptions};

const TTL: Option<Duration> = Some(Duration::from_secs(30));

#[tokio::test]
async fn a_server_on_a_unix_socket_serves_every_operation_and_release_notification() {
    let dir = temp_dir("unix");
    let socket = dir.join("redis.sock");
    let url = format!("unix://{}", socket.display());
    let args: [&std::ffi::OsStr; 10] = [
        "--port".as_ref(),
        "0".as_ref(),
        "--unixsocket".as_ref(),
        socket.as_os_str(),
        "--save".as_ref(),
        "".as_ref(),
        "--appendonly".as_ref(),
        "no".as_ref(),
        "--dir".as_ref(),
        dir.as_os_str(),
    ];
    let Some(_server) = redis_server("redis", &url, args) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !socket.exists() {
        if Instant::now() > deadline {
            return lock_testkit::services::skip_unreachable(
                "redis",
                &url,
                "redis-server did not create the socket within 5 s",
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    for url in [
        url.clone(),
        format!("redis+unix://{}", socket.display()),
        format!("valkey+unix://{}", socket.display()),
    ] {
        let store = RedisStore::connect(RedisStoreOptions::from_url(url.clone()))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(store.endpoint(), url);
        let key = unique("unix");
        let acquired = store.try_acquire(&key, "o1", TTL).await.unwrap();
        assert!(acquired.acquired, "{url}");
        assert!(acquired.fencing_token.is_some(), "{url}");
        assert!(!store.save(&key, "o2", TTL).await.unwrap(), "{url}");
        assert!(store.exists(&key).await.unwrap(), "{url}");
        store
            .extend(&key, "o1", Duration::from_secs(60))
            .await
            .unwrap();
        store.delete(&key, "o1").await.unwrap();
        assert!(!store.exists(&key).await.unwrap(), "{url}");
    }

    // Release notification over the socket.
    let store = RedisStore::connect(RedisStoreOptions::from_url(url))
        .await
        .unwrap();
    let locks = LockFactory::new(store);
    let key = unique("unix.notify");
    let holder = locks.create_lock(&key).unwrap();
    assert!(holder.acquire_immediately().await.unwrap());
    common::assert_release_wakes_a_waiter(&locks, holder, &key).await;
    let _ = std::fs::remove_dir_all(dir);
}
