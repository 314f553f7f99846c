//! The holding state of one lock: whether this owner holds it, until when, under which
//! fencing token, and whether it was lost. Shared by every clone of a [`Lock`](crate::Lock),
//! its auto-extender and its [`LostLock`](crate::LostLock) signals, which use it only
//! through the methods below.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::sync::futures::Notified;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Until when this owner holds the lock, as far as this process knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// Not held by this owner as far as this process knows.
    NotHeld,
    /// Held without a TTL.
    Never,
    /// Held until this instant (measured from before the acquiring request was sent).
    At(Instant),
}

impl Deadline {
    /// The deadline of a holding of `ttl` whose request was sent at `sent_at`.
    /// Saturates: a TTL beyond the clock's range is held "forever" locally.
    pub(crate) fn after(sent_at: Instant, ttl: Option<Duration>) -> Deadline {
        match ttl.and_then(|ttl| sent_at.checked_add(ttl)) {
            Some(at) => Deadline::At(at),
            None => Deadline::Never,
        }
    }
}

/// What a [`LostLock`](crate::LostLock) of one holding sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// The holding has not started yet (the signal was taken before acquiring).
    NotYet,
    Lost,
    /// Released by its owner or replaced by a later holding: it ended without being lost.
    Over,
    HeldUntil(Option<Instant>),
}

struct State {
    deadline: Deadline,
    fencing_token: Option<u64>,
    /// Bumped on every acquire and release: identifies one holding of the lock.
    generation: u64,
    lost: bool,
    /// When the current holding was acquired (for the hold time on release).
    since: Option<Instant>,
    extender: Option<JoinHandle<()>>,
}

/// The holding state machine: `NotHeld → held(generation g) → extended* → (lost) →
/// released / re-acquired (g + 1 …)`. Every change wakes the [`changed`](Self::changed)
/// waiters.
pub(crate) struct Holding {
    state: Mutex<State>,
    changed: Notify,
}

impl Default for Holding {
    fn default() -> Self {
        Holding {
            state: Mutex::new(State {
                deadline: Deadline::NotHeld,
                fencing_token: None,
                generation: 0,
                lost: false,
                since: None,
                extender: None,
            }),
            changed: Notify::new(),
        }
    }
}

impl Holding {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every update below is a few plain assignments: a panic cannot leave it torn.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current holding's generation.
    pub(crate) fn generation(&self) -> u64 {
        self.state().generation
    }

    /// The generation and whether this owner holds the lock (not lost) right now.
    pub(crate) fn current(&self) -> (u64, bool) {
        let st = self.state();
        (st.generation, st.deadline != Deadline::NotHeld && !st.lost)
    }

    pub(crate) fn deadline(&self) -> Deadline {
        self.state().deadline
    }

    pub(crate) fn fencing_token(&self) -> Option<u64> {
        self.state().fencing_token
    }

    /// A new holding starts; returns its generation. Stops the previous extender.
    pub(crate) fn acquired(&self, deadline: Deadline, fencing_token: Option<u64>) -> u64 {
        let mut st = self.state();
        st.deadline = deadline;
        st.fencing_token = fencing_token;
        st.generation += 1;
        st.lost = false;
        st.since = Some(Instant::now());
        if let Some(old) = st.extender.take() {
            old.abort();
        }
        let generation = st.generation;
        drop(st);
        self.changed.notify_waiters();
        generation
    }

    /// Attach the auto-extender of holding `generation` (aborted if that holding ended).
    pub(crate) fn set_extender(&self, generation: u64, extender: JoinHandle<()>) {
        let mut st = self.state();
        if st.generation == generation && !st.lost {
            if let Some(old) = st.extender.replace(extender) {
                old.abort();
            }
        } else {
            extender.abort();
        }
    }

    /// Stop auto-extension (on release, or when the last `Lock` clone is dropped).
    pub(crate) fn stop_extender(&self) {
        if let Some(extender) = self.state().extender.take() {
            extender.abort();
        }
    }

    /// The store accepted an extension of holding `generation` until `deadline`.
    /// Ignored if that holding is over.
    pub(crate) fn extended(&self, generation: u64, deadline: Instant) {
        let mut st = self.state();
        if st.generation != generation || st.deadline == Deadline::NotHeld {
            return;
        }
        // Also when held without a TTL (the store now expires it) or restored without
        // a known expiration.
        st.deadline = Deadline::At(deadline);
        drop(st);
        self.changed.notify_waiters();
    }

    /// The holding ended by release (or was found not held). Starts a new generation.
    /// Returns how long it was held, when this process acquired it.
    pub(crate) fn released(&self) -> Option<Duration> {
        let mut st = self.state();
        if let Some(extender) = st.extender.take() {
            extender.abort();
        }
        if st.deadline == Deadline::NotHeld {
            return None;
        }
        let held = st.since.take().map(|t| t.elapsed());
        st.deadline = Deadline::NotHeld;
        st.generation += 1;
        drop(st);
        self.changed.notify_waiters();
        held
    }

    /// Holding `generation` is lost; returns `true` if this call marked it.
    pub(crate) fn mark_lost(&self, generation: u64) -> bool {
        let mut st = self.state();
        if st.generation != generation || st.lost || st.deadline == Deadline::NotHeld {
            return false;
        }
        st.lost = true;
        drop(st);
        self.changed.notify_waiters();
        true
    }

    /// Restore a holding from a serialized lock (a new generation).
    pub(crate) fn restore(&self, deadline: Deadline, fencing_token: Option<u64>) {
        let mut st = self.state();
        st.deadline = deadline;
        st.fencing_token = fencing_token;
        st.generation += 1;
    }

    /// The generation a signal taken now follows: the current holding, or, when the lock
    /// is not held, the next one.
    pub(crate) fn signal_target(&self) -> u64 {
        let st = self.state();
        if st.deadline == Deadline::NotHeld {
            st.generation + 1
        } else {
            st.generation
        }
    }

    /// How holding `generation` stands.
    pub(crate) fn status(&self, generation: u64) -> Status {
        let st = self.state();
        if st.generation < generation {
            return Status::NotYet;
        }
        if st.generation > generation {
            return Status::Over;
        }
        if st.lost {
            return Status::Lost;
        }
        match st.deadline {
            Deadline::At(t) if Instant::now() >= t => Status::Lost,
            Deadline::At(t) => Status::HeldUntil(Some(t)),
            Deadline::Never => Status::HeldUntil(None),
            Deadline::NotHeld => Status::NotYet,
        }
    }

    /// A future woken by the next change; enable it before reading the state.
    pub(crate) fn changed(&self) -> Notified<'_> {
        self.changed.notified()
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        if let Some(extender) = self
            .state
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .extender
            .take()
        {
            extender.abort();
        }
    }
}
