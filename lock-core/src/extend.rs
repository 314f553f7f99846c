use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::lock::{Deadline, LockInner, WeakInner, extended};
use crate::{Lock, LockError, LockStore};

/// Extends a held lock every TTL/3 until aborted (release, re-acquire, drop of the
/// last `Lock` clone) or until the lock is lost.
///
/// It holds the lock only weakly, so dropping every clone of the `Lock` stops it.
pub(crate) fn spawn_extender(
    lock: WeakInner,
    generation: u64,
    ttl: Duration,
    store: Arc<dyn LockStore>,
) -> JoinHandle<()> {
    let period = (ttl / 3).max(Duration::from_millis(1));
    tokio::spawn(async move {
        let mut next = Instant::now() + period;
        loop {
            tokio::time::sleep_until(next).await;
            let Some(inner) = lock.upgrade() else { return };
            let deadline = {
                let st = inner.state();
                if st.generation != generation || st.lost {
                    return;
                }
                st.deadline
            };
            let sent_at = Instant::now();
            match store.extend(&inner.key, &inner.owner, ttl).await {
                Ok(()) => {
                    extended(&inner, generation, sent_at + ttl);
                    tracing::debug!(store = store.name(), key = %inner.key, "lock auto-extended");
                    next = sent_at + period;
                }
                Err(LockError::NotOwned) => {
                    Lock::mark_lost(
                        &inner,
                        generation,
                        "auto-extension refused: the lock is no longer held by this owner",
                    );
                    return;
                }
                Err(error) => {
                    tracing::warn!(store = store.name(), key = %inner.key, %error, "auto-extension failed; retrying");
                    let now = Instant::now();
                    if let Deadline::At(t) = deadline {
                        if now >= t {
                            Lock::mark_lost(
                                &inner,
                                generation,
                                "auto-extension failed until the deadline passed",
                            );
                            return;
                        }
                        // Retry soon, but not in a tight loop.
                        next = now + (period / 4).max(Duration::from_millis(5)).min(t - now);
                    } else {
                        next = now + period;
                    }
                }
            }
        }
    })
}

/// The lost-lock signal of one holding of a lock (see [`Lock::lost_signal`]).
///
/// It fires when an extension is refused (someone else holds the lock, or it was
/// force-released), or when the local deadline passes without a successful extension.
/// It does not fire after a normal release by this owner. Cheap to clone.
#[derive(Clone)]
pub struct LostLock {
    inner: Arc<LockInner>,
    generation: u64,
}

impl std::fmt::Debug for LostLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LostLock")
            .field("key", &self.inner.key)
            .field("lost", &self.is_lost())
            .finish()
    }
}

enum Status {
    Lost,
    /// Released by its owner or re-acquired: this holding ended without being lost.
    Over,
    HeldUntil(Option<Instant>),
}

impl LostLock {
    pub(crate) fn new(inner: Arc<LockInner>, generation: u64) -> Self {
        LostLock { inner, generation }
    }

    fn status(&self) -> Status {
        let st = self.inner.state();
        if st.generation != self.generation {
            return Status::Over;
        }
        if st.lost {
            return Status::Lost;
        }
        match st.deadline {
            Deadline::At(t) if Instant::now() >= t => Status::Lost,
            Deadline::At(t) => Status::HeldUntil(Some(t)),
            Deadline::Never => Status::HeldUntil(None),
            Deadline::NotHeld => Status::Over,
        }
    }

    /// Whether the lock is lost now.
    pub fn is_lost(&self) -> bool {
        matches!(self.status(), Status::Lost)
    }

    /// Completes when the lock is lost; stays pending after a normal release.
    ///
    /// **Cancel safety:** cancel safe; call it again to keep waiting.
    pub async fn wait(&self) {
        loop {
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.status() {
                Status::Lost => return,
                Status::Over => std::future::pending::<()>().await,
                Status::HeldUntil(Some(t)) => {
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep_until(t) => {}
                    }
                }
                Status::HeldUntil(None) => changed.await,
            }
        }
    }
}
