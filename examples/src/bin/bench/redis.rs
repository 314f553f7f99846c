//! The Redis baseline: `SET NX PX` and the owner-checked delete script, on the
//! store's own fred client.

use std::sync::Arc;
use std::time::Duration;

use lock_core::{LockError, async_trait};
use lock_store_redis::fred::interfaces::{ClientLike, KeysInterface, LuaInterface};
use lock_store_redis::fred::prelude::Client;
use lock_store_redis::fred::types::scripts::Script;
use lock_store_redis::fred::types::{ClusterHash, CustomCommand, Expiration, SetOptions};
use lock_store_redis::{RedisStore, RedisStoreOptions};
use lock_testkit::bench::Baseline;
use lock_testkit::services::redis_url;

use crate::prepare::{Prep, Prepared, storage};

/// The classic owner-checked delete (the store's release also `PUBLISH`es).
const REDIS_DELETE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

struct RedisBaseline {
    store: RedisStore,
    delete: Script,
}

impl RedisBaseline {
    fn client(&self) -> &Client {
        self.store.client()
    }

    async fn delete(&self, key: &str, owner: &str) -> Result<i64, LockError> {
        self.client()
            .evalsha(self.delete.sha1().clone(), key, vec![owner])
            .await
            .map_err(storage)
    }
}

#[async_trait]
impl Baseline for RedisBaseline {
    fn describe(&self) -> String {
        "SET key owner NX PX ttl + EVALSHA owner-checked DEL, on the store's fred client".to_owned()
    }

    async fn cycle(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, LockError> {
        let key = self.store.redis_key(key);
        let set: Option<String> = self
            .client()
            .set(
                key.as_str(),
                owner,
                Some(Expiration::PX(ttl.as_millis() as i64)),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(storage)?;
        if set.is_none() {
            return Ok(false);
        }
        Ok(self.delete(&key, owner).await? == 1)
    }

    async fn round_trip(&self, key: &str) -> Result<(), LockError> {
        self.delete(&self.store.redis_key(key), "nobody").await?;
        Ok(())
    }
}

pub async fn prepare() -> Result<Prepared, Prep> {
    let url = redis_url();
    let store = RedisStore::connect(RedisStoreOptions::from_url(url.clone()))
        .await
        .map_err(|e| Prep::unreachable("redis", &url, e))?;
    let delete = Script::from_lua(REDIS_DELETE);
    Script::load(&delete, store.client())
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
    Ok(Prepared {
        baseline: Arc::new(RedisBaseline {
            store: store.clone(),
            delete,
        }),
        store: Arc::new(store),
        version,
    })
}
