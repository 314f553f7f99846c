//! What the project is compared with in `--compare`: peer libraries and raw clients,
//! each on a connection of its own, and the in-process sharded map.
//!
//! * `FredRaw` (in `redis.rs`): `SET key owner NX PX ttl` + `EVALSHA` of the
//!   owner-checked delete, on a fred client of its own with fred's defaults.
//! * `RedisRsRaw` (`bench` feature): the same two commands on one redis-rs multiplexed
//!   connection.
//! * `RedisRsScripts` (`bench` feature): the store's own acquire and release scripts
//!   (`RedisStore::lock_scripts`), as `EVALSHA` on one redis-rs multiplexed connection:
//!   the store's server work (fencing token, waiting marker, notification) on the
//!   fastest client here.
//! * `Rslock` (`bench` feature): `rslock` 0.10 (Redlock on redis-rs) with one server:
//!   `LockManager::lock` + `unlock` (the same two commands, as the crate sends them).
//! * `PgRaw` (`bench` feature): the store's own acquire and release statements, prepared
//!   once on one `tokio-postgres` connection (no pool, no diesel); its round trip is one
//!   prepared committed upsert.
//! * `ShardedMap`: 32 shards of `Mutex<HashMap>` with owner and expiry per key, and a
//!   fencing token per acquisition: the memory store's work without the library.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lock_core::{LockError, async_trait};
use lock_testkit::bench::Baseline;

/// Key → (owner, expiry).
type Shard = HashMap<String, (Box<str>, Instant)>;

/// An owner-checked, expiring entry per key in 32 mutex-guarded maps, and a fencing
/// token per acquisition (one counter, folded with the wall clock): the work of the
/// memory store's acquire and release, without validation, notification or `lock-core`.
pub struct ShardedMap {
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
    last_token: AtomicU64,
}

impl ShardedMap {
    pub fn new() -> ShardedMap {
        ShardedMap {
            hasher: RandomState::new(),
            shards: (0..32).map(|_| Mutex::default()).collect(),
            last_token: AtomicU64::new(0),
        }
    }

    /// `max(last + 1, wall clock in µs)`, as the memory store mints its tokens.
    fn next_token(&self) -> u64 {
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut last = self.last_token.load(Ordering::Relaxed);
        loop {
            let next = last.saturating_add(1).max(now_us);
            match self.last_token.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, Shard> {
        let i = self.hasher.hash_one(key) as usize & 31;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, key: &str, owner: &str, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut shard = self.shard(key);
        if shard.get(key).is_some_and(|(_, at)| *at > now) {
            return false;
        }
        std::hint::black_box(self.next_token());
        shard.insert(key.to_owned(), (owner.into(), now + ttl));
        true
    }

    fn delete(&self, key: &str, owner: &str) -> bool {
        let now = Instant::now();
        let mut shard = self.shard(key);
        let mine = shard
            .get(key)
            .is_some_and(|(o, at)| **o == *owner && *at > now);
        if mine {
            shard.remove(key);
        }
        mine
    }
}

#[async_trait]
impl Baseline for ShardedMap {
    fn describe(&self) -> String {
        "sharded map: 32 x Mutex<HashMap<key, (owner, expiry)>> + fencing token".to_owned()
    }

    async fn cycle(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, LockError> {
        Ok(self.save(key, owner, ttl) && self.delete(key, owner))
    }

    async fn round_trip(&self, key: &str) -> Result<(), LockError> {
        drop(self.shard(key));
        Ok(())
    }
}

#[cfg(feature = "bench")]
pub use with_feature::*;

#[cfg(feature = "bench")]
mod with_feature {
    use super::*;

    use lock_store_database::{Backend, statements};

    use crate::prepare::storage;
    use crate::redis::{REDIS_DELETE, RawRedisLock};

    /// `SET NX PX` + `EVALSHA` delete on one redis-rs multiplexed connection.
    pub struct RedisRsRaw {
        conn: redis::aio::MultiplexedConnection,
        delete: redis::Script,
    }

    impl RedisRsRaw {
        pub async fn connect(url: &str) -> Result<RedisRsRaw, LockError> {
            let client = redis::Client::open(url).map_err(storage)?;
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .map_err(storage)?;
            let delete = redis::Script::new(REDIS_DELETE);
            delete
                .prepare_invoke()
                .load_async(&mut conn)
                .await
                .map_err(storage)?;
            Ok(RedisRsRaw { conn, delete })
        }
    }

    #[async_trait]
    impl RawRedisLock for RedisRsRaw {
        fn describe(&self) -> String {
            "raw redis-rs (multiplexed): SET NX PX + EVALSHA delete".to_owned()
        }

        async fn set_nx_px(
            &self,
            key: &str,
            owner: &str,
            ttl: Duration,
        ) -> Result<bool, LockError> {
            let mut conn = self.conn.clone();
            let set: Option<String> = redis::cmd("SET")
                .arg(key)
                .arg(owner)
                .arg("NX")
                .arg("PX")
                .arg(ttl.as_millis() as u64)
                .query_async(&mut conn)
                .await
                .map_err(storage)?;
            Ok(set.is_some())
        }

        async fn delete(&self, key: &str, owner: &str) -> Result<i64, LockError> {
            let mut conn = self.conn.clone();
            self.delete
                .key(key)
                .arg(owner)
                .invoke_async(&mut conn)
                .await
                .map_err(storage)
        }
    }

    /// The store's own lock scripts ([`lock_store_redis::RedisStore::lock_scripts`]) as
    /// `EVALSHA` on one redis-rs multiplexed connection, keys named as the store names
    /// them: the server work of the store's cycle (fencing token, waiting marker, release
    /// notification) on the fastest client here, without the store, fred or lock-core.
    pub struct RedisRsScripts {
        conn: redis::aio::MultiplexedConnection,
        acquire: redis::Script,
        release: redis::Script,
        store: lock_store_redis::RedisStore,
    }

    impl RedisRsScripts {
        pub async fn connect(
            url: &str,
            store: &lock_store_redis::RedisStore,
        ) -> Result<RedisRsScripts, LockError> {
            let client = redis::Client::open(url).map_err(storage)?;
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .map_err(storage)?;
            let scripts = store.lock_scripts();
            let acquire = redis::Script::new(&scripts.acquire);
            let release = redis::Script::new(&scripts.release);
            for script in [&acquire, &release] {
                script
                    .prepare_invoke()
                    .load_async(&mut conn)
                    .await
                    .map_err(storage)?;
            }
            Ok(RedisRsScripts {
                conn,
                acquire,
                release,
                store: store.clone(),
            })
        }

        async fn release(&self, key: &str, owner: &str) -> Result<i64, LockError> {
            let mut conn = self.conn.clone();
            self.release
                .key(self.store.redis_key(key))
                .key(self.store.waiting_key(key))
                .key(self.store.fence_key(key))
                .arg(owner)
                .invoke_async(&mut conn)
                .await
                .map_err(storage)
        }
    }

    #[async_trait]
    impl Baseline for RedisRsScripts {
        fn describe(&self) -> String {
            "the store's lock scripts as EVALSHA on one redis-rs multiplexed connection".to_owned()
        }

        async fn cycle(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, LockError> {
            let mut conn = self.conn.clone();
            let ttl_ms = ttl.as_millis() as u64;
            let margin_ms = lock_store_redis::DEFAULT_FENCE_MARGIN.as_millis() as u64;
            let token: i64 = self
                .acquire
                .key(self.store.redis_key(key))
                .key(self.store.fence_key(key))
                .key(self.store.waiting_key(key))
                .arg(owner)
                .arg(ttl_ms)
                .arg(ttl_ms + margin_ms)
                .invoke_async(&mut conn)
                .await
                .map_err(storage)?;
            Ok(token > 0 && self.release(key, owner).await? == 1)
        }

        async fn round_trip(&self, key: &str) -> Result<(), LockError> {
            self.release(key, "nobody").await.map(drop)
        }
    }

    /// rslock with one server. Its `lock` takes the key for a fresh random value, its
    /// `unlock` runs the owner-checked delete script.
    pub struct Rslock {
        manager: rslock::LockManager,
    }

    impl Rslock {
        pub async fn connect(url: &str) -> Result<Rslock, LockError> {
            let mut manager = rslock::LockManager::new(vec![url.to_owned()]);
            // One try: a held key is a miss, as for every other contender.
            manager.set_retry(1, Duration::from_millis(1));
            // Open the connection now, not in the first timed cycle.
            manager
                .query_redis_for_key_value(b"bench:rslock:probe")
                .await
                .map_err(storage)?;
            Ok(Rslock { manager })
        }
    }

    #[async_trait]
    impl Baseline for Rslock {
        fn describe(&self) -> String {
            "rslock 0.10 (Redlock on redis-rs, one server): lock + unlock".to_owned()
        }

        async fn cycle(&self, key: &str, _owner: &str, ttl: Duration) -> Result<bool, LockError> {
            match self.manager.lock(key.as_bytes(), ttl).await {
                Ok(lock) => {
                    self.manager.unlock(&lock).await;
                    Ok(true)
                }
                Err(rslock::LockError::Unavailable) => Ok(false),
                Err(e) => Err(storage(e)),
            }
        }

        async fn round_trip(&self, key: &str) -> Result<(), LockError> {
            self.manager
                .query_redis_for_key_value(key.as_bytes())
                .await
                .map(drop)
                .map_err(storage)
        }
    }

    /// The committed single-row write of a PostgreSQL round trip.
    const PG_WRITE: &str = r#"INSERT INTO "lock_bench" AS l (lock_key, owner, expires_at, fence)
VALUES ($1, NULL, 0, 0) ON CONFLICT (lock_key) DO UPDATE SET fence = l.fence + 1"#;

    /// The store's acquire and release statements, prepared once on one tokio-postgres
    /// connection of its own.
    pub struct PgRaw {
        client: tokio_postgres::Client,
        acquire: tokio_postgres::Statement,
        release: tokio_postgres::Statement,
        write: tokio_postgres::Statement,
        channel: String,
    }

    impl PgRaw {
        /// On `table` (which must exist), notifying on `channel` like the store.
        pub async fn connect(url: &str, table: &str, channel: &str) -> Result<PgRaw, LockError> {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .map_err(storage)?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            let sql = statements(Backend::Postgres, table)?;
            let acquire = client.prepare(&sql.acquire).await.map_err(storage)?;
            let release = client.prepare(&sql.release).await.map_err(storage)?;
            let write = client.prepare(PG_WRITE).await.map_err(storage)?;
            Ok(PgRaw {
                client,
                acquire,
                release,
                write,
                channel: channel.to_owned(),
            })
        }
    }

    #[async_trait]
    impl Baseline for PgRaw {
        fn describe(&self) -> String {
            "raw tokio-postgres: the store's statements prepared once on one connection".to_owned()
        }

        async fn cycle(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, LockError> {
            let ttl = Some(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
            let (key, owner) = (key.as_bytes(), owner.as_bytes());
            let row = self
                .client
                .query_one(&self.acquire, &[&key, &owner, &ttl])
                .await
                .map_err(storage)?;
            let fence: Option<i64> = row.try_get("fence").map_err(storage)?;
            if fence.is_none() {
                return Ok(false);
            }
            let released = self
                .client
                .execute(&self.release, &[&key, &owner, &self.channel])
                .await
                .map_err(storage)?;
            Ok(released == 1)
        }

        async fn round_trip(&self, key: &str) -> Result<(), LockError> {
            self.client
                .execute(&self.write, &[&key.as_bytes()])
                .await
                .map(drop)
                .map_err(storage)
        }
    }
}
