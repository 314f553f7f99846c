use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::queue::LocalQueues;
use crate::{LockError, LockStore, StoreFactory};

/// One configured store: built once, on first use, then shared by every lock on it.
pub(crate) struct StoreSlot {
    pub(crate) name: String,
    factory: Option<StoreFactory>,
    store: OnceCell<Arc<dyn LockStore>>,
    pub(crate) queues: LocalQueues,
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
        }))
    }

    pub(crate) fn lazy(name: String, factory: StoreFactory) -> Self {
        StoreHandle(Arc::new(StoreSlot {
            name,
            factory: Some(factory),
            store: OnceCell::new(),
            queues: LocalQueues::default(),
        }))
    }

    /// The store, building it on first use. A failed build is retried on the next use.
    pub(crate) async fn get(&self) -> Result<&Arc<dyn LockStore>, LockError> {
        self.0
            .store
            .get_or_try_init(|| async {
                match &self.0.factory {
                    Some(f) => f.build().await,
                    None => Err(LockError::storage_msg("lock store is not configured")),
                }
            })
            .await
    }

    /// The store if it was built already.
    pub(crate) fn built(&self) -> Option<&Arc<dyn LockStore>> {
        self.0.store.get()
    }

    pub(crate) fn slot(&self) -> &StoreSlot {
        &self.0
    }
}
