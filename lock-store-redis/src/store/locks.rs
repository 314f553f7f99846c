//! The [`LockStore`] methods: one Redis string per lock, each operation one script.

use std::time::Duration;

use async_trait::async_trait;
use fred::interfaces::{ClientLike, KeysInterface};
use fred::types::Value;
use lock_core::{Acquisition, Capabilities, LockError, LockStore, ReleaseFuture, validate};

use super::RedisStore;
use super::batch::Op;
use super::command::{int, millis, owned, within};

impl RedisStore {
    /// One acquire attempt: what both [`LockStore::save`] and [`LockStore::try_acquire`] run.
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Option<Duration>,
    ) -> Result<Acquisition, LockError> {
        validate::save_input(key, owner, ttl)?;
        let op = match ttl {
            // The counter outlives the lock by the margin.
            Some(ttl) => Op::Acquire {
                lock_ms: millis(ttl),
                fence_ms: millis(ttl).saturating_add(self.inner.fence_margin_ms),
            },
            // No expiry for either while held; the release gives the counter the margin.
            None => Op::Acquire {
                lock_ms: 0,
                fence_ms: 0,
            },
        };
        let reply = self.lock_op(op, key, owner).await?;
        self.acquisition(reply, "acquire")
    }
}

#[async_trait]
impl LockStore for RedisStore {
    async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError> {
        Ok(self.acquire(key, owner, ttl).await?.acquired)
    }

    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        validate::delete_input(key, owner)?;
        owned(self.lock_op(Op::Release, key, owner).await?)?;
        // Waiters of this process need not wait for the pub/sub round trip.
        self.notify_local(key);
        Ok(())
    }

    async fn force_delete(&self, key: &str) -> Result<(), LockError> {
        validate::key(key)?;
        let deleted: i64 = self
            .eval(&self.inner.force_release, || {
                (self.release_keys(key), Vec::new())
            })
            .await?;
        if deleted > 0 {
            self.notify_local(key);
        }
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, LockError> {
        validate::key(key)?;
        let redis_key = self.redis_key(key);
        let count: i64 = within(
            self.inner.timeout,
            self.client()
                .with_options(&self.inner.options)
                .exists(redis_key),
        )
        .await
        .map_err(|error| self.context(error))?;
        Ok(count > 0)
    }

    async fn extend(&self, key: &str, owner: &str, duration: Duration) -> Result<(), LockError> {
        validate::extend_input(key, owner, duration)?;
        let lock_ms = millis(duration);
        let fence_ms = lock_ms.saturating_add(self.inner.fence_margin_ms);
        let extended: i64 = self
            .eval(&self.inner.extend, || {
                let keys = vec![self.redis_key(key), self.fence_key(key)];
                let args = vec![
                    owner.into(),
                    Value::Integer(int(lock_ms)),
                    Value::Integer(int(fence_ms)),
                ];
                (keys, args)
            })
            .await?;
        owned(extended)
    }

    fn name(&self) -> &str {
        "redis"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    async fn try_acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Option<Duration>,
    ) -> Result<Acquisition, LockError> {
        self.acquire(key, owner, ttl).await
    }

    fn release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        Some(self.listen(&self.redis_key(key)))
    }

    fn permits(&self) -> Option<&dyn lock_core::PermitStore> {
        Some(self)
    }
}
