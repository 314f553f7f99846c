//! Deliberately broken stores, to prove that the conformance suite bites.
//!
//! [`FlawedStore`] is a correct in-memory store with one [`Flaw`] switched on. The
//! meta-tests run the suite against each flaw and check that it fails the cases it
//! should; [`Flaw::None`] is the control and must pass everything.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use lock_core::{
    Acquisition, Capabilities, LockError, LockStore, ReleaseFuture, ReleaseHub, async_trait,
};
use tokio::time::Instant;

/// What is wrong with a [`FlawedStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flaw {
    /// Nothing: the control.
    None,
    /// The seed's no-op store: `save` always `false`, everything else succeeds.
    Noop,
    /// `delete` removes the lock whoever holds it.
    DeleteIgnoresOwner,
    /// `delete` of a lock not held by the owner silently succeeds.
    DeleteNeverFails,
    /// `delete` answers `Ok` and removes nothing.
    DeleteIgnored,
    /// TTLs are ignored: nothing expires.
    NeverExpires,
    /// A takeover of an expired lock keeps the previous owner recorded.
    KeepsStaleOwner,
    /// `save` by the current holder succeeds again.
    Reentrant,
    /// `extend` succeeds without changing the expiry.
    ExtendIgnored,
    /// `extend` succeeds for any owner, held or not.
    ExtendIgnoresOwner,
    /// `exists` ignores expiry.
    ExistsIgnoresExpiry,
    /// `exists` says every key is held.
    ExistsAlwaysTrue,
    /// `save` checks, yields, then writes: two savers can both win.
    RacySave,
    /// Claims release notification but never notifies.
    SilentNotification,
    /// Claims fencing tokens but restarts them at 1 for every acquisition.
    FencingResets,
    /// Claims to report the holder's TTL but reports a far-off expiry.
    HolderTtlLies,
}

impl Flaw {
    /// Every flaw except [`Flaw::None`].
    pub const ALL: [Flaw; 15] = [
        Flaw::Noop,
        Flaw::DeleteIgnoresOwner,
        Flaw::DeleteNeverFails,
        Flaw::DeleteIgnored,
        Flaw::NeverExpires,
        Flaw::KeepsStaleOwner,
        Flaw::Reentrant,
        Flaw::ExtendIgnored,
        Flaw::ExtendIgnoresOwner,
        Flaw::ExistsIgnoresExpiry,
        Flaw::ExistsAlwaysTrue,
        Flaw::RacySave,
        Flaw::SilentNotification,
        Flaw::FencingResets,
        Flaw::HolderTtlLies,
    ];
}

#[derive(Debug)]
struct Entry {
    owner: String,
    expires_at: Option<Instant>,
}

impl Entry {
    fn live(&self, flaw: Flaw) -> bool {
        flaw == Flaw::NeverExpires || self.expires_at.is_none_or(|at| at > Instant::now())
    }
}

/// A store with one flaw (see the module docs). Instances built from one
/// [`FlawedStore::shared`] value share their locks, like connections to one server.
#[derive(Debug, Clone)]
pub struct FlawedStore {
    flaw: Flaw,
    shared: std::sync::Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    entries: Mutex<HashMap<String, Entry>>,
    hub: ReleaseHub,
    last_token: Mutex<u64>,
}

impl FlawedStore {
    /// A new store (with its own locks) with this flaw.
    pub fn new(flaw: Flaw) -> Self {
        FlawedStore {
            flaw,
            shared: Default::default(),
        }
    }

    /// Another instance over the same locks.
    pub fn shared(&self) -> Self {
        self.clone()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.shared
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn held_by(&self, key: &str, owner: &str) -> bool {
        self.entries()
            .get(key)
            .is_some_and(|e| e.live(self.flaw) && e.owner == owner)
    }

    fn notify(&self, key: &str) {
        if self.flaw != Flaw::SilentNotification {
            self.shared.hub.notify(key);
        }
    }
}

#[async_trait]
impl LockStore for FlawedStore {
    async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError> {
        Ok(self.try_acquire(key, owner, ttl).await?.acquired)
    }

    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        let allowed = match self.flaw {
            Flaw::Noop | Flaw::DeleteNeverFails | Flaw::DeleteIgnored => true,
            Flaw::DeleteIgnoresOwner => self.entries().get(key).is_some_and(|e| e.live(self.flaw)),
            _ => self.held_by(key, owner),
        };
        if !allowed {
            return Err(LockError::NotOwned);
        }
        if !matches!(self.flaw, Flaw::Noop | Flaw::DeleteIgnored) {
            self.entries().remove(key);
            self.notify(key);
        }
        Ok(())
    }

    async fn force_delete(&self, key: &str) -> Result<(), LockError> {
        if self.flaw != Flaw::Noop && self.entries().remove(key).is_some() {
            self.notify(key);
        }
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, LockError> {
        Ok(match self.flaw {
            Flaw::Noop => false,
            Flaw::ExistsIgnoresExpiry => self.entries().contains_key(key),
            Flaw::ExistsAlwaysTrue => true,
            _ => self.entries().get(key).is_some_and(|e| e.live(self.flaw)),
        })
    }

    async fn extend(&self, key: &str, owner: &str, duration: Duration) -> Result<(), LockError> {
        match self.flaw {
            Flaw::Noop | Flaw::ExtendIgnored => Ok(()),
            Flaw::ExtendIgnoresOwner => {
                if let Some(e) = self.entries().get_mut(key) {
                    e.expires_at = Some(Instant::now() + duration);
                }
                Ok(())
            }
            _ => {
                let mut entries = self.entries();
                match entries.get_mut(key) {
                    Some(e) if e.live(self.flaw) && e.owner == owner => {
                        e.expires_at = Some(Instant::now() + duration);
                        Ok(())
                    }
                    _ => Err(LockError::NotOwned),
                }
            }
        }
    }

    fn name(&self) -> &str {
        "flawed"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    async fn try_acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Option<Duration>,
    ) -> Result<Acquisition, LockError> {
        if self.flaw == Flaw::Noop {
            return Ok(Acquisition::denied(None));
        }
        if self.flaw == Flaw::RacySave {
            let free = !self.entries().get(key).is_some_and(|e| e.live(self.flaw));
            tokio::time::sleep(Duration::from_millis(3)).await;
            if !free {
                return Ok(Acquisition::denied(None));
            }
        }
        let mut entries = self.entries();
        let expires_at = ttl.map(|t| Instant::now() + t);
        match entries.get_mut(key) {
            Some(e) if e.live(self.flaw) && self.flaw != Flaw::RacySave => {
                if self.flaw == Flaw::Reentrant && e.owner == owner {
                    return Ok(Acquisition::acquired());
                }
                let left = match self.flaw {
                    Flaw::HolderTtlLies => Some(Duration::from_secs(3600)),
                    _ => e
                        .expires_at
                        .map(|at| at.saturating_duration_since(Instant::now())),
                };
                return Ok(Acquisition::denied(left));
            }
            Some(e) if self.flaw == Flaw::KeepsStaleOwner => e.expires_at = expires_at,
            _ => {
                entries.insert(
                    key.to_owned(),
                    Entry {
                        owner: owner.to_owned(),
                        expires_at,
                    },
                );
            }
        }
        drop(entries);
        let mut last = self
            .shared
            .last_token
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *last = if self.flaw == Flaw::FencingResets {
            1
        } else {
            *last + 1
        };
        Ok(Acquisition::acquired_with_token(*last))
    }

    fn release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        Some(self.shared.hub.listen(key))
    }
}
