//! Database-specific behaviour on PostgreSQL, MariaDB/MySQL and SQLite: expiry by the
//! backend's clock, fencing tokens, holder TTL, timeouts, cancellation, notification.
//! Every test uses its own table (random suffix), so they run in parallel.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{Raw, connect_or_skip, open, second, unique, url};
use lock_core::LockStore;
use lock_store_database::{Backend, DatabaseStore, DatabaseStoreOptions};

per_backend!(
    expiry_follows_the_database_clock,
    fencing_tokens_increase_across_release_force_release_expiry_and_instances,
    denied_acquire_reports_the_holders_remaining_time,
    operation_timeout_is_a_storage_error,
    capabilities_match_the_backend,
    store_reports_its_backend_name,
    cancelled_statements_do_not_poison_the_pool,
);

async fn expiry_follows_the_database_clock(backend: Backend) {
    let table = unique("clock");
    let Some((store, url)) = open(backend, &table).await else {
        return;
    };
    let mut raw = Raw::connect(backend, &url).await;
    let (t, now) = (raw.table(&table), raw.now_expr());

    // The expiry written is the database's now + ttl.
    assert!(
        store
            .save("k", "o1", Some(Duration::from_secs(10)))
            .await
            .unwrap()
    );
    let k = raw.key("k");
    let left = raw
        .n(&format!(
            "SELECT expires_at - {now} AS n FROM {t} WHERE lock_key = {k}"
        ))
        .await;
    // (+2 ms: the store keeps holdings two milliseconds past their TTL, so that a clock
    // read to the millisecond never ends one before its holder's deadline.)
    assert!(
        (9_000..=10_002).contains(&left),
        "expires_at is {left} ms from the database's now"
    );

    // Expired by the database clock while the application clock says 10 s are left.
    raw.exec(&format!(
        "UPDATE {t} SET expires_at = {now} - 1 WHERE lock_key = {k}"
    ))
    .await;
    assert!(
        !store.exists("k").await.unwrap(),
        "exists ignored the database clock"
    );
    assert!(
        store
            .extend("k", "o1", Duration::from_secs(1))
            .await
            .unwrap_err()
            .is_not_owned()
    );
    assert!(
        store.save("k", "o2", None).await.unwrap(),
        "takeover ignored the database clock"
    );

    // Alive by the database clock although the TTL ran out on the application clock.
    assert!(
        store
            .save("k2", "o1", Some(Duration::from_millis(50)))
            .await
            .unwrap()
    );
    let k2 = raw.key("k2");
    raw.exec(&format!(
        "UPDATE {t} SET expires_at = {now} + 60000 WHERE lock_key = {k2}"
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        store.exists("k2").await.unwrap(),
        "exists used the application clock"
    );
    assert!(
        !store.save("k2", "o2", None).await.unwrap(),
        "took over a lock the database says is held"
    );
    store
        .extend("k2", "o1", Duration::from_secs(5))
        .await
        .unwrap();
    raw.drop_table(&table).await;
}

async fn fencing_tokens_increase_across_release_force_release_expiry_and_instances(
    backend: Backend,
) {
    let table = unique("fence");
    let Some((a, url)) = open(backend, &table).await else {
        return;
    };
    let b = second(&url, &table).await;
    let mut tokens = Vec::new();
    let mut take = async |store: &DatabaseStore, owner: &str, ttl: Option<Duration>| {
        let acq = store.try_acquire("k", owner, ttl).await.unwrap();
        assert!(acq.acquired, "{owner} could not acquire");
        let token = acq.fencing_token.expect("a fencing token on every acquire");
        tokens.push(token);
        token
    };
    take(&a, "o1", Some(Duration::from_secs(10))).await;
    // Denied: no token.
    let denied = b.try_acquire("k", "o2", None).await.unwrap();
    assert_eq!((denied.acquired, denied.fencing_token), (false, None));
    a.delete("k", "o1").await.unwrap(); // release
    take(&b, "o2", None).await; // another instance
    a.force_delete("k").await.unwrap(); // force release
    take(&a, "o3", Some(Duration::from_millis(50))).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    take(&b, "o4", None).await; // expiry takeover
    b.delete("k", "o4").await.unwrap();
    for i in 0..20 {
        let store = if i % 2 == 0 { &a } else { &b };
        let owner = format!("owner{i}");
        take(store, &owner, None).await;
        store.delete("k", &owner).await.unwrap();
    }
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "fencing tokens must strictly increase: {tokens:?}"
    );
    let mut raw = Raw::connect(backend, &url).await;
    raw.drop_table(&table).await;
}

async fn denied_acquire_reports_the_holders_remaining_time(backend: Backend) {
    let table = unique("holder");
    let Some((store, url)) = open(backend, &table).await else {
        return;
    };
    assert!(
        store
            .save("ttl", "o1", Some(Duration::from_secs(10)))
            .await
            .unwrap()
    );
    let denied = store.try_acquire("ttl", "o2", None).await.unwrap();
    assert!(!denied.acquired);
    let left = denied
        .holder_expires_in
        .expect("the holder's remaining time");
    assert!(
        left > Duration::from_secs(8) && left <= Duration::from_millis(10_002),
        "{left:?}"
    );
    assert!(store.save("forever", "o1", None).await.unwrap());
    let denied = store.try_acquire("forever", "o2", None).await.unwrap();
    assert_eq!((denied.acquired, denied.holder_expires_in), (false, None));
    let mut raw = Raw::connect(backend, &url).await;
    raw.drop_table(&table).await;
}

async fn operation_timeout_is_a_storage_error(backend: Backend) {
    let table = unique("timeout");
    let Some((store, url)) = open(backend, &table).await else {
        return;
    };
    assert!(store.save("blocked", "o1", None).await.unwrap());
    let mut raw = Raw::connect(backend, &url).await;
    let (t, k) = (raw.table(&table), raw.key("blocked"));
    // Another session holds the row (SQLite: the database) locked in an open transaction.
    let begin = match backend {
        Backend::Sqlite => "BEGIN IMMEDIATE".to_owned(),
        _ => format!("BEGIN; UPDATE {t} SET fence = fence WHERE lock_key = {k}"),
    };
    raw.exec(&begin).await;
    let short = DatabaseStore::connect(
        DatabaseStoreOptions::new(url.clone())
            .table_name(&table)
            .create_table(false)
            .operation_timeout(Duration::from_millis(300)),
    )
    .await
    // Probing the table only reads, which the open transaction does not block.
    .expect("connect while another session holds a row lock");
    let started = Instant::now();
    let err = short
        .force_delete("blocked")
        .await
        .expect_err("a blocked statement must time out");
    let waited = started.elapsed();
    assert!(err.is_storage(), "{err}");
    assert!(
        waited < Duration::from_secs(3),
        "the timeout did not fire: {waited:?}"
    );
    if backend == Backend::Postgres {
        // The cancel request travels on a connection of its own: let it land first.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    raw.exec("ROLLBACK").await;
    if backend == Backend::Postgres {
        // The timed-out statement was cancelled on the server: it does not release the
        // lock later, once the row is free.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            short.exists("blocked").await.unwrap(),
            "the timed-out force release still ran after the caller gave up"
        );
    }
    // The store recovers.
    assert!(short.exists("blocked").await.is_ok());
    raw.drop_table(&table).await;
    drop(store);
}

async fn capabilities_match_the_backend(backend: Backend) {
    let table = unique("caps");
    let Some((store, url)) = open(backend, &table).await else {
        return;
    };
    let caps = store.capabilities();
    assert!(caps.fencing_tokens && caps.holder_ttl);
    assert_eq!(caps.release_notification, backend == Backend::Postgres);
    assert_eq!(
        store.release_listener("k").is_some(),
        backend == Backend::Postgres
    );
    let mut raw = Raw::connect(backend, &url).await;
    raw.drop_table(&table).await;
}

async fn store_reports_its_backend_name(backend: Backend) {
    let table = unique("names");
    let Some((store, url)) = open(backend, &table).await else {
        return;
    };
    assert_eq!(store.name(), backend.name());
    assert_eq!(store.backend(), backend);
    let mut raw = Raw::connect(backend, &url).await;
    raw.drop_table(&table).await;
}

// ---- PostgreSQL only ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_release_notifies_another_store_instance_within_milliseconds() {
    let table = unique("notify");
    let Some((holder, url)) = open(Backend::Postgres, &table).await else {
        return;
    };
    let waiter = second(&url, &table).await;

    // The first listener starts the LISTEN connection and is woken once it is live.
    let warmup = waiter
        .release_listener("warmup")
        .expect("postgres notifies");
    tokio::time::timeout(Duration::from_secs(5), warmup)
        .await
        .expect("LISTEN connection established");

    for release_by_force in [false, true] {
        assert!(holder.save("k", "o1", None).await.unwrap());
        let woken = waiter.release_listener("k").unwrap();
        let bystander = waiter.release_listener("other").unwrap();
        let started = Instant::now();
        if release_by_force {
            holder.force_delete("k").await.unwrap();
        } else {
            holder.delete("k", "o1").await.unwrap();
        }
        tokio::time::timeout(Duration::from_secs(2), woken)
            .await
            .expect("the release must wake the other instance's listener");
        let latency = started.elapsed();
        println!("release (force: {release_by_force}) woke another instance in {latency:?}");
        assert!(
            latency < Duration::from_millis(250),
            "slow wake-up: {latency:?}"
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(100), bystander)
                .await
                .is_err(),
            "a release of `k` woke a listener of `other`"
        );
    }
    // A denied release notifies no one.
    assert!(holder.save("k", "o1", None).await.unwrap());
    let listener = waiter.release_listener("k").unwrap();
    assert!(
        holder
            .delete("k", "intruder")
            .await
            .unwrap_err()
            .is_not_owned()
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(200), listener)
            .await
            .is_err(),
        "a refused release woke a waiter"
    );
    let mut raw = Raw::connect(Backend::Postgres, &url).await;
    raw.drop_table(&table).await;
}

/// A raw PostgreSQL connection that ran the store's own acquire of key `k` for `owner`
/// (TTL 30 s) inside a transaction it leaves open.
async fn acquire_in_open_transaction(url: &str, table: &str, owner: &str) -> Raw {
    let acquire = lock_store_database::statements(Backend::Postgres, table)
        .unwrap()
        .acquire;
    let mut raw = Raw::connect(Backend::Postgres, url).await;
    raw.exec(&format!(
        "BEGIN; PREPARE acquire(bytea, bytea, bigint) AS {acquire}; \
         EXECUTE acquire(convert_to('k', 'UTF8'), convert_to('{owner}', 'UTF8'), 30000)"
    ))
    .await;
    raw
}

/// A denied acquire decides on its snapshot and writes nothing: it takes no row lock
/// (so the holder's release never waits for a waiter's try to commit) and no
/// transaction id (so its commit flushes nothing to disk).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_denied_acquire_locks_and_writes_nothing() {
    let table = unique("denied");
    let Some((holder, url)) = open(Backend::Postgres, &table).await else {
        return;
    };
    assert!(holder.save("k", "o1", None).await.unwrap());
    // The store's own acquire, by another owner, inside a transaction left open.
    let mut waiter = acquire_in_open_transaction(&url, &table, "o2").await;
    let xid = "SELECT COALESCE(txid_current_if_assigned(), 0)::bigint AS n";
    assert_eq!(waiter.n(xid).await, 0, "the denied acquire wrote something");
    let released = tokio::time::timeout(Duration::from_secs(2), holder.delete("k", "o1")).await;
    assert!(
        matches!(released, Ok(Ok(()))),
        "the holder's release waited for the denied acquire's transaction: {released:?}"
    );
    waiter.exec("COMMIT").await;
    assert!(
        !holder.exists("k").await.unwrap(),
        "the denial took the lock"
    );
    waiter.drop_table(&table).await;
}

#[tokio::test]
async fn postgres_an_acquire_lost_to_a_first_insert_is_not_told_never_expires() {
    let table = unique("first");
    let Some((store, url)) = open(Backend::Postgres, &table).await else {
        return;
    };
    // Another process's first acquire of the key, with a TTL, not yet committed.
    let mut other = acquire_in_open_transaction(&url, &table, "o1").await;
    // This acquire's snapshot has no row; its insert waits for the other transaction.
    let racing = tokio::spawn(async move {
        store
            .try_acquire("k", "o2", Some(Duration::from_secs(30)))
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    other.exec("COMMIT").await;
    let lost = racing.await.unwrap().unwrap();
    assert!(!lost.acquired);
    assert!(
        lost.holder_expires_in.is_some(),
        "a holder with a TTL was reported as never expiring"
    );
    other.drop_table(&table).await;
}

/// Dropping an operation's future mid-statement must not hand a half-used connection
/// back to the pool: with a single pooled connection, every later call still works.
async fn cancelled_statements_do_not_poison_the_pool(backend: Backend) {
    let table = unique("cancelled");
    let url = url(backend);
    let Some(store) = connect_or_skip(
        DatabaseStoreOptions::new(url.clone())
            .table_name(&table)
            .max_connections(1),
        backend,
    )
    .await
    else {
        return;
    };
    let mut cancelled = 0;
    for i in 0..40u64 {
        let key = format!("k{i}");
        // Cancel at varying points of the round trip.
        let cut = Duration::from_micros(50 * (i % 10 + 1));
        if tokio::time::timeout(cut, store.try_acquire(&key, "owner", None))
            .await
            .is_err()
        {
            cancelled += 1;
        }
        let _ = tokio::time::timeout(cut, store.delete(&key, "owner")).await;
    }
    for i in 0..10 {
        let key = format!("after{i}");
        assert!(
            store.save(&key, "o", None).await.unwrap(),
            "{backend}: save after cancellations"
        );
        assert!(store.exists(&key).await.unwrap());
        store.delete(&key, "o").await.unwrap();
    }
    println!("{backend}: {cancelled} of 40 acquires cancelled mid-flight");
    Raw::connect(backend, &url).await.drop_table(&table).await;
}

/// The release of a lock with an expiry commits without waiting for its disk flush
/// (`synchronous_commit = off` for its transaction only); the release of a lock without
/// expiry keeps the session's setting, and acquires and extensions stay durable, also
/// right after a lazy release on the same connection. See the crate's note on lazy
/// releases.
#[tokio::test]
async fn postgres_a_release_waits_for_the_disk_only_for_a_lock_without_expiry() {
    let table = unique("lazy");
    let url = url(Backend::Postgres);
    // One connection: every statement runs right after the previous one on it.
    let options = DatabaseStoreOptions::new(url.clone())
        .table_name(&table)
        .max_connections(1);
    let Some(store) = connect_or_skip(options, Backend::Postgres).await else {
        return;
    };
    let release = lock_store_database::statements(Backend::Postgres, &table)
        .unwrap()
        .release;
    let mut raw = Raw::connect(Backend::Postgres, &url).await;
    raw.exec(&format!("PREPARE release(bytea, bytea, text) AS {release}"))
        .await;
    let setting = "SELECT CASE current_setting('synchronous_commit') \
        WHEN 'off' THEN 0 WHEN 'on' THEN 1 WHEN 'remote_apply' THEN 2 ELSE 3 END::bigint AS n";
    // The store's own release statement, inside a transaction: what it leaves set, in a
    // session at the default (`on`) and in one set to `remote_apply`.
    for (session, configured) in [("on", 1), ("remote_apply", 2)] {
        raw.exec(&format!("SET synchronous_commit = {session}"))
            .await;
        for (ttl, want) in [(Some(Duration::from_secs(30)), 0), (None, configured)] {
            assert!(store.save("k", "o1", ttl).await.unwrap());
            raw.exec(
                "BEGIN; EXECUTE release(convert_to('k', 'UTF8'), convert_to('o1', 'UTF8'), 'c')",
            )
            .await;
            assert_eq!(
                raw.n(setting).await,
                want,
                "synchronous_commit after the release of a lock with ttl {ttl:?} in a \
                 session set to {session}"
            );
            raw.exec("COMMIT").await;
            assert!(!store.exists("k").await.unwrap(), "not released");
            assert_eq!(
                raw.n(setting).await,
                configured,
                "it outlived its transaction"
            );
        }
    }
    raw.exec("SET synchronous_commit = on").await;
    // Through the store. A durable commit is never judged lazy (see `committed_lazily`),
    // so every acquire, extension and release without expiry is checked each time; a
    // lazy release is seen unless another session's commit flushed the WAL in between,
    // so releases go on until one has been seen (at least 20, at most 500).
    let ttl = Some(Duration::from_secs(30));
    let (mut lazy, mut rounds) = (0, 0);
    while rounds < 500 && (rounds < 20 || lazy == 0) {
        rounds += 1;
        let acquire = async { assert!(store.save("k", "o1", ttl).await.unwrap()) };
        assert!(
            !raw.committed_lazily(acquire).await,
            "an acquire (after a lazy release on its connection) was lazy"
        );
        let extend = async {
            store
                .extend("k", "o1", Duration::from_secs(30))
                .await
                .unwrap()
        };
        assert!(!raw.committed_lazily(extend).await, "an extension was lazy");
        let release = async { store.delete("k", "o1").await.unwrap() };
        lazy += usize::from(raw.committed_lazily(release).await);
    }
    assert!(
        lazy > 0,
        "none of {rounds} releases of a lock with an expiry was lazy"
    );
    for _ in 0..20 {
        assert!(store.save("k", "o1", None).await.unwrap());
        let release = async { store.delete("k", "o1").await.unwrap() };
        assert!(
            !raw.committed_lazily(release).await,
            "a release of a lock without expiry was lazy"
        );
    }
    println!("lazy releases seen: {lazy} of {rounds}");
    raw.drop_table(&table).await;
}
