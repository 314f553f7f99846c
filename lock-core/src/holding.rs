//! The holding state of one lock: whether this owner holds it, until when, under which
//! fencing token, and whether it was lost. Shared by every clone of a [`Lock`](crate::Lock),
//! its auto-extender and its [`LostLock`](crate::LostLock) signals, which use it only
//! through the methods below.
//!
//! Each acquisition (or restore) starts a new *holding*, numbered by its generation. A
//! holding ends when it is released; it is *lost* when the store refused to extend it or
//! its local deadline passed — and once lost, it stays lost (a signal never un-fires).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
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

    fn passed(self, now: Instant) -> bool {
        matches!(self, Deadline::At(t) if now >= t)
    }
}

/// Whether one holding was lost: set once, never cleared.
pub(crate) type Fired = Arc<AtomicBool>;

/// What a [`LostLock`](crate::LostLock) of one holding sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// The holding has not started yet (the signal was taken before acquiring).
    NotYet,
    Lost,
    /// It ended without being lost (released), or a later holding replaced it.
    Over,
    HeldUntil(Option<Instant>),
}

struct State {
    /// The latest holding's number (0: none yet).
    generation: u64,
    deadline: Deadline,
    fencing_token: Option<u64>,
    /// The latest holding was released (or never existed).
    ended: bool,
    /// A release of the latest holding is under way (or failed): it is no longer held
    /// as far as this process is concerned, and no longer extended.
    ending: bool,
    /// The store refused to extend the latest holding, or its deadline passed while
    /// extending failed: not held any more, until a later extension succeeds.
    lost: bool,
    /// The latest holding's lost-lock signal fired (sticky: a signal never un-fires).
    fired: bool,
    /// The latest holding's fired flag, shared with its signals: it outlives the holding,
    /// so a signal of a replaced holding still knows whether that holding was lost.
    /// Made when the first signal asks for it (it starts as `fired`): until then nobody
    /// can look, and a holding costs no allocation.
    flag: Option<Fired>,
    /// The flag the next holding will use (signals taken while not held follow it),
    /// made when the first such signal asks for it.
    upcoming: Option<Fired>,
    /// When the latest holding was acquired (for the hold time on release).
    since: Option<Instant>,
    extender: Option<JoinHandle<()>>,
}

impl State {
    /// Held, not ending, not lost, and the local deadline not passed.
    fn believed_held(&self, now: Instant) -> bool {
        !self.ended
            && !self.ending
            && !self.lost
            && self.deadline != Deadline::NotHeld
            && !self.deadline.passed(now)
    }

    /// The signal of the latest holding fires (if it has not yet).
    fn fire(&mut self) {
        self.fired = true;
        if let Some(flag) = &self.flag {
            flag.store(true, Ordering::SeqCst);
        }
    }

    /// Fire if the latest open holding's local deadline has passed (the clock is read
    /// only when there is a deadline to compare with).
    fn fire_if_expired(&mut self, now: impl FnOnce() -> Instant) {
        if !self.ended
            && !self.ending
            && matches!(self.deadline, Deadline::At(_))
            && self.deadline.passed(now())
        {
            self.fire();
        }
    }
}

/// The flag in `slot`, made (set to `fired`) if no signal asked for it yet.
fn flag(slot: &mut Option<Fired>, fired: bool) -> Fired {
    slot.get_or_insert_with(|| Arc::new(AtomicBool::new(fired)))
        .clone()
}

/// The holding state machine. Every change wakes the [`changed`](Self::changed) waiters.
pub(crate) struct Holding {
    state: Mutex<State>,
    changed: Notify,
    /// Someone ever asked for [`changed`](Self::changed) (an extender, a lost-lock
    /// signal): until then a change has nobody to wake, and waking is skipped.
    watched: AtomicBool,
}

impl Default for Holding {
    fn default() -> Self {
        Holding {
            state: Mutex::new(State {
                generation: 0,
                deadline: Deadline::NotHeld,
                fencing_token: None,
                ended: true,
                ending: false,
                lost: false,
                fired: false,
                flag: None,
                upcoming: None,
                since: None,
                extender: None,
            }),
            changed: Notify::new(),
            watched: AtomicBool::new(false),
        }
    }
}

impl Holding {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every update below is a few plain assignments: a panic cannot leave it torn.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.state());
        // A watcher sets `watched` before it reads the state (under the mutex), so a
        // change it did not see is made after that, and this load sees the flag.
        if self.watched.load(Ordering::SeqCst) {
            self.changed.notify_waiters();
        }
        out
    }

    /// The latest holding's generation.
    pub(crate) fn generation(&self) -> u64 {
        self.state().generation
    }

    /// Whether this owner believes it holds the lock now: held, not being released, not
    /// lost, local deadline not passed.
    pub(crate) fn believed_held(&self) -> bool {
        self.state().believed_held(Instant::now())
    }

    /// Whether holding `generation` is the latest and has not ended (it may be lost).
    pub(crate) fn is_open(&self, generation: u64) -> bool {
        let st = self.state();
        st.generation == generation && !st.ended
    }

    /// The local deadline as the views show it: `NotHeld` once the holding ended or its
    /// release began.
    pub(crate) fn deadline(&self) -> Deadline {
        let st = self.state();
        if st.ended || st.ending {
            Deadline::NotHeld
        } else {
            st.deadline
        }
    }

    pub(crate) fn fencing_token(&self) -> Option<u64> {
        self.state().fencing_token
    }

    /// A new holding starts; returns its generation. Stops the previous extender.
    pub(crate) fn acquired(
        &self,
        deadline: Deadline,
        fencing_token: Option<u64>,
        now: Instant,
    ) -> u64 {
        self.update(|st| {
            st.fire_if_expired(|| now);
            st.generation += 1;
            // The new holding takes the upcoming flag (if a signal made it); the old
            // one stays with the old holding's signals.
            st.flag = st.upcoming.take();
            st.deadline = deadline;
            st.fencing_token = fencing_token;
            st.ended = deadline == Deadline::NotHeld;
            st.ending = false;
            st.lost = false;
            st.fired = false;
            st.since = Some(now);
            if let Some(old) = st.extender.take() {
                old.abort();
            }
            st.generation
        })
    }

    /// Attach the auto-extender of holding `generation` (aborted if that holding ended).
    pub(crate) fn set_extender(&self, generation: u64, extender: JoinHandle<()>) {
        let mut st = self.state();
        if st.generation == generation && !st.ended {
            if let Some(old) = st.extender.replace(extender) {
                old.abort();
            }
        } else {
            extender.abort();
        }
    }

    /// Stop auto-extension (when the last `Lock` clone is dropped).
    pub(crate) fn stop_extender(&self) {
        if let Some(extender) = self.state().extender.take() {
            extender.abort();
        }
    }

    /// An extension of holding `generation` to `deadline` is about to be sent: until it
    /// is confirmed, hold on to the earlier of the two deadlines (if it is cancelled, the
    /// store may have applied it — also when it was shorter).
    pub(crate) fn extending(&self, generation: u64, deadline: Instant) {
        self.update(|st| {
            if st.generation == generation && !st.ended {
                st.deadline = match st.deadline {
                    Deadline::At(t) => Deadline::At(t.min(deadline)),
                    Deadline::Never | Deadline::NotHeld => Deadline::At(deadline),
                };
            }
        });
    }

    /// The store accepted an extension of holding `generation` until `deadline`: it is
    /// held again (also after a failed release, or after it was lost). A signal that
    /// fired, or whose deadline passed before, stays fired: the extension came too late
    /// to promise exclusivity in between.
    pub(crate) fn extended(&self, generation: u64, deadline: Instant) {
        self.update(|st| {
            if st.generation != generation || st.ended {
                return;
            }
            st.fire_if_expired(Instant::now);
            st.deadline = Deadline::At(deadline);
            st.lost = false;
            st.ending = false;
        });
    }

    /// A release of holding `generation` (`None`: the latest) begins `now`: from now on
    /// it is not held as far as this process knows, and not extended. `false` if that
    /// holding already ended.
    pub(crate) fn releasing(&self, generation: Option<u64>, now: Instant) -> bool {
        self.update(|st| {
            if generation.is_some_and(|g| g != st.generation || st.ended) {
                return false;
            }
            st.fire_if_expired(|| now);
            st.ending = true;
            if let Some(extender) = st.extender.take() {
                extender.abort();
            }
            true
        })
    }

    /// The latest holding ended (released, or found not held) by a release that began
    /// `now` (after [`releasing`](Self::releasing)). Returns how long it was held until
    /// then, when this process acquired it.
    pub(crate) fn released(&self, now: Instant) -> Option<Duration> {
        self.update(|st| {
            if let Some(extender) = st.extender.take() {
                extender.abort();
            }
            if st.ended {
                return None;
            }
            st.fire_if_expired(|| now);
            st.ended = true;
            st.ending = false;
            st.deadline = Deadline::NotHeld;
            st.since.take().map(|t| now.saturating_duration_since(t))
        })
    }

    /// Holding `generation` is lost; returns `true` if this call marked it. The store
    /// told us it is not ours, so it is no longer held locally either.
    pub(crate) fn mark_lost(&self, generation: u64) -> bool {
        self.update(|st| {
            if st.generation != generation || st.ended || st.lost {
                return false;
            }
            st.lost = true;
            st.fire();
            let now = Instant::now();
            st.deadline = match st.deadline {
                Deadline::At(t) => Deadline::At(t.min(now)),
                _ => Deadline::At(now),
            };
            true
        })
    }

    /// Restore a holding from a serialized lock (a new generation).
    pub(crate) fn restore(&self, deadline: Deadline, fencing_token: Option<u64>) -> u64 {
        self.acquired(deadline, fencing_token, Instant::now())
    }

    /// The holding a signal taken now follows, and its fired flag: the current holding
    /// while this owner believes it holds the lock, otherwise the next one.
    pub(crate) fn signal_target(&self) -> (u64, Fired) {
        let mut st = self.state();
        if st.believed_held(Instant::now()) {
            let fired = st.fired;
            (st.generation, flag(&mut st.flag, fired))
        } else {
            (st.generation + 1, flag(&mut st.upcoming, false))
        }
    }

    /// The fired flag of holding `generation`. If that holding was already replaced, its
    /// flag is gone from here: a flag that says lost (the caller cannot show that the
    /// holding it got was never lost).
    pub(crate) fn flag_of(&self, generation: u64) -> Fired {
        let mut st = self.state();
        match generation.cmp(&st.generation) {
            std::cmp::Ordering::Equal => {
                let fired = st.fired;
                flag(&mut st.flag, fired)
            }
            std::cmp::Ordering::Greater if generation == st.generation + 1 => {
                flag(&mut st.upcoming, false)
            }
            _ => Arc::new(AtomicBool::new(true)),
        }
    }

    /// How holding `generation` (whose fired flag is `flag`) stands.
    pub(crate) fn status(&self, generation: u64, flag: &Fired) -> Status {
        let st = self.state();
        if st.generation < generation {
            return Status::NotYet;
        }
        if st.generation > generation {
            return if flag.load(Ordering::SeqCst) {
                Status::Lost
            } else {
                Status::Over
            };
        }
        if st.fired {
            return Status::Lost;
        }
        if st.ended || st.ending {
            return Status::Over;
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
        self.watched.store(true, Ordering::SeqCst);
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
