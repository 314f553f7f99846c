//! Helpers shared by the Redis store's integration tests.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lock_store_redis::{RedisStore, RedisStoreOptions};

pub use lock_testkit::services::{redis_url, skip_or_fail};

/// A random suffix so parallel tests never share a key.
pub fn unique(name: &str) -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random bytes");
    format!("test.{name}.{:016x}", u64::from_le_bytes(bytes))
}

/// A store on the shared Redis, or `None` (after printing `skipped: …`) when unreachable.
pub async fn shared_store() -> Option<RedisStore> {
    shared_store_with(|o| o).await
}

/// Like [`shared_store`], with options adjusted by `f`.
pub async fn shared_store_with(
    f: impl FnOnce(RedisStoreOptions) -> RedisStoreOptions,
) -> Option<RedisStore> {
    let url = redis_url();
    let options = f(RedisStoreOptions::from_url(url.clone()).with_timeout(Duration::from_secs(3)));
    match RedisStore::connect(options).await {
        Ok(store) => Some(store),
        Err(error) => {
            skip_or_fail(format!("redis at {url} unreachable: {error}"));
            None
        }
    }
}

/// A loopback port that is free now, and whose cluster bus port (+10000) is free too.
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let mut bytes = [0u8; 2];
        getrandom::fill(&mut bytes).expect("random bytes");
        let port = 20_000 + u16::from_le_bytes(bytes) % 20_000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
        {
            return port;
        }
    }
    panic!("no free loopback port found");
}

/// A fresh temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A `redis-server` child process of this test on a loopback port; killed when dropped.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
    extra: Vec<String>,
    dir: PathBuf,
}

impl PrivateRedis {
    /// Start a server on a free port; `None` (after `skip_or_fail`) without `redis-server`.
    pub async fn start(extra: &[&str]) -> Option<PrivateRedis> {
        Self::start_on(free_port(), extra).await
    }

    /// Start a server on `port`.
    pub async fn start_on(port: u16, extra: &[&str]) -> Option<PrivateRedis> {
        let mut server = PrivateRedis {
            port,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
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
            .args(&self.extra)
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

    /// Start it again on the same port.
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
