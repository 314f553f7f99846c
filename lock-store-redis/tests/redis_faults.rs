//! Fault tests: a connection lost mid-command, a stopped server. They use private
//! `redis-server` processes on spare loopback ports, never the shared one.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{PrivateRedis, unique};
use fred::prelude::*;
use lock_core::{LockError, LockStore};
use lock_store_redis::{RedisStore, RedisStoreOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TTL: Option<Duration> = Some(Duration::from_secs(30));

/// A TCP proxy in front of Redis. When armed, the next reply from the server is swallowed
/// and the client's connection is cut: the command ran on the server, its answer is lost.
struct ReplyEatingProxy {
    port: u16,
    armed: Arc<AtomicBool>,
    frozen: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl ReplyEatingProxy {
    async fn start(upstream_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let frozen = Arc::new(AtomicBool::new(false));
        let (flag, freeze) = (armed.clone(), frozen.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
                    continue;
                };
                tokio::spawn(pump(client, server, flag.clone(), freeze.clone()));
            }
        });
        ReplyEatingProxy {
            port,
            armed,
            frozen,
            task,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// From now on every reply is dropped and the connection stays open: a server that
    /// stopped answering.
    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }
}

impl Drop for ReplyEatingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(
    client: TcpStream,
    server: TcpStream,
    armed: Arc<AtomicBool>,
    frozen: Arc<AtomicBool>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match server_read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if frozen.load(Ordering::SeqCst) {
                    continue;
                }
                if armed.swap(false, Ordering::SeqCst) {
                    // Swallow the reply and cut the client off.
                    break;
                }
                if client_write.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    upstream.abort();
    let _ = client_write.shutdown().await;
}

/// Without our protection, fred re-sends an in-flight `SET NX` after a reconnect and reports
/// "held" for a lock that we hold. This proves the proxy reproduces the trap.
#[tokio::test]
async fn control_plain_fred_retry_turns_our_set_nx_into_a_false_denial() {
    let Some(server) = PrivateRedis::start(&[]).await else {
        return;
    };
    let proxy = ReplyEatingProxy::start(server.port).await;
    let client = Builder::from_config(Config::from_url(&proxy.url()).unwrap())
        .with_connection_config(|c| c.max_command_attempts = 3)
        .set_policy(ReconnectPolicy::new_constant(0, 50))
        .build()
        .unwrap();
    client.init().await.unwrap();
    let key = unique("control");
    proxy.arm();
    let reply: Option<String> = client
        .set(&key, "me", None, Some(SetOptions::NX), false)
        .await
        .unwrap();
    assert_eq!(reply, None, "the re-sent SET NX answers nil (denied)...");
    let direct = Builder::from_config(Config::from_url(&server.url()).unwrap())
        .build()
        .unwrap();
    direct.init().await.unwrap();
    let holder: Option<String> = direct.get(&key).await.unwrap();
    assert_eq!(
        holder.as_deref(),
        Some("me"),
        "...although the lock is ours"
    );
}

#[tokio::test]
async fn connection_lost_mid_acquire_is_a_storage_error_not_a_false_denial() {
    let Some(server) = PrivateRedis::start(&[]).await else {
        return;
    };
    let proxy = ReplyEatingProxy::start(server.port).await;
    let store = RedisStore::connect(
        RedisStoreOptions::from_url(proxy.url()).with_timeout(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    // Load the scripts first, so the swallowed reply is the acquire itself.
    let warm = unique("warm");
    assert!(store.save(&warm, "me", TTL).await.unwrap());
    store.delete(&warm, "me").await.unwrap();

    for round in 0..3 {
        let key = unique("mid-flight");
        proxy.arm();
        let result = store.try_acquire(&key, "me", TTL).await;
        let err = match result {
            Err(err) => err,
            Ok(got) => panic!("round {round}: lost reply reported as {got:?} instead of an error"),
        };
        assert!(err.is_storage(), "round {round}: {err:?}");
        // The command did run on the server: the lock is ours, and only an error told us.
        let direct = RedisStore::connect(RedisStoreOptions::from_url(server.url()))
            .await
            .unwrap();
        assert!(
            direct.exists(&key).await.unwrap(),
            "round {round}: SET NX ran on the server"
        );
        // What lock-core does after a Storage error during acquire: owner-checked release.
        // The store has reconnected by now.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match store.delete(&key, "me").await {
                Ok(()) => break,
                Err(e) if e.is_storage() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("round {round}: cleanup failed: {e:?}"),
            }
        }
        assert!(!direct.exists(&key).await.unwrap());
    }
}

#[tokio::test]
async fn stopped_redis_gives_storage_errors_within_timeout_then_recovers() {
    let Some(mut server) = PrivateRedis::start(&[]).await else {
        return;
    };
    let timeout = Duration::from_millis(800);
    let store =
        RedisStore::connect(RedisStoreOptions::from_url(server.url()).with_timeout(timeout))
            .await
            .unwrap();
    let key = unique("stopped");
    assert!(store.save(&key, "me", TTL).await.unwrap());

    server.stop();
    let slack = Duration::from_millis(500);
    for op in ["save", "delete", "extend", "force_delete", "exists"] {
        let started = Instant::now();
        let result = match op {
            "save" => store.save(&key, "other", TTL).await.map(|_| ()),
            "delete" => store.delete(&key, "me").await,
            "extend" => store.extend(&key, "me", Duration::from_secs(5)).await,
            "force_delete" => store.force_delete(&key).await,
            _ => store.exists(&key).await.map(|_| ()),
        };
        let elapsed = started.elapsed();
        let err = result.expect_err(op);
        assert!(err.is_storage(), "{op}: {err:?}");
        assert!(
            elapsed <= timeout + slack,
            "{op} took {elapsed:?}, timeout {timeout:?}"
        );
    }

    server
        .restart()
        .await
        .expect("restart the private redis-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    let recovered = loop {
        match store.save(&key, "again", TTL).await {
            Ok(acquired) => break acquired,
            Err(e) if e.is_storage() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("no recovery after restart: {e:?}"),
        }
    };
    assert!(recovered, "fresh server: the key is free");
    store
        .extend(&key, "again", Duration::from_secs(5))
        .await
        .unwrap();
    store.delete(&key, "again").await.unwrap();
    assert!(!store.exists(&key).await.unwrap());
}

#[tokio::test]
async fn release_listener_is_woken_after_subscriber_reconnects() {
    let Some(mut server) = PrivateRedis::start(&[]).await else {
        return;
    };
    let store = RedisStore::connect(
        RedisStoreOptions::from_url(server.url()).with_timeout(Duration::from_millis(800)),
    )
    .await
    .unwrap();
    let other = RedisStore::connect(RedisStoreOptions::from_url(server.url()))
        .await
        .unwrap();
    let key = unique("resub");
    let first = store.release_listener(&key).unwrap();
    tokio::time::timeout(Duration::from_secs(3), first)
        .await
        .expect("subscribed");

    let waiting = store.release_listener(&key).unwrap();
    server
        .restart()
        .await
        .expect("restart the private redis-server");
    // A reconnect wakes everyone (releases while disconnected are lost).
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("reconnect wakes waiters");

    // And the subscription is back: a release by another store is seen again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if other.save(&key, "o", TTL).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "other store never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listener = store.release_listener(&key).unwrap();
        // Denied first, as a waiter is: that makes the release publish.
        assert!(!store.try_acquire(&key, "w", TTL).await.unwrap().acquired);
        other.force_delete(&key).await.unwrap();
        if tokio::time::timeout(Duration::from_millis(300), listener)
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "re-subscription never delivered a release"
        );
        assert!(other.save(&key, "o", TTL).await.unwrap());
    }
}

/// Commands the server processed so far (each `INFO` call counts itself too).
async fn commands_processed(admin: &Client) -> i64 {
    let info: String = admin
        .info(Some(fred::types::InfoKind::Stats))
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("total_commands_processed in INFO stats")
}

/// Each operation is one command from the client. The server's counter also counts the
/// commands a script runs (`redis.call`), so each check names them; the `INFO` that reads the
/// counter counts itself too.
#[tokio::test]
async fn every_operation_is_one_command_once_scripts_are_loaded() {
    let Some(server) = PrivateRedis::start(&[]).await else {
        return;
    };
    let store = RedisStore::connect(RedisStoreOptions::from_url(server.url()))
        .await
        .unwrap();
    let admin = Builder::from_config(Config::from_url(&server.url()).unwrap())
        .build()
        .unwrap();
    admin.init().await.unwrap();
    let key = unique("one-trip");
    // First use of each script: NOSCRIPT, SCRIPT LOAD, EVALSHA.
    assert!(store.save(&key, "a", TTL).await.unwrap());
    store
        .extend(&key, "a", Duration::from_secs(5))
        .await
        .unwrap();
    store.delete(&key, "a").await.unwrap();
    store.force_delete(&key).await.unwrap();

    let mut before = commands_processed(&admin).await;
    let mut check = async |label: &str, inner: &[&str]| {
        let after = commands_processed(&admin).await;
        let expected = 1 + inner.len() as i64 + 1;
        assert_eq!(
            after - before,
            expected,
            "{label}: expected one command running {inner:?}, plus INFO"
        );
        before = after;
    };
    assert!(store.try_acquire(&key, "a", TTL).await.unwrap().acquired);
    check("acquire", &["SET", "TIME", "GET", "SET"]).await;
    assert!(!store.try_acquire(&key, "b", TTL).await.unwrap().acquired);
    check("denied acquire (marks a waiter)", &["SET", "SET", "PTTL"]).await;
    store
        .extend(&key, "a", Duration::from_secs(5))
        .await
        .unwrap();
    check("extend", &["GET", "PEXPIRE", "PEXPIRE"]).await;
    assert!(store.exists(&key).await.unwrap());
    check("exists", &[]).await;
    store.delete(&key, "a").await.unwrap();
    check(
        "release with a waiter",
        &["GET", "PEXPIRE", "DEL", "PUBLISH"],
    )
    .await;
    assert!(store.delete(&key, "a").await.unwrap_err().is_not_owned());
    check("release of an absent lock", &["GET"]).await;
    assert!(store.save(&key, "a", None).await.unwrap());
    check("acquire without ttl", &["SET", "TIME", "GET", "SET"]).await;
    store.force_delete(&key).await.unwrap();
    check("force release nobody waits for", &["DEL", "PEXPIRE", "DEL"]).await;
    assert!(store.save(&key, "a", None).await.unwrap());
    check("acquire again", &["SET", "TIME", "GET", "SET"]).await;
    store.delete(&key, "a").await.unwrap();
    check("release nobody waits for", &["GET", "PEXPIRE", "DEL"]).await;
}

/// A restart without persistence loses every counter: the next token must still be greater
/// than every token minted before.
#[tokio::test]
async fn fencing_tokens_increase_across_a_restart_without_persistence() {
    let Some(mut server) = PrivateRedis::start(&[]).await else {
        return;
    };
    let store = RedisStore::connect(
        RedisStoreOptions::from_url(server.url()).with_timeout(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    let keys = [unique("restart-ttl"), unique("restart-none")];
    let mut last = [0u64; 2];
    for round in 0..3 {
        for (i, key) in keys.iter().enumerate() {
            let ttl = if i == 0 { TTL } else { None };
            let got = store.try_acquire(key, "a", ttl).await.unwrap();
            let token = got.fencing_token.expect("acquired, with a token");
            assert!(
                token > last[i],
                "round {round}, {key}: {token} not above {}",
                last[i]
            );
            last[i] = token;
            store.delete(key, "a").await.unwrap();
        }
        server
            .restart()
            .await
            .expect("restart the private redis-server");
        // Wait for the store to reconnect.
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(e) = store.exists(&keys[0]).await {
            assert!(Instant::now() < deadline, "no reconnect: {e:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A server that accepts TCP and never answers: building the store fails with `Storage`
/// within one operation timeout, naming the store and the endpoint without its password.
#[tokio::test]
async fn connect_to_a_silent_server_ends_within_one_operation_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accept = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket); // open, never written to
        }
    });
    let timeout = Duration::from_secs(1);
    let limit = Duration::from_millis(1500);
    let url = format!("redis://:sekret@127.0.0.1:{port}");

    let client =
        Builder::from_config(Config::from_url(&format!("redis://127.0.0.1:{port}")).unwrap())
            .build()
            .unwrap();
    // Three ways to build a store, at once (each timed from its own start).
    let timed = async |build: std::pin::Pin<Box<dyn Future<Output = Option<LockError>>>>| {
        let started = Instant::now();
        let err = build.await.expect("a silent server must not build a store");
        (started.elapsed(), err)
    };
    let (by_url, by_factory, by_client) = tokio::join!(
        timed(Box::pin(async {
            RedisStore::connect(RedisStoreOptions::from_url(url.clone()).with_timeout(timeout))
                .await
                .err()
        })),
        // Through the factory a `LockManager` uses.
        timed(Box::pin(async {
            lock_store_redis::redis(RedisStoreOptions::from_url(url.clone()).with_timeout(timeout))
                .build()
                .await
                .err()
        })),
        // An application's client that was never connected.
        timed(Box::pin(async {
            RedisStore::connect(RedisStoreOptions::from_client(client).with_timeout(timeout))
                .await
                .err()
        })),
    );
    for (how, (elapsed, err)) in [
        ("url", by_url),
        ("factory", by_factory),
        ("shared client", by_client),
    ] {
        assert!(elapsed < limit, "{how}: building took {elapsed:?}");
        assert!(err.is_storage(), "{how}: {err:?}");
        let message = err.to_string();
        assert!(
            message.contains("redis") && message.contains(&format!("127.0.0.1:{port}")),
            "{how}: {message}"
        );
        assert!(!message.contains("sekret"), "{how}: {message}");
    }
    accept.abort();
}

/// A built store whose server stops answering (connection open, no replies): every
/// operation fails with `Storage` within the operation timeout.
#[tokio::test]
async fn every_operation_on_a_server_that_stops_answering_ends_within_the_timeout() {
    let Some(server) = PrivateRedis::start(&[]).await else {
        return;
    };
    let proxy = ReplyEatingProxy::start(server.port).await;
    let timeout = Duration::from_millis(800);
    let store = RedisStore::connect(RedisStoreOptions::from_url(proxy.url()).with_timeout(timeout))
        .await
        .unwrap();
    let key = unique("frozen");
    assert!(store.save(&key, "me", TTL).await.unwrap());
    proxy.freeze();
    let slack = Duration::from_millis(500);
    // All at once (each timed from its own start), so the test takes one timeout.
    let mut tasks = Vec::new();
    for op in [
        "save",
        "try_acquire",
        "delete",
        "extend",
        "force_delete",
        "exists",
    ] {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let result = match op {
                "save" => store.save(&key, "other", TTL).await.map(drop),
                "try_acquire" => store.try_acquire(&key, "other", TTL).await.map(drop),
                "delete" => store.delete(&key, "me").await,
                "extend" => store.extend(&key, "me", Duration::from_secs(5)).await,
                "force_delete" => store.force_delete(&key).await,
                _ => store.exists(&key).await.map(drop),
            };
            (op, started.elapsed(), result)
        }));
    }
    for task in tasks {
        let (op, elapsed, result) = task.await.unwrap();
        let err = result.expect_err(op);
        assert!(err.is_storage(), "{op}: {err:?}");
        assert!(
            elapsed <= timeout + slack,
            "{op} took {elapsed:?}, timeout {timeout:?}"
        );
    }
}
