//! The raw Redis lock cycle, `SET NX PX` and the owner-checked delete script, on a
//! fred client: the store's own (the per-store baseline) or one of its own (a
//! `--compare` contender).

use std::sync::Arc;
use std::time::Duration;

use lock_core::{LockError, async_trait};
use lock_store_redis::fred::interfaces::{ClientLike, KeysInterface, LuaInterface};
use lock_store_redis::fred::prelude::{Client, Config};
use lock_store_redis::fred::types::scripts::Script;
use lock_store_redis::fred::types::{ClusterHash, CustomCommand, Expiration, SetOptions};
use lock_store_redis::{RedisStore, RedisStoreOptions};
use lock_testkit::bench::Baseline;
use lock_testkit::services::redis_url;

use crate::prepare::{Prep, Prepared, storage};
use crate::redis_permits::RedisPermitScripts;

/// The classic owner-checked delete, as rslock and most Redlock clients send it (the
/// store's release also `PUBLISH`es).
pub const REDIS_DELETE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// The two commands of a raw Redis lock cycle, on some client.
#[async_trait]
pub trait RawRedisLock: Send + Sync + 'static {
    /// What it runs on, for the report.
    fn describe(&self) -> String;

    /// `SET key owner NX PX ttl`: whether the key was set.
    async fn set_nx_px(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, LockError>;

    /// `EVALSHA` of [`REDIS_DELETE`]: the keys deleted (0 or 1).
    async fn delete(&self, key: &str, owner: &str) -> Result<i64, LockError>;
}

/// A [`RawRedisLock`] as a baseline: a cycle is `SET NX PX` then the delete script; a
/// round trip is the delete script on an absent key.
pub struct RawCycle<R>(pub R);

#[async_trait]
impl<R: RawRedisLock> Baseline for RawCycle<R> {
    fn describe(&self) -> String {
        self.0.describe()
    }

    async fn cycle(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, LockError> {
        Ok(self.0.set_nx_px(key, owner, ttl).await? && self.0.delete(key, owner).await? == 1)
    }

    async fn round_trip(&self, key: &str) -> Result<(), LockError> {
        self.0.delete(key, "nobody").await.map(drop)
    }
}

/// The raw commands on a fred client: a client of its own (keys as given), or the
/// store's (keys under the store's prefix, as the store writes them).
pub struct FredRaw {
    client: Client,
    delete: Script,
    store: Option<RedisStore>,
}

impl FredRaw {
    /// On a fred client of its own with fred's defaults (no per-command options).
    pub async fn connect(url: &str) -> Result<FredRaw, LockError> {
        let config = Config::from_url(url).map_err(storage)?;
        let client = Client::new(config, None, None, None);
        client.init().await.map_err(storage)?;
        FredRaw::on(client, None).await
    }

    /// On `store`'s own client.
    pub async fn on_store(store: &RedisStore) -> Result<FredRaw, LockError> {
        FredRaw::on(store.client().clone(), Some(store.clone())).await
    }

    async fn on(client: Client, store: Option<RedisStore>) -> Result<FredRaw, LockError> {
        let delete = Script::from_lua(REDIS_DELETE);
        delete.load(&client).await.map_err(storage)?;
        Ok(FredRaw {
            client,
            delete,
            store,
        })
    }

    fn key(&self, key: &str) -> String {
        self.store
            .as_ref()
            .map_or_else(|| key.to_owned(), |s| s.redis_key(key))
    }
}

#[async_trait]
impl RawRedisLock for FredRaw {
    fn describe(&self) -> String {
        match self.store {
            Some(_) => {
                "SET key owner NX PX ttl + EVALSHA owner-checked DEL, on the store's fred client"
            }
            None => "raw fred (own client): SET NX PX + EVALSHA delete",
        }
        .to_owned()
    }

    async fn set_nx_px(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, LockError> {
        let set: Option<String> = self
            .client
            .set(
                self.key(key),
                owner,
                Some(Expiration::PX(ttl.as_millis() as i64)),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(storage)?;
        Ok(set.is_some())
    }

    async fn delete(&self, key: &str, owner: &str) -> Result<i64, LockError> {
        self.client
            .evalsha(self.delete.sha1().clone(), self.key(key), vec![owner])
            .await
            .map_err(storage)
    }
}

pub async fn prepare() -> Result<Prepared, Prep> {
    let url = redis_url();
    let store = RedisStore::connect(RedisStoreOptions::from_url(url.clone()))
        .await
        .map_err(|e| Prep::unreachable("redis", &url, e))?;
    let baseline = FredRaw::on_store(&store)
        .await
        .map_err(|e| Prep::Fail(format!("SCRIPT LOAD: {e}")))?;
    let info: String = store
        .client()
        .custom(
            CustomCommand::new_static("INFO", ClusterHash::FirstKey, false),
            vec!["server"],
        )
        .await
        .map_err(|e| Prep::Fail(format!("INFO server: {e}")))?;
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .map(|v| format!("Redis {}", v.trim()))
        .unwrap_or_else(|| "Redis (unknown version)".to_owned());
    let mut prepared = Prepared::new(
        Arc::new(store.clone()),
        Arc::new(RawCycle(baseline)),
        version,
    );
    prepared.permit_baseline = Arc::new(RedisPermitScripts::new(store, url));
    Ok(prepared)
}

/// Host and port of a `scheme://[user@]host[:port][/…]` URL.
pub fn host_port(url: &str, default_port: u16) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse().unwrap_or(default_port)),
        None => (authority.to_owned(), default_port),
    }
}
