//! Two app instances on two ports, sharing Redis: concurrent requests for one order are
//! processed exactly once; the others get 409.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use examples::http::{AppState, post_to, serve};
use lock_core::{LockConfig, LockManager};
use lock_store_redis::{RedisStore, RedisStoreOptions};
use lock_testkit::services::{redis_url, skip_unreachable};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_process_an_order_once() {
    let mut states = Vec::new();
    for name in ["instance-a", "instance-b"] {
        let store = match RedisStore::connect(RedisStoreOptions::from_url(redis_url())).await {
            Ok(s) => s,
            Err(e) => {
                return skip_unreachable(
                    "redis",
                    &redis_url(),
                    lock_testkit::services::root_cause(&e),
                );
            }
        };
        let locks = LockManager::new(
            LockConfig::new()
                .default_store("redis")
                .store("redis", lock_core::StoreFactory::from_store(store)),
        )
        .unwrap();
        states.push(AppState {
            locks,
            instance: name,
            processed: Arc::new(AtomicUsize::new(0)),
        });
    }
    let a = serve(states[0].clone()).await.unwrap();
    let b = serve(states[1].clone()).await.unwrap();
    let order = format!("/orders/{}/process", std::process::id() as u64 * 1000 + 7);
    let mut handles = Vec::new();
    for addr in [a, b, a, b, a, b] {
        let order = order.clone();
        handles.push(tokio::spawn(async move { post_to(addr, &order).await }));
    }
    let mut statuses = Vec::new();
    for h in handles {
        statuses.push(h.await.unwrap().unwrap().0);
    }
    statuses.sort();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 409).count(),
        5,
        "{statuses:?}"
    );
    let processed: usize = states
        .iter()
        .map(|s| s.processed.load(Ordering::SeqCst))
        .sum();
    assert_eq!(processed, 1);
    // Released after processing: the next request processes it again.
    assert_eq!(post_to(b, &order).await.unwrap().0, 200);
}
