//! Store wrappers for measurements and tests.

use std::sync::Arc;
use std::time::Duration;

use lock_core::{Acquisition, Capabilities, LockError, LockStore, ReleaseFuture, async_trait};

/// A store seen without its optional capabilities (no release notification, no holder
/// TTL, no fencing tokens): waiters poll every retry `delay`, as Verrou's do. Used to
/// measure what event-driven waiting gains, in the same run.
pub struct PollingOnly(pub Arc<dyn LockStore>);

#[async_trait]
impl LockStore for PollingOnly {
    async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError> {
        self.0.save(key, owner, ttl).await
    }
    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        self.0.delete(key, owner).await
    }
    async fn force_delete(&self, key: &str) -> Result<(), LockError> {
        self.0.force_delete(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool, LockError> {
        self.0.exists(key).await
    }
    async fn extend(&self, key: &str, owner: &str, duration: Duration) -> Result<(), LockError> {
        self.0.extend(key, owner, duration).await
    }
    fn name(&self) -> &str {
        self.0.name()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }
    async fn try_acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Option<Duration>,
    ) -> Result<Acquisition, LockError> {
        let got = self.0.try_acquire(key, owner, ttl).await?;
        Ok(if got.acquired {
            Acquisition::acquired()
        } else {
            Acquisition::denied(None)
        })
    }
    fn release_listener(&self, _key: &str) -> Option<ReleaseFuture> {
        None
    }
}
