use std::sync::Arc;

use crate::holding::{Fired, Holding, Status};

/// The lost-lock signal of one holding of a lock (see [`Lock::lost_signal`](crate::Lock::lost_signal)).
///
/// It fires when an extension is refused (someone else holds the lock, or it was
/// force-released), or when the local deadline passes without a successful extension.
/// It does not fire after a normal release by this owner, nor for a later holding.
///
/// A signal taken while the lock is not held follows the *next* holding: it stays
/// pending until the lock is acquired, then behaves as if taken right after.
///
/// It observes the lock without keeping it alive: once every clone of the
/// [`Lock`](crate::Lock) is dropped, auto-extension stops and the signal fires when the
/// local deadline passes. Cheap to clone.
#[derive(Clone)]
pub struct LostLock {
    holding: Arc<Holding>,
    generation: u64,
    fired: Fired,
}

impl std::fmt::Debug for LostLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LostLock")
            .field("generation", &self.generation)
            .field("lost", &self.is_lost())
            .finish()
    }
}

impl LostLock {
    pub(crate) fn new(holding: Arc<Holding>) -> Self {
        let (generation, fired) = holding.signal_target();
        LostLock {
            holding,
            generation,
            fired,
        }
    }

    /// The signal of holding `generation` itself — for callers that know which holding
    /// they got (`run`, a guard), so that one already lost when they look is reported
    /// lost rather than followed by the next holding.
    pub(crate) fn of(holding: Arc<Holding>, generation: u64) -> Self {
        let fired = holding.flag_of(generation);
        LostLock {
            holding,
            generation,
            fired,
        }
    }

    /// Whether the lock is lost now.
    pub fn is_lost(&self) -> bool {
        matches!(
            self.holding.status(self.generation, &self.fired),
            Status::Lost
        )
    }

    /// Completes when the lock is lost; stays pending after a normal release.
    ///
    /// # Cancel safety
    /// Cancel safe: call it again to keep waiting.
    pub async fn wait(&self) {
        loop {
            let changed = self.holding.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.holding.status(self.generation, &self.fired) {
                Status::Lost => return,
                Status::Over => std::future::pending::<()>().await,
                Status::HeldUntil(Some(t)) => {
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep_until(t) => {}
                    }
                }
                Status::HeldUntil(None) | Status::NotYet => changed.await,
            }
        }
    }
}
