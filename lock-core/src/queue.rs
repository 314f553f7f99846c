use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::OwnedMutexGuard;

type Queues = Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>;

/// Per-key FIFO queues of the waiters of one process.
///
/// Waiters for the same key line up here in arrival order (tokio's mutex is fair), so
/// only the head of the line contends in the store. A task that has just released
/// and wants the lock again joins the back of the line: nobody starves, and the
/// store sees one contender per process instead of all of them.
#[derive(Clone, Default)]
pub(crate) struct LocalQueues {
    queues: Queues,
}

/// A place at the head of a key's line. Dropping it lets the next waiter in.
pub(crate) struct QueueTurn {
    // Dropped first: the mutex is unlocked before the entry is considered for removal.
    _guard: OwnedMutexGuard<()>,
    _entry: QueueEntry,
}

struct QueueEntry {
    queues: Queues,
    key: String,
    mutex: Arc<tokio::sync::Mutex<()>>,
}

fn lock(queues: &Queues) -> MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
    queues.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for QueueEntry {
    fn drop(&mut self) {
        let mut map = lock(&self.queues);
        // Only the map and this entry refer to the mutex: nobody else is in line.
        let last = map
            .get(&self.key)
            .is_some_and(|m| Arc::ptr_eq(m, &self.mutex) && Arc::strong_count(m) == 2);
        if last {
            map.remove(&self.key);
        }
    }
}

impl LocalQueues {
    /// Wait for the head of `key`'s line. Cancel safe: a dropped wait leaves the line.
    pub(crate) async fn enter(&self, key: &str) -> QueueTurn {
        let mutex = lock(&self.queues)
            .entry(key.to_owned())
            .or_default()
            .clone();
        let entry = QueueEntry {
            queues: self.queues.clone(),
            key: key.to_owned(),
            mutex,
        };
        let guard = entry.mutex.clone().lock_owned().await;
        QueueTurn {
            _guard: guard,
            _entry: entry,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.queues).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn lines_are_fifo_and_reclaimed() {
        let q = LocalQueues::default();
        let first = q.enter("k").await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let q = q.clone();
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                let _t = q.enter("k").await;
                order.lock().unwrap().push(i);
            }));
            // Let each task join the line before the next one.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
        assert_eq!(q.len(), 0, "empty lines are removed");
    }

    #[tokio::test]
    async fn cancelled_waiters_leave_no_entry() {
        let q = LocalQueues::default();
        let first = q.enter("k").await;
        let waiting = tokio::time::timeout(Duration::from_millis(10), q.enter("k")).await;
        assert!(waiting.is_err());
        drop(first);
        assert_eq!(q.len(), 0);
    }
}
