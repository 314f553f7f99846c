//! Store wrappers for measurements and tests.

use std::sync::Arc;
use std::time::Duration;

use lock_core::{
    AcquireResult, Acquisition, Capabilities, DelegatingStore, LockStore, PermitStore,
    ReleaseFuture, async_trait,
};

/// A store seen without its optional capabilities (no release notification, no holder
/// TTL, no fencing tokens): waiters poll every retry `delay`, as Verrou's do. Used to
/// measure what event-driven waiting gains, in the same run.
pub struct PollingOnly(pub Arc<dyn LockStore>);

#[async_trait]
impl DelegatingStore for PollingOnly {
    fn inner(&self) -> &dyn LockStore {
        &*self.0
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }
    async fn try_acquire(&self, key: &str, owner: &str, ttl: Option<Duration>) -> AcquireResult {
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
    /// No optional capability: no permits either.
    fn permits(&self) -> Option<&dyn PermitStore> {
        None
    }
}
