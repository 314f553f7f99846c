//! The store on a real 3-node Redis Cluster of private `redis-server` processes.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{PrivateRedis, free_port, unique};
use lock_core::LockStore;
use lock_store_redis::{RedisStore, RedisStoreOptions};

const TTL: Option<Duration> = Some(Duration::from_secs(30));

/// Start three cluster-enabled servers and join them; `None` after `skip_or_fail`.
async fn start_cluster() -> Option<Vec<PrivateRedis>> {
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let node = PrivateRedis::start_on(
            free_port(),
            &["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"],
        )
        .await?;
        nodes.push(node);
    }
    let url = format!(
        "redis-cluster://127.0.0.1:{}?node=127.0.0.1:{}&node=127.0.0.1:{}",
        nodes[0].port, nodes[1].port, nodes[2].port
    );
    let unreachable =
        |cause: String| lock_testkit::services::skip_unreachable("redis cluster", &url, cause);
    let mut create = Command::new("redis-cli");
    create.arg("--cluster").arg("create");
    for node in &nodes {
        create.arg(format!("127.0.0.1:{}", node.port));
    }
    let output = match create
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            unreachable(format!("redis-cli: {e}"));
            return None;
        }
    };
    if !output.status.success() {
        unreachable(format!(
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout).trim()
        ));
        return None;
    }
    // Wait until every node agrees the cluster is up.
    let deadline = Instant::now() + Duration::from_secs(10);
    for node in &nodes {
        loop {
            let info = Command::new("redis-cli")
                .args(["-p", &node.port.to_string(), "cluster", "info"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            if info.contains("cluster_state:ok") {
                break;
            }
            if Instant::now() > deadline {
                unreachable("no cluster_state:ok within 10 s".to_owned());
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Some(nodes)
}

#[tokio::test]
async fn cluster_runs_every_operation_and_mints_increasing_tokens() {
    let started = Instant::now();
    let Some(nodes) = start_cluster().await else {
        return;
    };
    println!("3-node cluster up in {:?}", started.elapsed());
    let url = format!(
        "redis-cluster://127.0.0.1:{}?node=127.0.0.1:{}&node=127.0.0.1:{}",
        nodes[0].port, nodes[1].port, nodes[2].port
    );
    let store = RedisStore::connect(RedisStoreOptions::from_url(url.clone()))
        .await
        .unwrap();
    let second = RedisStore::connect(RedisStoreOptions::from_url(url))
        .await
        .unwrap();

    // Enough keys to land on every node; the lock and its counter share a slot.
    let mut last_token = 0;
    for i in 0..30 {
        let key = format!("{}.{i}", unique("cluster"));
        let got = store.try_acquire(&key, "a", TTL).await.unwrap();
        assert!(got.acquired, "{key}");
        let token = got.fencing_token.expect("token");
        let denied = second.try_acquire(&key, "b", TTL).await.unwrap();
        assert!(
            !denied.acquired && denied.holder_expires_in.is_some(),
            "{key}: {denied:?}"
        );
        assert!(second.exists(&key).await.unwrap());
        assert!(second.delete(&key, "b").await.unwrap_err().is_not_owned());
        store
            .extend(&key, "a", Duration::from_secs(10))
            .await
            .unwrap();
        store.delete(&key, "a").await.unwrap();
        let again = second.try_acquire(&key, "b", TTL).await.unwrap();
        assert!(
            again.fencing_token.expect("token") > token,
            "{key}: token must increase"
        );
        store.force_delete(&key).await.unwrap();
        assert!(!store.exists(&key).await.unwrap());
        last_token = last_token.max(token);
    }
    assert!(last_token >= 1);

    // Release notification across the cluster bus.
    let key = unique("cluster-notify");
    assert!(second.save(&key, "h", TTL).await.unwrap());
    let first = store.release_listener(&key).unwrap();
    tokio::time::timeout(Duration::from_secs(5), first)
        .await
        .expect("subscribed");
    let listener = store.release_listener(&key).unwrap();
    // A waiter is denied first: that is what makes the release publish.
    assert!(!store.try_acquire(&key, "w", TTL).await.unwrap().acquired);
    second.delete(&key, "h").await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), listener)
        .await
        .expect("a release on the cluster wakes a listener of another store");

    // NOSCRIPT on every primary is recovered.
    for node in &nodes {
        let _ = Command::new("redis-cli")
            .args(["-p", &node.port.to_string(), "script", "flush"])
            .output();
    }
    let key = unique("cluster-noscript");
    assert!(store.save(&key, "a", TTL).await.unwrap());
    store.delete(&key, "a").await.unwrap();
}
