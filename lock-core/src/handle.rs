use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::OnceCell;

use crate::queue::LocalQueues;
use crate::{LockError, LockStore, StoreFactory};

/// One configured store: built once, on first use, then shared by every lock on it.
pub(crate) struct StoreSlot {
    pub(crate) name: String,
    factory: Option<StoreFactory>,
    store: OnceCell<Arc<dyn LockStore>>,
    pub(crate) queues: LocalQueues,
    /// Locks of this process that were serialized, by key and owner: restoring one of
    /// them in this process gives back the same lock (one holding, one operation mutex),
    /// not a second handle that could undo the first one's holding.
    handed: Mutex<HashMap<(String, String), Weak<dyn Any + Send + Sync>>>,
}

/// A cheap handle on a [`StoreSlot`].
#[derive(Clone)]
pub(crate) struct StoreHandle(Arc<StoreSlot>);

impl StoreHandle {
    pub(crate) fn ready(store: Arc<dyn LockStore>) -> Self {
        StoreHandle(Arc::new(StoreSlot {
            name: store.name().to_owned(),
            factory: None,
            store: OnceCell::new_with(Some(store)),
            queues: LocalQueues::default(),
            handed: Mutex::default(),
        }))
    }

    pub(crate) fn lazy(name: String, factory: StoreFactory) -> Self {
        StoreHandle(Arc::new(StoreSlot {
            name,
            factory: Some(factory),
            store: OnceCell::new(),
            queues: LocalQueues::default(),
            handed: Mutex::default(),
        }))
    }

    /// The store, building it on first use. A failed build is retried on the next use.
    ///
    /// The build runs in a task of its own: a caller that gives up (its acquire timed
    /// out, its future was dropped) does not cancel it, so a slow build completes for the
    /// next caller instead of starting over each time.
    pub(crate) async fn get(&self) -> Result<Arc<dyn LockStore>, LockError> {
        if let Some(store) = self.0.store.get() {
            return Ok(store.clone());
        }
        let slot = self.0.clone();
        let build = async move {
            slot.store
                .get_or_try_init(|| async {
                    match &slot.factory {
                        Some(f) => f
                            .build()
                            .await
                            .inspect_err(|error| crate::observe::build_failed(&slot.name, error)),
                        None => Err(LockError::storage_msg("lock store is not configured")),
                    }
                })
                .await
                .cloned()
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime.spawn(build).await.unwrap_or_else(|join| {
                Err(LockError::storage_msg(format!(
                    "building lock store {:?} failed: {join}",
                    self.0.name
                )))
            }),
            Err(_) => build.await,
        }
    }

    /// The store if it was built already.
    pub(crate) fn built(&self) -> Option<&Arc<dyn LockStore>> {
        self.0.store.get()
    }

    fn handed(&self) -> MutexGuard<'_, HashMap<(String, String), Weak<dyn Any + Send + Sync>>> {
        self.0.handed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remember a serialized lock of this process (see `StoreSlot::handed`).
    pub(crate) fn hand_over(&self, key: &str, owner: &str, lock: Weak<dyn Any + Send + Sync>) {
        self.handed()
            .insert((key.to_owned(), owner.to_owned()), lock);
    }

    /// The live lock of this process with this key and owner, if it was serialized.
    pub(crate) fn handed_over(&self, key: &str, owner: &str) -> Option<Arc<dyn Any + Send + Sync>> {
        self.handed()
            .get(&(key.to_owned(), owner.to_owned()))
            .and_then(Weak::upgrade)
    }

    /// Forget a serialized lock whose last handle is gone.
    pub(crate) fn forget(&self, key: &str, owner: &str) {
        let mut handed = self.handed();
        let id = (key.to_owned(), owner.to_owned());
        if handed.get(&id).is_some_and(|w| w.strong_count() == 0) {
            handed.remove(&id);
        }
    }

    pub(crate) fn slot(&self) -> &StoreSlot {
        &self.0
    }
}
