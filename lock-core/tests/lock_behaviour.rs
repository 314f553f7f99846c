//! lock-core behaviour that no store can change: the Verrou fixes, retry accounting,
//! configuration, redaction. Runs on the reference `TestStore` (tokio's clock, so
//! `start_paused` tests run hours of virtual time in milliseconds).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lock_core::testing::TestStore;
use lock_core::{
    FactoryOptions, LockConfig, LockError, LockFactory, LockManager, LockStore, RetryConfig,
    SerializedLock, StoreFactory, async_trait,
};

/// Counts `save` calls.
#[derive(Default)]
struct Counting {
    inner: TestStore,
    saves: AtomicUsize,
}

#[async_trait]
impl LockStore for Counting {
    async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError> {
        self.saves.fetch_add(1, Ordering::SeqCst);
        self.inner.save(key, owner, ttl).await
    }
    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        self.inner.delete(key, owner).await
    }
    async fn force_delete(&self, key: &str) -> Result<(), LockError> {
        self.inner.force_delete(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool, LockError> {
        self.inner.exists(key).await
    }
    async fn extend(&self, key: &str, owner: &str, duration: Duration) -> Result<(), LockError> {
        self.inner.extend(key, owner, duration).await
    }
}

#[tokio::test]
async fn attempts_zero_is_invalid_argument_not_a_silent_success() {
    // Verrou returns true without acquiring anything.
    let locks = LockFactory::new(TestStore::default());
    let lock = locks.create_lock("k").unwrap();
    let err = lock
        .acquire_with(RetryConfig::default().attempts(0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "E_INVALID_ARGUMENTS");
    assert!(!lock.is_locked().await.unwrap(), "nothing may be acquired");
    let err = LockFactory::with_options(
        TestStore::default(),
        FactoryOptions::default().retry(RetryConfig::default().attempts(0)),
    )
    .create_lock("k")
    .unwrap_err();
    assert_eq!(err.code(), "E_INVALID_ARGUMENTS");
}

#[tokio::test(start_paused = true)]
async fn absent_timeout_means_waiting_for_as_long_as_it_takes() {
    // Verrou silently gives up after 30 s when no timeout is given.
    let locks = LockFactory::new(TestStore::default());
    let holder = locks.create_lock_with_ttl("k", None).unwrap();
    assert!(holder.acquire().await.unwrap());
    let waiter = locks.create_lock("k").unwrap();
    let task = tokio::spawn(async move { waiter.acquire().await });
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(
        !task.is_finished(),
        "the waiter gave up although no timeout was set"
    );
    holder.release().await.unwrap();
    assert!(
        task.await.unwrap().unwrap(),
        "the waiter acquires once released"
    );
}

#[tokio::test(start_paused = true)]
async fn attempts_count_save_calls() {
    let store = Arc::new(Counting::default());
    let locks = LockFactory::from_shared(store.clone(), FactoryOptions::default());
    let holder = locks.create_lock("k").unwrap();
    assert!(holder.acquire().await.unwrap());
    store.saves.store(0, Ordering::SeqCst);
    let waiter = locks.create_lock("k").unwrap();
    let got = waiter
        .acquire_with(
            RetryConfig::default()
                .attempts(3)
                .delay(Duration::from_millis(100)),
        )
        .await
        .unwrap();
    assert!(!got);
    assert_eq!(store.saves.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn timeout_bounds_the_wait() {
    let locks = LockFactory::new(TestStore::default());
    let holder = locks.create_lock("k").unwrap();
    holder.acquire().await.unwrap();
    let started = tokio::time::Instant::now();
    let got = locks
        .create_lock("k")
        .unwrap()
        .acquire_with(RetryConfig::default().timeout(Duration::from_secs(2)))
        .await
        .unwrap();
    assert!(!got);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_millis(2300),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_bounded_waiter_behind_an_unbounded_one_still_gives_up() {
    // The local queue must not make a waiter with attempts wait forever.
    let locks = LockFactory::new(TestStore::default());
    let holder = locks.create_lock_with_ttl("k", None).unwrap();
    holder.acquire().await.unwrap();
    let patient = locks.create_lock("k").unwrap();
    let patient_task = tokio::spawn(async move { patient.acquire().await });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let bounded = locks.create_lock("k").unwrap();
    let got = tokio::time::timeout(
        Duration::from_secs(10),
        bounded.acquire_with(RetryConfig::default().attempts(3)),
    )
    .await
    .expect("bounded acquire must return")
    .unwrap();
    assert!(!got);
    holder.release().await.unwrap();
    assert!(patient_task.await.unwrap().unwrap());
}

#[tokio::test]
async fn new_holder_can_release_after_force_release() {
    let locks = LockFactory::new(TestStore::default());
    let a = locks.create_lock("k").unwrap();
    let b = locks.create_lock("k").unwrap();
    a.acquire().await.unwrap();
    b.force_release().await.unwrap();
    assert!(b.acquire_immediately().await.unwrap());
    assert!(a.release().await.unwrap_err().is_not_owned());
    b.release().await.unwrap();
}

#[tokio::test]
async fn zero_ttl_and_bad_keys_are_invalid_arguments() {
    let locks = LockFactory::new(TestStore::default());
    for err in [
        locks
            .create_lock_with_ttl("k", Some(Duration::ZERO))
            .unwrap_err(),
        locks.create_lock("").unwrap_err(),
        locks.create_lock("a\0b").unwrap_err(),
        locks.create_lock("x".repeat(1024 * 1024)).unwrap_err(),
    ] {
        assert_eq!(err.code(), "E_INVALID_ARGUMENTS", "{err}");
    }
    let lock = locks.create_lock_with_ttl("k", None).unwrap();
    lock.acquire().await.unwrap();
    assert_eq!(
        lock.extend(None).await.unwrap_err().code(),
        "E_INVALID_ARGUMENTS"
    );
    assert_eq!(
        lock.extend(Some(Duration::ZERO)).await.unwrap_err().code(),
        "E_INVALID_ARGUMENTS"
    );
}

#[tokio::test]
async fn debug_never_shows_the_owner() {
    let locks = LockFactory::new(TestStore::default());
    let lock = locks.create_lock("k").unwrap();
    lock.acquire().await.unwrap();
    let owner = lock.owner().to_owned();
    for shown in [
        format!("{lock:?}"),
        format!("{:?}", lock.serialize()),
        format!("{:?}", lock.lost_signal()),
        format!("{locks:?}"),
    ] {
        assert!(!shown.contains(&owner), "owner leaked in {shown}");
    }
}

#[tokio::test]
async fn restored_lock_releases_and_tampered_json_is_rejected() {
    let locks = LockFactory::new(TestStore::default());
    let lock = locks.create_lock("order.1").unwrap();
    lock.acquire().await.unwrap();
    let json = lock.serialize().to_json();
    let restored = locks
        .restore_lock(SerializedLock::from_json(&json).unwrap())
        .unwrap();
    assert!(
        restored
            .remaining_time()
            .is_some_and(|d| d > Duration::from_secs(25))
    );
    restored.release().await.unwrap();
    assert!(!lock.is_locked().await.unwrap());
    let mut tampered = SerializedLock::from_json(&json).unwrap();
    tampered.owner = "not a token!".into();
    assert_eq!(
        locks.restore_lock(tampered).unwrap_err().code(),
        "E_INVALID_ARGUMENTS"
    );
}

#[tokio::test(start_paused = true)]
async fn lost_signal_fires_at_the_deadline_and_not_after_release() {
    let locks = LockFactory::new(TestStore::default());
    let lock = locks
        .create_lock_with_ttl("k", Some(Duration::from_secs(1)))
        .unwrap();
    lock.acquire().await.unwrap();
    let lost = lock.lost_signal();
    let started = tokio::time::Instant::now();
    lost.wait().await;
    assert!(started.elapsed() >= Duration::from_millis(999));

    lock.acquire().await.unwrap();
    let lost = lock.lost_signal();
    lock.release().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(5), lost.wait())
            .await
            .is_err(),
        "a released lock is not lost"
    );
}

#[tokio::test(start_paused = true)]
async fn auto_extension_outlives_the_ttl_and_stops_on_release() {
    let store = Arc::new(TestStore::default());
    let locks =
        LockFactory::from_shared(store.clone(), FactoryOptions::default()).auto_extend(true);
    let lock = locks
        .create_lock_with_ttl("k", Some(Duration::from_secs(3)))
        .unwrap();
    lock.acquire().await.unwrap();
    let lost = lock.lost_signal();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        store.exists("k").await.unwrap(),
        "auto-extension kept the lock"
    );
    assert!(!lost.is_lost());
    lock.release().await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        !store.exists("k").await.unwrap(),
        "no extension after release"
    );
}

#[tokio::test]
async fn manager_checks_its_default_and_lists_stores() {
    let memory = || StoreFactory::from_store(TestStore::default());
    let err = LockManager::new(
        LockConfig::new()
            .default_store("redis")
            .store("memory", memory())
            .store("database", memory()),
    )
    .unwrap_err();
    assert_eq!(err.code(), "E_UNKNOWN_STORE");
    assert!(err.to_string().contains("memory, database"), "{err}");

    let err = LockManager::new(LockConfig::new().store("memory", memory())).unwrap_err();
    assert_eq!(err.code(), "E_INVALID_ARGUMENTS");

    let locks = LockManager::new(
        LockConfig::new()
            .default_store("memory")
            .store("memory", memory()),
    )
    .unwrap();
    let err = locks.use_store("nope").unwrap_err();
    assert!(
        matches!(err, LockError::UnknownStore { ref configured, .. } if configured == &["memory"])
    );
}

#[tokio::test]
async fn default_store_from_env_rejects_unknown_names() {
    // SAFETY: this test binary has no other test reading or writing these variables.
    unsafe {
        std::env::set_var("LOCK_TEST_STORE_A", "redis");
        std::env::remove_var("LOCK_TEST_STORE_B");
    }
    let memory = || StoreFactory::from_store(TestStore::default());
    let err = LockManager::new(
        LockConfig::new()
            .default_store_from_env("LOCK_TEST_STORE_A")
            .store("memory", memory()),
    )
    .unwrap_err();
    assert_eq!(err.code(), "E_UNKNOWN_STORE");
    let err = LockManager::new(
        LockConfig::new()
            .default_store_from_env("LOCK_TEST_STORE_B")
            .store("memory", memory()),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("LOCK_TEST_STORE_B is not set"),
        "{err}"
    );
    let locks = LockManager::new(
        LockConfig::new()
            .default_store_from_env_or("LOCK_TEST_STORE_B", "memory")
            .store("memory", memory()),
    )
    .unwrap();
    assert_eq!(locks.default_store_name(), "memory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_store_is_built_once_under_concurrent_first_use() {
    let builds = Arc::new(AtomicUsize::new(0));
    let counter = builds.clone();
    let factory = StoreFactory::new(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(TestStore::default())
        }
    });
    let locks = LockManager::new(LockConfig::new().default_store("m").store("m", factory)).unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let locks = locks.clone();
            tokio::spawn(async move {
                let lock = locks.create_lock(format!("k{i}")).unwrap();
                lock.acquire().await.unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap());
    }
    assert_eq!(builds.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failing_store_build_is_a_storage_error_and_is_retried() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let factory = StoreFactory::new(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                Err(LockError::storage_msg("server down"))
            } else {
                Ok(TestStore::default())
            }
        }
    });
    let locks = LockManager::new(LockConfig::new().default_store("s").store("s", factory)).unwrap();
    let lock = locks.create_lock("k").unwrap();
    assert!(lock.acquire().await.unwrap_err().is_storage());
    assert!(lock.acquire().await.unwrap());
}

#[tokio::test]
async fn restored_expiration_is_capped_at_one_ttl() {
    let locks = LockFactory::new(TestStore::default());
    let lock = locks
        .restore_lock({
            let mut serialized = SerializedLock::new("k", "0123456789abcdef0123456789abcdef");
            serialized.ttl = Some(1_000);
            serialized.expiration = Some(u64::MAX);
            serialized
        })
        .unwrap();
    assert!(lock.remaining_time().unwrap() <= Duration::from_secs(1));
}
