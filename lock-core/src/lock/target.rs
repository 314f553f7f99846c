//! What a [`Lock`](super::Lock) holds on its store: the key itself (a mutex), or a
//! share of a permit key ([`Semaphore`](crate::Semaphore), [`RwLock`](crate::RwLock)).
//! Every store call of a lock goes through here, so that acquiring, waiting,
//! extending, releasing and the lost-lock signal are one implementation for all three.

use std::borrow::Cow;
use std::time::Duration;

use tokio::time::Instant;

use super::Shared;
use crate::permits::{PermitRequest, PermitStore, PermitUsage};
use crate::{Acquisition, Checked, ImmediateStore, LockError, LockStore, ReleaseFuture};

/// The kind of holding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// The key, exclusively.
    Mutex,
    /// `weight` of the permit key's `limit`; `reserve`: a denied try reserves the key
    /// (writers of a reader-writer lock).
    Permits {
        limit: u32,
        weight: u32,
        reserve: bool,
    },
}

fn permit_store(store: &dyn LockStore) -> Result<&dyn PermitStore, LockError> {
    store.permits().ok_or_else(|| {
        LockError::invalid(format!(
            "the {} store does not support semaphores or reader-writer locks",
            store.name()
        ))
    })
}

impl Shared {
    /// The in-process line waiters of this key join: permit keys have their own
    /// (keys never contain NUL, so the two cannot collide).
    pub(super) fn queue_key(&self) -> Cow<'_, str> {
        match self.target {
            Target::Mutex => Cow::Borrowed(self.key()),
            Target::Permits { .. } => Cow::Owned(format!("\0permits\0{}", self.key())),
        }
    }

    /// This lock's key and owner, checked when it was made.
    pub(super) fn checked(&self) -> Checked<'_> {
        Checked::trusted(self.key(), self.owner())
    }

    /// The store's in-place form ([`ImmediateStore`]), for a mutex (permits
    /// go through the async methods).
    pub(super) fn in_place<'s>(&self, store: &'s dyn LockStore) -> Option<&'s dyn ImmediateStore> {
        match self.target {
            Target::Mutex => store.immediate(),
            Target::Permits { .. } => None,
        }
    }

    /// One try (in place, without a future, on an
    /// [`ImmediateStore`](crate::ImmediateStore)). `reserve`: how long a denied writer
    /// reserves the key (when a wait follows).
    pub(super) async fn try_acquire_on(
        &self,
        store: &dyn LockStore,
        reserve: Option<Duration>,
    ) -> Result<Acquisition, LockError> {
        match self.target {
            Target::Mutex => match store.immediate() {
                Some(store) => store.try_acquire_now(self.checked(), self.ttl, Instant::now()),
                None => store.try_acquire(self.key(), self.owner(), self.ttl).await,
            },
            Target::Permits {
                limit,
                weight,
                reserve: reserves,
            } => {
                let request = PermitRequest::new(limit, weight, self.ttl)
                    .reserving(reserve.filter(|_| reserves));
                permit_store(store)?
                    .try_acquire_permit(self.key(), self.owner(), request)
                    .await
            }
        }
    }

    /// Delete this owner's holding (in place on an [`ImmediateStore`](crate::ImmediateStore)).
    pub(super) async fn delete_on(&self, store: &dyn LockStore) -> Result<(), LockError> {
        match self.target {
            Target::Mutex => match store.immediate() {
                Some(store) => store.delete_now(self.checked(), Instant::now()),
                None => store.delete(self.key(), self.owner()).await,
            },
            Target::Permits { .. } => {
                permit_store(store)?
                    .release_permit(self.key(), self.owner())
                    .await
            }
        }
    }

    pub(super) async fn force_delete_on(&self, store: &dyn LockStore) -> Result<(), LockError> {
        match self.target {
            Target::Mutex => store.force_delete(self.key()).await,
            Target::Permits { .. } => permit_store(store)?.force_release_permits(self.key()).await,
        }
    }

    pub(super) async fn extend_on(
        &self,
        store: &dyn LockStore,
        duration: Duration,
    ) -> Result<(), LockError> {
        match self.target {
            Target::Mutex => store.extend(self.key(), self.owner(), duration).await,
            Target::Permits { .. } => {
                permit_store(store)?
                    .extend_permit(self.key(), self.owner(), duration)
                    .await
            }
        }
    }

    pub(super) async fn exists_on(&self, store: &dyn LockStore) -> Result<bool, LockError> {
        match self.target {
            Target::Mutex => store.exists(self.key()).await,
            Target::Permits { .. } => {
                Ok(permit_store(store)?.permit_usage(self.key()).await?.holders > 0)
            }
        }
    }

    pub(super) fn release_listener_on(&self, store: &dyn LockStore) -> Option<ReleaseFuture> {
        match self.target {
            Target::Mutex => store.release_listener(self.key()),
            Target::Permits { .. } => store.permits()?.permit_release_listener(self.key()),
        }
    }
}

impl super::Lock {
    /// How the permit key is used now (`InvalidArgument` for a mutex).
    pub(crate) async fn permit_usage(&self) -> Result<PermitUsage, LockError> {
        let store = self.store().await?;
        if self.shared.target == Target::Mutex {
            return Err(LockError::invalid("a mutex has no permits"));
        }
        permit_store(store.as_ref())?
            .permit_usage(self.key())
            .await
            .inspect_err(|error| crate::observe::error(store.name(), self.key(), "usage", error))
    }

    /// The kind of holding (for serialization).
    pub(crate) fn target(&self) -> Target {
        self.shared.target
    }
}
