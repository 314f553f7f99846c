//! Semaphores and reader-writer locks on PostgreSQL, MariaDB/MySQL and SQLite: the
//! limit under contention, the rules against lock-core's reference `PermitSet`, expiry
//! by the database clock, fencing tokens. Every test uses its own table.

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Raw, open, second, unique};
use lock_core::permits::RW_LIMIT;
use lock_core::{
    FactoryOptions, LockError, LockFactory, PermitRequest, PermitSet, PermitStore, RetryConfig,
};
use lock_store_database::{Backend, DatabaseStore};

per_backend!(
    a_semaphore_of_three_is_never_exceeded_by_contending_store_instances,
    permit_decisions_match_the_reference_permit_set,
    permit_expiry_follows_the_database_clock,
    permit_fencing_tokens_survive_a_deleted_row,
);

fn permits(store: &DatabaseStore) -> &dyn PermitStore {
    lock_core::LockStore::permits(store).expect("the database store offers permits")
}

/// 16 tasks × 20 cycles, half on each of two store instances (two pools, as two
/// processes would have), on a semaphore of 3: never more than 3 inside at once, and
/// 3 are let in.
async fn a_semaphore_of_three_is_never_exceeded_by_contending_store_instances(backend: Backend) {
    let table = unique("contention");
    let Some((a, url)) = open(backend, &table).await else {
        return;
    };
    let b = second(&url, &table).await;
    let options = FactoryOptions::default().retry(
        RetryConfig::default()
            .delay(Duration::from_millis(5))
            .timeout(Duration::from_secs(60)),
    );
    let factories = [
        LockFactory::with_options(a, options),
        LockFactory::with_options(b, options),
    ];
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for task in 0..16 {
        let sem = factories[task % 2].create_semaphore("imports", 3).unwrap();
        let (inside, most) = (inside.clone(), most.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                let section = || async {
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                };
                let ran = sem.run(section).await?;
                assert!(ran.is_some(), "a permit was not had within 60 s");
            }
            Ok::<_, LockError>(())
        }));
    }
    let started = std::time::Instant::now();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let most = most.load(Ordering::SeqCst);
    println!(
        "{backend}: 320 permits in {:?}, at most {most} of 3 inside at once",
        started.elapsed()
    );
    assert!(most <= 3, "{backend}: {most} holders of a semaphore of 3");
    assert_eq!(most, 3, "{backend}: the semaphore never admitted 3 at once");
    let left = factories[0].create_semaphore("imports", 3).unwrap();
    assert_eq!(left.holders().await.unwrap(), 0, "holdings left behind");
    Raw::connect(backend, &url).await.drop_table(&table).await;
}

/// A small deterministic generator (the sequence is the same on every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// 600 operations on a semaphore key (limit 3, weights 1 to 3) and a reader-writer
/// key (readers weight 1, writers all of it), by 4 owners, with and without
/// reservations: every answer of the store — granted or not, `NotOwned` or not,
/// usage — is the answer of lock-core's reference rules in memory. Durations are long,
/// so nothing expires during the run and the two clocks do not matter.
async fn permit_decisions_match_the_reference_permit_set(backend: Backend) {
    let table = unique("rules");
    let Some((store, url)) = open(backend, &table).await else {
        return;
    };
    let store = permits(&store);
    let hour = Duration::from_secs(3600);
    let now = tokio::time::Instant::now();
    let keys = [("sem", 3u32), ("rw", RW_LIMIT)];
    let mut sets = [PermitSet::default(), PermitSet::default()];
    let mut rng = Lcg(15);
    for step in 0..600 {
        let k = rng.below(2) as usize;
        let (key, limit) = keys[k];
        let owner = ["o0", "o1", "o2", "o3"][rng.below(4) as usize];
        let set = &mut sets[k];
        let what = format!("{backend} step {step}: {owner} on {key}");
        match rng.below(10) {
            0..=4 => {
                let weight = match (k, rng.below(3)) {
                    (0, w) => w as u32 + 1,
                    (_, 0) => RW_LIMIT,
                    _ => 1,
                };
                let ttl = [Some(hour), None][rng.below(2) as usize];
                let reserve = [Some(hour), None][rng.below(2) as usize];
                let request = PermitRequest::new(limit, weight, ttl).reserving(reserve);
                let want = set.try_acquire(now, owner, &request, 0).unwrap();
                let got = store.try_acquire_permit(key, owner, request).await.unwrap();
                assert_eq!(got.acquired, want.acquired, "{what}: acquire {request:?}");
                assert_eq!(got.fencing_token.is_some(), got.acquired, "{what}");
                assert_eq!(
                    got.holder_expires_in.is_some(),
                    want.holder_expires_in.is_some(),
                    "{what}: holder hint of {request:?}"
                );
            }
            5 | 6 => {
                let want = set.release(now, owner);
                let got = store.release_permit(key, owner).await;
                assert_eq!(got.is_ok(), want.is_ok(), "{what}: release {got:?}");
                if let Err(e) = got {
                    assert!(e.is_not_owned(), "{what}: {e}");
                }
            }
            7 => {
                let want = set.extend(now, owner, hour);
                let got = store.extend_permit(key, owner, hour).await;
                assert_eq!(got.is_ok(), want.is_ok(), "{what}: extend {got:?}");
            }
            8 if rng.below(4) == 0 => {
                set.clear();
                store.force_release_permits(key).await.unwrap();
            }
            _ => {}
        }
        let usage = store.permit_usage(key).await.unwrap();
        assert_eq!(usage, set.usage(now), "{what}: usage");
    }
    Raw::connect(backend, &url).await.drop_table(&table).await;
}

/// A holding's expiry is the database's now + TTL, and a holding the database clock
/// says has expired is gone for every operation, whatever the application's clock.
async fn permit_expiry_follows_the_database_clock(backend: Backend) {
    let table = unique("permit_clock");
    let Some((store, url)) = open(backend, &table).await else {
        return;
    };
    let permits = permits(&store);
    let request = PermitRequest::new(1, 1, Some(Duration::from_secs(10)));
    assert!(
        permits
            .try_acquire_permit("k", "o1", request)
            .await
            .unwrap()
            .acquired
    );
    let mut raw = Raw::connect(backend, &url).await;
    let t = raw.table(&format!("{table}_permits"));
    let (k, now) = (raw.key("k"), raw.now_expr());
    let expiry = match backend {
        Backend::Postgres => "(holders -> 0 ->> 'e')::bigint",
        Backend::Mysql => "CAST(JSON_EXTRACT(holders, '$[0].e') AS SIGNED)",
        _ => "json_extract(holders, '$[0].e')",
    };
    let left = raw
        .n(&format!(
            "SELECT {expiry} - {now} AS n FROM {t} WHERE permit_key = {k}"
        ))
        .await;
    // (+2 ms: holdings are kept two milliseconds past their TTL, the store's clock slack.)
    assert!(
        (9_000..=10_002).contains(&left),
        "{backend}: the holding expires {left} ms from the database's now"
    );
    let expire = match backend {
        Backend::Postgres => {
            format!("UPDATE {t} SET holders = jsonb_set(holders, '{{0,e}}', to_jsonb({now} - 1))")
        }
        Backend::Mysql => {
            format!("UPDATE {t} SET holders = JSON_SET(holders, '$[0].e', {now} - 1)")
        }
        _ => format!("UPDATE {t} SET holders = json_set(holders, '$[0].e', {now} - 1)"),
    };
    raw.exec(&expire).await;
    assert_eq!(permits.permit_usage("k").await.unwrap().holders, 0);
    let late = permits
        .extend_permit("k", "o1", Duration::from_secs(1))
        .await;
    assert!(
        late.unwrap_err().is_not_owned(),
        "{backend}: extend revived it"
    );
    let late = permits.release_permit("k", "o1").await;
    assert!(
        late.unwrap_err().is_not_owned(),
        "{backend}: release of an expired holding"
    );
    assert!(
        permits
            .try_acquire_permit("k", "o2", request)
            .await
            .unwrap()
            .acquired,
        "{backend}: an expired holding kept its permit"
    );
    raw.drop_table(&table).await;
}

/// Permit tokens grow while the key's row lives, and from the clock once an operator
/// deleted it (as the lock table's: see the crate docs).
async fn permit_fencing_tokens_survive_a_deleted_row(backend: Backend) {
    let table = unique("permit_fence");
    let Some((store, url)) = open(backend, &table).await else {
        return;
    };
    let permits = permits(&store);
    let request = PermitRequest::new(2, 1, None);
    let mut last = 0;
    let mut raw = Raw::connect(backend, &url).await;
    let t = raw.table(&format!("{table}_permits"));
    for round in 0..6 {
        let got = permits.try_acquire_permit("k", "o", request).await.unwrap();
        let token = got.fencing_token.expect("a granted permit has a token");
        assert!(
            token > last,
            "{backend} round {round}: token {token} after {last}"
        );
        last = token;
        permits.release_permit("k", "o").await.unwrap();
        if round % 2 == 1 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            raw.exec(&format!("DELETE FROM {t}")).await;
        }
    }
    raw.drop_table(&table).await;
}

/// PostgreSQL: the release of a holding with an expiry commits lazily, one without
/// expiry durably, and acquires and extensions stay durable right after a lazy release
/// on the same connection (see the crate's note on lazy releases; the lock table's test
/// says how a lazy commit is seen, and checks the setting itself).
#[tokio::test]
async fn postgres_a_permit_release_waits_for_the_disk_only_for_a_holding_without_expiry() {
    let table = unique("permit_lazy");
    let url = common::url(Backend::Postgres);
    let options = lock_store_database::DatabaseStoreOptions::new(url.clone())
        .table_name(&table)
        .max_connections(1);
    let Some(store) = common::connect_or_skip(options, Backend::Postgres).await else {
        return;
    };
    let permits = permits(&store);
    let mut raw = Raw::connect(Backend::Postgres, &url).await;
    let with_ttl = PermitRequest::new(2, 1, Some(Duration::from_secs(30)));
    let (mut lazy, mut rounds) = (0, 0);
    while rounds < 500 && (rounds < 20 || lazy == 0) {
        rounds += 1;
        let acquire = async {
            let granted = permits.try_acquire_permit("k", "o1", with_ttl).await;
            assert!(granted.unwrap().acquired);
        };
        assert!(
            !raw.committed_lazily(acquire).await,
            "a permit acquire (after a lazy release on its connection) was lazy"
        );
        let extend = async {
            let extended = permits.extend_permit("k", "o1", Duration::from_secs(30));
            extended.await.unwrap()
        };
        assert!(!raw.committed_lazily(extend).await, "an extension was lazy");
        let release = async { permits.release_permit("k", "o1").await.unwrap() };
        lazy += usize::from(raw.committed_lazily(release).await);
    }
    assert!(
        lazy > 0,
        "none of {rounds} releases of a holding with an expiry was lazy"
    );
    for _ in 0..20 {
        let request = PermitRequest::new(2, 1, None);
        let granted = permits.try_acquire_permit("k", "o1", request).await;
        assert!(granted.unwrap().acquired);
        let release = async { permits.release_permit("k", "o1").await.unwrap() };
        assert!(
            !raw.committed_lazily(release).await,
            "a release of a holding without expiry was lazy"
        );
    }
    raw.drop_table(&table).await;
}
