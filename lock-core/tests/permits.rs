//! Semaphores and reader-writer locks in lock-core: the guarantees `Lock` gives carry
//! over (auto-extension, the lost-lock signal, cancellation, serialization), bad input is
//! `InvalidArgument`, and a store without the capability says so. Paused tokio clock on
//! the reference `TestStore`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lock_core::testing::TestStore;
use lock_core::{
    DelegatingStore, FactoryOptions, LockError, LockFactory, LockStore, RetryConfig, SerializedLock,
};
use tokio::time::sleep;

const MS: Duration = Duration::from_millis(1);

fn factory() -> LockFactory {
    LockFactory::new(TestStore::default())
}

#[tokio::test(start_paused = true)]
async fn bad_permit_counts_are_invalid() {
    let locks = factory();
    for permits in [0, lock_core::permits::MAX_PERMITS + 1] {
        let err = locks.create_semaphore("s", permits).unwrap_err();
        assert!(
            matches!(err, LockError::InvalidArgument(_)),
            "{permits}: {err}"
        );
    }
    assert!(
        locks.create_semaphore("", 2).is_err(),
        "keys are validated too"
    );
    assert!(locks.create_rw_lock("").is_err());
}

/// A store written against the five mutex methods only.
struct MutexOnly(TestStore);

impl DelegatingStore for MutexOnly {
    fn inner(&self) -> &dyn LockStore {
        &self.0
    }
    fn permits(&self) -> Option<&dyn lock_core::PermitStore> {
        None
    }
}

#[tokio::test(start_paused = true)]
async fn a_store_without_permits_says_so() {
    let locks = LockFactory::new(MutexOnly(TestStore::default()));
    let sem = locks.create_semaphore("s", 2).unwrap();
    let err = sem.acquire().await.unwrap_err();
    assert!(
        err.to_string().contains("does not support semaphores"),
        "{err}"
    );
    assert!(sem.available().await.is_err());
    // Its locks work as before.
    let lock = locks.create_lock("s").unwrap();
    assert!(lock.acquire_immediately().await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn waiters_get_permits_as_holders_release_in_fifo_order() {
    let locks = factory();
    let holders: Vec<_> = (0..2)
        .map(|_| locks.create_semaphore("s", 2).unwrap())
        .collect();
    for h in &holders {
        assert!(h.acquire_immediately().await.unwrap());
    }
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for i in 0..4 {
        let sem = locks.create_semaphore("s", 2).unwrap();
        let order = order.clone();
        waiters.push(tokio::spawn(async move {
            assert!(sem.acquire().await.unwrap());
            order.lock().unwrap().push(i);
            sleep(MS * 10).await;
            sem.release().await.unwrap();
        }));
        sleep(MS).await; // queue in a known order
    }
    for h in &holders {
        h.release().await.unwrap();
    }
    for w in waiters {
        w.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn auto_extension_keeps_a_permit_and_the_signal_reports_its_loss() {
    let locks = factory();
    let ttl = MS * 100;
    let sem = locks
        .create_semaphore_with_ttl("s", 1, Some(ttl))
        .unwrap()
        .with_auto_extend(true);
    let rival = locks.create_semaphore("s", 1).unwrap();
    let lost = sem
        .run_with_signal(|lost| async move {
            sleep(ttl * 5).await;
            lost.is_lost()
        })
        .await
        .unwrap();
    assert_eq!(lost, Some(false), "auto-extension kept the permit");
    assert!(sem.acquire().await.unwrap());
    let signal = sem.lost_signal();
    rival.force_release().await.unwrap();
    tokio::time::timeout(ttl * 2, signal.wait())
        .await
        .expect("the permit was force-released: the extender must find out");
    assert!(rival.acquire_immediately().await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_run_gives_its_permit_back() {
    let locks = factory();
    let sem = locks.create_semaphore("s", 1).unwrap();
    let runner = sem.clone();
    let task = tokio::spawn(async move {
        runner
            .run(|| async { std::future::pending::<()>().await })
            .await
    });
    sleep(MS * 5).await;
    assert_eq!(sem.available().await.unwrap(), 0);
    task.abort();
    let _ = task.await;
    sleep(MS * 5).await;
    assert_eq!(
        sem.available().await.unwrap(),
        1,
        "the permit was not given back"
    );
}

#[tokio::test(start_paused = true)]
async fn serialized_holdings_restore_as_the_same_kind() {
    let locks = factory();
    let sem = locks.create_semaphore("s", 3).unwrap();
    assert!(sem.acquire().await.unwrap());
    let json = sem.serialize().to_json();
    let restored = locks
        .restore_semaphore(SerializedLock::from_json(&json).unwrap())
        .unwrap();
    assert_eq!(restored.permits(), 3);
    restored.release().await.unwrap();
    assert_eq!(sem.available().await.unwrap(), 3);

    let rw = locks.create_rw_lock("c").unwrap();
    assert!(rw.write().acquire().await.unwrap());
    let serialized = rw.write().serialize();
    assert!(
        locks.restore_semaphore(serialized.clone()).is_err(),
        "a writer's holding is not a semaphore's"
    );
    let writer = locks.restore_lock(serialized).unwrap();
    let reader = locks.create_rw_lock("c").unwrap();
    assert!(!reader.read().acquire_immediately().await.unwrap());
    writer.release().await.unwrap();
    assert!(reader.read().acquire_immediately().await.unwrap());

    assert!(
        locks.restore_semaphore(rw.read().serialize()).is_err(),
        "a reader's holding is not a semaphore's"
    );
    let mut tampered = rw.read().serialize();
    tampered.share = Some(lock_core::SerializedShare::new(2, 3, false));
    assert!(
        locks.restore_lock(tampered).is_err(),
        "a weight over the limit"
    );
}

/// In-process too, a waiting writer is served before readers that come after it.
#[tokio::test(start_paused = true)]
async fn a_waiting_writer_goes_before_later_readers() {
    let locks = LockFactory::with_options(
        TestStore::default(),
        FactoryOptions::default().retry(RetryConfig::default().delay(MS * 10)),
    );
    let first = locks.create_rw_lock("c").unwrap();
    assert!(first.read().acquire().await.unwrap());
    let served = Arc::new(AtomicUsize::new(0));
    let writer_rank = Arc::new(AtomicUsize::new(usize::MAX));
    let writer = locks.create_rw_lock("c").unwrap();
    let (s, rank) = (served.clone(), writer_rank.clone());
    let w = tokio::spawn(async move {
        assert!(writer.write().acquire().await.unwrap());
        rank.store(s.fetch_add(1, Ordering::SeqCst), Ordering::SeqCst);
        writer.write().release().await.unwrap();
    });
    sleep(MS * 5).await;
    let mut readers = Vec::new();
    for _ in 0..3 {
        let rw = locks.create_rw_lock("c").unwrap();
        let s = served.clone();
        readers.push(tokio::spawn(async move {
            assert!(rw.read().acquire().await.unwrap());
            s.fetch_add(1, Ordering::SeqCst);
            rw.read().release().await.unwrap();
        }));
    }
    sleep(MS * 50).await;
    first.read().release().await.unwrap();
    w.await.unwrap();
    for r in readers {
        r.await.unwrap();
    }
    assert_eq!(
        writer_rank.load(Ordering::SeqCst),
        0,
        "the writer was served first"
    );
}
