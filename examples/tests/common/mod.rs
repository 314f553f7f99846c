//! Helpers shared by the reliability and security tests: unique names, stores on the
//! shared servers (or a skip), private `redis-server` processes, a PostgreSQL admin
//! connection.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lock_core::LockStore;
use lock_store_database::{DatabaseStore, DatabaseStoreOptions};
use lock_store_redis::{RedisStore, RedisStoreOptions};
pub use lock_testkit::services::{mysql_url, postgres_url, redis_url, skip_or_fail};

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
            skip_or_fail(format!("{} unreachable: {e}", kind.name()));
            None
        }
    }
}

/// A PostgreSQL admin connection (its driver task is spawned), or `None` after a skip.
pub async fn pg_admin() -> Option<tokio_postgres::Client> {
    match tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Some(client)
        }
        Err(e) => {
            skip_or_fail(format!("postgres unreachable: {e}"));
            None
        }
    }
}

/// A loopback port that is free now.
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let mut bytes = [0u8; 2];
        getrandom::fill(&mut bytes).expect("random bytes");
        let port = 20_000 + u16::from_le_bytes(bytes) % 20_000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port found");
}

/// A loopback port with nothing listening on it (bound, then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A `redis-server` child process of this test on a loopback port; killed when dropped.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
}

impl PrivateRedis {
    /// Start a server on a free port; `None` (after `skip_or_fail`) without `redis-server`.
    pub async fn start() -> Option<PrivateRedis> {
        let port = free_port();
        let mut server = PrivateRedis {
            port,
            child: None,
            dir: temp_dir(&format!("redis-{port}")),
        };
        match server.spawn().await {
            Ok(()) => Some(server),
            Err(reason) => {
                skip_or_fail(format!("cannot start a private redis-server: {reason}"));
                None
            }
        }
    }

    async fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(format!(
            "redis-server on port {} did not listen within 5 s",
            self.port
        ))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kill the server (SIGKILL) and wait for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port (empty: no persistence).
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await.expect("restart private redis-server");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

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
