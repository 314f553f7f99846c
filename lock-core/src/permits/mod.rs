//! Shared holdings of one key — the store side of [`Semaphore`](crate::Semaphore) and
//! [`RwLock`](crate::RwLock): the optional [`PermitStore`] capability, what one request
//! asks for, and [`PermitSet`], the rules in memory (used by the bundled in-process
//! stores, and the reference for every other implementation).
//!
//! # The rules
//! A permit key has a *limit* and a set of holders; each holder is one owner with a
//! *weight* and an optional expiry. A semaphore of `n` permits is limit `n`, weight 1;
//! a reader-writer lock is limit [`RW_LIMIT`], readers weight 1 and writers weight
//! [`RW_LIMIT`] (so a writer excludes everyone).
//!
//! * **Acquire** succeeds when, after dropping expired holders, the owner holds nothing
//!   on the key, no other owner's *reservation* is live, and the weights held plus the
//!   request's fit the limit. It adds the holder and bumps the key's fencing counter.
//!   A denied request with `reserve` set takes (or renews) the key's reservation, unless
//!   another owner's is live: while it lives, only its owner can acquire. That is how a
//!   waiting writer keeps a stream of readers from starving it.
//! * **Release** removes the owner's live holding (`NotOwned` if it has none);
//!   **extend** moves its expiry (`NotOwned` likewise); **force release** removes every
//!   holder and the reservation.
//! * Permit keys are a namespace of their own: a semaphore on `"k"` and a lock on
//!   `"k"` never see each other.
//! * Everyone using a key must agree on its limit (it comes with each request).

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::outcome::{Acquisition, ReleaseFuture};
use crate::{LockError, validate};

mod table;
pub use table::PermitTable;

/// The limit of a reader-writer lock's key: readers take 1, a writer all of it.
pub const RW_LIMIT: u32 = 1 << 30;

/// The largest semaphore: one permit less than [`RW_LIMIT`], so that a reader-writer
/// lock's holdings are never taken for a semaphore's.
pub const MAX_PERMITS: u32 = RW_LIMIT - 1;

/// What one acquisition of a permit key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PermitRequest {
    /// The key's limit: the most weight its holders may hold together (≥ 1).
    pub limit: u32,
    /// This holding's weight (1 ..= `limit`).
    pub weight: u32,
    /// How long the holding lasts (`None`: until released).
    pub ttl: Option<Duration>,
    /// When denied: reserve the key for this owner for this long (see the module docs).
    pub reserve: Option<Duration>,
}

impl PermitRequest {
    /// A request for `weight` of `limit`, held for `ttl`, reserving nothing.
    pub const fn new(limit: u32, weight: u32, ttl: Option<Duration>) -> Self {
        PermitRequest {
            limit,
            weight,
            ttl,
            reserve: None,
        }
    }

    /// The same request, reserving the key for `reserve` when denied.
    pub const fn reserving(mut self, reserve: Option<Duration>) -> Self {
        self.reserve = reserve;
        self
    }

    /// `InvalidArgument` unless `1 <= weight <= limit <= RW_LIMIT` and the durations
    /// are valid.
    pub fn validate(&self) -> Result<(), LockError> {
        if self.limit == 0 || self.limit > RW_LIMIT {
            return Err(LockError::invalid(format!(
                "a permit key's limit must be 1 ..= {RW_LIMIT}, not {}",
                self.limit
            )));
        }
        if self.weight == 0 || self.weight > self.limit {
            return Err(LockError::invalid(format!(
                "a permit's weight must be 1 ..= the limit {}, not {}",
                self.limit, self.weight
            )));
        }
        validate::ttl(self.ttl)?;
        if let Some(reserve) = self.reserve {
            validate::duration("reservation", reserve)?;
        }
        Ok(())
    }
}

/// How a permit key is used now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PermitUsage {
    /// Live holders.
    pub holders: u32,
    /// The weight they hold together.
    pub used: u32,
}

impl PermitUsage {
    /// `holders` holding `used` together.
    pub const fn new(holders: u32, used: u32) -> Self {
        PermitUsage { holders, used }
    }
}

/// The optional store capability behind [`Semaphore`](crate::Semaphore) and
/// [`RwLock`](crate::RwLock). A store offers it through
/// [`LockStore::permits`](crate::LockStore::permits); one written against the five
/// mutex methods alone keeps compiling and working, and its semaphores answer
/// `InvalidArgument` ("does not support semaphores").
///
/// Each method is one atomic step of the store (one script, one statement, one
/// critical section), following the rules in the [module docs](self). The conformance
/// kit (`lock-testkit`, capability `permits`) checks an implementation.
#[async_trait]
pub trait PermitStore: Send + Sync {
    /// Add a holding for `owner` if the rules allow; `Acquisition::acquired_with_token`
    /// (or `acquired`), else `denied` with the earliest holder's remaining time if known.
    async fn try_acquire_permit(
        &self,
        key: &str,
        owner: &str,
        request: PermitRequest,
    ) -> Result<Acquisition, LockError>;

    /// Remove `owner`'s live holding: `NotOwned` if it has none.
    async fn release_permit(&self, key: &str, owner: &str) -> Result<(), LockError>;

    /// Make `owner`'s live holding expire `duration` from now: `NotOwned` if it has none.
    async fn extend_permit(
        &self,
        key: &str,
        owner: &str,
        duration: Duration,
    ) -> Result<(), LockError>;

    /// Remove every holding and the reservation.
    async fn force_release_permits(&self, key: &str) -> Result<(), LockError>;

    /// The live holders and the weight they hold.
    async fn permit_usage(&self, key: &str) -> Result<PermitUsage, LockError>;

    /// A future that completes at the next release of a holding on `key` (see
    /// [`LockStore::release_listener`](crate::LockStore::release_listener)).
    fn permit_release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        let _ = key;
        None
    }
}

/// One holder in a [`PermitSet`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    owner: String,
    weight: u32,
    expires_at: Option<Instant>,
}

impl Holder {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

/// The holders of one permit key, in memory, under the rules of the
/// [module docs](self): what the bundled in-process stores keep per key, and the
/// reference for other implementations. Times are tokio [`Instant`]s.
#[derive(Debug, Clone, Default)]
pub struct PermitSet {
    holders: Vec<Holder>,
    reservation: Option<(String, Instant)>,
    fence: u64,
}

fn after(now: Instant, d: Duration) -> Result<Instant, LockError> {
    now.checked_add(d)
        .ok_or_else(|| LockError::invalid(format!("{d:?} is beyond the clock's range")))
}

impl PermitSet {
    fn purge(&mut self, now: Instant) {
        self.holders.retain(|h| h.live(now));
        if self.reservation.as_ref().is_some_and(|(_, t)| *t <= now) {
            self.reservation = None;
        }
    }

    /// Acquire under the rules. The fencing token is `max(last + 1, token_floor)`, so a
    /// store that forgets empty sets can keep tokens increasing with a clock-based floor.
    pub fn try_acquire(
        &mut self,
        now: Instant,
        owner: &str,
        request: &PermitRequest,
        token_floor: u64,
    ) -> Result<Acquisition, LockError> {
        request.validate()?;
        let expires_at = request.ttl.map(|t| after(now, t)).transpose()?;
        let reserve_until = request.reserve.map(|r| after(now, r)).transpose()?;
        self.purge(now);
        let used: u64 = self.holders.iter().map(|h| u64::from(h.weight)).sum();
        let reserved_by_other = self.reservation.as_ref().is_some_and(|(o, _)| o != owner);
        let mine = self.holders.iter().any(|h| h.owner == owner);
        if mine || reserved_by_other || used + u64::from(request.weight) > u64::from(request.limit)
        {
            if let (Some(until), false, false) = (reserve_until, mine, reserved_by_other) {
                self.reservation = Some((owner.to_owned(), until));
            }
            let earliest = self.holders.iter().filter_map(|h| h.expires_at).min();
            return Ok(Acquisition::denied(
                earliest.map(|t| t.saturating_duration_since(now)),
            ));
        }
        if self.reservation.as_ref().is_some_and(|(o, _)| o == owner) {
            self.reservation = None;
        }
        self.holders.push(Holder {
            owner: owner.to_owned(),
            weight: request.weight,
            expires_at,
        });
        self.fence = (self.fence + 1).max(token_floor);
        Ok(Acquisition::acquired_with_token(self.fence))
    }

    /// Remove `owner`'s live holding, or `NotOwned`.
    pub fn release(&mut self, now: Instant, owner: &str) -> Result<(), LockError> {
        self.purge(now);
        let before = self.holders.len();
        self.holders.retain(|h| h.owner != owner);
        if self.holders.len() == before {
            return Err(LockError::NotOwned);
        }
        Ok(())
    }

    /// Move `owner`'s live holding's expiry to `duration` from `now`, or `NotOwned`.
    pub fn extend(
        &mut self,
        now: Instant,
        owner: &str,
        duration: Duration,
    ) -> Result<(), LockError> {
        let until = after(now, duration)?;
        self.purge(now);
        match self.holders.iter_mut().find(|h| h.owner == owner) {
            Some(h) => {
                h.expires_at = Some(until);
                Ok(())
            }
            None => Err(LockError::NotOwned),
        }
    }

    /// The owners holding a live permit.
    pub fn owners(&mut self, now: Instant) -> Vec<String> {
        self.purge(now);
        self.holders.iter().map(|h| h.owner.clone()).collect()
    }

    /// The live reservation: its owner and until when.
    pub fn reservation(&mut self, now: Instant) -> Option<(&str, Instant)> {
        self.purge(now);
        self.reservation.as_ref().map(|(o, t)| (o.as_str(), *t))
    }

    /// Drop the reservation, if any.
    pub fn clear_reservation(&mut self) {
        self.reservation = None;
    }

    /// Whether `owner` holds a live permit.
    pub fn holds(&mut self, now: Instant, owner: &str) -> bool {
        self.purge(now);
        self.holders.iter().any(|h| h.owner == owner)
    }

    /// Remove every holder and the reservation (the fencing counter stays).
    pub fn clear(&mut self) {
        self.holders.clear();
        self.reservation = None;
    }

    /// Live holders and their weight.
    pub fn usage(&mut self, now: Instant) -> PermitUsage {
        self.purge(now);
        let used = self
            .holders
            .iter()
            .map(|h| h.weight)
            .fold(0u32, u32::saturating_add);
        PermitUsage::new(u32::try_from(self.holders.len()).unwrap_or(u32::MAX), used)
    }

    /// No live holder and no live reservation: a store may forget the set.
    pub fn is_idle(&mut self, now: Instant) -> bool {
        self.purge(now);
        self.holders.is_empty() && self.reservation.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn a_semaphore_of_two_admits_two() {
        let mut set = PermitSet::default();
        let now = Instant::now();
        let req = PermitRequest::new(2, 1, Some(S));
        assert!(set.try_acquire(now, "a", &req, 0).unwrap().acquired);
        assert!(
            !set.try_acquire(now, "a", &req, 0).unwrap().acquired,
            "not reentrant"
        );
        assert!(set.try_acquire(now, "b", &req, 0).unwrap().acquired);
        let denied = set.try_acquire(now, "c", &req, 0).unwrap();
        assert!(!denied.acquired);
        assert_eq!(denied.holder_expires_in, Some(S));
        assert_eq!(set.usage(now), PermitUsage::new(2, 2));
        assert!(
            set.try_acquire(now + S, "c", &req, 0).unwrap().acquired,
            "expiry frees"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_reservation_keeps_others_out_until_it_lapses() {
        let mut set = PermitSet::default();
        let now = Instant::now();
        let read = PermitRequest::new(RW_LIMIT, 1, Some(S));
        let write = PermitRequest::new(RW_LIMIT, RW_LIMIT, Some(S)).reserving(Some(S / 2));
        assert!(set.try_acquire(now, "r1", &read, 0).unwrap().acquired);
        assert!(!set.try_acquire(now, "w", &write, 0).unwrap().acquired);
        assert!(
            !set.try_acquire(now, "r2", &read, 0).unwrap().acquired,
            "reserved"
        );
        set.release(now, "r1").unwrap();
        assert!(set.try_acquire(now, "w", &write, 0).unwrap().acquired);
        set.release(now, "w").unwrap();
        assert!(set.try_acquire(now, "r2", &read, 0).unwrap().acquired);
        // A writer that gives up: its reservation lapses.
        assert!(!set.try_acquire(now, "w2", &write, 0).unwrap().acquired);
        assert!(!set.try_acquire(now, "r3", &read, 0).unwrap().acquired);
        assert!(
            set.try_acquire(now + S / 2, "r3", &read, 0)
                .unwrap()
                .acquired
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_increase_and_respect_the_floor() {
        let mut set = PermitSet::default();
        let now = Instant::now();
        let req = PermitRequest::new(3, 1, None);
        let a = set.try_acquire(now, "a", &req, 0).unwrap().fencing_token;
        let b = set.try_acquire(now, "b", &req, 100).unwrap().fencing_token;
        let c = set.try_acquire(now, "c", &req, 0).unwrap().fencing_token;
        assert_eq!((a, b, c), (Some(1), Some(100), Some(101)));
    }

    #[test]
    fn bad_requests_are_invalid() {
        for (limit, weight) in [(0, 0), (1, 0), (1, 2), (RW_LIMIT + 1, 1)] {
            assert!(PermitRequest::new(limit, weight, None).validate().is_err());
        }
        assert!(
            PermitRequest::new(1, 1, Some(Duration::ZERO))
                .validate()
                .is_err()
        );
    }
}
