//! Model-based tests: random sequences of operations by several owners on a few keys
//! (acquire_immediately, release, extend, force_release, is_locked, time passing) run
//! through `Lock` against each store and against a reference model of the contract
//! (SPEC §2, §4), compared step by step. The checker is the testkit's
//! (`lock_testkit::model`), so any store can run it; these are the workspace's runs.
//!
//! * memory store and `TestStore`: tokio's paused clock (`advance`), exact, with many
//!   sequences; expiry exactly at the boundary included (held while `now < expiry`).
//! * Redis, PostgreSQL, MariaDB, SQLite: real time in 300 ms units. The model keeps each
//!   expiry as an interval (request sent .. answer received, plus the TTL) and, before an
//!   operation on a key whose expiry is near, waits until it is clearly past, so that
//!   every compared answer is determined.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Kind, connect};
use lock_core::testing::TestStore;
use lock_core::{LockFactory, LockStore};
use lock_store_memory::MemoryStore;
use lock_testkit::model::{ModelConfig, check, check_paused};

fn paused_model(name: &str, make: fn() -> Arc<dyn LockStore>) {
    match check_paused(make, &ModelConfig::paused()) {
        Ok(report) => println!("{name}: model steps run: {}", report.steps),
        Err(failure) => panic!("{name}: {failure}"),
    }
}

#[test]
fn memory_store_matches_the_model_under_a_paused_clock() {
    paused_model("memory", || Arc::new(MemoryStore::new()));
}

#[test]
fn test_store_matches_the_model_under_a_paused_clock() {
    paused_model("TestStore", || Arc::new(TestStore::default()));
}

fn real_model(kind: Kind) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = kind.url();
    let Some(store) = rt.block_on(connect(kind, &url)) else {
        return;
    };
    let started = std::time::Instant::now();
    match rt.block_on(check(store, &ModelConfig::real())) {
        Ok(report) => println!(
            "{}: model steps run: {} in {:?}",
            kind.name(),
            report.steps,
            started.elapsed()
        ),
        Err(failure) => panic!("{}: {failure}", kind.name()),
    }
}

#[test]
fn redis_store_matches_the_model_in_real_time() {
    real_model(Kind::Redis);
}

#[test]
fn postgres_store_matches_the_model_in_real_time() {
    real_model(Kind::Postgres);
}

#[test]
fn mysql_store_matches_the_model_in_real_time() {
    real_model(Kind::Mysql);
}

#[test]
fn sqlite_store_matches_the_model_in_real_time() {
    real_model(Kind::Sqlite);
}

/// The comparison bites: a store that never expires anything disagrees with the model
/// as soon as time passes beyond a TTL.
#[test]
fn control_a_store_that_never_expires_is_caught() {
    #[derive(Default)]
    struct NeverExpires(TestStore);
    #[lock_core::async_trait]
    impl LockStore for NeverExpires {
        async fn save(
            &self,
            k: &str,
            o: &str,
            _ttl: Option<Duration>,
        ) -> Result<bool, lock_core::LockError> {
            self.0.save(k, o, None).await
        }
        async fn delete(&self, k: &str, o: &str) -> Result<(), lock_core::LockError> {
            self.0.delete(k, o).await
        }
        async fn force_delete(&self, k: &str) -> Result<(), lock_core::LockError> {
            self.0.force_delete(k).await
        }
        async fn exists(&self, k: &str) -> Result<bool, lock_core::LockError> {
            self.0.exists(k).await
        }
        async fn extend(&self, k: &str, o: &str, _d: Duration) -> Result<(), lock_core::LockError> {
            self.0.extend(k, o, Duration::from_secs(1_000_000)).await
        }
    }
    let result = check_paused(|| Arc::new(NeverExpires::default()), &ModelConfig::paused());
    assert!(
        result.is_err(),
        "the model did not notice a store that never expires"
    );
}

/// Regression (found by the model): extending a lock held without TTL makes the store
/// expire it; the local view (`remaining_time`, `is_expired`, the lost-lock signal) must
/// follow instead of still saying "never expires".
#[tokio::test(start_paused = true)]
async fn extending_a_lock_without_ttl_gives_it_a_local_deadline() {
    let factory = LockFactory::new(MemoryStore::new());
    let lock = factory.create_lock_with_ttl("k", None).unwrap();
    assert!(lock.acquire_immediately().await.unwrap());
    assert_eq!(lock.remaining_time(), None);
    let lost = lock.lost_signal();
    lock.extend(Some(Duration::from_millis(100))).await.unwrap();
    assert_eq!(lock.remaining_time(), Some(Duration::from_millis(100)));
    tokio::time::advance(Duration::from_millis(100)).await;
    assert!(!lock.is_locked().await.unwrap(), "the store expired it");
    assert!(lock.is_expired(), "the local view must agree");
    tokio::time::timeout(Duration::from_millis(1), lost.wait())
        .await
        .expect("the lost-lock signal fires at the new deadline");
}
