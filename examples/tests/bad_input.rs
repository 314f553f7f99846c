//! Bad input, one test each: a clear `LockError` (usually `InvalidArgument`), no panic,
//! no hang, against every store where the input reaches it (memory, `TestStore`, Redis,
//! PostgreSQL, MariaDB, SQLite). Keys that are odd but valid (quotes, `%`, `*`, `{}`,
//! newlines, non-ASCII) must work, and must not match other keys as patterns.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Kind, connect, unique};
use lock_core::testing::TestStore;
use lock_core::{
    FactoryOptions, LockConfig, LockError, LockFactory, LockManager, LockStore, MAX_TTL,
    RetryConfig, SerializedLock,
};
use lock_store_database::{DatabaseStore, DatabaseStoreOptions};
use lock_store_memory::MemoryStore;
use lock_store_redis::{RedisStore, RedisStoreOptions};

/// Bad inputs tried (each input × store counts once); each test prints its count.
static TRIED: AtomicUsize = AtomicUsize::new(0);

/// Every call here must answer within this.
const BOUND: Duration = Duration::from_secs(10);

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {BOUND:?}"))
}

fn assert_invalid<T: std::fmt::Debug>(what: &str, r: Result<T, LockError>) -> String {
    TRIED.fetch_add(1, Ordering::Relaxed);
    match r {
        Err(LockError::InvalidArgument(msg)) => {
            assert!(!msg.is_empty(), "{what}: empty message");
            msg
        }
        other => panic!("{what}: expected InvalidArgument, got {other:?}"),
    }
}

/// A raw store call (a third-party caller of the trait, bypassing lock-core's checks):
/// it must not panic or fail with anything but `InvalidArgument`; stores may accept
/// what lock-core refuses. Returns whether it was refused.
fn store_direct<T: std::fmt::Debug>(what: &str, r: Result<T, LockError>) -> bool {
    TRIED.fetch_add(1, Ordering::Relaxed);
    match r {
        Err(LockError::InvalidArgument(_)) => true,
        Ok(v) => {
            println!("note: {what} accepted by the store itself: Ok({v:?})");
            false
        }
        Err(e) => panic!("{what}: expected InvalidArgument or acceptance, got {e:?}"),
    }
}

/// Every store: memory, TestStore, and those with a reachable server.
async fn stores() -> Vec<(&'static str, Arc<dyn LockStore>)> {
    let mut out: Vec<(&'static str, Arc<dyn LockStore>)> = vec![
        ("memory", Arc::new(MemoryStore::new())),
        ("test", Arc::new(TestStore::default())),
    ];
    for kind in Kind::ALL {
        if let Some(s) = connect(kind, &kind.url()).await {
            out.push((kind.name(), s));
        }
    }
    out
}

fn factory(store: &Arc<dyn LockStore>) -> LockFactory {
    LockFactory::from_shared(
        store.clone(),
        FactoryOptions::default()
            .retry(RetryConfig::default().timeout(Duration::from_secs(2)))
            .default_ttl(Some(Duration::from_secs(30))),
    )
}

const OWNER: &str = "0123456789abcdef0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_key_is_invalid_argument_on_every_store() {
    for (name, store) in stores().await {
        assert_invalid(name, factory(&store).create_lock(""));
        assert_invalid(name, factory(&store).create_lock_with_ttl("", None));
        let r = bounded(name, store.save("", OWNER, Some(Duration::from_secs(1)))).await;
        if !store_direct(&format!("{name}: store.save(\"\")"), r) {
            let _ = store.force_delete("").await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_megabyte_key_is_invalid_argument_on_every_store() {
    let key = "k".repeat(1 << 20);
    for (name, store) in stores().await {
        let msg = assert_invalid(name, factory(&store).create_lock(key.clone()));
        assert!(msg.len() < 1_000, "{name}: the message repeats the key");
        let r = bounded(name, store.save(&key, OWNER, Some(Duration::from_secs(1)))).await;
        if let Err(LockError::InvalidArgument(msg)) = &r {
            assert!(msg.len() < 1_000, "{name}: the message repeats the key");
        }
        if !store_direct(&format!("{name}: store.save(1 MB key)"), r) {
            store.force_delete(&key).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_with_nul_is_invalid_argument_through_the_lock_api() {
    for (name, store) in stores().await {
        assert_invalid(name, factory(&store).create_lock("a\0b"));
        assert_invalid(name, factory(&store).create_lock("\0"));
    }
}

/// A key that is odd but valid works, and the store treats it as data: it does not
/// match `sibling` (which a pattern-interpreting store would confuse with it). The check
/// is the testkit's (`lock_testkit::bad_input::odd_key_works`, also a conformance case).
async fn odd_key_works(base: &str, odd: &str, sibling: &str) {
    for (name, store) in stores().await {
        TRIED.fetch_add(1, Ordering::Relaxed);
        if let Err(failure) =
            lock_testkit::bad_input::odd_key_works(store, base, odd, sibling).await
        {
            panic!("{name}: {failure}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_with_quotes_is_data_not_sql() {
    let base = unique("odd");
    odd_key_works(&base, "'; DROP TABLE reliability_locks; --\"`", "'").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_with_percent_is_not_a_like_pattern() {
    let base = unique("odd");
    odd_key_works(&base, "a%", "abc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_with_star_is_not_a_glob() {
    let base = unique("odd");
    odd_key_works(&base, "a*?[x]", "abc?x").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_with_braces_is_not_a_hash_tag_escape() {
    let base = unique("odd");
    odd_key_works(&base, "{x}}{", "{x}").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_with_newlines_is_not_a_protocol_break() {
    let base = unique("odd");
    odd_key_works(&base, "a\r\nSET x 1\r\n", "a").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_ascii_keys_are_compared_byte_for_byte() {
    let base = unique("odd");
    // Same letters under case folding / accent-insensitive collations.
    odd_key_works(&base, "Commande-É-日本-🔒", "commande-e-日本-🔒").await;
    odd_key_works(&base, "trailing ", "trailing").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_zero_is_invalid_argument_on_every_store() {
    for (name, store) in stores().await {
        let f = factory(&store);
        assert_invalid(
            name,
            f.create_lock_with_ttl(unique("ttl0"), Some(Duration::ZERO)),
        );
        assert_invalid(
            name,
            f.create_lock_with_ttl(unique("ttl0"), Some(Duration::from_micros(999))),
        );
        let key = unique("ttl0.store");
        let r = bounded(name, store.save(&key, OWNER, Some(Duration::ZERO))).await;
        if !store_direct(&format!("{name}: store.save(ttl 0)"), r) {
            store.force_delete(&key).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_beyond_what_a_store_represents_is_invalid_argument() {
    for (name, store) in stores().await {
        let f = factory(&store);
        for ttl in [
            MAX_TTL + Duration::from_secs(1),
            Duration::from_secs(u64::MAX),
            Duration::MAX,
        ] {
            assert_invalid(name, f.create_lock_with_ttl(unique("ttlmax"), Some(ttl)));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extend_by_zero_or_beyond_max_is_invalid_argument_and_keeps_the_lock() {
    for (name, store) in stores().await {
        let f = factory(&store);
        let lock = f.create_lock(unique("ext0")).unwrap();
        assert_invalid(name, bounded(name, lock.extend(Some(Duration::ZERO))).await);
        assert!(bounded(name, lock.acquire_immediately()).await.unwrap());
        let before = lock.remaining_time().unwrap();
        assert_invalid(name, bounded(name, lock.extend(Some(Duration::ZERO))).await);
        assert_invalid(name, bounded(name, lock.extend(Some(Duration::MAX))).await);
        assert!(lock.remaining_time().unwrap() <= before);
        assert!(
            bounded(name, lock.is_locked()).await.unwrap(),
            "{name}: lock dropped"
        );
        bounded(name, lock.release()).await.unwrap();
        // A lock without TTL has nothing to default to.
        let forever = f.create_lock_with_ttl(unique("ext0.none"), None).unwrap();
        assert!(bounded(name, forever.acquire_immediately()).await.unwrap());
        assert_invalid(name, bounded(name, forever.extend(None)).await);
        bounded(name, forever.release()).await.unwrap();
        // Straight to the store.
        let key = unique("ext0.store");
        assert!(
            store
                .save(&key, OWNER, Some(Duration::from_secs(30)))
                .await
                .unwrap()
        );
        let store2 = store.clone();
        let k = key.clone();
        let r = tokio::spawn(async move { store2.extend(&k, OWNER, Duration::ZERO).await })
            .await
            .unwrap_or_else(|e| panic!("{name}: store.extend(0) panicked: {e}"));
        store_direct(&format!("{name}: store.extend(0)"), r);
        store.force_delete(&key).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_attempts_is_invalid_argument_not_a_silent_success() {
    let zero = RetryConfig::default().attempts(0);
    for (name, store) in stores().await {
        let f = factory(&store);
        let lock = f.create_lock(unique("att0")).unwrap();
        assert_invalid(name, bounded(name, lock.acquire_with(zero)).await);
        assert_invalid(name, bounded(name, lock.run_with(zero, || async {})).await);
        assert_invalid(
            name,
            bounded(name, lock.clone().with_retry(zero).acquire()).await,
        );
        assert_invalid(
            name,
            bounded(name, lock.acquire_guard_with(zero))
                .await
                .map(|g| g.is_some()),
        );
        assert!(
            !bounded(name, lock.is_locked()).await.unwrap(),
            "{name}: acquired anyway"
        );
        let bad = LockFactory::from_shared(
            store.clone(),
            FactoryOptions::default().retry(zero).default_ttl(None),
        );
        assert_invalid(name, bad.create_lock(unique("att0")));
    }
    let manager = LockManager::new(
        LockConfig::new()
            .default_store("memory")
            .store("memory", lock_store_memory::memory())
            .retry(zero),
    );
    match manager {
        Ok(m) => {
            assert_invalid("manager", m.create_lock("k"));
        }
        Err(e) => {
            assert_invalid("manager", Err::<(), _>(e));
        }
    }
}

#[tokio::test]
async fn malformed_truncated_or_tampered_serialized_locks_are_refused() {
    let store = Arc::new(MemoryStore::new()) as Arc<dyn LockStore>;
    let f = factory(&store);
    let lock = f.create_lock(unique("ser")).unwrap();
    assert!(lock.acquire_immediately().await.unwrap());
    let good = lock.serialize().to_json();
    let v: serde_json::Value = serde_json::from_str(&good).unwrap();
    let with = |field: &str, value: serde_json::Value| {
        let mut v = v.clone();
        v[field] = value;
        v.to_string()
    };
    let truncated: Vec<String> = (0..good.len())
        .step_by(7)
        .map(|n| good[..n].to_owned())
        .collect();
    let mut bad: Vec<String> = vec![
        "".into(),
        "null".into(),
        "[]".into(),
        "{}".into(),
        "\"string\"".into(),
        "{\"key\":1}".into(),
        format!("{good}{good}"),
        good.replace('{', "["),
        with("key", "".into()),
        with("key", "a\0b".into()),
        with("key", "k".repeat(2_000).into()),
        with("owner", "".into()),
        with("owner", "x'; DROP TABLE locks; --".into()),
        with("owner", "a b".into()),
        with("owner", "é".into()),
        with("owner", "a".repeat(129).into()),
        with("owner", 42.into()),
        with("ttl", 0.into()),
        with("ttl", (-5).into()),
        with("ttl", "30000".into()),
        with("ttl", u64::MAX.into()),
        with("ttl", 1.5.into()),
        with("expiration", (-1).into()),
        with("expiration", "soon".into()),
    ];
    // An expiration without a TTL.
    let mut no_ttl = v.clone();
    no_ttl["ttl"] = serde_json::Value::Null;
    bad.push(no_ttl.to_string());
    bad.extend(truncated.into_iter().filter(|t| t.len() < good.len()));
    for json in &bad {
        let r = std::panic::catch_unwind(|| SerializedLock::from_json(json))
            .unwrap_or_else(|_| panic!("from_json panicked on {json:?}"));
        assert_invalid(&format!("from_json({json:?})"), r);
    }
    // The same checks guard restore_lock for a value built in code.
    let mut s = lock.serialize();
    s.owner = "not a token!".into();
    assert_invalid("restore_lock(bad owner)", f.restore_lock(s));

    // Tampered but well-formed: another owner or another key holds nothing.
    TRIED.fetch_add(2, Ordering::Relaxed);
    let forged_owner = with("owner", "ffffffffffffffffffffffffffffffff".into());
    let forged = f
        .restore_lock(SerializedLock::from_json(&forged_owner).unwrap())
        .unwrap();
    assert!(forged.release().await.unwrap_err().is_not_owned());
    assert!(forged.extend(None).await.unwrap_err().is_not_owned());
    let forged_key = with("key", format!("{}.other", lock.key()).into());
    let forged = f
        .restore_lock(SerializedLock::from_json(&forged_key).unwrap())
        .unwrap();
    assert!(forged.release().await.unwrap_err().is_not_owned());
    assert!(
        lock.is_locked().await.unwrap(),
        "a forged lock released the real one"
    );
    // The genuine capability works.
    let genuine = f
        .restore_lock(SerializedLock::from_json(&good).unwrap())
        .unwrap();
    genuine.release().await.unwrap();
    println!("serialized inputs refused: {}", bad.len() + 1);
}

#[tokio::test]
async fn lock_store_naming_no_configured_store_is_unknown_store_listing_the_names() {
    // SAFETY: no other test of this binary reads LOCK_STORE; std's env lock serializes
    // access with the other tests' reads of their own variables.
    unsafe { std::env::set_var("LOCK_STORE", "cassandra") };
    let r = examples::locks();
    unsafe { std::env::remove_var("LOCK_STORE") };
    TRIED.fetch_add(1, Ordering::Relaxed);
    match r {
        Err(e @ LockError::UnknownStore { .. }) => {
            assert_eq!(e.code(), "E_UNKNOWN_STORE");
            let msg = e.to_string();
            for name in ["cassandra", "redis", "database", "memory"] {
                assert!(msg.contains(name), "{msg:?} does not name {name}");
            }
        }
        other => panic!("LOCK_STORE=cassandra gave {other:?}"),
    }
    // Same rule for an explicit default and for use_store.
    let config = || LockConfig::new().store("memory", lock_store_memory::memory());
    TRIED.fetch_add(3, Ordering::Relaxed);
    assert!(matches!(
        LockManager::new(config().default_store("redis")),
        Err(LockError::UnknownStore { .. })
    ));
    let m = LockManager::new(config().default_store("memory")).unwrap();
    assert_eq!(m.use_store("").unwrap_err().code(), "E_UNKNOWN_STORE");
    assert_eq!(m.use_store("Memory").unwrap_err().code(), "E_UNKNOWN_STORE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_redis_urls_are_invalid_argument_without_the_password() {
    for url in [
        "",
        "not a url",
        "redis//127.0.0.1:6379",
        "redis://127.0.0.1:notaport",
        "redis://:hunter2@127.0.0.1:99999",
        "redis://:hunter2@[::1",
        "redis://127.0.0.1:6379/notadb",
    ] {
        let r = bounded(
            url,
            RedisStore::connect(
                RedisStoreOptions::from_url(url).with_timeout(Duration::from_secs(2)),
            ),
        )
        .await;
        let msg = assert_invalid(&format!("redis url {url:?}"), r.map(|_| ()));
        assert!(!msg.contains("hunter2"), "{msg}");
    }
    let r = RedisStore::connect(RedisStoreOptions::default().with_prefix("a{b}")).await;
    assert_invalid("prefix with braces", r.map(|_| ()));
    let r = RedisStore::connect(RedisStoreOptions::default().with_timeout(Duration::ZERO)).await;
    assert_invalid("zero timeout", r.map(|_| ()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_database_urls_are_invalid_argument_without_the_password() {
    for url in [
        "",
        "   ",
        "http://example.com/db",
        "redis://127.0.0.1",
        "sqlite://",
        "postgres://u:hunter2@host:notaport/db",
        "postgres://u:hunter2@host:99999/db",
        "mysql://u:hunter2@host:notaport/db",
        "mysql://u:hunter2@[::1/db",
    ] {
        let r = bounded(
            url,
            DatabaseStore::connect(
                DatabaseStoreOptions::new(url).operation_timeout(Duration::from_secs(2)),
            ),
        )
        .await;
        let msg = assert_invalid(&format!("database url {url:?}"), r.map(|_| ()));
        assert!(!msg.contains("hunter2"), "{msg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_name_that_is_not_an_identifier_is_invalid_argument() {
    let long = "t".repeat(64);
    let names = [
        "",
        "1locks",
        "locks; DROP TABLE users; --",
        "lo\"cks",
        "lo`cks",
        "lo'cks",
        "public.locks",
        "löcks",
        "lo cks",
        "lo\0cks",
        "locks--",
        long.as_str(),
    ];
    let mut urls = vec![("sqlite", "sqlite::memory:".to_owned())];
    for kind in [Kind::Postgres, Kind::Mysql] {
        urls.push((kind.name(), kind.url()));
    }
    for (backend, url) in &urls {
        for name in names {
            let r = bounded(
                name,
                DatabaseStore::connect(DatabaseStoreOptions::new(url.clone()).table_name(name)),
            )
            .await;
            assert_invalid(&format!("{backend}: table {name:?}"), r.map(|_| ()));
        }
    }
    for name in names {
        assert_invalid(
            name,
            lock_store_database::ddl(lock_store_database::Backend::Postgres, name),
        );
    }
    // Through a manager: the error surfaces on first use, as InvalidArgument.
    let m = LockManager::new(LockConfig::new().default_store("db").store(
        "db",
        lock_store_database::database(
            DatabaseStoreOptions::new("sqlite::memory:").table_name("x; DROP TABLE y"),
        ),
    ))
    .unwrap();
    let lock = m.create_lock("k").unwrap();
    assert_invalid(
        "manager with a bad table",
        bounded("manager", lock.acquire_immediately()).await,
    );
}

/// Straight to the store (a third-party caller of the trait) with the testkit's table of
/// out-of-domain input (`lock_testkit::bad_input::TABLE`: empty, NUL and over-long keys,
/// bad owners, zero, sub-millisecond, over-MAX_TTL and `Duration::MAX` TTLs and
/// extensions) and the domain's extremes: `InvalidArgument` or correct handling, no
/// panic, no overflow, an answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_given_out_of_domain_input_reject_it_or_handle_it() {
    let mut problems = Vec::new();
    for (name, store) in stores().await {
        let prefix = format!("{}:", unique("domain"));
        for problem in lock_testkit::bad_input::check_store(store, &prefix).await {
            problems.push(format!("{name}: {problem}"));
        }
        TRIED.fetch_add(lock_testkit::bad_input::TABLE.len(), Ordering::Relaxed);
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A URL whose scheme is not Redis's must be refused, not silently connected to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_url_with_a_foreign_scheme_is_invalid_argument() {
    for url in ["http://127.0.0.1:6379", "postgres://127.0.0.1:6379"] {
        let r = bounded(url, RedisStore::connect(RedisStoreOptions::from_url(url))).await;
        assert_invalid(&format!("redis url {url:?}"), r.map(|_| ()));
    }
}
