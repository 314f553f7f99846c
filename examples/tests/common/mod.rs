//! Helpers shared by the reliability and security tests: unique names, stores on the
//! shared servers (or a skip), private `redis-server` processes, a PostgreSQL admin
//! connection.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lock_core::LockStore;
use lock_store_database::{DatabaseStore, DatabaseStoreOptions};
use lock_store_redis::{RedisStore, RedisStoreOptions};
#[allow(unused_imports)]
pub use lock_testkit::services::{
    mysql_url, postgres_url, redis_url, skip_or_fail, skip_unreachable,
};

/// 64 random bits as hex.
pub fn rand_hex() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random bytes");
    format!("{:016x}", u64::from_le_bytes(bytes))
}

/// A random suffix so parallel tests never share a key.
pub fn unique(name: &str) -> String {
    format!("reliability.{name}.{}", rand_hex())
}

/// A unique SQL table name (a plain identifier).
pub fn unique_table(name: &str) -> String {
    format!("rel_{name}_{}", rand_hex())
}

/// A fresh temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// The stores with a server behind them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Redis,
    Postgres,
    Mysql,
    Sqlite,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Redis, Kind::Postgres, Kind::Mysql, Kind::Sqlite];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Redis => "redis",
            Kind::Postgres => "postgres",
            Kind::Mysql => "mysql",
            Kind::Sqlite => "sqlite",
        }
    }

    /// The URL of the shared server, or a fresh SQLite file.
    pub fn url(self) -> String {
        match self {
            Kind::Redis => redis_url(),
            Kind::Postgres => postgres_url(),
            Kind::Mysql => mysql_url(),
            Kind::Sqlite => format!("sqlite://{}", temp_dir("sqlite").join("locks.db").display()),
        }
    }
}

/// The table the tests use on the shared databases (keys are unique per test).
pub const TABLE: &str = "reliability_locks";

/// Connect a store of `kind` at `url`, or print `skipped: …` (or fail under
/// `LOCK_REQUIRE_SERVICES=1`) and return `None`.
pub async fn connect(kind: Kind, url: &str) -> Option<Arc<dyn LockStore>> {
    let result: Result<Arc<dyn LockStore>, _> = match kind {
        Kind::Redis => RedisStore::connect(
            RedisStoreOptions::from_url(url).with_timeout(Duration::from_secs(3)),
        )
        .await
        .map(|s| Arc::new(s) as Arc<dyn LockStore>),
        _ => DatabaseStore::connect(
            DatabaseStoreOptions::new(url)
                .table_name(TABLE)
                .operation_timeout(Duration::from_secs(5)),
        )
        .await
        .map(|s| Arc::new(s) as Arc<dyn LockStore>),
    };
    match result {
        Ok(store) => Some(store),
        Err(e) => {
            skip_unreachable(kind.name(), url, lock_testkit::services::root_cause(&e));
            None
        }
    }
}

/// A PostgreSQL admin connection (its driver task is spawned), or `None` after a skip.
pub async fn pg_admin() -> Option<tokio_postgres::Client> {
    let url = postgres_url();
    match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Some(client)
        }
        Err(e) => {
            skip_unreachable("postgres", &url, lock_testkit::services::root_cause(&e));
            None
        }
    }
}

/// A loopback port that is free now (its cluster bus port, +10 000, too).
pub fn free_port() -> u16 {
    lock_testkit::services::free_port().expect("a free loopback port")
}

/// A loopback port with nothing listening on it (bound, then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[allow(unused_imports)]
pub use lock_testkit::services::PrivateRedis;

/// Retry `f` until it succeeds or `within` passes (for recovery after a fault).
pub async fn eventually<T, E: std::fmt::Debug, F, Fut>(within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + within;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no recovery within {within:?}: {e:?}"),
        }
    }
}
