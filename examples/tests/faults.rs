//! Faults: a private Redis stopped while locks are held and while waiters wait, then
//! restarted; a PostgreSQL backend killed (`pg_terminate_backend`) in the middle of an
//! operation; a pool of one connection exhausted. Every call returns within the operation
//! timeout (plus scheduling slack) with `Storage`, never a false `Ok(true)`; operations
//! succeed after recovery; a lock lost meanwhile fires its lost-lock signal.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{PrivateRedis, eventually, pg_admin, postgres_url, unique, unique_table};
use lock_core::{FactoryOptions, LockError, LockFactory, LockStore, RetryConfig};
use lock_store_database::{DatabaseStore, DatabaseStoreOptions};
use lock_store_redis::{RedisStore, RedisStoreOptions};

/// Scheduling slack on a shared 2-core machine.
const SLACK: Duration = Duration::from_millis(1_000);

/// Faults injected, for the report.
static FAULTS: AtomicUsize = AtomicUsize::new(0);

fn fault(what: &str) {
    let n = FAULTS.fetch_add(1, Ordering::SeqCst) + 1;
    println!("fault #{n}: {what}");
}

/// Run `op`, check it fails with `Storage` within `timeout` + slack.
async fn expect_storage<T: std::fmt::Debug>(
    what: &str,
    timeout: Duration,
    op: impl std::future::Future<Output = Result<T, LockError>>,
) {
    let started = Instant::now();
    let result = tokio::time::timeout(timeout + SLACK * 5, op)
        .await
        .unwrap_or_else(|_| panic!("{what}: hung past {:?}", timeout + SLACK * 5));
    let elapsed = started.elapsed();
    match result {
        Err(e) => assert!(e.is_storage(), "{what}: expected Storage, got {e:?}"),
        Ok(v) => panic!("{what}: succeeded ({v:?}) while the store was down"),
    }
    assert!(
        elapsed <= timeout + SLACK,
        "{what}: took {elapsed:?}, the operation timeout is {timeout:?}"
    );
}

async fn redis_factory(url: &str, timeout: Duration) -> LockFactory {
    let store = RedisStore::connect(RedisStoreOptions::from_url(url).with_timeout(timeout))
        .await
        .expect("connect to the private redis");
    LockFactory::with_options(
        store,
        FactoryOptions::default()
            .retry(RetryConfig::default().delay(Duration::from_millis(100)))
            .default_ttl(Some(Duration::from_secs(30))),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_while_held_every_call_is_storage_the_lock_is_lost_and_recovers() {
    let Some(mut server) = PrivateRedis::start(&[]).await else {
        return;
    };
    let timeout = Duration::from_millis(700);
    let factory = redis_factory(&server.url(), timeout).await;
    let key = unique("fault.held");
    let ttl = Some(Duration::from_millis(1_500));
    let holder = factory
        .create_lock_with_ttl(key.clone(), ttl)
        .unwrap()
        .with_auto_extend(true);
    assert!(holder.acquire_immediately().await.unwrap());
    let lost = holder.lost_signal();
    let other = factory.create_lock(key.clone()).unwrap();

    fault("private redis killed while a lock is held (auto-extension on)");
    server.stop();
    // Auto-extension fails until the local deadline passes: the signal fires.
    tokio::time::timeout(Duration::from_millis(1_500) + SLACK * 2, lost.wait())
        .await
        .expect("lost-lock signal fired after the store went away");
    assert!(lost.is_lost());

    expect_storage(
        "acquire by another owner",
        timeout,
        other.acquire_immediately(),
    )
    .await;
    expect_storage("is_locked", timeout, holder.is_locked()).await;
    expect_storage("extend", timeout, holder.extend(None)).await;
    expect_storage("release", timeout, holder.release()).await;
    expect_storage("force_release", timeout, other.force_release()).await;
    expect_storage(
        "acquire with retries",
        timeout,
        other.acquire_with(RetryConfig::default().attempts(3)),
    )
    .await;

    server
        .restart()
        .await
        .expect("restart the private redis-server");
    // Recovery: the fresh server is empty; the lock can be taken and released again.
    let again = factory.create_lock(key.clone()).unwrap();
    let got = eventually(Duration::from_secs(10), || again.acquire_immediately()).await;
    assert!(got, "the key is free on the restarted server");
    assert!(!other.acquire_immediately().await.unwrap(), "and held now");
    assert!(holder.release().await.unwrap_err().is_not_owned());
    again.release().await.unwrap();
    assert!(!again.is_locked().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_while_waiters_wait_they_get_storage_not_the_lock() {
    let Some(mut server) = PrivateRedis::start(&[]).await else {
        return;
    };
    let timeout = Duration::from_millis(700);
    let factory = redis_factory(&server.url(), timeout).await;
    let key = unique("fault.waiters");
    let holder = factory.create_lock(key.clone()).unwrap();
    assert!(holder.acquire().await.unwrap());

    // Waiters in this process (queued) and from another store instance (polling).
    let other_factory = redis_factory(&server.url(), timeout).await;
    let mut waiters = Vec::new();
    for i in 0..6 {
        let f = if i % 2 == 0 { &factory } else { &other_factory };
        let lock = f.create_lock(key.clone()).unwrap();
        waiters.push(tokio::spawn(async move {
            let started = Instant::now();
            let r = lock
                .acquire_with(RetryConfig::default().timeout(Duration::from_secs(20)))
                .await;
            (r, started.elapsed())
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    fault("private redis killed while 6 waiters wait");
    let stopped = Instant::now();
    server.stop();
    for w in waiters {
        let (result, _) = tokio::time::timeout(Duration::from_secs(15), w)
            .await
            .expect("a waiter hung after the server stopped")
            .unwrap();
        match result {
            Err(e) => assert!(e.is_storage(), "waiter: {e:?}"),
            Ok(got) => panic!("a waiter returned Ok({got}) while the server was down"),
        }
    }
    // Queued waiters fail one after the other, each within one operation timeout of
    // its turn: bounded by 6 timeouts plus the retry delays.
    assert!(
        stopped.elapsed() <= (timeout + Duration::from_millis(100)) * 6 + SLACK * 2,
        "waiters took {:?} to give up",
        stopped.elapsed()
    );

    server
        .restart()
        .await
        .expect("restart the private redis-server");
    let again = factory.create_lock(key.clone()).unwrap();
    assert!(eventually(Duration::from_secs(10), || again.acquire_immediately()).await);
    again.release().await.unwrap();
}

/// `postgres_url()` with `application_name` set, to find this store's backends.
fn tagged_pg_url(app: &str) -> String {
    let base = postgres_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}application_name={app}")
}

async fn pg_store(app: &str, table: &str, timeout: Duration, max: usize) -> Option<DatabaseStore> {
    match DatabaseStore::connect(
        DatabaseStoreOptions::new(tagged_pg_url(app))
            .table_name(table)
            .operation_timeout(timeout)
            .max_connections(max),
    )
    .await
    {
        Ok(s) => Some(s),
        Err(e) => {
            common::skip_unreachable(
                "postgres",
                &tagged_pg_url(app),
                lock_testkit::services::root_cause(&e),
            );
            None
        }
    }
}

/// Wait until a backend of `app` is blocked on a lock; its pid.
async fn blocked_backend(admin: &tokio_postgres::Client, app: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = admin
            .query(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
                &[&app],
            )
            .await
            .unwrap();
        if let Some(row) = rows.first() {
            return row.get(0);
        }
        assert!(
            Instant::now() < deadline,
            "no backend of {app} ever blocked"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_backend_killed_mid_acquire_is_storage_and_the_pool_recovers() {
    let Some(admin) = pg_admin().await else {
        return;
    };
    let app = unique_table("app");
    let table = unique_table("kill");
    let timeout = Duration::from_secs(5);
    let Some(store) = pg_store(&app, &table, timeout, 4).await else {
        return;
    };
    let store = Arc::new(store);
    let key = unique("fault.pgkill");

    // Block the table so that the acquire is in flight on the server, then kill it.
    admin
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE \"{table}\" IN ACCESS EXCLUSIVE MODE"
        ))
        .await
        .unwrap();
    let s = store.clone();
    let k = key.clone();
    let started = Instant::now();
    let acquire = tokio::spawn(async move { s.try_acquire(&k, "owner-a", None).await });
    let pid = blocked_backend(&admin, &app).await;
    fault("pg_terminate_backend of a backend in the middle of an acquire");
    let killed: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    let result = tokio::time::timeout(timeout + SLACK, acquire)
        .await
        .expect("the killed acquire hung")
        .unwrap();
    match result {
        Err(e) => assert!(e.is_storage(), "{e:?}"),
        Ok(got) => panic!("killed acquire returned Ok({got:?})"),
    }
    assert!(started.elapsed() <= timeout + SLACK);
    admin.batch_execute("ROLLBACK").await.unwrap();

    // Kill every remaining connection of the pool while idle, too.
    fault("pg_terminate_backend of every idle pooled connection");
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap();

    // Recovery: within a few tries, every operation works, and the killed acquire left
    // no holder behind (its transaction died with the backend).
    let mut tries = 0;
    let got = loop {
        tries += 1;
        match store.try_acquire(&key, "owner-b", None).await {
            Ok(got) => break got,
            Err(e) if e.is_storage() && tries < 5 => continue,
            Err(e) => panic!("no recovery after {tries} tries: {e:?}"),
        }
    };
    assert!(got.acquired, "the killed acquire left a phantom holder");
    assert!(store.exists(&key).await.unwrap());
    assert!(
        store
            .delete(&key, "owner-a")
            .await
            .unwrap_err()
            .is_not_owned()
    );
    store
        .extend(&key, "owner-b", Duration::from_secs(5))
        .await
        .unwrap();
    store.delete(&key, "owner-b").await.unwrap();
    store.force_delete(&key).await.unwrap();
    assert!(!store.exists(&key).await.unwrap());
    admin
        .batch_execute(&format!("DROP TABLE IF EXISTS \"{table}\""))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pool_exhausted_calls_time_out_with_storage_then_succeed() {
    let Some(admin) = pg_admin().await else {
        return;
    };
    let app = unique_table("app");
    let table = unique_table("pool");
    let timeout = Duration::from_millis(800);
    let Some(store) = pg_store(&app, &table, timeout, 1).await else {
        return;
    };
    let store = Arc::new(store);
    let factory = LockFactory::from_shared(store.clone(), FactoryOptions::default());
    let held_key = unique("fault.pool.held");
    let holder = factory
        .create_lock_with_ttl(held_key.clone(), Some(Duration::from_millis(1_200)))
        .unwrap()
        .with_auto_extend(true);
    assert!(holder.acquire_immediately().await.unwrap());
    let lost = holder.lost_signal();

    // The one pooled connection gets stuck behind a table lock; everyone else waits
    // for the pool.
    admin
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE \"{table}\" IN ACCESS EXCLUSIVE MODE"
        ))
        .await
        .unwrap();
    fault("pool of one connection exhausted by a statement blocked on a table lock");
    let mut calls = Vec::new();
    for i in 0..16 {
        let s = store.clone();
        calls.push(tokio::spawn(async move {
            let key = unique(&format!("fault.pool.{i}"));
            let started = Instant::now();
            let r = match i % 4 {
                0 => s
                    .try_acquire(&key, "o", Some(Duration::from_secs(30)))
                    .await
                    .map(|a| a.acquired),
                1 => s.exists(&key).await,
                2 => s
                    .extend(&key, "o", Duration::from_secs(1))
                    .await
                    .map(|()| true),
                _ => s.save(&key, "o", None).await,
            };
            (r, started.elapsed())
        }));
    }
    for c in calls {
        let (r, elapsed) = tokio::time::timeout(timeout + SLACK * 5, c)
            .await
            .expect("a call hung on the exhausted pool")
            .unwrap();
        match r {
            Err(e) => assert!(e.is_storage(), "{e:?}"),
            Ok(v) => panic!("a call returned Ok({v}) while the table was locked"),
        }
        assert!(elapsed <= timeout + SLACK, "took {elapsed:?}");
    }
    // The holder's auto-extension cannot get through either: its lock is lost.
    tokio::time::timeout(Duration::from_millis(1_200) + SLACK * 3, lost.wait())
        .await
        .expect("lost-lock signal fired while extensions timed out");
    admin.batch_execute("ROLLBACK").await.unwrap();

    // Recovery.
    let key = unique("fault.pool.after");
    let got = eventually(Duration::from_secs(10), || store.save(&key, "o", None)).await;
    assert!(got);
    for i in 0..8 {
        let k = format!("{key}.{i}");
        assert!(
            store
                .save(&k, "o", Some(Duration::from_secs(5)))
                .await
                .unwrap()
        );
        store.delete(&k, "o").await.unwrap();
    }
    store.delete(&key, "o").await.unwrap();
    drop(factory);
    admin
        .batch_execute(&format!("DROP TABLE IF EXISTS \"{table}\""))
        .await
        .unwrap();
    println!(
        "faults injected so far in this process: {}",
        FAULTS.load(Ordering::SeqCst)
    );
}
