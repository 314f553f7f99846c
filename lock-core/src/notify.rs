use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;

use crate::outcome::ReleaseFuture;

/// Per-key release notification for one process, for store authors.
///
/// A store that learns of releases (its own `delete`, a Redis pub/sub message, a
/// PostgreSQL `NOTIFY`) calls [`ReleaseHub::notify`]; its
/// [`LockStore::release_listener`](crate::LockStore::release_listener) returns
/// [`ReleaseHub::listen`]. Only keys with a waiter take memory: an entry is removed
/// when it fires or when its last listener is dropped.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use lock_core::ReleaseHub;
/// let hub = ReleaseHub::default();
/// let wait = hub.listen("orders.1"); // registered now, before any await
/// hub.notify("orders.1");
/// wait.await; // completes at once
/// assert_eq!(hub.waiting_keys(), 0);
/// # }
/// ```
#[derive(Clone, Default)]
pub struct ReleaseHub {
    inner: Arc<Hub>,
}

#[derive(Default)]
struct Hub {
    map: Mutex<HashMap<String, Arc<Notify>>>,
    /// `map.len()`, readable without the lock: a release with nobody listening anywhere
    /// (the common case) costs one atomic load. Written under the lock; a listener
    /// registered before a store operation is visible to a release ordered after that
    /// operation (the store's own synchronisation orders them).
    keys: AtomicUsize,
}

/// The map, with `keys` kept equal to its length when the guard is dropped.
struct HubMap<'a> {
    map: MutexGuard<'a, HashMap<String, Arc<Notify>>>,
    keys: &'a AtomicUsize,
}

impl std::ops::Deref for HubMap<'_> {
    type Target = HashMap<String, Arc<Notify>>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl std::ops::DerefMut for HubMap<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.map
    }
}

impl Drop for HubMap<'_> {
    fn drop(&mut self) {
        self.keys.store(self.map.len(), Ordering::SeqCst);
    }
}

impl std::fmt::Debug for ReleaseHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleaseHub")
            .field("waiting_keys", &self.waiting_keys())
            .finish()
    }
}

impl ReleaseHub {
    fn map(&self) -> HubMap<'_> {
        HubMap {
            // A panic while holding this lock cannot leave the map inconsistent.
            map: self
                .inner
                .map
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
            keys: &self.inner.keys,
        }
    }

    /// A future that completes on the next [`notify`](Self::notify) of `key` (or
    /// [`notify_all`](Self::notify_all)). Registered on creation.
    pub fn listen(&self, key: &str) -> ReleaseFuture {
        let notify = self
            .map()
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone();
        // `notified_owned` is registered for `notify_waiters` as soon as it exists.
        let notified = Box::pin(notify.clone().notified_owned());
        Box::pin(Listener {
            hub: self.clone(),
            key: key.to_owned(),
            notify,
            notified: Some(notified),
        })
    }

    /// Whether any key has a listener: a store can skip building the key it would
    /// [`notify`](Self::notify) when nobody listens (what `notify` checks first too).
    pub fn has_listeners(&self) -> bool {
        self.inner.keys.load(Ordering::SeqCst) != 0
    }

    /// Wake every listener of `key`.
    pub fn notify(&self, key: &str) {
        if self.inner.keys.load(Ordering::SeqCst) == 0 {
            return;
        }
        let entry = self.map().remove(key);
        if let Some(notify) = entry {
            notify.notify_waiters();
        }
    }

    /// Wake every listener of every key (after a lost connection or a lagging feed,
    /// when releases may have been missed).
    pub fn notify_all(&self) {
        let entries: Vec<_> = self.map().drain().map(|(_, n)| n).collect();
        for notify in entries {
            notify.notify_waiters();
        }
    }

    /// How many keys have at least one listener.
    pub fn waiting_keys(&self) -> usize {
        self.map().len()
    }
}

struct Listener {
    hub: ReleaseHub,
    key: String,
    notify: Arc<Notify>,
    notified: Option<Pin<Box<OwnedNotified>>>,
}

impl Future for Listener {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.notified.as_mut() {
            Some(notified) => notified.as_mut().poll(cx),
            None => Poll::Ready(()),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.notified = None;
        let mut map = self.hub.map();
        // The map and this listener hold the last two references: nobody else waits.
        let last = map
            .get(&self.key)
            .is_some_and(|n| Arc::ptr_eq(n, &self.notify) && Arc::strong_count(n) == 2);
        if last {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn notify_before_poll_is_not_missed() {
        let hub = ReleaseHub::default();
        let a = hub.listen("k");
        let b = hub.listen("k");
        hub.notify("k");
        tokio::time::timeout(Duration::from_secs(1), async {
            a.await;
            b.await;
        })
        .await
        .expect("listeners registered before notify must complete");
    }

    #[tokio::test]
    async fn other_keys_do_not_wake() {
        let hub = ReleaseHub::default();
        let a = hub.listen("k");
        hub.notify("other");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), a)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn dropped_listeners_free_their_entry() {
        let hub = ReleaseHub::default();
        let a = hub.listen("k");
        let b = hub.listen("k");
        assert_eq!(hub.waiting_keys(), 1);
        drop(a);
        assert_eq!(hub.waiting_keys(), 1);
        drop(b);
        assert_eq!(hub.waiting_keys(), 0);
    }

    #[tokio::test]
    async fn notify_all_wakes_everyone() {
        let hub = ReleaseHub::default();
        let a = hub.listen("a");
        let b = hub.listen("b");
        hub.notify_all();
        tokio::time::timeout(Duration::from_secs(1), async {
            a.await;
            b.await;
        })
        .await
        .expect("notify_all wakes every key");
    }
}
