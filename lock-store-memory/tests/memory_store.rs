use std::time::Duration;

use lock_core::{LockError, LockFactory, LockStore};
use lock_store_memory::MemoryStore;

#[tokio::test]
async fn memory_does_not_grow_with_distinct_keys_released() {
    let store = MemoryStore::new();
    let locks = LockFactory::new(store.clone());
    for i in 0..100_000 {
        let lock = locks.create_lock(format!("order.{i}")).unwrap();
        assert!(lock.acquire_immediately().await.unwrap());
        lock.release().await.unwrap();
    }
    assert_eq!(store.len(), 0, "released entries must be removed");
    assert_eq!(store.waiting_keys(), 0, "no waiter entries may remain");
}

#[tokio::test(start_paused = true)]
async fn expired_entries_are_reclaimed_as_the_map_grows() {
    let store = MemoryStore::new();
    for i in 0..10_000 {
        assert!(
            store
                .save(&format!("a.{i}"), "o", Some(Duration::from_millis(10)))
                .await
                .unwrap()
        );
    }
    tokio::time::advance(Duration::from_millis(20)).await;
    // Never released: they expire. New acquisitions sweep them away.
    for i in 0..10_000 {
        assert!(
            store
                .save(&format!("b.{i}"), "o", Some(Duration::from_secs(60)))
                .await
                .unwrap()
        );
    }
    assert!(
        store.len() <= 10_000 + 10_000 / 2,
        "expired entries were not reclaimed: {} in memory",
        store.len()
    );
    store.purge_expired();
    assert_eq!(store.len(), 10_000);
}

#[tokio::test(start_paused = true)]
async fn expiry_follows_tokio_time() {
    let store = MemoryStore::new();
    assert!(
        store
            .save("k", "a", Some(Duration::from_secs(5)))
            .await
            .unwrap()
    );
    tokio::time::advance(Duration::from_secs(4)).await;
    assert!(store.exists("k").await.unwrap());
    assert!(!store.save("k", "b", None).await.unwrap());
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(!store.exists("k").await.unwrap());
    assert!(store.save("k", "b", None).await.unwrap());
    assert!(store.delete("k", "a").await.unwrap_err().is_not_owned());
    store.delete("k", "b").await.unwrap();
}

#[tokio::test]
async fn clones_share_locks_and_separate_stores_do_not() {
    let a = MemoryStore::new();
    let b = a.clone();
    let c = MemoryStore::new();
    assert!(a.save("k", "o", None).await.unwrap());
    assert!(b.exists("k").await.unwrap());
    assert!(!c.exists("k").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_wakes_waiters_without_polling() {
    let locks = LockFactory::new(MemoryStore::new());
    let holder = locks.create_lock("k").unwrap();
    holder.acquire().await.unwrap();
    let waiter = locks
        .create_lock("k")
        .unwrap()
        .with_retry(lock_core::RetryConfig::default().delay(Duration::from_secs(30)));
    let task = tokio::spawn(async move {
        let got = waiter.acquire().await.unwrap();
        (got, std::time::Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let released = std::time::Instant::now();
    holder.release().await.unwrap();
    let (got, at) = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert!(got);
    assert!(at.duration_since(released) < Duration::from_millis(100));
}

#[tokio::test]
async fn table_memory_is_given_back_after_a_peak() {
    let store = MemoryStore::new();
    for i in 0..100_000 {
        assert!(store.save(&format!("peak.{i}"), "o", None).await.unwrap());
    }
    let peak = store.capacity();
    assert!(peak >= 100_000);
    for i in 0..100_000 {
        store.delete(&format!("peak.{i}"), "o").await.unwrap();
    }
    assert!(store.is_empty());
    assert!(
        store.capacity() <= 128,
        "capacity stayed at {} after every lock was released (peak {peak})",
        store.capacity()
    );
}

#[tokio::test]
async fn trait_calls_outside_the_input_domain_are_invalid_arguments() {
    let store = MemoryStore::new();
    let owner = "0123456789abcdef0123456789abcdef";
    let long_key = "k".repeat(lock_core::MAX_KEY_LEN + 1);
    let ms = Duration::from_millis(1);
    for key in ["", "a\0b", long_key.as_str()] {
        let results = [
            store.save(key, owner, Some(ms * 100)).await.map(|_| ()),
            store.try_acquire(key, owner, None).await.map(|_| ()),
            store.delete(key, owner).await,
            store.force_delete(key).await,
            store.exists(key).await.map(|_| ()),
            store.extend(key, owner, ms * 100).await,
        ];
        for (i, r) in results.into_iter().enumerate() {
            assert_eq!(
                r.unwrap_err().code(),
                "E_INVALID_ARGUMENTS",
                "key {key:?}, call {i}"
            );
        }
    }
    for bad_owner in ["", "has space", "é"] {
        assert!(matches!(
            store.save("k", bad_owner, None).await,
            Err(LockError::InvalidArgument(_))
        ));
        assert!(matches!(
            store.delete("k", bad_owner).await,
            Err(LockError::InvalidArgument(_))
        ));
        assert!(matches!(
            store.extend("k", bad_owner, ms).await,
            Err(LockError::InvalidArgument(_))
        ));
    }
    for ttl in [Duration::ZERO, Duration::from_micros(999), Duration::MAX] {
        assert!(
            matches!(
                store.save("k", owner, Some(ttl)).await,
                Err(LockError::InvalidArgument(_))
            ),
            "ttl {ttl:?}"
        );
        assert!(
            matches!(
                store.extend("k", owner, ttl).await,
                Err(LockError::InvalidArgument(_))
            ),
            "extend {ttl:?}"
        );
    }
    assert!(store.is_empty(), "nothing was saved");
}

#[tokio::test]
async fn fencing_tokens_of_a_new_store_start_above_the_last_ones() {
    // A restarted process builds a new store: its tokens must still exceed the tokens a
    // protected resource saw from the previous one.
    let before = MemoryStore::new();
    let mut last = 0;
    for _ in 0..100 {
        let got = before.try_acquire("k", "a", None).await.unwrap();
        let token = got.fencing_token.expect("token");
        assert!(token > last);
        last = token;
        before.delete("k", "a").await.unwrap();
    }
    let after = MemoryStore::new();
    let first = after.try_acquire("k", "b", None).await.unwrap();
    assert!(
        first.fencing_token.expect("token") > last,
        "a new store's first token {:?} is not above the previous store's last {last}",
        first.fencing_token
    );
}
