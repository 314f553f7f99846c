//! The store contract on PostgreSQL, MariaDB/MySQL and SQLite: input validated through
//! the trait, a build bounded by one operation timeout, fencing tokens that never go
//! back, connection strings that must name their database.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{Raw, connect_or_skip, open, unique, url};
use lock_core::{LockError, LockStore};
use lock_store_database::{Backend, DatabaseStore, DatabaseStoreOptions};

per_backend!(
    trait_input_outside_the_domain_is_invalid_argument_before_any_sql,
    fencing_tokens_survive_deleted_rows_and_a_recreated_table,
    an_operation_error_names_the_store_and_the_endpoint,
);

fn assert_invalid<T: std::fmt::Debug>(what: &str, result: Result<T, LockError>) {
    match result {
        Err(LockError::InvalidArgument(_)) => {}
        other => panic!("{what}: expected InvalidArgument, got {other:?}"),
    }
}

/// Every method, called through `dyn LockStore`, rejects input outside the documented
/// domain with `InvalidArgument` — and writes nothing.
async fn trait_input_outside_the_domain_is_invalid_argument_before_any_sql(backend: Backend) {
    let table = unique("domain");
    let Some((store, url)) = open(backend, &table).await else {
        return;
    };
    let store: &dyn LockStore = &store;
    let long = "k".repeat(lock_core::MAX_KEY_LEN + 1);
    let bad_keys = ["", "a\0b", long.as_str()];
    let bad_owners = ["", "o'; DROP TABLE x; --", "é", "a b"];
    let bad_ttls = [
        Duration::ZERO,
        Duration::from_micros(999),
        lock_core::MAX_TTL + Duration::from_secs(1),
        Duration::MAX,
    ];
    let ttl = Some(Duration::from_secs(10));
    let second = Duration::from_secs(1);
    for key in bad_keys {
        let what = |m: &str| format!("{m} with key {key:?}");
        assert_invalid(&what("save"), store.save(key, "o", ttl).await);
        assert_invalid(&what("try_acquire"), store.try_acquire(key, "o", ttl).await);
        assert_invalid(&what("delete"), store.delete(key, "o").await);
        assert_invalid(&what("force_delete"), store.force_delete(key).await);
        assert_invalid(&what("exists"), store.exists(key).await);
        assert_invalid(&what("extend"), store.extend(key, "o", second).await);
    }
    for owner in bad_owners {
        let what = |m: &str| format!("{m} with owner {owner:?}");
        assert_invalid(&what("save"), store.save("k", owner, ttl).await);
        assert_invalid(
            &what("try_acquire"),
            store.try_acquire("k", owner, ttl).await,
        );
        assert_invalid(&what("delete"), store.delete("k", owner).await);
        assert_invalid(&what("extend"), store.extend("k", owner, second).await);
    }
    for bad in bad_ttls {
        let what = |m: &str| format!("{m} with {bad:?}");
        assert_invalid(&what("save"), store.save("k", "o", Some(bad)).await);
        assert_invalid(
            &what("try_acquire"),
            store.try_acquire("k", "o", Some(bad)).await,
        );
    }
    // An extension outside the domain, on a lock that is held: rejected, not applied.
    assert!(store.save("held", "o", ttl).await.unwrap());
    for bad in bad_ttls {
        assert_invalid(
            &format!("extend({bad:?})"),
            store.extend("held", "o", bad).await,
        );
    }
    assert!(
        store.exists("held").await.unwrap(),
        "a rejected extend(0) released the lock"
    );
    store.delete("held", "o").await.unwrap();

    let mut raw = Raw::connect(backend, &url).await;
    let t = raw.table(&table);
    let rows = raw
        .n(&format!(
            "SELECT COUNT(*) AS n FROM {t} WHERE owner IS NOT NULL"
        ))
        .await;
    assert_eq!(rows, 0, "rejected input reached the table");
    raw.drop_table(&table).await;
}

/// Tokens never go back, even when the row holding the counter is deleted (an operator
/// purging released rows) or the table is dropped and created again.
async fn fencing_tokens_survive_deleted_rows_and_a_recreated_table(backend: Backend) {
    let table = unique("fence_reset");
    let Some((a, url)) = open(backend, &table).await else {
        return;
    };
    let mut tokens = Vec::new();
    let mut cycle = async |store: &DatabaseStore, owner: &str| {
        let acq = store.try_acquire("k", owner, None).await.unwrap();
        assert!(acq.acquired, "{owner} could not acquire");
        tokens.push(acq.fencing_token.expect("a fencing token"));
        store.delete("k", owner).await.unwrap();
    };
    for owner in ["o1", "o2", "o3"] {
        cycle(&a, owner).await;
    }
    let mut raw = Raw::connect(backend, &url).await;
    let t = raw.table(&table);
    raw.exec(&format!("DELETE FROM {t} WHERE expires_at = 0"))
        .await;
    // Without its row, a key's token comes from the clock alone: the documented rule
    // (`sql` module) assumes at least one millisecond since the key's last acquisition,
    // which fast statements (SQLite, prepared once) no longer take on their own.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    cycle(&a, "o4").await; // after the released row was purged
    drop(a);
    raw.drop_table(&table).await;
    let b = DatabaseStore::connect(DatabaseStoreOptions::new(url.clone()).table_name(&table))
        .await
        .expect("store re-creating the table");
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    cycle(&b, "o5").await; // in a re-created table
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "fencing tokens went back: {tokens:?}"
    );
    raw.drop_table(&table).await;
}

// ---- a server that accepts TCP and never answers -------------------------------------

/// A TCP listener that accepts every connection and never writes a byte.
async fn silent_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a silent listener");
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    port
}

async fn build_against_a_silent_server(scheme: &str, user: &str) {
    let port = silent_server().await;
    let timeout = Duration::from_secs(1);
    let url = format!("{scheme}://{user}:hunter2@127.0.0.1:{port}/test");
    // The build that creates the table runs two statements (DDL, then a probe when the
    // DDL fails): both share the one timeout.
    {
        let started = Instant::now();
        let result = DatabaseStore::connect(
            DatabaseStoreOptions::new(url.clone())
                .table_name(unique("silent"))
                .operation_timeout(timeout),
        )
        .await;
        let took = started.elapsed();
        let err = result.expect_err("a silent server cannot give a store");
        assert!(err.is_storage(), "{err:?}");
        assert!(
            took < timeout.mul_f32(1.5),
            "building against a silent server took {took:?} (operation timeout {timeout:?})"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{scheme} lock store"))
                && msg.contains(&format!("127.0.0.1:{port}")),
            "the error must name the store and the endpoint: {msg}"
        );
        assert!(!msg.contains("hunter2"), "password leaked: {msg}");
        println!("{scheme}: {took:?}: {msg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_build_against_a_silent_server_ends_within_one_operation_timeout() {
    build_against_a_silent_server("postgres", "postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_build_against_a_silent_server_ends_within_one_operation_timeout() {
    build_against_a_silent_server("mysql", "root").await;
}

// ---- connection strings ----------------------------------------------------------------

/// `localhost:5432` once became a SQLite file of that name: a string without a scheme
/// is now rejected, listing the schemes, and creates nothing.
#[tokio::test]
async fn a_connection_string_without_a_scheme_is_rejected_and_creates_no_file() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let absolute = dir.join(format!("{}.db", unique("no_scheme")));
    let relative = format!("localhost:{}", 40_000 + std::process::id() % 20_000);
    for url in [relative.clone(), absolute.display().to_string()] {
        let err = DatabaseStore::connect(DatabaseStoreOptions::new(url.clone()))
            .await
            .expect_err(&url);
        assert_eq!(err.code(), "E_INVALID_ARGUMENTS", "{url}: {err}");
        let msg = err.to_string();
        for scheme in ["postgres://", "mysql://", "sqlite://"] {
            assert!(msg.contains(scheme), "{url}: {msg} does not list {scheme}");
        }
    }
    let created = [std::path::PathBuf::from(&relative), absolute.clone()];
    for file in &created {
        let exists = file.exists();
        let _ = std::fs::remove_file(file);
        assert!(!exists, "{} was created", file.display());
    }
    // The explicit forms do open the file.
    for options in [
        DatabaseStoreOptions::sqlite_path(&absolute),
        DatabaseStoreOptions::new(format!("sqlite://{}", absolute.display())),
    ] {
        let store = DatabaseStore::connect(options)
            .await
            .expect("a SQLite file");
        assert!(store.save("k", "o", None).await.unwrap());
        store.delete("k", "o").await.unwrap();
    }
    assert!(absolute.exists(), "sqlite_path did not create the file");
    let _ = std::fs::remove_file(&absolute);
}

// ---- a server that stops answering after the store was built -------------------------

/// A TCP proxy to the server of `url` that forwards until frozen; then it holds every
/// connection, old and new, open and silent.
struct FreezingProxy {
    url: String,
    freeze: tokio::sync::watch::Sender<bool>,
}

impl FreezingProxy {
    async fn start(url: &str) -> FreezingProxy {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // scheme://[user@]host:port/db → the authority is what the proxy stands in for.
        let rest = &url[url.find("://").expect("a URL") + 3..];
        let start = url.len() - rest.len() + rest.find('@').map_or(0, |at| at + 1);
        let end = url[start..]
            .find('/')
            .map_or(url.len(), |slash| start + slash);
        let upstream = url[start..end].to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxied = format!(
            "{}127.0.0.1:{}{}",
            &url[..start],
            listener.local_addr().unwrap().port(),
            &url[end..]
        );
        let (freeze, frozen) = tokio::sync::watch::channel(false);
        async fn pump(
            mut from: tokio::net::tcp::OwnedReadHalf,
            mut to: tokio::net::tcp::OwnedWriteHalf,
            mut frozen: tokio::sync::watch::Receiver<bool>,
        ) {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = tokio::select! {
                    read = from.read(&mut buf) => match read {
                        Ok(n) if n > 0 => n,
                        _ => return,
                    },
                    _ = frozen.wait_for(|f| *f) => 0,
                };
                if n == 0 || *frozen.borrow() {
                    // Frozen: hold the connection, say nothing.
                    std::future::pending::<()>().await;
                }
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((client, _)) = listener.accept().await {
                if *frozen.borrow() {
                    held.push(client);
                    continue;
                }
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, frozen.clone()));
                tokio::spawn(pump(sr, cw, frozen.clone()));
            }
        });
        FreezingProxy {
            url: proxied,
            freeze,
        }
    }

    fn freeze(&self) {
        self.freeze.send_replace(true);
    }
}

async fn every_operation_is_bounded_once_the_server_goes_silent(backend: Backend) {
    let table = unique("frozen");
    let mut upstream = url(backend);
    if backend == Backend::Mysql {
        // mysql_async would otherwise move a local connection to the server's Unix
        // socket, around the proxy.
        upstream.push_str(if upstream.contains('?') { "&" } else { "?" });
        upstream.push_str("prefer_socket=false");
    }
    let proxy = FreezingProxy::start(&upstream).await;
    let timeout = Duration::from_millis(300);
    let Some(store) = connect_or_skip(
        DatabaseStoreOptions::new(proxy.url.clone())
            .table_name(&table)
            .max_connections(1)
            .operation_timeout(timeout),
        backend,
    )
    .await
    else {
        return;
    };
    assert!(store.save("held", "o", None).await.unwrap());
    proxy.freeze();
    let ttl = Some(Duration::from_secs(10));
    let second = Duration::from_secs(1);
    let mut took = Vec::new();
    for op in [
        "save",
        "try_acquire",
        "delete",
        "force_delete",
        "exists",
        "extend",
    ] {
        let started = Instant::now();
        let call = async {
            match op {
                "save" => store.save("k", "o", ttl).await.map(drop),
                "try_acquire" => store.try_acquire("k", "o", ttl).await.map(drop),
                "delete" => store.delete("held", "o").await,
                "force_delete" => store.force_delete("held").await,
                "exists" => store.exists("held").await.map(drop),
                _ => store.extend("held", "o", second).await,
            }
        };
        // A hang fails the test instead of stalling it.
        let result = tokio::time::timeout(timeout * 5, call)
            .await
            .unwrap_or_else(|_| panic!("{op} on a silent server never returned"));
        let elapsed = started.elapsed();
        let err = result.expect_err(op);
        assert!(err.is_storage(), "{op}: {err:?}");
        assert!(
            elapsed < timeout.mul_f32(1.5),
            "{op} on a silent server took {elapsed:?} (operation timeout {timeout:?})"
        );
        took.push((op, elapsed));
    }
    println!("{backend}: {took:?}");
    drop(store);
    Raw::connect(backend, &url(backend))
        .await
        .drop_table(&table)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_operation_is_bounded_once_the_server_goes_silent() {
    every_operation_is_bounded_once_the_server_goes_silent(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_every_operation_is_bounded_once_the_server_goes_silent() {
    every_operation_is_bounded_once_the_server_goes_silent(Backend::Mysql).await;
}

// ---- errors with context -----------------------------------------------------------------

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("port").port();
    drop(listener);
    port
}

/// A refused connection says which store, which endpoint (without its password) and
/// that the connection was refused, and keeps the cause chain.
async fn a_refused_connection_says_so(scheme: &str, user: &str) {
    let port = closed_port();
    let url = format!("{scheme}://{user}:hunter2@127.0.0.1:{port}/test");
    let err = DatabaseStore::connect(
        DatabaseStoreOptions::new(url).operation_timeout(Duration::from_secs(2)),
    )
    .await
    .expect_err("nothing listens on the port");
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "{scheme} lock store at {scheme}://{user}:***@127.0.0.1:{port}"
        )),
        "{message}"
    );
    assert!(
        message.to_lowercase().contains("connection refused"),
        "{message}"
    );
    assert!(!format!("{message} {err:?}").contains("hunter2"), "{err:?}");
    let context = err.store_error().expect("a StoreError in the chain");
    assert_eq!(context.store(), scheme);
    assert!(context.is_connect());
    // The driver's error is kept, and the message shows it.
    let cause = context.cause().to_string();
    assert!(
        !cause.is_empty() && message.contains(&cause),
        "{message} / {cause}"
    );
    // The `source` chain repeats nothing the message shows.
    for source in std::iter::successors(std::error::Error::source(&err), |e| (*e).source()) {
        assert!(
            !message.contains(&source.to_string()),
            "{message} / {source}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_refused_connection_says_so() {
    a_refused_connection_says_so("postgres", "postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_a_refused_connection_says_so() {
    a_refused_connection_says_so("mysql", "root").await;
}

/// A statement that fails on a built store names the store and its endpoint.
async fn an_operation_error_names_the_store_and_the_endpoint(backend: Backend) {
    let table = unique("ctx");
    let Some((store, url)) = open(backend, &table).await else {
        return;
    };
    Raw::connect(backend, &url).await.drop_table(&table).await;
    let err = store.exists("k").await.expect_err("the table is gone");
    let message = err.to_string();
    let endpoint = store.endpoint().to_owned();
    assert!(
        message.contains(&format!("{} lock store at {endpoint}", backend.name())),
        "{message}"
    );
    assert!(!err.store_error().expect("a StoreError").is_connect());
}
