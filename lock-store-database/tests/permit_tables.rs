//! The permits table on PostgreSQL, MariaDB/MySQL and SQLite: its published DDL, lock
//! table names that leave no room for it, input rejected before any SQL, and (on
//! PostgreSQL) release notification kept apart from the locks'. Every test uses its
//! own table.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{Raw, connect_or_skip, open, second, unique, url};
use lock_core::{LockError, LockFactory, LockStore, PermitRequest, PermitStore};
use lock_store_database::{Backend, DatabaseStore, DatabaseStoreOptions, ddl, permits_ddl};

per_backend!(
    published_permits_ddl_is_what_the_store_needs,
    a_lock_table_name_without_room_for_the_permits_table_keeps_locks_working,
    permit_input_outside_the_domain_is_invalid_argument_before_any_sql,
);

fn assert_invalid<T: std::fmt::Debug>(what: &str, result: Result<T, LockError>) {
    match result {
        Err(LockError::InvalidArgument(_)) => {}
        other => panic!("{what}: expected InvalidArgument, got {other:?}"),
    }
}

fn permits(store: &DatabaseStore) -> &dyn PermitStore {
    store.permits().expect("the database store offers permits")
}

/// With `create_table(false)`, tables made from `ddl` and `permits_ddl` are all the
/// store needs; without the permits table the store still builds and locks work, and
/// permit operations fail with a `Storage` error instead.
async fn published_permits_ddl_is_what_the_store_needs(backend: Backend) {
    let Some((reach, url)) = open(backend, &unique("reach")).await else {
        return;
    };
    let mut raw = Raw::connect(backend, &url).await;
    raw.drop_table(reach.table_name()).await;
    let table = unique("migrated");
    raw.exec(&ddl(backend, &table).unwrap()).await;
    let options = DatabaseStoreOptions::new(url.clone())
        .table_name(&table)
        .create_table(false);
    let store = DatabaseStore::connect(options.clone())
        .await
        .expect("the lock table alone is enough to build a store");
    assert!(store.save("k", "o", None).await.unwrap());
    let missing = permits(&store)
        .try_acquire_permit("k", "o", PermitRequest::new(2, 1, None))
        .await
        .expect_err("no permits table");
    assert!(missing.is_storage(), "{backend}: {missing}");

    raw.exec(&permits_ddl(backend, &table).unwrap()).await;
    let store = DatabaseStore::connect(options).await.unwrap();
    let got = permits(&store)
        .try_acquire_permit("k", "o", PermitRequest::new(2, 1, None))
        .await
        .unwrap();
    assert!(got.acquired && got.fencing_token.is_some(), "{got:?}");
    permits(&store).release_permit("k", "o").await.unwrap();
    raw.drop_table(&table).await;
}

/// A lock table name of 56 to 63 bytes is a valid lock table, but `<name>_permits`
/// would not fit an identifier: the store builds and its locks work, and permit
/// operations answer `InvalidArgument` naming the limit.
async fn a_lock_table_name_without_room_for_the_permits_table_keeps_locks_working(
    backend: Backend,
) {
    let base = unique("long");
    let table = format!("{base}{}", "_".repeat(60 - base.len()));
    let Some((store, url)) = open(backend, &table).await else {
        return;
    };
    assert!(store.save("k", "o", None).await.unwrap(), "locks must work");
    let err = permits(&store)
        .try_acquire_permit("k", "o", PermitRequest::new(2, 1, None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "E_INVALID_ARGUMENTS", "{err}");
    assert!(err.to_string().contains("at most 55 bytes"), "{err}");
    assert_invalid("usage", permits(&store).permit_usage("k").await);
    let semaphore = LockFactory::new(store.clone())
        .create_semaphore("k", 2)
        .unwrap();
    assert_invalid("Semaphore::acquire", semaphore.acquire_immediately().await);
    assert!(permits_ddl(backend, &table).is_err());
    Raw::connect(backend, &url).await.drop_table(&table).await;
}

/// Every permit method rejects input outside the domain with `InvalidArgument`, and
/// writes nothing.
async fn permit_input_outside_the_domain_is_invalid_argument_before_any_sql(backend: Backend) {
    let table = unique("permit_domain");
    let Some((store, url)) = open(backend, &table).await else {
        return;
    };
    let p = permits(&store);
    let long = "k".repeat(lock_core::MAX_KEY_LEN + 1);
    let ok = PermitRequest::new(2, 1, Some(Duration::from_secs(10)));
    let bad_durations = [
        Duration::ZERO,
        Duration::from_micros(999),
        lock_core::MAX_TTL + Duration::from_secs(1),
    ];
    for key in ["", "a\0b", long.as_str()] {
        let what = |m: &str| format!("{m} with key {key:?}");
        assert_invalid(&what("acquire"), p.try_acquire_permit(key, "o", ok).await);
        assert_invalid(&what("release"), p.release_permit(key, "o").await);
        let second = Duration::from_secs(1);
        assert_invalid(&what("extend"), p.extend_permit(key, "o", second).await);
        assert_invalid(&what("force"), p.force_release_permits(key).await);
        assert_invalid(&what("usage"), p.permit_usage(key).await);
    }
    for owner in ["", "o'; DROP TABLE x; --", "\"}]", "a b", "é"] {
        let what = |m: &str| format!("{m} with owner {owner:?}");
        assert_invalid(&what("acquire"), p.try_acquire_permit("k", owner, ok).await);
        assert_invalid(&what("release"), p.release_permit("k", owner).await);
    }
    let mut requests = vec![
        PermitRequest::new(0, 1, None),
        PermitRequest::new(2, 0, None),
        PermitRequest::new(2, 3, None),
        PermitRequest::new(lock_core::permits::RW_LIMIT + 1, 1, None),
    ];
    for bad in bad_durations {
        requests.push(PermitRequest::new(2, 1, Some(bad)));
        requests.push(ok.reserving(Some(bad)));
    }
    for request in requests {
        let got = p.try_acquire_permit("k", "o", request).await;
        assert_invalid(&format!("acquire {request:?}"), got);
    }
    let mut raw = Raw::connect(backend, &url).await;
    let t = raw.table(&format!("{table}_permits"));
    let rows = raw.n(&format!("SELECT COUNT(*) AS n FROM {t}")).await;
    assert_eq!(rows, 0, "{backend}: rejected input reached the table");
    // An extension outside the domain, of a live holding: rejected, not applied.
    assert!(p.try_acquire_permit("k", "o", ok).await.unwrap().acquired);
    for bad in bad_durations {
        assert_invalid(
            &format!("extend {bad:?}"),
            p.extend_permit("k", "o", bad).await,
        );
    }
    assert_eq!(p.permit_usage("k").await.unwrap().holders, 1);
    p.release_permit("k", "o").await.unwrap();
    raw.drop_table(&table).await;
}

// ---- PostgreSQL only ---------------------------------------------------------------

/// A permit release (or force release) by one store instance wakes the permit waiters
/// of that key on another instance within milliseconds — and not the lock waiters of
/// the same key string, nor permit waiters of another key; a lock release wakes no
/// permit waiter; a refused release wakes no one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_permit_releases_wake_only_permit_waiters_of_the_key() {
    let table = unique("permit_notify");
    let Some(holder) = connect_or_skip(
        DatabaseStoreOptions::new(url(Backend::Postgres)).table_name(&table),
        Backend::Postgres,
    )
    .await
    else {
        return;
    };
    let waiter = second(&url(Backend::Postgres), &table).await;
    let quiet = |f| async move {
        tokio::time::timeout(Duration::from_millis(150), f)
            .await
            .is_err()
    };
    // Both LISTEN connections are up once their first listener is woken.
    let warm_permits = permits(&waiter).permit_release_listener("warmup").unwrap();
    let warm_locks = waiter.release_listener("warmup").unwrap();
    for warm in [warm_permits, warm_locks] {
        tokio::time::timeout(Duration::from_secs(5), warm)
            .await
            .expect("LISTEN connection established");
    }
    let request = PermitRequest::new(2, 1, None);
    for by_force in [false, true] {
        assert!(
            permits(&holder)
                .try_acquire_permit("k", "o1", request)
                .await
                .unwrap()
                .acquired
        );
        assert!(holder.save("k", "o1", None).await.unwrap());
        let woken = permits(&waiter).permit_release_listener("k").unwrap();
        let other_key = permits(&waiter).permit_release_listener("other").unwrap();
        let lock_waiter = waiter.release_listener("k").unwrap();
        let started = Instant::now();
        if by_force {
            permits(&holder).force_release_permits("k").await.unwrap();
        } else {
            permits(&holder).release_permit("k", "o1").await.unwrap();
        }
        tokio::time::timeout(Duration::from_secs(2), woken)
            .await
            .expect("a permit release must wake the other instance's permit waiter");
        let latency = started.elapsed();
        println!("permit release (force: {by_force}) woke another instance in {latency:?}");
        assert!(
            latency < Duration::from_millis(250),
            "slow wake-up: {latency:?}"
        );
        assert!(quiet(other_key).await, "a permit release woke another key");
        assert!(
            quiet(lock_waiter).await,
            "a permit release woke a lock waiter"
        );

        let permit_waiter = permits(&waiter).permit_release_listener("k").unwrap();
        let lock_waiter = waiter.release_listener("k").unwrap();
        holder.delete("k", "o1").await.unwrap();
        tokio::time::timeout(Duration::from_secs(2), lock_waiter)
            .await
            .expect("the lock release still wakes lock waiters");
        assert!(
            quiet(permit_waiter).await,
            "a lock release woke a permit waiter"
        );
    }
    assert!(
        permits(&holder)
            .try_acquire_permit("k", "o1", request)
            .await
            .unwrap()
            .acquired
    );
    let listener = permits(&waiter).permit_release_listener("k").unwrap();
    let refused = permits(&holder).release_permit("k", "intruder").await;
    assert!(refused.unwrap_err().is_not_owned());
    assert!(
        quiet(listener).await,
        "a refused permit release woke a waiter"
    );
    Raw::connect(Backend::Postgres, &url(Backend::Postgres))
        .await
        .drop_table(&table)
        .await;
}
