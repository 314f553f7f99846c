//! One try and a release on a store that answers in place
//! ([`ImmediateStore`](crate::ImmediateStore): an in-process store), taken when the
//! store is built and the lock's operation mutex is free: one synchronous step under
//! the mutex, with the same holding updates, checks and reports as the async paths in
//! `acquire` and `release` — and no future, no boxed store call, no clean-up guard (a
//! call in place cannot be cut half-way, and its error changes nothing). Otherwise
//! (`None`) the caller takes the async path, which waits for the mutex in turn.

use tokio::time::Instant;

use super::Lock;
use crate::LockError;

impl Lock {
    /// One try in place: `Some(generation)` of the new holding when acquired; `None`
    /// when it cannot be made in place.
    pub(super) fn try_acquire_in_place(&self) -> Option<Result<Option<u64>, LockError>> {
        let store = self.shared.handle.built()?;
        let in_place = self.shared.in_place(store.as_ref())?;
        let _op = self.shared.op.try_lock()?;
        let span =
            tracing::debug_span!("lock.acquire", store = %self.store_name(), key = %self.key());
        let _entered = span.enter();
        // The send time, and the store's `now`.
        let sent_at = Instant::now();
        let acquisition = match in_place.try_acquire_now(self.shared.checked(), self.ttl(), sent_at)
        {
            Ok(acquisition) => acquisition,
            Err(error) => {
                crate::observe::error(store.name(), self.key(), "acquire", &error);
                return Some(Err(error));
            }
        };
        let outcome = match self.answered(acquisition, sent_at) {
            Ok(outcome) => outcome,
            Err(answered_at) => {
                // Owner-checked, still under the mutex.
                let _ = in_place.delete_now(self.shared.checked(), answered_at);
                self.late(store.name(), answered_at)
            }
        };
        // The only try: a denial, or a late acquisition, is final.
        Some(Ok(match outcome.generation {
            Some(generation) => {
                self.acquired_after(store.name(), &outcome, sent_at, 1);
                Some(generation)
            }
            None => self.not_acquired(sent_at, 1),
        }))
    }

    /// Release holding `generation` (`None`: whatever this owner holds) in place; `None`
    /// when it cannot be done in place.
    pub(super) fn release_in_place(
        &self,
        generation: Option<u64>,
    ) -> Option<Result<(), LockError>> {
        let store = self.shared.handle.built()?;
        let in_place = self.shared.in_place(store.as_ref())?;
        let _op = self.shared.op.try_lock()?;
        let span =
            tracing::debug_span!("lock.release", store = %self.store_name(), key = %self.key());
        let _entered = span.enter();
        // The release begins (and the hold time ends) now; the store's `now` too.
        let now = Instant::now();
        if !self.shared.holding.releasing(generation, now) {
            return Some(Err(LockError::NotOwned));
        }
        let result = in_place.delete_now(self.shared.checked(), now);
        Some(self.release_answered(store.as_ref(), result, now))
    }
}
