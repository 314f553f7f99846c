//! The `metrics` feature: every documented metric is recorded, labelled by store, and
//! no label carries an owner token. Run with `cargo test -p lock-core --features metrics`.
#![cfg(feature = "metrics")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lock_core::testing::TestStore;
use lock_core::{DelegatingStore, LockError, LockFactory, LockStore, async_trait};
use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

#[derive(Default, Clone)]
struct Seen(Arc<Mutex<BTreeMap<String, f64>>>);

struct Cell(String, Seen);

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        *self.1.0.lock().unwrap().entry(self.0.clone()).or_default() += value as f64;
    }
    fn absolute(&self, value: u64) {
        self.1
            .0
            .lock()
            .unwrap()
            .insert(self.0.clone(), value as f64);
    }
}

impl HistogramFn for Cell {
    fn record(&self, _value: f64) {
        *self.1.0.lock().unwrap().entry(self.0.clone()).or_default() += 1.0;
    }
}

fn name(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for Seen {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Cell(name(key), self.clone())))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Cell(name(key), self.clone())))
    }
}

/// Fails `exists` with a storage error.
struct Failing(TestStore);

#[async_trait]
impl DelegatingStore for Failing {
    fn inner(&self) -> &dyn LockStore {
        &self.0
    }
    async fn exists(&self, _key: &str) -> Result<bool, LockError> {
        Err(LockError::storage_msg("down"))
    }
}

#[test]
fn every_documented_metric_is_recorded_by_store() {
    let seen = Seen::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let owner = metrics::with_local_recorder(&seen, || {
        rt.block_on(async {
            let locks = LockFactory::new(Failing(TestStore::default()));
            let lock = locks.create_lock("k").unwrap();
            assert!(lock.acquire().await.unwrap());
            tokio::time::sleep(Duration::from_millis(5)).await;
            lock.release().await.unwrap();

            let holder = locks.create_lock_with_ttl("h", None).unwrap();
            assert!(holder.acquire().await.unwrap());
            assert!(
                !locks
                    .create_lock("h")
                    .unwrap()
                    .acquire_immediately()
                    .await
                    .unwrap()
            );
            holder.force_release().await.unwrap();

            let short = locks
                .create_lock_with_ttl("s", Some(Duration::from_millis(10)))
                .unwrap();
            assert!(short.acquire().await.unwrap());
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(locks.create_lock("s").unwrap().acquire().await.unwrap());
            assert!(short.extend(None).await.unwrap_err().is_not_owned());

            assert!(lock.is_locked().await.unwrap_err().is_storage());
            lock.owner().to_owned()
        })
    });
    let seen = seen.0.lock().unwrap().clone();
    let get = |k: &str| seen.get(k).copied().unwrap_or_default();
    assert_eq!(get("lock_acquired_total{store=test}"), 4.0, "{seen:#?}");
    assert_eq!(get("lock_wait_seconds{store=test}"), 4.0, "{seen:#?}");
    assert_eq!(get("lock_released_total{store=test}"), 1.0, "{seen:#?}");
    assert_eq!(get("lock_hold_seconds{store=test}"), 1.0, "{seen:#?}");
    assert_eq!(get("lock_denied_total{store=test}"), 1.0, "{seen:#?}");
    assert_eq!(get("lock_lost_total{store=test}"), 1.0, "{seen:#?}");
    assert_eq!(
        get("lock_errors_total{code=E_LOCK_STORAGE_ERROR,operation=exists,store=test}"),
        1.0,
        "{seen:#?}"
    );
    assert!(
        seen.keys().all(|k| !k.contains(&owner)),
        "an owner token in a label"
    );
}
