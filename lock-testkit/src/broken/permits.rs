//! The permit capability of [`FlawedStore`]: lock-core's [`PermitTable`](lock_core::PermitTable),
//! with the permit flaws switched on one at a time (each bends the table's [`PermitSet`]
//! rules; what no flaw changes is forwarded to the table).

use std::time::Duration;

use lock_core::{
    Acquisition, LockError, PermitRequest, PermitSet, PermitStore, PermitUsage, ReleaseFuture,
    async_trait, permits::MAX_PERMITS, validate,
};
use tokio::time::Instant;

use super::{Flaw, FlawedStore};

impl FlawedStore {
    fn with_set<T>(&self, key: &str, f: impl FnOnce(&mut PermitSet, Instant) -> T) -> T {
        self.shared.permits.with_set(key, f)
    }

    /// The request as the flaw mangles it.
    fn permit_request(&self, mut request: PermitRequest) -> PermitRequest {
        match self.flaw {
            Flaw::PermitNoLimit => {
                request.limit = MAX_PERMITS;
                request.weight = 1;
            }
            Flaw::PermitWeightIgnored => request.weight = 1,
            Flaw::PermitNoReservation => request.reserve = None,
            Flaw::PermitReservationNeverLapses => {
                request.reserve = request.reserve.map(|_| Duration::from_secs(3600));
            }
            Flaw::PermitNeverExpires => request.ttl = None,
            Flaw::PermitExpiresEarly => {
                request.ttl = request.ttl.map(|t| {
                    t.saturating_sub(Duration::from_millis(2))
                        .max(Duration::from_millis(1))
                });
            }
            Flaw::PermitBadRequestsGranted => {
                request.limit = request.limit.clamp(1, MAX_PERMITS);
                request.weight = request.weight.clamp(1, request.limit);
            }
            _ => {}
        }
        request
    }
}

#[async_trait]
impl PermitStore for FlawedStore {
    async fn try_acquire_permit(
        &self,
        key: &str,
        owner: &str,
        request: PermitRequest,
    ) -> Result<Acquisition, LockError> {
        if self.flaw != Flaw::PermitNoInputChecks {
            validate::save_input(key, owner, request.ttl)?;
        }
        if self.flaw == Flaw::PermitSharesLockKeys && self.held_by_anyone(key) {
            return Ok(Acquisition::denied(None));
        }
        let request = self.permit_request(request);
        if self.flaw == Flaw::PermitReentrant
            && self.with_set(key, |set, now| set.holds(now, owner))
        {
            return Ok(Acquisition::acquired());
        }
        // The table forgets idle sets, and their fencing counters with them: without
        // the floor, tokens restart.
        let floor = if self.flaw == Flaw::PermitTokensReset {
            0
        } else {
            self.shared.permit_tokens.next()
        };
        let flaw = self.flaw;
        let sticky = &self.shared.sticky_reservations;
        self.with_set(key, |set, now| {
            if flaw == Flaw::PermitWritersIgnoreReservations && request.weight == request.limit {
                set.clear_reservation();
            }
            if flaw == Flaw::PermitGrantKeepsReservation
                || flaw == Flaw::PermitForceKeepsReservation
            {
                // Reservations kept beside the set, which outlive what they should.
                let mut sticky = super::locked(sticky);
                if sticky
                    .get(key)
                    .is_some_and(|(o, until)| o != owner && *until > now)
                {
                    return Ok(Acquisition::denied(None));
                }
                let got = set.try_acquire(now, owner, &request, floor)?;
                if let Some((o, until)) = set.reservation(now) {
                    sticky.insert(key.to_owned(), (o.to_owned(), until));
                }
                if got.acquired && flaw == Flaw::PermitForceKeepsReservation {
                    sticky.remove(key);
                }
                return Ok(got);
            }
            set.try_acquire(now, owner, &request, floor)
        })
    }

    async fn release_permit(&self, key: &str, owner: &str) -> Result<(), LockError> {
        if self.flaw == Flaw::PermitReleaseDeferred {
            validate::delete_input(key, owner)?;
            let this = self.clone();
            let (key, owner) = (key.to_owned(), owner.to_owned());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let _ = this.with_set(&key, |set, now| set.release(now, &owner));
            });
            return Ok(());
        }
        match self.shared.permits.release_permit(key, owner).await {
            Err(LockError::NotOwned) if self.flaw == Flaw::PermitReleaseNeverFails => Ok(()),
            other => other,
        }
    }

    async fn extend_permit(
        &self,
        key: &str,
        owner: &str,
        duration: Duration,
    ) -> Result<(), LockError> {
        if self.flaw == Flaw::PermitNoInputChecks {
            // `now + duration` unchecked: overflows on a huge duration.
            let _until = Instant::now() + duration;
        } else {
            validate::extend_input(key, owner, duration)?;
        }
        if self.flaw == Flaw::PermitExtendIgnored {
            return Ok(());
        }
        if self.flaw == Flaw::PermitExtendMovesAll {
            return self.with_set(key, |set, now| {
                if !set.holds(now, owner) {
                    return Err(LockError::NotOwned);
                }
                for other in set.owners(now) {
                    set.extend(now, &other, duration)?;
                }
                Ok(())
            });
        }
        match self.with_set(key, |set, now| set.extend(now, owner, duration)) {
            Err(LockError::NotOwned) if self.flaw == Flaw::PermitExtendIgnoresOwner => Ok(()),
            other => other,
        }
    }

    async fn force_release_permits(&self, key: &str) -> Result<(), LockError> {
        if self.flaw == Flaw::PermitForceIgnored {
            return validate::key(key);
        }
        if self.flaw == Flaw::PermitGrantKeepsReservation {
            super::locked(&self.shared.sticky_reservations).remove(key);
        }
        self.shared.permits.force_release_permits(key).await
    }

    async fn permit_usage(&self, key: &str) -> Result<PermitUsage, LockError> {
        self.shared.permits.permit_usage(key).await
    }

    fn permit_release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        self.shared.permits.permit_release_listener(key)
    }
}
