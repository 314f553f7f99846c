//! The whole conformance suite against the Redis at `LOCK_REDIS_URL`.

use std::time::Duration;

use lock_store_redis::{RedisStore, RedisStoreOptions};
use lock_testkit::services::redis_url;

lock_testkit::store_tests!(redis, capabilities: [release_notification, fencing_tokens, holder_ttl, permits], service: || async {
    let url = redis_url();
    RedisStore::connect(RedisStoreOptions::from_url(url.clone()).with_timeout(Duration::from_secs(3)))
        .await
        .map_err(|e| {
            lock_testkit::Skip::unreachable("redis", &url, lock_testkit::services::root_cause(&e))
        })
});

// Again with one operation in flight at a time, so that every case with concurrent
// operations runs them through batch scripts.
lock_testkit::store_tests!(redis_batched, capabilities: [release_notification, fencing_tokens, holder_ttl, permits], service: || async {
    let url = redis_url();
    RedisStore::connect(
        RedisStoreOptions::from_url(url.clone())
            .with_timeout(Duration::from_secs(3))
            .with_max_in_flight(1),
    )
    .await
    .map_err(|e| {
        lock_testkit::Skip::unreachable("redis", &url, lock_testkit::services::root_cause(&e))
    })
});
