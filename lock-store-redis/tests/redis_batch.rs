//! Acquires and releases sent together while the in-flight limit is reached
//! (`RedisStoreOptions::with_max_in_flight`), against the Redis at `LOCK_REDIS_URL`.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{redis_url, shared_store_with, unique};
use fred::prelude::*;
use futures_util::future::join_all;
use lock_core::LockStore;
use lock_store_redis::{RedisStore, RedisStoreOptions};

const TTL: Option<Duration> = Some(Duration::from_secs(30));

/// A store that sends one operation at a time: every other one queues for a batch.
async fn one_in_flight() -> Option<RedisStore> {
    shared_store_with(|options| options.with_max_in_flight(1)).await
}

#[tokio::test]
async fn queued_operations_go_in_one_batch_each_with_its_own_reply() {
    let Some(store) = one_in_flight().await else {
        return;
    };
    let keys: Vec<String> = (0..20).map(|i| unique(&format!("batch{i}"))).collect();
    let acquired = join_all(keys.iter().map(|key| store.try_acquire(key, "owner", TTL))).await;
    let (batches, operations) = store.batches_sent();
    assert!(batches >= 1, "nothing was batched");
    assert!(operations >= 2, "{operations}");
    let mut tokens = HashSet::new();
    for acquisition in acquired {
        let acquisition = acquisition.expect("acquire");
        assert!(acquisition.acquired);
        tokens.insert(acquisition.fencing_token.expect("a token"));
    }
    for key in &keys {
        assert!(store.exists(key).await.unwrap(), "{key} is held");
    }
    // Releases in a batch too, owner-checked: another owner's are refused.
    let wrong = join_all(keys.iter().map(|key| store.delete(key, "other"))).await;
    assert!(wrong.iter().all(|r| r.as_ref().unwrap_err().is_not_owned()));
    let released = join_all(keys.iter().map(|key| store.delete(key, "owner"))).await;
    assert!(released.iter().all(Result::is_ok), "{released:?}");
    for key in &keys {
        assert!(!store.exists(key).await.unwrap(), "{key} is free");
    }
    assert!(store.batches_sent().0 >= batches + 2);
}

#[tokio::test]
async fn racing_acquires_of_one_key_in_a_batch_grant_it_once() {
    let Some(store) = one_in_flight().await else {
        return;
    };
    for _ in 0..5 {
        let key = unique("race");
        let owners: Vec<String> = (0..16).map(|i| format!("owner-{i}")).collect();
        let results = join_all(
            owners
                .iter()
                .map(|owner| store.try_acquire(&key, owner, TTL)),
        )
        .await;
        let winners: Vec<&String> = owners
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.as_ref().expect("acquire").acquired)
            .map(|(owner, _)| owner)
            .collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        // Each denial carries the holder's remaining time.
        for result in &results {
            let acquisition = result.as_ref().unwrap();
            if !acquisition.acquired {
                let left = acquisition.holder_expires_in.expect("the holder's time");
                assert!(left <= Duration::from_secs(30) && left > Duration::from_secs(25));
            }
        }
        store.delete(&key, winners[0]).await.unwrap();
    }
    assert!(store.batches_sent().0 >= 1, "nothing was batched");
}

#[tokio::test]
async fn a_release_and_an_acquire_in_one_batch_give_the_next_token() {
    let Some(store) = one_in_flight().await else {
        return;
    };
    let key = unique("handover");
    let mut last = store
        .try_acquire(&key, "first", TTL)
        .await
        .unwrap()
        .fencing_token
        .unwrap();
    let mut holder = "first".to_owned();
    let batches = store.batches_sent().0;
    for round in 0..20 {
        let next = format!("next-{round}");
        let filler = unique("filler");
        // The filler's acquire is in flight; the release and the acquire of `key` queue
        // behind it, in this order, and go in one batch.
        let (filled, released, acquired) = tokio::join!(
            store.save(&filler, "f", TTL),
            store.delete(&key, &holder),
            store.try_acquire(&key, &next, TTL),
        );
        assert!(filled.unwrap());
        released.unwrap();
        let acquired = acquired.unwrap();
        assert!(acquired.acquired, "round {round}: the release ran first");
        let token = acquired.fencing_token.unwrap();
        assert!(token > last, "token {token} after {last}");
        last = token;
        holder = next;
        store.delete(&filler, "f").await.unwrap();
    }
    assert!(store.batches_sent().0 >= batches + 20, "not batched");
    store.delete(&key, &holder).await.unwrap();
}

/// The store's own connection is blocked by a `BLPOP` sent on it, so the one operation in
/// flight stays in flight and the next ones queue.
async fn blocked_store(timeout: Duration) -> Option<(RedisStore, Client)> {
    let url = redis_url();
    let client = Builder::from_config(Config::from_url(&url).expect("url"))
        .build()
        .expect("client");
    if let Err(error) = client.init().await {
        common::skip_or_fail(lock_testkit::Skip::unreachable("redis", &url, error));
        return None;
    }
    let store = RedisStore::connect(
        RedisStoreOptions::from_client(client.clone())
            .with_timeout(timeout)
            .with_max_in_flight(1),
    )
    .await
    .expect("store");
    Some((store, client))
}

/// `BLPOP` on an empty list for `seconds`: the connection answers nothing else meanwhile.
async fn block_connection(client: &Client, list: String, seconds: f64) {
    let blpop =
        fred::types::CustomCommand::new_static("BLPOP", fred::types::ClusterHash::FirstKey, true);
    let _: Value = client
        .custom(blpop, vec![Value::from(list), Value::from(seconds)])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_queued_operation_dropped_before_its_batch_is_never_sent() {
    let Some((store, client)) = blocked_store(Duration::from_secs(5)).await else {
        return;
    };
    let (first, dropped, kept) = (unique("first"), unique("dropped"), unique("kept"));
    let blocker = unique("blocker");
    let block = {
        let client = client.clone();
        let blocker = blocker.clone();
        tokio::spawn(async move {
            block_connection(&client, blocker, 0.4).await;
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let in_flight = store.try_acquire(&first, "o", TTL);
    let queued_then_dropped = store.try_acquire(&dropped, "o", TTL);
    let queued = store.try_acquire(&kept, "o", TTL);
    let (first_result, _, kept_result) = tokio::join!(
        in_flight,
        async {
            // Polled once (queued), then dropped.
            let mut queued_then_dropped = Box::pin(queued_then_dropped);
            let _ = futures_util::poll!(queued_then_dropped.as_mut());
            drop(queued_then_dropped);
        },
        queued,
    );
    block.await.unwrap();
    assert!(first_result.unwrap().acquired);
    assert!(kept_result.unwrap().acquired);
    assert!(
        !store.exists(&dropped).await.unwrap(),
        "a dropped queued acquire was sent"
    );
    store.delete(&first, "o").await.unwrap();
    store.delete(&kept, "o").await.unwrap();
}

#[tokio::test]
async fn a_queued_operation_is_answered_within_the_operation_timeout_unsent() {
    let Some((store, client)) = blocked_store(Duration::from_millis(150)).await else {
        return;
    };
    let (first, queued, also) = (unique("first"), unique("queued"), unique("also"));
    let blocker = unique("blocker");
    let block = {
        let client = client.clone();
        tokio::spawn(async move { block_connection(&client, blocker, 0.6).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = tokio::time::Instant::now();
    // The first is sent (and held back by the blocked connection); the two others queue.
    let (first_result, queued_result, also_result) = tokio::join!(
        store.try_acquire(&first, "o", TTL),
        store.try_acquire(&queued, "o", TTL),
        store.try_acquire(&also, "o", TTL),
    );
    let took = started.elapsed();
    for result in [first_result, queued_result, also_result] {
        let error = result.unwrap_err();
        assert!(
            error.to_string().contains("timed out after 150ms"),
            "{error}"
        );
    }
    assert!(took < Duration::from_millis(400), "{took:?}");
    block.await.unwrap();
    // The queued acquires ran out of time before they could go: never sent, not even as
    // a batch.
    assert!(
        !store.exists(&queued).await.unwrap(),
        "sent after its deadline"
    );
    assert!(
        !store.exists(&also).await.unwrap(),
        "sent after its deadline"
    );
    assert_eq!(store.batches_sent(), (0, 0));
    let _ = store.delete(&first, "o").await;
}

#[tokio::test]
async fn a_default_store_batches_what_comes_while_a_command_is_in_flight() {
    let Some(store) = shared_store_with(|options| options).await else {
        return;
    };
    assert_eq!(
        RedisStoreOptions::default().max_in_flight(),
        lock_store_redis::DEFAULT_MAX_IN_FLIGHT
    );
    let keys: Vec<String> = (0..20).map(|i| unique(&format!("default{i}"))).collect();
    let acquired = join_all(keys.iter().map(|key| store.try_acquire(key, "owner", TTL))).await;
    assert!(acquired.iter().all(|a| a.as_ref().unwrap().acquired));
    let (batches, operations) = store.batches_sent();
    assert!(batches >= 1 && operations >= 2, "{batches} {operations}");
    let released = join_all(keys.iter().map(|key| store.delete(key, "owner"))).await;
    assert!(released.iter().all(Result::is_ok), "{released:?}");
}

/// A runtime that shuts down with operations queued must not leave the queue stranded: the
/// store, used from another runtime afterwards, answers (an error, since its connection
/// went with the first runtime) instead of queueing behind a task that never runs.
#[test]
fn a_runtime_shut_down_with_queued_operations_strands_nothing() {
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(store) = first.block_on(one_in_flight()) else {
        return;
    };
    let keys: Vec<String> = (0..4).map(|i| unique(&format!("shutdown{i}"))).collect();
    for key in &keys {
        let (store, key) = (store.clone(), key.clone());
        first.spawn(async move { store.try_acquire(&key, "o", TTL).await });
    }
    // Let the spawned tasks run until one is in flight and the others are queued.
    first.block_on(async {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    });
    drop(first);
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answered = second.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(10),
            store.try_acquire(&unique("after"), "o", TTL),
        )
        .await
    });
    assert!(
        answered.is_ok(),
        "the operation waited for a batch that never comes"
    );
    // Clean up what the first runtime may have acquired.
    second.block_on(async {
        if let Some(cleaner) = shared_store_with(|options| options).await {
            for key in &keys {
                let _ = cleaner.delete(key, "o").await;
            }
        }
    });
}

/// A command the store's client has no method for (this crate builds fred without its
/// list and server interfaces).
async fn command(client: &Client, name: &'static str, args: Vec<Value>) -> Result<Value, Error> {
    let command =
        fred::types::CustomCommand::new_static(name, fred::types::ClusterHash::FirstKey, false);
    client.custom(command, args).await
}

#[tokio::test]
async fn an_operation_that_fails_in_a_batch_fails_alone() {
    let Some(store) = one_in_flight().await else {
        return;
    };
    // A lock key that holds a list: any operation on it fails with WRONGTYPE.
    let bad = unique("wrongtype");
    let raw = store.client().clone();
    command(
        &raw,
        "RPUSH",
        vec![store.redis_key(&bad).into(), "x".into()],
    )
    .await
    .unwrap();
    let keys: Vec<String> = (0..12).map(|i| unique(&format!("good{i}"))).collect();
    let (before, bad_release, after) = tokio::join!(
        join_all(keys[..6].iter().map(|key| store.try_acquire(key, "o", TTL))),
        store.delete(&bad, "o"),
        join_all(keys[6..].iter().map(|key| store.try_acquire(key, "o", TTL))),
    );
    let error = bad_release.unwrap_err();
    assert!(error.to_string().contains("WRONGTYPE"), "{error}");
    assert!(
        !error
            .to_string()
            .contains("lock store failed: lock store failed"),
        "{error}"
    );
    for (key, acquired) in keys.iter().zip(before.into_iter().chain(after)) {
        assert!(acquired.expect("its own reply").acquired, "{key}");
        store.delete(key, "o").await.unwrap();
    }
    assert!(store.batches_sent().0 >= 1, "nothing was batched");
    command(&raw, "DEL", vec![store.redis_key(&bad).into()])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_release_batched_after_a_refused_acquire_still_runs() {
    let port = common::free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let port_arg = port.to_string();
    let args = ["--port", &port_arg, "--save", "", "--appendonly", "no"];
    let Some(_server) = common::process::redis_server("redis", &url, args) else {
        return;
    };
    let mut store = None;
    for _ in 0..100 {
        let options = RedisStoreOptions::from_url(url.clone())
            .with_timeout(Duration::from_secs(3))
            .with_max_in_flight(1);
        if let Ok(connected) = RedisStore::connect(options).await {
            store = Some(connected);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let store = store.expect("the private redis-server accepts connections");
    let (held, refused, filler) = (unique("held"), unique("refused"), unique("filler"));
    assert!(store.save(&held, "o", TTL).await.unwrap());
    // Full: every command that may grow memory is refused (noeviction).
    command(
        store.client(),
        "CONFIG",
        vec!["SET".into(), "maxmemory".into(), "1".into()],
    )
    .await
    .unwrap();
    // The filler's acquire is in flight; the refused acquire and the release go in one
    // batch, in this order.
    let (filled, refused_result, released) = tokio::join!(
        store.try_acquire(&filler, "o", TTL),
        store.try_acquire(&refused, "o", TTL),
        store.delete(&held, "o"),
    );
    assert!(filled.unwrap_err().to_string().contains("OOM"));
    let refused_error = refused_result.unwrap_err();
    assert!(refused_error.to_string().contains("OOM"), "{refused_error}");
    released.expect("the release after a refused acquire runs");
    assert!(!store.exists(&held).await.unwrap());
    assert_eq!(store.batches_sent(), (1, 2));
}
