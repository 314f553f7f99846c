//! Redis-specific behaviour of `RedisStore` against the Redis at `LOCK_REDIS_URL`.

mod common;

use std::time::{Duration, Instant};

use common::{redis_url, shared_store, shared_store_with, unique};
use fred::prelude::*;
use lock_core::{LockError, LockStore};
use lock_store_redis::{RedisStore, RedisStoreOptions, redis};

const TTL: Option<Duration> = Some(Duration::from_secs(30));

/// A plain fred client on the shared Redis, to look behind the store's back.
async fn raw_client() -> Client {
    let client = Builder::from_config(Config::from_url(&redis_url()).expect("url"))
        .build()
        .expect("client");
    client.init().await.expect("connect raw client");
    client
}

#[tokio::test]
async fn save_delete_exists_extend_follow_the_contract() {
    let Some(store) = shared_store().await else {
        return;
    };
    let key = unique("contract");
    assert!(!store.exists(&key).await.unwrap());
    assert!(
        store.save(&key, "a", TTL).await.unwrap(),
        "free key must be acquired"
    );
    assert!(!store.save(&key, "a", TTL).await.unwrap(), "not re-entrant");
    assert!(!store.save(&key, "b", TTL).await.unwrap(), "held by a");
    assert!(store.exists(&key).await.unwrap());
    assert!(store.delete(&key, "b").await.unwrap_err().is_not_owned());
    assert!(
        store
            .extend(&key, "b", Duration::from_secs(5))
            .await
            .unwrap_err()
            .is_not_owned()
    );
    store
        .extend(&key, "a", Duration::from_secs(5))
        .await
        .unwrap();
    store.delete(&key, "a").await.unwrap();
    assert!(!store.exists(&key).await.unwrap());
    assert!(
        store.delete(&key, "a").await.unwrap_err().is_not_owned(),
        "absent key"
    );
    assert!(
        store
            .extend(&key, "a", Duration::from_secs(5))
            .await
            .unwrap_err()
            .is_not_owned()
    );
    assert!(store.save(&key, "b", TTL).await.unwrap());
    store.force_delete(&key).await.unwrap();
    store.force_delete(&key).await.unwrap();
    assert!(!store.exists(&key).await.unwrap());
    assert_eq!(store.name(), "redis");
    let caps = store.capabilities();
    assert!(caps.release_notification && caps.fencing_tokens && caps.holder_ttl);
}

#[tokio::test]
async fn prefix_is_applied_to_keys_and_channel() {
    let prefix = format!("{}:", unique("prefix"));
    let Some(store) = shared_store_with(|o| o.with_prefix(prefix.clone())).await else {
        return;
    };
    let raw = raw_client().await;
    let token = store
        .try_acquire("orders.1", "owner", TTL)
        .await
        .unwrap()
        .fencing_token
        .expect("a token");
    let value: Option<String> = raw.get(format!("{prefix}{{orders.1}}")).await.unwrap();
    assert_eq!(
        value.as_deref(),
        Some("owner"),
        "lock stored under the prefixed, hash-tagged key"
    );
    let fence: Option<u64> = raw
        .get(format!("{prefix}{{orders.1}}:fence"))
        .await
        .unwrap();
    assert_eq!(fence, Some(token), "fence counter under the prefixed key");
    let unprefixed: i64 = raw.exists("orders.1").await.unwrap();
    assert_eq!(unprefixed, 0);
    assert_eq!(store.release_channel(), format!("{prefix}released"));
    store.delete("orders.1", "owner").await.unwrap();
    let _: i64 = raw
        .del(format!("{prefix}{{orders.1}}:fence"))
        .await
        .unwrap();
}

#[tokio::test]
async fn lock_without_ttl_never_expires_in_redis() {
    let Some(store) = shared_store().await else {
        return;
    };
    let raw = raw_client().await;
    let key = unique("no-ttl");
    assert!(store.save(&key, "o", None).await.unwrap());
    let pttl: i64 = raw.pttl(store.redis_key(&key)).await.unwrap();
    assert_eq!(pttl, -1, "a lock without TTL must have no expiry");
    let denied = store.try_acquire(&key, "p", TTL).await.unwrap();
    assert!(!denied.acquired);
    assert_eq!(denied.holder_expires_in, None, "no expiry to report");
    store.delete(&key, "o").await.unwrap();

    assert!(
        store
            .save(&key, "o", Some(Duration::from_millis(1500)))
            .await
            .unwrap()
    );
    let pttl: i64 = raw.pttl(store.redis_key(&key)).await.unwrap();
    assert!(
        (1..=1500).contains(&pttl),
        "PX set from the TTL, got {pttl}"
    );
    store
        .extend(&key, "o", Duration::from_secs(60))
        .await
        .unwrap();
    let pttl: i64 = raw.pttl(store.redis_key(&key)).await.unwrap();
    assert!(pttl > 50_000, "extend resets the expiry, got {pttl}");
    store.force_delete(&key).await.unwrap();
}

#[tokio::test]
async fn denied_acquire_reports_holder_ttl() {
    let Some(store) = shared_store().await else {
        return;
    };
    let key = unique("holder-ttl");
    let got = store
        .try_acquire(&key, "a", Some(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(got.acquired);
    let denied = store.try_acquire(&key, "b", TTL).await.unwrap();
    assert!(!denied.acquired);
    assert_eq!(denied.fencing_token, None);
    let left = denied.holder_expires_in.expect("holder TTL reported");
    assert!(
        left > Duration::from_secs(8) && left <= Duration::from_secs(10),
        "{left:?}"
    );
    store.force_delete(&key).await.unwrap();
}

#[tokio::test]
async fn lock_expires_by_redis_clock() {
    let Some(store) = shared_store().await else {
        return;
    };
    let key = unique("expiry");
    assert!(
        store
            .save(&key, "a", Some(Duration::from_millis(100)))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!store.exists(&key).await.unwrap());
    assert!(
        store
            .extend(&key, "a", Duration::from_secs(1))
            .await
            .unwrap_err()
            .is_not_owned()
    );
    assert!(
        store.save(&key, "b", TTL).await.unwrap(),
        "expired lock can be taken"
    );
    assert!(
        store.delete(&key, "a").await.unwrap_err().is_not_owned(),
        "a lost it to b"
    );
    store.delete(&key, "b").await.unwrap();
}

#[tokio::test]
async fn noscript_after_script_flush_is_recovered() {
    let Some(store) = shared_store().await else {
        return;
    };
    let raw = raw_client().await;
    let key = unique("noscript");
    assert!(store.save(&key, "a", TTL).await.unwrap());
    let _: () = raw.script_flush(false).await.unwrap();
    // Every script must reload on its own.
    assert!(!store.save(&key, "b", TTL).await.unwrap());
    let _: () = raw.script_flush(false).await.unwrap();
    store
        .extend(&key, "a", Duration::from_secs(10))
        .await
        .unwrap();
    let _: () = raw.script_flush(false).await.unwrap();
    store.delete(&key, "a").await.unwrap();
    assert!(store.save(&key, "a", TTL).await.unwrap());
    let _: () = raw.script_flush(false).await.unwrap();
    store.force_delete(&key).await.unwrap();
    assert!(!store.exists(&key).await.unwrap());
}

#[tokio::test]
async fn fencing_tokens_strictly_increase_across_release_force_release_expiry_and_stores() {
    let Some(first) = shared_store().await else {
        return;
    };
    let Some(second) = shared_store().await else {
        return;
    };
    let key = unique("fence");
    let mut last = 0u64;
    let mut next = |got: lock_core::Acquisition, what: &str| {
        assert!(got.acquired, "{what}: not acquired");
        let token = got.fencing_token.expect("token minted");
        assert!(token > last, "{what}: token {token} not above {last}");
        last = token;
    };
    next(
        first.try_acquire(&key, "a", TTL).await.unwrap(),
        "first acquire",
    );
    first.delete(&key, "a").await.unwrap();
    next(
        second.try_acquire(&key, "b", TTL).await.unwrap(),
        "after release, other store",
    );
    first.force_delete(&key).await.unwrap();
    next(
        first
            .try_acquire(&key, "c", Some(Duration::from_millis(50)))
            .await
            .unwrap(),
        "after force",
    );
    tokio::time::sleep(Duration::from_millis(120)).await;
    next(
        second.try_acquire(&key, "d", TTL).await.unwrap(),
        "after expiry",
    );
    second.delete(&key, "d").await.unwrap();
    for i in 0..20 {
        let store = if i % 2 == 0 { &first } else { &second };
        next(
            store
                .try_acquire(&key, &format!("o{i}"), TTL)
                .await
                .unwrap(),
            "loop",
        );
        store.delete(&key, &format!("o{i}")).await.unwrap();
    }
    let raw = raw_client().await;
    let _: i64 = raw.del(first.fence_key(&key)).await.unwrap();
}

#[tokio::test]
async fn release_notification_wakes_listener_of_another_store_quickly() {
    let Some(waiter) = shared_store().await else {
        return;
    };
    let Some(holder) = shared_store().await else {
        return;
    };
    let key = unique("notify");
    let other = unique("notify-other");
    assert!(holder.save(&key, "h", TTL).await.unwrap());
    assert!(holder.save(&other, "h", TTL).await.unwrap());

    // The first listener starts the subscriber; wait until it is subscribed (it wakes
    // everyone once subscribed, which completes this first listener).
    let first = waiter.release_listener(&key).expect("listener");
    tokio::time::timeout(Duration::from_secs(3), first)
        .await
        .expect("subscriber connects and wakes waiters once subscribed");

    let listener = waiter.release_listener(&key).expect("listener");
    let unrelated = waiter.release_listener(&key).expect("listener");
    drop(unrelated);
    let bystander = waiter.release_listener(&other).expect("listener");
    // Waiters are denied before they wait: that marks the key, so its release publishes.
    assert!(!waiter.try_acquire(&key, "w", TTL).await.unwrap().acquired);
    assert!(!waiter.try_acquire(&other, "w", TTL).await.unwrap().acquired);
    let started = Instant::now();
    holder.delete(&key, "h").await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), listener)
        .await
        .expect("release of the key wakes its listener");
    let latency = started.elapsed();
    println!("release notification latency: {latency:?}");
    assert!(
        latency < Duration::from_millis(100),
        "woken after {latency:?}"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(100), bystander)
            .await
            .is_err(),
        "a release of another key must not wake this listener"
    );

    // Force release notifies too.
    let listener = waiter.release_listener(&other).expect("listener");
    holder.force_delete(&other).await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), listener)
        .await
        .expect("force release wakes the listener");
}

#[tokio::test]
async fn debug_never_shows_the_password() {
    let options = RedisStoreOptions::from_url("redis://user:s3cr3t-pw@127.0.0.1:6379/3");
    let shown = format!("{options:?}");
    assert!(!shown.contains("s3cr3t-pw"), "{shown}");
    assert!(shown.contains("127.0.0.1:6379"), "{shown}");

    let config = Config::from_url("redis://user:s3cr3t-pw@127.0.0.1:6379/3").unwrap();
    let shown = format!("{:?}", RedisStoreOptions::from_config(config.clone()));
    assert!(!shown.contains("s3cr3t-pw"), "{shown}");

    let client = Builder::from_config(config).build().unwrap();
    let store = RedisStore::from_client(client);
    let shown = format!("{store:?}");
    assert!(!shown.contains("s3cr3t-pw"), "{shown}");

    // A store connected with a password (shared Redis has none: use a private one).
    let Some(server) = common::PrivateRedis::start(&["--requirepass", "s3cr3t-pw"]).await else {
        return;
    };
    let url = format!("redis://:s3cr3t-pw@127.0.0.1:{}", server.port);
    let store = RedisStore::connect(RedisStoreOptions::from_url(url))
        .await
        .unwrap();
    let key = unique("auth");
    assert!(
        store.save(&key, "o", TTL).await.unwrap(),
        "password from the URL is used"
    );
    let shown = format!("{store:?}");
    assert!(!shown.contains("s3cr3t-pw"), "{shown}");
    let err = RedisStore::connect(
        RedisStoreOptions::from_url(format!("redis://:wrong-pw@127.0.0.1:{}", server.port))
            .with_timeout(Duration::from_secs(2)),
    )
    .await
    .unwrap_err();
    assert!(err.is_storage(), "{err:?}");
    assert!(!format!("{err:?} {err}").contains("wrong-pw"), "{err:?}");
}

#[tokio::test]
async fn malformed_url_is_invalid_argument_with_a_clear_message() {
    for url in [
        "not a url",
        "redis://:pw@",
        "http//x",
        "redis://host:notaport",
    ] {
        let err = RedisStore::connect(RedisStoreOptions::from_url(url))
            .await
            .unwrap_err();
        let LockError::InvalidArgument(message) = &err else {
            panic!("{url}: expected InvalidArgument, got {err:?}");
        };
        assert!(message.contains("invalid redis URL"), "{message}");
        assert!(!message.contains("pw"), "{message}");
    }
    // Without a TLS feature a TLS URL is refused up front (with one, see redis_tls.rs).
    if !cfg!(any(feature = "rustls", feature = "native-tls")) {
        let err = RedisStore::connect(RedisStoreOptions::from_url("rediss://127.0.0.1:6379"))
            .await
            .unwrap_err();
        assert!(matches!(err, LockError::InvalidArgument(_)), "{err:?}");
    }
    let err = RedisStore::connect(RedisStoreOptions::default().with_prefix("{x}"))
        .await
        .unwrap_err();
    assert!(matches!(err, LockError::InvalidArgument(_)), "{err:?}");
}

#[tokio::test]
async fn empty_key_and_zero_ttl_are_invalid_arguments() {
    let Some(store) = shared_store().await else {
        return;
    };
    let err = store.save("", "o", TTL).await.unwrap_err();
    assert!(matches!(err, LockError::InvalidArgument(_)), "{err:?}");
    let key = unique("zero");
    let err = store
        .save(&key, "o", Some(Duration::ZERO))
        .await
        .unwrap_err();
    assert!(matches!(err, LockError::InvalidArgument(_)), "{err:?}");
    // A sub-millisecond TTL is outside the store contract's domain (it never becomes
    // "never expires"); fractions of a millisecond above it round up.
    let err = store
        .save(&key, "o", Some(Duration::from_micros(10)))
        .await
        .unwrap_err();
    assert!(matches!(err, LockError::InvalidArgument(_)), "{err:?}");
    assert!(
        store
            .save(&key, "o", Some(Duration::from_micros(1_010)))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!store.exists(&key).await.unwrap());
}

#[tokio::test]
async fn unreachable_server_fails_connect_with_storage_within_timeout() {
    let port = common::free_port();
    let started = Instant::now();
    let err = RedisStore::connect(
        RedisStoreOptions::from_url(format!("redis://127.0.0.1:{port}"))
            .with_timeout(Duration::from_millis(500)),
    )
    .await
    .unwrap_err();
    assert!(err.is_storage(), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn shares_an_application_client_and_pool() {
    let Some(_) = shared_store().await else {
        return;
    };
    let client = raw_client().await;
    let store =
        RedisStore::connect(RedisStoreOptions::from_client(client.clone()).with_prefix("app:"))
            .await
            .unwrap();
    let key = unique("shared-client");
    assert!(store.save(&key, "o", TTL).await.unwrap());
    let value: Option<String> = client.get(format!("app:{{{key}}}")).await.unwrap();
    assert_eq!(value.as_deref(), Some("o"));
    drop(store);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ping: String = client.ping(None).await.unwrap();
    assert_eq!(
        ping, "PONG",
        "dropping the store must not close the application's client"
    );

    let pool = Builder::from_config(Config::from_url(&redis_url()).unwrap())
        .build_pool(2)
        .unwrap();
    // Not connected yet: `connect` connects it.
    let store = RedisStore::connect(RedisStoreOptions::from_pool(pool.clone()).with_prefix("app:"))
        .await
        .unwrap();
    assert!(
        !store.save(&key, "p", TTL).await.unwrap(),
        "same lock through the pool"
    );
    store.delete(&key, "o").await.unwrap();
    let _: i64 = client.del(format!("app:{{{key}}}:fence")).await.unwrap();
}

#[tokio::test]
async fn factory_builds_a_working_store() {
    let Some(_) = shared_store().await else {
        return;
    };
    let factory = redis(RedisStoreOptions::from_url(redis_url()));
    let store = factory.build().await.unwrap();
    assert_eq!(store.name(), "redis");
    let key = unique("factory");
    assert!(store.save(&key, "o", TTL).await.unwrap());
    store.delete(&key, "o").await.unwrap();
    let Err(err) = redis(RedisStoreOptions::from_url("::bad::")).build().await else {
        panic!("a malformed URL must not build a store");
    };
    assert!(matches!(err, LockError::InvalidArgument(_)), "{err:?}");
}

#[tokio::test]
async fn many_tasks_on_one_key_never_overlap() {
    let Some(store) = shared_store().await else {
        return;
    };
    let key = unique("overlap");
    let inside = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (store, key, inside, done) = (store.clone(), key.clone(), inside.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let owner = format!("t{t}");
            let mut rounds = 0;
            while rounds < 5 {
                if store.save(&key, &owner, TTL).await.unwrap() {
                    assert_eq!(
                        inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
                        0,
                        "overlap"
                    );
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    store.delete(&key, &owner).await.unwrap();
                    rounds += 1;
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                } else {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 40);
}

/// Every trait method rejects input outside the store contract's domain with
/// `InvalidArgument`, before anything reaches Redis.
#[tokio::test]
async fn trait_input_outside_the_domain_is_invalid_argument() {
    let Some(store) = shared_store().await else {
        return;
    };
    let store: &dyn LockStore = &store;
    let key = unique("domain");
    let long_key = "k".repeat(lock_core::validate::MAX_KEY_LEN + 1);
    let ok_ttl = Some(Duration::from_secs(5));
    let wrong = std::cell::RefCell::new(Vec::new());
    let invalid = |what: &str, result: Result<(), LockError>| match result {
        Err(LockError::InvalidArgument(_)) => {}
        other => wrong.borrow_mut().push(format!("{what}: {other:?}")),
    };
    for bad_key in ["", "a\0b", long_key.as_str()] {
        let name = format!(
            "key {:?} ({} bytes)",
            bad_key.chars().take(8).collect::<String>(),
            bad_key.len()
        );
        invalid(
            &format!("save, {name}"),
            store.save(bad_key, "o", ok_ttl).await.map(drop),
        );
        invalid(
            &format!("try_acquire, {name}"),
            store.try_acquire(bad_key, "o", ok_ttl).await.map(drop),
        );
        invalid(&format!("delete, {name}"), store.delete(bad_key, "o").await);
        invalid(
            &format!("extend, {name}"),
            store.extend(bad_key, "o", Duration::from_secs(1)).await,
        );
        invalid(
            &format!("force_delete, {name}"),
            store.force_delete(bad_key).await,
        );
        invalid(
            &format!("exists, {name}"),
            store.exists(bad_key).await.map(drop),
        );
    }
    for bad_ttl in [
        Duration::ZERO,
        Duration::from_micros(500),
        Duration::from_millis(u64::MAX),
        Duration::MAX,
        lock_core::validate::MAX_TTL + Duration::from_millis(1),
    ] {
        invalid(
            &format!("save, ttl {bad_ttl:?}"),
            store.save(&key, "o", Some(bad_ttl)).await.map(drop),
        );
        invalid(
            &format!("try_acquire, ttl {bad_ttl:?}"),
            store.try_acquire(&key, "o", Some(bad_ttl)).await.map(drop),
        );
    }
    for bad_owner in ["", "a b", "o:1", "é", &"o".repeat(129)] {
        invalid(
            &format!("save, owner {bad_owner:?}"),
            store.save(&key, bad_owner, ok_ttl).await.map(drop),
        );
        invalid(
            &format!("try_acquire, owner {bad_owner:?}"),
            store.try_acquire(&key, bad_owner, ok_ttl).await.map(drop),
        );
        invalid(
            &format!("delete, owner {bad_owner:?}"),
            store.delete(&key, bad_owner).await,
        );
        invalid(
            &format!("extend, owner {bad_owner:?}"),
            store.extend(&key, bad_owner, Duration::from_secs(1)).await,
        );
    }
    if store.exists(&key).await.unwrap() {
        wrong
            .borrow_mut()
            .push("a rejected save took the lock".to_owned());
        store.force_delete(&key).await.unwrap();
    }
    // Held, to show the extension is rejected for what it is, not for the owner.
    assert!(store.save(&key, "o", ok_ttl).await.unwrap());
    for bad_extension in [
        Duration::ZERO,
        Duration::MAX,
        Duration::from_millis(u64::MAX),
    ] {
        invalid(
            &format!("extend by {bad_extension:?}"),
            store.extend(&key, "o", bad_extension).await,
        );
    }
    let wrong = wrong.into_inner();
    assert!(
        wrong.is_empty(),
        "expected InvalidArgument, got:\n{}",
        wrong.join("\n")
    );
    // Nothing above touched the lock; the bounds themselves are accepted.
    store
        .extend(&key, "o", lock_core::validate::MAX_TTL)
        .await
        .unwrap();
    store.delete(&key, "o").await.unwrap();
    let edge = "k".repeat(lock_core::validate::MAX_KEY_LEN);
    assert!(
        store
            .save(&edge, &"o".repeat(128), Some(Duration::from_millis(1)))
            .await
            .unwrap()
    );
    store.force_delete(&edge).await.unwrap();
}

/// The token a successful acquire minted (panics when denied).
async fn token_of(store: &RedisStore, key: &str, owner: &str, ttl: Option<Duration>) -> u64 {
    let got = store.try_acquire(key, owner, ttl).await.unwrap();
    assert!(got.acquired, "{key} not acquired by {owner}");
    got.fencing_token.expect("a fencing token")
}

/// A failover to a replica that never received the counter, or a flush, loses the counter:
/// the next token must still be greater.
#[tokio::test]
async fn fencing_token_increases_after_the_counter_is_lost() {
    let Some(store) = shared_store().await else {
        return;
    };
    let raw = raw_client().await;
    let key = unique("fence-lost");
    let mut last = 0;
    for round in 0..5 {
        let token = token_of(&store, &key, "a", TTL).await;
        assert!(token > last, "round {round}: {token} not above {last}");
        last = token;
        store.delete(&key, "a").await.unwrap();
        let deleted: i64 = raw.del(store.fence_key(&key)).await.unwrap();
        assert_eq!(deleted, 1, "round {round}: a counter existed to lose");
    }
    // Also without a TTL, and through a counter lost while the lock is held.
    let token = token_of(&store, &key, "a", None).await;
    assert!(token > last, "no ttl: {token} not above {last}");
    let _: i64 = raw.del(store.fence_key(&key)).await.unwrap();
    store.force_delete(&key).await.unwrap();
    let again = token_of(&store, &key, "b", TTL).await;
    assert!(again > token, "after force: {again} not above {token}");
    store.delete(&key, "b").await.unwrap();
}

/// Acquisitions faster than the clock (here: a counter far ahead of it) still increase by
/// the counter.
#[tokio::test]
async fn fencing_tokens_follow_a_counter_ahead_of_the_clock() {
    let Some(store) = shared_store().await else {
        return;
    };
    let raw = raw_client().await;
    let key = unique("fence-ahead");
    let first = token_of(&store, &key, "a", TTL).await;
    store.delete(&key, "a").await.unwrap();
    let ahead = first + 3_600_000_000; // an hour of microseconds
    let _: () = raw
        .set(
            store.fence_key(&key),
            ahead,
            Some(Expiration::PX(60_000)),
            None,
            false,
        )
        .await
        .unwrap();
    for i in 1..=5u64 {
        let token = token_of(&store, &key, "a", TTL).await;
        assert_eq!(token, ahead + i, "the counter, not the clock, decides");
        store.delete(&key, "a").await.unwrap();
    }
    let _: i64 = raw.del(store.fence_key(&key)).await.unwrap();
}

/// Many acquisitions of one key by tasks of two stores: in holding order, every token is
/// greater than the one before.
#[tokio::test]
async fn fencing_tokens_strictly_increase_over_many_contended_acquisitions() {
    let Some(first) = shared_store().await else {
        return;
    };
    let Some(second) = shared_store().await else {
        return;
    };
    let key = unique("fence-many");
    let tokens = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = if t % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let (key, tokens) = (key.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move {
            let owner = format!("t{t}");
            let mut won = 0;
            while won < 50 {
                let ttl = if won % 2 == 0 { TTL } else { None };
                let got = store.try_acquire(&key, &owner, ttl).await.unwrap();
                if got.acquired {
                    // Recorded while holding: the vector is in holding order.
                    tokens
                        .lock()
                        .unwrap()
                        .push(got.fencing_token.expect("token"));
                    store.delete(&key, &owner).await.unwrap();
                    won += 1;
                } else {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let tokens = tokens.lock().unwrap();
    assert_eq!(tokens.len(), 400);
    for pair in tokens.windows(2) {
        assert!(pair[1] > pair[0], "token {} after {}", pair[1], pair[0]);
    }
}

/// The fence counter outlives its lock by the margin and then goes: once every lock is
/// released, expired or force-released, no key of the store is left in Redis.
#[tokio::test]
async fn fence_counters_expire_after_their_locks_and_leave_no_key_behind() {
    let prefix = format!("{}:", unique("fence-gc"));
    let margin = Duration::from_millis(300);
    let Some(store) =
        shared_store_with(|o| o.with_prefix(prefix.clone()).with_fence_margin(margin)).await
    else {
        return;
    };
    let raw = raw_client().await;
    let pttl = async |key: String| -> i64 { raw.pttl(key).await.unwrap() };

    // A lock with TTL: the counter outlives it by the margin.
    assert!(store.save("ttl", "o", TTL).await.unwrap());
    let lock = pttl(store.redis_key("ttl")).await;
    let fence = pttl(store.fence_key("ttl")).await;
    assert!(
        fence > lock && fence <= 30_000 + 300,
        "counter {fence} ms vs lock {lock} ms"
    );
    // Extending keeps it so.
    store
        .extend("ttl", "o", Duration::from_secs(60))
        .await
        .unwrap();
    let fence = pttl(store.fence_key("ttl")).await;
    assert!(fence > 60_000, "counter {fence} ms after a 60 s extension");
    // A denied waiter, then the release: the counter gets the margin.
    assert!(!store.save("ttl", "w", TTL).await.unwrap());
    store.delete("ttl", "o").await.unwrap();
    let fence = pttl(store.fence_key("ttl")).await;
    assert!(
        (1..=300).contains(&fence),
        "counter {fence} ms after release"
    );

    // A lock without TTL: no expiry on either while held, the margin once released.
    assert!(store.save("none", "o", None).await.unwrap());
    assert_eq!(pttl(store.fence_key("none")).await, -1);
    store.delete("none", "o").await.unwrap();
    let fence = pttl(store.fence_key("none")).await;
    assert!(
        (1..=300).contains(&fence),
        "counter {fence} ms after release"
    );

    // Force-released, and expired.
    assert!(store.save("forced", "o", None).await.unwrap());
    store.force_delete("forced").await.unwrap();
    assert!(
        store
            .save("expired", "o", Some(Duration::from_millis(100)))
            .await
            .unwrap()
    );

    let pattern = format!("{prefix}*");
    let deadline = Instant::now() + Duration::from_secs(5);
    let left = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let keys = scan(&raw, &pattern).await;
        if keys.is_empty() || Instant::now() > deadline {
            break keys;
        }
    };
    assert!(left.is_empty(), "keys left behind: {left:?}");
}

/// Every key matching `pattern` (a full `SCAN` cycle).
async fn scan(raw: &Client, pattern: &str) -> Vec<String> {
    let mut cursor = "0".to_owned();
    let mut found = Vec::new();
    loop {
        let (next, keys): (String, Vec<String>) = raw
            .custom(
                fred::cmd!("SCAN"),
                vec![cursor.as_str(), "MATCH", pattern, "COUNT", "1000"],
            )
            .await
            .unwrap();
        found.extend(keys);
        if next == "0" {
            return found;
        }
        cursor = next;
    }
}

/// The driver's error of `err` and every cause in its `source` chain, outermost first.
fn causes(err: &LockError) -> Vec<&(dyn std::error::Error + 'static)> {
    let cause = err
        .store_error()
        .map(|context| context.cause() as &(dyn std::error::Error + 'static));
    std::iter::successors(cause, |e| (*e).source()).collect()
}

/// A refused connection says which store, which endpoint (without its password) and
/// why, in words rather than `Debug` text, and keeps the `io::Error` as its cause.
#[tokio::test]
async fn a_refused_connection_names_the_store_the_endpoint_and_the_cause() {
    let port = common::free_port();
    let url = format!("redis://:sekret@127.0.0.1:{port}");
    let err = RedisStore::connect(RedisStoreOptions::from_url(url))
        .await
        .expect_err("nothing listens on the port");
    let message = err.to_string();
    assert!(
        message.contains("redis lock store") && message.contains(&format!("127.0.0.1:{port}")),
        "{message}"
    );
    assert!(
        message.to_lowercase().contains("connection refused"),
        "{message}"
    );
    assert!(!message.contains("Os {"), "Debug text in {message}");
    assert!(!format!("{message} {err:?}").contains("sekret"), "{err:?}");
    let context = err.store_error().expect("a StoreError in the chain");
    assert_eq!(context.store(), "redis");
    assert_eq!(context.endpoint(), format!("redis://:***@127.0.0.1:{port}"));
    assert!(context.is_connect());
    let io = causes(&err)
        .into_iter()
        .find_map(|cause| cause.downcast_ref::<std::io::Error>())
        .expect("the io::Error is in the chain");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
}

/// An operation that fails on a built store names the store and its endpoint too.
#[tokio::test]
async fn an_operation_error_names_the_store_and_the_endpoint() {
    let Some(mut server) = common::PrivateRedis::start(&[]).await else {
        return;
    };
    let store = RedisStore::connect(
        RedisStoreOptions::from_url(server.url()).with_timeout(Duration::from_secs(1)),
    )
    .await
    .expect("connect to the private server");
    assert_eq!(store.endpoint(), server.url());
    server.stop();
    let err = store
        .exists(&unique("gone"))
        .await
        .expect_err("the server is gone");
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "redis lock store at redis://127.0.0.1:{}",
            server.port
        )),
        "{message}"
    );
    let context = err.store_error().expect("a StoreError in the chain");
    assert!(!context.is_connect(), "{message}");
}

/// `lock_scripts` gives the very scripts the store sends: after one acquire and release
/// by the store, their SHA1s are in the server's script cache, and run by hand with the
/// documented keys and arguments they take, report and release the lock as the store
/// does, minting tokens in the same sequence.
#[tokio::test]
async fn lock_scripts_are_the_scripts_the_store_sends() {
    let Some(store) = shared_store_with(|options| options.with_max_in_flight(0)).await else {
        return;
    };
    let key = unique("scripts");
    let first = store.try_acquire(&key, "o1", TTL).await.unwrap();
    store.delete(&key, "o1").await.unwrap();
    let scripts = store.lock_scripts();
    let client = raw_client().await;
    let (acquire, release) = (
        fred::types::scripts::Script::from_lua(scripts.acquire.clone()),
        fred::types::scripts::Script::from_lua(scripts.release.clone()),
    );
    let cached: Vec<bool> = client
        .script_exists(vec![acquire.sha1().clone(), release.sha1().clone()])
        .await
        .unwrap();
    assert_eq!(cached, [true, true], "the store sent other scripts");
    let (lock, fence, waiting) = (
        store.redis_key(&key),
        store.fence_key(&key),
        store.waiting_key(&key),
    );
    let args = vec![
        Value::from("o2"),
        Value::Integer(30_000),
        Value::Integer(40_000),
    ];
    let token: i64 = client
        .evalsha(
            acquire.sha1().clone(),
            vec![lock.clone(), fence.clone(), waiting.clone()],
            args,
        )
        .await
        .unwrap();
    assert!(
        token.unsigned_abs() > first.fencing_token.unwrap(),
        "the script's token {token} is not past the store's {:?}",
        first.fencing_token
    );
    assert!(
        store.exists(&key).await.unwrap(),
        "the script did not take the lock"
    );
    let denied = store.try_acquire(&key, "o3", TTL).await.unwrap();
    assert!(!denied.acquired);
    let released: i64 = client
        .evalsha(
            release.sha1().clone(),
            vec![lock, waiting, fence],
            vec!["o2"],
        )
        .await
        .unwrap();
    assert_eq!(released, 1);
    assert!(
        !store.exists(&key).await.unwrap(),
        "the script did not release"
    );
    let next = store.try_acquire(&key, "o3", TTL).await.unwrap();
    assert!(next.fencing_token.unwrap() > token.unsigned_abs());
    store.delete(&key, "o3").await.unwrap();
}
