//! Sending acquires and releases together while others are in flight.
//!
//! Each operation is one script either way; what changes is how many `EVALSHA`s carry
//! them. An operation that comes while none of the store's lock commands is on the wire is
//! sent at once, as its own script: a lone task pays nothing for this module but two
//! uncontended mutex sections. Operations that come while others are in flight wait in a
//! queue, and a task spawned for it sends the queue as **one** batch script
//! (`scripts::batch`) as soon as it runs (the tasks that were ready before it add their
//! operations first), unless the store's in-flight limit
//! ([`RedisStoreOptions::with_max_in_flight`](crate::RedisStoreOptions::with_max_in_flight))
//! is reached: then the next command to return schedules it. Each operation gets its own
//! reply. Under load the server runs one script call for many operations and the client
//! encodes, writes and reads one command for them: the per-command costs on both sides,
//! which decide throughput with many tasks, are paid once per batch.
//!
//! What stays as it was:
//! * **atomic operations**: each acquire or release inside a batch runs exactly as its own
//!   script would, and the batch runs as one script (no other command in between);
//! * **one round trip**: an operation is in exactly one command, sent once (no re-send);
//! * **fencing tokens** increase per key, within a batch too (the counter is read back);
//! * **the operation timeout**: each queued operation waits at most until its own
//!   deadline; one whose deadline has passed before its batch goes is not sent, and a
//!   batch is sent with the time left of its latest member, so no operation is cut off
//!   before its own deadline by an earlier batch-mate's;
//! * **each operation its own outcome**: an operation whose command fails inside the batch
//!   (a key of another type, a server out of memory) gets that error, and ends as its own
//!   script would have ended; the operations after it still run;
//! * **cancellation**: an operation dropped while queued is not sent; one dropped after its
//!   batch went out is in the same state as a dropped single command (lock-core's clean-up
//!   releases what an abandoned acquire may have taken).
//!
//! Not on Cluster: one script may only touch keys of one slot, so a clustered store sends
//! every operation on its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use fred::types::Value;
use lock_core::{LockError, StoreError};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::RedisStore;
use super::command::int;

/// What an operation asks: an acquire (the lock's TTL and the fence counter's, in ms,
/// `0` = no expiry) or an owner-checked release.
#[derive(Clone, Copy)]
pub(super) enum Op {
    Acquire { lock_ms: u64, fence_ms: u64 },
    Release,
}

/// One operation waiting for a batch.
struct Queued {
    op: Op,
    key: String,
    owner: String,
    deadline: Instant,
    reply: oneshot::Sender<Result<i64, LockError>>,
}

#[derive(Default)]
struct State {
    /// Lock commands (single operations and batches) on the wire.
    in_flight: usize,
    queue: Vec<Queued>,
    /// A task is about to send the queue.
    flush_scheduled: bool,
}

/// The in-flight count and the queue of one store.
pub(super) struct Batcher {
    /// At most this many lock commands in flight; `0` = no limit (never batch).
    limit: usize,
    state: Mutex<State>,
    /// Batch scripts sent, and the operations they carried.
    batches: AtomicU64,
    batched: AtomicU64,
}

impl Batcher {
    pub(super) fn new(limit: usize) -> Batcher {
        Batcher {
            limit,
            state: Mutex::default(),
            batches: AtomicU64::new(0),
            batched: AtomicU64::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every unlock: a panic elsewhere cannot break it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A place on the wire, held by an operation or a batch in flight, given up on drop
/// (however its future ends): a queue that built up meanwhile gets a task to send it.
struct Slot<'a> {
    store: &'a RedisStore,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let flush = {
            let mut state = self.store.inner.batcher.state();
            state.in_flight -= 1;
            let flush = !state.queue.is_empty() && !state.flush_scheduled;
            state.flush_scheduled |= flush;
            flush
        };
        if flush {
            self.store.spawn_flush();
        }
    }
}

/// The task scheduled to send the queue, until it runs. Dropped unrun (its runtime shut
/// down), it fails the queue instead of leaving it to wait for a task that never comes.
struct Scheduled {
    store: RedisStore,
    armed: bool,
}

impl Scheduled {
    /// The queue, with a place on the wire for it; `None` when it was sent already, or
    /// when the limit is reached (the next command to return schedules it).
    fn take(&mut self) -> Option<Vec<Queued>> {
        self.armed = false;
        let batcher = &self.store.inner.batcher;
        let mut state = batcher.state();
        state.flush_scheduled = false;
        if state.queue.is_empty() || state.in_flight >= batcher.limit {
            return None;
        }
        state.in_flight += 1;
        Some(std::mem::take(&mut state.queue))
    }
}

impl Drop for Scheduled {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.store.inner.batcher.state();
            state.flush_scheduled = false;
            state.queue.clear();
        }
    }
}

impl RedisStore {
    /// How many batch scripts the store has sent, and how many operations they carried
    /// (a batch carries two or more; see
    /// [`RedisStoreOptions::with_max_in_flight`](crate::RedisStoreOptions::with_max_in_flight)).
    /// Shared by clones.
    pub fn batches_sent(&self) -> (u64, u64) {
        let batcher = &self.inner.batcher;
        (
            batcher.batches.load(Ordering::Relaxed),
            batcher.batched.load(Ordering::Relaxed),
        )
    }

    /// Run `op` on `key` for `owner`: at once as its own script while the in-flight limit
    /// allows, else in the next batch. The reply is the script's integer.
    pub(super) async fn lock_op(&self, op: Op, key: &str, owner: &str) -> Result<i64, LockError> {
        let batcher = &self.inner.batcher;
        if batcher.limit == 0 {
            return self.single(op, key, owner, None).await;
        }
        let deadline = Instant::now() + self.inner.timeout;
        let (receiver, flush) = {
            let mut state = batcher.state();
            if state.in_flight == 0 && state.queue.is_empty() {
                state.in_flight += 1;
                (None, false)
            } else {
                let (reply, receiver) = oneshot::channel();
                state.queue.push(Queued {
                    op,
                    key: key.to_owned(),
                    owner: owner.to_owned(),
                    deadline,
                    reply,
                });
                // A task sends the queue as soon as it runs (after the tasks ready before
                // it, whose operations join it), unless the limit is reached: then the
                // next command to return schedules it.
                let flush = !state.flush_scheduled && state.in_flight < batcher.limit;
                state.flush_scheduled |= flush;
                (Some(receiver), flush)
            }
        };
        let Some(receiver) = receiver else {
            let _slot = Slot { store: self };
            return self.single(op, key, owner, None).await;
        };
        if flush {
            self.spawn_flush();
        }
        // Bounded by its own deadline, whatever the batch it goes in (sent with the time
        // left of its latest member): past it, the caller gets the timeout error and, as
        // after any timed-out command, does not know whether the operation ran.
        match tokio::time::timeout_at(deadline, receiver).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(self.context(LockError::storage_msg(
                "redis operation abandoned: the runtime stopped before it was sent",
            ))),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// One operation as its own script, within `left` of the operation timeout (`None`:
    /// all of it).
    async fn single(
        &self,
        op: Op,
        key: &str,
        owner: &str,
        left: Option<Duration>,
    ) -> Result<i64, LockError> {
        match op {
            Op::Acquire { lock_ms, fence_ms } => {
                self.eval_within(&self.inner.acquire, left, || {
                    let keys = vec![
                        self.redis_key(key),
                        self.fence_key(key),
                        self.waiting_key(key),
                    ];
                    let args = if lock_ms > 0 {
                        // The counter outlives the lock by the margin.
                        vec![
                            owner.into(),
                            Value::Integer(int(lock_ms)),
                            Value::Integer(int(fence_ms)),
                        ]
                    } else {
                        // No expiry for either while held; the release gives the counter
                        // the margin.
                        vec![owner.into(), Value::Integer(0)]
                    };
                    (keys, args)
                })
                .await
            }
            Op::Release => {
                self.eval_within(&self.inner.release, left, || {
                    (self.release_keys(key), vec![owner.into()])
                })
                .await
            }
        }
    }

    /// Send the queue on a task of its own, holding a place on the wire. Without a
    /// runtime (it is shutting down) the queued operations are dropped, and their callers
    /// get an error.
    fn spawn_flush(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            let mut state = self.inner.batcher.state();
            state.flush_scheduled = false;
            state.queue.clear();
            return;
        };
        let mut scheduled = Scheduled {
            store: self.clone(),
            armed: true,
        };
        runtime.spawn(async move {
            let Some(queue) = scheduled.take() else {
                return;
            };
            let store = &scheduled.store;
            let _slot = Slot { store };
            store.send_batch(queue).await;
        });
    }

    /// Send the queued operations that are still wanted and within their deadline, as one
    /// command (one operation: its own script), and answer each.
    async fn send_batch(&self, queue: Vec<Queued>) {
        let now = Instant::now();
        let mut batch = Vec::with_capacity(queue.len());
        for queued in queue {
            if queued.reply.is_closed() {
                continue; // dropped by its caller before it was sent: never sent
            }
            if queued.deadline <= now {
                let _ = queued.reply.send(Err(self.timed_out()));
                continue;
            }
            batch.push(queued);
        }
        let Some(left) = batch_time(batch.iter().map(|queued| queued.deadline), now) else {
            return;
        };
        if let [queued] = batch.as_slice() {
            let reply = self
                .single(queued.op, &queued.key, &queued.owner, Some(left))
                .await;
            if let Some(queued) = batch.pop() {
                let _ = queued.reply.send(reply);
            }
            return;
        }
        let batcher = &self.inner.batcher;
        batcher.batches.fetch_add(1, Ordering::Relaxed);
        batcher
            .batched
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let replies: Result<Vec<Value>, LockError> = self
            .eval_within(&self.inner.batch, Some(left), || batch_call(self, &batch))
            .await;
        match replies {
            Ok(values) if values.len() == batch.len() => {
                for (queued, value) in batch.into_iter().zip(values) {
                    let reply = match value {
                        Value::Integer(0) if matches!(queued.op, Op::Acquire { .. }) => Err(self
                            .context(LockError::storage_msg(format!(
                                "fencing counter {} is exhausted",
                                self.fence_key(&queued.key)
                            )))),
                        Value::Integer(n) => Ok(n),
                        // This operation's command failed (the batch went on without it).
                        Value::String(error) => {
                            Err(self.context(LockError::storage_msg(error.to_string())))
                        }
                        other => Err(self.unexpected(&other)),
                    };
                    let _ = queued.reply.send(reply);
                }
            }
            Ok(values) => {
                let count = values.len();
                for queued in batch {
                    let _ = queued
                        .reply
                        .send(Err(self.context(LockError::storage_msg(format!(
                            "the redis batch script answered {count} replies"
                        )))));
                }
            }
            Err(error) => {
                // The command failed as a whole: one cause, told to every operation.
                let cause = match &error {
                    LockError::Storage(source) => source
                        .downcast_ref::<StoreError>()
                        .map_or_else(|| source.to_string(), |store| store.cause().to_string()),
                    other => other.to_string(),
                };
                let mut error = Some(error);
                for queued in batch {
                    let reply = error
                        .take()
                        .unwrap_or_else(|| self.context(LockError::storage_msg(cause.clone())));
                    let _ = queued.reply.send(Err(reply));
                }
            }
        }
    }

    fn unexpected(&self, value: &Value) -> LockError {
        self.context(LockError::storage_msg(format!(
            "unexpected reply {value:?} from the redis batch script"
        )))
    }
}

/// The keys and arguments of a batch: three of each per operation (see `scripts::batch`).
fn batch_call(store: &RedisStore, batch: &[Queued]) -> (Vec<String>, Vec<Value>) {
    let mut keys = Vec::with_capacity(batch.len() * 3);
    let mut args = Vec::with_capacity(batch.len() * 3);
    for queued in batch {
        keys.push(store.redis_key(&queued.key));
        keys.push(store.fence_key(&queued.key));
        keys.push(store.waiting_key(&queued.key));
        args.push(Value::from(queued.owner.as_str()));
        let (lock_ms, fence_ms) = match queued.op {
            Op::Acquire { lock_ms, fence_ms } => (int(lock_ms), int(fence_ms)),
            Op::Release => (-1, 0),
        };
        args.push(Value::Integer(lock_ms));
        args.push(Value::Integer(fence_ms));
    }
    (keys, args)
}

/// How long a batch may take: the time left of its latest member (each member's own wait
/// is bounded by its own deadline), so no member is cut off before its deadline because
/// an earlier one's came first; `None` for no member.
fn batch_time(deadlines: impl Iterator<Item = Instant>, now: Instant) -> Option<Duration> {
    deadlines.map(|deadline| deadline - now).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_takes_the_time_left_of_its_latest_member() {
        let now = Instant::now();
        let deadlines = [
            now + Duration::from_millis(10),
            now + Duration::from_millis(500),
            now + Duration::from_millis(90),
        ];
        assert_eq!(
            batch_time(deadlines.into_iter(), now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(batch_time(std::iter::empty(), now), None);
    }
}
